/* test_vgg.c: the VGG models: the network tables; every layer of VGG-19 and
 * VGG-16 and the image gradient against a
 * PyTorch float64 golden file (tools/make_golden.py) with each convolution
 * method (Winograd F(4x4) and F(2x2), im2col), the plain-C reference
 * graph against finite differences, the device against the reference (max
 * and average pooling, partial depth, banded scratch, a second size), memory
 * accounting, and the validation messages. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "ref_alloc.h"
#include "reference.h"
#include "vgg.h"

#define rt check_rt /* the group fixture's runtime (check.h) */

/* splitmix64, as src/weights_gen.c and tools/make_golden.py. */
static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static double uniform(uint64_t *s) { return (double)(mix(s) >> 11) / 9007199254740992.0; }

static nst_weights *gen(uint64_t seed, double mult, int convs) {
    nst_weights *w = NULL;
    nst_msg msg = {{0}};
    assert_int_equal(nst_weights_generate(&w, seed, mult, convs, &msg), NST_OK);
    return w;
}

static const char *all_names[NST_VGG_LAYERS];

static void test_names(void **state) {
    for (int i = 0; i < NST_VGG_LAYERS; i++) {
        const char *n = nst_vgg_layer_name(i);
        assert_non_null(n);
        assert_int_equal(nst_vgg_layer_index(n), i);
    }
    assert_string_equal(nst_vgg_layer_name(21), "conv4_2");
    assert_string_equal(nst_vgg_layer_name(22), "relu4_2");
    assert_string_equal(nst_vgg_layer_name(36), "pool5");
    assert_int_equal(nst_vgg_layer_index("relu5_1"), 29);
    assert_int_equal(nst_vgg_layer_index("relu6_1"), -1);
    assert_int_equal(nst_vgg_layer_index("conv1_3"), -1);
    assert_int_equal(nst_vgg_layer_index(""), -1);
    assert_int_equal(nst_vgg_layer_index(NULL), -1);
    assert_null(nst_vgg_layer_name(37));
    assert_null(nst_vgg_layer_name(-1));
}

/* The tables against torchvision's vgg19().features and vgg16().features:
 * the convolutions' indices (those of the published .pth files), widths,
 * names, and the geometry the layer code implements (3x3 convolutions of
 * stride 1 and padding 1, 2x2 pools of stride 2). */
static void test_tables(void **state) {
    static const int conv19[] = {0, 2, 5, 7, 10, 12, 14, 16, 19, 21, 23, 25, 28, 30, 32, 34};
    static const int conv16[] = {0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28};
    static const int width[] = {64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512};
    const nst_net *v19 = nst_net_get(NST_NETWORK_VGG19), *v16 = nst_net_get(NST_NETWORK_VGG16);
    assert_non_null(v19);
    assert_non_null(v16);
    assert_null(nst_net_get(NST_NETWORK_AUTO));
    assert_ptr_equal(nst_net_find("vgg16"), v16);
    assert_ptr_equal(nst_net_find("VGG-19"), v19);
    assert_null(nst_net_find("vgg11"));
    assert_ptr_equal(nst_net_at(0), v19); /* the default comes first */
    assert_int_equal(v19->nlayers, 37);
    assert_int_equal(v16->nlayers, 31);
    assert_int_equal(nst_net_convs(v19), 16);
    assert_int_equal(nst_net_convs(v16), 13);
    for (int k = 0; k < 16; k++) assert_int_equal(nst_net_conv_layer(v19, k), conv19[k]);
    for (int k = 0; k < 13; k++) {
        int i = nst_net_conv_layer(v16, k);
        assert_int_equal(i, conv16[k]);
        assert_int_equal(v16->layer[i].width, width[k]);
    }
    assert_int_equal(nst_net_conv_layer(v16, 13), -1);
    assert_string_equal(v16->torchvision_file, "vgg16-397923af.pth");
    assert_string_equal(v19->torchvision_file, "vgg19-dcbb9e9d.pth");
    for (int n = 0; nst_net_at(n); n++) {
        const nst_net *net = nst_net_at(n);
        int block = 1, in_block = 0, pools = 0;
        for (int i = 0; i < net->nlayers; i++) {
            const nst_net_layer *L = &net->layer[i];
            char want[32];
            /* names: convB_I, reluB_I after it, poolB ending block B */
            if (L->kind == NST_LAYER_CONV) {
                snprintf(want, sizeof want, "conv%d_%d", block, ++in_block);
                assert_int_equal(L->kernel, 3);
                assert_int_equal(L->stride, 1);
                assert_int_equal(L->pad, 1);
                assert_true(L->width > 0);
            } else if (L->kind == NST_LAYER_RELU) {
                snprintf(want, sizeof want, "relu%d_%d", block, in_block);
                assert_int_equal(net->layer[i - 1].kind, NST_LAYER_CONV);
                assert_int_equal(L->kernel * L->stride, 1);
            } else {
                snprintf(want, sizeof want, "pool%d", block++);
                in_block = 0;
                pools++;
                assert_int_equal(L->kernel, 2);
                assert_int_equal(L->stride, 2);
                assert_int_equal(L->pad, 0);
            }
            assert_string_equal(L->name, want);
            assert_int_equal(nst_net_index(net, L->name), i);
            assert_string_equal(nst_net_layer_name(net, i), L->name);
            assert_int_equal(nst_net_stride(net, i), 1 << pools);
            /* every name of every network is a VGG-19 name (the parameters
             * are checked against those before a model exists) */
            assert_true(nst_vgg_layer_index(L->name) >= 0);
        }
        assert_int_equal(pools, 5);
        assert_null(nst_net_layer_name(net, net->nlayers));
    }
    assert_int_equal(nst_net_index(v16, "conv3_4"), -1);
    assert_int_equal(nst_net_index(v16, "relu4_2"), 20);
    assert_int_equal(nst_net_index(v16, "relu5_1"), 25);
    char list[512];
    nst_net_list(v16, list, sizeof list);
    assert_non_null(strstr(list, "conv1_1, relu1_1, conv1_2"));
    assert_non_null(strstr(list, "relu5_3, pool5"));
    nst_net_list(v16, list, 12); /* cut, terminated */
    assert_true(strlen(list) < 12);
    /* receptive fields: relu2_1 reaches 4 pixels (2 + 2 at stride 2) beyond
     * its cell, rounded to its stride 2; VGG-16's relu5_1 (3 convolutions in
     * blocks 3 and 4): 2*1 + 2*2 + 3*4 + 3*8 + 1*16 = 58 to the left, 64
     * rounded to the stride 16 */
    int halo, align;
    nst_net_receptive(v19, 7, &halo, &align);
    assert_int_equal(halo, 4);
    assert_int_equal(align, 2);
    nst_net_receptive(v16, 26, &halo, &align);
    assert_int_equal(halo, 64);
    assert_int_equal(align, 16);
    nst_net_receptive(v16, 1, &halo, &align); /* conv1_1 alone: radius 1 */
    assert_int_equal(halo, 1);
    assert_int_equal(align, 1);
}

