/* test_progress.c: the speed and time left the command line shows. A first
 * run spends most of its first iteration compiling kernels; the speed must
 * count from the end of it, not from the start of the run. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cli.c" /* the command line's helpers are not part of the library */

static void test_first_iteration_has_no_speed(void **state) {
    cli_rate r = {0};
    double rate = 1, eta = 1;
    cli_rate_update(&r, 1, 100, 46.0, &rate, &eta);
    assert_true(rate == 0);
    assert_true(eta == -1);
}

/* 46 s compiling, then an iteration every 0.5 s: 2 it/s, not 3 over 47 s. */
static void test_speed_leaves_the_compiling_out(void **state) {
    cli_rate r = {0};
    double rate, eta;
    cli_rate_update(&r, 1, 100, 46.0, &rate, &eta);
    cli_rate_update(&r, 2, 100, 46.5, &rate, &eta);
    assert_true(rate == 2.0);
    assert_true(eta == 49.0);
    cli_rate_update(&r, 3, 100, 47.0, &rate, &eta);
    assert_true(rate == 2.0);
    assert_true(eta == 48.5);
    cli_rate_update(&r, 100, 100, 95.5, &rate, &eta);
    assert_true(rate == 2.0);
    assert_true(eta == 0);
}

/* No time between two events (a coarse clock): no speed rather than infinity. */
static void test_no_time_no_speed(void **state) {
    cli_rate r = {0};
    double rate, eta;
    cli_rate_update(&r, 5, 10, 3.0, &rate, &eta);
    cli_rate_update(&r, 6, 10, 3.0, &rate, &eta);
    assert_true(rate == 0);
    assert_true(eta == -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_iteration_has_no_speed),
        cmocka_unit_test(test_speed_leaves_the_compiling_out),
        cmocka_unit_test(test_no_time_no_speed),
    };
    return cmocka_run_group_tests_name("progress", tests, NULL, NULL);
}
