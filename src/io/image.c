/* image.c: nst_image creation, format detection for reading, and the atomic
 * writer (temporary file in the target's directory, fsync, rename). The
 * codecs are in image_png.c and image_jpeg.c. */
#define NST_IMAGE_INTERNAL
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "image.h"
#include "nst_int.h"

/* ---- create / free ------------------------------------------------------- */

nst_status nst_image_create(int w, int h, nst_image **out, nst_msg *msg) {
    if (!out) return nst_fail_null(msg, "nst_image_create", "out");
    *out = NULL;
    if (w < 1 || h < 1)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "image size %dx%d: both sides must be >= 1", w,
                        h);
    size_t n = (size_t)w * (size_t)h;
    if (n > SIZE_MAX / 3 / sizeof(float))
        return nst_fail(msg, NST_ERR_TOO_LARGE, "image size %dx%d is too large", w, h);
    nst_image *img = malloc(sizeof *img);
    float *data = calloc(3 * n, sizeof *data);
    if (!img || !data) {
        free(img);
        free(data);
        return nst_fail(msg, NST_ERR_NOMEM, "out of memory for a %dx%d image (%.1f MB)", w, h,
                        3.0 * n * sizeof(float) / 1e6);
    }
    img->w = w;
    img->h = h;
    img->data = data;
    *out = img;
    return NST_OK;
}

void nst_image_free(nst_image *img) {
    if (!img) return;
    free(img->data);
    free(img);
}

nst_status nst_image_check(const nst_image *img, const char *fn, const char *what,
                           nst_msg *msg) {
    if (!img) return nst_fail_null(msg, fn, what);
    if (!img->data)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "%s: %s has no pixels (its data is NULL)", fn,
                        what);
    if (img->w < 1 || img->h < 1)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "%s: %s is %dx%d; both sides must be >= 1",
                        fn, what, img->w, img->h);
    return NST_OK;
}

nst_status nst_image_clone(const nst_image *src, nst_image **out, nst_msg *msg) {
    nst_status st = nst_image_create(src->w, src->h, out, msg);
    if (st == NST_OK) memcpy((*out)->data, src->data, 3 * (size_t)src->w * src->h * sizeof(float));
    return st;
}

/* ---- reading ------------------------------------------------------------- */

static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

/* A hint for well-known formats we do not read. */
static const char *other_format(const unsigned char *b, size_t n) {
    if (n >= 4 && !memcmp(b, "GIF8", 4)) return "GIF";
    if (n >= 12 && !memcmp(b, "RIFF", 4) && !memcmp(b + 8, "WEBP", 4)) return "WebP";
    if (n >= 2 && !memcmp(b, "BM", 2)) return "BMP";
    if (n >= 4 && (!memcmp(b, "II*\0", 4) || !memcmp(b, "MM\0*", 4))) return "TIFF";
    if (n >= 12 && !memcmp(b + 4, "ftyp", 4)) return "HEIF/AVIF/MP4";
    if (n >= 4 && !memcmp(b, "%PDF", 4)) return "PDF";
    return NULL;
}

nst_status nst_image_check_header(const char *name, const char *fmt, unsigned long w,
                                  unsigned long h, size_t max_pixels, nst_msg *msg) {
    if (w == 0 || h == 0 || w > 0x7fffffffu || h > 0x7fffffffu)
        return nst_fail(msg, NST_ERR_FORMAT, "%s: %s image has an invalid size %lux%lu", name, fmt,
                        w, h);
    if ((uint64_t)w * h > (uint64_t)max_pixels)
        return nst_fail(msg, NST_ERR_TOO_LARGE,
                        "%s is too large: %lux%lu pixels is more than the limit of %zu pixels; "
                        "shrink it first",
                        name, w, h, max_pixels);
    return NST_OK;
}

