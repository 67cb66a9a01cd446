/* nst.h: the public C API of nst, neural style transfer on OpenCL.
 *
 * Every call returns an nst_status; on failure a human-readable message is
 * left in the runtime (nst_last_error) or in the nst_msg the call was given.
 * The library never exits, aborts or prints. Whoever creates an object frees
 * it; every _free/_close accepts NULL.
 *
 * Pointers: every pointer argument must be valid unless its comment says it
 * may be NULL; nst_msg arguments always may (no message). A NULL pointer, a
 * NULL entry in an array, an image without pixels or a count out of range is
 * refused with NST_ERR_INVALID_ARG and a message naming it, never a crash; a
 * call given a NULL runtime has nowhere to put that message and only returns
 * the status. Inputs are borrowed for the call: the library keeps no pointer
 * to them after it returns.
 *
 * Threads: the library has no mutable global state of its own but one list,
 * under a lock, of the devices CLBlast holds tuned GEMM parameters for. So:
 *  - separate runtimes may be used from separate threads at the same time,
 *    each with the models and transfers made on it (on the same device or
 *    on different ones);
 *  - one runtime, and everything made on it, is used by one thread at a
 *    time: two threads sharing a runtime, a model or a transfer need their
 *    own lock around every call;
 *  - the calls without a runtime (devices, images, weight files, params,
 *    settings) may run on any thread at any time, each on its own
 *    arguments; nst_settings_from_env reads the environment, so no other
 *    thread may change it (setenv, putenv) meanwhile;
 *  - CLBlast keeps GEMM parameters per device for the whole process: a
 *    runtime that applies saved tuning sets them for every runtime on that
 *    device (results stay correct; only the speed may differ). */
#ifndef NST_H
#define NST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NST_VERSION "0.2.0"

/* The version of the library in use: NST_VERSION as it was when the library
 * was built, which for a shared library may differ from the header a program
 * was compiled with. */
const char *nst_version(void);

typedef enum nst_status {
    NST_OK = 0,
    NST_ERR_INVALID_ARG, /* a parameter is out of range or malformed */
    NST_ERR_NOMEM,       /* host or device memory could not be had */
    NST_ERR_IO,          /* a file could not be read or written */
    NST_ERR_FORMAT,      /* a file is not what it claims to be */
    NST_ERR_NO_DEVICE,   /* no OpenCL device, or the selection matched none */
    NST_ERR_CL,          /* an OpenCL call failed */
    NST_ERR_BUILD,       /* an OpenCL program failed to compile */
    NST_ERR_BLAS,        /* a BLAS routine (CLBlast or the host BLAS) failed */
    NST_ERR_NUMERIC,     /* a NaN or Inf appeared */
    NST_ERR_INTERRUPTED, /* the caller asked the run to stop */
    NST_ERR_TOO_LARGE    /* the work does not fit the device or a limit */
} nst_status;

/* A short name for a status ("invalid argument", "OpenCL error", ...). */
const char *nst_strerror(nst_status s);

/* A message buffer for calls that have no runtime (image and weight files). */
typedef struct nst_msg {
    char text[1024];
} nst_msg;

/* ---- devices and the runtime ------------------------------------------ */

typedef struct nst_device_info {
    int index;              /* position in nst's flat list over all platforms */
    char platform[128];
    char name[128];
    char vendor[128];
    char version[64];       /* CL_DEVICE_VERSION */
    char driver[64];        /* CL_DRIVER_VERSION */
    char c_version[64];     /* CL_DEVICE_OPENCL_C_VERSION */
    char type[16];          /* "GPU", "CPU", "accelerator", "other" */
    uint64_t global_mem;    /* bytes */
    uint64_t max_alloc;     /* bytes */
    uint64_t local_mem;     /* bytes */
    unsigned compute_units;
    size_t max_work_group;
    int fp16;               /* cl_khr_fp16 present */
    int host_unified;       /* CL_DEVICE_HOST_UNIFIED_MEMORY: its memory is the host's */
    int is_default;         /* the device nst picks when nothing is asked */
    int tf32;               /* tensor-core TF32 products (NVIDIA, compute capability 8.0
                               and later): nst_settings.precision "tf32" can run here */
} nst_device_info;

/* Lists every device of every platform. *out is malloc'ed; free() it.
 * A platform with no devices is skipped, not an error. */
