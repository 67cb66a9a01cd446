/* image.h: host images: PNG and JPEG reading and writing, resizing and the
 * colour-space helpers of colour preservation. Host only (no OpenCL).
 *
 * An nst_image is planar RGB float32 in [0,1], layout [3][h][w]: exactly the
 * device tensor layout [1,3,H,W], so data can be uploaded as is. Sample values
 * are taken as stored (sRGB-encoded); no gamma or ICC conversion is done.
 *
 * Ownership: every function that returns an image through `out` creates it;
 * the caller frees it with nst_image_free (which accepts NULL). Inputs are
 * borrowed. On failure *out is NULL and msg (which may be NULL) says why. */
#ifndef NST_IMAGE_H
#define NST_IMAGE_H

#include <stddef.h>

#include "nst.h"

/* Default limit on width*height for reading (pass max_pixels = 0 to get it):
 * 100 megapixels, i.e. 1.2 GB of float pixels. Checked against the file's
 * header before any pixel memory is allocated (decompression bombs). */
#define NST_MAX_PIXELS ((size_t)100 * 1000 * 1000)

/* JPEG quality used when nst_image_write is given 0. */
#define NST_JPEG_QUALITY 95

/* nst_image (include/nst.h): int w, h; float *data, [3][h][w]. */

/* Pointer to channel c (0..2) of img: h*w floats, row-major. */
static inline float *nst_image_plane(const nst_image *img, int c) {
    return img->data + (size_t)c * img->h * img->w;
}

/* ---- create / free ------------------------------------------------------- */

/* A w x h image, zero-filled. w, h >= 1. */
nst_status nst_image_create(int w, int h, nst_image **out, nst_msg *msg);
void nst_image_free(nst_image *img);
/* A copy of src. */
nst_status nst_image_clone(const nst_image *src, nst_image **out, nst_msg *msg);
/* NST_ERR_INVALID_ARG, naming fn and `what`, unless img is an image: not
 * NULL, with pixel data and both sides >= 1. */
nst_status nst_image_check(const nst_image *img, const char *fn, const char *what,
                           nst_msg *msg);

/* ---- reading ------------------------------------------------------------- */

/* Reads a PNG or JPEG file; the format is found from the content (magic
 * bytes), never from the extension. PNG: 1/2/4/8/16-bit grey, grey+alpha, RGB,
 * RGBA, palette (with tRNS), interlaced or not; alpha is dropped. JPEG:
 * baseline or progressive, grey, YCbCr/RGB and CMYK/YCCK (converted to RGB,
 * Adobe inverted CMYK when the Adobe marker says so). max_pixels bounds
 * width*height (0 = NST_MAX_PIXELS): larger images fail with
 * NST_ERR_TOO_LARGE before their pixels are allocated. Errors: NST_ERR_IO
 * (cannot open or read), NST_ERR_FORMAT (empty, not an image, truncated,
 * corrupt), NST_ERR_TOO_LARGE, NST_ERR_NOMEM. The message names the file. */
nst_status nst_image_read(const char *path, size_t max_pixels, nst_image **out, nst_msg *msg);

/* The same from a buffer of len bytes (messages say "the image data"). */
nst_status nst_image_read_memory(const void *buf, size_t len, size_t max_pixels,
                                 nst_image **out, nst_msg *msg);

/* ---- writing ------------------------------------------------------------- */

/* Writes img as PNG (.png) or JPEG (.jpg, .jpeg), chosen by the extension
 * (case-insensitive; any other extension is NST_ERR_INVALID_ARG). Values are
 * clamped to [0,1] and rounded (NaN is written as 0). jpeg_quality: 1..100,
 * 0 = NST_JPEG_QUALITY; JPEGs are written 4:4:4 (no chroma subsampling).
 * png16: 1 writes 16-bit PNG, 0 8-bit.
 * Atomic: the image goes to a new temporary file in the target's directory,
 * is fsync'ed, then renamed over path; on any failure the temporary file is
 * removed and an existing file at path is left untouched. A new file gets
 * mode 0666 minus the umask; a replaced file keeps its mode. */
nst_status nst_image_write(const char *path, const nst_image *img, int jpeg_quality, int png16,
                           nst_msg *msg);

