/* devcheck.c: the device self-check (see devcheck.h). Each case allocates
 * what it needs in a small pool released after it, runs the device code,
 * downloads the result and compares it with the double reference. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "devcheck.h"
#include "layers.h"
#include "loss.h"
#include "nst_int.h"
#include "optim.h"
#include "reference.h"
#include "ref_temporal.h"
#include "temporal.h"
#include "vgg.h"
#include "wct.h"

/* ---- per-case pool and helpers ------------------------------------------ */

enum { POOL_T = 24, POOL_B = 8, POOL_H = 48 };

typedef struct dc {
    nst_runtime *rt;
    int tiny;
    uint64_t rng;
    nst_tensor *t[POOL_T];
    cl_mem b[POOL_B];
    void *h[POOL_H];
    int nt, nb, nh;
    nst_check_row *rows;
    int nrows, first;   /* rows so far; first row of the running case */
    double t0;
} dc;

static void dc_release(dc *c) {
    for (int i = 0; i < c->nt; i++) nst_tensor_free(c->rt, c->t[i]);
    for (int i = 0; i < c->nb; i++) nst_buffer_free(c->rt, c->b[i]);
    for (int i = 0; i < c->nh; i++) free(c->h[i]);
    c->nt = c->nb = c->nh = 0;
}

/* xorshift64*, as the tests' RNG: the same data on every platform. */
static float uniform(dc *c, float lo, float hi) {
    c->rng ^= c->rng >> 12;
    c->rng ^= c->rng << 25;
    c->rng ^= c->rng >> 27;
    uint64_t v = c->rng * 0x2545F4914F6CDD1DULL;
    double u = (double)(v >> 11) / 9007199254740992.0;
    return (float)(lo + (hi - lo) * u);
}

static nst_status host(dc *c, size_t bytes, void **out) {
    *out = NULL;
    if (c->nh == POOL_H) return nst_fail(RTM(c->rt), NST_ERR_INVALID_ARG, "devcheck: host pool");
    void *p = calloc(bytes ? bytes : 1, 1);
    if (!p) return nst_fail(RTM(c->rt), NST_ERR_NOMEM, "devcheck: out of host memory");
    c->h[c->nh++] = p;
    *out = p;
    return NST_OK;
}

/* Host floats, uniform in [lo, hi) (lo == hi: all zero), and their doubles. */
static nst_status rnd(dc *c, size_t n, float lo, float hi, float **f, double **d) {
    nst_status st;
    if ((st = host(c, n * sizeof(float), (void **)f)) != NST_OK) return st;
    if (d && (st = host(c, n * sizeof(double), (void **)d)) != NST_OK) return st;
    for (size_t i = 0; i < n; i++) {
        (*f)[i] = lo == hi ? 0.0f : uniform(c, lo, hi);
        if (d) (*d)[i] = (*f)[i];
    }
    return NST_OK;
}

static nst_status dbl(dc *c, size_t n, double **d) {
    return host(c, n * sizeof(double), (void **)d);
}

/* A device tensor, uploaded from data when not NULL. */
static nst_status ten(dc *c, int n, int ch, int h, int w, const float *data, nst_tensor **out) {
    nst_status st;
    *out = NULL;
    if (c->nt == POOL_T) return nst_fail(RTM(c->rt), NST_ERR_INVALID_ARG, "devcheck: pool");
    if ((st = nst_tensor_create(c->rt, n, ch, h, w, out)) != NST_OK) return st;
    c->t[c->nt++] = *out;
    return data ? nst_tensor_upload(c->rt, *out, data) : NST_OK;
}

static nst_status buf(dc *c, size_t floats, cl_mem *out) {
    nst_status st;
    if (c->nb == POOL_B) return nst_fail(RTM(c->rt), NST_ERR_INVALID_ARG, "devcheck: pool");
    if ((st = nst_buffer_create(c->rt, floats * sizeof(float), out)) != NST_OK) return st;
    c->b[c->nb++] = *out;
    return NST_OK;
}

/* Downloads a tensor into new host floats. */
static nst_status get(dc *c, const nst_tensor *t, float **out) {
    nst_status st;
    if ((st = host(c, t->count * sizeof(float), (void **)out)) != NST_OK) return st;
    return nst_tensor_download(c->rt, t, *out);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

/* Waits for pending uploads, then starts the clock. */
static nst_status tic(dc *c) {
    nst_status st = nst_finish(c->rt);
    c->t0 = now_ms();
    return st;
}

/* Waits for the device work and stores the time in every row of the case
 * from `from` on. */
static nst_status toc(dc *c, int from) {
    nst_status st = nst_finish(c->rt);
    double ms = now_ms() - c->t0;
    for (int i = c->first + from; i < c->nrows; i++) c->rows[i].ms = ms;
    return st;
}

/* Adds a row (not yet measured: fails until compared). */
static nst_check_row *row(dc *c, double atol, double rtol, int whole, const char *fmt, ...)
    NST_PRINTF(5, 6);
static nst_check_row *row(dc *c, double atol, double rtol, int whole, const char *fmt, ...) {
    nst_check_row *r = &c->rows[c->nrows++];
    memset(r, 0, sizeof *r);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->op, sizeof r->op, fmt, ap);
    va_end(ap);
    r->max_abs = r->max_rel = NAN;
    r->atol = atol;
    r->rtol = rtol;
    r->whole = whole;
    r->measured = 1;
    return r;
}

int nst_check_compare(nst_check_row *r, const float *got, const double *want, size_t n) {
    double maxd = 0, maxw = 0;
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (isnan(d) || d > maxd) maxd = isnan(d) ? INFINITY : d;
        if (fabs(want[i]) > maxw) maxw = fabs(want[i]);
        if (!r->whole && !(d <= r->atol + r->rtol * fabs(want[i]))) ok = 0;
    }
    r->max_abs = maxd;
    r->max_rel = maxw > 0 ? maxd / maxw : maxd;
    if (r->whole) ok = r->max_rel <= r->rtol;
    r->measured = 1;
    r->pass = ok;
    return ok;
}

/* Compares one scalar. */
static int cmp1(nst_check_row *r, float got, double want) {
    return nst_check_compare(r, &got, &want, 1);
}

/* ---- layers ------------------------------------------------------------- */

/* Convolution forward (bias, optional ReLU; band_rows > 0 caps the im2col
 * scratch at that many image rows) and backward to the input (accumulating). */
