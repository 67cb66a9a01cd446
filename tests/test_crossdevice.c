/* test_crossdevice.c: the same short style transfer on two OpenCL devices
 * gives the same image. A narrow generated VGG-19 (width 1/16) on a 33x33
 * image, content loss at conv4_2, style losses at relu1_1..relu5_1, TV, and
 * STEPS L-BFGS iterations from the content image, run once on the test device
 * ($NST_DEVICE or the default) and once on another ($NST_DEVICE2, else the
 * first other device in the list). Float rounding differs between devices
 * (summation orders, fused multiply-adds, CLBlast kernels), so the images
 * differ by rounding amplified over a few steps; the bound is a quarter of
 * one 8-bit grey level:
 *     max |pixel_a - pixel_b| <= 1/1020 (~9.8e-4), images in [0,1].
 * With a single device the test skips, saying how to enable a second one
 * (CI enables rusticl on llvmpipe). */
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
#include "optim.h"
#include "vgg.h"

enum { H = 33, W = 33, STEPS = 10, NSTYLE = 5, NTAPS = NSTYLE + 1 };
#define WIDTH (1.0 / 16)
#define BOUND (1.0 / 1020)

static const char *const taps[NTAPS] = {"relu1_1", "relu2_1", "relu3_1",
                                        "relu4_1", "relu5_1", "conv4_2"};

/* The problem on one device: the model, targets and a values buffer. */
typedef struct transfer {
    nst_vgg *m;
    nst_tensor *p;        /* content target at conv4_2 */
    cl_mem gram[NSTYLE];  /* style targets */
    float gram_norm2[NSTYLE];
    cl_mem scratch[NSTYLE];
    float p_norm2;
    cl_mem values;        /* content, style 0..4, tv */
    int evals;
} transfer;

static nst_status eval(void *ctx, nst_runtime *rt, const nst_tensor *x, nst_tensor *grad,
                       double *loss) {
    transfer *t = ctx;
    nst_status st;
    const float wc = 1.0f, ws = 20.0f / NSTYLE, wtv = 0.1f;
    if ((st = nst_vgg_forward(rt, t->m, x)) != NST_OK) return st;
    if ((st = nst_vgg_zero_grad(rt, t->m)) != NST_OK) return st;
    if ((st = nst_content_loss(rt, nst_vgg_tap(t->m, "conv4_2"), t->p, t->p_norm2, wc,
                               nst_vgg_tap_grad(t->m, "conv4_2"), t->values, 0)) != NST_OK)
        return st;
    for (int i = 0; i < NSTYLE; i++)
        if ((st = nst_style_loss(rt, nst_vgg_tap(t->m, taps[i]), t->scratch[i], t->gram[i],
                                 t->gram_norm2[i], ws, nst_vgg_tap_grad(t->m, taps[i]),
                                 t->values, 1 + i)) != NST_OK)
            return st;
    if ((st = nst_vgg_backward(rt, t->m, grad)) != NST_OK) return st;
    if ((st = nst_tv_loss(rt, x, wtv, grad, t->values, 1 + NSTYLE)) != NST_OK) return st;
    float v[2 + NSTYLE];
    if ((st = nst_read_floats(rt, t->values, 0, 2 + NSTYLE, v)) != NST_OK) return st;
    double l = wc * v[0] + wtv * (double)v[1 + NSTYLE];
    for (int i = 0; i < NSTYLE; i++) l += ws * (double)v[1 + i];
    *loss = l;
    t->evals++;
    return NST_OK;
}

