/* tune.c: searching, saving and applying CLBlast Xgemm parameters per device
 * (see tune.h). CLBlast itself is reached through gemm.c. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "tune.h"

/* ---- the parameter space ------------------------------------------------ */

/* CLBlast's Xgemm parameters, all of which an override must give. GEMMK = 0
 * (tiles through optional local memory) and KREG = 1 are fixed: GEMMK = 1
 * (register tiling) is left out because, with CLBlast 1.5.3 on PoCL, some of
 * its configurations that meet the documented constraints wrote outside the
 * result matrix, which corrupts host memory on a CPU device. */
enum { GEMMK, KREG, KWG, KWI, MDIMA, MDIMC, MWG, NDIMB, NDIMC, NWG, SA, SB, STRM, STRN, VWM, VWN,
       NPARAM };
static const char *const pnames[NPARAM] = {"GEMMK", "KREG",  "KWG", "KWI",  "MDIMA", "MDIMC",
                                           "MWG",   "NDIMB", "NDIMC", "NWG", "SA",    "SB",
                                           "STRM",  "STRN",  "VWM",  "VWN"};
/* The values each may take (-1 ends a list), as in CLBlast's documented
 * tuning ranges. */
static const int pvalues[NPARAM][6] = {
    {0, -1},          {1, -1},              {16, 32, -1},         {2, 8, -1},
    {8, 16, 32, -1},  {8, 16, 32, -1},      {16, 32, 64, 128, -1}, {8, 16, 32, -1},
    {8, 16, 32, -1},  {16, 32, 64, 128, -1}, {0, 1, -1},          {0, 1, -1},
    {0, 1, -1},       {0, 1, -1},           {1, 2, 4, 8, -1},     {1, 2, 4, 8, -1}};

typedef struct cand {
    int v[NPARAM];
} cand;

static int nvalues(int p) {
    int n = 0;
    while (pvalues[p][n] >= 0) n++;
    return n;
}

/* The constraints of CLBlast's Xgemm kernel: whole numbers of work per item,
 * tiles that reshape evenly, the loop unroll dividing KWG, and what the device
 * allows (work-group size, local memory). */
static int cand_valid(const cand *c, size_t max_wg, unsigned long long local_mem) {
    const int *v = c->v;
    for (int p = 0; p < NPARAM; p++) {
        int ok = 0;
        for (int i = 0; pvalues[p][i] >= 0; i++) ok |= pvalues[p][i] == v[p];
        if (!ok) return 0;
    }
    if (v[MWG] % (v[MDIMC] * v[VWM]) || v[NWG] % (v[NDIMC] * v[VWN])) return 0;
    const int wg = v[MDIMC] * v[NDIMC];
    if ((size_t)wg > max_wg) return 0;
    if (v[KWG] % v[KWI]) return 0;
    if (v[MWG] % (v[MDIMA] * v[VWM]) || v[NWG] % (v[NDIMB] * v[VWN])) return 0;
    if (wg % v[MDIMA] || wg % v[NDIMB]) return 0;
    if (v[KWG] % (wg / v[MDIMA]) || v[KWG] % (wg / v[NDIMB])) return 0;
    unsigned long long lm =
        (unsigned long long)(v[SA] * v[KWG] * v[MWG] + v[SB] * v[KWG] * v[NWG]) * sizeof(float);
    return lm <= local_mem;
}

static void cand_format(const cand *c, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = 0;
    for (int p = 0; p < NPARAM && used < len; p++) {
        int k = snprintf(buf + used, len - used, "%s%s=%d", p ? " " : "", pnames[p], c->v[p]);
        if (k < 0) break;
        used += (size_t)k;
    }
}

/* Parses "NAME=VALUE ..." naming every parameter once; 0 on success. */
static int cand_parse(const char *s, cand *c) {
    int seen[NPARAM] = {0};
    while (*s) {
        while (*s == ' ' || *s == '\t') s++;
        if (!*s || *s == '\n' || *s == '\r') break;
        int p = 0;
        for (; p < NPARAM; p++) {
            size_t n = strlen(pnames[p]);
            if (!strncmp(s, pnames[p], n) && s[n] == '=') break;
        }
        if (p == NPARAM || seen[p]) return -1;
        s += strlen(pnames[p]) + 1;
        char *end = NULL;
        long v = strtol(s, &end, 10);
        if (end == s || v < 0 || v > 4096) return -1;
        c->v[p] = (int)v;
        seen[p] = 1;
        s = end;
    }
    for (int p = 0; p < NPARAM; p++)
        if (!seen[p]) return -1;
    return 0;
}

