/* test_image.c: the image module: PNG input in every colour type and bit
 * depth (written here with libpng directly), JPEG variants (written with
 * libjpeg directly), round trips, the atomic writer, the hostile corpus in
 * tests/bad/, resizing against a 2-D plain-C reference, fit_size, and the
 * colour helpers. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jpeglib.h>
#include <png.h>

#include "check.h"
#include "image.h"

/* ---- helpers ------------------------------------------------------------- */

static nst_image *random_image(int w, int h, uint64_t seed, float lo, float hi) {
    nst_image *img = NULL;
    nst_msg msg = {{0}};
    check_rng r;
    check_rng_seed(&r, seed);
    assert_int_equal(nst_image_create(w, h, &img, &msg), NST_OK);
    check_fill(&r, img->data, 3 * (size_t)w * h, lo, hi);
    return img;
}

/* A smooth image (what photos look like to a codec). */
static nst_image *smooth_image(int w, int h) {
    nst_image *img = NULL;
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_create(w, h, &img, &msg), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                nst_image_plane(img, c)[y * w + x] =
                    (float)(0.5 + 0.35 * sin(0.21 * x * (c + 1) + 0.13 * y + c));
    return img;
}

static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    unsigned char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static int files_equal(const char *a, const char *b) {
    size_t la, lb;
    unsigned char *x = slurp(a, &la), *y = slurp(b, &lb);
    int eq = la == lb && !memcmp(x, y, la);
    free(x);
    free(y);
    return eq;
}

/* Number of entries in dir whose name starts with prefix. */
static int count_prefix(const char *dir, const char *prefix) {
    DIR *d = opendir(dir);
    int n = 0;
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) n += !strncmp(e->d_name, prefix, strlen(prefix));
    closedir(d);
    return n;
}

static void copy_file(const char *from, const char *to) {
    size_t len;
    unsigned char *buf = slurp(from, &len);
    FILE *f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    fclose(f);
    free(buf);
}

/* ---- PNG input: every colour type and depth ------------------------------ */

typedef struct png_case {
    int ctype, depth, interlace;
} png_case;

/* Writes a w x h PNG of the given kind with random samples using libpng,
 * and the RGB it should decode to into want ([3][h][w]). */
