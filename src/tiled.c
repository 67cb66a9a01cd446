/* tiled.c: evaluating the loss and its gradient in overlapping tiles, so the
 * VGG activations are those of one tile, not of the whole image.
 *
 * Every loss term is a sum over feature positions (a Gram matrix is
 * F F^T / (C*M) = sum over positions of f f^T / (C*M)), and each position
 * of each tap is owned by exactly one tile (transfer_int.h), computed there
 * exactly because the window holds its whole receptive field. So:
 *   pass 1: forward each tile; G_l += F_own F_own^T / (C*M_l) over the
 *           tile's owned positions (F_own: the tap with the rest zeroed);
 *           after the last tile, E_l = G_l - A_l and the style value
 *           ||E_l||^2 / ||A_l||^2;
 *   pass 2: forward each tile again (in reverse order: the first one is still
 *           in the network from pass 1); the tap gradients at owned positions
 *           only, content 2 (F - P) / ||P||^2 and style 4 E_l F_own /
 *           (C*M_l*||A_l||^2); backward to the window; add the window's
 *           gradient into the image's.
 * Total variation runs on the whole image (it is image-sized). The result
 * equals the untiled evaluation up to rounding (tests/test_tiled.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "loss.h"
#include "transfer_int.h"

/* ---- geometry ------------------------------------------------------------- */

int nst_tiled_geometry(const nst_weights *w, int depth, int *halo, int *align) {
    /* The image pixels [lo, hi] that position 0 of the deepest layer depends
     * on, walking down from it. */
    long lo = 0, hi = 0, s = 1;
    for (int i = depth - 1; i >= 0; i--) {
        const char *name = nst_vgg_layer_name(i);
        if (name[0] == 'c') {
            char key[64];
            snprintf(key, sizeof key, "features.%d.weight", i);
            const nst_weight *t = nst_weights_find(w, key);
            if (!t || t->rank != 4) return -1;
            lo -= t->shape[2] / 2;
            hi += t->shape[2] / 2;
        } else if (name[0] == 'p') {
            lo = 2 * lo;
            hi = 2 * hi + 1;
            s *= 2;
        }
    }
    long a = -lo, b = hi - (s - 1);
    long h = a > b ? a : b;
    *align = (int)s;
    *halo = (int)((h + s - 1) / s * s);
    return 0;
}

/* One dimension: windows of *tw (== len when len <= tile, else the largest
 * size <= tile congruent to len mod align, so the last window ends on the
 * image's edge with the same pooling grid) and owned spans; the count, -1
 * for more than max, -2 when the window is too small to make progress. */
static int tile_1d(int len, int tile, int halo, int align, int *tw, int *start, int *o0, int *o1,
                   int max) {
    if (tile >= len) {
        *tw = len;
        start[0] = o0[0] = 0;
        o1[0] = len;
        return 1;
    }
    int r = ((tile - len) % align + align) % align; /* tw == len (mod align) */
    int w = tile - r;
    if (w < 2 * halo + align) return -2; /* no progress past the first tile */
    *tw = w;
    int n = 0, x0 = 0;
    for (;;) {
        if (n == max) return -1;
        int s = x0 == 0 ? 0 : x0 - halo;
        if (s + w >= len) {
            start[n] = len - w;
            o0[n] = x0;
            o1[n++] = len;
            return n;
        }
        int x1 = (s + w - halo) / align * align;
        start[n] = s;
        o0[n] = x0;
        o1[n++] = x1;
        x0 = x1;
    }
}

int nst_tiling_min_tile(int halo, int align) { return 2 * halo + 2 * align - 1; }