/* CLBlast keeps an override for its device until the process ends (its
 * ClearCache leaves parameters alone, and the C API cannot read its own
 * parameters back), so the devices with one in effect are remembered: the
 * one fact that is the process's, not a runtime's, kept under a lock because
 * runtimes on other threads read and add to it. */
#define MAX_OVERRIDDEN 16
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
static cl_device_id g_overridden[MAX_OVERRIDDEN];
static int g_noverridden;

static int overridden(cl_device_id d) {
    int found = 0;
    pthread_mutex_lock(&g_lock);
    for (int i = 0; i < g_noverridden && !found; i++) found = g_overridden[i] == d;
    pthread_mutex_unlock(&g_lock);
    return found;
}

static nst_status cand_apply(nst_runtime *rt, const cand *c) {
    size_t vals[NPARAM];
    for (int p = 0; p < NPARAM; p++) vals[p] = (size_t)c->v[p];
    pthread_mutex_lock(&g_lock);
    int known = 0;
    for (int i = 0; i < g_noverridden && !known; i++) known = g_overridden[i] == rt->device;
    if (!known && g_noverridden < MAX_OVERRIDDEN) g_overridden[g_noverridden++] = rt->device;
    pthread_mutex_unlock(&g_lock);
    return nst_blas_override(rt, "Xgemm", NPARAM, (const char **)pnames, vals);
}

/* Small tiles, no vectors, no local memory: what falls back after tuned
 * parameters fail on the device. */
static const cand plain = {{0, 1, 16, 2, 8, 8, 16, 8, 8, 16, 0, 0, 0, 0, 1, 1}};

/* xorshift64* */
static unsigned long long rng_next(unsigned long long *s) {
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static int rng_below(unsigned long long *s, int n) { return (int)((rng_next(s) >> 33) % n); }

static void cand_random(cand *c, unsigned long long *s, size_t max_wg, unsigned long long lm) {
    do {
        for (int p = 0; p < NPARAM; p++) c->v[p] = pvalues[p][rng_below(s, nvalues(p))];
    } while (!cand_valid(c, max_wg, lm));
}

/* Changes one or two parameters of `from`. */
static void cand_mutate(cand *c, const cand *from, unsigned long long *s, size_t max_wg,
                        unsigned long long lm) {
    for (int tries = 0; tries < 10000; tries++) {
        *c = *from;
        int changes = 1 + rng_below(s, 2);
        for (int i = 0; i < changes; i++) {
            int p = KWG + rng_below(s, NPARAM - KWG);
            c->v[p] = pvalues[p][rng_below(s, nvalues(p))];
        }
        if (cand_valid(c, max_wg, lm) && memcmp(c, from, sizeof *c)) return;
    }
    cand_random(c, s, max_wg, lm);
}

/* ---- the file ----------------------------------------------------------- */

static unsigned long long fnv1a_str(unsigned long long h, const char *s) {
    for (const unsigned char *p = (const unsigned char *)s;; p++) {
        h ^= *p;
        h *= 0x100000001b3ULL;
        if (!*p) return h;
    }
}

int nst_tune_path(const nst_runtime *rt, char *buf, size_t len) {
    char dir[900];
    if (nst_cache_dir(rt, dir, sizeof dir) != 0) return -1;
    unsigned long long h = 0xcbf29ce484222325ULL;
    h = fnv1a_str(h, rt->info.platform);
    h = fnv1a_str(h, rt->info.name);
    h = fnv1a_str(h, rt->info.version);
    h = fnv1a_str(h, rt->info.driver);
    h = fnv1a_str(h, nst_blas_version());
    snprintf(buf, len, "%s/gemm-tune-%016llx.txt", dir, h);
    return 0;
}

/* The header lines that must match the runtime for a file to apply. */
static void key_lines(const nst_runtime *rt, const char *out[5][2]) {
    const char *keys[5] = {"platform", "device", "version", "driver", "clblast"};
    const char *vals[5] = {rt->info.platform, rt->info.name, rt->info.version, rt->info.driver,
                           nst_blas_version()};
    for (int i = 0; i < 5; i++) {
        out[i][0] = keys[i];
        out[i][1] = vals[i];
    }
}

static int write_file(const nst_runtime *rt, const char *path, const cand *best,
                      double best_gflops, double default_gflops) {
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    const char *keys[5][2];
    key_lines(rt, keys);
    fprintf(f, "# CLBlast GEMM parameters for this device, written by 'nst tune'.\n"
               "# Delete this file to return to CLBlast's own; NST_TUNE=0 ignores it.\n"
               "nst-gemm-tune 1\n");
    for (int i = 0; i < 5; i++) fprintf(f, "%s %s\n", keys[i][0], keys[i][1]);
    fprintf(f, "gflops %.1f %.1f\n", best_gflops, default_gflops);
    if (best) {
        char line[400];
        cand_format(best, line, sizeof line);
        fprintf(f, "kernel Xgemm %s\n", line);
    }
    int ok = !ferror(f);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        remove(tmp);
        return -1;
    }
    return 0;
}

