/* test_temporal.c: the temporal term of video style transfer: the device
 * loss against the plain-C double reference (value and gradient), the
 * reference against central finite differences, the term inside the
 * objective (its value and gradient alone, and tiled = untiled with the
 * other terms), and its parameters. */
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
#include "ref_temporal.h"
#include "temporal.h"

#define rt check_rt

/* Tolerances. The value is a sum of D non-negative float products c*d*d
 * (3 roundings each, relative 2^-24 apiece) by a tree of depth log2(D) <= 20
 * (one rounding per level) and a division: at most (3 + 20 + 1) * 2^-24 =
 * 1.4e-6 relative; 1e-5 leaves room for the reduction's partials. Each
 * gradient entry is dx0 + (2w/D) c d, 5 roundings of values of magnitude
 * <= 1 + 2w/D: 1e-6 absolute with 1e-5 relative. */
#define VALUE_RTOL 1e-5
#define GRAD_ATOL 1e-6
#define GRAD_RTOL 1e-5

typedef struct ctx {
    const double *t, *m;
    int c, h, w;
} ctx;

static double fn(void *p, const double *x) {
    const ctx *c = p;
    return nst_ref_temporal(x, c->t, c->m, c->c, c->h, c->w, NULL);
}

static void test_loss_against_reference(void **state) {
    (void)state;
    static const int shapes[][3] = {{3, 7, 5}, {3, 1, 1}, {3, 33, 29}, {1, 4, 9}};
    check_rng r;
    check_rng_seed(&r, 21);
    cl_mem values = NULL, mask = NULL;
    assert_int_equal(nst_buffer_create(rt, 3 * sizeof(float), &values), NST_OK);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int c = shapes[s][0], h = shapes[s][1], w = shapes[s][2];
        size_t hw = (size_t)h * w, n = (size_t)c * hw;
        float *x = check_random(&r, n, 0, 1), *t = check_random(&r, n, 0, 1);
        float *m = check_random(&r, hw, 0, 1), *dx0 = check_random(&r, n, -1, 1);
        for (size_t i = 0; i < hw; i += 3) m[i] = 0; /* occluded pixels */
        double *xd = check_to_double(x, n), *td = check_to_double(t, n),
               *md = check_to_double(m, hw), *grad = malloc(n * sizeof *grad);
        double want = nst_ref_temporal(xd, td, md, c, h, w, grad);
        ctx cx = {td, md, c, h, w};
        check_gradient_fd("temporal", fn, &cx, xd, n, grad);

        nst_tensor *tx = check_tensor(rt, 1, c, h, w, x), *tt = check_tensor(rt, 1, c, h, w, t),
                   *tdx = check_tensor(rt, 1, c, h, w, dx0);
        assert_int_equal(nst_buffer_create(rt, hw * sizeof(float), &mask), NST_OK);
        assert_int_equal(nst_write_floats(rt, mask, 0, hw, m), NST_OK);
        const float weight = 3.0f;
        assert_int_equal(nst_temporal_loss(rt, tx, tt, mask, weight, tdx, values, 2), NST_OK);
        float got;
        assert_int_equal(nst_read_floats(rt, values, 2, 1, &got), NST_OK);
        assert_true(check_close("temporal value", &got, &want, 1, 0, VALUE_RTOL));
        float *gdx = check_download(rt, tdx);
        for (size_t i = 0; i < n; i++) grad[i] = dx0[i] + weight * grad[i];
        assert_true(check_close("temporal grad", gdx, grad, n, GRAD_ATOL, GRAD_RTOL));
        /* without a gradient: the value only, dx untouched */
        assert_int_equal(nst_temporal_loss(rt, tx, tt, mask, weight, NULL, values, 0), NST_OK);
        assert_int_equal(nst_read_floats(rt, values, 0, 1, &got), NST_OK);
        assert_true(check_close("temporal value (no gradient)", &got, &want, 1, 0, VALUE_RTOL));

        nst_buffer_free(rt, mask);
        nst_tensor_free(rt, tx);
        nst_tensor_free(rt, tt);
        nst_tensor_free(rt, tdx);
        free(x), free(t), free(m), free(dx0), free(xd), free(td), free(md), free(grad),
            free(gdx);
    }
    nst_buffer_free(rt, values);
}

