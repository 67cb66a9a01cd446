/* net.h: the networks nst knows, each described once as a table of its
 * feature layers in torchvision's order (the row index is the
 * `features.N` index of the published weights). Everything that needs the
 * network's structure derives it from here: the model on the device
 * (vgg.c), the memory plan (plan.c), the tiling halo (tiled.c), the plain-C
 * reference (ref_layers.c), the device check (devcheck.c), the weight
 * generator and converter.
 *
 * The table gives the structure (kind, kernel, stride, padding, names, the
 * published widths); the channel widths a model uses come from its weights,
 * matched against the table by nst_net_match, so a narrow generated network
 * runs the same code as the published one.
 *
 * To add a network: write its table in net.c (the CONV/RELU/POOL rows), add
 * it to the list there and to nst_network in nst.h; its torchvision file name
 * goes in the table too. Layer kinds beyond these three need their code in
 * vgg.c (device), ref_layers.c (reference) and nst_net_receptive. */
#ifndef NST_NET_H
#define NST_NET_H

#include "nst.h"

#define NST_NET_MAX_LAYERS 44 /* the WCT encoder of level 5 (0..43); VGG-19's
                                 features are 0..36 */
#define NST_NET_MAX_CONVS 16

typedef enum nst_layer_kind {
    NST_LAYER_CONV, /* convolution with bias, stride 1, zero padding */
    NST_LAYER_RELU,
    NST_LAYER_POOL, /* max pooling, or average pooling by the run's option;
                       ceil_mode: odd sides round up (the window is cut) */
    NST_LAYER_PAD,      /* reflection padding by `pad` on every side (the WCT
                           models: the next row is a conv with pad 0, which
                           runs as one convolution with reflected borders) */
    NST_LAYER_UPSAMPLE  /* nearest-neighbour upsampling x2 (the WCT decoders) */
} nst_layer_kind;

typedef struct nst_net_layer {
    char name[8];        /* "conv1_1", "relu1_1", "pool1" */
    nst_layer_kind kind;
    int kernel, stride, pad; /* conv 3,1,1; relu 1,1,0; pool 2,2,0 */
    int width;           /* conv: output channels of the published network */
    int ceil_mode;       /* pool: 1 = ceil (PyTorch's ceil_mode), 0 = floor */
} nst_net_layer;

typedef struct nst_net {
    nst_network id;
    const char *name;             /* as --network takes it: "vgg19" */
    const char *title;            /* in messages: "VGG-19" */
    const char *torchvision_file; /* torchvision's release: "vgg19-dcbb9e9d.pth" */
    const char *trimmed_file;     /* what `make weights` writes: "vgg19-conv.safetensors" */
    int nlayers;
    nst_net_layer layer[NST_NET_MAX_LAYERS];
    const char *prefix;           /* of the tensor names: NULL = "features." (torchvision);
                                     "" for a bare nn.Sequential ("2.weight") */
    int in_channels;              /* channels of the input; 0 = 3 (an RGB image) */
} nst_net;

/* The description of a network; NULL for NST_NETWORK_AUTO or an unknown id. */
const nst_net *nst_net_get(nst_network id);
/* By name ("vgg19", "vgg16"; case-insensitive, "vgg-19" too); NULL if unknown. */
const nst_net *nst_net_find(const char *name);
/* The known networks, i = 0.. until NULL (VGG-19 first: the default). */
const nst_net *nst_net_at(int i);

/* Position of a layer name in n (its features index), -1 if unknown. */
int nst_net_index(const nst_net *n, const char *name);
/* The name of layer i, NULL when out of range. */
const char *nst_net_layer_name(const nst_net *n, int i);
/* The product of the strides of layers 0..i: an image side over layer i's
 * side (each pool floor-halves). 1 for i < 0. */
int nst_net_stride(const nst_net *n, int i);
/* Convolutions in the table. */
int nst_net_convs(const nst_net *n);
/* The layer index of the k-th convolution (0-based), -1 when out of range. */
int nst_net_conv_layer(const nst_net *n, int k);
/* Writes "conv1_1, relu1_1, ..., pool5" into buf (cut to len). */
void nst_net_list(const nst_net *n, char *buf, size_t len);