/* Reads and checks a tuning file: 1 with parameters in *c, 0 when it keeps
 * the defaults, -1 when unusable (why in `why`). */
static int read_file(const nst_runtime *rt, const char *path, cand *c, char *why, size_t wlen) {
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(why, wlen, "none saved for this device (run 'nst tune')");
        return -1;
    }
    const char *keys[5][2];
    key_lines(rt, keys);
    int matched[5] = {0}, magic = 0, params = 0, lineno = 0, bad = 0;
    char line[1024];
    while (!bad && fgets(line, sizeof line, f)) {
        lineno++;
        size_t n = strlen(line);
        if (n == sizeof line - 1 && line[n - 1] != '\n') {
            bad = 1;
            break;
        }
        while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) line[--n] = 0;
        if (!n || line[0] == '#') continue;
        if (lineno == 1 || !magic) {
            if (strcmp(line, "nst-gemm-tune 1") != 0) bad = 1;
            magic = 1;
            continue;
        }
        int k = 0;
        for (; k < 5; k++) {
            size_t kl = strlen(keys[k][0]);
            if (!strncmp(line, keys[k][0], kl) && line[kl] == ' ') break;
        }
        if (k < 5) {
            if (strcmp(line + strlen(keys[k][0]) + 1, keys[k][1]) != 0) {
                fclose(f);
                snprintf(why, wlen, "%.250s was tuned for another %s; ignored (run 'nst tune')", path,
                         keys[k][0]);
                return -1;
            }
            matched[k] = 1;
        } else if (!strncmp(line, "gflops ", 7)) {
            continue;
        } else if (!strncmp(line, "kernel Xgemm ", 13) && !params) {
            if (cand_parse(line + 13, c) != 0 ||
                !cand_valid(c, rt->info.max_work_group, rt->info.local_mem))
                bad = 1;
            params = 1;
        } else {
            bad = 1;
        }
    }
    fclose(f);
    for (int k = 0; k < 5; k++) bad |= !matched[k];
    if (bad || !magic) {
        snprintf(why, wlen, "%.250s is not a valid tuning file (line %d); ignored", path, lineno);
        return -1;
    }
    return params;
}

/* Nothing applied for rt: says why, and whether an earlier override stays. */
static void not_applied(nst_runtime *rt, const char *why) {
    rt->tune_state = -1;
    if (overridden(rt->device)) {
        rt->tune_state = 1;
        snprintf(rt->tune_note, sizeof rt->tune_note,
                 "tuned: parameters applied earlier in this process stay in effect; %s", why);
    } else {
        snprintf(rt->tune_note, sizeof rt->tune_note, "CLBlast's own: %s", why);
    }
}

