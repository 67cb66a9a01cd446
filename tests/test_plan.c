/* test_plan.c: the memory plan against what a run really allocates (the
 * runtime's peak), whole and tiled; the refusal with the largest size that
 * fits; the L-BFGS history rule; sizes and tiles too small for the layers. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"

static nst_image *pattern(int w, int h, int kind) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img->data[((size_t)c * h + y) * w + x] =
                    (float)(kind ? 0.5 + 0.4 * sin(0.7 * (x + 2 * y) + c)
                                 : 0.2 + 0.6 * x / w + 0.1 * (y > h / 2) + 0.05 * c);
    return img;
}

/* Plans p, runs it for 2 iterations, and holds the plan's peak to the
 * measured one: the run's buffers at their peak lie between the plan's
 * figure and that figure plus the runtime's own scratch (CLBlast's padding
 * buffer, reduction partials), within 1% + 64 KiB. The network: VGG-19
 * unless plan_network says otherwise. */
static nst_network plan_network = NST_NETWORK_VGG19;

static void plan_vs_run(nst_params *p, int w, int h, int want_tiled) {
    nst_runtime *rt = check_runtime();
    nst_model *model = NULL;
    assert_int_equal(nst_model_generate_network(rt, plan_network, 3, 0.0625, &model), NST_OK);
    assert_int_equal(nst_model_network(model), plan_network);
    nst_image *content = pattern(w, h, 0), *style = pattern(w, h * 3 / 4, 1), *out = NULL;
    const nst_image *styles[1] = {style};
    int wh[2] = {style->w, style->h};
    nst_plan plan;
    assert_int_equal(nst_transfer_plan(rt, model, p, w, h, wh, 1, &plan), NST_OK);
    assert_true(plan.fits);
    assert_int_equal(plan.tiled, want_tiled);
    size_t base = nst_mem_in_use(rt);
    size_t scratch0 = nst_runtime_scratch_bytes(rt);
    rt->mem_peak = rt->mem_now;
    nst_status st = nst_transfer_run(rt, model, p, content, styles, 1, NULL, NULL, NULL, &out);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    double measured = (double)(rt->mem_peak - base) - (double)scratch0;
    double scratch = (double)(nst_runtime_scratch_bytes(rt)) - scratch0;
    double tol = 0.01 * plan.peak + 65536;
    printf("  %dx%d %s: plan %.1f KiB (evaluation %.1f, targets %.1f), measured %.1f KiB "
           "(runtime scratch %.1f KiB)\n",
           w, h, plan.tiled ? "tiled" : "whole", plan.peak / 1024.0, plan.eval_peak / 1024.0,
           plan.targets_peak / 1024.0, measured / 1024.0, scratch / 1024.0);
    assert_true(measured >= plan.peak - tol);
    assert_true(measured <= plan.peak + scratch + tol);
    nst_image_free(out);
    nst_image_free(content);
    nst_image_free(style);
    nst_model_free(model);
    nst_runtime_close(rt);
}

static void test_plan_whole(void **state) {
    (void)state;
    nst_params p;
    nst_params_default(&p);
    p.size = 64;
    p.iterations = 2;
    p.lbfgs_history = 5;
    plan_vs_run(&p, 64, 48, 0);
}

static void test_plan_tiled(void **state) {
    (void)state;
    nst_params p;
    nst_params_default(&p);
    p.size = 96;
    p.iterations = 2;
    p.lbfgs_history = 5;
    p.content_layers = "relu2_2";
    p.style_layers = "relu1_1,relu2_1,relu3_1";
    p.tile = 48;
    plan_vs_run(&p, 96, 80, 1);
}

/* VGG-16: its layers' channels and strides (relu5_1 is its features.25,
 * VGG-19's 29), whole and in tiles of its own halo. */
static void test_plan_vgg16(void **state) {
    (void)state;
    nst_params p;
    nst_params_default(&p);
    plan_network = NST_NETWORK_VGG16;
    p.size = 64;
    p.iterations = 2;
    p.lbfgs_history = 5;
    p.style_layers = "relu1_1,relu3_3,relu5_1,relu5_3";
    plan_vs_run(&p, 64, 48, 0);
    p.size = 96;
    p.content_layers = "relu2_2";
    p.style_layers = "relu1_1,relu2_1,relu3_3";
    p.tile = 48;
    plan_vs_run(&p, 96, 80, 1);
    plan_network = NST_NETWORK_VGG19;
}

static void test_plan_adam_average(void **state) {
    (void)state;
    nst_params p;
    nst_params_default(&p);
    p.size = 80;
    p.iterations = 2;
    p.optimizer = NST_OPTIMIZER_ADAM;
    p.average_decay = 0.9;
    p.content_layers = "relu3_1";
    p.style_layers = "relu1_1,relu3_1";
    p.tile = 44;
    plan_vs_run(&p, 80, 72, 1);
}

/* The budget whose usable part (less the reserve: 5%, at least 64 MiB, at
 * most half) is `usable` bytes. */