static void write_png_case(const char *path, int w, int h, png_case pc, uint64_t seed,
                           double *want) {
    check_rng r;
    check_rng_seed(&r, seed);
    int maxv = (1 << pc.depth) - 1;
    int ch = pc.ctype == PNG_COLOR_TYPE_GRAY || pc.ctype == PNG_COLOR_TYPE_PALETTE ? 1
             : pc.ctype == PNG_COLOR_TYPE_GRAY_ALPHA                              ? 2
             : pc.ctype == PNG_COLOR_TYPE_RGB                                     ? 3
                                                                                  : 4;
    png_color plte[256];
    png_byte trns[256];
    int npal = pc.ctype != PNG_COLOR_TYPE_PALETTE ? 0 : pc.depth == 8 ? 200 : maxv + 1;
    for (int i = 0; i < npal; i++) {
        plte[i].red = (png_byte)(check_uniform(&r, 0, 256));
        plte[i].green = (png_byte)(check_uniform(&r, 0, 256));
        plte[i].blue = (png_byte)(check_uniform(&r, 0, 256));
        trns[i] = (png_byte)(i * 37);
    }
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng failed writing %s", path);
    png_init_io(png, f);
    png_set_IHDR(png, info, w, h, pc.depth, pc.ctype,
                 pc.interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (pc.ctype == PNG_COLOR_TYPE_PALETTE) {
        png_set_PLTE(png, info, plte, npal);
        png_set_tRNS(png, info, trns, npal, NULL);
    }
    png_write_info(png, info);
    size_t rowbytes = ((size_t)w * ch * pc.depth + 7) / 8;
    png_bytep rows = calloc((size_t)h, rowbytes);
    png_bytep *rowp = malloc(sizeof *rowp * h);
    size_t plane = (size_t)w * h;
    for (int y = 0; y < h; y++) {
        rowp[y] = rows + (size_t)y * rowbytes;
        for (int x = 0; x < w; x++) {
            int s[4];
            for (int c = 0; c < ch; c++) {
                int top = pc.ctype == PNG_COLOR_TYPE_PALETTE ? npal - 1 : maxv;
                s[c] = (int)check_uniform(&r, 0, (float)top + 0.999f);
                size_t bit = ((size_t)x * ch + c) * pc.depth;
                if (pc.depth == 16) {
                    rowp[y][bit / 8] = (png_byte)(s[c] >> 8);
                    rowp[y][bit / 8 + 1] = (png_byte)(s[c] & 0xFF);
                } else {
                    rowp[y][bit / 8] |= (png_byte)(s[c] << (8 - pc.depth - bit % 8));
                }
            }
            double rgb[3];
            if (pc.ctype == PNG_COLOR_TYPE_PALETTE) {
                rgb[0] = plte[s[0]].red / 255.0;
                rgb[1] = plte[s[0]].green / 255.0;
                rgb[2] = plte[s[0]].blue / 255.0;
            } else if (ch <= 2) {
                rgb[0] = rgb[1] = rgb[2] = (double)s[0] / maxv;
            } else {
                for (int c = 0; c < 3; c++) rgb[c] = (double)s[c] / maxv;
            }
            for (int c = 0; c < 3; c++) want[c * plane + (size_t)y * w + x] = rgb[c];
        }
    }
    png_write_image(png, rowp);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(rows);
    free(rowp);
}

static void test_png_input_variants(void **state) {
    static const png_case cases[] = {
        {PNG_COLOR_TYPE_GRAY, 1, 0},       {PNG_COLOR_TYPE_GRAY, 2, 0},
        {PNG_COLOR_TYPE_GRAY, 4, 0},       {PNG_COLOR_TYPE_GRAY, 8, 0},
        {PNG_COLOR_TYPE_GRAY, 16, 0},      {PNG_COLOR_TYPE_GRAY, 16, 1},
        {PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0}, {PNG_COLOR_TYPE_GRAY_ALPHA, 16, 1},
        {PNG_COLOR_TYPE_PALETTE, 1, 0},    {PNG_COLOR_TYPE_PALETTE, 2, 1},
        {PNG_COLOR_TYPE_PALETTE, 4, 0},    {PNG_COLOR_TYPE_PALETTE, 8, 0},
        {PNG_COLOR_TYPE_RGB, 8, 0},        {PNG_COLOR_TYPE_RGB, 8, 1},
        {PNG_COLOR_TYPE_RGB, 16, 0},       {PNG_COLOR_TYPE_RGB_ALPHA, 8, 0},
        {PNG_COLOR_TYPE_RGB_ALPHA, 16, 0}, {PNG_COLOR_TYPE_RGB_ALPHA, 8, 1},
    };
    const int w = 13, h = 7; /* odd sizes: partial bytes and Adam7 passes */
    double *want = malloc(sizeof *want * 3 * w * h);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char name[64], what[96];
        snprintf(name, sizeof name, "png_t%d_d%d_i%d.png", cases[i].ctype, cases[i].depth,
                 cases[i].interlace);
        const char *path = check_tmp_path(name);
        write_png_case(path, w, h, cases[i], 100 + i, want);
        nst_image *img = NULL;
        nst_msg msg = {{0}};
        if (nst_image_read(path, 0, &img, &msg) != NST_OK) fail_msg("%s", msg.text);
        assert_int_equal(img->w, w);
        assert_int_equal(img->h, h);
        snprintf(what, sizeof what, "PNG colour type %d, %d bit, interlace %d", cases[i].ctype,
                 cases[i].depth, cases[i].interlace);
        assert_true(check_close(what, img->data, want, 3 * w * h, 1e-7, 1e-7));
        nst_image_free(img);
    }
    free(want);
}

/* ---- PNG output ----------------------------------------------------------- */

static void test_png_roundtrip_8_and_16(void **state) {
    nst_image *img = random_image(19, 11, 7, -0.1f, 1.1f), *back = NULL;
    nst_msg msg = {{0}};
    size_t n = 3 * 19 * 11;
    double *want = malloc(sizeof *want * n);
    for (int bits16 = 0; bits16 <= 1; bits16++) {
        const char *path = check_tmp_path(bits16 ? "rt16.png" : "rt8.png");
        assert_int_equal(nst_image_write(path, img, 0, bits16, &msg), NST_OK);
        assert_int_equal(nst_image_read(path, 0, &back, &msg), NST_OK);
        double maxv = bits16 ? 65535 : 255;
        for (size_t i = 0; i < n; i++) {
            double v = img->data[i] < 0 ? 0 : img->data[i] > 1 ? 1 : img->data[i];
            want[i] = floor(v * maxv + 0.5) / maxv;
        }
        assert_true(check_close(bits16 ? "png16" : "png8", back->data, want, n, 1e-7, 0));
        /* and the stored value is within half a step of the input */
        for (size_t i = 0; i < n; i++) {
            double v = img->data[i] < 0 ? 0 : img->data[i] > 1 ? 1 : img->data[i];
            assert_true(fabs(back->data[i] - v) <= 0.5 / maxv + 1e-7);
        }
        nst_image_free(back);
    }
    free(want);
    nst_image_free(img);
}

