/* ref_style.c: see ref_style.h. */
#include "ref_style.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RIDGE 1e-3 /* term_w2.c's W2_RIDGE */

/* Cyclic Jacobi: a (n x n, symmetric, destroyed) = v diag(e) v^T. */
static void jacobi(double *a, int n, double *v, double *e) {
    for (int i = 0; i < n * n; i++) v[i] = i % (n + 1) == 0;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, tot = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                tot += a[i * n + j] * a[i * n + j];
                if (i != j) off += a[i * n + j] * a[i * n + j];
            }
        if (off <= 1e-30 * tot) break;
        for (int p = 0; p < n; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = a[p * n + q];
                if (apq == 0) continue;
                double th = (a[q * n + q] - a[p * n + p]) / (2 * apq);
                double t = (th >= 0 ? 1 : -1) / (fabs(th) + sqrt(th * th + 1));
                double c = 1 / sqrt(t * t + 1), s = t * c;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    double x = a[k * n + p], y = a[k * n + q];
                    a[k * n + p] = c * x - s * y;
                    a[k * n + q] = s * x + c * y;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    double x = a[p * n + k], y = a[q * n + k];
                    a[p * n + k] = c * x - s * y;
                    a[q * n + k] = s * x + c * y;
                }
                for (int k = 0; k < n; k++) {
                    double x = v[k * n + p], y = v[k * n + q];
                    v[k * n + p] = c * x - s * y;
                    v[k * n + q] = s * x + c * y;
                }
            }
    }
    for (int i = 0; i < n; i++) e[i] = a[i * n + i];
}

void ref_sym_pow(const double *a, int n, double p, double *out) {
    double *w = malloc((size_t)n * n * sizeof *w), *v = malloc((size_t)n * n * sizeof *v);
    double *e = malloc((size_t)n * sizeof *e);
    memcpy(w, a, (size_t)n * n * sizeof *w);
    jacobi(w, n, v, e);
    for (int i = 0; i < n; i++) e[i] = e[i] > 0 ? pow(e[i], p) : 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int k = 0; k < n; k++) acc += v[i * n + k] * e[k] * v[j * n + k];
            out[i * n + j] = acc;
        }
    free(w);
    free(v);
    free(e);
}

static void matmul(const double *a, const double *b, int n, double *c) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) {
            double acc = 0;
            for (int k = 0; k < n; k++) acc += a[i * n + k] * b[k * n + j];
            c[i * n + j] = acc;
        }
}

void ref_w2_target_make(const double *const *f, const int *m, const double *blend, int n, int c,
                        ref_w2_target *t) {
    double m2[64 * 64] = {0}, sig[64 * 64] = {0};
    memset(t, 0, sizeof *t);
    t->c = c;
    for (int k = 0; k < n; k++)
        for (int i = 0; i < c; i++) {
            for (int p = 0; p < m[k]; p++) t->mu[i] += blend[k] * f[k][i * m[k] + p] / m[k];
            for (int j = 0; j < c; j++) {
                double acc = 0;
                for (int p = 0; p < m[k]; p++) acc += f[k][i * m[k] + p] * f[k][j * m[k] + p];
                m2[i * c + j] += blend[k] * acc / m[k];
            }
        }
    double tr = 0, mu2 = 0;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) sig[i * c + j] = m2[i * c + j] - t->mu[i] * t->mu[j];
    for (int i = 0; i < c; i++) {
        tr += sig[i * c + i];
        mu2 += t->mu[i] * t->mu[i];
    }
    if (tr < 0) tr = 0;
    double es = RIDGE * tr / c;
    for (int i = 0; i < c; i++) sig[i * c + i] += es;
    ref_sym_pow(sig, c, 0.5, t->s);
    t->trs = tr + c * es;
    t->norm = mu2 + tr > 0 ? mu2 + tr : 1;
    t->ridge = RIDGE * (tr / c) * (tr / c);
}

