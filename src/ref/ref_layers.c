/* ref_layers.c: plain-C double references of the VGG layers and graph (see
 * reference.h); the graph follows the weights' network table (net.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reference.h"

double *nst_ref_alloc(size_t n) {
    return calloc(n ? n : 1, sizeof(double));
}

double *nst_ref_from_float(const float *x, size_t n) {
    double *p = nst_ref_alloc(n);
    if (!p) return NULL;
    for (size_t i = 0; i < n; i++) p[i] = x[i];
    return p;
}

static int reflect_index(int i, int n) { return i < 0 ? -i : i >= n ? 2 * n - 2 - i : i; }

/* The convolution of both references: zero padding, or reflection padding
 * when reflect. */
static void conv_forward(double *y, const double *x, const double *w, const double *b, int C,
                         int H, int W, int K, int R, int relu, int reflect) {
    int p = (R - 1) / 2;
    for (int k = 0; k < K; k++)
        for (int h = 0; h < H; h++)
            for (int v = 0; v < W; v++) {
                double s = b ? b[k] : 0.0;
                for (int c = 0; c < C; c++)
                    for (int i = 0; i < R; i++)
                        for (int j = 0; j < R; j++) {
                            int hh = h + i - p, vv = v + j - p;
                            if (reflect) {
                                hh = reflect_index(hh, H);
                                vv = reflect_index(vv, W);
                            } else if (hh < 0 || hh >= H || vv < 0 || vv >= W) {
                                continue;
                            }
                            s += w[((k * C + c) * R + i) * R + j] * x[(c * H + hh) * W + vv];
                        }
                y[(k * H + h) * W + v] = (relu && s < 0) ? 0.0 : s;
            }
}

void nst_ref_conv_forward(double *y, const double *x, const double *w, const double *b, int C,
                          int H, int W, int K, int R, int relu) {
    conv_forward(y, x, w, b, C, H, W, K, R, relu, 0);
}

void nst_ref_conv_reflect_forward(double *y, const double *x, const double *w, const double *b,
                                  int C, int H, int W, int K, int R, int relu) {
    conv_forward(y, x, w, b, C, H, W, K, R, relu, 1);
}

void nst_ref_conv_backward_input(double *dx, const double *dy, const double *w, int C, int H,
                                 int W, int K, int R) {
    int p = (R - 1) / 2;
    for (int k = 0; k < K; k++)
        for (int h = 0; h < H; h++)
            for (int v = 0; v < W; v++) {
                double g = dy[(k * H + h) * W + v];
                for (int c = 0; c < C; c++)
                    for (int i = 0; i < R; i++)
                        for (int j = 0; j < R; j++) {
                            int hh = h + i - p, vv = v + j - p;
                            if (hh < 0 || hh >= H || vv < 0 || vv >= W) continue;
                            dx[(c * H + hh) * W + vv] += w[((k * C + c) * R + i) * R + j] * g;
                        }
            }
}

void nst_ref_relu_forward(double *y, const double *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = x[i] > 0 ? x[i] : 0;
}

void nst_ref_relu_backward(double *dx, const double *y, const double *dy, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}

/* Index (0..3, row-major) of the first maximum of the window at (oh, ow). */
static int window_argmax(const double *x, int c, int H, int W, int oh, int ow) {
    int best = 0;
    double bv = x[(c * H + 2 * oh) * W + 2 * ow];
    for (int q = 1; q < 4; q++) {
        double v = x[(c * H + 2 * oh + q / 2) * W + 2 * ow + q % 2];
        if (v > bv) {
            bv = v;
            best = q;
        }
    }
    return best;
}

void nst_ref_pool_forward(double *y, const double *x, int C, int H, int W, int max) {
    int OH = H / 2, OW = W / 2;
    for (int c = 0; c < C; c++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double s = 0;
                if (max) {
                    int q = window_argmax(x, c, H, W, oh, ow);
                    s = x[(c * H + 2 * oh + q / 2) * W + 2 * ow + q % 2];
                } else {
                    for (int q = 0; q < 4; q++)
                        s += x[(c * H + 2 * oh + q / 2) * W + 2 * ow + q % 2];
                    s /= 4;
                }
                y[(c * OH + oh) * OW + ow] = s;
            }
}

void nst_ref_pool_backward(double *dx, const double *x, const double *dy, int C, int H, int W,
                           int max) {
    int OH = H / 2, OW = W / 2;
    memset(dx, 0, sizeof(double) * (size_t)C * H * W);
    for (int c = 0; c < C; c++)
        for (int oh = 0; oh < OH; oh++)
            for (int ow = 0; ow < OW; ow++) {
                double g = dy[(c * OH + oh) * OW + ow];
                if (max) {
                    int q = window_argmax(x, c, H, W, oh, ow);
                    dx[(c * H + 2 * oh + q / 2) * W + 2 * ow + q % 2] += g;
                } else {
                    for (int q = 0; q < 4; q++)
                        dx[(c * H + 2 * oh + q / 2) * W + 2 * ow + q % 2] += g / 4;
                }
            }
}

void nst_ref_normalize_forward(double *y, const double *x, int H, int W,
                               const nst_input_norm *in) {
    size_t hw = (size_t)H * W;
    if (!in) in = nst_input_get(NST_INPUT_TORCHVISION);
    for (int c = 0; c < 3; c++) {
        int k = in->bgr ? 2 - c : c;
        for (size_t i = 0; i < hw; i++) y[c * hw + i] = (x[k * hw + i] - in->mean[c]) / in->std[c];
    }
}

