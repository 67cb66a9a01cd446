/* term_hist.c: the histogram style term (objective_int.h), after Risser,
 * Wilmot & Barnes 2017, "Stable and controllable neural texture synthesis
 * and style transfer using histogram losses". At each style layer, each
 * channel's values are histogram-matched to the painting's: the value of
 * rank r among the n positions takes the painting's quantile at (r + 1/2)/n.
 * That matched copy T is the target, constant within an evaluation:
 *
 *   L_l = ||F - T||^2 / ||T||^2,   dL/dF = 2 (F - T) / ||T||^2,
 *   term = sum_l b w_l L_l (sum over regions with masks).
 *
 * ||T||^2 is the sum of the quantiles taken, fixed by the painting and the
 * count n, so it is computed with the targets. The gradient is exact
 * wherever no two values of a channel swap ranks (T is then constant).
 *
 * Matching on the device: the ranks come from a bitonic sort of each
 * channel (cl/hist.cl), a fixed network of compare-exchange passes that
 * sorts all channels at once with no data-dependent control flow, the same
 * on every device; exact, unlike a binned histogram, so the term's value and
 * gradient are those of the definition. Of its log2(n)(log2(n)+1)/2 steps,
 * those within blocks of a work-group's pairs run in local memory, one
 * launch per stage; the rest, (log2(n/B))(log2(n/B)+1)/2 for blocks of B,
 * one launch each over the layer's features.
 *
 * The painting's quantile function is a table of K values per channel, K
 * the positions of the content at that layer, sorted on the host once with
 * the targets. Several paintings blend their quantile functions (the
 * 1-D Wasserstein barycentre): q = sum_k b_k q_k. With regions, region r
 * holds the positions where its mask (pooled to the layer) is above 1/2,
 * matched to painting r.
 *
 * In tiles, pass 1 gathers each tile's owned features into the whole
 * layer's map; at its end the matching (the sort needs every position);
 * pass 2 the value and gradient at the owned positions against T (as the
 * content term). The painting's features are gathered tile by tile the
 * same way. Regions are not tiled (as for the Gram term). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "objective_int.h"

static const uint64_t F = sizeof(float);

typedef struct hist_term {
    nst_style_base base;
    int stride[NST_MAX_LAYERS];
    int map_h[NST_MAX_LAYERS], map_w[NST_MAX_LAYERS]; /* tiles: the image's maps */
    size_t npos[NST_MAX_LAYERS]; /* K: the content's positions at the layer */
    float *table[NST_MAX_LAYERS][NST_MAX_STYLES]; /* the quantiles being built (host) */
    cl_mem q[NST_MAX_LAYERS][NST_MAX_STYLES];     /* C x K quantiles */
    float energy[NST_MAX_LAYERS][NST_MAX_STYLES]; /* ||T||^2 */
    int count[NST_MAX_LAYERS][NST_MAX_STYLES];    /* positions in the region */
    cl_mem mask[NST_MAX_LAYERS][NST_MAX_STYLES];  /* 0/1 */
    cl_mem keys, idx;                             /* sort: C x pow2 */
    cl_mem target[NST_MAX_LAYERS];                /* T (whole: shared, in [0]) */
    cl_mem feat[NST_MAX_LAYERS];                  /* tiles: the layer's features */
    cl_mem crop, tile_values;                     /* tiles */
    cl_mem paint[NST_MAX_LAYERS];                 /* tiles: a painting, gathered */
    int paint_h[NST_MAX_LAYERS], paint_w[NST_MAX_LAYERS];
    double paint_blend; /* of the painting being gathered; 0: none */
} hist_term;

static int regions(const hist_term *s) { return nst_style_regions(&s->base); }

static int hist_active(const nst_params *p) { return p->style_loss == NST_STYLE_HIST; }

static size_t pow2(size_t m) {
    size_t n = 1;
    while (n < m) n *= 2;
    return n;
}

