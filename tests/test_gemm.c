/* test_gemm.c: the BLAS routines on both paths, the host BLAS on mapped
 * buffers and CLBlast on the device, against double references and against
 * each other, under tolerances derived from float rounding; the choice
 * between them (the gemm setting, detection); and bad spans refused, not read.
 *
 * The bound: a dot product of K float terms, summed in any order with or
 * without FMA, is within gamma(K) * sum |a_k b_k| of the exact value, where
 * gamma(n) = n u / (1 - n u) and u = 2^-24; scaling by alpha, adding
 * beta * c and the final rounding add three roundings, so each result of
 * alpha op(A) op(B) + beta C is within gamma(K + 3) * (|alpha| sum |a b| +
 * |beta c|) of exact, and the two paths within twice that of each other. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"

static nst_runtime *g_host, *g_clblast;

static int setup(void **state) {
    nst_msg msg = {{0}};
    nst_runtime_options opt = {0};
    opt.device = getenv("NST_DEVICE");
    opt.no_cache = 1;
    static nst_settings set;
    check_settings(&set);
    opt.settings = &set;
    strcpy(set.gemm, "clblast");
    if (nst_runtime_open(&g_clblast, &opt, &msg) != NST_OK) {
        fprintf(stderr, "no OpenCL device for the tests: %s\n", msg.text);
        return -1;
    }
    char name[64];
    if (!nst_host_blas_name(name, sizeof name)) return 0; /* the host tests skip */
    strcpy(set.gemm, "host");
    if (nst_runtime_open(&g_host, &opt, &msg) != NST_OK) {
        fprintf(stderr, "the host BLAS runtime: %s\n", msg.text);
        return -1;
    }
    return 0;
}

static int teardown(void **state) {
    nst_runtime_close(g_host);
    nst_runtime_close(g_clblast);
    return 0;
}

static void need_host(void) {
    if (!g_host) {
        fprintf(stderr, "built without a host BLAS: skipped\n");
        skip();
    }
}

static double gamma_n(double n) {
    const double u = ldexp(1.0, -24);
    return n * u / (1 - n * u);
}

static cl_mem device_floats(nst_runtime *rt, const float *x, size_t n) {
    cl_mem b = NULL;
    assert_int_equal(nst_buffer_create(rt, n * sizeof(float), &b), NST_OK);
    assert_int_equal(nst_write_floats(rt, b, 0, n, x), NST_OK);
    return b;
}

static float *read_back(nst_runtime *rt, cl_mem b, size_t n) {
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    assert_int_equal(nst_read_floats(rt, b, 0, n, x), NST_OK);
    return x;
}

/* One strided-batched product: the operands live in one buffer `ab` (A at
 * 0, B after it), C in a buffer of its own or, with `alias`, in `ab` after
 * B (the Winograd layout). Runs it on rt and returns the whole buffer that
 * holds C. */
typedef struct gemm_case {
    int ta, tb;
    size_t m, n, k, lda, ldb, ldc, batch, sa, sb, sc, a_off, b_off, c_off;
    float alpha, beta;
    int alias;
} gemm_case;

static size_t extent(size_t rows, size_t cols, size_t ld, size_t batch, size_t stride) {
    return (batch - 1) * stride + (rows - 1) * ld + cols;
}

static void layout(gemm_case *g, size_t *n_ab, size_t *n_c) {
    size_t ea = extent(g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda, g->batch, g->sa);
    size_t eb = extent(g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb, g->batch, g->sb);
    size_t ec = extent(g->m, g->n, g->ldc, g->batch, g->sc);
    g->b_off = g->a_off + ea + 3;
    if (g->alias) {
        g->c_off = g->b_off + eb + 5;
        *n_ab = g->c_off + ec + 2;
        *n_c = 0;
    } else {
        *n_ab = g->b_off + eb + 1;
        *n_c = g->c_off + ec + 4;
    }
}

