/* loss.c: content, Gram/style and total-variation losses (see loss.h), with
 * the matrix products through CLBlast and the reductions in cl/loss.cl. */
#include <limits.h>
#include <math.h>

#include "loss.h"

nst_status nst_reduce_wg(nst_runtime *rt, const char *program, const char *name, size_t *wg) {
    nst_status st = NST_OK;
    cl_kernel k;
    size_t kwg = 0;
    NST_TRY(nst_kernel_get(rt, program, name, &k));
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
    NST_TRY(nst_reduce_wg(rt, "loss", kernel, &r->wg));
    r->groups = (n + r->wg - 1) / r->wg;
    if (r->groups > 4 * r->wg) r->groups = 4 * r->wg;
    if (r->groups < 1) r->groups = 1;
    NST_TRY(nst_scratch(rt, NST_SCRATCH_SMALL, r->groups * sizeof(float), &r->partial));
fail:
    return st;
}

/* Sums the partials (in the runtime's small scratch) into out[slot] / denom. */
static nst_status reduction_end(nst_runtime *rt, reduction *r, cl_mem out, size_t slot,
                                float denom) {
    nst_status st = NST_OK;
    size_t wg;
    NST_TRY(nst_reduce_wg(rt, "loss", "loss_reduce_final", &wg));
    int nparts = (int)r->groups, islot = (int)slot;
    size_t one = wg;
    NST_TRY(nst_launch(rt, "loss", "loss_reduce_final", 1, &one, &wg, 6, sizeof(int), &nparts,
                       sizeof(cl_mem), &r->partial, sizeof(cl_mem), &out, sizeof(int), &islot,
                       sizeof(float), &denom, wg * sizeof(float), NULL));
fail:
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
    return st;
}

static nst_status check_feature(nst_runtime *rt, const char *what, const nst_tensor *f) {
    if (f->n != 1)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: feature batch is %d; only 1 is "
                        "supported", what, f->n);
    return NST_OK;
}

/* g[C,C] = alpha F F^T + beta g for F [C,M] in fbuf. A Gram product is all
 * inner dimension (M is up to millions, C at most 512): one GEMM leaves most
 * of a GPU idle, so long ones are split along M into chunks done by one
 * strided-batched GEMM, whose partial products a kernel then sums. */
static nst_status gram_product(nst_runtime *rt, cl_mem g, cl_mem fbuf, size_t c, size_t m,
                               float alpha, float beta) {
    nst_status st = NST_OK;
    const size_t min_chunk = 1024, partial_cap = (size_t)16 << 20; /* bytes */
    size_t chunks = m / min_chunk;
    if (chunks > 64) chunks = 64;
    while (chunks > 1 && chunks * c * c * sizeof(float) > partial_cap) chunks--;
    if (chunks < 4)
        return nst_gemm(rt, 0, 1, c, c, m, alpha, fbuf, 0, m, fbuf, 0, m, beta, g, 0, c);
    size_t chunk = m / chunks, rem = m - chunks * chunk, parts = chunks + (rem > 0);
    cl_mem partial;
    NST_TRY(nst_scratch(rt, NST_SCRATCH_GRAM, parts * c * c * sizeof(float), &partial));
    NST_TRY(nst_gemm_strided_batched(rt, 0, 1, c, c, chunk, alpha, fbuf, 0, m, chunk, fbuf, 0, m,
                                     chunk, 0.0f, partial, 0, c, c * c, chunks));
    if (rem)
        NST_TRY(nst_gemm(rt, 0, 1, c, c, rem, alpha, fbuf, chunks * chunk, m, fbuf,
                         chunks * chunk, m, 0.0f, partial, chunks * c * c, c));
    int n = (int)(c * c), np = (int)parts;
    size_t global = c * c, wg = nst_wg_1d(rt);
    NST_TRY(nst_launch(rt, "loss", "loss_gram_sum", 1, &global, &wg, 5, sizeof(int), &n,
                       sizeof(int), &np, sizeof(cl_mem), &partial, sizeof(float), &beta,
                       sizeof(cl_mem), &g));
fail:
    return st;
}

nst_status nst_gram_accumulate(nst_runtime *rt, cl_mem g, const nst_tensor *f, float scale) {
    nst_status st = check_feature(rt, "Gram", f);
    if (st != NST_OK) return st;
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w;
    /* G[C,C] = alpha F[C,M] F^T + beta G */
    return gram_product(rt, g, f->buf, c, m, scale / (float)((double)c * m), 1.0f);
}

nst_status nst_gram(nst_runtime *rt, cl_mem g, const nst_tensor *f) {
    nst_status st = check_feature(rt, "Gram", f);
    if (st != NST_OK) return st;
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w;
    return gram_product(rt, g, f->buf, c, m, 1.0f / (float)((double)c * m), 0.0f);
}

