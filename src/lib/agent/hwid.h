/* hwid.h - the hardware identity the agent reports (hw_uuid, hw_serial,
 * hw_product, hw_mac): DMI from sysfs and the MAC of the first physical
 * network interface (one with a device behind it, Ethernet type, in name
 * order).  Values are trimmed, printable ASCII, at most 255 characters;
 * what cannot be read is "" (and not sent). */
#ifndef ATT_AGENT_HWID_H
#define ATT_AGENT_HWID_H

struct att_hwid {
	char uuid[256];
	char serial[256];
	char product[256];
	char mac[18];
};

/* root: "" for the running system, or a directory holding sys/... (tests). */
void att_hwid_collect(const char *root, struct att_hwid *ret);

#endif
