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
 * to them after it returns. */
#ifndef NST_H
#define NST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NST_VERSION "0.1.0"

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
    NST_ERR_BLAS,        /* a CLBlast routine failed */
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
    int is_default;         /* the device nst picks when nothing is asked */
} nst_device_info;

/* Lists every device of every platform. *out is malloc'ed; free() it.
 * A platform with no devices is skipped, not an error. */
nst_status nst_devices_list(nst_device_info **out, int *count, nst_msg *msg);

/* Resolves a selection to an index in the list: NULL or "" means the
 * NST_DEVICE environment variable, else the default (the GPU with the most
 * memory, else any accelerator, else a CPU). A selection is a decimal index
 * or a case-insensitive substring of "platform name" or "device name". devs
 * may be NULL only when count is 0. */
nst_status nst_device_select(const nst_device_info *devs, int count, const char *sel,
                             int *index, nst_msg *msg);

typedef struct nst_runtime nst_runtime;

typedef struct nst_runtime_options {
    const char *device;  /* selection as for nst_device_select; NULL = default */
    int no_cache;        /* 1: never read or write the program-binary cache */
    int profile;         /* 1: record per-kernel timings (nst bench) */
} nst_runtime_options;

/* opt may be NULL: the default device (or NST_DEVICE), the cache on (unless
 * NST_CACHE=0), no profiling. */
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

#define NST_MAX_STYLES 16
#define NST_MAX_LAYERS 16

typedef struct nst_params {
    int size;                    /* longest side of the output; the content is resized.
                                    16..65536, and every side of every image at
                                    it needs 2^pools pixels (see nst_transfer_plan) */
    double style_scale;          /* style images' longest side = style_scale * size */
    double content_weight;       /* a: weight of the content terms */
    double style_weight;         /* b: weight of the style terms */
    double tv_weight;            /* g: weight of total variation */
    int iterations;
    nst_optimizer optimizer;
    double learning_rate;        /* Adam step; L-BFGS step scale (1 = classic);
                                    0 = the optimiser's default (Adam 0.02,
                                    L-BFGS 1) */
    int lbfgs_history;
    int line_search;             /* L-BFGS: 1 = backtracking line search */
    nst_init init;
    const nst_image *init_image; /* for NST_INIT_IMAGE, else may be NULL; any
                                    size: resized (stretched) to the output's */
    uint64_t seed;               /* for NST_INIT_RANDOM */
    const char *content_layers;  /* comma list, e.g. "relu4_2" */
    const char *style_layers;    /* comma list, e.g. "relu1_1,relu2_1,..." */
    const double *style_layer_weights; /* one per style layer, or NULL = equal */
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
    int scales;
    int scale_iterations;        /* 0 = iterations / 2 */
    double average_decay;        /* > 0: the output is an exponential moving
                                    average of the iterates with this decay */
    /* memory (see nst_transfer_plan) */
    uint64_t max_memory;         /* device bytes the run may use; 0 = the device's
                                    global memory less 10% */
    int tile;                    /* 0: tiles only when the whole image does not fit;
                                    > 0: tiles of at most this many pixels a side
                                    (at least twice the deepest layer's halo: the
                                    plan refuses less, naming the minimum);
                                    -1: never tile */
} nst_params;

/* The defaults: a good image without touching anything. */
void nst_params_default(nst_params *p);
/* Checks every parameter (ranges, layer names, blend weights summing to 1,
 * the init image and masks) without touching a device; the message says
 * which value is wrong. blend may be NULL (equal weights). */
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
} nst_progress;

/* Return non-zero to stop after this iteration (nst_transfer_run then
 * returns NST_ERR_INTERRUPTED, with the current image in *out). */
typedef int (*nst_progress_fn)(const nst_progress *p, void *user);

/* A copy of the current image (caller frees), called from the progress
 * function with its nst_progress.transfer. */
nst_status nst_transfer_snapshot(nst_transfer *t, nst_image **out);

typedef struct nst_model nst_model;

/* Loads VGG-19 weights (safetensors or a torchvision .pth) for use on rt
 * (not NULL: it receives the message). */
nst_status nst_model_load(nst_runtime *rt, const char *path, nst_model **out);
/* A generated test network (no file needed): width_mult of the real widths. */
nst_status nst_model_generate(nst_runtime *rt, uint64_t seed, double width_mult, nst_model **out);
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
