/* objective.c: the objective (objective.h): its terms and network, the
 * choice of strategy per size, one evaluation (the strategy's terms on the
 * network, then the terms on the image, one read-back of every value), the
 * memory figure, and the whole-image strategy. The terms are in terms.c, the
 * tiled strategy in tiled.c. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "loss.h"
#include "objective_int.h"

/* The loss terms, in slot order. A new term goes here (and in its term_*.c). */
static const nst_term_ops *const term_kinds[] = {&nst_term_content, &nst_term_style,
                                                  &nst_term_w2, &nst_term_hist, &nst_term_tv,
                                                  &nst_term_temporal};

/* ---- layer lists and sizes ------------------------------------------------ */

nst_status nst_layers_parse(const char *spec, const char *what, nst_layer_list *l, nst_msg *msg) {
    memset(l, 0, sizeof *l);
    if (!spec || !*spec) return nst_fail(msg, NST_ERR_INVALID_ARG, "no %s given", what);
    const char *p = spec;
    while (*p) {
        const char *e = strchr(p, ',');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0 || len >= sizeof l->name[0])
            return nst_fail(msg, NST_ERR_INVALID_ARG, "%s '%s': empty or overlong layer name",
                            what, spec);
        if (l->n == NST_MAX_LAYERS)
            return nst_fail(msg, NST_ERR_INVALID_ARG, "%s: at most %d layers", what,
                            NST_MAX_LAYERS);
        memcpy(l->name[l->n], p, len);
        l->name[l->n][len] = 0;
        if (nst_vgg_layer_index(l->name[l->n]) < 0)
            return nst_fail(msg, NST_ERR_INVALID_ARG,
                            "%s: unknown layer '%s' (layers are conv1_1, relu1_1, conv1_2, "
                            "relu1_2, pool1, conv2_1, ... relu5_4, pool5)",
                            what, l->name[l->n]);
        for (int i = 0; i < l->n; i++)
            if (!strcmp(l->name[i], l->name[l->n]))
                return nst_fail(msg, NST_ERR_INVALID_ARG, "%s: layer '%s' given twice", what,
                                l->name[i]);
        l->n++;
        p += len;
        if (*p == ',') p++;
    }
    return NST_OK;
}

int nst_style_longest(const nst_params *p, int cw, int ch) {
    int longest = (int)lround((cw > ch ? cw : ch) * p->style_scale);
    return longest < 16 ? 16 : longest;
}

/* ---- helpers -------------------------------------------------------------- */

nst_status nst_fill_zero(nst_runtime *rt, cl_mem buf, size_t floats) {
    nst_status st = NST_OK;
    float z = 0;
    NST_CL(RTM(rt), clEnqueueFillBuffer(rt->queue, buf, &z, sizeof z, 0, floats * sizeof(float),
                                        0, NULL, NULL));
fail:
    return st;
}

nst_status nst_objective_add_tap(nst_objective *o, const char *name) {
    for (int i = 0; i < o->ntaps; i++)
        if (!strcmp(o->taps[i], name)) return NST_OK;
    if (o->ntaps == NST_MAX_TAPS || strlen(name) >= sizeof o->taps[0])
        return nst_fail(RTM(o->rt), NST_ERR_INVALID_ARG, "the loss terms read more than %d "
                        "layers", NST_MAX_TAPS);
    strcpy(o->taps[o->ntaps++], name);
    return NST_OK;
}

int nst_objective_tap_shape(const nst_objective *o, const char *name, int *channels,
                            int *stride) {
    return nst_vgg_tap_shape(o->net, name, channels, stride);
}

int nst_objective_channels(const nst_objective *o, const char *name, int *stride) {
    int c = 0, s = 1;
    nst_vgg_tap_shape(o->net, name, &c, &s);
    if (stride) *stride = s;
    return c;
}

size_t nst_objective_largest_tap(const nst_objective *o, int h, int w) {
    size_t m = 1;
    for (int i = 0; i < o->ntaps; i++) {
        int c = 0, s = 1;
        nst_objective_tap_shape(o, o->taps[i], &c, &s);
        size_t n = (size_t)c * (h / s) * (w / s);
        if (n > m) m = n;
    }
    return m;
}

nst_status nst_objective_norm2(nst_objective *o, cl_mem buf, size_t n, float *out) {
    nst_status st = nst_sum_squares(o->rt, buf, n, o->values, 0);
    if (st == NST_OK) st = nst_read_floats(o->rt, o->values, 0, 1, out);
    if (st == NST_OK && !(*out > 0)) *out = 1;
    return st;
}

nst_status nst_objective_upload(nst_runtime *rt, const nst_image *img, nst_tensor **out) {
    nst_status st = nst_tensor_create(rt, 1, 3, img->h, img->w, out);
    if (st == NST_OK) st = nst_tensor_upload(rt, *out, img->data);
    return st;
}