static void test_write_extensions(void **state) {
    nst_image *img = random_image(4, 3, 1, 0, 1), *back = NULL;
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_write(check_tmp_path("UPPER.PNG"), img, 0, 0, &msg), NST_OK);
    assert_int_equal(nst_image_write(check_tmp_path("mixed.JpEg"), img, 0, 0, &msg), NST_OK);
    assert_int_equal(nst_image_write(check_tmp_path("x.bmp"), img, 0, 0, &msg),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, ".png, .jpg or .jpeg"));
    assert_non_null(strstr(msg.text, "x.bmp"));
    assert_int_equal(nst_image_write(check_tmp_path("noext"), img, 0, 0, &msg),
                     NST_ERR_INVALID_ARG);
    assert_int_equal(nst_image_write(check_tmp_path("q.jpg"), img, 101, 0, &msg),
                     NST_ERR_INVALID_ARG);
    assert_non_null(strstr(msg.text, "quality"));
    /* reading goes by content: a PNG named .jpg is read as PNG */
    copy_file(check_tmp_path("UPPER.PNG"), check_tmp_path("png_named.jpg"));
    assert_int_equal(nst_image_read(check_tmp_path("png_named.jpg"), 0, &back, &msg), NST_OK);
    nst_image_free(back);
    nst_image_free(img);
}

/* ---- JPEG ----------------------------------------------------------------- */

static void test_jpeg_roundtrip(void **state) {
    nst_image *img = smooth_image(40, 24), *back = NULL;
    nst_msg msg = {{0}};
    const char *path = check_tmp_path("rt.jpg");
    size_t n = 3 * 40 * 24;
    assert_int_equal(nst_image_write(path, img, 95, 0, &msg), NST_OK);
    assert_int_equal(nst_image_read(path, 0, &back, &msg), NST_OK);
    assert_int_equal(back->w, 40);
    assert_int_equal(back->h, 24);
    double sum = 0, worst = 0;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(back->data[i] - img->data[i]);
        sum += e;
        worst = e > worst ? e : worst;
    }
    fprintf(stderr, "jpeg q95: mean abs error %.5f, max %.5f\n", sum / n, worst);
    /* quality 95, 4:4:4 (measured: mean 0.0057, max 0.039, i.e. 1.5 and 10
     * levels of 255 on this image, whose blue channel has fine detail) */
    assert_true(sum / n < 0.008);
    assert_true(worst < 0.06);
    /* a lower quality gives a smaller file and a larger error */
    const char *low = check_tmp_path("low.jpg");
    nst_image *lowimg = NULL;
    assert_int_equal(nst_image_write(low, img, 20, 0, &msg), NST_OK);
    assert_int_equal(nst_image_read(low, 0, &lowimg, &msg), NST_OK);
    double sum_low = 0;
    for (size_t i = 0; i < n; i++) sum_low += fabs(lowimg->data[i] - img->data[i]);
    assert_true(sum_low > sum);
    struct stat a, b;
    assert_int_equal(stat(path, &a), 0);
    assert_int_equal(stat(low, &b), 0);
    assert_true(b.st_size < a.st_size);
    nst_image_free(lowimg);
    nst_image_free(back);
    nst_image_free(img);
}

/* Writes a w x h JPEG with libjpeg: components 1 (grey), 3 (RGB) or 4
 * (CMYK, Adobe-inverted as libjpeg writes it); every pixel is `px`. */
static void write_jpeg_case(const char *path, int w, int h, int comps, int progressive,
                            const unsigned char *px) {
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr err;
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = w;
    c.image_height = h;
    c.input_components = comps;
    c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 98, TRUE);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    unsigned char *row = malloc((size_t)w * comps);
    for (int x = 0; x < w; x++) memcpy(row + x * comps, px, comps);
    while (c.next_scanline < c.image_height) jpeg_write_scanlines(&c, &row, 1);
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
    free(row);
}

static void expect_flat(const char *path, int w, int h, const double rgb[3], double tol) {
    nst_image *img = NULL;
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_read(path, 0, &img, &msg), NST_OK);
    assert_int_equal(img->w, w);
    assert_int_equal(img->h, h);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < w * h; i++)
            if (fabs(nst_image_plane(img, c)[i] - rgb[c]) > tol)
                fail_msg("%s: channel %d pixel %d: got %g want %g", path, c, i,
                         nst_image_plane(img, c)[i], rgb[c]);
    nst_image_free(img);
}