/* ---- targets: the quantile tables ---- */

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return x < y ? -1 : x > y;
}

/* Adds blend * the quantile function of the c x m features x (host) into
 * region r's table at layer l. */
static nst_status add_quantiles(hist_term *s, nst_runtime *rt, int l, int r, int c, size_t m,
                                float *x, double blend) {
    size_t k = s->npos[l];
    if (!s->table[l][r] && !(s->table[l][r] = calloc((size_t)c * k, sizeof(float))))
        return nst_fail(RTM(rt), NST_ERR_NOMEM, "style quantiles");
    for (int ch = 0; ch < c; ch++) {
        float *v = x + (size_t)ch * m, *q = s->table[l][r] + (size_t)ch * k;
        qsort(v, m, sizeof *v, cmp_float);
        for (size_t i = 0; i < k; i++) q[i] += (float)(blend * v[(2 * i + 1) * m / (2 * k)]);
    }
    return NST_OK;
}

/* Reads the c x m map buf and adds its quantiles. */
static nst_status add_map(hist_term *s, nst_runtime *rt, int l, int r, int c, size_t m,
                          cl_mem buf, double blend) {
    nst_status st = NST_OK;
    float *x = malloc((size_t)c * m * sizeof *x);
    if (!x) return nst_fail(RTM(rt), NST_ERR_NOMEM, "style features");
    NST_TRY(nst_read_floats(rt, buf, 0, (size_t)c * m, x));
    NST_TRY(add_quantiles(s, rt, l, r, c, m, x, blend));
fail:
    free(x);
    return st;
}

static nst_status hist_content_targets(nst_term *t, nst_objective *o) {
    hist_term *s = t->state;
    for (int l = 0; l < s->base.layers.n; l++) {
        const nst_tensor *f = nst_vgg_tap(o->net, s->base.layers.name[l]);
        s->npos[l] = (size_t)f->h * f->w;
        nst_objective_channels(o, s->base.layers.name[l], &s->stride[l]);
    }
    return NST_OK;
}

/* arg: the region with regions, else the blend weight. */
static nst_status hist_target_at(nst_term *t, nst_objective *o, const nst_style_at *a, double arg) {
    hist_term *s = t->state;
    int regions = s->base.nregions != 0;
    return add_map(s, o->rt, a->l, regions ? (int)arg : 0, a->c, (size_t)a->f->h * a->f->w,
                   a->f->buf, regions ? 1.0 : arg);
}

static nst_status hist_style_targets(nst_term *t, nst_objective *o, int k, double blend) {
    hist_term *s = t->state;
    return nst_style_each_layer(t, o, NULL, NULL, s->base.nregions ? k : blend, hist_target_at);
}

/* Device tables, 0/1 masks, counts and energies; frees the host tables. */
static nst_status upload(hist_term *s, nst_objective *o, float **masks) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    for (int l = 0; l < s->base.layers.n; l++) {
        int c = nst_objective_channels(o, s->base.layers.name[l], NULL);
        size_t k = s->npos[l];
        for (int r = 0; r < regions(s); r++) {
            const float *q = s->table[l][r];
            if (!q) {
                st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "no style image for region %d",
                              r + 1);
                goto fail;
            }
            int n = (int)k;
            if (masks) {
                n = 0;
                for (size_t i = 0; i < k; i++) n += masks[l * NST_MAX_STYLES + r][i] > 0.5f;
            }
            double e = 0;
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < n; i++) {
                    double v = q[(size_t)ch * k + (2 * (size_t)i + 1) * k / (2 * (size_t)n)];
                    e += v * v;
                }
            s->count[l][r] = n;
            s->energy[l][r] = e > 0 ? (float)e : 1.0f;
            NST_TRY(nst_buffer_create(rt, (size_t)c * k * F, &s->q[l][r]));
            NST_TRY(nst_write_floats(rt, s->q[l][r], 0, (size_t)c * k, q));
            free(s->table[l][r]);
            s->table[l][r] = NULL;
        }
    }
