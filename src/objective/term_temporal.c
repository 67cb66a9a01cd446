/* term_temporal.c: the temporal term of video style transfer (Ruder,
 * Dosovitskiy and Brox 2016, section 3.2), a term on the image itself:
 *
 *   L = w * sum_i c_i (x_i - t_i)^2 / D,     dL/dx_i = 2 w c_i (x_i - t_i) / D
 *
 * over the D = 3*h*w entries of the image x, with t the previous frame's
 * output warped to this frame and c its consistency mask (one value per
 * pixel, 0 where the flow is occluded or unreliable). It reads only the
 * image, so it is evaluated on the whole image in both strategies: tiled
 * and whole-image evaluations give it the same value and gradient. The
 * target and the mask are uploaded at each scale's size on first use. */
#include <limits.h>
#include <stdlib.h>

#include "image.h"
#include "loss.h"
#include "objective_int.h"
#include "temporal.h"

typedef struct temporal_term {
    double weight;        /* w; 0 = no term */
    nst_tensor *target;   /* [1,3,h,w] at the current size, or NULL */
    cl_mem mask;          /* h*w floats */
    int h, w;
} temporal_term;

static nst_status temporal_setup(nst_term *t, nst_objective *o) {
    temporal_term *s = t->state;
    s->weight = o->p->temporal_target ? o->p->temporal_weight : 0;
    t->nslots = 1;
    return NST_OK;
}

static void temporal_release(nst_term *t, nst_runtime *rt) {
    temporal_term *s = t->state;
    nst_tensor_free(rt, s->target);
    nst_buffer_free(rt, s->mask);
    s->target = NULL;
    s->mask = NULL;
    s->h = s->w = 0;
}

/* The target and the mask at h x w on the device. */
static nst_status temporal_upload(temporal_term *s, nst_objective *o, int h, int w) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    nst_image *img = NULL, *mask = NULL;
    NST_TRY(nst_image_resize(o->p->temporal_target, w, h, &img, RTM(rt)));
    NST_TRY(nst_objective_upload(rt, img, &s->target));
    NST_TRY(nst_buffer_create(rt, (size_t)h * w * sizeof(float), &s->mask));
    if (o->p->temporal_mask) {
        NST_TRY(nst_image_resize(o->p->temporal_mask, w, h, &mask, RTM(rt)));
        NST_CL(RTM(rt), clEnqueueWriteBuffer(rt->queue, s->mask, CL_TRUE, 0,
                                             (size_t)h * w * sizeof(float), mask->data, 0, NULL,
                                             NULL));
    } else {
        float one = 1.0f;
        NST_CL(RTM(rt), clEnqueueFillBuffer(rt->queue, s->mask, &one, sizeof one, 0,
                                            (size_t)h * w * sizeof(float), 0, NULL, NULL));
    }
    s->h = h;
    s->w = w;
fail:
    nst_image_free(img);
    nst_image_free(mask);
    return st;
}

nst_status nst_temporal_loss(nst_runtime *rt, const nst_tensor *x, const nst_tensor *target,
                             cl_mem mask, float weight, nst_tensor *dx, cl_mem values,
                             size_t slot) {
    nst_status st = NST_OK;
    size_t wg, fwg;
    if (x->count > (size_t)INT_MAX - (1u << 20))
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "temporal term: %zu entries exceed the "
                        "kernel's int indexing", x->count);
    if (target->count != x->count || (dx && dx->count != x->count))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "temporal term: image, target and "
                        "gradient differ in size");
    NST_TRY(nst_reduce_wg(rt, "temporal", "temporal_loss", &wg));
    size_t groups = (x->count + wg - 1) / wg;
    if (groups > 4 * wg) groups = 4 * wg;
    cl_mem partial;
    NST_TRY(nst_scratch(rt, NST_SCRATCH_SMALL, groups * sizeof(float), &partial));
    int n = (int)x->count, hw = x->h * x->w, has_grad = dx != NULL;
    float gscale = (float)(2.0 * weight / (double)x->count);
    cl_mem dbuf = dx ? dx->buf : x->buf; /* unused when has_grad is 0 */
    size_t global = groups * wg;
    NST_TRY(nst_launch(rt, "temporal", "temporal_loss", 1, &global, &wg, 10, sizeof(int), &n,
                       sizeof(int), &hw, sizeof(cl_mem), &x->buf, sizeof(cl_mem), &target->buf,
                       sizeof(cl_mem), &mask, sizeof(int), &has_grad, sizeof(float), &gscale,
                       sizeof(cl_mem), &dbuf, sizeof(cl_mem), &partial, wg * sizeof(float), NULL));
    NST_TRY(nst_reduce_wg(rt, "loss", "loss_reduce_final", &fwg));
    int nparts = (int)groups, islot = (int)slot;
    float denom = (float)x->count;
    NST_TRY(nst_launch(rt, "loss", "loss_reduce_final", 1, &fwg, &fwg, 6, sizeof(int), &nparts,
                       sizeof(cl_mem), &partial, sizeof(cl_mem), &values, sizeof(int), &islot,
                       sizeof(float), &denom, fwg * sizeof(float), NULL));
fail:
    return st;
}

static nst_status temporal_evaluate_image(nst_term *t, nst_objective *o, const nst_tensor *x,
                                          nst_tensor *grad) {
    temporal_term *s = t->state;
    nst_status st = NST_OK;
    if (s->weight <= 0) return NST_OK;
    if (!s->target || s->h != x->h || s->w != x->w) {
        temporal_release(t, o->rt);
        NST_TRY(temporal_upload(s, o, x->h, x->w));
    }
    NST_TRY(nst_temporal_loss(o->rt, x, s->target, s->mask, (float)s->weight, grad, o->values,
                              (size_t)t->slot));
fail:
    return st;
}

static double temporal_value(const nst_term *t, const float *slots) {
    const temporal_term *s = t->state;
    return s->weight > 0 ? s->weight * slots[0] : 0;
}

static void temporal_memory(const nst_term *t, const nst_objective *o, const nst_term_sizes *sz,
                            nst_term_memory *m) {
    const temporal_term *s = t->state;
    if (s->weight <= 0) return;
    uint64_t plane = (uint64_t)sz->h * sz->w * sizeof(float);
    m->scratch += 4 * plane; /* the target's 3 planes and the mask */
    if (3 * plane > m->largest) m->largest = 3 * plane;
}

const nst_term_ops nst_term_temporal = {
    .name = "temporal",
    .state_size = sizeof(temporal_term),
    .setup = temporal_setup,
    .evaluate_image = temporal_evaluate_image,
    .value = temporal_value,
    .memory = temporal_memory,
    .release = temporal_release,
};
