/* cli.c: command-line helpers for src/main.c. */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"

static const char *const flags[] = {"--help", "-h", "--version", "--png16", "--quiet", "-q",
                                    "--json", "--no-cache", "--line-search", "--check",
                                    "--dry-run", "--preserve-colors", "--preserve-colours",
                                    "--luminance-only", "--tiny", NULL};

/* Options that take a value, over every command: a name in neither list is
 * unknown, and at the end of the line is reported as such rather than as an
 * option missing its value. */
static const char *const values[] = {
    "--content", "-c", "--style", "-s", "--style-blend", "--output", "-o", "--size",
    "--style-scale", "--jpeg-quality", "--content-weight", "--style-weight", "--tv-weight",
    "--content-layers", "--style-layers", "--style-layer-weights", "--pooling", "--init",
    "--seed", "--luminance-match", "--mask", "--scales", "--scale-iterations",
    "--average-decay", "--iterations", "-n", "--optimizer", "--learning-rate",
    "--lbfgs-history", "--max-memory", "--tile", "--device", "-d", "--weights", "-w",
    "--print-every", "--save-every", "--evals", "--width-mult", "--seconds", NULL};

static int in_list(const char *const *list, const char *name) {
    for (int i = 0; list[i]; i++)
        if (!strcmp(list[i], name)) return 1;
    return 0;
}

static int is_flag(const char *name) { return in_list(flags, name); }

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
    if (*i + 1 >= argc) return in_list(values, out->name) ? CLI_NEEDS_VALUE : CLI_UNKNOWN;
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

const char *cli_suggest(const char *name, const char *const *candidates) {
    const char *const *lists[2] = {candidates ? candidates : flags, candidates ? NULL : values};
    const char *best = NULL;
    int best_d = 3; /* at most two edits, and fewer than half the name */
    for (int l = 0; l < 2 && lists[l]; l++)
        for (int i = 0; lists[l][i]; i++) {
            const char *c = lists[l][i];
            if (strncmp(c, "--", 2)) continue; /* long names only */
            int d = distance(name, c);
            if (d < best_d && 2 * d < (int)strlen(c)) {
                best_d = d;
                best = c;
            }
        }
    return best;
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

int cli_fallback_path(const char *path, int which, char *buf, size_t len) {
    char dir[4096];
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME"), *c = getenv("NST_CACHE_DIR");
    const char *tmp = getenv("TMPDIR");
    switch (which) {
    case 0: dir_of(path, dir, sizeof dir); break;
    case 1:
        if (c && *c) snprintf(dir, sizeof dir, "%s", c);
        else if (x && *x) snprintf(dir, sizeof dir, "%s/nst", x);
        else if (home && *home) snprintf(dir, sizeof dir, "%s/.cache/nst", home);
        else return -1;
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
