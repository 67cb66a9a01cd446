/* check.c: shared test helpers (see check.h). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "check.h"
#include "reference.h"

/* NST_TEST_FILTER=PATTERN runs only the tests whose names match (cmocka's
 * '*' and '?'), in every suite: make test-rusticl picks tests with it. */
static void check_filter(void) __attribute__((constructor));
static void check_filter(void) {
    const char *f = getenv("NST_TEST_FILTER");
    if (f && *f) cmocka_set_test_filter(f);
}

void check_settings(nst_settings *s) {
    nst_msg msg = {{0}};
    if (nst_settings_from_env(s, &msg) != NST_OK) {
        fprintf(stderr, "the test environment: %s\n", msg.text);
        fail();
    }
}

nst_runtime *check_runtime_with(const nst_settings *s) {
    nst_runtime *rt = NULL;
    nst_msg msg = {{0}};
    nst_settings env;
    if (!s) {
        check_settings(&env);
        s = &env;
    }
    nst_runtime_options opt = {0};
    opt.no_cache = 1;
    opt.settings = s;
    if (nst_runtime_open(&rt, &opt, &msg) != NST_OK) {
        fprintf(stderr,
                "no OpenCL device for the tests: %s\n"
                "install PoCL (sudo apt-get install pocl-opencl-icd) or set NST_DEVICE\n",
                msg.text);
        fail();
    }
    return rt;
}

void check_settings_with(const char *var, const char *value, nst_settings *s) {
    if (value) setenv(var, value, 1);
    else unsetenv(var);
    nst_msg msg = {{0}};
    if (nst_settings_from_env(s, &msg) != NST_OK) fail_msg("%s", msg.text);
}

char *check_env_save(const char *var) {
    const char *v = getenv(var);
    return v ? strdup(v) : NULL;
}

void check_env_restore(const char *var, char *saved) {
    if (saved) setenv(var, saved, 1);
    else unsetenv(var);
    free(saved);
}

nst_runtime *check_runtime(void) { return check_runtime_with(NULL); }

nst_model *check_model(nst_runtime *rt) {
    nst_model *m = NULL;
    nst_status st = nst_model_generate(rt, 3, 1.0 / 16, &m);
    if (st != NST_OK) {
        fprintf(stderr, "generating the test network: %s\n", nst_last_error(rt));
        fail();
    }
    return m;
}

/* ---- the group fixture ---------------------------------------------------- */

nst_runtime *check_rt;

int check_setup(void **state) {
    (void)state;
    check_rt = check_runtime();
    return check_rt ? 0 : -1;
}

int check_teardown(void **state) {
    (void)state;
    nst_runtime_close(check_rt);
    check_rt = NULL;
    return 0;
}

void check_rng_seed(check_rng *r, uint64_t seed) { r->s = seed * 0x9E3779B97F4A7C15ULL + 1; }

float check_uniform(check_rng *r, float lo, float hi) {
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    uint64_t v = r->s * 0x2545F4914F6CDD1DULL;
    double u = (double)(v >> 11) / 9007199254740992.0;
    return (float)(lo + (hi - lo) * u);
}

void check_fill(check_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = check_uniform(r, lo, hi);
}

int check_close(const char *what, const float *got, const double *want, size_t n, double atol,
                double rtol) {
    size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < n; i++) {
        double err = fabs((double)got[i] - want[i]);
        double tol = atol + rtol * fabs(want[i]);
        if (!(err <= tol)) {
            if (bad < 5)
                fprintf(stderr, "%s: [%zu] got %.9g want %.9g (err %.3g > tol %.3g)\n", what, i,
                        got[i], want[i], err, tol);
            bad++;
        }
        if (err - tol > worst_excess || isnan(err)) {
            worst_excess = err - tol;
            worst = i;
        }
    }
    if (bad)
        fprintf(stderr, "%s: %zu of %zu elements out of tolerance (worst at %zu)\n", what, bad, n,
                worst);
    return bad == 0;
}

int check_close_f(const char *what, const float *got, const float *want, size_t n, double atol,
                  double rtol) {
    double *w = malloc((n ? n : 1) * sizeof *w);
    if (!w) return 0;
    for (size_t i = 0; i < n; i++) w[i] = want[i];
    int ok = check_close(what, got, w, n, atol, rtol);
    free(w);
    return ok;
}

double check_rel_err(const float *got, const double *want, size_t n) {
    double maxd = 0, maxw = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > maxd || isnan(d)) maxd = d;
        if (fabs(want[i]) > maxw) maxw = fabs(want[i]);
    }
    return maxw > 0 ? maxd / maxw : maxd;
}

const char *check_tmp_path(const char *name) {
    static char buf[8][512];
    static int k = 0;
    mkdir("build", 0755);
    mkdir("build/tmp", 0755);
    char *p = buf[k++ % 8];
    snprintf(p, sizeof buf[0], "build/tmp/%s", name);
    return p;
}

nst_tensor *check_tensor(nst_runtime *rt, int n, int c, int h, int w, const float *data) {
    nst_tensor *t = NULL;
    assert_int_equal(nst_tensor_create(rt, n, c, h, w, &t), NST_OK);
    if (data) assert_int_equal(nst_tensor_upload(rt, t, data), NST_OK);
    return t;
}

float *check_random(check_rng *r, size_t n, float lo, float hi) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    check_fill(r, x, n, lo, hi);
    return x;
}

float *check_download(nst_runtime *rt, const nst_tensor *t) {
    float *x = malloc(t->count * sizeof *x);
    assert_non_null(x);
    assert_int_equal(nst_tensor_download(rt, t, x), NST_OK);
    return x;
}

double *check_to_double(const float *x, size_t n) {
    double *d = malloc((n ? n : 1) * sizeof *d);
    assert_non_null(d);
    for (size_t i = 0; i < n; i++) d[i] = x[i];
    return d;
}

void check_gradient_fd(const char *what, nst_ref_fn fn, void *ctx, double *x, size_t n,
                       const double *grad) {
    double *num = malloc((n ? n : 1) * sizeof *num);
    assert_non_null(num);
    nst_ref_numeric_grad(fn, ctx, x, n, 1e-5, num);
    double scale = 0;
    for (size_t i = 0; i < n; i++) scale = fmax(scale, fabs(num[i]));
    for (size_t i = 0; i < n; i++) {
        if (!(fabs(grad[i] - num[i]) <= 1e-7 * scale + 1e-6 * fabs(num[i]))) {
            fprintf(stderr, "%s: d/dx[%zu] analytic %.12g numeric %.12g\n", what, i, grad[i],
                    num[i]);
            fail();
        }
    }
    free(num);
}