static void test_jpeg_variants(void **state) {
    const unsigned char grey[1] = {77}, rgb[3] = {200, 40, 120};
    /* CMYK as stored by Adobe (inverted): 255 - ink */
    const unsigned char cmyk[4] = {255 - 20, 255 - 100, 255 - 200, 255 - 50};
    double g[3] = {77 / 255.0, 77 / 255.0, 77 / 255.0};
    double c[3] = {200 / 255.0, 40 / 255.0, 120 / 255.0};
    double k = (255 - 50) / 255.0;
    double cm[3] = {(255 - 20) / 255.0 * k, (255 - 100) / 255.0 * k, (255 - 200) / 255.0 * k};
    write_jpeg_case(check_tmp_path("grey.jpg"), 17, 9, 1, 0, grey);
    expect_flat(check_tmp_path("grey.jpg"), 17, 9, g, 1.5 / 255);
    write_jpeg_case(check_tmp_path("grey_prog.jpg"), 17, 9, 1, 1, grey);
    expect_flat(check_tmp_path("grey_prog.jpg"), 17, 9, g, 1.5 / 255);
    write_jpeg_case(check_tmp_path("rgb_prog.jpg"), 23, 5, 3, 1, rgb);
    expect_flat(check_tmp_path("rgb_prog.jpg"), 23, 5, c, 3.0 / 255);
    write_jpeg_case(check_tmp_path("cmyk.jpg"), 8, 8, 4, 0, cmyk);
    expect_flat(check_tmp_path("cmyk.jpg"), 8, 8, cm, 3.0 / 255);
}

/* ---- reading: memory, limits, errors -------------------------------------- */

static void test_read_memory_and_limit(void **state) {
    nst_image *img = random_image(16, 16, 3, 0, 1), *a = NULL, *b = NULL;
    nst_msg msg = {{0}};
    const char *path = check_tmp_path("mem.png");
    assert_int_equal(nst_image_write(path, img, 0, 0, &msg), NST_OK);
    size_t len;
    unsigned char *buf = slurp(path, &len);
    assert_int_equal(nst_image_read(path, 0, &a, &msg), NST_OK);
    assert_int_equal(nst_image_read_memory(buf, len, 0, &b, &msg), NST_OK);
    assert_memory_equal(a->data, b->data, 3 * 16 * 16 * sizeof(float));
    nst_image_free(b);
    /* the limit is on width*height: 256 passes, 255 does not */
    assert_int_equal(nst_image_read_memory(buf, len, 256, &b, &msg), NST_OK);
    nst_image_free(b);
    assert_int_equal(nst_image_read_memory(buf, len, 255, &b, &msg), NST_ERR_TOO_LARGE);
    assert_null(b);
    assert_non_null(strstr(msg.text, "the image data is too large: 16x16"));
    assert_int_equal(nst_image_read(path, 255, &b, &msg), NST_ERR_TOO_LARGE);
    assert_non_null(strstr(msg.text, path));
    free(buf);
    nst_image_free(a);
    nst_image_free(img);
}

static void test_read_io_errors(void **state) {
    nst_image *img = NULL;
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_read("tests/bad/does_not_exist.png", 0, &img, &msg), NST_ERR_IO);
    assert_null(img);
    assert_non_null(strstr(msg.text, "does_not_exist.png"));
    assert_non_null(strstr(msg.text, strerror(ENOENT)));
    assert_int_equal(nst_image_read("tests/bad", 0, &img, &msg), NST_ERR_IO);
    assert_non_null(strstr(msg.text, "directory"));
}

typedef struct bad_case {
    const char *file;
    nst_status status;
    const char *says;
} bad_case;

