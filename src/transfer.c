/* transfer.c: the style-transfer loop behind nst_transfer_run.
 *
 * Targets are computed once per image size (content taps, style Grams and
 * their norms, region masks), then the optimiser iterates on the image
 * tensor. One evaluation: VGG forward to the deepest tap, the losses (values
 * into device slots, weighted gradients accumulated into the tap gradients),
 * VGG backward to the image, total variation; the host reads back only the
 * loss slots. Around that: colour modes (post-hoc colour preservation,
 * luminance-only transfer), coarse-to-fine scales and iterate averaging. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image.h"
#include "loss.h"
#include "optim.h"
#include "transfer_int.h"
#include "winograd.h"

void nst_params_default(nst_params *p) {
    memset(p, 0, sizeof *p);
    p->size = 512;
    p->style_scale = 1.0;
    p->content_weight = 1.0;
    p->style_weight = 10.0;
    p->tv_weight = 1.0;
    p->iterations = 500;
    p->optimizer = NST_OPTIMIZER_LBFGS;
    p->learning_rate = 0; /* 0 = the optimiser's own default */
    p->lbfgs_history = 100;
    p->line_search = 0;
    p->init = NST_INIT_CONTENT;
    p->seed = 0;
    p->content_layers = "relu4_2";
    p->style_layers = "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1";
    p->scales = 1;
}

/* ---- models --------------------------------------------------------------- */

nst_status nst_model_load(nst_runtime *rt, const char *path, nst_model **out) {
    nst_model *m = calloc(1, sizeof *m);
    if (!m) return nst_fail(RTM(rt), NST_ERR_NOMEM, "model");
    nst_status st = nst_weights_load(path, &m->weights, RTM(rt));
    if (st != NST_OK) {
        free(m);
        return st;
    }
    *out = m;
    return NST_OK;
}

nst_status nst_model_generate(nst_runtime *rt, uint64_t seed, double width_mult, nst_model **out) {
    nst_model *m = calloc(1, sizeof *m);
    if (!m) return nst_fail(RTM(rt), NST_ERR_NOMEM, "model");
    nst_status st = nst_weights_generate(&m->weights, seed, width_mult, NST_VGG_CONVS, RTM(rt));
    if (st != NST_OK) {
        free(m);
        return st;
    }
    *out = m;
    return NST_OK;
}

void nst_model_free(nst_model *m) {
    if (!m) return;
    nst_weights_free(m->weights);
    free(m);
}

/* ---- parameters ----------------------------------------------------------- */

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