/* g[0..cc) <- G - A (g holds G, target A), values[slot] = ||G - A||^2 / norm2. */
static nst_status style_diff(nst_runtime *rt, cl_mem g, cl_mem target, size_t cc, float norm2,
                             cl_mem values, size_t slot) {
    nst_status st = NST_OK;
    reduction r = {0, 0, NULL};
    NST_TRY(reduction_begin(rt, "loss_style_diff", cc, &r));
    int n = (int)cc;
    size_t global = r.groups * r.wg;
    NST_TRY(nst_launch(rt, "loss", "loss_style_diff", 1, &global, &r.wg, 5, sizeof(int), &n,
                       sizeof(cl_mem), &g, sizeof(cl_mem), &target, sizeof(cl_mem), &r.partial,
                       r.wg * sizeof(float), NULL));
    return reduction_end(rt, &r, values, slot, norm2);
fail:
    return st;
}

nst_status nst_style_loss(nst_runtime *rt, const nst_tensor *f, cl_mem gram_scratch,
                          cl_mem target, float target_norm2, float weight, nst_tensor *df,
                          cl_mem values, size_t slot) {
    nst_status st = NST_OK;
    NST_TRY(check_feature(rt, "style loss", f));
    if (df && !same_shape(f, df))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "style loss: feature %dx%dx%dx%d and "
                        "gradient %dx%dx%dx%d differ", f->n, f->c, f->h, f->w, df->n, df->c,
                        df->h, df->w);
    if (!(target_norm2 > 0.0f) || !isfinite(target_norm2))
        return bad_norm(rt, "style Gram", target_norm2);
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w, cc = c * c;
    NST_TRY(nst_gram(rt, gram_scratch, f));
    NST_TRY(style_diff(rt, gram_scratch, target, cc, target_norm2, values, slot));
    if (df) {
        /* dF[C,M] += weight * 4 / (C*M*||A||^2) * (G - A)[C,C] F[C,M] */
        double alpha = nst_style_grad_scale(weight, c, (double)m, target_norm2);
        NST_TRY(nst_gemm(rt, 0, 0, c, m, c, (float)alpha, gram_scratch, 0, c, f->buf, 0, m,
                         1.0f, df->buf, 0, m));
    }
    return NST_OK;
fail:
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
    return st;
}

/* ---- guided (masked) Gram matrices ------------------------------------- */

/* Fails unless buf holds at least `count` floats. */
static nst_status check_floats(nst_runtime *rt, const char *what, const char *name, cl_mem buf,
                               size_t count) {
    nst_status st = NST_OK;
    size_t bytes = 0;
    if (!buf)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: %s buffer is NULL", what, name);
    NST_CL(RTM(rt), clGetMemObjectInfo(buf, CL_MEM_SIZE, sizeof bytes, &bytes, NULL));
    if (bytes < count * sizeof(float))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: %s buffer holds %zu floats, %zu "
                        "needed (is the mask at this layer's resolution?)", what, name,
                        bytes / sizeof(float), count);
fail:
    return st;
}

/* out[C,M] = x[C,M] diag(mask) / sqrt(s[0]) (0 when s[0] is 0); out may be x. */
static nst_status mask_mul(nst_runtime *rt, size_t c, size_t m, cl_mem x, cl_mem mask, cl_mem s,
                           cl_mem out) {
    int n = (int)(c * m), im = (int)m, slot = 0;
    size_t wg = nst_wg_1d(rt), global = nst_round_up((size_t)n, wg);
    return nst_launch(rt, "loss", "loss_mask_mul", 1, &global, &wg, 7, sizeof(int), &n,
                      sizeof(int), &im, sizeof(cl_mem), &x, sizeof(cl_mem), &mask,
                      sizeof(cl_mem), &s, sizeof(int), &slot, sizeof(cl_mem), &out);
}

/* Checks f and the mask, computes s[0] = S = sum of mask^2 into a new
 * one-float buffer *s (the caller frees it) and fm = F diag(m) / sqrt(S). */
static nst_status masked_features(nst_runtime *rt, const char *what, const nst_tensor *f,
                                  cl_mem mask, cl_mem fm, cl_mem *s) {
    nst_status st = NST_OK;
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w;
    *s = NULL;
    NST_TRY(check_feature(rt, what, f));
    if (f->count > (size_t)INT_MAX)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "%s: %zu elements exceed the kernel's int "
                        "indexing", what, f->count);
    NST_TRY(check_floats(rt, what, "mask", mask, m));
    NST_TRY(check_floats(rt, what, "masked feature scratch", fm, c * m));
    NST_TRY(nst_buffer_create(rt, sizeof(float), s));
    NST_TRY(nst_sum_squares(rt, mask, m, *s, 0));
    NST_TRY(mask_mul(rt, c, m, f->buf, mask, *s, fm));
    return NST_OK;
fail:
    nst_buffer_free(rt, *s);
    *s = NULL;
    return st;
}