static float *run_gemm(nst_runtime *rt, const gemm_case *g, const float *ab, size_t n_ab,
                       const float *c0, size_t n_c) {
    cl_mem bab = device_floats(rt, ab, n_ab);
    cl_mem bc = g->alias ? bab : device_floats(rt, c0, n_c);
    nst_status st;
    if (g->batch == 1)
        st = nst_gemm(rt, g->ta, g->tb, g->m, g->n, g->k, g->alpha, bab, g->a_off, g->lda, bab,
                      g->b_off, g->ldb, g->beta, bc, g->c_off, g->ldc);
    else
        st = nst_gemm_strided_batched(rt, g->ta, g->tb, g->m, g->n, g->k, g->alpha, bab,
                                      g->a_off, g->lda, g->sa, bab, g->b_off, g->ldb, g->sb,
                                      g->beta, bc, g->c_off, g->ldc, g->sc, g->batch);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    float *out = read_back(rt, bc, g->alias ? n_ab : n_c);
    nst_buffer_free(rt, bab);
    if (!g->alias) nst_buffer_free(rt, bc);
    return out;
}

/* Element (i, j) of batch item q of alpha op(A) op(B) for g, exactly, without
 * alpha; *sabs gets the sum of its terms' magnitudes. */
static double ref_dot(const gemm_case *g, const float *ab, size_t q, size_t i, size_t j,
                      double *sabs) {
    double s = 0;
    *sabs = 0;
    for (size_t l = 0; l < g->k; l++) {
        size_t ia = g->a_off + q * g->sa + (g->ta ? l * g->lda + i : i * g->lda + l);
        size_t ib = g->b_off + q * g->sb + (g->tb ? j * g->ldb + l : l * g->ldb + j);
        s += (double)ab[ia] * ab[ib];
        *sabs += fabs((double)ab[ia] * ab[ib]);
    }
    return s;
}

/* Runs g on both paths and checks every element of C against the double
 * reference (gamma bound) and the two paths against each other (twice it),
 * and that nothing outside C changed. */
static void check_case(gemm_case *g, uint64_t seed) {
    size_t n_ab, n_c;
    layout(g, &n_ab, &n_c);
    check_rng r;
    check_rng_seed(&r, seed);
    float *ab = check_random(&r, n_ab, -1, 1);
    float *c0 = n_c ? check_random(&r, n_c, -1, 1) : NULL;
    const float *cin = g->alias ? ab : c0; /* where C starts out */
    float *h = run_gemm(g_host, g, ab, n_ab, c0, n_c);
    float *d = run_gemm(g_clblast, g, ab, n_ab, c0, n_c);
    const size_t total = g->alias ? n_ab : n_c;
    char *in_c = calloc(total, 1);
    assert_non_null(in_c);
    int bad = 0;
    double worst = 0;
    for (size_t q = 0; q < g->batch; q++)
        for (size_t i = 0; i < g->m; i++)
            for (size_t j = 0; j < g->n; j++) {
                double sabs, s = ref_dot(g, ab, q, i, j, &sabs);
                size_t ic = g->c_off + q * g->sc + i * g->ldc + j;
                in_c[ic] = 1;
                double want = g->alpha * s + g->beta * (double)cin[ic];
                double bound = gamma_n((double)g->k + 3) *
                               (fabs(g->alpha) * sabs + fabs(g->beta * (double)cin[ic]));
                double eh = fabs(h[ic] - want), ed = fabs(d[ic] - want),
                       ehd = fabs((double)h[ic] - d[ic]);
                if (!(eh <= bound && ed <= bound && ehd <= 2 * bound)) {
                    if (bad++ < 5)
                        fprintf(stderr,
                                "[%zu,%zu,%zu] host %.9g CLBlast %.9g want %.9g (bound %.3g)\n",
                                q, i, j, h[ic], d[ic], want, bound);
                }
                if (bound > 0 && ehd / bound > worst) worst = ehd / bound;
            }
    for (size_t i = 0; i < total; i++)
        if (!in_c[i] && (h[i] != cin[i] || d[i] != cin[i])) {
            if (bad++ < 5) fprintf(stderr, "[%zu] outside C changed\n", i);
        }
    printf("  %s%s %zux%zux%zu batch %zu%s: host vs CLBlast at %.2f of the bound\n",
           g->ta ? "T" : "N", g->tb ? "T" : "N", g->m, g->n, g->k, g->batch,
           g->alias ? " (C beside B)" : "", worst);
    assert_int_equal(bad, 0);
    free(in_c);
    free(h);
    free(d);
    free(ab);
    free(c0);
}