nst_status nst_devices_list(nst_device_info **out, int *count, nst_msg *msg);

struct nst_settings;
/* The same, and when no platform has a device while PoCL is installed, an
 * error that says whether PoCL's cache directory (set->pocl_cache_dir) is
 * the reason. set may be NULL (nst_devices_list). */
nst_status nst_devices_list_with(const struct nst_settings *set, nst_device_info **out,
                                 int *count, nst_msg *msg);

/* Resolves a selection to an index in the list: NULL or "" means the
 * default (the GPU with the most memory, else any accelerator, else a CPU).
 * A selection is a decimal index or a case-insensitive substring of
 * "platform name" or "device name". devs may be NULL only when count is 0. */
nst_status nst_device_select(const nst_device_info *devs, int count, const char *sel,
                             int *index, nst_msg *msg);

/* ---- settings ------------------------------------------------------------ */

/* How the library runs, as opposed to what a transfer computes. The library
 * reads no environment variable: a runtime uses the settings it is given,
 * and nst_settings_from_env is the one reader of the variables the nst
 * command documents (named below, field by field). A zeroed nst_settings is
 * the default: Winograd F(4x4,3x3), 64 MiB of convolution scratch, no
 * program-binary cache (no directory named), saved GEMM tuning applied (none
 * without a cache directory), the default device. */
typedef enum nst_conv_method {
    NST_CONV_WINOGRAD4 = 0, /* 3x3 layers as Winograd F(4x4,3x3): "winograd", "winograd4" */
    NST_CONV_WINOGRAD2 = 1, /* Winograd F(2x2,3x3): "winograd2" */
    NST_CONV_IM2COL = 2     /* im2col + GEMM for every layer: "im2col" */
} nst_conv_method;

/* Kernels written in two shapes, one for the many threads of a GPU and one
 * for the few, vector-wide threads of a CPU: the default follows the device
 * type (CL_DEVICE_TYPE_CPU: the CPU shape); either runs correctly anywhere. */
typedef enum nst_kernel_shape {
    NST_KERNELS_AUTO = 0, /* "auto" */
    NST_KERNELS_CPU = 1,  /* "cpu" */
    NST_KERNELS_GPU = 2   /* "gpu" */
} nst_kernel_shape;

#define NST_PATH_MAX 1024

typedef struct nst_settings {
    nst_conv_method conv;         /* NST_CONV */
    int scratch_mb;               /* NST_SCRATCH_MB: convolution scratch bands in MiB,
                                     0..65536 (0 = 64); larger bands mean fewer, larger
                                     GEMMs for more device memory */
    int no_cache;                 /* NST_CACHE=0: never read or write compiled kernels */
    char cache_dir[NST_PATH_MAX]; /* NST_CACHE_DIR, else $XDG_CACHE_HOME/nst, else
                                     ~/.cache/nst: compiled kernels and GEMM tuning
                                     (created when missing); "" = none */
    char cl_dir[NST_PATH_MAX];    /* NST_CL_DIR: kernels read from DIR/NAME.cl instead
                                     of the built-in sources; "" = built in */
    char cl_options[512];         /* NST_CL_OPTS: appended to the OpenCL build options */
    int no_tune;                  /* NST_TUNE=0: ignore GEMM parameters saved by nst tune */
    char device[256];             /* NST_DEVICE: the selection (as nst_device_select)
                                     when nst_runtime_options.device is NULL or "" */
    char gemm[32];                /* NST_GEMM: where the matrix products run, as for
                                     nst_gemm_choose: auto, host or clblast; "" = auto */
    nst_kernel_shape kernels;     /* NST_KERNELS: the shape of the kernels written twice
                                     (Winograd transforms, pooling backward): auto (by
                                     device type), cpu or gpu */
    /* where the nst command looks for weights when --weights is not given */
    char weights[NST_PATH_MAX];   /* NST_WEIGHTS: this file (it must exist) */
    char weights_dirs[4 * NST_PATH_MAX]; /* then these directories in turn, ':'-separated
                                     (the source tree's weights/, $XDG_DATA_HOME/nst,
                                     PREFIX/share/nst, $TORCH_HOME/hub/checkpoints);
                                     "" = the source tree's and PREFIX's */
    char pocl_cache_dir[NST_PATH_MAX]; /* PoCL's kernel cache as PoCL finds it
                                     (POCL_CACHE_DIR, $XDG_CACHE_HOME/pocl,
                                     ~/.cache/pocl, else /tmp/pocl); "" when
                                     POCL_KERNEL_CACHE=0 turns it off. PoCL lists no
                                     device when it cannot create it, and nst keeps no
                                     notes on a cache that is off */
    char precision[8];            /* NST_PRECISION: the arithmetic of the convolutions'
                                     Winograd products: "fp32" (the default, "" too) or
                                     "tf32" (inputs rounded to 10-bit mantissas, fp32
                                     sums: each product within (2^-10 + K 2^-24)
                                     sum |a||b|), only on a device whose tf32 is 1 */
} nst_settings;

