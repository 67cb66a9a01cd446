/* terms.c: the loss terms of the objective (objective_int.h), each with its
 * targets, its value and gradient on the whole image and in tiles, and its
 * memory figure. The device kernels behind them are in loss.c.
 *
 *   content  a * sum_l ||F_l - P_l||^2 / ||P_l||^2       (content layers)
 *   style    sum_l b w_l sum_r ||G_r(F_l) - A_lr||^2 / ||A_lr||^2
 *            (style layers; regions r with masks, else one blended A_l;
 *            the Gram style loss: term_w2.c and term_hist.c hold the others)
 *   tv       g * total variation of the image
 *
 * In tiles a term sees one window's features at a time; it works on the
 * positions the tile owns (nst_tile_mask_owned), so sums over tiles equal
 * sums over the image (tiled.c). */
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "loss.h"
#include "objective_int.h"

static const uint64_t F = sizeof(float);

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

/* ---- content -------------------------------------------------------------- */

typedef struct content_term {
    nst_layer_list layers;
    double weight;
    nst_tensor *target[NST_MAX_LAYERS]; /* P, at the whole image's size */
    float norm2[NST_MAX_LAYERS];        /* ||P||^2 */
    cl_mem crop;                        /* tiles: P cropped to a window */
    cl_mem tile_values;                 /* tiles: the values of one tile */
} content_term;

static void content_reweigh(nst_term *t, nst_objective *o) {
    ((content_term *)t->state)->weight = o->p->content_weight;
}

static nst_status content_setup(nst_term *t, nst_objective *o) {
    content_term *c = t->state;
    nst_status st = NST_OK;
    NST_TRY(nst_layers_parse(o->p->content_layers, "content layers", &c->layers, RTM(o->rt)));
    content_reweigh(t, o);
    for (int i = 0; i < c->layers.n; i++) NST_TRY(nst_objective_add_tap(o, c->layers.name[i]));
    t->nslots = c->layers.n;
fail:
    return st;
}

static nst_status content_targets(nst_term *t, nst_objective *o) {
    content_term *c = t->state;
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    for (int i = 0; i < c->layers.n; i++) {
        const nst_tensor *f = nst_vgg_tap(o->net, c->layers.name[i]);
        NST_TRY(nst_tensor_create(rt, f->n, f->c, f->h, f->w, &c->target[i]));
        NST_TRY(nst_tensor_copy(rt, c->target[i], f));
        NST_TRY(nst_objective_norm2(o, f->buf, f->count, &c->norm2[i]));
    }
fail:
    return st;
}

static nst_status content_evaluate(nst_term *t, nst_objective *o) {
    content_term *c = t->state;
    nst_status st = NST_OK;
    for (int i = 0; i < c->layers.n; i++) {
        const char *name = c->layers.name[i];
        NST_TRY(nst_content_loss(o->rt, nst_vgg_tap(o->net, name), c->target[i], c->norm2[i],
                                 (float)c->weight, nst_vgg_tap_grad(o->net, name), o->values,
                                 (size_t)(t->slot + i)));
    }
fail:
    return st;
}

/* The owned part of each tap goes into the whole-image target. */
static nst_status content_tile_targets(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                       const nst_tile *tl) {
    content_term *c = t->state;
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    for (int i = 0; i < c->layers.n; i++) {
        const nst_tensor *f = nst_vgg_tap(o->net, c->layers.name[i]);
        int ch, s, y0, x0, rh, rw;
        nst_objective_tap_shape(o, c->layers.name[i], &ch, &s);
        if (!c->target[i])
            NST_TRY(nst_tensor_create(rt, 1, ch, tg->h / s, tg->w / s, &c->target[i]));
        nst_tile_owned(tl, s, &y0, &x0, &rh, &rw);
        NST_TRY(nst_tile_rect(rt, c->target[i], f, tl->oy0 / s, tl->ox0 / s, rh, rw,
                              y0 - tl->oy0 / s, x0 - tl->ox0 / s, 0));
    }
fail:
    return st;
}

