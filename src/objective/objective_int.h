/* objective_int.h: inside the objective (objective.c, terms.c, tiled.c): the
 * loss-term interface, the evaluation strategies and the objective's state.
 *
 * A loss term is a table of hooks (nst_term_ops) and a state of its own. The
 * objective lists the terms in objective.c (term_kinds); each gets value
 * slots in one device buffer, read back once per evaluation, and the hooks
 * of the strategy in use, any of which may be NULL:
 *
 *   setup                  parameters, layers to tap, number of slots
 *   whole image            content_targets, style_targets, finish_targets,
 *                          evaluate (values into slots, weighted gradients
 *                          ADDED into the tap gradients)
 *   tiles (tiled.c)        tile_content_targets, tile_style_targets,
 *                          tile_finish_targets; per evaluation tile_sums_begin,
 *                          tile_sums per tile, tile_sums_end (pass 1: sums
 *                          over the whole image, e.g. Grams), then
 *                          tile_evaluate per tile (pass 2: gradients)
 *   both                   evaluate_image (terms on the image itself, after
 *                          the network's gradient), value, memory, release
 *
 * A term that cannot run in tiles says so in untileable(); the plan and
 * the objective then refuse tiles. A term that the parameters may leave out
 * (one of the style losses) says whether they want it in active(). A new
 * term (another style loss, a temporal term) is a new nst_term_ops in its
 * own file (term_*.c) and one line in term_kinds. */
#ifndef NST_OBJECTIVE_INT_H
#define NST_OBJECTIVE_INT_H

#include "objective.h"
#include "tiling.h"

#define NST_MAX_TERMS 8
#define NST_MAX_TAPS (2 * NST_MAX_LAYERS)

typedef struct nst_term nst_term;

/* The sizes a memory figure is asked at. */
typedef struct nst_term_sizes {
    int h, w;   /* the output image */
    int th, tw; /* the evaluation window (h x w for the whole image) */
    int tiled;
} nst_term_sizes;

/* A term's device bytes at those sizes. */
typedef struct nst_term_memory {
    uint64_t content_targets; /* computed from the content image */
    uint64_t style_targets;   /* computed from the style images */
    uint64_t scratch;         /* held from the targets on, for the evaluation */
    uint64_t largest;         /* its largest single buffer */
} nst_term_memory;

typedef struct nst_term_ops {
    const char *name;  /* "content", "style", "tv": nst_objective_value's key */
    size_t state_size; /* bytes of the term's state, zeroed before setup */
    /* 0 when p leaves the term out (NULL: always in). */
    int (*active)(const nst_params *p);
    /* Reads the term's parameters from o->p, adds the layers it reads
     * (nst_objective_add_tap) and sets t->nslots. Before the network exists. */
    nst_status (*setup)(nst_term *t, nst_objective *o);
    /* Reads the term's weights from o->p again (nst_objective_reweigh): a
     * running transfer re-targeted. NULL for a term without weights. */
    void (*reweigh)(nst_term *t, nst_objective *o);
    /* NULL when the term can run in tiles, else what cannot (a plural noun,
     * "regions"). */
    const char *(*untileable)(const nst_term *t);

    /* ---- the whole image ---- */
    /* The network holds the content image's features at its size. */
    nst_status (*content_targets)(nst_term *t, nst_objective *o);
    /* The network holds style image k's features; blend: its weight (the
     * blend's, or 1/nstyles). */
    nst_status (*style_targets)(nst_term *t, nst_objective *o, int k, double blend);
    /* The network is back at the content's size. masks: per style, or NULL. */
    nst_status (*finish_targets)(nst_term *t, nst_objective *o, const nst_image *content,
                                 const nst_image *const *masks);
    /* The network holds the image's features and zeroed tap gradients. */
    nst_status (*evaluate)(nst_term *t, nst_objective *o);

    /* ---- tiles: the network holds one window's features; tg is the
     * tiling of the image being processed, tl the tile ---- */
    nst_status (*tile_content_targets)(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                       const nst_tile *tl);
    nst_status (*tile_style_targets)(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                     const nst_tile *tl, double blend);
    /* The network is sized for the content's windows again. */
    nst_status (*tile_finish_targets)(nst_term *t, nst_objective *o, const nst_tiling *tg);
    nst_status (*tile_sums_begin)(nst_term *t, nst_objective *o);
    nst_status (*tile_sums)(nst_term *t, nst_objective *o, const nst_tiling *tg,
                            const nst_tile *tl);
    nst_status (*tile_sums_end)(nst_term *t, nst_objective *o);
    /* Values ADDED into the slots (zeroed per evaluation), gradients at the
     * tile's owned positions into the tap gradients (zeroed per tile). */
    nst_status (*tile_evaluate)(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                const nst_tile *tl);

    /* ---- both ---- */
    /* x: the whole image; ADDS the term's gradient into grad. */
    nst_status (*evaluate_image)(nst_term *t, nst_objective *o, const nst_tensor *x,
                                 nst_tensor *grad);
    /* The weighted value from the term's slots as read back. */
    double (*value)(const nst_term *t, const float *slots);
    void (*memory)(const nst_term *t, const nst_objective *o, const nst_term_sizes *s,
                   nst_term_memory *m);
    /* Frees the targets and buffers of the current size (the state stays). */
    void (*release)(nst_term *t, nst_runtime *rt);
} nst_term_ops;

