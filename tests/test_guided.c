/* test_guided.c: guided (masked) Gram matrices and the region style loss
 * against the double references of ref_guided.c, the references against
 * central finite differences, the all-ones mask against the plain Gram and
 * style loss, complementary masks, independence of region size, empty masks,
 * mask downsampling with odd sizes, determinism and argument checks. */
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
#include "ref_guided.h"
#include "reference.h"
#include "ref_alloc.h"

#define g_rt check_rt /* the group fixture's runtime (check.h) */

typedef struct shape {
    int c, h, w;
} shape;
static const shape SHAPES[] = {{3, 7, 5}, {5, 2, 3}, {7, 13, 11}};
#define NSHAPES (int)(sizeof SHAPES / sizeof SHAPES[0])

static cl_mem buffer_from(nst_runtime *rt, size_t n, const float *data) {
    cl_mem b = NULL;
    assert_int_equal(nst_buffer_create(rt, n * sizeof(float), &b), NST_OK);
    if (data) assert_int_equal(nst_write_floats(rt, b, 0, n, data), NST_OK);
    return b;
}

static float *read_all(nst_runtime *rt, cl_mem b, size_t n) {
    float *x = malloc(n * sizeof *x);
    assert_int_equal(nst_read_floats(rt, b, 0, n, x), NST_OK);
    return x;
}

/* A soft mask with some exact zeros and ones. */
static float *soft_mask(check_rng *r, size_t m) {
    float *x = check_random(r, m, -0.3f, 1.3f);
    for (size_t i = 0; i < m; i++) x[i] = x[i] < 0 ? 0 : x[i] > 1 ? 1 : x[i];
    x[0] = 0.7f; /* never all zero */
    return x;
}

/* ---- mask downsampling ------------------------------------------------- */

static void test_mask_downsample(void **state) {
    nst_runtime *rt = g_rt;
    static const int sizes[][2] = {{7, 5}, {2, 2}, {13, 11}, {8, 9}, {3, 16}, {33, 29}};
    check_rng r;
    check_rng_seed(&r, 31);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        int h = sizes[k][0], w = sizes[k][1];
        size_t m = (size_t)h * w;
        float *x = check_random(&r, m, 0, 1);
        double *xd = check_to_double(x, m), *want = malloc(m * sizeof *want);
        double *want2 = malloc(m * sizeof *want2);
        cl_mem src = buffer_from(rt, m, x), mid = buffer_from(rt, m / 4, NULL);
        cl_mem low = buffer_from(rt, m / 16 + 1, NULL);
        int h1 = h / 2, w1 = w / 2;
        assert_int_equal(nst_mask_downsample(rt, mid, h1, w1, src, h, w), NST_OK);
        ref_mask_down(xd, h, w, want);
        float *got = read_all(rt, mid, (size_t)h1 * w1);
        assert_true(check_close("mask down", got, want, (size_t)h1 * w1, 1e-7, 1e-6));
        free(got);
        /* chained, as the caller does per pool */
        if (h1 >= 2 && w1 >= 2) {
            int h2 = h1 / 2, w2 = w1 / 2;
            assert_int_equal(nst_mask_downsample(rt, low, h2, w2, mid, h1, w1), NST_OK);
            ref_mask_down(want, h1, w1, want2);
            got = read_all(rt, low, (size_t)h2 * w2);
            assert_true(check_close("mask down x2", got, want2, (size_t)h2 * w2, 1e-7, 1e-6));
            free(got);
        }
        nst_buffer_free(rt, src);
        nst_buffer_free(rt, mid);
        nst_buffer_free(rt, low);
        free(x);
        free(xd);
        free(want);
        free(want2);
    }
}

/* ---- masked Gram ------------------------------------------------------- */

