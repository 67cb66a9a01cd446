/* ref_loss.h: plain-C double references for the losses of src/loss.h, used by
 * the tests (values, gradients, and finite differences on these). */
#ifndef NST_TEST_REF_LOSS_H
#define NST_TEST_REF_LOSS_H

#include <stddef.h>

/* g[C*C] = F F^T / (C*M), F: C x M. */
void ref_gram(const double *f, int c, int m, double *g);
/* sum of x^2 */
double ref_sum_squares(const double *x, size_t n);
/* ||f - p||^2 / ||p||^2; grad (NULL or n) = its gradient, overwritten. */
double ref_content(const double *f, const double *p, size_t n, double *grad);
/* ||G(f) - a||^2 / ||a||^2 with a: C*C; grad (NULL or C*M) overwritten. */
double ref_style(const double *f, int c, int m, const double *a, double *grad);
/* TV over planes of h x w, mean over planes*h*w entries; grad overwritten. */
double ref_tv(const double *x, int planes, int h, int w, double *grad);

/* Central differences of fn(x) over every x[i], step h, into grad. fn gets
 * ctx; x is modified and restored. */
typedef double (*ref_fn)(void *ctx, const double *x);
void ref_numeric_grad(ref_fn fn, void *ctx, double *x, size_t n, double h, double *grad);

/* float <-> double arrays */
void ref_to_double(const float *src, double *dst, size_t n);

#endif