/* Floats of the largest content tap at a th x tw window. */
static size_t content_crop_floats(const content_term *c, const nst_objective *o, int th, int tw) {
    size_t m = 1;
    for (int i = 0; i < c->layers.n; i++) {
        int ch = 0, s = 1;
        nst_objective_tap_shape(o, c->layers.name[i], &ch, &s);
        size_t n = (size_t)ch * (th / s) * (tw / s);
        if (n > m) m = n;
    }
    return m;
}

static nst_status content_tile_finish(nst_term *t, nst_objective *o, const nst_tiling *tg) {
    content_term *c = t->state;
    nst_status st = NST_OK;
    for (int i = 0; i < c->layers.n; i++)
        NST_TRY(nst_objective_norm2(o, c->target[i]->buf, c->target[i]->count, &c->norm2[i]));
    NST_TRY(nst_buffer_create(o->rt, content_crop_floats(c, o, tg->th, tg->tw) * sizeof(float),
                              &c->crop));
    NST_TRY(nst_buffer_create(o->rt, (size_t)c->layers.n * sizeof(float), &c->tile_values));
fail:
    return st;
}

nst_status nst_tile_map_loss(nst_objective *o, const nst_tensor *f, int s, const nst_tile *tl,
                             const nst_tensor *target, float norm2, float weight, nst_tensor *df,
                             cl_mem crop, cl_mem tile_values, size_t tv_slot, size_t slot) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    int y0, x0, rh, rw;
    nst_tensor fm, pc = nst_tensor_view(crop, f->c, f->h, f->w);
    nst_tile_owned(tl, s, &y0, &x0, &rh, &rw);
    NST_TRY(nst_tile_mask_owned(o, f, tl, s, &fm));
    NST_TRY(nst_fill_zero(rt, pc.buf, pc.count));
    NST_TRY(nst_tile_rect(rt, &pc, target, y0, x0, rh, rw, tl->y / s, tl->x / s, 0));
    NST_TRY(nst_content_loss(rt, &fm, &pc, norm2, weight, df, tile_values, tv_slot));
    NST_TRY(nst_axpy(rt, 1, 1.0f, tile_values, tv_slot, o->values, slot));
fail:
    return st;
}

/* The loss of the owned positions against the target cropped to the window
 * (zero elsewhere, so only owned positions count). */
static nst_status content_tile_evaluate(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                        const nst_tile *tl) {
    content_term *c = t->state;
    nst_status st = NST_OK;
    (void)tg;
    for (int i = 0; i < c->layers.n; i++) {
        const char *name = c->layers.name[i];
        int ch, s;
        nst_objective_tap_shape(o, name, &ch, &s);
        NST_TRY(nst_tile_map_loss(o, nst_vgg_tap(o->net, name), s, tl, c->target[i], c->norm2[i],
                                  (float)c->weight, nst_vgg_tap_grad(o->net, name), c->crop,
                                  c->tile_values, (size_t)i, (size_t)(t->slot + i)));
    }
fail:
    return st;
}

static double content_value(const nst_term *t, const float *slots) {
    const content_term *c = t->state;
    double v = 0;
    for (int i = 0; i < c->layers.n; i++) v += c->weight * slots[i];
    return v;
}

static void content_memory(const nst_term *t, const nst_objective *o, const nst_term_sizes *s,
                           nst_term_memory *m) {
    const content_term *c = t->state;
    for (int i = 0; i < c->layers.n; i++) {
        int ch = 0, st = 1;
        nst_objective_tap_shape(o, c->layers.name[i], &ch, &st);
        uint64_t b = (uint64_t)ch * (s->h / st) * (s->w / st) * F;
        m->content_targets += b;
        m->largest = max64(m->largest, b);
    }
    if (s->tiled)
        m->scratch = content_crop_floats(c, o, s->th, s->tw) * F + (uint64_t)c->layers.n * F;
}

static void content_release(nst_term *t, nst_runtime *rt) {
    content_term *c = t->state;
    for (int i = 0; i < NST_MAX_LAYERS; i++) {
        nst_tensor_free(rt, c->target[i]);
        c->target[i] = NULL;
    }
    nst_buffer_free(rt, c->crop);
    nst_buffer_free(rt, c->tile_values);
    c->crop = c->tile_values = NULL;
}

