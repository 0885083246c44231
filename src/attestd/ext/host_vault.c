/* host_vault.c - the secret vault's host functions of the extension ABI
 * (secret_put, secret_delete): writes as the actor EXTENSION:<name>. */
#include <stdio.h>
#include <string.h>

#include "base/err.h"
#include "ext/ext.h"
#include "obs/log.h"
#include "vault/vault.h"

static int to_ext(int r)
{
	switch (r) {
	case 0: return ATT_EXT_OK;
	case ATT_E_INVAL:
	case ATT_E_PARSE: return ATT_EXT_INVALID;
	case ATT_E_CONFLICT: return ATT_EXT_CONFLICT;
	case ATT_E_NOTFOUND: return ATT_EXT_NOTFOUND;
	case ATT_E_DB:
	case ATT_E_UNAVAILABLE: return ATT_EXT_UNAVAILABLE;
	default: return ATT_EXT_ERROR;
	}
}

static void ext_actor(struct att_ext *ext, char name[64], struct att_actor *ret)
{
	snprintf(name, 64, "EXTENSION:%s", ext->info->name);
	memset(ret, 0, sizeof(*ret));
	ret->name = name;
	ret->authenticated = true;
}

int att_ext_h_secret_put(struct att_ext *ext, const char *machine_id, const char *name, const uint8_t *value,
			 size_t len, int64_t ttl_seconds)
{
	struct att_secret_input in = { .name = name, .value = value, .len = len, .ttl_seconds = ttl_seconds };
	struct att_actor actor;
	char who[64], err[256];
	json_t *meta = NULL;
	bool created = false;
	int r;

	if (!machine_id || !name || !value || ttl_seconds < 0)
		return ATT_EXT_INVALID;
	ext_actor(ext, who, &actor);
	r = att_vault_put(ext->svc, machine_id, &in, &actor, &meta, &created, err, sizeof(err));
	json_decref(meta);
	if (r < 0)
		att_log_warning("attestd.secrets", "extension %s: secret '%.64s' for machine %.64s not written: %s",
				ext->info->name, name, machine_id, err);
	return to_ext(r);
}

int att_ext_h_secret_delete(struct att_ext *ext, const char *machine_id, const char *name)
{
	struct att_actor actor;
	char who[64], err[256];
	int r;

	if (!machine_id || !name)
		return ATT_EXT_INVALID;
	ext_actor(ext, who, &actor);
	r = att_vault_delete(ext->svc, machine_id, name, NULL, &actor, err, sizeof(err));
	return to_ext(r);
}