static void test_gram_masked(void **state) {
    nst_runtime *rt = g_rt;
    check_rng r;
    check_rng_seed(&r, 32);
    for (int s = 0; s < NSHAPES; s++) {
        int c = SHAPES[s].c, h = SHAPES[s].h, w = SHAPES[s].w, m = h * w;
        size_t n = (size_t)c * m, cc = (size_t)c * c;
        float *f = check_random(&r, n, 0, 2), *mk = soft_mask(&r, m);
        /* a second (style) image of another size with its own mask */
        int h2 = h + 3, w2 = w + 2, m2 = h2 * w2;
        float *f2 = check_random(&r, (size_t)c * m2, 0, 2), *mk2 = soft_mask(&r, m2);
        double *fd = check_to_double(f, n), *md = check_to_double(mk, m);
        double *f2d = check_to_double(f2, (size_t)c * m2), *m2d = check_to_double(mk2, m2);
        double *want = malloc(cc * sizeof *want), *want2 = malloc(cc * sizeof *want2);
        nst_tensor *tf = check_tensor(rt, 1, c, h, w, f), *tf2 = check_tensor(rt, 1, c, h2, w2, f2);
        cl_mem mask = buffer_from(rt, m, mk), mask2 = buffer_from(rt, m2, mk2);
        cl_mem g = buffer_from(rt, cc, NULL), fm = buffer_from(rt, n, NULL);

        /* overwrite, with a caller scratch and with one allocated for the call */
        ref_gram_masked(fd, c, m, md, want);
        assert_int_equal(nst_gram_masked(rt, g, tf, mask, fm, 1.0f, 0), NST_OK);
        float *got = read_all(rt, g, cc);
        assert_true(check_close("masked gram", got, want, cc, 1e-6, 1e-5));
        free(got);
        assert_int_equal(nst_gram_masked(rt, g, tf, mask, NULL, 1.0f, 0), NST_OK);
        got = read_all(rt, g, cc);
        assert_true(check_close("masked gram, own scratch", got, want, cc, 1e-6, 1e-5));
        free(got);

        /* blend 0.3 G_r(s1, m1) + 0.7 G(s2) (no style mask) + 0.2 G_r(s2, m2) */
        ref_gram_masked(f2d, c, m2, NULL, want2);
        for (size_t i = 0; i < cc; i++) want[i] = 0.3 * want[i] + 0.7 * want2[i];
        ref_gram_masked(f2d, c, m2, m2d, want2);
        for (size_t i = 0; i < cc; i++) want[i] += 0.2 * want2[i];
        assert_int_equal(nst_gram_masked(rt, g, tf, mask, fm, 0.3f, 0), NST_OK);
        assert_int_equal(nst_gram_masked(rt, g, tf2, NULL, NULL, 0.7f, 1), NST_OK);
        assert_int_equal(nst_gram_masked(rt, g, tf2, mask2, NULL, 0.2f, 1), NST_OK);
        got = read_all(rt, g, cc);
        assert_true(check_close("masked gram blend", got, want, cc, 1e-6, 1e-5));
        free(got);

        /* an all-ones mask is the plain Gram */
        float *ones = malloc(m * sizeof *ones);
        for (int i = 0; i < m; i++) ones[i] = 1.0f;
        cl_mem mones = buffer_from(rt, m, ones);
        assert_int_equal(nst_gram_masked(rt, g, tf, mones, fm, 1.0f, 0), NST_OK);
        got = read_all(rt, g, cc);
        assert_int_equal(nst_gram(rt, g, tf), NST_OK);
        float *plain = read_all(rt, g, cc);
        assert_true(check_close_f("ones mask = plain gram", got, plain, cc, 1e-6, 1e-5));
        nst_ref_gram(fd, c, m, want);
        assert_true(check_close("plain gram", plain, want, cc, 1e-6, 1e-5));
        free(got);
        free(plain);
        free(ones);

        nst_buffer_free(rt, mones);
        nst_buffer_free(rt, mask);
        nst_buffer_free(rt, mask2);
        nst_buffer_free(rt, g);
        nst_buffer_free(rt, fm);
        nst_tensor_free(rt, tf);
        nst_tensor_free(rt, tf2);
        free(f);
        free(mk);
        free(f2);
        free(mk2);
        free(fd);
        free(md);
        free(f2d);
        free(m2d);
        free(want);
        free(want2);
    }
}

/* ---- region style loss ------------------------------------------------- */

typedef struct style_ctx {
    const double *a, *mask;
    int c, m;
} style_ctx;

static double style_fn(void *ctx, const double *x) {
    style_ctx *s = ctx;
    return ref_style_masked(x, s->c, s->m, s->mask, s->a, NULL);
}

