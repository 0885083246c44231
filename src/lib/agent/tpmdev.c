/* tpmdev.c - opening the TPM, EK certificates from NV, finding the EK
 * (see tpmdev.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509.h>

#include "agent/tpmdev-internal.h"
#include "base/err.h"
#include "base/util.h"
#include "crypto/ek.h"

#define FAIL(code, ...) (snprintf(reterr, errlen, __VA_ARGS__), (code))

#define NV_EK_RSA2048 0x01c00002u
#define NV_EK_P256 0x01c0000au
#define NV_EK_P384 0x01c00016u
#define NV_CHAIN_FIRST 0x01c00100u
#define NV_CHAIN_LAST 0x01c001ffu
#define PERSISTENT_EK_FIRST 0x81010000u
#define PERSISTENT_EK_LAST 0x810100ffu

static int try_open(const char *conf, struct att_tpmdev *d, char *reterr, size_t errlen)
{
	TSS2_RC rc = Tss2_TctiLdr_Initialize(conf, &d->tcti);

	if (rc != TSS2_RC_SUCCESS)
		return FAIL(ATT_E_IO, "cannot open the TPM (%s): %s", conf, Tss2_RC_Decode(rc));
	rc = Esys_Initialize(&d->ctx, d->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		Tss2_TctiLdr_Finalize(&d->tcti);
		return FAIL(ATT_E_IO, "cannot talk to the TPM (%s): %s", conf, Tss2_RC_Decode(rc));
	}
	return 0;
}

int att_tpmdev_open(const char *tcti, struct att_tpmdev **ret, char *reterr, size_t errlen)
{
	struct att_tpmdev *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return ATT_E_NOMEM;
	d->ek = ESYS_TR_NONE;
	d->ak = ESYS_TR_NONE;
	d->ckey = ESYS_TR_NONE;
	if (tcti) {
		r = try_open(tcti, d, reterr, errlen);
	} else {
		r = try_open("device:/dev/tpmrm0", d, reterr, errlen);
		if (r < 0)
			r = try_open("device:/dev/tpm0", d, reterr, errlen);
	}
	if (r < 0) {
		free(d);
		return r;
	}
	*ret = d;
	return 0;
}

void att_tpmdev_close(struct att_tpmdev *d)
{
	if (!d)
		return;
	if (d->ak != ESYS_TR_NONE)
		Esys_FlushContext(d->ctx, d->ak);
	if (d->ckey != ESYS_TR_NONE)
		Esys_FlushContext(d->ctx, d->ckey);
	if (d->ek != ESYS_TR_NONE) {
		if (d->ek_transient)
			Esys_FlushContext(d->ctx, d->ek);
		else
			Esys_TR_Close(d->ctx, &d->ek);
	}
	att_tpm_pub_release(&d->ak_pub);
	Esys_Finalize(&d->ctx);
	Tss2_TctiLdr_Finalize(&d->tcti);
	free(d);
}

void att_tpm_ek_release(struct att_tpm_ek *ek)
{
	free(ek->cert);
	free(ek->chain);
	free(ek->spki);
	memset(ek, 0, sizeof(*ek));
}

/* Handles from first..last of one capability class, ascending. */
static int list_handles(struct att_tpmdev *d, uint32_t first, uint32_t last, uint32_t *out, size_t max,
			size_t *ret_n, char *reterr, size_t errlen)
{
	size_t n = 0;
	uint32_t from = first;
	TPMI_YES_NO more = TPM2_YES;

	while (more && from <= last && n < max) {
		TPMS_CAPABILITY_DATA *cap = NULL;
		TSS2_RC rc = Esys_GetCapability(d->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES,
						from, TPM2_MAX_CAP_HANDLES, &more, &cap);

		if (rc != TSS2_RC_SUCCESS)
			return TPM_FAIL(rc, "TPM2_GetCapability(handles)");
		if (cap->data.handles.count == 0) {
			Esys_Free(cap);
			break;
		}
		for (UINT32 i = 0; i < cap->data.handles.count && n < max; i++) {
			uint32_t h = cap->data.handles.handle[i];

			if (h > last) {
				more = TPM2_NO;
				break;
			}
			out[n++] = h;
			from = h + 1;
		}
		Esys_Free(cap);
	}
	*ret_n = n;
	return 0;
}

