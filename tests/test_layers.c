/* test_layers.c: every layer kernel against the plain-C reference on random
 * data of awkward sizes, and every reference backward pass against central
 * finite differences in double. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "layers.h"
#include "ref_alloc.h"
#include "reference.h"

#define rt check_rt /* the group fixture's runtime (check.h) */

/* ---- helpers ------------------------------------------------------------ */

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* Central differences of L(x) = <r, f(x)> against an analytic gradient g, in
 * double: max |fd - g| / max |g| must stay under tol. */
typedef void (*ref_fn)(double *y, const double *x, const void *ctx);
static void fd_check(const char *what, ref_fn f, const void *ctx, double *x, size_t nx,
                     size_t ny, const double *r, const double *g, double h, double tol) {
    double *y = ref_alloc(ny);
    double maxd = 0, maxg = 0;
    for (size_t i = 0; i < nx; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        f(y, x, ctx);
        double lp = dot(r, y, ny);
        x[i] = x0 - h;
        f(y, x, ctx);
        double lm = dot(r, y, ny);
        x[i] = x0;
        double fd = (lp - lm) / (2 * h);
        if (fabs(fd - g[i]) > maxd) maxd = fabs(fd - g[i]);
        if (fabs(g[i]) > maxg) maxg = fabs(g[i]);
    }
    printf("  %-28s finite differences: rel err %.2e\n", what, maxd / maxg);
    assert_true(maxg > 0);
    assert_true(maxd / maxg < tol);
    free(y);
}

/* ---- convolution -------------------------------------------------------- */

typedef struct conv_case {
    int C, H, W, K, R;
} conv_case;

static const conv_case conv_cases[] = {
    {3, 1, 1, 5, 3}, {5, 7, 5, 6, 3}, {3, 33, 17, 7, 3}, {6, 9, 8, 5, 5}, {4, 6, 7, 3, 1},
    {17, 4, 3, 13, 3},
};
#define NCASES (int)(sizeof conv_cases / sizeof conv_cases[0])

/* Runs the forward pass with a scratch cap of cap_rows image rows (0: the
 * default cap) and checks it against the reference. */
static void conv_forward_case(const conv_case *k, int relu, int cap_rows, check_rng *r) {
    size_t nx = (size_t)k->C * k->H * k->W, nw = (size_t)k->K * k->C * k->R * k->R;
    size_t ny = (size_t)k->K * k->H * k->W;
    float *x = check_random(r, nx, -1, 1), *w = check_random(r, nw, -0.5f, 0.5f), *b = check_random(r, k->K, -0.5f, 0.5f);
    nst_tensor *tx = check_tensor(rt, 1, k->C, k->H, k->W, x), *tw = check_tensor(rt, k->K, k->C, k->R, k->R, w);
    nst_tensor *tb = check_tensor(rt, 1, k->K, 1, 1, b), *ty = check_tensor(rt, 1, k->K, k->H, k->W, NULL);
    size_t cap = cap_rows ? (size_t)k->C * k->R * k->R * k->W * cap_rows
                          : nst_conv2d_scratch_cap(rt);
    size_t sf = nst_conv2d_scratch_floats(k->C, k->R, k->H, k->W, cap);
    if (k->R > 1 && cap_rows) assert_int_equal(sf, (size_t)k->C * k->R * k->R * k->W *
                                                       (cap_rows < k->H ? cap_rows : k->H));
    cl_mem scratch = NULL;
    assert_int_equal(nst_buffer_create(rt, sf * sizeof(float), &scratch), NST_OK);
    assert_int_equal(nst_conv2d_forward(rt, ty, tx, tw, tb, relu, scratch, sf), NST_OK);
    float *y = check_download(rt, ty);
    double *dx = ref_from_float(x, nx), *dw = ref_from_float(w, nw), *db = ref_from_float(b, k->K);
    double *want = ref_alloc(ny);
    nst_ref_conv_forward(want, dx, dw, db, k->C, k->H, k->W, k->K, k->R, relu);
    char what[96];
    snprintf(what, sizeof what, "conv fwd C%d %dx%d K%d R%d relu%d band%d", k->C, k->H, k->W,
             k->K, k->R, relu, cap_rows);
    assert_true(check_close(what, y, want, ny, 1e-5, 1e-4));
    nst_buffer_free(rt, scratch);
    nst_tensor_free(rt, tx);
    nst_tensor_free(rt, tw);
    nst_tensor_free(rt, tb);
    nst_tensor_free(rt, ty);
    free(x), free(w), free(b), free(y), free(dx), free(dw), free(db), free(want);
}