nst_status nst_tiling_make(int h, int w, int tile, int halo, int align, nst_tiling *out,
                           nst_msg *msg) {
    memset(out, 0, sizeof *out);
    enum { MAXT = 4096 };
    /* the spans of each dimension, the call's own (tilings may be made on
     * several threads) */
    int *spans = malloc(6 * MAXT * sizeof *spans);
    if (!spans) return nst_fail(msg, NST_ERR_NOMEM, "tiles");
    int *ys = spans, *y0 = ys + MAXT, *y1 = y0 + MAXT;
    int *xs = y1 + MAXT, *x0 = xs + MAXT, *x1 = x0 + MAXT;
    int ny = tile_1d(h, tile, halo, align, &out->th, ys, y0, y1, MAXT);
    int nx = tile_1d(w, tile, halo, align, &out->tw, xs, x0, x1, MAXT);
    nst_status st = NST_OK;
    if (ny == -2 || nx == -2)
        st = nst_fail(msg, NST_ERR_INVALID_ARG,
                      "tiles of %d pixels are too small for these layers: a tile needs at "
                      "least %d (twice the %d-pixel halo of the deepest layer's receptive "
                      "field, plus %d, plus up to %d to keep the pooling grid)",
                      tile, nst_tiling_min_tile(halo, align), halo, align, align - 1);
    else if (ny < 0 || nx < 0)
        st = nst_fail(msg, NST_ERR_INVALID_ARG, "tiles of %d pixels cut a %dx%d image into "
                      "too many tiles; use larger tiles", tile, w, h);
    else if (!(out->tiles = calloc((size_t)ny * nx, sizeof *out->tiles)))
        st = nst_fail(msg, NST_ERR_NOMEM, "tiles");
    if (st != NST_OK) {
        free(spans);
        return st;
    }
    out->h = h;
    out->w = w;
    out->halo = halo;
    out->align = align;
    out->ny = ny;
    out->nx = nx;
    for (int i = 0; i < ny; i++)
        for (int j = 0; j < nx; j++) {
            nst_tile *t = &out->tiles[i * nx + j];
            t->y = ys[i];
            t->x = xs[j];
            t->oy0 = y0[i];
            t->oy1 = y1[i];
            t->ox0 = x0[j];
            t->ox1 = x1[j];
        }
    free(spans);
    return NST_OK;
}

void nst_tiling_free(nst_tiling *t) {
    free(t->tiles);
    memset(t, 0, sizeof *t);
}

/* ---- device helpers ------------------------------------------------------- */

/* dst[c, y0.., x0..] (+)= src[c, y+oy, x+ox] over an rh x rw rectangle. */
static nst_status rect(nst_runtime *rt, const nst_tensor *dst, const nst_tensor *src, int y0,
                       int x0, int rh, int rw, int oy, int ox, int acc) {
    if (rh <= 0 || rw <= 0) return NST_OK;
    size_t global[3] = {(size_t)rw, (size_t)rh, (size_t)dst->c};
    int C = dst->c, dh = dst->h, dw = dst->w, sh = src->h, sw = src->w;
    return nst_launch(rt, "tiled", "tiled_rect", 3, global, NULL, 14, sizeof(int), &C,
                      sizeof(int), &dh, sizeof(int), &dw, sizeof(int), &sh, sizeof(int), &sw,
                      sizeof(int), &y0, sizeof(int), &x0, sizeof(int), &rh, sizeof(int), &rw,
                      sizeof(int), &oy, sizeof(int), &ox, sizeof(int), &acc, sizeof(cl_mem),
                      &src->buf, sizeof(cl_mem), &dst->buf);
}

static nst_status zero(nst_runtime *rt, cl_mem buf, size_t floats) {
    nst_status st = NST_OK;
    float z = 0;
    NST_CL(RTM(rt), clEnqueueFillBuffer(rt->queue, buf, &z, sizeof z, 0, floats * sizeof(float),
                                        0, NULL, NULL));
fail:
    return st;
}

/* The owned rectangle of tile `tl` at a layer of stride s, in the tile's
 * coordinates at that layer: rows [*y0, *y0 + *rh), columns likewise. */
static void owned(const nst_tile *tl, int s, int *y0, int *x0, int *rh, int *rw) {
    *y0 = tl->oy0 / s - tl->y / s;
    *x0 = tl->ox0 / s - tl->x / s;
    *rh = tl->oy1 / s - tl->oy0 / s;
    *rw = tl->ox1 / s - tl->ox0 / s;
}

/* Stride of a tap: window side over tap side (windows are multiples of the
 * alignment, or the whole image whose layers floor-halve). */
static int stride_of(const char *name) {
    int i = nst_vgg_layer_index(name), s = 1;
    for (int k = 0; k <= i; k++)
        if (nst_vgg_layer_name(k)[0] == 'p') s *= 2;
    return s;
}

/* fm <- the tap f with everything but tile tl's owned positions zeroed. */
static nst_status mask_owned(nst_transfer *t, const nst_tensor *f, const nst_tile *tl, int s,
                             nst_tensor *fm) {
    nst_status st = NST_OK;
    int y0, x0, rh, rw;
    *fm = nst_tensor_view(t->tile_fm, f->c, f->h, f->w);
    owned(tl, s, &y0, &x0, &rh, &rw);
    NST_TRY(zero(t->rt, fm->buf, fm->count));
    NST_TRY(rect(t->rt, fm, f, y0, x0, rh, rw, 0, 0, 0));
fail:
    return st;
}