static nst_status case_conv(dc *c, int C, int H, int W, int K, int R, int relu, int band_rows,
                            int backward) {
    nst_status st;
    nst_runtime *rt = c->rt;
    size_t nx = (size_t)C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)K * H * W;
    float *x, *w, *b, *y;
    double *xd, *wd, *bd, *want;
    nst_tensor *tx, *tw, *tb, *ty;
    cl_mem scratch;
    nst_check_row *r;
    if (!backward)
        r = row(c, 1e-5, 1e-4, 0, "conv2d %dx%d fwd%s%s C%d %dx%d K%d", R, R,
                relu ? "+bias+ReLU" : "+bias", band_rows ? " banded" : "", C, H, W, K);
    else
        r = row(c, 1e-5, 1e-4, 0, "conv2d %dx%d bwd input C%d %dx%d K%d", R, R, C, H, W, K);
    NST_TRY(rnd(c, nx, -1, 1, &x, &xd));
    NST_TRY(rnd(c, nw, -0.5f, 0.5f, &w, &wd));
    NST_TRY(rnd(c, K, -0.5f, 0.5f, &b, &bd));
    NST_TRY(ten(c, K, C, R, R, w, &tw));
    int cin = backward ? K : C;
    size_t cap = band_rows ? (size_t)cin * R * R * W * band_rows : nst_conv2d_scratch_cap(rt);
    size_t sf = nst_conv2d_scratch_floats(cin, R, H, W, cap);
    NST_TRY(buf(c, sf ? sf : 1, &scratch));
    if (!backward) {
        NST_TRY(ten(c, 1, C, H, W, x, &tx));
        NST_TRY(ten(c, 1, K, 1, 1, b, &tb));
        NST_TRY(ten(c, 1, K, H, W, NULL, &ty));
        NST_TRY(tic(c));
        NST_TRY(nst_conv2d_forward(rt, ty, tx, tw, tb, relu, scratch, sf));
        NST_TRY(toc(c, 0));
        NST_TRY(get(c, ty, &y));
        NST_TRY(dbl(c, ny, &want));
        nst_ref_conv_forward(want, xd, wd, bd, C, H, W, K, R, relu);
        nst_check_compare(r, y, want, ny);
    } else { /* dy [K,H,W] -> dx [C,H,W], accumulated onto x */
        float *dy;
        double *dyd;
        nst_tensor *twf, *tdy, *tdx;
        NST_TRY(rnd(c, ny, -1, 1, &dy, &dyd));
        NST_TRY(ten(c, C, K, R, R, NULL, &twf));
        NST_TRY(ten(c, 1, K, H, W, dy, &tdy));
        NST_TRY(ten(c, 1, C, H, W, x, &tdx));
        NST_TRY(tic(c));
        NST_TRY(nst_conv2d_flip(rt, twf, tw));
        NST_TRY(nst_conv2d_backward_input(rt, tdx, tdy, twf, 1, scratch, sf));
        NST_TRY(toc(c, 0));
        NST_TRY(get(c, tdx, &y));
        nst_ref_conv_backward_input(xd, dyd, wd, C, H, W, K, R);
        nst_check_compare(r, y, xd, nx);
    }
fail:
    return st;
}

static nst_status case_relu(dc *c, size_t n) {
    nst_status st;
    float *x, *dy, *y, *dx;
    double *xd, *dyd, *yr, *dxr;
    nst_tensor *tx, *ty, *tdy, *tdx;
    nst_check_row *rf = row(c, 0, 0, 0, "ReLU fwd n%zu", n);
    nst_check_row *rb = row(c, 0, 0, 0, "ReLU bwd n%zu", n);
    NST_TRY(rnd(c, n, -1, 1, &x, &xd));
    NST_TRY(rnd(c, n, -1, 1, &dy, &dyd));
    NST_TRY(ten(c, 1, 1, 1, (int)n, x, &tx));
    NST_TRY(ten(c, 1, 1, 1, (int)n, NULL, &ty));
    NST_TRY(ten(c, 1, 1, 1, (int)n, dy, &tdy));
    NST_TRY(ten(c, 1, 1, 1, (int)n, NULL, &tdx));
    NST_TRY(tic(c));
    NST_TRY(nst_relu_forward(c->rt, ty, tx));
    NST_TRY(toc(c, 0));
    NST_TRY(tic(c));
    NST_TRY(nst_relu_backward(c->rt, tdx, ty, tdy));
    NST_TRY(toc(c, 1));
    NST_TRY(get(c, ty, &y));
    NST_TRY(get(c, tdx, &dx));
    NST_TRY(dbl(c, n, &yr));
    NST_TRY(dbl(c, n, &dxr));
    nst_ref_relu_forward(yr, xd, n);
    nst_ref_relu_backward(dxr, yr, dyd, n);
    nst_check_compare(rf, y, yr, n);
    nst_check_compare(rb, dx, dxr, n);
fail:
    return st;
}

static nst_status case_pool(dc *c, int C, int H, int W, int max) {
    nst_status st;
    const char *kind = max ? "max" : "avg";
    size_t nx = (size_t)C * H * W, ny = (size_t)C * (H / 2) * (W / 2);
    float *x, *dy, *y, *dx;
    double *xd, *dyd, *yr, *dxr;
    nst_tensor *tx, *ty, *tdy, *tdx;
    nst_check_row *rf = row(c, 1e-7, 1e-6, 0, "%s pool fwd C%d %dx%d", kind, C, H, W);
    nst_check_row *rb = row(c, 1e-7, 1e-6, 0, "%s pool bwd C%d %dx%d", kind, C, H, W);
    NST_TRY(rnd(c, nx, -1, 1, &x, &xd));
    NST_TRY(rnd(c, ny, -1, 1, &dy, &dyd));
    NST_TRY(ten(c, 1, C, H, W, x, &tx));
    NST_TRY(ten(c, 1, C, H / 2, W / 2, NULL, &ty));
    NST_TRY(ten(c, 1, C, H / 2, W / 2, dy, &tdy));
    NST_TRY(ten(c, 1, C, H, W, NULL, &tdx));
    NST_TRY(tic(c));
    NST_TRY(nst_pool_forward(c->rt, ty, tx, max));
    NST_TRY(toc(c, 0));
    NST_TRY(tic(c));
    NST_TRY(nst_pool_backward(c->rt, tdx, tx, tdy, max));
    NST_TRY(toc(c, 1));
    NST_TRY(get(c, ty, &y));
    NST_TRY(get(c, tdx, &dx));
    NST_TRY(dbl(c, ny, &yr));
    NST_TRY(dbl(c, nx, &dxr));
    nst_ref_pool_forward(yr, xd, C, H, W, max);
    nst_ref_pool_backward(dxr, xd, dyd, C, H, W, max);
    nst_check_compare(rf, y, yr, ny);
    nst_check_compare(rb, dx, dxr, nx);
fail:
    return st;
}

/* The input normalisation of a weights' convention (torchvision's, or
 * Caffe's with the channels reversed and 255 x - mean). The forward's
 * absolute tolerance: x - mean off by three roundings of a number below 1
 * (2^-24 each), scaled by 1 / std. */
