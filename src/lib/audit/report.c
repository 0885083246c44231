#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit/pdf.h"
#include "audit/report.h"
#include "base/err.h"
#include "base/util.h"

#define BODY 8.0

static const char *str(const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	return json_is_string(v) ? json_string_value(v) : "-";
}

/* Wrap utf8 into lines of at most cols characters after an indent. */
static int wrapped(struct att_pdf *p, const char *indent, const char *text, size_t cols)
{
	size_t ind = strlen(indent), width = cols > ind + 10 ? cols - ind : 10;
	const char *s = text;
	int r = 0;

	if (!*s)
		return 0;
	while (*s && r == 0) {
		char line[1024];
		size_t bytes = 0, chars = 0, cut = 0;

		while (s[bytes] && chars < width && bytes < sizeof(line) - ind - 8) {
			if (s[bytes] == ' ')
				cut = bytes;
			bytes++;
			while (((unsigned char)s[bytes] & 0xC0) == 0x80)
				bytes++;
			chars++;
		}
		if (s[bytes] && cut > 0)
			bytes = cut + 1;	/* break at the last blank */
		snprintf(line, sizeof(line), "%s%.*s", indent, (int)bytes, s);
		for (char *q = line; *q; q++)
			if (*q == '\n' || *q == '\r' || *q == '\t')
				*q = ' ';
		r = att_pdf_line(p, ATT_PDF_MONO, BODY, line);
		s += bytes;
	}
	return r;
}

/* The heading of the events, and when they are a selection, exactly what
 * is omitted (never an operator action, never the newest). */
static int report_selection(struct att_pdf *p, const struct att_report_input *in, size_t cols)
{
	const struct att_report_selection *sel = in->sel;
	char line[1024];
	size_t i;
	json_t *o;
	int r;

	if (!sel || !sel->selected) {
		snprintf(line, sizeof(line), "Events (%zu, all of them)", json_array_size(in->entries));
		return att_pdf_line(p, ATT_PDF_SANS_BOLD, 11, line);
	}
	snprintf(line, sizeof(line), "Events (%zu of %lld listed)", json_array_size(in->entries), (long long)sel->total);
	r = att_pdf_line(p, ATT_PDF_SANS_BOLD, 11, line);
	snprintf(line, sizeof(line),
		 "Listed: every operator action (%lld) and the newest %lld entries. Omitted: %lld older entries by unauthenticated callers (machine, registration token), none of them an operator action:",
		 (long long)sel->n_operator, (long long)sel->n_newest,
		 (long long)(sel->total - (int64_t)json_array_size(in->entries)));
	r |= wrapped(p, "", line, cols);
	json_array_foreach(sel->omitted, i, o) {
		snprintf(line, sizeof(line), "  omitted %-20s %lld entries, ids #%lld to #%lld",
			 json_string_value(json_object_get(o, "action")),
			 (long long)json_integer_value(json_object_get(o, "count")),
			 (long long)json_integer_value(json_object_get(o, "first_id")),
			 (long long)json_integer_value(json_object_get(o, "last_id")));
		r |= wrapped(p, "", line, cols);
	}
	r |= wrapped(p, "", "The omitted entries are in the audit log and its chain verification above; list them with GET /api/v1/audit?machine_id=...", cols);
	return r;
}