static uint64_t budget_for(uint64_t usable) {
    const uint64_t floor_ = 64u << 20;
    if (2 * usable <= 2 * floor_) return 2 * usable;
    if (usable + floor_ <= 20 * floor_) return usable + floor_;
    return (uint64_t)ceil(usable / 0.95);
}

/* A budget below what the whole image needs gives tiles; below what any
 * tiling needs, a refusal naming the largest size that fits, and the run
 * refuses with the same words. */
static void test_plan_budget(void **state) {
    (void)state;
    nst_runtime *rt = check_runtime();
    nst_model *model = check_model(rt);
    nst_params p;
    nst_params_default(&p);
    p.size = 256;
    p.iterations = 1;
    p.content_layers = "relu3_1";
    p.style_layers = "relu1_1,relu2_1,relu3_1";
    p.optimizer = NST_OPTIMIZER_ADAM; /* no history rule here */
    nst_plan whole, plan;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 256, 192, NULL, 1, &whole), NST_OK);
    assert_true(whole.fits && !whole.tiled);
    /* just under the whole image: tiles, each window smaller than the image */
    p.max_memory = budget_for(whole.peak - whole.activations / 4);
    assert_int_equal(nst_transfer_plan(rt, model, &p, 256, 192, NULL, 1, &plan), NST_OK);
    assert_true(plan.fits);
    assert_true(plan.tiled);
    assert_true(plan.peak + plan.reserve <= plan.budget);
    assert_true(plan.tile_w < 256);
    /* far too little: the largest size that fits, and the run refuses */
    p.max_memory = budget_for(whole.peak / 12);
    assert_int_equal(nst_transfer_plan(rt, model, &p, 256, 192, NULL, 1, &plan), NST_OK);
    printf("  refused: %s\n", plan.note);
    assert_false(plan.fits);
    assert_true(plan.max_size > 0 && plan.max_size < 256);
    assert_non_null(strstr(plan.note, "largest --size that fits"));
    nst_params q = p;
    q.size = plan.max_size;
    nst_plan ok;
    assert_int_equal(nst_transfer_plan(rt, model, &q, 256, 192, NULL, 1, &ok), NST_OK);
    assert_true(ok.fits);
    q.size = plan.max_size + 1;
    assert_int_equal(nst_transfer_plan(rt, model, &q, 256, 192, NULL, 1, &ok), NST_OK);
    assert_false(ok.fits);
    nst_image *content = pattern(256, 192, 0), *style = pattern(64, 64, 1), *out = NULL;
    const nst_image *styles[1] = {style};
    assert_int_equal(nst_transfer_run(rt, model, &p, content, styles, 1, NULL, NULL, NULL, &out),
                     NST_ERR_TOO_LARGE);
    assert_non_null(strstr(nst_last_error(rt), "largest --size that fits"));
    assert_null(out);
    nst_image_free(content);
    nst_image_free(style);
    nst_model_free(model);
    nst_runtime_close(rt);
}

/* L-BFGS keeps at most the history that fits in 40% of the budget. */
static void test_plan_history(void **state) {
    (void)state;
    nst_runtime *rt = check_runtime();
    nst_model *model = check_model(rt);
    nst_params p;
    nst_params_default(&p);
    p.size = 1024;
    p.max_memory = 256u << 20;
    nst_plan plan;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 1024, 768, NULL, 1, &plan), NST_OK);
    double pair = 2.0 * 3 * 1024 * 768 * 4;
    assert_true(plan.history_reduced);
    assert_int_equal(plan.lbfgs_history, (int)floor(0.4 * plan.budget / pair));
    assert_true(plan.lbfgs_history < 100);
    assert_non_null(strstr(plan.note, "L-BFGS history cut from 100"));
    p.optimizer = NST_OPTIMIZER_ADAM;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 1024, 768, NULL, 1, &plan), NST_OK);
    assert_false(plan.history_reduced);
    nst_model_free(model);
    nst_runtime_close(rt);
}

/* The smallest size the layers accept: each pooling halves the image
 * (rounding down) and the deepest layer needs one position, so a side needs
 * 2^pools pixels: 16 down to relu5_1 (4 poolings), 32 down to pool5. A 4:3
 * image at --size s is s x floor(0.75 s + 0.5): the short side reaches 16
 * at s >= 15.5 / 0.75, s = 21, and 32 at s >= 31.5 / 0.75 = 42. Below, the
 * plan refuses and names that size; at it, the run works. */
