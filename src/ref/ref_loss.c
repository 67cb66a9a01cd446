/* ref_loss.c: plain-C double references for the losses (see reference.h). */
#include <math.h>
#include <stdlib.h>

#include "reference.h"

void nst_ref_gram(const double *f, int c, int m, double *g) {
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double s = 0;
            for (int k = 0; k < m; k++) s += f[(size_t)i * m + k] * f[(size_t)j * m + k];
            g[i * c + j] = s / ((double)c * m);
        }
}

double nst_ref_sum_squares(const double *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i] * x[i];
    return s;
}

double nst_ref_content(const double *f, const double *p, size_t n, double *grad) {
    double pn = nst_ref_sum_squares(p, n), s = 0;
    for (size_t i = 0; i < n; i++) {
        double d = f[i] - p[i];
        s += d * d;
        if (grad) grad[i] = 2 * d / pn;
    }
    return s / pn;
}

/* L = sum_ij (G_ij - A_ij)^2 / ||A||^2; dL/dG = 2 (G - A) / ||A||^2 and
 * dG_ij/dF_ab = (d_ia F_jb + d_ja F_ib) / (C*M), so dL/dF_ab =
 * sum_j (dL/dG_aj + dL/dG_ja) F_jb / (C*M), written out without assuming
 * symmetry. */
double nst_ref_style(const double *f, int c, int m, const double *a, double *grad) {
    double *g = malloc(sizeof(double) * c * c);
    if (!g) return NAN;
    nst_ref_gram(f, c, m, g);
    double an = nst_ref_sum_squares(a, (size_t)c * c), s = 0;
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
                grad[(size_t)i * m + k] = v / ((double)c * m);
            }
    free(g);
    return s / an;
}

double nst_ref_tv(const double *x, int planes, int h, int w, double *grad) {
    size_t n = (size_t)planes * h * w;
    double s = 0;
    if (grad)
        for (size_t i = 0; i < n; i++) grad[i] = 0;
    for (int p = 0; p < planes; p++)
        for (int i = 0; i < h; i++)
            for (int j = 0; j < w; j++) {
                size_t o = ((size_t)p * h + i) * w + j;
                if (i + 1 < h) {
                    double d = x[o + w] - x[o];
                    s += d * d;
                    if (grad) {
                        grad[o + w] += 2 * d / n;
                        grad[o] -= 2 * d / n;
                    }
                }
                if (j + 1 < w) {
                    double d = x[o + 1] - x[o];
                    s += d * d;
                    if (grad) {
                        grad[o + 1] += 2 * d / n;
                        grad[o] -= 2 * d / n;
                    }
                }
            }
    return s / n;
}

void nst_ref_numeric_grad(nst_ref_fn fn, void *ctx, double *x, size_t n, double h,
                          double *grad) {
    for (size_t i = 0; i < n; i++) {
        double x0 = x[i];
        x[i] = x0 + h;
        double fp = fn(ctx, x);
        x[i] = x0 - h;
        double fm = fn(ctx, x);
        x[i] = x0;
        grad[i] = (fp - fm) / (2 * h);
    }
}

void nst_ref_to_double(const float *src, double *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}
