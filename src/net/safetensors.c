/* safetensors.c: the safetensors reader and writer, and the F16/BF16 scalar
 * conversions.
 *
 * File layout: u64 little-endian header length N, N bytes of JSON (an object
 * of name -> {"dtype", "shape", "data_offsets": [begin, end]}, plus an
 * optional "__metadata__" object of strings), then the data area; offsets are
 * relative to the data area, tensors are little-endian and row-major. The
 * reader checks everything (header bounds, JSON, dtypes, ranks, sizes against
 * offsets, offsets inside the area, no overlap or gap, duplicate names,
 * NaN/Inf) before a tensor is handed out. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nst_int.h"
#include "weights.h"

#define MAX_HEADER (100u << 20) /* the format's own limit: 100 MB of JSON */
#define MAX_DIM ((int64_t)1 << 31)
#define MAX_COUNT ((uint64_t)1 << 40)

/* ---- scalar conversions ------------------------------------------------ */

static uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t nst_f32_to_f16(float f) {
    uint32_t x = f2u(f), sign = (x >> 16) & 0x8000u;
    x &= 0x7fffffffu;
    if (x >= 0x47800000u) /* >= 65536, Inf or NaN */
        return (uint16_t)(sign | (x > 0x7f800000u ? 0x7e00u : 0x7c00u));
    if (x < (113u << 23)) {
        /* Subnormal or zero: adding 0.5 leaves the ulp at 2^-24, so the
         * FPU's round-to-nearest-even does the rounding. */
        float r = u2f(x) + 0.5f;
        return (uint16_t)(sign | (f2u(r) - 0x3f000000u));
    }
    uint32_t odd = (x >> 13) & 1u;
    x += ((uint32_t)(15 - 127) << 23) + 0xfffu + odd; /* rebias, round half to even */
    return (uint16_t)(sign | (x >> 13));
}

float nst_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0) {
        float v = ldexpf((float)m, -24);
        return sign ? -v : v;
    }
    if (e == 31) return u2f(sign | 0x7f800000u | (m << 13));
    return u2f(sign | ((e + 112u) << 23) | (m << 13));
}

