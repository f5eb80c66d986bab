/*
 * grow.h - the one growth rule for arrays built from rows, lists and pages.
 *
 * grow_to() returns an array with room for at least `need` elements of `size` bytes, doubling
 * the capacity (from 16) so that n appends cost O(n). On failure (out of memory, or need * size
 * would overflow) it returns NULL and leaves the caller's array and *cap as they were: the
 * caller still owns it and frees it on its error path.
 *
 *     if (!(grown = grow_to(rows, &cap, count + 1, sizeof *rows))) goto oom;
 *     rows = grown;
 *
 * Pure function: any thread (the array belongs to the caller).
 */
#ifndef BOOKRANK_GROW_H
#define BOOKRANK_GROW_H

#include <stddef.h>

#include "compiler.h"

BR_MUST_CHECK void *grow_to(void *items, size_t *cap, size_t need, size_t size);

#endif