/* Sets every field of s: the default, then what the variables named above
 * say (an unset or empty one leaves the default), with HOME, XDG_CACHE_HOME,
 * XDG_DATA_HOME and TORCH_HOME for the default directories, and PoCL's
 * POCL_CACHE_DIR and POCL_KERNEL_CACHE for pocl_cache_dir. The only
 * function of the library that reads the environment. NST_ERR_INVALID_ARG,
 * naming the variable, for a value that is not one of its choices, out of
 * range or too long. */
nst_status nst_settings_from_env(nst_settings *s, nst_msg *msg);

/* ---- the runtime ---------------------------------------------------------- */

typedef struct nst_runtime nst_runtime;

typedef struct nst_runtime_options {
    const char *device;  /* selection as for nst_device_select; NULL = settings->device,
                            else the default */
    int no_cache;        /* 1: never read or write the program-binary cache */
    int profile;         /* 1: record per-kernel timings (nst bench) */
    const nst_settings *settings; /* copied by nst_runtime_open; NULL = a zeroed one */
} nst_runtime_options;

/* opt may be NULL: the default device, no profiling, default settings (no
 * environment read). NST_ERR_INVALID_ARG, naming the field, for settings out
 * of range. */
nst_status nst_runtime_open(nst_runtime **out, const nst_runtime_options *opt, nst_msg *msg);
void nst_runtime_close(nst_runtime *rt);
/* The message of the last failed call on rt (rewritten by the next failure,
 * valid until nst_runtime_close); never NULL: for rt NULL, a sentence
 * saying that the runtime is NULL. */
const char *nst_last_error(const nst_runtime *rt);
/* Compiles (or loads from the cache) every kernel program now; *seconds
 * (may be NULL) receives the time it took. */
nst_status nst_runtime_build_all(nst_runtime *rt, double *seconds);
/* rt's device, valid until nst_runtime_close; NULL for rt NULL. */
const nst_device_info *nst_runtime_device(const nst_runtime *rt);
/* The most device memory nst had allocated at once on rt, in bytes (0 for
 * rt NULL). */
uint64_t nst_runtime_peak_bytes(const nst_runtime *rt);
/* A warning for people about rt, or "": the kernel cache is off because its
 * directory cannot be created or written (runs work, but compile their
 * kernels every time). */
const char *nst_runtime_warning(const nst_runtime *rt);

/* Where the matrix products (and the few vector routines) run on device d:
 * *host = 1 on the host BLAS nst was built with (OpenBLAS), on the device's
 * buffers mapped into the host; 0 through CLBlast on the device. setting is
 * "auto", "host" or "clblast" (nst_settings.gemm, NST_GEMM); NULL or ""
 * means "auto": the host BLAS for a CPU device whose
 * memory is the host's (host_unified), where mapping copies nothing, and
 * CLBlast everywhere else. "host" works on any device (mapping copies where
 * the memory is not the host's). NST_ERR_INVALID_ARG for another setting,
 * NST_ERR_BLAS for "host" in a build without a host BLAS. */
nst_status nst_gemm_choose(const nst_device_info *d, const char *setting, int *host,
                           nst_msg *msg);
/* What runs rt's matrix products, for people: "CLBlast 1.5.3" or
 * "OpenBLAS 0.3.21 on the host (2 threads)". With the host BLAS, nst splits
 * each product over one thread per compute unit of the device and opening
 * the runtime sets OpenBLAS to one thread, process-wide (OpenBLAS's own
 * threads keep spinning after each call, slowing the kernels that follow). */
const char *nst_runtime_gemm(const nst_runtime *rt);


/* ---- images ------------------------------------------------------------- */

/* Planar RGB float32 in [0,1]: data[(c*h + y)*w + x], c = 0,1,2 (R,G,B),
 * exactly the device tensor layout [1,3,H,W]. */