/* Runs the transfer on device `sel`; out: the final image (3*H*W floats). */
static void run_transfer(const char *sel, const float *content, const float *style, float *out,
                         double *first_loss, double *last_loss, char *name, size_t namelen) {
    nst_runtime *rt = NULL;
    nst_msg msg = {{0}};
    nst_runtime_options opt = {0};
    opt.device = sel;
    opt.no_cache = 1;
    if (nst_runtime_open(&rt, &opt, &msg) != NST_OK) {
        fprintf(stderr, "cannot open device %s: %s\n", sel, msg.text);
        fail();
    }
    snprintf(name, namelen, "%s (%s)", nst_runtime_device(rt)->name,
             nst_runtime_device(rt)->platform);
    nst_weights *w = NULL;
    assert_int_equal(nst_weights_generate(&w, 3, WIDTH, 13, &msg), NST_OK);
    transfer t;
    memset(&t, 0, sizeof t);
    assert_int_equal(nst_vgg_create(rt, w, taps, NTAPS, 0, &t.m), NST_OK);
    assert_int_equal(nst_vgg_resize(rt, t.m, H, W), NST_OK);
    assert_int_equal(nst_buffer_create(rt, 8 * sizeof(float), &t.values), NST_OK);
    nst_tensor *x = NULL, *s = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 3, H, W, &x), NST_OK);
    assert_int_equal(nst_tensor_create(rt, 1, 3, H, W, &s), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, x, content), NST_OK);
    assert_int_equal(nst_tensor_upload(rt, s, style), NST_OK);

    /* targets, as a transfer computes them: on the device */
    assert_int_equal(nst_vgg_forward(rt, t.m, x), NST_OK);
    const nst_tensor *f = nst_vgg_tap(t.m, "conv4_2");
    assert_int_equal(nst_tensor_create(rt, 1, f->c, f->h, f->w, &t.p), NST_OK);
    assert_int_equal(nst_tensor_copy(rt, t.p, f), NST_OK);
    assert_int_equal(nst_sum_squares(rt, t.p->buf, t.p->count, t.values, 0), NST_OK);
    assert_int_equal(nst_read_floats(rt, t.values, 0, 1, &t.p_norm2), NST_OK);
    assert_int_equal(nst_vgg_forward(rt, t.m, s), NST_OK);
    for (int i = 0; i < NSTYLE; i++) {
        const nst_tensor *a = nst_vgg_tap(t.m, taps[i]);
        size_t cc = (size_t)a->c * a->c;
        assert_int_equal(nst_buffer_create(rt, cc * sizeof(float), &t.gram[i]), NST_OK);
        assert_int_equal(nst_buffer_create(rt, cc * sizeof(float), &t.scratch[i]), NST_OK);
        assert_int_equal(nst_gram(rt, t.gram[i], a), NST_OK);
        assert_int_equal(nst_sum_squares(rt, t.gram[i], cc, t.values, 0), NST_OK);
        assert_int_equal(nst_read_floats(rt, t.values, 0, 1, &t.gram_norm2[i]), NST_OK);
        assert_true(t.gram_norm2[i] > 0);
    }

    nst_optim_params p;
    nst_optim_defaults(&p, NST_OPTIM_LBFGS);
    nst_optim *o = NULL;
    assert_int_equal(nst_optim_create(rt, &p, x->count, &o), NST_OK);
    nst_tensor *g = NULL;
    assert_int_equal(nst_tensor_create(rt, 1, 3, H, W, &g), NST_OK);
    assert_int_equal(eval(&t, rt, x, g, first_loss), NST_OK);
    for (int k = 0; k < STEPS; k++) {
        nst_status st = nst_optim_step(rt, o, x, eval, &t, last_loss);
        if (st != NST_OK) fprintf(stderr, "%s\n", nst_last_error(rt));
        assert_int_equal(st, NST_OK);
    }
    assert_int_equal(nst_tensor_download(rt, x, out), NST_OK);

    nst_optim_free(rt, o);
    for (int i = 0; i < NSTYLE; i++) {
        nst_buffer_free(rt, t.gram[i]);
        nst_buffer_free(rt, t.scratch[i]);
    }
    nst_buffer_free(rt, t.values);
    nst_tensor_free(rt, t.p);
    nst_tensor_free(rt, x);
    nst_tensor_free(rt, s);
    nst_tensor_free(rt, g);
    nst_vgg_free(rt, t.m);
    nst_weights_free(w);
    nst_runtime_close(rt);
}

