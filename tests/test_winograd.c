/* test_winograd.c: the Winograd convolution F(2x2,3x3) and F(4x4,3x3),
 * forward and backward to the input, against the plain-C reference (double)
 * on awkward sizes (1x1 to 33x17 images, partial edge tiles, channel counts
 * that are not multiples of 4 or 16), in one band and in bands of tile rows
 * with a short last band; plus validation and the convolution setting. The
 * backward reuses the forward's transformed weights (see cl/winograd.cl). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "reference.h"
#include "ref_alloc.h"
#include "winograd.h"

#define rt check_rt /* the group fixture's runtime (check.h) */

/* Tolerances, relative to the largest magnitude of the reference tensor
 * (check_rel_err), for inputs in [-1,1], weights in [-0.5,0.5], C <= 19:
 * float32 round-off of the transforms grows with the tile size. F(4x4) has
 * two shapes of transform kernels (for GPUs and for CPUs, cl/winograd.cl);
 * both evaluate the same generated sums in the same order, so one bound
 * holds for both, and each is checked on the default device. */
#define TOL_F2 2e-6
#define TOL_F4 2e-5

typedef struct wcase {
    int C, H, W, K;
} wcase;

static const wcase cases[] = {
    {3, 1, 1, 5}, {5, 2, 2, 6}, {6, 5, 7, 3}, {3, 33, 17, 7}, {17, 4, 3, 13}, {19, 9, 10, 18},
    /* rows of 8 tiles and more (the CPU kernels take 8 tiles a step and 16
     * a work item): exactly 8, 8 + 1, 16 + 2, 16 + 16 + 1 */
    {4, 7, 32, 5}, {2, 6, 36, 3}, {3, 9, 70, 2}, {2, 5, 129, 3},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* Scratch for `bands` tile rows per band (0: the whole image). */
static size_t scratch_for(int m, const wcase *k, int bands) {
    size_t tw = (size_t)(k->W + m - 1) / m, a2 = (size_t)(m + 2) * (m + 2);
    size_t row = a2 * (size_t)(k->C + k->K) * tw;
    size_t sf = nst_winograd_scratch_floats(m, k->C, k->K, k->H, k->W,
                                            bands ? row * bands + row / 2 : (size_t)1 << 24);
    int th = (k->H + m - 1) / m;
    assert_int_equal(sf, row * (size_t)(bands && bands < th ? bands : th));
    return sf;
}

static nst_tensor *filter(int m, const wcase *k, const float *w) {
    nst_tensor *tw = check_tensor(rt, k->K, k->C, 3, 3, w);
    nst_tensor *u = check_tensor(rt, (m + 2) * (m + 2), k->K, k->C, 1, NULL);
    assert_int_equal(nst_winograd_filter(rt, m, u, tw), NST_OK);
    nst_tensor_free(rt, tw);
    return u;
}

static double forward_case(int m, const wcase *k, int relu, int bands, check_rng *r) {
    size_t nx = (size_t)k->C * k->H * k->W, nw = (size_t)k->K * k->C * 9;
    size_t ny = (size_t)k->K * k->H * k->W;
    float *x = check_random(r, nx, -1, 1), *w = check_random(r, nw, -0.5f, 0.5f), *b = check_random(r, k->K, -0.5f, 0.5f);
    nst_tensor *tx = check_tensor(rt, 1, k->C, k->H, k->W, x), *u = filter(m, k, w);
    nst_tensor *tb = check_tensor(rt, 1, k->K, 1, 1, b), *ty = check_tensor(rt, 1, k->K, k->H, k->W, NULL);
    assert_int_equal(nst_tensor_fill(rt, ty, 7.0f), NST_OK); /* overwritten */
    size_t sf = scratch_for(m, k, bands);
    cl_mem scratch = NULL;
    assert_int_equal(nst_buffer_create(rt, sf * sizeof(float), &scratch), NST_OK);
    assert_int_equal(nst_winograd_forward(rt, m, ty, tx, u, tb, relu, scratch, sf), NST_OK);
    float *y = check_download(rt, ty);
    double *dx = ref_from_float(x, nx), *dw = ref_from_float(w, nw), *db = ref_from_float(b, k->K);
    double *want = ref_alloc(ny);
    nst_ref_conv_forward(want, dx, dw, db, k->C, k->H, k->W, k->K, 3, relu);
    double e = check_rel_err(y, want, ny);
    printf("  F(%dx%d) fwd C%-2d %2dx%-2d K%-2d relu%d bands %d: rel err %.2e\n", m, m, k->C,
           k->H, k->W, k->K, relu, bands, e);
    nst_buffer_free(rt, scratch);
    nst_tensor_free(rt, tx);
    nst_tensor_free(rt, u);
    nst_tensor_free(rt, tb);
    nst_tensor_free(rt, ty);
    free(x), free(w), free(b), free(y), free(dx), free(dw), free(db), free(want);
    return e;
}

/* The input gradient; with masked, through a ReLU's backward pass fused in
 * (dy counts where a random "ReLU output" is positive, about half). */
static double backward_case(int m, const wcase *k, int accumulate, int bands, int masked,
                            check_rng *r) {
    size_t nx = (size_t)k->C * k->H * k->W, nw = (size_t)k->K * k->C * 9;
    size_t ny = (size_t)k->K * k->H * k->W;
    float *dy = check_random(r, ny, -1, 1), *w = check_random(r, nw, -0.5f, 0.5f), *dx0 = check_random(r, nx, -1, 1);
    float *mask = masked ? check_random(r, ny, -1, 1) : NULL;
    nst_tensor *tmask = masked ? check_tensor(rt, 1, k->K, k->H, k->W, mask) : NULL;
    nst_tensor *tdy = check_tensor(rt, 1, k->K, k->H, k->W, dy), *u = filter(m, k, w);
    nst_tensor *tdx = check_tensor(rt, 1, k->C, k->H, k->W, dx0);
    size_t sf = scratch_for(m, k, bands);
    cl_mem scratch = NULL;
    assert_int_equal(nst_buffer_create(rt, sf * sizeof(float), &scratch), NST_OK);
    assert_int_equal(
        nst_winograd_backward_input(rt, m, tdx, tdy, tmask, u, accumulate, scratch, sf), NST_OK);
    float *got = check_download(rt, tdx);
    double *want = accumulate ? ref_from_float(dx0, nx) : ref_alloc(nx);
    double *ddy = ref_from_float(dy, ny), *dw = ref_from_float(w, nw);
    for (size_t i = 0; masked && i < ny; i++)
        if (!(mask[i] > 0)) ddy[i] = 0;
    nst_ref_conv_backward_input(want, ddy, dw, k->C, k->H, k->W, k->K, 3);
    double e = check_rel_err(got, want, nx);
    printf("  F(%dx%d) bwd C%-2d %2dx%-2d K%-2d acc%d mask%d bands %d: rel err %.2e\n", m, m,
           k->C, k->H, k->W, k->K, accumulate, masked, bands, e);
    nst_tensor_free(rt, tmask);
    free(mask);
    nst_buffer_free(rt, scratch);
    nst_tensor_free(rt, tdy);
    nst_tensor_free(rt, u);
    nst_tensor_free(rt, tdx);
    free(dy), free(w), free(dx0), free(got), free(want), free(ddy), free(dw);
    return e;
}

static void run_all(int m, double tol, uint64_t seed) {
    check_rng r;
    check_rng_seed(&r, seed);
    double worst = 0, e;
    for (int i = 0; i < NCASES; i++) {
        for (int v = 0; v < 4; v++) { /* whole image, 1 tile row per band, 2 per band */
            int bands = v == 0 ? 0 : v == 1 ? 1 : 2;
            e = forward_case(m, &cases[i], v & 1, bands, &r);
            assert_true(e < tol);
            worst = e > worst ? e : worst;
            e = backward_case(m, &cases[i], v >= 2, bands, v & 1, &r);
            assert_true(e < tol);
            worst = e > worst ? e : worst;
        }
    }
    printf("  F(%dx%d,3x3): worst rel err %.2e (tolerance %.0e)\n", m, m, worst, tol);
}

/* Whether kernel `name` of the F(4x4) program was looked up. */
static int used(const char *name) {
    for (int i = 0; i < rt->nkernels; i++)
        if (!strcmp(rt->kernels[i].program, "winograd4") && !strcmp(rt->kernels[i].name, name))
            return 1;
    return 0;
}

/* F(4x4) with the transform kernels of one shape forced on the default
 * device; the runtime's setting is read at each launch. */
static void run_f4(nst_kernel_shape shape, uint64_t seed) {
    nst_kernel_shape kept = rt->settings.kernels;
    rt->settings.kernels = shape;
    assert_int_equal(nst_cpu_kernels(rt), shape == NST_KERNELS_CPU);
    printf("  %s-shaped transforms\n", shape == NST_KERNELS_CPU ? "CPU" : "GPU");
    run_all(4, TOL_F4, seed);
    rt->settings.kernels = kept;
    const char *suffix = shape == NST_KERNELS_CPU ? "_cpu" : "";
    static const char *names[] = {"wg4_input", "wg4_input_flip", "wg4_output", "wg4_output_flip"};
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s%s", names[i], suffix);
        assert_true(used(name));
    }
}