typedef struct nst_image {
    int w, h;
    float *data;
} nst_image;

/* Reads a PNG or JPEG (detected by content). Refuses images of more than
 * max_pixels (0 = 100 megapixels) before allocating. */
nst_status nst_image_read(const char *path, size_t max_pixels, nst_image **out, nst_msg *msg);
/* Writes PNG or JPEG by the extension, atomically (temporary file, then
 * rename): on failure an existing file is left untouched. quality 0 = 95. */
nst_status nst_image_write(const char *path, const nst_image *img, int jpeg_quality, int png16,
                           nst_msg *msg);
/* A w x h image, zero-filled. */
nst_status nst_image_create(int w, int h, nst_image **out, nst_msg *msg);
void nst_image_free(nst_image *img);

/* ---- style transfer ----------------------------------------------------- */

typedef enum nst_optimizer { NST_OPTIMIZER_LBFGS = 0, NST_OPTIMIZER_ADAM = 1 } nst_optimizer;
typedef enum nst_init { NST_INIT_CONTENT = 0, NST_INIT_RANDOM = 1, NST_INIT_IMAGE = 2 } nst_init;
/* How the style's feature statistics are matched at each style layer:
 * GRAM   Gram matrices (Gatys et al.);
 * W2     the 2-Wasserstein distance between Gaussian fits (mean and
 *        covariance) of the features;
 * HIST   each channel against its histogram-matched copy (Risser et al.). */
typedef enum nst_style_loss_kind {
    NST_STYLE_GRAM = 0,
    NST_STYLE_W2 = 1,
    NST_STYLE_HIST = 2
} nst_style_loss_kind;

#define NST_MAX_STYLES 16
#define NST_MAX_LAYERS 16

typedef struct nst_params {
    int size;                    /* longest side of the output; the content is resized.
                                    16..65536, and every side of every image at
                                    it needs 2^pools pixels (see nst_transfer_plan) */
    double style_scale;          /* style images' longest side = style_scale * size;
                                    (0, 16] */
    double content_weight;       /* a: weight of the content terms */
    double style_weight;         /* b: weight of the style terms */
    double tv_weight;            /* g: weight of total variation (a, b, g finite, >= 0) */
    int iterations;              /* 1..1000000 */
    nst_optimizer optimizer;
    double learning_rate;        /* Adam step; L-BFGS step scale (1 = classic);
                                    0 = the optimiser's default (Adam 0.02,
                                    L-BFGS 1); finite, >= 0 */
    int lbfgs_history;           /* 1..1000 */
    int line_search;             /* L-BFGS: 1 = backtracking line search */
    nst_init init;
    const nst_image *init_image; /* for NST_INIT_IMAGE, else may be NULL; any
                                    size: resized (stretched) to the output's */
    uint64_t seed;               /* for NST_INIT_RANDOM */
    const char *content_layers;  /* comma list, e.g. "relu4_2": layer names of the
                                    model's network (VGG-19: conv1_1, relu1_1,
                                    conv1_2, relu1_2, pool1, ... relu5_4, pool5;
                                    VGG-16 lacks conv3_4, conv4_4, conv5_4 and
                                    their ReLUs). nst_params_check accepts every
                                    VGG-19 name; the run refuses, listing the
                                    network's layers, one its model lacks */
    const char *style_layers;    /* comma list, e.g. "relu1_1,relu2_1,..." */
    const double *style_layer_weights; /* one per style layer, or NULL = equal */
    int style_layer_weight_count; /* entries in style_layer_weights: the number of
                                     style layers (0 with NULL) */
    int avg_pool;                /* 1: average pooling instead of max */
    /* colour */
    int preserve_colors;         /* output luminance with the content's chroma */
    int luminance_only;          /* optimise on luminance (Gatys et al. 2017) */
    int luminance_histogram;     /* luminance_only: match the style's luminance by
                                    histogram instead of mean and deviation */
    /* regions: masks[k] (grey images, white = style k, any size: resized to
     * the content's) say where style k goes, one per style, none NULL;
     * NULL = the styles are blended over the whole image */
    const nst_image *const *masks;
    /* coarse to fine: `scales` sizes growing by sqrt(2) up to `size`; the
     * first runs `iterations`, each later one `scale_iterations` */
    int scales;                  /* 1..12 */
    int scale_iterations;        /* 0..1000000; 0 = iterations / 2 */
    double average_decay;        /* in [0, 1); > 0: the output is an exponential
                                    moving average of the iterates with this decay */
    /* memory (see nst_transfer_plan) */
    uint64_t max_memory;         /* device bytes the run may use; 0 = the device's
                                    global memory less 10% */
    int tile;                    /* 0: tiles only when the whole image does not fit;
                                    16..65536: tiles of at most this many pixels a side
                                    (at least twice the deepest layer's halo: the
                                    plan refuses less, naming the minimum);
                                    -1: never tile */
    /* video (Ruder, Dosovitskiy and Brox 2016): a temporal term pulling the
     * image towards temporal_target, the previous frame's output warped to
     * this frame, where temporal_mask says it is consistent:
     *   temporal_weight * sum over the 3*h*w entries of c * (x - target)^2 / (3*h*w)
     * with c the mask's value at the pixel. Both images any size (resized to
     * each scale's); the mask is grey in [0,1] (its first channel is read),
     * NULL = 1 everywhere. No term when temporal_weight is 0 or
     * temporal_target NULL. */
    double temporal_weight;      /* finite, >= 0 */
    const nst_image *temporal_target;
    const nst_image *temporal_mask;
    nst_style_loss_kind style_loss;  /* NST_STYLE_GRAM (default), _W2 or _HIST */
} nst_params;