fail:
    return st;
}

/* The sort's scratch for the largest layer. */
static nst_status sort_buffers(hist_term *s, nst_objective *o) {
    size_t most = 1;
    for (int l = 0; l < s->base.layers.n; l++) {
        int c = nst_objective_channels(o, s->base.layers.name[l], NULL);
        size_t n = (size_t)c * pow2(s->npos[l]);
        if (n > most) most = n;
    }
    nst_status st = nst_buffer_create(o->rt, most * F, &s->keys);
    if (st == NST_OK) st = nst_buffer_create(o->rt, most * sizeof(cl_int), &s->idx);
    return st;
}

/* Region masks at each layer, made 0/1 at 1/2, on the device and as
 * planes[l * NST_MAX_STYLES + r] on the host (the caller frees them). */
static nst_status hard_masks(hist_term *s, nst_objective *o, const nst_image *content,
                             const nst_image *const *masks, float **planes) {
    nst_status st = nst_style_masks(o, &s->base.layers, s->base.nregions, content, masks, s->mask);
    for (int l = 0; l < s->base.layers.n; l++)
        for (int r = 0; r < s->base.nregions && st == NST_OK; r++) {
            float **p = &planes[l * NST_MAX_STYLES + r];
            size_t k = s->npos[l];
            if (!(*p = malloc(k * sizeof **p)))
                return nst_fail(RTM(o->rt), NST_ERR_NOMEM, "region masks");
            st = nst_read_floats(o->rt, s->mask[l][r], 0, k, *p);
            for (size_t i = 0; i < k; i++) (*p)[i] = (*p)[i] > 0.5f ? 1.0f : 0.0f;
            if (st == NST_OK) st = nst_write_floats(o->rt, s->mask[l][r], 0, k, *p);
        }
    return st;
}

/* The device tables, the sort's scratch and one target map (the largest). */
static nst_status hist_finish(nst_term *t, nst_objective *o, const nst_image *content,
                              const nst_image *const *masks) {
    hist_term *s = t->state;
    float *planes[NST_MAX_LAYERS * NST_MAX_STYLES] = {0};
    size_t most = 1;
    nst_status st = s->base.nregions ? hard_masks(s, o, content, masks, planes) : NST_OK;
    if (st == NST_OK) st = upload(s, o, s->base.nregions ? planes : NULL);
    if (st == NST_OK) st = sort_buffers(s, o);
    for (int l = 0; l < s->base.layers.n; l++) {
        size_t n = (size_t)nst_objective_channels(o, s->base.layers.name[l], NULL) * s->npos[l];
        if (n > most) most = n;
    }
    if (st == NST_OK) st = nst_buffer_create(o->rt, most * F, &s->target[0]);
    for (int i = 0; i < NST_MAX_LAYERS * NST_MAX_STYLES; i++) free(planes[i]);
    return st;
}

/* ---- matching ---- */

/* One launch of the local sort (cl/hist.cl) over blocks of 2 wg pairs. */
static nst_status sort_local(nst_runtime *rt, int n, int c, size_t wg, int k0, int k1,
                             cl_mem keys, cl_mem idx) {
    size_t g[2] = {(size_t)n / 2, (size_t)c}, l[2] = {wg, 1};
    return nst_launch(rt, "hist", "hist_bitonic_local", 2, g, l, 7, sizeof(int), &n, sizeof(int),
                      &k0, sizeof(int), &k1, sizeof(cl_mem), &keys, sizeof(cl_mem), &idx,
                      2 * wg * sizeof(float), NULL, 2 * wg * sizeof(cl_int), NULL);
}

/* Sorts each of c rows of n (a power of two) (key, index) pairs: the
 * bitonic network, its steps within blocks of B = 2 wg pairs in local
 * memory (one launch per stage), the longer ones one launch per step. */
