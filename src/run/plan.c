/* plan.c: the memory plan of a run (nst_transfer_plan): the device bytes
 * each component needs, from the sizes, the layers and the optimiser, and
 * the decision that follows: the whole image, tiles, or the largest size
 * that fits. The objective gives its own figures (network, targets, loss
 * scratch, nst_objective_memory) and the optimiser its own
 * (nst_optim_memory_bytes), each from what it allocates, so
 * tests/test_plan.c can hold them to the runtime's measured peak. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "image.h"
#include "optim.h"
#include "plan.h"
#include "tiling.h"

#define HISTORY_SHARE 0.4 /* L-BFGS history may take this much of the budget */

typedef struct plan_ctx {
    const nst_objective *o;
    const nst_params *p;
    int depth;
    const nst_net *net;
    int stride[NST_NET_MAX_LAYERS];
    uint64_t weight_bytes;
    int halo, align;          /* the tiles' (nst_objective_halo) */
    int cw, ch;               /* the content as given */
    int nstyles;
    int sw[NST_MAX_STYLES], sh[NST_MAX_STYLES];
    uint64_t budget, reserve, max_alloc;
} plan_ctx;

/* Content and style sizes at `size` (the output's longest side). */
static void sizes_at(const plan_ctx *c, int size, int *w, int *h, int *sw, int *sh) {
    nst_image_fit_size(c->cw, c->ch, size, w, h);
    int longest = nst_style_longest(c->p, *w, *h);
    for (int k = 0; k < c->nstyles; k++) nst_image_fit_size(c->sw[k], c->sh[k], longest, &sw[k],
                                                            &sh[k]);
}

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* The figures at output size `size` with tile limit `tile` (0 = whole image)
 * and L-BFGS history `hist`. 0 when the tiling is impossible. */
static int figure(const plan_ctx *c, int size, int tile, int hist, nst_plan *o) {
    const nst_params *p = c->p;
    int w, h, sw[NST_MAX_STYLES], sh[NST_MAX_STYLES];
    sizes_at(c, size, &w, &h, sw, sh);
    uint64_t F = sizeof(float), px = (uint64_t)w * h;
    nst_objective_bytes m;
    if (!nst_objective_memory(c->o, w, h, sw, sh, c->nstyles, tile, &m)) return 0;
    o->width = w;
    o->height = h;
    o->style_width = o->style_height = 0;
    for (int k = 0; k < c->nstyles; k++)
        if ((uint64_t)sw[k] * sh[k] > (uint64_t)o->style_width * o->style_height) {
            o->style_width = sw[k];
            o->style_height = sh[k];
        }
    o->tiled = m.tiled;
    o->tile = m.tiled ? tile : 0;
    o->tile_w = m.tile_w;
    o->tile_h = m.tile_h;
    o->tiles_x = m.tiles_x;
    o->tiles_y = m.tiles_y;
    o->halo = m.tiled ? c->halo : 0;

    uint64_t vec = 3 * px * F; /* the image, its gradient, the average */
    nst_optim_params op;
    nst_optim_defaults(&op, p->optimizer == NST_OPTIMIZER_ADAM ? NST_OPTIM_ADAM : NST_OPTIM_LBFGS);
    op.history = hist;
    o->optimizer = nst_optim_memory_bytes(&op, (size_t)(3 * px));
    o->weights = c->weight_bytes;
    o->activations = m.network > c->weight_bytes ? m.network - c->weight_bytes : 0;
    o->content_targets = m.content_targets;
    o->style_targets = m.style_targets;
    o->loss_scratch = m.scratch;
    o->images = vec * (p->average_decay > 0 ? 3 : 2) + m.windows;
    o->targets_peak = m.targets_peak;
    o->eval_peak = o->weights + o->activations + o->content_targets + o->style_targets +
                   o->loss_scratch + o->images + o->optimizer;
    o->peak = max64(o->eval_peak, o->targets_peak);
    o->largest_alloc = max64(m.largest, vec);
    o->lbfgs_history = hist;
    return 1;
}

static int fits(const plan_ctx *c, const nst_plan *o) {
    return o->peak + c->reserve <= c->budget && o->largest_alloc <= c->max_alloc;
}

/* The L-BFGS history for output size `size`: the request, cut so that the
 * history stays within HISTORY_SHARE of the budget. */
