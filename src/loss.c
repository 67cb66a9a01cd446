/* loss.c: content, Gram/style and total-variation losses (see loss.h), with
 * the matrix products through CLBlast and the reductions in cl/loss.cl. */
#include <limits.h>
#include <math.h>

#include "loss.h"

/* Largest work-group size for a reducing kernel: a power of two no larger
 * than 256 or the kernel's own limit on this device. */
static nst_status reduce_wg(nst_runtime *rt, const char *name, size_t *wg) {
    nst_status st = NST_OK;
    cl_kernel k;
    size_t kwg = 0;
    NST_TRY(nst_kernel_get(rt, "loss", name, &k));
    NST_CL(RTM(rt), clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE,
                                             sizeof kwg, &kwg, NULL));
    size_t lim = kwg < rt->info.max_work_group ? kwg : rt->info.max_work_group;
    if (lim > 256) lim = 256;
    *wg = 1;
    while (*wg * 2 <= lim) *wg *= 2;
fail:
    return st;
}

/* A planned reduction: its work-group size, group count and partials. */
typedef struct reduction {
    size_t wg, groups;
    cl_mem partial;
} reduction;

static nst_status reduction_begin(nst_runtime *rt, const char *kernel, size_t n, reduction *r) {
    nst_status st = NST_OK;
    r->partial = NULL;
    if (n > (size_t)INT_MAX - (1u << 20)) /* room for the grid stride past n */
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "%s: %zu elements exceed the kernel's int "
                        "indexing", kernel, n);
    NST_TRY(reduce_wg(rt, kernel, &r->wg));
    r->groups = (n + r->wg - 1) / r->wg;
    if (r->groups > 4 * r->wg) r->groups = 4 * r->wg;
    if (r->groups < 1) r->groups = 1;
    NST_TRY(nst_buffer_create(rt, r->groups * sizeof(float), &r->partial));
fail:
    return st;
}

/* Sums the partials into out[slot] / denom and releases them (OpenCL keeps
 * the buffer alive until the queued kernels are done with it). */
static nst_status reduction_end(nst_runtime *rt, reduction *r, cl_mem out, size_t slot,
                                float denom) {
    nst_status st = NST_OK;
    size_t wg;
    NST_TRY(reduce_wg(rt, "loss_reduce_final", &wg));
    int nparts = (int)r->groups, islot = (int)slot;
    size_t one = wg;
    NST_TRY(nst_launch(rt, "loss", "loss_reduce_final", 1, &one, &wg, 6, sizeof(int), &nparts,
                       sizeof(cl_mem), &r->partial, sizeof(cl_mem), &out, sizeof(int), &islot,
                       sizeof(float), &denom, wg * sizeof(float), NULL));
fail:
    nst_buffer_free(rt, r->partial);
    r->partial = NULL;
    return st;
}

static nst_status reduce_plain(nst_runtime *rt, cl_mem x, size_t n, int mode, cl_mem out,
                               size_t slot) {
    nst_status st = NST_OK;
    reduction r = {0, 0, NULL};
    NST_TRY(reduction_begin(rt, "loss_reduce_partial", n, &r));
    int in = (int)n;
    size_t global = r.groups * r.wg;
    NST_TRY(nst_launch(rt, "loss", "loss_reduce_partial", 1, &global, &r.wg, 5, sizeof(int),
                       &in, sizeof(cl_mem), &x, sizeof(int), &mode, sizeof(cl_mem), &r.partial,
                       r.wg * sizeof(float), NULL));
    return reduction_end(rt, &r, out, slot, 1.0f);
fail:
    nst_buffer_free(rt, r.partial);
    return st;
}

nst_status nst_sum_squares(nst_runtime *rt, cl_mem x, size_t n, cl_mem out, size_t slot) {
    return reduce_plain(rt, x, n, 0, out, slot);
}

nst_status nst_sum_abs(nst_runtime *rt, cl_mem x, size_t n, cl_mem out, size_t slot) {
    return reduce_plain(rt, x, n, 1, out, slot);
}

static int same_shape(const nst_tensor *a, const nst_tensor *b) {
    return a->n == b->n && a->c == b->c && a->h == b->h && a->w == b->w;
}

static nst_status bad_norm(nst_runtime *rt, const char *what, float v) {
    return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                    "%s target has squared norm %g; it must be positive and finite (an all-zero "
                    "target cannot be matched relatively: check the input image)",
                    what, (double)v);
}

nst_status nst_content_loss(nst_runtime *rt, const nst_tensor *f, const nst_tensor *p,
                            float p_norm2, float weight, nst_tensor *df, cl_mem values,
                            size_t slot) {
    nst_status st = NST_OK;
    reduction r = {0, 0, NULL};
    if (!same_shape(f, p) || (df && !same_shape(f, df)))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "content loss: feature %dx%dx%dx%d, target %dx%dx%dx%d and gradient "
                        "shapes differ", f->n, f->c, f->h, f->w, p->n, p->c, p->h, p->w);
    if (!(p_norm2 > 0.0f) || !isfinite(p_norm2)) return bad_norm(rt, "content", p_norm2);
    NST_TRY(reduction_begin(rt, "loss_content", f->count, &r));
    int n = (int)f->count, has_grad = df != NULL;
    float gscale = 2.0f * weight / p_norm2;
    cl_mem dbuf = df ? df->buf : f->buf; /* unused when has_grad is 0 */
    size_t global = r.groups * r.wg;
    NST_TRY(nst_launch(rt, "loss", "loss_content", 1, &global, &r.wg, 8, sizeof(int), &n,
                       sizeof(cl_mem), &f->buf, sizeof(cl_mem), &p->buf, sizeof(int), &has_grad,
                       sizeof(float), &gscale, sizeof(cl_mem), &dbuf, sizeof(cl_mem), &r.partial,
                       r.wg * sizeof(float), NULL));
    return reduction_end(rt, &r, values, slot, p_norm2);