const nst_term_ops nst_term_content = {
    .name = "content", .state_size = sizeof(content_term),
    .setup = content_setup, .reweigh = content_reweigh, .value = content_value,
    /* the whole image */
    .content_targets = content_targets, .evaluate = content_evaluate,
    /* tiles: targets */
    .tile_content_targets = content_tile_targets, .tile_finish_targets = content_tile_finish,
    /* tiles: evaluation */
    .tile_evaluate = content_tile_evaluate,
    .memory = content_memory, .release = content_release,
};

/* ---- style ---------------------------------------------------------------- */

typedef struct style_term {
    nst_style_base base;
    cl_mem gram[NST_MAX_LAYERS][NST_MAX_STYLES];   /* A, per layer and region */
    float norm2[NST_MAX_LAYERS][NST_MAX_STYLES];   /* ||A||^2 */
    cl_mem mask[NST_MAX_LAYERS][NST_MAX_STYLES];   /* region masks at each tap's size */
    cl_mem gram_scratch, fm_scratch;               /* whole image */
    cl_mem gsum[NST_MAX_LAYERS];                   /* tiles: Gram sums, then G - A */
    int sums; /* 1: the slots hold ||G - A||^2 (tiles), 0: divided by ||A||^2 */
} style_term;

static int regions(const style_term *s) { return nst_style_regions(&s->base); }

void nst_style_reweigh(nst_term *t, nst_objective *o) {
    nst_style_base *b = t->state;
    const nst_params *p = o->p;
    double wsum = 0;
    for (int i = 0; i < b->layers.n; i++)
        wsum += p->style_layer_weights ? p->style_layer_weights[i] : 1;
    for (int i = 0; i < b->layers.n; i++)
        b->weight[i] = p->style_weight *
                       (p->style_layer_weights ? p->style_layer_weights[i] : 1) /
                       (wsum > 0 ? wsum : 1);
}

nst_status nst_style_setup(nst_term *t, nst_objective *o) {
    nst_style_base *b = t->state;
    const nst_params *p = o->p;
    nst_status st = NST_OK;
    NST_TRY(nst_layers_parse(p->style_layers, "style layers", &b->layers, RTM(o->rt)));
    nst_style_reweigh(t, o);
    b->nregions = o->nregions;
    for (int i = 0; i < b->layers.n; i++) NST_TRY(nst_objective_add_tap(o, b->layers.name[i]));
    t->nslots = b->layers.n * nst_style_regions(b);
fail:
    return st;
}

const char *nst_style_untileable(const nst_term *t) {
    return ((const nst_style_base *)t->state)->nregions ? "regions" : NULL;
}

double nst_style_value(const nst_term *t, const float *slots) {
    const nst_style_base *b = t->state;
    double v = 0;
    for (int l = 0, slot = 0; l < b->layers.n; l++)
        for (int r = 0; r < nst_style_regions(b); r++, slot++) v += b->weight[l] * slots[slot];
    return v;
}

static int style_active(const nst_params *p) { return p->style_loss == NST_STYLE_GRAM; }

/* Makes gram[l][r] (zeroed) unless it exists. */
static nst_status gram_buffer(nst_runtime *rt, style_term *s, int l, int r, int c) {
    nst_status st = NST_OK;
    if (s->gram[l][r]) return NST_OK;
    NST_TRY(nst_buffer_create(rt, (size_t)c * c * sizeof(float), &s->gram[l][r]));
    NST_TRY(nst_fill_zero(rt, s->gram[l][r], (size_t)c * c));
fail:
    return st;
}

/* Style k's Grams: added into the blend (region 0), or region k's own. */
static nst_status style_targets(nst_term *t, nst_objective *o, int k, double blend) {
    style_term *s = t->state;
    nst_status st = NST_OK;
    int r = s->base.nregions ? k : 0;
    float b = s->base.nregions ? 1.0f : (float)blend;
    for (int l = 0; l < s->base.layers.n; l++) {
        const nst_tensor *f = nst_vgg_tap(o->net, s->base.layers.name[l]);
        NST_TRY(gram_buffer(o->rt, s, l, r, f->c));
        NST_TRY(nst_gram_accumulate(o->rt, s->gram[l][r], f, b));
    }
fail:
    return st;
}

