/* test_api.c: every public entry point of include/nst.h given NULL pointers,
 * NULL entries in its arrays, zero or negative sizes and counts: each
 * returns an error status with a message naming the argument (in the
 * runtime, or in the nst_msg it was given) and never crashes. Calls with no
 * runtime have nowhere to put a message: they return the status, and
 * nst_last_error(NULL) says that the runtime is NULL. Also what the header
 * promises about values: learning_rate 0, an init image of another shape. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"

/* A call that must fail with NST_ERR_INVALID_ARG and leave a message in
 * msg (an nst_msg *) containing `want`. */
#define EXPECT_MSG(call, msg, want)                                                      \
    do {                                                                               \
        (msg)->text[0] = 0;                                                            \
        nst_status s_ = (call);                                                        \
        if (s_ != NST_ERR_INVALID_ARG || !strstr((msg)->text, (want)))                 \
            fail_msg("%s: status %d, message '%s' (wanted '%s')", #call, (int)s_,      \
                     (msg)->text, (want));                                             \
    } while (0)
/* The same with the message in the runtime. */
#define EXPECT_RT(call, rt, want) EXPECT_MSG(call, RTM(rt), want)

static nst_image *image(int w, int h) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    for (size_t i = 0; i < (size_t)3 * w * h; i++) img->data[i] = (float)(i % 7) / 7;
    return img;
}

static void test_status_and_messages(void **state) {
    (void)state;
    assert_non_null(nst_strerror((nst_status)-1));
    assert_non_null(nst_strerror((nst_status)1000));
    assert_string_not_equal(nst_strerror((nst_status)1000), "");
    /* no runtime: nst_last_error says so */
    assert_non_null(strstr(nst_last_error(NULL), "NULL"));
}

static void test_devices(void **state) {
    (void)state;
    nst_msg msg;
    nst_device_info *devs = NULL;
    int n = 0, index = -1;
    EXPECT_MSG(nst_devices_list(NULL, &n, &msg), &msg, "out is NULL");
    EXPECT_MSG(nst_devices_list(&devs, NULL, &msg), &msg, "count is NULL");
    assert_int_equal(nst_devices_list(NULL, NULL, NULL), NST_ERR_INVALID_ARG); /* no msg */
    assert_int_equal(nst_devices_list(&devs, &n, &msg), NST_OK);
    EXPECT_MSG(nst_device_select(NULL, 2, "0", &index, &msg), &msg, "devs is NULL");
    EXPECT_MSG(nst_device_select(devs, -1, "0", &index, &msg), &msg, "count -1");
    EXPECT_MSG(nst_device_select(devs, n, "0", NULL, &msg), &msg, "index is NULL");
    assert_int_equal(nst_device_select(devs, n, "0", NULL, NULL), NST_ERR_INVALID_ARG);
    /* an empty list selects nothing, with a message */
    msg.text[0] = 0;
    assert_int_not_equal(nst_device_select(NULL, 0, "0", &index, &msg), NST_OK);
    assert_true(msg.text[0] != 0);
    free(devs);
}

static void test_runtime(void **state) {
    (void)state;
    nst_msg msg;
    EXPECT_MSG(nst_runtime_open(NULL, NULL, &msg), &msg, "out is NULL");
    assert_int_equal(nst_runtime_build_all(NULL, NULL), NST_ERR_INVALID_ARG);
    assert_null(nst_runtime_device(NULL));
    assert_int_equal(nst_runtime_peak_bytes(NULL), 0);
    nst_runtime_close(NULL);
    /* the options and the message may be NULL */
    nst_runtime *rt = NULL;
    assert_int_equal(nst_runtime_open(&rt, NULL, NULL), NST_OK);
    assert_non_null(nst_runtime_device(rt));
    nst_runtime_close(rt);
}

static void test_images(void **state) {
    (void)state;
    nst_msg msg;
    nst_image *img = NULL, *good = image(4, 3);
    EXPECT_MSG(nst_image_read(NULL, 0, &img, &msg), &msg, "path is NULL");
    EXPECT_MSG(nst_image_read("tests/data/none.png", 0, NULL, &msg), &msg, "out is NULL");
    assert_int_equal(nst_image_read(NULL, 0, NULL, NULL), NST_ERR_INVALID_ARG);
    EXPECT_MSG(nst_image_create(0, 3, &img, &msg), &msg, "0x3");
    EXPECT_MSG(nst_image_create(4, -1, &img, &msg), &msg, "4x-1");
    assert_null(img);
    EXPECT_MSG(nst_image_create(4, 3, NULL, &msg), &msg, "out is NULL");
    const char *path = check_tmp_path("api.png");
    EXPECT_MSG(nst_image_write(NULL, good, 0, 0, &msg), &msg, "no output file name");
    EXPECT_MSG(nst_image_write(path, NULL, 0, 0, &msg), &msg, "empty");
    nst_image hollow = {4, 3, NULL}, flat = {0, 3, good->data};
    EXPECT_MSG(nst_image_write(path, &hollow, 0, 0, &msg), &msg, "empty");
    EXPECT_MSG(nst_image_write(path, &flat, 0, 0, &msg), &msg, "empty");
    assert_int_equal(nst_image_write(path, NULL, 0, 0, NULL), NST_ERR_INVALID_ARG);
    nst_image_free(NULL);
    nst_image_free(good);
}

