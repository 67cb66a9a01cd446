/* program.c: the embedded OpenCL programs, their build options, the on-disk
 * program-binary cache, kernel lookup and the kernel launcher.
 *
 * Each cl/NAME.cl is one program; cl/common.cl is prepended to every one.
 * Binaries are cached under ${NST_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/nst}
 * keyed by a hash of the sources, the options, the platform, the device, the
 * driver and nst's version. A bad cache entry is deleted and rebuilt. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "nst_int.h"
#include "tune.h"
#include "programs.h" /* generated: nst_programs[], nst_program_count, common source */

/* The programs: every cl/NAME.cl but common.cl, and winograd.cl once per
 * Winograd tile size (a run uses one of them, and a build compiles only its
 * kernels). */
typedef struct prog_def {
    const char *name;
    const nst_program_src *src;
    const char *defines;
} prog_def;

static prog_def g_progs[NST_MAX_PROGRAMS];
static int g_nprogs;
static pthread_once_t g_progs_once = PTHREAD_ONCE_INIT;

static void progs_init(void) {
    for (int i = 0; i < nst_program_count && g_nprogs + 2 <= NST_MAX_PROGRAMS; i++) {
        if (!strcmp(nst_programs[i].name, "winograd")) {
            g_progs[g_nprogs++] = (prog_def){"winograd2", &nst_programs[i], "-DWG_M=2"};
            g_progs[g_nprogs++] = (prog_def){"winograd4", &nst_programs[i], "-DWG_M=4"};
        } else {
            g_progs[g_nprogs++] = (prog_def){nst_programs[i].name, &nst_programs[i], ""};
        }
    }
}

static int prog_count(void) {
    pthread_once(&g_progs_once, progs_init);
    return g_nprogs;
}

static int prog_slot(const char *name) {
    for (int i = 0; i < prog_count(); i++)
        if (!strcmp(g_progs[i].name, name)) return i;
    return -1;
}

const nst_program_src *nst_program_find(const char *name) {
    for (int i = 0; i < nst_program_count; i++)
        if (!strcmp(nst_programs[i].name, name)) return &nst_programs[i];
    return NULL;
}

const nst_program_src *nst_program_common(void) { return &nst_program_common_src; }

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- sources (embedded, or from $NST_CL_DIR while developing) ------------ */

static char *read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = NULL;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1))) {
            if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
                free(buf);
                buf = NULL;
            } else {
                buf[n] = 0;
                *len = (size_t)n;
            }
        }
    }
    fclose(f);
    return buf;
}

/* Loads common + program source; the pointers are either the embedded arrays
 * or malloc'ed copies from settings.cl_dir (flagged in owned[]). */
static void load_sources(const nst_runtime *rt, const nst_program_src *p, const char *src[2],
                         size_t len[2], int owned[2]) {
    const nst_program_src *parts[2] = {&nst_program_common_src, p};
    const char *dir = rt->settings.cl_dir;
    for (int i = 0; i < 2; i++) {
        src[i] = parts[i]->src;
        len[i] = parts[i]->len;
        owned[i] = 0;
        if (dir && *dir) {
            char path[NST_PATH_MAX + 64];
            snprintf(path, sizeof path, "%s/%s.cl", dir, parts[i]->name);
            size_t n = 0;
            char *s = read_file(path, &n);
            if (s) {
                src[i] = s;
                len[i] = n;
                owned[i] = 1;
            }
        }
    }
}

static void free_sources(const char *src[2], const int owned[2]) {
    for (int i = 0; i < 2; i++)
        if (owned[i]) free((char *)src[i]);
}

/* The build options of a program on rt: the standard, the program's own,
 * the device's (NST_TF32_MMA where tensor cores take inline PTX: mma.cl's
 * kernels exist only there), settings.cl_options. */
static void build_options(const nst_runtime *rt, const prog_def *d, char *opts, size_t len) {
    const int mma = rt->info.tf32 && !strcmp(d->name, "mma");
    snprintf(opts, len, "%s %s%s %s", rt->cl12 ? "-cl-std=CL1.2" : "", d->defines,
             mma ? " -DNST_TF32_MMA" : "", rt->settings.cl_options);
}

