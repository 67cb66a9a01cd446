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

#endif