/* Crops the image window of tile tl from the whole image x into t->tx. */
static nst_status load_window(nst_transfer *t, nst_tensor *tx, const nst_tensor *x,
                              const nst_tile *tl) {
    return rect(t->rt, tx, x, 0, 0, tx->h, tx->w, tl->y, tl->x, 0);
}

/* Layer size of an image side (each pool floor-halves). */
static int layer_side(int side, int s) { return side / s; }

/* ---- targets -------------------------------------------------------------- */

static nst_status upload(nst_runtime *rt, const nst_image *img, nst_tensor **out) {
    nst_status st = nst_tensor_create(rt, 1, 3, img->h, img->w, out);
    if (st == NST_OK) st = nst_tensor_upload(rt, *out, img->data);
    return st;
}

/* Accumulates scale * the Grams of an image (tiled like tg) into g[l]. */
static nst_status style_grams(nst_transfer *t, const nst_tensor *img, const nst_tiling *tg,
                              float b) {
    nst_runtime *rt = t->rt;
    nst_status st = NST_OK;
    nst_tensor *tx = NULL;
    NST_TRY(nst_tensor_create(rt, 1, 3, tg->th, tg->tw, &tx));
    NST_TRY(nst_vgg_resize(rt, t->vgg, tg->th, tg->tw));
    for (int k = 0; k < tg->ny * tg->nx; k++) {
        const nst_tile *tl = &tg->tiles[k];
        NST_TRY(load_window(t, tx, img, tl));
        NST_TRY(nst_vgg_forward(rt, t->vgg, tx));
        for (int l = 0; l < t->style.n; l++) {
            const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[l]);
            int s = stride_of(t->style.name[l]);
            double m_all = (double)layer_side(tg->h, s) * layer_side(tg->w, s);
            nst_tensor fm;
            if (!t->grams[l][0]) {
                size_t cc = (size_t)f->c * f->c;
                NST_TRY(nst_buffer_create(rt, cc * sizeof(float), &t->grams[l][0]));
                NST_TRY(zero(rt, t->grams[l][0], cc));
            }
            NST_TRY(mask_owned(t, f, tl, s, &fm));
            NST_TRY(nst_gram_accumulate(rt, t->grams[l][0], &fm,
                                        (float)(b * (double)f->h * f->w / m_all)));
        }
    }
fail:
    nst_tensor_free(rt, tx);
    return st;
}

/* Floats of the largest tap (content taps only: content_only) at a th x tw
 * window; the channel counts come from the network's taps. */
static size_t tap_floats(nst_transfer *t, int th, int tw, int content_only) {
    size_t m = 1;
    for (int i = 0; i < t->content.n + (content_only ? 0 : t->style.n); i++) {
        const char *name = i < t->content.n ? t->content.name[i] : t->style.name[i - t->content.n];
        int s = stride_of(name);
        size_t n = (size_t)nst_vgg_tap(t->vgg, name)->c * layer_side(th, s) * layer_side(tw, s);
        if (n > m) m = n;
    }
    return m;
}

/* Makes *buf hold at least `floats` floats (contents not kept). */
static nst_status ensure(nst_runtime *rt, cl_mem *buf, size_t floats) {
    size_t have = 0;
    if (*buf && clGetMemObjectInfo(*buf, CL_MEM_SIZE, sizeof have, &have, NULL) == CL_SUCCESS &&
        have >= floats * sizeof(float))
        return NST_OK;
    nst_buffer_free(rt, *buf);
    *buf = NULL;
    return nst_buffer_create(rt, floats * sizeof(float), buf);
}