/* ---- the cache ---------------------------------------------------------- */

static uint64_t fnv1a(uint64_t h, const void *data, size_t n) {
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static uint64_t fnv1a_str(uint64_t h, const char *s) { return fnv1a(h, s, strlen(s) + 1); }

int nst_cache_dir_why(const nst_runtime *rt, char *buf, size_t len, char *why, size_t wlen) {
    const char *d = rt->settings.cache_dir;
    if (why && wlen) why[0] = 0;
    if (!*d || snprintf(buf, len, "%s", d) >= (int)len) {
        if (why && wlen)
            snprintf(why, wlen, "%s",
                     *d ? "its name is too long"
                        : "there is none (neither HOME nor XDG_CACHE_HOME is set)");
        return -1;
    }
    /* mkdir -p */
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    int bad = mkdir(buf, 0755) != 0 && errno != EEXIST;
    if (!bad && access(buf, W_OK | X_OK) != 0) bad = 1;
    if (bad && why && wlen)
        snprintf(why, wlen, "cannot create or write %s: %s", buf, strerror(errno));
    return bad ? -1 : 0;
}

int nst_cache_dir(const nst_runtime *rt, char *buf, size_t len) {
    return nst_cache_dir_why(rt, buf, len, NULL, 0);
}

/* The hash of what a compiled program depends on besides its source. */
static uint64_t device_hash(const nst_runtime *rt) {
    char pver[128] = "";
    clGetPlatformInfo(rt->platform, CL_PLATFORM_VERSION, sizeof pver, pver, NULL);
    pver[sizeof pver - 1] = 0;
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a_str(h, rt->info.platform);
    h = fnv1a_str(h, pver);
    h = fnv1a_str(h, rt->info.name);
    h = fnv1a_str(h, rt->info.version);
    h = fnv1a_str(h, rt->info.driver);
    h = fnv1a_str(h, NST_VERSION);
    return h;
}

/* The cache entry of a program: NAME-HASH.bin holds its binary; where the
 * driver keeps binaries itself (cache_binaries 0), NAME-HASH.built only
 * records that it was compiled. */
static int cache_path(const nst_runtime *rt, const char *name, const char *src[2],
                      const size_t len[2], const char *opts, char *path, size_t plen) {
    char dir[900];
    if (nst_cache_dir(rt, dir, sizeof dir) != 0) return -1;
    uint64_t h = device_hash(rt);
    h = fnv1a(h, src[0], len[0]);
    h = fnv1a(h, src[1], len[1]);
    h = fnv1a_str(h, opts);
    snprintf(path, plen, "%s/%s-%016llx.%s", dir, name, (unsigned long long)h,
             rt->cache_binaries ? "bin" : "built");
    return 0;
}

/* Writes data (head, then body) to path through a temporary file. */
static void write_atomic(const char *path, const void *head, size_t hn, const void *body,
                         size_t bn) {
    char tmp[1200];
    snprintf(tmp, sizeof tmp, "%s.%ld.%lx.tmp", path, (long)getpid(),
             (unsigned long)(uintptr_t)&tmp);
    FILE *f = fopen(tmp, "wb");
    if (!f) return;
    int ok = fwrite(head, 1, hn, f) == hn && fwrite(body, 1, bn, f) == bn;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) remove(tmp);
}

int nst_cache_note_path(const nst_runtime *rt, const char *name, const char *extra,
                        const char *extra_file, char *path, size_t plen) {
    char dir[900];
    if (rt->no_cache || nst_cache_dir(rt, dir, sizeof dir) != 0) return -1;
    uint64_t h = fnv1a_str(device_hash(rt), extra);
    size_t n = 0;
    char *file = extra_file ? read_file(extra_file, &n) : NULL;
    if (file) h = fnv1a(h, file, n);
    free(file);
    snprintf(path, plen, "%s/%s-%016llx.built", dir, name, (unsigned long long)h);
    return 0;
}

void nst_cache_note_write(const char *path) { write_atomic(path, "", 0, "", 0); }

