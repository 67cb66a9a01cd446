/* layers.c: launchers of the VGG layers (see layers.h); kernels in cl/conv.cl,
 * cl/pool.cl and cl/act.cl. Convolution is im2col + CLBlast GEMM over bands
 * of rows, so the scratch stays bounded whatever the image size. */
#include <stdlib.h>
#include <limits.h>

#include "layers.h"

const float nst_imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
const float nst_imagenet_std[3] = {0.229f, 0.224f, 0.225f};

#define ARG(x) sizeof(x), (const void *)&(x)

/* A 1-D launch over n work items with the device's 1-D work-group size; the
 * kernels bounds-check. Arguments: nargs, then (size, pointer) pairs. */
#define launch_1d(rt, prog, name, n, ...)                                        \
    nst_launch((rt), (prog), (name), 1, (const size_t[]){(n)},                 \
               (const size_t[]){nst_wg_1d(rt)}, __VA_ARGS__)

static nst_status bad_shape(nst_runtime *rt, const char *op, const char *what,
                            const nst_tensor *t) {
    return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: %s has shape [%d,%d,%d,%d]", op, what,
                    t->n, t->c, t->h, t->w);
}

/* Element counts are passed to kernels as int. */
static nst_status check_int(nst_runtime *rt, const char *op, size_t n) {
    if (n > (size_t)INT_MAX)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE,
                        "%s: %zu elements exceed what one kernel indexes; use a smaller image", op,
                        n);
    return NST_OK;
}

size_t nst_conv2d_scratch_cap(const nst_runtime *rt) {
    /* 64 MiB unless the settings say otherwise: larger bands mean fewer,
     * larger GEMMs (faster on big GPUs) for more device memory. */
    int mb = rt->settings.scratch_mb ? rt->settings.scratch_mb : NST_SCRATCH_MB_DEFAULT;
    size_t cap = (size_t)mb << 20;
    size_t quarter = (size_t)(rt->info.max_alloc / 4);
    if (quarter && quarter < cap) cap = quarter;
    return cap / sizeof(float);
}

size_t nst_conv2d_scratch_floats(int C, int R, int H, int W, size_t cap_floats) {
    if (R == 1) return 0;
    size_t row = (size_t)C * R * R * W;
    size_t rows = cap_floats / row;
    if (rows < 1) rows = 1;
    if (rows > (size_t)H) rows = (size_t)H;
    return rows * row;
}

/* out = conv(in, wm) over all rows of in, wm [K, C*R*R] row-major; beta 0 or 1.
 * Shared by the forward pass (wm = w) and the input gradient (wm = wf). */
static nst_status conv_gemm_pad(nst_runtime *rt, const char *op, cl_mem out, int K,
                                const nst_tensor *in, cl_mem wm, int R, float beta,
                                cl_mem scratch, size_t scratch_floats, const char *im2col) {
    nst_status st = NST_OK;
    const int C = in->c, H = in->h, W = in->w;
    const size_t HW = (size_t)H * W, CRR = (size_t)C * R * R;
    NST_TRY(check_int(rt, op, in->count));
    if (R == 1) /* the image is its own column matrix */
        return nst_gemm(rt, 0, 0, (size_t)K, HW, CRR, 1.0f, wm, 0, CRR, in->buf, 0, HW, beta,
                        out, 0, HW);
    size_t band = scratch_floats / (CRR * W);
    if (band < 1)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE,
                        "%s: one row of the im2col matrix (%zu floats) does not fit the %zu-float "
                        "scratch",
                        op, CRR * W, scratch_floats);
    if (band > (size_t)H) band = (size_t)H;
    NST_TRY(check_int(rt, op, band * CRR * W));
    for (int r0 = 0; r0 < H; r0 += (int)band) {
        int nr = H - r0 < (int)band ? H - r0 : (int)band;
        size_t n = (size_t)nr * W;
        NST_TRY(launch_1d(rt, "conv", im2col, CRR * n, 8, ARG(C), ARG(H), ARG(W), ARG(R),
                          ARG(r0), ARG(nr), ARG(in->buf), ARG(scratch)));
        NST_TRY(nst_gemm(rt, 0, 0, (size_t)K, n, CRR, 1.0f, wm, 0, CRR, scratch, 0, n, beta, out,
                         (size_t)r0 * W, HW));
    }
