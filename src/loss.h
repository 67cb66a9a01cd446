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

/* Total-variation loss of the image x [N,C,H,W] (normally [1,3,H,W] in
 * [0,1]); the mean runs over all N*C*H*W entries. dx: NULL or += weight *
 * gradient. */
nst_status nst_tv_loss(nst_runtime *rt, const nst_tensor *x, float weight, nst_tensor *dx,
                       cl_mem values, size_t slot);

#endif