/* ---- resizing (resize.c) ------------------------------------------------- */

/* Resamples src to w x h into a new image. Separable, each axis on its own:
 * shrinking uses area averaging (a box filter with exact fractional
 * coverage), enlarging uses Catmull-Rom cubic interpolation with clamped
 * edges; an unchanged axis is copied. Results are clamped to [0,1]. */
nst_status nst_image_resize(const nst_image *src, int w, int h, nst_image **out, nst_msg *msg);

/* The size whose longest side is `longest`, keeping the aspect ratio
 * (rounded, at least 1 px). longest <= 0 or a non-positive w/h gives w x h. */
void nst_image_fit_size(int w, int h, int longest, int *ow, int *oh);

/* ---- colour (color.c) ---------------------------------------------------- */

/* In place: RGB <-> YCbCr, BT.601 full range as in JPEG (planes become Y,
 * Cb+0.5, Cr+0.5, so a [0,1] RGB image stays in [0,1]). No clamping: the two
 * are exact inverses up to rounding. */
void nst_image_rgb_to_yuv(nst_image *img);
void nst_image_yuv_to_rgb(nst_image *img);

/* Y = 0.299 R + 0.587 G + 0.114 B of src into y (w*h floats). */
void nst_image_luminance_plane(const nst_image *src, float *y);
/* A new grey-as-RGB image: every plane is src's luminance. */
nst_status nst_image_luminance(const nst_image *src, nst_image **out, nst_msg *msg);

/* Colour preservation: the luminance of `styled` with the chroma (Cb, Cr) of
 * `content`, resized to styled's size first when the sizes differ; clamped to
 * [0,1]. */
nst_status nst_image_preserve_colors(const nst_image *styled, const nst_image *content,
                                     nst_image **out, nst_msg *msg);

/* Luminance matching: a new image that is src with its luminance Y replaced
 * by (Y - mean_src) * std_ref / std_src + mean_ref, chroma kept (a grey image
 * stays grey). A constant src gets Y = mean_ref. Not clamped, so the moments
 * match exactly (the network takes any values; the writer clamps). */
nst_status nst_image_match_luminance(const nst_image *src, const nst_image *ref,
                                     nst_image **out, nst_msg *msg);

/* Histogram matching of the luminance: each pixel of src gets the value of
 * ref's luminance at the same quantile (rank), linearly interpolated; chroma
 * kept, not clamped. Sizes may differ. */
nst_status nst_image_match_histogram(const nst_image *src, const nst_image *ref,
                                     nst_image **out, nst_msg *msg);

/* ---- codec internals (image.c, image_png.c, image_jpeg.c) ---------------- */

#ifdef NST_IMAGE_INTERNAL
#include <stdio.h>
/* `name` is how messages refer to the data ("'photo.png'", "the image data").
 * max_pixels is already resolved (never 0). */
/* The codecs' check of a header's size: not zero, within int, at most
 * max_pixels (refused before any pixel is allocated). fmt names the codec. */
nst_status nst_image_check_header(const char *name, const char *fmt, unsigned long w,
                                  unsigned long h, size_t max_pixels, nst_msg *msg);
nst_status nst_png_decode(const unsigned char *buf, size_t len, size_t max_pixels,
                          const char *name, nst_image **out, nst_msg *msg);
nst_status nst_jpeg_decode(const unsigned char *buf, size_t len, size_t max_pixels,
                           const char *name, nst_image **out, nst_msg *msg);
/* Encoders write to an open stream; the caller flushes and checks it. */
nst_status nst_png_encode(FILE *f, const nst_image *img, int png16, const char *name,
                          nst_msg *msg);
nst_status nst_jpeg_encode(FILE *f, const nst_image *img, int quality, const char *name,
                           nst_msg *msg);
/* x clamped to [0,1] and scaled to 0..maxv, rounded; NaN gives 0. */
static inline unsigned nst_quantize(float x, unsigned maxv) {
    if (!(x > 0.0f)) return 0;
    if (x >= 1.0f) return maxv;
    return (unsigned)(x * (float)maxv + 0.5f);
}
#endif

#endif
