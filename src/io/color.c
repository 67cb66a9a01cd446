/* color.c: colour-space helpers for colour preservation (Gatys et al.,
 * "Preserving color in neural artistic style transfer", 2016): YCbCr
 * conversion (BT.601 full range, as JPEG), luminance, colour transfer from
 * the content image, and luminance matching by moments or by histogram. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "nst_int.h"

#define KR 0.299
#define KG 0.587
#define KB 0.114

void nst_image_rgb_to_yuv(nst_image *img) {
    size_t n = (size_t)img->w * img->h;
    float *r = img->data, *g = r + n, *b = g + n;
    for (size_t i = 0; i < n; i++) {
        double R = r[i], G = g[i], B = b[i];
        double y = KR * R + KG * G + KB * B;
        r[i] = (float)y;
        g[i] = (float)((B - y) / (2 * (1 - KB)) + 0.5); /* Cb */
        b[i] = (float)((R - y) / (2 * (1 - KR)) + 0.5); /* Cr */
    }
}

void nst_image_yuv_to_rgb(nst_image *img) {
    size_t n = (size_t)img->w * img->h;
    float *p0 = img->data, *p1 = p0 + n, *p2 = p1 + n;
    for (size_t i = 0; i < n; i++) {
        double y = p0[i], cb = p1[i] - 0.5, cr = p2[i] - 0.5;
        double R = y + 2 * (1 - KR) * cr, B = y + 2 * (1 - KB) * cb;
        double G = (y - KR * R - KB * B) / KG;
        p0[i] = (float)R;
        p1[i] = (float)G;
        p2[i] = (float)B;
    }
}

void nst_image_luminance_plane(const nst_image *src, float *y) {
    size_t n = (size_t)src->w * src->h;
    const float *r = src->data, *g = r + n, *b = g + n;
    for (size_t i = 0; i < n; i++) y[i] = (float)(KR * r[i] + KG * g[i] + KB * b[i]);
}

nst_status nst_image_luminance(const nst_image *src, nst_image **out, nst_msg *msg) {
    nst_status st = nst_image_create(src->w, src->h, out, msg);
    if (st != NST_OK) return st;
    size_t n = (size_t)src->w * src->h;
    nst_image_luminance_plane(src, (*out)->data);
    memcpy((*out)->data + n, (*out)->data, n * sizeof(float));
    memcpy((*out)->data + 2 * n, (*out)->data, n * sizeof(float));
    return NST_OK;
}

static float clamp01(float x) { return x > 0 ? (x < 1 ? x : 1) : 0; }

nst_status nst_image_preserve_colors(const nst_image *styled, const nst_image *content,
                                     nst_image **out, nst_msg *msg) {
    nst_status st = NST_OK;
    nst_image *chroma = NULL, *res = NULL;
    *out = NULL;
    if (content->w != styled->w || content->h != styled->h)
        NST_TRY(nst_image_resize(content, styled->w, styled->h, &chroma, msg));
    else
        NST_TRY(nst_image_clone(content, &chroma, msg));
    NST_TRY(nst_image_clone(styled, &res, msg));
    nst_image_rgb_to_yuv(res);
    nst_image_rgb_to_yuv(chroma);
    size_t n = (size_t)res->w * res->h;
    memcpy(res->data + n, chroma->data + n, 2 * n * sizeof(float));
    nst_image_yuv_to_rgb(res);
    for (size_t i = 0; i < 3 * n; i++) res->data[i] = clamp01(res->data[i]);
    *out = res;
    res = NULL;
fail:
    nst_image_free(chroma);
    nst_image_free(res);
    return st;
}

static void moments(const float *y, size_t n, double *mean, double *sd) {
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++) s += y[i];
    *mean = s / n;
    for (size_t i = 0; i < n; i++) ss += (y[i] - *mean) * (y[i] - *mean);
    *sd = sqrt(ss / n);
}

/* out = src with its luminance replaced by ynew (w*h floats): adds the
 * change of Y to every channel, which keeps Cb and Cr exactly. */
