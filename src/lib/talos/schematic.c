#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/sha.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"
#include "talos/schematic.h"

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Would YAML 1.1/1.2 resolve this plain scalar to something other than
 * a string?  (null, bool incl. go-yaml's legacy y/n/on/off, int, float) */
static bool resolves_non_string(const char *s)
{
	static const char *words[] = {
		"~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE",
		"y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO",
		"on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "-.inf",
		"-.Inf", "-.INF", "+.inf", "+.Inf", "+.INF", ".nan", ".NaN", ".NAN",
	};
	const char *p = s;
	bool digits = false, dot = false, exp = false;

	for (size_t i = 0; i < ATT_ARRAY_SIZE(words); i++)
		if (strcmp(s, words[i]) == 0)
			return true;
	if (*p == '+' || *p == '-')
		p++;
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'o' || p[1] == 'b') && p[2]) {
		for (p += 2; *p; p++)
			if (!(is_digit(*p) || (*p >= 'a' && *p <= 'f') || (*p >= 'A' && *p <= 'F') || *p == '_'))
				return false;
		return true;
	}
	for (; *p; p++) {
		if (is_digit(*p) || *p == '_') {
			digits = digits || is_digit(*p);
		} else if (*p == '.' && !dot && !exp) {
			dot = true;
		} else if ((*p == 'e' || *p == 'E') && digits && !exp) {
			exp = true;
			if (p[1] == '+' || p[1] == '-')
				p++;
			if (!is_digit(p[1]))
				return false;
		} else {
			return false;
		}
	}
	return digits;
}

static bool plain_allowed(const char *s)
{
	size_t n = strlen(s);
	const char *lead = "-?:,[]{}#&*!|>'\"%@`";

	if (n == 0 || s[0] == ' ' || s[n - 1] == ' ')
		return false;
	if (strchr(lead, s[0])) {
		/* '-', '?', ':' are fine when followed by a non-space */
		if (!((s[0] == '-' || s[0] == '?' || s[0] == ':') && n > 1 && s[1] != ' '))
			return false;
	}
	if (s[n - 1] == ':')
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c == 0x7f)
			return false;
		if (c == ':' && i + 1 < n && s[i + 1] == ' ')
			return false;
		if (c == '#' && i > 0 && s[i - 1] == ' ')
			return false;
	}
	if (strcmp(s, "---") == 0 || strcmp(s, "...") == 0)
		return false;
	return true;
}

int att_schematic_quote(const char *s, char **ret)
{
	struct att_buf b;
	int r = 0;

	if (strchr(s, '\n') || strchr(s, '\r'))
		return ATT_E_INVAL;
	att_buf_init(&b, 1 << 16);
	if (*s && !resolves_non_string(s) && plain_allowed(s)) {
		r = att_buf_puts(&b, s);
	} else if (!*s || resolves_non_string(s)) {
		r = att_buf_puts(&b, "\"");
		for (const char *p = s; *p && r == 0; p++) {
			if (*p == '"' || *p == '\\')
				r = att_buf_append(&b, "\\", 1);
			if (r == 0)
				r = att_buf_append(&b, p, 1);
		}
		if (r == 0)
			r = att_buf_puts(&b, "\"");
	} else {
		for (const char *p = s; *p; p++)
			if ((unsigned char)*p < 0x20 && *p != '\t') {
				att_buf_release(&b);
				return ATT_E_INVAL;
			}
		r = att_buf_puts(&b, "'");
		for (const char *p = s; *p && r == 0; p++)
			r = *p == '\'' ? att_buf_puts(&b, "''") : att_buf_append(&b, p, 1);
		if (r == 0)
			r = att_buf_puts(&b, "'");
	}
	if (r < 0) {
		att_buf_release(&b);
		return r;
	}
	*ret = att_buf_steal(&b, NULL);
	return *ret ? 0 : ATT_E_NOMEM;
}

static int put_scalar(struct att_buf *b, const char *prefix, const char *s)
{
	char *q = NULL;
	int r = att_schematic_quote(s, &q);

	if (r < 0)
		return r;
	r = att_buf_printf(b, "%s%s\n", prefix, q);
	free(q);
	return r;
}

int att_schematic_yaml(const struct att_schematic *s, char **ret_yaml)
{
	struct att_buf b;
	bool have_ov = (s->overlay_image && *s->overlay_image) || (s->overlay_name && *s->overlay_name);
	bool have_sb = (s->secureboot_enroll_keys && *s->secureboot_enroll_keys) ||
		       s->secureboot_wellknown_certs;
	bool have_cust = s->n_kernel_args || s->n_meta || s->n_extensions ||
			 (s->bootloader && *s->bootloader) || have_sb || s->disk_sector_size;
	int r = 0;

	att_buf_init(&b, 1 << 20);
	if (have_ov) {
		r = att_buf_puts(&b, "overlay:\n");
		if (!r && s->overlay_image && *s->overlay_image)
			r = put_scalar(&b, "    image: ", s->overlay_image);
		if (!r && s->overlay_name && *s->overlay_name)
			r = put_scalar(&b, "    name: ", s->overlay_name);
	}
	if (r)
		goto out;
	if (!have_cust) {
		r = att_buf_puts(&b, "customization: {}\n");
		goto out;
	}
	r = att_buf_puts(&b, "customization:\n");
	if (!r && s->n_kernel_args) {
		r = att_buf_puts(&b, "    extraKernelArgs:\n");
		for (size_t i = 0; !r && i < s->n_kernel_args; i++)
			r = put_scalar(&b, "        - ", s->kernel_args[i]);
	}
	if (!r && s->n_meta) {
		r = att_buf_puts(&b, "    meta:\n");
		for (size_t i = 0; !r && i < s->n_meta; i++) {
			if (s->meta[i].key > 255) {
				r = ATT_E_INVAL;
				break;
			}
			r = att_buf_printf(&b, "        - key: %u\n", s->meta[i].key);
			if (!r)
				r = put_scalar(&b, "          value: ", s->meta[i].value);
		}
	}
	if (!r && s->n_extensions) {
		r = att_buf_puts(&b, "    systemExtensions:\n        officialExtensions:\n");
		for (size_t i = 0; !r && i < s->n_extensions; i++)
			r = put_scalar(&b, "            - ", s->extensions[i]);
	}
	if (!r && s->bootloader && *s->bootloader)
		r = put_scalar(&b, "    bootloader: ", s->bootloader);
	if (!r && have_sb) {
		r = att_buf_puts(&b, "    secureboot:\n");
		if (!r && s->secureboot_enroll_keys && *s->secureboot_enroll_keys)
			r = put_scalar(&b, "        enrollKeys: ", s->secureboot_enroll_keys);
		if (!r && s->secureboot_wellknown_certs)
			r = att_buf_puts(&b, "        includeWellKnownCertificates: true\n");
	}
	if (!r && s->disk_sector_size)
		r = att_buf_printf(&b, "    diskImage:\n        sectorSize: %u\n", s->disk_sector_size);
out:
	if (r < 0) {
		att_buf_release(&b);
		return r;
	}
	*ret_yaml = att_buf_steal(&b, NULL);
	return *ret_yaml ? 0 : ATT_E_NOMEM;
}

void att_schematic_id(const char *yaml, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];

	SHA256((const unsigned char *)yaml, strlen(yaml), md);
	att_hex_encode(md, sizeof(md), out);
}
