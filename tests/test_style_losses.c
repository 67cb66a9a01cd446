/* test_style_losses.c: the Wasserstein-2 and histogram style terms
 * (--style-loss w2|hist): their double references (ref_style.c) against
 * central finite differences and against PyTorch's float64 autograd
 * (tests/data/golden_style.bin from tools/make_golden.py --style-losses);
 * the whole objective (device network, targets, terms, backward) against
 * the reference network and references, with two blended paintings and
 * with two regions; and the parameter check. Tiled = untiled is in
 * test_tiled.c. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "image.h"
#include "objective.h"
#include "ref_style.h"
#include "reference.h"

#define rt check_rt

/* ---- the references against finite differences ---------------------------- */

typedef struct w2_ctx {
    int m;
    const double *w;
    const ref_w2_target *t;
} w2_ctx;

static double w2_fn(void *ctx, const double *x) {
    const w2_ctx *k = ctx;
    return ref_w2(x, k->m, k->w, k->t, NULL);
}

typedef struct hist_ctx {
    int c, m, k;
    const double *mask, *q;
} hist_ctx;

static double hist_fn(void *ctx, const double *x) {
    const hist_ctx *k = ctx;
    return ref_hist(x, k->c, k->m, k->mask, k->q, k->k, NULL);
}

static double *rand_d(check_rng *r, size_t n, double lo, double hi) {
    double *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = check_uniform(r, (float)lo, (float)hi);
    return x;
}

static void test_w2_reference_fd(void **state) {
    (void)state;
    check_rng r;
    check_rng_seed(&r, 5);
    enum { C = 5, M = 30, M1 = 40, M2 = 25 };
    double *f = rand_d(&r, C * M, 0, 2), *s1 = rand_d(&r, C * M1, 0, 1.5);
    double *s2 = rand_d(&r, C * M2, 0.5, 3), *w = rand_d(&r, M, 0, 1);
    const double *styles[2] = {s1, s2};
    int ms[2] = {M1, M2};
    double blend[2] = {0.3, 0.7}, grad[C * M];
    ref_w2_target t;
    ref_w2_target_make(styles, ms, blend, 2, C, &t);
    for (int masked = 0; masked < 2; masked++) {
        w2_ctx k = {M, masked ? w : NULL, &t};
        double v = ref_w2(f, M, k.w, &t, grad);
        assert_true(v > 0.01);
        check_gradient_fd(masked ? "w2 masked" : "w2", w2_fn, &k, f, C * M, grad);
    }
    /* at the target's own features the distance is ~0 (the ridges only) */
    const double *one[1] = {s1};
    double b1 = 1;
    ref_w2_target_make(one, &ms[0], &b1, 1, C, &t);
    double v = ref_w2(s1, M1, NULL, &t, NULL);
    assert_true(fabs(v) < 1e-3);
    free(f);
    free(s1);
    free(s2);
    free(w);
}

static void test_hist_reference_fd(void **state) {
    (void)state;
    check_rng r;
    check_rng_seed(&r, 6);
    enum { C = 4, M = 36, M1 = 50, M2 = 20 };
    double *f = rand_d(&r, C * M, 0, 2), *s1 = rand_d(&r, C * M1, 0, 1.5);
    double *s2 = rand_d(&r, C * M2, 0.5, 3), mask[M], q[C * M], grad[C * M];
    const double *styles[2] = {s1, s2};
    int ms[2] = {M1, M2};
    double blend[2] = {0.3, 0.7};
    for (int p = 0; p < M; p++) mask[p] = p % 3 != 0;
    ref_hist_table(styles, ms, blend, 2, C, M, q);
    for (int masked = 0; masked < 2; masked++) {
        hist_ctx k = {C, M, M, masked ? mask : NULL, q};
        double v = ref_hist(f, C, M, k.mask, q, M, grad);
        assert_true(v > 0.01);
        check_gradient_fd(masked ? "hist masked" : "hist", hist_fn, &k, f, C * M, grad);
    }
    /* a map already distributed as the target matches it exactly */
    double b1 = 1;
    const double *one[1] = {f};
    int mf = M;
    ref_hist_table(one, &mf, &b1, 1, C, M, q);
    assert_true(ref_hist(f, C, M, NULL, q, M, NULL) < 1e-20);
    free(f);
    free(s1);
    free(s2);
}

