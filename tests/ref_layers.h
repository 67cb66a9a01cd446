/* ref_layers.h: plain-C references of the VGG layers and of the whole VGG
 * graph, in double, written as the most obvious loops (batch 1, CHW). The
 * device code is checked against these, and these against finite
 * differences. */
#ifndef NST_TEST_REF_LAYERS_H
#define NST_TEST_REF_LAYERS_H

#include "weights.h"

/* x [C,H,W], w [K,C,R,R], b [K] (may be NULL) -> y [K,H,W], stride 1, pad
 * (R-1)/2, then max(., 0) when relu. Overwrites y. */
void ref_conv_forward(double *y, const double *x, const double *w, const double *b, int C, int H,
                      int W, int K, int R, int relu);
/* dy [K,H,W] -> dx [C,H,W] += dL/dx, scattered straight from the definition. */
void ref_conv_backward_input(double *dx, const double *dy, const double *w, int C, int H, int W,
                             int K, int R);
void ref_relu_forward(double *y, const double *x, size_t n);
/* dx = dy where y > 0 (y the output), else 0. */
void ref_relu_backward(double *dx, const double *y, const double *dy, size_t n);
/* 2x2 stride 2, floor: x [C,H,W] -> y [C,H/2,W/2]. */
void ref_pool_forward(double *y, const double *x, int C, int H, int W, int max);
/* Overwrites dx [C,H,W]; max pooling routes to the first maximum. */
void ref_pool_backward(double *dx, const double *x, const double *dy, int C, int H, int W,
                       int max);
void ref_normalize_forward(double *y, const double *x, int H, int W);
void ref_normalize_backward(double *dx, const double *dy, int H, int W);

/* The VGG-19 sequence conv1_1 (0) ... pool5 (36): 0 conv, 1 relu, 2 pool. */
int ref_vgg_kind(int layer);

/* The first nlayers layers of VGG-19 run on a [3,H,W] image in [0,1],
 * normalised first. act[i] is layer i's output (a conv's before its ReLU). */
typedef struct ref_vgg {
    int nlayers;
    int c[37], h[37], w[37];
    double *act[37];
    double *xn; /* the normalised image */
    double *wt[16], *b[16]; /* weights as doubles, by conv number */
} ref_vgg;

/* Returns 0 on success, -1 when a weight is missing or the image too small. */
int ref_vgg_forward(ref_vgg *m, const nst_weights *w, int nlayers, int avg_pool,
                    const double *img, int H, int W);
/* dimg [3,H,W] = dL/dimg for L with dL/d(act[i]) = dtap[i] (NULL: 0). */
void ref_vgg_backward(const ref_vgg *m, int avg_pool, double *const *dtap, int H, int W,
                      double *dimg);
void ref_vgg_free(ref_vgg *m);

/* Allocation helpers that fail the test on OOM. */
double *ref_alloc(size_t n);
double *ref_from_float(const float *x, size_t n);

#endif