struct nst_term {
    const nst_term_ops *ops;
    void *state;     /* ops->state_size bytes, owned by the objective */
    int slot, nslots; /* its value slots: [slot, slot + nslots) */
    double value;    /* weighted, at the last evaluation */
};

extern const nst_term_ops nst_term_content, nst_term_style, nst_term_tv;
extern const nst_term_ops nst_term_w2, nst_term_hist; /* term_w2.c, term_hist.c */
extern const nst_term_ops nst_term_temporal; /* term_temporal.c */

/* ---- helpers the style terms share (terms.c) ---- */

/* What every style term's state begins with: the style layers, their
 * weights b * w_l (w_l normalised to sum 1) and the regions (0: one target,
 * the blend of the styles). */
typedef struct nst_style_base {
    nst_layer_list layers;
    double weight[NST_MAX_LAYERS];
    int nregions;
} nst_style_base;
/* The regions' count, at least 1. */
static inline int nst_style_regions(const nst_style_base *b) {
    return b->nregions ? b->nregions : 1;
}
/* Hooks for a style term (its state an nst_style_base first): setup reads
 * the style layers and weights, taps them and takes a slot per layer and
 * region; untileable refuses regions; value is sum of w_l * slot. */
nst_status nst_style_setup(nst_term *t, nst_objective *o);
/* The layers' weights from o->p again (the reweigh hook; setup calls it). */
void nst_style_reweigh(nst_term *t, nst_objective *o);
const char *nst_style_untileable(const nst_term *t);
double nst_style_value(const nst_term *t, const float *slots);
/* One style layer l and region r of the evaluation: f the tap, df its
 * gradient, slot the value's. */
typedef nst_status (*nst_style_eval_fn)(nst_term *t, nst_objective *o, int l, int r,
                                        const nst_tensor *f, nst_tensor *df, size_t slot);
/* An evaluate hook: fn for every style layer and region, in slot order. */
nst_status nst_style_evaluate(nst_term *t, nst_objective *o, nst_style_eval_fn fn);
/* Where a per-layer hook works (nst_style_each_layer). */
typedef struct nst_style_at {
    int l, c, stride;    /* the style layer, its channels and stride */
    const nst_tensor *f; /* its tap (of the network's image or window) */
    nst_tensor *df;      /* its gradient */
    nst_tensor fm;       /* with a tile: f with all but the tile's owned positions
                            zeroed (the strategy's scratch) */
    double m;            /* with a tiling: the whole image's positions at the layer */
    const nst_tile *tl;  /* the tile, or NULL */
} nst_style_at;
typedef nst_status (*nst_style_layer_fn)(nst_term *t, nst_objective *o, const nst_style_at *a,
                                         double arg);
/* fn(t, o, at, arg) at each style layer in order; tg and tl may be NULL. */
nst_status nst_style_each_layer(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                const nst_tile *tl, double arg, nst_style_layer_fn fn);
/* Define the hooks `name` that run name_at at each style layer: a tile hook
 * (tile_sums, tile_evaluate: with the tile's owned features) and a hook on
 * the term alone (tile_sums_begin, tile_sums_end). */