static void test_plan_small_size(void **state) {
    (void)state;
    nst_runtime *rt = check_runtime();
    nst_model *model = check_model(rt);
    nst_params p;
    nst_params_default(&p);
    p.iterations = 1;
    nst_plan plan;
    for (int size = 16; size <= 20; size++) {
        p.size = size;
        assert_int_equal(nst_transfer_plan(rt, model, &p, 48, 36, NULL, 1, &plan),
                         NST_ERR_INVALID_ARG);
        assert_non_null(strstr(nst_last_error(rt), "at least 16 pixels a side"));
        assert_non_null(strstr(nst_last_error(rt), "the smallest --size that works is 21"));
    }
    printf("  refused: %s\n", nst_last_error(rt));
    p.size = 21;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 48, 36, NULL, 1, &plan), NST_OK);
    assert_true(plan.fits);
    assert_int_equal(plan.width, 21);
    assert_int_equal(plan.height, 16);
    nst_image *content = pattern(48, 36, 0), *style = pattern(40, 40, 1), *out = NULL;
    const nst_image *styles[1] = {style};
    assert_int_equal(nst_transfer_run(rt, model, &p, content, styles, 1, NULL, NULL, NULL, &out),
                     NST_OK);
    assert_int_equal(out->w, 21);
    assert_int_equal(out->h, 16);
    nst_image_free(out);
    out = NULL;
    p.size = 20; /* the run refuses with the plan's words */
    assert_int_equal(nst_transfer_run(rt, model, &p, content, styles, 1, NULL, NULL, NULL, &out),
                     NST_ERR_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(nst_last_error(rt), "the smallest --size that works is 21"));
    /* down to pool5: 5 poolings */
    p.style_layers = "relu1_1,pool5";
    p.size = 41;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 48, 36, NULL, 1, &plan),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "at least 32 pixels a side"));
    assert_non_null(strstr(nst_last_error(rt), "the smallest --size that works is 42"));
    p.size = 42;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 48, 36, NULL, 1, &plan), NST_OK);
    /* one pooling (relu2_1): 2 pixels, so every accepted size plans */
    p.content_layers = "relu1_2";
    p.style_layers = "relu1_1,relu2_1";
    p.size = 16;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 48, 36, NULL, 1, &plan), NST_OK);
    assert_true(plan.fits);
    assert_int_equal(plan.height, 12);
    /* a style image too thin at the style scale: 40x4 at --size 32 is 32x3 */
    p.content_layers = "relu4_2";
    p.style_layers = "relu1_1,relu5_1";
    p.size = 32;
    int thin[2] = {40, 4};
    assert_int_equal(nst_transfer_plan(rt, model, &p, 48, 36, thin, 1, &plan),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "style image 1 is 32x3"));
    /* the first of several scales is the smallest: 3 scales at 64 start at 32 */
    p.scales = 3;
    p.size = 64;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 48, 16, NULL, 1, &plan),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "first of 3 scales is 32"));
    nst_image_free(content);
    nst_image_free(style);
    nst_model_free(model);
    nst_runtime_close(rt);
}

/* The minimum tile the message states from the layers' receptive field:
 * one pixel less is refused with it, the minimum itself plans tiles and
 * runs. A tile no smaller than the image cuts nothing and is accepted. */
static void test_plan_small_tile(void **state) {
    (void)state;
    nst_runtime *rt = check_runtime();
    nst_model *model = check_model(rt);
    nst_params p;
    nst_params_default(&p);
    p.iterations = 1;
    p.size = 256;
    nst_plan plan;
    int tiles[] = {16, 64, 128};
    for (size_t i = 0; i < sizeof tiles / sizeof tiles[0]; i++) {
        p.tile = tiles[i];
        assert_int_equal(nst_transfer_plan(rt, model, &p, 256, 192, NULL, 1, &plan),
                         NST_ERR_INVALID_ARG);
        assert_non_null(strstr(nst_last_error(rt), "a tile needs at least"));
    }
    printf("  refused: %s\n", nst_last_error(rt));
    int least = 0;
    const char *at = strstr(nst_last_error(rt), "at least ");
    assert_non_null(at);
    assert_int_equal(sscanf(at, "at least %d", &least), 1);
    assert_true(least > 16 && least < 256);
    p.tile = least - 1;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 256, 192, NULL, 1, &plan),
                     NST_ERR_INVALID_ARG);
    p.tile = least;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 256, 192, NULL, 1, &plan), NST_OK);
    assert_true(plan.fits && plan.tiled);
    assert_int_equal(plan.width, 256);
    assert_true(plan.tile_w <= least && plan.tile_h <= least);
    assert_true(plan.lbfgs_history == p.lbfgs_history);
    nst_image *content = pattern(256, 192, 0), *style = pattern(64, 64, 1), *out = NULL;
    const nst_image *styles[1] = {style};
    assert_int_equal(nst_transfer_run(rt, model, &p, content, styles, 1, NULL, NULL, NULL, &out),
                     NST_OK);
    assert_int_equal(out->w, 256);
    nst_image_free(out);
    /* tiles larger than every image: nothing is cut */
    p.size = 64;
    p.tile = 64;
    assert_int_equal(nst_transfer_plan(rt, model, &p, 256, 192, NULL, 1, &plan), NST_OK);
    assert_true(plan.fits && !plan.tiled);
    nst_image_free(content);
    nst_image_free(style);
    nst_model_free(model);
    nst_runtime_close(rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_whole),
        cmocka_unit_test(test_plan_tiled),
        cmocka_unit_test(test_plan_vgg16),
        cmocka_unit_test(test_plan_adam_average),
        cmocka_unit_test(test_plan_budget),
        cmocka_unit_test(test_plan_history),
        cmocka_unit_test(test_plan_small_size),
        cmocka_unit_test(test_plan_small_tile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