static void test_conv_forward(void **state) {
    check_rng r;
    check_rng_seed(&r, 1);
    for (int i = 0; i < NCASES; i++) {
        conv_forward_case(&conv_cases[i], 0, 0, &r);
        conv_forward_case(&conv_cases[i], 1, 0, &r);
        conv_forward_case(&conv_cases[i], 1, 1, &r); /* one row per band */
        conv_forward_case(&conv_cases[i], 0, 3, &r); /* a short last band */
    }
}

typedef struct conv_ctx {
    const double *w;
    int C, H, W, K, R;
} conv_ctx;

static void conv_fn(double *y, const double *x, const void *p) {
    const conv_ctx *c = p;
    nst_ref_conv_forward(y, x, c->w, NULL, c->C, c->H, c->W, c->K, c->R, 0);
}

static void test_conv_backward_fd(void **state) {
    check_rng r;
    check_rng_seed(&r, 2);
    const conv_case cases[] = {{3, 5, 4, 2, 3}, {2, 4, 6, 3, 5}, {1, 1, 1, 2, 3}};
    for (int t = 0; t < 3; t++) {
        const conv_case *k = &cases[t];
        size_t nx = (size_t)k->C * k->H * k->W, nw = (size_t)k->K * k->C * k->R * k->R;
        size_t ny = (size_t)k->K * k->H * k->W;
        float *fx = check_random(&r, nx, -1, 1), *fw = check_random(&r, nw, -1, 1), *fr = check_random(&r, ny, -1, 1);
        double *x = ref_from_float(fx, nx), *w = ref_from_float(fw, nw);
        double *rr = ref_from_float(fr, ny), *g = ref_alloc(nx);
        nst_ref_conv_backward_input(g, rr, w, k->C, k->H, k->W, k->K, k->R);
        conv_ctx c = {w, k->C, k->H, k->W, k->K, k->R};
        fd_check("conv backward (reference)", conv_fn, &c, x, nx, ny, rr, g, 1e-3, 1e-9);
        free(fx), free(fw), free(fr), free(x), free(w), free(rr), free(g);
    }
}