int att_audit_report_pdf(const struct att_report_input *in, EVP_PKEY *key, X509 *cert, X509 *ca, char **ret,
			 size_t *retlen)
{
	static const char *const fields[] = {
		"machine_id", "status", "role", "hostname", "assigned_ip", "ek_fingerprint", "ek_source",
		"ek_verified", "ek_manufacturer", "hw_serial", "hw_product", "hw_mac", "registered_at",
		"approved_at", "attested_at", "locked_at", "revoked_at",
	};
	const char *mid = str(in->machine, "machine_id");
	size_t cols = att_pdf_mono_columns(BODY), i;
	char line[1024], ts[40], *title;
	struct att_pdf *p;
	json_t *e;
	int r = 0;

	title = att_asprintf("Audit report \xe2\x80\x94 machine %s", mid);
	if (!title)
		return ATT_E_NOMEM;
	p = att_pdf_new(title, title);
	if (!p) {
		free(title);
		return ATT_E_NOMEM;
	}
	att_time_iso_utc(att_now(), ts);
	r |= att_pdf_line(p, ATT_PDF_SANS_BOLD, 14, title);
	free(title);
	snprintf(line, sizeof(line), "Generated %s by %s from %s", ts, in->generated_by, in->service_url);
	r |= att_pdf_line(p, ATT_PDF_SANS, 9, line);
	r |= att_pdf_line(p, ATT_PDF_SANS, 9,
			  "Digitally signed (PDF signature, CMS) by \"ITL Audit Report Signing\", issued by the ITL Machine Enrollment CA.");
	att_pdf_gap(p, 8);
	r |= att_pdf_line(p, ATT_PDF_SANS_BOLD, 11, "Machine");
	for (i = 0; i < ATT_ARRAY_SIZE(fields); i++) {
		const json_t *v = json_object_get(in->machine, fields[i]);
		char *val = json_is_string(v) ? NULL : (v && !json_is_null(v) ? json_dumps(v, JSON_ENCODE_ANY) : NULL);

		snprintf(line, sizeof(line), "%-16s %s", fields[i],
			 json_is_string(v) ? json_string_value(v) : val ? val : "-");
		free(val);
		r |= wrapped(p, "", line, cols);
	}
	att_pdf_gap(p, 8);
	r |= att_pdf_line(p, ATT_PDF_SANS_BOLD, 11, "Audit chain");
	if (in->chain->valid)
		snprintf(line, sizeof(line),
			 "The whole audit chain (%lld entries, all machines) was verified when this report was made: VALID. Head hash %s.",
			 (long long)in->chain->entries, in->chain->root_hash[0] ? in->chain->root_hash : "(empty)");
	else
		snprintf(line, sizeof(line),
			 "The whole audit chain was verified when this report was made: BROKEN at entry %lld (%s). Entries after it cannot be trusted.",
			 (long long)in->chain->first_invalid_id, in->chain->error);
	r |= wrapped(p, "", line, cols);
	r |= wrapped(p, "",
		     "Each entry_hash = SHA-256 of the canonical JSON of the entry (docs/audit.md); prev_hash links it to the entry before it in the global chain.",
		     cols);
	att_pdf_gap(p, 8);
	r |= report_selection(p, in, cols);
	if (json_array_size(in->entries) == 0)
		r |= att_pdf_line(p, ATT_PDF_SANS, 9, "No audit entries for this machine.");
	json_array_foreach(in->entries, i, e) {
		const char *ps = str(e, "prev_state"), *ns = str(e, "new_state");

		if (r)
			break;
		snprintf(line, sizeof(line), "#%lld  %s  %s  %s  %s -> %s",
			 (long long)json_integer_value(json_object_get(e, "id")), str(e, "timestamp"), str(e, "operator_cn"),
			 str(e, "action"), ps, ns);
		r |= wrapped(p, "", line, cols);
		if (json_is_string(json_object_get(e, "detail")))
			r |= wrapped(p, "    ", str(e, "detail"), cols);
		snprintf(line, sizeof(line), "    entry_hash %s", str(e, "entry_hash"));
		r |= att_pdf_line(p, ATT_PDF_MONO, BODY, line);
		snprintf(line, sizeof(line), "    prev_hash  %s", str(e, "prev_hash"));
		r |= att_pdf_line(p, ATT_PDF_MONO, BODY, line);
		att_pdf_gap(p, 3);
	}
	if (r == 0)
		r = att_pdf_finish_signed(p, key, cert, ca, "ITL Audit Report Signing", "Audit report of machine", ret,
					  retlen);
	else
		r = r == ATT_E_LIMIT ? ATT_E_LIMIT : ATT_E_NOMEM;
	att_pdf_free(p);
	return r;
}
