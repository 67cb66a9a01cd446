/* test_tiled.c: tiled evaluation. The tiling partitions every layer's
 * positions and each window holds the receptive field of what it owns; on a
 * narrow generated network the tiled loss and gradient equal the untiled
 * ones up to the convolutions' rounding, with even and odd image sides; the
 * VGG then holds one window's activations, so the peak memory falls. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "image.h"
#include "objective.h"
#include "tiling.h"

/* ---- geometry (host only) ------------------------------------------------- */

static void test_geometry_vgg19(void **state) {
    (void)state;
    nst_weights *w = NULL;
    assert_int_equal(nst_weights_generate(&w, 1, 0.0625, NST_VGG_CONVS, NULL), NST_OK);
    int halo = 0, align = 0;
    /* relu1_1 (depth 2): one 3x3 conv, radius 1 */
    assert_int_equal(nst_tiled_geometry(w, 2, &halo, &align), 0);
    assert_int_equal(align, 1);
    assert_int_equal(halo, 1);
    /* relu2_1 (depth 7): 2 convs at stride 1, pool (right edge +1), 1 conv at
     * stride 2: left 2 + 2 = 4, right 2 + 1 + 2 - 1 = 4; rounded to 2 */
    assert_int_equal(nst_tiled_geometry(w, 7, &halo, &align), 0);
    assert_int_equal(align, 2);
    assert_int_equal(halo, 4);
    /* relu5_1 (depth 30): 2*1 + 2*2 + 4*4 + 4*8 + 1*16 = 70 to the left */
    assert_int_equal(nst_tiled_geometry(w, 30, &halo, &align), 0);
    assert_int_equal(align, 16);
    assert_int_equal(halo, 80);
    nst_weights_free(w);
}

/* VGG-16's receptive fields come from its own table: three convolutions in
 * blocks 3 to 5, its relu5_1 at features.25. */
static void test_geometry_vgg16(void **state) {
    (void)state;
    nst_weights *w = NULL;
    assert_int_equal(nst_weights_generate_net(&w, nst_net_get(NST_NETWORK_VGG16), 1, 0.0625, 13,
                                              NULL), NST_OK);
    int halo = 0, align = 0;
    /* relu3_3 (depth 16): 2*1 + 2*2 + 3*4 = 18 to the left, rounded to 4 */
    assert_int_equal(nst_tiled_geometry(w, 16, &halo, &align), 0);
    assert_int_equal(align, 4);
    assert_int_equal(halo, 20);
    /* relu5_1 (depth 26): 2*1 + 2*2 + 3*4 + 3*8 + 1*16 = 58, rounded to 16 */
    assert_int_equal(nst_tiled_geometry(w, 26, &halo, &align), 0);
    assert_int_equal(align, 16);
    assert_int_equal(halo, 64);
    assert_int_equal(nst_tiled_geometry(w, 32, &halo, &align), -1); /* beyond pool5 */
    nst_weights_free(w);
}

/* Every position of every stride is owned once; windows aligned, inside the
 * image, the same size, and reaching halo beyond what they own. */
static void check_tiling(int h, int w, int tile, int halo, int align) {
    nst_tiling tg;
    nst_msg msg = {{0}};
    assert_int_equal(nst_tiling_make(h, w, tile, halo, align, &tg, &msg), NST_OK);
    assert_true(tg.th <= (tile < h ? tile : h) && tg.tw <= (tile < w ? tile : w));
    for (int s = 1; s <= align; s *= 2) {
        int lh = h / s, lw = w / s;
        int *count = calloc((size_t)lh * lw, sizeof *count);
        for (int k = 0; k < tg.ny * tg.nx; k++) {
            const nst_tile *t = &tg.tiles[k];
            assert_int_equal(t->y % align, 0);
            assert_int_equal(t->x % align, 0);
            assert_true(t->y >= 0 && t->y + tg.th <= h && t->x >= 0 && t->x + tg.tw <= w);
            assert_true(t->oy0 == 0 || t->oy0 - t->y >= halo);
            assert_true(t->ox0 == 0 || t->ox0 - t->x >= halo);
            assert_true(t->oy1 == h || t->y + tg.th - t->oy1 >= halo);
            assert_true(t->ox1 == w || t->x + tg.tw - t->ox1 >= halo);
            assert_true(t->y + tg.th == h || (h - t->y - tg.th) % align == 0);
            for (int y = t->oy0 / s; y < t->oy1 / s; y++)
                for (int x = t->ox0 / s; x < t->ox1 / s; x++) count[y * lw + x]++;
        }
        for (int i = 0; i < lh * lw; i++) assert_int_equal(count[i], 1);
        free(count);
    }
    nst_tiling_free(&tg);
}