static bool has_handle(const uint32_t *h, size_t n, uint32_t want)
{
	for (size_t i = 0; i < n; i++)
		if (h[i] == want)
			return true;
	return false;
}

static uint16_t nv_buffer_max(struct att_tpmdev *d)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	uint16_t v = 512;

	if (Esys_GetCapability(d->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
			       TPM2_PT_NV_BUFFER_MAX, 1, &more, &cap) == TSS2_RC_SUCCESS) {
		if (cap->data.tpmProperties.count == 1 &&
		    cap->data.tpmProperties.tpmProperty[0].property == TPM2_PT_NV_BUFFER_MAX &&
		    cap->data.tpmProperties.tpmProperty[0].value > 0)
			v = (uint16_t)(cap->data.tpmProperties.tpmProperty[0].value > TPM2_MAX_NV_BUFFER_SIZE
					       ? TPM2_MAX_NV_BUFFER_SIZE
					       : cap->data.tpmProperties.tpmProperty[0].value);
		Esys_Free(cap);
	}
	return v;
}

/* Read a whole NV index (authorized by the index itself, else the owner),
 * in chunks the TPM accepts. */
static int nv_read(struct att_tpmdev *d, uint32_t index, uint8_t **ret, size_t *ret_len, char *reterr,
		   size_t errlen)
{
	ESYS_TR nv = ESYS_TR_NONE;
	TPM2B_NV_PUBLIC *pub = NULL;
	uint8_t *buf = NULL;
	uint16_t size, chunk = nv_buffer_max(d), off = 0;
	TSS2_RC rc;
	int r = 0;

	rc = Esys_TR_FromTPMPublic(d->ctx, index, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &nv);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "NV index");
	rc = Esys_NV_ReadPublic(d->ctx, nv, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		r = TPM_FAIL(rc, "TPM2_NV_ReadPublic");
		goto out;
	}
	size = pub->nvPublic.dataSize;
	if (size == 0) {
		r = FAIL(ATT_E_IO, "NV index 0x%08x: unexpected size %u", index, size);
		goto out;
	}
	buf = malloc(size);
	if (!buf) {
		r = ATT_E_NOMEM;
		goto out;
	}
	while (off < size) {
		TPM2B_MAX_NV_BUFFER *data = NULL;
		uint16_t n = (uint16_t)(size - off < chunk ? size - off : chunk);

		rc = Esys_NV_Read(d->ctx, nv, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n, off, &data);
		if (rc != TSS2_RC_SUCCESS)
			rc = Esys_NV_Read(d->ctx, ESYS_TR_RH_OWNER, nv, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, n,
					  off, &data);
		if (rc != TSS2_RC_SUCCESS) {
			r = TPM_FAIL(rc, "TPM2_NV_Read");
			goto out;
		}
		if (data->size != n) {
			Esys_Free(data);
			r = FAIL(ATT_E_IO, "NV index 0x%08x: short read", index);
			goto out;
		}
		memcpy(buf + off, data->buffer, n);
		Esys_Free(data);
		off = (uint16_t)(off + n);
	}
	*ret = buf;
	*ret_len = size;
	buf = NULL;
out:
	free(buf);
	Esys_Free(pub);
	Esys_TR_Close(d->ctx, &nv);
	return r;
}

/* The EK chain range: every index present, concatenated in order. */
static int read_chain(struct att_tpmdev *d, struct att_tpm_ek *ek, char *reterr, size_t errlen)
{
	uint32_t h[256];
	size_t n = 0;
	int r = list_handles(d, NV_CHAIN_FIRST, NV_CHAIN_LAST, h, ATT_ARRAY_SIZE(h), &n, reterr, errlen);

	for (size_t i = 0; r == 0 && i < n; i++) {
		uint8_t *b = NULL, *g;
		size_t bl = 0;

		r = nv_read(d, h[i], &b, &bl, reterr, errlen);
		if (r < 0)
			break;
		if (ek->chain_len + bl > ATT_TPM_EK_MAX_NV) {
			free(b);
			return FAIL(ATT_E_LIMIT, "EK chain NV range larger than %d bytes", ATT_TPM_EK_MAX_NV);
		}
		g = realloc(ek->chain, ek->chain_len + bl);
		if (!g) {
			free(b);
			return ATT_E_NOMEM;
		}
		ek->chain = g;
		memcpy(ek->chain + ek->chain_len, b, bl);
		ek->chain_len += bl;
		free(b);
	}
	return r;
}

