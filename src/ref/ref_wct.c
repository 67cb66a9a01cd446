/* ref_wct.c: plain-C double references of the WCT models' layers (reflection
 * padded convolution, ceil-mode max pooling, nearest upsampling), of any
 * network table run forward, and of the whitening and colouring transform
 * with its own eigen-solver (cyclic Jacobi), independent of LAPACK. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

void nst_ref_pool_max_ceil(double *y, const double *x, int C, int H, int W) {
    int OH = (H + 1) / 2, OW = (W + 1) / 2;
    for (int c = 0; c < C; c++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double m = -INFINITY;
                for (int i = 0; i < 2; i++)
                    for (int j = 0; j < 2; j++) {
                        int h = 2 * oh + i, v = 2 * ow + j;
                        if (h < H && v < W && x[(c * H + h) * W + v] > m)
                            m = x[(c * H + h) * W + v];
                    }
                y[(c * OH + oh) * OW + ow] = m;
            }
}

void nst_ref_upsample2(double *y, const double *x, int C, int H, int W) {
    for (int c = 0; c < C; c++)
        for (int h = 0; h < 2 * H; h++)
            for (int v = 0; v < 2 * W; v++)
                y[(c * 2 * H + h) * 2 * W + v] = x[(c * H + h / 2) * W + v / 2];
}

int nst_ref_net_forward(const nst_net *net, int depth, const nst_weights *w, const double *x,
                        int C, int H, int W, double **out, int *oc, int *oh, int *ow) {
    const char *pre = net->prefix ? net->prefix : "features.";
    double *cur = malloc((size_t)C * H * W * sizeof *cur);
    int c = C, h = H, v = W, reflected = 0;
    *out = NULL;
    if (!cur) return -1;
    memcpy(cur, x, (size_t)C * H * W * sizeof *cur);
    if (depth <= 0 || depth > net->nlayers) depth = net->nlayers;
    for (int i = 0; i < depth; i++) {
        const nst_net_layer *L = &net->layer[i];
        double *next = NULL;
        if (L->kind == NST_LAYER_PAD) {
            reflected = 1; /* applied by the convolution that follows */
            continue;
        }
        if (L->kind == NST_LAYER_CONV) {
            char name[64];
            snprintf(name, sizeof name, "%s%d.weight", pre, i);
            const nst_weight *tw = nst_weights_find(w, name);
            snprintf(name, sizeof name, "%s%d.bias", pre, i);
            const nst_weight *tb = nst_weights_find(w, name);
            if (!tw || !tb || tw->shape[1] != c || tw->shape[2] != L->kernel) goto fail;
            int k = (int)tw->shape[0];
            double *dw = nst_ref_from_float(tw->data, tw->count);
            double *db = nst_ref_from_float(tb->data, tb->count);
            next = nst_ref_alloc((size_t)k * h * v);
            if (dw && db && next) {
                if (reflected)
                    nst_ref_conv_reflect_forward(next, cur, dw, db, c, h, v, k, L->kernel, 0);
                else
                    nst_ref_conv_forward(next, cur, dw, db, c, h, v, k, L->kernel, 0);
            }
            free(dw);
            free(db);
            if (!next) goto fail;
            c = k;
            reflected = 0;
        } else if (L->kind == NST_LAYER_RELU) {
            next = nst_ref_alloc((size_t)c * h * v);
            if (!next) goto fail;
            nst_ref_relu_forward(next, cur, (size_t)c * h * v);
        } else if (L->kind == NST_LAYER_POOL) {
            int nh = L->ceil_mode ? (h + 1) / 2 : h / 2, nv = L->ceil_mode ? (v + 1) / 2 : v / 2;
            if (nh < 1 || nv < 1 || !(next = nst_ref_alloc((size_t)c * nh * nv))) goto fail;
            if (L->ceil_mode) nst_ref_pool_max_ceil(next, cur, c, h, v);
            else nst_ref_pool_forward(next, cur, c, h, v, 1);
            h = nh;
            v = nv;
        } else if (L->kind == NST_LAYER_UPSAMPLE) {
            if (!(next = nst_ref_alloc((size_t)c * 4 * h * v))) goto fail;
            nst_ref_upsample2(next, cur, c, h, v);
            h *= 2;
            v *= 2;
        } else {
            goto fail;
        }
        free(cur);
        cur = next;
    }
    *out = cur;
    *oc = c;
    *oh = h;
    *ow = v;
    return 0;
fail:
    free(cur);
    return -1;
}

/* ---- the transform ---------------------------------------------------------- */

