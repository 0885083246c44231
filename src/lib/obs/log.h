/* log.h - structured logging.
 *
 * Text format (default), as the seeds' Log Reference describes:
 *   2026-05-14T17:05:00.123Z INFO attestd.registration — New machine registered: ...
 * JSON lines (ITL_LOG_FORMAT=json):
 *   {"ts":"...","level":"INFO","logger":"attestd.registration","msg":"..."}
 * Every line is written with one write(2), so lines from threads never
 * interleave.  The level check happens before arguments are formatted. */
#ifndef ATT_OBS_LOG_H
#define ATT_OBS_LOG_H

enum att_log_level {
	ATT_LOG_DEBUG = 10,
	ATT_LOG_INFO = 20,
	ATT_LOG_WARNING = 30,
	ATT_LOG_ERROR = 40,
};

enum att_log_format {
	ATT_LOG_TEXT,
	ATT_LOG_JSON,
};

extern int att_log_min_level;

void att_log_setup(enum att_log_level min, enum att_log_format fmt, int fd);
void att_log_write(enum att_log_level lvl, const char *logger, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define att_log(lvl, logger, ...)                               \
	do {                                                    \
		if ((lvl) >= att_log_min_level)                 \
			att_log_write((lvl), (logger), __VA_ARGS__); \
	} while (0)

#define att_log_debug(logger, ...) att_log(ATT_LOG_DEBUG, logger, __VA_ARGS__)
#define att_log_info(logger, ...) att_log(ATT_LOG_INFO, logger, __VA_ARGS__)
#define att_log_warning(logger, ...) att_log(ATT_LOG_WARNING, logger, __VA_ARGS__)
#define att_log_error(logger, ...) att_log(ATT_LOG_ERROR, logger, __VA_ARGS__)

#endif
