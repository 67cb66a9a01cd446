/* test_objective.c: the objective's interface (objective.h): its memory
 * figure against what its targets and an evaluation really allocate, whole,
 * tiled and with regions; the loss as the sum of the terms' parts; an
 * evaluation without targets and regions in tiles refused with a message. */
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

static nst_image *pattern(int w, int h, int kind) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img->data[((size_t)c * h + y) * w + x] =
                    (float)(kind == 2   ? (x < w / 2 ? 1.0 : 0.0)
                            : kind == 3 ? (x < w / 2 ? 0.0 : 1.0)
                            : kind      ? 0.5 + 0.4 * sin(0.7 * (x + 2 * y) + c)
                                        : 0.2 + 0.6 * x / w + 0.1 * (y > h / 2) + 0.05 * c);
    return img;
}

typedef struct setup {
    nst_runtime *rt;
    nst_model *model;
    nst_params p;
    nst_image *content, *styles[2], *masks[2];
    int nstyles, regions;
} setup;

static nst_style_loss_kind style_loss = NST_STYLE_GRAM; /* of setup_make's objectives */

static void setup_make(setup *s, int w, int h, const char *content_layers,
                       const char *style_layers, int regions) {
    memset(s, 0, sizeof *s);
    s->rt = check_runtime();
    s->model = check_model(s->rt);
    nst_params_default(&s->p);
    s->p.content_layers = content_layers;
    s->p.style_layers = style_layers;
    s->p.style_loss = style_loss;
    s->p.size = w > h ? w : h;
    s->content = pattern(w, h, 0);
    s->styles[0] = pattern(w * 3 / 4, h, 1);
    s->styles[1] = pattern(w, h * 3 / 4, 1);
    s->nstyles = regions ? 2 : 1;
    s->regions = regions;
    if (regions) {
        s->masks[0] = pattern(w, h, 2);
        s->masks[1] = pattern(w, h, 3);
    }
}

static void setup_free(setup *s) {
    nst_image_free(s->content);
    for (int k = 0; k < 2; k++) {
        nst_image_free(s->styles[k]);
        nst_image_free(s->masks[k]);
    }
    nst_model_free(s->model);
    nst_runtime_close(s->rt);
}

/* The figure for targets plus one evaluation (with the image and its
 * gradient, which the caller holds) against the runtime's measured peak:
 * within 1% + 64 KiB below, and above by at most the runtime's own scratch
 * (CLBlast's padding, reduction partials), as tests/test_plan.c holds the
 * plan. */
static void figure_vs_measured(int w, int h, int tile, const char *content_layers,
                               const char *style_layers, int regions, int want_tiles) {
    setup s;
    setup_make(&s, w, h, content_layers, style_layers, regions);
    nst_runtime *rt = s.rt;
    size_t base = nst_mem_in_use(rt), scratch0 = nst_runtime_scratch_bytes(rt);
    rt->mem_peak = rt->mem_now;
    nst_objective *o = NULL;
    assert_int_equal(nst_objective_create(rt, s.model->weights, &s.p, regions ? 2 : 0, &o),
                     NST_OK);
    int sw[2], sh[2], longest = nst_style_longest(&s.p, w, h);
    for (int k = 0; k < s.nstyles; k++)
        nst_image_fit_size(s.styles[k]->w, s.styles[k]->h, longest, &sw[k], &sh[k]);
    nst_objective_bytes m;
    assert_int_equal(nst_objective_memory(o, w, h, sw, sh, s.nstyles, tile, &m), 1);
    assert_int_equal(m.tiles_x * m.tiles_y, want_tiles);
    assert_int_equal(m.tiled, want_tiles > 1);

    nst_tensor *x = NULL, *grad = NULL;
    double loss;
    nst_status st = nst_objective_targets(o, s.content, (const nst_image *const *)s.styles,
                                          s.nstyles, NULL,
                                          regions ? (const nst_image *const *)s.masks : NULL,
                                          tile);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    assert_int_equal(nst_objective_tiles(o), want_tiles);
    assert_int_equal(nst_tensor_create(rt, 1, 3, h, w, &x), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, h, w, &grad), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, x, s.content->data), NST_OK);
    assert_int_equal(nst_objective_evaluate(o, rt, x, grad, &loss), NST_OK);

    uint64_t images = 2 * (uint64_t)3 * w * h * sizeof(float);
    uint64_t eval = m.network + m.content_targets + m.style_targets + m.scratch + m.windows +
                    images;
    double fig = (double)(eval > m.targets_peak ? eval : m.targets_peak);
    double measured = (double)(rt->mem_peak - base) - (double)scratch0;
    double scratch = (double)nst_runtime_scratch_bytes(rt) - (double)scratch0;
    double tol = 0.01 * fig + 65536;
    printf("  %dx%d, %d tile(s)%s: figure %.1f KiB (evaluation %.1f, targets %.1f), measured "
           "%.1f KiB (runtime scratch %.1f KiB)\n",
           w, h, want_tiles, regions ? ", regions" : "", fig / 1024, eval / 1024.0,
           m.targets_peak / 1024.0, measured / 1024, scratch / 1024);
    assert_true(measured >= fig - tol);
    assert_true(measured <= fig + scratch + tol);

    nst_tensor_free(rt, x);
    nst_tensor_free(rt, grad);
    nst_objective_free(rt, o);
    assert_int_equal(nst_mem_in_use(rt), base);
    setup_free(&s);
}