static void conv_backward_case(const conv_case *k, int accumulate, int cap_rows, check_rng *r) {
    size_t nx = (size_t)k->C * k->H * k->W, nw = (size_t)k->K * k->C * k->R * k->R;
    size_t ny = (size_t)k->K * k->H * k->W;
    float *dy = check_random(r, ny, -1, 1), *w = check_random(r, nw, -0.5f, 0.5f), *dx0 = check_random(r, nx, -1, 1);
    nst_tensor *tdy = check_tensor(rt, 1, k->K, k->H, k->W, dy), *tw = check_tensor(rt, k->K, k->C, k->R, k->R, w);
    nst_tensor *twf = check_tensor(rt, k->C, k->K, k->R, k->R, NULL), *tdx = check_tensor(rt, 1, k->C, k->H, k->W, dx0);
    size_t cap = cap_rows ? (size_t)k->K * k->R * k->R * k->W * cap_rows
                          : nst_conv2d_scratch_cap(rt);
    size_t sf = nst_conv2d_scratch_floats(k->K, k->R, k->H, k->W, cap);
    cl_mem scratch = NULL;
    assert_int_equal(nst_buffer_create(rt, sf * sizeof(float), &scratch), NST_OK);
    assert_int_equal(nst_conv2d_flip(rt, twf, tw), NST_OK);
    assert_int_equal(nst_conv2d_backward_input(rt, tdx, tdy, twf, accumulate, scratch, sf),
                     NST_OK);
    float *got = check_download(rt, tdx);
    double *want = accumulate ? ref_from_float(dx0, nx) : ref_alloc(nx);
    double *ddy = ref_from_float(dy, ny), *dw = ref_from_float(w, nw);
    nst_ref_conv_backward_input(want, ddy, dw, k->C, k->H, k->W, k->K, k->R);
    char what[96];
    snprintf(what, sizeof what, "conv bwd C%d %dx%d K%d R%d acc%d band%d", k->C, k->H, k->W,
             k->K, k->R, accumulate, cap_rows);
    assert_true(check_close(what, got, want, nx, 1e-5, 1e-4));
    nst_buffer_free(rt, scratch);
    nst_tensor_free(rt, tdy);
    nst_tensor_free(rt, tw);
    nst_tensor_free(rt, twf);
    nst_tensor_free(rt, tdx);
    free(dy), free(w), free(dx0), free(got), free(want), free(ddy), free(dw);
}

static void test_conv_backward(void **state) {
    check_rng r;
    check_rng_seed(&r, 3);
    for (int i = 0; i < NCASES; i++) {
        conv_backward_case(&conv_cases[i], 0, 0, &r);
        conv_backward_case(&conv_cases[i], 1, 0, &r);
        conv_backward_case(&conv_cases[i], 0, 2, &r);
    }
}

static void test_conv_errors(void **state) {
    nst_tensor *x = check_tensor(rt, 1, 3, 4, 5, NULL), *w = check_tensor(rt, 2, 4, 3, 3, NULL), *b = check_tensor(rt, 1, 2, 1, 1, NULL);
    nst_tensor *y = check_tensor(rt, 1, 2, 4, 5, NULL), *w3 = check_tensor(rt, 2, 3, 3, 3, NULL);
    cl_mem s = NULL;
    assert_int_equal(nst_buffer_create(rt, 1024 * sizeof(float), &s), NST_OK);
    /* in-channels 4 != 3 */
    assert_int_equal(nst_conv2d_forward(rt, y, x, w, b, 1, s, 1024), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "weight"));
    /* not even one row of 3*9*5 floats fits 100 */
    assert_int_equal(nst_conv2d_forward(rt, y, x, w3, b, 1, s, 100), NST_ERR_TOO_LARGE);
    /* wrong output shape */
    assert_int_equal(nst_conv2d_forward(rt, x, x, w3, b, 1, s, 1024), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_conv2d_scratch_floats(3, 3, 4, 5, 1), (size_t)3 * 9 * 5);
    assert_int_equal(nst_conv2d_scratch_floats(3, 3, 4, 5, 1 << 20), (size_t)3 * 9 * 20);
    assert_int_equal(nst_conv2d_scratch_floats(3, 1, 4, 5, 1 << 20), 0);
    assert_true(nst_conv2d_scratch_cap(rt) * sizeof(float) <= ((size_t)64 << 20));
    nst_buffer_free(rt, s);
    nst_tensor_free(rt, x);
    nst_tensor_free(rt, w);
    nst_tensor_free(rt, b);
    nst_tensor_free(rt, y);
    nst_tensor_free(rt, w3);
}

/* ---- ReLU --------------------------------------------------------------- */

static void relu_fn(double *y, const double *x, const void *p) {
    nst_ref_relu_forward(y, x, *(const size_t *)p);
}

/* Values with |v| >= 0.1, so a finite-difference step never crosses the kink. */
static float *away_from_zero(check_rng *r, size_t n) {
    float *x = check_random(r, n, 0.1f, 1.0f);
    for (size_t i = 0; i < n; i++)
        if (check_uniform(r, 0, 1) < 0.5f) x[i] = -x[i];
    return x;
}

