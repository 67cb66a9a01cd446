/* transfer.c: the style-transfer loop behind nst_transfer_run.
 *
 * The objective (objective.h) holds the network, the targets and the loss
 * terms; here, once per image size (coarse-to-fine scales), its targets are
 * set and the optimiser iterates on the image tensor with it. Around that:
 * the parameters, the memory plan's decision, the starting image, colour
 * modes (post-hoc colour preservation, luminance-only transfer), iterate
 * averaging, progress and the result. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image.h"
#include "objective.h"
#include "optim.h"
#include "plan.h"
#include "winograd.h"

void nst_params_default(nst_params *p) {
    if (!p) return;
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
    p->style_loss = NST_STYLE_GRAM;
}

static const struct {
    const char *name;
    double weight; /* judged on real features (README, docs/STYLE_LOSSES.md) */
} style_losses[] = {{"gram", 10.0}, {"w2", 10.0}, {"hist", 30.0}};

double nst_style_loss_weight(nst_style_loss_kind loss) {
    return loss >= 0 && loss < 3 ? style_losses[loss].weight : NAN;
}

const char *nst_style_loss_name(nst_style_loss_kind loss) {
    return loss >= 0 && loss < 3 ? style_losses[loss].name : NULL;
}

int nst_style_loss_parse(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, style_losses[i].name)) return i;
    return -1;
}

/* ---- parameters ----------------------------------------------------------- */

nst_status nst_params_check(const nst_params *p, int nstyles, const double *blend, nst_msg *msg) {
    nst_layer_list l;
    nst_status st;
    if (!p) return nst_fail_null(msg, "nst_params_check", "p");
    if (p->size < 16 || p->size > 65536)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "size %d is not in 16..65536 pixels", p->size);
    if (!(p->style_scale > 0) || p->style_scale > 16)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "style scale %g is not in (0, 16]",
                        p->style_scale);
    const struct {
        const char *name;
        double v;
    } w3[] = {{"content", p->content_weight}, {"style", p->style_weight}, {"tv", p->tv_weight}};
    for (int i = 0; i < 3; i++)
        if (!(w3[i].v >= 0) || !isfinite(w3[i].v))
            return nst_fail(msg, NST_ERR_INVALID_ARG, "%s weight %g is not a finite number >= 0",
                            w3[i].name, w3[i].v);
    if (p->iterations < 1 || p->iterations > 1000000)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "iterations %d is not in 1..1000000",
                        p->iterations);
    if (p->optimizer != NST_OPTIMIZER_LBFGS && p->optimizer != NST_OPTIMIZER_ADAM)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "optimizer %d is neither NST_OPTIMIZER_LBFGS nor NST_OPTIMIZER_ADAM",
                        (int)p->optimizer);
    if (!(p->learning_rate >= 0) || !isfinite(p->learning_rate))
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "learning rate %g is not a finite number >= 0 (0: the optimiser's "
                        "default)",
                        p->learning_rate);
    if (p->lbfgs_history < 1 || p->lbfgs_history > 1000)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "L-BFGS history %d is not in 1..1000",
                        p->lbfgs_history);
    if (p->init != NST_INIT_CONTENT && p->init != NST_INIT_RANDOM && p->init != NST_INIT_IMAGE)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "init %d is not an nst_init", (int)p->init);
    if (p->init == NST_INIT_IMAGE && !p->init_image)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "init from an image, but no image given");
    if (p->init == NST_INIT_IMAGE &&
        (st = nst_image_check(p->init_image, "parameters", "init_image", msg)) != NST_OK)
        return st;
    if ((st = nst_layers_parse(p->content_layers, "content layers", &l, msg)) != NST_OK) return st;
    if ((st = nst_layers_parse(p->style_layers, "style layers", &l, msg)) != NST_OK) return st;
    if (!p->style_layer_weights && p->style_layer_weight_count)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "style_layer_weight_count is %d but style_layer_weights is NULL",
                        p->style_layer_weight_count);
    if (p->style_layer_weights && p->style_layer_weight_count != l.n)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "%d style layer weights for %d style layers: give one per layer",
                        p->style_layer_weight_count, l.n);
    if (p->style_layer_weights)
        for (int i = 0; i < l.n; i++)
            if (!(p->style_layer_weights[i] >= 0) || !isfinite(p->style_layer_weights[i]))
                return nst_fail(msg, NST_ERR_INVALID_ARG,
                                "style layer weight %d (%g) is not a finite number >= 0", i + 1,
                                p->style_layer_weights[i]);
    if (p->scales < 1 || p->scales > 12)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "scales %d is not in 1..12", p->scales);
    if (p->scale_iterations < 0 || p->scale_iterations > 1000000)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "scale iterations %d is not in 0..1000000 (0: half the iterations)",
                        p->scale_iterations);
    if (p->scales > 1 && p->size / pow(2.0, 0.5 * (p->scales - 1)) < 32)
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "%d scales below size %d start under 32 pixels; use fewer scales",
                        p->scales, p->size);
    if (p->tile < -1 || (p->tile > 0 && p->tile < 16) || p->tile > 65536)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "tile %d is not 0 (automatic), -1 (never) or "
                        "a size in 16..65536 pixels", p->tile);
    if (!(p->average_decay >= 0 && p->average_decay < 1))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "average decay %g is not in [0, 1)",
                        p->average_decay);
    if (!nst_style_loss_name(p->style_loss))
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "style loss %d is not an nst_style_loss_kind (gram, w2 or hist)",
                        (int)p->style_loss);
    if (!(p->temporal_weight >= 0) || !isfinite(p->temporal_weight))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "temporal weight %g is not a finite number "
                        ">= 0", p->temporal_weight);
    if (p->temporal_target &&
        (st = nst_image_check(p->temporal_target, "parameters", "temporal_target", msg)) != NST_OK)
        return st;
    if (p->temporal_mask &&
        (st = nst_image_check(p->temporal_mask, "parameters", "temporal_mask", msg)) != NST_OK)
        return st;
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
    for (int k = 0; p->masks && k < nstyles; k++) {
        char what[32];
        snprintf(what, sizeof what, "masks[%d]", k);
        if ((st = nst_image_check(p->masks[k], "parameters", what, msg)) != NST_OK) return st;
    }
    return NST_OK;
}