nst_status nst_gram_masked(nst_runtime *rt, cl_mem g, const nst_tensor *f, cl_mem mask,
                           cl_mem fm_scratch, float scale, int accumulate) {
    nst_status st = NST_OK;
    cl_mem own = NULL, s = NULL;
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w;
    float beta = accumulate ? 1.0f : 0.0f;
    NST_TRY(check_feature(rt, "masked Gram", f));
    NST_TRY(check_floats(rt, "masked Gram", "Gram", g, c * c));
    if (!mask) /* the whole image: the plain Gram */
        return nst_gemm(rt, 0, 1, c, c, m, scale / (float)((double)c * m), f->buf, 0, m,
                        f->buf, 0, m, beta, g, 0, c);
    if (!fm_scratch) {
        NST_TRY(nst_buffer_create(rt, c * m * sizeof(float), &own));
        fm_scratch = own;
    }
    NST_TRY(masked_features(rt, "masked Gram", f, mask, fm_scratch, &s));
    /* G[C,C] = scale/C * Fm Fm^T + beta G, Fm = F diag(m) / sqrt(S) */
    NST_TRY(nst_gemm(rt, 0, 1, c, c, m, scale / (float)c, fm_scratch, 0, m, fm_scratch, 0, m,
                     beta, g, 0, c));
fail:
    nst_buffer_free(rt, s);
    nst_buffer_free(rt, own);
    return st;
}

nst_status nst_style_loss_masked(nst_runtime *rt, const nst_tensor *f, cl_mem mask,
                                 cl_mem gram_scratch, cl_mem fm_scratch, cl_mem target,
                                 float target_norm2, float weight, nst_tensor *df,
                                 cl_mem values, size_t slot) {
    nst_status st = NST_OK;
    cl_mem s = NULL;
    const char *what = "masked style loss";
    if (!mask)
        return nst_style_loss(rt, f, gram_scratch, target, target_norm2, weight, df, values,
                              slot);
    NST_TRY(check_feature(rt, what, f));
    if (df && !same_shape(f, df))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: feature %dx%dx%dx%d and gradient "
                        "%dx%dx%dx%d differ", what, f->n, f->c, f->h, f->w, df->n, df->c,
                        df->h, df->w);
    if (!(target_norm2 > 0.0f) || !isfinite(target_norm2))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "%s: the region's style target has squared norm %g; it must be positive "
                        "and finite (is the region's style mask empty at this layer, or the "
                        "style image black there?)", what, (double)target_norm2);
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w, cc = c * c;
    NST_TRY(check_floats(rt, what, "Gram scratch", gram_scratch, cc));
    NST_TRY(check_floats(rt, what, "target", target, cc));
    /* fm = F diag(m) / sqrt(S); G_r = fm fm^T / C */
    NST_TRY(masked_features(rt, what, f, mask, fm_scratch, &s));
    NST_TRY(nst_gemm(rt, 0, 1, c, c, m, 1.0f / (float)c, fm_scratch, 0, m, fm_scratch, 0, m,
                     0.0f, gram_scratch, 0, c));
    NST_TRY(style_diff(rt, gram_scratch, target, cc, target_norm2, values, slot));
    if (df) {
        /* fm := F diag(m^2) / S, then
         * dF[C,M] += weight * 4 / (C*||A||^2) * (G_r - A)[C,C] fm[C,M] */
        NST_TRY(mask_mul(rt, c, m, fm_scratch, mask, s, fm_scratch));
        double alpha = nst_style_grad_scale(weight, c, 1.0, target_norm2);
        NST_TRY(nst_gemm(rt, 0, 0, c, m, c, (float)alpha, gram_scratch, 0, c, fm_scratch, 0, m,
                         1.0f, df->buf, 0, m));
    }
fail:
    nst_buffer_free(rt, s);
    return st;
}

nst_status nst_mask_downsample(nst_runtime *rt, cl_mem dst, int dh, int dw, cl_mem src, int sh,
                               int sw) {
    nst_status st = NST_OK;
    const char *what = "mask downsampling";
    if (sh < 2 || sw < 2 || dh != sh / 2 || dw != sw / 2 || (size_t)sh * sw > (size_t)INT_MAX)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: %dx%d to %dx%d; a 2x2 pool maps H x "
                        "W (each at least 2) to floor(H/2) x floor(W/2)", what, sh, sw, dh, dw);
    NST_TRY(check_floats(rt, what, "source", src, (size_t)sh * sw));
    NST_TRY(check_floats(rt, what, "destination", dst, (size_t)dh * dw));
    size_t local[2] = {8, 8};
    if (local[0] * local[1] > rt->info.max_work_group) local[0] = local[1] = 1;
    size_t global[2] = {nst_round_up((size_t)dw, local[0]), nst_round_up((size_t)dh, local[1])};
    NST_TRY(nst_launch(rt, "loss", "loss_mask_down", 2, global, local, 5, sizeof(int), &dh,
                       sizeof(int), &dw, sizeof(cl_mem), &src, sizeof(int), &sw, sizeof(cl_mem),
                       &dst));
fail:
    return st;
}
