/* test_runtime.c: device listing and selection, kernel build and launch,
 * and the program-binary cache (cold build, hit, corrupted entry). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/wait.h>
#include <unistd.h>

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
                                       "XDG_DATA_HOME", "TORCH_HOME", "POCL_CACHE_DIR",
                                       "POCL_KERNEL_CACHE"};
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
    assert_string_equal(s.pocl_cache_dir, "/tmp/pocl"); /* PoCL's last resort */
    /* PoCL's cache as PoCL finds it, or none */
    setenv("HOME", "/home/x", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_OK);
    assert_string_equal(s.pocl_cache_dir, "/home/x/.cache/pocl");
    setenv("XDG_CACHE_HOME", "/xdg", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_OK);
    assert_string_equal(s.pocl_cache_dir, "/xdg/pocl");
    setenv("POCL_CACHE_DIR", "/pc", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_OK);
    assert_string_equal(s.pocl_cache_dir, "/pc");
    setenv("POCL_KERNEL_CACHE", "0", 1);
    assert_int_equal(nst_settings_from_env(&s, &msg), NST_OK);
    assert_string_equal(s.pocl_cache_dir, "");
    unsetenv("POCL_KERNEL_CACHE");
    unsetenv("POCL_CACHE_DIR");
    unsetenv("XDG_CACHE_HOME");
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

static int count_cache_files(const char *dir, const char *ext) {
    DIR *d = opendir(dir);
    if (!d) return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ext)) n++;
    closedir(d);
    return n;
}

/* A runtime with the cache on unless NST_CACHE=0 says otherwise. */
static nst_runtime *open_cached(void) {
    nst_runtime *rt = NULL;
    nst_msg msg = {{0}};
    nst_settings set;
    check_settings(&set);
    nst_runtime_options opt = {0};
    opt.settings = &set;
    assert_int_equal(nst_runtime_open(&rt, &opt, &msg), NST_OK);
    return rt;
}

/* The same, without a warning; binaries 1 keeps program binaries in the
 * cache, 0 only notes of what was built (what nst does where the driver
 * caches binaries itself, as PoCL does), -1 the device's default. */
static nst_runtime *cached_runtime(int binaries) {
    nst_runtime *rt = open_cached();
    assert_string_equal(nst_runtime_warning(rt), "");
    if (binaries >= 0) rt->cache_binaries = binaries;
    return rt;
}

static void fresh_cache_dir(const char *dir) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    setenv("NST_CACHE_DIR", dir, 1);
    unsetenv("NST_CACHE");
}

static void test_cache(void **state) {
    const char *dir = check_tmp_path("cache");
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    assert_int_equal(system(cmd), 0);
    setenv("NST_CACHE_DIR", dir, 1);
    unsetenv("NST_CACHE");

    /* cold: builds from source and writes the binary */
    nst_runtime *rt = cached_runtime(1);
    run_axpby(rt);
    assert_int_equal(rt->cache_misses, 1);
    assert_int_equal(rt->cache_hits, 0);
    double cold = rt->build_seconds;
    nst_runtime_close(rt);
    assert_int_equal(count_cache_files(dir, ".bin"), 1);

    /* warm: loads the binary, same answers */
    rt = cached_runtime(1);
    run_axpby(rt);
    assert_int_equal(rt->cache_hits, 1);
    assert_int_equal(rt->cache_misses, 0);
    fprintf(stderr, "program build: cold %.3f s, from cache %.3f s\n", cold, rt->build_seconds);
    nst_runtime_close(rt);

    /* corrupted: the entry is replaced and the run still works */
    snprintf(cmd, sizeof cmd, "for f in %s/*.bin; do echo garbage > $f; done", dir);
    assert_int_equal(system(cmd), 0);
    rt = cached_runtime(1);
    run_axpby(rt);
    assert_int_equal(rt->cache_misses, 1);
    nst_runtime_close(rt);
    rt = cached_runtime(1);
    run_axpby(rt);
    assert_int_equal(rt->cache_hits, 1);
    nst_runtime_close(rt);

    /* NST_CACHE=0 neither reads nor writes */
    setenv("NST_CACHE", "0", 1);
    rt = cached_runtime(1);
    run_axpby(rt);
    assert_int_equal(rt->cache_hits, 0);
    nst_runtime_close(rt);
    unsetenv("NST_CACHE_DIR");
}

/* Where the driver keeps binaries (PoCL), the cache only notes what was
 * built: asking PoCL for a binary compiles every kernel of the program. */
static void test_cache_notes(void **state) {
    const char *dir = check_tmp_path("cache-notes");
    fresh_cache_dir(dir);
    nst_runtime *rt = cached_runtime(-1);
    if (!strcmp(rt->info.platform, "Portable Computing Language"))
        assert_int_equal(rt->cache_binaries, 0);
    rt->cache_binaries = 0;
    run_axpby(rt);
    assert_int_equal(rt->cache_misses, 1);
    nst_runtime_close(rt);
    assert_int_equal(count_cache_files(dir, ".built"), 1);
    assert_int_equal(count_cache_files(dir, ".bin"), 0);
    rt = cached_runtime(0);
    run_axpby(rt);
    assert_int_equal(rt->cache_hits, 1);
    assert_int_equal(rt->cache_misses, 0);
    nst_runtime_close(rt);
    unsetenv("NST_CACHE_DIR");
}