static void test_style_masked(void **state) {
    nst_runtime *rt = g_rt;
    check_rng r;
    check_rng_seed(&r, 33);
    cl_mem values = buffer_from(rt, 4, NULL);
    for (int s = 0; s < NSHAPES; s++) {
        int c = SHAPES[s].c, h = SHAPES[s].h, w = SHAPES[s].w, m = h * w;
        size_t n = (size_t)c * m, cc = (size_t)c * c;
        int h2 = h + 2, w2 = w + 1, m2 = h2 * w2;
        float *f = check_random(&r, n, 0, 2), *mk = soft_mask(&r, m);
        float *sty = check_random(&r, (size_t)c * m2, 0, 2), *smk = soft_mask(&r, m2);
        float *df0 = check_random(&r, n, -1, 1);
        double *fd = check_to_double(f, n), *md = check_to_double(mk, m);
        double *styd = check_to_double(sty, (size_t)c * m2), *smd = check_to_double(smk, m2);
        double *a = malloc(cc * sizeof *a), *grad = malloc(n * sizeof *grad);
        /* the region's target: the style image under its own mask */
        ref_gram_masked(styd, c, m2, smd, a);
        double want = ref_style_masked(fd, c, m, md, a, grad);
        style_ctx ctx = {a, md, c, m};
        check_gradient_fd("masked style", style_fn, &ctx, fd, n, grad);

        nst_tensor *tf = check_tensor(rt, 1, c, h, w, f), *tsty = check_tensor(rt, 1, c, h2, w2, sty);
        nst_tensor *tdf = check_tensor(rt, 1, c, h, w, df0);
        cl_mem mask = buffer_from(rt, m, mk), smask = buffer_from(rt, m2, smk);
        cl_mem target = buffer_from(rt, cc, NULL), gs = buffer_from(rt, cc, NULL);
        cl_mem fm = buffer_from(rt, n, NULL);
        assert_int_equal(nst_gram_masked(rt, target, tsty, smask, NULL, 1.0f, 0), NST_OK);
        float an;
        assert_int_equal(nst_sum_squares(rt, target, cc, values, 0), NST_OK);
        assert_int_equal(nst_read_floats(rt, values, 0, 1, &an), NST_OK);

        const float weight = 0.75f;
        assert_int_equal(nst_style_loss_masked(rt, tf, mask, gs, fm, target, an, weight, tdf,
                                               values, 1), NST_OK);
        float got;
        assert_int_equal(nst_read_floats(rt, values, 1, 1, &got), NST_OK);
        assert_true(check_close("masked style value", &got, &want, 1, 1e-6, 1e-4));
        float *gdf = malloc(n * sizeof *gdf);
        assert_int_equal(nst_tensor_download(rt, tdf, gdf), NST_OK);
        for (size_t i = 0; i < n; i++) grad[i] = df0[i] + weight * grad[i];
        assert_true(check_close("masked style grad", gdf, grad, n, 1e-5, 1e-4));
        /* value only */
        assert_int_equal(nst_style_loss_masked(rt, tf, mask, gs, fm, target, an, weight, NULL,
                                               values, 2), NST_OK);
        assert_int_equal(nst_read_floats(rt, values, 2, 1, &got), NST_OK);
        assert_true(check_close("masked style value only", &got, &want, 1, 1e-6, 1e-4));

        /* an all-ones mask is the plain style loss, value and gradient */
        float *ones = malloc(m * sizeof *ones);
        for (int i = 0; i < m; i++) ones[i] = 1.0f;
        cl_mem mones = buffer_from(rt, m, ones);
        float *gplain = malloc(n * sizeof *gplain), vals[2];
        assert_int_equal(nst_tensor_upload(rt, tdf, df0), NST_OK);
        assert_int_equal(nst_style_loss_masked(rt, tf, mones, gs, fm, target, an, weight, tdf,
                                               values, 0), NST_OK);
        assert_int_equal(nst_tensor_download(rt, tdf, gdf), NST_OK);
        assert_int_equal(nst_tensor_upload(rt, tdf, df0), NST_OK);
        assert_int_equal(nst_style_loss(rt, tf, gs, target, an, weight, tdf, values, 1),
                         NST_OK);
        assert_int_equal(nst_tensor_download(rt, tdf, gplain), NST_OK);
        assert_int_equal(nst_read_floats(rt, values, 0, 2, vals), NST_OK);
        assert_true(check_close_f("ones mask = plain style value", &vals[0], &vals[1], 1, 1e-6,
                                  1e-4));
        assert_true(check_close_f("ones mask = plain style grad", gdf, gplain, n, 1e-5, 1e-4));
        want = ref_style_masked(fd, c, m, NULL, a, NULL);
        assert_true(check_close("plain style value", &vals[1], &want, 1, 1e-6, 1e-4));

        nst_buffer_free(rt, mones);
        nst_buffer_free(rt, mask);
        nst_buffer_free(rt, smask);
        nst_buffer_free(rt, target);
        nst_buffer_free(rt, gs);
        nst_buffer_free(rt, fm);
        nst_tensor_free(rt, tf);
        nst_tensor_free(rt, tsty);
        nst_tensor_free(rt, tdf);
        free(ones);
        free(gplain);
        free(f);
        free(mk);
        free(sty);
        free(smk);
        free(df0);
        free(fd);
        free(md);
        free(styd);
        free(smd);
        free(a);
        free(grad);
        free(gdf);
    }
    nst_buffer_free(rt, values);
}