static nst_status sort(nst_runtime *rt, int n, int c, cl_mem keys, cl_mem idx) {
    nst_status st = NST_OK;
    size_t wg = 1, lim = rt->info.max_work_group < 256 ? rt->info.max_work_group : 256;
    while (wg * 2 <= lim && wg * 2 <= (size_t)n / 2) wg *= 2;
    int b = (int)(2 * wg);
    size_t g[2] = {(size_t)n, (size_t)c};
    if (n < 2) return NST_OK;
    NST_TRY(sort_local(rt, n, c, wg, 2, b, keys, idx));
    for (int k = 2 * b; k <= n; k *= 2) {
        for (int j = k / 2; j >= b; j /= 2)
            NST_TRY(nst_launch(rt, "hist", "hist_bitonic", 2, g, NULL, 5, sizeof(int), &n,
                               sizeof(int), &j, sizeof(int), &k, sizeof(cl_mem), &keys,
                               sizeof(cl_mem), &idx));
        NST_TRY(sort_local(rt, n, c, wg, k, k, keys, idx));
    }
fail:
    return st;
}

/* t = f with region r's positions (all without regions) replaced by their
 * matched values; f and t are c x m maps of layer l. */
static nst_status match(hist_term *s, nst_objective *o, int l, int r, int c, cl_mem f, cl_mem t) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    size_t m = s->npos[l], n = pow2(m);
    size_t g[2] = {n, (size_t)c}, gs[2] = {(size_t)s->count[l][r], (size_t)c};
    int im = (int)m, in = (int)n, cnt = s->count[l][r], K = (int)m;
    int has_mask = s->base.nregions != 0;
    cl_mem mask = has_mask ? s->mask[l][r] : f;
    NST_CL(RTM(rt), clEnqueueCopyBuffer(rt->queue, f, t, 0, 0, (size_t)c * m * F, 0, NULL, NULL));
    if (cnt == 0) return NST_OK;
    NST_TRY(nst_launch(rt, "hist", "hist_keys", 2, g, NULL, 7, sizeof(int), &im, sizeof(int), &in,
                       sizeof(cl_mem), &f, sizeof(int), &has_mask, sizeof(cl_mem), &mask,
                       sizeof(cl_mem), &s->keys, sizeof(cl_mem), &s->idx));
    NST_TRY(sort(rt, in, c, s->keys, s->idx));
    NST_TRY(nst_launch(rt, "hist", "hist_scatter", 2, gs, NULL, 7, sizeof(int), &im, sizeof(int),
                       &in, sizeof(int), &cnt, sizeof(int), &K, sizeof(cl_mem), &s->q[l][r],
                       sizeof(cl_mem), &s->idx, sizeof(cl_mem), &t));
fail:
    return st;
}

static nst_status hist_evaluate_one(nst_term *t, nst_objective *o, int l, int r,
                                    const nst_tensor *f, nst_tensor *df, size_t slot) {
    hist_term *s = t->state;
    nst_status st = NST_OK;
    nst_tensor tt = nst_tensor_view(s->target[0], f->c, f->h, f->w);
    NST_TRY(match(s, o, l, r, f->c, f->buf, tt.buf));
    NST_TRY(nst_content_loss(o->rt, f, &tt, s->energy[l][r], (float)s->base.weight[l], df,
                             o->values, slot));
fail:
    return st;
}

static nst_status hist_evaluate(nst_term *t, nst_objective *o) {
    return nst_style_evaluate(t, o, hist_evaluate_one);
}

/* ---- tiles ---- */

/* The painting gathered so far: its quantiles into the table. */
static nst_status flush_painting(hist_term *s, nst_objective *o) {
    nst_status st = NST_OK;
    if (!(s->paint_blend > 0)) return NST_OK;
    for (int l = 0; l < s->base.layers.n; l++)
        NST_TRY(add_map(s, o->rt, l, 0, nst_objective_channels(o, s->base.layers.name[l], NULL),
                        (size_t)s->paint_h[l] * s->paint_w[l], s->paint[l], s->paint_blend));
fail:
    s->paint_blend = 0;
    return st;
}

