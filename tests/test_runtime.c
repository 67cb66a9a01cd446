/* test_runtime.c: device listing and selection, kernel build and launch,
 * and the program-binary cache (cold build, hit, corrupted entry). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include <cmocka.h>

#include "check.h"

static void test_list_has_default(void **state) {
    nst_device_info *devs = NULL;
    int n = 0, defaults = 0;
    nst_msg msg = {{0}};
    assert_int_equal(nst_devices_list(&devs, &n, &msg), NST_OK);
    assert_true(n >= 1);
    for (int i = 0; i < n; i++) {
        assert_int_equal(devs[i].index, i);
        assert_true(strlen(devs[i].name) > 0);
        assert_true(devs[i].global_mem > 0);
        assert_true(devs[i].max_alloc > 0);
        assert_true(devs[i].compute_units > 0);
        defaults += devs[i].is_default;
    }
    assert_int_equal(defaults, 1);
    free(devs);
}

static int contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] && (hay[i] | 32) == (needle[i] | 32)) i++;
        if (i == n) return 1;
    }
    return 0;
}

static void test_select(void **state) {
    nst_device_info *devs = NULL;
    int n = 0, idx = -1;
    nst_msg msg = {{0}};
    assert_int_equal(nst_devices_list(&devs, &n, &msg), NST_OK);
    /* by index */
    assert_int_equal(nst_device_select(devs, n, "0", &idx, &msg), NST_OK);
    assert_int_equal(idx, 0);
    /* by a case-changed substring of the last device's name */
    char sub[8] = {0};
    memcpy(sub, devs[n - 1].name, 5);
    for (char *p = sub; *p; p++) *p = (*p >= 'a' && *p <= 'z') ? *p - 32 : *p + 0;
    assert_int_equal(nst_device_select(devs, n, sub, &idx, &msg), NST_OK);
    assert_true(idx >= 0 && idx < n);
    assert_true(contains_nocase(devs[idx].name, sub) || contains_nocase(devs[idx].platform, sub));
    /* no selection: the default */
    assert_int_equal(nst_device_select(devs, n, NULL, &idx, &msg), NST_OK);
    assert_true(devs[idx].is_default);
    /* bad selections list what exists */
    assert_int_equal(nst_device_select(devs, n, "99", &idx, &msg), NST_ERR_NO_DEVICE);
    assert_non_null(strstr(msg.text, "no device 99"));
    assert_non_null(strstr(msg.text, devs[0].name));
    assert_int_equal(nst_device_select(devs, n, "no-such-gpu-xyz", &idx, &msg), NST_ERR_NO_DEVICE);
    assert_non_null(strstr(msg.text, "no-such-gpu-xyz"));
    assert_non_null(strstr(msg.text, devs[0].name));
    free(devs);
}

/* The runtime's device: options.device, else settings.device (NST_DEVICE),
 * else the default; a bad settings.device is named as NST_DEVICE. */
static void test_select_settings(void **state) {
    nst_msg msg = {{0}};
    nst_settings set = {0};
    nst_runtime_options opt = {0};
    nst_runtime *rt = NULL;
    opt.settings = &set;
    opt.no_cache = 1;
    snprintf(set.device, sizeof set.device, "no-such-gpu-xyz");
    assert_int_equal(nst_runtime_open(&rt, &opt, &msg), NST_ERR_NO_DEVICE);
    assert_null(rt);
    assert_non_null(strstr(msg.text, "NST_DEVICE 'no-such-gpu-xyz'"));
    opt.device = "0";
    assert_int_equal(nst_runtime_open(&rt, &opt, &msg), NST_OK);
    assert_int_equal(nst_runtime_device(rt)->index, 0);
    nst_runtime_close(rt);
    snprintf(set.device, sizeof set.device, "0");
    opt.device = NULL;
    assert_int_equal(nst_runtime_open(&rt, &opt, &msg), NST_OK);
    assert_int_equal(nst_runtime_device(rt)->index, 0);
    nst_runtime_close(rt);
}

/* nst_settings_from_env reads every variable into its field, and refuses
 * values that are not choices, naming the variable. */
