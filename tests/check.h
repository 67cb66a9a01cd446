/* check.h: helpers shared by the test suites: a runtime on the test device,
 * a fixed-seed RNG, array comparison with a combined tolerance, and a
 * generated test network. */
#ifndef NST_TEST_CHECK_H
#define NST_TEST_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "nst_int.h"
#include "reference.h"

/* Every suite runs only the tests matching $NST_TEST_FILTER when it is set
 * (cmocka's wildcards '*' and '?'). */

/* The settings the suites run with: from the environment, as the nst
 * command fills them (nst_settings_from_env), so NST_DEVICE, NST_CONV and
 * the rest work for the tests too. Fails the test on a bad variable. */
void check_settings(nst_settings *s);
/* Sets variable var to value (NULL: unsets it) and reads the settings then
 * into s (nst_settings_from_env), failing the test when they are refused. */
void check_settings_with(const char *var, const char *value, nst_settings *s);
/* A copy of variable var's value (NULL when unset), for check_env_restore,
 * which puts it back (or unsets var) and frees the copy. */
char *check_env_save(const char *var);
void check_env_restore(const char *var, char *saved);
/* Opens a runtime with check_settings, cache off. Fails the test, saying how
 * to install PoCL, when there is no device. */
nst_runtime *check_runtime(void);
/* The same with the given settings (NULL: check_settings). */
nst_runtime *check_runtime_with(const nst_settings *s);
/* The generated test network most suites use: seed 3, 1/16 of VGG-19's
 * widths. Fails the test on error. */
nst_model *check_model(nst_runtime *rt);

/* The group fixture of the suites that share one runtime:
 *   cmocka_run_group_tests(tests, check_setup, check_teardown)
 * opens check_rt (check_runtime) for the whole group and closes it. A suite
 * names it as it likes: #define rt check_rt. */
extern nst_runtime *check_rt;
int check_setup(void **state);
int check_teardown(void **state);

/* xorshift64*: deterministic across platforms. */
typedef struct check_rng {
    uint64_t s;
} check_rng;
void check_rng_seed(check_rng *r, uint64_t seed);
float check_uniform(check_rng *r, float lo, float hi);
void check_fill(check_rng *r, float *x, size_t n, float lo, float hi);

/* |got - want| <= atol + rtol * |want| for every element; prints the worst
 * element and the first mismatches, returns 1 when all pass. */
int check_close(const char *what, const float *got, const double *want, size_t n, double atol,
                double rtol);
int check_close_f(const char *what, const float *got, const float *want, size_t n, double atol,
                  double rtol);
/* max |a-b| / max(|b|) over the arrays: a relative error for a whole tensor. */
double check_rel_err(const float *got, const double *want, size_t n);

/* Test data helpers; each fails the test on error. The caller frees. */
nst_tensor *check_tensor(nst_runtime *rt, int n, int c, int h, int w, const float *data);
float *check_random(check_rng *r, size_t n, float lo, float hi);
float *check_download(nst_runtime *rt, const nst_tensor *t);
double *check_to_double(const float *x, size_t n);

/* Checks a reference gradient grad[n] of fn at x against central finite
 * differences in double (h = 1e-5); fails the test on a mismatch. */
void check_gradient_fd(const char *what, nst_ref_fn fn, void *ctx, double *x, size_t n,
                       const double *grad);

/* Paths under build/tmp for test outputs (created on demand). */
const char *check_tmp_path(const char *name);

#endif