void nst_tune_apply_saved(nst_runtime *rt) {
    if (rt->settings.no_tune) {
        not_applied(rt, "NST_TUNE=0");
        return;
    }
    char path[1024];
    if (nst_tune_path(rt, path, sizeof path) != 0) {
        not_applied(rt, "no cache directory");
        return;
    }
    cand c;
    char why[sizeof rt->tune_note - 80];
    int r = read_file(rt, path, &c, why, sizeof why);
    if (r < 0) {
        not_applied(rt, why);
        return;
    }
    if (r == 0) {
        snprintf(why, sizeof why, "the tuner found nothing faster (%.250s)", path);
        not_applied(rt, why);
        return;
    }
    nst_msg saved = rt->msg; /* a failure here is only a note */
    if (cand_apply(rt, &c) != NST_OK) {
        snprintf(why, sizeof why, "applying %.200s failed: %.100s", path, rt->msg.text);
        rt->msg = saved;
        not_applied(rt, why);
        return;
    }
    rt->tune_state = 1;
    snprintf(rt->tune_note, sizeof rt->tune_note, "tuned, from %.300s", path);
}

int nst_tune_fallback(nst_runtime *rt, const char *why) {
    if (rt->tune_state != 1) return 0;
    nst_msg saved = rt->msg;
    int ok = cand_apply(rt, &plain) == NST_OK;
    rt->msg = saved;
    rt->tune_state = -1;
    snprintf(rt->tune_note, sizeof rt->tune_note,
             "plain parameters: the tuned ones failed (%.100s); delete the tuning file or run "
             "'nst tune' again",
             why);
    return ok;
}

int nst_tune_applied(const nst_runtime *rt) { return rt->tune_state == 1; }

const char *nst_tune_note(const nst_runtime *rt) {
    if (rt->gemm_host) return "";
    return rt->tune_state == 0 ? "not looked up yet (no GEMM has run)" : rt->tune_note;
}

/* ---- the search --------------------------------------------------------- */

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One product of the benchmark set, row-major as nst calls them. */
typedef struct shape {
    int m, n, k, trans_b;
    float alpha, beta;
} shape;

enum { NTIMED = 3, NSHAPES = 4 };

typedef struct bench {
    shape s[NSHAPES]; /* s[0..2] are timed; s[3] only checked: edges that cut the tiles */
    float *a, *b, *c0; /* host inputs (prefixes serve every shape); c0: C before a product */
    cl_mem da, db, dc[NSHAPES];
    float *out;
    double flop;       /* of the timed products */
    int tiled;         /* 1: every product is one CLBlast runs on its tiled kernel */
    double min_time;   /* seconds one timing should last at least (repeats the set) */
} bench;

static void progress(const nst_tune_options *opt, const char *fmt, ...) NST_PRINTF(2, 3);
static void progress(const nst_tune_options *opt, const char *fmt, ...) {
    if (!opt->progress) return;
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    opt->progress(opt->ctx, line);
}

static nst_status bench_product(nst_runtime *rt, bench *b, int i) {
    const shape *s = &b->s[i];
    /* the Gram product F F^T reads the same matrix twice */
    cl_mem bm = s->trans_b ? b->da : b->db;
    return nst_gemm(rt, 0, s->trans_b, (size_t)s->m, (size_t)s->n, (size_t)s->k, s->alpha, b->da,
                    0, (size_t)s->k, bm, 0, s->trans_b ? (size_t)s->k : (size_t)s->n, s->beta,
                    b->dc[i], 0, (size_t)s->n);
}

/* Runs every product once from known C contents (building the candidate's
 * kernels) and compares sampled entries (the last row and column included,
 * where tiles are cut) with double sums; the edge product goes first, so a
 * wrong candidate costs little. Returns 1 when they agree. */
static int bench_check(nst_runtime *rt, bench *b, nst_status *st, unsigned long long *seed) {
    static const int order[NSHAPES] = {3, 0, 1, 2};
    for (int o = 0; o < NSHAPES; o++) {
        int i = order[o];
        const shape *s = &b->s[i];
        size_t count = (size_t)s->m * s->n;
        if ((*st = nst_write_floats(rt, b->dc[i], 0, count, b->c0)) != NST_OK) return 0;
        if ((*st = bench_product(rt, b, i)) != NST_OK) return 0;
        if ((*st = nst_read_floats(rt, b->dc[i], 0, count, b->out)) != NST_OK) return 0;
        const float *bm = s->trans_b ? b->a : b->b;
        for (int t = 0; t < 200; t++) {
            int r = t == 0 ? s->m - 1 : rng_below(seed, s->m);
            int c = t == 1 ? s->n - 1 : rng_below(seed, s->n);
            double sum = 0, mag = 0;
            for (int k = 0; k < s->k; k++) {
                double x = b->a[(size_t)r * s->k + k];
                double y = s->trans_b ? bm[(size_t)c * s->k + k] : bm[(size_t)k * s->n + c];
                sum += x * y;
                mag += x * y < 0 ? -x * y : x * y;
            }
            size_t at = (size_t)r * s->n + c;
            double want = s->alpha * sum + s->beta * b->c0[at];
            double err = b->out[at] - want;
            if (err < 0) err = -err;
            if (!(err <= 3e-5 * mag + 1e-5)) return 0;
        }
    }
    return 1;
}

