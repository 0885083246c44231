/* machineconfig.h - per-machine Talos MachineConfig from role base configs.
 *
 * Base file: <cache_dir>/<role>-final.yaml (controlplane, worker-infra,
 * worker-app), a single- or multi-document Talos config.  The v1alpha1
 * document (the one with a top-level "machine" key) gets the
 * reference's patches:
 *   machine.install.image          set if absent (installer_image)
 *   machine.network.hostname       the approved hostname
 *   machine.network.interfaces[0]  assigned address appended, or
 *                                  {interface: eth0, addresses: [ip], routes: []}
 *   machine.nodeLabels             itl.io/machine-id, itl.io/tpm-ek (fp[:16]),
 *                                  itl.io/attested: "true"
 *   machine.nodeAnnotations        itl.io/tpm-ek-full, itl.io/machine-id
 * Every value we insert is a double-quoted scalar, so no input can
 * change the document's structure. */
#ifndef ATT_TALOS_MACHINECONFIG_H
#define ATT_TALOS_MACHINECONFIG_H

#include <stddef.h>

struct att_mc_file {
	const char *path;
	const char *content;
	int permissions;	/* e.g. 0444 */
};

struct att_mc_params {
	const char *role;
	const char *machine_id;
	const char *ek_fingerprint;
	const char *hostname;		/* may be NULL */
	const char *assigned_ip;	/* CIDR; may be NULL */
	const char *installer_image;
	const struct att_mc_file *files;	/* appended to machine.files (op: create) */
	size_t nfiles;
};

#define ATT_MC_MAX_BASE (4 * 1024 * 1024)

/* ATT_E_UNAVAILABLE when the base file is missing or unreadable,
 * ATT_E_PARSE when it is not a usable Talos config. */
int att_machineconfig_render(const char *cache_dir, const struct att_mc_params *p,
			     char **ret_yaml, char *reterr, size_t errlen);
/* Same from a base config already in memory (tests, fuzzing). */
int att_machineconfig_patch(const char *base, size_t len, const struct att_mc_params *p,
			    char **ret_yaml, char *reterr, size_t errlen);

/* The Talos extension service the node agent runs as (packaging/talos-extension/). */
#define ATT_MC_AGENT_SERVICE "itl-tpm-register"

/* The partial config served by GET /api/v1/config to machines booting
 * the generic ISO: a single ExtensionServiceConfig document for the
 * agent's extension carrying ITL_REG_URL=<service_url>.  Talos loads and
 * validates it (name set, environment non-empty), finds no machine
 * document and continues into maintenance mode (talos.md 2.4-2.5). */
int att_machineconfig_partial(const char *service_url, char **ret_yaml);

#endif
