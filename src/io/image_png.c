/* image_png.c: PNG decoding from memory and encoding to a stream with
 * libpng. libpng reports errors through our error function, which records
 * the message and longjmps back; warnings are dropped; nothing is printed. */
#define NST_IMAGE_INTERNAL
#include <errno.h>
#include <png.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "nst_int.h"

/* Decoder state, kept outside the function that calls setjmp so that
 * nothing it changes is a local of that function. */
typedef struct png_ctx {
    const unsigned char *buf;
    size_t len, pos;
    int truncated;       /* the reader ran past the end of buf */
    char err[256];       /* libpng's message */
    nst_image *img;      /* the result, freed by the caller on failure */
    unsigned char *rows; /* decoded rows (one row, or all when interlaced) */
    png_bytep *rowp;     /* row pointers into rows when interlaced */
} png_ctx;

static void on_error(png_structp png, png_const_charp m) {
    png_ctx *c = png_get_error_ptr(png);
    snprintf(c->err, sizeof c->err, "%s", m);
    png_longjmp(png, 1);
}

static void on_warning(png_structp png, png_const_charp m) {
    (void)png;
    (void)m;
}

static void on_read(png_structp png, png_bytep out, size_t n) {
    png_ctx *c = png_get_io_ptr(png);
    if (n > c->len - c->pos) {
        c->truncated = 1;
        png_error(png, "unexpected end of data");
    }
    memcpy(out, c->buf + c->pos, n);
    c->pos += n;
}

/* One decoded row (3 samples per pixel, 8 or 16 bits) into row y of img. */
static void convert_row(nst_image *img, int y, const unsigned char *row, int bytes) {
    size_t plane = (size_t)img->w * img->h, off = (size_t)y * img->w;
    float *r = img->data + off, *g = r + plane, *b = g + plane;
    if (bytes == 1) {
        for (int x = 0; x < img->w; x++) {
            r[x] = (float)row[3 * x] / 255.0f;
            g[x] = (float)row[3 * x + 1] / 255.0f;
            b[x] = (float)row[3 * x + 2] / 255.0f;
        }
    } else {
        for (int x = 0; x < img->w; x++) {
            const unsigned char *p = row + 6 * x;
            r[x] = (float)(p[0] << 8 | p[1]) / 65535.0f;
            g[x] = (float)(p[2] << 8 | p[3]) / 65535.0f;
            b[x] = (float)(p[4] << 8 | p[5]) / 65535.0f;
        }
    }
}

