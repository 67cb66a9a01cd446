/* fwdnet.c: a network table run forward on the device (see fwdnet.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fwdnet.h"
#include "layers.h"
#include "winograd.h"

typedef struct fw_layer {
    nst_layer_kind kind;
    int r, reflect, relu, ceil_mode; /* CONV: kernel, reflected borders, fused ReLU */
    int cin, cout;
    int wino;      /* 3x3 CONV: Winograd tile size (2 or 4) on the padded image, 0: im2col */
    nst_tensor *w, *b, *u; /* weights, bias, Winograd-transformed weights */
} fw_layer;

struct nst_fwdnet {
    const nst_net *net;
    int n; /* layers kept (PAD rows and fused ReLUs folded away) */
    fw_layer l[NST_NET_MAX_LAYERS];
    size_t weight_bytes;
};

void nst_fwdnet_free(nst_runtime *rt, nst_fwdnet *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) {
        nst_tensor_free(rt, f->l[i].w);
        nst_tensor_free(rt, f->l[i].b);
        nst_tensor_free(rt, f->l[i].u);
    }
    free(f);
}

nst_status nst_fwdnet_create(nst_runtime *rt, const nst_net *net, int depth, const nst_weights *w,
                             nst_fwdnet **out) {
    nst_status st = NST_OK;
    nst_net_shape shape;
    const char *pre = net->prefix ? net->prefix : "features.";
    nst_fwdnet *f = NULL;
    *out = NULL;
    if (depth <= 0 || depth > net->nlayers) depth = net->nlayers;
    NST_TRY(nst_net_match(net, w, depth, &shape, RTM(rt)));
    f = calloc(1, sizeof *f);
    if (!f) return nst_fail(RTM(rt), NST_ERR_NOMEM, "out of host memory for %s", net->title);
    f->net = net;
    for (int i = 0; i < depth; i++) {
        const nst_net_layer *L = &net->layer[i];
        if (L->kind == NST_LAYER_PAD) {
            if (i + 1 >= depth || net->layer[i + 1].kind != NST_LAYER_CONV ||
                net->layer[i + 1].pad != 0 || net->layer[i + 1].kernel != 2 * L->pad + 1) {
                st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                              "%s: reflection padding %s is not followed by a convolution it "
                              "pads (only that is supported)", net->title, L->name);
                goto fail;
            }
            continue;
        }
        fw_layer *l = &f->l[f->n];
        l->kind = L->kind;
        l->cin = shape.cin[i];
        l->cout = shape.cout[i];
        if (L->kind == NST_LAYER_CONV) {
            char name[64];
            l->r = L->kernel;
            l->reflect = i > 0 && net->layer[i - 1].kind == NST_LAYER_PAD;
            if (!l->reflect && L->pad != (L->kernel - 1) / 2) {
                st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                              "%s: %s pads by %d, which is not a same-size convolution",
                              net->title, L->name, L->pad);
                goto fail;
            }
            l->relu = i + 1 < depth && net->layer[i + 1].kind == NST_LAYER_RELU;
            snprintf(name, sizeof name, "%s%d.weight", pre, i);
            const nst_weight *tw = nst_weights_find(w, name);
            snprintf(name, sizeof name, "%s%d.bias", pre, i);
            const nst_weight *tb = nst_weights_find(w, name);
            NST_TRY(nst_tensor_create(rt, l->cout, l->cin, l->r, l->r, &l->w));
            NST_TRY(nst_tensor_create(rt, 1, 1, 1, l->cout, &l->b));
            NST_TRY(nst_tensor_upload(rt, l->w, tw->data));
            NST_TRY(nst_tensor_upload(rt, l->b, tb->data));
            f->weight_bytes += (l->w->count + l->b->count) * sizeof(float);
            int mode = nst_winograd_mode(rt);
            l->wino = l->r == 3 && mode > 0 ? mode : 0;
            if (l->wino) {
                int a = l->wino + 2;
                NST_TRY(nst_tensor_create(rt, a * a, l->cout, l->cin, 1, &l->u));
                NST_TRY(nst_winograd_filter(rt, l->wino, l->u, l->w));
                f->weight_bytes += l->u->count * sizeof(float);
            }
            f->n++;
            if (l->relu) i++; /* fused */
            continue;
        }
        l->ceil_mode = L->kind == NST_LAYER_POOL && L->ceil_mode;
        f->n++;
    }
    *out = f;
    return NST_OK;
fail:
    nst_fwdnet_free(rt, f);
    return st;
}

int nst_fwdnet_in_channels(const nst_fwdnet *f) { return f->n ? f->l[0].cin : 0; }

size_t nst_fwdnet_weight_bytes(const nst_fwdnet *f) { return f->weight_bytes; }

int nst_fwdnet_shape(const nst_fwdnet *f, int h, int w, int *c, int *oh, int *ow) {
    int ch = f->n ? f->l[0].cin : 0;
    for (int i = 0; i < f->n; i++) {
        const fw_layer *l = &f->l[i];
        switch (l->kind) {
        case NST_LAYER_CONV:
            if (l->reflect && (h <= (l->r - 1) / 2 || w <= (l->r - 1) / 2)) return -1;
            ch = l->cout;
            break;
        case NST_LAYER_POOL:
            if (l->ceil_mode) {
                h = (h + 1) / 2;
                w = (w + 1) / 2;
            } else {
                if (h < 2 || w < 2) return -1;
                h /= 2;
                w /= 2;
            }
            break;
        case NST_LAYER_UPSAMPLE:
            h *= 2;
            w *= 2;
            break;
        default:
            break;
        }
        if (h < 1 || w < 1) return -1;
    }
    *c = ch;
    *oh = h;
    *ow = w;
    return 0;
}

