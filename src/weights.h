/* weights.h: VGG-19 weights on the host, in torchvision's layout.
 *
 * Tensors are named "features.N.weight" ([out,in,3,3], OIHW) and
 * "features.N.bias" ([out]), N the index in torchvision's vgg19().features:
 *   0 conv1_1   2 conv1_2   5 conv2_1   7 conv2_2  10 conv3_1 12 conv3_2
 *  14 conv3_3  16 conv3_4  19 conv4_1  21 conv4_2  23 conv4_3 25 conv4_4
 *  28 conv5_1  30 conv5_2  32 conv5_3  34 conv5_4
 * Whatever the file's dtype (F32, F16, BF16), data is held as float32. */
#ifndef NST_WEIGHTS_H
#define NST_WEIGHTS_H

#include <stdint.h>

#include "nst.h"

#define NST_VGG_CONVS 16
/* torchvision feature index of the i-th convolution (0..15). */
extern const int nst_vgg_conv_index[NST_VGG_CONVS];
/* Output channels of the i-th convolution in the real VGG-19. */
extern const int nst_vgg_conv_width[NST_VGG_CONVS];

typedef struct nst_weight {
    char name[64];
    int rank;
    int64_t shape[4];
    size_t count; /* product of shape */
    float *data;  /* count floats, owned by the nst_weights */
} nst_weight;

typedef struct nst_weights {
    nst_weight *t;
    int count;
} nst_weights;

/* Looks a tensor up by name; NULL when absent. */
const nst_weight *nst_weights_find(const nst_weights *w, const char *name);
/* Adds a tensor of the given shape (data zeroed); returns it, NULL on OOM. */
nst_weight *nst_weights_add(nst_weights *w, const char *name, int rank, const int64_t *shape);
void nst_weights_free(nst_weights *w);

/* A deterministic VGG-19-topology network: widths are the real ones times
 * width_mult (at least 1), `convs` convolutions (1..16) from conv1_1 on,
 * weights uniform with He variance so activations keep their scale through
 * 16 layers, biases small. Same seed and arguments: same values everywhere. */
nst_status nst_weights_generate(nst_weights **out, uint64_t seed, double width_mult, int convs,
                                nst_msg *msg);

#endif
