/* resize.c: separable image resampling. Each axis gets its own table of
 * taps: area averaging (exact fractional coverage) when it shrinks,
 * Catmull-Rom cubic with clamped edges when it grows, identity when equal.
 * Rows are filtered first into a double buffer, then columns. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "nst_int.h"

/* Taps of one axis: output i reads in[start[i] + k] with weight
 * wt[i * maxn + k] for k < n[i]. */
typedef struct axis_taps {
    int *start, *n;
    double *wt;
    int maxn;
} axis_taps;

static void taps_free(axis_taps *t) {
    free(t->start);
    free(t->n);
    free(t->wt);
}

static int taps_build(axis_taps *t, int src, int dst) {
    t->maxn = dst < src ? (int)ceil((double)src / dst) + 2 : 4;
    t->start = malloc(sizeof *t->start * dst);
    t->n = malloc(sizeof *t->n * dst);
    t->wt = calloc((size_t)dst * t->maxn, sizeof *t->wt);
    if (!t->start || !t->n || !t->wt) return 0;
    for (int i = 0; i < dst; i++) {
        double *w = t->wt + (size_t)i * t->maxn;
        if (dst == src) {
            t->start[i] = i;
            t->n[i] = 1;
            w[0] = 1;
        } else if (dst < src) {
            /* output i covers [a, b) of the input, in input pixels */
            double a = (double)i * src / dst, b = (double)(i + 1) * src / dst;
            int j0 = (int)floor(a), j1 = (int)ceil(b);
            if (j1 > src) j1 = src;
            double sum = 0;
            t->start[i] = j0;
            t->n[i] = j1 - j0;
            for (int j = j0; j < j1; j++) {
                double lo = j > a ? j : a, hi = j + 1 < b ? j + 1 : b;
                w[j - j0] = hi > lo ? hi - lo : 0;
                sum += w[j - j0];
            }
            for (int k = 0; k < t->n[i]; k++) w[k] /= sum;
        } else {
            /* pixel centres aligned: output centre i+0.5 maps to input x */
            double x = (i + 0.5) * src / dst - 0.5;
            int j = (int)floor(x);
            double s = x - j, s2 = s * s, s3 = s2 * s;
            double cw[4] = {(-s3 + 2 * s2 - s) / 2, (3 * s3 - 5 * s2 + 2) / 2,
                            (-3 * s3 + 4 * s2 + s) / 2, (s3 - s2) / 2};
            /* clamp the taps to the edge: fold weights onto valid pixels */
            int lo = j - 1 < 0 ? 0 : j - 1, hi = j + 2 > src - 1 ? src - 1 : j + 2;
            t->start[i] = lo;
            t->n[i] = hi - lo + 1;
            for (int k = 0; k < 4; k++) {
                int idx = j - 1 + k;
                idx = idx < 0 ? 0 : idx > src - 1 ? src - 1 : idx;
                w[idx - lo] += cw[k];
            }
        }
    }
    return 1;
}

nst_status nst_image_resize(const nst_image *src, int w, int h, nst_image **out, nst_msg *msg) {
    nst_status st = NST_OK;
    axis_taps tx = {0}, ty = {0};
    double *tmp = NULL;
    nst_image *dst = NULL;
    *out = NULL;
    if (!src || !src->data || src->w < 1 || src->h < 1)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "resize: the source image is empty");
    if (w < 1 || h < 1)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "resize to %dx%d: both sides must be >= 1", w,
                        h);
    NST_TRY(nst_image_create(w, h, &dst, msg));
    tmp = malloc(sizeof *tmp * (3 * (size_t)src->h + 1) * w); /* + one accumulator row */
    if (!tmp || !taps_build(&tx, src->w, w) || !taps_build(&ty, src->h, h)) {
        st = nst_fail(msg, NST_ERR_NOMEM, "out of memory resizing %dx%d to %dx%d", src->w,
                      src->h, w, h);
        goto fail;
    }
    /* rows: tmp[c][y][i] = sum_k wx * src[c][y][start + k]   ([3][src->h][w]) */
    for (int c = 0; c < 3; c++) {
        for (int y = 0; y < src->h; y++) {
            const float *in = nst_image_plane(src, c) + (size_t)y * src->w;
            double *o = tmp + ((size_t)c * src->h + y) * w;
            for (int i = 0; i < w; i++) {
                const double *wt = tx.wt + (size_t)i * tx.maxn;
                const float *p = in + tx.start[i];
                double acc = 0;
                for (int k = 0; k < tx.n[i]; k++) acc += wt[k] * p[k];
                o[i] = acc;
            }
        }
    }
    /* columns: dst[c][i][x] = sum_k wy * tmp[c][start + k][x], clamped;
     * row by row into a double accumulator for cache-friendly access */
    double *acc = tmp + (size_t)3 * src->h * w;
    for (int c = 0; c < 3; c++) {
        const double *plane = tmp + (size_t)c * src->h * w;
        float *o = nst_image_plane(dst, c);
        for (int i = 0; i < h; i++) {
            const double *wt = ty.wt + (size_t)i * ty.maxn;
            memset(acc, 0, sizeof *acc * w);
            for (int k = 0; k < ty.n[i]; k++) {
                const double *row = plane + (size_t)(ty.start[i] + k) * w;
                for (int x = 0; x < w; x++) acc[x] += wt[k] * row[x];
            }
            for (int x = 0; x < w; x++)
                o[(size_t)i * w + x] = (float)(acc[x] < 0 ? 0 : acc[x] > 1 ? 1 : acc[x]);
        }
    }
    *out = dst;
    dst = NULL;
fail:
    taps_free(&tx);
    taps_free(&ty);
    free(tmp);
    nst_image_free(dst);
    return st;
}

void nst_image_fit_size(int w, int h, int longest, int *ow, int *oh) {
    *ow = w;
    *oh = h;
    if (longest <= 0 || w <= 0 || h <= 0) return;
    if (w >= h) {
        *ow = longest;
        *oh = (int)floor((double)h * longest / w + 0.5);
    } else {
        *oh = longest;
        *ow = (int)floor((double)w * longest / h + 0.5);
    }
    if (*ow < 1) *ow = 1;
    if (*oh < 1) *oh = 1;
}
