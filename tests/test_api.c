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
    EXPECT_MSG(nst_devices_list_with(NULL, NULL, &n, &msg), &msg, "out is NULL");
    EXPECT_MSG(nst_devices_list_with(NULL, &devs, NULL, &msg), &msg, "count is NULL");
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

/* nst_params_check is the one place the ranges are kept (the nst command
 * reports its messages): each limit, each side of it, and the message. */
static void test_params_ranges(void **state) {
    (void)state;
    nst_msg msg;
    nst_params p;
#define BAD(field, value, want)                                                        \
    do {                                                                               \
        nst_params_default(&p);                                                        \
        p.field = (value);                                                             \
        EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, want);                   \
    } while (0)
#define GOOD(field, value)                                                             \
    do {                                                                               \
        nst_params_default(&p);                                                        \
        p.field = (value);                                                             \
        if (nst_params_check(&p, 1, NULL, &msg) != NST_OK)                             \
            fail_msg("%s = %s refused: %s", #field, #value, msg.text);                 \
    } while (0)
    BAD(size, 15, "size 15 is not in 16..65536");
    BAD(size, 65537, "size 65537");
    GOOD(size, 16);
    BAD(style_scale, 0, "style scale 0 is not in (0, 16]");
    BAD(style_scale, NAN, "style scale");
    GOOD(style_scale, 16);
    BAD(content_weight, -1, "content weight -1 is not a finite number >= 0");
    BAD(style_weight, INFINITY, "style weight inf");
    BAD(tv_weight, NAN, "tv weight");
    GOOD(tv_weight, 0);
    BAD(iterations, 0, "iterations 0 is not in 1..1000000");
    GOOD(iterations, 1000000);
    BAD(optimizer, (nst_optimizer)7, "optimizer 7");
    BAD(init, (nst_init)9, "init 9");
    /* 0 is the optimiser's default: only a negative or non-finite rate is wrong */
    BAD(learning_rate, -1, "learning rate -1 is not a finite number >= 0");
    BAD(learning_rate, INFINITY, "learning rate inf");
    GOOD(learning_rate, 0);
    GOOD(learning_rate, 1e-6);
    BAD(lbfgs_history, 0, "L-BFGS history 0 is not in 1..1000");
    BAD(lbfgs_history, 1001, "L-BFGS history 1001");
    /* scales: 1..12, as the nst command always said */
    BAD(scales, 0, "scales 0 is not in 1..12");
    BAD(scales, 13, "scales 13");
    GOOD(scales, 1);
    BAD(scale_iterations, -1, "scale iterations -1 is not in 0..1000000");
    GOOD(scale_iterations, 0);
    BAD(average_decay, 1, "average decay 1 is not in [0, 1)");
    BAD(average_decay, -0.5, "average decay -0.5");
    GOOD(average_decay, 0.999);
    /* tile: 0 automatic, -1 never, else 16..65536 pixels */
    BAD(tile, -5, "tile -5 is not 0 (automatic), -1 (never) or a size in 16..65536 pixels");
    BAD(tile, 15, "tile 15");
    BAD(tile, 65537, "tile 65537");
    GOOD(tile, -1);
    GOOD(tile, 0);
    GOOD(tile, 16);
    GOOD(tile, 65536);
#undef BAD
#undef GOOD
    /* style layer weights come with their count, which must match the layers */
    const double lw[5] = {1, 2, 3, 4, 5};
    nst_params_default(&p); /* five style layers */
    p.style_layer_weights = lw;
    p.style_layer_weight_count = 2;
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg,
               "2 style layer weights for 5 style layers");
    p.style_layer_weight_count = 0;
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, "0 style layer weights");
    p.style_layer_weight_count = 5;
    assert_int_equal(nst_params_check(&p, 1, NULL, &msg), NST_OK);
    p.style_layers = "relu1_1,relu2_1";
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg,
               "5 style layer weights for 2 style layers");
    p.style_layer_weight_count = 2;
    assert_int_equal(nst_params_check(&p, 1, NULL, &msg), NST_OK);
    p.style_layer_weights = NULL;
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, "style_layer_weights is NULL");
    const double neg[2] = {1, -1};
    p.style_layer_weights = neg;
    EXPECT_MSG(nst_params_check(&p, 1, NULL, &msg), &msg, "style layer weight 2 (-1)");
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
    /* the network: named, parsed, refused when unknown, reported */
    EXPECT_RT(nst_model_load_network(rt, "weights/none.safetensors", (nst_network)7, &m), rt,
              "network 7");
    EXPECT_RT(nst_model_generate_network(rt, (nst_network)-1, 1, 0.0625, &m), rt, "network -1");
    assert_null(m);
    assert_int_equal(nst_model_network(NULL), NST_NETWORK_AUTO);
    assert_int_equal(nst_model_generate_network(rt, NST_NETWORK_VGG16, 1, 0.0625, &m), NST_OK);
    assert_int_equal(nst_model_network(m), NST_NETWORK_VGG16);
    nst_model_free(m);
    assert_int_equal(nst_model_generate_network(rt, NST_NETWORK_AUTO, 1, 0.0625, &m), NST_OK);
    assert_int_equal(nst_model_network(m), NST_NETWORK_VGG19);
    nst_model_free(m);
    assert_string_equal(nst_network_name(NST_NETWORK_VGG16), "vgg16");
    assert_string_equal(nst_network_name(NST_NETWORK_AUTO), "auto");
    assert_null(nst_network_name((nst_network)9));
    assert_int_equal(nst_network_parse("VGG-16"), NST_NETWORK_VGG16);
    assert_int_equal(nst_network_parse("vgg19"), NST_NETWORK_VGG19);
    assert_int_equal(nst_network_parse("auto"), NST_NETWORK_AUTO);
    assert_int_equal(nst_network_parse("vgg11"), -1);
    assert_int_equal(nst_network_parse(NULL), -1);
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
    f->model = check_model(f->rt);
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
        cmocka_unit_test(test_params_ranges),
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