#define NST_STYLE_TILE_HOOK(name)                                                    \
    static nst_status name(nst_term *t, nst_objective *o, const nst_tiling *tg,       \
                           const nst_tile *tl) {                                     \
        return nst_style_each_layer(t, o, tg, tl, 0, name##_at);                     \
    }
#define NST_STYLE_LAYER_HOOK(name)                                                   \
    static nst_status name(nst_term *t, nst_objective *o) {                          \
        return nst_style_each_layer(t, o, NULL, NULL, 0, name##_at);                 \
    }
/* The table of a style term P whose targets are sums over the style images'
 * positions and whose evaluation in tiles sums over the image first (Gram,
 * W2): state P_term, hooks P_active, P_targets, P_finish, P_evaluate,
 * P_tile_targets, P_tile_finish, P_sums_begin, P_sums, P_sums_end,
 * P_tile_evaluate, P_memory, P_release, and `value`. */
#define NST_STYLE_SUMS_OPS(P, value_fn)                                                      \
    {                                                                                         \
        .name = "style", .state_size = sizeof(P##_term), .active = P##_active,                \
        .setup = nst_style_setup, .reweigh = nst_style_reweigh,                               \
        .untileable = nst_style_untileable, .value = value_fn,                                \
        .style_targets = P##_targets, .finish_targets = P##_finish, .evaluate = P##_evaluate, \
        .tile_style_targets = P##_tile_targets, .tile_finish_targets = P##_tile_finish,       \
        .tile_sums_begin = P##_sums_begin, .tile_sums = P##_sums,                             \
        .tile_sums_end = P##_sums_end, .tile_evaluate = P##_tile_evaluate,                    \
        .memory = P##_memory, .release = P##_release,                                         \
    }
/* Region r's mask (content's luminance, resized to the content, clamped to
 * [0, 1]) 2x2-pooled down to each layer's size, into mask[l][r]. */
nst_status nst_style_masks(nst_objective *o, const nst_layer_list *layers, int nregions,
                           const nst_image *content, const nst_image *const *masks,
                           cl_mem mask[][NST_MAX_STYLES]);
/* The content loss's tile evaluation, shared with terms whose target is a
 * whole-image map: f's owned positions against target (the whole image's
 * map at f's layer, stride s) cropped to the window into crop (scratch of
 * f's size); value added into o->values[slot] (via one scratch float of
 * tile_values at tv_slot), weight * gradient into df. */
nst_status nst_tile_map_loss(nst_objective *o, const nst_tensor *f, int s, const nst_tile *tl,
                             const nst_tensor *target, float norm2, float weight, nst_tensor *df,
                             cl_mem crop, cl_mem tile_values, size_t tv_slot, size_t slot);

/* What a memory figure is asked for (nst_objective_memory). */
typedef struct nst_memory_query {
    int w, h;
    const int *sw, *sh;
    int nstyles;
    int tile;
    const nst_tiling *tiling; /* of the output when tiled */
} nst_memory_query;

/* An evaluation strategy, chosen per size by nst_objective_targets. */
typedef struct nst_strategy {
    /* tg: the content's tiling when tiled (the strategy may take it over,
     * leaving it zeroed), tile: the limit. */
    nst_status (*targets)(nst_objective *o, nst_tiling *tg, int tile, const nst_image *content,
                          const nst_image *const *styles, int nstyles, const double *blend,
                          const nst_image *const *masks);
    /* The terms on the network at x: values into slots, grad OVERWRITTEN with
     * their gradient. */
    nst_status (*evaluate)(nst_objective *o, const nst_tensor *x, nst_tensor *grad);
    int (*memory)(const nst_objective *o, const nst_memory_query *q, nst_objective_bytes *m);
    int (*tiles)(const nst_objective *o);
    void (*release)(nst_objective *o);
} nst_strategy;

extern const nst_strategy nst_whole_strategy, nst_tiled_strategy;

struct nst_objective {
    nst_runtime *rt;
    const nst_params *p;
    nst_vgg *net;
    int nregions;
    char taps[NST_MAX_TAPS][16]; /* the layers the terms read */
    int ntaps;
    nst_term terms[NST_MAX_TERMS];
    int nterms;
    int nslots;
    cl_mem values;      /* nslots floats on the device */
    float *host_values; /* and read back */
    int halo, align;    /* of the deepest tap */
    const nst_strategy *strategy; /* of the current size; NULL before targets */
    void *strategy_state;         /* the strategy's own (tiled.c) */
    int ready;                    /* the targets of the current size are complete */
    int evals;
};

/* ---- helpers for terms and strategies (objective.c) ---- */

/* for each term t of o (a strategy calls each term's hook, when it has one,
 * in slot order) */
#define NST_FOR_TERMS(o, t) for (nst_term *t = (o)->terms; t < (o)->terms + (o)->nterms; t++)

/* Adds a layer the network must compute and expose (setup only). */
nst_status nst_objective_add_tap(nst_objective *o, const char *name);
/* A tap's channels and stride (nst_vgg_tap_shape); 0 or -1. */
int nst_objective_tap_shape(const nst_objective *o, const char *name, int *channels,
                            int *stride);
/* Each style image resized for the content (nst_objective_style_image) and
 * uploaded, in order: fn(o, k, image tensor, blend weight, ctx). */
typedef nst_status (*nst_style_fn)(nst_objective *o, int k, const nst_tensor *img,
                                   double blend, void *ctx);
nst_status nst_objective_each_style(nst_objective *o, const nst_image *content,
                                    const nst_image *const *styles, int nstyles,
                                    const double *blend, nst_style_fn fn, void *ctx);
/* A tap's channels, and its stride into *stride unless NULL. */
int nst_objective_channels(const nst_objective *o, const char *name, int *stride);
/* Floats of the largest tap at an h x w image. */
size_t nst_objective_largest_tap(const nst_objective *o, int h, int w);
/* *out = sum of buf[0..n)^2 (through slot 0 of the values), or 1 when that is
 * not positive: an all-zero target is matched absolutely. */
nst_status nst_objective_norm2(nst_objective *o, cl_mem buf, size_t n, float *out);
/* Style image `style` resized for the content (nst_style_longest). */
nst_status nst_objective_style_image(const nst_objective *o, const nst_image *content,
                                     const nst_image *style, nst_image **out);
/* A [1,3,h,w] tensor holding img. */
nst_status nst_objective_upload(nst_runtime *rt, const nst_image *img, nst_tensor **out);
/* The network's bytes at h x w; UINT64_MAX / 4 when the image is too small. */
uint64_t nst_objective_net_bytes(const nst_objective *o, int h, int w);
/* Sums the terms' figures (targets and scratch added, largest the max). */
void nst_objective_terms_memory(const nst_objective *o, const nst_term_sizes *s,
                                nst_term_memory *m);
/* The figures both strategies share at sizes s with nx x ny windows: the
 * terms' (into *tm, content and style targets into m), the window and the
 * network at it. */
void nst_objective_bytes_start(const nst_objective *o, const nst_term_sizes *s, int nx, int ny,
                               nst_objective_bytes *m, nst_term_memory *tm);
/* buf[0..floats) = 0. */
nst_status nst_fill_zero(nst_runtime *rt, cl_mem buf, size_t floats);

/* ---- helpers of the tiled strategy for the terms' tile hooks (tiled.c) ---- */

/* The owned rectangle of tile tl at a layer of stride s, in the window's
 * coordinates at that layer: rows [*y0, *y0 + *rh), columns likewise. */
void nst_tile_owned(const nst_tile *tl, int s, int *y0, int *x0, int *rh, int *rw);
/* fm <- the tap f (stride s) with everything but tl's owned positions
 * zeroed, in the strategy's scratch (valid until the next call). */
nst_status nst_tile_mask_owned(nst_objective *o, const nst_tensor *f, const nst_tile *tl, int s,
                               nst_tensor *fm);
/* dst[c, y0.., x0..] (+)= src[c, y+oy, x+ox] over an rh x rw rectangle. */
nst_status nst_tile_rect(nst_runtime *rt, const nst_tensor *dst, const nst_tensor *src, int y0,
                         int x0, int rh, int rw, int oy, int ox, int acc);
/* Positions of a stride-s layer of the whole image tg tiles. */
double nst_tiling_positions(const nst_tiling *tg, int s);

#endif
