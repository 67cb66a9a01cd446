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
#endif

enum {
    CLI_OPTION = 0,
    CLI_POSITIONAL = 1,
    CLI_NEEDS_VALUE = 2,
    CLI_TAKES_NO_VALUE = 3,
    CLI_UNKNOWN = 4 /* an unknown option last on the line (no value taken) */
};

typedef struct cli_arg {
    char name[64];     /* "--size", "-o"; empty for a positional argument */
    const char *value; /* the option's value, or NULL for a flag */
} cli_arg;

/* Reads argv[*i] (and argv[*i+1] for a value), accepting "--opt value",
 * "--opt=value" and "-o value". Advances *i past a separate value. Flags
 * (options without values) and options with values are listed in cli.c: a
 * name in neither, last on the line, is CLI_UNKNOWN (not CLI_NEEDS_VALUE). */
int cli_match(int argc, char **argv, int *i, cli_arg *out);

/* The known option nearest to an unknown name (a typo of it), or NULL;
 * candidates is a NULL-terminated list, or NULL for every option. */
const char *cli_suggest(const char *name, const char *const *candidates);

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

/* 0 when a file can be created beside path (a probe file is created and
 * removed); otherwise -1 with the reason in why. */
int cli_output_check(const char *path, char *why, size_t len);
/* Where to keep an image that could not be written to path: which = 0 beside
 * it, 1 the cache directory (created), 2 $TMPDIR or /tmp; the name is
 * "STEM-unsaved-PID.ext". -1 when that place is unavailable. */
int cli_fallback_path(const char *path, int which, char *buf, size_t len);

/* The width of the terminal on fd: TIOCGWINSZ, else $COLUMNS, else 80. */
int cli_term_width(int fd);
/* Joins fields (each starting with its separator) into out, shorter than
 * width: while too long, drops the field of highest drop rank (0: never
 * dropped), then cuts what is left. */
void cli_fit_line(char *out, size_t cap, int width, const char *const *fields, const int *drop,
                  int n);

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
