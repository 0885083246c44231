/* state.h - what the node agent remembers between polls and reboots, in
 * its state directory (--state-dir, default /var/lib/itl-tpm):
 *
 *   state.json   the record below (JSON, mode 0600)
 *   state.lock   held (flock) by the running agent
 * No key material: the AK is derived again from the TPM (tpmdev.h), so a
 * node that loses this directory finds its machine and AK again.
 *
 * Every file is written atomically: a temporary file in the same
 * directory, fsync, rename, fsync of the directory — a crash leaves the
 * old or the new version, never half of one.  A state.json that does not
 * parse is an error naming the file (never silently reset). */
#ifndef ATT_AGENT_STATE_H
#define ATT_AGENT_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/url.h"

#define ATT_AGENT_STATE_MAX (64 * 1024)

struct att_agent_state {
	char server[ATT_URL_MAX];	/* the service the agent last talked to */
	char machine_id[65];
	char status[24];		/* last status the service reported */
	char role[32];
	char hostname[254];
	char ek_fingerprint[97];	/* canonical: SHA-384 of the EK's SPKI */
	char ek_kind[16];		/* "rsa-2048", "ecc-p256", "ecc-p384" */
	bool ak_bound;			/* the service accepted the AK (credential activation) */
	char ak_name[2 * 66 + 1];
	char last_attest_at[40];	/* ISO UTC of the last answered attest */
	char last_action[16];		/* last action acted on */
	char last_action_at[40];
	char last_error[256];		/* "" after a successful poll */
	int64_t reset_count;		/* TPM resetCount of the last quote, -1 unknown */
	int64_t restart_count;
	char config_sha256[65];		/* of the last config applied */
	char config_applied_at[40];
	char pending_config_url[ATT_URL_MAX];	/* a config fetched but not yet applied */
	bool locked;
	bool revoked;
	char wipe_started_at[40];	/* the reset command ran (once) */
	int wipe_exit;			/* its exit status, -1 unknown */
	uint64_t polls;
};

void att_agent_state_init(struct att_agent_state *s);

/* Create the directory (0700) if needed.  ATT_E_IO with a reason. */
int att_agent_state_dir(const char *dir, char *reterr, size_t errlen);

/* Read dir/state.json; a missing file is a fresh state (0). */
int att_agent_state_load(const char *dir, struct att_agent_state *ret, char *reterr, size_t errlen);
int att_agent_state_save(const char *dir, const struct att_agent_state *s, char *reterr, size_t errlen);
/* Parse / render the JSON (tests, fuzzing). */
int att_agent_state_parse(const char *json, size_t len, struct att_agent_state *ret, char *reterr, size_t errlen);
char *att_agent_state_render(const struct att_agent_state *s);

/* Atomic write of dir/name with the given mode. */
int att_agent_file_write(const char *dir, const char *name, const void *data, size_t len, int mode, char *reterr,
			 size_t errlen);
/* write(2) until all of p is written (EINTR retried); 0 or -1 with errno. */
int att_agent_write_all(int fd, const void *p, size_t n);

/* Read dir/name, at most max bytes (ATT_E_LIMIT beyond); ATT_E_NOTFOUND
 * when missing.  Caller frees *ret (NUL-terminated). */
int att_agent_file_read(const char *dir, const char *name, size_t max, uint8_t **ret, size_t *ret_len,
			char *reterr, size_t errlen);

/* Take dir/state.lock (exclusive, non-blocking): the fd to keep open, or
 * ATT_E_CONFLICT when another agent holds it. */
int att_agent_state_lock(const char *dir, int *ret_fd, char *reterr, size_t errlen);

#endif
