#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/cms.h>

#include "audit/pdf.h"
#include "base/buf.h"
#include "base/err.h"
#include "base/util.h"

#define PAGE_W 595.0
#define PAGE_H 842.0
#define MARGIN 50.0
#define MAX_PAGES 2000
#define SIG_MAX 8192	/* bytes of DER reserved for the CMS signature */
#define MAX_DOC (64 * 1024 * 1024)

struct att_pdf {
	struct att_buf *pages;	/* content streams */
	size_t npages, cap;
	double y;
	char *title, *footer;
};

struct att_pdf *att_pdf_new(const char *title, const char *footer)
{
	struct att_pdf *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->title = att_strdup(title ? title : "");
	p->footer = att_strdup(footer ? footer : "");
	if (!p->title || !p->footer) {
		att_pdf_free(p);
		return NULL;
	}
	p->y = 0;	/* no page yet */
	return p;
}

void att_pdf_free(struct att_pdf *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->npages; i++)
		att_buf_release(&p->pages[i]);
	free(p->pages);
	free(p->title);
	free(p->footer);
	free(p);
}

size_t att_pdf_mono_columns(double size)
{
	return (size_t)((PAGE_W - 2 * MARGIN) / (0.6 * size));
}

static int new_page(struct att_pdf *p)
{
	if (p->npages == MAX_PAGES)
		return ATT_E_LIMIT;
	if (p->npages == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 8;
		struct att_buf *n = realloc(p->pages, nc * sizeof(*n));

		if (!n)
			return ATT_E_NOMEM;
		p->pages = n;
		p->cap = nc;
	}
	att_buf_init(&p->pages[p->npages++], MAX_DOC);
	p->y = PAGE_H - MARGIN;
	return 0;
}

/* UTF-8 -> WinAnsi (CP1252) code, '?' for anything else. */
static unsigned char winansi(uint32_t cp)
{
	static const struct {
		uint32_t cp;
		unsigned char c;
	} map[] = {
		{ 0x20AC, 0x80 }, { 0x2026, 0x85 }, { 0x2018, 0x91 }, { 0x2019, 0x92 }, { 0x201C, 0x93 },
		{ 0x201D, 0x94 }, { 0x2022, 0x95 }, { 0x2013, 0x96 }, { 0x2014, 0x97 }, { 0x2192, '>' },
	};

	if (cp >= 0x20 && cp < 0x7f)
		return (unsigned char)cp;
	if (cp >= 0xA0 && cp <= 0xFF)
		return (unsigned char)cp;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(map); i++)
		if (map[i].cp == cp)
			return map[i].c;
	return '?';
}

/* Append s as a PDF literal string body (escaped, WinAnsi). */
static int put_text(struct att_buf *b, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;
	int r = 0;

	while (*u && r == 0) {
		uint32_t cp;
		int n;

		if (*u < 0x80) {
			cp = *u;
			n = 1;
		} else if ((*u & 0xE0) == 0xC0 && (u[1] & 0xC0) == 0x80) {
			cp = ((uint32_t)(*u & 0x1F) << 6) | (u[1] & 0x3F);
			n = 2;
		} else if ((*u & 0xF0) == 0xE0 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80) {
			cp = ((uint32_t)(*u & 0x0F) << 12) | ((uint32_t)(u[1] & 0x3F) << 6) | (u[2] & 0x3F);
			n = 3;
		} else if ((*u & 0xF8) == 0xF0 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80 &&
			   (u[3] & 0xC0) == 0x80) {
			cp = 0x10FFFF;	/* outside WinAnsi */
			n = 4;
		} else {
			cp = '?';
			n = 1;
		}
		{
			unsigned char c = winansi(cp);

			if (c == '(' || c == ')' || c == '\\')
				r = att_buf_printf(b, "\\%c", c);
			else if (c >= 0x80)
				r = att_buf_printf(b, "\\%03o", c);
			else
				r = att_buf_append(b, &c, 1);
		}
		u += n;
	}
	return r;
}

static const char *font_name(enum att_pdf_font f)
{
	return f == ATT_PDF_SANS ? "F1" : f == ATT_PDF_SANS_BOLD ? "F2" : "F3";
}

int att_pdf_line(struct att_pdf *p, enum att_pdf_font font, double size, const char *utf8)
{
	struct att_buf *b;
	int r;

	if (p->npages == 0 || p->y - size * 1.3 < MARGIN + 20) {
		r = new_page(p);
		if (r)
			return r;
	}
	p->y -= size * 1.3;
	b = &p->pages[p->npages - 1];
	r = att_buf_printf(b, "BT /%s %.1f Tf %.1f %.1f Td (", font_name(font), size, MARGIN, p->y);
	if (r == 0)
		r = put_text(b, utf8);
	if (r == 0)
		r = att_buf_puts(b, ") Tj ET\n");
	return r < 0 ? ATT_E_NOMEM : 0;
}