static nst_status run_decode(png_ctx *c, png_structp png, png_infop info, size_t max_pixels,
                             const char *name, nst_msg *msg) {
    if (setjmp(png_jmpbuf(png))) {
        if (c->truncated)
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%s is truncated: the PNG data ends after %zu bytes", name, c->len);
        return nst_fail(msg, NST_ERR_FORMAT, "%s is a corrupt PNG image: %s", name, c->err);
    }
    png_set_read_fn(png, c, on_read);
    png_set_user_limits(png, 0x7fffffffL, 0x7fffffffL); /* our own limit applies below */
    png_read_info(png, info);
    png_uint_32 w = 0, h = 0;
    int depth = 0, ctype = 0, interlace = 0;
    png_get_IHDR(png, info, &w, &h, &depth, &ctype, &interlace, NULL, NULL);
    nst_status st = nst_image_check_header(name, "PNG", (unsigned long)w, (unsigned long)h,
                                           max_pixels, msg);
    if (st != NST_OK) return st;
    if (ctype == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (ctype == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    /* palette_to_rgb also turns tRNS into alpha: strip that too */
    if ((ctype & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    if (!(ctype & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int bytes = png_get_bit_depth(png, info) == 16 ? 2 : 1;
    size_t rowbytes = png_get_rowbytes(png, info);
    if (png_get_channels(png, info) != 3 || rowbytes != (size_t)w * 3 * bytes)
        return nst_fail(msg, NST_ERR_FORMAT, "%s: unsupported PNG layout (colour type %d, %d bit)",
                        name, ctype, depth);
    st = nst_image_create((int)w, (int)h, &c->img, msg);
    if (st != NST_OK) return st;
    if (passes == 1) {
        c->rows = malloc(rowbytes);
        if (!c->rows) return nst_fail(msg, NST_ERR_NOMEM, "out of memory decoding %s", name);
        for (png_uint_32 y = 0; y < h; y++) {
            png_read_row(png, c->rows, NULL);
            convert_row(c->img, (int)y, c->rows, bytes);
        }
    } else {
        if ((size_t)h > SIZE_MAX / rowbytes)
            return nst_fail(msg, NST_ERR_TOO_LARGE, "%s is too large to decode", name);
        c->rows = malloc(rowbytes * h);
        c->rowp = malloc(sizeof *c->rowp * h);
        if (!c->rows || !c->rowp)
            return nst_fail(msg, NST_ERR_NOMEM, "out of memory decoding %s", name);
        for (png_uint_32 y = 0; y < h; y++) c->rowp[y] = c->rows + (size_t)y * rowbytes;
        png_read_image(png, c->rowp);
        for (png_uint_32 y = 0; y < h; y++) convert_row(c->img, (int)y, c->rowp[y], bytes);
    }
    png_read_end(png, NULL);
    return NST_OK;
}

nst_status nst_png_decode(const unsigned char *buf, size_t len, size_t max_pixels,
                          const char *name, nst_image **out, nst_msg *msg) {
    png_ctx c;
    memset(&c, 0, sizeof c);
    c.buf = buf;
    c.len = len;
    *out = NULL;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(png ? &png : NULL, NULL, NULL);
        return nst_fail(msg, NST_ERR_NOMEM, "out of memory starting the PNG decoder for %s", name);
    }
    nst_status st = run_decode(&c, png, info, max_pixels, name, msg);
    png_destroy_read_struct(&png, &info, NULL);
    free(c.rows);
    free(c.rowp);
    if (st != NST_OK) {
        nst_image_free(c.img);
        return st;
    }
    *out = c.img;
    return NST_OK;
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct png_wctx {
    char err[256];
    int errnum; /* errno when libpng's write failed */
} png_wctx;

static void on_write_error(png_structp png, png_const_charp m) {
    png_wctx *c = png_get_error_ptr(png);
    c->errnum = errno;
    snprintf(c->err, sizeof c->err, "%s", m);
    png_longjmp(png, 1);
}

static nst_status run_encode(png_wctx *c, png_structp png, png_infop info, FILE *f,
                             const nst_image *img, int png16, unsigned char *row,
                             const char *name, nst_msg *msg) {
    if (setjmp(png_jmpbuf(png))) {
        if (!strcmp(c->err, "Write Error") && c->errnum)
            return nst_fail(msg, NST_ERR_IO, "cannot write %s: %s", name, NST_STRERROR(c->errnum));
        return nst_fail(msg, NST_ERR_IO, "cannot write %s: PNG encoder: %s", name, c->err);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)img->w, (png_uint_32)img->h, png16 ? 16 : 8,
                 PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    size_t plane = (size_t)img->w * img->h;
    for (int y = 0; y < img->h; y++) {
        const float *src = img->data + (size_t)y * img->w;
        for (int x = 0; x < img->w; x++) {
            for (int ch = 0; ch < 3; ch++) {
                float v = src[ch * plane + x];
                if (png16) {
                    unsigned q = nst_quantize(v, 65535);
                    row[6 * x + 2 * ch] = (unsigned char)(q >> 8);
                    row[6 * x + 2 * ch + 1] = (unsigned char)(q & 0xFF);
                } else {
                    row[3 * x + ch] = (unsigned char)nst_quantize(v, 255);
                }
            }
        }
        png_write_row(png, row);
    }
    png_write_end(png, info);
    return NST_OK;
}

nst_status nst_png_encode(FILE *f, const nst_image *img, int png16, const char *name,
                          nst_msg *msg) {
    png_wctx c;
    memset(&c, 0, sizeof c);
    unsigned char *row = malloc((size_t)img->w * (png16 ? 6 : 3));
    png_structp png =
        row ? png_create_write_struct(PNG_LIBPNG_VER_STRING, &c, on_write_error, on_warning)
            : NULL;
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_write_struct(png ? &png : NULL, NULL);
        free(row);
        return nst_fail(msg, NST_ERR_NOMEM, "out of memory writing %s", name);
    }
    nst_status st = run_encode(&c, png, info, f, img, png16, row, name, msg);
    png_destroy_write_struct(&png, &info);
    free(row);
    return st;
}
