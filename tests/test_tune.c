/* test_tune.c: the GEMM tuning file: saved parameters are applied and GEMMs
 * stay right; corrupt, stale or disabled files are ignored; the tuner on a
 * tiny budget writes a file that reads back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "tune.h"

/* Two valid Xgemm parameter sets with different tile sizes (and so
 * different padding, which shows in the temporary buffer CLBlast asks for). */
static const char *params_small =
    "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 NDIMB=16 NDIMC=8 NWG=64 SA=0 SB=1 "
    "STRM=1 STRN=0 VWM=2 VWN=2";
static const char *params_large =
    "GEMMK=0 KREG=1 KWG=32 KWI=2 MDIMA=16 MDIMC=16 MWG=128 NDIMB=16 NDIMC=16 NWG=128 SA=0 SB=0 "
    "STRM=0 STRN=0 VWM=4 VWN=4";

static int setup(void **state) {
    (void)state;
    const char *dir = check_tmp_path("tune-cache");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) return -1;
    setenv("NST_CACHE_DIR", dir, 1);
    unsetenv("NST_TUNE");
    setenv("NST_GEMM", "clblast", 1); /* what is tuned is CLBlast's kernel */
    return 0;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

/* A tuning file for rt's device; `device` replaces its name when not NULL. */
static void write_tuning(nst_runtime *rt, const char *device, const char *params) {
    char path[1024], text[2048];
    assert_int_equal(nst_tune_path(rt, path, sizeof path), 0);
    snprintf(text, sizeof text,
             "# test\nnst-gemm-tune 1\nplatform %s\ndevice %s\nversion %s\ndriver %s\n"
             "clblast %s\ngflops 1.0 1.0\n%s%s\n",
             rt->info.platform, device ? device : rt->info.name, rt->info.version,
             rt->info.driver, nst_blas_version(), params ? "kernel Xgemm " : "",
             params ? params : "");
    write_text(path, text);
}

/* C = 0.75 op(A) B + 0.5 C with awkward edges, compared with a double
 * reference, at a size CLBlast runs through its tiled kernel on this device:
 * the kernel the parameters are for. (Smaller products go to its direct
 * kernel, at a threshold that depends on the device: 130 x 1030 x 1500 is
 * above it on Intel CPUs but not on AMD ones.) */
static void check_gemm(nst_runtime *rt, int trans_b) {
    const int m = 130, n = 1030;
    static int k; /* the same device in every runtime of this process */
    if (!k) {
        unsigned long long min = nst_gemm_tiled_min(rt), mn = (unsigned long long)m * n;
        assert_true(min > 0);
        unsigned long long kk = (min + mn - 1) / mn;
        k = (int)((kk < 1500 ? 1500 : kk) | 1); /* odd: no tile divides it */
        fprintf(stderr, "CLBlast's tiled kernel from m*n*k = %llu: products of %dx%dx%d\n",
                min, m, n, k);
    }
    check_rng rng;
    check_rng_seed(&rng, 77 + trans_b);
    float *a = malloc(sizeof(float) * m * k), *b = malloc(sizeof(float) * k * n);
    float *c = malloc(sizeof(float) * m * n), *got = malloc(sizeof(float) * m * n);
    static double *wants[2]; /* the same inputs every time: one reference each */
    double *want = wants[trans_b];
    int fresh = !want;
    if (fresh) want = wants[trans_b] = malloc(sizeof(double) * m * n);
    assert_true(a && b && c && got && want);
    check_fill(&rng, a, (size_t)m * k, -1, 1);
    check_fill(&rng, b, (size_t)k * n, -1, 1);
    check_fill(&rng, c, (size_t)m * n, -1, 1);
    for (int i = 0; fresh && i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0;
            for (int p = 0; p < k; p++)
                s += (double)a[i * k + p] * (trans_b ? b[j * k + p] : b[p * n + j]);
            want[i * n + j] = 0.75 * s + 0.5 * c[i * n + j];
        }
    cl_mem da, db, dc;
    assert_int_equal(nst_buffer_create(rt, sizeof(float) * m * k, &da), NST_OK);
    assert_int_equal(nst_buffer_create(rt, sizeof(float) * k * n, &db), NST_OK);
    assert_int_equal(nst_buffer_create(rt, sizeof(float) * m * n, &dc), NST_OK);
    assert_int_equal(nst_write_floats(rt, da, 0, (size_t)m * k, a), NST_OK);
    assert_int_equal(nst_write_floats(rt, db, 0, (size_t)k * n, b), NST_OK);
    assert_int_equal(nst_write_floats(rt, dc, 0, (size_t)m * n, c), NST_OK);
    nst_status st = nst_gemm(rt, 0, trans_b, m, n, k, 0.75f, da, 0, k, db, 0, trans_b ? k : n,
                             0.5f, dc, 0, n);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    assert_int_equal(nst_read_floats(rt, dc, 0, (size_t)m * n, got), NST_OK);
    assert_true(check_close("gemm", got, want, (size_t)m * n, 1e-3, 1e-4));
    assert_true(rt->gemm_temp_bytes > 0); /* the tiled kernel ran */
    nst_buffer_free(rt, da);
    nst_buffer_free(rt, db);
    nst_buffer_free(rt, dc);
    free(a);
    free(b);
    free(c);
    free(got);
}