/* The defaults: a good image without touching anything. */
void nst_params_default(nst_params *p);
/* The default style weight of a style loss (nst_params_default's is the
 * Gram's); NAN for a value that is not an nst_style_loss. */
double nst_style_loss_weight(nst_style_loss_kind loss);
/* The style loss's name ("gram", "w2", "hist"), NULL for an unknown value;
 * nst_style_loss_parse is its inverse (-1 for an unknown name). */
const char *nst_style_loss_name(nst_style_loss_kind loss);
int nst_style_loss_parse(const char *name);
/* Checks every parameter (ranges, layer names, blend weights summing to 1,
 * the init image and masks) without touching a device; the message says
 * which value is wrong and what it may be. The one place the ranges are
 * kept: the nst command reports this message rather than checking them
 * itself. blend may be NULL (equal weights). */
nst_status nst_params_check(const nst_params *p, int nstyles, const double *blend, nst_msg *msg);

typedef struct nst_transfer nst_transfer;

/* What a progress event reports. */
typedef enum nst_phase {
    NST_PHASE_ITERATION = 0, /* an iteration finished */
    NST_PHASE_COMPILE = 1    /* kernels are being compiled for the device: once per
                                device, driver and nst version (later runs load them
                                from the caches), every time when the cache is off */
} nst_phase;

/* One progress event per iteration (nst_transfer_run), or per compiled
 * program (nst_transfer_prepare: phase NST_PHASE_COMPILE, and only phase,
 * programs_done, programs, program and iterations are set). */
typedef struct nst_progress {
    int iteration;      /* 1-based, counted over all scales */
    int iterations;     /* total planned over all scales */
    int scale;          /* 1-based scale index */
    int width, height;  /* the current scale's image size */
    int evaluations;    /* loss+gradient evaluations so far */
    double loss;        /* weighted total */
    double content;     /* weighted content term */
    double style;       /* weighted style term */
    double tv;          /* weighted total-variation term */
    double elapsed;     /* seconds since the iterations began */
    nst_transfer *transfer; /* for nst_transfer_snapshot, valid only during
                               the progress call (like the nst_progress
                               itself): keep neither after it returns */
    nst_phase phase;
    /* NST_PHASE_COMPILE: programs (OpenCL programs and CLBlast routines)
     * compiled so far (0 in the first event) of the `programs` this step
     * compiles, the last one `program` (NULL in the first event) */
    int programs_done, programs;
    const char *program;
    double temporal;    /* weighted temporal term (video) */
} nst_progress;

/* Return non-zero to stop after this iteration (nst_transfer_run then
 * returns NST_ERR_INTERRUPTED, with the current image in *out). */
typedef int (*nst_progress_fn)(const nst_progress *p, void *user);

/* A copy of the current image (caller frees), called from the progress
 * function with its nst_progress.transfer. */
nst_status nst_transfer_snapshot(nst_transfer *t, nst_image **out);

