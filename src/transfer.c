/* transfer.c: the style-transfer loop behind nst_transfer_run.
 *
 * Targets are computed once (content taps, blended style Grams and their
 * norms), then the optimiser iterates on the image tensor. One evaluation:
 * VGG forward to the deepest tap, the losses (values into device slots,
 * weighted gradients accumulated into the tap gradients), VGG backward to the
 * image, total variation; the host reads back only the loss slots. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image.h"
#include "loss.h"
#include "nst_int.h"
#include "optim.h"
#include "vgg.h"
#include "weights.h"

struct nst_model {
    nst_weights *weights;
};

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

/* ---- layer lists ---------------------------------------------------------- */

typedef struct layer_list {
    int n;
    char name[NST_MAX_LAYERS][16];
} layer_list;

static nst_status parse_layers(const char *spec, const char *what, layer_list *l, nst_msg *msg) {
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
    layer_list l;
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
    if ((st = parse_layers(p->content_layers, "content layers", &l, msg)) != NST_OK) return st;
    if ((st = parse_layers(p->style_layers, "style layers", &l, msg)) != NST_OK) return st;
    if (p->style_layer_weights)
        for (int i = 0; i < l.n; i++)
            if (!(p->style_layer_weights[i] >= 0) || !isfinite(p->style_layer_weights[i]))
                return nst_fail(msg, NST_ERR_INVALID_ARG,
                                "style layer weight %d is not a finite number >= 0", i + 1);
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

/* ---- the run -------------------------------------------------------------- */

/* Device loss slots: content layers, then style layers, then TV. */
struct nst_transfer {
    nst_runtime *rt;
    const nst_params *p;
    nst_vgg *vgg;
    layer_list content, style;
    double style_w[NST_MAX_LAYERS]; /* b * w_l per style layer */
    nst_tensor *targets[NST_MAX_LAYERS]; /* content targets P */
    float target_norm2[NST_MAX_LAYERS];  /* ||P||^2 */
    cl_mem grams[NST_MAX_LAYERS];        /* blended style Grams A */
    float gram_norm2[NST_MAX_LAYERS];    /* ||A||^2 */
    cl_mem gram_scratch;
    cl_mem values;
    int nslots;
    float *host_values;
    nst_tensor *x;
    nst_tensor *grad;
    double last[3]; /* weighted content, style, tv of the last evaluation */
    int evals;
};

static nst_status upload_image(nst_runtime *rt, const nst_image *img, nst_tensor **out) {
    nst_status st = nst_tensor_create(rt, 1, 3, img->h, img->w, out);
    if (st == NST_OK) st = nst_tensor_upload(rt, *out, img->data);
    return st;
}

/* Resizes img so its longest side is `longest` (a copy when it already is). */
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

static nst_status make_targets(nst_transfer *t, const nst_image *content,
                               const nst_image *const *styles, int nstyles, const double *blend) {
    nst_runtime *rt = t->rt;
    nst_status st = NST_OK;
    nst_tensor *img = NULL;
    nst_image *sized = NULL;

    /* content targets at the output size */
    NST_TRY(upload_image(rt, content, &img));
    NST_TRY(nst_vgg_resize(rt, t->vgg, content->h, content->w));
    NST_TRY(nst_vgg_forward(rt, t->vgg, img));
    for (int i = 0; i < t->content.n; i++) {
        const nst_tensor *f = nst_vgg_tap(t->vgg, t->content.name[i]);
        NST_TRY(nst_tensor_create(rt, f->n, f->c, f->h, f->w, &t->targets[i]));
        NST_TRY(nst_tensor_copy(rt, t->targets[i], f));
        NST_TRY(device_norm2(rt, f->buf, f->count, t->values, &t->target_norm2[i]));
        if (!(t->target_norm2[i] > 0)) t->target_norm2[i] = 1; /* all-zero target */
    }
    nst_tensor_free(rt, img);
    img = NULL;

    /* style Grams, blended over the style images */
    for (int k = 0; k < nstyles; k++) {
        double b = blend ? blend[k] : 1.0 / nstyles;
        int longest = (int)lround(t->p->size * t->p->style_scale);
        if (longest < 16) longest = 16;
        NST_TRY(fit_image(rt, styles[k], longest, &sized));
        NST_TRY(upload_image(rt, sized, &img));
        NST_TRY(nst_vgg_resize(rt, t->vgg, sized->h, sized->w));
        NST_TRY(nst_vgg_forward(rt, t->vgg, img));
        for (int i = 0; i < t->style.n; i++) {
            const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[i]);
            if (!t->grams[i]) {
                float zero = 0;
                size_t bytes = (size_t)f->c * f->c * sizeof(float);
                NST_TRY(nst_buffer_create(rt, bytes, &t->grams[i]));
                NST_CL(RTM(rt), clEnqueueFillBuffer(rt->queue, t->grams[i], &zero, sizeof zero,
                                                    0, bytes, 0, NULL, NULL));
            }
            NST_TRY(nst_gram_accumulate(rt, t->grams[i], f, (float)b));
        }
        nst_tensor_free(rt, img);
        img = NULL;
        nst_image_free(sized);
        sized = NULL;
    }
    size_t max_c = 1;
    for (int i = 0; i < t->style.n; i++) {
        const nst_tensor *f = nst_vgg_tap(t->vgg, t->style.name[i]);
        if ((size_t)f->c > max_c) max_c = (size_t)f->c;
        NST_TRY(device_norm2(rt, t->grams[i], (size_t)f->c * f->c, t->values,
                             &t->gram_norm2[i]));
        if (!(t->gram_norm2[i] > 0)) t->gram_norm2[i] = 1;
    }
    NST_TRY(nst_buffer_create(rt, max_c * max_c * sizeof(float), &t->gram_scratch));
    NST_TRY(nst_vgg_resize(rt, t->vgg, content->h, content->w));
fail:
    nst_tensor_free(rt, img);
    nst_image_free(sized);
    return st;
}

