/* test_buf.c - the capped buffer: appends up to the cap, a refused append leaves the content as
 * it was, printf grows and respects the cap, reset keeps the memory, steal hands over a
 * terminated string (also of a buffer nothing was appended to), free is idempotent. */
#include <stdlib.h>
#include <string.h>

#include "../../common/buf.h"
#include "../lib/check.h"

static void test_append(void)
{
    buf b;
    buf_init(&b, 10);
    CHECK(b.data == NULL && b.len == 0, "nothing allocated before the first append");
    CHECK_INT(buf_append(&b, "hello", 5), BUF_OK, "append within the cap");
    CHECK_INT(buf_append(&b, "world", 5), BUF_OK, "append up to exactly the cap");
    CHECK(b.len == 10 && strcmp(b.data, "helloworld") == 0, "content and terminator");
    CHECK_INT(buf_append(&b, "!", 1), BUF_TOOBIG, "one byte past the cap is refused");
    CHECK(b.len == 10 && strcmp(b.data, "helloworld") == 0, "a refused append changes nothing");
    CHECK_INT(buf_append(&b, "", 0), BUF_OK, "an empty append at the cap is fine");
    buf_reset(&b);
    CHECK(b.len == 0 && b.data && b.data[0] == '\0' && b.cap >= 10, "reset keeps the memory");
    CHECK_INT(buf_append_str(&b, "abc"), BUF_OK, "append_str");
    CHECK_STR(b.data, "abc", "content after reset");
    buf_free(&b);
    CHECK(b.data == NULL && b.len == 0, "free empties");
    buf_free(&b); /* twice is harmless */
}

static void test_printf(void)
{
    buf b;
    buf_init(&b, 64);
    CHECK_INT(buf_printf(&b, "%d-%s", 42, "x"), BUF_OK, "printf");
    CHECK_INT(buf_printf(&b, "%s", "+more"), BUF_OK, "printf appends");
    CHECK_STR(b.data, "42-x+more", "printf content");
    char big[100];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CHECK_INT(buf_printf(&b, "%s", big), BUF_TOOBIG, "printf past the cap is refused");
    CHECK_STR(b.data, "42-x+more", "and leaves the content as it was");
    buf_free(&b);
    buf g;
    buf_init(&g, (size_t)1 << 20);
    for (int i = 0; i < 1000; i++)
        if (buf_printf(&g, "%04d", i) != BUF_OK)
            break;
    CHECK(g.len == 4000 && memcmp(g.data + 3996, "0999", 4) == 0 && g.data[4000] == '\0',
          "many small appends grow the buffer");
    buf_free(&g);
}

static void test_steal(void)
{
    buf b;
    buf_init(&b, 100);
    size_t len = 99;
    char *s = buf_steal(&b, &len);
    CHECK(s && len == 0 && s[0] == '\0', "steal of a buffer never appended to: an empty string");
    free(s);
    CHECK_INT(buf_append_str(&b, "kept"), BUF_OK, "append after steal");
    s = buf_steal(&b, &len);
    CHECK(s && len == 4 && strcmp(s, "kept") == 0, "steal hands over the content");
    CHECK(b.data == NULL && b.len == 0, "and leaves the buffer empty");
    free(s);
    char *m = buf_strdup_printf("%s=%d", "n", 7);
    CHECK(m && strcmp(m, "n=7") == 0, "strdup_printf");
    free(m);
}

int main(void)
{
    test_append();
    test_printf();
    test_steal();
    return check_done();
}