/* Seconds for one run of the timed products: the set runs `reps` times per
 * timing, and a timing stops as soon as it passes `limit` (a candidate
 * clearly slower than the best so far), returning 1e30. */
static double bench_timing(nst_runtime *rt, bench *b, int reps, double limit, nst_status *st) {
    double t0 = now_seconds();
    for (int r = 0; r < reps; r++)
        for (int i = 0; i < NTIMED; i++) {
            if ((*st = bench_product(rt, b, i)) != NST_OK) return 1e30;
            if ((*st = nst_finish(rt)) != NST_OK) return 1e30;
            if (now_seconds() - t0 > limit * reps) return 1e30;
        }
    return (now_seconds() - t0) / reps;
}

/* Seconds for the set: the better of two timings (one when clearly slow, or
 * when the budget is short). The first timing fixes how many runs of the
 * set one timing takes, so that fast devices are not timed on a few
 * milliseconds. */
static double bench_time(nst_runtime *rt, bench *b, int timings, double best, nst_status *st,
                         int *reps) {
    double t = 1e30;
    for (int k = 0; k < timings; k++) {
        double dt = bench_timing(rt, b, *reps, 1.5 * best, st);
        if (*st != NST_OK || dt >= 1e30) return dt;
        if (*reps == 1 && dt < b->min_time) { /* too short to time well: more runs */
            *reps = (int)(b->min_time / (dt > 1e-6 ? dt : 1e-6)) + 1;
            if (*reps > 1000) *reps = 1000;
            k--;
            continue;
        }
        if (dt < t) t = dt;
        if (t > 1.5 * best) break;
    }
    return t;
}

static void bench_free(nst_runtime *rt, bench *b) {
    free(b->a);
    free(b->b);
    free(b->c0);
    free(b->out);
    nst_buffer_free(rt, b->da);
    nst_buffer_free(rt, b->db);
    for (int i = 0; i < NSHAPES; i++) nst_buffer_free(rt, b->dc[i]);
}

/* The free size of a product with fixed sizes p and q: at least `want`, and
 * enough that m*n*k reaches `tiled_min`, rounded up to an odd number (no tile
 * divides it). */
static int free_size(int want, int p, int q, unsigned long long tiled_min) {
    unsigned long long pq = (unsigned long long)p * q, n = (tiled_min + pq - 1) / pq;
    if (n < (unsigned long long)want) n = (unsigned long long)want;
    if (n > (1ULL << 24)) n = 1ULL << 24; /* CLBlast's threshold is far below */
    return (int)(n | 1);
}

/* The set: convolution bands of block 2 (K = 128 x 9) and block 1 (K = 64 x
 * 9, beta = 1 as in the backward pass), and a Gram matrix, over `band`
 * pixels; each made large enough for CLBlast's tiled Xgemm kernel, the one
 * the parameters are for (smaller products go to its direct kernel, at a
 * size that depends on the device). */
