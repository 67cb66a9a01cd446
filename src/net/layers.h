/* layers.h: the layers of a VGG network on the device, one forward/backward
 * pair per op (batch 1, float32 NCHW tensors):
 *   convolution, stride 1, odd square kernel R, pad (R-1)/2, as im2col + GEMM
 *     (CLBlast), with bias and an optional ReLU fused after the GEMM; its
 *     backward is to the input only (weights are frozen), as a convolution of
 *     dy with the transposed, flipped kernel;
 *   ReLU; 2x2 stride-2 max and average pooling (odd sizes floor, as PyTorch);
 *   the ImageNet input normalisation.
 * All tensors are borrowed. Nothing is allocated and nothing is read back:
 * each call only enqueues work on rt's queue. */
#ifndef NST_LAYERS_H
#define NST_LAYERS_H

#include "nst_int.h"

/* The default cap of a convolution's im2col scratch: 64 MiB, or a quarter of
 * the device's largest allocation if that is smaller (in floats). */
size_t nst_conv2d_scratch_cap(const nst_runtime *rt);

/* Floats of im2col scratch a convolution over C input channels, kernel R and
 * an H x W image uses under a cap of cap_floats: the whole column matrix
 * (C*R*R x H*W) when it fits, else bands of whole rows, at least one row
 * (C*R*R x W) whatever the cap. 0 for R == 1 (no im2col needed). */
size_t nst_conv2d_scratch_floats(int C, int R, int H, int W, size_t cap_floats);

/* x: [1,C,H,W]  w: [K,C,R,R] (n=K, c=C, h=w=R, R odd)  b: [K] (count K)
 *   -> y: [1,K,H,W] = conv(x, w) + b, then max(., 0) when relu != 0.
 * Overwrites y. scratch holds scratch_floats floats (see
 * nst_conv2d_scratch_floats); the image is processed in bands of rows that fit.
 * NST_ERR_INVALID_ARG on mismatched shapes, NST_ERR_TOO_LARGE when not even
 * one row fits the scratch. */
nst_status nst_conv2d_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x,
                              const nst_tensor *w, const nst_tensor *b, int relu, cl_mem scratch,
                              size_t scratch_floats);

/* w: [K,C,R,R] -> wf: [C,K,R,R], wf[c][k][i][j] = w[k][c][R-1-i][R-1-j]: the
 * kernel nst_conv2d_backward_input needs. Overwrites wf. */
nst_status nst_conv2d_flip(nst_runtime *rt, nst_tensor *wf, const nst_tensor *w);

/* dy: [1,K,H,W]  wf: [C,K,R,R] (from nst_conv2d_flip) -> dx: [1,C,H,W],
 * dx = dL/dx of y = conv(x, w) + b given dy = dL/dy. ACCUMULATES into dx
 * when accumulate != 0, else overwrites it. Scratch as for the forward pass,
 * with K input channels. */
nst_status nst_conv2d_backward_input(nst_runtime *rt, nst_tensor *dx, const nst_tensor *dy,
                                     const nst_tensor *wf, int accumulate, cl_mem scratch,
                                     size_t scratch_floats);

/* y = max(x, 0), any shape (same count). Overwrites y; y may be x. */
nst_status nst_relu_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x);
/* dx = dy where y > 0 else 0, y the forward's OUTPUT. Overwrites dx; dx may be
 * dy (in place). */
nst_status nst_relu_backward(nst_runtime *rt, nst_tensor *dx, const nst_tensor *y,
                             const nst_tensor *dy);

/* x: [1,C,H,W] -> y: [1,C,H/2,W/2] (floor), 2x2 windows, stride 2; max pooling
 * when max != 0, else average. Overwrites y. */
nst_status nst_pool_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x, int max);
/* dy: [1,C,H/2,W/2], x the forward's input -> dx: [1,C,H,W]. Max pooling
 * routes each gradient to its window's first maximum (recomputed from x);
 * average pooling spreads a quarter to each; dropped rows/columns get 0.
 * Overwrites dx. */
nst_status nst_pool_backward(nst_runtime *rt, nst_tensor *dx, const nst_tensor *x,
                             const nst_tensor *dy, int max);

/* The layers of the WCT models (net.h's NST_LAYER_PAD, ceil-mode pooling,
 * NST_LAYER_UPSAMPLE), forward only:
 * a convolution as nst_conv2d_forward but with reflection padding by
 * (R-1)/2 (H and W must exceed it); */
nst_status nst_conv2d_forward_reflect(nst_runtime *rt, nst_tensor *y, const nst_tensor *x,
                                      const nst_tensor *w, const nst_tensor *b, int relu,
                                      cl_mem scratch, size_t scratch_floats);
/* 2x2 stride-2 max pooling, ceil mode: y [1,C,(H+1)/2,(W+1)/2]; */
nst_status nst_pool_max_ceil_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x);
/* nearest-neighbour upsampling x2: y [1,C,2H,2W]; */
nst_status nst_upsample_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x);
/* xp [1,C,H+2p,W+2p] = x reflection-padded by p (0 <= p < H, W), and its
 * inverse crop y [1,C,H,W] = the interior of yp: a reflected convolution as
 * a same-size one (Winograd) on the padded image. Each overwrites its
 * output. */
nst_status nst_pad_reflect_forward(nst_runtime *rt, nst_tensor *xp, const nst_tensor *x, int p);
nst_status nst_crop_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *yp, int p);

/* The ImageNet statistics of torchvision's VGG weights (RGB, [0,1] input). */
extern const float nst_imagenet_mean[3];
extern const float nst_imagenet_std[3];

/* x: [1,3,H,W] -> y[c] = (x[c'] - mean[c]) / std[c], c' = 2 - c when bgr
 * (a network that takes B, G, R), else c. Overwrites y; y may be x unless
 * bgr. */
nst_status nst_normalize_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x,
                                 const float mean[3], const float std[3], int bgr);
/* dx[c] = dy[c'] / std[c'], c' as above. Overwrites dx; dx may be dy unless
 * bgr. */
nst_status nst_normalize_backward(nst_runtime *rt, nst_tensor *dx, const nst_tensor *dy,
                                  const float std[3], int bgr);

#endif
