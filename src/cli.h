/* cli.h: command-line helpers for src/main.c (not part of the library):
 * option matching, strict number parsing, output-name helpers. */
#ifndef NST_CLI_H
#define NST_CLI_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define NST_CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NST_CLI_PRINTF(a, b)
/* Iteration speed and time left for progress lines. The first iteration
 * reported (whatever its number) carries the setup and the kernel compiling
 * of a first run, so speed is counted from its end: rate 0 and eta -1
 * (unknown) for it, then iterations since it over the time since it. */
typedef struct cli_rate {
    int started, first_iteration;
    double first_elapsed;
} cli_rate;
void cli_rate_update(cli_rate *r, int iteration, int iterations, double elapsed, double *rate,
                     double *eta);

#endif

enum { CLI_OPTION = 0, CLI_POSITIONAL = 1, CLI_NEEDS_VALUE = 2, CLI_TAKES_NO_VALUE = 3 };

typedef struct cli_arg {
    char name[64];     /* "--size", "-o"; empty for a positional argument */
    const char *value; /* the option's value, or NULL for a flag */
} cli_arg;

/* Reads argv[*i] (and argv[*i+1] for a value), accepting "--opt value",
 * "--opt=value" and "-o value". Advances *i past a separate value. Flags
 * (options without values) are listed in cli.c. */
int cli_match(int argc, char **argv, int *i, cli_arg *out);

/* Strict parsers: the whole string must be a number (end==NULL), or a
 * number followed by whatever *end is left pointing at. */
int cli_parse_int(const char *s, int *out);
int cli_parse_u64(const char *s, unsigned long long *out);
int cli_parse_double(const char *s, double *out, const char **end);

/* A byte count: a number with an optional binary unit K, M, G or T (also
 * KB/KiB...), e.g. "4G", "512M", "1.5GiB", "1000000". 1 when valid and > 0. */
int cli_parse_bytes(const char *s, unsigned long long *out);

/* 1 if the output name ends in .png, .jpg or .jpeg (any case). */
int cli_image_ext_ok(const char *path);
/* "dir/out.png", 50 -> "dir/out_0050.png". */
void cli_numbered_path(const char *path, int n, char *buf, size_t len);

/* Iteration speed and time left for progress lines. The first iteration
 * reported (whatever its number) carries the setup and the kernel compiling
 * of a first run, so speed is counted from its end: rate 0 and eta -1
 * (unknown) for it, then iterations since it over the time since it. */
typedef struct cli_rate {
    int started, first_iteration;
    double first_elapsed;
} cli_rate;
void cli_rate_update(cli_rate *r, int iteration, int iterations, double elapsed, double *rate,
                     double *eta);

#endif