/* ---- complementary masks and region size -------------------------------- */

static void test_complementary(void **state) {
    nst_runtime *rt = g_rt;
    enum { C = 5, H = 9, W = 7, M = H * W, N = C * M, CC = C * C };
    check_rng r;
    check_rng_seed(&r, 34);
    float *f = check_random(&r, N, 0, 2), *s1 = check_random(&r, N, 0, 2);
    float *s2 = check_random(&r, N, 0, 1), *df0 = check_random(&r, N, -1, 1);
    float m1[M], m2[M];
    for (int i = 0; i < M; i++) {
        m1[i] = (i % W) < W / 2 || check_uniform(&r, 0, 1) < 0.2f ? 1.0f : 0.0f;
        m2[i] = 1.0f - m1[i];
    }
    double *fd = check_to_double(f, N), *s1d = check_to_double(s1, N), *s2d = check_to_double(s2, N);
    double m1d[M], m2d[M], s1m = 0, s2m = 0;
    nst_ref_to_double(m1, m1d, M);
    nst_ref_to_double(m2, m2d, M);
    for (int i = 0; i < M; i++) {
        s1m += m1d[i];
        s2m += m2d[i];
    }
    nst_tensor *tf = check_tensor(rt, 1, C, H, W, f), *ts1 = check_tensor(rt, 1, C, H, W, s1);
    nst_tensor *ts2 = check_tensor(rt, 1, C, H, W, s2), *tdf = check_tensor(rt, 1, C, H, W, df0);
    cl_mem k1 = buffer_from(rt, M, m1), k2 = buffer_from(rt, M, m2);
    cl_mem g = buffer_from(rt, CC, NULL), fm = buffer_from(rt, N, NULL);
    cl_mem a1 = buffer_from(rt, CC, NULL), a2 = buffer_from(rt, CC, NULL);
    cl_mem values = buffer_from(rt, 4, NULL);

    /* (S1/M) G_1 + (S2/M) G_2 = G for binary complementary masks */
    assert_int_equal(nst_gram_masked(rt, g, tf, k1, fm, (float)(s1m / M), 0), NST_OK);
    assert_int_equal(nst_gram_masked(rt, g, tf, k2, fm, (float)(s2m / M), 1), NST_OK);
    float *got = read_all(rt, g, CC);
    double want[CC];
    nst_ref_gram(fd, C, M, want);
    assert_true(check_close("complementary grams", got, want, CC, 1e-6, 1e-5));
    free(got);

    /* region 1 takes style 1 (whole image), region 2 style 2 under m2 */
    double a1d[CC], a2d[CC], g1[N], g2[N];
    ref_gram_masked(s1d, C, M, NULL, a1d);
    ref_gram_masked(s2d, C, M, m2d, a2d);
    const float w1 = 1.5f, w2 = 0.5f;
    double v1 = ref_style_masked(fd, C, M, m1d, a1d, g1);
    double v2 = ref_style_masked(fd, C, M, m2d, a2d, g2);
    assert_int_equal(nst_gram_masked(rt, a1, ts1, NULL, NULL, 1.0f, 0), NST_OK);
    assert_int_equal(nst_gram_masked(rt, a2, ts2, k2, fm, 1.0f, 0), NST_OK);
    assert_int_equal(nst_sum_squares(rt, a1, CC, values, 0), NST_OK);
    assert_int_equal(nst_sum_squares(rt, a2, CC, values, 1), NST_OK);
    float norms[2], vals[2];
    assert_int_equal(nst_read_floats(rt, values, 0, 2, norms), NST_OK);
    assert_int_equal(nst_style_loss_masked(rt, tf, k1, g, fm, a1, norms[0], w1, tdf, values, 2),
                     NST_OK);
    assert_int_equal(nst_style_loss_masked(rt, tf, k2, g, fm, a2, norms[1], w2, tdf, values, 3),
                     NST_OK);
    assert_int_equal(nst_read_floats(rt, values, 2, 2, vals), NST_OK);
    assert_true(check_close("region 1 value", &vals[0], &v1, 1, 1e-6, 1e-4));
    assert_true(check_close("region 2 value", &vals[1], &v2, 1, 1e-6, 1e-4));
    float *gdf = malloc(N * sizeof *gdf);
    assert_int_equal(nst_tensor_download(rt, tdf, gdf), NST_OK);
    /* each region's gradient lives on its own mask only */
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < M; i++) {
            assert_true(m1[i] != 0.0f || g1[ch * M + i] == 0.0);
            assert_true(m2[i] != 0.0f || g2[ch * M + i] == 0.0);
        }
    for (int i = 0; i < N; i++) g1[i] = df0[i] + w1 * g1[i] + w2 * g2[i];
    assert_true(check_close("two regions grad", gdf, g1, N, 1e-5, 1e-4));

    free(gdf);
    nst_buffer_free(rt, k1);
    nst_buffer_free(rt, k2);
    nst_buffer_free(rt, g);
    nst_buffer_free(rt, fm);
    nst_buffer_free(rt, a1);
    nst_buffer_free(rt, a2);
    nst_buffer_free(rt, values);
    nst_tensor_free(rt, tf);
    nst_tensor_free(rt, ts1);
    nst_tensor_free(rt, ts2);
    nst_tensor_free(rt, tdf);
    free(f);
    free(s1);
    free(s2);
    free(df0);
    free(fd);
    free(s1d);
    free(s2d);
}

