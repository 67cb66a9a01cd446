/* cli.h: command-line helpers for src/main.c (not part of the library):
 * options (getopt_long), strict number parsing, output-name helpers. */
#ifndef NST_CLI_H
#define NST_CLI_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__)
#define NST_CLI_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NST_CLI_PRINTF(a, b)
#endif

struct option;

enum {
    CLI_END = -1,   /* no more arguments */
    CLI_ERROR = -2, /* a usage error, described in err */
    CLI_ARG = 1     /* an argument that is not an option, in optarg */
};

/* The next option of argv through getopt_long, with the command's messages:
 * returns the option's val (optarg holds its value), CLI_ARG, CLI_END, or
 * CLI_ERROR with "unknown option '--chek'; did you mean --check?", "option
 * '--c' is ambiguous: --content, --content-weight", "option --size needs a
 * value" or "option --png16 takes no value" in err (prefixed "COMMAND: "
 * when command is not NULL). shortopts must start with "-:" (arguments in
 * order, missing values reported); set optind = 0 before the first call.
 * Long options may be abbreviated to a unique prefix and given as "--opt
 * value" or "--opt=value". */
int cli_next(int argc, char **argv, const char *shortopts, const struct option *longopts,
             const char *command, char *err, size_t len);

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
 * it, 1 cache_dir (created), 2 $TMPDIR or /tmp; the name is
 * "STEM-unsaved-PID.ext". -1 when that place is unavailable. */
int cli_fallback_path(const char *path, int which, const char *cache_dir, char *buf, size_t len);

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

/* cli_text.c */
/* s as the inside of a JSON string (quotes, backslashes and control
 * characters escaped), in one of a few rotating static buffers. */
const char *cli_js(const char *s);
/* "42s", "3m05s", "2h10m"; "?" when unknown. */
void cli_fmt_duration(double s, char *buf, size_t len);
/* CLOCK_MONOTONIC in seconds. */
double cli_mono_seconds(void);
/* "COMMAND: message" and "(see COMMAND --help)" on stderr; returns the usage
 * exit status, 2. */
int cli_usage_error(const char *command, const char *fmt, ...) NST_CLI_PRINTF(2, 3);
struct nst_settings;
struct nst_device_info;
/* nst_devices_list_with; on failure its message on stderr ("nst: ...") and
 * -1. */
int cli_devices_list(const struct nst_settings *set, struct nst_device_info **devs, int *n);

#endif
