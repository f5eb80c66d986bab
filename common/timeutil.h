/*
 * timeutil.h - wall and monotonic clocks, ISO 8601 UTC and duration strings.
 *
 * Pure functions: any thread. Times are milliseconds since the Unix epoch (UTC).
 */
#ifndef BOOKRANK_TIMEUTIL_H
#define BOOKRANK_TIMEUTIL_H

#include <stddef.h>
#include <stdint.h>

int64_t time_now_ms(void);  /* wall clock */
int64_t time_mono_ms(void); /* monotonic, for intervals */
double time_mono_s(void);

/* "2026-11-24T12:00:05Z" (seconds precision) into out (at least 21 bytes). */
void time_format_iso(int64_t ms, char *out, size_t outlen);
/* Parses ISO 8601: "2026-11-24", "2026-11-24T12:00", "...:05", optional fraction, "Z" or
 * "+hh:mm"/"-hh:mm" offset (no offset = UTC). Returns 0 and *ms, or -1 when invalid. */
int time_parse_iso(const char *s, int64_t *ms);
/* "90s", "30m", "6h", "1d", "1h30m", plain seconds "3600". Returns 0 and *seconds > 0, or -1. */
int time_parse_duration(const char *s, int64_t *seconds);

#endif