/* A mask image as one plane at w x h: its luminance, resized. */
static nst_status mask_plane(nst_runtime *rt, const nst_image *mask, int w, int h, float **out) {
    nst_image *sized = NULL;
    nst_status st = nst_image_resize(mask, w, h, &sized, RTM(rt));
    if (st != NST_OK) return st;
    float *y = malloc((size_t)w * h * sizeof *y);
    if (!y) {
        nst_image_free(sized);
        return nst_fail(RTM(rt), NST_ERR_NOMEM, "mask");
    }
    nst_image_luminance_plane(sized, y);
    for (size_t i = 0; i < (size_t)w * h; i++) y[i] = y[i] < 0 ? 0 : y[i] > 1 ? 1 : y[i];
    nst_image_free(sized);
    *out = y;
    return NST_OK;
}

/* 2x2 average pooling of a plane in place (floor sizes, like VGG's pools). */
static void pool_plane(float *m, int *h, int *w) {
    int oh = *h / 2, ow = *w / 2;
    for (int y = 0; y < oh; y++)
        for (int x = 0; x < ow; x++)
            m[y * ow + x] = 0.25f * (m[2 * y * *w + 2 * x] + m[2 * y * *w + 2 * x + 1] +
                                     m[(2 * y + 1) * *w + 2 * x] + m[(2 * y + 1) * *w + 2 * x + 1]);
    *h = oh;
    *w = ow;
}

nst_status nst_style_masks(nst_objective *o, const nst_layer_list *layers, int nregions,
                           const nst_image *content, const nst_image *const *masks,
                           cl_mem mask[][NST_MAX_STYLES]) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    float *plane = NULL;
    for (int r = 0; r < nregions; r++) {
        for (int l = 0; l < layers->n; l++) {
            const nst_tensor *f = nst_vgg_tap(o->net, layers->name[l]);
            int h = content->h, w = content->w;
            NST_TRY(mask_plane(rt, masks[r], w, h, &plane));
            while (h > f->h || w > f->w) pool_plane(plane, &h, &w);
            NST_TRY(nst_buffer_create(rt, (size_t)h * w * sizeof(float), &mask[l][r]));
            NST_TRY(nst_write_floats(rt, mask[l][r], 0, (size_t)h * w, plane));
            free(plane);
            plane = NULL;
        }
    }
fail:
    free(plane);
    return st;
}

/* Norms, the Gram scratch and, with regions, the masks. */
static nst_status style_finish(nst_term *t, nst_objective *o, const nst_image *content,
                               const nst_image *const *masks) {
    style_term *s = t->state;
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    size_t max_c = 1, max_cm = 1;
    for (int l = 0; l < s->base.layers.n; l++) {
        const nst_tensor *f = nst_vgg_tap(o->net, s->base.layers.name[l]);
        if ((size_t)f->c > max_c) max_c = (size_t)f->c;
        if (f->count > max_cm) max_cm = f->count;
        for (int r = 0; r < regions(s); r++)
            NST_TRY(nst_objective_norm2(o, s->gram[l][r], (size_t)f->c * f->c, &s->norm2[l][r]));
    }
    NST_TRY(nst_buffer_create(rt, max_c * max_c * sizeof(float), &s->gram_scratch));
    if (s->base.nregions) {
        NST_TRY(nst_buffer_create(rt, max_cm * sizeof(float), &s->fm_scratch));
        NST_TRY(nst_style_masks(o, &s->base.layers, s->base.nregions, content, masks, s->mask));
    }
    s->sums = 0;
fail:
    return st;
}

nst_status nst_style_evaluate(nst_term *t, nst_objective *o, nst_style_eval_fn fn) {
    const nst_style_base *b = t->state;
    nst_status st = NST_OK;
    size_t slot = (size_t)t->slot;
    for (int l = 0; l < b->layers.n; l++) {
        const char *name = b->layers.name[l];
        for (int r = 0; r < nst_style_regions(b); r++, slot++)
            NST_TRY(fn(t, o, l, r, nst_vgg_tap(o->net, name), nst_vgg_tap_grad(o->net, name),
                       slot));
    }
fail:
    return st;
}