nst_status nst_tiled_targets(nst_transfer *t, const nst_image *content,
                             const nst_image *const *styles, int nstyles, const double *blend) {
    nst_runtime *rt = t->rt;
    nst_status st = NST_OK;
    nst_tensor *img = NULL;
    nst_image *sized = NULL;
    nst_tiling ts;
    memset(&ts, 0, sizeof ts);
    const nst_tiling *tc = &t->tiling;
    if (t->nregions)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "regions (--mask) cannot be evaluated in tiles yet; use a smaller "
                        "--size or a larger --max-memory");

    NST_TRY(upload(rt, content, &img));
    NST_TRY(nst_tensor_create(rt, 1, 3, tc->th, tc->tw, &t->tx));
    NST_TRY(nst_vgg_resize(rt, t->vgg, tc->th, tc->tw));
    NST_TRY(ensure(rt, &t->tile_fm, tap_floats(t, tc->th, tc->tw, 0)));

    /* content targets, whole-image sized, filled tile by tile */
    for (int i = 0; i < t->content.n; i++) {
        const nst_tensor *f = nst_vgg_tap(t->vgg, t->content.name[i]);
        int s = stride_of(t->content.name[i]);
        NST_TRY(nst_tensor_create(rt, 1, f->c, layer_side(tc->h, s), layer_side(tc->w, s),
                                  &t->targets[i]));
    }
    for (int k = 0; k < tc->ny * tc->nx; k++) {
        const nst_tile *tl = &tc->tiles[k];
        NST_TRY(load_window(t, t->tx, img, tl));
        NST_TRY(nst_vgg_forward(rt, t->vgg, t->tx));
        for (int i = 0; i < t->content.n; i++) {
            const nst_tensor *f = nst_vgg_tap(t->vgg, t->content.name[i]);
            int s = stride_of(t->content.name[i]), y0, x0, rh, rw;
            owned(tl, s, &y0, &x0, &rh, &rw);
            NST_TRY(rect(rt, t->targets[i], f, tl->oy0 / s, tl->ox0 / s, rh, rw, y0 - tl->oy0 / s,
                         x0 - tl->ox0 / s, 0));
        }
    }
    for (int i = 0; i < t->content.n; i++) {
        NST_TRY(nst_sum_squares(rt, t->targets[i]->buf, t->targets[i]->count, t->values, 0));
        NST_TRY(nst_read_floats(rt, t->values, 0, 1, &t->target_norm2[i]));
        if (!(t->target_norm2[i] > 0)) t->target_norm2[i] = 1;
    }
    nst_tensor_free(rt, img);
    img = NULL;

    /* style Grams, blended, each style image in its own tiles */
    for (int k = 0; k < nstyles; k++) {
        int longest = (int)(0.5 + (content->w > content->h ? content->w : content->h) *
                                      t->p->style_scale);
        int w, h;
        if (longest < 16) longest = 16;
        nst_image_fit_size(styles[k]->w, styles[k]->h, longest, &w, &h);
        NST_TRY(nst_image_resize(styles[k], w, h, &sized, RTM(rt)));
        NST_TRY(upload(rt, sized, &img));
        NST_TRY(nst_tiling_make(h, w, t->tile, tc->halo, tc->align, &ts, RTM(rt)));
        NST_TRY(ensure(rt, &t->tile_fm, tap_floats(t, ts.th, ts.tw, 0)));
        NST_TRY(style_grams(t, img, &ts, (float)(blend ? blend[k] : 1.0 / nstyles)));
        nst_tiling_free(&ts);
        nst_tensor_free(rt, img);
        img = NULL;
        nst_image_free(sized);
        sized = NULL;
    }

    /* back to the content's window: norms and the evaluation's buffers */
    NST_TRY(nst_vgg_resize(rt, t->vgg, tc->th, tc->tw));
    for (int l = 0; l < t->style.n; l++) {
        const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[l]);
        size_t cc = (size_t)f->c * f->c;
        NST_TRY(nst_sum_squares(rt, t->grams[l][0], cc, t->values, 0));
        NST_TRY(nst_read_floats(rt, t->values, 0, 1, &t->gram_norm2[l][0]));
        if (!(t->gram_norm2[l][0] > 0)) t->gram_norm2[l][0] = 1;
        NST_TRY(nst_buffer_create(rt, cc * sizeof(float), &t->gsum[l]));
    }
    NST_TRY(nst_buffer_create(rt, tap_floats(t, tc->th, tc->tw, 1) * sizeof(float), &t->tile_p));
    NST_TRY(nst_tensor_create(rt, 1, 3, tc->th, tc->tw, &t->tgrad));
    NST_TRY(nst_buffer_create(rt, (size_t)(t->content.n + 1) * sizeof(float), &t->tile_values));
fail:
    nst_tiling_free(&ts);
    nst_tensor_free(rt, img);
    nst_image_free(sized);
    return st;
}

/* ---- evaluation ----------------------------------------------------------- */

/* Pass 1 for one tile whose forward has run: Gram sums over owned positions. */
static nst_status gram_tile(nst_transfer *t, const nst_tile *tl) {
    nst_status st = NST_OK;
    for (int l = 0; l < t->style.n; l++) {
        const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[l]);
        int s = stride_of(t->style.name[l]);
        double m_all = (double)layer_side(t->tiling.h, s) * layer_side(t->tiling.w, s);
        nst_tensor fm;
        NST_TRY(mask_owned(t, f, tl, s, &fm));
        NST_TRY(nst_gram_accumulate(t->rt, t->gsum[l], &fm, (float)(f->h * (double)f->w / m_all)));
    }