/* ---- the references against PyTorch --------------------------------------- */

static void read_exact(FILE *fp, void *p, size_t n) { assert_int_equal(fread(p, 1, n, fp), n); }

static double *read_f64(FILE *fp, size_t n) {
    double *x = malloc(n * sizeof *x);
    read_exact(fp, x, n * sizeof *x);
    return x;
}

/* The golden file (tools/make_golden.py --style-losses): float64 values and
 * gradients of PyTorch implementations that take their gradients by
 * autograd (through an eigendecomposition for W2) on the same inputs. */
static void test_golden(void **state) {
    (void)state;
    FILE *fp = fopen("tests/data/golden_style.bin", "rb");
    if (!fp) {
        fprintf(stderr, "tests/data/golden_style.bin is missing (tools/make_golden.py "
                        "--style-losses writes it)\n");
        fail();
    }
    char magic[4];
    int32_t dims[4]; /* C, M, M1, M2 */
    read_exact(fp, magic, 4);
    assert_memory_equal(magic, "NSTS", 4);
    read_exact(fp, dims, sizeof dims);
    int C = dims[0], M = dims[1], M1 = dims[2], M2 = dims[3];
    assert_true(C > 0 && C <= 64);
    double blend[2];
    read_exact(fp, blend, sizeof blend);
    double *f = read_f64(fp, (size_t)C * M), *s1 = read_f64(fp, (size_t)C * M1);
    double *s2 = read_f64(fp, (size_t)C * M2), *w = read_f64(fp, (size_t)M);
    double *mask = read_f64(fp, (size_t)M);
    const double *styles[2] = {s1, s2};
    int ms[2] = {M1, M2};
    double *grad = malloc((size_t)C * M * sizeof *grad), *q = malloc((size_t)C * M * sizeof *q);
    ref_w2_target t;
    ref_w2_target_make(styles, ms, blend, 2, C, &t);
    ref_hist_table(styles, ms, blend, 2, C, M, q);
    for (int k = 0; k < 4; k++) { /* w2, w2 weighted, hist, hist in a region */
        double want, *wgrad;
        read_exact(fp, &want, sizeof want);
        wgrad = read_f64(fp, (size_t)C * M);
        double v = k < 2 ? ref_w2(f, M, k ? w : NULL, &t, grad)
                         : ref_hist(f, C, M, k == 3 ? mask : NULL, q, M, grad);
        /* both float64; the square roots by different methods (Jacobi here,
         * LAPACK's eigh there), each to ~1e-15 of the largest eigenvalue */
        printf("  case %d: value %.15g vs PyTorch %.15g\n", k, v, want);
        assert_true(fabs(v - want) <= 1e-9 * fabs(want));
        double gmax = 0, dmax = 0;
        for (int i = 0; i < C * M; i++) {
            gmax = fmax(gmax, fabs(wgrad[i]));
            dmax = fmax(dmax, fabs(grad[i] - wgrad[i]));
        }
        assert_true(dmax <= 1e-9 * gmax);
        free(wgrad);
    }
    fclose(fp);
    free(f);
    free(s1);
    free(s2);
    free(w);
    free(mask);
    free(grad);
    free(q);
}

/* ---- the objective against the reference network --------------------------- */

enum { SIDE = 24 };

static nst_image *random_image(uint64_t seed) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(SIDE, SIDE, &img, NULL), NST_OK);
    check_rng r;
    check_rng_seed(&r, seed);
    check_fill(&r, img->data, (size_t)3 * SIDE * SIDE, 0.05f, 0.95f);
    return img;
}

/* White on the left (first) or right (second) 12 columns: exact at every
 * 2x2 pooling of the layers. */
static nst_image *half_mask(int right) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(SIDE, SIDE, &img, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < SIDE; y++)
            for (int x = 0; x < SIDE; x++)
                img->data[((size_t)c * SIDE + y) * SIDE + x] = (x >= SIDE / 2) == right;
    return img;
}

/* The reference network's taps of img (as the objective resizes it). */
static void ref_taps(const nst_model *model, const nst_image *img, int nlayers, nst_ref_vgg *v) {
    nst_image *sized = NULL;
    assert_int_equal(nst_image_resize(img, SIDE, SIDE, &sized, NULL), NST_OK);
    double *d = nst_ref_from_float(sized->data, (size_t)3 * SIDE * SIDE);
    memset(v, 0, sizeof *v);
    assert_int_equal(nst_ref_vgg_forward(v, model->weights, nlayers, 0, d, SIDE, SIDE), 0);
    free(d);
    nst_image_free(sized);
}