/* A change of aim for a running transfer (nst_transfer_retarget): a weight
 * < 0, style_scale 0 or blend NULL leaves that value as it is. */
typedef struct nst_retarget {
    double content_weight, style_weight, tv_weight; /* as in nst_params */
    double style_scale;   /* as in nst_params: the style targets are recomputed */
    const double *blend;  /* one per style image, summing to 1: the style targets
                             are recomputed (with regions, each style keeps its own) */
} nst_retarget;

/* Sets every field of r to "leave as it is". */
void nst_retarget_default(nst_retarget *r);

/* Re-targets the transfer t from its progress function (with its
 * nst_progress.transfer): from the next iteration it optimises the new
 * objective, starting from the current image (no restart), at the current
 * scale and the later ones. The optimiser forgets its history (L-BFGS pairs
 * and step count, Adam moments): they belong to the old objective. The
 * values are checked as nst_params_check does (NST_ERR_INVALID_ARG, the
 * message naming the value; nothing changes). A new style scale must keep
 * the run's plan (the same tiling, and the targets recomputed beside the
 * image and the optimiser fit the budget), else NST_ERR_TOO_LARGE and nothing
 * changes. A failure while the targets are recomputed ends the run with it. */
nst_status nst_transfer_retarget(nst_transfer *t, const nst_retarget *r);

typedef struct nst_model nst_model;

/* The networks nst runs, in torchvision's layout (`features.N` tensors). */
typedef enum nst_network {
    NST_NETWORK_AUTO = 0,  /* whichever the weight file holds */
    NST_NETWORK_VGG19 = 1, /* vgg19-dcbb9e9d.pth: convolutions at features 0, 2, 5, 7,
                              10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34 */
    NST_NETWORK_VGG16 = 2  /* vgg16-397923af.pth: convolutions at features 0, 2, 5, 7,
                              10, 12, 14, 17, 19, 21, 24, 26, 28 */
} nst_network;

/* "vgg19", "vgg16" (as --network takes them), "auto"; NULL for another value. */
const char *nst_network_name(nst_network n);
/* The network of a name as nst_network_name gives it (case-insensitive;
 * "VGG-19" too); -1 when unknown. */
int nst_network_parse(const char *name);

/* Loads weights (safetensors or a torchvision .pth) for use on rt (not NULL:
 * it receives the message), the network detected from the file's tensors
 * (VGG-16 and VGG-19 have convolutions at different features indices), as
 * nst_model_load_network with NST_NETWORK_AUTO. */
nst_status nst_model_load(nst_runtime *rt, const char *path, nst_model **out);
/* Loads weights for `network`, or the detected one for NST_NETWORK_AUTO.
 * The file's tensors are matched against the network's layers: a tensor
 * that is no convolution of it, a skipped convolution, a wrong shape or
 * channels that do not chain are NST_ERR_FORMAT, the message naming the file
 * and the tensor. A safetensors file may declare its input convention in
 * its metadata: "input": "torchvision" (RGB in [0,1], ImageNet mean and
 * std; the default, and what .pth files follow) or "caffe" (BGR in [0,255]
 * minus the mean pixel, as in the original Oxford release): the model
 * normalises images accordingly, so such weights need no conversion. */
nst_status nst_model_load_network(nst_runtime *rt, const char *path, nst_network network,
                                  nst_model **out);
/* A generated test network (no file needed): width_mult of the real widths. */
nst_status nst_model_generate(nst_runtime *rt, uint64_t seed, double width_mult, nst_model **out);
/* The same for `network` (NST_NETWORK_AUTO: VGG-19). */
nst_status nst_model_generate_network(nst_runtime *rt, nst_network network, uint64_t seed,
                                      double width_mult, nst_model **out);
/* The network m runs (NST_NETWORK_AUTO for m NULL). */
nst_network nst_model_network(const nst_model *m);
void nst_model_free(nst_model *m);

/* Runs the whole transfer. styles[0..nstyles-1] (none NULL, any sizes) are
 * blended with weights blend (NULL = equal), which must sum to 1. progress
 * and user may be NULL. *out receives the result (also on
 * NST_ERR_INTERRUPTED and NST_ERR_NUMERIC: the last finite image), else
 * NULL. */
nst_status nst_transfer_run(nst_runtime *rt, nst_model *model, const nst_params *p,
                            const nst_image *content, const nst_image *const *styles, int nstyles,
                            const double *blend, nst_progress_fn progress, void *user,
                            nst_image **out);

