/*
 * compiler.h - attributes the project uses on its interfaces.
 *
 * BR_MUST_CHECK marks a function whose result must not be ignored (a status, an allocation,
 * anything whose failure changes what the caller may do next); -Wunused-result turns a dropped
 * result into a warning, -Werror in CI into an error. BR_PRINTF checks format strings.
 */
#ifndef BOOKRANK_COMPILER_H
#define BOOKRANK_COMPILER_H

#define BR_MUST_CHECK __attribute__((warn_unused_result))
#define BR_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))

#endif
