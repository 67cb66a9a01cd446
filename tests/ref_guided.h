/* ref_guided.h: plain-C double references for the guided (masked) Gram
 * matrices and region style loss of src/loss.h, mask downsampling, and the
 * iterate average of src/optim.h. */
#ifndef NST_TEST_REF_GUIDED_H
#define NST_TEST_REF_GUIDED_H

#include <stddef.h>

/* g[C*C] = F diag(mask^2) F^T / (C*S), S = sum mask^2 (F: C x M; mask NULL:
 * all ones). S = 0 gives g = 0. */
void ref_gram_masked(const double *f, int c, int m, const double *mask, double *g);
/* ||G_r(f) - a||^2 / ||a||^2, a: C*C; grad (NULL or C*M) overwritten. */
double ref_style_masked(const double *f, int c, int m, const double *mask, const double *a,
                        double *grad);
/* dst[(sh/2)*(sw/2)] = means of the 2x2 blocks of src[sh*sw]. */
void ref_mask_down(const double *src, int sh, int sw, double *dst);

/* The iterate average by its definition: u = d*u + (1-d)*x on n values (u
 * starts at 0), then avg = u / (1 - d^t) for step t. */
typedef struct ref_ema {
    double *u;
    size_t n;
    double d, dt; /* decay and decay^t */
} ref_ema;
void ref_ema_init(ref_ema *e, size_t n, double decay);
void ref_ema_update(ref_ema *e, const float *x);
void ref_ema_value(const ref_ema *e, double *avg);
void ref_ema_free(ref_ema *e);

#endif