nst_status nst_objective_style_image(const nst_objective *o, const nst_image *content,
                                     const nst_image *style, nst_image **out) {
    int w, h;
    nst_image_fit_size(style->w, style->h, nst_style_longest(o->p, content->w, content->h), &w,
                       &h);
    return nst_image_resize(style, w, h, out, RTM(o->rt));
}

nst_status nst_objective_each_style(nst_objective *o, const nst_image *content,
                                    const nst_image *const *styles, int nstyles,
                                    const double *blend, nst_style_fn fn, void *ctx) {
    nst_status st = NST_OK;
    nst_tensor *img = NULL;
    nst_image *sized = NULL;
    for (int k = 0; k < nstyles; k++) {
        NST_TRY(nst_objective_style_image(o, content, styles[k], &sized));
        NST_TRY(nst_objective_upload(o->rt, sized, &img));
        NST_TRY(fn(o, k, img, blend ? blend[k] : 1.0 / nstyles, ctx));
        nst_tensor_free(o->rt, img);
        img = NULL;
        nst_image_free(sized);
        sized = NULL;
    }
fail:
    nst_tensor_free(o->rt, img);
    nst_image_free(sized);
    return st;
}

uint64_t nst_objective_net_bytes(const nst_objective *o, int h, int w) {
    size_t b = nst_vgg_memory_bytes(o->net, h, w);
    return b ? b : UINT64_MAX / 4;
}

void nst_objective_terms_memory(const nst_objective *o, const nst_term_sizes *s,
                                nst_term_memory *m) {
    memset(m, 0, sizeof *m);
    for (int i = 0; i < o->nterms; i++) {
        const nst_term *t = &o->terms[i];
        nst_term_memory tm;
        memset(&tm, 0, sizeof tm);
        if (t->ops->memory) t->ops->memory(t, o, s, &tm);
        m->content_targets += tm.content_targets;
        m->style_targets += tm.style_targets;
        m->scratch += tm.scratch;
        if (tm.largest > m->largest) m->largest = tm.largest;
    }
}

static uint64_t max64(uint64_t a, uint64_t b) { return a > b ? a : b; }

void nst_objective_bytes_start(const nst_objective *o, const nst_term_sizes *s, int nx, int ny,
                               nst_objective_bytes *m, nst_term_memory *tm) {
    nst_objective_terms_memory(o, s, tm);
    m->tiled = s->tiled;
    m->tile_w = s->tw;
    m->tile_h = s->th;
    m->tiles_x = nx;
    m->tiles_y = ny;
    m->network = nst_objective_net_bytes(o, s->th, s->tw);
    m->content_targets = tm->content_targets;
    m->style_targets = tm->style_targets;
}

/* ---- create and free ------------------------------------------------------ */

nst_status nst_objective_create(nst_runtime *rt, const nst_weights *w, const nst_params *p,
                                int nregions, nst_objective **out) {
    nst_status st = NST_OK;
    *out = NULL;
    nst_objective *o = calloc(1, sizeof *o);
    if (!o) return nst_fail(RTM(rt), NST_ERR_NOMEM, "objective");
    o->rt = rt;
    o->p = p;
    o->nregions = nregions;
    for (size_t k = 0; k < sizeof term_kinds / sizeof term_kinds[0]; k++) {
        nst_term *t = &o->terms[o->nterms];
        if (term_kinds[k]->active && !term_kinds[k]->active(p)) continue;
        t->ops = term_kinds[k];
        t->state = calloc(1, t->ops->state_size ? t->ops->state_size : 1);
        if (!t->state) {
            st = nst_fail(RTM(rt), NST_ERR_NOMEM, "loss term %s", t->ops->name);
            goto fail;
        }
        o->nterms++;
        if (t->ops->setup) NST_TRY(t->ops->setup(t, o));
        t->slot = o->nslots;
        o->nslots += t->nslots;
    }
    const char *taps[NST_MAX_TAPS];
    for (int i = 0; i < o->ntaps; i++) taps[i] = o->taps[i];
    NST_TRY(nst_vgg_create(rt, w, taps, o->ntaps, p->avg_pool, &o->net));
    if (nst_tiled_geometry(w, nst_vgg_depth(o->net), &o->halo, &o->align)) {
        st = nst_fail(RTM(rt), NST_ERR_FORMAT, "the weights lack a convolution the layers need");
        goto fail;
    }
    o->host_values = calloc((size_t)o->nslots, sizeof(float));
    if (!o->host_values) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "loss values");
        goto fail;
    }
    NST_TRY(nst_buffer_create(rt, (size_t)o->nslots * sizeof(float), &o->values));
    *out = o;
    return NST_OK;