fail:
    return st;
}

static nst_status conv_gemm(nst_runtime *rt, const char *op, cl_mem out, int K,
                            const nst_tensor *in, cl_mem wm, int R, float beta, cl_mem scratch,
                            size_t scratch_floats) {
    return conv_gemm_pad(rt, op, out, K, in, wm, R, beta, scratch, scratch_floats,
                         "conv_im2col");
}

/* The forward convolution with zero padding, or with reflection padding
 * when reflect (the input larger than the padding). */
static nst_status conv_forward_pad(nst_runtime *rt, const char *op, int reflect,
                                   nst_tensor *y, const nst_tensor *x, const nst_tensor *w,
                                   const nst_tensor *b, int relu, cl_mem scratch,
                                   size_t scratch_floats) {
    nst_status st = NST_OK;
    const int K = w->n, R = w->h;
    if (x->n != 1 || (reflect && (x->h <= (R - 1) / 2 || x->w <= (R - 1) / 2)))
        return bad_shape(rt, op, "input", x);
    if (w->c != x->c || w->w != R || R % 2 == 0) return bad_shape(rt, op, "weight", w);
    if ((int)b->count != K) return bad_shape(rt, op, "bias", b);
    if (y->n != 1 || y->c != K || y->h != x->h || y->w != x->w)
        return bad_shape(rt, op, "output", y);
    NST_TRY(check_int(rt, op, y->count));
    NST_TRY(conv_gemm_pad(rt, op, y->buf, K, x, w->buf, R, 0.0f, scratch, scratch_floats,
                          reflect ? "conv_im2col_reflect" : "conv_im2col"));
    int HW = x->h * x->w;
    NST_TRY(launch_1d(rt, "conv", "conv_bias_act", y->count, 5, ARG(K), ARG(HW), ARG(relu),
                      ARG(b->buf), ARG(y->buf)));
fail:
    return st;
}

nst_status nst_conv2d_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x,
                              const nst_tensor *w, const nst_tensor *b, int relu, cl_mem scratch,
                              size_t scratch_floats) {
    return conv_forward_pad(rt, "conv2d forward", 0, y, x, w, b, relu, scratch, scratch_floats);
}

nst_status nst_conv2d_flip(nst_runtime *rt, nst_tensor *wf, const nst_tensor *w) {
    const int K = w->n, C = w->c, R = w->h;
    if (w->w != R) return bad_shape(rt, "conv2d flip", "weight", w);
    if (wf->n != C || wf->c != K || wf->h != R || wf->w != R)
        return bad_shape(rt, "conv2d flip", "flipped weight", wf);
    return launch_1d(rt, "conv", "conv_flip", w->count, 5, ARG(K), ARG(C), ARG(R), ARG(w->buf),
                     ARG(wf->buf));
}

nst_status nst_conv2d_backward_input(nst_runtime *rt, nst_tensor *dx, const nst_tensor *dy,
                                     const nst_tensor *wf, int accumulate, cl_mem scratch,
                                     size_t scratch_floats) {
    const char *op = "conv2d backward";
    const int C = wf->n, R = wf->h;
    if (dy->n != 1) return bad_shape(rt, op, "output gradient", dy);
    if (wf->c != dy->c || wf->w != R || R % 2 == 0) return bad_shape(rt, op, "flipped weight", wf);
    if (dx->n != 1 || dx->c != C || dx->h != dy->h || dx->w != dy->w)
        return bad_shape(rt, op, "input gradient", dx);
    return conv_gemm(rt, op, dx->buf, C, dy, wf->buf, R, accumulate ? 1.0f : 0.0f, scratch,
                     scratch_floats);
}

nst_status nst_relu_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x) {
    nst_status st = NST_OK;
    if (y->count != x->count) return bad_shape(rt, "relu forward", "output", y);
    NST_TRY(check_int(rt, "relu forward", x->count));
    int n = (int)x->count;
    st = launch_1d(rt, "act", "act_relu_forward", x->count, 3, ARG(n), ARG(x->buf), ARG(y->buf));
fail:
    return st;
}

