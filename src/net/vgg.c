/* vgg.c: the VGG graph on the device (see vgg.h), built from a network's
 * table (net.h) and the channel widths of its weights. Forward fuses each
 * conv's bias and ReLU unless the conv itself is a tap; backward walks the
 * layers down with two ping-pong gradient buffers, adding each tap's
 * gradient where its layer is reached. Stored per layer: the outputs the
 * backward needs (post-ReLU activations for the ReLU mask and as pooling
 * inputs, pooled maps as the next conv's input) and the tapped outputs.
 * 3x3 convolutions run as Winograd F(4x4,3x3) by default (settings.conv, see
 * vgg.h), keeping only the transformed weights, which serve both passes;
 * other kernel sizes, or NST_CONV_IM2COL, keep the plain and flipped weights
 * for im2col + GEMM. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "layers.h"
#include "vgg.h"
#include "winograd.h"

enum { CONV = NST_LAYER_CONV, RELU = NST_LAYER_RELU, POOL = NST_LAYER_POOL };

typedef struct vgg_layer {
    int kind;     /* the table's */
    int cin, cout;
    int r;        /* kernel size for CONV */
    int tapped;
    int wino;               /* CONV: Winograd tile size (2 or 4), 0 for im2col */
    nst_tensor *w, *wf, *b; /* CONV (im2col): weights, flipped weights; bias */
    nst_tensor *u;          /* CONV (Winograd): transformed weights */
    nst_tensor *out;        /* output; NULL for a conv fused with its ReLU */
    nst_tensor *grad;       /* tap gradient when tapped */
    int oh, ow;             /* output size at the current image size */
} vgg_layer;

struct nst_vgg {
    const nst_net *net;
    int nlayers;
    int avg_pool;
    int wino; /* Winograd tile size for 3x3 convs, 0: im2col */
    float mean[3], std[3]; /* the weights' input convention */
    int bgr;
    vgg_layer l[NST_NET_MAX_LAYERS];
    size_t weight_bytes;
    size_t scratch_cap; /* floats */
    int h, w;           /* 0 until resized */
    nst_tensor *xn;     /* normalised image */
    cl_mem g[2];        /* gradient ping-pong buffers */
    size_t g_floats;
    cl_mem scratch;
    size_t scratch_floats;
};

/* ---- names -------------------------------------------------------------- */

int nst_vgg_layer_index(const char *name) {
    return nst_net_index(nst_net_get(NST_NETWORK_VGG19), name);
}

const char *nst_vgg_layer_name(int index) {
    return nst_net_layer_name(nst_net_get(NST_NETWORK_VGG19), index);
}

/* ---- create ------------------------------------------------------------- */

static nst_status unknown_tap(nst_runtime *rt, const nst_net *net, const char *name) {
    char list[512];
    nst_net_list(net, list, sizeof list);
    return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "unknown layer '%s'; valid layers of %s are %s",
                    name ? name : "(null)", net->title, list);
}

/* The tensor "features.i.<part>", present after nst_net_match. */
static const nst_weight *tensor(const nst_weights *w, int i, const char *part) {
    char name[64];
    snprintf(name, sizeof name, "features.%d.%s", i, part);
    return nst_weights_find(w, name);
}

static nst_status upload_conv(nst_runtime *rt, nst_vgg *m, vgg_layer *L, const nst_weight *tw,
                              const nst_weight *tb) {
    nst_status st = NST_OK;
    NST_TRY(nst_tensor_create(rt, L->cout, L->cin, L->r, L->r, &L->w));
    NST_TRY(nst_tensor_create(rt, 1, L->cout, 1, 1, &L->b));
    NST_TRY(nst_tensor_upload(rt, L->w, tw->data));
    NST_TRY(nst_tensor_upload(rt, L->b, tb->data));
    L->wino = L->r == 3 ? m->wino : 0;
    if (L->wino) { /* the plain weights are only needed for the transform */
        int a = L->wino + 2;
        NST_TRY(nst_tensor_create(rt, a * a, L->cout, L->cin, 1, &L->u));
        NST_TRY(nst_winograd_filter(rt, L->wino, L->u, L->w));
        nst_tensor_free(rt, L->w);
        L->w = NULL;
        m->weight_bytes += (L->u->count + L->b->count) * sizeof(float);
    } else {
        NST_TRY(nst_tensor_create(rt, L->cin, L->cout, L->r, L->r, &L->wf));
        NST_TRY(nst_conv2d_flip(rt, L->wf, L->w));
        m->weight_bytes += (2 * L->w->count + L->b->count) * sizeof(float);
    }
fail:
    return st;
}