/* ---- the PyTorch golden file ------------------------------------------- */

typedef struct golden {
    uint64_t wseed, iseed, rseed;
    double mult, checksum;
    int H, W, n;
    int c[NST_VGG_LAYERS], h[NST_VGG_LAYERS], w[NST_VGG_LAYERS];
    float *image, *tap[NST_VGG_LAYERS], *grad;
} golden;

static void rd(void *p, size_t size, FILE *f) { assert_int_equal(fread(p, 1, size, f), size); }

static void golden_load(golden *g, const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) fprintf(stderr, "cannot open %s (run the tests from the repository root)\n", path);
    assert_non_null(f);
    char magic[4];
    uint32_t version;
    rd(magic, 4, f);
    assert_memory_equal(magic, "NSTG", 4);
    rd(&version, 4, f);
    assert_int_equal(version, 1);
    rd(&g->wseed, 8, f);
    rd(&g->mult, 8, f);
    rd(&g->iseed, 8, f);
    rd(&g->rseed, 8, f);
    rd(&g->H, 4, f);
    rd(&g->W, 4, f);
    rd(&g->n, 4, f);
    assert_true(g->n >= 1 && g->n <= NST_VGG_LAYERS);
    for (int i = 0; i < g->n; i++) {
        rd(&g->c[i], 4, f);
        rd(&g->h[i], 4, f);
        rd(&g->w[i], 4, f);
    }
    rd(&g->checksum, 8, f);
    size_t img = (size_t)3 * g->H * g->W;
    g->image = malloc(img * sizeof(float));
    g->grad = malloc(img * sizeof(float));
    rd(g->image, img * sizeof(float), f);
    for (int i = 0; i < g->n; i++) {
        size_t n = (size_t)g->c[i] * g->h[i] * g->w[i];
        g->tap[i] = malloc(n * sizeof(float));
        rd(g->tap[i], n * sizeof(float), f);
    }
    rd(g->grad, img * sizeof(float), f);
    assert_int_equal(fgetc(f), EOF);
    fclose(f);
}

static void golden_free(golden *g) {
    free(g->image);
    free(g->grad);
    for (int i = 0; i < g->n; i++) free(g->tap[i]);
}

/* max |got - want| / max |want| */
static double rel_err_f(const float *got, const float *want, size_t n) {
    double md = 0, mw = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > md || isnan(d)) md = d;
        if (fabs(want[i]) > mw) mw = fabs(want[i]);
    }
    return mw > 0 ? md / mw : md;
}

static float *download(const nst_tensor *t) {
    float *x = malloc(t->count * sizeof *x);
    assert_non_null(x);
    assert_int_equal(nst_tensor_download(rt, t, x), NST_OK);
    return x;
}

#define GOLDEN_TOL 1e-4 /* relative to each tensor's largest magnitude */

