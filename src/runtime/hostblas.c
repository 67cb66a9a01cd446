/* hostblas.c: the BLAS routines nst uses, run by a host BLAS (OpenBLAS) on
 * the device's buffers mapped into the host, and the choice between this and
 * CLBlast (nst_gemm_choose). On a CPU device whose memory is the host's
 * (PoCL) mapping copies nothing, and an optimised host SGEMM runs the
 * products several times faster than OpenCL kernels on the same cores.
 * Mapping is ordinary OpenCL, so the results are right on any device.
 *
 * Ordering: the blocking map of the first buffer waits for everything
 * enqueued before (the queue is in order); the BLAS call runs on the host
 * while the device is idle; the unmaps are enqueued before anything that
 * follows, so later kernels see the results. The only file that includes
 * cblas.h. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nst_int.h"

#ifdef NST_HAVE_OPENBLAS
#include <cblas.h>
#include <pthread.h>
#endif

enum { MAX_THREADS = 64 };

/* ---- the choice ----------------------------------------------------------- */

int nst_host_blas_name(char *buf, size_t len) {
#ifdef NST_HAVE_OPENBLAS
    /* " OpenBLAS 0.3.21 " in openblas_config.h: trimmed */
    const char *s = OPENBLAS_VERSION;
    while (*s == ' ') s++;
    int n = (int)strlen(s);
    while (n > 0 && s[n - 1] == ' ') n--;
    snprintf(buf, len, "%.*s", n, s);
    return 1;
#else
    if (len) buf[0] = 0;
    return 0;
#endif
}

nst_status nst_gemm_choose(const nst_device_info *d, const char *setting, int *host,
                           nst_msg *msg) {
    const char *origin = "gemm setting (NST_GEMM)";
    int want; /* 1 host, 0 clblast, -1 auto */
    if (!setting || !*setting || !strcmp(setting, "auto")) want = -1;
    else if (!strcmp(setting, "host")) want = 1;
    else if (!strcmp(setting, "clblast")) want = 0;
    else
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "%s '%s': give auto, host (a host BLAS on mapped buffers) or clblast",
                        origin, setting);
    char name[64];
    const int have = nst_host_blas_name(name, sizeof name);
    if (want == 1 && !have)
        return nst_fail(msg, NST_ERR_BLAS,
                        "%s 'host': this nst was built without a host BLAS; install OpenBLAS "
                        "(libopenblas-dev) and rebuild, or use clblast",
                        origin);
    /* auto: a CPU device sharing the host's memory (its buffers are host
     * memory, so mapping them copies nothing) */
    if (want < 0) want = have && d && !strcmp(d->type, "CPU") && d->host_unified;
    *host = want;
    return NST_OK;
}

nst_status nst_gemm_setup(nst_runtime *rt, const char *setting, nst_msg *msg) {
    nst_status st = nst_gemm_choose(&rt->info, setting, &rt->gemm_host, msg);
    if (st != NST_OK) return st;
    if (!rt->gemm_host) {
        snprintf(rt->gemm_name, sizeof rt->gemm_name, "CLBlast %s", nst_blas_version());
        return NST_OK;
    }
#ifdef NST_HAVE_OPENBLAS
    /* The kernels and the BLAS never run at once (the BLAS waits for the
     * queue, the queue for the unmaps), so each may have every core: nst
     * splits each product over one thread per compute unit, each running
     * OpenBLAS single-threaded. OpenBLAS's own pool would do the splitting
     * as well, but its threads keep spinning for a while after each call
     * (2^28 cycles by default), taking the cores from the OpenCL kernels
     * that follow: on PoCL those ran about 1.5 times slower, and a whole
     * evaluation a quarter slower. Threads that exit when done cost nothing
     * after. */
    openblas_set_num_threads(1);
    long procs = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)rt->info.compute_units;
    if (procs > 0 && n > procs) n = (int)procs;
    rt->host_threads = n > MAX_THREADS ? MAX_THREADS : n < 1 ? 1 : n;
    char name[64];
    nst_host_blas_name(name, sizeof name);
    snprintf(rt->gemm_name, sizeof rt->gemm_name, "%s on the host (%d thread%s)", name,
             rt->host_threads, rt->host_threads == 1 ? "" : "s");
#endif
    return NST_OK;
}

const char *nst_runtime_gemm(const nst_runtime *rt) { return rt->gemm_name; }

/* ---- mapping -------------------------------------------------------------- */

#ifdef NST_HAVE_OPENBLAS

enum { MAX_MAPS = 3 };