static void test_tiling_partition(void **state) {
    (void)state;
    check_tiling(96, 80, 48, 16, 4);
    check_tiling(75, 90, 48, 16, 4);
    check_tiling(2160, 3840, 700, 80, 16);
    check_tiling(1001, 777, 300, 80, 16);
    check_tiling(64, 64, 64, 16, 4); /* one tile */
    nst_tiling tg;
    nst_msg msg = {{0}};
    assert_int_equal(nst_tiling_make(96, 96, 30, 16, 4, &tg, &msg), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "at least 39"));
}

/* ---- tiled == untiled ----------------------------------------------------- */

/* The convolutions' accuracy: every layer and the image gradient within 1e-4
 * of the largest entry of a float64 evaluation (test_vgg's golden test). A
 * window's Winograd tiles sit at other offsets than the whole image's, so
 * the two evaluations round differently (with F(4x4,3x3), by 3e-6 to 6e-6 of
 * the largest gradient entry on PoCL and rusticl; 10 times less with
 * F(2x2,3x3) or im2col); each is within CONV_TOL of the exact values, so
 * they are within 2 CONV_TOL of each other. A tiling mistake (a halo too
 * short, a position owned twice or not at all) is off by far more. */
#define CONV_TOL 1e-4

static nst_image *pattern(int w, int h, int kind) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    check_rng r;
    check_rng_seed(&r, 77 + kind);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double v = kind ? 0.5 + 0.4 * sin(0.7 * (x + 2 * y) + c)
                                : 0.2 + 0.6 * x / w + 0.1 * (y > h / 2) + 0.05 * c;
                img->data[((size_t)c * h + y) * w + x] =
                    (float)(v + check_uniform(&r, -0.05f, 0.05f));
            }
    return img;
}

typedef struct eval_out {
    double loss, last[3];
    float *grad;
    size_t peak;
    int tiles;
} eval_out;

/* One evaluation at x, tiled when tile > 0. */
static void evaluate(nst_runtime *rt, nst_model *model, const nst_params *p, int tile,
                     const nst_image *content, const nst_image *style, const nst_image *x,
                     eval_out *out) {
    nst_objective *o = NULL;
    nst_tensor *tx = NULL, *grad = NULL;
    const nst_image *styles[1] = {style};
    size_t base = nst_mem_in_use(rt);
    rt->mem_peak = rt->mem_now;
    assert_int_equal(nst_objective_create(rt, model->weights, p, 0, &o), NST_OK);
    assert_int_equal(nst_objective_targets(o, content, styles, 1, NULL, NULL, tile), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, content->h, content->w, &tx), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, content->h, content->w, &grad), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, tx, x->data), NST_OK);
    nst_status st = nst_objective_evaluate(o, rt, tx, grad, &out->loss);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    out->last[0] = nst_objective_value(o, "content");
    out->last[1] = nst_objective_value(o, "style");
    out->last[2] = nst_objective_value(o, "tv");
    out->tiles = nst_objective_tiles(o);
    out->grad = malloc(grad->count * sizeof(float));
    assert_int_equal(nst_tensor_download(rt, grad, out->grad), NST_OK);
    out->peak = rt->mem_peak - base;
    nst_tensor_free(rt, tx);
    nst_tensor_free(rt, grad);
    nst_objective_free(rt, o);
    assert_int_equal(nst_mem_in_use(rt), base);
}

