/*
 * cli.h - the command line (SPEC §2): `bookrank COMMAND [options]`.
 *
 * cli_main() parses argv, layers the options (command line > BOOKRANK_* environment > config
 * file > defaults), runs the command and returns its exit status: 0 success, 1 the work failed,
 * 2 bad usage or bad input. It prints to stdout/stderr and never calls exit().
 *
 * Threads: call from the main thread, before any other thread exists.
 */
#ifndef BOOKRANK_CLI_H
#define BOOKRANK_CLI_H

int cli_main(int argc, char **argv);

#endif