static void test_settings_from_env(void **state) {
    static const char *const vars[] = {"NST_CONV", "NST_SCRATCH_MB", "NST_CACHE",
                                       "NST_CACHE_DIR", "XDG_CACHE_HOME", "HOME", "NST_CL_DIR",
                                       "NST_CL_OPTS", "NST_TUNE", "NST_DEVICE", "NST_WEIGHTS",
                                       "XDG_DATA_HOME", "TORCH_HOME"};
    enum { NV = sizeof vars / sizeof vars[0] };
    char *saved[NV];
    for (int i = 0; i < NV; i++) {
        const char *v = getenv(vars[i]);
        saved[i] = v ? strdup(v) : NULL;
        unsetenv(vars[i]);
    }
    nst_settings s;
    nst_msg msg = {{0}};
    memset(&s, 0x55, sizeof s);
    /* nothing set: the zeroed defaults, no cache directory */
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_OK);
    assert_int_equal(s.conv, NST_CONV_WINOGRAD4);
    assert_int_equal(s.scratch_mb, 0);
    assert_int_equal(s.no_cache, 0);
    assert_int_equal(s.no_tune, 0);
    assert_string_equal(s.cache_dir, "");
    assert_string_equal(s.device, "");
    assert_string_equal(s.weights, "");
    assert_non_null(strstr(s.weights_dirs, "./.local/share/nst"));
    setenv("HOME", "/home/x", 1);
    setenv("NST_CONV", "winograd2", 1);
    setenv("NST_SCRATCH_MB", "256", 1);
    setenv("NST_CACHE", "0", 1);
    setenv("NST_TUNE", "0", 1);
    setenv("NST_CL_DIR", "cl", 1);
    setenv("NST_CL_OPTS", "-DX=1", 1);
    setenv("NST_DEVICE", "pthread", 1);
    setenv("NST_WEIGHTS", "w.pth", 1);
    setenv("TORCH_HOME", "/t", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_OK);
    assert_int_equal(s.conv, NST_CONV_WINOGRAD2);
    assert_int_equal(s.scratch_mb, 256);
    assert_int_equal(s.no_cache, 1);
    assert_int_equal(s.no_tune, 1);
    assert_string_equal(s.cache_dir, "/home/x/.cache/nst");
    assert_string_equal(s.cl_dir, "cl");
    assert_string_equal(s.cl_options, "-DX=1");
    assert_string_equal(s.device, "pthread");
    assert_string_equal(s.weights, "w.pth");
    assert_non_null(strstr(s.weights_dirs, ":/home/x/.local/share/nst:"));
    assert_non_null(strstr(s.weights_dirs, ":/t/hub/checkpoints"));
    setenv("XDG_CACHE_HOME", "/xc", 1);
    setenv("XDG_DATA_HOME", "/xd", 1);
    setenv("NST_CONV", "im2col", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_OK);
    assert_string_equal(s.cache_dir, "/xc/nst");
    assert_non_null(strstr(s.weights_dirs, ":/xd/nst:"));
    assert_int_equal(s.conv, NST_CONV_IM2COL);
    setenv("NST_CACHE_DIR", "/c", 1);
    setenv("NST_CONV", "winograd", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_OK);
    assert_string_equal(s.cache_dir, "/c");
    assert_int_equal(s.conv, NST_CONV_WINOGRAD4);
    /* bad values name the variable and what it takes */
    setenv("NST_CONV", "fft", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "NST_CONV='fft'"));
    assert_non_null(strstr(msg.text, "im2col"));
    unsetenv("NST_CONV");
    const char *bad_mb[] = {"0", "-1", "abc", "12x", "65537"};
    for (int i = 0; i < 5; i++) {
        setenv("NST_SCRATCH_MB", bad_mb[i], 1);
        assert_int_equal(nst_settings_from_env(&s, &msg), NST_ERR_INVALID_ARG);
        assert_non_null(strstr(msg.text, "NST_SCRATCH_MB"));
    }
    unsetenv("NST_SCRATCH_MB");
    char longer[2 * NST_PATH_MAX];
    memset(longer, 'a', sizeof longer - 1);
    longer[sizeof longer - 1] = 0;
    setenv("NST_CACHE_DIR", longer, 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "NST_CACHE_DIR"));
    assert_int_equal(nst_settings_from_env(NULL, &msg), NST_ERR_INVALID_ARG);
    for (int i = 0; i < NV; i++) {
        if (saved[i]) setenv(vars[i], saved[i], 1);
        else unsetenv(vars[i]);
        free(saved[i]);
    }
}

/* The library takes its configuration from the settings alone: variables
 * that nst_settings_from_env would refuse change nothing for a runtime
 * opened without them; settings out of range are refused by name. */
static void test_settings_checked(void **state) {
    nst_msg msg = {{0}};
    nst_runtime *rt = NULL;
    const char *old = getenv("NST_CONV");
    char *saved = old ? strdup(old) : NULL;
    setenv("NST_CONV", "fft", 1);
    setenv("NST_DEVICE", "no-such-gpu-xyz", 1);
    assert_int_equal(nst_runtime_open(&rt, NULL, &msg), NST_OK);
    nst_runtime_close(rt);
    rt = NULL;
    unsetenv("NST_DEVICE");
    if (saved) setenv("NST_CONV", saved, 1);
    else unsetenv("NST_CONV");
    free(saved);

    nst_settings set = {0};
    nst_runtime_options opt = {0};
    opt.settings = &set;
    set.conv = (nst_conv_method)3;
    assert_int_equal(nst_runtime_open(&rt, &opt, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "conv 3"));
    set.conv = NST_CONV_IM2COL;
    set.scratch_mb = -1;
    assert_int_equal(nst_runtime_open(&rt, &opt, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "scratch"));
    set.scratch_mb = 0;
    memset(set.cache_dir, 'a', sizeof set.cache_dir);
    assert_int_equal(nst_runtime_open(&rt, &opt, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "cache_dir"));
    assert_null(rt);
}