fail:
    nst_objective_free(rt, o);
    return st;
}

/* Frees the targets and the strategy's buffers of the current size. */
static void release_targets(nst_objective *o) {
    if (o->strategy) o->strategy->release(o);
    o->strategy = NULL;
    o->ready = 0;
    for (int i = 0; i < o->nterms; i++)
        if (o->terms[i].ops->release) o->terms[i].ops->release(&o->terms[i], o->rt);
}

void nst_objective_free(nst_runtime *rt, nst_objective *o) {
    if (!o) return;
    release_targets(o);
    for (int i = 0; i < o->nterms; i++) free(o->terms[i].state);
    nst_buffer_free(rt, o->values);
    nst_vgg_free(rt, o->net);
    free(o->host_values);
    free(o);
}

/* ---- targets and evaluation ----------------------------------------------- */

nst_status nst_objective_targets(nst_objective *o, const nst_image *content,
                                 const nst_image *const *styles, int nstyles, const double *blend,
                                 const nst_image *const *masks, int tile) {
    nst_status st = NST_OK;
    nst_tiling tg;
    memset(&tg, 0, sizeof tg);
    release_targets(o);
    if (tile > 0) /* in tiles when they cut the image */
        NST_TRY(nst_tiling_make(content->h, content->w, tile, o->halo, o->align, &tg,
                                RTM(o->rt)));
    o->strategy = tg.ny * tg.nx > 1 ? &nst_tiled_strategy : &nst_whole_strategy;
    NST_TRY(o->strategy->targets(o, &tg, tile, content, styles, nstyles, blend, masks));
    o->ready = 1;
fail:
    nst_tiling_free(&tg);
    return st;
}

void nst_objective_reweigh(nst_objective *o) {
    for (int i = 0; o && i < o->nterms; i++)
        if (o->terms[i].ops->reweigh) o->terms[i].ops->reweigh(&o->terms[i], o);
}

nst_status nst_objective_evaluate(void *ctx, nst_runtime *rt, const nst_tensor *x,
                                  nst_tensor *grad, double *loss) {
    nst_objective *o = ctx;
    nst_status st = NST_OK;
    if (!o->ready)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "the objective has no targets for this "
                        "size: nst_objective_targets failed or was not called");
    NST_TRY(o->strategy->evaluate(o, x, grad));
    NST_FOR_TERMS(o, t)
        if (t->ops->evaluate_image) NST_TRY(t->ops->evaluate_image(t, o, x, grad));
    NST_TRY(nst_read_floats(rt, o->values, 0, (size_t)o->nslots, o->host_values));
    double sum = 0;
    for (int i = 0; i < o->nterms; i++) {
        nst_term *t = &o->terms[i];
        t->value = t->ops->value ? t->ops->value(t, o->host_values + t->slot) : 0;
        sum += t->value;
    }
    o->evals++;
    *loss = sum;
    if (!isfinite(sum)) {
        char parts[256] = "";
        size_t n = 0;
        for (int i = 0; i < o->nterms && n < sizeof parts; i++)
            n += (size_t)snprintf(parts + n, sizeof parts - n, "%s%s %g", i ? ", " : "",
                                  o->terms[i].ops->name, o->terms[i].value);
        return nst_fail(RTM(rt), NST_ERR_NUMERIC,
                        "the loss became %g at evaluation %d (%s); try smaller weights, or "
                        "--optimizer adam with a smaller --learning-rate",
                        sum, o->evals, parts);
    }
fail:
    return st;
}

double nst_objective_value(const nst_objective *o, const char *name) {
    for (int i = 0; i < o->nterms; i++)
        if (!strcmp(o->terms[i].ops->name, name)) return o->terms[i].value;
    return 0;
}

int nst_objective_evaluations(const nst_objective *o) { return o->evals; }

int nst_objective_tiles(const nst_objective *o) {
    return o->strategy ? o->strategy->tiles(o) : 1;
}

const nst_vgg *nst_objective_network(const nst_objective *o) { return o->net; }

void nst_objective_halo(const nst_objective *o, int *halo, int *align) {
    *halo = o->halo;
    *align = o->align;
}

const char *nst_objective_untileable(const nst_objective *o) {
    for (int i = 0; i < o->nterms; i++) {
        const nst_term *t = &o->terms[i];
        const char *why = t->ops->untileable ? t->ops->untileable(t) : NULL;
        if (why) return why;
    }
    return NULL;
}