static void test_params(void **state) {
    (void)state;
    nst_msg msg;
    nst_params p;
    nst_params_default(NULL);
    EXPECT_MSG(nst_params_check(NULL, 1, NULL, &msg), &msg, "p is NULL");
    nst_params_default(&p);
    EXPECT_MSG(nst_params_check(&p, 0, NULL, &msg), &msg, "0 style images");
    EXPECT_MSG(nst_params_check(&p, -3, NULL, &msg), &msg, "-3 style images");
    p.content_layers = NULL;
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, "no content layers");
    nst_params_default(&p);
    p.style_layers = "";
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, "no style layers");
    /* images inside the parameters */
    nst_image *good = image(8, 8);
    nst_image hollow = {8, 8, NULL}, flat = {8, 0, good->data};
    nst_params_default(&p);
    p.init = NST_INIT_IMAGE;
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, "no image given");
    p.init_image = &hollow;
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, "init_image");
    p.init_image = &flat;
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, "init_image");
    nst_params_default(&p);
    const nst_image *masks[2] = {good, NULL};
    p.masks = masks;
    EXPECT_MSG(nst_params_check(&p, 2, NULL, &msg), &msg, "masks[1] is NULL");
    masks[1] = &hollow;
    EXPECT_MSG(nst_params_check(&p, 2, NULL, &msg), &msg, "masks[1]");
    masks[1] = good;
    assert_int_equal(nst_params_check(&p, 2, NULL, &msg), NST_OK);
    nst_image_free(good);
}

static void test_models(void **state) {
    (void)state;
    nst_runtime *rt = check_runtime();
    nst_model *m = NULL;
    assert_int_equal(nst_model_load(NULL, "weights/none.safetensors", &m), NST_ERR_INVALID_ARG);
    EXPECT_RT(nst_model_load(rt, NULL, &m), rt, "path is NULL");
    EXPECT_RT(nst_model_load(rt, "weights/none.safetensors", NULL), rt, "out is NULL");
    assert_int_equal(nst_model_generate(NULL, 1, 0.0625, &m), NST_ERR_INVALID_ARG);
    EXPECT_RT(nst_model_generate(rt, 1, 0.0625, NULL), rt, "out is NULL");
    EXPECT_RT(nst_model_generate(rt, 1, 0, &m), rt, "width multiplier");
    EXPECT_RT(nst_model_generate(rt, 1, NAN, &m), rt, "width multiplier");
    assert_null(m);
    nst_model_free(NULL);
    nst_runtime_close(rt);
}

/* The fixture of the transfer calls: a runtime, a narrow network, images. */
typedef struct fixture {
    nst_runtime *rt;
    nst_model *model;
    nst_image *content, *style;
    nst_params p;
} fixture;

static int setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    if (!f) return -1;
    f->rt = check_runtime();
    if (nst_model_generate(f->rt, 3, 0.0625, &f->model) != NST_OK) return -1;
    f->content = image(32, 24);
    f->style = image(24, 24);
    nst_params_default(&f->p);
    f->p.size = 32;
    f->p.iterations = 1;
    *state = f;
    return 0;
}

static int teardown(void **state) {
    fixture *f = *state;
    nst_image_free(f->content);
    nst_image_free(f->style);
    nst_model_free(f->model);
    nst_runtime_close(f->rt);
    free(f);
    return 0;
}

/* nst_transfer_run with `styles` and `content`: an invalid argument, the
 * message containing `want`, no image. */
static void refused(fixture *f, const nst_params *p, const nst_image *content,
                    const nst_image *const *styles, int nstyles, const char *want) {
    nst_image *out = (nst_image *)&out; /* must be overwritten with NULL */
    EXPECT_RT(nst_transfer_run(f->rt, f->model, p, content, styles, nstyles, NULL, NULL, NULL,
                               &out),
              f->rt, want);
    assert_null(out);
}

