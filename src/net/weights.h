/* weights.h: a network's weights on the host, in torchvision's layout.
 *
 * Tensors are named "features.N.weight" ([out,in,k,k], OIHW) and
 * "features.N.bias" ([out]), N the layer's index in torchvision's
 * vgg19().features or vgg16().features; net.h has the tables (for VGG-19:
 *   0 conv1_1   2 conv1_2   5 conv2_1   7 conv2_2  10 conv3_1 12 conv3_2
 *  14 conv3_3  16 conv3_4  19 conv4_1  21 conv4_2  23 conv4_3 25 conv4_4
 *  28 conv5_1  30 conv5_2  32 conv5_3  34 conv5_4).
 * Whatever the file's dtype (F32, F16, BF16), data is held as float32. */
#ifndef NST_WEIGHTS_H
#define NST_WEIGHTS_H

#include <stdint.h>
#include <stdio.h>

#include "net.h"
#include "nst.h"

#define NST_VGG_CONVS 16 /* convolutions of VGG-19 */

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
    const nst_net *net; /* the network the tensors were matched against (by
                           nst_weights_load_network or the generator); NULL:
                           nst_weights_net detects it */
    int input;          /* nst_input: the convention the first layer expects,
                           from the file's metadata (default torchvision) */
    char source[256];   /* the file, for messages; "" when none */
} nst_weights;

/* The public model handle (nst.h): its weights, as loaded or generated. */
struct nst_model {
    nst_weights *weights;
};

/* The network w follows: w->net, else detected from its tensor names
 * (nst_net_detect; VGG-19 when nothing tells). Never NULL. */
const nst_net *nst_weights_net(const nst_weights *w);

/* Looks a tensor up by name; NULL when absent. */
const nst_weight *nst_weights_find(const nst_weights *w, const char *name);
/* Adds a tensor of the given shape (data zeroed); returns it, NULL on OOM. */
nst_weight *nst_weights_add(nst_weights *w, const char *name, int rank, const int64_t *shape);
void nst_weights_free(nst_weights *w);

/* A deterministic network of net's topology: widths are the published ones
 * times width_mult (at least 1), `convs` convolutions (1..all of net's) from
 * conv1_1 on, weights uniform with He variance so activations keep their
 * scale through every layer, biases small. Same seed and arguments: same
 * values everywhere. out's net is set. */
nst_status nst_weights_generate_net(nst_weights **out, const nst_net *net, uint64_t seed,
                                    double width_mult, int convs, nst_msg *msg);
/* The same for VGG-19 (convs 1..16). */
nst_status nst_weights_generate(nst_weights **out, uint64_t seed, double width_mult, int convs,
                                nst_msg *msg);

/* ---- weight files (safetensors.c, pth.c, weights_io.c) ------------------ */

/* Reads a weight file into a new table (*out, free with nst_weights_free).
 * The format is sniffed: safetensors (F32, F16, BF16), a PyTorch zip
 * checkpoint (torch.save since 1.6) or a legacy PyTorch checkpoint (such as
 * torchvision's vgg19-dcbb9e9d.pth) holding a state_dict of Float, Half or
 * BFloat16 tensors. Everything is validated before it is trusted; a pickle
 * may only rebuild tensors and ordered dicts, never call anything else.
 * Failures are NST_ERR_IO (cannot read), NST_ERR_FORMAT (malformed; the
 * message names the file and the tensor), NST_ERR_NUMERIC (NaN or Inf),
 * NST_ERR_TOO_LARGE (absurd sizes), NST_ERR_NOMEM. */
nst_status nst_weights_load(const char *path, nst_weights **out, nst_msg *msg);
/* nst_weights_load, then the tensors matched against a network: `network`,
 * or with NST_NETWORK_AUTO the one nst_net_detect finds (nst_net_check:
 * unknown or misplaced tensors, missing or misshapen convolutions are
 * NST_ERR_FORMAT naming the file and the tensor). Sets (*out)->net. */
