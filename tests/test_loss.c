/* test_loss.c: the content, Gram/style and TV losses and the reductions
 * against the double references of ref_loss.c, the references against
 * central finite differences, a blend of two styles, and determinism. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "loss.h"
#include "reference.h"

/* One runtime for the whole suite: CLBlast compiles its kernels per context. */
#define g_rt check_rt /* the group fixture's runtime (check.h) */

typedef struct shape {
    int c, h, w;
} shape;
static const shape SHAPES[] = {{3, 7, 5}, {5, 1, 1}, {7, 13, 11}};
#define NSHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static void test_reductions(void **state) {
    nst_runtime *rt = g_rt;
    static const size_t sizes[] = {1, 7, 1000, 100003};
    check_rng r;
    check_rng_seed(&r, 11);
    cl_mem out = NULL;
    assert_int_equal(nst_buffer_create(rt, 4 * sizeof(float), &out), NST_OK);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        size_t n = sizes[k];
        float *x = check_random(&r, n, -1, 1);
        cl_mem b = NULL;
        assert_int_equal(nst_buffer_create(rt, n * sizeof(float), &b), NST_OK);
        assert_int_equal(nst_write_floats(rt, b, 0, n, x), NST_OK);
        assert_int_equal(nst_sum_squares(rt, b, n, out, 1), NST_OK);
        assert_int_equal(nst_sum_abs(rt, b, n, out, 3), NST_OK);
        float got[4];
        assert_int_equal(nst_read_floats(rt, out, 0, 4, got), NST_OK);
        double want2 = 0, want1 = 0;
        for (size_t i = 0; i < n; i++) {
            want2 += (double)x[i] * x[i];
            want1 += fabs((double)x[i]);
        }
        assert_true(check_close("sum_squares", &got[1], &want2, 1, 0, 1e-5));
        assert_true(check_close("sum_abs", &got[3], &want1, 1, 0, 1e-5));
        nst_buffer_free(rt, b);
        free(x);
    }
    nst_buffer_free(rt, out);
}

static void test_gram_and_blend(void **state) {
    nst_runtime *rt = g_rt;
    check_rng r;
    check_rng_seed(&r, 12);
    for (int s = 0; s < NSHAPES; s++) {
        int c = SHAPES[s].c, m = SHAPES[s].h * SHAPES[s].w;
        size_t n = (size_t)c * m, cc = (size_t)c * c;
        float *f1 = check_random(&r, n, 0, 2), *f2 = check_random(&r, n, 0, 2);
        /* a second style image of another size: Grams are C x C whatever M */
        int h2 = SHAPES[s].h + 2, w2 = SHAPES[s].w + 1;
        size_t n2 = (size_t)c * h2 * w2;
        float *f3 = check_random(&r, n2, 0, 2);
        nst_tensor *t1 = check_tensor(rt, 1, c, SHAPES[s].h, SHAPES[s].w, f1);
        nst_tensor *t3 = check_tensor(rt, 1, c, h2, w2, f3);
        cl_mem g = NULL;
        assert_int_equal(nst_buffer_create(rt, cc * sizeof(float), &g), NST_OK);
        float *got = malloc(cc * sizeof *got);
        double *want = malloc(cc * sizeof *want), *want3 = malloc(cc * sizeof *want3);
        double *d1 = check_to_double(f1, n), *d3 = check_to_double(f3, n2);
        nst_ref_gram(d1, c, m, want);
        nst_ref_gram(d3, c, h2 * w2, want3);

        assert_int_equal(nst_gram(rt, g, t1), NST_OK);
        assert_int_equal(nst_read_floats(rt, g, 0, cc, got), NST_OK);
        assert_true(check_close("gram", got, want, cc, 1e-6, 1e-5));

        /* blend 0.3 G(s1) + 0.7 G(s3), starting from a zeroed buffer */
        float *zero = calloc(cc, sizeof *zero);
        assert_int_equal(nst_write_floats(rt, g, 0, cc, zero), NST_OK);
        assert_int_equal(nst_gram_accumulate(rt, g, t1, 0.3f), NST_OK);
        assert_int_equal(nst_gram_accumulate(rt, g, t3, 0.7f), NST_OK);
        assert_int_equal(nst_read_floats(rt, g, 0, cc, got), NST_OK);
        for (size_t i = 0; i < cc; i++) want[i] = 0.3 * want[i] + 0.7 * want3[i];
        assert_true(check_close("gram blend", got, want, cc, 1e-6, 1e-5));

        free(zero);
        free(got);
        free(want);
        free(want3);
        free(d1);
        free(d3);
        free(f1);
        free(f2);
        free(f3);
        nst_buffer_free(rt, g);
        nst_tensor_free(rt, t1);
        nst_tensor_free(rt, t3);
    }
}