/* Runs both products on a fresh runtime; returns CLBlast's temporary bytes. */
static size_t run_gemms(int expect_applied, const char *note_part) {
    nst_runtime *rt = check_runtime();
    check_gemm(rt, 0);
    check_gemm(rt, 1);
    fprintf(stderr, "GEMM parameters: %s\n", nst_tune_note(rt));
    assert_int_equal(nst_tune_applied(rt), expect_applied);
    if (note_part) assert_non_null(strstr(nst_tune_note(rt), note_part));
    size_t temp = rt->gemm_temp_bytes;
    nst_runtime_close(rt);
    return temp;
}

static void remove_tuning(void) {
    nst_runtime *rt = check_runtime();
    char path[1024];
    assert_int_equal(nst_tune_path(rt, path, sizeof path), 0);
    remove(path);
    nst_runtime_close(rt);
}

/* Runs first: nothing has overridden CLBlast's parameters in this process. */
static void test_bad_files_ignored(void **state) {
    (void)state;
    remove_tuning();
    size_t t_default = run_gemms(0, "none saved");
    nst_runtime *rt = check_runtime();
    char path[1024];
    assert_int_equal(nst_tune_path(rt, path, sizeof path), 0);
    nst_runtime_close(rt);

    write_text(path, "\x01garbage\nkernel Xgemm KWG=\n");
    assert_int_equal(run_gemms(0, "not a valid"), t_default);

    rt = check_runtime();
    /* a value outside the kernel's constraints (MWG 24) */
    write_tuning(rt, NULL,
                 "GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=24 NDIMB=16 NDIMC=8 NWG=64 "
                 "SA=0 SB=1 STRM=1 STRN=0 VWM=2 VWN=2");
    nst_runtime_close(rt);
    assert_int_equal(run_gemms(0, "not a valid"), t_default);

    rt = check_runtime();
    write_tuning(rt, NULL, "GEMMK=0 KWG=16"); /* missing parameters */
    nst_runtime_close(rt);
    assert_int_equal(run_gemms(0, "not a valid"), t_default);

    rt = check_runtime();
    write_tuning(rt, "some other device", params_small); /* stale */
    nst_runtime_close(rt);
    assert_int_equal(run_gemms(0, "another device"), t_default);

    write_text(path, ""); /* empty */
    assert_int_equal(run_gemms(0, "not a valid"), t_default);

    /* a good file, but NST_TUNE=0 */
    rt = check_runtime();
    write_tuning(rt, NULL, params_large);
    nst_runtime_close(rt);
    setenv("NST_TUNE", "0", 1);
    assert_int_equal(run_gemms(0, "NST_TUNE=0"), t_default);
    unsetenv("NST_TUNE");
    remove_tuning();
}

static void test_applied(void **state) {
    (void)state;
    nst_runtime *rt = check_runtime();
    write_tuning(rt, NULL, params_small);
    nst_runtime_close(rt);
    size_t t_small = run_gemms(1, "tuned, from");

    rt = check_runtime();
    write_tuning(rt, NULL, params_large);
    nst_runtime_close(rt);
    size_t t_large = run_gemms(1, "tuned, from");
    /* the padding follows the tile sizes: the parameters are in effect */
    fprintf(stderr, "temporary bytes: small tiles %zu, large tiles %zu\n", t_small, t_large);
    assert_true(t_small != t_large);

    /* CLBlast keeps an override until the process ends: said so, not hidden */
    setenv("NST_TUNE", "0", 1);
    assert_int_equal(run_gemms(1, "earlier in this process"), t_large);
    unsetenv("NST_TUNE");
    remove_tuning();
}

static void test_tiny_search(void **state) {
    (void)state;
    /* a previous result is the first candidate: with a budget this small it
     * is the only one (and its kernels are already built in this process) */
    nst_runtime *rt = check_runtime();
    write_tuning(rt, NULL, params_large);
    nst_tune_options opt = {0.5, 12345, NULL, NULL};
    nst_tune_result r;
    nst_status st = nst_tune_gemm(rt, &opt, &r);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    fprintf(stderr, "tuner: %d tried, %.1f GFLOP/s (CLBlast's own %.1f), %s\n", r.tried,
            r.best_gflops, r.default_gflops, r.saved_params ? r.params : "defaults kept");
    assert_true(r.tried >= 1);
    if (r.tried == 1 && r.saved_params) assert_string_equal(r.params, params_large);
    assert_true(r.default_gflops > 0 && r.best_gflops >= r.default_gflops);
    /* it timed the kernel the parameters are for, and says what a candidate
     * costs (the budget for a longer search follows from it) */
    assert_int_equal(r.tiled, 1);
    assert_true(r.candidate_seconds > 0 && r.elapsed >= r.candidate_seconds);
    assert_int_equal(nst_tune_applied(rt), 1); /* earlier tests overrode CLBlast's own */
    nst_runtime_close(rt);
    FILE *f = fopen(r.path, "r");
    assert_non_null(f);
    fclose(f);
    /* a new runtime reads it back: applied when it holds parameters */
    run_gemms(1, r.saved_params ? "tuned, from" : "nothing faster");

    rt = check_runtime();
    opt.seconds = 0;
    assert_int_equal(nst_tune_gemm(rt, &opt, &r), NST_ERR_INVALID_ARG);
    nst_runtime_close(rt);
    remove_tuning();
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_files_ignored),
        cmocka_unit_test(test_applied),
        cmocka_unit_test(test_tiny_search),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