/* ---- the transfer --------------------------------------------------------- */

/* The state of one run: the objective and what the optimiser works on. */
struct nst_transfer {
    nst_runtime *rt;
    const nst_params *p;    /* &params */
    nst_params params;      /* the run's own copy: nst_transfer_retarget changes it */
    double blend[NST_MAX_STYLES];
    int has_blend;          /* 0: equal weights (blend unused) */
    const nst_weights *weights;
    const nst_image *content;              /* the working content at the current scale */
    const nst_image *const *style_ptrs;    /* the working styles */
    int nstyles, tile;
    int in_w, in_h;         /* the content as given */
    nst_plan plan;
    nst_optim *opt;
    nst_status failed;      /* a retarget that left the objective without targets */
    nst_objective *obj;
    nst_tensor *x, *grad, *avg; /* the image, its gradient, the average of iterates */
    int avg_steps;
    const nst_image *color_ref; /* content whose colours the output keeps, or NULL */
};

static void free_image(nst_transfer *t) {
    nst_tensor_free(t->rt, t->x);
    nst_tensor_free(t->rt, t->grad);
    nst_tensor_free(t->rt, t->avg);
    t->x = t->grad = t->avg = NULL;
    t->avg_steps = 0;
}

/* (Re)allocates x, grad and the average for h x w. */
static nst_status alloc_image(nst_transfer *t, int h, int w) {
    nst_status st = NST_OK;
    free_image(t);
    NST_TRY(nst_tensor_create(t->rt, 1, 3, h, w, &t->x));
    NST_TRY(nst_tensor_create(t->rt, 1, 3, h, w, &t->grad));
    if (t->p->average_decay > 0) NST_TRY(nst_tensor_create(t->rt, 1, 3, h, w, &t->avg));
fail:
    return st;
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
    if (out) *out = NULL;
    if (!t) return NST_ERR_INVALID_ARG;
    if (!out) return nst_fail_null(RTM(t->rt), "nst_transfer_snapshot", "out");
    if (!t->x)
        return nst_fail(RTM(t->rt), NST_ERR_INVALID_ARG,
                        "nst_transfer_snapshot: the transfer has no image yet");
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

void nst_retarget_default(nst_retarget *r) {
    if (!r) return;
    memset(r, 0, sizeof *r);
    r->content_weight = r->style_weight = r->tv_weight = -1;
}

nst_status nst_transfer_retarget(nst_transfer *t, const nst_retarget *r) {
    if (!t) return NST_ERR_INVALID_ARG;
    nst_runtime *rt = t->rt;
    if (!r) return nst_fail_null(RTM(rt), "nst_transfer_retarget", "r");
    if (!t->opt || !t->content)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "nst_transfer_retarget: call it from the progress function");
    nst_params np = t->params;
    if (r->content_weight >= 0) np.content_weight = r->content_weight;
    if (r->style_weight >= 0) np.style_weight = r->style_weight;
    if (r->tv_weight >= 0) np.tv_weight = r->tv_weight;
    if (r->style_scale != 0) np.style_scale = r->style_scale;
    /* a NaN weight is neither < 0 nor >= 0: let the check name it */
    if (isnan(r->content_weight)) np.content_weight = r->content_weight;
    if (isnan(r->style_weight)) np.style_weight = r->style_weight;
    if (isnan(r->tv_weight)) np.tv_weight = r->tv_weight;
    const double *blend = r->blend ? r->blend : t->has_blend ? t->blend : NULL;
    nst_status st = nst_params_check(&np, t->nstyles, blend, RTM(rt));
    if (st != NST_OK) return st;
    int scale_changed = np.style_scale != t->params.style_scale;
    int new_targets = scale_changed || r->blend;
    if (scale_changed) { /* the plan must hold with the targets recomputed mid-scale */
        nst_plan pl;
        int wh[2 * NST_MAX_STYLES];
        for (int k = 0; k < t->nstyles; k++) {
            wh[2 * k] = t->style_ptrs[k]->w;
            wh[2 * k + 1] = t->style_ptrs[k]->h;
        }
        st = nst_plan_compute(rt, &np, t->obj, t->weights, t->in_w, t->in_h, wh, t->nstyles,
                              &pl);
        if (st != NST_OK) return st;
        if (!pl.fits || pl.tiled != t->plan.tiled || pl.tile != t->plan.tile ||
            pl.targets_peak + pl.images + pl.optimizer + pl.reserve > pl.budget)
            return nst_fail(RTM(rt), NST_ERR_TOO_LARGE,
                            "style scale %g does not fit this run's memory plan; start a new "
                            "run at it", np.style_scale);
    }
    t->params = np;
    if (r->blend) {
        memcpy(t->blend, r->blend, (size_t)t->nstyles * sizeof(double));
        t->has_blend = 1;
    }
    nst_objective_reweigh(t->obj);
    if (new_targets) {
        st = nst_objective_targets(t->obj, t->content, t->style_ptrs, t->nstyles,
                                   t->has_blend ? t->blend : NULL, t->params.masks, t->tile);
        if (st != NST_OK) {
            t->failed = st;
            return st;
        }
    }
    return nst_optim_reset(rt, t->opt);
}