nst_status nst_vgg_create(nst_runtime *rt, const nst_weights *w, const char *const *taps,
                          int ntaps, int avg_pool, nst_vgg **out) {
    nst_status st = NST_OK;
    if (!taps || ntaps < 1)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "the network needs at least one layer to tap");
    nst_vgg *m = calloc(1, sizeof *m);
    if (!m) return nst_fail(RTM(rt), NST_ERR_NOMEM, "VGG model");
    m->net = nst_weights_net(w);
    m->avg_pool = avg_pool != 0;
    m->scratch_cap = nst_conv2d_scratch_cap(rt);
    m->wino = nst_winograd_mode(rt); /* the runtime's settings were checked when opened */
    const nst_input_norm *in = nst_input_get(w->input);
    if (!in) {
        st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "the weights' input convention %d is unknown",
                      w->input);
        goto fail;
    }
    for (int c = 0; c < 3; c++) {
        m->mean[c] = (float)in->mean[c];
        m->std[c] = (float)in->std[c];
    }
    m->bgr = in->bgr;
    for (int t = 0; t < ntaps; t++) {
        int i = nst_net_index(m->net, taps[t]);
        if (i < 0) {
            st = unknown_tap(rt, m->net, taps[t]);
            goto fail;
        }
        m->l[i].tapped = 1;
        if (i + 1 > m->nlayers) m->nlayers = i + 1;
    }
    nst_net_shape shape;
    NST_TRY(nst_net_match(m->net, w, m->nlayers, &shape, RTM(rt)));
    for (int i = 0; i < m->nlayers; i++) {
        vgg_layer *L = &m->l[i];
        L->kind = m->net->layer[i].kind;
        L->cin = shape.cin[i];
        L->cout = shape.cout[i];
        if (L->kind != CONV) continue;
        L->r = m->net->layer[i].kernel;
        NST_TRY(upload_conv(rt, m, L, tensor(w, i, "weight"), tensor(w, i, "bias")));
    }
    *out = m;
    return NST_OK;
fail:
    nst_vgg_free(rt, m);
    return st;
}

/* ---- sizes -------------------------------------------------------------- */

/* Output sizes of every layer for an h x w image; -1 when too small. */
static int plan_sizes(const nst_vgg *m, int h, int w, int *hs, int *ws) {
    if (h < 1 || w < 1) return -1;
    for (int i = 0; i < m->nlayers; i++) {
        if (m->l[i].kind == POOL) {
            h /= 2;
            w /= 2;
            if (h < 1 || w < 1) return -1;
        }
        hs[i] = h;
        ws[i] = w;
    }
    return 0;
}

/* A conv's output is kept when tapped or when it is the last layer; a ReLU or
 * pool output always is (the ReLU mask, the next layer's input). */
static int keeps_output(const nst_vgg *m, int i) {
    return m->l[i].kind != CONV || m->l[i].tapped || i == m->nlayers - 1;
}

typedef struct plan {
    size_t act_floats, grad_floats, g_floats, scratch_floats;
} plan;