/* The golden comparison of network id against the file at path with the
 * convolution method conv (NST_CONV's name for it; NULL: the settings'
 * default, Winograd F(4x4,3x3)). */
static void golden_run(const char *conv, nst_network id, const char *path) {
    const nst_net *net = nst_net_get(id);
    nst_conv_method method = !conv                         ? NST_CONV_WINOGRAD4
                             : !strcmp(conv, "winograd2") ? NST_CONV_WINOGRAD2
                                                          : NST_CONV_IM2COL;
    nst_conv_method saved = rt->settings.conv;
    golden g;
    golden_load(&g, path);
    assert_int_equal(g.n, net->nlayers); /* every layer of the network */
    printf("  %s, %s\n", net->title, path);
    nst_weights *w = NULL;
    nst_msg msg = {{0}};
    assert_int_equal(nst_weights_generate_net(&w, net, g.wseed, g.mult, nst_net_convs(net), &msg),
                     NST_OK);
    double sum = 0;
    for (int i = 0; i < w->count; i++)
        for (size_t j = 0; j < w->t[i].count; j++) sum += w->t[i].data[j];
    printf("  weights checksum %.12g, golden %.12g\n", sum, g.checksum);
    assert_true(fabs(sum - g.checksum) <= 1e-9 * (1 + fabs(g.checksum)));

    for (int i = 0; i < g.n; i++) all_names[i] = nst_net_layer_name(net, i);
    nst_vgg *m = NULL;
    rt->settings.conv = method; /* read by nst_vgg_create only */
    assert_int_equal(nst_vgg_create(rt, w, all_names, g.n, 0, &m), NST_OK);
    rt->settings.conv = saved;
    assert_ptr_equal(nst_vgg_net(m), net);
    assert_int_equal(nst_vgg_depth(m), net->nlayers);
    assert_int_equal(nst_vgg_winograd(m), !conv ? 4 : !strcmp(conv, "winograd2") ? 2 : 0);
    printf("  convolutions: %s\n", conv ? conv : "default (winograd)");
    assert_int_equal(nst_vgg_resize(rt, m, g.H, g.W), NST_OK);
    nst_tensor *img = NULL, *dimg = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 3, g.H, g.W, &img), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, g.H, g.W, &dimg), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, img, g.image), NST_OK);
    assert_int_equal(nst_vgg_forward(rt, m, img), NST_OK);

    /* the plain-C reference must agree with PyTorch too */
    nst_ref_vgg ref;
    double *dimage = ref_from_float(g.image, (size_t)3 * g.H * g.W);
    assert_int_equal(nst_ref_vgg_forward(&ref, w, g.n, 0, dimage, g.H, g.W), 0);

    double worst = 0;
    printf("  relative error against PyTorch (float64), by layer\n");
    printf("  %-8s %-12s %-12s %s\n", "layer", "shape", "device", "C reference");
    uint64_t rs = g.rseed;
    double *dtap[NST_VGG_LAYERS];
    for (int i = 0; i < g.n; i++) {
        const nst_tensor *t = nst_vgg_tap(m, all_names[i]);
        assert_non_null(t);
        assert_int_equal(t->c, g.c[i]);
        assert_int_equal(t->h, g.h[i]);
        assert_int_equal(t->w, g.w[i]);
        float *got = download(t);
        double e = rel_err_f(got, g.tap[i], t->count);
        double er = check_rel_err(g.tap[i], ref.act[i], t->count);
        char shape[32];
        snprintf(shape, sizeof shape, "%dx%dx%d", t->c, t->h, t->w);
        printf("  %-8s %-12s %-12.2e %.2e\n", all_names[i], shape, e, er);
        if (e > worst) worst = e;
        assert_true(e < GOLDEN_TOL);
        assert_true(er < 1e-6);
        /* dL/dtap = r_t */
        float *r = malloc(t->count * sizeof *r);
        for (size_t j = 0; j < t->count; j++) r[j] = (float)(2 * uniform(&rs) - 1);
        nst_tensor *gt = nst_vgg_tap_grad(m, all_names[i]);
        assert_non_null(gt);
        assert_int_equal(nst_tensor_upload(rt, gt, r), NST_OK);
        dtap[i] = ref_from_float(r, t->count);
        free(r);
        free(got);
    }
    assert_int_equal(nst_vgg_backward(rt, m, dimg), NST_OK);
    size_t n = (size_t)3 * g.H * g.W;
    float *got = download(dimg);
    double *rg = ref_alloc(n);
    assert_int_equal(nst_ref_vgg_backward(&ref, 0, dtap, g.H, g.W, rg), 0);
    double e = rel_err_f(got, g.grad, n), er = check_rel_err(g.grad, rg, n);
    printf("  %-8s %-12s %-12.2e %.2e\n", "d/dimage", "3x37x33", e, er);
    printf("  worst tap %.2e, image gradient %.2e (tolerance %.0e)\n", worst, e, GOLDEN_TOL);
    assert_true(e < GOLDEN_TOL);
    assert_true(er < 1e-6);

    for (int i = 0; i < g.n; i++) free(dtap[i]);
    free(got), free(rg), free(dimage);
    nst_ref_vgg_free(&ref);
    nst_tensor_free(rt, img);
    nst_tensor_free(rt, dimg);
    nst_vgg_free(rt, m);
    nst_weights_free(w);
    golden_free(&g);
}