/* A texture that repeats every two columns has the same masked Gram over
 * regions of two and of six columns: the normalisation by S, not M. */
static void test_region_size(void **state) {
    nst_runtime *rt = g_rt;
    enum { C = 4, H = 6, W = 8, M = H * W, N = C * M, CC = C * C };
    check_rng r;
    check_rng_seed(&r, 35);
    float v[C][2], f[N], small[M], big[M];
    for (int ch = 0; ch < C; ch++)
        for (int k = 0; k < 2; k++) v[ch][k] = check_uniform(&r, 0.1f, 2);
    for (int ch = 0; ch < C; ch++)
        for (int i = 0; i < M; i++) f[ch * M + i] = v[ch][(i % W) % 2];
    for (int i = 0; i < M; i++) {
        small[i] = (i % W) < 2 ? 1.0f : 0.0f;
        big[i] = (i % W) >= 2 ? 1.0f : 0.0f;
    }
    nst_tensor *tf = check_tensor(rt, 1, C, H, W, f);
    cl_mem ks = buffer_from(rt, M, small), kb = buffer_from(rt, M, big);
    cl_mem g = buffer_from(rt, CC, NULL);
    assert_int_equal(nst_gram_masked(rt, g, tf, ks, NULL, 1.0f, 0), NST_OK);
    float *gs = read_all(rt, g, CC);
    assert_int_equal(nst_gram_masked(rt, g, tf, kb, NULL, 1.0f, 0), NST_OK);
    float *gb = read_all(rt, g, CC);
    assert_true(check_close_f("small vs large region", gs, gb, CC, 1e-6, 1e-5));
    double want[CC];
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++)
            want[i * C + j] = ((double)v[i][0] * v[j][0] + (double)v[i][1] * v[j][1]) / (2.0 * C);
    assert_true(check_close("region gram", gs, want, CC, 1e-6, 1e-5));
    free(gs);
    free(gb);
    nst_buffer_free(rt, ks);
    nst_buffer_free(rt, kb);
    nst_buffer_free(rt, g);
    nst_tensor_free(rt, tf);
}

/* An all-zero mask (a region that vanished at this resolution): G_r = 0,
 * the value is 1 and the gradient is untouched. */