static nst_status decode(const unsigned char *b, size_t len, size_t max_pixels, const char *name,
                         nst_image **out, nst_msg *msg) {
    *out = NULL;
    if (max_pixels == 0) max_pixels = NST_MAX_PIXELS;
    if (len == 0) return nst_fail(msg, NST_ERR_FORMAT, "%s is empty (0 bytes), not an image", name);
    size_t k = len < 8 ? len : 8;
    if (!memcmp(b, png_magic, k)) {
        if (len <= 8)
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%s is truncated: it ends %s the PNG signature", name,
                            len == 8 ? "right after" : "inside");
        return nst_png_decode(b, len, max_pixels, name, out, msg);
    }
    if (len >= 2 && b[0] == 0xFF && b[1] == 0xD8 && (len == 2 || b[2] == 0xFF)) {
        if (len <= 3)
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%s is truncated: it ends right after the JPEG start marker", name);
        return nst_jpeg_decode(b, len, max_pixels, name, out, msg);
    }
    const char *other = other_format(b, len);
    if (other)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s is not a PNG or JPEG image (it looks like %s): convert it to PNG or "
                        "JPEG first",
                        name, other);
    size_t text = 0;
    while (text < len && text < 24 &&
           ((b[text] >= 0x20 && b[text] < 0x7f) || b[text] == '\n' || b[text] == '\t'))
        text++;
    if (text == len || text == 24)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s is not a PNG or JPEG image (it looks like text)", name);
    unsigned char h[4] = {0};
    memcpy(h, b, len < 4 ? len : 4);
    return nst_fail(msg, NST_ERR_FORMAT,
                    "%s is not a PNG or JPEG image (it starts with bytes %02x %02x %02x %02x)",
                    name, h[0], h[1], h[2], h[3]);
}

nst_status nst_image_read_memory(const void *buf, size_t len, size_t max_pixels,
                                 nst_image **out, nst_msg *msg) {
    *out = NULL;
    if (!buf && len) return nst_fail(msg, NST_ERR_INVALID_ARG, "image data: NULL buffer");
    return decode(buf, len, max_pixels, "the image data", out, msg);
}

nst_status nst_image_read(const char *path, size_t max_pixels, nst_image **out, nst_msg *msg) {
    nst_status st = NST_OK;
    unsigned char *buf = NULL;
    size_t len = 0, cap = 0;
    char name[600];
    if (!out) return nst_fail_null(msg, "nst_image_read", "out");
    *out = NULL;
    if (!path) return nst_fail_null(msg, "nst_image_read", "path");
    snprintf(name, sizeof name, "'%s'", path);
    if (max_pixels == 0) max_pixels = NST_MAX_PIXELS;
    /* No image we accept needs more than ~8 bytes per pixel (16-bit RGBA
     * stored uncompressed), so a bigger file is refused rather than read. */
    size_t limit = max_pixels > (SIZE_MAX - (64u << 20)) / 16 ? SIZE_MAX
                                                              : max_pixels * 16 + (64u << 20);
    FILE *f = fopen(path, "rb");
    if (!f)
        return nst_fail(msg, NST_ERR_IO, "cannot open image %s: %s", name, NST_STRERROR(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) == 0) {
        if (S_ISDIR(sb.st_mode)) {
            st = nst_fail(msg, NST_ERR_IO, "cannot read image %s: it is a directory", name);
            goto fail;
        }
        if (S_ISREG(sb.st_mode)) {
            if ((uintmax_t)sb.st_size > limit) {
                st = nst_fail(msg, NST_ERR_TOO_LARGE,
                              "%s is too large (%.0f MB) for an image of at most %zu pixels",
                              name, (double)sb.st_size / 1e6, max_pixels);
                goto fail;
            }
            cap = (size_t)sb.st_size + 1; /* +1: EOF is seen without a realloc */
            buf = malloc(cap);
            if (!buf) {
                st = nst_fail(msg, NST_ERR_NOMEM, "out of memory reading %s", name);
                goto fail;
            }
        }
    }
    for (;;) {
        if (len == cap) {
            size_t ncap = cap ? cap * 2 : 1 << 16;
            unsigned char *nb = realloc(buf, ncap);
            if (!nb) {
                st = nst_fail(msg, NST_ERR_NOMEM, "out of memory reading %s", name);
                goto fail;
            }
            buf = nb;
            cap = ncap;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (len > limit) {
            st = nst_fail(msg, NST_ERR_TOO_LARGE,
                          "%s is too large for an image of at most %zu pixels", name, max_pixels);
            goto fail;
        }
        if (got == 0) break;
    }
    if (ferror(f)) {
        st = nst_fail(msg, NST_ERR_IO, "cannot read image %s: %s", name, NST_STRERROR(errno));
        goto fail;
    }
    st = decode(buf, len, max_pixels, name, out, msg);
fail:
    fclose(f);
    free(buf);
    return st;
}

/* ---- writing ------------------------------------------------------------- */

static int ends_with_nocase(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    if (n < m) return 0;
    for (size_t i = 0; i < m; i++) {
        char c = s[n - m + i];
        if (c >= 'A' && c <= 'Z') c = (char)(c - 'A' + 'a');
        if (c != suffix[i]) return 0;
    }
    return 1;
}

/* Creates a new file next to `path` (same directory, so rename is atomic)
 * with O_EXCL, like mkstemp, but with mode 0666 minus the umask as any new
 * file gets (mkstemp would force 0600). Writes its name into tmp. */
static int create_temp(const char *path, char *tmp, size_t cap) {
    /* names differ by the attempt and by this call's stack address (each
     * thread has its own stack), so no counter is shared between threads;
     * O_EXCL settles any collision */
    unsigned long self = (unsigned long)(uintptr_t)&tmp;
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    for (int attempt = 0; attempt < 100; attempt++) {
        unsigned long r = (unsigned long)getpid() * 2654435761u ^
                          (unsigned long)time(NULL) * 40503u ^ (unsigned long)clock() ^
                          (self >> 4) * 0x85EBCA6Bu ^ (unsigned long)(attempt + 1) * 0x9E3779B1u;
        int n = snprintf(tmp, cap, "%.*s.%s.%08lx.tmp", dirlen, path, slash ? slash + 1 : path,
                         r & 0xFFFFFFFFul);
        if (n < 0 || (size_t)n >= cap) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL, 0666);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

static void fsync_dir(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash) {
        strcpy(dir, ".");
    } else {
        size_t n = (size_t)(slash - path);
        if (n == 0) n = 1; /* "/file" */
        if (n >= sizeof dir) return;
        memcpy(dir, path, n);
        dir[n] = 0;
    }
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd); /* best effort: some file systems refuse it on directories */
        close(fd);
    }
}

