/* fwdnet.h: any network table of net.h run forward only on the device,
 * batch 1, float32 NCHW: convolutions (zero padding as the table says, or
 * reflection padding when an NST_LAYER_PAD row comes first), ReLUs fused
 * after their convolution, max pooling (floor or ceil mode) and nearest
 * upsampling. The WCT encoders and decoders run on it (src/run/wct.c).
 * Unlike vgg.h it keeps no activations and has no backward: each forward
 * allocates what it needs for its input's size and frees it on return. */
#ifndef NST_FWDNET_H
#define NST_FWDNET_H

#include "net.h"
#include "nst_int.h"
#include "weights.h"

typedef struct nst_fwdnet nst_fwdnet;

/* Layers 0..depth-1 of net (depth <= net->nlayers; 0 = all), the weights
 * matched against the table (nst_net_match: NST_ERR_FORMAT naming the file
 * and the tensor) and uploaded from w (borrowed, not kept). A PAD row must
 * be followed by a convolution without padding. */
nst_status nst_fwdnet_create(nst_runtime *rt, const nst_net *net, int depth, const nst_weights *w,
                             nst_fwdnet **out);
/* The output's channels and size for an h x w input; -1 when the input is
 * too small for a layer (reflection padding needs sides above the pad, a
 * floor pool at least 2), else 0. */
int nst_fwdnet_shape(const nst_fwdnet *f, int h, int w, int *c, int *oh, int *ow);
/* Input channels (the first layer's). */
int nst_fwdnet_in_channels(const nst_fwdnet *f);
/* x: [1,in,H,W] (borrowed) -> *y: a new [1,c,oh,ow] tensor (the caller frees
 * it with nst_tensor_free). NST_ERR_INVALID_ARG for a wrong shape or an input
 * too small. */
nst_status nst_fwdnet_forward(nst_runtime *rt, nst_fwdnet *f, const nst_tensor *x,
                              nst_tensor **y);
/* Device bytes of the uploaded weights. */
size_t nst_fwdnet_weight_bytes(const nst_fwdnet *f);
void nst_fwdnet_free(nst_runtime *rt, nst_fwdnet *f);

#endif