#define GOLDEN19 NST_NETWORK_VGG19, "tests/data/golden_vgg.bin"
#define GOLDEN16 NST_NETWORK_VGG16, "tests/data/golden_vgg16.bin"
static void test_golden(void **state) { golden_run(NULL, GOLDEN19); }
static void test_golden_winograd2(void **state) { golden_run("winograd2", GOLDEN19); }
static void test_golden_im2col(void **state) { golden_run("im2col", GOLDEN19); }
/* VGG-16 (tools/make_golden.py --network vgg16), every convolution method */
static void test_golden_vgg16(void **state) {
    golden_run(NULL, GOLDEN16);
    golden_run("winograd2", GOLDEN16);
    golden_run("im2col", GOLDEN16);
}

/* ---- device against the reference, reference against finite differences */

typedef struct vcase {
    const char *taps[8];
    int ntaps, avg, H, W;
    size_t scratch_cap; /* bytes; 0 = default */
    int fd_points;      /* 0: no finite differences */
} vcase;

static double loss_of(const nst_ref_vgg *f, const vcase *k, const int *idx, double *const *r) {
    double L = 0;
    for (int t = 0; t < k->ntaps; t++) {
        int i = idx[t];
        size_t n = (size_t)f->c[i] * f->h[i] * f->w[i];
        for (size_t j = 0; j < n; j++) L += r[t][j] * f->act[i][j];
    }
    return L;
}

/* Runs case k on model m (already created and sized for k->H x k->W). */
static void check_case(nst_vgg *m, const nst_weights *w, const vcase *k, uint64_t seed) {
    check_rng rng;
    check_rng_seed(&rng, seed);
    int idx[8], deepest = 0;
    for (int t = 0; t < k->ntaps; t++) {
        idx[t] = nst_vgg_layer_index(k->taps[t]);
        if (idx[t] > deepest) deepest = idx[t];
    }
    assert_int_equal(nst_vgg_depth(m), deepest + 1);
    size_t n = (size_t)3 * k->H * k->W;
    float *img = malloc(n * sizeof *img);
    check_fill(&rng, img, n, 0, 1);
    double *dimg = ref_from_float(img, n);
    nst_ref_vgg f;
    assert_int_equal(nst_ref_vgg_forward(&f, w, deepest + 1, k->avg, dimg, k->H, k->W), 0);
    double *dtap[NST_VGG_LAYERS] = {0}, *r[8];
    for (int t = 0; t < k->ntaps; t++) {
        int i = idx[t];
        size_t c = (size_t)f.c[i] * f.h[i] * f.w[i];
        float *rf = malloc(c * sizeof *rf);
        check_fill(&rng, rf, c, -1, 1);
        r[t] = dtap[i] = ref_from_float(rf, c);
        free(rf);
    }
    double *g = ref_alloc(n);
    assert_int_equal(nst_ref_vgg_backward(&f, k->avg, dtap, k->H, k->W, g), 0);

    if (k->fd_points) { /* the reference backward against central differences */
        double maxg = 0, maxd = 0, h = 1e-5;
        for (size_t j = 0; j < n; j++)
            if (fabs(g[j]) > maxg) maxg = fabs(g[j]);
        for (int p = 0; p < k->fd_points; p++) {
            size_t j = (size_t)check_uniform(&rng, 0, (float)n) % n;
            double x0 = dimg[j];
            nst_ref_vgg fp, fm;
            dimg[j] = x0 + h;
            assert_int_equal(nst_ref_vgg_forward(&fp, w, deepest + 1, k->avg, dimg, k->H, k->W), 0);
            dimg[j] = x0 - h;
            assert_int_equal(nst_ref_vgg_forward(&fm, w, deepest + 1, k->avg, dimg, k->H, k->W), 0);
            dimg[j] = x0;
            double fd = (loss_of(&fp, k, idx, r) - loss_of(&fm, k, idx, r)) / (2 * h);
            if (fabs(fd - g[j]) > maxd) maxd = fabs(fd - g[j]);
            nst_ref_vgg_free(&fp);
            nst_ref_vgg_free(&fm);
        }
        printf("  reference to %-8s %s pool, %dx%d: finite differences rel err %.2e (%d pixels)\n",
               k->taps[k->ntaps - 1], k->avg ? "avg" : "max", k->H, k->W, maxd / maxg,
               k->fd_points);
        assert_true(maxd / maxg < 1e-6);
    }

    nst_tensor *ti = NULL, *tg = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 3, k->H, k->W, &ti), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, k->H, k->W, &tg), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, ti, img), NST_OK);
    assert_int_equal(nst_vgg_forward(rt, m, ti), NST_OK);
    /* garbage in the gradient slots, cleared by zero_grad, then accumulated */
    for (int t = 0; t < k->ntaps; t++)
        assert_int_equal(nst_tensor_fill(rt, nst_vgg_tap_grad(m, k->taps[t]), 3.0f), NST_OK);
    assert_int_equal(nst_vgg_zero_grad(rt, m), NST_OK);
    for (int t = 0; t < k->ntaps; t++) {
        const nst_tensor *a = nst_vgg_tap(m, k->taps[t]);
        nst_tensor *ga = nst_vgg_tap_grad(m, k->taps[t]);
        assert_non_null(a);
        assert_non_null(ga);
        int i = idx[t];
        assert_int_equal(a->c, f.c[i]);
        assert_int_equal(a->h, f.h[i]);
        assert_int_equal(a->w, f.w[i]);
        float *got = download(a);
        char what[64];
        snprintf(what, sizeof what, "tap %s", k->taps[t]);
        double e = check_rel_err(got, f.act[i], a->count);
        if (e >= 1e-4) fprintf(stderr, "%s: rel err %.3g\n", what, e);
        assert_true(e < 1e-4);
        float *rf = malloc(a->count * sizeof *rf);
        for (size_t j = 0; j < a->count; j++) rf[j] = (float)(r[t][j] / 2);
        nst_tensor *tmp = NULL;
        assert_int_equal(nst_tensor_create(rt, 1, a->c, a->h, a->w, &tmp), NST_OK);
        assert_int_equal(nst_tensor_upload(rt, tmp, rf), NST_OK);
        for (int rep = 0; rep < 2; rep++) /* two halves accumulate to r */
            assert_int_equal(nst_axpy(rt, a->count, 1.0f, tmp->buf, 0, ga->buf, 0), NST_OK);
        nst_tensor_free(rt, tmp);
        free(rf);
        free(got);
    }
    for (int rep = 0; rep < 2; rep++) { /* backward leaves the tap gradients intact */
        assert_int_equal(nst_tensor_fill(rt, tg, 5.0f), NST_OK);
        assert_int_equal(nst_vgg_backward(rt, m, tg), NST_OK);
        float *got = download(tg);
        double e = check_rel_err(got, g, n);
        printf("  device to %-8s %s pool, %dx%d, scratch %zu B: image gradient rel err %.2e\n",
               k->taps[k->ntaps - 1], k->avg ? "avg" : "max", k->H, k->W, k->scratch_cap, e);
        assert_true(e < 1e-4);
        free(got);
    }
    for (int t = 0; t < k->ntaps; t++) free(r[t]);
    free(g);
    free(img);
    free(dimg);
    nst_ref_vgg_free(&f);
    nst_tensor_free(rt, ti);
    nst_tensor_free(rt, tg);
}

