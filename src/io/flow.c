/* flow.c: optical flow between frames (through flow_dis.cpp), the
 * forward-backward consistency check and bilinear warping (flow.h). */
#include <math.h>
#include <stdlib.h>

#include "flow.h"
#include "image.h"
#include "nst_int.h"

static unsigned char *grey_bytes(const nst_image *img) {
    size_t hw = (size_t)img->w * img->h;
    unsigned char *g = malloc(hw ? hw : 1);
    float *y = malloc((hw ? hw : 1) * sizeof *y);
    if (g && y) {
        nst_image_luminance_plane(img, y);
        for (size_t i = 0; i < hw; i++) {
            float v = y[i] > 0 ? (y[i] < 1 ? y[i] : 1) : 0;
            g[i] = (unsigned char)(v * 255.0f + 0.5f);
        }
    } else {
        free(g);
        g = NULL;
    }
    free(y);
    return g;
}

nst_status nst_flow(const nst_image *a, const nst_image *b, nst_flow_quality q, float *flow,
                    nst_msg *msg) {
    nst_status st;
    if ((st = nst_image_check(a, "nst_flow", "a", msg)) != NST_OK ||
        (st = nst_image_check(b, "nst_flow", "b", msg)) != NST_OK)
        return st;
    if (a->w != b->w || a->h != b->h)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "optical flow between frames of %dx%d and "
                        "%dx%d", a->w, a->h, b->w, b->h);
    unsigned char *ga = grey_bytes(a), *gb = grey_bytes(b);
    char err[256] = "";
    st = NST_OK;
    if (!ga || !gb)
        st = nst_fail(msg, NST_ERR_NOMEM, "optical flow");
    else if (nst_flow_dis(ga, gb, a->w, a->h, (int)q, flow, err, sizeof err) != 0)
        st = nst_fail(msg, NST_ERR_NOMEM, "%s", err);
    free(ga);
    free(gb);
    return st;
}

/* Bilinear sample of a channel (stride `step` floats between pixels) at
 * (x, y), clamped at the borders. */
static float sample(const float *p, int w, int h, int step, float x, float y) {
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > w - 1) x = (float)(w - 1);
    if (y > h - 1) y = (float)(h - 1);
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    float fx = x - x0, fy = y - y0;
    float a = p[((size_t)y0 * w + x0) * step], b = p[((size_t)y0 * w + x1) * step];
    float c = p[((size_t)y1 * w + x0) * step], d = p[((size_t)y1 * w + x1) * step];
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy;
}

void nst_flow_consistency(const float *fwd, const float *bwd, int w, int h, float *mask) {
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float ub = bwd[2 * i], vb = bwd[2 * i + 1];
            float px = x + ub, py = y + vb;
            float c = 1;
            if (px < 0 || py < 0 || px > w - 1 || py > h - 1) {
                c = 0; /* comes from outside the previous frame */
            } else {
                float uf = sample(fwd, w, h, 2, px, py), vf = sample(fwd + 1, w, h, 2, px, py);
                float du = uf + ub, dv = vf + vb;
                if (du * du + dv * dv > 0.01f * (uf * uf + vf * vf + ub * ub + vb * vb) + 0.5f)
                    c = 0; /* disoccluded */
            }
            if (c > 0) {
                /* motion boundary: the gradient of the backward flow */
                int xl = x > 0 ? x - 1 : x, xr = x + 1 < w ? x + 1 : x;
                int yu = y > 0 ? y - 1 : y, yd = y + 1 < h ? y + 1 : y;
                float sx = xr > xl ? 1.0f / (xr - xl) : 0, sy = yd > yu ? 1.0f / (yd - yu) : 0;
                size_t l = (size_t)y * w + xl, r = (size_t)y * w + xr;
                size_t u = (size_t)yu * w + x, d = (size_t)yd * w + x;
                float uxx = (bwd[2 * r] - bwd[2 * l]) * sx, uyy = (bwd[2 * d] - bwd[2 * u]) * sy;
                float vxx = (bwd[2 * r + 1] - bwd[2 * l + 1]) * sx;
                float vyy = (bwd[2 * d + 1] - bwd[2 * u + 1]) * sy;
                if (uxx * uxx + uyy * uyy + vxx * vxx + vyy * vyy >
                    0.01f * (ub * ub + vb * vb) + 0.002f)
                    c = 0;
            }
            mask[i] = c;
        }
}

nst_status nst_warp(const nst_image *src, const float *flow, nst_image **out, nst_msg *msg) {
    nst_status st = nst_image_create(src->w, src->h, out, msg);
    if (st != NST_OK) return st;
    int w = src->w, h = src->h;
    size_t hw = (size_t)w * h;
    for (int c = 0; c < 3; c++) {
        const float *p = src->data + c * hw;
        float *o = (*out)->data + c * hw;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                o[i] = sample(p, w, h, 1, x + flow[2 * i], y + flow[2 * i + 1]);
            }
    }
    return NST_OK;
}