/* Runs util_axpby on 1000 elements and checks it against plain C. */
static void run_axpby(nst_runtime *rt) {
    enum { N = 1000 };
    float x[N], y[N], want[N], got[N];
    check_rng r;
    check_rng_seed(&r, 7);
    check_fill(&r, x, N, -1, 1);
    check_fill(&r, y, N, -1, 1);
    for (int i = 0; i < N; i++) want[i] = 0.5f * x[i] + -2.0f * y[i];
    nst_tensor *tx = NULL, *ty = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 1, 1, N, &tx), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 1, 1, N, &ty), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, tx, x), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, ty, y), NST_OK);
    int n = N;
    float a = 0.5f, b = -2.0f;
    size_t g = N, l = nst_wg_1d(rt);
    assert_int_equal(nst_launch(rt, "util", "util_axpby", 1, &g, &l, 5, sizeof n, &n, sizeof a, &a,
                                sizeof tx->buf, &tx->buf, sizeof b, &b, sizeof ty->buf, &ty->buf),
                     NST_OK);
    assert_int_equal(nst_tensor_download(rt, ty, got), NST_OK);
    assert_true(check_close_f("axpby", got, want, N, 1e-6, 1e-6));
    nst_tensor_free(rt, tx);
    nst_tensor_free(rt, ty);
    assert_int_equal(nst_mem_in_use(rt), 0);
    assert_true(rt->mem_peak >= 2 * N * sizeof(float));
}

static void test_kernel_runs(void **state) {
    nst_runtime *rt = check_runtime();
    run_axpby(rt);
    nst_runtime_close(rt);
}

static int count_cache_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".bin")) n++;
    closedir(d);
    return n;
}

/* A runtime with the cache on unless NST_CACHE=0 says otherwise. */
static nst_runtime *cached_runtime(void) {
    nst_runtime *rt = NULL;
    nst_msg msg = {{0}};
    nst_settings set;
    check_settings(&set);
    nst_runtime_options opt = {0};
    opt.settings = &set;
    assert_int_equal(nst_runtime_open(&rt, &opt, &msg), NST_OK);
    return rt;
}

static void test_cache(void **state) {
    const char *dir = check_tmp_path("cache");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    setenv("NST_CACHE_DIR", dir, 1);
    unsetenv("NST_CACHE");

    /* cold: builds from source and writes the binary */
    nst_runtime *rt = cached_runtime();
    run_axpby(rt);
    assert_int_equal(rt->cache_misses, 1);
    assert_int_equal(rt->cache_hits, 0);
    double cold = rt->build_seconds;
    nst_runtime_close(rt);
    assert_int_equal(count_cache_files(dir), 1);

    /* warm: loads the binary, same answers */
    rt = cached_runtime();
    run_axpby(rt);
    assert_int_equal(rt->cache_hits, 1);
    assert_int_equal(rt->cache_misses, 0);
    fprintf(stderr, "program build: cold %.3f s, from cache %.3f s\n", cold, rt->build_seconds);
    nst_runtime_close(rt);

    /* corrupted: the entry is replaced and the run still works */
    snprintf(cmd, sizeof cmd, "for f in %s/*.bin; do echo garbage > $f; done", dir);
    assert_int_equal(system(cmd), 0);
    rt = cached_runtime();
    run_axpby(rt);
    assert_int_equal(rt->cache_misses, 1);
    nst_runtime_close(rt);
    rt = cached_runtime();
    run_axpby(rt);
    assert_int_equal(rt->cache_hits, 1);
    nst_runtime_close(rt);

    /* NST_CACHE=0 neither reads nor writes */
    setenv("NST_CACHE", "0", 1);
    rt = cached_runtime();
    run_axpby(rt);
    assert_int_equal(rt->cache_hits, 0);
    nst_runtime_close(rt);
    unsetenv("NST_CACHE_DIR");
}

static void test_build_failure_reports_log(void **state) {
    /* A source directory override (NST_CL_DIR) with a broken program. */
    const char *dir = check_tmp_path("badcl");
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "rm -rf %s && mkdir -p %s && echo '__kernel void util_axpby(int n) { oops; }' > "
             "%s/util.cl",
             dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    nst_settings set;
    check_settings(&set);
    snprintf(set.cl_dir, sizeof set.cl_dir, "%s", dir);
    nst_runtime *rt = check_runtime_with(&set);
    cl_kernel k;
    assert_int_equal(nst_kernel_get(rt, "util", "util_axpby", &k), NST_ERR_BUILD);
    assert_non_null(strstr(nst_last_error(rt), "build log"));
    assert_non_null(strstr(nst_last_error(rt), "oops"));
    nst_runtime_close(rt);
}

static void test_every_program_builds(void **state) {
    nst_runtime *rt = check_runtime();
    nst_status st = nst_programs_build_all(rt);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    nst_runtime_close(rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_has_default),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_settings),
        cmocka_unit_test(test_settings_from_env),
        cmocka_unit_test(test_settings_checked),
        cmocka_unit_test(test_kernel_runs),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_build_failure_reports_log),
        cmocka_unit_test(test_every_program_builds),
    };
    return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