static nst_status case_normalize(dc *c, int H, int W, int input) {
    nst_status st;
    size_t n = (size_t)3 * H * W;
    float *x, *dy, *y, *dx, mean[3], sd[3];
    double *xd, *dyd, *yr, *dxr, amp = 0;
    nst_tensor *tx, *ty, *tdy, *tdx;
    const nst_input_norm *in = nst_input_get(input);
    for (int k = 0; k < 3; k++) {
        mean[k] = (float)in->mean[k];
        sd[k] = (float)in->std[k];
        amp = fmax(amp, 1 / in->std[k]);
    }
    nst_check_row *rf = row(c, fmax(1e-6, 3 * amp / 16777216.0), 1e-6, 0,
                            "normalise fwd 3x%dx%d, %s", H, W, in->name);
    nst_check_row *rb = row(c, 1e-6, 1e-6, 0, "normalise bwd 3x%dx%d, %s", H, W, in->name);
    NST_TRY(rnd(c, n, 0, 1, &x, &xd));
    NST_TRY(rnd(c, n, -1, 1, &dy, &dyd));
    NST_TRY(ten(c, 1, 3, H, W, x, &tx));
    NST_TRY(ten(c, 1, 3, H, W, NULL, &ty));
    NST_TRY(ten(c, 1, 3, H, W, dy, &tdy));
    NST_TRY(ten(c, 1, 3, H, W, NULL, &tdx));
    NST_TRY(tic(c));
    NST_TRY(nst_normalize_forward(c->rt, ty, tx, mean, sd, in->bgr));
    NST_TRY(toc(c, 0));
    NST_TRY(tic(c));
    NST_TRY(nst_normalize_backward(c->rt, tdx, tdy, sd, in->bgr));
    NST_TRY(toc(c, 1));
    NST_TRY(get(c, ty, &y));
    NST_TRY(get(c, tdx, &dx));
    NST_TRY(dbl(c, n, &yr));
    NST_TRY(dbl(c, n, &dxr));
    nst_ref_normalize_forward(yr, xd, H, W, in);
    nst_ref_normalize_backward(dxr, dyd, H, W, in);
    nst_check_compare(rf, y, yr, n);
    nst_check_compare(rb, dx, dxr, n);
fail:
    return st;
}

/* ---- losses, GEMM and reductions ---------------------------------------- */

static nst_status case_gram_style(dc *c, int C, int H, int W) {
    nst_status st;
    nst_runtime *rt = c->rt;
    int m = H * W;
    size_t n = (size_t)C * m, cc = (size_t)C * C;
    float *f, *s, *df0, *g, *a, *gdf, val;
    double *fd, *sd, *df0d, *gr, *ad, *grad;
    nst_tensor *tf, *tdf;
    cl_mem tg, target, scratch, values;
    nst_check_row *rg = row(c, 1e-6, 1e-5, 0, "Gram C%d %dx%d", C, H, W);
    nst_check_row *rv = row(c, 1e-6, 1e-4, 0, "style loss value C%d %dx%d", C, H, W);
    nst_check_row *rd = row(c, 1e-5, 1e-4, 0, "style loss grad C%d %dx%d", C, H, W);
    NST_TRY(rnd(c, n, 0, 2, &f, &fd));
    NST_TRY(rnd(c, n, 0, 2, &s, &sd));
    NST_TRY(rnd(c, n, -1, 1, &df0, &df0d));
    NST_TRY(dbl(c, cc, &gr));
    NST_TRY(dbl(c, cc, &ad));
    NST_TRY(dbl(c, n, &grad));
    NST_TRY(host(c, cc * sizeof(float), (void **)&g));
    NST_TRY(host(c, cc * sizeof(float), (void **)&a));
    nst_ref_gram(sd, C, m, ad); /* the target: the Gram of another map, as floats */
    for (size_t i = 0; i < cc; i++) ad[i] = a[i] = (float)ad[i];
    double an = nst_ref_sum_squares(ad, cc);
    NST_TRY(ten(c, 1, C, H, W, f, &tf));
    NST_TRY(ten(c, 1, C, H, W, df0, &tdf));
    NST_TRY(buf(c, cc, &tg));
    NST_TRY(buf(c, cc, &target));
    NST_TRY(buf(c, cc, &scratch));
    NST_TRY(buf(c, 2, &values));
    NST_TRY(nst_write_floats(rt, target, 0, cc, a));
    NST_TRY(tic(c));
    NST_TRY(nst_gram(rt, tg, tf));
    NST_TRY(toc(c, 0));
    const float weight = 0.75f;
    NST_TRY(tic(c));
    NST_TRY(nst_style_loss(rt, tf, scratch, target, (float)an, weight, tdf, values, 1));
    NST_TRY(toc(c, 1));
    NST_TRY(nst_read_floats(rt, tg, 0, cc, g));
    NST_TRY(nst_read_floats(rt, values, 1, 1, &val));
    NST_TRY(get(c, tdf, &gdf));
    nst_ref_gram(fd, C, m, gr);
    nst_check_compare(rg, g, gr, cc);
    double want = nst_ref_style(fd, C, m, ad, grad);
    for (size_t i = 0; i < n; i++) grad[i] = df0d[i] + weight * grad[i];
    cmp1(rv, val, want);
    nst_check_compare(rd, gdf, grad, n);
fail:
    return st;
}

static nst_status case_content_tv(dc *c, int C, int H, int W) {
    nst_status st;
    nst_runtime *rt = c->rt;
    size_t n = (size_t)C * H * W, ni = (size_t)3 * H * W;
    float *f, *p, *df0, *x, *dx0, *gdf, *gdx, val[2];
    double *fd, *pd, *df0d, *xd, *dx0d, *grad, *gradx;
    nst_tensor *tf, *tp, *tdf, *tx, *tdx;
    cl_mem values;
    nst_check_row *rcv = row(c, 1e-7, 1e-5, 0, "content loss value C%d %dx%d", C, H, W);
    nst_check_row *rcd = row(c, 1e-6, 1e-5, 0, "content loss grad C%d %dx%d", C, H, W);
    nst_check_row *rtv = row(c, 1e-7, 1e-5, 0, "TV loss value 3x%dx%d", H, W);
    nst_check_row *rtd = row(c, 1e-6, 1e-5, 0, "TV loss grad 3x%dx%d", H, W);
    NST_TRY(rnd(c, n, 0, 2, &f, &fd));
    NST_TRY(rnd(c, n, 0, 2, &p, &pd));
    NST_TRY(rnd(c, n, -1, 1, &df0, &df0d));
    NST_TRY(rnd(c, ni, 0, 1, &x, &xd));
    NST_TRY(rnd(c, ni, -1, 1, &dx0, &dx0d));
    NST_TRY(dbl(c, n, &grad));
    NST_TRY(dbl(c, ni, &gradx));
    NST_TRY(ten(c, 1, C, H, W, f, &tf));
    NST_TRY(ten(c, 1, C, H, W, p, &tp));
    NST_TRY(ten(c, 1, C, H, W, df0, &tdf));
    NST_TRY(ten(c, 1, 3, H, W, x, &tx));
    NST_TRY(ten(c, 1, 3, H, W, dx0, &tdx));
    NST_TRY(buf(c, 2, &values));
    const float wc = 2.5f, wt = 3.0f;
    float pn = (float)nst_ref_sum_squares(pd, n);
    NST_TRY(tic(c));
    NST_TRY(nst_content_loss(rt, tf, tp, pn, wc, tdf, values, 0));
    NST_TRY(toc(c, 0));
    NST_TRY(tic(c));
    NST_TRY(nst_tv_loss(rt, tx, wt, tdx, values, 1));
    NST_TRY(toc(c, 2));
    NST_TRY(nst_read_floats(rt, values, 0, 2, val));
    NST_TRY(get(c, tdf, &gdf));
    NST_TRY(get(c, tdx, &gdx));
    double want = nst_ref_content(fd, pd, n, grad);
    for (size_t i = 0; i < n; i++) grad[i] = df0d[i] + wc * grad[i];
    cmp1(rcv, val[0], want);
    nst_check_compare(rcd, gdf, grad, n);
    want = nst_ref_tv(xd, 3, H, W, gradx);
    for (size_t i = 0; i < ni; i++) gradx[i] = dx0d[i] + wt * gradx[i];
    cmp1(rtv, val[1], want);
    nst_check_compare(rtd, gdx, gradx, ni);
fail:
    return st;
}