int nst_objective_memory(const nst_objective *o, int w, int h, const int *sw, const int *sh,
                         int nstyles, int tile, nst_objective_bytes *out) {
    nst_tiling tg;
    memset(&tg, 0, sizeof tg);
    memset(out, 0, sizeof *out);
    if (tile > 0 && nst_tiling_make(h, w, tile, o->halo, o->align, &tg, NULL) != NST_OK)
        return 0;
    nst_memory_query q = {w, h, sw, sh, nstyles, tile, &tg};
    int tiled = tg.ny * tg.nx > 1;
    int ok = (tiled ? &nst_tiled_strategy : &nst_whole_strategy)->memory(o, &q, out);
    nst_tiling_free(&tg);
    return ok;
}

/* ---- the whole-image strategy --------------------------------------------- */

/* Style image k's features at its size, for the terms' targets. */
static nst_status whole_style(nst_objective *o, int k, const nst_tensor *img, double blend,
                              void *ctx) {
    nst_status st = nst_vgg_resize(o->rt, o->net, img->h, img->w);
    if (st == NST_OK) st = nst_vgg_forward(o->rt, o->net, img);
    NST_FOR_TERMS(o, t)
        if (st == NST_OK && t->ops->style_targets) st = t->ops->style_targets(t, o, k, blend);
    return st;
}

/* The content's features at the output size, for the terms' targets. */
static nst_status whole_content(nst_objective *o, const nst_image *content) {
    nst_tensor *img = NULL;
    nst_status st = nst_objective_upload(o->rt, content, &img);
    if (st == NST_OK) st = nst_vgg_resize(o->rt, o->net, content->h, content->w);
    if (st == NST_OK) st = nst_vgg_forward(o->rt, o->net, img);
    NST_FOR_TERMS(o, t)
        if (st == NST_OK && t->ops->content_targets) st = t->ops->content_targets(t, o);
    nst_tensor_free(o->rt, img);
    return st;
}

/* The content's targets, each style image's at its size, then back to the
 * output size for the terms to finish. */
static nst_status whole_targets(nst_objective *o, nst_tiling *tg, int tile,
                                const nst_image *content, const nst_image *const *styles,
                                int nstyles, const double *blend, const nst_image *const *masks) {
    nst_status st = whole_content(o, content);
    if (st == NST_OK)
        st = nst_objective_each_style(o, content, styles, nstyles, blend, whole_style, NULL);
    if (st == NST_OK) st = nst_vgg_resize(o->rt, o->net, content->h, content->w);
    NST_FOR_TERMS(o, t)
        if (st == NST_OK && t->ops->finish_targets)
            st = t->ops->finish_targets(t, o, content, masks);
    return st;
}

static nst_status whole_evaluate(nst_objective *o, const nst_tensor *x, nst_tensor *grad) {
    nst_status st = NST_OK;
    NST_TRY(nst_vgg_forward(o->rt, o->net, x));
    NST_TRY(nst_vgg_zero_grad(o->rt, o->net));
    NST_FOR_TERMS(o, t)
        if (t->ops->evaluate) NST_TRY(t->ops->evaluate(t, o));
    NST_TRY(nst_vgg_backward(o->rt, o->net, grad));
fail:
    return st;
}

/* What whole_targets and the evaluation hold: the network at the image's
 * size, the targets, the loss slots and the terms' scratch; while the
 * targets are computed, the network at each image's size with that image. */
static int whole_memory(const nst_objective *o, const nst_memory_query *q,
                        nst_objective_bytes *m) {
    const uint64_t F = sizeof(float);
    uint64_t px = (uint64_t)q->w * q->h, values = (uint64_t)o->nslots * F;
    nst_term_sizes s = {q->h, q->w, q->h, q->w, 0};
    nst_term_memory tm;
    nst_objective_bytes_start(o, &s, 1, 1, m, &tm);
    m->scratch = values + tm.scratch;
    m->windows = 0;
    uint64_t tp = m->network + 3 * px * F + tm.content_targets + values;
    uint64_t largest = max64(max64(nst_vgg_largest_bytes(o->net, q->h, q->w), 3 * px * F),
                             tm.largest);
    for (int k = 0; k < q->nstyles; k++) {
        uint64_t spx = (uint64_t)q->sw[k] * q->sh[k];
        tp = max64(tp, nst_objective_net_bytes(o, q->sh[k], q->sw[k]) + 3 * spx * F +
                           tm.content_targets + tm.style_targets + values);
        largest = max64(largest, max64(nst_vgg_largest_bytes(o->net, q->sh[k], q->sw[k]),
                                       3 * spx * F));
    }
    m->targets_peak = tp;
    m->largest = largest;
    return 1;
}

static int whole_tiles(const nst_objective *o) { return 1; }

static void whole_release(nst_objective *o) {}

const nst_strategy nst_whole_strategy = {whole_targets, whole_evaluate, whole_memory, whole_tiles,
                                         whole_release};
