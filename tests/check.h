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

/* Opens a runtime on $NST_DEVICE (else the default), cache off. Fails the
 * test, saying how to install PoCL, when there is no device. */
nst_runtime *check_runtime(void);

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
