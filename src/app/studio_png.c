/* studio_png.c: PNG encoding into memory for nst studio's frames and
 * downloads (libpng, which the library's image writer uses for files). */
#include <png.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>

#include "studio.h"

typedef struct membuf {
    unsigned char *data;
    size_t len, cap;
    int failed;
} membuf;

static void on_write(png_structp png, png_bytep data, png_size_t n) {
    membuf *m = png_get_io_ptr(png);
    if (m->failed) return;
    if (m->len + n > m->cap) {
        size_t cap = m->cap ? m->cap : 65536;
        while (cap < m->len + n) cap *= 2;
        unsigned char *d = realloc(m->data, cap);
        if (!d) {
            m->failed = 1;
            return;
        }
        m->data = d;
        m->cap = cap;
    }
    memcpy(m->data + m->len, data, n);
    m->len += n;
}

static void on_flush(png_structp png) { (void)png; }

static void on_error(png_structp png, png_const_charp msg) {
    (void)msg;
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp msg) {
    (void)png;
    (void)msg;
}

int studio_png(const nst_image *img, int level, unsigned char **out, size_t *len) {
    *out = NULL;
    *len = 0;
    size_t w = (size_t)img->w, h = (size_t)img->h, plane = w * h;
    unsigned char *volatile row = malloc(3 * w);
    membuf m = {0};
    png_structp png = row ? png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, on_error,
                                                    on_warning)
                          : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(row);
        return -1;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        free(row);
        free(m.data);
        return -1;
    }
    png_set_write_fn(png, &m, on_write, on_flush);
    png_set_compression_level(png, level);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (size_t y = 0; y < h; y++) {
        for (size_t x = 0; x < w; x++)
            for (size_t c = 0; c < 3; c++) {
                float v = img->data[c * plane + y * w + x];
                v = v != v ? 0 : v < 0 ? 0 : v > 1 ? 1 : v; /* NaN as 0 */
                row[3 * x + c] = (unsigned char)(v * 255 + 0.5f);
            }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    free(row);
    if (m.failed) {
        free(m.data);
        return -1;
    }
    *out = m.data;
    *len = m.len;
    return 0;
}
