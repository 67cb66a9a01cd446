/* wct.h: the pieces of universal style transfer behind nst_wct_run (nst.h),
 * for the tests and the device check.
 *
 * Features are a level's encoder output [1,C,H,W], read as a C x N matrix
 * (N = H*W positions). A region is a [N] tensor of 0/1 weights (NULL: every
 * position). Statistics are the mean and the unbiased covariance
 * sum (f - mean)(f - mean)^T / (n - 1) over the region's n positions.
 *
 * The transform, per region with content statistics (mc, Cc) and painting
 * statistics (ms, Cs):
 *   whiten  W = E (D + eps)^(-1/2) E^T   for Cc = E D E^T
 *   colour  K = Es Ds^(1/2) Es^T         for Cs = Es Ds Es^T
 *   f' = K W (f - mc) + ms, then alpha f' + (1 - alpha) f;
 * eigenvalues below NST_WCT_EIG_MIN are dropped (their directions get 0), as
 * in Li et al.'s code. Blended paintings use sum_k w_k K_k in place of K and
 * sum_k w_k ms_k in place of ms. */
#ifndef NST_WCT_H
#define NST_WCT_H

#include "nst_int.h"

#define NST_WCT_EIG_MIN 1e-5

/* The symmetric c x c matrix cov's power: out = E g(D) E^T with g(d) =
 * (d + eps)^power for d + eps >= NST_WCT_EIG_MIN, else 0. power -1/2
 * whitens, 1/2 colours. On the host in double (LAPACKE_dsyevd). */
nst_status nst_wct_matrix_power(int c, const double *cov, double eps, double power, double *out,
                                nst_msg *msg);

/* Mean [C] and covariance [C*C] (double, on the host) of f over region b
 * (NULL: all) holding n positions (n >= 2), computed on the device. */
nst_status nst_wct_stats(nst_runtime *rt, const nst_tensor *f, const nst_tensor *b, double n,
                         double *mean, double *cov);

/* One level's transform of content features fc into out (same shape; may not
 * be fc). nstyles paintings' statistics smean[k] [C], scov[k] [C*C]; with
 * regions (NULL or nstyles [N] 0/1 tensors, disjoint, counts n[k]) each
 * painting k in its region, positions of no region (uncovered: a [N] tensor,
 * 1 there) kept; else blended by blend (NULL = equal). */
nst_status nst_wct_transform(nst_runtime *rt, const nst_tensor *fc, int nstyles,
                             const double *const *smean, const double *const *scov,
                             const double *blend, const nst_tensor *const *regions,
                             const double *n, const nst_tensor *uncovered, double alpha,
                             double eps, nst_tensor *out);

#endif
