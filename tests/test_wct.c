/* test_wct.c: universal style transfer. The WCT models' layers (reflection
 * padded convolution, ceil-mode pooling, nearest upsampling) against the
 * plain-C references; whole encoders and decoders of every level, from the
 * network tables, against the reference network; the whitening and
 * colouring transform at each level's width against a float64 reference
 * and its defining properties (whitened content has the identity
 * covariance; coloured features have the painting's mean and covariance),
 * blended and per region; nst_wct_run end to end on generated models, its
 * errors, and on the real models when they are present (NST_SHARED_DATA,
 * default ../shared/data; skipped with a message otherwise).
 *
 * Tolerances are derived, u = 2^-24 the float32 unit round-off:
 *  - a sum of n products in float32 is within n*u*sum|terms| of the exact
 *    one, whatever the order (the GEMM's);
 *  - a covariance from n positions is off by about n*u relative, which
 *    whitening (divides by the square root) amplifies by the condition
 *    number kappa of the content covariance; the transform's own GEMM adds
 *    C*u*sqrt(kappa); the covariance of the result, quadratic, doubles it:
 *    2 (kappa n + C sqrt(kappa)) u. */
#include <lapacke.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <limits.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "fwdnet.h"
#include "image.h"
#include "layers.h"
#include "ref_alloc.h"
#include "reference.h"
#include "wct.h"
#include "winograd.h"

#define rt check_rt /* the group fixture's runtime (check.h) */

static const double U32 = 1.0 / 16777216.0; /* 2^-24 */

/* The Winograd F(4x4,3x3) tolerance of tests/test_winograd.c, relative to the
 * largest magnitude, per convolution. */
#define TOL_WINO 2e-5

/* ---- layers ----------------------------------------------------------------- */

typedef struct rcase {
    int C, H, W, K, R;
} rcase;

static void test_conv_reflect(void **state) {
    static const rcase cases[] = {{3, 5, 7, 4, 3}, {5, 2, 2, 3, 3}, {4, 9, 6, 6, 3},
                                  {2, 7, 8, 3, 5}, {17, 3, 4, 13, 3}};
    check_rng r;
    check_rng_seed(&r, 41);
    for (int t = 0; t < (int)(sizeof cases / sizeof cases[0]); t++) {
        const rcase *k = &cases[t];
        size_t nx = (size_t)k->C * k->H * k->W, nw = (size_t)k->K * k->C * k->R * k->R;
        size_t ny = (size_t)k->K * k->H * k->W;
        for (int relu = 0; relu < 2; relu++) {
            float *x = check_random(&r, nx, -1, 1), *w = check_random(&r, nw, -0.5f, 0.5f);
            float *b = check_random(&r, k->K, -0.5f, 0.5f);
            nst_tensor *tx = check_tensor(rt, 1, k->C, k->H, k->W, x);
            nst_tensor *tw = check_tensor(rt, k->K, k->C, k->R, k->R, w);
            nst_tensor *tb = check_tensor(rt, 1, k->K, 1, 1, b);
            nst_tensor *ty = check_tensor(rt, 1, k->K, k->H, k->W, NULL);
            size_t sf = nst_conv2d_scratch_floats(k->C, k->R, k->H, k->W,
                                                  (size_t)k->C * k->R * k->R * k->W * 2);
            cl_mem scratch = NULL;
            assert_int_equal(nst_buffer_create(rt, sf * sizeof(float), &scratch), NST_OK);
            assert_int_equal(nst_conv2d_forward_reflect(rt, ty, tx, tw, tb, relu, scratch, sf),
                             NST_OK);
            float *y = check_download(rt, ty);
            double *dx = ref_from_float(x, nx), *dw = ref_from_float(w, nw);
            double *db = ref_from_float(b, k->K), *want = ref_alloc(ny), *mag = ref_alloc(ny);
            nst_ref_conv_reflect_forward(want, dx, dw, db, k->C, k->H, k->W, k->K, k->R, relu);
            /* the bound's sum of |terms|: the same convolution of |x|, |w|, |b| */
            for (size_t i = 0; i < nx; i++) dx[i] = fabs(dx[i]);
            for (size_t i = 0; i < nw; i++) dw[i] = fabs(dw[i]);
            for (int i = 0; i < k->K; i++) db[i] = fabs(db[i]);
            nst_ref_conv_reflect_forward(mag, dx, dw, db, k->C, k->H, k->W, k->K, k->R, 0);
            double n = (double)k->C * k->R * k->R + 1, worst = 0;
            for (size_t i = 0; i < ny; i++) {
                double e = fabs(y[i] - want[i]), bound = n * U32 * mag[i] + 1e-30;
                if (e / bound > worst) worst = e / bound;
            }
            printf("  conv reflect C%d %dx%d K%d R%d relu%d: error / bound %.3f\n", k->C, k->H,
                   k->W, k->K, k->R, relu, worst);
            assert_true(worst <= 1.0);
            nst_buffer_free(rt, scratch);
            nst_tensor_free(rt, tx), nst_tensor_free(rt, tw), nst_tensor_free(rt, tb);
            nst_tensor_free(rt, ty);
            free(x), free(w), free(b), free(y), free(dx), free(dw), free(db), free(want);
            free(mag);
        }
    }
    /* one pixel cannot be reflected */
    nst_tensor *tx = check_tensor(rt, 1, 2, 1, 4, NULL), *tw = check_tensor(rt, 3, 2, 3, 3, NULL);
    nst_tensor *tb = check_tensor(rt, 1, 3, 1, 1, NULL), *ty = check_tensor(rt, 1, 3, 1, 4, NULL);
    assert_int_equal(nst_conv2d_forward_reflect(rt, ty, tx, tw, tb, 0, NULL, 0),
                     NST_ERR_INVALID_ARG);
    nst_tensor_free(rt, tx), nst_tensor_free(rt, tw), nst_tensor_free(rt, tb);
    nst_tensor_free(rt, ty);
}