static void test_relu(void **state) {
    check_rng r;
    check_rng_seed(&r, 4);
    const int sizes[][3] = {{1, 1, 1}, {3, 7, 5}, {5, 33, 17}};
    for (int t = 0; t < 3; t++) {
        size_t n = (size_t)sizes[t][0] * sizes[t][1] * sizes[t][2];
        float *x = away_from_zero(&r, n), *dy = check_random(&r, n, -1, 1);
        double *dx = ref_from_float(x, n), *ddy = ref_from_float(dy, n);
        double *y = ref_alloc(n), *g = ref_alloc(n);
        nst_ref_relu_forward(y, dx, n);
        nst_ref_relu_backward(g, y, ddy, n);
        if (t == 1) fd_check("relu backward (reference)", relu_fn, &n, dx, n, n, ddy, g, 1e-4,
                             1e-9);
        nst_tensor *tx = check_tensor(rt, 1, sizes[t][0], sizes[t][1], sizes[t][2], x);
        nst_tensor *ty = check_tensor(rt, 1, sizes[t][0], sizes[t][1], sizes[t][2], NULL);
        nst_tensor *tdy = check_tensor(rt, 1, sizes[t][0], sizes[t][1], sizes[t][2], dy);
        assert_int_equal(nst_relu_forward(rt, ty, tx), NST_OK);
        float *gy = check_download(rt, ty);
        assert_true(check_close("relu forward", gy, y, n, 0, 0));
        assert_int_equal(nst_relu_backward(rt, tdy, ty, tdy), NST_OK); /* in place */
        float *gg = check_download(rt, tdy);
        assert_true(check_close("relu backward", gg, g, n, 0, 0));
        nst_tensor_free(rt, tx);
        nst_tensor_free(rt, ty);
        nst_tensor_free(rt, tdy);
        free(x), free(dy), free(dx), free(ddy), free(y), free(g), free(gy), free(gg);
    }
}

/* ---- pooling ------------------------------------------------------------ */

typedef struct pool_ctx {
    int C, H, W, max;
} pool_ctx;

static void pool_fn(double *y, const double *x, const void *p) {
    const pool_ctx *c = p;
    nst_ref_pool_forward(y, x, c->C, c->H, c->W, c->max);
}

/* Distinct values at least 1e-3 apart, shuffled: no ties for max pooling. */
static float *distinct(check_rng *r, size_t n) {
    float *x = malloc(n * sizeof *x);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++) x[i] = -1.0f + 2.0f * (float)i / (float)n;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)check_uniform(r, 0, (float)i);
        if (j >= i) j = i - 1;
        float t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
    return x;
}

/* Both shapes of the backward kernel (for CPUs and GPUs) on the default
 * device; the CPU one takes 4 windows a step: rows of 4 and 4 + 3 windows,
 * odd and even sizes. */
