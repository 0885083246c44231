/* tpmdev-internal.h - what tpmdev.c and tpmak.c share; tss2 types. */
#ifndef ATT_AGENT_TPMDEV_INTERNAL_H
#define ATT_AGENT_TPMDEV_INTERNAL_H

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#include "agent/tpmdev.h"

struct att_tpmdev {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *ctx;
	ESYS_TR ek;		/* ESYS_TR_NONE until att_tpmdev_ek */
	bool ek_transient;	/* flush at close */
	bool ek_policy;		/* no userWithAuth: PolicySecret(endorsement) */
	TPMI_ALG_HASH ek_name_alg;
	ESYS_TR ak;
	ESYS_TR ckey;		/* the client-certificate key (tpmkey.c) */
	struct att_tpm_pub ak_pub;	/* parsed, for the local quote check */
};

#define TPM_FAIL(rc, what) \
	(snprintf(reterr, errlen, "%s: %s", (what), Tss2_RC_Decode(rc)), ATT_E_IO)

/* An authorization for the EK: ESYS_TR_PASSWORD, or a fresh policy
 * session satisfied with PolicySecret(TPM_RH_ENDORSEMENT) that the
 * caller flushes with ek_auth_done. */
int att_tpmdev_ek_auth(struct att_tpmdev *d, ESYS_TR *ret, char *reterr, size_t errlen);
void att_tpmdev_ek_auth_done(struct att_tpmdev *d, ESYS_TR s);

#endif