/* An unusable cache directory turns the cache off with one warning that
 * names the directory; everything else works. */
static void test_cache_dir_unwritable(void **state) {
    setenv("NST_CACHE_DIR", "/etc/passwd/nst-cache", 1); /* below a file: even root fails */
    unsetenv("NST_CACHE");
    nst_runtime *rt = open_cached();
    unsetenv("NST_CACHE_DIR");
    assert_non_null(strstr(nst_runtime_warning(rt), "/etc/passwd/nst-cache"));
    assert_non_null(strstr(nst_runtime_warning(rt), "NST_CACHE_DIR"));
    assert_int_equal(rt->no_cache, 1);
    run_axpby(rt);
    assert_int_equal(rt->cache_hits + rt->cache_misses, 1);
    nst_runtime_close(rt);
}

typedef struct prep_log {
    int events, last_done, total;
    int stop_at; /* > 0: stop after that many builds; < 0: before the first */
    char names[32][48];
} prep_log;

static int log_prep(int done, int total, const char *name, void *user) {
    prep_log *l = user;
    assert_int_equal(done, l->events); /* in order: 0, 1, 2, ... */
    if (l->events == 0) {
        assert_null(name);
        l->total = total;
    } else {
        assert_non_null(name);
        assert_int_equal(total, l->total);
        snprintf(l->names[l->events % 32], sizeof l->names[0], "%s", name);
    }
    l->last_done = done;
    l->events++;
    return l->stop_at < 0 || (l->stop_at > 0 && done >= l->stop_at);
}

static const char *const every_program[] = {"act",   "conv",      "loss",      "optim", "pool",
                                            "tiled", "util",      "winograd2", "winograd4"};
enum { N_PROGRAMS = (int)(sizeof every_program / sizeof every_program[0]) };

/* A runtime (cache off) whose BLAS routines run on CLBlast, which
 * compiles them: the host BLAS compiles nothing. */
static nst_runtime *clblast_runtime(void) {
    nst_settings set;
    check_settings(&set);
    snprintf(set.gemm, sizeof set.gemm, "clblast");
    return check_runtime_with(&set);
}

/* One round of test_prepare_blas_one_at_a_time, in a process of its own:
 * the test binary runs again with --prepare-child. A bare fork would copy
 * this process's OpenCL driver with its worker threads missing, and the child
 * could wait forever on them. */
static int prepare_child(void) {
    unsigned all = NST_BLAS_GEMM | NST_BLAS_GEMM_BATCHED | NST_BLAS_AXPY | NST_BLAS_DOT |
                   NST_BLAS_SCAL;
    alarm(600); /* a hang fails the round (SIGALRM) instead of the whole CI */
    nst_runtime *rt = NULL;
    nst_msg msg = {{0}};
    nst_settings set;
    if (nst_settings_from_env(&set, &msg) != NST_OK) return 3;
    snprintf(set.gemm, sizeof set.gemm, "clblast");
    nst_runtime_options opt = {0};
    opt.settings = &set;
    opt.no_cache = 1;
    if (nst_runtime_open(&rt, &opt, &msg) != NST_OK) return 2;
    rt->build_threads = 8;
    int ok = nst_programs_prepare(rt, every_program, 2, all, NULL, NULL) == NST_OK &&
             rt->blas_ready == all;
    nst_runtime_close(rt);
    return ok ? 0 : 1;
}

/* CLBlast routines compile one at a time (CLBlast 1.5 crashes when two
 * threads set up their first routines at once: it fills a static table
 * unlocked), beside the programs. Each of the 16 rounds is a fresh process
 * whose first CLBlast calls are these. */