/* A mismatched target is refused, not read out of bounds. */
static void test_loss_refuses_mismatch(void **state) {
    (void)state;
    nst_tensor *a = check_tensor(rt, 1, 3, 4, 4, NULL), *b = check_tensor(rt, 1, 3, 4, 5, NULL);
    cl_mem values = NULL, mask = NULL;
    assert_int_equal(nst_buffer_create(rt, sizeof(float), &values), NST_OK);
    assert_int_equal(nst_buffer_create(rt, 16 * sizeof(float), &mask), NST_OK);
    assert_int_equal(nst_temporal_loss(rt, a, b, mask, 1, NULL, values, 0), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(nst_last_error(rt), "temporal"));
    nst_buffer_free(rt, values);
    nst_buffer_free(rt, mask);
    nst_tensor_free(rt, a);
    nst_tensor_free(rt, b);
}

static nst_image *image(int w, int h, uint64_t seed) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    check_rng r;
    check_rng_seed(&r, seed);
    check_fill(&r, img->data, (size_t)3 * w * h, 0, 1);
    return img;
}

/* One evaluation of the objective at x; grad (3*w*h floats) and the loss. */
static double evaluate(nst_model *model, const nst_params *p, int tile, const nst_image *content,
                       const nst_image *style, const nst_image *x, float *grad, double *temporal) {
    nst_objective *o = NULL;
    nst_tensor *tx = NULL, *tg = NULL;
    const nst_image *styles[1] = {style};
    double loss = 0;
    assert_int_equal(nst_objective_create(rt, model->weights, p, 0, &o), NST_OK);
    assert_int_equal(nst_objective_targets(o, content, styles, 1, NULL, NULL, tile), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, x->h, x->w, &tx), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, x->h, x->w, &tg), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, tx, x->data), NST_OK);
    nst_status st = nst_objective_evaluate(o, rt, tx, tg, &loss);
    if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
    assert_int_equal(st, NST_OK);
    if (tile > 0) assert_true(nst_objective_tiles(o) > 1);
    *temporal = nst_objective_value(o, "temporal");
    assert_int_equal(nst_tensor_download(rt, tg, grad), NST_OK);
    nst_tensor_free(rt, tx);
    nst_tensor_free(rt, tg);
    nst_objective_free(rt, o);
    return loss;
}

/* The term alone in the objective (other weights 0) is the reference, the
 * mask and target resized from other sizes; and adding it to the others
 * adds exactly its value and gradient. */
