/* nst_int.h: internals shared by the library's modules: the runtime struct,
 * error macros, programs and kernels, device tensors and the GEMM wrapper.
 * Not installed; the public API is include/nst.h. */
#ifndef NST_INT_H
#define NST_INT_H

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <stdarg.h>
#include <stddef.h>

#include "nst.h"

/* ---- errors ------------------------------------------------------------ */

#if defined(__GNUC__)
#define NST_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NST_PRINTF(a, b)
#endif

/* Writes a message into msg (which may be NULL) and returns s. */
nst_status nst_fail(nst_msg *msg, nst_status s, const char *fmt, ...) NST_PRINTF(3, 4);
/* Records "what: CL_NAME (code)" and returns NST_ERR_CL (or NST_ERR_NOMEM for
 * allocation failures, NST_ERR_TOO_LARGE for an oversized buffer). */
nst_status nst_fail_cl(nst_msg *msg, cl_int err, const char *what, const char *file, int line);
const char *nst_cl_error_name(cl_int err);
/* The public entry points' pointer checks: NST_ERR_INVALID_ARG with
 * "fn: arg is NULL" in msg (which may be NULL). */
nst_status nst_fail_null(nst_msg *msg, const char *fn, const char *arg);
/* The text of errno value e in buf (strerror_r: strerror may share one buffer
 * between threads). NST_STRERROR(e) gives it a buffer of its own that lasts
 * to the end of the enclosing block, for use in a message's arguments. */
const char *nst_errno_text(int e, char *buf, size_t len);
#define NST_STRERROR(e) nst_errno_text((e), (char[160]){0}, 160)