static nst_style_loss_kind style_loss = NST_STYLE_GRAM; /* of compare's runs */

static void compare(int w, int h, int tile, const char *content_layers, const char *style_layers,
                    int min_tiles) {
    nst_runtime *rt = check_runtime();
    nst_model *model = check_model(rt);
    nst_params p;
    nst_params_default(&p);
    p.content_layers = content_layers;
    p.style_layers = style_layers;
    p.style_loss = style_loss;
    p.size = w > h ? w : h;
    nst_image *content = pattern(w, h, 0), *style = pattern(w * 3 / 4, h, 1);
    nst_image *x = pattern(w, h, 1);
    eval_out a, b;
    evaluate(rt, model, &p, 0, content, style, x, &a);
    evaluate(rt, model, &p, tile, content, style, x, &b);
    assert_true(b.tiles >= min_tiles);
    double gmax = 0, dmax = 0;
    size_t n = (size_t)3 * w * h;
    for (size_t i = 0; i < n; i++) {
        gmax = fmax(gmax, fabs(a.grad[i]));
        dmax = fmax(dmax, fabs(a.grad[i] - b.grad[i]));
    }
    double lerr = fabs(a.loss - b.loss) / fabs(a.loss), gerr = dmax / gmax;
    printf("  %dx%d, tiles of %d (%d tiles), %s | %s: loss %.8g vs %.8g (rel %.2g), "
           "gradient rel %.2g; peak %.2f -> %.2f MiB\n",
           w, h, tile, b.tiles, content_layers, style_layers, a.loss, b.loss, lerr, gerr,
           a.peak / 1048576.0, b.peak / 1048576.0);
    assert_true(lerr <= 2 * CONV_TOL);
    assert_true(gerr <= 2 * CONV_TOL);
    for (int k = 0; k < 3; k++) assert_true(fabs(a.last[k] - b.last[k]) <= 2 * CONV_TOL * a.loss);
    assert_true(gmax > 0);
    free(a.grad);
    free(b.grad);
    nst_image_free(content);
    nst_image_free(style);
    nst_image_free(x);
    nst_model_free(model);
    nst_runtime_close(rt);
}

static void test_tiled_equals_untiled(void **state) {
    (void)state;
    compare(96, 80, 48, "relu2_2", "relu1_1,relu2_1,relu3_1", 9);
}

static void test_tiled_odd_sides(void **state) {
    (void)state;
    compare(90, 75, 48, "relu3_1,relu1_2", "relu1_1,relu3_1", 9);
}

static void test_tiled_deep(void **state) {
    (void)state;
    /* the default layers: relu5_1 needs an 80-pixel halo */
    compare(224, 224, 192, "relu4_2", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", 4);
}

/* The other style losses: their sums over the image (moments; the features
 * gathered for the histogram's sort) are the tiles' owned parts. */
static void test_tiled_w2(void **state) {
    (void)state;
    style_loss = NST_STYLE_W2;
    compare(96, 80, 48, "relu2_2", "relu1_1,relu2_1,relu3_1", 9);
    style_loss = NST_STYLE_GRAM;
}

static void test_tiled_hist(void **state) {
    (void)state;
    style_loss = NST_STYLE_HIST;
    compare(90, 75, 48, "relu3_1,relu1_2", "relu1_1,relu3_1", 9);
    style_loss = NST_STYLE_GRAM;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_geometry_vgg19),
        cmocka_unit_test(test_geometry_vgg16),
        cmocka_unit_test(test_tiling_partition),
        cmocka_unit_test(test_tiled_equals_untiled),
        cmocka_unit_test(test_tiled_odd_sides),
        cmocka_unit_test(test_tiled_deep),
        cmocka_unit_test(test_tiled_w2),
        cmocka_unit_test(test_tiled_hist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