static void test_empty_mask(void **state) {
    nst_runtime *rt = g_rt;
    enum { C = 3, H = 5, W = 4, M = H * W, N = C * M, CC = C * C };
    check_rng r;
    check_rng_seed(&r, 36);
    float *f = check_random(&r, N, 0, 2), *df0 = check_random(&r, N, -1, 1), zero[M];
    float *a = check_random(&r, CC, 0, 1);
    memset(zero, 0, sizeof zero);
    nst_tensor *tf = check_tensor(rt, 1, C, H, W, f), *tdf = check_tensor(rt, 1, C, H, W, df0);
    cl_mem k = buffer_from(rt, M, zero), g = buffer_from(rt, CC, NULL);
    cl_mem fm = buffer_from(rt, N, NULL), ta = buffer_from(rt, CC, a);
    cl_mem values = buffer_from(rt, 1, NULL);
    assert_int_equal(nst_gram_masked(rt, g, tf, k, fm, 1.0f, 0), NST_OK);
    float *got = read_all(rt, g, CC);
    double zeros[CC] = {0};
    assert_true(check_close("empty mask gram", got, zeros, CC, 0, 0));
    free(got);
    double an = 0;
    for (int i = 0; i < CC; i++) an += (double)a[i] * a[i];
    assert_int_equal(nst_style_loss_masked(rt, tf, k, g, fm, ta, (float)an, 2.0f, tdf, values,
                                           0), NST_OK);
    float v;
    assert_int_equal(nst_read_floats(rt, values, 0, 1, &v), NST_OK);
    double one = 1.0;
    assert_true(check_close("empty mask value", &v, &one, 1, 0, 1e-5));
    float *gdf = malloc(N * sizeof *gdf);
    assert_int_equal(nst_tensor_download(rt, tdf, gdf), NST_OK);
    assert_true(check_close_f("empty mask grad", gdf, df0, N, 0, 0));
    free(gdf);
    nst_buffer_free(rt, k);
    nst_buffer_free(rt, g);
    nst_buffer_free(rt, fm);
    nst_buffer_free(rt, ta);
    nst_buffer_free(rt, values);
    nst_tensor_free(rt, tf);
    nst_tensor_free(rt, tdf);
    free(f);
    free(df0);
    free(a);
}

/* ---- determinism and errors -------------------------------------------- */

/* Two regions with masks downsampled from image resolution; returns the
 * values and the gradient. */
static void run_regions(nst_runtime *rt, float *vals, float *df) {
    enum { C = 7, H = 33, W = 29, IH = 67, IW = 59, M = H * W, N = C * M, CC = C * C };
    check_rng r;
    check_rng_seed(&r, 37);
    float *f = check_random(&r, N, 0, 2), *s = check_random(&r, N, 0, 2);
    float *img = soft_mask(&r, IH * IW);
    nst_tensor *tf = check_tensor(rt, 1, C, H, W, f), *ts = check_tensor(rt, 1, C, H, W, s), *tdf;
    assert_int_equal(nst_tensor_create(rt, 1, C, H, W, &tdf), NST_OK);
    assert_int_equal(nst_tensor_fill(rt, tdf, 0), NST_OK);
    cl_mem big = buffer_from(rt, IH * IW, img), k = buffer_from(rt, M, NULL);
    cl_mem g = buffer_from(rt, CC, NULL), fm = buffer_from(rt, N, NULL);
    cl_mem a1 = buffer_from(rt, CC, NULL), a2 = buffer_from(rt, CC, NULL);
    cl_mem values = buffer_from(rt, 4, NULL);
    assert_int_equal(nst_mask_downsample(rt, k, H, W, big, IH, IW), NST_OK);
    assert_int_equal(nst_gram_masked(rt, a1, ts, k, fm, 1.0f, 0), NST_OK);
    assert_int_equal(nst_gram_masked(rt, a2, ts, NULL, NULL, 1.0f, 0), NST_OK);
    assert_int_equal(nst_sum_squares(rt, a1, CC, values, 0), NST_OK);
    assert_int_equal(nst_sum_squares(rt, a2, CC, values, 1), NST_OK);
    float norms[2];
    assert_int_equal(nst_read_floats(rt, values, 0, 2, norms), NST_OK);
    assert_int_equal(nst_style_loss_masked(rt, tf, k, g, fm, a1, norms[0], 1e3f, tdf, values,
                                           2), NST_OK);
    assert_int_equal(nst_style_loss_masked(rt, tf, k, g, fm, a2, norms[1], 10.0f, tdf, values,
                                           3), NST_OK);
    assert_int_equal(nst_read_floats(rt, values, 0, 4, vals), NST_OK);
    assert_int_equal(nst_tensor_download(rt, tdf, df), NST_OK);
    nst_buffer_free(rt, big);
    nst_buffer_free(rt, k);
    nst_buffer_free(rt, g);
    nst_buffer_free(rt, fm);
    nst_buffer_free(rt, a1);
    nst_buffer_free(rt, a2);
    nst_buffer_free(rt, values);
    nst_tensor_free(rt, tf);
    nst_tensor_free(rt, ts);
    nst_tensor_free(rt, tdf);
    free(f);
    free(s);
    free(img);
}

