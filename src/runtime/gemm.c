/* gemm.c: the only file that talks to CLBlast. Maps CLBlastStatusCode to
 * nst_status, keeping the numeric code in the message. Each routine hands
 * over to the host BLAS (hostblas.c) when the runtime runs them there. */
#include <clblast_c.h>

#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

#include "nst_int.h"
#include "tune.h"

static nst_status blas_status(nst_runtime *rt, CLBlastStatusCode s, const char *what,
                              cl_event ev) {
    if (s == CLBlastSuccess) {
        nst_profile_add(rt, what, ev);
        return NST_OK;
    }
    if (ev) clReleaseEvent(ev);
    if (s < 0 && s > -1000) /* CLBlast reuses the OpenCL codes */
        return nst_fail(RTM(rt), NST_ERR_BLAS, "%s failed: %s (%d)", what,
                        nst_cl_error_name((cl_int)s), (int)s);
    return nst_fail(RTM(rt), NST_ERR_BLAS, "%s failed with CLBlast status %d", what, (int)s);
}

#define EVP (rt->profile ? &ev : NULL)

/* CLBlast 1.5.3 builds its parameter database for a device in shared state
 * without a lock (two threads overriding parameters or making their first
 * call at once corrupt it), so every call into CLBlast holds one process-wide
 * lock: separate runtimes on separate threads stay safe. The calls only
 * enqueue work (or build a routine's program once), so little waits. */
static pthread_mutex_t g_clblast = PTHREAD_MUTEX_INITIALIZER;
static CLBlastStatusCode clblast_unlock(CLBlastStatusCode s) {
    pthread_mutex_unlock(&g_clblast);
    return s;
}
#define CLBLAST(call) (pthread_mutex_lock(&g_clblast), clblast_unlock(call))

/* One CLBlast SGEMM, through the runtime's temporary buffer when needed. */
static CLBlastStatusCode sgemm(nst_runtime *rt, CLBlastTranspose ta, CLBlastTranspose tb, size_t m,
                               size_t n, size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                               cl_mem b, size_t b_off, size_t ldb, float beta, cl_mem c,
                               size_t c_off, size_t ldc, cl_event *ev, nst_status *st) {
    /* CLBlast pads awkward shapes through a temporary buffer that it would
     * otherwise create and release on every call; keep one, grown on demand,
     * so the iterations allocate nothing. (The in-order queue keeps reuse
     * safe.) Its size depends on the kernel parameters in use. */
    size_t temp = 0;
    *st = NST_OK;
    CLBlastStatusCode s = CLBLAST(CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, ta, tb, m, n, k, a_off,
                                                     lda, b_off, ldb, c_off, ldc, &rt->queue,
                                                     &temp));
    if (s != CLBlastSuccess) return s;
    if (temp > rt->gemm_temp_bytes) {
        nst_buffer_free(rt, rt->gemm_temp);
        rt->gemm_temp = NULL;
        rt->gemm_temp_bytes = 0;
        *st = nst_buffer_create(rt, temp, &rt->gemm_temp);
        if (*st != NST_OK) return CLBlastSuccess;
        rt->gemm_temp_bytes = temp;
    }
    if (temp > 0)
        return CLBLAST(CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off,
                                          lda, b, b_off, ldb, beta, c, c_off, ldc, &rt->queue, ev,
                                          rt->gemm_temp));
    return CLBLAST(CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off,
                        ldb, beta, c, c_off, ldc, &rt->queue, ev));
}

nst_status nst_gemm(nst_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                    float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                    size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc) {
    if (m == 0 || n == 0) return NST_OK;
    if (rt->gemm_host)
        return nst_host_gemm_batched(rt, trans_a, trans_b, m, n, k, alpha, a, a_off, lda, 0, b,
                                     b_off, ldb, 0, beta, c, c_off, ldc, 0, 1);
    rt->blas_used |= NST_BLAS_GEMM;
    if (rt->tune_state == 0) nst_tune_apply_saved(rt);
    const CLBlastTranspose ta = trans_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    const CLBlastTranspose tb = trans_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    cl_event ev = NULL;
    nst_status st = NST_OK;
    CLBlastStatusCode s;
    for (int attempt = 0;; attempt++) {
        s = sgemm(rt, ta, tb, m, n, k, alpha, a, a_off, lda, b, b_off, ldb, beta, c, c_off, ldc,
                  EVP, &st);
        if (st != NST_OK) return st;
        /* Saved parameters that fail here (a kernel that does not build,
         * say) must not fail the run: back to CLBlast's own, once. */
        if (s == CLBlastSuccess || attempt > 0 || rt->tune_state != 1) break;
        char why[64];
        snprintf(why, sizeof why, "CLBlastSgemm returned %d", (int)s);
        if (!nst_tune_fallback(rt, why)) break;
    }
    return blas_status(rt, s, "CLBlastSgemm", ev);
}