static void run_case(const nst_weights *w, const vcase *k, uint64_t seed) {
    nst_vgg *m = NULL;
    assert_int_equal(nst_vgg_create(rt, w, k->taps, k->ntaps, k->avg, &m), NST_OK);
    if (k->scratch_cap) nst_vgg_set_scratch_cap(m, k->scratch_cap);
    assert_int_equal(nst_vgg_resize(rt, m, k->H, k->W), NST_OK);
    check_case(m, w, k, seed);
    nst_vgg_free(rt, m);
}

static void test_full_max(void **state) {
    nst_weights *w = gen(5, 1.0 / 16, 16);
    vcase k = {{"relu1_1", "pool2", "conv3_2", "relu4_2", "relu5_1", "pool5"}, 6, 0, 35, 32,
               0, 12};
    run_case(w, &k, 100);
    nst_weights_free(w);
}

static void test_avg_pool(void **state) {
    nst_weights *w = gen(6, 1.0 / 16, 16);
    vcase k = {{"conv4_1", "relu2_1"}, 2, 1, 13, 11, 0, 12};
    run_case(w, &k, 101);
    nst_weights_free(w);
}

/* A scratch cap below one row: every convolution runs one row per band. */
static void test_banded(void **state) {
    nst_weights *w = gen(7, 1.0 / 8, 16);
    vcase k = {{"relu3_1"}, 1, 0, 33, 17, 1, 0};
    run_case(w, &k, 102);
    vcase k2 = {{"conv1_2", "relu2_2"}, 2, 0, 21, 9, 4096, 0};
    run_case(w, &k2, 103);
    nst_weights_free(w);
}

/* One model, three sizes (as a multi-scale run does), with exact memory
 * accounting: what resize allocates is what nst_vgg_memory_bytes predicts. */