/* Each function using these has `nst_status st` and a `fail:` label. */
#define NST_CL(msgp, call)                                                       \
    do {                                                                         \
        cl_int e_ = (call);                                                      \
        if (e_ != CL_SUCCESS) {                                                  \
            st = nst_fail_cl((msgp), e_, #call, __FILE__, __LINE__);             \
            goto fail;                                                           \
        }                                                                        \
    } while (0)
#define NST_TRY(expr)                                                            \
    do {                                                                         \
        if ((st = (expr)) != NST_OK) goto fail;                                  \
    } while (0)

/* ---- the runtime ------------------------------------------------------- */

#define NST_MAX_PROGRAMS 16
#define NST_MAX_KERNELS 96

typedef struct nst_kernel_slot {
    const char *program; /* static strings: the table's names */
    const char *name;
    cl_kernel kernel;
    size_t max_wg; /* CL_KERNEL_WORK_GROUP_SIZE on this device */
} nst_kernel_slot;

typedef struct nst_prof_event {
    const char *name; /* kernel or routine name (static string) */
    cl_event ev;      /* NULL for work done on the host: */
    double host_ms;   /* its time */
} nst_prof_event;

/* ---- settings ---------------------------------------------------------- */

#define NST_SCRATCH_MB_DEFAULT 64
#define NST_SCRATCH_MB_MAX 65536
/* NST_ERR_INVALID_ARG, naming the field, unless every field of s is in
 * range and every text field is terminated. */
nst_status nst_settings_check(const nst_settings *s, nst_msg *msg);
/* The next ':'-separated entry of a search list such as
 * nst_settings.weights_dirs (*list, advanced past it) into buf, empty
 * entries skipped; 0 at the end of the list. */
int nst_dirs_next(const char **list, char *buf, size_t cap);

struct nst_runtime {
    cl_platform_id platform;
    cl_device_id device;
    cl_context ctx;
    cl_command_queue queue;
    nst_device_info info;
    nst_settings settings;    /* the runtime's own copy: the only configuration read */
    int no_cache;             /* options or settings say so */
    int profile;
    int cl12;                 /* device compiles OpenCL C 1.2 */
    size_t mem_align;         /* CL_DEVICE_MEM_BASE_ADDR_ALIGN in bytes */
    cl_program programs[NST_MAX_PROGRAMS];
    nst_kernel_slot kernels[NST_MAX_KERNELS];
    int nkernels;
    double build_seconds;     /* time spent getting programs ready */
    int cache_hits, cache_misses;
    int cache_binaries;       /* 1: the cache holds program binaries; 0: the driver
                                 caches them itself (PoCL), the cache only notes
                                 what was built (asking PoCL for a binary would
                                 compile every kernel of the program) */
    char warning[NST_PATH_MAX + 300]; /* for people: why the cache is off, or "" */
    /* what was built and used (tests check a run prepares what it uses) */
    unsigned programs_used;   /* bit per program slot, set at kernel lookup */
    unsigned blas_ready;      /* NST_BLAS_* routines compiled by nst_programs_prepare */
    unsigned blas_used;       /* NST_BLAS_* routines called */
    int lazy_builds;          /* programs built on first use, not prepared */
    int build_threads;        /* nst_programs_prepare's threads; 0 = one per CPU (at
                                 most 8); the tests set it */
    /* device memory accounting: every nst_tensor goes through it */
    size_t mem_now, mem_peak;
    /* fault injection for the tests: when fail_alloc_at > 0, the allocation
     * with that number (counted from 1 in nallocs) fails */
    int fail_alloc_at, nallocs;
    /* reusable scratch: CLBlast's GEMM padding buffer, and the partial sums
     * of reductions (safe to reuse because the queue is in order) */
    cl_mem gemm_temp;
    size_t gemm_temp_bytes;
    cl_mem scratch[2];        /* NST_SCRATCH_SMALL, NST_SCRATCH_GRAM */
    size_t scratch_bytes[2];
    /* GEMM tuning (tune.c): 0 not looked up yet, 1 saved parameters applied,
     * -1 none applied; tune_note says which and why */
    int tune_state;
    char tune_note[400];
    /* 1: the BLAS routines run on the host BLAS on mapped buffers
     * (hostblas.c), 0: through CLBlast; gemm_name says which, for people */
    int gemm_host;
    int tf32;         /* the Winograd products run in TF32 on tensor cores (mma.cl) */
    int host_threads; /* threads the host BLAS's products are split over */
    char gemm_name[96];
    /* profiling: events of enqueued kernels when profile is on */
    nst_prof_event *events;
    int nevents, cap_events;
    nst_msg msg;
};

/* The message buffer of the runtime (for nst_fail and NST_CL). */
#define RTM(rt) (&(rt)->msg)

/* Gets a kernel from one of the embedded programs, building (or loading from
 * the binary cache) the program on first use. The kernel stays owned by rt. */
nst_status nst_kernel_get(nst_runtime *rt, const char *program, const char *name, cl_kernel *out);

/* Sets nargs arguments given as (size_t size, const void *value) pairs, then
 * enqueues kernel `name` of `program` over `dims` dimensions. local may be
 * NULL. Global sizes are rounded up to multiples of local sizes, so a kernel
 * that takes a local size must bounds-check its global ids. */
nst_status nst_launch(nst_runtime *rt, const char *program, const char *name, int dims,
                      const size_t *global, const size_t *local, int nargs, ...);

/* Records an event for profiling when rt->profile is on; takes ownership. */
void nst_profile_add(nst_runtime *rt, const char *name, cl_event ev);
/* Records the time of work done on the host, when rt->profile is on. */
void nst_profile_add_host(nst_runtime *rt, const char *name, double ms);
/* Waits for the queue and reports a failure as a status. */
nst_status nst_finish(nst_runtime *rt);

/* 1: use the kernels shaped for CPUs (settings.kernels "cpu", or "auto" on a
 * CL_DEVICE_TYPE_CPU device); 0: the GPU-shaped ones. The one place that
 * chooses; read at each launch, so a test may change the setting. */
int nst_cpu_kernels(const nst_runtime *rt);
/* Work-group size for a 1-D CPU-shaped kernel, whose work items are coarse
 * (a run of pixels or tiles each): 16, capped by the device. Small groups
 * spread a launch of a few thousand items evenly over the cores; PoCL ran
 * the Winograd transforms about 1.5 times faster with 16 than with 256. */
size_t nst_wg_1d_cpu(const nst_runtime *rt);
/* Work-group size for a 1-D kernel: a multiple of 64 capped by the device. */
size_t nst_wg_1d(const nst_runtime *rt);
/* Rounds n up to a multiple of m. */
static inline size_t nst_round_up(size_t n, size_t m) { return (n + m - 1) / m * m; }

/* The program table: name -> embedded source. Used by runtime and the cache. */
typedef struct nst_program_src {
    const char *name;
    const char *src;
    size_t len;
} nst_program_src;
const nst_program_src *nst_program_find(const char *name);
const nst_program_src *nst_program_common(void);
/* Builds every program (for `nst devices --check` and the cache test). */
nst_status nst_programs_build_all(nst_runtime *rt);

/* The BLAS routines a run may need compiled (CLBlast builds one program per
 * routine, on its first call). */
enum {
    NST_BLAS_GEMM = 1,
    NST_BLAS_GEMM_BATCHED = 2,
    NST_BLAS_AXPY = 4,
    NST_BLAS_DOT = 8,
    NST_BLAS_SCAL = 16
};

/* Progress of nst_programs_prepare: called on the calling thread once with
 * done 0 before the first build, then after each build that was not found in
 * a cache (name: what was built); total counts those. Non-zero stops. */
typedef int (*nst_prepare_fn)(int done, int total, const char *name, void *user);

/* Builds (or loads from the caches) the named programs and compiles the
 * BLAS routines in blas (NST_BLAS_* bits) that are not ready yet, several at
 * once on as many threads as there are CPUs (at most 8; rt->build_threads
 * overrides). Programs built already are skipped. report may be NULL. On a
 * failure the first error is left in rt; NST_ERR_INTERRUPTED when report
 * asked to stop. */
nst_status nst_programs_prepare(nst_runtime *rt, const char *const *names, int nnames,
                                unsigned blas, nst_prepare_fn report, void *user);

/* ---- device tensors ---------------------------------------------------- */

/* A float32 NCHW tensor in its own cl_mem. Owned by its creator. */
typedef struct nst_tensor {
    cl_mem buf;
    int n, c, h, w;
    size_t count; /* n*c*h*w */
} nst_tensor;

nst_status nst_tensor_create(nst_runtime *rt, int n, int c, int h, int w, nst_tensor **out);
/* A [1,c,h,w] view of (the start of) buf: no allocation, nothing to free. */
static inline nst_tensor nst_tensor_view(cl_mem buf, int c, int h, int w) {
    nst_tensor t;
    t.buf = buf;
    t.n = 1;
    t.c = c;
    t.h = h;
    t.w = w;
    t.count = (size_t)c * h * w;
    return t;
}
void nst_tensor_free(nst_runtime *rt, nst_tensor *t);
nst_status nst_tensor_upload(nst_runtime *rt, nst_tensor *t, const float *src);
nst_status nst_tensor_download(nst_runtime *rt, const nst_tensor *t, float *dst);
nst_status nst_tensor_fill(nst_runtime *rt, nst_tensor *t, float value);
nst_status nst_tensor_copy(nst_runtime *rt, nst_tensor *dst, const nst_tensor *src);

/* The runtime's reusable scratch buffers, grown on demand and owned by rt:
 * SMALL holds reduction partial sums, GRAM the split-K partial Gram
 * matrices. A user enqueues everything that reads its contents before the
 * next user writes: the in-order queue then keeps them valid. */
enum { NST_SCRATCH_SMALL = 0, NST_SCRATCH_GRAM = 1 };
nst_status nst_scratch(nst_runtime *rt, int which, size_t bytes, cl_mem *out);

/* Device bytes held by tensors and buffers, not counting the runtime's own
 * reusable scratch (what a leak check should compare). */
static inline size_t nst_runtime_scratch_bytes(const nst_runtime *rt) {
    return rt->gemm_temp_bytes + rt->scratch_bytes[0] + rt->scratch_bytes[1];
}
static inline size_t nst_mem_in_use(const nst_runtime *rt) {
    return rt->mem_now - nst_runtime_scratch_bytes(rt);
}

/* A raw device buffer of `bytes`, counted like tensors. */
nst_status nst_buffer_create(nst_runtime *rt, size_t bytes, cl_mem *out);
void nst_buffer_free(nst_runtime *rt, cl_mem buf);

/* ---- BLAS: CLBlast (gemm.c is the only file that includes clblast_c.h) or,
 * when rt->gemm_host, the host BLAS (hostblas.c, the only one with cblas.h) */

/* Row-major C[M,N] = alpha * op(A)[M,K] * op(B)[K,N] + beta * C, with element
 * offsets and leading dimensions, as CLBlastSgemm. */
nst_status nst_gemm(nst_runtime *rt, int trans_a, int trans_b, size_t m, size_t n, size_t k,
                    float alpha, cl_mem a, size_t a_off, size_t lda, cl_mem b, size_t b_off,
                    size_t ldb, float beta, cl_mem c, size_t c_off, size_t ldc);
/* `batch` independent products as nst_gemm, matrix i at offsets
 * a_off + i*a_stride, b_off + i*b_stride, c_off + i*c_stride (in elements), as
 * CLBlastSgemmStridedBatched. */
nst_status nst_gemm_strided_batched(nst_runtime *rt, int trans_a, int trans_b, size_t m, size_t n,
                                    size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                                    size_t a_stride, cl_mem b, size_t b_off, size_t ldb,
                                    size_t b_stride, float beta, cl_mem c, size_t c_off,
                                    size_t ldc, size_t c_stride, size_t batch);
/* y = alpha * x + y over n elements. */
nst_status nst_axpy(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off, cl_mem y,
                    size_t y_off);
/* x = alpha * x. */
nst_status nst_scal(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off);
/* out[out_off] = x . y, computed on the device (no read back). */
nst_status nst_dot(nst_runtime *rt, size_t n, cl_mem x, size_t x_off, cl_mem y, size_t y_off,
                   cl_mem out, size_t out_off);
/* CLBlastOverrideParameters for rt's device, single precision. */
nst_status nst_blas_override(nst_runtime *rt, const char *kernel, size_t n, const char **names,
                             const size_t *values);
/* CLBlast's version, "major.minor.patch". */
const char *nst_blas_version(void);
/* "CLBlast Sgemm" for NST_BLAS_GEMM etc.; NULL for another value. */
const char *nst_blas_routine_name(unsigned routine);
/* Compiles one routine's CLBlast program without running anything (a call
 * with an empty problem: CLBlast builds the program before it checks the
 * sizes). Safe on several threads at once. 1 when it compiled, 0 when not
 * (the routine's first real call then compiles it and reports any error). */
int nst_blas_compile(nst_runtime *rt, unsigned routine);
/* 1 when the routine was compiled before for this device, driver, CLBlast
 * and tuning (a note in the cache directory, written by nst_blas_compile). */
int nst_blas_cached(const nst_runtime *rt, unsigned routine);

/* The same routines on the host BLAS, on the buffers mapped into the host
 * (blocking: they return when the result is in the buffer's host memory
 * and the unmaps are enqueued). Spans beyond a buffer are refused.
 * nst_host_gemm_batched is nst_gemm_strided_batched (batch 1: nst_gemm). */
nst_status nst_host_gemm_batched(nst_runtime *rt, int trans_a, int trans_b, size_t m, size_t n,
                                 size_t k, float alpha, cl_mem a, size_t a_off, size_t lda,
                                 size_t a_stride, cl_mem b, size_t b_off, size_t ldb,
                                 size_t b_stride, float beta, cl_mem c, size_t c_off, size_t ldc,
                                 size_t c_stride, size_t batch);
nst_status nst_host_axpy(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off, cl_mem y,
                         size_t y_off);
nst_status nst_host_scal(nst_runtime *rt, size_t n, float alpha, cl_mem x, size_t x_off);
nst_status nst_host_dot(nst_runtime *rt, size_t n, cl_mem x, size_t x_off, cl_mem y, size_t y_off,
                        cl_mem out, size_t out_off);
/* The batched product of nst_gemm_strided_batched with B not transposed, in
 * TF32 on tensor cores (mma.c; rt->tf32 only). */
nst_status nst_mma_batched(nst_runtime *rt, int trans_a, size_t m, size_t n, size_t k,
                           float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride,
                           cl_mem b, size_t b_off, size_t ldb, size_t b_stride, float beta,
                           cl_mem c, size_t c_off, size_t ldc, size_t c_stride, size_t batch);
/* Writes the host BLAS's name and version ("OpenBLAS 0.3.21") into buf and
 * returns 1; 0 (and "") when nst was built without one. */
int nst_host_blas_name(char *buf, size_t len);
/* Chooses where rt's BLAS routines run (nst_gemm_choose on rt->info; setting
 * as in nst_runtime_options), and sets rt->gemm_host and rt->gemm_name and,
 * for the host BLAS, its thread count. */
nst_status nst_gemm_setup(nst_runtime *rt, const char *setting, nst_msg *msg);


/* rt's cache directory (settings.cache_dir), created when missing; 0 on
 * success, -1 when there is none. */
int nst_cache_dir(const nst_runtime *rt, char *buf, size_t len);
/* The same, with the reason in why (naming the directory) when there is none
 * or it cannot be created or written. */
int nst_cache_dir_why(const nst_runtime *rt, char *buf, size_t len, char *why, size_t wlen);
/* The path of a note in the cache directory that `name` was compiled for
 * rt's device, keyed also by extra and the contents of extra_file (may be
 * NULL); -1 when rt has no cache. nst_cache_note_write creates it. */
int nst_cache_note_path(const nst_runtime *rt, const char *name, const char *extra,
                        const char *extra_file, char *path, size_t plen);
void nst_cache_note_write(const char *path);

/* Reads `count` floats from a device buffer (blocking). */
nst_status nst_read_floats(nst_runtime *rt, cl_mem buf, size_t off, size_t count, float *dst);
nst_status nst_write_floats(nst_runtime *rt, cl_mem buf, size_t off, size_t count,
                            const float *src);

#endif