static void test_memory_whole(void **state) {
    (void)state;
    figure_vs_measured(64, 48, 0, "relu4_2", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", 0, 1);
}

static void test_memory_tiled(void **state) {
    (void)state;
    figure_vs_measured(96, 80, 48, "relu2_2", "relu1_1,relu2_1,relu3_1", 0, 9);
}

static void test_memory_regions(void **state) {
    (void)state;
    figure_vs_measured(64, 48, 0, "relu3_1", "relu1_1,relu2_1,relu3_1", 1, 1);
}

/* The W2 and histogram style terms' figures, whole, tiled and in regions. */
static void test_memory_style_losses(void **state) {
    (void)state;
    for (int k = NST_STYLE_W2; k <= NST_STYLE_HIST; k++) {
        style_loss = (nst_style_loss_kind)k;
        figure_vs_measured(64, 48, 0, "relu4_2", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", 0, 1);
        figure_vs_measured(96, 80, 48, "relu2_2", "relu1_1,relu2_1,relu3_1", 0, 9);
        figure_vs_measured(64, 48, 0, "relu3_1", "relu1_1,relu2_1,relu3_1", 1, 1);
    }
    style_loss = NST_STYLE_GRAM;
}

/* The loss is the sum of the terms' parts, each by its name. */
static void test_loss_is_sum_of_terms(void **state) {
    (void)state;
    setup s;
    setup_make(&s, 64, 48, "relu4_2", "relu1_1,relu2_1,relu3_1,relu4_1,relu5_1", 0);
    nst_objective *o = NULL;
    nst_tensor *x = NULL, *grad = NULL;
    double loss = 0;
    assert_int_equal(nst_objective_create(s.rt, s.model->weights, &s.p, 0, &o), NST_OK);
    assert_null(nst_objective_untileable(o));
    assert_int_equal(nst_objective_targets(o, s.content, (const nst_image *const *)s.styles, 1,
                                           NULL, NULL, 0),
                     NST_OK);
    assert_int_equal(nst_tensor_create(s.rt, 1, 3, 48, 64, &x), NST_OK);
    assert_int_equal(nst_tensor_create(s.rt, 1, 3, 48, 64, &grad), NST_OK);
    nst_image *img = pattern(64, 48, 1);
    assert_int_equal(nst_tensor_upload(s.rt, x, img->data), NST_OK);
    nst_image_free(img);
    assert_int_equal(nst_objective_evaluate(o, s.rt, x, grad, &loss), NST_OK);
    double c = nst_objective_value(o, "content"), st = nst_objective_value(o, "style"),
           tv = nst_objective_value(o, "tv");
    printf("  loss %.7g = content %.7g + style %.7g + tv %.7g\n", loss, c, st, tv);
    assert_true(c > 0 && st > 0 && tv > 0);
    assert_true(loss == c + st + tv);
    assert_true(nst_objective_value(o, "no such term") == 0);
    assert_int_equal(nst_objective_evaluations(o), 1);
    nst_tensor_free(s.rt, x);
    nst_tensor_free(s.rt, grad);
    nst_objective_free(s.rt, o);
    setup_free(&s);
}

/* Without targets for the size, an evaluation is refused, not run on
 * missing buffers; regions asked for in tiles are refused with the reason. */
static void test_refusals(void **state) {
    (void)state;
    setup s;
    setup_make(&s, 64, 48, "relu2_2", "relu1_1,relu2_1", 1);
    nst_objective *o = NULL;
    nst_tensor *x = NULL, *grad = NULL;
    double loss = 0;
    assert_int_equal(nst_objective_create(s.rt, s.model->weights, &s.p, 2, &o), NST_OK);
    assert_int_equal(nst_tensor_create(s.rt, 1, 3, 48, 64, &x), NST_OK);
    assert_int_equal(nst_tensor_create(s.rt, 1, 3, 48, 64, &grad), NST_OK);
    assert_int_equal(nst_tensor_upload(s.rt, x, s.content->data), NST_OK);
    assert_int_equal(nst_objective_evaluate(o, s.rt, x, grad, &loss), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(s.rt), "no targets"));
    assert_string_equal(nst_objective_untileable(o), "regions");
    assert_int_equal(nst_objective_targets(o, s.content, (const nst_image *const *)s.styles, 2,
                                           NULL, (const nst_image *const *)s.masks, 32),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(s.rt), "regions cannot be evaluated in tiles"));
    assert_int_equal(nst_objective_evaluate(o, s.rt, x, grad, &loss), NST_ERR_INVALID_ARG);
    /* the same objective then works on the whole image */
    assert_int_equal(nst_objective_targets(o, s.content, (const nst_image *const *)s.styles, 2,
                                           NULL, (const nst_image *const *)s.masks, 0),
                     NST_OK);
    assert_int_equal(nst_objective_evaluate(o, s.rt, x, grad, &loss), NST_OK);
    assert_true(isfinite(loss) && loss > 0);
    nst_tensor_free(s.rt, x);
    nst_tensor_free(s.rt, grad);
    nst_objective_free(s.rt, o);
    setup_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_whole),
        cmocka_unit_test(test_memory_tiled),
        cmocka_unit_test(test_memory_regions),
        cmocka_unit_test(test_memory_style_losses),
        cmocka_unit_test(test_loss_is_sum_of_terms),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