uint16_t nst_f32_to_bf16(float f) {
    uint32_t x = f2u(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((x >> 16) | 0x40u); /* quiet NaN */
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

float nst_bf16_to_f32(uint16_t b) { return u2f((uint32_t)b << 16); }

/* ---- shared helpers ---------------------------------------------------- */

int nst_weights_keep(const char *name, int max_index) {
    if (max_index < 0) return 1;
    if (strncmp(name, "features.", 9)) return 0;
    const char *p = name + 9;
    if (*p < '0' || *p > '9') return 0;
    long n = strtol(p, (char **)&p, 10);
    if (strcmp(p, ".weight") && strcmp(p, ".bias")) return 0;
    return n <= max_index;
}

static int dtype_size(const char *dt) {
    if (!strcmp(dt, "F32")) return 4;
    if (!strcmp(dt, "F16") || !strcmp(dt, "BF16")) return 2;
    return 0;
}

/* Decodes n little-endian values of dtype dt from src into dst and checks
 * that every one is finite; returns the index of the first bad one or n. */
static size_t decode(float *dst, const unsigned char *src, size_t n, const char *dt) {
    if (!strcmp(dt, "F32")) {
        for (size_t i = 0; i < n; i++) {
            const unsigned char *b = src + 4 * i;
            dst[i] = u2f((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                         (uint32_t)b[3] << 24);
        }
    } else {
        int bf = !strcmp(dt, "BF16");
        for (size_t i = 0; i < n; i++) {
            uint16_t h = (uint16_t)(src[2 * i] | src[2 * i + 1] << 8);
            dst[i] = bf ? nst_bf16_to_f32(h) : nst_f16_to_f32(h);
        }
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite(dst[i])) return i;
    return n;
}

/* ---- reader ------------------------------------------------------------ */

typedef struct entry {
    const char *name; /* borrowed from the JSON */
    char dtype[8];
    int rank;
    int64_t shape[4];
    uint64_t begin, end;
} entry;

static int by_begin(const void *a, const void *b) {
    const entry *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : strcmp(x->name, y->name);
}

static nst_status parse_entry(const char *path, const char *name, json_t *v, entry *e,
                              uint64_t area, nst_msg *msg) {
    const char *P = path;
    if (!json_is_object(v))
        return nst_fail(msg, NST_ERR_FORMAT, "%s: tensor %s: header entry is not an object", P,
                        name);
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"),
           *off = json_object_get(v, "data_offsets");
    if (!json_is_string(dt) || !json_is_array(sh) || !json_is_array(off))
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: tensor %s: needs \"dtype\" (string), \"shape\" and \"data_offsets\" "
                        "(arrays)", P, name);
    e->name = name;
    int es = dtype_size(json_string_value(dt));
    if (!es)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: tensor %s: dtype \"%.16s\" is not supported (F32, F16 or BF16)", P,
                        name, json_string_value(dt));
    snprintf(e->dtype, sizeof e->dtype, "%s", json_string_value(dt));
    size_t rank = json_array_size(sh);
    if (rank < 1 || rank > 4)
        return nst_fail(msg, NST_ERR_FORMAT, "%s: tensor %s: rank %zu is not in 1..4", P, name,
                        rank);
    e->rank = (int)rank;
    uint64_t count = 1;
    for (size_t i = 0; i < rank; i++) {
        json_t *d = json_array_get(sh, i);
        if (!json_is_integer(d) || json_integer_value(d) < 1 || json_integer_value(d) > MAX_DIM)
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%s: tensor %s: dimension %zu is not an integer in 1..2^31", P, name,
                            i);
        e->shape[i] = json_integer_value(d);
        count *= (uint64_t)e->shape[i];
        if (count > MAX_COUNT)
            return nst_fail(msg, NST_ERR_TOO_LARGE, "%s: tensor %s: more than 2^40 elements", P,
                            name);
    }
    json_t *b = json_array_get(off, 0), *en = json_array_get(off, 1);
    if (json_array_size(off) != 2 || !json_is_integer(b) || !json_is_integer(en) ||
        json_integer_value(b) < 0 || json_integer_value(en) < json_integer_value(b))
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: tensor %s: data_offsets must be two integers 0 <= begin <= end", P,
                        name);
    e->begin = (uint64_t)json_integer_value(b);
    e->end = (uint64_t)json_integer_value(en);
    if (e->end > area)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: tensor %s: data_offsets [%llu, %llu] lie outside the data area "
                        "(%llu bytes; truncated file?)", P, name, (unsigned long long)e->begin,
                        (unsigned long long)e->end, (unsigned long long)area);
    if (e->end - e->begin != count * (uint64_t)es)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: tensor %s: shape and dtype need %llu bytes but data_offsets span "
                        "%llu", P, name, (unsigned long long)(count * (uint64_t)es),
                        (unsigned long long)(e->end - e->begin));
    return NST_OK;
}