static void plan_memory(const nst_vgg *m, const int *hs, const int *ws, int h, int w, plan *p) {
    memset(p, 0, sizeof *p);
    size_t img = (size_t)3 * h * w;
    p->act_floats = img;
    p->g_floats = img;
    int ph = h, pw = w;
    for (int i = 0; i < m->nlayers; i++) {
        const vgg_layer *L = &m->l[i];
        size_t n = (size_t)L->cout * hs[i] * ws[i];
        if (keeps_output(m, i)) p->act_floats += n;
        if (L->tapped) p->grad_floats += n;
        if (n > p->g_floats) p->g_floats = n;
        if (L->kind == CONV && L->wino) { /* V and M, the same in both directions */
            size_t f = nst_winograd_scratch_floats(L->wino, L->cin, L->cout, ph, pw,
                                                   m->scratch_cap);
            if (f > p->scratch_floats) p->scratch_floats = f;
        } else if (L->kind == CONV) {
            size_t f = nst_conv2d_scratch_floats(L->cin, L->r, ph, pw, m->scratch_cap);
            size_t b = nst_conv2d_scratch_floats(L->cout, L->r, ph, pw, m->scratch_cap);
            if (f > p->scratch_floats) p->scratch_floats = f;
            if (b > p->scratch_floats) p->scratch_floats = b;
        }
        ph = hs[i];
        pw = ws[i];
    }
}

size_t nst_vgg_memory_bytes(const nst_vgg *m, int h, int w) {
    int hs[NST_NET_MAX_LAYERS], ws[NST_NET_MAX_LAYERS];
    if (plan_sizes(m, h, w, hs, ws)) return 0;
    plan p;
    plan_memory(m, hs, ws, h, w, &p);
    return m->weight_bytes +
           (p.act_floats + p.grad_floats + 2 * p.g_floats + p.scratch_floats) * sizeof(float);
}

size_t nst_vgg_largest_bytes(const nst_vgg *m, int h, int w) {
    int hs[NST_VGG_LAYERS], ws[NST_VGG_LAYERS];
    if (plan_sizes(m, h, w, hs, ws)) return (size_t)3 * h * w * sizeof(float);
    plan p;
    plan_memory(m, hs, ws, h, w, &p);
    return p.g_floats * sizeof(float);
}

int nst_vgg_tap_shape(const nst_vgg *m, const char *name, int *channels, int *stride) {
    int i = nst_vgg_layer_index(name), s = 1;
    if (i < 0 || i >= m->nlayers) return -1;
    for (int k = 0; k <= i; k++)
        if (m->l[k].kind == POOL) s *= 2;
    *channels = m->l[i].cout;
    *stride = s;
    return 0;
}

double nst_vgg_flops(const nst_vgg *m) {
    double f = 0;
    for (int i = 0; i < m->nlayers; i++) {
        const vgg_layer *L = &m->l[i];
        if (L->kind == CONV) /* forward and input gradient: 2 * 2 * K*C*R*R*H*W each */
            f += 4.0 * L->cout * L->cin * L->r * L->r * (double)L->oh * L->ow;
    }
    return f;
}

int nst_vgg_depth(const nst_vgg *m) { return m->nlayers; }

const nst_net *nst_vgg_net(const nst_vgg *m) { return m->net; }

int nst_vgg_layer(const nst_vgg *m, const char *name) { return nst_net_index(m->net, name); }

int nst_vgg_channels(const nst_vgg *m, int i) {
    return i >= 0 && i < m->nlayers ? m->l[i].cout : 0;
}

int nst_vgg_winograd(const nst_vgg *m) { return m->wino; }

void nst_vgg_set_scratch_cap(nst_vgg *m, size_t bytes) {
    m->scratch_cap = bytes / sizeof(float);
}

static void release_activations(nst_runtime *rt, nst_vgg *m) {
    for (int i = 0; i < m->nlayers; i++) {
        nst_tensor_free(rt, m->l[i].out);
        nst_tensor_free(rt, m->l[i].grad);
        m->l[i].out = m->l[i].grad = NULL;
    }
    nst_tensor_free(rt, m->xn);
    nst_buffer_free(rt, m->g[0]);
    nst_buffer_free(rt, m->g[1]);
    nst_buffer_free(rt, m->scratch);
    m->xn = NULL;
    m->g[0] = m->g[1] = m->scratch = NULL;
    m->h = m->w = 0;
}

