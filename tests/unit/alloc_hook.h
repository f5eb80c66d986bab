/*
 * alloc_hook.h - a counting malloc for the allocation-failure test (test_alloc.c): include it in
 * exactly one test program, which then owns malloc, calloc, realloc and free for the whole
 * process (the project's code, SQLite, jansson and libc itself call them through the
 * interposable symbols).
 *
 * Every call is counted; alloc_fail_after(n, mode) makes the n-th allocation from now fail
 * (return NULL): only that one (ALLOC_FAIL_ONCE) or that one and every later one until
 * alloc_disarm() (ALLOC_FAIL_FROM). alloc_live() is the number of blocks allocated and not yet
 * freed, for leak checks. alloc_suspend()/alloc_resume() bracket test code that runs inside an
 * armed call (a callback) and must neither be counted nor fail.
 *
 * Without ASan the real allocator is glibc's (__libc_malloc and friends; glibc's own strdup,
 * strndup, asprintf... call the interposed malloc). Under ASan the executable's malloc still
 * wins over the runtime's, and forwards to it: to __interceptor_malloc and friends when the
 * runtime has them (GCC, older clang), else to the next definition found with dlsym (calls made
 * while dlsym runs are served from a small static arena). alloc_hook_sound() says whether that
 * worked (the test skips itself otherwise). ASan's strdup/strndup interceptors allocate without
 * calling malloc, so under ASan this file defines those two as well.
 */
#ifndef BOOKRANK_ALLOC_HOOK_H
#define BOOKRANK_ALLOC_HOOK_H

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* ThreadSanitizer owns malloc in a way these hooks cannot share: under it the hooks are left
 * out and the test skips itself (it is about allocation failures, not threads). */
#if defined(__SANITIZE_THREAD__)
#define ALLOC_HOOK_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define ALLOC_HOOK_TSAN 1
#endif
#endif

#if defined(__SANITIZE_ADDRESS__)
#define ALLOC_HOOK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ALLOC_HOOK_ASAN 1
#endif
#endif

enum { ALLOC_FAIL_ONCE = 0, ALLOC_FAIL_FROM = 1 };

/* The hooks run before the sanitizer runtime is initialised (the dynamic loader and the runtime
 * itself allocate): they must not be instrumented. */
#ifdef ALLOC_HOOK_ASAN
#define ALLOC_NOSAN __attribute__((no_sanitize("address", "undefined")))
#else
#define ALLOC_NOSAN
#endif

static long alloc_calls;   /* allocation calls counted so far */
static long alloc_fail_at; /* the call number that fails first; 0: none */
static int alloc_fail_mode;
static long alloc_injected; /* failures injected since the last alloc_fail_after */
static long alloc_live_n;   /* blocks allocated and not freed */
static int alloc_suspended;

#define ALLOC_ADD(p, v) __atomic_add_fetch(p, v, __ATOMIC_RELAXED)
#define ALLOC_GET(p) __atomic_load_n(p, __ATOMIC_RELAXED)

static inline void alloc_fail_after(long n, int mode)
{
    alloc_injected = 0;
    alloc_fail_mode = mode;
    __atomic_store_n(&alloc_fail_at, ALLOC_GET(&alloc_calls) + n, __ATOMIC_RELAXED);
}

static inline void alloc_disarm(void)
{
    __atomic_store_n(&alloc_fail_at, 0, __ATOMIC_RELAXED);
}

static inline long alloc_count(void)
{
    return ALLOC_GET(&alloc_calls);
}

static inline long alloc_live(void)
{
    return ALLOC_GET(&alloc_live_n);
}

static inline long alloc_failures(void)
{
    return ALLOC_GET(&alloc_injected);
}

static inline void alloc_suspend(void)
{
    ALLOC_ADD(&alloc_suspended, 1);
}

static inline void alloc_resume(void)
{
    ALLOC_ADD(&alloc_suspended, -1);
}

/* Counts one allocation call; 1 when it must fail. */
ALLOC_NOSAN static inline int alloc_should_fail(void)
{
    if (ALLOC_GET(&alloc_suspended))
        return 0;
    long k = ALLOC_ADD(&alloc_calls, 1);
    long at = ALLOC_GET(&alloc_fail_at);
    if (at && (k == at || (alloc_fail_mode == ALLOC_FAIL_FROM && k > at))) {
        ALLOC_ADD(&alloc_injected, 1);
        return 1;
    }
    return 0;
}

/* ---- the real allocator ------------------------------------------------------------------- */

#ifndef ALLOC_HOOK_ASAN

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

#define real_malloc __libc_malloc
#define real_calloc __libc_calloc
#define real_realloc __libc_realloc
#define real_free __libc_free
static inline int alloc_from_boot(const void *p)
{
    (void)p;
    return 0;
}

#else /* ASan */

#include <dlfcn.h>

static void *(*next_malloc)(size_t);
static void *(*next_calloc)(size_t, size_t);
static void *(*next_realloc)(void *, size_t);
static void (*next_free)(void *);
static int alloc_resolving;
static _Alignas(16) unsigned char alloc_boot[1 << 16];
static size_t alloc_boot_used;

ALLOC_NOSAN static inline int alloc_from_boot(const void *p)
{
    const unsigned char *u = p;
    return u >= alloc_boot && u < alloc_boot + sizeof alloc_boot;
}