/* Pooling, upsampling, padding and cropping move values without arithmetic:
 * they must match the reference exactly. */
static void test_resampling(void **state) {
    static const int sizes[][3] = {{3, 5, 7}, {2, 1, 1}, {4, 6, 9}, {1, 2, 3}, {5, 8, 8}};
    check_rng r;
    check_rng_seed(&r, 42);
    for (int t = 0; t < (int)(sizeof sizes / sizeof sizes[0]); t++) {
        int C = sizes[t][0], H = sizes[t][1], W = sizes[t][2];
        size_t n = (size_t)C * H * W;
        float *x = check_random(&r, n, -1, 1);
        double *dx = ref_from_float(x, n);
        nst_tensor *tx = check_tensor(rt, 1, C, H, W, x);
        /* ceil pooling */
        int OH = (H + 1) / 2, OW = (W + 1) / 2;
        nst_tensor *tp = check_tensor(rt, 1, C, OH, OW, NULL);
        assert_int_equal(nst_pool_max_ceil_forward(rt, tp, tx), NST_OK);
        float *p = check_download(rt, tp);
        double *wp = ref_alloc((size_t)C * OH * OW);
        nst_ref_pool_max_ceil(wp, dx, C, H, W);
        assert_true(check_close("pool max ceil", p, wp, (size_t)C * OH * OW, 0, 0));
        /* upsampling */
        nst_tensor *tu = check_tensor(rt, 1, C, 2 * H, 2 * W, NULL);
        assert_int_equal(nst_upsample_forward(rt, tu, tx), NST_OK);
        float *u = check_download(rt, tu);
        double *wu = ref_alloc(4 * n);
        nst_ref_upsample2(wu, dx, C, H, W);
        assert_true(check_close("upsample nearest", u, wu, 4 * n, 0, 0));
        /* reflection padding by 1, then the crop back */
        if (H > 1 && W > 1) {
            nst_tensor *tq = check_tensor(rt, 1, C, H + 2, W + 2, NULL);
            nst_tensor *tc = check_tensor(rt, 1, C, H, W, NULL);
            assert_int_equal(nst_pad_reflect_forward(rt, tq, tx, 1), NST_OK);
            assert_int_equal(nst_crop_forward(rt, tc, tq, 1), NST_OK);
            float *q = check_download(rt, tq), *cc = check_download(rt, tc);
            for (int c = 0; c < C; c++)
                for (int h = 0; h < H + 2; h++)
                    for (int w = 0; w < W + 2; w++) {
                        int sh = h - 1 < 0 ? 1 : h - 1 >= H ? 2 * H - 2 - (h - 1) : h - 1;
                        int sw = w - 1 < 0 ? 1 : w - 1 >= W ? 2 * W - 2 - (w - 1) : w - 1;
                        assert_true(q[((size_t)c * (H + 2) + h) * (W + 2) + w] ==
                                    x[((size_t)c * H + sh) * W + sw]);
                    }
            assert_true(check_close_f("crop", cc, x, n, 0, 0));
            free(q), free(cc);
            nst_tensor_free(rt, tq), nst_tensor_free(rt, tc);
        }
        free(x), free(dx), free(p), free(wp), free(u), free(wu);
        nst_tensor_free(rt, tx), nst_tensor_free(rt, tp), nst_tensor_free(rt, tu);
    }
}

/* ---- whole encoders and decoders ----------------------------------------------- */

/* Weights for a table's convolutions (published widths, bare names), He
 * uniform so that magnitudes keep their scale through the layers. */
static nst_weights *gen_weights(const nst_net *net, int depth, int cin, check_rng *r) {
    nst_weights *w = calloc(1, sizeof *w);
    assert_non_null(w);
    if (depth <= 0) depth = net->nlayers;
    for (int i = 0; i < depth; i++) {
        const nst_net_layer *L = &net->layer[i];
        if (L->kind != NST_LAYER_CONV) continue;
        char name[64];
        int64_t ws[4] = {L->width, cin, L->kernel, L->kernel}, bs[1] = {L->width};
        /* (each add may move the table: fill before the next) */
        snprintf(name, sizeof name, "%d.weight", i);
        nst_weight *t = nst_weights_add(w, name, 4, ws);
        assert_non_null(t);
        float a = (float)sqrt(6.0 / (cin * L->kernel * L->kernel));
        check_fill(r, t->data, t->count, -a, a);
        snprintf(name, sizeof name, "%d.bias", i);
        t = nst_weights_add(w, name, 1, bs);
        assert_non_null(t);
        check_fill(r, t->data, t->count, -0.1f, 0.1f);
        cin = L->width;
    }
    return w;
}

/* One network on the device (the runtime's convolution setting) against the
 * reference network; returns the relative error and the tolerance. */
