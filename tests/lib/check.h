/*
 * check.h - the unit tests' assertions. Each CHECK prints one TAP-style line ("ok - ..." or
 * "not ok - ...") that tests/run.sh counts; check_done() prints this program's totals and
 * returns its exit status.
 */
#ifndef BOOKRANK_CHECK_H
#define BOOKRANK_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_passed, check_failed;

static inline int check_report(int ok, const char *file, int line, const char *what)
{
    if (ok) {
        check_passed++;
        printf("ok - %s\n", what);
    } else {
        check_failed++;
        printf("not ok - %s (%s:%d)\n", what, file, line);
    }
    fflush(stdout);
    return ok;
}

#define CHECK(cond, what) check_report(!!(cond), __FILE__, __LINE__, what)

#define CHECK_STR(got, want, what)                                                                 \
    do {                                                                                           \
        const char *g_ = (got), *w_ = (want);                                                      \
        if (!check_report(g_ && w_ ? strcmp(g_, w_) == 0 : g_ == w_, __FILE__, __LINE__, what))    \
            printf("#   got  '%s'\n#   want '%s'\n", g_ ? g_ : "(null)", w_ ? w_ : "(null)");      \
    } while (0)

#define CHECK_INT(got, want, what)                                                                 \
    do {                                                                                           \
        long long g_ = (long long)(got), w_ = (long long)(want);                                   \
        if (!check_report(g_ == w_, __FILE__, __LINE__, what))                                     \
            printf("#   got  %lld\n#   want %lld\n", g_, w_);                                      \
    } while (0)

static inline int check_done(void)
{
    printf("# %d passed, %d failed\n", check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