double ref_w2(const double *f, int m, const double *w, const ref_w2_target *t, double *grad) {
    int c = t->c;
    double mu[64] = {0}, sig[64 * 64] = {0}, a[64 * 64], tmp[64 * 64], r[64 * 64], W = 0;
    for (int p = 0; p < m; p++) W += w ? w[p] : 1;
    for (int i = 0; i < c; i++)
        for (int p = 0; p < m; p++) mu[i] += (w ? w[p] : 1) * f[i * m + p] / W;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double acc = 0;
            for (int p = 0; p < m; p++) acc += (w ? w[p] : 1) * f[i * m + p] * f[j * m + p];
            sig[i * c + j] = acc / W - mu[i] * mu[j];
        }
    matmul(t->s, sig, c, tmp);
    matmul(tmp, t->s, c, a);
    for (int i = 0; i < c; i++) a[i * c + i] += t->ridge;
    ref_sym_pow(a, c, 0.5, r);
    double d = 0, trx = 0, tra = 0;
    for (int i = 0; i < c; i++) {
        d += (mu[i] - t->mu[i]) * (mu[i] - t->mu[i]);
        trx += sig[i * c + i];
        tra += r[i * c + i];
    }
    double v = (d + trx + t->trs - 2 * tra) / t->norm;
    if (grad) { /* 2 / (N W) [(I - T)(F - mu 1^T) + (mu - mu_s) 1^T] D */
        double g[64 * 64];
        ref_sym_pow(a, c, -0.5, r);
        matmul(t->s, r, c, tmp);
        matmul(tmp, t->s, c, g);
        for (int i = 0; i < c * c; i++) g[i] = (i % (c + 1) == 0) - g[i];
        for (int i = 0; i < c; i++)
            for (int p = 0; p < m; p++) {
                double acc = mu[i] - t->mu[i];
                for (int j = 0; j < c; j++) acc += g[i * c + j] * (f[j * m + p] - mu[j]);
                grad[i * m + p] = 2 * acc * (w ? w[p] : 1) / (t->norm * W);
            }
    }
    return v;
}

static const double *sort_keys;
static int by_key(const void *x, const void *y) {
    int i = *(const int *)x, j = *(const int *)y;
    double a = sort_keys[i], b = sort_keys[j];
    return a < b ? -1 : a > b ? 1 : (i > j) - (i < j);
}

void ref_hist_table(const double *const *f, const int *m, const double *blend, int n, int c,
                    int k, double *q) {
    memset(q, 0, (size_t)c * k * sizeof *q);
    for (int j = 0; j < n; j++) {
        int *ix = malloc((size_t)m[j] * sizeof *ix);
        for (int ch = 0; ch < c; ch++) {
            for (int p = 0; p < m[j]; p++) ix[p] = p;
            sort_keys = f[j] + (size_t)ch * m[j];
            qsort(ix, (size_t)m[j], sizeof *ix, by_key);
            for (int i = 0; i < k; i++)
                q[(size_t)ch * k + i] +=
                    blend[j] * sort_keys[ix[(2 * (size_t)i + 1) * m[j] / (2 * (size_t)k)]];
        }
        free(ix);
    }
}

double ref_hist(const double *f, int c, int m, const double *mask, const double *q, int k,
                double *grad) {
    int *ix = malloc((size_t)m * sizeof *ix);
    double *t = malloc((size_t)c * m * sizeof *t), e = 0, d = 0;
    memcpy(t, f, (size_t)c * m * sizeof *t);
    for (int ch = 0; ch < c; ch++) {
        int cnt = 0;
        for (int p = 0; p < m; p++)
            if (!mask || mask[p] > 0.5) ix[cnt++] = p;
        sort_keys = f + (size_t)ch * m;
        qsort(ix, (size_t)cnt, sizeof *ix, by_key);
        for (int r = 0; r < cnt; r++) {
            double v = q[(size_t)ch * k + (2 * (size_t)r + 1) * k / (2 * (size_t)cnt)];
            t[(size_t)ch * m + ix[r]] = v;
            e += v * v;
        }
    }
    if (!(e > 0)) e = 1;
    for (size_t i = 0; i < (size_t)c * m; i++) {
        d += (f[i] - t[i]) * (f[i] - t[i]);
        if (grad) grad[i] = 2 * (f[i] - t[i]) / e;
    }
    free(ix);
    free(t);
    return d / e;
}