static void test_f2(void **state) { run_all(2, TOL_F2, 11); }
static void test_f4_gpu(void **state) { run_f4(NST_KERNELS_GPU, 12); }
static void test_f4_cpu(void **state) { run_f4(NST_KERNELS_CPU, 13); }

/* NST_KERNELS reaches the settings; "auto" follows the device type. */
static void test_kernel_setting(void **state) {
    static const struct {
        const char *env;
        nst_kernel_shape shape;
    } cases[] = {{NULL, NST_KERNELS_AUTO}, {"", NST_KERNELS_AUTO}, {"auto", NST_KERNELS_AUTO},
                 {"cpu", NST_KERNELS_CPU}, {"gpu", NST_KERNELS_GPU}};
    char *save = check_env_save("NST_KERNELS");
    nst_kernel_shape kept = rt->settings.kernels;
    nst_settings s;
    nst_msg msg = {{0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_settings_with("NST_KERNELS", cases[i].env, &s);
        assert_int_equal(s.kernels, cases[i].shape);
        assert_int_equal(nst_settings_check(&s, &msg), NST_OK);
    }
    rt->settings.kernels = NST_KERNELS_AUTO;
    assert_int_equal(nst_cpu_kernels(rt), !strcmp(rt->info.type, "CPU"));
    rt->settings.kernels = kept;
    setenv("NST_KERNELS", "avx", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "NST_KERNELS='avx'"));
    memset(&s, 0, sizeof s);
    s.kernels = (nst_kernel_shape)3;
    assert_int_equal(nst_settings_check(&s, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "kernels 3"));
    check_env_restore("NST_KERNELS", save);
}

