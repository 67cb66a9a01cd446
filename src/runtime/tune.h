/* tune.h: per-device tuning of CLBlast's GEMM kernel (nst tune).
 *
 * CLBlast's built-in parameters are chosen for GPUs; on a CPU (PoCL) they
 * reach a fraction of what the cores can do. The tuner searches CLBlast's
 * Xgemm parameter space (random search, then mutations of the best) on
 * VGG-shaped products, rejects candidates whose results disagree with a
 * double-precision host reference, and saves the best in a small text file in
 * the cache directory (${NST_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/nst}),
 * keyed by platform, device, device version, driver and CLBlast version. A
 * previous result for the device is the first candidate, so tuning again
 * (with another seed) only improves on it, up to timing noise.
 *
 * The first GEMM of a runtime applies that file through
 * CLBlastOverrideParameters (NST_TUNE=0 disables it). A missing, corrupt or
 * stale file is noted and ignored: GEMMs then run with CLBlast's own
 * parameters. Parameters that fail on the device (a GEMM returns an error)
 * are replaced by plain ones (small tiles, no vectors) and the GEMM retried.
 *
 * CLBlast keeps an override for its device until the process ends: its C API
 * can neither read its own parameters back nor drop an override. So once a
 * runtime in a process applied tuned parameters (or ran the tuner), later
 * runtimes on that device keep them whatever their file or NST_TUNE says;
 * their note says so.
 *
 * File format (text, one item per line, '#' comments):
 *   nst-gemm-tune 1
 *   platform <CL_PLATFORM_NAME>
 *   device <CL_DEVICE_NAME>
 *   version <CL_DEVICE_VERSION>
 *   driver <CL_DRIVER_VERSION>
 *   clblast <major.minor.patch>
 *   gflops <tuned> <default>          (informational)
 *   kernel Xgemm NAME=VALUE ...       (0 or more lines; none: defaults were best)
 */
#ifndef NST_TUNE_H
#define NST_TUNE_H

#include "nst_int.h"

typedef struct nst_tune_options {
    double seconds; /* search budget, wall clock including kernel builds (> 0) */
    unsigned long long seed;
    /* progress lines (no newline) for the command line; may be NULL */
    void (*progress)(void *ctx, const char *line);
    void *ctx;
} nst_tune_options;

typedef struct nst_tune_result {
    double default_gflops; /* the benchmark set with CLBlast's own parameters */
    double best_gflops;    /* with the saved parameters (default_gflops if none beat it) */
    int tried;             /* candidates built and run */
    int rejected;          /* ... whose results disagreed with the reference */
    int failed;            /* ... that CLBlast could not build or run */
    int saved_params;      /* 1: the file holds parameters; 0: the defaults were best */
    int tiled;             /* 1: every timed product ran CLBlast's tiled kernel */
    double elapsed;        /* seconds, the baseline included */
    double candidate_seconds; /* per candidate on average, its kernel builds included */
    char params[320];      /* the saved "NAME=VALUE ..." (empty when none) */
    char path[1024];       /* the file written */
} nst_tune_result;

/* Searches for `opt->seconds`, writes the tuning file for rt's device and
 * leaves the best parameters applied on rt. */
nst_status nst_tune_gemm(nst_runtime *rt, const nst_tune_options *opt, nst_tune_result *out);

/* The tuning file of rt's device; 0 on success, -1 without a cache directory. */
int nst_tune_path(const nst_runtime *rt, char *buf, size_t len);

/* Applies the saved tuning once per runtime (nst_gemm calls it before its
 * first product). Never fails: problems end up in the note. */
void nst_tune_apply_saved(nst_runtime *rt);

/* After a GEMM failed with applied parameters: returns to CLBlast's defaults
 * and notes why; returns 1 when the caller should retry the GEMM. */
int nst_tune_fallback(nst_runtime *rt, const char *why);

/* 1 when tuned parameters are in use on rt, and a one-line description of the
 * state ("applied from PATH", "none saved: run 'nst tune'", ...; "" when the
 * host BLAS runs rt's products). */
int nst_tune_applied(const nst_runtime *rt);
const char *nst_tune_note(const nst_runtime *rt);

/* The smallest m*n*k that CLBlast runs through its tiled Xgemm kernel on rt's
 * device, the kernel these parameters are for; smaller products go to its
 * direct kernel, which they do not affect. CLBlast's threshold depends on the
 * device's vendor (576^3 on Intel CPUs, 896^3 on devices its database does
 * not know, such as PoCL on AMD CPUs). 0 when CLBlast cannot say. */
unsigned long long nst_gemm_tiled_min(nst_runtime *rt);

#endif