void att_pdf_gap(struct att_pdf *p, double points)
{
	if (p->npages)
		p->y -= points;
}

/* ---- assembly ------------------------------------------------------------------ */

struct out {
	struct att_buf b;
	size_t *off;	/* object offsets, 1-based */
	size_t nobj;
};

static int obj_begin(struct out *o, size_t num)
{
	o->off[num] = o->b.len;
	return att_buf_printf(&o->b, "%zu 0 obj\n", num);
}

/* Positions of the signature placeholders in a laid-out document. */
struct sig_slots {
	size_t byte_range, contents;
};

/* Header objects: catalog, pages, fonts, signature field and value (with
 * placeholders), info. */
static int write_head(struct out *o, const struct att_pdf *p, size_t first_page, const char *date,
		      const char *signer_name, const char *reason, struct sig_slots *slots)
{
	static const char *const fonts[] = { "Helvetica", "Helvetica-Bold", "Courier" };
	int r = 0;

	r |= att_buf_puts(&o->b, "%PDF-1.7\n%\xe2\xe3\xcf\xd3\n");
	r |= obj_begin(o, 1);
	r |= att_buf_puts(&o->b, "<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields [6 0 R] /SigFlags 3 >> >>\nendobj\n");
	r |= obj_begin(o, 2);
	r |= att_buf_puts(&o->b, "<< /Type /Pages /Kids [");
	for (size_t i = 0; i < p->npages; i++)
		r |= att_buf_printf(&o->b, "%zu 0 R ", first_page + 2 * i);
	r |= att_buf_printf(&o->b, "] /Count %zu >>\nendobj\n", p->npages);
	for (size_t i = 0; i < 3; i++) {
		r |= obj_begin(o, 3 + i);
		r |= att_buf_printf(&o->b, "<< /Type /Font /Subtype /Type1 /BaseFont /%s /Encoding /WinAnsiEncoding >>\nendobj\n",
				    fonts[i]);
	}
	r |= obj_begin(o, 6);
	r |= att_buf_printf(&o->b, "<< /FT /Sig /T (Signature1) /V 7 0 R /Type /Annot /Subtype /Widget /Rect [0 0 0 0] /F 132 /P %zu 0 R >>\nendobj\n",
			    first_page);
	r |= obj_begin(o, 7);
	r |= att_buf_puts(&o->b, "<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /adbe.pkcs7.detached /Name (");
	r |= put_text(&o->b, signer_name);
	r |= att_buf_puts(&o->b, ") /Reason (");
	r |= put_text(&o->b, reason);
	r |= att_buf_printf(&o->b, ") /M (%s) /ByteRange ", date);
	slots->byte_range = o->b.len;
	r |= att_buf_puts(&o->b, "[0 0000000000 0000000000 0000000000] /Contents ");
	slots->contents = o->b.len;
	r |= att_buf_puts(&o->b, "<");
	for (size_t i = 0; i < 2 * SIG_MAX && r == 0; i += 64)
		r |= att_buf_puts(&o->b, "0000000000000000000000000000000000000000000000000000000000000000");
	r |= att_buf_puts(&o->b, "> >>\nendobj\n");
	r |= obj_begin(o, 8);
	r |= att_buf_puts(&o->b, "<< /Title (");
	r |= put_text(&o->b, p->title);
	r |= att_buf_printf(&o->b, ") /Producer (attestd) /CreationDate (%s) >>\nendobj\n", date);
	return r;
}