/* Resizes img so its longest side is `longest`. */
static nst_status fit_image(nst_runtime *rt, const nst_image *img, int longest, nst_image **out) {
    int w, h;
    nst_image_fit_size(img->w, img->h, longest, &w, &h);
    return nst_image_resize(img, w, h, out, RTM(rt));
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
static int run_programs(const nst_runtime *rt, const nst_params *p, int tiled, const char **names,
                        unsigned *blas) {
    int n = 0, wino = nst_winograd_mode(rt);
    names[n++] = wino == 4 ? "winograd4" : wino == 2 ? "winograd2" : "conv";
    names[n++] = "act";
    names[n++] = "pool";
    names[n++] = "loss";
    names[n++] = "optim";
    if (p->temporal_weight > 0 && p->temporal_target) names[n++] = "temporal";
    if (tiled) names[n++] = "tiled";
    if (p->style_loss == NST_STYLE_W2) names[n++] = "w2";
    if (p->style_loss == NST_STYLE_HIST) names[n++] = "hist";
    *blas = NST_BLAS_GEMM | NST_BLAS_GEMM_BATCHED | NST_BLAS_AXPY; /* the optimisers: none */
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
    int n = run_programs(rt, p, tiled, names, &blas);
    compile_report r = {progress, user, total_iterations(p)};
    return nst_programs_prepare(rt, names, n, blas, progress ? report_compile : NULL, &r);
}

nst_status nst_transfer_prepare(nst_runtime *rt, const nst_params *p, nst_progress_fn progress,
                                void *user) {
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!p) return nst_fail_null(RTM(rt), "nst_transfer_prepare", "p");
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
    if (out) *out = NULL;
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!out) return nst_fail_null(RTM(rt), "nst_transfer_run", "out");
    if (!model) return nst_fail_null(RTM(rt), "nst_transfer_run", "model");
    NST_TRY(nst_params_check(p, nstyles, blend, RTM(rt)));
    NST_TRY(nst_image_check(content_in, "nst_transfer_run", "content", RTM(rt)));
    if (!styles) return nst_fail_null(RTM(rt), "nst_transfer_run", "styles");
    for (int k = 0; k < nstyles; k++) {
        char what[32];
        snprintf(what, sizeof what, "styles[%d]", k);
        NST_TRY(nst_image_check(styles[k], "nst_transfer_run", what, RTM(rt)));
    }
    t.rt = rt;
    t.params = *p;
    t.p = p = &t.params;
    if (blend) {
        memcpy(t.blend, blend, (size_t)nstyles * sizeof(double));
        t.has_blend = 1;
    }
    t.weights = model->weights;
    t.nstyles = nstyles;
    t.in_w = content_in->w;
    t.in_h = content_in->h;
    NST_TRY(nst_objective_create(rt, model->weights, p, p->masks ? nstyles : 0, &t.obj));
    /* the memory plan: tiles and the L-BFGS history, or a refusal */
    nst_plan plan;
    int style_wh[2 * NST_MAX_STYLES];
    for (int k = 0; k < nstyles; k++) {
        style_wh[2 * k] = styles[k]->w;
        style_wh[2 * k + 1] = styles[k]->h;
    }
    NST_TRY(nst_plan_compute(rt, p, t.obj, model->weights, content_in->w, content_in->h, style_wh,
                             nstyles, &plan));
    t.plan = plan;
    if (!plan.fits) {
        st = nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "%s", plan.note);
        goto fail;
    }
    int tile = plan.tiled ? plan.tile : 0;
    t.tile = tile;
    NST_TRY(prepare(rt, p, plan.tiled, NULL, NULL)); /* quietly: see nst_transfer_prepare */
    NST_TRY(work_prepare(rt, p, content_in, styles, nstyles, &work));
    t.style_ptrs = work.style_ptrs;
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
        opt = t.opt = NULL;
        t.content = NULL;
        free_image(&t);
        NST_TRY(nst_objective_targets(t.obj, content, work.style_ptrs, nstyles,
                                      t.has_blend ? t.blend : NULL, p->masks, tile));
        NST_TRY(alloc_image(&t, content->h, content->w));
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
        t.opt = opt;
        t.content = content;

        for (int it = 1; it <= iters; it++) {
            double loss = 0;
            NST_TRY(nst_optim_step(rt, opt, t.x, nst_objective_evaluate, t.obj, &loss));
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
                pr.evaluations = nst_objective_evaluations(t.obj);
                pr.loss = loss;
                pr.content = nst_objective_value(t.obj, "content");
                pr.style = nst_objective_value(t.obj, "style");
                pr.tv = nst_objective_value(t.obj, "tv");
                pr.temporal = nst_objective_value(t.obj, "temporal");
                pr.elapsed = seconds() - t0;
                pr.transfer = &t;
                if (progress(&pr, user)) {
                    st = nst_fail(RTM(rt), NST_ERR_INTERRUPTED, "stopped after iteration %d",
                                  done);
                    goto fail;
                }
                if ((st = t.failed) != NST_OK) goto fail; /* its message is in rt */
            }
        }
        if (sc + 1 < scales) NST_TRY(current_raw(&t, &prev));
        t.content = NULL;
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
    free_image(&t);
    nst_objective_free(rt, t.obj);
    return st;
}