/* The buffers of one call, each mapped once over the span of floats
 * [lo, hi) that the call touches (a buffer may be both read and written, as
 * the Winograd scratch is). */
typedef struct host_maps {
    cl_mem mem[MAX_MAPS];
    size_t lo[MAX_MAPS], hi[MAX_MAPS];
    int write[MAX_MAPS];
    void *ptr[MAX_MAPS];
    int n;
} host_maps;

/* Adds floats [off, off + extent) of buf; extent 0 adds nothing, an end
 * past SIZE_MAX is SIZE_MAX (refused by map_all). */
static void maps_add(host_maps *m, cl_mem buf, size_t off, size_t extent, int write) {
    if (extent == 0) return;
    const size_t end = extent > SIZE_MAX - off ? SIZE_MAX : off + extent;
    for (int i = 0; i < m->n; i++)
        if (m->mem[i] == buf) {
            if (off < m->lo[i]) m->lo[i] = off;
            if (end > m->hi[i]) m->hi[i] = end;
            m->write[i] |= write;
            return;
        }
    m->mem[m->n] = buf;
    m->lo[m->n] = off;
    m->hi[m->n] = end;
    m->write[m->n] = write;
    m->ptr[m->n] = NULL;
    m->n++;
}

/* Floats a row-major matrix of `rows` rows of `cols` with leading dimension
 * ld spans, repeated `batch` times `stride` apart; 0 when empty, SIZE_MAX
 * when it overflows. */
static size_t span(size_t rows, size_t cols, size_t ld, size_t batch, size_t stride) {
    if (rows == 0 || cols == 0 || batch == 0) return 0;
    if (ld != 0 && (rows - 1) > (SIZE_MAX - cols) / ld) return SIZE_MAX;
    size_t one = (rows - 1) * ld + cols;
    if (batch > 1 && (stride != 0 && (batch - 1) > (SIZE_MAX - one) / stride)) return SIZE_MAX;
    return (batch - 1) * stride + one;
}

static nst_status unmap_all(nst_runtime *rt, host_maps *m) {
    nst_status st = NST_OK;
    for (int i = 0; i < m->n; i++) {
        if (!m->ptr[i]) continue;
        cl_int e = clEnqueueUnmapMemObject(rt->queue, m->mem[i], m->ptr[i], 0, NULL, NULL);
        m->ptr[i] = NULL;
        if (e != CL_SUCCESS && st == NST_OK)
            st = nst_fail_cl(RTM(rt), e, "clEnqueueUnmapMemObject", __FILE__, __LINE__);
    }
    return st;
}

/* Checks every span against its buffer's size, then maps them (blocking:
 * everything enqueued before has finished when this returns). */
static nst_status map_all(nst_runtime *rt, host_maps *m, const char *what) {
    nst_status st = NST_OK;
    for (int i = 0; i < m->n; i++) {
        size_t bytes = 0;
        NST_CL(RTM(rt), clGetMemObjectInfo(m->mem[i], CL_MEM_SIZE, sizeof bytes, &bytes, NULL));
        if (m->hi[i] == SIZE_MAX) {
            st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: the operands' extent overflows",
                          what);
            goto fail;
        }
        if (m->hi[i] > bytes / sizeof(float)) {
            st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                          "%s: the operands reach float %zu of a buffer of %zu floats", what,
                          m->hi[i], bytes / sizeof(float));
            goto fail;
        }
    }
    for (int i = 0; i < m->n; i++) {
        cl_int e = CL_SUCCESS;
        cl_map_flags f = m->write[i] ? CL_MAP_READ | CL_MAP_WRITE : CL_MAP_READ;
        m->ptr[i] = clEnqueueMapBuffer(rt->queue, m->mem[i], CL_TRUE, f, m->lo[i] * sizeof(float),
                                       (m->hi[i] - m->lo[i]) * sizeof(float), 0, NULL, NULL, &e);
        if (e != CL_SUCCESS) m->ptr[i] = NULL;
        NST_CL(RTM(rt), e);
    }
    return NST_OK;
fail:
    unmap_all(rt, m);
    return st;
}

/* The host address of float `off` of buf (mapped by map_all). */
static float *at(const host_maps *m, cl_mem buf, size_t off) {
    for (int i = 0; i < m->n; i++)
        if (m->mem[i] == buf) return (float *)m->ptr[i] + (off - m->lo[i]);
    return NULL;
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* cblas takes int sizes. */
static int fits_int(size_t a, size_t b, size_t c) {
    return a <= INT32_MAX && b <= INT32_MAX && c <= INT32_MAX;
}

static nst_status too_large(nst_runtime *rt, const char *what) {
    return nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "%s: a size exceeds what the host BLAS takes",
                    what);
}