static void test_resize_memory(void **state) {
    nst_weights *w = gen(8, 1.0 / 16, 16);
    vcase k = {{"relu1_1", "relu2_1", "relu3_1"}, 3, 0, 40, 30, 0, 0};
    size_t before = nst_mem_in_use(rt);
    nst_vgg *m = NULL;
    assert_int_equal(nst_vgg_create(rt, w, k.taps, k.ntaps, 0, &m), NST_OK);
    const int sizes[3][2] = {{40, 30}, {17, 23}, {4, 4}};
    for (int s = 0; s < 3; s++) {
        k.H = sizes[s][0];
        k.W = sizes[s][1];
        assert_int_equal(nst_vgg_resize(rt, m, k.H, k.W), NST_OK);
        assert_int_equal(nst_mem_in_use(rt) - before, nst_vgg_memory_bytes(m, k.H, k.W));
        check_case(m, w, &k, 200 + s);
    }
    /* FLOPs by hand: conv1_1 3->4, conv1_2 4->4 at 4x4, conv2_1 4->8 at 2x2, conv2_2
     * 8->8 at 2x2, conv3_1 8->16 at 1x1; 4 * K*C*9 * HW each */
    double want = 4.0 * 9 * (4 * 3 * 16 + 4 * 4 * 16 + 8 * 4 * 4 + 8 * 8 * 4 + 16 * 8 * 1);
    assert_true(fabs(nst_vgg_flops(m) - want) < 0.5);
    assert_int_equal(nst_vgg_resize(rt, m, 3, 4), NST_ERR_INVALID_ARG); /* pool2 needs 4x4 */
    assert_non_null(strstr(nst_last_error(rt), "4x4"));
    assert_int_equal(nst_vgg_memory_bytes(m, 3, 4), 0);
    nst_vgg_free(rt, m);
    assert_int_equal(nst_mem_in_use(rt), before);
    nst_weights_free(w);
}

/* ---- input conventions --------------------------------------------------- */

/* A copy of w (torchvision's convention) for Caffe's: conv1_1 takes B, G, R
 * as z[c'] = (x[2-c'] - cm[c']) / cs[c'] (255 x minus the mean pixel) instead
 * of u[c] = (x[c] - tm[c]) / ts[c]. With x[c] = z[2-c] cs[2-c] + cm[2-c]:
 *   u[c] = z[2-c] cs[2-c] / ts[c] + d[c],  d[c] = (cm[2-c] - tm[c]) / ts[c],
 * so W'[k][c'] = W[k][2-c'] cs[c'] / ts[2-c'] and b'[k] = b[k] + sum over
 * c, i, j of W[k][c][i][j] d[c]. The bias term assumes all nine taps inside
 * the image: the two agree wherever the receptive field stays off the
 * zero padding of conv1_1. */
static nst_weights *to_caffe(const nst_weights *w) {
    const nst_input_norm *t = nst_input_get(NST_INPUT_TORCHVISION);
    const nst_input_norm *c = nst_input_get(NST_INPUT_CAFFE);
    nst_weights *o = calloc(1, sizeof *o);
    assert_non_null(o);
    for (int i = 0; i < w->count; i++) {
        const nst_weight *s = &w->t[i];
        nst_weight *n = nst_weights_add(o, s->name, s->rank, s->shape);
        assert_non_null(n);
        memcpy(n->data, s->data, s->count * sizeof(float));
    }
    const nst_weight *w0 = nst_weights_find(w, "features.0.weight");
    nst_weight *cw = (nst_weight *)nst_weights_find(o, "features.0.weight");
    nst_weight *cb = (nst_weight *)nst_weights_find(o, "features.0.bias");
    int K = (int)w0->shape[0];
    for (int k = 0; k < K; k++) {
        double b = cb->data[k];
        for (int ch = 0; ch < 3; ch++) {
            double d = (c->mean[2 - ch] - t->mean[ch]) / t->std[ch];
            for (int j = 0; j < 9; j++) {
                b += w0->data[(k * 3 + ch) * 9 + j] * d;
                cw->data[(k * 3 + (2 - ch)) * 9 + j] =
                    (float)(w0->data[(k * 3 + ch) * 9 + j] * c->std[2 - ch] / t->std[ch]);
            }
        }
        cb->data[k] = (float)b;
    }
    o->input = NST_INPUT_CAFFE;
    return o;
}

/* max |a - b| / max |b| over the positions of a [C,H,W] layer of stride s
 * whose receptive field (halo beyond its s x s cell) stays inside an
 * ih x iw image, and how many there are. */
static double interior_err(const double *a, const double *b, int C, int H, int W, int s,
                           int halo, int ih, int iw, int *count) {
    double md = 0, mb = 0;
    *count = 0;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            if (y * s - halo < 0 || x * s - halo < 0 || y * s + s - 1 + halo >= ih ||
                x * s + s - 1 + halo >= iw)
                continue;
            ++*count;
            for (int c = 0; c < C; c++) {
                size_t i = ((size_t)c * H + y) * W + x;
                if (fabs(a[i] - b[i]) > md) md = fabs(a[i] - b[i]);
                if (fabs(b[i]) > mb) mb = fabs(b[i]);
            }
        }
    return mb > 0 ? md / mb : md;
}

