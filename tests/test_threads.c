/* test_threads.c: what nst.h promises about threads. Two transfers run at
 * once on two threads, each on a runtime of its own (opened, used and closed
 * on its thread): the torchvision .pth reader, the tiling of both, image
 * files written and read back. Each must give exactly the image it gives
 * alone, since a transfer is deterministic. The host-side parts (tiling,
 * weight files, image files) also run on both threads at once with nothing
 * between them: the OpenCL driver's own locks order much of a transfer's
 * work, which would hide a race from ThreadSanitizer. Built with it (make
 * check-tsan), any unguarded state the library shares between threads is
 * reported as a data race, whether or not it corrupted this run. */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"
#include "tiling.h"
#include "tune.h"
#include "weights.h"

/* One transfer, all of it on one thread: nothing here may call cmocka's
 * assertions, which jump back into the main thread's test. */
typedef struct job {
    const nst_settings *set;
    int tile;            /* nst_params.tile */
    int scales;
    uint64_t seed;
    const char *out;     /* written, then read back */
    nst_status st;
    char err[1200];
    nst_image *result, *reread;
} job;

static nst_status pattern(int w, int h, int kind, nst_image **out) {
    nst_status st = nst_image_create(w, h, out, NULL);
    if (st != NST_OK) return st;
    nst_image *img = *out;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double v = kind ? 0.5 + 0.5 * sin((x + 2 * y) * 0.7 + c)
                                : (x * (c + 1) + y * (3 - c)) / (double)(4 * (w + h));
                img->data[((size_t)c * h + y) * w + x] = (float)v;
            }
    return NST_OK;
}

static void *run_job(void *arg) {
    job *j = arg;
    nst_runtime *rt = NULL;
    nst_model *model = NULL;
    nst_image *content = NULL, *style = NULL;
    nst_msg msg = {{0}};
    nst_runtime_options ro = {0};
    ro.no_cache = 1;
    ro.settings = j->set;
    j->st = nst_runtime_open(&rt, &ro, &msg);
    if (j->st != NST_OK) {
        snprintf(j->err, sizeof j->err, "runtime: %s", msg.text);
        return NULL;
    }
    if ((j->st = nst_model_load(rt, "tests/data/tiny-vgg.pth", &model)) != NST_OK ||
        (j->st = pattern(40, 30, 0, &content)) != NST_OK ||
        (j->st = pattern(32, 32, 1, &style)) != NST_OK) {
        snprintf(j->err, sizeof j->err, "setting up: %s", nst_last_error(rt));
        goto done;
    }
    nst_params p;
    nst_params_default(&p);
    p.size = 48;
    p.iterations = 3;
    p.scale_iterations = 2;
    p.scales = j->scales;
    p.init = NST_INIT_RANDOM;
    p.seed = j->seed;
    p.tile = j->tile;
    /* shallow layers, so that small tiles hold their receptive field */
    p.content_layers = "relu2_2";
    p.style_layers = "relu1_1,relu2_1";
    const nst_image *styles[1] = {style};
    j->st = nst_transfer_run(rt, model, &p, content, styles, 1, NULL, NULL, NULL, &j->result);
    if (j->st != NST_OK) {
        snprintf(j->err, sizeof j->err, "transfer: %s", nst_last_error(rt));
        goto done;
    }
    if ((j->st = nst_image_write(j->out, j->result, 0, 1, &msg)) != NST_OK ||
        (j->st = nst_image_read(j->out, 0, &j->reread, &msg)) != NST_OK)
        snprintf(j->err, sizeof j->err, "image file: %s", msg.text);
done:
    nst_image_free(content);
    nst_image_free(style);
    nst_model_free(model);
    nst_runtime_close(rt);
    return NULL;
}

static void job_done(const job *j) {
    if (j->st != NST_OK) fail_msg("%s", j->err);
    assert_non_null(j->result);
    assert_non_null(j->reread);
    assert_int_equal(j->reread->w, j->result->w);
    assert_int_equal(j->reread->h, j->result->h);
}

static void job_free(job *j) {
    nst_image_free(j->result);
    nst_image_free(j->reread);
}

/* a and b ran the same work: the same pixels, exactly. */
static void same_image(const char *what, const nst_image *a, const nst_image *b) {
    assert_int_equal(a->w, b->w);
    assert_int_equal(a->h, b->h);
    size_t n = (size_t)3 * a->w * a->h;
    for (size_t i = 0; i < n; i++)
        if (a->data[i] != b->data[i])
            fail_msg("%s: pixel value %zu is %.9g alone and %.9g beside another transfer", what,
                     i, a->data[i], b->data[i]);
}