static void test_transfer_run(void **state) {
    fixture *f = *state;
    nst_runtime *rt = f->rt;
    nst_image *out = NULL;
    const nst_image *styles[2] = {f->style, f->style};
    nst_image hollow = {24, 24, NULL}, flat = {0, 24, f->style->data};
    /* no runtime: nowhere for a message, only the status */
    assert_int_equal(nst_transfer_run(NULL, f->model, &f->p, f->content, styles, 1, NULL, NULL,
                                      NULL, &out),
                     NST_ERR_INVALID_ARG);
    assert_null(out);
    EXPECT_RT(nst_transfer_run(rt, f->model, &f->p, f->content, styles, 1, NULL, NULL, NULL,
                               NULL),
              rt, "out is NULL");
    EXPECT_RT(nst_transfer_run(rt, NULL, &f->p, f->content, styles, 1, NULL, NULL, NULL, &out),
              rt, "model is NULL");
    EXPECT_RT(nst_transfer_run(rt, f->model, NULL, f->content, styles, 1, NULL, NULL, NULL,
                               &out),
              rt, "p is NULL");
    refused(f, &f->p, NULL, styles, 1, "content is NULL");
    nst_image chollow = {32, 24, NULL}, cflat = {32, -2, f->content->data};
    refused(f, &f->p, &chollow, styles, 1, "content");
    refused(f, &f->p, &cflat, styles, 1, "content");
    refused(f, &f->p, f->content, NULL, 1, "styles is NULL");
    /* what a failed nst_image_read leaves in the caller's array */
    const nst_image *first_null[2] = {NULL, f->style};
    refused(f, &f->p, f->content, first_null, 2, "styles[0] is NULL");
    const nst_image *second_null[2] = {f->style, NULL};
    refused(f, &f->p, f->content, second_null, 2, "styles[1] is NULL");
    const nst_image *hollow_style[1] = {&hollow};
    refused(f, &f->p, f->content, hollow_style, 1, "styles[0]");
    const nst_image *flat_style[1] = {&flat};
    refused(f, &f->p, f->content, flat_style, 1, "styles[0]");
    refused(f, &f->p, f->content, styles, 0, "0 style images");
    refused(f, &f->p, f->content, styles, NST_MAX_STYLES + 1, "style images");
    nst_params q = f->p;
    const nst_image *masks[2] = {f->style, NULL};
    q.masks = masks;
    refused(f, &q, f->content, styles, 2, "masks[1] is NULL");
    q = f->p;
    q.init = NST_INIT_IMAGE;
    q.init_image = &hollow;
    refused(f, &q, f->content, styles, 1, "init_image");
    /* and a valid call still works */
    assert_int_equal(nst_transfer_run(rt, f->model, &f->p, f->content, styles, 2, NULL, NULL,
                                      NULL, &out),
                     NST_OK);
    assert_non_null(out);
    nst_image_free(out);
}

static void test_transfer_plan(void **state) {
    fixture *f = *state;
    nst_runtime *rt = f->rt;
    nst_plan plan;
    int wh[4] = {24, 24, 24, 24};
    assert_int_equal(nst_transfer_plan(NULL, f->model, &f->p, 32, 24, wh, 1, &plan),
                     NST_ERR_INVALID_ARG);
    EXPECT_RT(nst_transfer_plan(rt, f->model, &f->p, 32, 24, wh, 1, NULL), rt, "out is NULL");
    EXPECT_RT(nst_transfer_plan(rt, NULL, &f->p, 32, 24, wh, 1, &plan), rt, "model is NULL");
    EXPECT_RT(nst_transfer_plan(rt, f->model, NULL, 32, 24, wh, 1, &plan), rt, "p is NULL");
    EXPECT_RT(nst_transfer_plan(rt, f->model, &f->p, 0, 24, wh, 1, &plan), rt, "0x24");
    EXPECT_RT(nst_transfer_plan(rt, f->model, &f->p, 32, -1, wh, 1, &plan), rt, "32x-1");
    EXPECT_RT(nst_transfer_plan(rt, f->model, &f->p, 32, 24, wh, 0, &plan), rt,
              "0 style images");
    int bad[4] = {24, 24, 24, 0};
    EXPECT_RT(nst_transfer_plan(rt, f->model, &f->p, 32, 24, bad, 2, &plan), rt,
              "style image 2 is 24x0");
    assert_int_equal(nst_transfer_plan(rt, f->model, &f->p, 32, 24, NULL, 2, &plan), NST_OK);
}

/* Inside the progress callback, the one place a transfer exists. */
static int snapshot_progress(const nst_progress *pr, void *user) {
    fixture *f = user;
    EXPECT_RT(nst_transfer_snapshot(pr->transfer, NULL), f->rt, "out is NULL");
    nst_image *img = NULL;
    assert_int_equal(nst_transfer_snapshot(pr->transfer, &img), NST_OK);
    nst_image_free(img);
    return 0;
}