nst_status nst_safetensors_read(FILE *f, uint64_t size, const char *path, int max_index,
                                nst_weights **out, nst_msg *msg) {
    nst_status st = NST_OK;
    char *hdr = NULL;
    json_t *root = NULL;
    entry *ents = NULL;
    unsigned char *raw = NULL;
    nst_weights *w = NULL;
    unsigned char lenb[8];
    int input = NST_INPUT_TORCHVISION;

    if (size < 8 || fseeko(f, 0, SEEK_SET) || fread(lenb, 1, 8, f) != 8) {
        st = nst_fail(msg, NST_ERR_FORMAT, "%s: too short for a safetensors file (%llu bytes)",
                      path, (unsigned long long)size);
        goto fail;
    }
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | lenb[i];
    if (n > size - 8) {
        st = nst_fail(msg, NST_ERR_FORMAT,
                      "%s: header length %llu is larger than the file (%llu bytes): truncated "
                      "or not a safetensors file", path, (unsigned long long)n,
                      (unsigned long long)size);
        goto fail;
    }
    if (n > MAX_HEADER || n < 2) {
        st = nst_fail(msg, NST_ERR_FORMAT, "%s: header length %llu is not in 2..100 MB", path,
                      (unsigned long long)n);
        goto fail;
    }
    hdr = malloc(n);
    if (!hdr) {
        st = nst_fail(msg, NST_ERR_NOMEM, "%s: header of %llu bytes", path,
                      (unsigned long long)n);
        goto fail;
    }
    if (fread(hdr, 1, n, f) != n) {
        st = nst_fail(msg, NST_ERR_IO, "%s: cannot read the header", path);
        goto fail;
    }
    if (hdr[0] != '{') {
        st = nst_fail(msg, NST_ERR_FORMAT, "%s: header does not start with '{'", path);
        goto fail;
    }
    json_error_t jerr;
    root = json_loadb(hdr, n, JSON_REJECT_DUPLICATES, &jerr);
    if (!root || !json_is_object(root)) {
        st = nst_fail(msg, NST_ERR_FORMAT, "%s: malformed JSON header: %s (line %d, column %d)",
                      path, root ? "not an object" : jerr.text, jerr.line, jerr.column);
        goto fail;
    }
    uint64_t area = size - 8 - n;
    size_t cap = json_object_size(root), ne = 0;
    ents = calloc(cap ? cap : 1, sizeof *ents);
    if (!ents) {
        st = nst_fail(msg, NST_ERR_NOMEM, "%s: header table", path);
        goto fail;
    }
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__")) {
            if (!json_is_object(val)) {
                st = nst_fail(msg, NST_ERR_FORMAT, "%s: __metadata__ is not an object", path);
                goto fail;
            }
            /* "input": "caffe" or "torchvision" declares the convention;
             * other text describes the file in words that nst does not
             * read (other tools write such notes), so the default holds */
            json_t *in = json_object_get(val, "input");
            if (in && !json_is_string(in)) {
                st = nst_fail(msg, NST_ERR_FORMAT,
                              "%s: __metadata__ \"input\" is not a string (safetensors metadata "
                              "values are strings: \"torchvision\" or \"caffe\")",
                              path);
                goto fail;
            }
            if (in && nst_input_find(json_string_value(in)) >= 0)
                input = nst_input_find(json_string_value(in));
            continue;
        }
        NST_TRY(parse_entry(path, key, val, &ents[ne], area, msg));
        ne++;
    }
    /* The data area must be covered exactly: sorted by offset, each tensor
     * starts where the previous one ends. */
    qsort(ents, ne, sizeof *ents, by_begin);
    uint64_t at = 0;
    for (size_t i = 0; i < ne; i++) {
        if (ents[i].begin < at) {
            st = nst_fail(msg, NST_ERR_FORMAT, "%s: tensor %s overlaps tensor %s in the data area",
                          path, ents[i].name, ents[i - 1].name);
            goto fail;
        }
        if (ents[i].begin > at) {
            st = nst_fail(msg, NST_ERR_FORMAT,
                          "%s: tensor %s: %llu unused bytes before it in the data area", path,
                          ents[i].name, (unsigned long long)(ents[i].begin - at));
            goto fail;
        }
        at = ents[i].end;
    }
    if (at != area) {
        st = nst_fail(msg, NST_ERR_FORMAT,
                      "%s: the data area has %llu bytes but the tensors cover %llu", path,
                      (unsigned long long)area, (unsigned long long)at);
        goto fail;
    }
    w = calloc(1, sizeof *w);
    if (!w) {
        st = nst_fail(msg, NST_ERR_NOMEM, "%s: weights table", path);
        goto fail;
    }
    w->input = input;
    for (size_t i = 0; i < ne; i++) {
        const entry *e = &ents[i];
        if (!nst_weights_keep(e->name, max_index)) continue;
        if (strlen(e->name) >= sizeof w->t[0].name) {
            st = nst_fail(msg, NST_ERR_FORMAT, "%s: tensor name %.80s... is too long", path,
                          e->name);
            goto fail;
        }
        nst_weight *t = nst_weights_add(w, e->name, e->rank, e->shape);
        if (!t) {
            st = nst_fail(msg, NST_ERR_NOMEM, "%s: tensor %s", path, e->name);
            goto fail;
        }
        size_t bytes = (size_t)(e->end - e->begin);
        /* F32 decodes in place; 16-bit types go through a scratch buffer. */
        unsigned char *dst = (unsigned char *)t->data;
        if (dtype_size(e->dtype) != 4) {
            free(raw);
            raw = malloc(bytes);
            if (!raw) {
                st = nst_fail(msg, NST_ERR_NOMEM, "%s: tensor %s", path, e->name);
                goto fail;
            }
            dst = raw;
        }
        if (fseeko(f, (off_t)(8 + n + e->begin), SEEK_SET) || fread(dst, 1, bytes, f) != bytes) {
            st = nst_fail(msg, NST_ERR_IO, "%s: tensor %s: cannot read its data", path, e->name);
            goto fail;
        }
        size_t bad = decode(t->data, dst, t->count, e->dtype);
        if (bad < t->count) {
            st = nst_fail(msg, NST_ERR_NUMERIC, "%s: tensor %s: element %zu is %s", path, e->name,
                          bad, isnan(t->data[bad]) ? "NaN" : "infinite");
            goto fail;
        }
    }
    *out = w;
    w = NULL;
