/* temporal.h: the temporal loss of video style transfer (term_temporal.c).
 *
 *   L = sum_i c_i (x_i - t_i)^2 / D,    D = the entries of x (N*C*H*W)
 *
 * with c the mask, one float per position (H*W, shared by the channels).
 * Writes the UNWEIGHTED value into values[slot] and, when dx is not NULL,
 * ACCUMULATES weight * dL/dx = weight * 2 c_i (x_i - t_i) / D into dx, as the
 * losses of loss.h do. */
#ifndef NST_TEMPORAL_H
#define NST_TEMPORAL_H

#include "nst_int.h"

nst_status nst_temporal_loss(nst_runtime *rt, const nst_tensor *x, const nst_tensor *target,
                             cl_mem mask, float weight, nst_tensor *dx, cl_mem values,
                             size_t slot);

#endif
