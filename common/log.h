/*
 * log.h - leveled logging to stderr, one line per call.
 *
 * Any thread: each line is written with a single write(2). The level and the file are set once at
 * startup.
 */
#ifndef BOOKRANK_LOG_H
#define BOOKRANK_LOG_H

typedef enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF } log_level;

void log_set_level(log_level level);
log_level log_get_level(void);
/* "debug", "info", "warn", "error", "off"; returns -1 when unknown. */
int log_level_parse(const char *name);
/* Sends the log to path (appending, created 0640) instead of stderr. 0, or -1 with errno set.
 * Call once at startup, before other threads log. */
int log_open_file(const char *path);
/* Reopens that file under the same descriptor (after logrotate moved it): one atomic dup2, so
 * lines written meanwhile by other threads go to one file or the other, never nowhere. Any
 * thread; 0 when there is no log file. 0, or -1 with errno set (the old file stays in use). */
int log_reopen(void);
void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