fail:
    nst_weights_free(w);
    free(raw);
    free(ents);
    json_decref(root);
    free(hdr);
    return st;
}

/* ---- writer ------------------------------------------------------------ */

/* Encodes t into buf (little-endian dtype dt); fails on a value that the
 * dtype cannot hold. */
static nst_status encode(unsigned char *buf, const nst_weight *t, const char *dt,
                         const char *path, nst_msg *msg) {
    for (size_t i = 0; i < t->count; i++) {
        float x = t->data[i];
        uint32_t u;
        int ok = isfinite(x);
        if (!strcmp(dt, "F32")) {
            u = f2u(x);
            buf[4 * i] = (unsigned char)u;
            buf[4 * i + 1] = (unsigned char)(u >> 8);
            buf[4 * i + 2] = (unsigned char)(u >> 16);
            buf[4 * i + 3] = (unsigned char)(u >> 24);
        } else {
            int bf = !strcmp(dt, "BF16");
            uint16_t h = bf ? nst_f32_to_bf16(x) : nst_f32_to_f16(x);
            ok = ok && (bf ? (h & 0x7f80u) != 0x7f80u : (h & 0x7c00u) != 0x7c00u);
            buf[2 * i] = (unsigned char)h;
            buf[2 * i + 1] = (unsigned char)(h >> 8);
        }
        if (!ok)
            return nst_fail(msg, NST_ERR_NUMERIC,
                            "%s: tensor %s: element %zu (%g) cannot be stored as %s", path,
                            t->name, i, (double)x, dt);
    }
    return NST_OK;
}

