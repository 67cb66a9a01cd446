/* loss.h: the losses of style transfer (DESIGN.md section 1) and the device
 * reductions behind them.
 *
 * A feature map F is a [1,C,H,W] tensor viewed as a C x M matrix, M = H*W.
 *   content  ||F - P||^2 / ||P||^2                d/dF = 2 (F - P) / ||P||^2
 *   Gram     G(F) = F F^T / (C*M)
 *   style    ||G(F) - A||^2 / ||A||^2             d/dF = 4 (G - A) F / (C*M*||A||^2)
 *   TV       mean over the n*c*h*w entries of (x[i+1,j]-x[i,j])^2 + (x[i,j+1]-x[i,j])^2,
 *            terms beyond the border are zero
 *
 * Each loss writes its UNWEIGHTED value into the device float `values[slot]`
 * (a buffer the caller owns and reads back once per evaluation) and, when the
 * gradient tensor is not NULL, ACCUMULATES weight * gradient into it. Nothing
 * is read back to the host inside these calls. Reductions are deterministic:
 * the same device and shapes give the same bits on every run.
 *
 * Scratch: each reducing call allocates (and releases) a small buffer of
 * per-work-group partial sums, at most 4 KiB. */
#ifndef NST_LOSS_H
#define NST_LOSS_H

#include "nst_int.h"

/* Largest work-group size for a reducing kernel `name` of `program`: a
 * power of two no larger than 256 or the kernel's own limit on this device. */
nst_status nst_reduce_wg(nst_runtime *rt, const char *program, const char *name, size_t *wg);

/* out[slot] = sum of x[i]^2 over n floats (for ||P||^2 and ||A||^2). */
nst_status nst_sum_squares(nst_runtime *rt, cl_mem x, size_t n, cl_mem out, size_t slot);
/* out[slot] = sum of |x[i]| over n floats. */
nst_status nst_sum_abs(nst_runtime *rt, cl_mem x, size_t n, cl_mem out, size_t slot);

/* Content loss of f against the target p (same shape). p_norm2 = ||P||^2 > 0
 * (compute it once with nst_sum_squares and read it back). df: NULL, or a
 * tensor shaped like f that receives += weight * gradient. */
nst_status nst_content_loss(nst_runtime *rt, const nst_tensor *f, const nst_tensor *p,
                            float p_norm2, float weight, nst_tensor *df, cl_mem values,
                            size_t slot);

/* g[C*C] = G(f), overwritten. f: [1,C,H,W]. */
nst_status nst_gram(nst_runtime *rt, cl_mem g, const nst_tensor *f);
/* g[C*C] += scale * G(f): builds the blend A = sum_k b_k G(s_k) of several
 * style images (start from a zeroed g). */
nst_status nst_gram_accumulate(nst_runtime *rt, cl_mem g, const nst_tensor *f, float scale);

/* Style loss of f against the target Gram `target` (C*C floats) with
 * target_norm2 = ||A||^2 > 0. gram_scratch: C*C floats the call overwrites
 * (it ends holding G(f) - A). df: NULL or += weight * gradient. */
nst_status nst_style_loss(nst_runtime *rt, const nst_tensor *f, cl_mem gram_scratch,
                          cl_mem target, float target_norm2, float weight, nst_tensor *df,
                          cl_mem values, size_t slot);

/* The factor of the style gradient, dL/dF = factor * (G - A) F, for a loss
 * weighted by `weight` against a target with ||A||^2 = norm2 and a Gram
 * normalised by c channels times m positions (m = 1 for a masked Gram,
 * whose 1/S is inside F). The whole-image, masked and tiled gradients all
 * take it from here. */
static inline double nst_style_grad_scale(double weight, size_t c, double m, float norm2) {
    return 4.0 * weight / ((double)c * m * norm2);
}

/* Total-variation loss of the image x [N,C,H,W] (normally [1,3,H,W] in
 * [0,1]); the mean runs over all N*C*H*W entries. dx: NULL or += weight *
 * gradient. */
nst_status nst_tv_loss(nst_runtime *rt, const nst_tensor *x, float weight, nst_tensor *dx,
                       cl_mem values, size_t slot);

/* ---- guided (masked) Gram matrices: spatial control -------------------- */
/* After Gatys et al. 2017, "Controlling perceptual factors in neural style
 * transfer". A region r has a soft mask m (M = H*W floats in [0,1] at the
 * feature map's resolution, see nst_mask_downsample). With S = sum_p m_p^2
 * and F_r = F diag(m) (each position scaled by its mask value):
 *
 *   masked Gram   G_r = F_r F_r^T / (C*S)
 *   region loss   L_r = ||G_r - A_r||^2 / ||A_r||^2
 *   gradient      dL_r/dF = 4 (G_r - A_r) F diag(m^2) / (C*S*||A_r||^2)
 *
 * Dividing by S instead of M makes G_r a mean over the region, independent of
 * its area (a region of uniform texture gives the same G_r whatever its
 * size), and an all-ones mask (S = M) gives exactly the plain Gram and style
 * loss above. For binary complementary masks, sum_r (S_r/M) G_r = G. A_r is
 * the masked Gram of the style image assigned to region r under its own
 * style mask, or its plain Gram (mask NULL) when it has none.
 *
 * S is computed on the device, so nothing is read back. An empty mask
 * (S = 0 at this resolution) gives G_r = 0: the loss is then the constant 1
 * with zero gradient.
 *
 * Scratch: the calls below allocate and release a one-float buffer for S and
 * the reduction partials (at most 4 KiB). */

/* g[C*C] = scale * G_r(f) (accumulate 0) or g += scale * G_r(f) (accumulate
 * 1; blends several style images, start from a zeroed g). f: [1,C,H,W].
 * mask: H*W floats, or NULL for the whole image (the plain Gram). fm_scratch:
 * C*H*W floats the call overwrites, or NULL to allocate them for the call
 * (targets are built once, so that is fine there). */
nst_status nst_gram_masked(nst_runtime *rt, cl_mem g, const nst_tensor *f, cl_mem mask,
                           cl_mem fm_scratch, float scale, int accumulate);

/* Region style loss L_r of f against the target Gram `target` (C*C floats)
 * with target_norm2 = ||A_r||^2 > 0 (nst_sum_squares once, read back).
 * mask: H*W floats, or NULL for the whole image (then as nst_style_loss).
 * gram_scratch: C*C floats, overwritten (ends holding G_r - A_r).
 * fm_scratch: C*H*W floats, overwritten. df: NULL or += weight * gradient.
 * The unweighted value goes to values[slot]. */
nst_status nst_style_loss_masked(nst_runtime *rt, const nst_tensor *f, cl_mem mask,
                                 cl_mem gram_scratch, cl_mem fm_scratch, cl_mem target,
                                 float target_norm2, float weight, nst_tensor *df,
                                 cl_mem values, size_t slot);

/* One 2x2 pooling step for a mask: dst[dh*dw] = mean of each 2x2 block of
 * src[sh*sw], with dh = sh/2 and dw = sw/2 (floor, as VGG's pools; an odd
 * last row or column is dropped). Chain it once per pool between the image
 * and a layer to get that layer's mask (convolutions keep the size). */
nst_status nst_mask_downsample(nst_runtime *rt, cl_mem dst, int dh, int dw, cl_mem src, int sh,
                               int sw);

#endif
