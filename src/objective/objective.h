/* objective.h: the objective of style transfer, L(x) = sum of weighted loss
 * terms of the image x, with its gradient (DESIGN.md section 1).
 *
 * The objective owns the feature network (the VGG up to the deepest layer a
 * term taps), the targets (content features P, style Grams A, region masks)
 * and the loss terms (content, style by Gram, W2 or histogram, total
 * variation; objective_int.h says how a term plugs in). It evaluates in one
 * of two strategies, chosen once per image size by nst_objective_targets:
 * the whole image through the
 * network at once, or overlapping tiles (tiled.c) when a tile limit cuts the
 * image; both give the same loss and gradient up to rounding.
 *
 * Typical use:
 *   nst_objective_create(rt, weights, p, nregions, &o);  // terms, network
 *   per image size:
 *     nst_objective_targets(o, content, styles, n, blend, masks, tile);
 *     per evaluation (an nst_eval_fn, optim.h):
 *       nst_objective_evaluate(o, rt, x, grad, &loss);
 *       nst_objective_value(o, "style");                 // one term's part
 *   nst_objective_free(rt, o);
 * Planning: nst_objective_memory gives the device bytes it would hold at a
 * size, without allocating. */
#ifndef NST_OBJECTIVE_H
#define NST_OBJECTIVE_H

#include <stdint.h>

#include "nst_int.h"
#include "vgg.h"
#include "weights.h"

typedef struct nst_objective nst_objective;

/* A parsed comma list of layer names. */
typedef struct nst_layer_list {
    int n;
    char name[NST_MAX_LAYERS][16];
} nst_layer_list;

/* Parses spec ("relu1_1,relu2_1") into l; `what` names the list in the
 * message. NST_ERR_INVALID_ARG for an empty list, an unknown, overlong or
 * repeated name, or more than NST_MAX_LAYERS. */
nst_status nst_layers_parse(const char *spec, const char *what, nst_layer_list *l, nst_msg *msg);

/* The longest side of the style images for a content of cw x ch (p's
 * style_scale, at least 16 pixels). */
int nst_style_longest(const nst_params *p, int cw, int ch);

/* Sets up the terms of p (checked with nst_params_check) and builds the
 * network up to their deepest layer from w (borrowed; not kept). nregions:
 * 0, or the number of region masks (one per style image). p is borrowed and
 * must outlive the objective. *out is owned by the caller. */
nst_status nst_objective_create(nst_runtime *rt, const nst_weights *w, const nst_params *p,
                                int nregions, nst_objective **out);
/* Releases everything o owns; accepts NULL. */
void nst_objective_free(nst_runtime *rt, nst_objective *o);

/* Computes the targets for `content`'s size, replacing earlier ones: content
 * features, style Grams (blended with blend, NULL = equal, or one per region
 * when the objective has regions: masks[k] for style k) and region masks.
 * tile > 0 evaluates in tiles of at most `tile` pixels a side when that cuts
 * the image (regions cannot be tiled: NST_ERR_INVALID_ARG). */
nst_status nst_objective_targets(nst_objective *o, const nst_image *content,
                                 const nst_image *const *styles, int nstyles, const double *blend,
                                 const nst_image *const *masks, int tile);
/* One loss and gradient evaluation at x (an nst_eval_fn; ctx is the
 * objective): OVERWRITES grad, *loss = the weighted sum of the terms.
 * NST_ERR_NUMERIC when the loss is not finite. */
nst_status nst_objective_evaluate(void *ctx, nst_runtime *rt, const nst_tensor *x,
                                  nst_tensor *grad, double *loss);

/* Makes the terms read their weights (content, style, TV, style layers)
 * from the objective's parameters again, which the caller changed; the
 * targets stay. The next evaluation uses them. */
void nst_objective_reweigh(nst_objective *o);

/* The weighted value of the term `name` ("content", "style", "tv") at the
 * last evaluation; 0 for a term the objective does not have. */
double nst_objective_value(const nst_objective *o, const char *name);
/* Evaluations so far. */
int nst_objective_evaluations(const nst_objective *o);
/* Tiles of the current size: 1 when the whole image is evaluated at once. */
int nst_objective_tiles(const nst_objective *o);
/* The feature network (for its FLOPs and depth). */
const nst_vgg *nst_objective_network(const nst_objective *o);
/* The receptive field of the deepest tap: the tiles' halo and alignment
 * (tiling.h). */
void nst_objective_halo(const nst_objective *o, int *halo, int *align);
/* NULL when the objective can be evaluated in tiles, else what cannot, as
 * a plural noun ("regions"). */
const char *nst_objective_untileable(const nst_objective *o);

/* The device memory of the objective at one size, network included. */
typedef struct nst_objective_bytes {
    int tiled;                   /* 1: evaluated in tiles */
    int tile_w, tile_h;          /* the evaluation's window (the image when whole) */
    int tiles_x, tiles_y;
    uint64_t network;            /* the network at the window: weights and activations
                                    (UINT64_MAX / 4 when the window is too small) */
    uint64_t content_targets;    /* targets computed from the content image */
    uint64_t style_targets;      /* targets computed from the style images */
    uint64_t scratch;            /* loss slots and the terms' evaluation buffers */
    uint64_t windows;            /* tiled: one window of the image and its gradient */
    uint64_t targets_peak;       /* the most held while the targets are computed */
    uint64_t largest;            /* the largest single buffer */
} nst_objective_bytes;

/* The figures for an output of w x h and style images of sw[k] x sh[k] (at
 * their style size, nst_style_longest), with tile limit `tile` (0: the whole
 * image). Returns 0 when that tiling is impossible, else 1. */
int nst_objective_memory(const nst_objective *o, int w, int h, const int *sw, const int *sh,
                         int nstyles, int tile, nst_objective_bytes *out);

#endif