static nst_status style_evaluate_one(nst_term *t, nst_objective *o, int l, int r,
                                     const nst_tensor *f, nst_tensor *df, size_t slot) {
    style_term *s = t->state;
    if (s->base.nregions)
        return nst_style_loss_masked(o->rt, f, s->mask[l][r], s->gram_scratch, s->fm_scratch,
                                     s->gram[l][r], s->norm2[l][r], (float)s->base.weight[l], df,
                                     o->values, slot);
    return nst_style_loss(o->rt, f, s->gram_scratch, s->gram[l][0], s->norm2[l][0],
                          (float)s->base.weight[l], df, o->values, slot);
}

static nst_status style_evaluate(nst_term *t, nst_objective *o) {
    return nst_style_evaluate(t, o, style_evaluate_one);
}

nst_status nst_style_each_layer(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                const nst_tile *tl, double arg, nst_style_layer_fn fn) {
    const nst_style_base *b = t->state;
    nst_status st = NST_OK;
    for (int l = 0; l < b->layers.n; l++) {
        const char *name = b->layers.name[l];
        nst_style_at a;
        memset(&a, 0, sizeof a);
        a.l = l;
        a.f = nst_vgg_tap(o->net, name);
        a.df = nst_vgg_tap_grad(o->net, name);
        a.tl = tl;
        nst_objective_tap_shape(o, name, &a.c, &a.stride);
        if (tg) a.m = nst_tiling_positions(tg, a.stride);
        if (tl) NST_TRY(nst_tile_mask_owned(o, a.f, tl, a.stride, &a.fm));
        NST_TRY(fn(t, o, &a, arg));
    }
fail:
    return st;
}

/* g += scale * the Gram of the tile's owned positions, normalised by the
 * whole image's positions: over all tiles, scale * the image's Gram. */
static nst_status owned_gram(nst_objective *o, cl_mem g, const nst_style_at *a, double scale) {
    return nst_gram_accumulate(o->rt, g, &a->fm, (float)(scale * a->f->h * a->f->w / a->m));
}

static nst_status style_tile_target_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                       double blend) {
    style_term *s = t->state;
    nst_status st = NST_OK;
    NST_TRY(gram_buffer(o->rt, s, a->l, 0, a->c));
    NST_TRY(owned_gram(o, s->gram[a->l][0], a, blend));
fail:
    return st;
}

static nst_status style_tile_targets(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                     const nst_tile *tl, double blend) {
    return nst_style_each_layer(t, o, tg, tl, blend, style_tile_target_at);
}

static nst_status style_tile_finish_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                       double unused) {
    style_term *s = t->state;
    nst_status st = NST_OK;
    size_t cc = (size_t)a->c * a->c;
    NST_TRY(nst_objective_norm2(o, s->gram[a->l][0], cc, &s->norm2[a->l][0]));
    NST_TRY(nst_buffer_create(o->rt, cc * sizeof(float), &s->gsum[a->l]));
fail:
    return st;
}

static nst_status style_tile_finish(nst_term *t, nst_objective *o, const nst_tiling *tg) {
    ((style_term *)t->state)->sums = 1;
    return nst_style_each_layer(t, o, NULL, NULL, 0, style_tile_finish_at);
}

static nst_status style_sums_begin_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                      double unused) {
    return nst_fill_zero(o->rt, ((style_term *)t->state)->gsum[a->l], (size_t)a->c * a->c);
}

NST_STYLE_LAYER_HOOK(style_sums_begin)

static nst_status style_sums_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                double unused) {
    return owned_gram(o, ((style_term *)t->state)->gsum[a->l], a, 1.0);
}

NST_STYLE_TILE_HOOK(style_sums)

/* E = G - A; its squared norm into the slot (divided by ||A||^2 on the host). */
static nst_status style_sums_end_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                    double unused) {
    style_term *s = t->state;
    nst_status st = NST_OK;
    size_t cc = (size_t)a->c * a->c;
    NST_TRY(nst_axpy(o->rt, cc, -1.0f, s->gram[a->l][0], 0, s->gsum[a->l], 0));
    NST_TRY(nst_sum_squares(o->rt, s->gsum[a->l], cc, o->values, (size_t)(t->slot + a->l)));
fail:
    return st;
}