static void test_two_runtimes_two_threads(void **state) {
    (void)state;
    nst_settings set;
    check_settings(&set);
    /* a whole-image run with two scales, and a tiled one */
    job alone[2] = {{&set, 0, 2, 11, check_tmp_path("thread-a0.png"), 0, "", NULL, NULL},
                    {&set, 24, 1, 12, check_tmp_path("thread-b0.png"), 0, "", NULL, NULL}};
    job both[2] = {{&set, 0, 2, 11, check_tmp_path("thread-a1.png"), 0, "", NULL, NULL},
                   {&set, 24, 1, 12, check_tmp_path("thread-b1.png"), 0, "", NULL, NULL}};
    for (int k = 0; k < 2; k++) {
        run_job(&alone[k]);
        job_done(&alone[k]);
    }
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, run_job, &both[k]), 0);
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_join(th[k], NULL), 0);
    for (int k = 0; k < 2; k++) job_done(&both[k]);
    same_image("whole image, two scales", alone[0].result, both[0].result);
    same_image("tiled", alone[1].result, both[1].result);
    same_image("file written beside another", alone[1].reread, both[1].reread);
    for (int k = 0; k < 2; k++) {
        job_free(&alone[k]);
        job_free(&both[k]);
    }
}

/* The same work on two threads at once, twice over: the tilings, the
 * weight reader and the image files of both threads meet in the library. */
static void test_same_work_at_once(void **state) {
    (void)state;
    nst_settings set;
    check_settings(&set);
    job j[2] = {{&set, 32, 1, 5, check_tmp_path("thread-c0.png"), 0, "", NULL, NULL},
                {&set, 32, 1, 5, check_tmp_path("thread-c1.png"), 0, "", NULL, NULL}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_create(&th[k], NULL, run_job, &j[k]), 0);
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_join(th[k], NULL), 0);
    for (int k = 0; k < 2; k++) job_done(&j[k]);
    same_image("the same transfer on two threads", j[0].result, j[1].result);
    for (int k = 0; k < 2; k++) job_free(&j[k]);
}

/* ---- host-side work, both threads at once --------------------------------- */

enum { ROUNDS = 20 };

typedef struct host_job {
    int h, w, tile;          /* this thread's tiling */
    nst_tiling want;         /* made beforehand on the main thread */
    double weights_sum;      /* of tests/data/tiny-vgg.pth, as read in the first round */
    const nst_image *img;    /* written and read back */
    const char *path;
    pthread_barrier_t *start;
    char err[1200];          /* the first failure */
} host_job;

static double weights_sum(const nst_weights *w) {
    double sum = 0;
    for (int i = 0; i < w->count; i++)
        for (size_t j = 0; j < w->t[i].count; j++) sum += w->t[i].data[j];
    return sum;
}

static void *host_work(void *arg) {
    host_job *j = arg;
    nst_msg msg = {{0}};
    pthread_barrier_wait(j->start);
    for (int r = 0; r < ROUNDS && !j->err[0]; r++) {
        nst_tiling t;
        if (nst_tiling_make(j->h, j->w, j->tile, 16, 4, &t, &msg) != NST_OK) {
            snprintf(j->err, sizeof j->err, "tiling: %s", msg.text);
            break;
        }
        if (t.ny != j->want.ny || t.nx != j->want.nx ||
            memcmp(t.tiles, j->want.tiles, (size_t)t.ny * t.nx * sizeof *t.tiles))
            snprintf(j->err, sizeof j->err, "round %d: another tiling than alone", r);
        nst_tiling_free(&t);
        nst_weights *w = NULL;
        if (nst_weights_load("tests/data/tiny-vgg.pth", &w, &msg) != NST_OK)
            snprintf(j->err, sizeof j->err, "weights: %s", msg.text);
        else if (r == 0)
            j->weights_sum = weights_sum(w);
        else if (weights_sum(w) != j->weights_sum)
            snprintf(j->err, sizeof j->err, "round %d: other weights than in the first", r);
        nst_weights_free(w);
        nst_image *back = NULL;
        if (nst_image_write(j->path, j->img, 0, 1, &msg) != NST_OK ||
            nst_image_read(j->path, 0, &back, &msg) != NST_OK)
            snprintf(j->err, sizeof j->err, "image file: %s", msg.text);
        else if (back->w != j->img->w || back->h != j->img->h)
            snprintf(j->err, sizeof j->err, "round %d: the image read back differs", r);
        nst_image_free(back);
    }
    return NULL;
}