static void test_bad_corpus(void **state) {
    static const bad_case cases[] = {
        {"empty.png", NST_ERR_FORMAT, "is empty"},
        {"text.png", NST_ERR_FORMAT, "is not a PNG or JPEG image (it looks like text)"},
        {"random.bin", NST_ERR_FORMAT, "is not a PNG or JPEG image"},
        {"gif.png", NST_ERR_FORMAT, "looks like GIF"},
        {"signature_only.png", NST_ERR_FORMAT, "is truncated"},
        {"truncated.png", NST_ERR_FORMAT, "is truncated"},
        {"bad_crc.png", NST_ERR_FORMAT, "CRC error"},
        {"zero_width.png", NST_ERR_FORMAT, "corrupt PNG image"},
        {"bad_zlib.png", NST_ERR_FORMAT, "corrupt PNG image"},
        {"bomb.png", NST_ERR_TOO_LARGE, "is too large: 100000x100000 pixels"},
        {"truncated.jpg", NST_ERR_FORMAT, "is truncated"},
        {"soi_only.jpg", NST_ERR_FORMAT, "is truncated"},
        {"bomb.jpg", NST_ERR_TOO_LARGE, "is too large: 65000x65000 pixels"},
        {"zero_height.jpg", NST_ERR_FORMAT, "corrupt JPEG image"},
        {"no_image.jpg", NST_ERR_FORMAT, "corrupt JPEG image"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char path[256];
        nst_image *img = NULL;
        nst_msg msg = {{0}};
        snprintf(path, sizeof path, "tests/bad/%s", cases[i].file);
        nst_status st = nst_image_read(path, 0, &img, &msg);
        if (st != cases[i].status || !strstr(msg.text, cases[i].says) ||
            !strstr(msg.text, path))
            fail_msg("%s: got status %d '%s', want %d and '%s'", path, st, msg.text,
                     cases[i].status, cases[i].says);
        assert_null(img);
        /* the same bytes from memory give the same status */
        size_t len;
        unsigned char *buf = slurp(path, &len);
        assert_int_equal(nst_image_read_memory(buf, len, 0, &img, &msg), cases[i].status);
        assert_null(img);
        free(buf);
    }
}

/* Every fuzzing seed is a valid image (and covers grey 1-bit, grey+alpha,
 * palette with tRNS, 16-bit RGBA, Adam7, progressive, grey and 4:2:0 JPEG). */
static void test_seed_corpus(void **state) {
    const char *dir = "tests/fuzz/corpus_image";
    DIR *d = opendir(dir);
    int seen = 0;
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[512];
        nst_image *img = NULL;
        nst_msg msg = {{0}};
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        if (nst_image_read(path, 0, &img, &msg) != NST_OK) fail_msg("%s", msg.text);
        for (size_t i = 0; i < 3 * (size_t)img->w * img->h; i++)
            assert_true(img->data[i] >= 0 && img->data[i] <= 1);
        nst_image_free(img);
        seen++;
    }
    closedir(d);
    assert_true(seen >= 10);
}

/* ---- atomic writing ------------------------------------------------------- */

static void test_atomic_write_failure_keeps_old(void **state) {
    nst_image *small = random_image(4, 4, 5, 0, 1), *big = random_image(96, 96, 6, 0, 1);
    nst_msg msg = {{0}};
    const char *exts[2] = {"png", "jpg"};
    for (int e = 0; e < 2; e++) {
        char name[32], keep[32];
        snprintf(name, sizeof name, "atomic.%s", exts[e]);
        snprintf(keep, sizeof keep, "atomic_copy.%s", exts[e]);
        char path[512];
        snprintf(path, sizeof path, "%s", check_tmp_path(name));
        assert_int_equal(nst_image_write(path, small, 0, 0, &msg), NST_OK);
        copy_file(path, check_tmp_path(keep));
        /* a file size limit makes the write fail part way (EFBIG) */
        struct rlimit old, lim;
        assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
        lim = old;
        lim.rlim_cur = 1500;
        void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        nst_status st = nst_image_write(path, big, 100, 1, &msg);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
        signal(SIGXFSZ, prev);
        assert_int_equal(st, NST_ERR_IO);
        assert_non_null(strstr(msg.text, name));
        assert_true(files_equal(path, check_tmp_path(keep)));
        char prefix[40];
        snprintf(prefix, sizeof prefix, ".%s.", name);
        assert_int_equal(count_prefix("build/tmp", prefix), 0);
        /* and a successful write replaces it, leaving no temporary either */
        assert_int_equal(nst_image_write(path, big, 90, 0, &msg), NST_OK);
        assert_false(files_equal(path, check_tmp_path(keep)));
        assert_int_equal(count_prefix("build/tmp", prefix), 0);
    }
    nst_image_free(small);
    nst_image_free(big);
}

static void test_write_unwritable(void **state) {
    nst_image *img = random_image(3, 3, 9, 0, 1);
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_write("build/tmp/no/such/dir/out.png", img, 0, 0, &msg),
                     NST_ERR_IO);
    assert_non_null(strstr(msg.text, "build/tmp/no/such/dir"));
    assert_non_null(strstr(msg.text, "does the directory exist"));
    /* a read-only directory (root ignores permissions, so only as a user) */
    const char *dir = check_tmp_path("readonly");
    mkdir(dir, 0755);
    assert_int_equal(chmod(dir, 0555), 0);
    char path[512];
    snprintf(path, sizeof path, "%s/out.png", dir);
    if (geteuid() != 0) {
        assert_int_equal(nst_image_write(path, img, 0, 0, &msg), NST_ERR_IO);
        assert_non_null(strstr(msg.text, strerror(EACCES)));
    }
    chmod(dir, 0755);
    /* a replaced file keeps its mode */
    assert_int_equal(nst_image_write(path, img, 0, 0, &msg), NST_OK);
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(nst_image_write(path, img, 0, 1, &msg), NST_OK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    nst_image_free(img);
}