nst_status nst_fwdnet_forward(nst_runtime *rt, nst_fwdnet *f, const nst_tensor *x,
                              nst_tensor **y) {
    nst_status st = NST_OK;
    cl_mem scratch = NULL;
    nst_tensor *cur = NULL, *next = NULL, *xp = NULL, *yp = NULL;
    const nst_tensor *in = x;
    int c, oh, ow;
    *y = NULL;
    if (x->n != 1 || x->c != nst_fwdnet_in_channels(f) ||
        nst_fwdnet_shape(f, x->h, x->w, &c, &oh, &ow))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "%s: input [%d,%d,%d,%d] does not fit (it takes %d channels, and each "
                        "side at least 2 pixels at every layer)",
                        f->net->title, x->n, x->c, x->h, x->w, nst_fwdnet_in_channels(f));
    /* the largest im2col scratch of any convolution at its size */
    size_t cap = nst_conv2d_scratch_cap(rt), sfl = 0;
    {
        int h = x->h, w = x->w;
        for (int i = 0; i < f->n; i++) {
            const fw_layer *l = &f->l[i];
            if (l->kind == NST_LAYER_CONV) {
                int p = l->reflect ? (l->r - 1) / 2 : 0;
                size_t s = l->wino ? nst_winograd_scratch_floats(l->wino, l->cin, l->cout,
                                                                 h + 2 * p, w + 2 * p, cap)
                                   : nst_conv2d_scratch_floats(l->cin, l->r, h, w, cap);
                if (s > sfl) sfl = s;
            } else if (l->kind == NST_LAYER_POOL) {
                h = l->ceil_mode ? (h + 1) / 2 : h / 2;
                w = l->ceil_mode ? (w + 1) / 2 : w / 2;
            } else if (l->kind == NST_LAYER_UPSAMPLE) {
                h *= 2;
                w *= 2;
            }
        }
    }
    if (sfl) NST_TRY(nst_buffer_create(rt, sfl * sizeof(float), &scratch));
    for (int i = 0; i < f->n; i++) {
        const fw_layer *l = &f->l[i];
        switch (l->kind) {
        case NST_LAYER_CONV:
            NST_TRY(nst_tensor_create(rt, 1, l->cout, in->h, in->w, &next));
            if (l->wino) { /* pad, convolve the padded image, keep its interior */
                int p = l->reflect ? (l->r - 1) / 2 : 0;
                NST_TRY(nst_tensor_create(rt, 1, in->c, in->h + 2 * p, in->w + 2 * p, &xp));
                NST_TRY(nst_tensor_create(rt, 1, l->cout, in->h + 2 * p, in->w + 2 * p, &yp));
                if (p) NST_TRY(nst_pad_reflect_forward(rt, xp, in, p));
                else NST_TRY(nst_tensor_copy(rt, xp, in));
                NST_TRY(nst_winograd_forward(rt, l->wino, yp, xp, l->u, l->b, l->relu, scratch,
                                             sfl));
                NST_TRY(nst_crop_forward(rt, next, yp, p));
                nst_tensor_free(rt, xp);
                nst_tensor_free(rt, yp);
                xp = yp = NULL;
            } else if (l->reflect)
                NST_TRY(nst_conv2d_forward_reflect(rt, next, in, l->w, l->b, l->relu, scratch,
                                                   sfl));
            else
                NST_TRY(nst_conv2d_forward(rt, next, in, l->w, l->b, l->relu, scratch, sfl));
            break;
        case NST_LAYER_RELU:
            NST_TRY(nst_tensor_create(rt, 1, in->c, in->h, in->w, &next));
            NST_TRY(nst_relu_forward(rt, next, in));
            break;
        case NST_LAYER_POOL:
            if (l->ceil_mode) {
                NST_TRY(nst_tensor_create(rt, 1, in->c, (in->h + 1) / 2, (in->w + 1) / 2, &next));
                NST_TRY(nst_pool_max_ceil_forward(rt, next, in));
            } else {
                NST_TRY(nst_tensor_create(rt, 1, in->c, in->h / 2, in->w / 2, &next));
                NST_TRY(nst_pool_forward(rt, next, in, 1));
            }
            break;
        case NST_LAYER_UPSAMPLE:
            NST_TRY(nst_tensor_create(rt, 1, in->c, 2 * in->h, 2 * in->w, &next));
            NST_TRY(nst_upsample_forward(rt, next, in));
            break;
        default:
            st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: layer kind %d is not supported",
                          f->net->title, (int)l->kind);
            goto fail;
        }
        nst_tensor_free(rt, cur);
        cur = next;
        next = NULL;
        in = cur;
    }
    if (!cur) { /* no layer: a copy of the input */
        NST_TRY(nst_tensor_create(rt, 1, x->c, x->h, x->w, &cur));
        NST_TRY(nst_tensor_copy(rt, cur, x));
    }
    *y = cur;
    cur = NULL;
fail:
    nst_tensor_free(rt, xp);
    nst_tensor_free(rt, yp);
    nst_tensor_free(rt, next);
    nst_tensor_free(rt, cur);
    if (scratch) nst_buffer_free(rt, scratch);
    return st;
}