fail:
    return st;
}

/* Pass 2 for one tile whose forward has run: tap gradients, then backward. */
static nst_status grad_tile(nst_transfer *t, const nst_tile *tl) {
    nst_runtime *rt = t->rt;
    const nst_params *p = t->p;
    nst_status st = NST_OK;
    NST_TRY(nst_vgg_zero_grad(rt, t->vgg));
    for (int i = 0; i < t->content.n; i++) {
        const char *name = t->content.name[i];
        const nst_tensor *f = nst_vgg_tap(t->vgg, name);
        int s = stride_of(name), y0, x0, rh, rw;
        nst_tensor fm, pc = nst_tensor_view(t->tile_p, f->c, f->h, f->w);
        owned(tl, s, &y0, &x0, &rh, &rw);
        NST_TRY(mask_owned(t, f, tl, s, &fm));
        NST_TRY(zero(rt, pc.buf, pc.count));
        NST_TRY(rect(rt, &pc, t->targets[i], y0, x0, rh, rw, tl->y / s, tl->x / s, 0));
        NST_TRY(nst_content_loss(rt, &fm, &pc, t->target_norm2[i], (float)p->content_weight,
                                 nst_vgg_tap_grad(t->vgg, name), t->tile_values, (size_t)i));
        NST_TRY(nst_axpy(rt, 1, 1.0f, t->tile_values, (size_t)i, t->values, (size_t)i));
    }
    for (int l = 0; l < t->style.n; l++) {
        const char *name = t->style.name[l];
        const nst_tensor *f = nst_vgg_tap(t->vgg, name);
        nst_tensor *df = nst_vgg_tap_grad(t->vgg, name);
        int s = stride_of(name);
        size_t c = (size_t)f->c, m = (size_t)f->h * f->w;
        double m_all = (double)layer_side(t->tiling.h, s) * layer_side(t->tiling.w, s);
        double alpha = 4.0 * t->style_w[l] / ((double)c * m_all * t->gram_norm2[l][0]);
        nst_tensor fm;
        NST_TRY(mask_owned(t, f, tl, s, &fm));
        NST_TRY(nst_gemm(rt, 0, 0, c, m, c, (float)alpha, t->gsum[l], 0, c, fm.buf, 0, m, 1.0f,
                         df->buf, 0, m));
    }
    NST_TRY(nst_vgg_backward(rt, t->vgg, t->tgrad));
fail:
    return st;
}

nst_status nst_tiled_evaluate(nst_transfer *t, const nst_tensor *x, nst_tensor *grad) {
    nst_runtime *rt = t->rt;
    nst_status st = NST_OK;
    const nst_tiling *tg = &t->tiling;
    int n = tg->ny * tg->nx;
    NST_TRY(zero(rt, t->values, (size_t)t->nslots));
    NST_TRY(nst_tensor_fill(rt, grad, 0.0f));
    if (t->style.n) { /* pass 1 */
        for (int l = 0; l < t->style.n; l++) {
            const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[l]);
            NST_TRY(zero(rt, t->gsum[l], (size_t)f->c * f->c));
        }
        for (int k = 0; k < n; k++) {
            NST_TRY(load_window(t, t->tx, x, &tg->tiles[k]));
            NST_TRY(nst_vgg_forward(rt, t->vgg, t->tx));
            NST_TRY(gram_tile(t, &tg->tiles[k]));
        }
        for (int l = 0; l < t->style.n; l++) {
            const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[l]);
            size_t cc = (size_t)f->c * f->c;
            NST_TRY(nst_axpy(rt, cc, -1.0f, t->grams[l][0], 0, t->gsum[l], 0));
            NST_TRY(nst_sum_squares(rt, t->gsum[l], cc, t->values,
                                    (size_t)(t->content.n + l)));
        }
    }
    for (int k = n - 1; k >= 0; k--) { /* pass 2, the last tile of pass 1 first */
        const nst_tile *tl = &tg->tiles[k];
        if (!(t->style.n && k == n - 1)) {
            NST_TRY(load_window(t, t->tx, x, tl));
            NST_TRY(nst_vgg_forward(rt, t->vgg, t->tx));
        }
        NST_TRY(grad_tile(t, tl));
        NST_TRY(rect(rt, grad, t->tgrad, tl->y, tl->x, tg->th, tg->tw, -tl->y, -tl->x, 1));
    }
fail:
    return st;
}