/* The SPKI of a TPM2B_PUBLIC and its canonical fingerprint. */
static int pub_identity(const uint8_t *pub, size_t len, struct att_tpm_pub *ret_pub, uint8_t **ret_spki,
			size_t *ret_spki_len, struct att_ek *ret_id, char *reterr, size_t errlen)
{
	struct att_tpm_pub p;
	unsigned char *der = NULL;
	int n, r;

	r = att_tpm_pub_parse(pub, len, &p, reterr, errlen);
	if (r < 0)
		return r;
	n = i2d_PUBKEY(p.pkey, &der);
	if (n <= 0) {
		att_tpm_pub_release(&p);
		return FAIL(ATT_E_CRYPTO, "cannot encode the EK public key");
	}
	r = att_ek_parse_bytes(der, (size_t)n, "pub", time(NULL), ret_id, reterr, errlen);
	if (r < 0 || !ret_spki) {
		OPENSSL_free(der);
	} else {
		*ret_spki = malloc((size_t)n);
		if (*ret_spki)
			memcpy(*ret_spki, der, (size_t)n);
		else
			r = ATT_E_NOMEM;
		*ret_spki_len = (size_t)n;
		OPENSSL_free(der);
	}
	if (r == 0 && ret_pub)
		*ret_pub = p;
	else
		att_tpm_pub_release(&p);
	return r;
}

static int read_public(struct att_tpmdev *d, ESYS_TR h, uint8_t *out, size_t *ret_len, char *reterr, size_t errlen)
{
	TPM2B_PUBLIC *pub = NULL;
	size_t off = 0;
	TSS2_RC rc = Esys_ReadPublic(d->ctx, h, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &pub, NULL, NULL);

	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "TPM2_ReadPublic");
	rc = Tss2_MU_TPM2B_PUBLIC_Marshal(pub, out, ATT_TPM_MAX_PUBLIC, &off);
	Esys_Free(pub);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "marshal TPM2B_PUBLIC");
	*ret_len = off;
	return 0;
}

/* Remember the EK in d (taking the handle) and fill ek's public parts. */
static int adopt_ek(struct att_tpmdev *d, ESYS_TR h, bool transient, uint32_t handle, struct att_tpm_ek *ek,
		    char *reterr, size_t errlen)
{
	struct att_tpm_pub p;
	struct att_ek id;
	int r = read_public(d, h, ek->pub, &ek->pub_len, reterr, errlen);

	if (r == 0)
		r = pub_identity(ek->pub, ek->pub_len, &p, &ek->spki, &ek->spki_len, &id, reterr, errlen);
	if (r < 0) {
		if (transient)
			Esys_FlushContext(d->ctx, h);
		else
			Esys_TR_Close(d->ctx, &h);
		return r;
	}
	d->ek = h;
	d->ek_transient = transient;
	d->ek_policy = !(p.attrs & ATT_TPMA_USERWITHAUTH);
	d->ek_name_alg = p.name_alg;
	ek->handle = handle;
	if (!ek->kind[0])
		snprintf(ek->kind, sizeof(ek->kind), "%s", id.key_type);
	att_tpm_pub_release(&p);
	return 0;
}

/* A persistent EK whose key has fingerprint fp (or, fp NULL, the first
 * EK-shaped key of the wanted type).  1 adopted, 0 none. */
static int find_persistent(struct att_tpmdev *d, const char *fp, const char *kind_prefix, struct att_tpm_ek *ek,
			   char *reterr, size_t errlen)
{
	uint32_t h[256];
	size_t n = 0;
	int r = list_handles(d, PERSISTENT_EK_FIRST, PERSISTENT_EK_LAST, h, ATT_ARRAY_SIZE(h), &n, reterr, errlen);

	for (size_t i = 0; r == 0 && i < n; i++) {
		ESYS_TR t = ESYS_TR_NONE;
		uint8_t pub[ATT_TPM_MAX_PUBLIC];
		size_t pl = 0;
		struct att_tpm_pub p;
		struct att_ek id;
		char why[256];
		bool match;

		if (Esys_TR_FromTPMPublic(d->ctx, h[i], ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &t) != TSS2_RC_SUCCESS)
			continue;
		if (read_public(d, t, pub, &pl, why, sizeof(why)) < 0 ||
		    pub_identity(pub, pl, &p, NULL, NULL, &id, why, sizeof(why)) < 0) {
			Esys_TR_Close(d->ctx, &t);
			continue;
		}
		match = att_tpm_pub_check_ek(&p, why, sizeof(why)) == 0 &&
			(fp ? strcmp(id.fp, fp) == 0 : strncmp(id.key_type, kind_prefix, strlen(kind_prefix)) == 0);
		att_tpm_pub_release(&p);
		if (!match) {
			Esys_TR_Close(d->ctx, &t);
			continue;
		}
		r = adopt_ek(d, t, false, h[i], ek, reterr, errlen);
		return r < 0 ? r : 1;
	}
	return r;
}