nst_status nst_vgg_resize(nst_runtime *rt, nst_vgg *m, int h, int w) {
    nst_status st = NST_OK;
    int hs[NST_NET_MAX_LAYERS], ws[NST_NET_MAX_LAYERS];
    if (plan_sizes(m, h, w, hs, ws)) {
        int need = nst_net_stride(m->net, m->nlayers - 1);
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "a %dx%d image is too small for layer %s: it needs at least %dx%d "
                        "pixels",
                        w, h, m->net->layer[m->nlayers - 1].name, need, need);
    }
    release_activations(rt, m);
    plan p;
    plan_memory(m, hs, ws, h, w, &p);
    NST_TRY(nst_tensor_create(rt, 1, 3, h, w, &m->xn));
    for (int i = 0; i < m->nlayers; i++) {
        vgg_layer *L = &m->l[i];
        L->oh = hs[i];
        L->ow = ws[i];
        if (keeps_output(m, i)) NST_TRY(nst_tensor_create(rt, 1, L->cout, L->oh, L->ow, &L->out));
        if (L->tapped) NST_TRY(nst_tensor_create(rt, 1, L->cout, L->oh, L->ow, &L->grad));
    }
    m->g_floats = p.g_floats;
    NST_TRY(nst_buffer_create(rt, p.g_floats * sizeof(float), &m->g[0]));
    NST_TRY(nst_buffer_create(rt, p.g_floats * sizeof(float), &m->g[1]));
    m->scratch_floats = p.scratch_floats;
    NST_TRY(nst_buffer_create(rt, p.scratch_floats * sizeof(float), &m->scratch));
    m->h = h;
    m->w = w;
    NST_TRY(nst_vgg_zero_grad(rt, m));
    return NST_OK;
fail:
    release_activations(rt, m);
    return st;
}

/* ---- forward and backward ------------------------------------------------ */

/* The input of layer i (always kept: see keeps_output). */
static const nst_tensor *input_of(const nst_vgg *m, int i) {
    return i ? m->l[i - 1].out : m->xn;
}

static nst_status check_image(nst_runtime *rt, const nst_vgg *m, const nst_tensor *t,
                              const char *what) {
    if (!m->h)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "the VGG model has no image size yet; call nst_vgg_resize first");
    if (t->n != 1 || t->c != 3 || t->h != m->h || t->w != m->w)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "%s has shape [%d,%d,%d,%d]; the model is sized for [1,3,%d,%d]", what,
                        t->n, t->c, t->h, t->w, m->h, m->w);
    return NST_OK;
}

nst_status nst_vgg_forward(nst_runtime *rt, nst_vgg *m, const nst_tensor *image) {
    nst_status st = NST_OK;
    NST_TRY(check_image(rt, m, image, "the image"));
    NST_TRY(nst_normalize_forward(rt, m->xn, image, m->mean, m->std, m->bgr));
    for (int i = 0; i < m->nlayers; i++) {
        vgg_layer *L = &m->l[i];
        const nst_tensor *in = input_of(m, i);
        switch (L->kind) {
        case CONV: {
            /* kept before the ReLU, or fused with the ReLU that follows */
            nst_tensor *y = L->out ? L->out : m->l[i + 1].out;
            int relu = L->out == NULL;
            if (L->wino)
                NST_TRY(nst_winograd_forward(rt, L->wino, y, in, L->u, L->b, relu, m->scratch,
                                             m->scratch_floats));
            else
                NST_TRY(nst_conv2d_forward(rt, y, in, L->w, L->b, relu, m->scratch,
                                           m->scratch_floats));
            break;
        }
        case RELU:
            if (m->l[i - 1].out) NST_TRY(nst_relu_forward(rt, L->out, in));
            break;
        default:
            NST_TRY(nst_pool_forward(rt, L->out, in, !m->avg_pool));
        }
    }
fail:
    return st;
}