fail:
    nst_buffer_free(rt, r.partial);
    return st;
}

static nst_status check_feature(nst_runtime *rt, const char *what, const nst_tensor *f) {
    if (f->n != 1)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: feature batch is %d; only 1 is "
                        "supported", what, f->n);
    return NST_OK;
}

nst_status nst_gram_accumulate(nst_runtime *rt, cl_mem g, const nst_tensor *f, float scale) {
    nst_status st = check_feature(rt, "Gram", f);
    if (st != NST_OK) return st;
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w;
    /* G[C,C] = alpha F[C,M] F^T + beta G */
    return nst_gemm(rt, 0, 1, c, c, m, scale / (float)((double)c * m), f->buf, 0, m, f->buf, 0,
                    m, 1.0f, g, 0, c);
}

nst_status nst_gram(nst_runtime *rt, cl_mem g, const nst_tensor *f) {
    nst_status st = check_feature(rt, "Gram", f);
    if (st != NST_OK) return st;
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w;
    return nst_gemm(rt, 0, 1, c, c, m, 1.0f / (float)((double)c * m), f->buf, 0, m, f->buf, 0,
                    m, 0.0f, g, 0, c);
}

nst_status nst_style_loss(nst_runtime *rt, const nst_tensor *f, cl_mem gram_scratch,
                          cl_mem target, float target_norm2, float weight, nst_tensor *df,
                          cl_mem values, size_t slot) {
    nst_status st = NST_OK;
    reduction r = {0, 0, NULL};
    NST_TRY(check_feature(rt, "style loss", f));
    if (df && !same_shape(f, df))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "style loss: feature %dx%dx%dx%d and "
                        "gradient %dx%dx%dx%d differ", f->n, f->c, f->h, f->w, df->n, df->c,
                        df->h, df->w);
    if (!(target_norm2 > 0.0f) || !isfinite(target_norm2))
        return bad_norm(rt, "style Gram", target_norm2);
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w, cc = c * c;
    NST_TRY(nst_gram(rt, gram_scratch, f));
    NST_TRY(reduction_begin(rt, "loss_style_diff", cc, &r));
    int n = (int)cc;
    size_t global = r.groups * r.wg;
    NST_TRY(nst_launch(rt, "loss", "loss_style_diff", 1, &global, &r.wg, 5, sizeof(int), &n,
                       sizeof(cl_mem), &gram_scratch, sizeof(cl_mem), &target, sizeof(cl_mem),
                       &r.partial, r.wg * sizeof(float), NULL));
    NST_TRY(reduction_end(rt, &r, values, slot, target_norm2));
    if (df) {
        /* dF[C,M] += weight * 4 / (C*M*||A||^2) * (G - A)[C,C] F[C,M] */
        double alpha = 4.0 * weight / ((double)c * (double)m * target_norm2);
        NST_TRY(nst_gemm(rt, 0, 0, c, m, c, (float)alpha, gram_scratch, 0, c, f->buf, 0, m,
                         1.0f, df->buf, 0, m));
    }
    return NST_OK;
fail:
    nst_buffer_free(rt, r.partial);
    return st;
}

nst_status nst_tv_loss(nst_runtime *rt, const nst_tensor *x, float weight, nst_tensor *dx,
                       cl_mem values, size_t slot) {
    nst_status st = NST_OK;
    reduction r = {0, 0, NULL};
    if (dx && !same_shape(x, dx))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "TV loss: image %dx%dx%dx%d and gradient "
                        "%dx%dx%dx%d differ", x->n, x->c, x->h, x->w, dx->n, dx->c, dx->h,
                        dx->w);
    NST_TRY(reduction_begin(rt, "loss_tv", x->count, &r));
    int n = (int)x->count, h = x->h, w = x->w, has_grad = dx != NULL;
    float count = (float)x->count;
    float gscale = (float)(weight / (double)x->count);
    cl_mem dbuf = dx ? dx->buf : x->buf; /* unused when has_grad is 0 */
    size_t global = r.groups * r.wg;
    NST_TRY(nst_launch(rt, "loss", "loss_tv", 1, &global, &r.wg, 9, sizeof(int), &n, sizeof(int),
                       &h, sizeof(int), &w, sizeof(cl_mem), &x->buf, sizeof(int), &has_grad,
                       sizeof(float), &gscale, sizeof(cl_mem), &dbuf, sizeof(cl_mem), &r.partial,
                       r.wg * sizeof(float), NULL));
    return reduction_end(rt, &r, values, slot, count);
fail:
    nst_buffer_free(rt, r.partial);
    return st;
}