/* The temporal term of video (its tolerances are test_temporal.c's). */
static nst_status case_temporal(dc *c, int H, int W) {
    nst_status st;
    size_t hw = (size_t)H * W, n = 3 * hw;
    float *x, *t, *m, *dx0, *gdx, val;
    double *xd, *td, *md, *dx0d, *grad;
    nst_tensor *tx, *tt, *tdx;
    cl_mem mask, values;
    nst_check_row *rv = row(c, 0, 1e-5, 0, "temporal loss value 3x%dx%d", H, W);
    nst_check_row *rd = row(c, 1e-6, 1e-5, 0, "temporal loss grad 3x%dx%d", H, W);
    NST_TRY(rnd(c, n, 0, 1, &x, &xd));
    NST_TRY(rnd(c, n, 0, 1, &t, &td));
    NST_TRY(rnd(c, hw, 0, 1, &m, &md));
    NST_TRY(rnd(c, n, -1, 1, &dx0, &dx0d));
    NST_TRY(dbl(c, n, &grad));
    NST_TRY(ten(c, 1, 3, H, W, x, &tx));
    NST_TRY(ten(c, 1, 3, H, W, t, &tt));
    NST_TRY(ten(c, 1, 3, H, W, dx0, &tdx));
    NST_TRY(buf(c, hw, &mask));
    NST_TRY(buf(c, 1, &values));
    NST_TRY(nst_write_floats(c->rt, mask, 0, hw, m));
    const float wt = 3.0f;
    NST_TRY(tic(c));
    NST_TRY(nst_temporal_loss(c->rt, tx, tt, mask, wt, tdx, values, 0));
    NST_TRY(toc(c, 0));
    NST_TRY(nst_read_floats(c->rt, values, 0, 1, &val));
    NST_TRY(get(c, tdx, &gdx));
    double want = nst_ref_temporal(xd, td, md, 3, H, W, grad);
    for (size_t i = 0; i < n; i++) grad[i] = dx0d[i] + wt * grad[i];
    cmp1(rv, val, want);
    nst_check_compare(rd, gdx, grad, n);
fail:
    return st;
}

/* The products through whatever runs them on this runtime (CLBlast, the
 * host BLAS, or TF32 tensor cores for the batched ones): C[M,N] = 0.5 A[M,K]
 * B[N,K]^T + C (row-major, B transposed); then `batch` products M[q] =
 * op(U[q]) V[q] with V [K x N] and M in one buffer after V, as the Winograd
 * convolutions lay them out: U [K x M] transposed (the input gradient), then
 * U [M x K] (the forward pass). In TF32 the batched products are held to
 * their bound, (2^-10 + K 2^-24) sum_k |u||v| (cl/mma.cl). */
static nst_status case_gemm(dc *c, int M, int N, int K, int batch) {
    nst_status st;
    size_t na = (size_t)M * K, nb = (size_t)N * K, nc = (size_t)M * N;
    size_t nv = nb * batch, nm = nc * batch;
    float *a, *b, *cf, *got, *u, *v, *gotm;
    double *ad, *bd, *cd, *ud, *vd, *md;
    cl_mem ta, tb, tc, tu, tvm;
    const char *who = c->rt->gemm_host ? "host" : "CLBlast";
    const char *bwho = c->rt->tf32 ? "TF32 tensor cores" : who;
    nst_check_row *r = row(c, 1e-5, 1e-4, 0, "GEMM (%s) %dx%dx%d", who, M, N, K);
    nst_check_row *rb[2];
    for (int trans = 1; trans >= 0; trans--)
        rb[trans] = row(c, 1e-5, 1e-4, 0, "batched GEMM (%s) %dx%dx%d x%d, %s", bwho, M, N, K,
                        batch, trans ? "A^T" : "A");
    NST_TRY(rnd(c, na, -1, 1, &a, &ad));
    NST_TRY(rnd(c, nb, -1, 1, &b, &bd));
    NST_TRY(rnd(c, nc, -1, 1, &cf, &cd));
    NST_TRY(rnd(c, na * batch, -1, 1, &u, &ud));
    NST_TRY(rnd(c, nv + nm, -1, 1, &v, &vd)); /* V, then M's old contents */
    NST_TRY(host(c, nc * sizeof(float), (void **)&got));
    NST_TRY(host(c, nm * sizeof(float), (void **)&gotm));
    NST_TRY(dbl(c, nm, &md));
    NST_TRY(buf(c, na, &ta));
    NST_TRY(buf(c, nb, &tb));
    NST_TRY(buf(c, nc, &tc));
    NST_TRY(buf(c, na * batch, &tu));
    NST_TRY(buf(c, nv + nm, &tvm));
    NST_TRY(nst_write_floats(c->rt, ta, 0, na, a));
    NST_TRY(nst_write_floats(c->rt, tb, 0, nb, b));
    NST_TRY(nst_write_floats(c->rt, tc, 0, nc, cf));
    NST_TRY(nst_write_floats(c->rt, tu, 0, na * batch, u));
    NST_TRY(nst_write_floats(c->rt, tvm, 0, nv + nm, v));
    NST_TRY(tic(c));
    NST_TRY(nst_gemm(c->rt, 0, 1, M, N, K, 0.5f, ta, 0, K, tb, 0, K, 1.0f, tc, 0, N));
    NST_TRY(toc(c, 0));
    NST_TRY(nst_read_floats(c->rt, tc, 0, nc, got));
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += ad[(size_t)i * K + k] * bd[(size_t)j * K + k];
            cd[(size_t)i * N + j] += 0.5 * s;
        }
    nst_check_compare(r, got, cd, nc);
    for (int trans = 1; trans >= 0; trans--) {
        NST_TRY(tic(c));
        NST_TRY(nst_gemm_strided_batched(c->rt, trans, 0, M, N, K, 1.0f, tu, 0, trans ? M : K,
                                         na, tvm, 0, N, nb, 0.0f, tvm, nv, N, nc, batch));
        NST_TRY(toc(c, 1));
        NST_TRY(nst_read_floats(c->rt, tvm, nv, nm, gotm));
        double sabs_max = 0;
        for (int q = 0; q < batch; q++)
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0, sabs = 0;
                    for (int k = 0; k < K; k++) {
                        double uv = ud[q * na + (trans ? (size_t)k * M + i : (size_t)i * K + k)] *
                                    vd[q * nb + (size_t)k * N + j];
                        s += uv;
                        sabs += fabs(uv);
                    }
                    md[q * nc + (size_t)i * N + j] = s;
                    if (sabs > sabs_max) sabs_max = sabs;
                }
        if (c->rt->tf32) {
            rb[trans]->atol = (ldexp(1, -10) + K * ldexp(1, -24)) * sabs_max;
            rb[trans]->rtol = 0;
        }
        nst_check_compare(rb[trans], gotm, md, nm);
    }