/* A cache file is CACHE_MAGIC, the FNV-1a hash of the binary (u64 little
 * endian), then the binary. Drivers do not validate binaries (PoCL reads past
 * the end of a short one), so a truncated or corrupt file is caught here and
 * never handed to clCreateProgramWithBinary. */
#define CACHE_MAGIC "NSTBIN1\n"
#define CACHE_HEAD 16

static cl_program load_cached(const nst_runtime *rt, const char *path, const char *opts) {
    size_t n = 0;
    unsigned char *file = (unsigned char *)read_file(path, &n);
    if (!file) return NULL;
    cl_int e = CL_SUCCESS, bst = CL_SUCCESS;
    const unsigned char *bins[1] = {file + CACHE_HEAD};
    cl_program p = NULL;
    uint64_t want = 0;
    for (int i = 0; n > CACHE_HEAD && i < 8; i++) want |= (uint64_t)file[8 + i] << (8 * i);
    if (n > CACHE_HEAD && !memcmp(file, CACHE_MAGIC, 8) &&
        fnv1a(0xcbf29ce484222325ULL, bins[0], n - CACHE_HEAD) == want) {
        n -= CACHE_HEAD;
        p = clCreateProgramWithBinary(rt->ctx, 1, &rt->device, &n, bins, &bst, &e);
    }
    free(file);
    if (p && (e != CL_SUCCESS || bst != CL_SUCCESS ||
              clBuildProgram(p, 1, &rt->device, opts, NULL, NULL) != CL_SUCCESS)) {
        clReleaseProgram(p);
        p = NULL;
    }
    if (!p) remove(path); /* corrupt or stale: rebuild from source */
    return p;
}

static void store_cached(const nst_runtime *rt, cl_program p, const char *path) {
    if (!rt->cache_binaries) { /* the driver has the binary: only say it was built */
        write_atomic(path, "", 0, "", 0);
        return;
    }
    size_t n = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || n == 0)
        return;
    unsigned char *bin = malloc(n);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
        unsigned char head[CACHE_HEAD];
        uint64_t h = fnv1a(0xcbf29ce484222325ULL, bin, n);
        memcpy(head, CACHE_MAGIC, 8);
        for (int i = 0; i < 8; i++) head[8 + i] = (unsigned char)(h >> (8 * i));
        write_atomic(path, head, CACHE_HEAD, bin, n);
    }
    free(bin);
}

/* ---- building ----------------------------------------------------------- */

/* One program build. It touches nothing in rt but programs[slot], so builds
 * of different slots may run on several threads at once (OpenCL allows
 * clBuildProgram on different programs from different threads). */
typedef struct build_out {
    nst_msg msg;
    int hit;        /* loaded from the cache (or, without binaries, built before) */
    double seconds;
} build_out;

/* 1 when the program in slot is in the cache (without building it). */
static int program_cached(const nst_runtime *rt, int slot) {
    if (rt->no_cache) return 0;
    const char *src[2];
    size_t len[2];
    int owned[2];
    char opts[600], path[1100];
    load_sources(rt, g_progs[slot].src, src, len, owned);
    build_options(rt, &g_progs[slot], opts, sizeof opts);
    int ok = cache_path(rt, g_progs[slot].name, src, len, opts, path, sizeof path) == 0 &&
             access(path, R_OK) == 0;
    free_sources(src, owned);
    return ok;
}