/* ---- resizing -------------------------------------------------------------- */

static double catmull_rom(double d) {
    d = fabs(d);
    if (d < 1) return 1.5 * d * d * d - 2.5 * d * d + 1;
    if (d < 2) return -0.5 * d * d * d + 2.5 * d * d - 4 * d + 2;
    return 0;
}

/* Weight of input pixel j in output pixel i along one axis, from the filter
 * definitions rather than tap tables. */
static double ref_weight(int src, int dst, int i, int j) {
    if (dst == src) return i == j;
    if (dst < src) {
        double a = (double)i * src / dst, b = (double)(i + 1) * src / dst;
        double lo = fmax(a, j), hi = fmin(b, j + 1.0);
        return hi > lo ? (hi - lo) * dst / src : 0;
    }
    double x = (i + 0.5) * src / dst - 0.5, w = 0;
    for (int t = (int)floor(x) - 1; t <= (int)floor(x) + 2; t++) {
        int ct = t < 0 ? 0 : t >= src ? src - 1 : t;
        if (ct == j) w += catmull_rom(x - t);
    }
    return w;
}

/* out[c][i][k] = clamp(sum_j sum_l wy(i,j) wx(k,l) src[c][j][l]), in double. */
static double *ref_resize(const nst_image *s, int w, int h) {
    double *out = malloc(sizeof *out * 3 * w * h);
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < h; i++)
            for (int k = 0; k < w; k++) {
                double acc = 0;
                for (int j = 0; j < s->h; j++) {
                    double wy = ref_weight(s->h, h, i, j);
                    if (wy == 0) continue;
                    for (int l = 0; l < s->w; l++)
                        acc += wy * ref_weight(s->w, w, k, l) *
                               nst_image_plane(s, c)[j * s->w + l];
                }
                out[((size_t)c * h + i) * w + k] = acc < 0 ? 0 : acc > 1 ? 1 : acc;
            }
    return out;
}

static void test_resize_against_reference(void **state) {
    static const int sizes[][4] = {
        {12, 9, 5, 4},   /* shrink, fractional */
        {7, 5, 17, 11},  /* enlarge */
        {10, 6, 23, 4},  /* wider, shorter */
        {9, 9, 9, 2},    /* one axis unchanged */
        {31, 3, 1, 1},   /* to a single pixel */
    };
    for (size_t t = 0; t < sizeof sizes / sizeof sizes[0]; t++) {
        nst_image *src = random_image(sizes[t][0], sizes[t][1], 40 + t, 0, 1), *out = NULL;
        nst_msg msg = {{0}};
        int w = sizes[t][2], h = sizes[t][3];
        assert_int_equal(nst_image_resize(src, w, h, &out, &msg), NST_OK);
        assert_int_equal(out->w, w);
        assert_int_equal(out->h, h);
        double *want = ref_resize(src, w, h);
        assert_true(check_close("resize", out->data, want, 3 * w * h, 2e-6, 0));
        free(want);
        nst_image_free(out);
        nst_image_free(src);
    }
}

static void test_resize_block_average(void **state) {
    /* an integer factor (3 across, 2 down) gives exact block means */
    nst_image *src = random_image(12, 8, 77, 0, 1), *out = NULL;
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_resize(src, 4, 4, &out, &msg), NST_OK);
    double want[3 * 16];
    for (int c = 0; c < 3; c++)
        for (int i = 0; i < 4; i++)
            for (int k = 0; k < 4; k++) {
                double s = 0;
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 3; dx++)
                        s += nst_image_plane(src, c)[(2 * i + dy) * 12 + 3 * k + dx];
                want[c * 16 + i * 4 + k] = s / 6;
            }
    assert_true(check_close("block average", out->data, want, 48, 1e-7, 0));
    nst_image_free(out);
    nst_image_free(src);
}