/* The shapes nst uses (the im2col product, the Gram F F^T, the Gram
 * backward, the Winograd batch with C beside V, forward and flipped), with
 * awkward sizes, offsets and padded leading dimensions. */
static void test_gemm_agree(void **state) {
    need_host();
    gemm_case cases[] = {
        /* ta tb  m   n   k  lda ldb ldc batch sa sb sc aoff boff coff alpha beta alias */
        {0, 0, 13, 37, 29, 29, 37, 37, 1, 0, 0, 0, 0, 0, 0, 1.0f, 0.0f, 0},
        {0, 0, 13, 37, 29, 31, 40, 41, 1, 0, 0, 0, 7, 0, 3, 0.75f, 1.0f, 0},
        {0, 1, 24, 24, 221, 221, 221, 24, 1, 0, 0, 0, 0, 0, 0, 1.0f / 221, 0.5f, 0},
        {0, 0, 24, 221, 24, 24, 221, 221, 1, 0, 0, 0, 5, 0, 0, -2.0f, 1.0f, 0},
        {0, 0, 19, 53, 11, 11, 53, 53, 36, 19 * 11, 11 * 53, 19 * 53, 0, 0, 0, 1.0f, 0.0f, 1},
        {1, 0, 11, 53, 19, 11, 53, 53, 16, 19 * 11, 19 * 53, 11 * 53, 0, 0, 0, 1.0f, 0.0f, 1},
        {0, 1, 9, 9, 100, 300, 300, 9, 3, 100, 100, 81, 0, 0, 0, 0.01f, 0.0f, 0},
        {0, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 1.0f, 1.0f, 0},
        {0, 0, 67, 45, 131, 131, 45, 45, 1, 0, 0, 0, 0, 0, 0, 0.5f, 1.0f, 0},
        /* large enough for the host path to split them over threads: by
         * batch items, by rows of C (A plain and transposed, one product or
         * a short batch) */
        {0, 0, 64, 97, 67, 67, 97, 97, 36, 64 * 67, 67 * 97, 64 * 97, 0, 0, 0, 1.0f, 0.0f, 1},
        {0, 0, 130, 103, 170, 171, 103, 105, 1, 0, 0, 0, 2, 0, 1, 1.0f, 0.5f, 0},
        {1, 0, 70, 90, 400, 70, 90, 90, 1, 0, 0, 0, 0, 0, 0, -1.0f, 0.0f, 0},
        {0, 1, 64, 64, 400, 1200, 1200, 64, 3, 400, 400, 4096, 0, 0, 0, 0.5f, 0.0f, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_case(&cases[i], 100 + i);
}

/* dot, axpy and scal: dot within gamma(n) sum |x y|, axpy within
 * gamma(2) (|alpha x| + |y|), scal within u |alpha x|, on both paths. */
static void test_level1_agree(void **state) {
    need_host();
    const size_t n = 100003, off = 17;
    check_rng r;
    check_rng_seed(&r, 9);
    float *x = check_random(&r, n + off, -1, 1), *y = check_random(&r, n + off, -1, 1);
    nst_runtime *rts[2] = {g_host, g_clblast};
    float dots[2], *ys[2], *xs[2];
    for (int p = 0; p < 2; p++) {
        nst_runtime *rt = rts[p];
        cl_mem bx = device_floats(rt, x, n + off), by = device_floats(rt, y, n + off);
        cl_mem bo = device_floats(rt, x, 4);
        assert_int_equal(nst_dot(rt, n, bx, off, by, off, bo, 2), NST_OK);
        float o[4];
        assert_int_equal(nst_read_floats(rt, bo, 0, 4, o), NST_OK);
        dots[p] = o[2];
        assert_true(o[0] == x[0] && o[1] == x[1] && o[3] == x[3]);
        assert_int_equal(nst_axpy(rt, n, -0.375f, bx, off, by, off), NST_OK);
        assert_int_equal(nst_scal(rt, n, 1.5f, bx, off), NST_OK);
        ys[p] = read_back(rt, by, n + off);
        xs[p] = read_back(rt, bx, n + off);
        nst_buffer_free(rt, bx);
        nst_buffer_free(rt, by);
        nst_buffer_free(rt, bo);
    }
    double s = 0, sabs = 0;
    for (size_t i = off; i < n + off; i++) {
        s += (double)x[i] * y[i];
        sabs += fabs((double)x[i] * y[i]);
    }
    const double bd = gamma_n((double)n) * sabs, u = ldexp(1.0, -24);
    printf("  dot: host %.9g CLBlast %.9g exact %.9g (bound %.3g)\n", dots[0], dots[1], s, bd);
    for (int p = 0; p < 2; p++) assert_true(fabs(dots[p] - s) <= bd);
    assert_true(fabs((double)dots[0] - dots[1]) <= 2 * bd);
    for (size_t i = 0; i < n + off; i++) {
        double wy = i < off ? y[i] : (double)y[i] - 0.375 * x[i];
        double wx = i < off ? x[i] : 1.5 * x[i];
        double by = gamma_n(2) * (0.375 * fabs(x[i]) + fabs(y[i])), bx = u * fabs(wx);
        for (int p = 0; p < 2; p++) {
            assert_true(fabs(ys[p][i] - wy) <= by);
            assert_true(fabs(xs[p][i] - wx) <= bx);
        }
    }
    for (int p = 0; p < 2; p++) {
        free(ys[p]);
        free(xs[p]);
    }
    free(x);
    free(y);
}

/* Matrices reaching past their buffer are refused with a message, not read
 * or written (the host path would otherwise touch memory it does not own). */
static void test_host_bounds(void **state) {
    need_host();
    nst_runtime *rt = g_host;
    cl_mem a = NULL, c = NULL;
    assert_int_equal(nst_buffer_create(rt, 64 * sizeof(float), &a), NST_OK);
    assert_int_equal(nst_buffer_create(rt, 64 * sizeof(float), &c), NST_OK);
    /* 8x8 needs 64 floats: from offset 1 it runs one past the end */
    assert_int_equal(nst_gemm(rt, 0, 0, 8, 8, 8, 1, a, 0, 8, a, 0, 8, 0, c, 0, 8), NST_OK);
    assert_int_equal(nst_gemm(rt, 0, 0, 8, 8, 8, 1, a, 1, 8, a, 0, 8, 0, c, 0, 8),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "buffer of 64 floats"));
    assert_int_equal(nst_gemm(rt, 0, 0, 8, 8, 8, 1, a, 0, 8, a, 0, 8, 0, c, 0, 9),
                     NST_ERR_INVALID_ARG);
    assert_int_equal(nst_gemm_strided_batched(rt, 0, 0, 4, 4, 4, 1, a, 0, 4, 16, a, 0, 4, 16, 0,
                                              c, 0, 4, 16, 5),
                     NST_ERR_INVALID_ARG);
    /* strides whose extent overflows, sizes past what cblas takes */
    assert_int_equal(nst_gemm_strided_batched(rt, 0, 0, 4, 4, 4, 1, a, 0, 4, SIZE_MAX / 2, a, 0,
                                              4, 16, 0, c, 0, 4, 16, 3),
                     NST_ERR_INVALID_ARG);
    assert_int_equal(nst_gemm(rt, 0, 0, 1, 1, 1, 1, a, 0, (size_t)1 << 33, a, 0, 1, 0, c, 0, 1),
                     NST_ERR_TOO_LARGE);
    /* a leading dimension shorter than a row */
    assert_int_equal(nst_gemm(rt, 0, 0, 4, 4, 4, 1, a, 0, 3, a, 0, 4, 0, c, 0, 4),
                     NST_ERR_INVALID_ARG);
    assert_int_equal(nst_dot(rt, 64, a, 1, a, 0, c, 0), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_axpy(rt, 65, 1, a, 0, c, 0), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_scal(rt, 1, 1, a, 64), NST_ERR_INVALID_ARG);
    /* the queue still works */
    assert_int_equal(nst_scal(rt, 64, 2, a, 0), NST_OK);
    assert_int_equal(nst_finish(rt), NST_OK);
    nst_buffer_free(rt, a);
    nst_buffer_free(rt, c);
}

/* The choice: the setting (NST_GEMM through the settings), else detection. */
static void test_choose(void **state) {
    nst_device_info cpu = {0}, gpu = {0}, cpu_discrete = {0};
    strcpy(cpu.type, "CPU");
    cpu.host_unified = 1;
    strcpy(gpu.type, "GPU");
    strcpy(cpu_discrete.type, "CPU");
    char name[64];
    const int have = nst_host_blas_name(name, sizeof name);
    nst_msg m = {{0}};
    int host = -1;
    assert_int_equal(nst_gemm_choose(&cpu, NULL, &host, &m), NST_OK);
    assert_int_equal(host, have);
    assert_int_equal(nst_gemm_choose(&gpu, NULL, &host, &m), NST_OK);
    assert_int_equal(host, 0);
    assert_int_equal(nst_gemm_choose(&cpu_discrete, "auto", &host, &m), NST_OK);
    assert_int_equal(host, 0);
    assert_int_equal(nst_gemm_choose(&cpu, "clblast", &host, &m), NST_OK);
    assert_int_equal(host, 0);
    assert_int_equal(nst_gemm_choose(&gpu, "host", &host, &m), have ? NST_OK : NST_ERR_BLAS);
    if (have) assert_int_equal(host, 1);
    host = -1;
    assert_int_equal(nst_gemm_choose(&cpu, "cuBLAS", &host, &m), NST_ERR_INVALID_ARG);
    assert_int_equal(host, -1);
    assert_non_null(strstr(m.text, "'cuBLAS'"));
    /* NST_GEMM reaches the settings, and a bad value is refused there */
    const char *env = getenv("NST_GEMM");
    char *saved = env ? strdup(env) : NULL;
    nst_settings set;
    setenv("NST_GEMM", "clblast", 1);
    assert_int_equal(nst_settings_from_env(&set, &m), NST_OK);
    assert_string_equal(set.gemm, "clblast");
    setenv("NST_GEMM", "cuBLAS", 1);
    assert_int_equal(nst_settings_from_env(&set, &m), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(m.text, "NST_GEMM='cuBLAS'"));
    if (saved) setenv("NST_GEMM", saved, 1);
    else unsetenv("NST_GEMM");
    free(saved);
    /* a runtime refuses to open under a bad setting, saying why */
    nst_runtime *rt = NULL;
    nst_runtime_options opt = {0};
    check_settings(&set);
    strcpy(set.gemm, "cuBLAS");
    opt.settings = &set;
    opt.device = getenv("NST_DEVICE");
    opt.no_cache = 1;
    assert_int_equal(nst_runtime_open(&rt, &opt, &m), NST_ERR_INVALID_ARG);
    assert_null(rt);
    assert_non_null(strstr(m.text, "give auto, host"));
    /* and names what runs the products */
    assert_non_null(strstr(nst_runtime_gemm(g_clblast), "CLBlast"));
    if (g_host) assert_non_null(strstr(nst_runtime_gemm(g_host), name));
}

/* On a CPU device whose memory is the host's (PoCL), detection picks the
 * host BLAS. */
static void test_detect_device(void **state) {
    need_host();
    nst_runtime *rt = NULL;
    nst_msg m = {{0}};
    nst_runtime_options opt = {0};
    opt.device = getenv("NST_DEVICE");
    opt.no_cache = 1;
    nst_settings set;
    check_settings(&set);
    strcpy(set.gemm, "auto");
    opt.settings = &set;
    assert_int_equal(nst_runtime_open(&rt, &opt, &m), NST_OK);
    const nst_device_info *d = nst_runtime_device(rt);
    int want = !strcmp(d->type, "CPU") && d->host_unified;
    printf("  %s (%s, host-unified memory %s): %s\n", d->name, d->type,
           d->host_unified ? "yes" : "no", nst_runtime_gemm(rt));
    assert_int_equal(rt->gemm_host, want);
    nst_runtime_close(rt);
}

/* precision tf32: refused with the reason on a device without tensor cores
 * (and the settings refuse a precision that is not one); where it runs, the
 * batched products of both Winograd forms (A plain and transposed), with
 * offsets, padded leading dimensions, beta and sizes off the blocks, are
 * within their bound: both operands rounded to TF32 (2^-11 each), fp32 sums
 * (K 2^-24), then alpha, beta c and the store (gamma(3)). */
static void test_tf32(void **state) {
    nst_settings set;
    nst_msg m = {{0}};
    check_settings(&set);
    strcpy(set.precision, "tf16");
    assert_int_equal(nst_settings_check(&set, &m), NST_ERR_INVALID_ARG);
    strcpy(set.precision, "tf32");
    assert_int_equal(nst_settings_check(&set, &m), NST_OK);
    nst_runtime *rt = NULL;
    nst_runtime_options opt = {0};
    opt.device = getenv("NST_DEVICE");
    opt.no_cache = 1;
    opt.settings = &set;
    nst_status st = nst_runtime_open(&rt, &opt, &m);
    const nst_device_info *d = nst_runtime_device(g_clblast);
    if (!d->tf32) {
        assert_int_equal(st, NST_ERR_INVALID_ARG);
        assert_non_null(strstr(m.text, "needs tensor cores"));
        fprintf(stderr, "%s has no tensor cores: refused (%s); products skipped\n", d->name,
                m.text);
        skip();
    }
    assert_int_equal(st, NST_OK);
    gemm_case cases[] = {
        /* ta tb  m   n   k  lda ldb ldc batch sa sb sc aoff boff coff alpha beta alias */
        {0, 0, 64, 300, 64, 64, 300, 300, 36, 64 * 64, 64 * 300, 64 * 300, 0, 0, 0, 1, 0, 1},
        {1, 0, 64, 300, 64, 64, 300, 300, 36, 64 * 64, 64 * 300, 64 * 300, 0, 0, 0, 1, 0, 1},
        {0, 0, 130, 257, 77, 80, 260, 259, 5, 130 * 80, 77 * 260, 130 * 259, 3, 0, 1, 0.5f,
         1.0f, 0},
        {1, 0, 200, 129, 45, 203, 129, 131, 3, 45 * 203, 45 * 129, 200 * 131, 2, 0, 5, -1.0f,
         0.25f, 0},
        {0, 0, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 0, 0, 0, 1, 0, 0},
        /* rows of A and B in whole float4s (B starts 17408 floats in), C in
         * pairs: the vector loads and stores, with K and N off the blocks */
        {0, 0, 64, 256, 65, 68, 256, 256, 4, 64 * 68, 65 * 256, 64 * 256, 0, 0, 0, 1, 0, 0},
        {1, 0, 129, 130, 65, 132, 132, 130, 3, 65 * 132, 65 * 132, 129 * 130, 0, 0, 0, 1, 0.5f,
         0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        gemm_case *g = &cases[c];
        size_t n_ab, n_c;
        layout(g, &n_ab, &n_c);
        check_rng r;
        check_rng_seed(&r, 300 + c);
        float *ab = check_random(&r, n_ab, -1, 1);
        float *c0 = n_c ? check_random(&r, n_c, -1, 1) : NULL;
        const float *cin = g->alias ? ab : c0;
        float *t = run_gemm(rt, g, ab, n_ab, c0, n_c);
        int bad = 0;
        double worst = 0;
        for (size_t q = 0; q < g->batch; q++)
            for (size_t i = 0; i < g->m; i++)
                for (size_t j = 0; j < g->n; j++) {
                    double sabs, sum = ref_dot(g, ab, q, i, j, &sabs);
                    size_t ic = g->c_off + q * g->sc + i * g->ldc + j;
                    double bc = fabs(g->beta * (double)cin[ic]);
                    double want = g->alpha * sum + g->beta * (double)cin[ic];
                    double bound = (ldexp(1, -10) + g->k * ldexp(1, -24)) * fabs(g->alpha) * sabs +
                                   gamma_n(3) * (fabs(g->alpha) * sabs + bc);
                    double e = fabs(t[ic] - want);
                    if (!(e <= bound) && bad++ < 5)
                        fprintf(stderr, "[%zu,%zu,%zu] %.9g want %.9g (bound %.3g)\n", q, i, j,
                                t[ic], want, bound);
                    if (bound > 0 && e / bound > worst) worst = e / bound;
                }
        printf("  TF32 %s %zux%zux%zu batch %zu: at %.2f of the bound\n", g->ta ? "TN" : "NN",
               g->m, g->n, g->k, g->batch, worst);
        assert_int_equal(bad, 0);
        free(t);
        free(ab);
        free(c0);
    }
    nst_runtime_close(rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_choose),
        cmocka_unit_test(test_detect_device),
        cmocka_unit_test(test_gemm_agree),
        cmocka_unit_test(test_level1_agree),
        cmocka_unit_test(test_host_bounds),
        cmocka_unit_test(test_tf32),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
