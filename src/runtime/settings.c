/* settings.c: the runtime's settings (nst_settings in nst.h): their check,
 * and nst_settings_from_env, the one place where the library reads the
 * environment. Everything else takes its configuration from the settings a
 * runtime was opened with, so that two runtimes may differ and a program
 * embedding nst decides what the environment means to it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nst_int.h"

static const struct {
    const char *name;
    nst_conv_method method;
} conv_names[] = {{"winograd", NST_CONV_WINOGRAD4},
                  {"winograd4", NST_CONV_WINOGRAD4},
                  {"winograd2", NST_CONV_WINOGRAD2},
                  {"im2col", NST_CONV_IM2COL}};
#define NCONV (int)(sizeof conv_names / sizeof conv_names[0])

/* A fixed-size text field must hold its terminating NUL. */
static nst_status check_text(const char *field, const char *name, size_t cap, nst_msg *msg) {
    if (!memchr(field, 0, cap))
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "settings: %s is not a terminated string of fewer than %zu bytes", name,
                        cap);
    return NST_OK;
}

nst_status nst_settings_check(const nst_settings *s, nst_msg *msg) {
    nst_status st;
    if (!s) return nst_fail_null(msg, "nst_settings_check", "settings");
    if ((int)s->kernels < NST_KERNELS_AUTO || (int)s->kernels > NST_KERNELS_GPU)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "settings: kernels %d is not a kernel shape (NST_KERNELS_AUTO, "
                        "NST_KERNELS_CPU or NST_KERNELS_GPU)",
                        (int)s->kernels);
    if ((int)s->conv < NST_CONV_WINOGRAD4 || (int)s->conv > NST_CONV_IM2COL)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "settings: conv %d is not a convolution method (NST_CONV_WINOGRAD4, "
                        "NST_CONV_WINOGRAD2 or NST_CONV_IM2COL)",
                        (int)s->conv);
    if (s->scratch_mb < 0 || s->scratch_mb > NST_SCRATCH_MB_MAX)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "settings: scratch of %d MiB is not in 0..%d (0: the default, %d)",
                        s->scratch_mb, NST_SCRATCH_MB_MAX, NST_SCRATCH_MB_DEFAULT);
#define TEXT(f)                                                                  \
    if ((st = check_text(s->f, #f, sizeof s->f, msg)) != NST_OK) return st
    TEXT(cache_dir);
    TEXT(cl_dir);
    TEXT(cl_options);
    TEXT(device);
    TEXT(gemm);
    TEXT(weights);
    TEXT(weights_dirs);
    TEXT(pocl_cache_dir);
    TEXT(precision);
#undef TEXT
    if (*s->precision && strcmp(s->precision, "fp32") && strcmp(s->precision, "tf32"))
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "settings: precision '%s' is not fp32 or tf32", s->precision);
    return NST_OK;
}

/* Copies the value of variable `var` (or "" when unset) into buf. */
static nst_status env_text(const char *var, char *buf, size_t cap, nst_msg *msg) {
    const char *v = getenv(var);
    if (!v) v = "";
    if (strlen(v) >= cap)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "%s is %zu characters long; at most %zu fit",
                        var, strlen(v), cap - 1);
    memcpy(buf, v, strlen(v) + 1);
    return NST_OK;
}

/* buf = a + b, or "" when a is empty; refused when too long. */
static nst_status join(const char *var, const char *a, const char *b, char *buf, size_t cap,
                       nst_msg *msg) {
    buf[0] = 0;
    if (!*a) return NST_OK;
    int n = snprintf(buf, cap, "%s%s", a, b);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = 0;
        return nst_fail(msg, NST_ERR_INVALID_ARG, "%s is too long for a directory name", var);
    }
    return NST_OK;
}