static nst_status hist_tile_content_targets(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                            const nst_tile *tl) {
    hist_term *s = t->state;
    (void)tl;
    for (int l = 0; l < s->base.layers.n; l++) {
        nst_objective_channels(o, s->base.layers.name[l], &s->stride[l]);
        s->map_h[l] = tg->h / s->stride[l];
        s->map_w[l] = tg->w / s->stride[l];
        s->npos[l] = (size_t)s->map_h[l] * s->map_w[l];
    }
    return NST_OK;
}

/* Copies the owned part of each tap of tile tl into the whole-image maps
 * dst[l] (made at tg's size on first use). */
static nst_status gather(hist_term *s, nst_objective *o, const nst_tiling *tg,
                         const nst_tile *tl, cl_mem *dst) {
    nst_status st = NST_OK;
    for (int l = 0; l < s->base.layers.n; l++) {
        const nst_tensor *f = nst_vgg_tap(o->net, s->base.layers.name[l]);
        int str = s->stride[l], y0, x0, rh, rw, h = tg->h / str, w = tg->w / str;
        if (!dst[l]) NST_TRY(nst_buffer_create(o->rt, (size_t)f->c * h * w * F, &dst[l]));
        nst_tensor d = nst_tensor_view(dst[l], f->c, h, w);
        nst_tile_owned(tl, str, &y0, &x0, &rh, &rw);
        NST_TRY(nst_tile_rect(o->rt, &d, f, tl->oy0 / str, tl->ox0 / str, rh, rw,
                              y0 - tl->oy0 / str, x0 - tl->ox0 / str, 0));
    }
fail:
    return st;
}

static nst_status hist_tile_style_targets(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                          const nst_tile *tl, double blend) {
    hist_term *s = t->state;
    nst_status st = NST_OK;
    if (tl == &tg->tiles[0]) { /* a new painting */
        NST_TRY(flush_painting(s, o));
        for (int l = 0; l < s->base.layers.n; l++) {
            nst_buffer_free(o->rt, s->paint[l]);
            s->paint[l] = NULL;
            s->paint_h[l] = tg->h / s->stride[l];
            s->paint_w[l] = tg->w / s->stride[l];
        }
        s->paint_blend = blend;
    }
    NST_TRY(gather(s, o, tg, tl, s->paint));
fail:
    return st;
}

static nst_status hist_tile_finish(nst_term *t, nst_objective *o, const nst_tiling *tg) {
    hist_term *s = t->state;
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    size_t most = 1;
    NST_TRY(flush_painting(s, o));
    for (int l = 0; l < s->base.layers.n; l++) {
        nst_buffer_free(rt, s->paint[l]);
        s->paint[l] = NULL;
    }
    NST_TRY(upload(s, o, NULL));
    NST_TRY(sort_buffers(s, o));
    for (int l = 0; l < s->base.layers.n; l++) {
        int c = nst_objective_channels(o, s->base.layers.name[l], NULL);
        size_t n = (size_t)c * (tg->th / s->stride[l]) * (tg->tw / s->stride[l]);
        if (n > most) most = n;
        NST_TRY(nst_buffer_create(rt, (size_t)c * s->npos[l] * F, &s->feat[l]));
        NST_TRY(nst_buffer_create(rt, (size_t)c * s->npos[l] * F, &s->target[l]));
    }
    NST_TRY(nst_buffer_create(rt, most * F, &s->crop));
    NST_TRY(nst_buffer_create(rt, F, &s->tile_values));
fail:
    return st;
}

static nst_status hist_sums(nst_term *t, nst_objective *o, const nst_tiling *tg,
                            const nst_tile *tl) {
    hist_term *s = t->state;
    return gather(s, o, tg, tl, s->feat);
}