/* Long Gram products are split along M into a strided-batched GEMM and a
 * sum: check that path (with and without a remainder chunk) and the style
 * loss on top of it against the reference. */
static void test_gram_split(void **state) {
    nst_runtime *rt = g_rt;
    check_rng r;
    check_rng_seed(&r, 77);
    const int shapes[3][3] = {{5, 71, 73}, {7, 64, 64}, {3, 130, 257}};
    for (int s = 0; s < 3; s++) {
        int c = shapes[s][0], h = shapes[s][1], w = shapes[s][2], m = h * w;
        size_t n = (size_t)c * m, cc = (size_t)c * c;
        float *f = check_random(&r, n, 0, 2), *a = check_random(&r, cc, 0, 1);
        nst_tensor *t = check_tensor(rt, 1, c, h, w, f);
        cl_mem g = NULL, tgt = NULL, vals = NULL;
        assert_int_equal(nst_buffer_create(rt, cc * sizeof(float), &g), NST_OK);
        assert_int_equal(nst_buffer_create(rt, cc * sizeof(float), &tgt), NST_OK);
        assert_int_equal(nst_buffer_create(rt, sizeof(float), &vals), NST_OK);
        float *got = malloc(cc * sizeof *got);
        double *want = malloc(cc * sizeof *want), *d = check_to_double(f, n), *ad = check_to_double(a, cc);
        nst_ref_gram(d, c, m, want);
        assert_int_equal(nst_gram(rt, g, t), NST_OK);
        assert_int_equal(nst_read_floats(rt, g, 0, cc, got), NST_OK);
        assert_true(check_close("split gram", got, want, cc, 1e-6, 1e-5));
        /* accumulate on top: g = G + 0.5 G */
        assert_int_equal(nst_gram_accumulate(rt, g, t, 0.5f), NST_OK);
        assert_int_equal(nst_read_floats(rt, g, 0, cc, got), NST_OK);
        for (size_t i = 0; i < cc; i++) want[i] *= 1.5;
        assert_true(check_close("split gram accumulate", got, want, cc, 1e-6, 1e-5));
        /* the style loss value through the split Gram */
        double a2 = 0;
        for (size_t i = 0; i < cc; i++) a2 += ad[i] * ad[i];
        double vwant = nst_ref_style(d, c, m, ad, NULL);
        assert_int_equal(nst_write_floats(rt, tgt, 0, cc, a), NST_OK);
        assert_int_equal(nst_style_loss(rt, t, g, tgt, (float)a2, 1.0f, NULL, vals, 0), NST_OK);
        float v = 0;
        assert_int_equal(nst_read_floats(rt, vals, 0, 1, &v), NST_OK);
        assert_true(check_close("split style value", &v, &vwant, 1, 1e-7, 1e-4));
        free(got);
        free(want);
        free(d);
        free(ad);
        free(f);
        free(a);
        nst_buffer_free(rt, g);
        nst_buffer_free(rt, tgt);
        nst_buffer_free(rt, vals);
        nst_tensor_free(rt, t);
    }
}

/* ---- content ----------------------------------------------------------- */

typedef struct content_ctx {
    const double *p;
    size_t n;
} content_ctx;

static double content_fn(void *ctx, const double *x) {
    content_ctx *c = ctx;
    return nst_ref_content(x, c->p, c->n, NULL);
}

