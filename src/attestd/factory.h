/* factory.h - announcing the schematic to the Talos Image Factory in the
 * background.
 *
 * The schematic depends only on the configuration, so its ID and URLs
 * are computed locally in every request; telling the factory about it is
 * an HTTP call that may hang for ITL_FACTORY_TIMEOUT_SECONDS and is
 * therefore never made by a request.  A leased worker ("factory") posts
 * the schematic at start-up and retries every ITL_SWEEP_INTERVAL_SECONDS
 * until the factory acknowledges it; a registration while it is still
 * unacknowledged only kicks the worker (never more often than every
 * FACTORY_MIN_RETRY_SECONDS). */
#ifndef ATTESTD_FACTORY_H
#define ATTESTD_FACTORY_H

struct att_svc;

/* Start the worker (nothing when ITL_ISO_URL is set); 0 or a negative att_err. */
int att_factory_start(const struct att_svc *svc);
/* Ask for another attempt soon if the factory has not acknowledged yet.
 * Never blocks on the network or the database. */
void att_factory_kick(void);
void att_factory_stop(void);

#endif