static int history_at(const plan_ctx *c, int size) {
    int w, h, sw[NST_MAX_STYLES], sh[NST_MAX_STYLES];
    sizes_at(c, size, &w, &h, sw, sh);
    int hist = c->p->lbfgs_history;
    if (c->p->optimizer != NST_OPTIMIZER_LBFGS) return hist;
    double pair = 2.0 * 3 * w * h * sizeof(float);
    if (hist * pair > HISTORY_SHARE * c->budget) {
        hist = (int)floor(HISTORY_SHARE * c->budget / pair);
        if (hist < 1) hist = 1;
    }
    return hist;
}

/* The best plan at `size`: whole image, else the largest tiles that fit.
 * Returns 1 when it fits. */
static int best_at(const plan_ctx *c, int size, nst_plan *o) {
    const nst_params *p = c->p;
    int hist = history_at(c, size);
    if (p->tile > 0) return figure(c, size, p->tile, hist, o) && fits(c, o);
    if (figure(c, size, 0, hist, o) && fits(c, o)) return 1;
    if (p->tile < 0 || nst_objective_untileable(c->o)) return 0;
    /* the largest tile that fits: memory grows with the tile */
    int lo = nst_tiling_min_tile(c->halo, c->align);
    int hi = o->width > o->height ? o->width : o->height;
    nst_plan q = *o;
    int ok = figure(c, size, lo, hist, &q);
    if (!ok || !fits(c, &q)) {
        if (ok) *o = q; /* else keep the whole image's figures */
        return 0;
    }
    while (hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (figure(c, size, mid, hist, &q) && fits(c, &q)) lo = mid;
        else hi = mid;
    }
    figure(c, size, lo, hist, o);
    return 1;
}

static double mib(uint64_t b) { return b / 1048576.0; }

#define MAX_SIZE 65536 /* the largest size nst_params_check accepts */

/* The output size of the first (smallest) scale of a run at `size`, as
 * nst_transfer_run computes it. */
static int first_scale(const nst_params *p, int size) {
    return p->scales > 1 ? (int)lround(size / pow(2.0, 0.5 * (p->scales - 1))) : size;
}

/* The smallest side the layers accept: each pooling halves the image
 * (rounding down) and the deepest layer needs one position: 2^pools. */
static int min_side(const plan_ctx *c) { return c->stride[c->depth - 1]; }

/* The image that is too small for the layers at output size `size` (at its
 * first scale, the smallest): -1 the content, k style image k, -2 none; its
 * size then in *w x *h. Sizes only grow with `size`. */
static int too_small(const plan_ctx *c, int size, int *w, int *h) {
    int cw, ch, sw[NST_MAX_STYLES], sh[NST_MAX_STYLES], m = min_side(c);
    sizes_at(c, first_scale(c->p, size), &cw, &ch, sw, sh);
    *w = cw;
    *h = ch;
    if (cw < m || ch < m) return -1;
    for (int k = 0; k < c->nstyles; k++)
        if (sw[k] < m || sh[k] < m) {
            *w = sw[k];
            *h = sh[k];
            return k;
        }
    return -2;
}

/* The smallest size >= from at which no image is too small; 0: none. */
static int smallest_size(const plan_ctx *c, int from) {
    int w, h, lo = from, hi = MAX_SIZE;
    if (too_small(c, lo, &w, &h) == -2) return lo;
    if (too_small(c, hi, &w, &h) != -2) return 0;
    while (hi - lo > 1) { /* too small at lo, not at hi */
        int mid = lo + (hi - lo) / 2;
        if (too_small(c, mid, &w, &h) == -2) hi = mid;
        else lo = mid;
    }
    return hi;
}

/* Refuses a size at which an image is smaller than the layers accept,
 * naming the smallest size that works. */