static void net_case(nst_runtime *r_, const nst_net *net, int depth, int cin, int H, int W,
                     check_rng *r, const char *what) {
    nst_weights *w = gen_weights(net, depth, cin, r);
    nst_fwdnet *f = NULL;
    assert_int_equal(nst_fwdnet_create(r_, net, depth, w, &f), NST_OK);
    size_t nx = (size_t)cin * H * W;
    float *x = check_random(r, nx, 0, 1);
    nst_tensor *tx = check_tensor(r_, 1, cin, H, W, x), *ty = NULL;
    assert_int_equal(nst_fwdnet_forward(r_, f, tx, &ty), NST_OK);
    double *dx = ref_from_float(x, nx), *want = NULL;
    int oc, oh, ow, c2, h2, w2;
    assert_int_equal(nst_ref_net_forward(net, depth, w, dx, cin, H, W, &want, &oc, &oh, &ow), 0);
    assert_int_equal(nst_fwdnet_shape(f, H, W, &c2, &h2, &w2), 0);
    assert_true(ty->c == oc && ty->h == oh && ty->w == ow && c2 == oc && h2 == oh && w2 == ow);
    float *y = check_download(r_, ty);
    /* each convolution adds its own rounding, relative to its output's
     * magnitude (He-scaled weights keep it): n*u for im2col, Winograd's
     * tolerance for a 3x3 one on the Winograd path */
    double tol = 0;
    int wino = nst_winograd_mode(r_);
    if (depth <= 0) depth = net->nlayers;
    int c = cin;
    for (int i = 0; i < depth; i++) {
        const nst_net_layer *L = &net->layer[i];
        if (L->kind != NST_LAYER_CONV) continue;
        double n = (double)c * L->kernel * L->kernel + 1;
        tol += L->kernel == 3 && wino ? TOL_WINO + n * U32 : n * U32;
        c = L->width;
    }
    double e = check_rel_err(y, want, (size_t)oc * oh * ow);
    printf("  %-34s %dx%d -> [%d,%d,%d]: rel err %.2e (tolerance %.2e)\n", what, W, H, oc, ow, oh,
           e, tol);
    assert_true(e <= tol);
    free(x), free(dx), free(want), free(y);
    nst_tensor_free(r_, tx), nst_tensor_free(r_, ty);
    nst_fwdnet_free(r_, f);
    nst_weights_free(w);
}

static void nets_on(nst_runtime *r_, const char *conv) {
    check_rng r;
    check_rng_seed(&r, 43);
    static const int enc_in[6] = {0, 64, 128, 256, 512, 512};
    for (int L = 1; L <= 5; L++) {
        char what[64];
        snprintf(what, sizeof what, "encoder %d (%s)", L, conv);
        net_case(r_, nst_net_wct_encoder(), nst_net_wct_depth(L), 3, L >= 4 ? 19 : 11,
                 L >= 4 ? 21 : 9, &r, what);
        snprintf(what, sizeof what, "decoder %d (%s)", L, conv);
        net_case(r_, nst_net_wct_decoder(L), 0, enc_in[L], 3, 2, &r, what);
    }
}

static void test_nets(void **state) { nets_on(rt, nst_winograd_mode(rt) ? "winograd" : "im2col"); }

static void test_nets_im2col(void **state) {
    nst_settings s;
    check_settings(&s);
    s.conv = NST_CONV_IM2COL;
    nst_runtime *r2 = check_runtime_with(&s);
    nets_on(r2, "im2col");
    nst_runtime_close(r2);
}

static void test_tables(void **state) {
    /* the published files' indices: encoder convolutions and the decoders' */
    const nst_net *e = nst_net_wct_encoder();
    static const int enc_convs[] = {0, 2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42};
    int k = 0;
    for (int i = 0; i < e->nlayers; i++)
        if (e->layer[i].kind == NST_LAYER_CONV) assert_int_equal(i, enc_convs[k++]);
    assert_int_equal(k, 14);
    assert_int_equal(e->layer[nst_net_wct_depth(3) - 1].kind, NST_LAYER_RELU);
    assert_string_equal(e->layer[nst_net_wct_depth(3) - 1].name, "relu3_1");
    assert_string_equal(e->layer[nst_net_wct_depth(5) - 1].name, "relu5_1");
    const nst_net *d3 = nst_net_wct_decoder(3);
    static const int d3_convs[] = {1, 5, 8, 12, 15};
    k = 0;
    for (int i = 0; i < d3->nlayers; i++)
        if (d3->layer[i].kind == NST_LAYER_CONV) assert_int_equal(i, d3_convs[k++]);
    assert_int_equal(k, 5);
    assert_null(nst_net_wct_decoder(0));
    assert_null(nst_net_wct_decoder(6));
    /* each decoder mirrors its encoder: as many convolutions, pools as upsamplings */
    for (int L = 1; L <= 5; L++) {
        int ec = 0, ep = 0, dc = 0, du = 0;
        for (int i = 1; i < nst_net_wct_depth(L); i++) {
            ec += e->layer[i].kind == NST_LAYER_CONV;
            ep += e->layer[i].kind == NST_LAYER_POOL;
        }
        const nst_net *d = nst_net_wct_decoder(L);
        for (int i = 0; i < d->nlayers; i++) {
            dc += d->layer[i].kind == NST_LAYER_CONV;
            du += d->layer[i].kind == NST_LAYER_UPSAMPLE;
        }
        assert_int_equal(ec, dc);
        assert_int_equal(ep, du);
        assert_int_equal(d->layer[d->nlayers - 1].width, 3);
    }
}

/* ---- the transform ------------------------------------------------------------- */

/* f [C,N] = A z + m: z uniform with unit variance, A = I + E with ||E||_2 <=
 * 0.3 (entries of E uniform with that bound on its Frobenius norm), m in
 * [-1, 1]: a full-rank, moderately conditioned covariance. */
