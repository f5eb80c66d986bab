/* grow.c - doubling array growth with overflow checks (see grow.h). */
#include "grow.h"

#include <stdint.h>
#include <stdlib.h>

void *grow_to(void *items, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap && items)
        return items;
    size_t ncap = *cap ? *cap : 16;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2)
            return NULL;
        ncap *= 2;
    }
    if (size == 0 || ncap > SIZE_MAX / size)
        return NULL;
    void *grown = realloc(items, ncap * size);
    if (!grown)
        return NULL;
    *cap = ncap;
    return grown;
}