/* One loss + gradient evaluation at x. */
static nst_status evaluate(void *ctx, nst_runtime *rt, const nst_tensor *x, nst_tensor *grad,
                           double *loss) {
    nst_transfer *t = ctx;
    const nst_params *p = t->p;
    nst_status st = NST_OK;
    NST_TRY(nst_vgg_forward(rt, t->vgg, x));
    NST_TRY(nst_vgg_zero_grad(rt, t->vgg));
    int slot = 0;
    for (int i = 0; i < t->content.n; i++, slot++) {
        const char *name = t->content.name[i];
        NST_TRY(nst_content_loss(rt, nst_vgg_tap(t->vgg, name), t->targets[i],
                                 t->target_norm2[i], (float)p->content_weight,
                                 nst_vgg_tap_grad(t->vgg, name), t->values, (size_t)slot));
    }
    for (int i = 0; i < t->style.n; i++, slot++) {
        const char *name = t->style.name[i];
        NST_TRY(nst_style_loss(rt, nst_vgg_tap(t->vgg, name), t->gram_scratch, t->grams[i],
                               t->gram_norm2[i], (float)t->style_w[i],
                               nst_vgg_tap_grad(t->vgg, name), t->values, (size_t)slot));
    }
    NST_TRY(nst_vgg_backward(rt, t->vgg, grad));
    NST_TRY(nst_tv_loss(rt, x, (float)p->tv_weight, grad, t->values, (size_t)slot));
    NST_TRY(nst_read_floats(rt, t->values, 0, (size_t)t->nslots, t->host_values));
    double c = 0, s = 0;
    slot = 0;
    for (int i = 0; i < t->content.n; i++) c += p->content_weight * t->host_values[slot++];
    for (int i = 0; i < t->style.n; i++) s += t->style_w[i] * t->host_values[slot++];
    double tv = p->tv_weight * t->host_values[slot];
    t->last[0] = c;
    t->last[1] = s;
    t->last[2] = tv;
    t->evals++;
    *loss = c + s + tv;
    if (!isfinite(*loss))
        return nst_fail(RTM(rt), NST_ERR_NUMERIC,
                        "the loss became %g at evaluation %d (content %g, style %g, tv %g); "
                        "try smaller weights or --optimizer adam with a smaller --learning-rate",
                        *loss, t->evals, c, s, tv);
fail:
    return st;
}