fail:
    return st;
}

static nst_status case_reduce(dc *c, size_t n) {
    nst_status st;
    float *x, got[2];
    double *xd;
    cl_mem tx, out;
    nst_check_row *r2 = row(c, 0, 1e-5, 0, "reduction sum x^2 n%zu", n);
    nst_check_row *r1 = row(c, 0, 1e-5, 0, "reduction sum |x| n%zu", n);
    NST_TRY(rnd(c, n, -1, 1, &x, &xd));
    NST_TRY(buf(c, n, &tx));
    NST_TRY(buf(c, 2, &out));
    NST_TRY(nst_write_floats(c->rt, tx, 0, n, x));
    NST_TRY(tic(c));
    NST_TRY(nst_sum_squares(c->rt, tx, n, out, 0));
    NST_TRY(toc(c, 0));
    NST_TRY(tic(c));
    NST_TRY(nst_sum_abs(c->rt, tx, n, out, 1));
    NST_TRY(toc(c, 1));
    NST_TRY(nst_read_floats(c->rt, out, 0, 2, got));
    double s1 = 0;
    for (size_t i = 0; i < n; i++) s1 += fabs(xd[i]);
    cmp1(r2, got[0], nst_ref_sum_squares(xd, n));
    cmp1(r1, got[1], s1);
fail:
    return st;
}

/* ---- optimisers on a small quadratic ------------------------------------ */

enum { QN = 40, LBFGS_STEPS = 3, ADAM_STEPS = 3 };

/* f(x) = sum 0.5 a_i x_i^2 - b_i x_i, evaluated on the host. */
typedef struct quad {
    double a[QN], b[QN];
} quad;

static double quad_eval(const quad *q, const double *x, double *g) {
    double f = 0;
    for (int i = 0; i < QN; i++) {
        f += 0.5 * q->a[i] * x[i] * x[i] - q->b[i] * x[i];
        g[i] = q->a[i] * x[i] - q->b[i];
    }
    return f;
}

static nst_status quad_cb(void *ctx, nst_runtime *rt, const nst_tensor *x, nst_tensor *grad,
                          double *loss) {
    const quad *q = ctx;
    float xf[QN], gf[QN];
    double xd[QN], gd[QN];
    nst_status st = nst_tensor_download(rt, x, xf);
    if (st != NST_OK) return st;
    for (int i = 0; i < QN; i++) xd[i] = xf[i];
    *loss = quad_eval(q, xd, gd);
    for (int i = 0; i < QN; i++) gf[i] = (float)gd[i];
    return nst_tensor_upload(rt, grad, gf);
}

/* The reference L-BFGS (no line search, lr 1, history >= steps): the
 * two-loop recursion over every pair so far, the first step scaled by
 * min(1, 1/|g|_1) as torch.optim.LBFGS. */
static void ref_lbfgs(const quad *q, double *x, int steps) {
    double s[LBFGS_STEPS][QN], y[LBFGS_STEPS][QN];
    double rho[LBFGS_STEPS], al[LBFGS_STEPS], g[QN], gn[QN], d[QN], xn[QN], gamma = 1;
    int count = 0;
    quad_eval(q, x, g);
    for (int t = 0; t < steps; t++) {
        for (int i = 0; i < QN; i++) d[i] = -g[i];
        for (int k = count - 1; k >= 0; k--) {
            double a = 0;
            for (int i = 0; i < QN; i++) a += s[k][i] * d[i];
            al[k] = a * rho[k];
            for (int i = 0; i < QN; i++) d[i] -= al[k] * y[k][i];
        }
        for (int i = 0; i < QN && count; i++) d[i] *= gamma;
        for (int k = 0; k < count; k++) {
            double b = 0;
            for (int i = 0; i < QN; i++) b += y[k][i] * d[i];
            for (int i = 0; i < QN; i++) d[i] += (al[k] - b * rho[k]) * s[k][i];
        }
        double step = 1, g1 = 0;
        if (count == 0) {
            for (int i = 0; i < QN; i++) g1 += fabs(g[i]);
            step = fmin(1.0, 1.0 / g1);
        }
        for (int i = 0; i < QN; i++) xn[i] = x[i] + step * d[i];
        quad_eval(q, xn, gn);
        double ys = 0, yy = 0;
        for (int i = 0; i < QN; i++) {
            s[count][i] = xn[i] - x[i];
            y[count][i] = gn[i] - g[i];
            ys += s[count][i] * y[count][i];
            yy += y[count][i] * y[count][i];
            x[i] = xn[i];
            g[i] = gn[i];
        }
        if (ys > 1e-10) {
            rho[count] = 1 / ys;
            gamma = ys / yy;
            count++;
        }
    }
}

/* The reference Adam, as torch.optim.Adam, with the clamp to [0,1]. */
static void ref_adam(const quad *q, const nst_optim_params *p, double *x, int steps) {
    double m[QN] = {0}, v[QN] = {0}, g[QN];
    for (int t = 1; t <= steps; t++) {
        quad_eval(q, x, g);
        double step = p->lr / (1 - pow(p->beta1, t)), rsq = 1 / sqrt(1 - pow(p->beta2, t));
        for (int i = 0; i < QN; i++) {
            m[i] = p->beta1 * m[i] + (1 - p->beta1) * g[i];
            v[i] = p->beta2 * v[i] + (1 - p->beta2) * g[i] * g[i];
            x[i] -= step * m[i] / (sqrt(v[i]) * rsq + p->eps);
            x[i] = fmin(1.0, fmax(0.0, x[i]));
        }
    }
}