/* Wrong tile sizes, shapes and a scratch below one tile row are refused. */
static void test_validation(void **state) {
    wcase k = {3, 6, 5, 4};
    nst_tensor *x = check_tensor(rt, 1, 3, 6, 5, NULL), *y = check_tensor(rt, 1, 4, 6, 5, NULL), *b = check_tensor(rt, 1, 4, 1, 1, NULL);
    nst_tensor *w = check_tensor(rt, 4, 3, 3, 3, NULL), *u = check_tensor(rt, 36, 4, 3, 1, NULL);
    nst_tensor *u2 = check_tensor(rt, 16, 4, 3, 1, NULL);
    assert_int_equal(nst_tensor_fill(rt, w, 1.0f), NST_OK);
    assert_int_equal(nst_winograd_filter(rt, 4, u, w), NST_OK);
    assert_int_equal(nst_winograd_filter(rt, 3, u, w), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "2 or 4"));
    assert_int_equal(nst_winograd_filter(rt, 2, u, w), NST_ERR_INVALID_ARG); /* u is for F4 */
    size_t sf = scratch_for(4, &k, 1);
    cl_mem s = NULL;
    assert_int_equal(nst_buffer_create(rt, sf * sizeof(float), &s), NST_OK);
    assert_int_equal(nst_winograd_forward(rt, 4, y, x, u, b, 0, s, sf), NST_OK);
    assert_int_equal(nst_winograd_forward(rt, 2, y, x, u, b, 0, s, sf), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_winograd_forward(rt, 4, y, x, u2, b, 0, s, sf), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_winograd_forward(rt, 4, x, x, u, b, 0, s, sf), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_winograd_forward(rt, 4, y, x, u, x, 0, s, sf), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "bias"));
    assert_int_equal(nst_winograd_forward(rt, 4, y, x, u, b, 0, s, sf - 1), NST_ERR_TOO_LARGE);
    assert_non_null(strstr(nst_last_error(rt), "scratch"));
    assert_int_equal(nst_winograd_backward_input(rt, 4, x, y, NULL, u, 0, s, sf), NST_OK);
    assert_int_equal(nst_winograd_backward_input(rt, 4, x, y, y, u, 0, s, sf), NST_OK);
    assert_int_equal(nst_winograd_backward_input(rt, 4, x, y, x, u, 0, s, sf),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "ReLU output"));
    assert_int_equal(nst_winograd_backward_input(rt, 4, y, x, NULL, u, 0, s, sf),
                     NST_ERR_INVALID_ARG);
    assert_int_equal(nst_winograd_backward_input(rt, 4, x, y, NULL, u, 0, s, 0),
                     NST_ERR_TOO_LARGE);
    assert_int_equal(nst_finish(rt), NST_OK);
    nst_buffer_free(rt, s);
    nst_tensor_free(rt, x);
    nst_tensor_free(rt, y);
    nst_tensor_free(rt, b);
    nst_tensor_free(rt, w);
    nst_tensor_free(rt, u);
    nst_tensor_free(rt, u2);
}