static nst_status build_program(nst_runtime *rt, int slot, build_out *out) {
    const prog_def *d = &g_progs[slot];
    const char *src[2];
    size_t len[2];
    int owned[2];
    char opts[600]; /* the standard, the program's defines, settings.cl_options */
    char path[1100];
    nst_status st = NST_OK;
    cl_program prog = NULL;
    cl_int e = CL_SUCCESS;
    double t0 = now_seconds();
    nst_msg *msg = &out->msg;
    out->hit = 0;

    load_sources(rt, d->src, src, len, owned);
    build_options(rt, d, opts, sizeof opts);
    int cache = !rt->no_cache && cache_path(rt, d->name, src, len, opts, path, sizeof path) == 0;
    if (cache && rt->cache_binaries) prog = load_cached(rt, path, opts);
    if (prog) {
        out->hit = 1;
    } else {
        if (cache && !rt->cache_binaries) out->hit = access(path, R_OK) == 0;
        prog = clCreateProgramWithSource(rt->ctx, 2, src, len, &e);
        NST_CL(msg, e);
        e = clBuildProgram(prog, 1, &rt->device, opts, NULL, NULL);
        if (e != CL_SUCCESS) {
            size_t loglen = 0;
            char log[3000] = "";
            clGetProgramBuildInfo(prog, rt->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log,
                                  &loglen);
            log[sizeof log - 1] = 0;
            st = nst_fail(msg, NST_ERR_BUILD,
                          "building OpenCL program '%s' for %s failed (%s); build log:\n%s",
                          d->name, rt->info.name, nst_cl_error_name(e), log);
            goto fail;
        }
        if (cache && !out->hit) store_cached(rt, prog, path);
    }
    rt->programs[slot] = prog;
    prog = NULL;
fail:
    if (prog) clReleaseProgram(prog);
    free_sources(src, owned);
    out->seconds = now_seconds() - t0;
    return st;
}

/* Counts a finished build in rt (on the thread that owns rt). */
static void count_build(nst_runtime *rt, const build_out *b) {
    if (b->hit)
        rt->cache_hits++;
    else
        rt->cache_misses++;
    rt->build_seconds += b->seconds;
}

static nst_status program_get(nst_runtime *rt, const char *name, cl_program *out) {
    int i = prog_slot(name);
    if (i < 0) return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "no OpenCL program named '%s'", name);
    if (!rt->programs[i]) {
        build_out b;
        b.msg.text[0] = 0;
        nst_status st = build_program(rt, i, &b);
        count_build(rt, &b);
        if (st != NST_OK) {
            *RTM(rt) = b.msg;
            return st;
        }
        rt->lazy_builds++;
    }
    rt->programs_used |= 1u << i;
    *out = rt->programs[i];
    return NST_OK;
}

nst_status nst_programs_build_all(nst_runtime *rt) {
    const char *names[NST_MAX_PROGRAMS];
    int n = prog_count();
    for (int i = 0; i < n; i++) names[i] = g_progs[i].name;
    return nst_programs_prepare(rt, names, n, 0, NULL, NULL);
}

/* ---- preparing a run: several builds at once, with progress --------------- */

typedef struct prep_unit {
    const char *name; /* the program's, or the BLAS routine's */
    int slot;         /* the program's slot, or -1 for a BLAS routine */
    unsigned blas;    /* the NST_BLAS_* bit of a BLAS routine */
    int cached;       /* found in a cache beforehand: no progress event */
    int taken;        /* a worker has taken it */
    nst_status st;
    build_out out;
} prep_unit;

typedef struct prep_ctx {
    nst_runtime *rt;
    prep_unit *units;
    int n, taken, finished;
    int *order;    /* units in the order they finished */
    int stop;
    int blas_busy; /* CLBlast builds one routine at a time: its database
                      setup is not thread-safe (1.5 crashes) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
} prep_ctx;

static void prep_run_unit(nst_runtime *rt, prep_unit *u) {
    if (u->slot >= 0) {
        u->st = build_program(rt, u->slot, &u->out);
    } else {
        double t0 = now_seconds();
        nst_blas_compile(rt, u->blas); /* a failure shows (and is handled) at first use */
        u->st = NST_OK;
        u->out.hit = u->cached;
        u->out.seconds = now_seconds() - t0;
    }
}

/* Takes the first unit not taken that may start now (-1: none). */
static int prep_take(prep_ctx *c) {
    for (int i = 0; i < c->n; i++) {
        prep_unit *u = &c->units[i];
        if (u->taken || (u->slot < 0 && c->blas_busy)) continue;
        u->taken = 1;
        c->taken++;
        if (u->slot < 0) c->blas_busy = 1;
        return i;
    }
    return -1;
}

