/* cli.c: command-line helpers for src/main.c. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

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

/* Edit distance (insertions, deletions, substitutions, adjacent swaps),
 * for names up to 63 characters. */
static int distance(const char *a, const char *b) {
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 63 || m > 63) return 99;
    int d[64][64];
    for (int i = 0; i <= n; i++) d[i][0] = i;
    for (int j = 0; j <= m; j++) d[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v) v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v) v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    return d[n][m];
}

/* The long option nearest to an unknown "--name" (a typo of it), or NULL:
 * at most two edits, and fewer than half the option's name. */
static const char *suggest(const char *name, const struct option *longopts) {
    const char *best = NULL;
    int best_d = 3;
    if (strncmp(name, "--", 2)) return NULL;
    for (int i = 0; longopts[i].name; i++) {
        const char *c = longopts[i].name;
        int d = distance(name + 2, c);
        if (d < best_d && 2 * d < (int)strlen(c) + 2) {
            best_d = d;
            best = c;
        }
    }
    return best;
}

int cli_next(int argc, char **argv, const char *shortopts, const struct option *longopts,
             const char *command, char *err, size_t len) {
    char pre[64] = "";
    if (command) snprintf(pre, sizeof pre, "%s: ", command);
    opterr = 0;
    int c = getopt_long(argc, argv, shortopts, longopts, NULL);
    if (c == -1 && optind < argc) { /* after "--" */
        optarg = argv[optind++];
        return CLI_ARG;
    }
    if (c == -1) return CLI_END;
    if (c == 1) return CLI_ARG;
    if (c != '?' && c != ':') return c;
    /* the argument at fault; a long option's name stops at '=' */
    const char *a = argv[optind - 1];
    char name[64];
    if (optopt && strncmp(a, "--", 2)) snprintf(name, sizeof name, "-%c", optopt);
    else snprintf(name, sizeof name, "%.*s", (int)strcspn(a, "="), a);
    if (c == ':') {
        snprintf(err, len, "%soption %s needs a value", pre, name);
    } else if (optopt) {
        if (!strncmp(a, "--", 2)) snprintf(err, len, "%soption %s takes no value", pre, name);
        else snprintf(err, len, "%sunknown option '%s'", pre, name);
    } else {
        /* unknown, or the start of several long names */
        char list[512] = "";
        int n = 0;
        size_t k = strlen(name + 2), used = 0;
        for (int i = 0; longopts[i].name && k; i++)
            if (!strncmp(longopts[i].name, name + 2, k)) {
                int w = snprintf(list + used, sizeof list - used, "%s--%s", n ? ", " : "",
                                 longopts[i].name);
                if (w > 0 && used + (size_t)w < sizeof list) used += (size_t)w;
                n++;
            }
        const char *near = suggest(name, longopts);
        if (n > 1)
            snprintf(err, len, "%soption '%s' is ambiguous: %s", pre, name, list);
        else
            snprintf(err, len, "%sunknown option '%s'%s%s%s", pre, name,
                     near ? "; did you mean --" : "", near ? near : "", near ? "?" : "");
    }
    return CLI_ERROR;
}

/* ---- the output file ---------------------------------------------------- */

/* The directory part of path ("." when none) into buf. */
static void dir_of(const char *path, char *buf, size_t len) {
    const char *slash = strrchr(path, '/');
    if (!slash) snprintf(buf, len, ".");
    else if (slash == path) snprintf(buf, len, "/");
    else snprintf(buf, len, "%.*s", (int)(slash - path), path);
}

int cli_output_check(const char *path, char *why, size_t len) {
    char dir[4096], probe[4200];
    struct stat sb;
    dir_of(path, dir, sizeof dir);
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        snprintf(why, len, "'%s' is a directory", path);
        return -1;
    }
    /* the library writes a temporary file beside the output and renames it */
    snprintf(probe, sizeof probe, "%s/.nst-check.%ld.tmp", dir, (long)getpid());
    int fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    if (fd < 0 && errno == EEXIST) {
        unlink(probe);
        fd = open(probe, O_WRONLY | O_CREAT | O_EXCL, 0600);
    }
    if (fd < 0) {
        int e = errno;
        snprintf(why, len, "cannot create a file in directory '%s': %s%s", dir, strerror(e),
                 e == ENOENT    ? " (does the directory exist?)"
                 : e == ENOTDIR ? " (a part of the path is a file, not a directory)"
                 : e == EACCES || e == EPERM || e == EROFS
                     ? " (choose a directory you can write to)"
                     : "");
        return -1;
    }
    close(fd);
    unlink(probe);
    return 0;
}

/* mkdir -p; 0 when the directory exists afterwards. */
static int make_dirs(char *path) {
    for (char *p = path + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(path, 0755);
            *p = '/';
        }
    struct stat sb;
    return mkdir(path, 0755) == 0 || (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) ? 0 : -1;
}

int cli_fallback_path(const char *path, int which, const char *cache_dir, char *buf, size_t len) {
    char dir[4096];
    const char *tmp = getenv("TMPDIR");
    switch (which) {
    case 0: dir_of(path, dir, sizeof dir); break;
    case 1:
        if (!cache_dir || !*cache_dir) return -1;
        snprintf(dir, sizeof dir, "%s", cache_dir);
        if (make_dirs(dir) != 0) return -1;
        break;
    case 2: snprintf(dir, sizeof dir, "%s", tmp && *tmp ? tmp : "/tmp"); break;
    default: return -1;
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    const char *e = ext_of(base);
    size_t stem = e ? (size_t)(e - base) : strlen(base);
    int n = snprintf(buf, len, "%s/%.*s-unsaved-%ld%s", dir, (int)stem, base, (long)getpid(),
                     e ? e : "");
    return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* ---- the live progress line ------------------------------------------------ */

int cli_term_width(int fd) {
    struct winsize ws;
    if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
    const char *c = getenv("COLUMNS");
    int n;
    if (c && cli_parse_int(c, &n) && n > 0) return n;
    return 80;
}

void cli_fit_line(char *out, size_t cap, int width, const char *const *fields, const int *drop,
                  int n) {
    int keep[16] = {0}, used = 0;
    if (n > 16) n = 16;
    for (int i = 0; i < n; i++) keep[i] = fields[i] && fields[i][0];
    /* fields[i] starts with its separator, which the first field shown drops */
    for (;;) {
        size_t len = 0;
        int first = 1;
        for (int i = 0; i < n; i++)
            if (keep[i]) {
                const char *f = fields[i];
                if (first) f += strspn(f, " ");
                len += strlen(f);
                first = 0;
            }
        if ((int)len < width) break;
        int worst = -1;
        for (int i = 0; i < n; i++)
            if (keep[i] && drop[i] > 0 && (worst < 0 || drop[i] > drop[worst])) worst = i;
        if (worst < 0) break;
        keep[worst] = 0;
    }
    out[0] = 0;
    for (int i = 0; i < n; i++)
        if (keep[i]) {
            const char *f = fields[i];
            if (!used) f += strspn(f, " ");
            snprintf(out + strlen(out), cap - strlen(out), "%s", f);
            used = 1;
        }
    /* a terminal narrower than what must stay: cut, never wrap */
    if (width >= 1 && strlen(out) >= (size_t)width) out[width - 1] = 0;
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
