/* cli.c: command-line helpers for src/main.c. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

static const char *const flags[] = {"--help", "-h", "--version", "--png16", "--quiet", "-q",
                                    "--json", "--no-cache", "--line-search", "--check",
                                    "--dry-run", "--preserve-colors", "--preserve-colours",
                                    "--luminance-only", "--tiny", NULL};

static int is_flag(const char *name) {
    for (int i = 0; flags[i]; i++)
        if (!strcmp(flags[i], name)) return 1;
    return 0;
}

int cli_match(int argc, char **argv, int *i, cli_arg *out) {
    const char *a = argv[*i];
    memset(out, 0, sizeof *out);
    if (a[0] != '-' || a[1] == 0) {
        out->value = a;
        return CLI_POSITIONAL;
    }
    const char *eq = a[1] == '-' ? strchr(a, '=') : NULL;
    size_t len = eq ? (size_t)(eq - a) : strlen(a);
    if (len >= sizeof out->name) len = sizeof out->name - 1;
    memcpy(out->name, a, len);
    out->name[len] = 0;
    if (is_flag(out->name)) return eq ? CLI_TAKES_NO_VALUE : CLI_OPTION;
    if (eq) {
        out->value = eq + 1;
        return CLI_OPTION;
    }
    if (*i + 1 >= argc) return CLI_NEEDS_VALUE;
    out->value = argv[++*i];
    return CLI_OPTION;
}

int cli_parse_int(const char *s, int *out) {
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (end == s || *end || errno || v < -2147483647L || v > 2147483647L) return 0;
    *out = (int)v;
    return 1;
}

int cli_parse_u64(const char *s, unsigned long long *out) {
    char *end = NULL;
    errno = 0;
    if (*s == '-') return 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno) return 0;
    *out = v;
    return 1;
}

int cli_parse_double(const char *s, double *out, const char **end_out) {
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || !isfinite(v)) return 0;
    if (end_out) *end_out = end;
    else if (*end) return 0;
    *out = v;
    return 1;
}

static const char *ext_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) ? dot : NULL;
}

int cli_image_ext_ok(const char *path) {
    const char *e = ext_of(path);
    return e && (!strcasecmp(e, ".png") || !strcasecmp(e, ".jpg") || !strcasecmp(e, ".jpeg"));
}

void cli_numbered_path(const char *path, int n, char *buf, size_t len) {
    const char *e = ext_of(path);
    size_t stem = e ? (size_t)(e - path) : strlen(path);
    snprintf(buf, len, "%.*s_%04d%s", (int)stem, path, n, e ? e : "");
}

int cli_parse_bytes(const char *s, unsigned long long *out) {
    const char *end = NULL;
    double v;
    if (!cli_parse_double(s, &v, &end) || !(v > 0)) return 0;
    double unit = 1;
    switch (*end) {
    case 'k': case 'K': unit = 1024.0; end++; break;
    case 'm': case 'M': unit = 1048576.0; end++; break;
    case 'g': case 'G': unit = 1073741824.0; end++; break;
    case 't': case 'T': unit = 1099511627776.0; end++; break;
    default: break;
    }
    if (unit > 1 && *end == 'i') end++;
    if (*end == 'B' || *end == 'b') end++;
    if (*end) return 0;
    v *= unit;
    if (v < 1 || v > 1.8e19) return 0;
    *out = (unsigned long long)v;
    return 1;
}

void cli_rate_update(cli_rate *r, int iteration, int iterations, double elapsed, double *rate,
                     double *eta) {
    *rate = 0;
    *eta = -1;
    if (!r->started || iteration <= r->first_iteration) {
        /* the first iteration seen carries the setup and any kernel compiling
         * before it: the speed is counted from its end */
        r->started = 1;
        r->first_iteration = iteration;
        r->first_elapsed = elapsed;
        return;
    }
    double dt = elapsed - r->first_elapsed;
    if (!(dt > 0)) return;
    *rate = (iteration - r->first_iteration) / dt;
    *eta = (iterations - iteration) / *rate;
}
