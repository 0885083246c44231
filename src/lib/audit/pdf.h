/* pdf.h - a minimal text-only PDF 1.7 writer with a detached CMS
 * signature (adbe.pkcs7.detached), for the signed audit report.
 *
 * A4 pages, the standard Helvetica / Helvetica-Bold / Courier fonts with
 * WinAnsi encoding (UTF-8 input is mapped; other characters become '?'),
 * lines placed top to bottom with automatic page breaks and a
 * "page n of N" footer.  The signature covers every byte of the file but
 * the /Contents hex string (ISO 32000-1 §12.8.1), made with OpenSSL CMS;
 * the signer and CA certificates are embedded. */
#ifndef ATT_AUDIT_PDF_H
#define ATT_AUDIT_PDF_H

#include <stddef.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

enum att_pdf_font { ATT_PDF_SANS, ATT_PDF_SANS_BOLD, ATT_PDF_MONO };

struct att_pdf;

struct att_pdf *att_pdf_new(const char *title, const char *footer);
/* One line of text at the cursor (no wrapping; the caller wraps). */
int att_pdf_line(struct att_pdf *p, enum att_pdf_font font, double size, const char *utf8);
void att_pdf_gap(struct att_pdf *p, double points);
/* Characters of the monospace font that fit on a line at size. */
size_t att_pdf_mono_columns(double size);
/* Assemble and sign; *ret is the whole file (malloc'd). */
int att_pdf_finish_signed(struct att_pdf *p, EVP_PKEY *key, X509 *cert, X509 *ca, const char *signer_name,
			  const char *reason, char **ret, size_t *retlen);
void att_pdf_free(struct att_pdf *p);

#endif
