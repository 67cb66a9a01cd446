/* image_jpeg.c: JPEG decoding from memory and encoding to a stream with
 * libjpeg(-turbo). error_exit is replaced by a longjmp back to us with the
 * formatted message; warnings are not printed, but "premature end of data"
 * aborts the decode as a truncated file (libjpeg would pad it with grey). */
#define NST_IMAGE_INTERNAL
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image.h"
#include "nst_int.h"

/* Progressive files with thousands of tiny scans take very long to decode
 * (a known denial of service); real encoders write about ten. */
#define MAX_SCANS 500

/* Error state shared by decoder and encoder. pub comes first: libjpeg's err
 * pointer is cast back to the whole struct in the callbacks. */
typedef struct jpeg_err {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
    char err[JMSG_LENGTH_MAX + 64];
    int truncated; /* "premature end of JPEG file" was seen */
    int errnum;    /* errno at the error, for write failures */
} jpeg_err;

typedef struct jpeg_ctx {
    jpeg_err e; /* first */
    struct jpeg_progress_mgr progress;
    struct jpeg_decompress_struct d;
    nst_image *img;
    unsigned char *row;
} jpeg_ctx;

static void on_error_exit(j_common_ptr ci) {
    jpeg_err *c = (jpeg_err *)ci->err;
    c->errnum = errno;
    ci->err->format_message(ci, c->err);
    longjmp(c->jb, 1);
}

static void on_emit(j_common_ptr ci, int level) {
    jpeg_err *c = (jpeg_err *)ci->err;
    if (level < 0) {
        ci->err->num_warnings++;
        if (ci->err->msg_code == JWRN_JPEG_EOF) {
            c->truncated = 1;
            longjmp(c->jb, 1);
        }
    }
}

static void on_output(j_common_ptr ci) { (void)ci; }

static void on_progress(j_common_ptr ci) {
    jpeg_err *c = (jpeg_err *)ci->err;
    if (ci->is_decompressor && ((j_decompress_ptr)ci)->input_scan_number > MAX_SCANS) {
        snprintf(c->err, sizeof c->err, "more than %d progressive scans", MAX_SCANS);
        longjmp(c->jb, 1);
    }
}

static void init_errors(jpeg_err *c) {
    jpeg_std_error(&c->pub);
    c->pub.error_exit = on_error_exit;
    c->pub.emit_message = on_emit;
    c->pub.output_message = on_output;
}

static nst_status run_decode(jpeg_ctx *c, const unsigned char *buf, size_t len, size_t max_pixels,
                             const char *name, nst_msg *msg) {
    j_decompress_ptr d = &c->d;
    if (setjmp(c->e.jb)) {
        if (c->e.truncated)
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%s is truncated: the JPEG data ends after %zu bytes", name, len);
        return nst_fail(msg, NST_ERR_FORMAT, "%s is a corrupt JPEG image: %s", name, c->e.err);
    }
    d->err = &c->e.pub;
    jpeg_create_decompress(d);
    c->progress.progress_monitor = on_progress;
    d->progress = &c->progress;
    jpeg_mem_src(d, buf, (unsigned long)len);
    jpeg_read_header(d, TRUE);
    JDIMENSION w = d->image_width, h = d->image_height;
    nst_status st = nst_image_check_header(name, "JPEG", (unsigned long)w, (unsigned long)h,
                                           max_pixels, msg);
    if (st != NST_OK) return st;
    int cmyk = 0;
    switch (d->jpeg_color_space) {
    case JCS_GRAYSCALE:
    case JCS_YCbCr:
    case JCS_RGB: d->out_color_space = JCS_RGB; break;
    case JCS_CMYK:
    case JCS_YCCK:
        d->out_color_space = JCS_CMYK;
        cmyk = 1;
        break;
    default:
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: unsupported JPEG colour space (%d components)", name,
                        d->num_components);
    }
    d->dct_method = JDCT_ISLOW;
    jpeg_start_decompress(d);
    int comps = d->output_components;
    if (comps != (cmyk ? 4 : 3) || d->output_width != w || d->output_height != h)
        return nst_fail(msg, NST_ERR_FORMAT, "%s: unexpected JPEG decoder output", name);
    st = nst_image_create((int)w, (int)h, &c->img, msg);
    if (st != NST_OK) return st;
    c->row = malloc((size_t)w * comps);
    if (!c->row) return nst_fail(msg, NST_ERR_NOMEM, "out of memory decoding %s", name);
    /* Adobe applications write CMYK inverted (255 = no ink), and say so with
     * their APP14 marker; without it, take the values as ink amounts. */
    int inverted = d->saw_Adobe_marker;
    size_t plane = (size_t)w * h;
    while (d->output_scanline < h) {
        size_t y = d->output_scanline;
        JSAMPROW rp = c->row;
        if (jpeg_read_scanlines(d, &rp, 1) != 1)
            return nst_fail(msg, NST_ERR_FORMAT, "%s: the JPEG decoder stopped early", name);
        float *r = c->img->data + y * w, *g = r + plane, *b = g + plane;
        const unsigned char *p = c->row;
        if (!cmyk) {
            for (JDIMENSION x = 0; x < w; x++) {
                r[x] = (float)p[3 * x] / 255.0f;
                g[x] = (float)p[3 * x + 1] / 255.0f;
                b[x] = (float)p[3 * x + 2] / 255.0f;
            }
        } else {
            for (JDIMENSION x = 0; x < w; x++) {
                const unsigned char *q = p + 4 * x;
                int k = inverted ? q[3] : 255 - q[3];
                for (int ch = 0; ch < 3; ch++) {
                    int v = inverted ? q[ch] : 255 - q[ch];
                    (ch == 0 ? r : ch == 1 ? g : b)[x] = (float)(v * k) / (255.0f * 255.0f);
                }
            }
        }
    }
    jpeg_finish_decompress(d);
    return NST_OK;
}