nst_status nst_relu_backward(nst_runtime *rt, nst_tensor *dx, const nst_tensor *y,
                             const nst_tensor *dy) {
    nst_status st = NST_OK;
    if (dy->count != y->count) return bad_shape(rt, "relu backward", "output gradient", dy);
    if (dx->count != y->count) return bad_shape(rt, "relu backward", "input gradient", dx);
    NST_TRY(check_int(rt, "relu backward", y->count));
    int n = (int)y->count;
    st = launch_1d(rt, "act", "act_relu_backward", y->count, 4, ARG(n), ARG(y->buf),
                   ARG(dy->buf), ARG(dx->buf));
fail:
    return st;
}

nst_status nst_pool_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x, int max) {
    nst_status st = NST_OK;
    if (x->n != 1) return bad_shape(rt, "pool forward", "input", x);
    if (y->n != 1 || y->c != x->c || y->h != x->h / 2 || y->w != x->w / 2 || y->h < 1 || y->w < 1)
        return bad_shape(rt, "pool forward", "output", y);
    NST_TRY(check_int(rt, "pool forward", x->count));
    int C = x->c, H = x->h, W = x->w;
    st = launch_1d(rt, "pool", "pool_forward", y->count, 6, ARG(C), ARG(H), ARG(W), ARG(max),
                   ARG(x->buf), ARG(y->buf));
fail:
    return st;
}

nst_status nst_pool_backward(nst_runtime *rt, nst_tensor *dx, const nst_tensor *x,
                             const nst_tensor *dy, int max) {
    nst_status st = NST_OK;
    if (x->n != 1) return bad_shape(rt, "pool backward", "input", x);
    if (dy->n != 1 || dy->c != x->c || dy->h != x->h / 2 || dy->w != x->w / 2)
        return bad_shape(rt, "pool backward", "output gradient", dy);
    if (dx->n != 1 || dx->c != x->c || dx->h != x->h || dx->w != x->w)
        return bad_shape(rt, "pool backward", "input gradient", dx);
    NST_TRY(check_int(rt, "pool backward", x->count));
    int C = x->c, H = x->h, W = x->w;
    if (nst_cpu_kernels(rt)) /* one work item per pair of rows */
        st = nst_launch(rt, "pool", "pool_backward_cpu", 1,
                        (const size_t[]){(size_t)C * ((H + 1) / 2)},
                        (const size_t[]){nst_wg_1d_cpu(rt)}, 7, ARG(C), ARG(H), ARG(W),
                        ARG(max), ARG(x->buf), ARG(dy->buf), ARG(dx->buf));
    else
        st = launch_1d(rt, "pool", "pool_backward", x->count, 7, ARG(C), ARG(H), ARG(W),
                       ARG(max), ARG(x->buf), ARG(dy->buf), ARG(dx->buf));
fail:
    return st;
}

/* The input normalisation's arguments: `in` a 3-channel image (or its
 * gradient), `out` as many numbers, not the same buffer when the channels
 * are reversed (B, G, R). */
static nst_status normalize_check(nst_runtime *rt, const char *op, const char *in_name,
                                  const nst_tensor *in, const char *out_name,
                                  const nst_tensor *out, int bgr) {
    if (in->n != 1 || in->c != 3) return bad_shape(rt, op, in_name, in);
    if (out->count != in->count) return bad_shape(rt, op, out_name, out);
    if (bgr && out->buf == in->buf)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "%s: the %s is the %s, which a B, G, R network cannot do in place", op,
                        out_name, in_name);
    return check_int(rt, op, in->count);
}

nst_status nst_normalize_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x,
                                 const float mean[3], const float std[3], int bgr) {
    nst_status st = normalize_check(rt, "normalize forward", "image", x, "output", y, bgr);
    if (st != NST_OK) return st;
    int HW = x->h * x->w;
    bgr = bgr != 0;
    return launch_1d(rt, "act", "act_normalize_forward", x->count, 10, ARG(HW), ARG(bgr),
                     ARG(mean[0]), ARG(mean[1]), ARG(mean[2]), ARG(std[0]), ARG(std[1]),
                     ARG(std[2]), ARG(x->buf), ARG(y->buf));
}

nst_status nst_normalize_backward(nst_runtime *rt, nst_tensor *dx, const nst_tensor *dy,
                                  const float std[3], int bgr) {
    nst_status st =
        normalize_check(rt, "normalize backward", "gradient", dy, "image gradient", dx, bgr);
    if (st != NST_OK) return st;
    int HW = dy->h * dy->w;
    bgr = bgr != 0;
    return launch_1d(rt, "act", "act_normalize_backward", dy->count, 7, ARG(HW), ARG(bgr),
                     ARG(std[0]), ARG(std[1]), ARG(std[2]), ARG(dy->buf), ARG(dx->buf));
}

