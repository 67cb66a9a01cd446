/* tiled.c: the tiled strategy of the objective: the loss and its gradient
 * in overlapping tiles, so the network's activations are those of one tile,
 * not of the whole image; and the tiling itself (tiling.h).
 *
 * Every loss term is a sum over feature positions (a Gram matrix is
 * F F^T / (C*M) = sum over positions of f f^T / (C*M)), and each position
 * of each tap is owned by exactly one tile (tiling.h), computed there
 * exactly because the window holds its whole receptive field. So, with the
 * terms' tile hooks (objective_int.h; terms.c for the Gram style term):
 *   pass 1 (terms with sums over the image): forward each tile; the style
 *           term adds G_l += F_own F_own^T / (C*M_l) over the tile's owned
 *           positions (F_own: the tap with the rest zeroed); after the last
 *           tile, E_l = G_l - A_l and the style value ||E_l||^2 / ||A_l||^2;
 *   pass 2: forward each tile again (in reverse order: the last one is still
 *           in the network from pass 1); the tap gradients at owned positions
 *           only, content 2 (F - P) / ||P||^2 and style 4 E_l F_own /
 *           (C*M_l*||A_l||^2); backward to the window; add the window's
 *           gradient into the image's.
 * Terms on the image (total variation) run on the whole image. The result
 * equals the whole-image evaluation up to rounding (tests/test_tiled.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "objective_int.h"

/* ---- geometry ------------------------------------------------------------- */

