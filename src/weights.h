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
#include <stdio.h>

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

/* The public model handle (nst.h): its weights, as loaded or generated. */
struct nst_model {
    nst_weights *weights;
};

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

/* The trimmed weight file nst looks for, and the command that fetches it. */
#define NST_WEIGHTS_FILE "vgg19-conv.safetensors"
#define NST_WEIGHTS_TORCHVISION_FILE "vgg19-dcbb9e9d.pth"
#define NST_WEIGHTS_FETCH_HINT "make weights"
/* conv5_1 = features.28: the deepest layer nst's default layers need. */
#define NST_WEIGHTS_TRIM_INDEX 28

/* Finds the weight file. Order: explicit_path (--weights; must exist), then
 * $NST_WEIGHTS (must exist), then for each directory in turn the names
 * vgg19-conv.safetensors and vgg19-dcbb9e9d.pth: NST_SOURCE_DIR/weights,
 * $XDG_DATA_HOME/nst (default ~/.local/share/nst), NST_PREFIX/share/nst, and
 * last torch's download cache ($TORCH_HOME, default ~/.cache/torch,
 * /hub/checkpoints). Writes the path into out. When nothing is found,
 * NST_ERR_IO with one message listing every place looked and the command
 * that fetches the weights. */
nst_status nst_weights_locate(const char *explicit_path, char *out, size_t outlen, nst_msg *msg);
/* The same search over an explicit list of directories (NULL-terminated),
 * after explicit_path and $NST_WEIGHTS; nst_weights_locate calls it with the
 * directories above. */
nst_status nst_weights_locate_in(const char *explicit_path, const char *const *dirs, char *out,
                                 size_t outlen, nst_msg *msg);

#endif