static void test_content(void **state) {
    nst_runtime *rt = g_rt;
    check_rng r;
    check_rng_seed(&r, 13);
    cl_mem values = NULL;
    assert_int_equal(nst_buffer_create(rt, 4 * sizeof(float), &values), NST_OK);
    for (int s = 0; s < NSHAPES; s++) {
        int c = SHAPES[s].c, h = SHAPES[s].h, w = SHAPES[s].w;
        size_t n = (size_t)c * h * w;
        float *f = check_random(&r, n, 0, 2), *p = check_random(&r, n, 0, 2);
        float *df0 = check_random(&r, n, -1, 1);
        double *fd = check_to_double(f, n), *pd = check_to_double(p, n);
        double *grad = malloc(n * sizeof *grad);
        double want = nst_ref_content(fd, pd, n, grad);
        content_ctx ctx = {pd, n};
        check_gradient_fd("content", content_fn, &ctx, fd, n, grad);

        nst_tensor *tf = check_tensor(rt, 1, c, h, w, f), *tp = check_tensor(rt, 1, c, h, w, p);
        nst_tensor *tdf = check_tensor(rt, 1, c, h, w, df0);
        /* ||P||^2 on the device, read back once as a caller would */
        float pn;
        assert_int_equal(nst_sum_squares(rt, tp->buf, n, values, 0), NST_OK);
        assert_int_equal(nst_read_floats(rt, values, 0, 1, &pn), NST_OK);
        const float weight = 2.5f;
        assert_int_equal(nst_content_loss(rt, tf, tp, pn, weight, tdf, values, 2), NST_OK);
        float got;
        assert_int_equal(nst_read_floats(rt, values, 2, 1, &got), NST_OK);
        assert_true(check_close("content value", &got, &want, 1, 1e-7, 1e-5));
        float *gdf = malloc(n * sizeof *gdf);
        assert_int_equal(nst_tensor_download(rt, tdf, gdf), NST_OK);
        for (size_t i = 0; i < n; i++) grad[i] = df0[i] + weight * grad[i];
        assert_true(check_close("content grad", gdf, grad, n, 1e-6, 1e-5));
        /* value only: the gradient tensor is optional */
        assert_int_equal(nst_content_loss(rt, tf, tp, pn, weight, NULL, values, 3), NST_OK);
        assert_int_equal(nst_read_floats(rt, values, 3, 1, &got), NST_OK);
        assert_true(check_close("content value only", &got, &want, 1, 1e-7, 1e-5));

        nst_tensor_free(rt, tf);
        nst_tensor_free(rt, tp);
        nst_tensor_free(rt, tdf);
        free(f);
        free(p);
        free(df0);
        free(fd);
        free(pd);
        free(grad);
        free(gdf);
    }
    nst_buffer_free(rt, values);
}

/* ---- style ------------------------------------------------------------- */

typedef struct style_ctx {
    const double *a;
    int c, m;
} style_ctx;

static double style_fn(void *ctx, const double *x) {
    style_ctx *s = ctx;
    return nst_ref_style(x, s->c, s->m, s->a, NULL);
}

static void test_style(void **state) {
    nst_runtime *rt = g_rt;
    check_rng r;
    check_rng_seed(&r, 14);
    cl_mem values = NULL;
    assert_int_equal(nst_buffer_create(rt, 4 * sizeof(float), &values), NST_OK);
    for (int s = 0; s < NSHAPES; s++) {
        int c = SHAPES[s].c, h = SHAPES[s].h, w = SHAPES[s].w, m = h * w;
        size_t n = (size_t)c * m, cc = (size_t)c * c;
        float *f = check_random(&r, n, 0, 2), *s1 = check_random(&r, n, 0, 2);
        float *s2 = check_random(&r, n, 0, 1), *df0 = check_random(&r, n, -1, 1);
        /* target: the blend 0.6 G(s1) + 0.4 G(s2) */
        double *s1d = check_to_double(s1, n), *s2d = check_to_double(s2, n);
        double *a = malloc(cc * sizeof *a), *a2 = malloc(cc * sizeof *a2);
        nst_ref_gram(s1d, c, m, a);
        nst_ref_gram(s2d, c, m, a2);
        for (size_t i = 0; i < cc; i++) a[i] = 0.6 * a[i] + 0.4 * a2[i];
        double *fd = check_to_double(f, n), *grad = malloc(n * sizeof *grad);
        double want = nst_ref_style(fd, c, m, a, grad);
        style_ctx ctx = {a, c, m};
        check_gradient_fd("style", style_fn, &ctx, fd, n, grad);

        nst_tensor *tf = check_tensor(rt, 1, c, h, w, f), *ts1 = check_tensor(rt, 1, c, h, w, s1);
        nst_tensor *ts2 = check_tensor(rt, 1, c, h, w, s2), *tdf = check_tensor(rt, 1, c, h, w, df0);
        cl_mem target = NULL, scratch = NULL;
        assert_int_equal(nst_buffer_create(rt, cc * sizeof(float), &target), NST_OK);
        assert_int_equal(nst_buffer_create(rt, cc * sizeof(float), &scratch), NST_OK);
        assert_int_equal(nst_gram(rt, target, ts1), NST_OK);
        assert_int_equal(nst_scal(rt, cc, 0.6f, target, 0), NST_OK);
        assert_int_equal(nst_gram_accumulate(rt, target, ts2, 0.4f), NST_OK);
        float an;
        assert_int_equal(nst_sum_squares(rt, target, cc, values, 0), NST_OK);
        assert_int_equal(nst_read_floats(rt, values, 0, 1, &an), NST_OK);
        double want_an = nst_ref_sum_squares(a, cc);
        assert_true(check_close("||A||^2", &an, &want_an, 1, 0, 1e-5));

        const float weight = 0.75f;
        assert_int_equal(
            nst_style_loss(rt, tf, scratch, target, an, weight, tdf, values, 1), NST_OK);
        float got;
        assert_int_equal(nst_read_floats(rt, values, 1, 1, &got), NST_OK);
        /* the value is a difference of Grams: float cancellation limits it */
        assert_true(check_close("style value", &got, &want, 1, 1e-6, 1e-4));
        float *gdf = malloc(n * sizeof *gdf);
        assert_int_equal(nst_tensor_download(rt, tdf, gdf), NST_OK);
        for (size_t i = 0; i < n; i++) grad[i] = df0[i] + weight * grad[i];
        assert_true(check_close("style grad", gdf, grad, n, 1e-5, 1e-4));

        nst_buffer_free(rt, target);
        nst_buffer_free(rt, scratch);
        nst_tensor_free(rt, tf);
        nst_tensor_free(rt, ts1);
        nst_tensor_free(rt, ts2);
        nst_tensor_free(rt, tdf);
        free(f);
        free(s1);
        free(s2);
        free(df0);
        free(s1d);
        free(s2d);
        free(a);
        free(a2);
        free(fd);
        free(grad);
        free(gdf);
    }
    nst_buffer_free(rt, values);
}