nst_status nst_jpeg_decode(const unsigned char *buf, size_t len, size_t max_pixels,
                           const char *name, nst_image **out, nst_msg *msg) {
    jpeg_ctx *c = calloc(1, sizeof *c);
    *out = NULL;
    if (!c) return nst_fail(msg, NST_ERR_NOMEM, "out of memory decoding %s", name);
    init_errors(&c->e);
    nst_status st = run_decode(c, buf, len, max_pixels, name, msg);
    jpeg_destroy_decompress(&c->d);
    free(c->row);
    if (st == NST_OK)
        *out = c->img;
    else
        nst_image_free(c->img);
    free(c);
    return st;
}

/* ---- encoding ------------------------------------------------------------ */

typedef struct jpeg_wctx {
    jpeg_err e; /* first */
    struct jpeg_compress_struct enc;
} jpeg_wctx;

static nst_status run_encode(jpeg_wctx *c, FILE *f, const nst_image *img, int quality,
                             unsigned char *row, const char *name, nst_msg *msg) {
    j_compress_ptr e = &c->enc;
    if (setjmp(c->e.jb)) {
        if (c->e.pub.msg_code == JERR_FILE_WRITE && c->e.errnum)
            return nst_fail(msg, NST_ERR_IO, "cannot write %s: %s", name,
                            NST_STRERROR(c->e.errnum));
        return nst_fail(msg, NST_ERR_IO, "cannot write %s: JPEG encoder: %s", name, c->e.err);
    }
    e->err = &c->e.pub;
    jpeg_create_compress(e);
    jpeg_stdio_dest(e, f);
    e->image_width = (JDIMENSION)img->w;
    e->image_height = (JDIMENSION)img->h;
    e->input_components = 3;
    e->in_color_space = JCS_RGB;
    jpeg_set_defaults(e);
    jpeg_set_quality(e, quality, TRUE);
    for (int i = 0; i < e->num_components; i++)
        e->comp_info[i].h_samp_factor = e->comp_info[i].v_samp_factor = 1; /* 4:4:4 */
    e->dct_method = JDCT_ISLOW;
    e->optimize_coding = TRUE;
    jpeg_start_compress(e, TRUE);
    size_t plane = (size_t)img->w * img->h;
    while (e->next_scanline < e->image_height) {
        const float *src = img->data + (size_t)e->next_scanline * img->w;
        for (int x = 0; x < img->w; x++)
            for (int ch = 0; ch < 3; ch++)
                row[3 * x + ch] = (unsigned char)nst_quantize(src[ch * plane + x], 255);
        JSAMPROW rp = row;
        jpeg_write_scanlines(e, &rp, 1);
    }
    jpeg_finish_compress(e);
    return NST_OK;
}

nst_status nst_jpeg_encode(FILE *f, const nst_image *img, int quality, const char *name,
                           nst_msg *msg) {
    jpeg_wctx *c = calloc(1, sizeof *c);
    unsigned char *row = malloc((size_t)img->w * 3);
    if (!c || !row) {
        free(c);
        free(row);
        return nst_fail(msg, NST_ERR_NOMEM, "out of memory writing %s", name);
    }
    init_errors(&c->e);
    nst_status st = run_encode(c, f, img, quality, row, name, msg);
    jpeg_destroy_compress(&c->enc);
    free(row);
    free(c);
    return st;
}