#endif /* NST_HAVE_OPENBLAS */

/* ---- the routines (as their namesakes in gemm.c) ------------------------- */

#ifdef NST_HAVE_OPENBLAS

static int gemm_args_ok(nst_runtime *rt, const char *what, int ta, int tb, size_t m, size_t n,
                        size_t k, size_t lda, size_t ldb, size_t ldc, nst_status *st) {
    /* row-major: op(A) is m x k, stored k wide (m wide transposed) */
    if (lda < (ta ? m : k) || ldb < (tb ? k : n) || ldc < n || lda == 0 || ldb == 0) {
        *st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                       "%s: leading dimensions %zu, %zu, %zu are too small for %zux%zux%zu", what,
                       lda, ldb, ldc, m, n, k);
        return 0;
    }
    if (!fits_int(m, n, k) || !fits_int(lda, ldb, ldc)) {
        *st = too_large(rt, what);
        return 0;
    }
    return 1;
}

/* One thread's share of a batched product: batch items [q0, q1), rows
 * [i0, i1) of each C. */
typedef struct gemm_part {
    int ta, tb;
    size_t m, n, k, lda, ldb, ldc, sa, sb, sc, q0, q1, i0, i1;
    float alpha, beta;
    const float *a, *b;
    float *c;
} gemm_part;

static void *gemm_run(void *arg) {
    const gemm_part *p = arg;
    const size_t rows = p->i1 - p->i0;
    if (rows == 0) return NULL;
    for (size_t q = p->q0; q < p->q1; q++) {
        /* rows i0.. of op(A): rows of A, or columns of A when transposed */
        const float *a = p->a ? p->a + q * p->sa + (p->ta ? p->i0 : p->i0 * p->lda) : NULL;
        const float *b = p->b ? p->b + q * p->sb : NULL;
        cblas_sgemm(CblasRowMajor, p->ta ? CblasTrans : CblasNoTrans,
                    p->tb ? CblasTrans : CblasNoTrans, (int)rows, (int)p->n, (int)p->k, p->alpha,
                    a, (int)p->lda, b, (int)p->ldb, p->beta, p->c + q * p->sc + p->i0 * p->ldc,
                    (int)p->ldc);
    }
    return NULL;
}

/* Runs parts[0..n) on n threads (the caller's the first); a thread that
 * cannot be started leaves its part to the caller. */
static void run_parts(gemm_part *parts, int n) {
    pthread_t th[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < n; t++) started[t] = pthread_create(&th[t], NULL, gemm_run, &parts[t]) == 0;
    gemm_run(&parts[0]);
    for (int t = 1; t < n; t++) {
        if (started[t]) pthread_join(th[t], NULL);
        else gemm_run(&parts[t]);
    }
}

nst_status nst_host_gemm_batched(nst_runtime *rt, int trans_a, int trans_b, size_t M, size_t N,
                                 size_t K, float alpha, cl_mem a, size_t a_off, size_t lda,
                                 size_t a_stride, cl_mem b, size_t b_off, size_t ldb,
                                 size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                 size_t c_stride, size_t batch) {
    nst_status st = NST_OK;
    const char *what = batch > 1 ? "host SGEMM (batched)" : "host SGEMM";
    host_maps m;
    m.n = 0;
    if (M == 0 || N == 0 || batch == 0) return NST_OK;
    if (!gemm_args_ok(rt, what, trans_a, trans_b, M, N, K, lda, ldb, ldc, &st)) return st;
    /* K = 0 reads neither A nor B (C = beta C) */
    maps_add(&m, a, a_off, K ? span(trans_a ? K : M, trans_a ? M : K, lda, batch, a_stride) : 0,
             0);
    maps_add(&m, b, b_off, K ? span(trans_b ? N : K, trans_b ? K : N, ldb, batch, b_stride) : 0,
             0);
    maps_add(&m, c, c_off, span(M, N, ldc, batch, c_stride), 1);
    NST_TRY(map_all(rt, &m, what));
    double t0 = now_ms();
    gemm_part whole = {trans_a, trans_b, M, N, K, lda, ldb, ldc, a_stride, b_stride, c_stride,
                       0, batch, 0, M, alpha, beta, K ? at(&m, a, a_off) : NULL,
                       K ? at(&m, b, b_off) : NULL, at(&m, c, c_off)};
    /* Split over the threads: by batch items when there are enough of them,
     * else by rows of C; products too small to repay starting a thread
     * (about 10 us, a megaflop) run on the caller alone. */
    int nt = rt->host_threads;
    const double flop = 2.0 * M * N * (K ? K : 1) * batch;
    const int by_batch = batch >= 2 * (size_t)nt;
    if (flop < 4e6 || (!by_batch && M < 16 * (size_t)nt)) nt = 1;
    gemm_part parts[MAX_THREADS];
    for (int t = 0; t < nt; t++) {
        parts[t] = whole;
        if (by_batch) {
            parts[t].q0 = batch * t / nt;
            parts[t].q1 = batch * (t + 1) / nt;
        } else {
            parts[t].i0 = M * t / nt;
            parts[t].i1 = M * (t + 1) / nt;
        }
    }
    run_parts(parts, nt);
    nst_profile_add_host(rt, batch > 1 ? "OpenBLAS sgemm (batched)" : "OpenBLAS sgemm",
                         now_ms() - t0);
    st = unmap_all(rt, &m);
fail:
    return st;
}