static void test_resize_constant_and_back(void **state) {
    nst_msg msg = {{0}};
    nst_image *k = NULL, *out = NULL;
    assert_int_equal(nst_image_create(9, 7, &k, &msg), NST_OK);
    for (int i = 0; i < 3 * 63; i++) k->data[i] = 0.3f + 0.2f * (i / 63);
    static const int sizes[][2] = {{4, 3}, {20, 15}, {30, 2}, {1, 40}};
    for (int t = 0; t < 4; t++) {
        assert_int_equal(nst_image_resize(k, sizes[t][0], sizes[t][1], &out, &msg), NST_OK);
        for (int c = 0; c < 3; c++)
            for (int i = 0; i < out->w * out->h; i++)
                assert_true(fabs(nst_image_plane(out, c)[i] - (0.3 + 0.2 * c)) < 1e-6);
        nst_image_free(out);
    }
    /* a smooth image enlarged 4x then shrunk 4x comes back close */
    nst_image *s = smooth_image(16, 12), *big = NULL, *back = NULL;
    assert_int_equal(nst_image_resize(s, 64, 48, &big, &msg), NST_OK);
    assert_int_equal(nst_image_resize(big, 16, 12, &back, &msg), NST_OK);
    assert_true(check_close_f("up then down", back->data, s->data, 3 * 16 * 12, 0.02, 0));
    assert_int_equal(nst_image_resize(s, 0, 5, &out, &msg), NST_ERR_INVALID_ARG);
    assert_null(out);
    nst_image_free(s);
    nst_image_free(big);
    nst_image_free(back);
    nst_image_free(k);
}

static void test_fit_size(void **state) {
    static const int cases[][5] = {
        {4000, 3000, 512, 512, 384}, {3000, 4000, 512, 384, 512}, {100, 50, 400, 400, 200},
        {1000, 333, 100, 100, 33},   {1000, 335, 100, 100, 34},   {5000, 1, 100, 100, 1},
        {1, 5000, 100, 1, 100},      {640, 640, 256, 256, 256},   {640, 480, 0, 640, 480},
        {640, 480, -5, 640, 480},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int w, h;
        nst_image_fit_size(cases[i][0], cases[i][1], cases[i][2], &w, &h);
        if (w != cases[i][3] || h != cases[i][4])
            fail_msg("fit %dx%d to %d: got %dx%d, want %dx%d", cases[i][0], cases[i][1],
                     cases[i][2], w, h, cases[i][3], cases[i][4]);
    }
}

/* ---- colour ----------------------------------------------------------------- */

static void test_yuv(void **state) {
    nst_image *img = random_image(7, 5, 11, 0, 1), *orig = NULL;
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_clone(img, &orig, &msg), NST_OK);
    size_t n = 35;
    double *want = malloc(sizeof *want * 3 * n);
    for (size_t i = 0; i < n; i++) {
        double r = orig->data[i], g = orig->data[n + i], b = orig->data[2 * n + i];
        /* the JPEG (JFIF) full-range equations, written out */
        want[i] = 0.299 * r + 0.587 * g + 0.114 * b;
        want[n + i] = -0.168736 * r - 0.331264 * g + 0.5 * b + 0.5;
        want[2 * n + i] = 0.5 * r - 0.418688 * g - 0.081312 * b + 0.5;
    }
    nst_image_rgb_to_yuv(img);
    assert_true(check_close("rgb to yuv", img->data, want, 3 * n, 2e-6, 0));
    nst_image_yuv_to_rgb(img);
    assert_true(check_close_f("yuv round trip", img->data, orig->data, 3 * n, 1e-6, 0));
    free(want);
    nst_image_free(img);
    nst_image_free(orig);
}

static void planes_yuv(const nst_image *img, nst_image **out) {
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_clone(img, out, &msg), NST_OK);
    nst_image_rgb_to_yuv(*out);
}

static void test_preserve_colors(void **state) {
    /* mid-range inputs so that nothing is clamped */
    nst_image *styled = random_image(10, 8, 21, 0.35f, 0.65f);
    nst_image *content = random_image(10, 8, 22, 0.35f, 0.65f), *out = NULL;
    nst_image *big = NULL, *a, *b, *c, *d;
    nst_msg msg = {{0}};
    size_t n = 80;
    assert_int_equal(nst_image_preserve_colors(styled, content, &out, &msg), NST_OK);
    planes_yuv(out, &a);
    planes_yuv(styled, &b);
    planes_yuv(content, &c);
    assert_true(check_close_f("luminance from styled", a->data, b->data, n, 1e-6, 0));
    assert_true(check_close_f("chroma from content", a->data + n, c->data + n, 2 * n, 1e-6, 0));
    nst_image_free(out);
    nst_image_free(a);
    /* content of another size is resized first */
    assert_int_equal(nst_image_resize(content, 25, 20, &big, &msg), NST_OK);
    assert_int_equal(nst_image_preserve_colors(styled, big, &out, &msg), NST_OK);
    assert_int_equal(out->w, 10);
    assert_int_equal(out->h, 8);
    nst_image *small = NULL;
    assert_int_equal(nst_image_resize(big, 10, 8, &small, &msg), NST_OK);
    planes_yuv(out, &a);
    planes_yuv(small, &d);
    assert_true(check_close_f("luminance kept", a->data, b->data, n, 1e-6, 0));
    assert_true(check_close_f("chroma resized", a->data + n, d->data + n, 2 * n, 1e-6, 0));
    nst_image *lum = NULL;
    assert_int_equal(nst_image_luminance(styled, &lum, &msg), NST_OK);
    for (int ch = 0; ch < 3; ch++)
        assert_true(check_close_f("luminance", nst_image_plane(lum, ch), b->data, n, 1e-6, 0));
    nst_image_free(lum);
    nst_image_free(small);
    nst_image_free(big);
    nst_image_free(out);
    nst_image_free(a);
    nst_image_free(b);
    nst_image_free(c);
    nst_image_free(d);
    nst_image_free(styled);
    nst_image_free(content);
}