static void test_pool(void **state) {
    check_rng r;
    check_rng_seed(&r, 5);
    const int sizes[][3] = {{1, 2, 2}, {3, 7, 5}, {5, 33, 17}, {4, 8, 6}, {2, 3, 1 + 2},
                            {3, 9, 8}, {2, 6, 15}};
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
    const nst_kernel_shape kept = rt->settings.kernels;
    for (int sm = 0; sm < 4; sm++) /* (CPU, GPU shape) x (average, max) */
        for (int t = 0; t < nsizes; t++) {
            const int max = sm & 1, cpu = sm < 2;
            rt->settings.kernels = cpu ? NST_KERNELS_CPU : NST_KERNELS_GPU;
            int C = sizes[t][0], H = sizes[t][1], W = sizes[t][2];
            size_t nx = (size_t)C * H * W, ny = (size_t)C * (H / 2) * (W / 2);
            float *x = distinct(&r, nx), *dy = check_random(&r, ny, -1, 1);
            double *dx = ref_from_float(x, nx), *ddy = ref_from_float(dy, ny);
            double *y = ref_alloc(ny), *g = ref_alloc(nx);
            nst_ref_pool_forward(y, dx, C, H, W, max);
            nst_ref_pool_backward(g, dx, ddy, C, H, W, max);
            pool_ctx c = {C, H, W, max};
            if ((t == 1 || t == 3) && cpu) /* the reference, once */
                fd_check(max ? "max pool backward (ref)" : "avg pool backward (ref)", pool_fn, &c,
                         dx, nx, ny, ddy, g, 1e-5, 1e-8);
            nst_tensor *tx = check_tensor(rt, 1, C, H, W, x), *ty = check_tensor(rt, 1, C, H / 2, W / 2, NULL);
            nst_tensor *tdy = check_tensor(rt, 1, C, H / 2, W / 2, dy), *tdx = check_tensor(rt, 1, C, H, W, NULL);
            assert_int_equal(nst_tensor_fill(rt, tdx, 7.0f), NST_OK); /* must be overwritten */
            assert_int_equal(nst_pool_forward(rt, ty, tx, max), NST_OK);
            assert_int_equal(nst_pool_backward(rt, tdx, tx, tdy, max), NST_OK);
            float *gy = check_download(rt, ty), *gg = check_download(rt, tdx);
            assert_true(check_close(max ? "max pool fwd" : "avg pool fwd", gy, y, ny, 1e-7, 1e-6));
            assert_true(check_close(max ? "max pool bwd" : "avg pool bwd", gg, g, nx, 1e-7, 1e-6));
            nst_tensor_free(rt, tx);
            nst_tensor_free(rt, ty);
            nst_tensor_free(rt, tdy);
            nst_tensor_free(rt, tdx);
            free(x), free(dy), free(dx), free(ddy), free(y), free(g), free(gy), free(gg);
        }
    rt->settings.kernels = kept;
    /* a 1x1 image cannot be pooled */
    nst_tensor *x = check_tensor(rt, 1, 2, 1, 1, NULL), *y = check_tensor(rt, 1, 2, 1, 1, NULL);
    assert_int_equal(nst_pool_forward(rt, y, x, 1), NST_ERR_INVALID_ARG);
    nst_tensor_free(rt, x);
    nst_tensor_free(rt, y);
}

/* ---- normalisation ------------------------------------------------------ */

typedef struct norm_ctx {
    int H, W;
    const nst_input_norm *in;
} norm_ctx;

static void norm_fn(double *y, const double *x, const void *p) {
    const norm_ctx *c = p;
    nst_ref_normalize_forward(y, x, c->H, c->W, c->in);
}

/* Both input conventions: torchvision's (RGB, ImageNet mean and std) and
 * Caffe's (B, G, R from the image's R, G, B; 255 x - mean). */
