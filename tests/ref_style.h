/* ref_style.h: double-precision references of the Wasserstein-2 and
 * histogram style losses (src/objective/term_w2.c, term_hist.c), written
 * from their definitions: matrix square roots by eigendecomposition (Jacobi
 * rotations) rather than Newton-Schulz, ranks by a plain sort. A feature map
 * is c rows of m positions. */
#ifndef NST_TEST_REF_STYLE_H
#define NST_TEST_REF_STYLE_H

#include <stddef.h>

/* The Wasserstein-2 target of term_w2.c: the Gaussian fit of n paintings'
 * features f[k] (c x m[k]) mixed with weights blend[k]. */
typedef struct ref_w2_target {
    int c;
    double mu[64], s[64 * 64];    /* mu_s, S = (Sigma_s + e_s I)^(1/2) */
    double trs, norm, ridge;      /* tr S^2, N, e_a */
} ref_w2_target;
void ref_w2_target_make(const double *const *f, const int *m, const double *blend, int n, int c,
                        ref_w2_target *t);
/* The normalised W2^2 of f (c x m, positions weighted by w, NULL = 1)
 * against t; grad (c*m, or NULL) = its gradient with respect to f. */
double ref_w2(const double *f, int m, const double *w, const ref_w2_target *t, double *grad);

/* Symmetric a (n x n): out = a^p (p = 1/2 or -1/2) through its
 * eigendecomposition; eigenvalues below 0 count as 0 (p > 0). */
void ref_sym_pow(const double *a, int n, double p, double *out);

/* The histogram target of term_hist.c: q (c x k) = sum_j blend[j] * the
 * quantiles of painting j's features f[j] (c x m[j]) at (2i+1)/(2k). */
void ref_hist_table(const double *const *f, const int *m, const double *blend, int n, int c,
                    int k, double *q);
/* ||f - T||^2 / ||T||^2 over the region (mask[p] > 1/2; NULL = all), T the
 * region's values of f histogram-matched to q (rank r of cnt takes
 * q[(2r+1)k/(2cnt)], ties by position); grad (or NULL) = 2 (f - T) / ||T||^2
 * there, 0 elsewhere. */
double ref_hist(const double *f, int c, int m, const double *mask, const double *q, int k,
                double *grad);

#endif