static nst_status replace_luminance(const nst_image *src, const float *ynew, nst_image **out,
                                    nst_msg *msg) {
    size_t n = (size_t)src->w * src->h;
    float *yold = malloc(n * sizeof *yold);
    if (!yold) return nst_fail(msg, NST_ERR_NOMEM, "out of memory matching luminance");
    nst_status st = nst_image_clone(src, out, msg);
    if (st == NST_OK) {
        nst_image_luminance_plane(src, yold);
        for (int c = 0; c < 3; c++) {
            float *p = nst_image_plane(*out, c);
            for (size_t i = 0; i < n; i++) p[i] = (float)((double)p[i] + ynew[i] - yold[i]);
        }
    }
    free(yold);
    return st;
}

static nst_status alloc_planes(size_t n1, size_t n2, float **a, float **b, nst_msg *msg) {
    *a = malloc(n1 * sizeof **a);
    *b = malloc(n2 * sizeof **b);
    if (*a && *b) return NST_OK;
    free(*a);
    free(*b);
    *a = *b = NULL;
    return nst_fail(msg, NST_ERR_NOMEM, "out of memory matching luminance");
}

nst_status nst_image_match_luminance(const nst_image *src, const nst_image *ref,
                                     nst_image **out, nst_msg *msg) {
    size_t n = (size_t)src->w * src->h, m = (size_t)ref->w * ref->h;
    float *ys, *yr;
    *out = NULL;
    nst_status st = alloc_planes(n, m, &ys, &yr, msg);
    if (st != NST_OK) return st;
    nst_image_luminance_plane(src, ys);
    nst_image_luminance_plane(ref, yr);
    double ms, ss, mr, sr;
    moments(ys, n, &ms, &ss);
    moments(yr, m, &mr, &sr);
    double scale = ss > 0 ? sr / ss : 0;
    for (size_t i = 0; i < n; i++) ys[i] = (float)((ys[i] - ms) * scale + mr);
    st = replace_luminance(src, ys, out, msg);
    free(ys);
    free(yr);
    return st;
}

/* A pixel's luminance and index: sorted by value, ties by index, so the
 * ranking is deterministic. */
typedef struct ranked {
    float v;
    size_t i;
} ranked;

static int cmp_ranked(const void *a, const void *b) {
    const ranked *x = a, *y = b;
    if (x->v < y->v) return -1;
    if (x->v > y->v) return 1;
    return (x->i > y->i) - (x->i < y->i);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

nst_status nst_image_match_histogram(const nst_image *src, const nst_image *ref,
                                     nst_image **out, nst_msg *msg) {
    size_t n = (size_t)src->w * src->h, m = (size_t)ref->w * ref->h;
    float *ys, *yr;
    *out = NULL;
    nst_status st = alloc_planes(n, m, &ys, &yr, msg);
    if (st != NST_OK) return st;
    ranked *order = malloc(n * sizeof *order);
    float *ynew = malloc(n * sizeof *ynew);
    if (!order || !ynew) {
        st = nst_fail(msg, NST_ERR_NOMEM, "out of memory matching histograms");
        goto done;
    }
    nst_image_luminance_plane(src, ys);
    nst_image_luminance_plane(ref, yr);
    qsort(yr, m, sizeof *yr, cmp_float);
    for (size_t i = 0; i < n; i++) {
        order[i].v = ys[i];
        order[i].i = i;
    }
    qsort(order, n, sizeof *order, cmp_ranked);
    /* rank r of n maps to quantile r/(n-1), i.e. position r*(m-1)/(n-1) in ref */
    for (size_t r = 0; r < n; r++) {
        double pos = n > 1 ? (double)r * (m - 1) / (n - 1) : (m - 1) / 2.0;
        size_t j = (size_t)pos;
        double t = pos - j;
        double v = j + 1 < m ? yr[j] * (1 - t) + yr[j + 1] * t : yr[m - 1];
        ynew[order[r].i] = (float)v;
    }
    st = replace_luminance(src, ynew, out, msg);
done:
    free(order);
    free(ynew);
    free(ys);
    free(yr);
    return st;
}