static nst_status case_optim(dc *c, int kind) {
    nst_status st;
    nst_optim *o = NULL;
    quad q;
    float *x0, *xf;
    double *xd;
    nst_tensor *tx;
    int steps = kind == NST_OPTIM_LBFGS ? LBFGS_STEPS : ADAM_STEPS;
    nst_check_row *r =
        kind == NST_OPTIM_LBFGS
            ? row(c, 1e-4, 1e-3, 0, "L-BFGS %d steps, quadratic n%d", steps, QN)
            : row(c, 1e-5, 1e-4, 0, "Adam %d steps, quadratic n%d", steps, QN);
    for (int i = 0; i < QN; i++) {
        q.a[i] = uniform(c, 0.5f, 2.0f);
        q.b[i] = uniform(c, -0.5f, 1.0f);
    }
    NST_TRY(rnd(c, QN, 0.2f, 0.8f, &x0, &xd));
    NST_TRY(ten(c, 1, 1, 1, QN, x0, &tx));
    nst_optim_params p;
    nst_optim_defaults(&p, kind);
    p.history = 4;
    NST_TRY(nst_optim_create(c->rt, &p, QN, &o));
    NST_TRY(tic(c));
    for (int t = 0; t < steps; t++) {
        double loss;
        NST_TRY(nst_optim_step(c->rt, o, tx, quad_cb, &q, &loss));
    }
    NST_TRY(toc(c, 0));
    NST_TRY(get(c, tx, &xf));
    if (kind == NST_OPTIM_LBFGS)
        ref_lbfgs(&q, xd, steps);
    else
        ref_adam(&q, &p, xd, steps);
    nst_check_compare(r, xf, xd, QN);
fail:
    nst_optim_free(c->rt, o);
    return st;
}

/* ---- the whole network -------------------------------------------------- */

/* The backward's decisions, which ReLUs pass and which element of each
 * max-pooling window takes the gradient, are discontinuous in the forward's
 * values: where two elements of a window are nearer than the forward's
 * rounding (the row above allows rel 1e-4), a device and the reference may
 * pick different ones, both right, and the whole gradient of that window
 * then flows through a different pixel. So the reference backward decides
 * as the device did: every output the device kept (each ReLU's and pool's,
 * which hold the masks and the pooling inputs) replaces the reference's.
 * The forward row has checked those values already; the backward row checks
 * the gradients given them. */
static nst_status adopt_decisions(dc *c, const nst_vgg *m, nst_ref_vgg *ref) {
    nst_status st;
    size_t most = 0;
    for (int i = 0; i < ref->nlayers; i++) {
        const nst_tensor *t = nst_vgg_output(m, i);
        if (t && t->count > most) most = t->count;
    }
    float *f;
    if ((st = host(c, most * sizeof(float), (void **)&f)) != NST_OK) return st;
    for (int i = 0; i < ref->nlayers; i++) {
        const nst_tensor *t = nst_vgg_output(m, i);
        if (!t) continue;
        if (t->count != (size_t)ref->c[i] * ref->h[i] * ref->w[i])
            return nst_fail(RTM(c->rt), NST_ERR_INVALID_ARG,
                            "devcheck: layer %d has %zu values on the device, %d x %d x %d in "
                            "the reference",
                            i, t->count, ref->c[i], ref->h[i], ref->w[i]);
        if ((st = nst_tensor_download(c->rt, t, f)) != NST_OK) return st;
        for (size_t j = 0; j < t->count; j++) ref->act[i][j] = f[j];
    }
    return NST_OK;
}

/* A narrow generated network of a table (VGG-19, VGG-16) to relu5_1:
 * forward to six taps, then backward to the image from random tap
 * gradients (the reference deciding as the device did, adopt_decisions). */
static nst_status case_vgg(dc *c, nst_network id, int H, int W, double width) {
    static const char *const taps[] = {"relu1_1", "relu2_1", "relu3_1",
                                       "conv4_2", "relu4_1", "relu5_1"};
    enum { NTAPS = 6 };
    nst_status st;
    nst_runtime *rt = c->rt;
    nst_weights *w = NULL;
    nst_vgg *m = NULL;
    nst_ref_vgg ref;
    nst_msg msg = {{0}};
    size_t ni = (size_t)3 * H * W;
    float *img, *gimg;
    double *imgd, *dimg, *dtap[NST_NET_MAX_LAYERS] = {0};
    const nst_net *net = nst_net_get(id);
    int deepest = nst_net_index(net, taps[NTAPS - 1]), convs = 0;
    for (int i = 0; i <= deepest; i++) convs += net->layer[i].kind == NST_LAYER_CONV;
    nst_tensor *timg, *tdimg;
    memset(&ref, 0, sizeof ref);
    nst_check_row *rf = row(c, 0, 1e-4, 1, "%s fwd %d taps, width 1/%.0f, %dx%d", net->title,
                            NTAPS, 1 / width, H, W);
    nst_check_row *rb = row(c, 0, 1e-4, 1, "%s bwd to image, width 1/%.0f, %dx%d", net->title,
                            1 / width, H, W);
    if (rt->tf32) {
        /* A first-order budget, not a proof: each convolution's products
         * round both operands to TF32 (2^-10 together), twice that for the
         * Winograd transforms around them, summed over the convolutions the
         * pass goes through (the backward pass: forward and back). */
        rf->rtol = convs * ldexp(1, -9);
        rb->rtol = 2 * convs * ldexp(1, -9);
    }
    if ((st = nst_weights_generate_net(&w, net, 7, width, convs, &msg)) != NST_OK) {
        nst_fail(RTM(rt), st, "%s", msg.text);
        goto fail;
    }
    NST_TRY(nst_vgg_create(rt, w, taps, NTAPS, 0, &m));
    NST_TRY(nst_vgg_resize(rt, m, H, W));
    NST_TRY(rnd(c, ni, 0, 1, &img, &imgd));
    NST_TRY(dbl(c, ni, &dimg));
    NST_TRY(ten(c, 1, 3, H, W, img, &timg));
    NST_TRY(ten(c, 1, 3, H, W, NULL, &tdimg));
    NST_TRY(tic(c));
    NST_TRY(nst_vgg_forward(rt, m, timg));
    NST_TRY(toc(c, 0));
    if (nst_ref_vgg_forward(&ref, w, deepest + 1, 0, imgd, H, W) != 0) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "devcheck: the reference VGG failed");
        goto fail;
    }
    NST_TRY(nst_vgg_zero_grad(rt, m));
    rf->max_abs = rf->max_rel = 0;
    int ok = 1;
    for (int t = 0; t < NTAPS; t++) {
        int i = nst_net_index(net, taps[t]);
        const nst_tensor *a = nst_vgg_tap(m, taps[t]);
        nst_tensor *ga = nst_vgg_tap_grad(m, taps[t]);
        float *got, *gr;
        nst_check_row tr = *rf;
        NST_TRY(get(c, a, &got));
        nst_check_compare(&tr, got, ref.act[i], a->count);
        ok &= tr.pass;
        rf->max_abs = fmax(rf->max_abs, tr.max_abs);
        rf->max_rel = fmax(rf->max_rel, tr.max_rel);
        NST_TRY(rnd(c, a->count, -1, 1, &gr, &dtap[i]));
        NST_TRY(nst_tensor_upload(rt, ga, gr));
    }
    rf->pass = ok;
    NST_TRY(adopt_decisions(c, m, &ref));
    NST_TRY(tic(c));
    NST_TRY(nst_vgg_backward(rt, m, tdimg));
    NST_TRY(toc(c, 1));
    NST_TRY(get(c, tdimg, &gimg));
    if (nst_ref_vgg_backward(&ref, 0, dtap, H, W, dimg) != 0) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "devcheck: the reference VGG failed");
        goto fail;
    }
    nst_check_compare(rb, gimg, dimg, ni);