static float *features(int C, int N, check_rng *r) {
    float *z = check_random(r, (size_t)C * N, -1.7320508f, 1.7320508f);
    float *f = malloc((size_t)C * N * sizeof *f);
    double *a = ref_alloc((size_t)C * C);
    double e = 0.3 / C; /* |E_ij| <= 0.3/C: Frobenius norm <= 0.3 */
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++)
            a[(size_t)i * C + j] = (i == j) + check_uniform(r, (float)-e, (float)e);
    for (int i = 0; i < C; i++) {
        double m = check_uniform(r, -1, 1);
        for (int n = 0; n < N; n++) {
            double s = m;
            for (int j = 0; j < C; j++) s += a[(size_t)i * C + j] * z[(size_t)j * N + n];
            f[(size_t)i * N + n] = (float)s;
        }
    }
    free(z);
    free(a);
    return f;
}

/* The condition number of a symmetric positive definite c x c matrix. */
static double cond(int c, const double *cov) {
    double *a = ref_alloc((size_t)c * c), *ev = ref_alloc(c);
    memcpy(a, cov, (size_t)c * c * sizeof *a);
    assert_int_equal(LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', c, a, c, ev), 0);
    double k = ev[c - 1] / ev[0];
    free(a), free(ev);
    assert_true(ev != NULL && k > 0);
    return k;
}

static double max_abs_diff(const double *a, const double *b, size_t n, double *scale) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        if (fabs(a[i] - b[i]) > d) d = fabs(a[i] - b[i]);
        if (fabs(b[i]) > s) s = fabs(b[i]);
    }
    *scale = s;
    return d;
}

/* One level's width: the transform against its properties and, up to 256
 * channels (the reference's Jacobi solver is O(C^3) per sweep), against the
 * float64 reference. */
static void level_case(int level, int C, int H, int W, int with_ref, check_rng *r) {
    const int N = H * W;
    float *fc = features(C, N, r), *fs = features(C, N, r);
    double *dfc = ref_from_float(fc, (size_t)C * N), *dfs = ref_from_float(fs, (size_t)C * N);
    double *mc = ref_alloc(C), *cc = ref_alloc((size_t)C * C);
    double *ms = ref_alloc(C), *cs = ref_alloc((size_t)C * C);
    nst_ref_stats(dfc, C, N, mc, cc);
    nst_ref_stats(dfs, C, N, ms, cs);
    double kappa = cond(C, cc);
    double tol = 2 * (kappa * N + C * sqrt(kappa)) * U32;
    nst_tensor *tc = check_tensor(rt, 1, C, H, W, fc), *to = check_tensor(rt, 1, C, H, W, NULL);

    /* the device statistics against the reference's */
    double *gm = ref_alloc(C), *gc = ref_alloc((size_t)C * C), sc;
    assert_int_equal(nst_wct_stats(rt, tc, NULL, N, gm, gc), NST_OK);
    double dm = max_abs_diff(gm, mc, C, &sc), dc = max_abs_diff(gc, cc, (size_t)C * C, &sc);
    printf("  level %d (C %d, N %d, kappa %.1f): stats cov err %.2e (tolerance %.2e)\n", level, C,
           N, kappa, dc / sc, N * U32);
    assert_true(dc / sc <= N * U32 && dm <= N * U32 * 4);

    /* whitening: colour with the identity -> the identity covariance, mean 0 */
    double *eye = ref_alloc((size_t)C * C), *zero = ref_alloc(C);
    for (int i = 0; i < C; i++) eye[(size_t)i * C + i] = 1;
    const double *m1[1] = {zero}, *c1[1] = {eye};
    assert_int_equal(nst_wct_transform(rt, tc, 1, m1, c1, NULL, NULL, NULL, NULL, 1.0, 0.0, to),
                     NST_OK);
    float *o = check_download(rt, to);
    double *dout = ref_from_float(o, (size_t)C * N), *om = ref_alloc(C), *oc = ref_alloc((size_t)C * C);
    nst_ref_stats(dout, C, N, om, oc);
    double dw = max_abs_diff(oc, eye, (size_t)C * C, &sc);
    double dmw = max_abs_diff(om, zero, C, &sc);
    printf("    whitened: |cov - I| %.2e, |mean| %.2e (tolerance %.2e)\n", dw, dmw, tol);
    assert_true(dw <= tol && dmw <= tol);
    free(o), free(dout);

    /* colouring: the painting's mean and covariance */
    const double *m2[1] = {ms}, *c2[1] = {cs};
    assert_int_equal(nst_wct_transform(rt, tc, 1, m2, c2, NULL, NULL, NULL, NULL, 1.0, 0.0, to),
                     NST_OK);
    o = check_download(rt, to);
    dout = ref_from_float(o, (size_t)C * N);
    nst_ref_stats(dout, C, N, om, oc);
    double dcs = max_abs_diff(oc, cs, (size_t)C * C, &sc) / sc;
    double dms = max_abs_diff(om, ms, C, &sc) / sc;
    double tolc = tol * cond(C, cs); /* colouring multiplies by Cs^(1/2) on both sides */
    printf("    coloured: cov rel err %.2e, mean rel err %.2e (tolerance %.2e)\n", dcs, dms, tolc);
    assert_true(dcs <= tolc && dms <= tolc);
    free(o), free(dout);

    /* the default strength and regularisation against the float64 reference */
    if (with_ref) {
        double *want = ref_alloc((size_t)C * N);
        assert_int_equal(nst_ref_wct(dfc, C, N, 1, m2, c2, NULL, 0.6, 1.0, NST_WCT_EIG_MIN, want),
                         0);
        assert_int_equal(nst_wct_transform(rt, tc, 1, m2, c2, NULL, NULL, NULL, NULL, 0.6, 1.0, to),
                         NST_OK);
        o = check_download(rt, to);
        double e = check_rel_err(o, want, (size_t)C * N);
        printf("    alpha 0.6, eps 1 against the float64 reference: rel err %.2e (tolerance "
               "%.2e)\n", e, tolc);
        assert_true(e <= tolc);
        free(o), free(want);
    }
    free(fc), free(fs), free(dfc), free(dfs), free(mc), free(cc), free(ms), free(cs);
    free(gm), free(gc), free(eye), free(zero), free(om), free(oc);
    nst_tensor_free(rt, tc), nst_tensor_free(rt, to);
}