/* TCG EK Credential Profile, templates L-1 (RSA-2048) and L-2 (P-256):
 * the key a TPM derives from its endorsement seed for its certificate. */
static const uint8_t policy_a_sha256[32] = {
	0x83, 0x71, 0x97, 0x67, 0x44, 0x84, 0xb3, 0xf8, 0x1a, 0x90, 0xcc, 0x8d, 0x46, 0xa5, 0xd7, 0x24,
	0xfd, 0x52, 0xd7, 0x6e, 0x06, 0x52, 0x0b, 0x64, 0xf2, 0xa1, 0xda, 0x1b, 0x33, 0x14, 0x69, 0xaa,
};

static void ek_template(bool rsa, TPM2B_PUBLIC *t)
{
	memset(t, 0, sizeof(*t));
	t->publicArea.type = rsa ? TPM2_ALG_RSA : TPM2_ALG_ECC;
	t->publicArea.nameAlg = TPM2_ALG_SHA256;
	t->publicArea.objectAttributes = TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT |
					 TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_ADMINWITHPOLICY |
					 TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT;
	t->publicArea.authPolicy.size = sizeof(policy_a_sha256);
	memcpy(t->publicArea.authPolicy.buffer, policy_a_sha256, sizeof(policy_a_sha256));
	if (rsa) {
		TPMS_RSA_PARMS *p = &t->publicArea.parameters.rsaDetail;

		p->symmetric.algorithm = TPM2_ALG_AES;
		p->symmetric.keyBits.aes = 128;
		p->symmetric.mode.aes = TPM2_ALG_CFB;
		p->scheme.scheme = TPM2_ALG_NULL;
		p->keyBits = 2048;
		p->exponent = 0;
		t->publicArea.unique.rsa.size = 256;
	} else {
		TPMS_ECC_PARMS *p = &t->publicArea.parameters.eccDetail;

		p->symmetric.algorithm = TPM2_ALG_AES;
		p->symmetric.keyBits.aes = 128;
		p->symmetric.mode.aes = TPM2_ALG_CFB;
		p->scheme.scheme = TPM2_ALG_NULL;
		p->curveID = TPM2_ECC_NIST_P256;
		p->kdf.scheme = TPM2_ALG_NULL;
		t->publicArea.unique.ecc.x.size = 32;
		t->publicArea.unique.ecc.y.size = 32;
	}
}

static int create_ek(struct att_tpmdev *d, bool rsa, struct att_tpm_ek *ek, char *reterr, size_t errlen)
{
	TPM2B_SENSITIVE_CREATE sens = { 0 };
	TPM2B_DATA outside = { 0 };
	TPML_PCR_SELECTION pcrs = { 0 };
	TPM2B_PUBLIC tmpl;
	ESYS_TR h = ESYS_TR_NONE;
	TSS2_RC rc;

	ek_template(rsa, &tmpl);
	rc = Esys_CreatePrimary(d->ctx, ESYS_TR_RH_ENDORSEMENT, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens,
				&tmpl, &outside, &pcrs, &h, NULL, NULL, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "TPM2_CreatePrimary(EK template)");
	return adopt_ek(d, h, true, 0, ek, reterr, errlen);
}

static const struct ek_slot {
	uint32_t nv;
	const char *kind;
	bool template_ok;	/* low range: the TCG default template recreates it */
} slots[] = {
	{ NV_EK_RSA2048, "rsa-2048", true },
	{ NV_EK_P256, "ecc-p256", true },
	{ NV_EK_P384, "ecc-p384", false },
};