nst_status nst_params_check(const nst_params *p, int nstyles, const double *blend, nst_msg *msg) {
    nst_layer_list l;
    nst_status st;
    if (p->size < 16 || p->size > 65536)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "size %d is not in 16..65536", p->size);
    if (!(p->style_scale > 0) || p->style_scale > 16)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "style scale %g is not in (0, 16]",
                        p->style_scale);
    if (!(p->content_weight >= 0) || !(p->style_weight >= 0) || !(p->tv_weight >= 0) ||
        !isfinite(p->content_weight) || !isfinite(p->style_weight) || !isfinite(p->tv_weight))
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "content, style and tv weights must be finite and >= 0");
    if (p->iterations < 1 || p->iterations > 1000000)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "iterations %d is not in 1..1000000",
                        p->iterations);
    if (p->learning_rate < 0 || !isfinite(p->learning_rate))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "learning rate %g must be > 0",
                        p->learning_rate);
    if (p->lbfgs_history < 1 || p->lbfgs_history > 1000)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "L-BFGS history %d is not in 1..1000",
                        p->lbfgs_history);
    if (p->init == NST_INIT_IMAGE && !p->init_image)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "init from an image, but no image given");
    if ((st = nst_layers_parse(p->content_layers, "content layers", &l, msg)) != NST_OK) return st;
    if ((st = nst_layers_parse(p->style_layers, "style layers", &l, msg)) != NST_OK) return st;
    if (p->style_layer_weights)
        for (int i = 0; i < l.n; i++)
            if (!(p->style_layer_weights[i] >= 0) || !isfinite(p->style_layer_weights[i]))
                return nst_fail(msg, NST_ERR_INVALID_ARG,
                                "style layer weight %d is not a finite number >= 0", i + 1);
    if (p->scales < 0 || p->scales > 12)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "scales %d is not in 1..12", p->scales);
    if (p->scale_iterations < 0 || p->scale_iterations > 1000000)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "scale iterations %d is not in 1..1000000",
                        p->scale_iterations);
    if (p->scales > 1 && p->size / pow(2.0, 0.5 * (p->scales - 1)) < 32)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "%d scales below size %d start under 32 pixels; use fewer scales",
                        p->scales, p->size);
    if (p->tile < -1 || (p->tile > 0 && p->tile < 16))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "tile %d: give 0 (automatic), -1 (never) or "
                        "at least 16 pixels", p->tile);
    if (!(p->average_decay >= 0 && p->average_decay < 1))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "average decay %g is not in [0, 1)",
                        p->average_decay);
    if (nstyles < 1 || nstyles > NST_MAX_STYLES)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "%d style images; 1..%d are allowed", nstyles,
                        NST_MAX_STYLES);
    if (blend) {
        double sum = 0;
        for (int i = 0; i < nstyles; i++) {
            if (!(blend[i] >= 0) || !isfinite(blend[i]))
                return nst_fail(msg, NST_ERR_INVALID_ARG,
                                "style blend weight %d is not a finite number >= 0", i + 1);
            sum += blend[i];
        }
        if (fabs(sum - 1) > 1e-3)
            return nst_fail(msg, NST_ERR_INVALID_ARG, "style blend weights sum to %g, not 1",
                            sum);
    }
    return NST_OK;
}

/* ---- targets -------------------------------------------------------------- */

static nst_status upload_image(nst_runtime *rt, const nst_image *img, nst_tensor **out) {
    nst_status st = nst_tensor_create(rt, 1, 3, img->h, img->w, out);
    if (st == NST_OK) st = nst_tensor_upload(rt, *out, img->data);
    return st;
}

/* Resizes img so its longest side is `longest`. */
static nst_status fit_image(nst_runtime *rt, const nst_image *img, int longest, nst_image **out) {
    int w, h;
    nst_image_fit_size(img->w, img->h, longest, &w, &h);
    return nst_image_resize(img, w, h, out, RTM(rt));
}

static nst_status device_norm2(nst_runtime *rt, cl_mem x, size_t n, cl_mem slots, float *out) {
    nst_status st = nst_sum_squares(rt, x, n, slots, 0);
    if (st == NST_OK) st = nst_read_floats(rt, slots, 0, 1, out);
    return st;
}

void nst_tr_release_targets(nst_transfer *t) {
    for (int l = 0; l < NST_MAX_LAYERS; l++) {
        nst_tensor_free(t->rt, t->targets[l]);
        t->targets[l] = NULL;
        for (int r = 0; r < NST_MAX_STYLES; r++) {
            nst_buffer_free(t->rt, t->grams[l][r]);
            nst_buffer_free(t->rt, t->masks[l][r]);
            t->grams[l][r] = t->masks[l][r] = NULL;
        }
    }
    nst_buffer_free(t->rt, t->gram_scratch);
    nst_buffer_free(t->rt, t->fm_scratch);
    t->gram_scratch = t->fm_scratch = NULL;
    for (int l = 0; l < NST_MAX_LAYERS; l++) {
        nst_buffer_free(t->rt, t->gsum[l]);
        t->gsum[l] = NULL;
    }
    nst_tensor_free(t->rt, t->tx);
    nst_tensor_free(t->rt, t->tgrad);
    nst_buffer_free(t->rt, t->tile_fm);
    nst_buffer_free(t->rt, t->tile_p);
    nst_buffer_free(t->rt, t->tile_values);
    t->tx = t->tgrad = NULL;
    t->tile_fm = t->tile_p = t->tile_values = NULL;
    nst_tiling_free(&t->tiling);
    t->tiled = 0;
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

static nst_status make_masks(nst_transfer *t, const nst_image *content,
                             const nst_image *const *masks) {
    nst_runtime *rt = t->rt;
    nst_status st = NST_OK;
    float *plane = NULL;
    for (int r = 0; r < t->nregions; r++) {
        for (int l = 0; l < t->style.n; l++) {
            const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[l]);
            int h = content->h, w = content->w;
            NST_TRY(mask_plane(rt, masks[r], w, h, &plane));
            while (h > f->h || w > f->w) pool_plane(plane, &h, &w);
            NST_TRY(nst_buffer_create(rt, (size_t)h * w * sizeof(float), &t->masks[l][r]));
            NST_TRY(nst_write_floats(rt, t->masks[l][r], 0, (size_t)h * w, plane));
            free(plane);
            plane = NULL;
        }
    }
fail:
    free(plane);
    return st;
}