static void test_objective_term(void **state) {
    (void)state;
    const int w = 48, h = 40;
    nst_model *model = check_model(rt);
    nst_image *content = image(w, h, 1), *style = image(40, 40, 2), *x = image(w, h, 3);
    nst_image *target = image(w, h, 4), *mask = image(w, h, 5);
    size_t n = (size_t)3 * w * h;
    nst_params p;
    nst_params_default(&p);
    p.size = w;
    p.content_layers = "relu2_1";
    p.style_layers = "relu1_1,relu2_1";
    p.temporal_weight = 7;
    p.temporal_target = target;
    p.temporal_mask = mask;
    nst_params alone = p;
    alone.content_weight = alone.style_weight = alone.tv_weight = 0;
    float *g = malloc(n * sizeof *g), *gall = malloc(n * sizeof *gall),
          *gnone = malloc(n * sizeof *gnone);
    double tv;
    double loss = evaluate(model, &alone, 0, content, style, x, g, &tv);
    double *xd = check_to_double(x->data, n), *td = check_to_double(target->data, n),
           *md = check_to_double(mask->data, (size_t)w * h), *ref = malloc(n * sizeof *ref);
    double want = 7 * nst_ref_temporal(xd, td, md, 3, h, w, ref);
    for (size_t i = 0; i < n; i++) ref[i] *= 7;
    assert_true(check_close("objective temporal loss", (float[]){(float)loss}, &want, 1, 0,
                            VALUE_RTOL));
    assert_true(fabs(tv - want) <= VALUE_RTOL * want);
    assert_true(check_close("objective temporal grad", g, ref, n, GRAD_ATOL, GRAD_RTOL));

    /* with the other terms: the sum of both */
    nst_params none = p;
    none.temporal_weight = 0;
    double l_all = evaluate(model, &p, 0, content, style, x, gall, &tv);
    double t0;
    double l_none = evaluate(model, &none, 0, content, style, x, gnone, &t0);
    assert_true(t0 == 0);
    assert_true(fabs(l_all - l_none - want) <= 1e-5 * l_all);
    for (size_t i = 0; i < n; i++) ref[i] += gnone[i];
    assert_true(check_close("temporal + others", gall, ref, n, GRAD_ATOL, 1e-4));
    free(g), free(gall), free(gnone), free(xd), free(td), free(md), free(ref);
    nst_image_free(content), nst_image_free(style), nst_image_free(x), nst_image_free(target),
        nst_image_free(mask);
    nst_model_free(model);
}

/* Tiled = untiled: the term reads the image itself, so its value and its
 * part of the gradient do not depend on the strategy; the network's part
 * differs by the convolutions' rounding (test_tiled.c), which the temporal
 * term alone (other weights 0) leaves out: then the two are equal. */
static void test_tiled_equals_untiled(void **state) {
    (void)state;
    const int w = 96, h = 80;
    nst_model *model = check_model(rt);
    nst_image *content = image(w, h, 1), *style = image(64, 64, 2), *x = image(w, h, 3);
    nst_image *target = image(w / 2, h / 2, 4), *mask = image(w / 2, h / 2, 5);
    size_t n = (size_t)3 * w * h;
    nst_params p;
    nst_params_default(&p);
    p.size = w;
    p.content_layers = "relu2_1";
    p.style_layers = "relu1_1,relu2_1";
    p.content_weight = p.style_weight = p.tv_weight = 0;
    p.temporal_weight = 2;
    p.temporal_target = target;
    p.temporal_mask = mask;
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b);
    double ta, tb;
    double la = evaluate(model, &p, 0, content, style, x, a, &ta);
    double lb = evaluate(model, &p, 32, content, style, x, b, &tb);
    assert_true(la == lb && ta == tb && la > 0);
    assert_true(check_close_f("tiled temporal grad", b, a, n, 0, 0));
    free(a), free(b);
    nst_image_free(content), nst_image_free(style), nst_image_free(x), nst_image_free(target),
        nst_image_free(mask);
    nst_model_free(model);
}

static void test_params(void **state) {
    (void)state;
    nst_params p;
    nst_params_default(&p);
    nst_msg m = {{0}};
    assert_true(p.temporal_weight == 0 && !p.temporal_target && !p.temporal_mask);
    p.temporal_weight = -1;
    assert_int_equal(nst_params_check(&p, 1, NULL, &m), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(m.text, "temporal weight"));
    p.temporal_weight = NAN;
    assert_int_equal(nst_params_check(&p, 1, NULL, &m), NST_ERR_INVALID_ARG);
    p.temporal_weight = 1;
    nst_image empty = {0, 0, NULL};
    p.temporal_target = &empty;
    assert_int_equal(nst_params_check(&p, 1, NULL, &m), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(m.text, "temporal_target"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_against_reference), cmocka_unit_test(test_loss_refuses_mismatch),
        cmocka_unit_test(test_objective_term),         cmocka_unit_test(test_tiled_equals_untiled),
        cmocka_unit_test(test_params),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
