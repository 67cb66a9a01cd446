/* test_retarget.c: changing a running transfer's aim from its progress
 * function (nst_transfer_retarget), as a live session steers a run.
 *
 * The exact check: a run that starts with every weight 0 has a zero
 * gradient, so L-BFGS stays at the content image ("converged"); re-targeted
 * after its first iteration to weights W (and a blend, a style scale), with
 * the optimiser's history forgotten, it must then repeat, iteration for
 * iteration and bit for bit, a run that had W from the start. Without the
 * reset the converged optimiser would never move; without the new targets
 * the losses would differ; a restart from scratch would be visible in the
 * iteration count. */
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

#define MAXIT 16

typedef struct trace {
    int n;
    int iteration[MAXIT];
    double loss[MAXIT], content[MAXIT], style[MAXIT], tv[MAXIT];
    /* at iteration `at`, retarget with r (or with bad, expecting `refusal`) */
    int at;
    nst_retarget r;
    int retarget_status;
    nst_image *before, *after; /* snapshots at `at` and at `at + 1` */
} trace;

static int record(const nst_progress *p, void *user) {
    trace *t = user;
    if (p->phase != NST_PHASE_ITERATION || t->n >= MAXIT) return 0;
    t->iteration[t->n] = p->iteration;
    t->loss[t->n] = p->loss;
    t->content[t->n] = p->content;
    t->style[t->n] = p->style;
    t->tv[t->n] = p->tv;
    t->n++;
    if (t->at && p->iteration == t->at) {
        assert_int_equal(nst_transfer_snapshot(p->transfer, &t->before), NST_OK);
        assert_int_equal(nst_transfer_retarget(p->transfer, NULL), NST_ERR_INVALID_ARG);
        t->retarget_status = nst_transfer_retarget(p->transfer, &t->r);
    }
    if (t->at && p->iteration == t->at + 1)
        assert_int_equal(nst_transfer_snapshot(p->transfer, &t->after), NST_OK);
    return 0;
}

static nst_image *pattern(int w, int h, double f) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img->data[((size_t)c * h + y) * w + x] =
                    (float)(0.5 + 0.4 * sin(f * (x + (c + 1) * y) + c));
    return img;
}

typedef struct fixture {
    nst_runtime *rt;
    nst_model *model;
    nst_image *content, *style[2];
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    f->rt = check_runtime();
    f->model = check_model(f->rt);
    f->content = pattern(48, 40, 0.07);
    f->style[0] = pattern(40, 40, 0.9);
    f->style[1] = pattern(44, 36, 0.3);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    nst_image_free(f->content);
    nst_image_free(f->style[0]);
    nst_image_free(f->style[1]);
    nst_model_free(f->model);
    nst_runtime_close(f->rt);
    free(f);
    return 0;
}

static void params(nst_params *p, int iterations) {
    nst_params_default(p);
    p->size = 48;
    p->iterations = iterations;
    p->content_weight = 1;
    p->style_weight = 50;
    p->tv_weight = 0.5;
}

static nst_image *run(fixture *f, const nst_params *p, const double *blend, trace *t,
                      nst_status want) {
    const nst_image *styles[2] = {f->style[0], f->style[1]};
    nst_image *out = NULL;
    nst_status st = nst_transfer_run(f->rt, f->model, p, f->content, styles, 2, blend, record, t,
                                     &out);
    if (st != want) fprintf(stderr, "transfer: %s\n", nst_last_error(f->rt));
    assert_int_equal(st, want);
    return out;
}

/* Run B (zero weights, then re-targeted to p's at iteration 1) against run A
 * (p from the start): B's iteration k + 1 is A's iteration k. */