/* Runs first: the threads are the first to read a weight file or write an
 * image in the process, so that lazily made tables would be made by both. */
static void test_host_work_at_once(void **state) {
    (void)state;
    nst_msg msg = {{0}};
    nst_image *img[2] = {NULL, NULL};
    assert_int_equal(pattern(37, 23, 0, &img[0]), NST_OK);
    assert_int_equal(pattern(23, 37, 1, &img[1]), NST_OK);
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    /* many tiles of other sizes on each thread; one directory for the files */
    host_job j[2] = {{900, 700, 80, {0}, 0, img[0], check_tmp_path("host-a.png"), &start, ""},
                     {500, 1300, 64, {0}, 0, img[1], check_tmp_path("host-b.png"), &start, ""}};
    for (int k = 0; k < 2; k++)
        assert_int_equal(nst_tiling_make(j[k].h, j[k].w, j[k].tile, 16, 4, &j[k].want, &msg),
                         NST_OK);
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, host_work, &j[k]), 0);
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_join(th[k], NULL), 0);
    pthread_barrier_destroy(&start);
    nst_weights *w = NULL;
    assert_int_equal(nst_weights_load("tests/data/tiny-vgg.pth", &w, &msg), NST_OK);
    for (int k = 0; k < 2; k++) {
        if (j[k].err[0]) fail_msg("thread %d: %s", k, j[k].err);
        if (j[k].weights_sum != weights_sum(w))
            fail_msg("thread %d read other weights than one thread alone", k);
        nst_tiling_free(&j[k].want);
        nst_image_free(img[k]);
    }
    nst_weights_free(w);
}

/* ---- saved GEMM tuning, applied on both threads ------------------------------ */

typedef struct tune_job {
    nst_runtime *rt;
    pthread_barrier_t *start;
} tune_job;

static void *apply_tuning(void *arg) {
    tune_job *j = arg;
    pthread_barrier_wait(j->start);
    nst_tune_apply_saved(j->rt);
    return NULL;
}

/* Runs last: CLBlast keeps the parameters for the rest of the process. Both
 * runtimes (on the same device) apply a saved file at once; the process-wide
 * list of devices with parameters in effect is shared between them. */
static void test_tuning_at_once(void **state) {
    (void)state;
    nst_settings set;
    check_settings(&set);
    const char *dir = check_tmp_path("thread-tune");
    char cmd[600], path[1200], text[2048];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    snprintf(set.cache_dir, sizeof set.cache_dir, "%s", dir);
    set.no_tune = 0;
    nst_runtime *rt[2] = {check_runtime_with(&set), check_runtime_with(&set)};
    /* small valid Xgemm parameters for this device, as nst tune writes them */
    assert_int_equal(nst_tune_path(rt[0], path, sizeof path), 0);
    snprintf(text, sizeof text,
             "nst-gemm-tune 1\nplatform %s\ndevice %s\nversion %s\ndriver %s\nclblast %s\n"
             "gflops 1.0 1.0\nkernel Xgemm GEMMK=0 KREG=1 KWG=16 KWI=2 MDIMA=8 MDIMC=8 MWG=32 "
             "NDIMB=16 NDIMC=8 NWG=64 SA=0 SB=1 STRM=1 STRN=0 VWM=2 VWN=2\n",
             rt[0]->info.platform, rt[0]->info.name, rt[0]->info.version, rt[0]->info.driver,
             nst_blas_version());
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
    pthread_barrier_t start;
    assert_int_equal(pthread_barrier_init(&start, NULL, 2), 0);
    tune_job j[2] = {{rt[0], &start}, {rt[1], &start}};
    pthread_t th[2];
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, apply_tuning, &j[k]), 0);
    for (int k = 0; k < 2; k++) assert_int_equal(pthread_join(th[k], NULL), 0);
    pthread_barrier_destroy(&start);
    for (int k = 0; k < 2; k++) {
        if (!nst_tune_applied(rt[k])) fail_msg("runtime %d: %s", k, nst_tune_note(rt[k]));
        nst_runtime_close(rt[k]);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_host_work_at_once),
        cmocka_unit_test(test_two_runtimes_two_threads),
        cmocka_unit_test(test_same_work_at_once),
        cmocka_unit_test(test_tuning_at_once),
    };
    return cmocka_run_group_tests_name("threads", tests, NULL, NULL);
}