fail:
    nst_ref_vgg_free(&ref);
    nst_vgg_free(rt, m);
    nst_weights_free(w);
    return st;
}

/* ---- the WCT models' layers and transform ---------------------------------- */

/* Reflection-padded convolution (whole tensor, bounded as in tests/test_wct.c
 * by n u max sum|terms| for n = C R R + 1 products), ceil-mode max pooling and
 * nearest upsampling (exact). */
static nst_status case_wct_layers(dc *c, int C, int H, int W, int K) {
    nst_status st;
    const int R = 3;
    size_t nx = (size_t)C * H * W, nw = (size_t)K * C * R * R, ny = (size_t)K * H * W;
    size_t np = (size_t)C * ((H + 1) / 2) * ((W + 1) / 2);
    float *x, *w, *b, *y, *p, *u;
    double *xd, *wd, *bd, *yr, *mag, *pr, *ur;
    nst_tensor *tx, *tw, *tb, *ty, *tp, *tu;
    cl_mem scratch;
    nst_check_row *rc = row(c, 0, 0, 1, "conv2d 3x3 reflect fwd C%d %dx%d K%d", C, H, W, K);
    nst_check_row *rp = row(c, 0, 0, 0, "max pool ceil fwd C%d %dx%d", C, H, W);
    nst_check_row *ru = row(c, 0, 0, 0, "nearest upsample x2 C%d %dx%d", C, H, W);
    size_t sf = nst_conv2d_scratch_floats(C, R, H, W, nst_conv2d_scratch_cap(c->rt));
    NST_TRY(rnd(c, nx, -1, 1, &x, &xd));
    NST_TRY(rnd(c, nw, -0.5f, 0.5f, &w, &wd));
    NST_TRY(rnd(c, K, -0.5f, 0.5f, &b, &bd));
    NST_TRY(ten(c, 1, C, H, W, x, &tx));
    NST_TRY(ten(c, K, C, R, R, w, &tw));
    NST_TRY(ten(c, 1, K, 1, 1, b, &tb));
    NST_TRY(ten(c, 1, K, H, W, NULL, &ty));
    NST_TRY(ten(c, 1, C, (H + 1) / 2, (W + 1) / 2, NULL, &tp));
    NST_TRY(ten(c, 1, C, 2 * H, 2 * W, NULL, &tu));
    NST_TRY(buf(c, sf, &scratch));
    NST_TRY(tic(c));
    NST_TRY(nst_conv2d_forward_reflect(c->rt, ty, tx, tw, tb, 0, scratch, sf));
    NST_TRY(toc(c, 0));
    NST_TRY(tic(c));
    NST_TRY(nst_pool_max_ceil_forward(c->rt, tp, tx));
    NST_TRY(toc(c, 1));
    NST_TRY(tic(c));
    NST_TRY(nst_upsample_forward(c->rt, tu, tx));
    NST_TRY(toc(c, 2));
    NST_TRY(get(c, ty, &y));
    NST_TRY(get(c, tp, &p));
    NST_TRY(get(c, tu, &u));
    NST_TRY(dbl(c, ny, &yr));
    NST_TRY(dbl(c, ny, &mag));
    NST_TRY(dbl(c, np, &pr));
    NST_TRY(dbl(c, 4 * nx, &ur));
    nst_ref_conv_reflect_forward(yr, xd, wd, bd, C, H, W, K, R, 0);
    nst_ref_pool_max_ceil(pr, xd, C, H, W);
    nst_ref_upsample2(ur, xd, C, H, W);
    for (size_t i = 0; i < nx; i++) xd[i] = fabs(xd[i]);
    for (size_t i = 0; i < nw; i++) wd[i] = fabs(wd[i]);
    for (int i = 0; i < K; i++) bd[i] = fabs(bd[i]);
    nst_ref_conv_reflect_forward(mag, xd, wd, bd, C, H, W, K, R, 0);
    double mmax = 0, ymax = 0;
    for (size_t i = 0; i < ny; i++) {
        if (mag[i] > mmax) mmax = mag[i];
        if (fabs(yr[i]) > ymax) ymax = fabs(yr[i]);
    }
    rc->rtol = ((double)C * R * R + 1) / 16777216.0 * mmax / (ymax > 0 ? ymax : 1);
    nst_check_compare(rc, y, yr, ny);
    nst_check_compare(rp, p, pr, np);
    nst_check_compare(ru, u, ur, 4 * nx);
fail:
    return st;
}

/* The condition number of a symmetric positive definite matrix (reference
 * eigen-solver); 0 when memory is short. */
static double dc_cond(dc *c, int n, const double *a) {
    double *ev, *evec;
    if (dbl(c, n, &ev) || dbl(c, (size_t)n * n, &evec) || nst_ref_eigen_sym(n, a, ev, evec))
        return 0;
    double lo = INFINITY, hi = 0;
    for (int i = 0; i < n; i++) {
        if (ev[i] < lo) lo = ev[i];
        if (ev[i] > hi) hi = ev[i];
    }
    return lo > 0 ? hi / lo : 0;
}

/* One level's whitening and colouring (statistics and eigen-decompositions
 * included; alpha 0.6, eps 1) against the float64 reference, whole tensor,
 * tolerance 2 (kappa N + C sqrt(kappa)) u kappa_s as in tests/test_wct.c. */