int nst_tiled_geometry(const nst_weights *w, int depth, int *halo, int *align) {
    /* the receptive field of the deepest layer, from the network's table */
    const nst_net *net = nst_weights_net(w);
    if (depth < 1 || depth > net->nlayers) return -1;
    nst_net_receptive(net, depth, halo, align);
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

/* ---- helpers for the terms' tile hooks ------------------------------------ */

nst_status nst_tile_rect(nst_runtime *rt, const nst_tensor *dst, const nst_tensor *src, int y0,
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

void nst_tile_owned(const nst_tile *tl, int s, int *y0, int *x0, int *rh, int *rw) {
    *y0 = tl->oy0 / s - tl->y / s;
    *x0 = tl->ox0 / s - tl->x / s;
    *rh = tl->oy1 / s - tl->oy0 / s;
    *rw = tl->ox1 / s - tl->ox0 / s;
}

/* Layer side of an image side at stride s (each pool floor-halves). */
static int layer_side(int side, int s) { return side / s; }

double nst_tiling_positions(const nst_tiling *tg, int s) {
    return (double)layer_side(tg->h, s) * layer_side(tg->w, s);
}

/* ---- the strategy --------------------------------------------------------- */

/* The strategy's buffers, for the current size. */
typedef struct tiles {
    nst_tiling tiling; /* of the content's size */
    int tile;          /* the limit: style images are tiled with it too */
    nst_tensor *tx;    /* one window of the image */
    nst_tensor *tgrad; /* and its gradient */
    cl_mem fm;         /* a tap masked to a tile's owned part */
} tiles;

nst_status nst_tile_mask_owned(nst_objective *o, const nst_tensor *f, const nst_tile *tl, int s,
                               nst_tensor *fm) {
    tiles *ts = o->strategy_state;
    nst_status st = NST_OK;
    int y0, x0, rh, rw;
    *fm = nst_tensor_view(ts->fm, f->c, f->h, f->w);
    nst_tile_owned(tl, s, &y0, &x0, &rh, &rw);
    NST_TRY(nst_fill_zero(o->rt, fm->buf, fm->count));
    NST_TRY(nst_tile_rect(o->rt, fm, f, y0, x0, rh, rw, 0, 0, 0));
fail:
    return st;
}

/* Crops the image window of tile tl from the whole image x into tx. */
static nst_status load_window(nst_runtime *rt, nst_tensor *tx, const nst_tensor *x,
                              const nst_tile *tl) {
    return nst_tile_rect(rt, tx, x, 0, 0, tx->h, tx->w, tl->y, tl->x, 0);
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

/* Style image img through the network in its own tiles (of the strategy's
 * limit), tile by tile, for the terms' style targets. */
static nst_status style_tiles(nst_objective *o, int k, const nst_tensor *img, double blend,
                              void *ctx) {
    nst_runtime *rt = o->rt;
    tiles *ts = o->strategy_state;
    nst_status st = NST_OK;
    nst_tensor *tx = NULL;
    nst_tiling tg;
    (void)k;
    (void)ctx;
    NST_TRY(nst_tiling_make(img->h, img->w, ts->tile, ts->tiling.halo, ts->tiling.align, &tg,
                            RTM(rt)));
    NST_TRY(ensure(rt, &ts->fm, nst_objective_largest_tap(o, tg.th, tg.tw)));
    NST_TRY(nst_tensor_create(rt, 1, 3, tg.th, tg.tw, &tx));
    NST_TRY(nst_vgg_resize(rt, o->net, tg.th, tg.tw));
    for (int j = 0; j < tg.ny * tg.nx; j++) {
        const nst_tile *tl = &tg.tiles[j];
        NST_TRY(load_window(rt, tx, img, tl));
        NST_TRY(nst_vgg_forward(rt, o->net, tx));
        NST_FOR_TERMS(o, t)
            if (t->ops->tile_style_targets)
                NST_TRY(t->ops->tile_style_targets(t, o, &tg, tl, blend));
    }
fail:
    nst_tiling_free(&tg);
    nst_tensor_free(rt, tx);
    return st;
}

static nst_status tiled_targets(nst_objective *o, nst_tiling *tg, int tile,
                                const nst_image *content, const nst_image *const *styles,
                                int nstyles, const double *blend, const nst_image *const *masks) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    nst_tensor *img = NULL;
    const char *why = nst_objective_untileable(o);
    if (why)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "%s cannot be evaluated in tiles yet; use a smaller --size or a larger "
                        "--max-memory", why);
    tiles *ts = calloc(1, sizeof *ts);
    if (!ts) return nst_fail(RTM(rt), NST_ERR_NOMEM, "tiles");
    o->strategy_state = ts;
    ts->tiling = *tg;
    memset(tg, 0, sizeof *tg);
    ts->tile = tile;
    const nst_tiling *tc = &ts->tiling;

    /* the content, window by window */
    NST_TRY(nst_objective_upload(rt, content, &img));
    NST_TRY(nst_tensor_create(rt, 1, 3, tc->th, tc->tw, &ts->tx));
    NST_TRY(nst_vgg_resize(rt, o->net, tc->th, tc->tw));
    NST_TRY(ensure(rt, &ts->fm, nst_objective_largest_tap(o, tc->th, tc->tw)));
    for (int k = 0; k < tc->ny * tc->nx; k++) {
        const nst_tile *tl = &tc->tiles[k];
        NST_TRY(load_window(rt, ts->tx, img, tl));
        NST_TRY(nst_vgg_forward(rt, o->net, ts->tx));
        NST_FOR_TERMS(o, t)
            if (t->ops->tile_content_targets)
                NST_TRY(t->ops->tile_content_targets(t, o, tc, tl));
    }
    nst_tensor_free(rt, img);
    img = NULL;

    /* each style image in its own tiles */
    NST_TRY(nst_objective_each_style(o, content, styles, nstyles, blend, style_tiles, NULL));

    /* back to the content's window */
    NST_TRY(nst_vgg_resize(rt, o->net, tc->th, tc->tw));
    NST_FOR_TERMS(o, t)
        if (t->ops->tile_finish_targets) NST_TRY(t->ops->tile_finish_targets(t, o, tc));
    NST_TRY(nst_tensor_create(rt, 1, 3, tc->th, tc->tw, &ts->tgrad));
fail:
    nst_tensor_free(rt, img);
    return st;
}

static nst_status tiled_evaluate(nst_objective *o, const nst_tensor *x, nst_tensor *grad) {
    nst_runtime *rt = o->rt;
    tiles *ts = o->strategy_state;
    nst_status st = NST_OK;
    const nst_tiling *tg = &ts->tiling;
    int n = tg->ny * tg->nx, sums = 0;
    for (int i = 0; i < o->nterms; i++) sums |= o->terms[i].ops->tile_sums != NULL;
    NST_TRY(nst_fill_zero(rt, o->values, (size_t)o->nslots));
    NST_TRY(nst_tensor_fill(rt, grad, 0.0f));
    if (sums) { /* pass 1 */
        NST_FOR_TERMS(o, t)
            if (t->ops->tile_sums_begin) NST_TRY(t->ops->tile_sums_begin(t, o));
        for (int k = 0; k < n; k++) {
            NST_TRY(load_window(rt, ts->tx, x, &tg->tiles[k]));
            NST_TRY(nst_vgg_forward(rt, o->net, ts->tx));
            NST_FOR_TERMS(o, t)
                if (t->ops->tile_sums) NST_TRY(t->ops->tile_sums(t, o, tg, &tg->tiles[k]));
        }
        NST_FOR_TERMS(o, t)
            if (t->ops->tile_sums_end) NST_TRY(t->ops->tile_sums_end(t, o));
    }
    for (int k = n - 1; k >= 0; k--) { /* pass 2, the last tile of pass 1 first */
        const nst_tile *tl = &tg->tiles[k];
        if (!(sums && k == n - 1)) {
            NST_TRY(load_window(rt, ts->tx, x, tl));
            NST_TRY(nst_vgg_forward(rt, o->net, ts->tx));
        }
        NST_TRY(nst_vgg_zero_grad(rt, o->net));
        NST_FOR_TERMS(o, t)
            if (t->ops->tile_evaluate) NST_TRY(t->ops->tile_evaluate(t, o, tg, tl));
        NST_TRY(nst_vgg_backward(rt, o->net, ts->tgrad));
        NST_TRY(nst_tile_rect(rt, grad, ts->tgrad, tl->y, tl->x, tg->th, tg->tw, -tl->y, -tl->x,
                              1));
    }
fail:
    return st;
}

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* What tiled_targets and the evaluation hold: the network at the window,
 * the window and its gradient, the masked-tap scratch, the targets, the
 * slots and the terms' scratch; while the targets are computed, the network
 * at each image's window with that image and its window. */
static int tiled_memory(const nst_objective *o, const nst_memory_query *q,
                        nst_objective_bytes *m) {
    const uint64_t F = sizeof(float);
    const nst_tiling *tg = q->tiling;
    uint64_t px = (uint64_t)q->w * q->h, values = (uint64_t)o->nslots * F;
    uint64_t win = (uint64_t)3 * tg->th * tg->tw * F;
    nst_term_sizes s = {q->h, q->w, tg->th, tg->tw, 1};
    nst_term_memory tm;
    nst_objective_bytes_start(o, &s, tg->nx, tg->ny, m, &tm);
    m->windows = 2 * win;
    uint64_t fm = nst_objective_largest_tap(o, tg->th, tg->tw);
    uint64_t tp = m->network + 3 * px * F + win + fm * F + tm.content_targets + values;
    uint64_t largest = max64(max64(nst_vgg_largest_bytes(o->net, tg->th, tg->tw), 3 * px * F),
                             tm.largest);
    for (int k = 0; k < q->nstyles; k++) {
        nst_tiling sg;
        if (nst_tiling_make(q->sh[k], q->sw[k], q->tile, o->halo, o->align, &sg, NULL) != NST_OK)
            return 0;
        uint64_t spx = (uint64_t)q->sw[k] * q->sh[k];
        fm = max64(fm, nst_objective_largest_tap(o, sg.th, sg.tw));
        tp = max64(tp, nst_objective_net_bytes(o, sg.th, sg.tw) + 3 * spx * F +
                           (uint64_t)3 * sg.th * sg.tw * F + fm * F + tm.content_targets +
                           tm.style_targets + values);
        largest = max64(largest, max64(nst_vgg_largest_bytes(o->net, sg.th, sg.tw), 3 * spx * F));
        nst_tiling_free(&sg);
    }
    m->targets_peak = tp;
    m->scratch = values + fm * F + tm.scratch;
    m->largest = largest;
    return 1;
}

static void tiled_release(nst_objective *o) {
    tiles *ts = o->strategy_state;
    if (!ts) return;
    nst_tensor_free(o->rt, ts->tx);
    nst_tensor_free(o->rt, ts->tgrad);
    nst_buffer_free(o->rt, ts->fm);
    nst_tiling_free(&ts->tiling);
    free(ts);
    o->strategy_state = NULL;
}

static int tiled_tiles(const nst_objective *o) {
    const tiles *ts = o->strategy_state;
    return ts ? ts->tiling.ny * ts->tiling.nx : 1;
}

const nst_strategy nst_tiled_strategy = {tiled_targets, tiled_evaluate, tiled_memory, tiled_tiles,
                                         tiled_release};
