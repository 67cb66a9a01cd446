/* program.c: the embedded OpenCL programs, their build options, the on-disk
 * program-binary cache, kernel lookup and the kernel launcher.
 *
 * Each cl/NAME.cl is one program; cl/common.cl is prepended to every one.
 * Binaries are cached under ${NST_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/nst}
 * keyed by a hash of the sources, the options, the platform, the device, the
 * driver and nst's version. A bad cache entry is deleted and rebuilt. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "nst_int.h"
#include "programs.h" /* generated: nst_programs[], nst_program_count, common source */

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

int nst_cache_dir(const nst_runtime *rt, char *buf, size_t len) {
    const char *d = rt->settings.cache_dir;
    if (!*d || snprintf(buf, len, "%s", d) >= (int)len) return -1;
    /* mkdir -p */
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

static int cache_path(nst_runtime *rt, const char *name, const char *src[2], const size_t len[2],
                      const char *opts, char *path, size_t plen) {
    char dir[900];
    if (nst_cache_dir(rt, dir, sizeof dir) != 0) return -1;
    char pver[128] = "";
    clGetPlatformInfo(rt->platform, CL_PLATFORM_VERSION, sizeof pver, pver, NULL);
    pver[sizeof pver - 1] = 0;
    uint64_t h = 0xcbf29ce484222325ULL;
    h = fnv1a(h, src[0], len[0]);
    h = fnv1a(h, src[1], len[1]);
    h = fnv1a_str(h, opts);
    h = fnv1a_str(h, rt->info.platform);
    h = fnv1a_str(h, pver);
    h = fnv1a_str(h, rt->info.name);
    h = fnv1a_str(h, rt->info.version);
    h = fnv1a_str(h, rt->info.driver);
    h = fnv1a_str(h, NST_VERSION);
    snprintf(path, plen, "%s/%s-%016llx.bin", dir, name, (unsigned long long)h);
    return 0;
}

/* A cache file is CACHE_MAGIC, the FNV-1a hash of the binary (u64 little
 * endian), then the binary. Drivers do not validate binaries (PoCL reads past
 * the end of a short one), so a truncated or corrupt file is caught here and
 * never handed to clCreateProgramWithBinary. */
#define CACHE_MAGIC "NSTBIN1\n"
#define CACHE_HEAD 16

static cl_program load_cached(nst_runtime *rt, const char *path, const char *opts) {
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

static void store_cached(nst_runtime *rt, cl_program p, const char *path) {
    size_t n = 0;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARY_SIZES, sizeof n, &n, NULL) != CL_SUCCESS || n == 0)
        return;
    unsigned char *bin = malloc(n);
    if (!bin) return;
    unsigned char *bins[1] = {bin};
    (void)rt;
    if (clGetProgramInfo(p, CL_PROGRAM_BINARIES, sizeof bins, bins, NULL) == CL_SUCCESS) {
        char tmp[1200];
        snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
        FILE *f = fopen(tmp, "wb");
        if (f) {
            unsigned char head[CACHE_HEAD];
            uint64_t h = fnv1a(0xcbf29ce484222325ULL, bin, n);
            memcpy(head, CACHE_MAGIC, 8);
            for (int i = 0; i < 8; i++) head[8 + i] = (unsigned char)(h >> (8 * i));
            int ok = fwrite(head, 1, CACHE_HEAD, f) == CACHE_HEAD && fwrite(bin, 1, n, f) == n;
            ok = (fclose(f) == 0) && ok;
            if (!ok || rename(tmp, path) != 0) remove(tmp);
        }
    }
    free(bin);
}

/* ---- building ----------------------------------------------------------- */

static nst_status build_program(nst_runtime *rt, int slot) {
    const nst_program_src *p = &nst_programs[slot];
    const char *src[2];
    size_t len[2];
    int owned[2];
    char opts[600]; /* the standard and settings.cl_options */
    char path[1100];
    nst_status st = NST_OK;
    cl_program prog = NULL;
    cl_int e = CL_SUCCESS;
    double t0 = now_seconds();

    load_sources(rt, p, src, len, owned);
    snprintf(opts, sizeof opts, "%s %s", rt->cl12 ? "-cl-std=CL1.2" : "", rt->settings.cl_options);
    int cache = !rt->no_cache &&
                cache_path(rt, p->name, src, len, opts, path, sizeof path) == 0;
    if (cache) prog = load_cached(rt, path, opts);
    if (prog) {
        rt->cache_hits++;
    } else {
        rt->cache_misses++;
        prog = clCreateProgramWithSource(rt->ctx, 2, src, len, &e);
        NST_CL(RTM(rt), e);
        e = clBuildProgram(prog, 1, &rt->device, opts, NULL, NULL);
        if (e != CL_SUCCESS) {
            size_t loglen = 0;
            char log[3000] = "";
            clGetProgramBuildInfo(prog, rt->device, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log,
                                  &loglen);
            log[sizeof log - 1] = 0;
            st = nst_fail(RTM(rt), NST_ERR_BUILD,
                          "building OpenCL program '%s' for %s failed (%s); build log:\n%s",
                          p->name, rt->info.name, nst_cl_error_name(e), log);
            goto fail;
        }
        if (cache) store_cached(rt, prog, path);
    }
    rt->programs[slot] = prog;
    prog = NULL;
fail:
    if (prog) clReleaseProgram(prog);
    for (int i = 0; i < 2; i++)
        if (owned[i]) free((char *)src[i]);
    rt->build_seconds += now_seconds() - t0;
    return st;
}

static nst_status program_get(nst_runtime *rt, const char *name, cl_program *out) {
    for (int i = 0; i < nst_program_count; i++) {
        if (strcmp(nst_programs[i].name, name) != 0) continue;
        if (!rt->programs[i]) {
            nst_status st = build_program(rt, i);
            if (st != NST_OK) return st;
        }
        *out = rt->programs[i];
        return NST_OK;
    }
    return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "no OpenCL program named '%s'", name);
}

nst_status nst_programs_build_all(nst_runtime *rt) {
    for (int i = 0; i < nst_program_count; i++) {
        cl_program p;
        nst_status st = program_get(rt, nst_programs[i].name, &p);
        if (st != NST_OK) return st;
    }
    return NST_OK;
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