static nst_status bench_setup(nst_runtime *rt, bench *b, int band) {
    nst_status st = NST_OK;
    memset(b, 0, sizeof *b);
    unsigned long long tmin = nst_gemm_tiled_min(rt);
    b->s[0] = (shape){128, free_size(band, 128, 1152, tmin), 1152, 0, 1.0f, 0.0f};
    b->s[1] = (shape){64, free_size(band, 64, 576, tmin), 576, 0, 0.5f, 1.0f};
    b->s[2] = (shape){128, 128, free_size(band, 128, 128, tmin), 1, 1.0f, 0.0f};
    b->s[3] = (shape){130, 1030, free_size(1500, 130, 1030, tmin), 0, 0.75f, 0.5f};
    size_t na = 0, nb = 0, nc = 0;
    b->tiled = tmin > 0;
    for (int i = 0; i < NSHAPES; i++) {
        const shape *s = &b->s[i];
        size_t a = (size_t)s->m * s->k, bb = (size_t)s->k * s->n, c = (size_t)s->m * s->n;
        na = a > na ? a : na;
        nb = !s->trans_b && bb > nb ? bb : nb;
        nc = c > nc ? c : nc;
        if (i < NTIMED) b->flop += 2.0 * s->m * s->n * s->k;
        b->tiled &= (unsigned long long)s->m * s->n * s->k >= tmin;
    }
    b->a = malloc(na * sizeof(float));
    b->b = malloc(nb * sizeof(float));
    b->c0 = malloc(nc * sizeof(float));
    b->out = malloc(nc * sizeof(float));
    if (!b->a || !b->b || !b->c0 || !b->out) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "tune: host matrices");
        goto fail;
    }
    unsigned long long s = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < na; i++) b->a[i] = (float)((rng_next(&s) >> 40) / 8388608.0 - 1.0);
    for (size_t i = 0; i < nb; i++) b->b[i] = (float)((rng_next(&s) >> 40) / 8388608.0 - 1.0);
    for (size_t i = 0; i < nc; i++) b->c0[i] = (float)((rng_next(&s) >> 40) / 8388608.0 - 1.0);
    NST_TRY(nst_buffer_create(rt, na * sizeof(float), &b->da));
    NST_TRY(nst_buffer_create(rt, nb * sizeof(float), &b->db));
    NST_TRY(nst_write_floats(rt, b->da, 0, na, b->a));
    NST_TRY(nst_write_floats(rt, b->db, 0, nb, b->b));
    for (int i = 0; i < NSHAPES; i++)
        NST_TRY(nst_buffer_create(rt, (size_t)b->s[i].m * b->s[i].n * sizeof(float), &b->dc[i]));
fail:
    return st;
}

#define MAX_TRIED 1024