nst_status nst_settings_from_env(nst_settings *s, nst_msg *msg) {
    nst_status st = NST_OK;
    char home[NST_PATH_MAX], xdg[NST_PATH_MAX], v[NST_PATH_MAX];
    if (!s) return nst_fail_null(msg, "nst_settings_from_env", "s");
    memset(s, 0, sizeof *s);

    NST_TRY(env_text("NST_CONV", v, sizeof v, msg));
    if (*v) {
        int k = 0;
        while (k < NCONV && strcmp(v, conv_names[k].name)) k++;
        if (k == NCONV) {
            st = nst_fail(msg, NST_ERR_INVALID_ARG,
                          "NST_CONV='%s' is not a convolution method; use winograd (the "
                          "default), winograd4, winograd2 or im2col",
                          v);
            goto fail;
        }
        s->conv = conv_names[k].method;
    }
    NST_TRY(env_text("NST_SCRATCH_MB", v, sizeof v, msg));
    if (*v) {
        char *end = NULL;
        long mb = strtol(v, &end, 10);
        if (end == v || *end || mb < 1 || mb > NST_SCRATCH_MB_MAX) {
            st = nst_fail(msg, NST_ERR_INVALID_ARG,
                          "NST_SCRATCH_MB='%s' is not a size in MiB: give a whole number in 1..%d",
                          v, NST_SCRATCH_MB_MAX);
            goto fail;
        }
        s->scratch_mb = (int)mb;
    }
    NST_TRY(env_text("NST_CACHE", v, sizeof v, msg));
    s->no_cache = !strcmp(v, "0");
    NST_TRY(env_text("NST_TUNE", v, sizeof v, msg));
    s->no_tune = !strcmp(v, "0");
    NST_TRY(env_text("NST_GEMM", s->gemm, sizeof s->gemm, msg));
    if (*s->gemm && strcmp(s->gemm, "auto") && strcmp(s->gemm, "host") &&
        strcmp(s->gemm, "clblast")) {
        st = nst_fail(msg, NST_ERR_INVALID_ARG,
                      "NST_GEMM='%s' is not where products run; use auto (the default), host "
                      "(a host BLAS on mapped buffers) or clblast",
                      s->gemm);
        goto fail;
    }
    NST_TRY(env_text("NST_KERNELS", v, sizeof v, msg));
    if (!*v || !strcmp(v, "auto")) s->kernels = NST_KERNELS_AUTO;
    else if (!strcmp(v, "cpu")) s->kernels = NST_KERNELS_CPU;
    else if (!strcmp(v, "gpu")) s->kernels = NST_KERNELS_GPU;
    else {
        st = nst_fail(msg, NST_ERR_INVALID_ARG,
                      "NST_KERNELS='%s' is not a kernel shape; use auto (the default: by "
                      "device type), cpu or gpu",
                      v);
        goto fail;
    }

    NST_TRY(env_text("NST_PRECISION", s->precision, sizeof s->precision, msg));
    if (*s->precision && strcmp(s->precision, "fp32") && strcmp(s->precision, "tf32")) {
        st = nst_fail(msg, NST_ERR_INVALID_ARG,
                      "NST_PRECISION='%s' is not a precision; use fp32 (the default) or tf32 "
                      "(tensor cores of NVIDIA GPUs from compute capability 8.0)",
                      s->precision);
        goto fail;
    }

    NST_TRY(env_text("HOME", home, sizeof home, msg));
    NST_TRY(env_text("NST_CACHE_DIR", s->cache_dir, sizeof s->cache_dir, msg));
    char *cache = s->cache_dir;
    if (!*cache) {
        NST_TRY(env_text("XDG_CACHE_HOME", xdg, sizeof xdg, msg));
        if (*xdg) NST_TRY(join("XDG_CACHE_HOME", xdg, "/nst", cache, sizeof s->cache_dir, msg));
        else NST_TRY(join("HOME", home, "/.cache/nst", cache, sizeof s->cache_dir, msg));
    }
    /* PoCL's own cache, where PoCL looks for it */
    NST_TRY(env_text("POCL_KERNEL_CACHE", v, sizeof v, msg));
    if (strcmp(v, "0")) {
        char *pd = s->pocl_cache_dir;
        NST_TRY(env_text("POCL_CACHE_DIR", pd, sizeof s->pocl_cache_dir, msg));
        NST_TRY(env_text("XDG_CACHE_HOME", xdg, sizeof xdg, msg));
        if (!*pd && *xdg) NST_TRY(join("XDG_CACHE_HOME", xdg, "/pocl", pd, sizeof s->pocl_cache_dir, msg));
        if (!*pd && *home) NST_TRY(join("HOME", home, "/.cache/pocl", pd, sizeof s->pocl_cache_dir, msg));
        if (!*pd) snprintf(pd, sizeof s->pocl_cache_dir, "/tmp/pocl");
    }
    NST_TRY(env_text("NST_CL_DIR", s->cl_dir, sizeof s->cl_dir, msg));
    NST_TRY(env_text("NST_CL_OPTS", s->cl_options, sizeof s->cl_options, msg));
    NST_TRY(env_text("NST_DEVICE", s->device, sizeof s->device, msg));

    /* the weight search: the source tree, the user's data directory, the
     * installation, torch's download cache */
    char data[NST_PATH_MAX], torch[NST_PATH_MAX];
    NST_TRY(env_text("NST_WEIGHTS", s->weights, sizeof s->weights, msg));
    NST_TRY(env_text("XDG_DATA_HOME", xdg, sizeof xdg, msg));
    const char *h = *home ? home : ".";
    if (*xdg) NST_TRY(join("XDG_DATA_HOME", xdg, "/nst", data, sizeof data, msg));
    else NST_TRY(join("HOME", h, "/.local/share/nst", data, sizeof data, msg));
    NST_TRY(env_text("TORCH_HOME", v, sizeof v, msg));
    if (*v) NST_TRY(join("TORCH_HOME", v, "/hub/checkpoints", torch, sizeof torch, msg));
    else NST_TRY(join("HOME", h, "/.cache/torch/hub/checkpoints", torch, sizeof torch, msg));
    int n = snprintf(s->weights_dirs, sizeof s->weights_dirs, "%s:%s:%s:%s",
                     NST_SOURCE_DIR "/weights", data, NST_PREFIX "/share/nst", torch);
    if (n < 0 || (size_t)n >= sizeof s->weights_dirs) {
        st = nst_fail(msg, NST_ERR_INVALID_ARG, "the weight directories are too long");
        goto fail;
    }
    return NST_OK;
fail:
    memset(s, 0, sizeof *s);
    return st;
}

/* ---- search lists -------------------------------------------------------- */

int nst_dirs_next(const char **list, char *buf, size_t cap) {
    while (**list == ':') (*list)++;
    if (!**list) return 0;
    size_t n = strcspn(*list, ":");
    snprintf(buf, cap, "%.*s", (int)(n < cap ? n : cap - 1), *list);
    *list += n;
    return 1;
}