/* ---- the WCT models' layers ----------------------------------------------- */

/* A 2-D launch over (columns, rows): the kernels take the column from
 * dimension 0 and bounds-check; the driver picks the work-group. */
#define launch_2d(rt, prog, name, cols, rows, ...)                                \
    nst_launch((rt), (prog), (name), 2, (const size_t[]){(cols), (rows)}, NULL, __VA_ARGS__)

nst_status nst_conv2d_forward_reflect(nst_runtime *rt, nst_tensor *y, const nst_tensor *x,
                                      const nst_tensor *w, const nst_tensor *b, int relu,
                                      cl_mem scratch, size_t scratch_floats) {
    return conv_forward_pad(rt, "conv2d forward (reflection padding)", 1, y, x, w, b, relu,
                            scratch, scratch_floats);
}

nst_status nst_pool_max_ceil_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x) {
    nst_status st = NST_OK;
    const char *op = "pool forward (ceil mode)";
    if (x->n != 1) return bad_shape(rt, op, "input", x);
    if (y->n != 1 || y->c != x->c || y->h != (x->h + 1) / 2 || y->w != (x->w + 1) / 2)
        return bad_shape(rt, op, "output", y);
    NST_TRY(check_int(rt, op, x->count));
    int C = x->c, H = x->h, W = x->w;
    st = launch_2d(rt, "pool", "pool_max_ceil", (size_t)y->w, (size_t)C * y->h, 5, ARG(C), ARG(H),
                   ARG(W), ARG(x->buf), ARG(y->buf));
fail:
    return st;
}

nst_status nst_upsample_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *x) {
    nst_status st = NST_OK;
    const char *op = "nearest upsampling";
    if (x->n != 1) return bad_shape(rt, op, "input", x);
    if (y->n != 1 || y->c != x->c || y->h != 2 * x->h || y->w != 2 * x->w)
        return bad_shape(rt, op, "output", y);
    NST_TRY(check_int(rt, op, y->count));
    int C = x->c, H = x->h, W = x->w;
    st = launch_2d(rt, "pool", "upsample_nearest2", (size_t)y->w, (size_t)C * y->h, 5, ARG(C),
                   ARG(H), ARG(W), ARG(x->buf), ARG(y->buf));
fail:
    return st;
}

nst_status nst_pad_reflect_forward(nst_runtime *rt, nst_tensor *xp, const nst_tensor *x, int p) {
    nst_status st = NST_OK;
    const char *op = "reflection padding";
    if (x->n != 1 || p < 0 || x->h <= p || x->w <= p) return bad_shape(rt, op, "input", x);
    if (xp->n != 1 || xp->c != x->c || xp->h != x->h + 2 * p || xp->w != x->w + 2 * p)
        return bad_shape(rt, op, "output", xp);
    NST_TRY(check_int(rt, op, xp->count));
    int C = x->c, H = x->h, W = x->w;
    st = launch_2d(rt, "conv", "conv_pad_reflect", (size_t)xp->w, (size_t)C * xp->h, 6, ARG(C),
                   ARG(H), ARG(W), ARG(p), ARG(x->buf), ARG(xp->buf));
fail:
    return st;
}

nst_status nst_crop_forward(nst_runtime *rt, nst_tensor *y, const nst_tensor *yp, int p) {
    nst_status st = NST_OK;
    const char *op = "crop";
    if (y->n != 1 || p < 0) return bad_shape(rt, op, "output", y);
    if (yp->n != 1 || yp->c != y->c || yp->h != y->h + 2 * p || yp->w != y->w + 2 * p)
        return bad_shape(rt, op, "input", yp);
    NST_TRY(check_int(rt, op, yp->count));
    int C = y->c, H = y->h, W = y->w;
    st = launch_2d(rt, "conv", "conv_crop", (size_t)W, (size_t)C * H, 6, ARG(C), ARG(H), ARG(W),
                   ARG(p), ARG(yp->buf), ARG(y->buf));
fail:
    return st;
}