static void test_levels(void **state) {
    check_rng r;
    check_rng_seed(&r, 44);
    level_case(1, 64, 16, 16, 1, &r);
    level_case(2, 128, 16, 32, 1, &r);
    level_case(3, 256, 32, 32, 1, &r);
    level_case(4, 512, 32, 64, 0, &r); /* levels 4 and 5: relu4_1 and relu5_1, 512 wide */
}

static void test_blend(void **state) {
    check_rng r;
    check_rng_seed(&r, 45);
    const int C = 32, H = 8, W = 16, N = H * W;
    float *fc = features(C, N, &r);
    double *dfc = ref_from_float(fc, (size_t)C * N), *mc = ref_alloc(C), *cc = ref_alloc((size_t)C * C);
    nst_ref_stats(dfc, C, N, mc, cc);
    double *sm[2], *scv[2];
    for (int k = 0; k < 2; k++) {
        float *fs = features(C, N, &r);
        double *d = ref_from_float(fs, (size_t)C * N);
        sm[k] = ref_alloc(C);
        scv[k] = ref_alloc((size_t)C * C);
        nst_ref_stats(d, C, N, sm[k], scv[k]);
        free(fs), free(d);
    }
    const double blend[2] = {0.3, 0.7};
    double kappa = cond(C, cc), tol = 2 * (kappa * N + C * sqrt(kappa)) * U32 * cond(C, scv[1]);
    nst_tensor *tc = check_tensor(rt, 1, C, H, W, fc), *to = check_tensor(rt, 1, C, H, W, NULL);
    double *want = ref_alloc((size_t)C * N);
    assert_int_equal(nst_ref_wct(dfc, C, N, 2, (const double *const *)sm,
                                 (const double *const *)scv, blend, 0.6, 1.0, NST_WCT_EIG_MIN,
                                 want), 0);
    assert_int_equal(nst_wct_transform(rt, tc, 2, (const double *const *)sm,
                                       (const double *const *)scv, blend, NULL, NULL, NULL, 0.6,
                                       1.0, to), NST_OK);
    float *o = check_download(rt, to);
    double e = check_rel_err(o, want, (size_t)C * N);
    printf("  blend 0.3/0.7 against the float64 reference: rel err %.2e (tolerance %.2e)\n", e,
           tol);
    assert_true(e <= tol);
    free(fc), free(dfc), free(mc), free(cc), free(want), free(o);
    for (int k = 0; k < 2; k++) free(sm[k]), free(scv[k]);
    nst_tensor_free(rt, tc), nst_tensor_free(rt, to);
}

/* Regions: each half of the image takes its own painting's statistics; a
 * position of no region keeps the content exactly. */
static void test_regions(void **state) {
    check_rng r;
    check_rng_seed(&r, 46);
    const int C = 8, H = 16, W = 16, N = H * W;
    float *fc = features(C, N, &r);
    double *sm[2], *scv[2];
    for (int k = 0; k < 2; k++) {
        float *fs = features(C, N, &r);
        double *d = ref_from_float(fs, (size_t)C * N);
        sm[k] = ref_alloc(C);
        scv[k] = ref_alloc((size_t)C * C);
        nst_ref_stats(d, C, N, sm[k], scv[k]);
        free(fs), free(d);
    }
    float *b0 = calloc(N, sizeof *b0), *b1 = calloc(N, sizeof *b1), *un = calloc(N, sizeof *un);
    for (int i = 0; i < N; i++) {
        int x = i % W;
        b0[i] = x < W / 2;
        b1[i] = x >= W / 2 && x < W - 2; /* the last two columns: no region */
        un[i] = !b0[i] && !b1[i];
    }
    double cnt[2] = {0, 0};
    for (int i = 0; i < N; i++) cnt[0] += b0[i], cnt[1] += b1[i];
    nst_tensor *tc = check_tensor(rt, 1, C, H, W, fc), *to = check_tensor(rt, 1, C, H, W, NULL);
    nst_tensor *reg[2] = {check_tensor(rt, 1, 1, 1, N, b0), check_tensor(rt, 1, 1, 1, N, b1)};
    nst_tensor *tu = check_tensor(rt, 1, 1, 1, N, un);
    assert_int_equal(nst_wct_transform(rt, tc, 2, (const double *const *)sm,
                                       (const double *const *)scv, NULL,
                                       (const nst_tensor *const *)reg, cnt, tu, 1.0, 0.0, to),
                     NST_OK);
    float *o = check_download(rt, to);
    for (int k = 0; k < 2; k++) {
        /* the region's positions as a C x n matrix */
        const float *bk = k ? b1 : b0;
        int n = (int)cnt[k], j = 0;
        double *g = ref_alloc((size_t)C * n), *gm = ref_alloc(C), *gc = ref_alloc((size_t)C * C);
        double *cm = ref_alloc(C), *ccv = ref_alloc((size_t)C * C), sc;
        for (int i = 0; i < N; i++)
            if (bk[i]) {
                for (int c = 0; c < C; c++) g[(size_t)c * n + j] = o[(size_t)c * N + i];
                j++;
            }
        nst_ref_stats(g, C, n, gm, gc);
        /* the content's statistics in the region, for kappa */
        j = 0;
        for (int i = 0; i < N; i++)
            if (bk[i]) {
                for (int c = 0; c < C; c++) g[(size_t)c * n + j] = fc[(size_t)c * N + i];
                j++;
            }
        nst_ref_stats(g, C, n, cm, ccv);
        double kappa = cond(C, ccv);
        double tol = 2 * (kappa * n + C * sqrt(kappa)) * U32 * cond(C, scv[k]);
        double dc = max_abs_diff(gc, scv[k], (size_t)C * C, &sc) / sc;
        double dm = max_abs_diff(gm, sm[k], C, &sc) / sc;
        printf("  region %d (%d positions): cov rel err %.2e, mean rel err %.2e (tolerance "
               "%.2e)\n", k + 1, n, dc, dm, tol);
        assert_true(dc <= tol && dm <= tol);
        free(g), free(gm), free(gc), free(cm), free(ccv);
    }
    for (int i = 0; i < N; i++)
        if (un[i])
            for (int c = 0; c < C; c++) assert_true(o[(size_t)c * N + i] == fc[(size_t)c * N + i]);
    free(fc), free(o), free(b0), free(b1), free(un);
    for (int k = 0; k < 2; k++) free(sm[k]), free(scv[k]), nst_tensor_free(rt, reg[k]);
    nst_tensor_free(rt, tc), nst_tensor_free(rt, to), nst_tensor_free(rt, tu);
}