/* ---- total variation --------------------------------------------------- */

typedef struct tv_ctx {
    int planes, h, w;
} tv_ctx;

static double tv_fn(void *ctx, const double *x) {
    tv_ctx *t = ctx;
    return nst_ref_tv(x, t->planes, t->h, t->w, NULL);
}

static void test_tv(void **state) {
    nst_runtime *rt = g_rt;
    static const shape tv_shapes[] = {{3, 7, 5}, {3, 1, 1}, {3, 13, 11}, {3, 1, 9}, {3, 6, 1}};
    check_rng r;
    check_rng_seed(&r, 15);
    cl_mem values = NULL;
    assert_int_equal(nst_buffer_create(rt, 2 * sizeof(float), &values), NST_OK);
    for (size_t s = 0; s < sizeof tv_shapes / sizeof tv_shapes[0]; s++) {
        int c = tv_shapes[s].c, h = tv_shapes[s].h, w = tv_shapes[s].w;
        size_t n = (size_t)c * h * w;
        float *x = check_random(&r, n, 0, 1), *dx0 = check_random(&r, n, -1, 1);
        double *xd = check_to_double(x, n), *grad = malloc(n * sizeof *grad);
        double want = nst_ref_tv(xd, c, h, w, grad);
        tv_ctx ctx = {c, h, w};
        check_gradient_fd("tv", tv_fn, &ctx, xd, n, grad);

        nst_tensor *tx = check_tensor(rt, 1, c, h, w, x), *tdx = check_tensor(rt, 1, c, h, w, dx0);
        const float weight = 3.0f;
        assert_int_equal(nst_tv_loss(rt, tx, weight, tdx, values, 1), NST_OK);
        float got;
        assert_int_equal(nst_read_floats(rt, values, 1, 1, &got), NST_OK);
        assert_true(check_close("tv value", &got, &want, 1, 1e-7, 1e-5));
        float *gdx = malloc(n * sizeof *gdx);
        assert_int_equal(nst_tensor_download(rt, tdx, gdx), NST_OK);
        for (size_t i = 0; i < n; i++) grad[i] = dx0[i] + weight * grad[i];
        assert_true(check_close("tv grad", gdx, grad, n, 1e-6, 1e-5));

        nst_tensor_free(rt, tx);
        nst_tensor_free(rt, tdx);
        free(x);
        free(dx0);
        free(xd);
        free(grad);
        free(gdx);
    }
    nst_buffer_free(rt, values);
}

/* ---- determinism and errors -------------------------------------------- */