/* Bump allocation while dlsym runs (it may allocate); never freed. */
ALLOC_NOSAN static void *alloc_boot_get(size_t size, int zero)
{
    size_t need = (size + 15) & ~(size_t)15;
    if (need < size || need > sizeof alloc_boot - alloc_boot_used - 16)
        return NULL;
    unsigned char *p = alloc_boot + alloc_boot_used + 16;
    memcpy(p - 16, &size, sizeof size);
    alloc_boot_used += need + 16;
    if (zero)
        memset(p, 0, size);
    return p;
}

/* The sanitizer runtime's own entry points (GCC's libasan, clang's compiler-rt up to 16); a
 * runtime linked into the executable (clang's default) is not "next" to it for dlsym. */
extern void *__interceptor_malloc(size_t) __attribute__((weak));
extern void *__interceptor_calloc(size_t, size_t) __attribute__((weak));
extern void *__interceptor_realloc(void *, size_t) __attribute__((weak));
extern void __interceptor_free(void *) __attribute__((weak));
/* Whether p belongs to ASan's heap (sanitizer/allocator_interface.h). */
extern int __sanitizer_get_ownership(const volatile void *p) __attribute__((weak));

ALLOC_NOSAN static void alloc_resolve(void)
{
    if (next_malloc || alloc_resolving)
        return;
    if (__interceptor_malloc && __interceptor_calloc && __interceptor_realloc &&
        __interceptor_free) {
        next_free = __interceptor_free;
        next_calloc = __interceptor_calloc;
        next_realloc = __interceptor_realloc;
        next_malloc = __interceptor_malloc;
        return;
    }
    alloc_resolving = 1;
    void *f = dlsym(RTLD_NEXT, "free"), *c = dlsym(RTLD_NEXT, "calloc"),
         *r = dlsym(RTLD_NEXT, "realloc"), *m = dlsym(RTLD_NEXT, "malloc");
    memcpy(&next_free, &f, sizeof f);
    memcpy(&next_calloc, &c, sizeof c);
    memcpy(&next_realloc, &r, sizeof r);
    memcpy(&next_malloc, &m, sizeof m);
    alloc_resolving = 0;
    if (!next_malloc || !next_calloc || !next_realloc || !next_free)
        abort();
}

ALLOC_NOSAN static void *real_malloc(size_t size)
{
    alloc_resolve();
    return next_malloc ? next_malloc(size) : alloc_boot_get(size, 0);
}

ALLOC_NOSAN static void *real_calloc(size_t n, size_t size)
{
    alloc_resolve();
    if (next_calloc)
        return next_calloc(n, size);
    return size && n > (size_t)-1 / size ? NULL : alloc_boot_get(n * size, 1);
}

ALLOC_NOSAN static void *real_realloc(void *p, size_t size)
{
    alloc_resolve();
    if (alloc_from_boot(p)) {
        size_t old;
        memcpy(&old, (unsigned char *)p - 16, sizeof old);
        void *q = real_malloc(size);
        if (q)
            memcpy(q, p, old < size ? old : size);
        return q;
    }
    return next_realloc ? next_realloc(p, size) : alloc_boot_get(size, 0);
}

ALLOC_NOSAN static void real_free(void *p)
{
    alloc_resolve();
    if (!alloc_from_boot(p) && next_free)
        next_free(p);
}

#endif

/* Whether the blocks malloc hands out come from the allocator the process really uses (under
 * ASan: ASan's heap, or frees would mix two heaps); 0: the test must be skipped. */
static inline int alloc_hook_sound(void)
{
#if defined(ALLOC_HOOK_TSAN)
    return 0;
#elif defined(ALLOC_HOOK_ASAN)
    void *p = real_malloc(16);
    int ok = !__sanitizer_get_ownership || __sanitizer_get_ownership(p);
    real_free(p);
    return ok;
#else
    return 1;
#endif
}

/* ---- the interposed functions ----------------------------------------------------------- */

#ifndef ALLOC_HOOK_TSAN
ALLOC_NOSAN void *malloc(size_t size)
{
    if (alloc_should_fail())
        return NULL;
    void *p = real_malloc(size);
    if (p)
        ALLOC_ADD(&alloc_live_n, 1);
    return p;
}

ALLOC_NOSAN void *calloc(size_t n, size_t size)
{
    if (alloc_should_fail())
        return NULL;
    void *p = real_calloc(n, size);
    if (p)
        ALLOC_ADD(&alloc_live_n, 1);
    return p;
}

ALLOC_NOSAN void *realloc(void *p, size_t size)
{
    if (p && size == 0) {
        /* glibc (and ASan) free p and return NULL: a free, not an allocation. */
        void *q = real_realloc(p, 0);
        if (!q)
            ALLOC_ADD(&alloc_live_n, -1);
        return q;
    }
    if (alloc_should_fail())
        return NULL;
    void *q = real_realloc(p, size);
    if (q && !p)
        ALLOC_ADD(&alloc_live_n, 1);
    return q;
}

ALLOC_NOSAN void free(void *p)
{
    if (!p)
        return;
    ALLOC_ADD(&alloc_live_n, -1);
    real_free(p);
}

#ifdef ALLOC_HOOK_ASAN
ALLOC_NOSAN char *strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

ALLOC_NOSAN char *strndup(const char *s, size_t max)
{
    size_t n = strnlen(s, max);
    char *p = malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}
#endif

#endif /* !ALLOC_HOOK_TSAN */

#endif