void nst_ref_normalize_backward(double *dx, const double *dy, int H, int W,
                                const nst_input_norm *in) {
    size_t hw = (size_t)H * W;
    if (!in) in = nst_input_get(NST_INPUT_TORCHVISION);
    for (int c = 0; c < 3; c++) {
        int k = in->bgr ? 2 - c : c;
        for (size_t i = 0; i < hw; i++) dx[k * hw + i] = dy[c * hw + i] / in->std[c];
    }
}

int nst_ref_vgg_forward(nst_ref_vgg *m, const nst_weights *w, int nlayers, int avg_pool,
                        const double *img, int H, int W) {
    memset(m, 0, sizeof *m);
    m->net = nst_weights_net(w);
    m->in = nst_input_get(w->input);
    m->nlayers = nlayers;
    if (!m->in || nlayers < 1 || nlayers > m->net->nlayers) return -1;
    m->xn = nst_ref_alloc((size_t)3 * H * W);
    if (!m->xn) return -1;
    nst_ref_normalize_forward(m->xn, img, H, W, m->in);
    const double *in = m->xn;
    int c = 3, h = H, v = W, conv = 0;
    for (int i = 0; i < nlayers; i++) {
        const nst_net_layer *L = &m->net->layer[i];
        if (L->kind == NST_LAYER_CONV) {
            char name[64];
            snprintf(name, sizeof name, "features.%d.weight", i);
            const nst_weight *tw = nst_weights_find(w, name);
            snprintf(name, sizeof name, "features.%d.bias", i);
            const nst_weight *tb = nst_weights_find(w, name);
            if (!tw || !tb || tw->shape[1] != c || tw->shape[2] != L->kernel) return -1;
            int k = (int)tw->shape[0];
            m->wt[conv] = nst_ref_from_float(tw->data, tw->count);
            m->b[conv] = nst_ref_from_float(tb->data, tb->count);
            m->act[i] = nst_ref_alloc((size_t)k * h * v);
            if (!m->wt[conv] || !m->b[conv] || !m->act[i]) return -1;
            nst_ref_conv_forward(m->act[i], in, m->wt[conv], m->b[conv], c, h, v, k, L->kernel,
                                 0);
            c = k;
            conv++;
        } else if (L->kind == NST_LAYER_RELU) {
            m->act[i] = nst_ref_alloc((size_t)c * h * v);
            if (!m->act[i]) return -1;
            nst_ref_relu_forward(m->act[i], in, (size_t)c * h * v);
        } else {
            if (h / 2 < 1 || v / 2 < 1) return -1;
            m->act[i] = nst_ref_alloc((size_t)c * (h / 2) * (v / 2));
            if (!m->act[i]) return -1;
            nst_ref_pool_forward(m->act[i], in, c, h, v, !avg_pool);
            h /= 2;
            v /= 2;
        }
        m->c[i] = c;
        m->h[i] = h;
        m->w[i] = v;
        in = m->act[i];
    }
    return 0;
}

int nst_ref_vgg_backward(const nst_ref_vgg *m, int avg_pool, double *const *dtap, int H, int W,
                         double *dimg) {
    size_t maxn = (size_t)3 * H * W;
    for (int i = 0; i < m->nlayers; i++) {
        size_t n = (size_t)m->c[i] * m->h[i] * m->w[i];
        if (n > maxn) maxn = n;
    }
    double *g = nst_ref_alloc(maxn), *gin = nst_ref_alloc(maxn);
    if (!g || !gin) {
        free(g);
        free(gin);
        return -1;
    }
    int conv = 0;
    for (int i = 0; i < m->nlayers; i++) conv += m->net->layer[i].kind == NST_LAYER_CONV;
    for (int i = m->nlayers - 1; i >= 0; i--) {
        const nst_net_layer *L = &m->net->layer[i];
        size_t n = (size_t)m->c[i] * m->h[i] * m->w[i];
        if (dtap[i])
            for (size_t j = 0; j < n; j++) g[j] += dtap[i][j];
        int ic = i ? m->c[i - 1] : 3, ih = i ? m->h[i - 1] : H, iw = i ? m->w[i - 1] : W;
        const double *in = i ? m->act[i - 1] : m->xn;
        size_t nin = (size_t)ic * ih * iw;
        if (L->kind == NST_LAYER_CONV) {
            conv--;
            memset(gin, 0, nin * sizeof *gin);
            nst_ref_conv_backward_input(gin, g, m->wt[conv], ic, ih, iw, m->c[i], L->kernel);
        } else if (L->kind == NST_LAYER_RELU) {
            nst_ref_relu_backward(gin, m->act[i], g, n);
        } else {
            nst_ref_pool_backward(gin, in, g, ic, ih, iw, !avg_pool);
        }
        double *t = g;
        g = gin;
        gin = t;
    }
    nst_ref_normalize_backward(dimg, g, H, W, m->in);
    free(g);
    free(gin);
    return 0;
}

void nst_ref_vgg_free(nst_ref_vgg *m) {
    for (int i = 0; i < NST_NET_MAX_LAYERS; i++) free(m->act[i]);
    for (int i = 0; i < NST_NET_MAX_CONVS; i++) {
        free(m->wt[i]);
        free(m->b[i]);
    }
    free(m->xn);
    memset(m, 0, sizeof *m);
}