int nst_ref_eigen_sym(int n, const double *a, double *evals, double *evecs) {
    /* cyclic Jacobi: rotate away every off-diagonal entry until they vanish */
    double *m = malloc((size_t)n * n * sizeof *m);
    if (!m) return -1;
    memcpy(m, a, (size_t)n * n * sizeof *m);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) evecs[(size_t)i * n + j] = i == j;
    for (int sweep = 0; sweep < 100; sweep++) {
        double off = 0, tot = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) {
                double v = m[(size_t)i * n + j] * m[(size_t)i * n + j];
                tot += v;
                if (i != j) off += v;
            }
        if (off <= 1e-30 * tot) break;
        for (int p = 0; p < n - 1; p++)
            for (int q = p + 1; q < n; q++) {
                double apq = m[(size_t)p * n + q];
                if (apq == 0) continue;
                double app = m[(size_t)p * n + p], aqq = m[(size_t)q * n + q];
                double theta = (aqq - app) / (2 * apq);
                double t = (theta >= 0 ? 1 : -1) / (fabs(theta) + sqrt(theta * theta + 1));
                double cs = 1 / sqrt(t * t + 1), sn = t * cs;
                for (int k = 0; k < n; k++) { /* columns p, q */
                    double mkp = m[(size_t)k * n + p], mkq = m[(size_t)k * n + q];
                    m[(size_t)k * n + p] = cs * mkp - sn * mkq;
                    m[(size_t)k * n + q] = sn * mkp + cs * mkq;
                }
                for (int k = 0; k < n; k++) { /* rows p, q */
                    double mpk = m[(size_t)p * n + k], mqk = m[(size_t)q * n + k];
                    m[(size_t)p * n + k] = cs * mpk - sn * mqk;
                    m[(size_t)q * n + k] = sn * mpk + cs * mqk;
                }
                for (int k = 0; k < n; k++) {
                    double vkp = evecs[(size_t)k * n + p], vkq = evecs[(size_t)k * n + q];
                    evecs[(size_t)k * n + p] = cs * vkp - sn * vkq;
                    evecs[(size_t)k * n + q] = sn * vkp + cs * vkq;
                }
            }
    }
    for (int i = 0; i < n; i++) evals[i] = m[(size_t)i * n + i];
    free(m);
    return 0;
}

void nst_ref_stats(const double *f, int c, int n, double *mean, double *cov) {
    for (int i = 0; i < c; i++) {
        double s = 0;
        for (int k = 0; k < n; k++) s += f[(size_t)i * n + k];
        mean[i] = s / n;
    }
    for (int i = 0; i < c; i++)
        for (int j = 0; j <= i; j++) {
            double s = 0;
            for (int k = 0; k < n; k++)
                s += (f[(size_t)i * n + k] - mean[i]) * (f[(size_t)j * n + k] - mean[j]);
            cov[(size_t)i * c + j] = cov[(size_t)j * c + i] = s / (n - 1);
        }
}

/* out = E g(D) E^T, g(d) = (d + eps)^power, 0 below min_eig */
static int ref_power(int c, const double *cov, double eps, double power, double min_eig,
                     double *out) {
    double *a = malloc((size_t)c * c * sizeof *a), *e = malloc((size_t)c * c * sizeof *e);
    double *d = malloc((size_t)c * sizeof *d);
    int rc = -1;
    if (!a || !e || !d) goto done;
    memcpy(a, cov, (size_t)c * c * sizeof *a);
    for (int i = 0; i < c; i++) a[(size_t)i * c + i] += eps;
    if (nst_ref_eigen_sym(c, a, d, e)) goto done;
    for (int i = 0; i < c; i++)
        for (int j = 0; j < c; j++) {
            double s = 0;
            for (int k = 0; k < c; k++)
                if (d[k] >= min_eig) s += e[(size_t)i * c + k] * pow(d[k], power) * e[(size_t)j * c + k];
            out[(size_t)i * c + j] = s;
        }
    rc = 0;
done:
    free(a);
    free(e);
    free(d);
    return rc;
}

int nst_ref_wct(const double *fc, int c, int n, int nstyles, const double *const *smean,
                const double *const *scov, const double *blend, double alpha, double eps,
                double min_eig, double *out) {
    size_t cc = (size_t)c * c;
    double *mc = malloc(c * sizeof *mc), *cv = malloc(cc * sizeof *cv);
    double *wm = malloc(cc * sizeof *wm), *km = malloc(cc * sizeof *km);
    double *t = calloc(cc, sizeof *t), *ms = calloc(c, sizeof *ms);
    int rc = -1;
    if (!mc || !cv || !wm || !km || !t || !ms) goto done;
    nst_ref_stats(fc, c, n, mc, cv);
    if (ref_power(c, cv, eps, -0.5, min_eig, wm)) goto done;
    for (int s = 0; s < nstyles; s++) {
        double ws = blend ? blend[s] : 1.0 / nstyles;
        if (ref_power(c, scov[s], 0, 0.5, min_eig, km)) goto done;
        for (int i = 0; i < c; i++) {
            for (int j = 0; j < c; j++) {
                double v = 0;
                for (int k = 0; k < c; k++) v += km[(size_t)i * c + k] * wm[(size_t)k * c + j];
                t[(size_t)i * c + j] += ws * v;
            }
            ms[i] += ws * smean[s][i];
        }
    }
    for (int i = 0; i < c; i++)
        for (int k = 0; k < n; k++) {
            double v = ms[i];
            for (int j = 0; j < c; j++) v += t[(size_t)i * c + j] * (fc[(size_t)j * n + k] - mc[j]);
            out[(size_t)i * n + k] = alpha * v + (1 - alpha) * fc[(size_t)i * n + k];
        }
    rc = 0;
done:
    free(mc);
    free(cv);
    free(wm);
    free(km);
    free(t);
    free(ms);
    return rc;
}