static void test_matrix_power(void **state) {
    /* a hand case: diag(4, 1) -> ^-1/2 = diag(1/2, 1); eigenvalues below the
     * threshold give 0 */
    double cov[4] = {4, 0, 0, 1}, out[4];
    assert_int_equal(nst_wct_matrix_power(2, cov, 0, -0.5, out, NULL), NST_OK);
    assert_true(fabs(out[0] - 0.5) < 1e-15 && fabs(out[3] - 1) < 1e-15 && out[1] == 0);
    double sing[4] = {1, 1, 1, 1}; /* eigenvalues 2 and 0 */
    assert_int_equal(nst_wct_matrix_power(2, sing, 0, 0.5, out, NULL), NST_OK);
    for (int i = 0; i < 4; i++) assert_true(fabs(out[i] - sqrt(2) / 2) < 1e-12);
    double bad[4] = {1, NAN, NAN, 1};
    nst_msg msg = {{0}};
    assert_int_equal(nst_wct_matrix_power(2, bad, 0, 0.5, out, &msg), NST_ERR_NUMERIC);
    assert_non_null(strstr(msg.text, "NaN"));
}

/* ---- end to end ------------------------------------------------------------------ */

/* Generated models for levels in mask `levels`, saved under the published
 * names (the loader sniffs the format: safetensors under a .pth name reads). */
static const char *gen_models(unsigned levels, int skip_decoder) {
    static char dir[512];
    snprintf(dir, sizeof dir, "%s", check_tmp_path(skip_decoder ? "wct_half" : "wct_models"));
    mkdir(dir, 0755);
    check_rng r;
    check_rng_seed(&r, 47);
    static const int enc_out[6] = {0, 64, 128, 256, 512, 512};
    for (int L = 1; L <= 5; L++) {
        char p[700];
        snprintf(p, sizeof p, "%s/vgg_normalised_conv%d_1.pth", dir, L);
        remove(p);
        snprintf(p, sizeof p, "%s/feature_invertor_conv%d_1.pth", dir, L);
        remove(p);
        if (!(levels & (1u << (L - 1)))) continue;
        nst_weights *e = gen_weights(nst_net_wct_encoder(), nst_net_wct_depth(L), 3, &r);
        nst_weights *d = gen_weights(nst_net_wct_decoder(L), 0, enc_out[L], &r);
        nst_msg msg = {{0}};
        snprintf(p, sizeof p, "%s/vgg_normalised_conv%d_1.pth", dir, L);
        assert_int_equal(nst_weights_save(e, p, "F32", &msg), NST_OK);
        snprintf(p, sizeof p, "%s/feature_invertor_conv%d_1.pth", dir, L);
        if (!(skip_decoder && L == 2)) assert_int_equal(nst_weights_save(d, p, "F32", &msg), NST_OK);
        nst_weights_free(e);
        nst_weights_free(d);
    }
    return dir;
}

static nst_image *gen_image(int w, int h, check_rng *r) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img->data[((size_t)c * h + y) * w + x] =
                    0.5f + 0.4f * sinf(0.3f * x * (c + 1) + 0.2f * y) * check_uniform(r, 0.5f, 1);
    return img;
}