nst_status nst_weights_load_network(const char *path, nst_network network, nst_weights **out,
                                    nst_msg *msg);
/* As nst_weights_load, keeping only "features.N.*" with N <= max_index
 * (28 = conv5_1); other tensors are validated but their data is not read.
 * max_index < 0 keeps every tensor. */
nst_status nst_weights_load_trimmed(const char *path, int max_index, nst_weights **out,
                                    nst_msg *msg);
/* Removes every tensor that is not "features.N.*" with N <= max_index. */
void nst_weights_trim(nst_weights *w, int max_index);

/* Writes w as safetensors in dtype "F32", "F16" or "BF16" (round to nearest
 * even), atomically: a temporary file in the same directory, then rename().
 * A value that does not fit the dtype (or is NaN/Inf) fails with
 * NST_ERR_NUMERIC naming the tensor; nothing is left behind on failure. */
nst_status nst_weights_save(const nst_weights *w, const char *path, const char *dtype,
                            nst_msg *msg);

/* As nst_weights_load_trimmed, from len bytes in memory (read, never kept or
 * changed); name stands for the file in messages. For tests and fuzzing. */
nst_status nst_weights_load_memory(const void *buf, size_t len, const char *name, int max_index,
                                   nst_weights **out, nst_msg *msg);

/* Safetensors and PyTorch readers behind nst_weights_load (same contract). */
/* The same from an open seekable stream of `size` bytes (read from offset 0;
 * the caller closes it); path names it in messages. */
nst_status nst_safetensors_read(FILE *f, uint64_t size, const char *path, int max_index,
                                nst_weights **out, nst_msg *msg);
nst_status nst_pth_read(FILE *f, uint64_t size, const char *path, int max_index,
                        nst_weights **out, nst_msg *msg);

/* Scalar conversions (round to nearest even; NaN stays NaN, overflow is Inf). */
uint16_t nst_f32_to_f16(float f);
float nst_f16_to_f32(uint16_t h);
uint16_t nst_f32_to_bf16(float f);
float nst_bf16_to_f32(uint16_t b);
/* 1 when name is "features.N.weight|bias" and N <= max_index (any N when
 * max_index < 0); with max_index < 0 every name is kept. */
int nst_weights_keep(const char *name, int max_index);

/* The trimmed VGG-19 weight file nst looks for, and the command that fetches
 * it (each network's names are in its table, net.h). */
#define NST_WEIGHTS_FILE "vgg19-conv.safetensors"
#define NST_WEIGHTS_TORCHVISION_FILE "vgg19-dcbb9e9d.pth"
#define NST_WEIGHTS_FETCH_HINT "make weights"
/* conv5_1 = features.28 of VGG-19 (24 of VGG-16): the deepest layer nst's
 * default layers need; reading up to it reads both networks' conv5_1. */
#define NST_WEIGHTS_TRIM_INDEX 28

/* Finds the weight file of `network`. Order: explicit_path (--weights; must
 * exist), then s->weights ($NST_WEIGHTS; must exist), then for each directory
 * of s->weights_dirs in turn the network's trimmed file and torchvision file
 * (vgg19-conv.safetensors and vgg19-dcbb9e9d.pth for VGG-19;
 * nst_settings_from_env lists NST_SOURCE_DIR/weights, $XDG_DATA_HOME/nst
 * (default ~/.local/share/nst), NST_PREFIX/share/nst, and torch's download
 * cache, $TORCH_HOME (default ~/.cache/torch) /hub/checkpoints). s may be
 * NULL: no file, and the source tree's and NST_PREFIX's directories.
 * NST_NETWORK_AUTO searches every directory for VGG-19's names, then for
 * VGG-16's. Writes the path into out. When nothing is found, NST_ERR_IO with
 * one message listing every place looked and the command that fetches the
 * weights. */
nst_status nst_weights_locate(const nst_settings *s, const char *explicit_path,
                              nst_network network, char *out, size_t outlen, nst_msg *msg);

#endif