static void y_moments(const nst_image *img, double *mean, double *sd) {
    size_t n = (size_t)img->w * img->h;
    float *y = malloc(n * sizeof *y);
    nst_image_luminance_plane(img, y);
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++) s += y[i];
    *mean = s / n;
    for (size_t i = 0; i < n; i++) ss += (y[i] - *mean) * (y[i] - *mean);
    *sd = sqrt(ss / n);
    free(y);
}

static void test_match_luminance(void **state) {
    nst_image *src = random_image(12, 10, 31, 0.1f, 0.5f), *ref = random_image(7, 9, 32, 0.3f, 1);
    nst_image *out = NULL, *a, *b;
    nst_msg msg = {{0}};
    assert_int_equal(nst_image_match_luminance(src, ref, &out, &msg), NST_OK);
    double m0, s0, m1, s1;
    y_moments(out, &m0, &s0);
    y_moments(ref, &m1, &s1);
    assert_true(fabs(m0 - m1) < 1e-6);
    assert_true(fabs(s0 - s1) < 1e-6);
    y_moments(src, &m0, &s0);
    assert_true(fabs(s0 - s1) > 0.01); /* the test is not vacuous */
    planes_yuv(out, &a);
    planes_yuv(src, &b);
    assert_true(check_close_f("chroma kept", a->data + 120, b->data + 120, 240, 1e-6, 0));
    nst_image_free(a);
    nst_image_free(b);
    nst_image_free(out);
    /* a constant source takes the reference mean */
    nst_image *k = NULL;
    assert_int_equal(nst_image_create(4, 4, &k, &msg), NST_OK);
    for (int i = 0; i < 48; i++) k->data[i] = 0.25f;
    assert_int_equal(nst_image_match_luminance(k, ref, &out, &msg), NST_OK);
    y_moments(out, &m0, &s0);
    assert_true(fabs(m0 - m1) < 1e-6 && s0 < 1e-6);
    nst_image_free(out);
    nst_image_free(k);
    nst_image_free(src);
    nst_image_free(ref);
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_match_histogram(void **state) {
    nst_image *src = random_image(9, 6, 41, 0, 0.6f), *ref = random_image(6, 9, 42, 0.2f, 1);
    nst_image *out = NULL;
    nst_msg msg = {{0}};
    size_t n = 54;
    assert_int_equal(nst_image_match_histogram(src, ref, &out, &msg), NST_OK);
    float ys[54], yo[54], yr[54];
    nst_image_luminance_plane(src, ys);
    nst_image_luminance_plane(out, yo);
    nst_image_luminance_plane(ref, yr);
    /* order kept */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (ys[i] < ys[j]) assert_true(yo[i] <= yo[j] + 1e-6f);
    /* same pixel count: the output's values are exactly the reference's */
    qsort(yo, n, sizeof *yo, cmp_float);
    qsort(yr, n, sizeof *yr, cmp_float);
    assert_true(check_close_f("sorted luminance", yo, yr, n, 2e-6, 0));
    nst_image_free(out);
    nst_image_free(src);
    nst_image_free(ref);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_png_input_variants),
        cmocka_unit_test(test_png_roundtrip_8_and_16),
        cmocka_unit_test(test_write_extensions),
        cmocka_unit_test(test_jpeg_roundtrip),
        cmocka_unit_test(test_jpeg_variants),
        cmocka_unit_test(test_read_memory_and_limit),
        cmocka_unit_test(test_read_io_errors),
        cmocka_unit_test(test_bad_corpus),
        cmocka_unit_test(test_seed_corpus),
        cmocka_unit_test(test_atomic_write_failure_keeps_old),
        cmocka_unit_test(test_write_unwritable),
        cmocka_unit_test(test_resize_against_reference),
        cmocka_unit_test(test_resize_block_average),
        cmocka_unit_test(test_resize_constant_and_back),
        cmocka_unit_test(test_fit_size),
        cmocka_unit_test(test_yuv),
        cmocka_unit_test(test_preserve_colors),
        cmocka_unit_test(test_match_luminance),
        cmocka_unit_test(test_match_histogram),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