static void check_same_as_fresh(fixture *f, const nst_params *pa, const double *blend_a,
                                const double *blend_b, const nst_retarget *r) {
    const int n = 6;
    trace a, b;
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    nst_image *ia = run(f, pa, blend_a, &a, NST_OK);

    nst_params pb = *pa;
    pb.iterations = n + 1;
    pb.content_weight = pb.style_weight = pb.tv_weight = 0;
    pb.style_scale = 1;
    b.at = 1;
    b.r = *r;
    nst_image *ib = run(f, &pb, blend_b, &b, NST_OK);
    assert_int_equal(b.retarget_status, NST_OK);
    assert_int_equal(a.n, n);
    assert_int_equal(b.n, n + 1);
    assert_true(b.loss[0] == 0);
    for (int k = 0; k < n; k++) {
        assert_int_equal(b.iteration[k + 1], k + 2); /* counted on, not restarted */
        assert_true(b.loss[k + 1] == a.loss[k]);
        assert_true(b.content[k + 1] == a.content[k]);
        assert_true(b.style[k + 1] == a.style[k]);
        assert_true(b.tv[k + 1] == a.tv[k]);
    }
    assert_true(a.loss[n - 1] < a.loss[0]);
    assert_int_equal(memcmp(ia->data, ib->data, sizeof(float) * 3 * ia->w * ia->h), 0);
    nst_image_free(ia);
    nst_image_free(ib);
    nst_image_free(b.before);
    nst_image_free(b.after);
}

static void test_weights_as_fresh_run(void **state) {
    fixture *f = *state;
    nst_params p;
    params(&p, 6);
    nst_retarget r;
    nst_retarget_default(&r);
    r.content_weight = p.content_weight;
    r.style_weight = p.style_weight;
    r.tv_weight = p.tv_weight;
    check_same_as_fresh(f, &p, NULL, NULL, &r);
}

/* The same for the other style losses, whose weights live in the terms'
 * shared style base and whose targets (Gaussian fit, sorted features)
 * are rebuilt for a new blend. */
static void test_style_losses_as_fresh_run(void **state) {
    fixture *f = *state;
    const nst_style_loss_kind kinds[] = {NST_STYLE_W2, NST_STYLE_HIST};
    for (int k = 0; k < 2; k++) {
        nst_params p;
        params(&p, 6);
        p.style_loss = kinds[k];
        const double blend_a[2] = {0.3, 0.7}, blend_b[2] = {1, 0};
        nst_retarget r;
        nst_retarget_default(&r);
        r.content_weight = p.content_weight;
        r.style_weight = p.style_weight;
        r.tv_weight = p.tv_weight;
        r.blend = blend_a;
        check_same_as_fresh(f, &p, blend_a, blend_b, &r);
    }
}

static void test_blend_and_scale_as_fresh_run(void **state) {
    fixture *f = *state;
    nst_params p;
    params(&p, 6);
    p.style_scale = 0.75;
    const double blend_a[2] = {0.2, 0.8}, blend_b[2] = {1, 0};
    nst_retarget r;
    nst_retarget_default(&r);
    r.content_weight = p.content_weight;
    r.style_weight = p.style_weight;
    r.tv_weight = p.tv_weight;
    r.style_scale = 0.75;
    r.blend = blend_a;
    check_same_as_fresh(f, &p, blend_a, blend_b, &r);
}

/* Every weight to 0 mid-run: the gradient vanishes, and the image stays
 * exactly where it was (no restart from the content, no step along the old
 * history). */
static void test_zero_weights_hold_the_image(void **state) {
    fixture *f = *state;
    nst_params p;
    params(&p, 4);
    trace t;
    memset(&t, 0, sizeof t);
    t.at = 2;
    nst_retarget_default(&t.r);
    t.r.content_weight = t.r.style_weight = t.r.tv_weight = 0;
    nst_image *out = run(f, &p, NULL, &t, NST_OK);
    assert_int_equal(t.retarget_status, NST_OK);
    assert_true(t.loss[2] == 0 && t.style[2] == 0 && t.content[2] == 0 && t.tv[2] == 0);
    size_t bytes = sizeof(float) * 3 * out->w * out->h;
    assert_int_equal(memcmp(t.before->data, t.after->data, bytes), 0);
    assert_int_equal(memcmp(t.before->data, out->data, bytes), 0);
    /* and it is not the content image: the first two iterations moved it */
    nst_image *c = NULL;
    assert_int_equal(nst_image_resize(f->content, out->w, out->h, &c, NULL), NST_OK);
    assert_true(memcmp(c->data, out->data, bytes) != 0);
    nst_image_free(c);
    nst_image_free(out);
    nst_image_free(t.before);
    nst_image_free(t.after);
}