/* One case: the style term alone (content and TV weights 0) at x, on the
 * device and in double. */
static void objective_case(nst_style_loss_kind loss, int nstyles, int regions) {
    static const char *layers[] = {"relu1_1", "relu2_1"};
    const int nl = 2, weight_l[2] = {1, 3};
    double lw[2] = {weight_l[0], weight_l[1]};
    nst_model *model = check_model(rt);
    nst_params p;
    nst_params_default(&p);
    p.size = SIDE;
    p.content_weight = 0;
    p.tv_weight = 0;
    p.style_weight = 2.5;
    p.content_layers = "relu1_1";
    p.style_layers = "relu1_1,relu2_1";
    p.style_layer_weights = lw;
    p.style_layer_weight_count = 2;
    p.style_loss = loss;
    nst_image *content = random_image(1), *x = random_image(2);
    nst_image *styles[2] = {random_image(3), random_image(4)};
    nst_image *masks[2] = {half_mask(0), half_mask(1)};
    double blend[2] = {0.35, 0.65};
    const double *bl = nstyles == 2 && !regions ? blend : NULL;

    /* the device */
    nst_objective *o = NULL;
    nst_tensor *tx = NULL, *tg = NULL;
    double loss_dev;
    assert_int_equal(nst_objective_create(rt, model->weights, &p, regions ? nstyles : 0, &o),
                     NST_OK);
    assert_int_equal(nst_objective_targets(o, content, (const nst_image *const *)styles, nstyles,
                                           bl, regions ? (const nst_image *const *)masks : NULL,
                                           0),
                     NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, SIDE, SIDE, &tx), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, SIDE, SIDE, &tg), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, tx, x->data), NST_OK);
    nst_status st = nst_objective_evaluate(o, rt, tx, tg, &loss_dev);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    float *gdev = check_download(rt, tg);

    /* the reference */
    int idx[2], deepest = 0;
    for (int l = 0; l < nl; l++) {
        idx[l] = nst_vgg_layer_index(layers[l]);
        if (idx[l] + 1 > deepest) deepest = idx[l] + 1;
    }
    nst_ref_vgg vs[2], vx, vc;
    for (int k = 0; k < nstyles; k++) ref_taps(model, styles[k], deepest, &vs[k]);
    ref_taps(model, x, deepest, &vx);
    ref_taps(model, content, deepest, &vc);
    double *dtap[NST_NET_MAX_LAYERS] = {0}, want = 0;
    for (int l = 0; l < nl; l++) {
        int i = idx[l], c = vx.c[i], m = vx.h[i] * vx.w[i];
        double wl = p.style_weight * weight_l[l] / 4.0;
        dtap[i] = nst_ref_alloc((size_t)c * m);
        double *g = nst_ref_alloc((size_t)c * m);
        for (int r = 0; r < (regions ? nstyles : 1); r++) {
            const double *sf[2];
            int sm[2];
            double b[2] = {bl ? bl[0] : 1.0 / nstyles, bl ? bl[1] : 1.0 / nstyles}, one = 1;
            for (int k = 0; k < nstyles; k++) {
                sf[k] = vs[k].act[i];
                sm[k] = vs[k].h[i] * vs[k].w[i];
            }
            double *mask = NULL;
            if (regions) { /* the region's half at this layer */
                mask = nst_ref_alloc((size_t)m);
                for (int y = 0; y < vx.h[i]; y++)
                    for (int xx = 0; xx < vx.w[i]; xx++)
                        mask[y * vx.w[i] + xx] = (xx >= vx.w[i] / 2) == r;
            }
            const double *const *src = regions ? &sf[r] : sf;
            const int *srcm = regions ? &sm[r] : sm;
            int n = regions ? 1 : nstyles;
            double *bb = regions ? &one : b, v;
            if (loss == NST_STYLE_W2) {
                ref_w2_target t;
                ref_w2_target_make(src, srcm, bb, n, c, &t);
                v = ref_w2(vx.act[i], m, mask, &t, g);
            } else {
                double *q = nst_ref_alloc((size_t)c * m);
                ref_hist_table(src, srcm, bb, n, c, m, q);
                v = ref_hist(vx.act[i], c, m, mask, q, m, g);
                free(q);
            }
            want += wl * v;
            for (size_t j = 0; j < (size_t)c * m; j++) dtap[i][j] += wl * g[j];
            free(mask);
        }
        free(g);
    }
    double *gref = nst_ref_alloc((size_t)3 * SIDE * SIDE);
    assert_int_equal(nst_ref_vgg_backward(&vx, 0, dtap, SIDE, SIDE, gref), 0);

    /* Tolerances: the device is float32 (unit roundoff u = 6e-8). The
     * network's taps and image gradient are within CONV_TOL = 1e-4 of the
     * largest entry (test_vgg's golden test); a statistic over m <= 576
     * positions adds at most m u = 3.5e-5 relative; the Newton-Schulz
     * roots converge to u times the condition (< 1e3 here: 8 channels, 144
     * or more positions). So 1e-3 of the largest gradient entry and of the
     * value bound them with room; a wrong formula is off by O(1). */
    double gmax = 0, dmax = 0;
    for (int i = 0; i < 3 * SIDE * SIDE; i++) {
        gmax = fmax(gmax, fabs(gref[i]));
        dmax = fmax(dmax, fabs(gdev[i] - gref[i]));
    }
    double vdev = nst_objective_value(o, "style");
    printf("  %s, %d style(s)%s: loss %.8g vs reference %.8g, gradient max error %.2g of %.3g\n",
           nst_style_loss_name(loss), nstyles, regions ? " in regions" : "", vdev, want, dmax,
           gmax);
    assert_true(want > 1e-3);
    assert_true(fabs(vdev - want) <= 1e-3 * want);
    assert_true(fabs(loss_dev - want) <= 1e-3 * want);
    assert_true(gmax > 0 && dmax <= 1e-3 * gmax);

    for (int l = 0; l < NST_NET_MAX_LAYERS; l++) free(dtap[l]);
    free(gref);
    free(gdev);
    for (int k = 0; k < nstyles; k++) nst_ref_vgg_free(&vs[k]);
    nst_ref_vgg_free(&vx);
    nst_ref_vgg_free(&vc);
    nst_tensor_free(rt, tx);
    nst_tensor_free(rt, tg);
    nst_objective_free(rt, o);
    for (int k = 0; k < 2; k++) {
        nst_image_free(styles[k]);
        nst_image_free(masks[k]);
    }
    nst_image_free(content);
    nst_image_free(x);
    nst_model_free(model);
}