static nst_status check_size(const plan_ctx *c, nst_msg *msg) {
    const nst_params *p = c->p;
    int w, h, k = too_small(c, p->size, &w, &h);
    if (k == -2) return NST_OK;
    int least = smallest_size(c, p->size), pools = 0;
    for (int s = min_side(c); s > 1; s /= 2) pools++;
    char what[32], scale[48] = "", fix[160];
    if (k < 0) snprintf(what, sizeof what, "the content image");
    else snprintf(what, sizeof what, "style image %d", k + 1);
    if (p->scales > 1)
        snprintf(scale, sizeof scale, ", whose first of %d scales is %d,", p->scales,
                 first_scale(p, p->size));
    if (least)
        snprintf(fix, sizeof fix, "the smallest --size that works is %d%s", least,
                 k >= 0 ? ", or raise --style-scale" : "");
    else
        snprintf(fix, sizeof fix, "no --size up to %d gives enough: crop %s to a less elongated "
                 "shape", MAX_SIZE, what);
    return nst_fail(msg, NST_ERR_INVALID_ARG,
                    "at --size %d%s %s is %dx%d, too small for layer %s: the %d poolings before "
                    "it need at least %d pixels a side; %s",
                    p->size, scale, what, w, h, nst_net_layer_name(c->net, c->depth - 1), pools,
                    min_side(c), fix);
}

/* Refuses a tile limit (p->tile > 0) that cuts an image into windows too
 * small for the layers' receptive field, or into too many tiles. */
static nst_status check_tile(const plan_ctx *c, nst_msg *msg) {
    int tile = c->p->tile, w, h, sw[NST_MAX_STYLES], sh[NST_MAX_STYLES];
    sizes_at(c, c->p->size, &w, &h, sw, sh);
    int longest = w > h ? w : h;
    for (int k = 0; k < c->nstyles; k++) {
        if (sw[k] > longest) longest = sw[k];
        if (sh[k] > longest) longest = sh[k];
    }
    if (tile >= longest) return NST_OK; /* no image is cut, at any scale */
    int least = nst_tiling_min_tile(c->halo, c->align);
    if (tile < least)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "tiles of %d pixels are too small for layer %s: a tile needs at least %d "
                        "(twice the %d-pixel halo of the layer's receptive field, plus %d, plus "
                        "up to %d to keep the pooling grid); give at least %d, or 0 to let the "
                        "plan choose",
                        tile, nst_net_layer_name(c->net, c->depth - 1), least, c->halo, c->align,
                        c->align - 1, least);
    nst_tiling tg;
    nst_status st = nst_tiling_make(h, w, tile, c->halo, c->align, &tg, msg);
    nst_tiling_free(&tg);
    for (int k = 0; k < c->nstyles && st == NST_OK; k++) {
        st = nst_tiling_make(sh[k], sw[k], tile, c->halo, c->align, &tg, msg);
        nst_tiling_free(&tg);
    }
    return st;
}

