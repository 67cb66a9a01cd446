/* test_video.c: the video module (video.h) and the optical flow (flow.h).
 * A camera pan and a zoom over an image (tubingen.jpg from the shared data
 * when present, else a generated texture) have a known true flow, which the
 * DIS flow must find; the consistency mask must leave out exactly what
 * enters the frame; warping the previous frame by the flow must give the
 * next; a square moving over a background must be left out where it
 * uncovers the background. Frames written as FFV1 (lossless) come back
 * exactly, as H.264 closely, and an image sequence names one file per
 * frame; bad files give messages. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "flow.h"
#include "image.h"
#include "video.h"

/* A W x H picture: the shared photograph when present, else a smooth
 * texture with detail at several scales (what optical flow needs). */
static nst_image *picture(int W, int H) {
    const char *dir = getenv("NST_SHARED_DATA");
    char path[1024];
    snprintf(path, sizeof path, "%s/images/tubingen.jpg", dir && *dir ? dir : "../shared/data");
    nst_image *src = NULL, *img = NULL;
    if (nst_image_read(path, 0, &src, NULL) == NST_OK) {
        assert_int_equal(nst_image_resize(src, W, H, &img, NULL), NST_OK);
        nst_image_free(src);
        return img;
    }
    static int said = 0;
    if (!said++)
        printf("  (%s not found, set NST_SHARED_DATA: a generated texture instead)\n", path);
    assert_int_equal(nst_image_create(W, H, &img, NULL), NST_OK);
    check_rng r;
    check_rng_seed(&r, 9);
    double fx[8], fy[8], ph[8];
    for (int k = 0; k < 8; k++) {
        fx[k] = check_uniform(&r, 0.02f, 0.35f);
        fy[k] = check_uniform(&r, 0.02f, 0.35f);
        ph[k] = check_uniform(&r, 0, 6.28f);
    }
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                double v = 0.5;
                for (int k = 0; k < 8; k++)
                    v += 0.06 * sin(fx[k] * x + ph[k] + c) * cos(fy[k] * y + 0.5 * ph[k]);
                img->data[((size_t)c * H + y) * W + x] = (float)v;
            }
    return img;
}

static nst_image *crop(const nst_image *src, int x0, int y0, int w, int h) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            memcpy(img->data + ((size_t)c * h + y) * w,
                   src->data + ((size_t)c * src->h + y + y0) * src->w + x0, w * sizeof(float));
    return img;
}

/* Mean endpoint error of flow against (u, v) = (a + b x, c + d y) over the
 * pixels at least `border` from the edges. */
static double epe(const float *flow, int w, int h, int border, double a, double b, double c,
                  double d) {
    double s = 0;
    long n = 0;
    for (int y = border; y < h - border; y++)
        for (int x = border; x < w - border; x++) {
            size_t i = (size_t)y * w + x;
            double du = flow[2 * i] - (a + b * x), dv = flow[2 * i + 1] - (c + d * y);
            s += sqrt(du * du + dv * dv);
            n++;
        }
    return s / n;
}

/* The camera moves right by 5 and down by 3 pixels: the scene moves left
 * and up, so the flow from frame 0 to frame 1 is (-5, -3) everywhere. */