static void test_w2_objective(void **state) {
    (void)state;
    objective_case(NST_STYLE_W2, 1, 0);
    objective_case(NST_STYLE_W2, 2, 0);
    objective_case(NST_STYLE_W2, 2, 1);
}

static void test_hist_objective(void **state) {
    (void)state;
    objective_case(NST_STYLE_HIST, 1, 0);
    objective_case(NST_STYLE_HIST, 2, 0);
    objective_case(NST_STYLE_HIST, 2, 1);
}

/* ---- parameters ----------------------------------------------------------- */

static void test_params(void **state) {
    (void)state;
    nst_params p;
    nst_msg msg = {{0}};
    nst_params_default(&p);
    assert_int_equal(p.style_loss, NST_STYLE_GRAM);
    assert_true(p.style_weight == nst_style_loss_weight(NST_STYLE_GRAM));
    for (int k = 0; k < 3; k++) {
        p.style_loss = (nst_style_loss_kind)k;
        assert_int_equal(nst_params_check(&p, 1, NULL, &msg), NST_OK);
        assert_int_equal(nst_style_loss_parse(nst_style_loss_name(p.style_loss)), k);
        assert_true(nst_style_loss_weight(p.style_loss) > 0);
    }
    p.style_loss = (nst_style_loss_kind)7;
    assert_int_equal(nst_params_check(&p, 1, NULL, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "style loss 7"));
    assert_null(nst_style_loss_name(p.style_loss));
    assert_true(isnan(nst_style_loss_weight(p.style_loss)));
    assert_int_equal(nst_style_loss_parse("wasserstein"), -1);
    assert_int_equal(nst_style_loss_parse(NULL), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_w2_reference_fd),
        cmocka_unit_test(test_hist_reference_fd),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_w2_objective),
        cmocka_unit_test(test_hist_objective),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