nst_status nst_plan_compute(nst_runtime *rt, const nst_params *p, const nst_objective *o,
                            const nst_weights *w, int content_w, int content_h,
                            const int *style_wh, int nstyles, nst_plan *out) {
    plan_ctx c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    if (nstyles < 1 || nstyles > NST_MAX_STYLES || content_w < 1 || content_h < 1)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "plan: %d style images, content %dx%d",
                        nstyles, content_w, content_h);
    c.o = o;
    c.p = p;
    const nst_vgg *vgg = nst_objective_network(o);
    c.net = nst_vgg_net(vgg);
    c.depth = nst_vgg_depth(vgg);
    nst_objective_halo(o, &c.halo, &c.align);
    /* the im2col figure: each convolution's weights, flipped copy and bias */
    for (int i = 0; i < c.depth; i++) {
        const nst_net_layer *L = &c.net->layer[i];
        int out = nst_vgg_channels(vgg, i), in = i ? nst_vgg_channels(vgg, i - 1) : 3;
        c.stride[i] = nst_net_stride(c.net, i);
        if (L->kind == NST_LAYER_CONV)
            c.weight_bytes +=
                (2 * (uint64_t)out * in * L->kernel * L->kernel + out) * sizeof(float);
    }
    c.cw = content_w;
    c.ch = content_h;
    c.nstyles = nstyles;
    for (int k = 0; k < nstyles; k++) {
        c.sw[k] = style_wh ? style_wh[2 * k] : content_w;
        c.sh[k] = style_wh ? style_wh[2 * k + 1] : content_h;
        if (c.sw[k] < 1 || c.sh[k] < 1)
            return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "plan: style image %d is %dx%d", k + 1,
                            c.sw[k], c.sh[k]);
    }
    const nst_device_info *d = &rt->info;
    uint64_t dev = d->global_mem - d->global_mem / 10;
    c.budget = p->max_memory ? (p->max_memory < d->global_mem ? p->max_memory : d->global_mem)
                             : dev;
    c.max_alloc = d->max_alloc;
    c.reserve = c.budget / 20 > (64u << 20) ? c.budget / 20 : (64u << 20);
    if (c.reserve > c.budget / 2) c.reserve = c.budget / 2;

    nst_status st = check_size(&c, RTM(rt));
    if (st == NST_OK && p->tile > 0) st = check_tile(&c, RTM(rt));
    if (st != NST_OK) return st;
    int ok = best_at(&c, p->size, out);
    out->budget = c.budget;
    out->reserve = c.reserve;
    out->device_global = d->global_mem;
    out->device_max_alloc = d->max_alloc;
    out->optimizer_kind = p->optimizer;
    out->history_reduced = p->optimizer == NST_OPTIMIZER_LBFGS &&
                           out->lbfgs_history < p->lbfgs_history;
    out->fits = ok;
    char opt[200] = "";
    if (out->history_reduced)
        snprintf(opt, sizeof opt, " L-BFGS history cut from %d to %d pairs (%.1f MiB) to stay "
                 "within %.0f%% of the budget%s.", p->lbfgs_history, out->lbfgs_history,
                 mib(out->optimizer), 100 * HISTORY_SHARE,
                 out->lbfgs_history < 5 ? "; that is short: --optimizer adam needs 3 vectors"
                                        : "");
    if (ok) {
        if (out->tiled)
            snprintf(out->note, sizeof out->note,
                     "the whole image needs more than %.0f MiB: evaluating in %d x %d tiles of "
                     "%dx%d pixels (halo %d).%s",
                     mib(c.budget - c.reserve), out->tiles_x, out->tiles_y, out->tile_w, out->tile_h,
                     out->halo, opt);
        else
            snprintf(out->note, sizeof out->note, "the whole image fits in %.0f MiB.%s",
                     mib(c.budget - c.reserve), opt);
        return NST_OK;
    }
    /* the largest size that fits */
    nst_plan q;
    int lo = smallest_size(&c, 16), hi = p->size; /* the smallest size the layers accept */
    if (!lo || lo >= hi || !best_at(&c, lo, &q)) lo = 0;
    while (lo && hi - lo > 1) {
        int mid = lo + (hi - lo) / 2;
        if (best_at(&c, mid, &q)) lo = mid;
        else hi = mid;
    }
    out->max_size = lo;
    const char *why = out->largest_alloc > c.max_alloc ? "its largest buffer" : "it";
    uint64_t need = out->largest_alloc > c.max_alloc ? out->largest_alloc : out->peak;
    uint64_t have = out->largest_alloc > c.max_alloc ? c.max_alloc : c.budget - c.reserve;
    char size_hint[96], off[96] = "";
    const char *untileable = nst_objective_untileable(o);
    if (untileable) snprintf(off, sizeof off, " (%s are not tiled)", untileable);
    else if (p->tile < 0) snprintf(off, sizeof off, " (tiling is off)");
    if (lo) snprintf(size_hint, sizeof size_hint, "the largest --size that fits is %d", lo);
    else snprintf(size_hint, sizeof size_hint, "no size fits");
    snprintf(out->note, sizeof out->note,
             "a %dx%d run does not fit: %s needs %.1f MiB of %.1f MiB%s%s; %s.%s", out->width,
             out->height, why, mib(need), mib(have), out->tiled ? " even in tiles" : "", off,
             size_hint, opt);
    return NST_OK;
}

nst_status nst_transfer_plan(nst_runtime *rt, nst_model *model, const nst_params *p,
                             int content_w, int content_h, const int *style_wh, int nstyles,
                             nst_plan *out) {
    nst_objective *o = NULL;
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!out) return nst_fail_null(RTM(rt), "nst_transfer_plan", "out");
    if (!model) return nst_fail_null(RTM(rt), "nst_transfer_plan", "model");
    nst_status st = nst_params_check(p, nstyles, NULL, RTM(rt));
    if (st != NST_OK) return st;
    st = nst_objective_create(rt, model->weights, p, p->masks ? nstyles : 0, &o);
    if (st == NST_OK)
        st = nst_plan_compute(rt, p, o, model->weights, content_w, content_h, style_wh, nstyles,
                              out);
    nst_objective_free(rt, o);
    return st;
}