static void test_prepare_blas_one_at_a_time(void **state) {
    /* under valgrind each round is leak-checked when it exits, with
     * CLBlast's process-lifetime caches still held: not what this checks */
    const char *preload = getenv("LD_PRELOAD");
    if (preload && strstr(preload, "vgpreload")) {
        fprintf(stderr, "under valgrind: rounds skipped\n");
        skip();
    }
    for (int round = 0; round < 16; round++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            execl("/proc/self/exe", "test_runtime", "--prepare-child", (char *)NULL);
            _exit(127);
        }
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            fprintf(stderr, "round %d: %s %d\n", round, WIFSIGNALED(status) ? "signal" : "exit",
                    WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
}

/* Several programs built at once on several threads: each reported once, in
 * order, every one usable afterwards; the BLAS routines compile ahead too. */
static void test_prepare_in_parallel(void **state) {
    nst_runtime *rt = clblast_runtime(); /* cache off: everything is compiled */
    rt->build_threads = 4;
    prep_log l = {0};
    unsigned blas = NST_BLAS_GEMM | NST_BLAS_DOT;
    nst_status st = nst_programs_prepare(rt, every_program, N_PROGRAMS, blas, log_prep, &l);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    assert_int_equal(l.total, N_PROGRAMS + 2);
    assert_int_equal(l.last_done, l.total);
    assert_int_equal(l.events, l.total + 1);
    assert_int_equal(rt->blas_ready, blas);
    assert_int_equal(rt->cache_misses, N_PROGRAMS);
    run_axpby(rt);
    assert_int_equal(rt->lazy_builds, 0);
    /* prepared already: nothing to do, nothing reported */
    prep_log again = {0};
    assert_int_equal(nst_programs_prepare(rt, every_program, N_PROGRAMS, blas, log_prep, &again),
                     NST_OK);
    assert_int_equal(again.events, 0);
    nst_runtime_close(rt);
}

/* The progress callback stops the builds: before any (nothing built) or
 * after the first; either way NST_ERR_INTERRUPTED. */
static void test_prepare_stops(void **state) {
    nst_runtime *rt = check_runtime();
    prep_log l = {0};
    l.stop_at = -1;
    assert_int_equal(nst_programs_prepare(rt, every_program, N_PROGRAMS, 0, log_prep, &l),
                     NST_ERR_INTERRUPTED);
    assert_int_equal(l.events, 1);
    assert_int_equal(rt->cache_misses, 0);
    nst_runtime_close(rt);

    rt = check_runtime();
    rt->build_threads = 2;
    prep_log one = {0};
    one.stop_at = 1;
    assert_int_equal(nst_programs_prepare(rt, every_program, N_PROGRAMS, 0, log_prep, &one),
                     NST_ERR_INTERRUPTED);
    assert_int_equal(one.last_done, 1);
    assert_true(rt->cache_misses >= 1 && rt->cache_misses < N_PROGRAMS);
    nst_runtime_close(rt);
}

/* One broken program among several: its build log is the error. */
static void test_prepare_failure(void **state) {
    const char *dir = check_tmp_path("badcl2");
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "rm -rf %s && mkdir -p %s && echo '__kernel void pool_forward(int n) { oops; }' > "
             "%s/pool.cl",
             dir, dir, dir);
    assert_int_equal(system(cmd), 0);
    nst_settings set;
    check_settings(&set);
    snprintf(set.cl_dir, sizeof set.cl_dir, "%s", dir);
    nst_runtime *rt = check_runtime_with(&set);
    rt->build_threads = 3;
    assert_int_equal(nst_programs_prepare(rt, every_program, N_PROGRAMS, 0, NULL, NULL),
                     NST_ERR_BUILD);
    assert_non_null(strstr(nst_last_error(rt), "'pool'"));
    assert_non_null(strstr(nst_last_error(rt), "oops"));
    nst_runtime_close(rt);
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

/* The error names come from the OpenCL headers at build time: the codes
 * of every version we use have theirs, an unknown code says so. */
static void test_cl_error_names(void **state) {
    (void)state;
    assert_string_equal(nst_cl_error_name(CL_SUCCESS), "CL_SUCCESS");
    assert_string_equal(nst_cl_error_name(CL_DEVICE_NOT_FOUND), "CL_DEVICE_NOT_FOUND");
    assert_string_equal(nst_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    assert_string_equal(nst_cl_error_name(CL_INVALID_BUFFER_SIZE), "CL_INVALID_BUFFER_SIZE");
    assert_string_equal(nst_cl_error_name(CL_INVALID_DEVICE_PARTITION_COUNT),
                        "CL_INVALID_DEVICE_PARTITION_COUNT");
    assert_string_equal(nst_cl_error_name(-1001), "CL_PLATFORM_NOT_FOUND_KHR");
    assert_string_equal(nst_cl_error_name(-9999), "unknown OpenCL error");
}

static void test_every_program_builds(void **state) {
    nst_runtime *rt = check_runtime();
    nst_status st = nst_programs_build_all(rt);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    nst_runtime_close(rt);
}

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "--prepare-child")) return prepare_child();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_has_default),
        cmocka_unit_test(test_select),
        cmocka_unit_test(test_select_settings),
        cmocka_unit_test(test_settings_from_env),
        cmocka_unit_test(test_settings_checked),
        cmocka_unit_test(test_kernel_runs),
        cmocka_unit_test(test_cache),
        cmocka_unit_test(test_cache_notes),
        cmocka_unit_test(test_cache_dir_unwritable),
        cmocka_unit_test(test_prepare_blas_one_at_a_time),
        cmocka_unit_test(test_prepare_in_parallel),
        cmocka_unit_test(test_prepare_stops),
        cmocka_unit_test(test_prepare_failure),
        cmocka_unit_test(test_build_failure_reports_log),
        cmocka_unit_test(test_every_program_builds),
        cmocka_unit_test(test_cl_error_names),
    };
    return cmocka_run_group_tests_name("runtime", tests, NULL, NULL);
}