nst_status nst_tr_targets(nst_transfer *t, const nst_image *content,
                          const nst_image *const *styles, int nstyles, const double *blend,
                          const nst_image *const *masks) {
    nst_runtime *rt = t->rt;
    nst_status st = NST_OK;
    nst_tensor *img = NULL;
    nst_image *sized = NULL;
    nst_tr_release_targets(t);
    if (t->tile > 0) { /* in tiles when they cut the image */
        NST_TRY(nst_tiling_make(content->h, content->w, t->tile, t->halo, t->align, &t->tiling,
                                RTM(rt)));
        if (t->tiling.ny * t->tiling.nx > 1) {
            t->tiled = 1;
            return nst_tiled_targets(t, content, styles, nstyles, blend);
        }
        nst_tiling_free(&t->tiling);
    }

    /* content targets at the output size */
    NST_TRY(upload_image(rt, content, &img));
    NST_TRY(nst_vgg_resize(rt, t->vgg, content->h, content->w));
    NST_TRY(nst_vgg_forward(rt, t->vgg, img));
    for (int i = 0; i < t->content.n; i++) {
        const nst_tensor *f = nst_vgg_tap(t->vgg, t->content.name[i]);
        NST_TRY(nst_tensor_create(rt, f->n, f->c, f->h, f->w, &t->targets[i]));
        NST_TRY(nst_tensor_copy(rt, t->targets[i], f));
        NST_TRY(device_norm2(rt, f->buf, f->count, t->values, &t->target_norm2[i]));
        if (!(t->target_norm2[i] > 0)) t->target_norm2[i] = 1; /* an all-zero target */
    }
    nst_tensor_free(rt, img);
    img = NULL;

    /* style Grams: blended into region 0, or one per region */
    for (int k = 0; k < nstyles; k++) {
        int r = t->nregions ? k : 0;
        float b = t->nregions ? 1.0f : (float)(blend ? blend[k] : 1.0 / nstyles);
        int longest = (int)lround(fmax(content->w, content->h) * t->p->style_scale);
        if (longest < 16) longest = 16;
        NST_TRY(fit_image(rt, styles[k], longest, &sized));
        NST_TRY(upload_image(rt, sized, &img));
        NST_TRY(nst_vgg_resize(rt, t->vgg, sized->h, sized->w));
        NST_TRY(nst_vgg_forward(rt, t->vgg, img));
        for (int l = 0; l < t->style.n; l++) {
            const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[l]);
            if (!t->grams[l][r]) {
                float zero = 0;
                size_t bytes = (size_t)f->c * f->c * sizeof(float);
                NST_TRY(nst_buffer_create(rt, bytes, &t->grams[l][r]));
                NST_CL(RTM(rt), clEnqueueFillBuffer(rt->queue, t->grams[l][r], &zero,
                                                    sizeof zero, 0, bytes, 0, NULL, NULL));
            }
            NST_TRY(nst_gram_accumulate(rt, t->grams[l][r], f, b));
        }
        nst_tensor_free(rt, img);
        img = NULL;
        nst_image_free(sized);
        sized = NULL;
    }

    /* back to the output size: norms, scratch, masks */
    NST_TRY(nst_vgg_resize(rt, t->vgg, content->h, content->w));
    size_t max_c = 1, max_cm = 1;
    for (int l = 0; l < t->style.n; l++) {
        const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[l]);
        if ((size_t)f->c > max_c) max_c = (size_t)f->c;
        if (f->count > max_cm) max_cm = f->count;
        for (int r = 0; r < (t->nregions ? t->nregions : 1); r++) {
            NST_TRY(device_norm2(rt, t->grams[l][r], (size_t)f->c * f->c, t->values,
                                 &t->gram_norm2[l][r]));
            if (!(t->gram_norm2[l][r] > 0)) t->gram_norm2[l][r] = 1;
        }
    }
    NST_TRY(nst_buffer_create(rt, max_c * max_c * sizeof(float), &t->gram_scratch));
    if (t->nregions) {
        NST_TRY(nst_buffer_create(rt, max_cm * sizeof(float), &t->fm_scratch));
        NST_TRY(make_masks(t, content, masks));
    }