/* Runs the three losses on one fixed input; returns values and gradients. */
static void run_all(nst_runtime *rt, float *vals, float *df, float *dx) {
    enum { C = 7, H = 33, W = 29, N = C * H * W };
    check_rng r;
    check_rng_seed(&r, 16);
    float *f = check_random(&r, N, 0, 2), *p = check_random(&r, N, 0, 2);
    float *img = check_random(&r, 3 * H * W, 0, 1);
    nst_tensor *tf = check_tensor(rt, 1, C, H, W, f), *tp = check_tensor(rt, 1, C, H, W, p);
    nst_tensor *tx = check_tensor(rt, 1, 3, H, W, img), *tdf = NULL, *tdx = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, C, H, W, &tdf), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, H, W, &tdx), NST_OK);
    assert_int_equal(nst_tensor_fill(rt, tdf, 0), NST_OK);
    assert_int_equal(nst_tensor_fill(rt, tdx, 0), NST_OK);
    cl_mem values = NULL, a = NULL, scratch = NULL;
    assert_int_equal(nst_buffer_create(rt, 5 * sizeof(float), &values), NST_OK);
    assert_int_equal(nst_buffer_create(rt, C * C * sizeof(float), &a), NST_OK);
    assert_int_equal(nst_buffer_create(rt, C * C * sizeof(float), &scratch), NST_OK);
    assert_int_equal(nst_gram(rt, a, tp), NST_OK);
    assert_int_equal(nst_sum_squares(rt, tp->buf, N, values, 0), NST_OK);
    assert_int_equal(nst_sum_squares(rt, a, C * C, values, 1), NST_OK);
    float norms[2];
    assert_int_equal(nst_read_floats(rt, values, 0, 2, norms), NST_OK);
    assert_int_equal(nst_content_loss(rt, tf, tp, norms[0], 1.0f, tdf, values, 2), NST_OK);
    assert_int_equal(nst_style_loss(rt, tf, scratch, a, norms[1], 1e3f, tdf, values, 3),
                     NST_OK);
    assert_int_equal(nst_tv_loss(rt, tx, 1.0f, tdx, values, 4), NST_OK);
    assert_int_equal(nst_read_floats(rt, values, 0, 5, vals), NST_OK);
    assert_int_equal(nst_tensor_download(rt, tdf, df), NST_OK);
    assert_int_equal(nst_tensor_download(rt, tdx, dx), NST_OK);
    nst_buffer_free(rt, values);
    nst_buffer_free(rt, a);
    nst_buffer_free(rt, scratch);
    nst_tensor_free(rt, tf);
    nst_tensor_free(rt, tp);
    nst_tensor_free(rt, tx);
    nst_tensor_free(rt, tdf);
    nst_tensor_free(rt, tdx);
    free(f);
    free(p);
    free(img);
}

static void test_deterministic(void **state) {
    enum { C = 7, H = 33, W = 29 };
    nst_runtime *rt = g_rt;
    float v1[5], v2[5];
    float *df1 = malloc(C * H * W * sizeof(float)), *df2 = malloc(C * H * W * sizeof(float));
    float *dx1 = malloc(3 * H * W * sizeof(float)), *dx2 = malloc(3 * H * W * sizeof(float));
    run_all(rt, v1, df1, dx1);
    run_all(rt, v2, df2, dx2);
    assert_memory_equal(v1, v2, sizeof v1);
    assert_memory_equal(df1, df2, C * H * W * sizeof(float));
    assert_memory_equal(dx1, dx2, 3 * H * W * sizeof(float));
    for (int i = 0; i < 5; i++) assert_true(isfinite(v1[i]) && v1[i] > 0);
    free(df1);
    free(df2);
    free(dx1);
    free(dx2);
}

static void test_bad_args(void **state) {
    nst_runtime *rt = g_rt;
    nst_tensor *a = NULL, *b = NULL;
    cl_mem values = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 3, 4, 5, &a), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, 5, 4, &b), NST_OK);
    assert_int_equal(nst_buffer_create(rt, sizeof(float), &values), NST_OK);
    assert_int_equal(nst_content_loss(rt, a, b, 1.0f, 1.0f, NULL, values, 0),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "content"));
    assert_int_equal(nst_content_loss(rt, a, a, 0.0f, 1.0f, NULL, values, 0),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "norm"));
    assert_int_equal(nst_style_loss(rt, a, values, values, NAN, 1.0f, NULL, values, 0),
                     NST_ERR_INVALID_ARG);
    assert_int_equal(nst_tv_loss(rt, a, 1.0f, b, values, 0), NST_ERR_INVALID_ARG);
    nst_tensor_free(rt, a);
    nst_tensor_free(rt, b);
    nst_buffer_free(rt, values);
    assert_int_equal(nst_mem_in_use(rt), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reductions), cmocka_unit_test(test_gram_and_blend),
        cmocka_unit_test(test_gram_split),
        cmocka_unit_test(test_content),    cmocka_unit_test(test_style),
        cmocka_unit_test(test_tv),         cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
