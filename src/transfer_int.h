/* transfer_int.h: the state of one transfer at one image size, shared by the
 * loop (transfer.c), the benchmark (bench.c) and the memory plan (plan.c). */
#ifndef NST_TRANSFER_INT_H
#define NST_TRANSFER_INT_H

#include "nst_int.h"
#include "vgg.h"
#include "weights.h"

struct nst_model {
    nst_weights *weights;
};

typedef struct nst_layer_list {
    int n;
    char name[NST_MAX_LAYERS][16];
} nst_layer_list;

nst_status nst_layers_parse(const char *spec, const char *what, nst_layer_list *l, nst_msg *msg);

/* ---- tiles (tiled.c) ----------------------------------------------------- */

/* One tile: a window of the image (every window of a tiling has the same
 * size) and the rectangle of the image it owns. Windows start at multiples of
 * the alignment 2^pools (pools before the deepest tap), so the pooling grids
 * of a tile and of the whole image agree; each window reaches `halo` pixels
 * beyond its owned rectangle (or the image border), at least the receptive
 * field of the deepest tap, so every owned feature is computed exactly. At a
 * layer of stride s a tile owns positions [oy0/s, oy1/s) x [ox0/s, ox1/s)
 * (integer division), so the tiles partition every layer's positions. */
typedef struct nst_tile {
    int y, x;               /* window origin in the image */
    int oy0, oy1, ox0, ox1; /* owned pixels [oy0, oy1) x [ox0, ox1) */
} nst_tile;

typedef struct nst_tiling {
    int h, w;          /* the image */
    int th, tw;        /* every window */
    int halo, align;
    int ny, nx;        /* tiles down and across */
    nst_tile *tiles;   /* ny * nx, row-major, malloc'ed */
} nst_tiling;

/* Receptive field of w's network (nst_weights_net) up to layer depth-1, from
 * its table (nst_net_receptive): *halo (a multiple of *align) and *align =
 * 2^pools. 0, or -1 when depth is not in 1..the network's layers. */
int nst_tiled_geometry(const nst_weights *w, int depth, int *halo, int *align);
/* Tiles an h x w image with windows of at most `tile` pixels a side. A side
 * no longer than `tile` is not cut. NST_ERR_INVALID_ARG when `tile` is below
 * 2*halo + align (the smallest window that makes progress), which the message
 * states. out->tiles is owned by out: nst_tiling_free. */
nst_status nst_tiling_make(int h, int w, int tile, int halo, int align, nst_tiling *out,
                           nst_msg *msg);
void nst_tiling_free(nst_tiling *t);
/* The smallest tile limit that tiles every image: 2*halo + align, plus up to
 * align - 1 that tile_1d gives up to keep the pooling grid. */
int nst_tiling_min_tile(int halo, int align);

/* Device loss slots: content layers, then style layers x regions, then TV.
 * Without masks there is one region: the blend of every style image. With
 * masks, region r is style image r restricted to mask r. */
struct nst_transfer {
    nst_runtime *rt;
    const nst_params *p;
    nst_vgg *vgg;
    nst_layer_list content, style;
    int nregions;
    double style_w[NST_MAX_LAYERS];                   /* b * w_l, normalised */
    nst_tensor *targets[NST_MAX_LAYERS];              /* content targets P */
    float target_norm2[NST_MAX_LAYERS];               /* ||P||^2 */
    cl_mem grams[NST_MAX_LAYERS][NST_MAX_STYLES];     /* style Grams A */
    float gram_norm2[NST_MAX_LAYERS][NST_MAX_STYLES]; /* ||A||^2 */
    cl_mem masks[NST_MAX_LAYERS][NST_MAX_STYLES];     /* region masks at each tap's size */
    cl_mem gram_scratch, fm_scratch;
    cl_mem values;
    int nslots;
    float *host_values;
    nst_tensor *x, *grad, *avg;
    int avg_steps;
    const nst_image *color_ref; /* content whose colours the output keeps, or NULL */
    /* tiled evaluation (tiled.c): tile > 0 caps the window side; the image
     * is evaluated in tiles when that gives more than one */
    int tile;
    int halo, align;               /* of the network's deepest tap */
    int tiled;                     /* the current size runs in tiles */
    nst_tiling tiling;             /* of the current size, when tiled */
    nst_tensor *tx, *tgrad;        /* one window of the image and its gradient */
    cl_mem tile_fm, tile_p;        /* a tap masked to the owned part; a target crop */
    cl_mem gsum[NST_MAX_LAYERS];   /* Gram sums over tiles, then G - A */
    cl_mem tile_values;            /* per-tile content values */
    double last[3];             /* weighted content, style, tv of the last evaluation */
    int evals;
};

/* Parses the layers, weights the style layers and builds the VGG. */
nst_status nst_tr_setup(nst_transfer *t, nst_runtime *rt, nst_model *model, const nst_params *p,
                        int nregions);
/* Computes the targets for `content`'s size (replacing earlier ones):
 * content taps, style Grams (blended, or one per region), region masks. */
nst_status nst_tr_targets(nst_transfer *t, const nst_image *content,
                          const nst_image *const *styles, int nstyles, const double *blend,
                          const nst_image *const *masks);
/* (Re)allocates x and grad for h x w. */
nst_status nst_tr_alloc_image(nst_transfer *t, int h, int w);
/* One loss + gradient evaluation (an nst_eval_fn). */
nst_status nst_tr_evaluate(void *ctx, nst_runtime *rt, const nst_tensor *x, nst_tensor *grad,
                           double *loss);
void nst_tr_release(nst_transfer *t);
/* Frees the targets and every size-dependent buffer of the tiled path. */
void nst_tr_release_targets(nst_transfer *t);

/* The plan of nst_transfer_plan for a transfer set up by nst_tr_setup
 * (plan.c), with the weights t was built from. */
nst_status nst_plan_compute(nst_transfer *t, const nst_weights *w, int content_w, int content_h,
                            const int *style_wh, int nstyles, nst_plan *out);

/* Tiled counterparts (tiled.c), used by nst_tr_targets / nst_tr_evaluate when
 * t->tiled: targets from tiles of the content and style images (the vgg is
 * left sized for t->tiling's window), and one evaluation whose loss and
 * gradient equal the untiled ones up to rounding. Regions are not tiled. */
nst_status nst_tiled_targets(nst_transfer *t, const nst_image *content,
                             const nst_image *const *styles, int nstyles, const double *blend);
nst_status nst_tiled_evaluate(nst_transfer *t, const nst_tensor *x, nst_tensor *grad);

#endif