/* Compiles (or loads from the caches) the kernels a run of p needs on rt,
 * several at once where there are several CPUs, with NST_PHASE_COMPILE
 * events to progress (may be NULL) for those not in a cache: one before the
 * first (programs_done 0), then one as each finishes. A non-zero return
 * stops it (NST_ERR_INTERRUPTED). Optional: nst_model_load and
 * nst_transfer_run compile what they find missing, without events; calling
 * this first, right after nst_runtime_open, shows the wait (on a CPU a first
 * run can spend a minute compiling) and keeps it out of the iterations. */
nst_status nst_transfer_prepare(nst_runtime *rt, const nst_params *p, nst_progress_fn progress,
                                void *user);

/* ---- universal style transfer (WCT) ------------------------------------- */

/* Style transfer in one pass, without optimisation (Li et al. 2017,
 * "Universal Style Transfer via Feature Transforms"): per level, from the
 * coarsest to the finest, the image is encoded by a normalised VGG-19 up to
 * reluL_1, its features are whitened and coloured with the painting's
 * feature covariance (WCT), and a decoder trained to invert that encoder
 * turns them back into an image. The models are the published PyTorch
 * files, level L = 1..5 a pair: vgg_normalised_convL_1.pth (the encoder) and
 * feature_invertor_convL_1.pth (its decoder). */
typedef struct nst_wct_models nst_wct_models;

#define NST_WCT_LEVELS 5

/* Finds the directory of the WCT models: dir (must hold at least one
 * level's pair) when not NULL or "", else each of s's weights_dirs D in turn
 * (D/wct, then D itself; s may be NULL: the source tree's weights/ and
 * PREFIX/share/nst). Writes the directory into out. NST_ERR_IO, listing
 * every place looked and where to get the files, when none holds them. */
nst_status nst_wct_locate(const nst_settings *s, const char *dir, char *out, size_t outlen,
                          nst_msg *msg);
/* Loads every level whose pair of files dir holds (a level with only one of
 * its two files is an error naming the missing one) and uploads the weights
 * to rt's device; each file is checked against its level's layout (a wrong
 * tensor or shape is NST_ERR_FORMAT naming the file and the tensor).
 * NST_ERR_IO when dir holds no level. Free with nst_wct_models_free. */
nst_status nst_wct_models_load(nst_runtime *rt, const char *dir, nst_wct_models **out);
/* The levels m holds: bit L-1 set for level L (0 for m NULL). */
unsigned nst_wct_models_levels(const nst_wct_models *m);
void nst_wct_models_free(nst_wct_models *m);

typedef struct nst_wct_params {
    int size;           /* longest side of the output; the content is resized.
                           0 = the content's own size; else 16..65536 */
    double style_scale; /* each painting's longest side = style_scale * size;
                           (0, 16] */
    double alpha;       /* style strength in [0, 1]: the features become
                           alpha * WCT + (1 - alpha) * content (default 0.6) */
    unsigned levels;    /* bit L-1 for level L; 0 = every level the models hold
                           (run coarse to fine: the highest level first) */
    double eps;         /* added to the content covariance's diagonal before it
                           is whitened (default 1, as Li et al.'s code);
                           finite, >= 0 */
} nst_wct_params;

/* The defaults: size 512, style_scale 1, alpha 0.6, all levels, eps 1. */
void nst_wct_params_default(nst_wct_params *p);

/* Stylises content with styles[0..nstyles-1] (none NULL, any sizes):
 * blended with weights blend (NULL = equal; they sum to 1), or, with masks
 * (NULL, or one grey image per style, any size: resized to each level's
 * features), each painting in its own region: a feature position belongs to
 * the style whose mask is brightest there if that mask is at least half
 * white, and is whitened with its region's statistics and coloured with its
 * painting's (positions no mask covers keep the content). All on rt's device
 * but the eigen-decompositions of the covariances (on the host). *out
 * receives the image (the content's size at p->size), else NULL; the message
 * is in nst_last_error. */
nst_status nst_wct_run(nst_runtime *rt, const nst_wct_models *m, const nst_wct_params *p,
                       const nst_image *content, const nst_image *const *styles, int nstyles,
                       const double *blend, const nst_image *const *masks, nst_image **out);

/* ---- the memory plan ---------------------------------------------------- */