static void *prep_worker(void *arg) {
    prep_ctx *c = arg;
    pthread_mutex_lock(&c->mu);
    while (!c->stop && c->taken < c->n) {
        int i = prep_take(c);
        if (i < 0) { /* only BLAS routines left, one running */
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        pthread_mutex_unlock(&c->mu);
        prep_run_unit(c->rt, &c->units[i]);
        pthread_mutex_lock(&c->mu);
        if (c->units[i].slot < 0) c->blas_busy = 0;
        c->order[c->finished++] = i;
        pthread_cond_broadcast(&c->cv);
    }
    pthread_mutex_unlock(&c->mu);
    return NULL;
}

static int prep_threads(const nst_runtime *rt, int units) {
    long cpus = rt->build_threads > 0 ? rt->build_threads : sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) cpus = 1;
    if (cpus > 8) cpus = 8;
    return units < cpus ? units : (int)cpus;
}

nst_status nst_programs_prepare(nst_runtime *rt, const char *const *names, int nnames,
                                unsigned blas, nst_prepare_fn report, void *user) {
    prep_unit units[NST_MAX_PROGRAMS + 8];
    int order[NST_MAX_PROGRAMS + 8];
    int n = 0, total = 0;
    nst_status st = NST_OK;
    memset(units, 0, sizeof units);
    /* the BLAS routines first: CLBlast's programs are the largest (the host
     * BLAS compiles nothing) */
    if (rt->gemm_host) blas = 0;
    if (blas && rt->tune_state == 0) nst_tune_apply_saved(rt);
    for (unsigned bit = 1; bit && bit <= blas && n < 8; bit <<= 1) {
        const char *name = (blas & bit) && !(rt->blas_ready & bit) ? nst_blas_routine_name(bit)
                                                                   : NULL;
        if (!name) continue;
        units[n].name = name;
        units[n].slot = -1;
        units[n].blas = bit;
        units[n].cached = nst_blas_cached(rt, bit);
        n++;
    }
    for (int i = 0; i < nnames; i++) {
        int slot = prog_slot(names[i]);
        if (slot < 0)
            return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "no OpenCL program named '%s'",
                            names[i]);
        int dup = rt->programs[slot] != NULL;
        for (int j = 0; j < n; j++) dup |= units[j].slot == slot;
        if (dup) continue;
        units[n].name = g_progs[slot].name;
        units[n].slot = slot;
        units[n].cached = program_cached(rt, slot);
        n++;
    }
    if (n == 0) return NST_OK;
    for (int i = 0; i < n; i++) total += !units[i].cached;

    prep_ctx c;
    memset(&c, 0, sizeof c);
    c.rt = rt;
    c.units = units;
    c.n = n;
    c.order = order;
    pthread_mutex_init(&c.mu, NULL);
    pthread_cond_init(&c.cv, NULL);
    int done = 0;
    if (report && total > 0 && report(0, total, NULL, user)) c.stop = 1;
    pthread_t th[8];
    int nth = 0, want = c.stop ? 0 : prep_threads(rt, n);
    while (nth < want && pthread_create(&th[nth], NULL, prep_worker, &c) == 0) nth++;
    if (nth == 0) prep_worker(&c); /* no threads: build them here */
    /* Each finished build is reported from this thread. The loop ends when
     * every build taken has finished and no more will be taken. */
    pthread_mutex_lock(&c.mu);
    for (int seen = 0;;) {
        while (seen == c.finished && !(c.finished == c.taken && (c.stop || c.taken == c.n)))
            pthread_cond_wait(&c.cv, &c.mu);
        if (seen == c.finished) break;
        prep_unit *u = &units[c.order[seen++]];
        if (u->st != NST_OK) {
            if (st == NST_OK) {
                st = u->st;
                *RTM(rt) = u->out.msg;
            }
            c.stop = 1;
        } else if (!u->cached && report && !c.stop) {
            pthread_mutex_unlock(&c.mu);
            int halt = report(++done, total, u->name, user);
            pthread_mutex_lock(&c.mu);
            if (halt) c.stop = 1;
        }
    }
    pthread_mutex_unlock(&c.mu);
    for (int i = 0; i < nth; i++) pthread_join(th[i], NULL);
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    for (int i = 0; i < c.finished; i++) {
        prep_unit *u = &units[order[i]];
        if (u->st != NST_OK) continue;
        if (u->slot >= 0)
            count_build(rt, &u->out);
        else
            rt->blas_ready |= u->blas;
    }
    if (st == NST_OK && c.stop)
        st = nst_fail(RTM(rt), NST_ERR_INTERRUPTED, "stopped while compiling kernels");
    return st;
}