static vgg_layer *find_tap(const nst_vgg *m, const char *name) {
    int i = nst_net_index(m->net, name);
    if (i < 0 || i >= m->nlayers || !m->l[i].tapped) return NULL;
    return (vgg_layer *)&m->l[i];
}

const nst_tensor *nst_vgg_tap(const nst_vgg *m, const char *name) {
    vgg_layer *L = find_tap(m, name);
    return L ? L->out : NULL;
}

const nst_tensor *nst_vgg_output(const nst_vgg *m, int i) {
    return i >= 0 && i < m->nlayers ? m->l[i].out : NULL;
}

nst_tensor *nst_vgg_tap_grad(nst_vgg *m, const char *name) {
    vgg_layer *L = find_tap(m, name);
    return L ? L->grad : NULL;
}

nst_status nst_vgg_zero_grad(nst_runtime *rt, nst_vgg *m) {
    nst_status st = NST_OK;
    for (int i = 0; i < m->nlayers; i++)
        if (m->l[i].grad) NST_TRY(nst_tensor_fill(rt, m->l[i].grad, 0.0f));
fail:
    return st;
}

nst_status nst_vgg_backward(nst_runtime *rt, nst_vgg *m, nst_tensor *dimage) {
    nst_status st = NST_OK;
    NST_TRY(check_image(rt, m, dimage, "the image gradient"));
    int cur = 0;
    const nst_tensor *relu_out = NULL; /* a ReLU's backward pass left to the convolution */
    for (int i = m->nlayers - 1; i >= 0; i--) {
        vgg_layer *L = &m->l[i];
        nst_tensor g = nst_tensor_view(m->g[cur], L->cout, L->oh, L->ow);
        if (L->tapped) {
            if (i == m->nlayers - 1)
                NST_TRY(nst_tensor_copy(rt, &g, L->grad));
            else
                NST_TRY(nst_axpy(rt, g.count, 1.0f, L->grad->buf, 0, g.buf, 0));
        }
        if (L->kind == RELU) { /* in place; the mask is the ReLU's output */
            const vgg_layer *below = i > 0 ? &m->l[i - 1] : NULL;
            if (below && below->kind == CONV && below->wino && !below->tapped)
                relu_out = L->out; /* the Winograd input transform applies it */
            else
                NST_TRY(nst_relu_backward(rt, &g, L->out, &g));
            continue;
        }
        const nst_tensor *in = input_of(m, i); /* kept: a ReLU's or pool's output */
        nst_tensor gin = nst_tensor_view(m->g[1 - cur], L->cin, in->h, in->w);
        if (L->kind == CONV && L->wino)
            NST_TRY(nst_winograd_backward_input(rt, L->wino, &gin, &g, relu_out, L->u, 0,
                                                m->scratch, m->scratch_floats));
        else if (L->kind == CONV)
            NST_TRY(nst_conv2d_backward_input(rt, &gin, &g, L->wf, 0, m->scratch,
                                              m->scratch_floats));
        else
            NST_TRY(nst_pool_backward(rt, &gin, in, &g, !m->avg_pool));
        relu_out = NULL;
        cur = 1 - cur;
    }
    nst_tensor g = nst_tensor_view(m->g[cur], 3, m->h, m->w);
    NST_TRY(nst_normalize_backward(rt, dimage, &g, m->std, m->bgr));
fail:
    return st;
}

void nst_vgg_free(nst_runtime *rt, nst_vgg *m) {
    if (!m) return;
    release_activations(rt, m);
    for (int i = 0; i < NST_NET_MAX_LAYERS; i++) {
        nst_tensor_free(rt, m->l[i].w);
        nst_tensor_free(rt, m->l[i].wf);
        nst_tensor_free(rt, m->l[i].b);
        nst_tensor_free(rt, m->l[i].u);
    }
    free(m);
}