static void test_flow_pan(void **state) {
    (void)state;
    const int w = 160, h = 120, dx = 5, dy = 3;
    nst_image *big = picture(w + 40, h + 40);
    nst_image *a = crop(big, 10, 10, w, h), *b = crop(big, 10 + dx, 10 + dy, w, h);
    float *fwd = malloc(2 * sizeof(float) * w * h), *bwd = malloc(2 * sizeof(float) * w * h);
    float *mask = malloc(sizeof(float) * w * h);
    nst_msg m;
    assert_int_equal(nst_flow(a, b, NST_FLOW_MEDIUM, fwd, &m), NST_OK);
    assert_int_equal(nst_flow(b, a, NST_FLOW_MEDIUM, bwd, &m), NST_OK);
    /* the bound: well under the half pixel of squared disagreement the
     * consistency check tolerates (a flow off by 0.5 px would fail it) */
    double ef = epe(fwd, w, h, 16, -dx, 0, -dy, 0), eb = epe(bwd, w, h, 16, dx, 0, dy, 0);
    printf("  pan (%d, %d): endpoint error forward %.3f, backward %.3f px\n", dx, dy, ef, eb);
    assert_true(ef < 0.25 && eb < 0.25);

    /* the mask of frame b: 0 on the strip that entered on the right and at
     * the bottom (b + bwd falls outside a), 1 inside */
    nst_flow_consistency(fwd, bwd, w, h, mask);
    long in_ok = 0, in_n = 0, out_ok = 0, out_n = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float c = mask[(size_t)y * w + x];
            if (x >= w - dx + 1 || y >= h - dy + 1) {
                out_n++;
                out_ok += c == 0;
            } else if (x < w - dx - 8 && y < h - dy - 8 && x > 8 && y > 8) {
                in_n++;
                in_ok += c == 1;
            }
        }
    printf("  mask: %.1f%% of the interior consistent, %.1f%% of the new strip left out\n",
           100.0 * in_ok / in_n, 100.0 * out_ok / out_n);
    assert_true(out_ok == out_n);
    /* the photograph's sky is flat: no texture anchors the flow there, and
     * the check rightly leaves out some of it */
    assert_true(in_ok >= 0.9 * in_n);

    /* warping a by the backward flow gives b where consistent */
    nst_image *wa = NULL;
    assert_int_equal(nst_warp(a, bwd, &wa, &m), NST_OK);
    double err = 0;
    long n = 0;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < (size_t)w * h; i++)
            if (mask[i] > 0) {
                err += fabs(wa->data[c * (size_t)w * h + i] - b->data[c * (size_t)w * h + i]);
                n++;
            }
    printf("  warp: mean |warp(a) - b| %.4f over consistent pixels\n", err / n);
    assert_true(err / n < 0.01); /* 2.5 levels of 255: a quarter-pixel error on the texture */
    nst_image_free(wa);
    nst_image_free(big), nst_image_free(a), nst_image_free(b);
    free(fwd), free(bwd), free(mask);
}

/* The camera zooms in by s about the centre: a point at x goes to
 * cx + s (x - cx), so the flow is ((s-1)(x - cx), (s-1)(y - cy)). */
static void test_flow_zoom(void **state) {
    (void)state;
    const int w = 160, h = 120;
    const double s = 1.04;
    nst_image *a = picture(w, h), *b = NULL, *mid = NULL;
    /* b: the central w/s x h/s of a (at exact pixel bounds) enlarged to w x h */
    int cw = (int)lround(w / s), ch = (int)lround(h / s);
    int x0 = (w - cw) / 2, y0 = (h - ch) / 2;
    mid = crop(a, x0, y0, cw, ch);
    assert_int_equal(nst_image_resize(mid, w, h, &b, NULL), NST_OK);
    /* the exact map of the resize: x_b = (x_a - x0 + 0.5) * w/cw - 0.5 */
    double sx = (double)w / cw, sy = (double)h / ch;
    float *fwd = malloc(2 * sizeof(float) * w * h);
    assert_int_equal(nst_flow(a, b, NST_FLOW_MEDIUM, fwd, NULL), NST_OK);
    double e = epe(fwd, w, h, 24, (-x0 + 0.5) * sx - 0.5, sx - 1, (-y0 + 0.5) * sy - 0.5, sy - 1);
    printf("  zoom %.3f: endpoint error %.3f px\n", sx, e);
    assert_true(e < 0.35);
    nst_image_free(a), nst_image_free(b), nst_image_free(mid);
    free(fwd);
}

/* A flat square moves 6 pixels right over a textured background: the
 * background it uncovers on its left is left out of the mask. */
