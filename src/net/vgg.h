/* vgg.h: a VGG feature extractor on the device: input normalisation (the
 * weights' convention), then the layers of the weights' network (net.h:
 * VGG-19's conv1_1 relu1_1 conv1_2 relu1_2 pool1 conv2_1 ... relu5_4 pool5,
 * or VGG-16's), built only as deep as the deepest requested tap, forward
 * and backward to the image. The structure comes from the network's table,
 * the channel widths from the weights, so the real networks and narrow
 * generated ones all run. Batch 1, float32 NCHW.
 *
 * Typical use, once per image size:
 *   nst_vgg_create(rt, w, taps, ntaps, 0, &m);   // uploads the weights
 *   nst_vgg_resize(rt, m, h, w);                  // activations + scratch
 *   per evaluation:
 *     nst_vgg_forward(rt, m, image);              // taps now hold features
 *     nst_vgg_zero_grad(rt, m);
 *     ... losses read nst_vgg_tap() and ADD into nst_vgg_tap_grad() ...
 *     nst_vgg_backward(rt, m, dimage);            // dimage = dL/dimage
 * Nothing is allocated or read back inside forward/backward/zero_grad.
 *
 * Convolutions: 3x3 layers run as Winograd F(4x4,3x3) (winograd.h) unless
 * the runtime's settings.conv (NST_CONV), read by nst_vgg_create, says otherwise:
 *   NST_CONV_WINOGRAD4 (winograd, winograd4)  F(4x4,3x3), the default
 *   NST_CONV_WINOGRAD2 (winograd2)            F(2x2,3x3) (2.25x fewer multiplications
 *                                             instead of 4x, a little more accurate)
 *   NST_CONV_IM2COL (im2col)                  im2col + GEMM (layers.h)
 * Other kernel sizes always use im2col. */
#ifndef NST_VGG_H
#define NST_VGG_H

#include "net.h"
#include "nst_int.h"
#include "weights.h"

#define NST_VGG_LAYERS 37 /* the most layers a VGG has: VGG-19's features 0..36 */

typedef struct nst_vgg nst_vgg;

/* Position of a VGG-19 layer name in its sequence (= torchvision's features
 * index), -1 if unknown. Names: convB_I, reluB_I (B 1..5, I 1..2 for B <= 2
 * and 1..4 after), poolB; every network's names are among them (VGG-16 has
 * I 1..3 for B >= 3). A model's own indices: nst_vgg_layer. */
int nst_vgg_layer_index(const char *name);
/* The name of VGG-19's layer `index` (0..36), NULL when out of range. */
const char *nst_vgg_layer_name(int index);

/* Builds the network of w (nst_weights_net) up to the deepest of
 * taps[0..ntaps-1] and uploads the weights it needs from w (borrowed; not
 * kept). avg_pool != 0 uses average pooling instead of max. Errors:
 * NST_ERR_INVALID_ARG for an unknown tap (the message lists the network's
 * layers) or no taps; NST_ERR_FORMAT from nst_net_match for a missing tensor,
 * a wrong rank or kernel, or in-channels that do not match the previous
 * layer (the message names the tensor). *out is owned by the caller:
 * nst_vgg_free. */
nst_status nst_vgg_create(nst_runtime *rt, const nst_weights *w, const char *const *taps,
                          int ntaps, int avg_pool, nst_vgg **out);

/* (Re)allocates the activations, tap gradients and scratch for an h x w image.
 * Call before the first forward and again for another size; pointers from
 * nst_vgg_tap/nst_vgg_tap_grad are invalid after it. NST_ERR_INVALID_ARG when
 * the image is too small for the deepest pooling (each pool halves, floor). */
nst_status nst_vgg_resize(nst_runtime *rt, nst_vgg *m, int h, int w);

/* Caps the convolution scratch (im2col columns, or Winograd's transformed
 * tiles and products) at `bytes` (default: 64 MiB or a quarter of the
 * device's largest allocation, whichever is smaller); takes effect at the next
 * nst_vgg_resize. Convolutions run in bands of rows that fit. */
void nst_vgg_set_scratch_cap(nst_vgg *m, size_t bytes);

/* image: [1,3,h,w], RGB in [0,1] (borrowed) -> every tap, normalised first
 * as the weights' input convention says. Overwrites the activations. */
nst_status nst_vgg_forward(nst_runtime *rt, nst_vgg *m, const nst_tensor *image);

/* The activation of a requested tap ([1,C,H',W']; a conv tap is before its
 * ReLU), owned by m; NULL for a name that was not requested. Valid until the
 * next resize or free. */
const nst_tensor *nst_vgg_tap(const nst_vgg *m, const char *name);
/* The gradient slot of a requested tap, same shape as the tap, owned by m;
 * losses ACCUMULATE dL/dtap into it. NULL for a name that was not requested. */
nst_tensor *nst_vgg_tap_grad(nst_vgg *m, const char *name);

/* Layer i's output as the last forward left it ([1,C,H',W'], owned by m),
 * kept for every ReLU and pool and for tapped convs; NULL for a conv fused
 * with its ReLU or i outside [0, depth). Valid until the next resize or free. */
const nst_tensor *nst_vgg_output(const nst_vgg *m, int i);

/* Zeroes every tap gradient. */
nst_status nst_vgg_zero_grad(nst_runtime *rt, nst_vgg *m);

/* dimage: [1,3,h,w] <- dL/dimage (through the normalisation) given the tap
 * gradients and the activations of the last forward. OVERWRITES dimage. The
 * tap gradients are left as they were. */
nst_status nst_vgg_backward(nst_runtime *rt, nst_vgg *m, nst_tensor *dimage);

/* Device bytes the model needs for an h x w image: weights (as uploaded)
 * plus everything nst_vgg_resize would allocate. 0 when the image is too small. */
size_t nst_vgg_memory_bytes(const nst_vgg *m, int h, int w);
/* The largest activation or gradient buffer nst_vgg_resize allocates for an
 * h x w image (the image or the largest layer output; the convolution
 * scratch is capped apart, nst_vgg_set_scratch_cap). */
size_t nst_vgg_largest_bytes(const nst_vgg *m, int h, int w);
/* The channels of a built layer and its stride: the layer is (H/stride) x
 * (W/stride) for an H x W image (each pool floor-halves). 0, or -1 for a
 * name that is not a layer of m. */
int nst_vgg_tap_shape(const nst_vgg *m, const char *name, int *channels, int *stride);
/* Convolution FLOPs of one forward plus one backward at the current size
 * (2 per multiply-add; the backward is to the input only). */
double nst_vgg_flops(const nst_vgg *m);
/* Layers built (deepest tap + 1). */
int nst_vgg_depth(const nst_vgg *m);
/* The network m was built from. */
const nst_net *nst_vgg_net(const nst_vgg *m);
/* A layer's index in m's network, -1 when it has no such layer. */
int nst_vgg_layer(const nst_vgg *m, const char *name);
/* Output channels of layer i (< depth) as the weights give them; 0 beyond. */
int nst_vgg_channels(const nst_vgg *m, int i);
/* The Winograd tile size of the 3x3 convolutions (4 or 2), 0 for im2col. */
int nst_vgg_winograd(const nst_vgg *m);

/* Releases everything m owns; accepts NULL. */
void nst_vgg_free(nst_runtime *rt, nst_vgg *m);

#endif