/* What a run needs on the device, worked out before it starts from the
 * sizes, the layers and the optimiser, and what the run will do about it.
 * Byte figures are the run's own allocations at its peak (the final scale);
 * the OpenCL driver's and CLBlast's own buffers come on top. */
typedef struct nst_plan {
    int width, height;             /* the output at the final scale */
    int style_width, style_height; /* the largest style image at style_scale */
    uint64_t budget;               /* bytes the run may use */
    uint64_t reserve;              /* of which kept back for CLBlast's padding
                                      buffer and the driver: 5%, at least 64 MiB */
    uint64_t device_global, device_max_alloc;
    /* bytes at the evaluation's peak, by component */
    uint64_t weights;              /* the VGG weights and their flipped copies */
    uint64_t activations;          /* activations kept for backward, tap gradients,
                                      backward ping-pong and im2col scratch: of one
                                      tile when tiled, else of the whole image */
    uint64_t content_targets;      /* content features P, whole image */
    uint64_t style_targets;        /* Gram targets A */
    uint64_t loss_scratch;         /* Gram sums/errors, tile crops, masks, slots */
    uint64_t images;               /* image, gradient, average; a tile's window */
    uint64_t optimizer;            /* L-BFGS history or Adam moments */
    uint64_t eval_peak, targets_peak, peak; /* peak = the larger phase; a run
                                      fits when peak + reserve <= budget */
    uint64_t largest_alloc;        /* the largest single buffer */
    int tiled;                     /* 1: evaluated in tiles */
    int tile;                      /* the tile limit the run uses (0 = none) */
    int tile_w, tile_h, tiles_x, tiles_y, halo;
    int optimizer_kind;            /* nst_optimizer */
    int lbfgs_history;             /* the history the run will keep */
    int history_reduced;           /* 1: cut from the requested one so that the
                                      history stays within 40% of the budget */
    int fits;                      /* 1: the run fits the budget */
    int max_size;                  /* when it does not: the largest --size that
                                      would (0: none) */
    char note[512];                /* the decision in words */
} nst_plan;

/* Plans a run of p on content_w x content_h with nstyles style images of
 * the sizes style_wh[2k], style_wh[2k+1] (NULL: as large as the content).
 * Decides: the whole image at once when it fits the budget (p->max_memory,
 * else the device's global memory less 10%) and the device's largest
 * allocation; else, unless p->tile < 0, tiles as large as fit; else the
 * largest size that would fit. L-BFGS keeps at most the history that fits in
 * 40% of the budget. Returns NST_OK also when the run does not fit (fits 0,
 * the note says why); the run applies the same plan and refuses with
 * NST_ERR_TOO_LARGE and that note. Returns NST_ERR_INVALID_ARG, the message
 * naming the smallest size or tile that works, when an image at p->size (at
 * its first scale) is too small for the layers (each side needs 2^pools
 * pixels, pools counted down to the deepest layer: 16 to relu5_1), or when
 * p->tile cuts an image into windows smaller than the layers' receptive
 * field needs. Uploads the weights once to size the network; allocates
 * nothing else. */
nst_status nst_transfer_plan(nst_runtime *rt, nst_model *model, const nst_params *p,
                             int content_w, int content_h, const int *style_wh, int nstyles,
                             nst_plan *out);

/* ---- benchmarking -------------------------------------------------------- */

typedef struct nst_bench_kernel {
    char name[48];
    double ms;  /* device time per evaluation */
    int calls;  /* launches per evaluation */
} nst_bench_kernel;

typedef struct nst_bench_result {
    int w, h, evals;
    double median_ms, min_ms, max_ms; /* wall time of one loss+gradient evaluation */
    double gflop;                     /* counted convolution work per evaluation */
    double gflops;                    /* gflop / median */
    double peak_mib;                  /* device memory nst allocated, at peak */
    int nkernels;
    nst_bench_kernel kernels[48];     /* by device time, largest first (needs profiling) */
} nst_bench_result;

/* Times `evals` evaluations (after 2 warm-up ones) of the loss and its
 * gradient at w x h with random content and style images: VGG forward to the
 * deepest tap, the losses, the backward pass to the image. Per-kernel times
 * need a runtime opened with profile = 1. */
nst_status nst_bench_eval(nst_runtime *rt, nst_model *model, const nst_params *p, int w, int h,
                          int evals, nst_bench_result *out);

#ifdef __cplusplus
}
#endif
#endif