static void test_moving_square(void **state) {
    (void)state;
    const int w = 128, h = 96, S = 28, x0 = 40, y0 = 34, d = 6;
    nst_image *bg = picture(w, h), *a = NULL, *b = NULL;
    assert_int_equal(nst_image_clone(bg, &a, NULL), NST_OK);
    assert_int_equal(nst_image_clone(bg, &b, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = y0; y < y0 + S; y++)
            for (int x = 0; x < S; x++) {
                a->data[((size_t)c * h + y) * w + x0 + x] = 0.9f - 0.3f * c + 0.004f * x;
                b->data[((size_t)c * h + y) * w + x0 + d + x] = 0.9f - 0.3f * c + 0.004f * x;
            }
    size_t hw = (size_t)w * h;
    float *fwd = malloc(2 * hw * sizeof(float)), *bwd = malloc(2 * hw * sizeof(float)),
          *mask = malloc(hw * sizeof(float));
    assert_int_equal(nst_flow(a, b, NST_FLOW_MEDIUM, fwd, NULL), NST_OK);
    assert_int_equal(nst_flow(b, a, NST_FLOW_MEDIUM, bwd, NULL), NST_OK);
    nst_flow_consistency(fwd, bwd, w, h, mask);
    /* uncovered: columns x0 .. x0+d-1 of the square's rows, in frame b */
    long un = 0, un_out = 0, far = 0, far_in = 0;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            float c = mask[(size_t)y * w + x];
            if (y >= y0 + 2 && y < y0 + S - 2 && x >= x0 && x < x0 + d) {
                un++;
                un_out += c == 0;
            } else if (x < x0 - 16 || x > x0 + d + S + 16 || y < y0 - 16 || y > y0 + S + 16) {
                far++;
                far_in += c == 1;
            }
        }
    printf("  moving square: %.0f%% of the uncovered background left out, %.1f%% of the "
           "background far from it kept\n", 100.0 * un_out / un, 100.0 * far_in / far);
    assert_true(un_out >= 0.8 * un);
    assert_true(far_in >= 0.95 * far);
    nst_image_free(bg), nst_image_free(a), nst_image_free(b);
    free(fwd), free(bwd), free(mask);
}

static nst_image *frame_n(int w, int h, int n) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img->data[((size_t)c * h + y) * w + x] =
                    (float)(((x * 7 + y * 3 + n * 17 + c * 50) % 256) / 255.0);
    return img;
}

/* Written and read back: FFV1 exactly (8-bit levels), H.264 closely, with
 * the frame count and rate; the output replaces a file only when finished. */
static void roundtrip(const char *name, const char *codec, int lossless) {
    const int w = 48, h = 32, n = 5;
    const char *path = check_tmp_path(name);
    FILE *f = fopen(path, "w");
    fputs("old", f);
    fclose(f);
    nst_video_writer *wr = NULL;
    nst_msg m;
    char note[256];
    nst_status st = nst_video_writer_open(path, w, h, 12, 1, codec, NULL, &wr, note, sizeof note, &m);
    if (st != NST_OK) printf("  %s\n", m.text);
    assert_int_equal(st, NST_OK);
    printf("  %s: %s\n", name, note);
    for (int i = 0; i < n; i++) {
        nst_image *img = frame_n(w, h, i);
        assert_int_equal(nst_video_writer_add(wr, img, &m), NST_OK);
        nst_image_free(img);
    }
    /* not finished: the old file is still there */
    f = fopen(path, "r");
    char buf[8] = "";
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "old");
    assert_int_equal(nst_video_writer_finish(wr, &m), NST_OK);
    nst_video_writer_free(wr);

    nst_video_reader *rd = NULL;
    nst_video_info info;
    assert_int_equal(nst_video_open(path, &rd, &info, &m), NST_OK);
    assert_int_equal(info.w, w);
    assert_int_equal(info.h, h);
    assert_int_equal(info.fps_num, 12);
    assert_int_equal(info.fps_den, 1);
    for (int i = 0; i < n; i++) {
        nst_image *got = NULL, *want = frame_n(w, h, i);
        assert_int_equal(nst_video_next(rd, &got, &m), NST_OK);
        assert_non_null(got);
        double maxd = 0;
        for (size_t k = 0; k < (size_t)3 * w * h; k++)
            maxd = fmax(maxd, fabs(got->data[k] - want->data[k]));
        if (lossless) assert_true(maxd < 0.5 / 255);
        nst_image_free(got);
        nst_image_free(want);
    }
    nst_image *end = NULL;
    assert_int_equal(nst_video_next(rd, &end, &m), NST_OK);
    assert_null(end);
    nst_video_close(rd);
    long count = 0;
    assert_int_equal(nst_video_count(path, &count, &m), NST_OK);
    assert_int_equal(count, n);
}

