#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/text.h"
#include "base/util.h"
#include "obs/log.h"

int att_log_min_level = ATT_LOG_INFO;
static enum att_log_format log_format = ATT_LOG_TEXT;
static int log_fd = 2;

void att_log_setup(enum att_log_level min, enum att_log_format fmt, int fd)
{
	att_log_min_level = (int)min;
	log_format = fmt;
	log_fd = fd;
}

static const char *level_name(enum att_log_level l)
{
	switch (l) {
	case ATT_LOG_DEBUG: return "DEBUG";
	case ATT_LOG_INFO: return "INFO";
	case ATT_LOG_WARNING: return "WARNING";
	default: return "ERROR";
	}
}

/* JSON-escape s (UTF-8) into b; control characters (C0, DEL, C1) become \u00XX. */
static void json_escape(struct att_buf *b, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			(void)att_buf_append(b, e, 2);
		} else if (c < 0x20 || c == 0x7F) {
			(void)att_buf_printf(b, "\\u%04x", c);
		} else if (c == 0xC2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9F) {
			(void)att_buf_printf(b, "\\u%04x", (unsigned char)s[1]);
			s++;
		} else {
			(void)att_buf_append(b, s, 1);
		}
	}
}

void att_log_write(enum att_log_level lvl, const char *logger, const char *fmt, ...)
{
	struct att_buf b;
	struct att_time now = att_now();
	char ts[32];
	char *msg = NULL;
	va_list ap;
	ssize_t w;

	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	if (!msg)
		return;
	if (log_format == ATT_LOG_JSON)
		att_utf8_scrub(msg);	/* the JSON line stays JSON whatever a client sent */
	/* millisecond precision, explicit UTC */
	now.usec = now.usec / 1000 * 1000;
	att_time_iso(now, ts);
	if (strlen(ts) == 19)
		memcpy(ts + 19, ".000", 5);
	else
		ts[23] = '\0';

	att_buf_init(&b, 65536);
	if (log_format == ATT_LOG_JSON) {
		(void)att_buf_printf(&b, "{\"ts\":\"%sZ\",\"level\":\"%s\",\"logger\":\"", ts,
				     level_name(lvl));
		json_escape(&b, logger);
		(void)att_buf_puts(&b, "\",\"msg\":\"");
		json_escape(&b, msg);
		(void)att_buf_puts(&b, "\"}\n");
	} else {
		char *esc = att_text_escape(msg);

		/* one event per line, and nothing a terminal would act on: newlines,
		 * ESC and every other control character are written escaped */
		(void)att_buf_printf(&b, "%sZ %s %s \u2014 ", ts, level_name(lvl), logger);
		(void)att_buf_puts(&b, esc ? esc : "(out of memory)");
		free(esc);
		(void)att_buf_puts(&b, "\n");
	}
	if (b.p)
		w = write(log_fd, b.p, b.len);
	(void)w;
	att_buf_release(&b);
	free(msg);
}