/* 1 when CLBlast runs a row-major 1 x 1 x k product through its tiled
 * kernel, 0 through its direct one, -1 when it cannot say. */
static int gemm_is_tiled(nst_runtime *rt, unsigned long long k) {
    size_t temp = 0;
    CLBlastStatusCode s = CLBLAST(CLBlastSGemmTempBufferSize(
        CLBlastLayoutRowMajor, CLBlastTransposeNo, CLBlastTransposeNo, 1, 1, (size_t)k, 0,
        (size_t)k, 0, 1, 0, 1, &rt->queue, &temp));
    return s != CLBlastSuccess ? -1 : temp > 0;
}

unsigned long long nst_gemm_tiled_min(nst_runtime *rt) {
    /* CLBlast sends m*n*k below XGEMM_MIN_INDIRECT_SIZE^3 (a per-device
     * entry of its database, not readable through its C API) to the direct
     * kernel, for which it asks no temporary buffer; a 1 x 1 x k product on
     * the tiled kernel always needs one (its tiles pad it). So the smallest k
     * with a temporary buffer is the threshold. */
    unsigned long long lo = 0, hi = 1ULL << 40; /* direct at lo, tiled at hi */
    if (gemm_is_tiled(rt, hi) != 1) return 0;
    while (hi - lo > 1) {
        unsigned long long mid = lo + (hi - lo) / 2;
        int t = gemm_is_tiled(rt, mid);
        if (t < 0) return 0;
        if (t) hi = mid;
        else lo = mid;
    }
    return hi;
}

nst_status nst_blas_override(nst_runtime *rt, const char *kernel, size_t n, const char **names,
                             const size_t *values) {
    CLBlastStatusCode s =
        CLBLAST(CLBlastOverrideParameters(rt->device, kernel, CLBlastPrecisionSingle, n, names, values));
    if (s == CLBlastSuccess) return NST_OK;
    return nst_fail(RTM(rt), NST_ERR_BLAS,
                    "CLBlastOverrideParameters(%s) failed with CLBlast status %d", kernel, (int)s);
}

#define NST_STR_(x) #x
#define NST_STR(x) NST_STR_(x)
const char *nst_blas_version(void) {
    return NST_STR(CLBLAST_VERSION_MAJOR) "." NST_STR(CLBLAST_VERSION_MINOR) "." NST_STR(
        CLBLAST_VERSION_PATCH);
}

nst_status nst_axpy(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off, cl_mem y,
                    size_t y_off) {
    if (rt->gemm_host) return nst_host_axpy(rt, n, alpha, x, x_off, y, y_off);
    cl_event ev = NULL;
    rt->blas_used |= NST_BLAS_AXPY;
    CLBlastStatusCode s = CLBLAST(CLBlastSaxpy(n, alpha, x, x_off, 1, y, y_off, 1, &rt->queue, EVP));
    return blas_status(rt, s, "CLBlastSaxpy", ev);
}

nst_status nst_scal(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off) {
    if (rt->gemm_host) return nst_host_scal(rt, n, alpha, x, x_off);
    cl_event ev = NULL;
    rt->blas_used |= NST_BLAS_SCAL;
    CLBlastStatusCode s = CLBLAST(CLBlastSscal(n, alpha, x, x_off, 1, &rt->queue, EVP));
    return blas_status(rt, s, "CLBlastSscal", ev);
}

nst_status nst_dot(nst_runtime *rt, size_t n, cl_mem x, size_t x_off, cl_mem y, size_t y_off,
                   cl_mem out, size_t out_off) {
    if (rt->gemm_host) return nst_host_dot(rt, n, x, x_off, y, y_off, out, out_off);
    cl_event ev = NULL;
    rt->blas_used |= NST_BLAS_DOT;
    CLBlastStatusCode s =
        CLBLAST(CLBlastSdot(n, out, out_off, x, x_off, 1, y, y_off, 1, &rt->queue, EVP));
    return blas_status(rt, s, "CLBlastSdot", ev);
}

