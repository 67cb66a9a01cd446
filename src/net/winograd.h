/* winograd.h: 3x3 stride-1 pad-1 convolution (forward, and backward to the
 * input) as Winograd F(m x m, 3x3), m = 2 (4x4 tiles, 16 GEMMs, 2.25x fewer
 * multiplications) or m = 4 (6x6 tiles, 36 GEMMs, 4x fewer), alpha = m + 2.
 * Same contract as nst_conv2d_forward / nst_conv2d_backward_input (layers.h)
 * but the weights are given transformed once by nst_winograd_filter, and one
 * transformed tensor U serves both passes (the backward reads it transposed
 * and permuted; see cl/winograd.cl). The image is processed in bands of tile
 * rows so that the transformed input V and product M fit the scratch:
 *   V [alpha^2][Cin][P], M [alpha^2][Cout][P], P = tiles in the band.
 * All tensors are borrowed; calls only enqueue work (no allocation, no
 * read back). */
#ifndef NST_WINOGRAD_H
#define NST_WINOGRAD_H

#include "nst_int.h"

/* The convolution of 3x3 layers rt's settings choose (settings.conv, NST_CONV):
 * 4 (F(4x4,3x3), the default), 2 (F(2x2,3x3)) or 0 (im2col); -1 for a value
 * that is none of them. */
int nst_winograd_mode(const nst_runtime *rt);

/* w: [K,C,3,3] -> u: [alpha^2, K, C, 1] (n = alpha^2, c = K, h = C, w = 1),
 * u[a][k][c] = (G w[k][c] G^T)[a]. Overwrites u. m is 2 or 4. */
nst_status nst_winograd_filter(nst_runtime *rt, int m, nst_tensor *u, const nst_tensor *w);

/* Floats of scratch a 3x3 convolution between C and K channels of an H x W
 * image needs under a cap of cap_floats (either direction: V and M together
 * hold alpha^2 * (C + K) floats per tile): all tile rows when they fit, else
 * the most that fit, at least one tile row whatever the cap. */
size_t nst_winograd_scratch_floats(int m, int C, int K, int H, int W, size_t cap_floats);

/* x: [1,C,H,W]  u: from nst_winograd_filter of w [K,C,3,3]  b: [K]
 *   -> y: [1,K,H,W] = conv(x, w) + b, then max(., 0) when relu != 0.
 * Overwrites y. NST_ERR_INVALID_ARG on mismatched shapes, NST_ERR_TOO_LARGE
 * when not even one tile row fits the scratch. */
nst_status nst_winograd_forward(nst_runtime *rt, int m, nst_tensor *y, const nst_tensor *x,
                                const nst_tensor *u, const nst_tensor *b, int relu,
                                cl_mem scratch, size_t scratch_floats);

/* dy: [1,K,H,W]  u: as for the forward (of w [K,C,3,3]) -> dx: [1,C,H,W] =
 * dL/dx of y = conv(x, w) + b. ACCUMULATES into dx when accumulate != 0, else
 * overwrites it. Scratch as for the forward. relu_out (NULL: none; dy's
 * shape) fuses the backward pass of a ReLU after the convolution: dy counts
 * only where relu_out is positive, as after nst_relu_backward(dy, relu_out). */
nst_status nst_winograd_backward_input(nst_runtime *rt, int m, nst_tensor *dx,
                                       const nst_tensor *dy, const nst_tensor *relu_out,
                                       const nst_tensor *u, int accumulate, cl_mem scratch,
                                       size_t scratch_floats);

#endif