/* The receptive field of layers 0..depth-1, walking down from position 0 of
 * the deepest: *align = its stride (2^pools), *halo = the pixels one of its
 * positions reaches beyond its own stride-sized cell on either side, rounded
 * up to a multiple of *align (what a tile needs around what it owns). */
void nst_net_receptive(const nst_net *n, int depth, int *halo, int *align);

/* The WCT models (universal style transfer, Li et al. 2017), as published
 * in PyTorch form (bare nn.Sequential state dicts, "N.weight"): the encoder
 * is VGG-19 normalised, its input an RGB image in [0,1] through a 1x1
 * convolution (which maps it to Caffe's convention), then reflection-padded
 * 3x3 convolutions and ceil-mode max pooling up to relu5_1; level L's file
 * holds its rows up to reluL_1 (nst_net_wct_depth). Level L's decoder
 * mirrors that encoder (each pool an upsampling, each convolution reversed,
 * no ReLU after the last), from reluL_1's channels back to RGB. level 1..5;
 * NULL / 0 out of range. */
const nst_net *nst_net_wct_encoder(void);
int nst_net_wct_depth(int level);
const nst_net *nst_net_wct_decoder(int level);

/* ---- against the weights ------------------------------------------------- */

struct nst_weights;

/* Channels of each layer as the weights give them. */
typedef struct nst_net_shape {
    int depth;                     /* layers matched */
    int cin[NST_NET_MAX_LAYERS];   /* input channels (3 for layer 0) */
    int cout[NST_NET_MAX_LAYERS];  /* output channels */
} nst_net_shape;

/* Matches layers 0..depth-1 of n against w: every convolution's
 * "features.N.weight" [out, in, k, k] and "features.N.bias" [out] present,
 * k the table's kernel, in the previous layer's channels (3 for the first),
 * biases as many as outputs (names with n's prefix; the first layer takes
 * n's in_channels). Fills shape (may be NULL). NST_ERR_FORMAT names
 * the file (w->source), the tensor, the layer and what was expected. */
nst_status nst_net_match(const nst_net *n, const struct nst_weights *w, int depth,
                         nst_net_shape *shape, nst_msg *msg);
/* The whole file against n: every "features.N.*" tensor is the weight or
 * bias of a convolution of n (anything else there, such as a batch norm or a
 * layer of another network, is refused, naming it), the convolutions present
 * are a prefix of n's (conv1_1 onwards, none skipped), and nst_net_match
 * holds for them. Tensors outside "features." (a classifier) are ignored. */
nst_status nst_net_check(const nst_net *n, const struct nst_weights *w, nst_msg *msg);
/* Which known network w's convolutions belong to: the one whose own
 * features indices appear (VGG-16 has convolutions at 17, 24 and 26, VGG-19
 * at 16, 23, 25, 30, 32 and 34); VGG-19 when nothing tells them apart (the
 * layers they share have the same structure). NST_ERR_FORMAT, naming a tensor
 * of each, when w mixes the two. */
nst_status nst_net_detect(const struct nst_weights *w, const nst_net **out, nst_msg *msg);

/* ---- input conventions ----------------------------------------------------- */

/* How an RGB image in [0,1] becomes the first layer's input:
 * in[c] = (image[bgr ? 2 - c : c] - mean[c]) / std[c]. */
typedef struct nst_input_norm {
    const char *name; /* as a weight file declares it ("input" in safetensors metadata) */
    int bgr;          /* the network's channels are B, G, R */
    double mean[3], std[3];
} nst_input_norm;

typedef enum nst_input {
    NST_INPUT_TORCHVISION = 0, /* RGB in [0,1], ImageNet mean and std */
    NST_INPUT_CAFFE = 1        /* BGR in [0,255] minus the mean pixel (103.939,
                                  116.779, 123.68), no std: the original Oxford
                                  release of VGG */
} nst_input;

/* The convention's constants; NULL for an unknown value. */
const nst_input_norm *nst_input_get(int input);
/* By name ("torchvision", "caffe"); -1 when unknown. */
int nst_input_find(const char *name);

#endif