nst_status nst_host_axpy(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off, cl_mem y,
                         size_t y_off) {
    nst_status st = NST_OK;
    host_maps m;
    m.n = 0;
    if (n == 0) return NST_OK;
    if (!fits_int(n, 0, 0)) return too_large(rt, "host SAXPY");
    if (x == y && x_off < y_off + n && y_off < x_off + n)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "host SAXPY: x and y overlap");
    maps_add(&m, x, x_off, n, 0);
    maps_add(&m, y, y_off, n, 1);
    NST_TRY(map_all(rt, &m, "host SAXPY"));
    double t0 = now_ms();
    cblas_saxpy((int)n, alpha, at(&m, x, x_off), 1, at(&m, y, y_off), 1);
    nst_profile_add_host(rt, "OpenBLAS saxpy", now_ms() - t0);
    st = unmap_all(rt, &m);
fail:
    return st;
}

nst_status nst_host_scal(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off) {
    nst_status st = NST_OK;
    host_maps m;
    m.n = 0;
    if (n == 0) return NST_OK;
    if (!fits_int(n, 0, 0)) return too_large(rt, "host SSCAL");
    maps_add(&m, x, x_off, n, 1);
    NST_TRY(map_all(rt, &m, "host SSCAL"));
    double t0 = now_ms();
    cblas_sscal((int)n, alpha, at(&m, x, x_off), 1);
    nst_profile_add_host(rt, "OpenBLAS sscal", now_ms() - t0);
    st = unmap_all(rt, &m);
fail:
    return st;
}

nst_status nst_host_dot(nst_runtime *rt, size_t n, cl_mem x, size_t x_off, cl_mem y, size_t y_off,
                        cl_mem out, size_t out_off) {
    nst_status st = NST_OK;
    host_maps m;
    m.n = 0;
    if (!fits_int(n, 0, 0)) return too_large(rt, "host SDOT");
    if ((out == x && out_off >= x_off && out_off < x_off + n) ||
        (out == y && out_off >= y_off && out_off < y_off + n))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "host SDOT: the result overlaps x or y");
    maps_add(&m, x, x_off, n, 0);
    maps_add(&m, y, y_off, n, 0);
    maps_add(&m, out, out_off, 1, 1);
    NST_TRY(map_all(rt, &m, "host SDOT"));
    double t0 = now_ms();
    *at(&m, out, out_off) = n ? cblas_sdot((int)n, at(&m, x, x_off), 1, at(&m, y, y_off), 1) : 0;
    nst_profile_add_host(rt, "OpenBLAS sdot", now_ms() - t0);
    st = unmap_all(rt, &m);
fail:
    return st;
}

#else /* without a host BLAS: nst_gemm_choose never picks these */

static nst_status none(nst_runtime *rt) {
    return nst_fail(RTM(rt), NST_ERR_BLAS, "this nst was built without a host BLAS");
}
nst_status nst_host_gemm_batched(nst_runtime *rt, int trans_a, int trans_b, size_t M, size_t N,
                                 size_t K, float alpha, cl_mem a, size_t a_off, size_t lda,
                                 size_t a_stride, cl_mem b, size_t b_off, size_t ldb,
                                 size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                 size_t c_stride, size_t batch) {
    return none(rt);
}
nst_status nst_host_axpy(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off, cl_mem y,
                         size_t y_off) {
    return none(rt);
}
nst_status nst_host_scal(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off) {
    return none(rt);
}
nst_status nst_host_dot(nst_runtime *rt, size_t n, cl_mem x, size_t x_off, cl_mem y, size_t y_off,
                        cl_mem out, size_t out_off) {
    return none(rt);
}

#endif