nst_status nst_tune_gemm(nst_runtime *rt, const nst_tune_options *opt, nst_tune_result *out) {
    nst_status st = NST_OK;
    bench b;
    cand *tried = NULL;
    memset(out, 0, sizeof *out);
    memset(&b, 0, sizeof b);
    if (!(opt->seconds > 0))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "tune: a budget of %g seconds",
                        opt->seconds);
    if (nst_tune_path(rt, out->path, sizeof out->path) != 0)
        return nst_fail(RTM(rt), NST_ERR_IO,
                        "tune: no cache directory to save the result in; set NST_CACHE_DIR");
    const double t_start = now_seconds();
    /* what is tuned is CLBlast's kernel, even where the host BLAS runs the
     * products */
    const int gemm_host = rt->gemm_host;
    rt->gemm_host = 0;
    /* the baseline: CLBlast's own parameters, unless this process already
     * overrode them (which cannot be undone) */
    rt->tune_state = -1;
    snprintf(rt->tune_note, sizeof rt->tune_note, "CLBlast's own (tuning)");
    /* Building a candidate's kernels can take seconds (on a CPU, 10 s and
     * more), so the rest of each candidate's cost is kept small: the band
     * grows with the budget (to the sizes of a 512-pixel image's layers at
     * 256 s and more), and under 60 s the baseline and each candidate are
     * timed once. */
    int band = opt->seconds >= 256 ? 16384 : (int)(opt->seconds * 64);
    NST_TRY(bench_setup(rt, &b, band < 2048 ? 2048 : band));
    b.min_time = opt->seconds / 400 < 0.02 ? 0.02 : opt->seconds / 400 > 0.25 ? 0.25
                                                                             : opt->seconds / 400;
    const int timings = opt->seconds >= 60 ? 2 : 1;
    int reps = 1;
    unsigned long long seed = opt->seed ? opt->seed : 0x2545f4914f6cdd1dULL;
    unsigned long long check_seed = seed ^ 0x5851f42d4c957f2dULL;
    if (!bench_check(rt, &b, &st, &check_seed)) {
        if (st == NST_OK)
            st = nst_fail(RTM(rt), NST_ERR_BLAS,
                          "tune: CLBlast's default GEMM disagrees with the reference on %s",
                          rt->info.name);
        goto fail;
    }
    double t_default = bench_time(rt, &b, timings, 1e30, &st, &reps);
    if (st != NST_OK) goto fail;
    out->tiled = b.tiled;
    double t_best = t_default;
    out->default_gflops = b.flop / t_default * 1e-9;
    progress(opt, "CLBlast's own parameters: %.1f GFLOP/s", out->default_gflops);

    const size_t max_wg = rt->info.max_work_group;
    const unsigned long long lm = rt->info.local_mem;
    tried = calloc(MAX_TRIED, sizeof *tried);
    if (!tried) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "tune");
        goto fail;
    }
    cand best, fastest, c, prev;
    double t_any = 1e30;
    int have_best = 0, ntried = 0;
    nst_msg saved = rt->msg;
    /* a previous result for this device is tried first: tuning again only
     * improves on it (up to timing noise) */
    char why[400];
    int have_prev = read_file(rt, out->path, &prev, why, sizeof why) == 1;
    const double t_search = now_seconds();
    /* at least one candidate; none started that would end well past the
     * budget (by half of what a candidate has taken so far) */
    while (ntried < MAX_TRIED &&
           (ntried == 0 || now_seconds() - t_start +
                                   0.5 * (now_seconds() - t_search) / ntried < opt->seconds)) {
        /* explore first, then mostly refine the best */
        int explore = !have_best || now_seconds() - t_start < opt->seconds / 3 ||
                      rng_below(&seed, 3) == 0;
        int dup = 1;
        if (have_prev) {
            c = prev;
            have_prev = dup = 0;
        }
        for (int g = 0; g < 50 && dup; g++) {
            if (explore) cand_random(&c, &seed, max_wg, lm);
            else cand_mutate(&c, &best, &seed, max_wg, lm);
            dup = 0;
            for (int i = 0; i < ntried && !dup; i++) dup = !memcmp(&tried[i], &c, sizeof c);
        }
        if (dup) break; /* the space is exhausted */
        tried[ntried++] = c;
        out->tried++;
        char desc[320];
        cand_format(&c, desc, sizeof desc);
        nst_status cst = cand_apply(rt, &c);
        int ok = cst == NST_OK && bench_check(rt, &b, &cst, &check_seed);
        double t = ok ? bench_time(rt, &b, timings, t_best, &cst, &reps) : 1e30;
        if (cst != NST_OK) {
            out->failed++;
            progress(opt, "  failed: %s (%.120s)", desc, rt->msg.text);
            rt->msg = saved;
            continue;
        }
        if (!ok) {
            out->rejected++;
            progress(opt, "  wrong results, rejected: %s", desc);
            continue;
        }
        if (t < t_any) {
            t_any = t;
            fastest = c;
        }
        if (t < t_best) {
            t_best = t;
            best = c;
            have_best = 1;
            progress(opt, "%6.1f GFLOP/s  %s", b.flop / t * 1e-9, desc);
        }
    }
    out->elapsed = now_seconds() - t_start;
    if (ntried > 0) out->candidate_seconds = (now_seconds() - t_search) / ntried;
    /* keep the defaults unless a candidate is clearly faster */
    int use = have_best && t_best < 0.97 * t_default;
    out->best_gflops = b.flop / (use ? t_best : t_default) * 1e-9;
    out->saved_params = use;
    if (use) cand_format(&best, out->params, sizeof out->params);
    if (write_file(rt, out->path, use ? &best : NULL, out->best_gflops, out->default_gflops)) {
        st = nst_fail(RTM(rt), NST_ERR_IO, "tune: cannot write %s", out->path);
        goto fail;
    }
    /* CLBlast's own cannot be restored in this process: without a winner,
     * leave the fastest candidate in effect rather than the last one */
    if (!use && ntried > 0 && t_any < 1e30) cand_apply(rt, &fastest);
    rt->msg = saved;
    nst_tune_apply_saved(rt); /* reads back what was written */
fail:
    rt->gemm_host = gemm_host;
    if (st != NST_OK) rt->tune_state = 0;
    free(tried);
    bench_free(rt, &b);
    return st;
}
