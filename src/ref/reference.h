/* reference.h: plain-C references of the VGG layers, the whole VGG graph and
 * the losses, in double, written as the most obvious loops (batch 1, CHW).
 * The device code is checked against these (by the test suites and by
 * `nst devices --check`, src/devcheck.c), and these against finite
 * differences. Slow by design: keep the sizes small.
 *
 * Every array is borrowed; functions that allocate say so. None prints,
 * exits or aborts: an allocation failure is reported by the return value. */
#ifndef NST_REFERENCE_H
#define NST_REFERENCE_H

#include <stddef.h>

#include "net.h"
#include "weights.h"

/* ---- layers (ref_layers.c) ---------------------------------------------- */

/* x [C,H,W], w [K,C,R,R], b [K] (may be NULL) -> y [K,H,W], stride 1, pad
 * (R-1)/2, then max(., 0) when relu. Overwrites y. */
void nst_ref_conv_forward(double *y, const double *x, const double *w, const double *b, int C,
                          int H, int W, int K, int R, int relu);
/* dy [K,H,W] -> dx [C,H,W] += dL/dx, scattered straight from the definition. */
void nst_ref_conv_backward_input(double *dx, const double *dy, const double *w, int C, int H,
                                 int W, int K, int R);
void nst_ref_relu_forward(double *y, const double *x, size_t n);
/* dx = dy where y > 0 (y the output), else 0. */
void nst_ref_relu_backward(double *dx, const double *y, const double *dy, size_t n);
/* 2x2 stride 2, floor: x [C,H,W] -> y [C,H/2,W/2]. */
void nst_ref_pool_forward(double *y, const double *x, int C, int H, int W, int max);
/* Overwrites dx [C,H,W]; max pooling routes to the first maximum. */
void nst_ref_pool_backward(double *dx, const double *x, const double *dy, int C, int H, int W,
                           int max);
/* The input normalisation of a [3,H,W] image in [0,1] and its backward, as
 * convention `in` says (NULL: torchvision's ImageNet mean and std): y[c] =
 * (x[c'] - mean[c]) / std[c], c' = 2 - c for a B, G, R network. Overwrite. */
void nst_ref_normalize_forward(double *y, const double *x, int H, int W,
                               const nst_input_norm *in);
void nst_ref_normalize_backward(double *dx, const double *dy, int H, int W,
                                const nst_input_norm *in);

/* The first nlayers layers of the weights' network (nst_weights_net; the
 * layer kinds and kernels from its table) run on a [3,H,W] image in [0,1],
 * normalised first by the weights' input convention. act[i] is layer i's
 * output (a conv's before its ReLU). */
typedef struct nst_ref_vgg {
    const nst_net *net;
    const nst_input_norm *in;
    int nlayers;
    int c[NST_NET_MAX_LAYERS], h[NST_NET_MAX_LAYERS], w[NST_NET_MAX_LAYERS];
    double *act[NST_NET_MAX_LAYERS];
    double *xn;             /* the normalised image */
    double *wt[NST_NET_MAX_CONVS], *b[NST_NET_MAX_CONVS]; /* as doubles, by conv number */
} nst_ref_vgg;

/* Fills m (allocating; free with nst_ref_vgg_free, also after a failure).
 * Returns 0 on success, -1 when a weight is missing or misshapen, the image
 * too small, nlayers beyond the network or memory short. */
int nst_ref_vgg_forward(nst_ref_vgg *m, const nst_weights *w, int nlayers, int avg_pool,
                        const double *img, int H, int W);
/* dimg [3,H,W] = dL/dimg for L with dL/d(act[i]) = dtap[i] (NULL: 0).
 * Returns 0, or -1 when memory is short. */
int nst_ref_vgg_backward(const nst_ref_vgg *m, int avg_pool, double *const *dtap, int H, int W,
                         double *dimg);
void nst_ref_vgg_free(nst_ref_vgg *m);

/* Zeroed doubles (free()); NULL when memory is short. */
double *nst_ref_alloc(size_t n);
/* A double copy of x (free()); NULL when memory is short. */
double *nst_ref_from_float(const float *x, size_t n);

/* ---- losses (ref_loss.c) ------------------------------------------------- */

/* g[C*C] = F F^T / (C*M), F: C x M. */
void nst_ref_gram(const double *f, int c, int m, double *g);
/* sum of x^2 */
double nst_ref_sum_squares(const double *x, size_t n);
/* ||f - p||^2 / ||p||^2; grad (NULL or n) = its gradient, overwritten. */
double nst_ref_content(const double *f, const double *p, size_t n, double *grad);
/* ||G(f) - a||^2 / ||a||^2 with a: C*C; grad (NULL or C*M) overwritten.
 * NaN when memory is short. */
double nst_ref_style(const double *f, int c, int m, const double *a, double *grad);
/* TV over planes of h x w, mean over planes*h*w entries; grad overwritten. */
double nst_ref_tv(const double *x, int planes, int h, int w, double *grad);

/* Central differences of fn(x) over every x[i], step h, into grad. fn gets
 * ctx; x is modified and restored. */
typedef double (*nst_ref_fn)(void *ctx, const double *x);
void nst_ref_numeric_grad(nst_ref_fn fn, void *ctx, double *x, size_t n, double h,
                          double *grad);

/* ---- the WCT models and transform (ref_wct.c) --------------------------- */

/* x [C,H,W] reflection-padded by (R-1)/2 (H, W larger than that), then
 * convolved without padding: y [K,H,W], then max(., 0) when relu
 * (ref_layers.c, beside nst_ref_conv_forward). */
void nst_ref_conv_reflect_forward(double *y, const double *x, const double *w, const double *b,
                                  int C, int H, int W, int K, int R, int relu);
/* 2x2 stride-2 max pooling, ceil mode: y [C,(H+1)/2,(W+1)/2]. */
void nst_ref_pool_max_ceil(double *y, const double *x, int C, int H, int W);
/* Nearest-neighbour upsampling x2: y [C,2H,2W]. */
void nst_ref_upsample2(double *y, const double *x, int C, int H, int W);
/* Layers 0..depth-1 (0: all) of any table of net.h run forward on x
 * [C,H,W] with the weights w (names with the table's prefix): *out is a new
 * [oc,oh,ow] array (free()). 0, or -1 for a missing or misshapen weight, an
 * unknown layer kind or memory short. */
int nst_ref_net_forward(const nst_net *net, int depth, const nst_weights *w, const double *x,
                        int C, int H, int W, double **out, int *oc, int *oh, int *ow);
/* Eigenvalues and eigenvectors (columns of evecs, n x n row-major) of the
 * symmetric a, by cyclic Jacobi rotations. 0, or -1 when memory is short. */
int nst_ref_eigen_sym(int n, const double *a, double *evals, double *evecs);
/* Mean [c] and unbiased covariance [c*c] of f [c, n]. */
void nst_ref_stats(const double *f, int c, int n, double *mean, double *cov);
/* The whitening and colouring transform of content features fc [c, n] with
 * nstyles paintings' statistics, blended by blend (NULL: equal), as
 * src/run/wct.h defines it: out [c, n]. 0, or -1 when memory is short. */
int nst_ref_wct(const double *fc, int c, int n, int nstyles, const double *const *smean,
                const double *const *scov, const double *blend, double alpha, double eps,
                double min_eig, double *out);

/* float -> double arrays */
void nst_ref_to_double(const float *src, double *dst, size_t n);

#endif