/* The EK of a certificate in NV slot s: 1 adopted, 0 not usable here. */
static int ek_from_cert(struct att_tpmdev *d, const struct ek_slot *s, struct att_tpm_ek *ek, char *reterr,
			size_t errlen)
{
	struct att_ek id;
	char why[256];
	int r = nv_read(d, s->nv, &ek->cert, &ek->cert_len, reterr, errlen);

	if (r < 0)
		return r;
	if (att_ek_parse_bytes(ek->cert, ek->cert_len, "cert", time(NULL), &id, why, sizeof(why)) < 0)
		return FAIL(ATT_E_INVAL, "EK certificate in NV 0x%08x does not parse: %s", s->nv, why);
	snprintf(ek->kind, sizeof(ek->kind), "%s", id.key_type);
	ek->cert_nv = s->nv;
	r = find_persistent(d, id.fp, NULL, ek, reterr, errlen);
	if (r != 0)
		return r;
	if (!s->template_ok)
		return 0;
	r = create_ek(d, strcmp(s->kind, "rsa-2048") == 0, ek, reterr, errlen);
	if (r < 0)
		return r;
	{
		struct att_ek made;

		if (att_ek_parse_bytes(ek->spki, ek->spki_len, "pub", time(NULL), &made, why, sizeof(why)) < 0 ||
		    strcmp(made.fp, id.fp) != 0)
			return FAIL(ATT_E_INVAL, "the EK made from the TCG template is not the key of the certificate in NV 0x%08x",
				    s->nv);
	}
	return 1;
}

int att_tpmdev_ek(struct att_tpmdev *d, enum att_ek_pref pref, struct att_tpm_ek *ret, char *reterr, size_t errlen)
{
	uint32_t nv[256];
	size_t nn = 0;
	struct att_tpm_ek ek;
	int r;

	memset(&ek, 0, sizeof(ek));
	r = list_handles(d, 0x01c00000u, 0x01c000ffu, nv, ATT_ARRAY_SIZE(nv), &nn, reterr, errlen);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ATT_ARRAY_SIZE(slots); i++) {
		const struct ek_slot *s = &slots[i];

		if ((pref == ATT_EK_RSA && strncmp(s->kind, "rsa", 3) != 0) ||
		    (pref == ATT_EK_ECC && strncmp(s->kind, "ecc", 3) != 0) || !has_handle(nv, nn, s->nv))
			continue;
		r = ek_from_cert(d, s, &ek, reterr, errlen);
		if (r == 1)
			goto found;
		att_tpm_ek_release(&ek);
		if (r < 0)
			return r;
	}
	/* no certificate: the EK public area stands alone */
	r = find_persistent(d, NULL, pref == ATT_EK_ECC ? "ecc" : pref == ATT_EK_RSA ? "rsa" : "", &ek, reterr, errlen);
	if (r == 0)
		r = create_ek(d, pref != ATT_EK_ECC, &ek, reterr, errlen);
	if (r < 0) {
		att_tpm_ek_release(&ek);
		return r;
	}
found:
	r = read_chain(d, &ek, reterr, errlen);
	if (r < 0) {
		att_tpm_ek_release(&ek);
		return r;
	}
	*ret = ek;
	return 0;
}

int att_tpmdev_ek_auth(struct att_tpmdev *d, ESYS_TR *ret, char *reterr, size_t errlen)
{
	TPMT_SYM_DEF sym = { .algorithm = TPM2_ALG_NULL };
	ESYS_TR s = ESYS_TR_NONE;
	TSS2_RC rc;

	if (!d->ek_policy) {
		*ret = ESYS_TR_PASSWORD;
		return 0;
	}
	rc = Esys_StartAuthSession(d->ctx, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
				   TPM2_SE_POLICY, &sym, d->ek_name_alg, &s);
	if (rc != TSS2_RC_SUCCESS)
		return TPM_FAIL(rc, "TPM2_StartAuthSession");
	rc = Esys_PolicySecret(d->ctx, ESYS_TR_RH_ENDORSEMENT, s, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, NULL,
			       NULL, NULL, 0, NULL, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		Esys_FlushContext(d->ctx, s);
		return TPM_FAIL(rc, "TPM2_PolicySecret(endorsement)");
	}
	*ret = s;
	return 0;
}

void att_tpmdev_ek_auth_done(struct att_tpmdev *d, ESYS_TR s)
{
	if (s != ESYS_TR_PASSWORD && s != ESYS_TR_NONE)
		Esys_FlushContext(d->ctx, s);
}