/* Page objects (each with its footer), then the xref table and trailer. */
static int write_pages_and_xref(struct out *o, struct att_pdf *p, size_t first_page)
{
	size_t xref;
	int r = 0;

	for (size_t i = 0; i < p->npages && r == 0; i++) {
		struct att_buf *c = &p->pages[i];
		char foot[512];

		snprintf(foot, sizeof(foot), "%s \xe2\x80\x94 page %zu of %zu", p->footer, i + 1, p->npages);
		r |= att_buf_printf(c, "BT /F1 7.0 Tf %.1f %.1f Td (", MARGIN, MARGIN - 10);
		r |= put_text(c, foot);
		r |= att_buf_puts(c, ") Tj ET\n");
		r |= obj_begin(o, first_page + 2 * i);
		r |= att_buf_printf(&o->b,
				    "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %.0f %.0f] /Resources << /Font << /F1 3 0 R /F2 4 0 R /F3 5 0 R >> >> /Contents %zu 0 R%s >>\nendobj\n",
				    PAGE_W, PAGE_H, first_page + 2 * i + 1, i == 0 ? " /Annots [6 0 R]" : "");
		r |= obj_begin(o, first_page + 2 * i + 1);
		r |= att_buf_printf(&o->b, "<< /Length %zu >>\nstream\n", c->len);
		r |= att_buf_append(&o->b, c->p ? c->p : "", c->len);
		r |= att_buf_puts(&o->b, "\nendstream\nendobj\n");
	}
	xref = o->b.len;
	r |= att_buf_printf(&o->b, "xref\n0 %zu\n0000000000 65535 f \n", o->nobj + 1);
	for (size_t i = 1; i <= o->nobj; i++)
		r |= att_buf_printf(&o->b, "%010zu 00000 n \n", o->off[i]);
	r |= att_buf_printf(&o->b, "trailer\n<< /Size %zu /Root 1 0 R /Info 8 0 R >>\nstartxref\n%zu\n%%%%EOF\n",
			    o->nobj + 1, xref);
	return r;
}

/* Fill the ByteRange (everything but the <...> of /Contents) and the
 * detached CMS signature over those bytes into the placeholders. */
static int sign_into(struct att_buf *b, const struct sig_slots *slots, EVP_PKEY *key, X509 *cert, X509 *ca)
{
	size_t a = slots->contents, bs = slots->contents + 2 * SIG_MAX + 2, c = b->len - bs;
	BIO *data = NULL;
	CMS_ContentInfo *cms = NULL;
	STACK_OF(X509) *chain = NULL;
	unsigned char *der = NULL;
	char br[64];
	int derlen = 0, r = 0, n = snprintf(br, sizeof(br), "[0 %zu %zu %zu]", a, bs, c);

	memset(b->p + slots->byte_range, ' ', 36);
	memcpy(b->p + slots->byte_range, br, (size_t)n);
	data = BIO_new(BIO_s_mem());
	if (!data || BIO_write(data, b->p, (int)a) != (int)a || BIO_write(data, b->p + bs, (int)c) != (int)c) {
		r = ATT_E_NOMEM;
		goto out;
	}
	chain = sk_X509_new_null();
	if (!chain || (ca && !sk_X509_push(chain, ca))) {
		r = ATT_E_NOMEM;
		goto out;
	}
	cms = CMS_sign(cert, key, chain, data, CMS_DETACHED | CMS_BINARY | CMS_NOSMIMECAP);
	if (!cms || (derlen = i2d_CMS_ContentInfo(cms, &der)) <= 0 || derlen > SIG_MAX) {
		r = ATT_E_CRYPTO;
		goto out;
	}
	for (int i = 0; i < derlen; i++) {
		static const char hx[] = "0123456789ABCDEF";

		b->p[slots->contents + 1 + 2 * (size_t)i] = hx[der[i] >> 4];
		b->p[slots->contents + 2 + 2 * (size_t)i] = hx[der[i] & 15];
	}
out:
	OPENSSL_free(der);
	CMS_ContentInfo_free(cms);
	sk_X509_free(chain);	/* ca is borrowed */
	BIO_free(data);
	return r;
}

int att_pdf_finish_signed(struct att_pdf *p, EVP_PKEY *key, X509 *cert, X509 *ca, const char *signer_name,
			  const char *reason, char **ret, size_t *retlen)
{
	/* 1 catalog, 2 pages, 3-5 fonts, 6 sig field, 7 sig value, 8 info, then page + content pairs */
	const size_t first_page = 9;
	struct out o = { 0 };
	struct sig_slots slots = { 0, 0 };
	char date[32];
	time_t now = time(NULL);
	struct tm tm;
	int r = 0;

	if (p->npages == 0 && (r = new_page(p)) != 0)
		return r;
	o.nobj = 8 + 2 * p->npages;
	o.off = calloc(o.nobj + 1, sizeof(size_t));
	if (!o.off)
		return ATT_E_NOMEM;
	att_buf_init(&o.b, MAX_DOC);
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "D:%Y%m%d%H%M%SZ", &tm);
	r |= write_head(&o, p, first_page, date, signer_name, reason, &slots);
	r |= write_pages_and_xref(&o, p, first_page);
	if (r != 0 || !o.b.p)
		r = ATT_E_NOMEM;
	else
		r = sign_into(&o.b, &slots, key, cert, ca);
	if (r == 0)
		*ret = att_buf_steal(&o.b, retlen);
	att_buf_release(&o.b);
	free(o.off);
	return r;
}
