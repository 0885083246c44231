/* schematic.h - Talos Image Factory schematics, computed locally.
 *
 * The ID is lowercase hex SHA-256 of the canonical YAML the factory
 * itself would produce (go-yaml, indent 4, legacy quoting, field order
 * of the Go struct, empty fields omitted).  See
 * shared/reference/talos.md section 1.3 and docs/talos.md. */
#ifndef ATT_TALOS_SCHEMATIC_H
#define ATT_TALOS_SCHEMATIC_H

#include <stdbool.h>
#include <stddef.h>

struct att_schematic_meta {
	unsigned key;
	const char *value;
};

struct att_schematic {
	const char *overlay_image;
	const char *overlay_name;
	const char *const *kernel_args;
	size_t n_kernel_args;
	const struct att_schematic_meta *meta;
	size_t n_meta;
	const char *const *extensions;	/* emitted in the given order */
	size_t n_extensions;
	const char *bootloader;		/* NULL/"" = auto (omitted) */
	const char *secureboot_enroll_keys;
	bool secureboot_wellknown_certs;
	unsigned disk_sector_size;
};

/* Canonical YAML (caller frees).  ATT_E_INVAL for values this emitter
 * cannot quote unambiguously (multi-line strings). */
int att_schematic_yaml(const struct att_schematic *s, char **ret_yaml);
/* ID of canonical YAML bytes. */
void att_schematic_id(const char *yaml, char out[65]);
/* go-yaml legacy scalar quoting of one string (caller frees). */
int att_schematic_quote(const char *s, char **ret);

#endif