nst_status nst_kernel_get(nst_runtime *rt, const char *program, const char *name, cl_kernel *out) {
    for (int i = 0; i < rt->nkernels; i++) {
        if (!strcmp(rt->kernels[i].name, name) && !strcmp(rt->kernels[i].program, program)) {
            *out = rt->kernels[i].kernel;
            return NST_OK;
        }
    }
    nst_status st = NST_OK;
    cl_program prog = NULL;
    cl_int e = CL_SUCCESS;
    NST_TRY(program_get(rt, program, &prog));
    if (rt->nkernels == NST_MAX_KERNELS) {
        st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "too many kernels (raise NST_MAX_KERNELS)");
        goto fail;
    }
    cl_kernel k = clCreateKernel(prog, name, &e);
    NST_CL(RTM(rt), e);
    rt->kernels[rt->nkernels].program = program;
    rt->kernels[rt->nkernels].name = name;
    rt->kernels[rt->nkernels].kernel = k;
    size_t kwg = 0;
    if (clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE, sizeof kwg, &kwg,
                                 NULL) != CL_SUCCESS || kwg == 0)
        kwg = rt->info.max_work_group;
    rt->kernels[rt->nkernels].max_wg = kwg;
    rt->nkernels++;
    *out = k;
fail:
    return st;
}

nst_status nst_launch(nst_runtime *rt, const char *program, const char *name, int dims,
                      const size_t *global, const size_t *local, int nargs, ...) {
    nst_status st = NST_OK;
    cl_kernel k;
    NST_TRY(nst_kernel_get(rt, program, name, &k));
    size_t kwg = rt->info.max_work_group;
    for (int i = 0; i < rt->nkernels; i++)
        if (rt->kernels[i].kernel == k) kwg = rt->kernels[i].max_wg;
    va_list ap;
    va_start(ap, nargs);
    for (int i = 0; i < nargs; i++) {
        size_t size = va_arg(ap, size_t);
        const void *val = va_arg(ap, const void *);
        cl_int e = clSetKernelArg(k, (cl_uint)i, size, val);
        if (e != CL_SUCCESS) {
            va_end(ap);
            char what[160];
            snprintf(what, sizeof what, "clSetKernelArg(%s, %d)", name, i);
            st = nst_fail_cl(RTM(rt), e, what, __FILE__, __LINE__);
            goto fail;
        }
    }
    va_end(ap);
    size_t g[3], l[3];
    size_t lsize = 1;
    for (int d = 0; d < dims; d++) {
        if (global[d] == 0) return NST_OK; /* nothing to do */
        if (local) {
            l[d] = local[d];
            lsize *= l[d];
        }
    }
    /* A 1-D kernel whose own limit is below the device's gets a smaller
     * work-group (a power of two); kernels sizing local memory pass exact
     * sizes within the limit and are not changed. */
    if (local && dims == 1 && lsize > kwg) {
        size_t w = 1;
        while (w * 2 <= kwg) w *= 2;
        l[0] = w;
    }
    for (int d = 0; d < dims; d++) g[d] = local ? nst_round_up(global[d], l[d]) : global[d];
    cl_event ev = NULL;
    cl_int e = clEnqueueNDRangeKernel(rt->queue, k, (cl_uint)dims, NULL, g, local ? l : NULL, 0,
                                      NULL, rt->profile ? &ev : NULL);
    if (e != CL_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what, "clEnqueueNDRangeKernel(%s)", name);
        st = nst_fail_cl(RTM(rt), e, what, __FILE__, __LINE__);
        goto fail;
    }
    nst_profile_add(rt, name, ev);
fail:
    return st;
}

nst_status nst_runtime_build_all(nst_runtime *rt, double *seconds) {
    if (!rt) return NST_ERR_INVALID_ARG;
    double before = rt->build_seconds;
    nst_status st = nst_programs_build_all(rt);
    if (seconds) *seconds = rt->build_seconds - before;
    return st;
}