/* NST_CONV's names map to the methods, and the runtime's settings choose the
 * tile size. */
static void test_conv_setting(void **state) {
    static const struct {
        const char *env;
        nst_conv_method method;
        int m;
    } cases[] = {{NULL, NST_CONV_WINOGRAD4, 4},     {"", NST_CONV_WINOGRAD4, 4},
                 {"winograd", NST_CONV_WINOGRAD4, 4}, {"winograd4", NST_CONV_WINOGRAD4, 4},
                 {"winograd2", NST_CONV_WINOGRAD2, 2}, {"im2col", NST_CONV_IM2COL, 0}};
    char *save = check_env_save("NST_CONV");
    nst_conv_method kept = rt->settings.conv;
    nst_settings s;
    nst_msg msg = {{0}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_settings_with("NST_CONV", cases[i].env, &s);
        assert_int_equal(s.conv, cases[i].method);
        rt->settings.conv = s.conv;
        assert_int_equal(nst_winograd_mode(rt), cases[i].m);
    }
    setenv("NST_CONV", "fft", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "NST_CONV='fft'"));
    rt->settings.conv = (nst_conv_method)7;
    assert_int_equal(nst_winograd_mode(rt), -1);
    rt->settings.conv = kept;
    check_env_restore("NST_CONV", save);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f2),
        cmocka_unit_test(test_f4_gpu),
        cmocka_unit_test(test_f4_cpu),
        cmocka_unit_test(test_kernel_setting),
        cmocka_unit_test(test_validation),
        cmocka_unit_test(test_conv_setting),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