static void test_deterministic(void **state) {
    enum { N = 7 * 33 * 29 };
    float v1[4], v2[4];
    float *df1 = malloc(N * sizeof(float)), *df2 = malloc(N * sizeof(float));
    run_regions(g_rt, v1, df1);
    run_regions(g_rt, v2, df2);
    assert_memory_equal(v1, v2, sizeof v1);
    assert_memory_equal(df1, df2, N * sizeof(float));
    for (int i = 0; i < 4; i++) assert_true(isfinite(v1[i]) && v1[i] > 0);
    free(df1);
    free(df2);
}

static void test_bad_args(void **state) {
    nst_runtime *rt = g_rt;
    nst_tensor *a = NULL, *b = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 3, 4, 5, &a), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, 5, 4, &b), NST_OK);
    cl_mem small = buffer_from(rt, 19, NULL), mask = buffer_from(rt, 20, NULL);
    cl_mem g = buffer_from(rt, 9, NULL), fm = buffer_from(rt, 60, NULL);
    cl_mem tiny = buffer_from(rt, 8, NULL);
    /* a mask at another resolution */
    assert_int_equal(nst_gram_masked(rt, g, a, small, fm, 1.0f, 0), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "mask"));
    assert_int_equal(nst_gram_masked(rt, g, a, mask, small, 1.0f, 0), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_gram_masked(rt, tiny, a, mask, fm, 1.0f, 0), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_gram_masked(rt, tiny, a, NULL, NULL, 1.0f, 0), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "Gram"));
    assert_int_equal(nst_style_loss_masked(rt, a, mask, g, fm, g, 0.0f, 1.0f, NULL, g, 0),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "region"));
    assert_int_equal(nst_style_loss_masked(rt, a, mask, g, fm, g, 1.0f, 1.0f, b, g, 0),
                     NST_ERR_INVALID_ARG);
    assert_int_equal(nst_style_loss_masked(rt, a, small, g, fm, g, 1.0f, 1.0f, NULL, g, 0),
                     NST_ERR_INVALID_ARG);
    /* downsampling: sizes must follow a 2x2 pool and fit the buffers */
    assert_int_equal(nst_mask_downsample(rt, small, 2, 3, mask, 4, 5), NST_ERR_INVALID_ARG);
    assert_non_null(strstr(rt->msg.text, "floor"));
    assert_int_equal(nst_mask_downsample(rt, small, 2, 2, mask, 4, 5), NST_OK);
    assert_int_equal(nst_mask_downsample(rt, small, 0, 2, mask, 1, 5), NST_ERR_INVALID_ARG);
    assert_int_equal(nst_mask_downsample(rt, small, 3, 2, mask, 6, 5), NST_ERR_INVALID_ARG);
    nst_tensor_free(rt, a);
    nst_tensor_free(rt, b);
    nst_buffer_free(rt, small);
    nst_buffer_free(rt, mask);
    nst_buffer_free(rt, g);
    nst_buffer_free(rt, fm);
    nst_buffer_free(rt, tiny);
    assert_int_equal(nst_finish(rt), NST_OK);
    assert_int_equal(nst_mem_in_use(rt), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mask_downsample), cmocka_unit_test(test_gram_masked),
        cmocka_unit_test(test_style_masked),    cmocka_unit_test(test_complementary),
        cmocka_unit_test(test_region_size),     cmocka_unit_test(test_empty_mask),
        cmocka_unit_test(test_deterministic),   cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, check_setup, check_teardown);
}
