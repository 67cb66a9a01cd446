/* test_devcheck.c: the device self-check (nst devices --check) passes on the
 * test device, both at the tiny and at the full sizes, and its comparison
 * fails on perturbed data, so a bad driver cannot pass unnoticed. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "devcheck.h"

#define g_rt check_rt /* the group fixture's runtime (check.h) */

static void run_check(int tiny) {
    nst_check_row rows[NST_CHECK_MAX_ROWS];
    int n = 0;
    nst_status st = nst_device_check(g_rt, tiny, rows, NST_CHECK_MAX_ROWS, &n);
    nst_device_check_print(stdout, nst_runtime_device(g_rt), rows, n);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(g_rt));
    assert_int_equal(st, NST_OK);
    assert_true(n >= 25);
    for (int i = 0; i < n; i++) {
        assert_true(rows[i].pass);
        if (rows[i].measured) {
            assert_true(rows[i].max_abs >= 0 && rows[i].max_rel >= 0);
            assert_true(rows[i].ms >= 0);
        }
    }
}

static void test_check_tiny(void **state) { run_check(1); }

static void test_check_full(void **state) { run_check(0); }

/* Too few rows is refused before anything runs. */
static void test_check_rows(void **state) {
    nst_check_row rows[4];
    int n = -1;
    assert_int_equal(nst_device_check(g_rt, 1, rows, 4, &n), NST_ERR_INVALID_ARG);
    assert_int_equal(n, 0);
}

/* The comparison itself: within tolerance passes; a perturbation just past
 * the tolerance, a NaN, or a whole-tensor error past rtol fails. */
static void test_compare_fails(void **state) {
    enum { N = 257 };
    float got[N];
    double want[N];
    check_rng r;
    check_rng_seed(&r, 5);
    for (int i = 0; i < N; i++) {
        want[i] = check_uniform(&r, -2, 2);
        got[i] = (float)want[i];
    }
    nst_check_row row = {"elementwise", 0, 0, 1e-5, 1e-4, 0, 0, 0, 0, ""};
    assert_true(nst_check_compare(&row, got, want, N));
    assert_true(row.max_abs < 1e-6);

    /* one element off by twice its tolerance */
    int k = 100;
    got[k] = (float)(want[k] + 2 * (1e-5 + 1e-4 * fabs(want[k])));
    assert_false(nst_check_compare(&row, got, want, N));
    assert_true(row.max_abs > 1e-5);
    assert_true(fabs(row.max_rel - row.max_abs / 2) < 0.1 * row.max_rel + 1e-12 ||
                row.max_rel <= row.max_abs);
    got[k] = (float)want[k];
    assert_true(nst_check_compare(&row, got, want, N));

    got[7] = NAN;
    assert_false(nst_check_compare(&row, got, want, N));
    got[7] = (float)want[7];

    /* an exact row fails on a one-ulp change */
    nst_check_row exact = {"exact", 0, 0, 0, 0, 0, 0, 0, 0, ""};
    assert_true(nst_check_compare(&exact, got, want, N));
    got[3] = nextafterf(got[3], 10.0f);
    assert_false(nst_check_compare(&exact, got, want, N));
    got[3] = (float)want[3];

    /* whole-tensor rows: max |d| / max |want| against rtol */
    nst_check_row whole = {"whole", 0, 0, 0, 1e-4, 1, 0, 0, 0, ""};
    double maxw = 0;
    for (int i = 0; i < N; i++) maxw = fmax(maxw, fabs(want[i]));
    got[50] = (float)(want[50] + 0.5e-4 * maxw);
    assert_true(nst_check_compare(&whole, got, want, N));
    got[50] = (float)(want[50] + 3e-4 * maxw);
    assert_false(nst_check_compare(&whole, got, want, N));
    assert_true(whole.max_rel > 2e-4 && whole.max_rel < 4e-4);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_compare_fails),
        cmocka_unit_test(test_check_rows),
        cmocka_unit_test(test_check_tiny),
        cmocka_unit_test(test_check_full),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