NST_STYLE_LAYER_HOOK(style_sums_end)

/* The gradient at the owned positions: scale * E F_own, E over the image. */
static nst_status style_tile_evaluate_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                         double unused) {
    style_term *s = t->state;
    size_t c = (size_t)a->c, m = (size_t)a->f->h * a->f->w;
    double alpha = nst_style_grad_scale(s->base.weight[a->l], c, a->m, s->norm2[a->l][0]);
    return nst_gemm(o->rt, 0, 0, c, m, c, (float)alpha, s->gsum[a->l], 0, c, a->fm.buf, 0, m,
                    1.0f, a->df->buf, 0, m);
}

NST_STYLE_TILE_HOOK(style_tile_evaluate)

static double style_value(const nst_term *t, const float *slots) {
    const style_term *s = t->state;
    double v = 0;
    int slot = 0;
    for (int l = 0; l < s->base.layers.n; l++)
        for (int r = 0; r < regions(s); r++, slot++)
            v += s->base.weight[l] * slots[slot] / (s->sums ? s->norm2[l][r] : 1);
    return v;
}

static void style_memory(const nst_term *t, const nst_objective *o, const nst_term_sizes *sz,
                         nst_term_memory *m) {
    const style_term *s = t->state;
    uint64_t sum_cc = 0, max_cc = 1, max_cm = 1, masks = 0;
    for (int l = 0; l < s->base.layers.n; l++) {
        int ch = 0, str = 1;
        nst_objective_tap_shape(o, s->base.layers.name[l], &ch, &str);
        uint64_t cc = (uint64_t)ch * ch, pos = (uint64_t)(sz->h / str) * (sz->w / str);
        m->style_targets += cc * regions(s) * F;
        sum_cc += cc;
        max_cc = max64(max_cc, cc);
        max_cm = max64(max_cm, ch * pos);
        masks += s->base.nregions * pos * F;
    }
    m->largest = max_cc * F;
    if (sz->tiled) {
        m->scratch = sum_cc * F;
    } else {
        m->scratch = max_cc * F + (s->base.nregions ? max_cm * F + masks : 0);
        if (s->base.nregions) m->largest = max64(m->largest, max_cm * F);
    }
}

static void style_release(nst_term *t, nst_runtime *rt) {
    style_term *s = t->state;
    for (int l = 0; l < NST_MAX_LAYERS; l++) {
        for (int r = 0; r < NST_MAX_STYLES; r++) {
            nst_buffer_free(rt, s->gram[l][r]);
            nst_buffer_free(rt, s->mask[l][r]);
            s->gram[l][r] = s->mask[l][r] = NULL;
        }
        nst_buffer_free(rt, s->gsum[l]);
        s->gsum[l] = NULL;
    }
    nst_buffer_free(rt, s->gram_scratch);
    nst_buffer_free(rt, s->fm_scratch);
    s->gram_scratch = s->fm_scratch = NULL;
}

const nst_term_ops nst_term_style = NST_STYLE_SUMS_OPS(style, style_value);

/* ---- total variation ------------------------------------------------------ */

typedef struct tv_term {
    double weight;
} tv_term;

static void tv_reweigh(nst_term *t, nst_objective *o) {
    ((tv_term *)t->state)->weight = o->p->tv_weight;
}

static nst_status tv_setup(nst_term *t, nst_objective *o) {
    tv_reweigh(t, o);
    t->nslots = 1;
    return NST_OK;
}

/* On the whole image in both strategies: it is image-sized. */
static nst_status tv_evaluate_image(nst_term *t, nst_objective *o, const nst_tensor *x,
                                    nst_tensor *grad) {
    return nst_tv_loss(o->rt, x, (float)((tv_term *)t->state)->weight, grad, o->values,
                       (size_t)t->slot);
}

static double tv_value(const nst_term *t, const float *slots) {
    return ((const tv_term *)t->state)->weight * slots[0];
}

const nst_term_ops nst_term_tv = {
    .name = "tv", .state_size = sizeof(tv_term),
    .setup = tv_setup, .reweigh = tv_reweigh, .value = tv_value,
    .evaluate_image = tv_evaluate_image,
};