/* A smooth random image: a few sinusoids per channel, in [0.1, 0.9]. */
static void make_image(check_rng *r, float *img) {
    for (int c = 0; c < 3; c++) {
        float a = check_uniform(r, 0.1f, 0.5f), b = check_uniform(r, 0.1f, 0.5f);
        float ph = check_uniform(r, 0, 6.28f);
        for (int i = 0; i < H; i++)
            for (int j = 0; j < W; j++) {
                float v = 0.5f + 0.25f * sinf(a * i + ph) * cosf(b * j) +
                          0.1f * check_uniform(r, -1, 1);
                img[(c * H + i) * W + j] = fminf(0.9f, fmaxf(0.1f, v));
            }
    }
}

static void test_same_transfer_two_devices(void **state) {
    nst_device_info *devs = NULL;
    int n = 0, a = -1, b = -1;
    nst_msg msg = {{0}};
    assert_int_equal(nst_devices_list(&devs, &n, &msg), NST_OK);
    assert_int_equal(nst_device_select(devs, n, NULL, &a, &msg), NST_OK);
    const char *sel2 = getenv("NST_DEVICE2");
    if (sel2 && *sel2) {
        if (nst_device_select(devs, n, sel2, &b, &msg) != NST_OK) {
            fprintf(stderr, "NST_DEVICE2: %s\n", msg.text);
            fail();
        }
    } else {
        for (int i = 0; i < n && b < 0; i++)
            if (i != a) b = i;
    }
    if (b < 0 || b == a) {
        printf("  SKIPPED: only one OpenCL device (%s); a second one is needed, e.g. "
               "RUSTICL_ENABLE=llvmpipe with mesa-opencl-icd installed\n",
               n ? devs[a].name : "none");
        free(devs);
        skip();
    }
    char sa[16], sb[16];
    snprintf(sa, sizeof sa, "%d", devs[a].index);
    snprintf(sb, sizeof sb, "%d", devs[b].index);
    free(devs);

    size_t np = (size_t)3 * H * W;
    float content[3 * H * W], style[3 * H * W], xa[3 * H * W], xb[3 * H * W];
    check_rng r;
    check_rng_seed(&r, 31);
    make_image(&r, content);
    make_image(&r, style);
    double fa0, fa, fb0, fb;
    char na[300], nb[300];
    run_transfer(sa, content, style, xa, &fa0, &fa, na, sizeof na);
    run_transfer(sb, content, style, xb, &fb0, &fb, nb, sizeof nb);

    double maxd = 0, sumd = 0, moved = 0;
    for (size_t i = 0; i < np; i++) {
        double d = fabs((double)xa[i] - xb[i]);
        if (!(d <= maxd)) maxd = d;
        sumd += d;
        moved = fmax(moved, fabs((double)xa[i] - content[i]));
    }
    printf("  device A: %s\n  device B: %s\n", na, nb);
    printf("  %dx%d, width 1/%.0f, %d L-BFGS steps: loss %.6g -> %.6g (A), %.6g -> %.6g (B)\n",
           H, W, 1 / WIDTH, STEPS, fa0, fa, fb0, fb);
    printf("  largest pixel change from the content image %.3g; pixel difference A-B: "
           "max %.3g, mean %.3g (bound %.3g)\n",
           moved, maxd, sumd / np, BOUND);
    /* the transfer did something, and the same thing on both devices */
    assert_true(fa < 0.9 * fa0 && fb < 0.9 * fb0);
    assert_true(moved > 20 * BOUND);
    assert_true(fabs(fa - fb) <= 1e-3 * fabs(fa));
    assert_true(maxd <= BOUND);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_transfer_two_devices),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