fail:
    nst_tensor_free(rt, img);
    nst_image_free(sized);
    return st;
}

/* ---- evaluation ----------------------------------------------------------- */

nst_status nst_tr_evaluate(void *ctx, nst_runtime *rt, const nst_tensor *x, nst_tensor *grad,
                           double *loss) {
    nst_transfer *t = ctx;
    const nst_params *p = t->p;
    nst_status st = NST_OK;
    int nr = t->nregions ? t->nregions : 1;
    size_t slot = (size_t)t->content.n + (size_t)t->style.n * nr;
    if (t->tiled) {
        NST_TRY(nst_tiled_evaluate(t, x, grad));
        goto tv;
    }
    NST_TRY(nst_vgg_forward(rt, t->vgg, x));
    NST_TRY(nst_vgg_zero_grad(rt, t->vgg));
    slot = 0;
    for (int i = 0; i < t->content.n; i++, slot++) {
        const char *name = t->content.name[i];
        NST_TRY(nst_content_loss(rt, nst_vgg_tap(t->vgg, name), t->targets[i],
                                 t->target_norm2[i], (float)p->content_weight,
                                 nst_vgg_tap_grad(t->vgg, name), t->values, slot));
    }
    for (int l = 0; l < t->style.n; l++) {
        const char *name = t->style.name[l];
        const nst_tensor *f = nst_vgg_tap(t->vgg, name);
        nst_tensor *df = nst_vgg_tap_grad(t->vgg, name);
        for (int r = 0; r < nr; r++, slot++) {
            if (t->nregions)
                NST_TRY(nst_style_loss_masked(rt, f, t->masks[l][r], t->gram_scratch,
                                              t->fm_scratch, t->grams[l][r], t->gram_norm2[l][r],
                                              (float)t->style_w[l], df, t->values, slot));
            else
                NST_TRY(nst_style_loss(rt, f, t->gram_scratch, t->grams[l][0],
                                       t->gram_norm2[l][0], (float)t->style_w[l], df, t->values,
                                       slot));
        }
    }
    NST_TRY(nst_vgg_backward(rt, t->vgg, grad));
tv:
    NST_TRY(nst_tv_loss(rt, x, (float)p->tv_weight, grad, t->values, slot));
    NST_TRY(nst_read_floats(rt, t->values, 0, (size_t)t->nslots, t->host_values));
    double c = 0, s = 0;
    slot = 0;
    for (int i = 0; i < t->content.n; i++) c += p->content_weight * t->host_values[slot++];
    for (int l = 0; l < t->style.n; l++)
        for (int r = 0; r < nr; r++) /* tiled: the slot holds ||G - A||^2 */
            s += t->style_w[l] * t->host_values[slot++] / (t->tiled ? t->gram_norm2[l][r] : 1);
    double tv = p->tv_weight * t->host_values[slot];
    t->last[0] = c;
    t->last[1] = s;
    t->last[2] = tv;
    t->evals++;
    *loss = c + s + tv;
    if (!isfinite(*loss))
        return nst_fail(RTM(rt), NST_ERR_NUMERIC,
                        "the loss became %g at evaluation %d (content %g, style %g, tv %g); "
                        "try smaller weights, or --optimizer adam with a smaller "
                        "--learning-rate",
                        *loss, t->evals, c, s, tv);
fail:
    return st;
}