nst_status nst_gemm_strided_batched(nst_runtime *rt, int trans_a, int trans_b, size_t m, size_t n,
                                    size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                                    size_t a_stride, cl_mem b, size_t b_off, size_t ldb,
                                    size_t b_stride, float beta, cl_mem c, size_t c_off,
                                    size_t ldc, size_t c_stride, size_t batch) {
    if (m == 0 || n == 0 || batch == 0) return NST_OK;
    if (rt->tf32 && !trans_b) /* the Winograd products' form */
        return nst_mma_batched(rt, trans_a, m, n, k, alpha, a, a_off, lda, a_stride, b, b_off,
                               ldb, b_stride, beta, c, c_off, ldc, c_stride, batch);
    if (rt->gemm_host)
        return nst_host_gemm_batched(rt, trans_a, trans_b, m, n, k, alpha, a, a_off, lda,
                                     a_stride, b, b_off, ldb, b_stride, beta, c, c_off, ldc,
                                     c_stride, batch);
    rt->blas_used |= NST_BLAS_GEMM_BATCHED;
    if (rt->tune_state == 0) nst_tune_apply_saved(rt); /* shares Xgemm's parameters */
    cl_event ev = NULL;
    CLBlastStatusCode s = CLBLAST(CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, trans_a ? CLBlastTransposeYes : CLBlastTransposeNo,
        trans_b ? CLBlastTransposeYes : CLBlastTransposeNo, m, n, k, alpha, a, a_off, lda,
        a_stride, b, b_off, ldb, b_stride, beta, c, c_off, ldc, c_stride, batch, &rt->queue, EVP));
    return blas_status(rt, s, "CLBlastSgemmStridedBatched", ev);
}

/* ---- compiling ahead of the first call ------------------------------------ */

const char *nst_blas_routine_name(unsigned routine) {
    switch (routine) {
    case NST_BLAS_GEMM: return "CLBlast Sgemm";
    case NST_BLAS_GEMM_BATCHED: return "CLBlast SgemmStridedBatched";
    case NST_BLAS_AXPY: return "CLBlast Saxpy";
    case NST_BLAS_DOT: return "CLBlast Sdot";
    case NST_BLAS_SCAL: return "CLBlast Sscal";
    default: return NULL;
    }
}

/* The cache note of a compiled routine: its program depends on the device,
 * CLBlast and the tuned parameters in use. */
static int note_path(const nst_runtime *rt, unsigned routine, char *path, size_t len) {
    char key[160], tune[1100];
    const char *name = nst_blas_routine_name(routine);
    if (!name) return -1;
    int tuned = nst_tune_applied(rt) && nst_tune_path(rt, tune, sizeof tune) == 0;
    snprintf(key, sizeof key, "CLBlast %s %s", nst_blas_version(), tuned ? "tuned" : "own");
    char file[64];
    snprintf(file, sizeof file, "clblast-%s", name + 8);
    return nst_cache_note_path(rt, file, key, tuned ? tune : NULL, path, len);
}

int nst_blas_cached(const nst_runtime *rt, unsigned routine) {
    char path[1100];
    return note_path(rt, routine, path, sizeof path) == 0 && access(path, R_OK) == 0;
}

int nst_blas_compile(nst_runtime *rt, unsigned routine) {
    /* an empty problem: CLBlast builds the routine's program, then refuses
     * the sizes before it enqueues anything */
    cl_command_queue *q = &rt->queue;
    const CLBlastLayout L = CLBlastLayoutRowMajor;
    const CLBlastTranspose N = CLBlastTransposeNo;
    cl_mem none = NULL;
    CLBlastStatusCode s;
    switch (routine) {
    case NST_BLAS_GEMM:
        s = CLBLAST(CLBlastSgemm(L, N, N, 0, 0, 0, 1.0f, none, 0, 1, none, 0, 1, 0.0f, none, 0, 1, q,
                         NULL));
        break;
    case NST_BLAS_GEMM_BATCHED:
        s = CLBLAST(CLBlastSgemmStridedBatched(L, N, N, 1, 1, 1, 1.0f, none, 0, 1, 1, none, 0, 1, 1, 0.0f,
                                       none, 0, 1, 1, 0, q, NULL));
        break;
    case NST_BLAS_AXPY: s = CLBLAST(CLBlastSaxpy(0, 1.0f, none, 0, 1, none, 0, 1, q, NULL)); break;
    case NST_BLAS_DOT: s = CLBLAST(CLBlastSdot(0, none, 0, none, 0, 1, none, 0, 1, q, NULL)); break;
    case NST_BLAS_SCAL: s = CLBLAST(CLBlastSscal(0, 1.0f, none, 0, 1, q, NULL)); break;
    default: return 0;
    }
    /* CLBlast's "invalid size" codes: the program was built */
    int built = s == CLBlastInvalidDimension || s == CLBlastInvalidBatchCount;
    char path[1100];
    if (built && note_path(rt, routine, path, sizeof path) == 0 && access(path, R_OK) != 0)
        nst_cache_note_write(path);
    return built;
}
