/* hwid.c - DMI and the first physical NIC's MAC from sysfs (see hwid.h). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/hwid.h"
#include "base/util.h"

static void read_value(const char *root, const char *rel, char *out, size_t outlen)
{
	char path[4096], buf[512];
	FILE *f;
	size_t n, s = 0, o = 0;

	out[0] = '\0';
	if ((size_t)snprintf(path, sizeof(path), "%s%s", root, rel) >= sizeof(path))
		return;
	f = fopen(path, "re");
	if (!f)
		return;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	while (s < n && (buf[s] == ' ' || buf[s] == '\t' || buf[s] == '\n'))
		s++;
	while (n > s && (buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\n' || buf[n - 1] == '\0'))
		n--;
	for (; s < n && o + 1 < outlen; s++)
		out[o++] = (buf[s] >= 0x20 && buf[s] < 0x7f) ? buf[s] : '?';
	out[o] = '\0';
}

static int is_mac(const char *s)
{
	if (strlen(s) != 17 || strcmp(s, "00:00:00:00:00:00") == 0)
		return 0;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !att_is_hex(&s[i], 1))
			return 0;
	return 1;
}

static void first_mac(const char *root, char out[18])
{
	char dir[4096];
	struct dirent **ents = NULL;
	int n;

	out[0] = '\0';
	snprintf(dir, sizeof(dir), "%s/sys/class/net", root);
	n = scandir(dir, &ents, NULL, alphasort);
	for (int i = 0; i < n; i++) {
		char rel[600], v[64];
		struct stat st;

		if (!out[0] && ents[i]->d_name[0] != '.' && strcmp(ents[i]->d_name, "lo") != 0) {
			snprintf(rel, sizeof(rel), "%s/%s/device", dir, ents[i]->d_name);
			if (stat(rel, &st) == 0) {
				snprintf(rel, sizeof(rel), "/sys/class/net/%s/type", ents[i]->d_name);
				read_value(root, rel, v, sizeof(v));
				if (strcmp(v, "1") == 0) {
					snprintf(rel, sizeof(rel), "/sys/class/net/%s/address", ents[i]->d_name);
					read_value(root, rel, v, sizeof(v));
					for (char *c = v; *c; c++)
						*c = (char)(*c >= 'A' && *c <= 'F' ? *c + 32 : *c);
					if (is_mac(v))
						memcpy(out, v, 18);
				}
			}
		}
		free(ents[i]);
	}
	free(ents);
}

void att_hwid_collect(const char *root, struct att_hwid *ret)
{
	const char *r = root ? root : "";

	memset(ret, 0, sizeof(*ret));
	read_value(r, "/sys/class/dmi/id/product_uuid", ret->uuid, sizeof(ret->uuid));
	read_value(r, "/sys/class/dmi/id/product_serial", ret->serial, sizeof(ret->serial));
	if (!ret->serial[0])
		read_value(r, "/sys/class/dmi/id/chassis_serial", ret->serial, sizeof(ret->serial));
	read_value(r, "/sys/class/dmi/id/product_name", ret->product, sizeof(ret->product));
	first_mac(r, ret->mac);
}
