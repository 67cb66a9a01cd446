/* test_ema.c: iterate averaging (nst_ema_update / nst_ema_read) against the
 * definition u_t = d u_{t-1} + (1-d) x_t, avg_t = u_t / (1 - d^t) in double,
 * restarts, determinism and argument checks. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "optim.h"
#include "ref_guided.h"

#define g_rt check_rt /* the group fixture's runtime (check.h) */

enum { C = 3, H = 9, W = 7, N = C * H * W };

/* Runs `steps` updates with decay d on random iterates (seeded), checking the
 * read-back average against the reference after every step. avg starts as
 * NaN: the first update must not read it. */
static void run_average(nst_runtime *rt, double d, int steps, uint64_t seed, float *last) {
    check_rng r;
    check_rng_seed(&r, seed);
    nst_tensor *avg = NULL, *x = NULL, *out = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, C, H, W, &avg), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, C, H, W, &x), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, C, H, W, &out), NST_OK);
    assert_int_equal(nst_tensor_fill(rt, avg, NAN), NST_OK);
    ref_ema e;
    ref_ema_init(&e, N, (float)d);
    float *xs = malloc(N * sizeof *xs), *got = malloc(N * sizeof *got);
    double *want = malloc(N * sizeof *want);
    for (int t = 1; t <= steps; t++) {
        /* a drifting iterate with noise, like an optimiser's path */
        for (int i = 0; i < N; i++) xs[i] = 0.02f * t + check_uniform(&r, -0.5f, 0.5f);
        assert_int_equal(nst_tensor_upload(rt, x, xs), NST_OK);
        assert_int_equal(nst_ema_update(rt, avg, x, (float)d, t), NST_OK);
        assert_int_equal(nst_ema_read(rt, out, avg, t), NST_OK);
        assert_int_equal(nst_tensor_download(rt, out, got), NST_OK);
        ref_ema_update(&e, xs);
        ref_ema_value(&e, want);
        char what[64];
        snprintf(what, sizeof what, "ema d=%g step %d", d, t);
        assert_true(check_close(what, got, want, N, 1e-6, 1e-5));
        if (t == 1) assert_memory_equal(got, xs, N * sizeof(float)); /* no bias at all */
    }
    if (last) memcpy(last, got, N * sizeof *got);
    ref_ema_free(&e);
    free(xs);
    free(got);
    free(want);
    nst_tensor_free(rt, avg);
    nst_tensor_free(rt, x);
    nst_tensor_free(rt, out);
}

static void test_ema_reference(void **state) {
    run_average(g_rt, 0.9, 40, 41, NULL);
    run_average(g_rt, 0.5, 12, 42, NULL);
    run_average(g_rt, 0.999, 25, 43, NULL); /* near 1: plain running mean so far */
    run_average(g_rt, 0.0, 3, 44, NULL);    /* no averaging: avg = x */
}

/* With decay near 1 and few steps the corrected average is close to the
 * plain mean of the iterates, far from the uncorrected u_t (near zero). */
static void test_ema_unbiased(void **state) {
    nst_runtime *rt = g_rt;
    nst_tensor *avg = NULL, *x = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 1, 1, 4, &avg), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 1, 1, 4, &x), NST_OK);
    const float vals[3][4] = {{1, 2, 3, 4}, {3, 2, 1, 0}, {2, 2, 2, 2}};
    for (int t = 1; t <= 3; t++) {
        assert_int_equal(nst_tensor_upload(rt, x, vals[t - 1]), NST_OK);
        assert_int_equal(nst_ema_update(rt, avg, x, 0.9999f, t), NST_OK);
    }
    float got[4];
    assert_int_equal(nst_tensor_download(rt, avg, got), NST_OK);
    double mean[4];
    for (int i = 0; i < 4; i++) mean[i] = (vals[0][i] + vals[1][i] + vals[2][i]) / 3.0;
    assert_true(check_close("ema near plain mean", got, mean, 4, 1e-3, 1e-3));
    nst_tensor_free(rt, avg);
    nst_tensor_free(rt, x);
}

static void test_ema_deterministic(void **state) {
    float *a = malloc(N * sizeof *a), *b = malloc(N * sizeof *b);
    run_average(g_rt, 0.95, 10, 45, a);
    run_average(g_rt, 0.95, 10, 45, b);
    assert_memory_equal(a, b, N * sizeof *a);
    free(a);
    free(b);
}

static void test_ema_bad_args(void **state) {
    nst_runtime *rt = g_rt;
    nst_tensor *a = NULL, *b = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 3, 4, 5, &a), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, 5, 4, &b), NST_OK);
    assert_int_equal(nst_ema_update(rt, a, b, 0.9f, 1), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "shape"));
    assert_int_equal(nst_ema_update(rt, a, a, 1.0f, 2), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "decay"));
    assert_int_equal(nst_ema_update(rt, a, a, -0.1f, 2), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_ema_update(rt, a, a, NAN, 2), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_ema_update(rt, a, a, 0.9f, 0), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "step"));
    assert_int_equal(nst_ema_read(rt, a, a, 0), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_ema_read(rt, b, a, 1), NST_ERR_INVALID_ARG);
    nst_tensor_free(rt, a);
    nst_tensor_free(rt, b);
    assert_int_equal(nst_mem_in_use(rt), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ema_reference),
        cmocka_unit_test(test_ema_unbiased),
        cmocka_unit_test(test_ema_deterministic),
        cmocka_unit_test(test_ema_bad_args),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
