/* ref_guided.c: double references for the guided losses and the iterate
 * average (see ref_guided.h). */
#include <stdlib.h>

#include "ref_guided.h"

static double mask_sq(const double *mask, int k) { return mask ? mask[k] * mask[k] : 1.0; }

void ref_gram_masked(const double *f, int c, int m, const double *mask, double *g) {
    double s = 0;
    for (int k = 0; k < m; k++) s += mask_sq(mask, k);
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double v = 0;
            for (int k = 0; k < m; k++)
                v += f[(size_t)i * m + k] * f[(size_t)j * m + k] * mask_sq(mask, k);
            g[i * c + j] = s > 0 ? v / ((double)c * s) : 0.0;
        }
}

/* L = sum_ij (G_ij - A_ij)^2 / ||A||^2 with G_ij = sum_k F_ik F_jk m_k^2 / (C*S):
 * dL/dG = 2 (G - A) / ||A||^2 and dG_ij/dF_ab = (d_ia F_jb + d_ja F_ib) m_b^2 /
 * (C*S), so dL/dF_ab = sum_j (dL/dG_aj + dL/dG_ja) F_jb m_b^2 / (C*S), written
 * out without assuming symmetry. */
double ref_style_masked(const double *f, int c, int m, const double *mask, const double *a,
                        double *grad) {
    double *g = malloc(sizeof(double) * c * c);
    ref_gram_masked(f, c, m, mask, g);
    double an = 0, s = 0, msum = 0;
    for (int i = 0; i < c * c; i++) an += a[i] * a[i];
    for (int k = 0; k < m; k++) msum += mask_sq(mask, k);
    for (int i = 0; i < c * c; i++) {
        double d = g[i] - a[i];
        s += d * d;
        g[i] = 2 * d / an; /* now dL/dG */
    }
    if (grad)
        for (int i = 0; i < c; i++)
            for (int k = 0; k < m; k++) {
                double v = 0;
                for (int j = 0; j < c; j++)
                    v += (g[i * c + j] + g[j * c + i]) * f[(size_t)j * m + k];
                grad[(size_t)i * m + k] =
                    msum > 0 ? v * mask_sq(mask, k) / ((double)c * msum) : 0.0;
            }
    free(g);
    return s / an;
}

void ref_mask_down(const double *src, int sh, int sw, double *dst) {
    int dh = sh / 2, dw = sw / 2;
    for (int i = 0; i < dh; i++)
        for (int j = 0; j < dw; j++) {
            const double *r0 = src + (size_t)(2 * i) * sw + 2 * j, *r1 = r0 + sw;
            dst[i * dw + j] = (r0[0] + r0[1] + r1[0] + r1[1]) / 4;
        }
}

void ref_ema_init(ref_ema *e, size_t n, double decay) {
    e->u = calloc(n, sizeof(double));
    e->n = n;
    e->d = decay;
    e->dt = 1;
}

void ref_ema_update(ref_ema *e, const float *x) {
    for (size_t i = 0; i < e->n; i++) e->u[i] = e->d * e->u[i] + (1 - e->d) * x[i];
    e->dt *= e->d;
}

void ref_ema_value(const ref_ema *e, double *avg) {
    for (size_t i = 0; i < e->n; i++) avg[i] = e->u[i] / (1 - e->dt);
}

void ref_ema_free(ref_ema *e) {
    free(e->u);
    e->u = NULL;
}