/* ---- setup and images ----------------------------------------------------- */

nst_status nst_tr_setup(nst_transfer *t, nst_runtime *rt, nst_model *model, const nst_params *p,
                        int nregions) {
    nst_status st = NST_OK;
    memset(t, 0, sizeof *t);
    t->rt = rt;
    t->p = p;
    t->nregions = nregions;
    t->tile = p->tile > 0 ? p->tile : 0; /* nst_transfer_run sets it from its plan */
    NST_TRY(nst_layers_parse(p->content_layers, "content layers", &t->content, RTM(rt)));
    NST_TRY(nst_layers_parse(p->style_layers, "style layers", &t->style, RTM(rt)));
    double wsum = 0;
    for (int i = 0; i < t->style.n; i++)
        wsum += p->style_layer_weights ? p->style_layer_weights[i] : 1;
    for (int i = 0; i < t->style.n; i++)
        t->style_w[i] = p->style_weight *
                        (p->style_layer_weights ? p->style_layer_weights[i] : 1) /
                        (wsum > 0 ? wsum : 1);
    const char *taps[2 * NST_MAX_LAYERS];
    int ntaps = 0;
    for (int i = 0; i < t->content.n; i++) taps[ntaps++] = t->content.name[i];
    for (int i = 0; i < t->style.n; i++) taps[ntaps++] = t->style.name[i];
    NST_TRY(nst_vgg_create(rt, model->weights, taps, ntaps, p->avg_pool, &t->vgg));
    if (nst_tiled_geometry(model->weights, nst_vgg_depth(t->vgg), &t->halo, &t->align)) {
        st = nst_fail(RTM(rt), NST_ERR_FORMAT, "the weights lack a convolution the layers need");
        goto fail;
    }
    t->nslots = t->content.n + t->style.n * (nregions ? nregions : 1) + 1;
    t->host_values = calloc((size_t)t->nslots, sizeof(float));
    if (!t->host_values) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "loss values");
        goto fail;
    }
    NST_TRY(nst_buffer_create(rt, (size_t)t->nslots * sizeof(float), &t->values));
fail:
    return st;
}

nst_status nst_tr_alloc_image(nst_transfer *t, int h, int w) {
    nst_status st = NST_OK;
    nst_tensor_free(t->rt, t->x);
    nst_tensor_free(t->rt, t->grad);
    nst_tensor_free(t->rt, t->avg);
    t->x = t->grad = t->avg = NULL;
    t->avg_steps = 0;
    NST_TRY(nst_tensor_create(t->rt, 1, 3, h, w, &t->x));
    NST_TRY(nst_tensor_create(t->rt, 1, 3, h, w, &t->grad));
    if (t->p->average_decay > 0) NST_TRY(nst_tensor_create(t->rt, 1, 3, h, w, &t->avg));
fail:
    return st;
}

void nst_tr_release(nst_transfer *t) {
    nst_tr_release_targets(t);
    nst_buffer_free(t->rt, t->values);
    nst_tensor_free(t->rt, t->x);
    nst_tensor_free(t->rt, t->grad);
    nst_tensor_free(t->rt, t->avg);
    nst_vgg_free(t->rt, t->vgg);
    free(t->host_values);
    memset(t, 0, sizeof *t);
}

/* The current image in the working colour space (the average of iterates
 * when averaging), clamped to [0,1]. */