static nst_status case_wct(dc *c, int C, int H, int W) {
    nst_status st;
    const int N = H * W;
    float *f, *g, *o;
    double *fd, *gd, *want, *mc, *cc, *ms, *cs;
    nst_tensor *tf, *to;
    nst_check_row *r = row(c, 0, 0, 1, "WCT C%d %dx%d", C, H, W);
    NST_TRY(rnd(c, (size_t)C * N, -1.7320508f, 1.7320508f, &f, &fd));
    NST_TRY(rnd(c, (size_t)C * N, -1.7320508f, 1.7320508f, &g, &gd));
    /* correlate the channels a little: f_i += 0.3 f_{i-1} */
    for (int i = 1; i < C; i++)
        for (int n = 0; n < N; n++) {
            fd[(size_t)i * N + n] = f[(size_t)i * N + n] += 0.3f * f[(size_t)(i - 1) * N + n];
            gd[(size_t)i * N + n] = g[(size_t)i * N + n] += 0.5f * g[(size_t)(i - 1) * N + n] + 1;
        }
    NST_TRY(dbl(c, C, &mc));
    NST_TRY(dbl(c, (size_t)C * C, &cc));
    NST_TRY(dbl(c, C, &ms));
    NST_TRY(dbl(c, (size_t)C * C, &cs));
    NST_TRY(dbl(c, (size_t)C * N, &want));
    nst_ref_stats(fd, C, N, mc, cc);
    nst_ref_stats(gd, C, N, ms, cs);
    const double *m1[1] = {ms}, *c1[1] = {cs};
    if (nst_ref_wct(fd, C, N, 1, m1, c1, NULL, 0.6, 1.0, NST_WCT_EIG_MIN, want))
        return nst_fail(RTM(c->rt), NST_ERR_NOMEM, "devcheck: the WCT reference");
    double kc = dc_cond(c, C, cc), ks = dc_cond(c, C, cs);
    r->rtol = 2 * (kc * N + C * sqrt(kc)) / 16777216.0 * ks;
    NST_TRY(ten(c, 1, C, H, W, f, &tf));
    NST_TRY(ten(c, 1, C, H, W, NULL, &to));
    NST_TRY(tic(c));
    NST_TRY(nst_wct_transform(c->rt, tf, 1, m1, c1, NULL, NULL, NULL, NULL, 0.6, 1.0, to));
    NST_TRY(toc(c, 0));
    NST_TRY(get(c, to, &o));
    nst_check_compare(r, o, want, (size_t)C * N);
fail:
    return st;
}

/* ---- the check ---------------------------------------------------------- */

/* Runs one case; on an error, fails its rows with the message. */
static void run_case(dc *c, nst_status *first_err, nst_status st) {
    dc_release(c);
    if (st != NST_OK) {
        for (int i = c->first; i < c->nrows; i++) {
            c->rows[i].pass = 0;
            snprintf(c->rows[i].note, sizeof c->rows[i].note, "%.95s", RTM(c->rt)->text);
        }
        if (*first_err == NST_OK) *first_err = st;
    }
    c->first = c->nrows;
}
#define RUN(call) run_case(&c, &first_err, (call))

nst_status nst_device_check(nst_runtime *rt, int tiny, nst_check_row *rows, int max_rows,
                            int *nrows) {
    if (nrows) *nrows = 0;
    if (!rt || !rows || !nrows || max_rows < NST_CHECK_MAX_ROWS)
        return nst_fail(rt ? RTM(rt) : NULL, NST_ERR_INVALID_ARG,
                        "nst_device_check: needs a runtime and room for %d rows",
                        NST_CHECK_MAX_ROWS);
    dc c;
    memset(&c, 0, sizeof c);
    c.rt = rt;
    c.tiny = tiny;
    c.rng = 0x9E3779B97F4A7C15ULL * 2024 + 1;
    c.rows = rows;
    nst_status first_err = NST_OK;

    nst_check_row *b = row(&c, 0, 0, 0, "build every OpenCL program");
    b->measured = 0;
    c.t0 = now_ms();
    nst_status st = nst_programs_build_all(rt);
    b->ms = now_ms() - c.t0;
    b->pass = st == NST_OK;
    RUN(st);

    /* The same cases at two scales: tiny for slow devices, else larger. */
    static const struct check_sizes {
        int conv3[4], conv5[4]; /* C, H, W, K */
        int relu, pool[3], norm[2], gram[3], content[3], gemm[4], reduce;
    } sizes[2] = {
        {{17, 23, 19, 13}, {7, 13, 11, 9}, 40009, {5, 17, 13}, {37, 29}, {24, 17, 13},
         {13, 23, 17}, {137, 113, 131, 5}, 100003},
        {{5, 7, 5, 6}, {6, 9, 8, 5}, 1001, {3, 9, 7}, {11, 7}, {7, 9, 6}, {5, 9, 7},
         {13, 11, 17, 4}, 1003},
    };
    const struct check_sizes *z = &sizes[tiny ? 1 : 0];
    const int *k3 = z->conv3, *k5 = z->conv5;
    RUN(case_conv(&c, k3[0], k3[1], k3[2], k3[3], 3, 1, 0, 0));
    RUN(case_conv(&c, k3[0], k3[1], k3[2], k3[3], 3, 0, tiny ? 2 : 3, 0));
    RUN(case_conv(&c, k5[0], k5[1], k5[2], k5[3], 5, 0, 0, 0));
    RUN(case_conv(&c, k3[0], k3[1], k3[2], k3[3], 3, 0, 0, 1));
    RUN(case_conv(&c, k5[0], k5[1], k5[2], k5[3], 5, 0, 0, 1));
    RUN(case_relu(&c, z->relu));
    RUN(case_pool(&c, z->pool[0], z->pool[1], z->pool[2], 1));
    RUN(case_pool(&c, z->pool[0], z->pool[1], z->pool[2], 0));
    RUN(case_normalize(&c, z->norm[0], z->norm[1], NST_INPUT_TORCHVISION));
    RUN(case_normalize(&c, z->norm[0], z->norm[1], NST_INPUT_CAFFE));
    RUN(case_gram_style(&c, z->gram[0], z->gram[1], z->gram[2]));
    RUN(case_content_tv(&c, z->content[0], z->content[1], z->content[2]));
    RUN(case_temporal(&c, z->content[1], z->content[2]));
    RUN(case_gemm(&c, z->gemm[0], z->gemm[1], z->gemm[2], z->gemm[3]));
    RUN(case_reduce(&c, z->reduce));
    RUN(case_optim(&c, NST_OPTIM_LBFGS));
    RUN(case_optim(&c, NST_OPTIM_ADAM));
    if (tiny) {
        RUN(case_wct_layers(&c, 3, 7, 5, 4));
        RUN(case_wct(&c, 8, 6, 5));
    } else {
        RUN(case_wct_layers(&c, 13, 21, 17, 11));
        RUN(case_wct(&c, 32, 16, 12));
    }
    for (int k = 0; nst_net_at(k); k++) { /* every network nst knows */
        if (tiny)
            RUN(case_vgg(&c, nst_net_at(k)->id, 33, 33, 1.0 / 16));
        else
            RUN(case_vgg(&c, nst_net_at(k)->id, 40, 36, 1.0 / 8));
    }
    *nrows = c.nrows;

    int failed = 0, first = -1;
    for (int i = 0; i < c.nrows; i++)
        if (!rows[i].pass) {
            failed++;
            if (first < 0) first = i;
        }
    if (!failed) return NST_OK;
    const nst_device_info *d = nst_runtime_device(rt);
    if (first_err != NST_OK)
        return nst_fail(RTM(rt), first_err,
                        "device check on %s: %d of %d operations failed; the first, %s: %s",
                        d->name, failed, c.nrows, rows[first].op,
                        rows[first].note[0] ? rows[first].note : "out of tolerance");
    return nst_fail(RTM(rt), NST_ERR_NUMERIC,
                    "device check on %s: %d of %d operations out of tolerance, the first %s; "
                    "this driver's results cannot be trusted",
                    d->name, failed, c.nrows, rows[first].op);
}