nst_status nst_image_write(const char *path, const nst_image *img, int jpeg_quality, int png16,
                           nst_msg *msg) {
    nst_status st = NST_OK;
    char tmp[4096 + 64];
    char name[600];
    FILE *f = NULL;
    int fd = -1, have_tmp = 0;
    snprintf(name, sizeof name, "'%s'", path ? path : "(null)");
    if (!path || !*path) return nst_fail(msg, NST_ERR_INVALID_ARG, "no output file name given");
    if (!img || !img->data || img->w < 1 || img->h < 1)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "cannot write %s: the image is empty", name);
    int jpeg = ends_with_nocase(path, ".jpg") || ends_with_nocase(path, ".jpeg");
    if (!jpeg && !ends_with_nocase(path, ".png"))
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "cannot write %s: unknown image type; the name must end in .png, .jpg "
                        "or .jpeg",
                        name);
    if (jpeg_quality == 0) jpeg_quality = NST_JPEG_QUALITY;
    if (jpeg && (jpeg_quality < 1 || jpeg_quality > 100))
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "cannot write %s: JPEG quality %d is not in 1..100", name, jpeg_quality);
    if (jpeg && (img->w > 65500 || img->h > 65500))
        return nst_fail(msg, NST_ERR_TOO_LARGE,
                        "cannot write %s: %dx%d is larger than JPEG allows (65500 per side); "
                        "write a PNG",
                        name, img->w, img->h);

    fd = create_temp(path, tmp, sizeof tmp);
    if (fd < 0) {
        int e = errno;
        const char *slash = strrchr(path, '/');
        st = nst_fail(msg, NST_ERR_IO,
                      "cannot write %s: cannot create a file in directory '%.*s': %s%s", name,
                      slash ? (int)(slash - path) : 1, slash ? path : ".", NST_STRERROR(e),
                      e == ENOENT ? " (does the directory exist?)" : "");
        goto fail;
    }
    have_tmp = 1;
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) fchmod(fd, sb.st_mode & 07777);
    f = fdopen(fd, "wb");
    if (!f) {
        st = nst_fail(msg, NST_ERR_IO, "cannot write %s: %s", name, NST_STRERROR(errno));
        goto fail;
    }
    fd = -1; /* owned by f now */
    if (jpeg)
        st = nst_jpeg_encode(f, img, jpeg_quality, name, msg);
    else
        st = nst_png_encode(f, img, png16, name, msg);
    if (st != NST_OK) goto fail;
    if (fflush(f) != 0 || ferror(f) || fsync(fileno(f)) != 0) {
        st = nst_fail(msg, NST_ERR_IO, "cannot write %s: %s", name, NST_STRERROR(errno));
        goto fail;
    }
    int rc = fclose(f);
    f = NULL;
    if (rc != 0) {
        st = nst_fail(msg, NST_ERR_IO, "cannot write %s: %s", name, NST_STRERROR(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = nst_fail(msg, NST_ERR_IO, "cannot write %s: renaming the temporary file failed: %s",
                      name, NST_STRERROR(errno));
        goto fail;
    }
    have_tmp = 0;
    fsync_dir(path);
    return NST_OK;
fail:
    if (f) fclose(f);
    if (fd >= 0) close(fd);
    if (have_tmp) unlink(tmp);
    return st;
}