static nst_status current_raw(nst_transfer *t, nst_image **out) {
    nst_image *img = NULL;
    nst_status st = nst_image_create(t->x->w, t->x->h, &img, RTM(t->rt));
    if (st != NST_OK) return st;
    const nst_tensor *src = t->avg && t->avg_steps > 0 ? t->avg : t->x;
    st = nst_tensor_download(t->rt, src, img->data);
    if (st != NST_OK) {
        nst_image_free(img);
        return st;
    }
    for (size_t i = 0; i < (size_t)3 * img->w * img->h; i++)
        img->data[i] = img->data[i] < 0 ? 0 : img->data[i] > 1 ? 1 : img->data[i];
    *out = img;
    return NST_OK;
}

nst_status nst_transfer_snapshot(nst_transfer *t, nst_image **out) {
    nst_image *raw = NULL;
    nst_status st = current_raw(t, &raw);
    if (st != NST_OK || !t->color_ref) {
        *out = raw;
        return st;
    }
    st = nst_image_preserve_colors(raw, t->color_ref, out, RTM(t->rt));
    nst_image_free(raw);
    return st;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* The starting image of a scale: the previous scale's result enlarged, or
 * what --init asks for. */
static nst_status init_image(nst_transfer *t, const nst_image *content, const nst_image *prev) {
    nst_runtime *rt = t->rt;
    const nst_params *p = t->p;
    nst_status st = NST_OK;
    nst_image *img = NULL;
    if (prev || p->init == NST_INIT_IMAGE) {
        NST_TRY(nst_image_resize(prev ? prev : p->init_image, content->w, content->h, &img,
                                 RTM(rt)));
    } else {
        NST_TRY(nst_image_create(content->w, content->h, &img, RTM(rt)));
        size_t n = (size_t)3 * content->w * content->h;
        if (p->init == NST_INIT_CONTENT) {
            memcpy(img->data, content->data, n * sizeof(float));
        } else { /* uniform noise around mid-grey, from the seed */
            uint64_t s = p->seed * 0x9E3779B97F4A7C15ULL + 0x632BE59BD9B4E019ULL;
            for (size_t i = 0; i < n; i++) {
                s ^= s >> 12;
                s ^= s << 25;
                s ^= s >> 27;
                double u = (double)((s * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
                img->data[i] = (float)(0.25 + 0.5 * u);
            }
        }
    }
    NST_TRY(nst_tensor_upload(rt, t->x, img->data));
fail:
    nst_image_free(img);
    return st;
}

/* ---- the run -------------------------------------------------------------- */

/* Images in the working colour space: luminance-only transfer runs on grey
 * images, the styles' luminance matched to the content's. */
typedef struct work_images {
    nst_image *content;
    nst_image *styles[NST_MAX_STYLES];
    const nst_image *style_ptrs[NST_MAX_STYLES];
} work_images;

static void work_free(work_images *w) {
    nst_image_free(w->content);
    for (int i = 0; i < NST_MAX_STYLES; i++) nst_image_free(w->styles[i]);
}

static nst_status work_prepare(nst_runtime *rt, const nst_params *p, const nst_image *content,
                               const nst_image *const *styles, int nstyles, work_images *w) {
    nst_status st = NST_OK;
    nst_image *grey = NULL;
    memset(w, 0, sizeof *w);
    if (!p->luminance_only) {
        NST_TRY(nst_image_clone(content, &w->content, RTM(rt)));
        for (int k = 0; k < nstyles; k++) w->style_ptrs[k] = styles[k];
        return NST_OK;
    }
    NST_TRY(nst_image_luminance(content, &w->content, RTM(rt)));
    for (int k = 0; k < nstyles; k++) {
        NST_TRY(nst_image_luminance(styles[k], &grey, RTM(rt)));
        NST_TRY(p->luminance_histogram
                    ? nst_image_match_histogram(grey, w->content, &w->styles[k], RTM(rt))
                    : nst_image_match_luminance(grey, w->content, &w->styles[k], RTM(rt)));
        nst_image_free(grey);
        grey = NULL;
        w->style_ptrs[k] = w->styles[k];
    }
fail:
    nst_image_free(grey);
    return st;
}

/* ---- compiling ahead --------------------------------------------------------- */

/* The programs and BLAS routines a run of p uses (tiled: in tiles); what
 * the run would otherwise compile on first use, one at a time.
 * test_transfer checks that a run uses exactly these. */
static int run_programs(const nst_params *p, int tiled, const char **names, unsigned *blas) {
    int n = 0, wino = nst_winograd_mode_from_env();
    names[n++] = wino == 4 ? "winograd4" : wino == 2 ? "winograd2" : "conv";
    names[n++] = "act";
    names[n++] = "pool";
    names[n++] = "loss";
    names[n++] = "optim";
    if (tiled) names[n++] = "tiled";
    *blas = NST_BLAS_GEMM | NST_BLAS_GEMM_BATCHED | NST_BLAS_AXPY | NST_BLAS_DOT;
    if (p->optimizer == NST_OPTIMIZER_LBFGS) *blas |= NST_BLAS_SCAL;
    return n;
}

typedef struct compile_report {
    nst_progress_fn fn;
    void *user;
    int iterations;
} compile_report;

static int report_compile(int done, int total, const char *name, void *user) {
    compile_report *r = user;
    nst_progress pr;
    memset(&pr, 0, sizeof pr);
    pr.phase = NST_PHASE_COMPILE;
    pr.iterations = r->iterations;
    pr.programs_done = done;
    pr.programs = total;
    pr.program = name;
    return r->fn(&pr, r->user);
}

static int total_iterations(const nst_params *p) {
    int scales = p->scales > 0 ? p->scales : 1;
    int later = p->scale_iterations > 0 ? p->scale_iterations
                                        : (p->iterations / 2 > 0 ? p->iterations / 2 : 1);
    return p->iterations + (scales - 1) * later;
}

static nst_status prepare(nst_runtime *rt, const nst_params *p, int tiled,
                          nst_progress_fn progress, void *user) {
    const char *names[8];
    unsigned blas = 0;
    int n = run_programs(p, tiled, names, &blas);
    compile_report r = {progress, user, total_iterations(p)};
    return nst_programs_prepare(rt, names, n, blas, progress ? report_compile : NULL, &r);
}

nst_status nst_transfer_prepare(nst_runtime *rt, const nst_params *p, nst_progress_fn progress,
                                void *user) {
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!p) return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "nst_transfer_prepare: no parameters");
    return prepare(rt, p, p->tile > 0, progress, user);
}

nst_status nst_transfer_run(nst_runtime *rt, nst_model *model, const nst_params *p,
                            const nst_image *content_in, const nst_image *const *styles,
                            int nstyles, const double *blend, nst_progress_fn progress,
                            void *user, nst_image **out) {
    nst_status st = NST_OK;
    nst_transfer t;
    nst_optim *opt = NULL;
    nst_image *content = NULL, *prev = NULL;
    work_images work;
    memset(&t, 0, sizeof t);
    memset(&work, 0, sizeof work);
    *out = NULL;
    NST_TRY(nst_params_check(p, nstyles, blend, RTM(rt)));
    NST_TRY(nst_tr_setup(&t, rt, model, p, p->masks ? nstyles : 0));
    /* the memory plan: tiles and the L-BFGS history, or a refusal */
    nst_plan plan;
    int style_wh[2 * NST_MAX_STYLES];
    for (int k = 0; k < nstyles; k++) {
        style_wh[2 * k] = styles[k]->w;
        style_wh[2 * k + 1] = styles[k]->h;
    }
    NST_TRY(nst_plan_compute(&t, model->weights, content_in->w, content_in->h, style_wh, nstyles,
                             &plan));
    if (!plan.fits) {
        st = nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "%s", plan.note);
        goto fail;
    }
    t.tile = plan.tiled ? plan.tile : 0;
    NST_TRY(prepare(rt, p, plan.tiled, NULL, NULL)); /* quietly: see nst_transfer_prepare */
    NST_TRY(work_prepare(rt, p, content_in, styles, nstyles, &work));
    if (p->preserve_colors || p->luminance_only) t.color_ref = content_in;

    int scales = p->scales > 0 ? p->scales : 1;
    int later = p->scale_iterations > 0 ? p->scale_iterations
                                        : (p->iterations / 2 > 0 ? p->iterations / 2 : 1);
    int total = p->iterations + (scales - 1) * later, done = 0;
    double t0 = seconds();
    for (int sc = 0; sc < scales; sc++) {
        int size = (int)lround(p->size / pow(2.0, 0.5 * (scales - 1 - sc)));
        int iters = sc == 0 ? p->iterations : later;
        NST_TRY(fit_image(rt, work.content, size, &content));
        /* the previous scale's optimiser and images go first (its result
         * is on the host in prev): the plan counts one scale at a time */
        nst_optim_free(rt, opt);
        opt = NULL;
        nst_tensor_free(rt, t.x);
        nst_tensor_free(rt, t.grad);
        nst_tensor_free(rt, t.avg);
        t.x = t.grad = t.avg = NULL;
        NST_TRY(nst_tr_targets(&t, content, work.style_ptrs, nstyles, blend, p->masks));
        NST_TRY(nst_tr_alloc_image(&t, content->h, content->w));
        NST_TRY(init_image(&t, content, prev));
        nst_image_free(prev);
        prev = NULL;

        /* The optimiser starts afresh at each scale: its history belongs to
         * the previous image size. */
        nst_optim_params op;
        nst_optim_defaults(&op, p->optimizer == NST_OPTIMIZER_ADAM ? NST_OPTIM_ADAM
                                                                   : NST_OPTIM_LBFGS);
        op.history = plan.lbfgs_history;
        op.line_search = p->line_search;
        if (p->learning_rate > 0) op.lr = p->learning_rate;
        NST_TRY(nst_optim_create(rt, &op, t.x->count, &opt));

        for (int it = 1; it <= iters; it++) {
            double loss = 0;
            NST_TRY(nst_optim_step(rt, opt, t.x, nst_tr_evaluate, &t, &loss));
            if (t.avg) NST_TRY(nst_ema_update(rt, t.avg, t.x, (float)p->average_decay,
                                              ++t.avg_steps));
            done++;
            if (progress) {
                nst_progress pr;
                memset(&pr, 0, sizeof pr);
                pr.iteration = done;
                pr.iterations = total;
                pr.scale = sc + 1;
                pr.width = content->w;
                pr.height = content->h;
                pr.evaluations = t.evals;
                pr.loss = loss;
                pr.content = t.last[0];
                pr.style = t.last[1];
                pr.tv = t.last[2];
                pr.elapsed = seconds() - t0;
                pr.transfer = &t;
                if (progress(&pr, user)) {
                    st = nst_fail(RTM(rt), NST_ERR_INTERRUPTED, "stopped after iteration %d",
                                  done);
                    goto fail;
                }
            }
        }
        if (sc + 1 < scales) NST_TRY(current_raw(&t, &prev));
        nst_image_free(content);
        content = NULL;
    }
fail:
    /* The result: also after an interruption or a numerical failure (the
     * optimiser leaves x at the last finite iterate). */
    if (t.x && (st == NST_OK || st == NST_ERR_INTERRUPTED || st == NST_ERR_NUMERIC)) {
        nst_msg keep = *RTM(rt);
        if (nst_transfer_snapshot(&t, out) != NST_OK) *out = NULL;
        *RTM(rt) = keep;
    }
    nst_optim_free(rt, opt);
    nst_image_free(content);
    nst_image_free(prev);
    work_free(&work);
    nst_tr_release(&t);
    return st;
}