static void test_roundtrip_ffv1(void **state) {
    (void)state;
    roundtrip("video_rt.mkv", "ffv1", 1);
}

static void test_roundtrip_mp4(void **state) {
    (void)state;
    roundtrip("video_rt.mp4", NULL, 0);
}

static void test_sequence(void **state) {
    (void)state;
    char pat[1024];
    snprintf(pat, sizeof pat, "%s/%%03d.png", check_tmp_path("video_seq"));
    char dir[1024];
    snprintf(dir, sizeof dir, "mkdir -p %s", check_tmp_path("video_seq"));
    assert_int_equal(system(dir), 0);
    assert_true(nst_video_is_pattern(pat));
    assert_false(nst_video_is_pattern("a%%b.png"));
    nst_video_writer *wr = NULL;
    assert_int_equal(nst_video_writer_open(pat, 20, 10, 25, 1, NULL, NULL, &wr, NULL, 0, NULL), NST_OK);
    for (int i = 0; i < 3; i++) {
        nst_image *img = frame_n(20, 10, i);
        assert_int_equal(nst_video_writer_add(wr, img, NULL), NST_OK);
        nst_image_free(img);
    }
    assert_int_equal(nst_video_writer_finish(wr, NULL), NST_OK);
    nst_video_writer_free(wr);
    char one[1100];
    snprintf(one, sizeof one, pat, 3);
    assert_int_equal(access(one, F_OK), 0);
    long n = 0;
    assert_int_equal(nst_video_count(pat, &n, NULL), NST_OK);
    assert_int_equal(n, 3);
}

static void test_bad_files(void **state) {
    (void)state;
    nst_video_reader *rd = NULL;
    nst_video_info info;
    nst_msg m;
    assert_int_equal(nst_video_open("no/such/file.mp4", &rd, &info, &m), NST_ERR_IO);
    assert_non_null(strstr(m.text, "no/such/file.mp4"));
    const char *txt = check_tmp_path("video_text.mp4");
    FILE *f = fopen(txt, "w");
    fputs("this is not a video at all, just some words\n", f);
    fclose(f);
    assert_int_equal(nst_video_open(txt, &rd, &info, &m), NST_ERR_FORMAT);
    assert_non_null(strstr(m.text, "not a video"));
    const char *empty = check_tmp_path("video_empty.mkv");
    f = fopen(empty, "w");
    fclose(f);
    assert_int_equal(nst_video_open(empty, &rd, &info, &m), NST_ERR_FORMAT);
    assert_non_null(strstr(m.text, "empty"));
    assert_null(rd);
    nst_video_writer *wr = NULL;
    assert_int_equal(nst_video_writer_open(check_tmp_path("video.xyz"), 16, 16, 25, 1, NULL, NULL, &wr,
                                           NULL, 0, &m),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(m.text, ".mkv"));
    assert_int_equal(nst_video_writer_open(check_tmp_path("video.mkv"), 16, 16, 25, 1, "vp9x",
                                           NULL, &wr, NULL, 0, &m),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(m.text, "ffv1"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow_pan),      cmocka_unit_test(test_flow_zoom),
        cmocka_unit_test(test_moving_square), cmocka_unit_test(test_roundtrip_ffv1),
        cmocka_unit_test(test_roundtrip_mp4), cmocka_unit_test(test_sequence),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