/* Refusals change nothing: the run goes on as if not asked. */
static void test_refusals_change_nothing(void **state) {
    fixture *f = *state;
    nst_params p;
    params(&p, 4);
    trace plain;
    memset(&plain, 0, sizeof plain);
    nst_image *want = run(f, &p, NULL, &plain, NST_OK);
    const double bad_blend[2] = {0.7, 0.7};
    struct {
        double cw, scale;
        const double *blend;
        nst_status st;
        const char *want;
    } cases[] = {
        {NAN, 0, NULL, NST_ERR_INVALID_ARG, "content weight"},
        {-1, 17, NULL, NST_ERR_INVALID_ARG, "style scale 17"},
        {-1, 0, bad_blend, NST_ERR_INVALID_ARG, "blend weights sum to 1.4"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        trace t;
        memset(&t, 0, sizeof t);
        t.at = 2;
        nst_retarget_default(&t.r);
        t.r.content_weight = cases[i].cw;
        t.r.style_scale = cases[i].scale;
        t.r.blend = cases[i].blend;
        nst_image *out = run(f, &p, NULL, &t, NST_OK);
        assert_int_equal(t.retarget_status, cases[i].st);
        assert_non_null(strstr(nst_last_error(f->rt), cases[i].want));
        for (int k = 0; k < plain.n; k++) assert_true(t.loss[k] == plain.loss[k]);
        assert_int_equal(memcmp(want->data, out->data, sizeof(float) * 3 * out->w * out->h), 0);
        nst_image_free(out);
        nst_image_free(t.before);
        nst_image_free(t.after);
    }
    nst_image_free(want);
    assert_int_equal(nst_transfer_retarget(NULL, NULL), NST_ERR_INVALID_ARG);
    nst_retarget_default(NULL); /* accepted, does nothing */
}

/* A style scale whose targets do not fit beside the running image is
 * refused with NST_ERR_TOO_LARGE, and the run goes on. */
static void test_scale_beyond_the_plan(void **state) {
    fixture *f = *state;
    nst_params p;
    params(&p, 3);
    int wh[4] = {f->style[0]->w, f->style[0]->h, f->style[1]->w, f->style[1]->h};
    nst_plan pl;
    assert_int_equal(nst_transfer_plan(f->rt, f->model, &p, f->content->w, f->content->h, wh, 2,
                                       &pl),
                     NST_OK);
    p.tile = -1;
    trace t;
    memset(&t, 0, sizeof t);
    t.at = 1;
    nst_retarget_default(&t.r);
    t.r.style_scale = 16; /* 768-pixel styles: targets of a larger image than fits */
    /* a budget the run fits in, and 16x styles do not */
    p.max_memory = 2 * pl.peak + (128ull << 20);
    nst_plan big;
    nst_params pbig = p;
    pbig.style_scale = 16;
    assert_int_equal(nst_transfer_plan(f->rt, f->model, &pbig, f->content->w, f->content->h, wh,
                                       2, &big),
                     NST_OK);
    fprintf(stderr, "budget %llu peak %llu, at 16x: targets %llu\n",
            (unsigned long long)big.budget, (unsigned long long)pl.peak,
            (unsigned long long)big.targets_peak);
    /* the plan's floor under the budget holds both: nothing to refuse */
    if (big.fits && big.targets_peak + big.images + big.optimizer + big.reserve <= big.budget)
        skip();
    nst_image *out = run(f, &p, NULL, &t, NST_OK);
    assert_int_equal(t.retarget_status, NST_ERR_TOO_LARGE);
    assert_int_equal(t.n, 3);
    nst_image_free(out);
    nst_image_free(t.before);
    nst_image_free(t.after);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_weights_as_fresh_run),
        cmocka_unit_test(test_blend_and_scale_as_fresh_run),
        cmocka_unit_test(test_style_losses_as_fresh_run),
        cmocka_unit_test(test_zero_weights_hold_the_image),
        cmocka_unit_test(test_refusals_change_nothing),
        cmocka_unit_test(test_scale_beyond_the_plan),
    };
    return cmocka_run_group_tests_name("retarget", tests, setup, teardown);
}