static void test_run_generated(void **state) {
    check_rng r;
    check_rng_seed(&r, 48);
    const char *dir = gen_models(3, 0);
    nst_wct_models *m = NULL;
    assert_int_equal(nst_wct_models_load(rt, dir, &m), NST_OK);
    assert_int_equal(nst_wct_models_levels(m), 3);
    nst_image *content = gen_image(37, 29, &r), *s1 = gen_image(20, 30, &r), *s2 = gen_image(25, 25, &r);
    const nst_image *styles[2] = {s1, s2};
    nst_wct_params p;
    nst_wct_params_default(&p);
    p.size = 0; /* the content's own size */
    nst_image *out = NULL;
    assert_int_equal(nst_wct_run(rt, m, &p, content, styles, 1, NULL, NULL, &out), NST_OK);
    assert_true(out->w == 37 && out->h == 29);
    for (size_t i = 0; i < (size_t)3 * 37 * 29; i++)
        assert_true(out->data[i] >= 0 && out->data[i] <= 1);
    nst_image_free(out);
    /* blended, with a size, then with masks */
    const double blend[2] = {0.25, 0.75};
    p.size = 48;
    assert_int_equal(nst_wct_run(rt, m, &p, content, styles, 2, blend, NULL, &out), NST_OK);
    assert_true(out->w == 48 && out->h == 38);
    nst_image_free(out);
    nst_image *m1 = NULL, *m2 = NULL;
    assert_int_equal(nst_image_create(10, 10, &m1, NULL), NST_OK);
    assert_int_equal(nst_image_create(10, 10, &m2, NULL), NST_OK);
    for (int i = 0; i < 300; i++) {
        int x = i % 10;
        m1->data[i] = x < 5;
        m2->data[i] = x >= 5;
    }
    const nst_image *masks[2] = {m1, m2};
    assert_int_equal(nst_wct_run(rt, m, &p, content, styles, 2, NULL, masks, &out), NST_OK);
    nst_image_free(out);

    /* alpha 0 at level 1: the content through the encoder and decoder */
    p.size = 0;
    p.alpha = 0;
    p.levels = 1;
    assert_int_equal(nst_wct_run(rt, m, &p, content, styles, 1, NULL, NULL, &out), NST_OK);
    {
        nst_msg msg = {{0}};
        char path[700];
        nst_weights *we = NULL, *wd = NULL;
        snprintf(path, sizeof path, "%s/vgg_normalised_conv1_1.pth", dir);
        assert_int_equal(nst_weights_load(path, &we, &msg), NST_OK);
        snprintf(path, sizeof path, "%s/feature_invertor_conv1_1.pth", dir);
        assert_int_equal(nst_weights_load(path, &wd, &msg), NST_OK);
        size_t n = (size_t)3 * 37 * 29;
        double *x = ref_from_float(content->data, n), *f = NULL, *y = NULL;
        int c, h, w;
        assert_int_equal(nst_ref_net_forward(nst_net_wct_encoder(), nst_net_wct_depth(1), we, x,
                                             3, 29, 37, &f, &c, &h, &w), 0);
        assert_int_equal(nst_ref_net_forward(nst_net_wct_decoder(1), 0, wd, f, c, h, w, &y, &c,
                                             &h, &w), 0);
        for (size_t i = 0; i < n; i++) y[i] = y[i] < 0 ? 0 : y[i] > 1 ? 1 : y[i];
        double tol = 2 * (TOL_WINO + (3 * 9 + 1 + 64 * 9 + 1) * U32) + 4 * U32;
        double e = check_rel_err(out->data, y, n);
        printf("  level 1 at alpha 0 against the reference encoder and decoder: rel err %.2e "
               "(tolerance %.2e)\n", e, tol);
        assert_true(e <= tol);
        free(x), free(f), free(y);
        nst_weights_free(we);
        nst_weights_free(wd);
    }
    nst_image_free(out);

    /* errors: each with a message that says what to do */
    p = (nst_wct_params){0};
    nst_wct_params_default(&p);
    p.alpha = 1.5;
    assert_int_equal(nst_wct_run(rt, m, &p, content, styles, 1, NULL, NULL, &out),
                     NST_ERR_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(nst_last_error(rt), "alpha"));
    nst_wct_params_default(&p);
    p.levels = 4; /* level 3, absent */
    assert_int_equal(nst_wct_run(rt, m, &p, content, styles, 1, NULL, NULL, &out),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "level 3"));
    nst_wct_params_default(&p);
    assert_int_equal(nst_wct_run(rt, m, &p, NULL, styles, 1, NULL, NULL, &out),
                     NST_ERR_INVALID_ARG);
    assert_int_equal(nst_wct_run(rt, m, &p, content, styles, 0, NULL, NULL, &out),
                     NST_ERR_INVALID_ARG);
    const double badblend[2] = {0.5, 0.6};
    assert_int_equal(nst_wct_run(rt, m, &p, content, styles, 2, badblend, NULL, &out),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "sum"));
    assert_int_equal(nst_wct_run(NULL, m, &p, content, styles, 1, NULL, NULL, &out),
                     NST_ERR_INVALID_ARG);
    nst_wct_models_free(m);
    nst_wct_models_free(NULL);

    /* a level with its encoder but not its decoder */
    const char *half = gen_models(3, 1);
    assert_int_equal(nst_wct_models_load(rt, half, &m), NST_ERR_IO);
    assert_null(m);
    assert_non_null(strstr(nst_last_error(rt), "feature_invertor_conv2_1.pth"));
    /* no models at all */
    nst_msg msg = {{0}};
    char found[1024];
    assert_int_equal(nst_wct_locate(NULL, check_tmp_path("no_such_dir"), found, sizeof found,
                                    &msg), NST_ERR_IO);
    nst_settings s = {0};
    snprintf(s.weights_dirs, sizeof s.weights_dirs, "%s", check_tmp_path("."));
    assert_int_equal(nst_wct_locate(&s, NULL, found, sizeof found, &msg), NST_ERR_IO);
    assert_non_null(strstr(msg.text, "fetch-weights.sh wct"));
    /* the search finds DIR/wct */
    char parent[600];
    snprintf(parent, sizeof parent, "%s", check_tmp_path("wct_search"));
    mkdir(parent, 0755);
    char link[700];
    snprintf(link, sizeof link, "%s/wct", parent);
    remove(link);
    char absdir[PATH_MAX];
    assert_non_null(realpath(dir, absdir));
    assert_int_equal(symlink(absdir, link), 0);
    snprintf(s.weights_dirs, sizeof s.weights_dirs, "/nonexistent:%s", parent);
    assert_int_equal(nst_wct_locate(&s, NULL, found, sizeof found, &msg), NST_OK);
    assert_string_equal(found, link);
    /* a decoder file where the encoder should be: refused, naming the file */
    char enc[700], dec[700];
    snprintf(enc, sizeof enc, "%s/vgg_normalised_conv1_1.pth", half);
    snprintf(dec, sizeof dec, "%s/feature_invertor_conv1_1.pth", half);
    assert_int_equal(rename(dec, enc), 0);
    snprintf(dec, sizeof dec, "%s/feature_invertor_conv2_1.pth", half);
    remove(dec);
    snprintf(dec, sizeof dec, "%s/vgg_normalised_conv2_1.pth", half);
    remove(dec);
    snprintf(dec, sizeof dec, "%s/feature_invertor_conv1_1.pth", half);
    FILE *f = fopen(dec, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(nst_wct_models_load(rt, half, &m), NST_ERR_FORMAT);
    assert_non_null(strstr(nst_last_error(rt), "vgg_normalised_conv1_1.pth"));
    nst_image_free(content), nst_image_free(s1), nst_image_free(s2);
    nst_image_free(m1), nst_image_free(m2);
}