static void test_transfer_snapshot(void **state) {
    fixture *f = *state;
    nst_image *img = (nst_image *)&img, *out = NULL;
    assert_int_equal(nst_transfer_snapshot(NULL, &img), NST_ERR_INVALID_ARG);
    assert_null(img);
    assert_int_equal(nst_transfer_snapshot(NULL, NULL), NST_ERR_INVALID_ARG);
    const nst_image *styles[1] = {f->style};
    assert_int_equal(nst_transfer_run(f->rt, f->model, &f->p, f->content, styles, 1, NULL,
                                      snapshot_progress, f, &out),
                     NST_OK);
    nst_image_free(out);
}

static void test_bench(void **state) {
    fixture *f = *state;
    nst_runtime *rt = f->rt;
    nst_bench_result r;
    assert_int_equal(nst_bench_eval(NULL, f->model, &f->p, 32, 32, 1, &r), NST_ERR_INVALID_ARG);
    EXPECT_RT(nst_bench_eval(rt, f->model, &f->p, 32, 32, 1, NULL), rt, "out is NULL");
    EXPECT_RT(nst_bench_eval(rt, NULL, &f->p, 32, 32, 1, &r), rt, "model is NULL");
    EXPECT_RT(nst_bench_eval(rt, f->model, NULL, 32, 32, 1, &r), rt, "p is NULL");
    EXPECT_RT(nst_bench_eval(rt, f->model, &f->p, 32, 32, 0, &r), rt, "0 evaluations");
    EXPECT_RT(nst_bench_eval(rt, f->model, &f->p, 0, 32, 1, &r), rt, "0x32");
    EXPECT_RT(nst_bench_eval(rt, f->model, &f->p, 32, -4, 1, &r), rt, "32x-4");
    nst_params q = f->p;
    q.content_layers = "relu9_9";
    EXPECT_RT(nst_bench_eval(rt, f->model, &q, 32, 32, 1, &r), rt, "relu9_9");
    assert_int_equal(nst_bench_eval(rt, f->model, &f->p, 32, 32, 1, &r), NST_OK);
    assert_int_equal(r.evals, 1);
}

/* What the header promises about values: learning_rate 0 is the
 * optimiser's default (the same run, bit for bit, as that rate given), and
 * an init image of another shape is resized to the output. */
static nst_image *run_ok(fixture *f, const nst_params *p) {
    const nst_image *styles[1] = {f->style};
    nst_image *out = NULL;
    nst_status st = nst_transfer_run(f->rt, f->model, p, f->content, styles, 1, NULL, NULL, NULL,
                                     &out);
    if (st != NST_OK) fail_msg("%s", nst_last_error(f->rt));
    return out;
}

static void test_documented_values(void **state) {
    fixture *f = *state;
    const struct {
        nst_optimizer opt;
        double lr;
    } defaults[] = {{NST_OPTIMIZER_ADAM, 0.02}, {NST_OPTIMIZER_LBFGS, 1}};
    for (int i = 0; i < 2; i++) {
        nst_params p = f->p;
        p.iterations = 3;
        p.optimizer = defaults[i].opt;
        p.learning_rate = 0;
        nst_image *a = run_ok(f, &p);
        p.learning_rate = defaults[i].lr;
        nst_image *b = run_ok(f, &p);
        p.learning_rate = defaults[i].lr * 0.5;
        nst_image *c = run_ok(f, &p);
        size_t n = (size_t)3 * a->w * a->h;
        assert_memory_equal(a->data, b->data, n * sizeof(float));
        assert_memory_not_equal(a->data, c->data, n * sizeof(float));
        nst_image_free(a);
        nst_image_free(b);
        nst_image_free(c);
    }
    nst_params p = f->p;
    nst_image *init = image(10, 40);
    p.init = NST_INIT_IMAGE;
    p.init_image = init;
    nst_image *out = run_ok(f, &p);
    assert_int_equal(out->w, 32);
    assert_int_equal(out->h, 24);
    nst_image_free(out);
    nst_image_free(init);
}

int main(void) {
    const struct CMUnitTest host[] = {
        cmocka_unit_test(test_status_and_messages),
        cmocka_unit_test(test_devices),
        cmocka_unit_test(test_runtime),
        cmocka_unit_test(test_images),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_models),
    };
    const struct CMUnitTest transfer[] = {
        cmocka_unit_test(test_transfer_run),
        cmocka_unit_test(test_transfer_plan),
        cmocka_unit_test(test_transfer_snapshot),
        cmocka_unit_test(test_bench),
        cmocka_unit_test(test_documented_values),
    };
    int failed = cmocka_run_group_tests_name("api: runtime, images, parameters", host, NULL, NULL);
    failed += cmocka_run_group_tests_name("api: transfer", transfer, setup, teardown);
    return failed ? 1 : 0;
}