/* Weights that declare Caffe's input convention (BGR, 0..255 minus the mean
 * pixel, no std) in their safetensors metadata load as they are and give the
 * features of the torchvision-convention network they were converted from;
 * the device agrees with the reference through the reversed channels,
 * forward and backward. */
static void test_caffe_input(void **state) {
    enum { H = 52, W = 44 };
    static const char *const taps[] = {"conv1_1", "relu1_2", "pool1", "relu2_1", "relu2_2",
                                       "relu3_1"};
    const int ntaps = 6;
    for (int n = 0; nst_net_at(n); n++) {
        const nst_net *net = nst_net_at(n);
        nst_weights *w = NULL, *c = NULL, *cl = NULL;
        nst_msg msg = {{0}};
        assert_int_equal(nst_weights_generate_net(&w, net, 31 + n, 1.0 / 16, 8, &msg), NST_OK);
        c = to_caffe(w);
        const char *path = check_tmp_path("caffe.safetensors");
        assert_int_equal(nst_weights_save(c, path, "F32", &msg), NST_OK);
        assert_int_equal(nst_weights_load_network(path, NST_NETWORK_AUTO, &cl, &msg), NST_OK);
        assert_int_equal(cl->input, NST_INPUT_CAFFE); /* from the metadata */
        assert_ptr_equal(cl->net, net);               /* detected */

        check_rng rng;
        check_rng_seed(&rng, 77);
        size_t np = (size_t)3 * H * W;
        float *img = check_random(&rng, np, 0, 1);
        double *dimg = ref_from_float(img, np);
        int deepest = nst_net_index(net, taps[ntaps - 1]);
        nst_ref_vgg rt_, rc;
        assert_int_equal(nst_ref_vgg_forward(&rt_, w, deepest + 1, 0, dimg, H, W), 0);
        assert_int_equal(nst_ref_vgg_forward(&rc, cl, deepest + 1, 0, dimg, H, W), 0);

        nst_vgg *mt = NULL, *mc = NULL;
        assert_int_equal(nst_vgg_create(rt, w, taps, ntaps, 0, &mt), NST_OK);
        assert_int_equal(nst_vgg_create(rt, cl, taps, ntaps, 0, &mc), NST_OK);
        assert_int_equal(nst_vgg_resize(rt, mt, H, W), NST_OK);
        assert_int_equal(nst_vgg_resize(rt, mc, H, W), NST_OK);
        nst_tensor *ti = NULL;
        assert_int_equal(nst_tensor_create(rt, 1, 3, H, W, &ti), NST_OK);
        assert_int_equal(nst_tensor_upload(rt, ti, img), NST_OK);
        assert_int_equal(nst_vgg_forward(rt, mt, ti), NST_OK);
        assert_int_equal(nst_vgg_forward(rt, mc, ti), NST_OK);
        for (int t = 0; t < ntaps; t++) {
            int i = nst_net_index(net, taps[t]), halo, align, cnt;
            nst_net_receptive(net, i + 1, &halo, &align);
            size_t cnt_all = (size_t)rc.c[i] * rc.h[i] * rc.w[i];
            /* the references, in double: the same function but for the
             * float rounding of conv1_1's converted weights (2^-24 each) */
            double er = interior_err(rc.act[i], rt_.act[i], rc.c[i], rc.h[i], rc.w[i], align,
                                     halo, H, W, &cnt);
            /* the device, Caffe's convention, against the Caffe reference
             * everywhere, and against the torchvision reference inside */
            float *gc = download(nst_vgg_tap(mc, taps[t]));
            float *gt = download(nst_vgg_tap(mt, taps[t]));
            double *dc = ref_from_float(gc, cnt_all), *dt = ref_from_float(gt, cnt_all);
            double edc = check_rel_err(gc, rc.act[i], cnt_all);
            double ed = interior_err(dc, dt, rc.c[i], rc.h[i], rc.w[i], align, halo, H, W, &cnt);
            printf("  %s %-8s %3d inner positions (halo %2d): reference Caffe vs torchvision "
                   "%.2e, device Caffe vs torchvision %.2e, device vs reference %.2e\n",
                   net->name, taps[t], cnt, halo, er, ed, edc);
            assert_true(cnt > 0);
            assert_true(er < 16 * 0x1p-24); /* 16 roundings' worth */
            assert_true(ed < 2 * GOLDEN_TOL); /* each device within GOLDEN_TOL of its exact */
            assert_true(edc < GOLDEN_TOL);
            free(gc), free(gt), free(dc), free(dt);
        }
        /* at the border they differ: the padding is zero in different spaces */
        int cnt;
        double edge = interior_err(rc.act[0], rt_.act[0], rc.c[0], H, W, 1, -1, H, W, &cnt);
        printf("  %s conv1_1 with its border: %.2e\n", net->name, edge);
        assert_true(edge > 1e-3);
        nst_tensor_free(rt, ti);
        nst_vgg_free(rt, mt);
        nst_vgg_free(rt, mc);
        nst_ref_vgg_free(&rt_);
        nst_ref_vgg_free(&rc);
        free(img);
        free(dimg);

        /* forward and backward through the reversed channels, with finite
         * differences on the reference */
        vcase k = {{"relu1_1", "pool1", "relu2_2"}, 3, 0, 17, 15, 0, 12};
        run_case(cl, &k, 300 + n);
        nst_weights_free(w);
        nst_weights_free(c);
        nst_weights_free(cl);
    }
}