/* Mean and standard deviation of each channel. */
static void colour_stats(const nst_image *img, double *st) {
    size_t n = (size_t)img->w * img->h;
    for (int c = 0; c < 3; c++) {
        double s = 0, q = 0;
        for (size_t i = 0; i < n; i++) {
            double v = img->data[c * n + i];
            s += v;
            q += v * v;
        }
        st[2 * c] = s / n;
        st[2 * c + 1] = sqrt(q / n - (s / n) * (s / n));
    }
}

static double stats_dist(const double *a, const double *b) {
    double d = 0;
    for (int i = 0; i < 6; i++) d += (a[i] - b[i]) * (a[i] - b[i]);
    return sqrt(d);
}

/* The real models, when present: Tubingen as Starry Night at 128 px. The
 * result's colours must move from the photo's towards the painting's. */
static void test_real_models(void **state) {
    const char *data = getenv("NST_SHARED_DATA");
    char dir[1024], cpath[1100], spath[1100];
    if (!data || !*data) data = "../shared/data";
    snprintf(dir, sizeof dir, "%s/wct", data);
    snprintf(cpath, sizeof cpath, "%s/images/tubingen.jpg", data);
    snprintf(spath, sizeof spath, "%s/images/starry_night.jpg", data);
    struct stat sb;
    if (stat(dir, &sb) || stat(cpath, &sb) || stat(spath, &sb)) {
        printf("  SKIPPED: no real WCT models and images in %s (set NST_SHARED_DATA to the "
               "directory holding wct/ and images/)\n", data);
        skip();
    }
    nst_wct_models *m = NULL;
    assert_int_equal(nst_wct_models_load(rt, dir, &m), NST_OK);
    nst_image *c = NULL, *s = NULL, *out = NULL;
    assert_int_equal(nst_image_read(cpath, 0, &c, NULL), NST_OK);
    assert_int_equal(nst_image_read(spath, 0, &s, NULL), NST_OK);
    nst_wct_params p;
    nst_wct_params_default(&p);
    p.size = 128;
    const nst_image *styles[1] = {s};
    assert_int_equal(nst_wct_run(rt, m, &p, c, styles, 1, NULL, NULL, &out), NST_OK);
    assert_int_equal(out->w, 128);
    nst_image *cs = NULL, *ss = NULL;
    assert_int_equal(nst_image_resize(c, out->w, out->h, &cs, NULL), NST_OK);
    assert_int_equal(nst_image_resize(s, 128, 101, &ss, NULL), NST_OK);
    double a[6], b[6], o[6];
    colour_stats(cs, a);
    colour_stats(ss, b);
    colour_stats(out, o);
    printf("  levels %x at 128 px: colour statistics %.3f from the painting's (the photo: "
           "%.3f)\n", nst_wct_models_levels(m), stats_dist(o, b), stats_dist(a, b));
    assert_true(stats_dist(o, b) < stats_dist(a, b));
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_write(check_tmp_path("wct_real.png"), out, 0, 0, &msg), NST_OK);
    nst_image_free(c), nst_image_free(s), nst_image_free(out), nst_image_free(cs);
    nst_image_free(ss);
    nst_wct_models_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),        cmocka_unit_test(test_conv_reflect),
        cmocka_unit_test(test_resampling),    cmocka_unit_test(test_nets),
        cmocka_unit_test(test_nets_im2col),   cmocka_unit_test(test_matrix_power),
        cmocka_unit_test(test_levels),        cmocka_unit_test(test_blend),
        cmocka_unit_test(test_regions),       cmocka_unit_test(test_run_generated),
        cmocka_unit_test(test_real_models),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