nst_status nst_transfer_snapshot(nst_transfer *t, nst_image **out) {
    nst_image *img = NULL;
    nst_status st = nst_image_create(t->x->w, t->x->h, &img, RTM(t->rt));
    if (st != NST_OK) return st;
    st = nst_tensor_download(t->rt, t->x, img->data);
    if (st != NST_OK) {
        nst_image_free(img);
        return st;
    }
    for (size_t i = 0; i < (size_t)3 * img->w * img->h; i++)
        img->data[i] = img->data[i] < 0 ? 0 : img->data[i] > 1 ? 1 : img->data[i];
    *out = img;
    return NST_OK;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static nst_status init_image(nst_transfer *t, const nst_image *content) {
    nst_runtime *rt = t->rt;
    const nst_params *p = t->p;
    nst_status st = NST_OK;
    nst_image *img = NULL;
    if (p->init == NST_INIT_IMAGE) {
        NST_TRY(nst_image_resize(p->init_image, content->w, content->h, &img, RTM(rt)));
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

static void transfer_free(nst_transfer *t) {
    nst_runtime *rt = t->rt;
    for (int i = 0; i < NST_MAX_LAYERS; i++) {
        nst_tensor_free(rt, t->targets[i]);
        nst_buffer_free(rt, t->grams[i]);
    }
    nst_buffer_free(rt, t->gram_scratch);
    nst_buffer_free(rt, t->values);
    nst_tensor_free(rt, t->x);
    nst_tensor_free(rt, t->grad);
    nst_vgg_free(rt, t->vgg);
    free(t->host_values);
}

nst_status nst_transfer_run(nst_runtime *rt, nst_model *model, const nst_params *p,
                            const nst_image *content_in, const nst_image *const *styles,
                            int nstyles, const double *blend, nst_progress_fn progress,
                            void *user, nst_image **out) {
    nst_status st = NST_OK;
    nst_transfer t;
    nst_optim *opt = NULL;
    nst_image *content = NULL;
    memset(&t, 0, sizeof t);
    t.rt = rt;
    t.p = p;
    *out = NULL;
    NST_TRY(nst_params_check(p, nstyles, blend, RTM(rt)));
    NST_TRY(parse_layers(p->content_layers, "content layers", &t.content, RTM(rt)));
    NST_TRY(parse_layers(p->style_layers, "style layers", &t.style, RTM(rt)));
    double wsum = 0;
    for (int i = 0; i < t.style.n; i++) wsum += p->style_layer_weights ? p->style_layer_weights[i] : 1;
    for (int i = 0; i < t.style.n; i++)
        t.style_w[i] = p->style_weight * (p->style_layer_weights ? p->style_layer_weights[i] : 1) /
                       (wsum > 0 ? wsum : 1);

    const char *taps[2 * NST_MAX_LAYERS];
    int ntaps = 0;
    for (int i = 0; i < t.content.n; i++) taps[ntaps++] = t.content.name[i];
    for (int i = 0; i < t.style.n; i++) taps[ntaps++] = t.style.name[i];
    NST_TRY(nst_vgg_create(rt, model->weights, taps, ntaps, p->avg_pool, &t.vgg));

    t.nslots = t.content.n + t.style.n + 1;
    t.host_values = calloc((size_t)t.nslots, sizeof(float));
    if (!t.host_values) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "loss values");
        goto fail;
    }
    NST_TRY(nst_buffer_create(rt, (size_t)t.nslots * sizeof(float), &t.values));
    NST_TRY(fit_image(rt, content_in, p->size, &content));
    NST_TRY(make_targets(&t, content, styles, nstyles, blend));
    NST_TRY(nst_tensor_create(rt, 1, 3, content->h, content->w, &t.x));
    NST_TRY(nst_tensor_create(rt, 1, 3, content->h, content->w, &t.grad));
    NST_TRY(init_image(&t, content));

    nst_optim_params op;
    nst_optim_defaults(&op, p->optimizer == NST_OPTIMIZER_ADAM ? NST_OPTIM_ADAM : NST_OPTIM_LBFGS);
    op.history = p->lbfgs_history;
    op.line_search = p->line_search;
    if (p->learning_rate > 0) op.lr = p->learning_rate;
    NST_TRY(nst_optim_create(rt, &op, t.x->count, &opt));

    double t0 = seconds();
    for (int it = 1; it <= p->iterations; it++) {
        double loss = 0;
        NST_TRY(nst_optim_step(rt, opt, t.x, evaluate, &t, &loss));
        if (progress) {
            nst_progress pr;
            memset(&pr, 0, sizeof pr);
            pr.iteration = it;
            pr.iterations = p->iterations;
            pr.evaluations = t.evals;
            pr.loss = loss;
            pr.content = t.last[0];
            pr.style = t.last[1];
            pr.tv = t.last[2];
            pr.elapsed = seconds() - t0;
            pr.transfer = &t;
            if (progress(&pr, user)) {
                st = nst_fail(RTM(rt), NST_ERR_INTERRUPTED, "stopped after iteration %d", it);
                break;
            }
        }
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
    transfer_free(&t);
    return st;
}

/* ---- benchmark -------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sums the profiled device time per kernel name over events [from, to). */
static void add_kernel_times(nst_runtime *rt, int from, nst_bench_result *r) {
    for (int i = from; i < rt->nevents; i++) {
        cl_ulong t0 = 0, t1 = 0;
        if (clGetEventProfilingInfo(rt->events[i].ev, CL_PROFILING_COMMAND_START, sizeof t0, &t0,
                                    NULL) != CL_SUCCESS ||
            clGetEventProfilingInfo(rt->events[i].ev, CL_PROFILING_COMMAND_END, sizeof t1, &t1,
                                    NULL) != CL_SUCCESS)
            continue;
        int k = 0;
        while (k < r->nkernels && strcmp(r->kernels[k].name, rt->events[i].name)) k++;
        if (k == r->nkernels) {
            if (k == (int)(sizeof r->kernels / sizeof r->kernels[0])) continue;
            snprintf(r->kernels[k].name, sizeof r->kernels[k].name, "%s", rt->events[i].name);
            r->nkernels++;
        }
        r->kernels[k].ms += (t1 - t0) * 1e-6;
        r->kernels[k].calls++;
    }
    for (int i = from; i < rt->nevents; i++) clReleaseEvent(rt->events[i].ev);
    rt->nevents = from;
}

static int cmp_kernel(const void *a, const void *b) {
    double x = ((const nst_bench_kernel *)a)->ms, y = ((const nst_bench_kernel *)b)->ms;
    return x > y ? -1 : x < y;
}

nst_status nst_bench_eval(nst_runtime *rt, nst_model *model, const nst_params *p, int w, int h,
                          int evals, nst_bench_result *out) {
    nst_status st = NST_OK;
    nst_transfer t;
    nst_image *content = NULL, *style = NULL;
    double *times = NULL;
    memset(&t, 0, sizeof t);
    memset(out, 0, sizeof *out);
    t.rt = rt;
    t.p = p;
    if (evals < 1 || w < 16 || h < 16)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "bench: %d evaluations at %dx%d", evals, w,
                        h);
    NST_TRY(parse_layers(p->content_layers, "content layers", &t.content, RTM(rt)));
    NST_TRY(parse_layers(p->style_layers, "style layers", &t.style, RTM(rt)));
    for (int i = 0; i < t.style.n; i++) t.style_w[i] = p->style_weight / t.style.n;
    const char *taps[2 * NST_MAX_LAYERS];
    int ntaps = 0;
    for (int i = 0; i < t.content.n; i++) taps[ntaps++] = t.content.name[i];
    for (int i = 0; i < t.style.n; i++) taps[ntaps++] = t.style.name[i];
    NST_TRY(nst_vgg_create(rt, model->weights, taps, ntaps, p->avg_pool, &t.vgg));
    t.nslots = t.content.n + t.style.n + 1;
    t.host_values = calloc((size_t)t.nslots, sizeof(float));
    times = calloc((size_t)evals, sizeof *times);
    NST_TRY(nst_image_create(w, h, &content, RTM(rt)));
    NST_TRY(nst_image_create(w, h, &style, RTM(rt)));
    if (!t.host_values || !times) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "bench buffers");
        goto fail;
    }
    uint64_t s = 12345;
    for (size_t i = 0; i < (size_t)3 * w * h; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        content->data[i] = (float)((s >> 40) / 16777216.0);
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        style->data[i] = (float)((s >> 40) / 16777216.0);
    }
    NST_TRY(nst_buffer_create(rt, (size_t)t.nslots * sizeof(float), &t.values));
    const nst_image *styles[1] = {style};
    nst_params q = *p;
    q.size = w > h ? w : h;
    t.p = &q;
    NST_TRY(make_targets(&t, content, styles, 1, NULL));
    NST_TRY(nst_tensor_create(rt, 1, 3, h, w, &t.x));
    NST_TRY(nst_tensor_create(rt, 1, 3, h, w, &t.grad));
    NST_TRY(nst_tensor_upload(rt, t.x, content->data));
    double loss;
    for (int i = 0; i < 2; i++) NST_TRY(evaluate(&t, rt, t.x, t.grad, &loss));
    NST_TRY(nst_finish(rt));
    add_kernel_times(rt, 0, out); /* drop the warm-up events */
    out->nkernels = 0;
    memset(out->kernels, 0, sizeof out->kernels);
    for (int i = 0; i < evals; i++) {
        double t0 = seconds();
        NST_TRY(evaluate(&t, rt, t.x, t.grad, &loss)); /* ends in a blocking read */
        times[i] = (seconds() - t0) * 1e3;
        add_kernel_times(rt, 0, out);
    }
    qsort(times, (size_t)evals, sizeof *times, cmp_double);
    out->w = w;
    out->h = h;
    out->evals = evals;
    out->min_ms = times[0];
    out->max_ms = times[evals - 1];
    out->median_ms = evals % 2 ? times[evals / 2] : 0.5 * (times[evals / 2 - 1] + times[evals / 2]);
    out->gflop = nst_vgg_flops(t.vgg) * 1e-9;
    out->gflops = out->gflop / (out->median_ms * 1e-3);
    for (int k = 0; k < out->nkernels; k++) {
        out->kernels[k].ms /= evals;
        out->kernels[k].calls /= evals;
    }
    qsort(out->kernels, (size_t)out->nkernels, sizeof out->kernels[0], cmp_kernel);
fail:
    out->peak_mib = rt->mem_peak / 1048576.0;
    free(times);
    nst_image_free(content);
    nst_image_free(style);
    transfer_free(&t);
    return st;
}