/* ---- validation --------------------------------------------------------- */

static void expect_create(const nst_weights *w, const char *tap, nst_status want,
                          const char *needle) {
    nst_vgg *m = NULL;
    const char *taps[1] = {tap};
    assert_int_equal(nst_vgg_create(rt, w, taps, 1, 0, &m), want);
    assert_null(m);
    if (!strstr(nst_last_error(rt), needle))
        fprintf(stderr, "message '%s' lacks '%s'\n", nst_last_error(rt), needle);
    assert_non_null(strstr(nst_last_error(rt), needle));
}

/* A copy of w with tensor `name` given another shape. */
static nst_weights *reshaped(const nst_weights *w, const char *name, int rank,
                             const int64_t *shape) {
    nst_weights *o = calloc(1, sizeof *o);
    assert_non_null(o);
    for (int i = 0; i < w->count; i++) {
        const nst_weight *t = &w->t[i];
        int same = !strcmp(t->name, name);
        nst_weight *n = nst_weights_add(o, t->name, same ? rank : t->rank, same ? shape : t->shape);
        assert_non_null(n);
        if (!same) memcpy(n->data, t->data, t->count * sizeof(float));
    }
    return o;
}

static void test_validation(void **state) {
    nst_weights *w = gen(9, 1.0 / 16, 3); /* conv1_1, conv1_2, conv2_1 */
    expect_create(w, "relu4_2x", NST_ERR_INVALID_ARG, "relu4_2, conv4_3");
    expect_create(w, "relu2_2", NST_ERR_FORMAT, "features.7.weight (conv2_2)");
    int64_t r2[2] = {4, 36};
    nst_weights *bad = reshaped(w, "features.2.weight", 2, r2);
    expect_create(bad, "relu1_2", NST_ERR_FORMAT, "features.2.weight (conv1_2) has rank 2");
    nst_weights_free(bad);
    int64_t in5[4] = {4, 5, 3, 3};
    bad = reshaped(w, "features.2.weight", 4, in5);
    expect_create(bad, "conv1_2", NST_ERR_FORMAT, "takes 5 input channels but relu1_1 gives 4");
    nst_weights_free(bad);
    int64_t b3[1] = {3};
    bad = reshaped(w, "features.5.bias", 1, b3);
    expect_create(bad, "pool5", NST_ERR_FORMAT, "features.5.bias");
    nst_weights_free(bad);
    int64_t k2[4] = {4, 3, 2, 2};
    bad = reshaped(w, "features.0.weight", 4, k2);
    expect_create(bad, "relu1_1", NST_ERR_FORMAT, "2x2 kernel");
    nst_weights_free(bad);

    /* a partial network is fine when the taps stop before the missing layers */
    nst_vgg *m = NULL;
    const char *taps[2] = {"relu2_1", "conv1_1"};
    assert_int_equal(nst_vgg_create(rt, w, taps, 2, 0, &m), NST_OK);
    assert_int_equal(nst_vgg_depth(m), 7);
    assert_null(nst_vgg_tap(m, "relu1_2")); /* built but not requested */
    assert_null(nst_vgg_tap_grad(m, "pool5"));
    nst_tensor *img = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 3, 8, 6, &img), NST_OK);
    assert_int_equal(nst_vgg_forward(rt, m, img), NST_ERR_INVALID_ARG); /* not sized yet */
    assert_non_null(strstr(nst_last_error(rt), "nst_vgg_resize"));
    assert_int_equal(nst_vgg_resize(rt, m, 6, 8), NST_OK);
    assert_int_equal(nst_vgg_forward(rt, m, img), NST_ERR_INVALID_ARG); /* 8x6 != 6x8 */
    assert_int_equal(nst_vgg_backward(rt, m, img), NST_ERR_INVALID_ARG);
    nst_tensor_free(rt, img);
    nst_vgg_free(rt, m);
    nst_vgg_free(rt, NULL);
    assert_int_equal(nst_vgg_create(rt, w, taps, 0, 0, &m), NST_ERR_INVALID_ARG);
    nst_weights_free(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),         cmocka_unit_test(test_tables),
        cmocka_unit_test(test_golden),
        cmocka_unit_test(test_golden_winograd2), cmocka_unit_test(test_golden_im2col),
        cmocka_unit_test(test_golden_vgg16),  cmocka_unit_test(test_caffe_input),
        cmocka_unit_test(test_full_max),      cmocka_unit_test(test_avg_pool),
        cmocka_unit_test(test_banded),        cmocka_unit_test(test_resize_memory),
        cmocka_unit_test(test_validation),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