static void test_normalize(void **state) {
    for (int conv = 0; conv < 2; conv++) {
        const nst_input_norm *in = nst_input_get(conv);
        check_rng r;
        check_rng_seed(&r, 6);
        const int H = 7, W = 5;
        size_t n = (size_t)3 * H * W;
        float *x = check_random(&r, n, 0, 1), *dy = check_random(&r, n, -1, 1);
        double *dx = ref_from_float(x, n), *ddy = ref_from_float(dy, n);
        double *y = ref_alloc(n), *g = ref_alloc(n);
        nst_ref_normalize_forward(y, dx, H, W, in);
        nst_ref_normalize_backward(g, ddy, H, W, in);
        norm_ctx c = {H, W, in};
        fd_check("normalize backward (reference)", norm_fn, &c, dx, n, n, ddy, g, 1e-4, 1e-9);
        /* the mean and 1 / std become floats: x - mean is off by up to three
         * roundings of a number below 1 (2^-24 each), then scaled by 1 / std */
        float mean[3], sd[3];
        double amp = 0;
        for (int k = 0; k < 3; k++) {
            mean[k] = (float)in->mean[k];
            sd[k] = (float)in->std[k];
            if (1 / in->std[k] > amp) amp = 1 / in->std[k];
        }
        double atol = 3 * amp / 16777216.0;
        printf("  %s convention: forward atol %.2g\n", in->name, atol);
        nst_tensor *tx = check_tensor(rt, 1, 3, H, W, x), *ty = check_tensor(rt, 1, 3, H, W, NULL);
        nst_tensor *tdy = check_tensor(rt, 1, 3, H, W, dy);
        nst_tensor *tdx = check_tensor(rt, 1, 3, H, W, NULL);
        assert_int_equal(nst_normalize_forward(rt, ty, tx, mean, sd, in->bgr), NST_OK);
        assert_int_equal(nst_normalize_backward(rt, tdx, tdy, sd, in->bgr), NST_OK);
        float *gy = check_download(rt, ty), *gg = check_download(rt, tdx);
        assert_true(check_close("normalize fwd", gy, y, n, atol, 1e-6));
        assert_true(check_close("normalize bwd", gg, g, n, 1e-6, 1e-6));
        free(gg);
        /* in place: fine for RGB, refused when the channels are reversed */
        assert_int_equal(nst_normalize_backward(rt, tdy, tdy, sd, in->bgr),
                         in->bgr ? NST_ERR_INVALID_ARG : NST_OK);
        if (!in->bgr) {
            gg = check_download(rt, tdy);
            assert_true(check_close("normalize bwd in place", gg, g, n, 1e-6, 1e-6));
            free(gg);
        }
        assert_int_equal(nst_normalize_forward(rt, tx, tx, mean, sd, in->bgr),
                         in->bgr ? NST_ERR_INVALID_ARG : NST_OK);
        nst_tensor_free(rt, tx);
        nst_tensor_free(rt, ty);
        nst_tensor_free(rt, tdy);
        nst_tensor_free(rt, tdx);
        free(x), free(dy), free(dx), free(ddy), free(y), free(g), free(gy);
    }
    /* torchvision's constants are the ones the layers declare */
    for (int k = 0; k < 3; k++) {
        assert_true((float)nst_input_get(NST_INPUT_TORCHVISION)->mean[k] == nst_imagenet_mean[k]);
        assert_true((float)nst_input_get(NST_INPUT_TORCHVISION)->std[k] == nst_imagenet_std[k]);
    }
}

/* A hand-computed case anchors the reference itself: 1 channel 3x3 image of
 * ones, kernel of ones, bias 1 -> corners 5, edges 7, centre 10. */
static void test_reference_by_hand(void **state) {
    double x[9], w[9], b = 1, y[9], p[1], dx[9] = {0};
    for (int i = 0; i < 9; i++) x[i] = w[i] = 1;
    nst_ref_conv_forward(y, x, w, &b, 1, 3, 3, 1, 3, 0);
    const double want[9] = {5, 7, 5, 7, 10, 7, 5, 7, 5};
    for (int i = 0; i < 9; i++) assert_true(y[i] == want[i]);
    double px[6] = {1, 4, 2, 3, 0, 9}; /* 1 channel 2x3: one window, column 2 dropped */
    nst_ref_pool_forward(p, px, 1, 2, 3, 1);
    assert_true(p[0] == 4);
    double one = 1;
    nst_ref_pool_backward(dx, px, &one, 1, 2, 3, 1);
    assert_true(dx[1] == 1 && dx[0] == 0 && dx[2] == 0 && dx[5] == 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_by_hand), cmocka_unit_test(test_conv_forward),
        cmocka_unit_test(test_conv_backward_fd),  cmocka_unit_test(test_conv_backward),
        cmocka_unit_test(test_conv_errors),       cmocka_unit_test(test_relu),
        cmocka_unit_test(test_pool),              cmocka_unit_test(test_normalize),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