static nst_status hist_sums_end_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                   double unused) {
    hist_term *s = t->state;
    return match(s, o, a->l, 0, a->c, s->feat[a->l], s->target[a->l]);
}

NST_STYLE_LAYER_HOOK(hist_sums_end)

/* The owned positions against T (as the content term in tiles). */
static nst_status hist_tile_evaluate_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                        double unused) {
    hist_term *s = t->state;
    int l = a->l;
    nst_tensor tt = nst_tensor_view(s->target[l], a->c, s->map_h[l], s->map_w[l]);
    return nst_tile_map_loss(o, a->f, a->stride, a->tl, &tt, s->energy[l][0],
                             (float)s->base.weight[l], a->df, s->crop, s->tile_values, 0,
                             (size_t)(t->slot + l));
}

NST_STYLE_TILE_HOOK(hist_tile_evaluate)

static void hist_memory(const nst_term *t, const nst_objective *o, const nst_term_sizes *sz,
                        nst_term_memory *m) {
    const hist_term *s = t->state;
    uint64_t sort = 1, map = 1, win = 1, maps = 0, masks = 0;
    for (int l = 0; l < s->base.layers.n; l++) {
        int str, c = nst_objective_channels(o, s->base.layers.name[l], &str);
        uint64_t pos = (uint64_t)(sz->h / str) * (sz->w / str);
        uint64_t wpos = (uint64_t)(sz->th / str) * (sz->tw / str);
        m->style_targets += (uint64_t)c * pos * regions(s) * F;
        sort = c * pow2(pos) > sort ? c * pow2(pos) : sort;
        map = c * pos > map ? c * pos : map;
        win = c * wpos > win ? c * wpos : win;
        maps += 2 * c * pos * F;
        masks += s->base.nregions * pos * F;
    }
    m->scratch = 2 * sort * F + (sz->tiled ? maps + win * F + F : map * F + masks);
    m->largest = (sort > map ? sort : map) * F; /* the sort's keys, or a target map */
}

static void hist_release(nst_term *t, nst_runtime *rt) {
    hist_term *s = t->state;
    for (int l = 0; l < NST_MAX_LAYERS; l++) {
        for (int r = 0; r < NST_MAX_STYLES; r++) {
            free(s->table[l][r]);
            s->table[l][r] = NULL;
            nst_buffer_free(rt, s->q[l][r]);
            nst_buffer_free(rt, s->mask[l][r]);
            s->q[l][r] = s->mask[l][r] = NULL;
        }
        nst_buffer_free(rt, s->target[l]);
        nst_buffer_free(rt, s->feat[l]);
        nst_buffer_free(rt, s->paint[l]);
        s->target[l] = s->feat[l] = s->paint[l] = NULL;
    }
    nst_buffer_free(rt, s->keys);
    nst_buffer_free(rt, s->idx);
    nst_buffer_free(rt, s->crop);
    nst_buffer_free(rt, s->tile_values);
    s->keys = s->idx = s->crop = s->tile_values = NULL;
    s->paint_blend = 0;
}

const nst_term_ops nst_term_hist = {
    .name = "style", .state_size = sizeof(hist_term), .active = hist_active,
    .setup = nst_style_setup, .reweigh = nst_style_reweigh,
    .untileable = nst_style_untileable, .value = nst_style_value,
    /* the whole image */
    .content_targets = hist_content_targets, .style_targets = hist_style_targets,
    .finish_targets = hist_finish, .evaluate = hist_evaluate,
    /* tiles: targets */
    .tile_content_targets = hist_tile_content_targets,
    .tile_style_targets = hist_tile_style_targets, .tile_finish_targets = hist_tile_finish,
    /* tiles: evaluation */
    .tile_sums = hist_sums, .tile_sums_end = hist_sums_end, .tile_evaluate = hist_tile_evaluate,
    .memory = hist_memory, .release = hist_release,
};