nst_status nst_weights_save(const nst_weights *w, const char *path, const char *dtype,
                            nst_msg *msg) {
    nst_status st = NST_OK;
    json_t *root = NULL;
    char *js = NULL, *tmp = NULL;
    unsigned char *buf = NULL;
    FILE *f = NULL;
    int es = dtype ? dtype_size(dtype) : 0;
    if (!es)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "dtype %s is not F32, F16 or BF16",
                        dtype ? dtype : "(null)");
    if (!w || w->count < 1) return nst_fail(msg, NST_ERR_INVALID_ARG, "%s: no tensors to write",
                                            path);
    root = json_object();
    json_t *meta = json_object();
    const nst_input_norm *conv = nst_input_get(w->input);
    if (!root || !meta || json_object_set_new(meta, "format", json_string("pt")) ||
        (w->input != NST_INPUT_TORCHVISION && conv &&
         json_object_set_new(meta, "input", json_string(conv->name))) ||
        json_object_set_new(root, "__metadata__", meta))
        goto oom;
    uint64_t at = 0;
    size_t maxbytes = 0;
    for (int i = 0; i < w->count; i++) {
        const nst_weight *t = &w->t[i];
        if (nst_weights_find(w, t->name) != t) {
            st = nst_fail(msg, NST_ERR_INVALID_ARG, "%s: tensor %s appears twice", path, t->name);
            goto fail;
        }
        json_t *e = json_object(), *sh = json_array(), *off = json_array();
        if (!e || !sh || !off) {
            json_decref(e), json_decref(sh), json_decref(off);
            goto oom;
        }
        for (int d = 0; d < t->rank; d++) json_array_append_new(sh, json_integer(t->shape[d]));
        size_t bytes = t->count * (size_t)es;
        json_array_append_new(off, json_integer((json_int_t)at));
        json_array_append_new(off, json_integer((json_int_t)(at + bytes)));
        json_object_set_new(e, "dtype", json_string(dtype));
        json_object_set_new(e, "shape", sh);
        json_object_set_new(e, "data_offsets", off);
        if (json_object_set_new(root, t->name, e)) goto oom;
        at += bytes;
        if (bytes > maxbytes) maxbytes = bytes;
    }
    js = json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    buf = malloc(maxbytes ? maxbytes : 1);
    tmp = malloc(strlen(path) + 16);
    if (!js || !buf || !tmp) goto oom;
    size_t hl = strlen(js), padded = (hl + 7) / 8 * 8; /* pad with spaces to 8 bytes */
    sprintf(tmp, "%s.tmp-XXXXXX", path);
    int fd = mkstemp(tmp);
    if (fd < 0 || !(f = fdopen(fd, "wb"))) {
        if (fd >= 0) close(fd);
        st = nst_fail(msg, NST_ERR_IO, "cannot create a temporary file beside %s: %s", path,
                      NST_STRERROR(errno));
        free(tmp);
        tmp = NULL;
        goto fail;
    }
    fchmod(fd, 0644);
    unsigned char lenb[8];
    for (int i = 0; i < 8; i++) lenb[i] = (unsigned char)((uint64_t)padded >> (8 * i));
    int ok = fwrite(lenb, 1, 8, f) == 8 && fwrite(js, 1, hl, f) == hl;
    for (size_t i = hl; ok && i < padded; i++) ok = fputc(' ', f) != EOF;
    for (int i = 0; ok && i < w->count; i++) {
        NST_TRY(encode(buf, &w->t[i], dtype, path, msg));
        size_t bytes = w->t[i].count * (size_t)es;
        ok = fwrite(buf, 1, bytes, f) == bytes;
    }
    if (!ok || fflush(f) || fsync(fileno(f))) {
        st = nst_fail(msg, NST_ERR_IO, "cannot write %s: %s", tmp, NST_STRERROR(errno));
        goto fail;
    }
    int cr = fclose(f);
    f = NULL;
    if (cr || rename(tmp, path)) {
        st = nst_fail(msg, NST_ERR_IO, "cannot move %s to %s: %s", tmp, path, NST_STRERROR(errno));
        goto fail;
    }
    free(tmp);
    tmp = NULL;
    goto fail; /* st == NST_OK: common cleanup */
oom:
    st = nst_fail(msg, NST_ERR_NOMEM, "%s: building the header", path);
fail:
    if (f) fclose(f);
    if (tmp) {
        remove(tmp);
        free(tmp);
    }
    free(buf);
    free(js);
    json_decref(root);
    return st;
}
