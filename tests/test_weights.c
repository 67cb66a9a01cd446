/* test_weights.c: weight files: F16/BF16 rounding, safetensors round trips,
 * one test per malformed-file error, trimming, the input convention in the
 * metadata, matching a file against VGG-19 and VGG-16 (detection and every
 * refusal), lookup order and the not-found message, PyTorch checkpoints (zip and legacy, F32/F16/BF16)
 * against the generated network, and hostile or damaged checkpoints. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "check.h"
#include "weights.h"

/* ---- helpers ----------------------------------------------------------- */

static void expect_msg(const nst_msg *m, const char *a, const char *b) {
    if (!strstr(m->text, a) || (b && !strstr(m->text, b))) {
        fprintf(stderr, "message \"%s\" lacks \"%s\"%s%s\n", m->text, a, b ? " or " : "",
                b ? b : "");
        fail();
    }
}

static void write_file(const char *path, const void *p, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc(*n);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, *n, f), *n);
    fclose(f);
    return p;
}

/* A safetensors file from a header and a data area of `data` bytes holding
 * the floats 1, 2, 3... (F32). */
static const char *st_file(const char *name, const char *header, size_t data) {
    const char *path = check_tmp_path(name);
    size_t hl = strlen(header);
    unsigned char *b = calloc(1, 8 + hl + data + 4);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)((uint64_t)hl >> (8 * i));
    memcpy(b + 8, header, hl);
    for (size_t i = 0; i + 4 <= data; i += 4) {
        float v = (float)(i / 4 + 1);
        memcpy(b + 8 + hl + i, &v, 4);
    }
    write_file(path, b, 8 + hl + data);
    free(b);
    return path;
}

static nst_status load_msg(const char *path, nst_msg *m) {
    nst_weights *w = NULL;
    nst_status st = nst_weights_load(path, &w, m);
    if (st == NST_OK) nst_weights_free(w);
    else assert_null(w);
    return st;
}

/* ---- scalar conversions -------------------------------------------------- */

/* The nearest representable neighbour check: h must be at least as close to
 * x as h-1 and h+1 (same sign), and even on a tie. */
static void check_nearest(float x, uint16_t h, float (*dec)(uint16_t)) {
    double d = fabs((double)dec(h) - x);
    for (int s = -1; s <= 1; s += 2) {
        uint16_t n = (uint16_t)(h + s);
        if ((n & 0x7fff) == 0x7fff || ((h & 0x7fff) == 0 && s < 0)) continue;
        double dn = fabs((double)dec(n) - x);
        if (!isfinite(dec(n))) continue;
        if (dn < d || (dn == d && (h & 1))) {
            fprintf(stderr, "x=%.9g -> 0x%04x (%.9g) but 0x%04x (%.9g) is nearer/even\n",
                    (double)x, h, (double)dec(h), n, (double)dec(n));
            fail();
        }
    }
}

static void test_half_conversions(void **state) {
    /* every finite half and bfloat16 survives the round trip */
    for (uint32_t h = 0; h < 65536; h++) {
        float f = nst_f16_to_f32((uint16_t)h);
        if (isfinite(f)) assert_int_equal(nst_f32_to_f16(f), h);
        float g = nst_bf16_to_f32((uint16_t)h);
        if (isfinite(g)) assert_int_equal(nst_f32_to_bf16(g), h);
    }
    assert_true(nst_f16_to_f32(0x3c00) == 1.0f && nst_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(nst_f16_to_f32(0x0001) == ldexpf(1, -24));
    assert_int_equal(nst_f32_to_f16(65520.0f), 0x7c00); /* rounds to Inf */
    assert_int_equal(nst_f32_to_f16(1.0f + ldexpf(1, -11)), 0x3c00); /* tie to even */
    assert_int_equal(nst_f32_to_f16(1.0f + 3 * ldexpf(1, -11)), 0x3c02);
    /* random values over the whole range, normal and subnormal */
    check_rng r;
    check_rng_seed(&r, 11);
    for (int i = 0; i < 200000; i++) {
        float x = ldexpf(check_uniform(&r, -1, 1), (int)check_uniform(&r, -26, 16));
        check_nearest(x, nst_f32_to_f16(x), nst_f16_to_f32);
        float y = ldexpf(check_uniform(&r, -1, 1), (int)check_uniform(&r, -120, 120));
        check_nearest(y, nst_f32_to_bf16(y), nst_bf16_to_f32);
    }
}

/* ---- safetensors round trips ------------------------------------------- */

static void round_trip(const char *dtype) {
    nst_msg m = {{0}};
    nst_weights *w = NULL, *r = NULL;
    assert_int_equal(nst_weights_generate(&w, 3, 1.0 / 32, 5, &m), NST_OK);
    const char *path = check_tmp_path("rt.safetensors");
    assert_int_equal(nst_weights_save(w, path, dtype, &m), NST_OK);
    assert_int_equal(nst_weights_load(path, &r, &m), NST_OK);
    assert_int_equal(r->count, w->count);
    for (int i = 0; i < w->count; i++) {
        const nst_weight *a = &w->t[i], *b = nst_weights_find(r, a->name);
        assert_non_null(b);
        assert_int_equal(a->rank, b->rank);
        assert_memory_equal(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->rank);
        for (size_t j = 0; j < a->count; j++) {
            float x = a->data[j], want = x;
            double tol = 0;
            if (!strcmp(dtype, "F16")) {
                want = nst_f16_to_f32(nst_f32_to_f16(x));
                tol = fmax(fabs(x) * ldexp(1, -11), ldexp(1, -25));
            } else if (!strcmp(dtype, "BF16")) {
                want = nst_bf16_to_f32(nst_f32_to_bf16(x));
                tol = fabs(x) * ldexp(1, -8);
            }
            assert_true(b->data[j] == want);
            assert_true(fabs((double)b->data[j] - x) <= tol);
        }
    }
    nst_weights_free(w);
    nst_weights_free(r);
}

static void test_round_trip_f32(void **state) { round_trip("F32"); }
static void test_round_trip_f16(void **state) { round_trip("F16"); }
static void test_round_trip_bf16(void **state) { round_trip("BF16"); }

static void test_save_refuses_unrepresentable(void **state) {
    nst_msg m = {{0}};
    nst_weights *w = NULL;
    assert_int_equal(nst_weights_generate(&w, 3, 1.0 / 64, 2, &m), NST_OK);
    const char *path = check_tmp_path("big.safetensors");
    assert_int_equal(nst_weights_save(w, path, "F32", &m), NST_OK);
    size_t n0;
    unsigned char *before = read_all(path, &n0);
    w->t[2].data[1] = 70000.0f; /* beyond F16's 65504 */
    assert_int_equal(nst_weights_save(w, path, "F16", &m), NST_ERR_NUMERIC);
    expect_msg(&m, "features.2.weight", "F16");
    assert_int_equal(nst_weights_save(w, path, "I8", &m), NST_ERR_INVALID_ARG);
    /* the old file is untouched and no temporary file is left */
    size_t n1;
    unsigned char *after = read_all(path, &n1);
    assert_int_equal(n0, n1);
    assert_memory_equal(before, after, n0);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s.tmp-* >/dev/null 2>&1", path);
    assert_int_not_equal(system(cmd), 0);
    free(before);
    free(after);
    nst_weights_free(w);
}

/* ---- malformed safetensors: one test each ----------------------------- */

#define T1 "\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}"

static void test_bad_header_length(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("hl.safetensors", "{" T1 "}", 8);
    size_t n;
    unsigned char *b = read_all(p, &n);
    b[0] = 0xff, b[1] = 0xff; /* header length beyond the file */
    write_file(p, b, n);
    free(b);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, p, "larger than the file");
    write_file(p, "\x05\0\0\0\0\0\0\0{", 9);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, p, "larger than the file");
}

static void test_too_short(void **state) {
    nst_msg m = {{0}};
    const char *p = check_tmp_path("short.safetensors");
    write_file(p, "\x02\0\0\0\0\0\0", 7);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, p, "not a weight file");
}

static void test_bad_json(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("json.safetensors", "{\"t\":{\"dtype\":\"F32\",", 8);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, p, "malformed JSON");
}

static void test_unknown_dtype(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("dt.safetensors",
                            "{\"w1\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor w1", "\"I64\"");
    expect_msg(&m, p, NULL);
}

static void test_size_mismatch(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("sz.safetensors",
                            "{\"w2\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor w2", "span 8");
}

static void test_offsets_outside(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("out.safetensors",
                            "{\"w3\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor w3", "outside the data area");
}

static void test_overlap(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("ov.safetensors",
                            "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor b overlaps tensor a", NULL);
}

static void test_gap(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("gap.safetensors",
                            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                            "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor b", "unused bytes");
    p = st_file("tail.safetensors", "{" T1 "}", 16);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "16 bytes", "cover 8");
}

static void test_absurd_rank_and_dims(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("rank.safetensors", "{\"r\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],"
                            "\"data_offsets\":[0,4]}}", 4);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor r", "rank 5");
    p = st_file("dim.safetensors", "{\"d\":{\"dtype\":\"F32\",\"shape\":[4294967296],"
                "\"data_offsets\":[0,4]}}", 4);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor d", "dimension 0");
    p = st_file("huge.safetensors", "{\"h\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],"
                "\"data_offsets\":[0,4]}}", 4);
    assert_int_equal(load_msg(p, &m), NST_ERR_TOO_LARGE);
    expect_msg(&m, "tensor h", "2^40");
}

static void test_nan_inf(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("nan.safetensors", "{" T1 "}", 8);
    size_t n;
    unsigned char *b = read_all(p, &n);
    float bad = NAN;
    memcpy(b + n - 4, &bad, 4);
    write_file(p, b, n);
    assert_int_equal(load_msg(p, &m), NST_ERR_NUMERIC);
    expect_msg(&m, "tensor t", "element 1 is NaN");
    bad = -INFINITY;
    memcpy(b + n - 8, &bad, 4);
    write_file(p, b, n);
    assert_int_equal(load_msg(p, &m), NST_ERR_NUMERIC);
    expect_msg(&m, "tensor t", "element 0 is infinite");
    free(b);
}

static void test_duplicate_names(void **state) {
    nst_msg m = {{0}};
    const char *p = st_file("dup.safetensors", "{" T1 "," T1 "}", 8);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, p, "duplicate");
}

static void test_html_page(void **state) {
    nst_msg m = {{0}};
    const char *p = check_tmp_path("page.safetensors");
    const char *html = "<!DOCTYPE html><html><body>404 Not Found</body></html>\n";
    write_file(p, html, strlen(html));
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, p, "HTML");
    assert_int_equal(load_msg(check_tmp_path("does-not-exist"), &m), NST_ERR_IO);
    expect_msg(&m, "does-not-exist", NULL);
}

/* ---- trimming ----------------------------------------------------------- */

static void test_trim(void **state) {
    nst_msg m = {{0}};
    nst_weights *w = NULL, *r = NULL;
    assert_int_equal(nst_weights_generate(&w, 5, 1.0 / 64, 16, &m), NST_OK);
    const char *p = check_tmp_path("full.safetensors");
    assert_int_equal(nst_weights_save(w, p, "F32", &m), NST_OK);
    assert_int_equal(nst_weights_load_trimmed(p, NST_WEIGHTS_TRIM_INDEX, &r, &m), NST_OK);
    assert_int_equal(r->count, 26); /* conv1_1 .. conv5_1, weight and bias */
    assert_non_null(nst_weights_find(r, "features.28.bias"));
    assert_null(nst_weights_find(r, "features.30.weight"));
    nst_weights_trim(w, NST_WEIGHTS_TRIM_INDEX);
    assert_int_equal(w->count, 26);
    for (int i = 0; i < 26; i++) {
        assert_string_equal(w->t[i].name, r->t[i].name);
        assert_memory_equal(w->t[i].data, r->t[i].data, w->t[i].count * sizeof(float));
    }
    assert_true(nst_weights_keep("features.2.weight", 2));
    assert_false(nst_weights_keep("features.2.weights", 2));
    assert_false(nst_weights_keep("features.5.bias", 2));
    assert_false(nst_weights_keep("classifier.0.bias", 28));
    assert_true(nst_weights_keep("classifier.0.bias", -1));
    nst_weights_free(w);
    nst_weights_free(r);
}

/* ---- the input convention in the metadata ------------------------------ */

static void test_input_metadata(void **state) {
    nst_msg m = {{0}};
    nst_weights *w = NULL;
    const char *t = "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    char h[256];
    /* declared: caffe; absent or torchvision: torchvision */
    snprintf(h, sizeof h, "{\"__metadata__\":{\"format\":\"pt\",\"input\":\"caffe\"},%s", t);
    assert_int_equal(nst_weights_load(st_file("in1.safetensors", h, 8), &w, &m), NST_OK);
    assert_int_equal(w->input, NST_INPUT_CAFFE);
    nst_weights_free(w);
    snprintf(h, sizeof h, "{\"__metadata__\":{\"input\":\"torchvision\"},%s", t);
    assert_int_equal(nst_weights_load(st_file("in2.safetensors", h, 8), &w, &m), NST_OK);
    assert_int_equal(w->input, NST_INPUT_TORCHVISION);
    nst_weights_free(w);
    snprintf(h, sizeof h, "{%s", t);
    assert_int_equal(nst_weights_load(st_file("in3.safetensors", h, 8), &w, &m), NST_OK);
    assert_int_equal(w->input, NST_INPUT_TORCHVISION);
    nst_weights_free(w);
    /* other text is a description, not a declaration: the default holds
     * (the wording of a real conversion of Oxford's weights) */
    snprintf(h, sizeof h,
             "{\"__metadata__\":{\"input\":\"RGB [0,1], torchvision mean/std (Caffe "
             "preprocessing folded into conv1_1)\"},%s",
             t);
    assert_int_equal(nst_weights_load(st_file("in4.safetensors", h, 8), &w, &m), NST_OK);
    assert_int_equal(w->input, NST_INPUT_TORCHVISION);
    nst_weights_free(w);
    w = NULL;
    snprintf(h, sizeof h, "{\"__metadata__\":{\"input\":3},%s", t);
    assert_int_equal(nst_weights_load(st_file("in5.safetensors", h, 8), &w, &m), NST_ERR_FORMAT);
    expect_msg(&m, "not a string", "\"caffe\"");
    /* written back by the saver, only when not the default */
    assert_int_equal(nst_weights_generate(&w, 3, 1.0 / 64, 1, &m), NST_OK);
    const char *q = check_tmp_path("in6.safetensors");
    size_t n;
    assert_int_equal(nst_weights_save(w, q, "F32", &m), NST_OK);
    unsigned char *b = read_all(q, &n);
    for (size_t i = 0; i + 7 <= n; i++) assert_true(memcmp(b + i, "\"input\"", 7) != 0);
    free(b);
    w->input = NST_INPUT_CAFFE;
    assert_int_equal(nst_weights_save(w, q, "F16", &m), NST_OK);
    nst_weights_free(w);
    assert_int_equal(nst_weights_load(q, &w, &m), NST_OK);
    assert_int_equal(w->input, NST_INPUT_CAFFE);
    nst_weights_free(w);
}

/* ---- matching a file against a network ------------------------------------ */

/* A copy of w without the tensors whose names start with `drop` (NULL:
 * none), plus one tensor `add` of the given shape (NULL: none). */
static nst_weights *edited(const nst_weights *w, const char *drop, const char *add, int rank,
                           const int64_t *shape) {
    nst_weights *o = calloc(1, sizeof *o);
    assert_non_null(o);
    for (int i = 0; i < w->count; i++) {
        const nst_weight *t = &w->t[i];
        if (drop && !strncmp(t->name, drop, strlen(drop))) continue;
        nst_weight *n = nst_weights_add(o, t->name, t->rank, t->shape);
        assert_non_null(n);
        memcpy(n->data, t->data, t->count * sizeof(float));
    }
    if (add) assert_non_null(nst_weights_add(o, add, rank, shape));
    return o;
}

/* Saves w and loads it back for `network`: the status, the message in *m. */
static nst_status load_as(const nst_weights *w, const char *name, nst_network network,
                          nst_msg *m) {
    nst_weights *r = NULL;
    const char *p = check_tmp_path(name);
    assert_int_equal(nst_weights_save(w, p, "F32", m), NST_OK);
    nst_status st = nst_weights_load_network(p, network, &r, m);
    if (st == NST_OK) {
        assert_non_null(r->net);
        assert_int_equal(r->net->id, network ? network : nst_weights_net(w)->id);
        assert_non_null(strstr(r->source, name));
    } else {
        assert_null(r);
        expect_msg(m, p, NULL); /* every refusal names the file */
    }
    nst_weights_free(r);
    return st;
}

static void test_network_match(void **state) {
    nst_msg m = {{0}};
    nst_weights *v19 = NULL, *v16 = NULL, *e = NULL;
    const nst_net *net = NULL;
    assert_int_equal(nst_weights_generate(&v19, 3, 1.0 / 64, 16, &m), NST_OK);
    assert_int_equal(nst_weights_generate_net(&v16, nst_net_get(NST_NETWORK_VGG16), 4, 1.0 / 64,
                                              13, &m), NST_OK);
    /* each is detected, and loads as itself */
    v19->net = v16->net = NULL;
    assert_int_equal(nst_net_detect(v19, &net, &m), NST_OK);
    assert_int_equal(net->id, NST_NETWORK_VGG19);
    assert_int_equal(nst_net_detect(v16, &net, &m), NST_OK);
    assert_int_equal(net->id, NST_NETWORK_VGG16);
    assert_int_equal(load_as(v19, "m19.safetensors", NST_NETWORK_AUTO, &m), NST_OK);
    assert_int_equal(load_as(v16, "m16.safetensors", NST_NETWORK_AUTO, &m), NST_OK);
    assert_int_equal(load_as(v16, "m16.safetensors", NST_NETWORK_VGG16, &m), NST_OK);
    /* one given for the other: the tensor that does not fit, and what the
     * file looks like */
    assert_int_equal(load_as(v16, "m16.safetensors", NST_NETWORK_VGG19, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor features.17.weight: features.17 of VGG-19 is relu3_4",
               "like VGG-16: give --network vgg16");
    assert_int_equal(load_as(v19, "m19.safetensors", NST_NETWORK_VGG16, &m), NST_ERR_FORMAT);
    expect_msg(&m, "features.16 of VGG-16 is pool3", "like VGG-19: give --network vgg19");
    /* up to conv3_3 both networks are the same: either fits, VGG-19 detected */
    nst_weights *common = edited(v19, "features.16", NULL, 0, NULL);
    nst_weights_trim(common, 15);
    assert_int_equal(nst_net_detect(common, &net, &m), NST_OK);
    assert_int_equal(net->id, NST_NETWORK_VGG19);
    assert_int_equal(load_as(common, "mc.safetensors", NST_NETWORK_VGG16, &m), NST_OK);
    nst_weights_free(common);
    /* a mix of the two */
    int64_t s17[4] = {4, 4, 3, 3};
    e = edited(v19, NULL, "features.17.weight", 4, s17);
    assert_int_equal(nst_net_detect(e, &net, &m), NST_ERR_FORMAT);
    expect_msg(&m, "mix VGG-19 (features.16.weight) and VGG-16 (features.17.weight)", NULL);
    assert_int_equal(load_as(e, "mix.safetensors", NST_NETWORK_AUTO, &m), NST_ERR_FORMAT);
    nst_weights_free(e);
    /* a batch norm after conv1_1, and a stray part of a convolution */
    int64_t s1[1] = {4};
    e = edited(v19, NULL, "features.1.weight", 1, s1);
    assert_int_equal(load_as(e, "bn.safetensors", NST_NETWORK_AUTO, &m), NST_ERR_FORMAT);
    expect_msg(&m, "features.1 of VGG-19 is relu1_1, which has no weights", "batch-normalised");
    nst_weights_free(e);
    e = edited(v19, NULL, "features.0.running_mean", 1, s1);
    assert_int_equal(load_as(e, "rm.safetensors", NST_NETWORK_AUTO, &m), NST_ERR_FORMAT);
    expect_msg(&m, "tensor features.0.running_mean", "only a weight and a bias");
    nst_weights_free(e);
    /* beyond the network */
    e = edited(v16, NULL, "features.31.weight", 1, s1);
    assert_int_equal(load_as(e, "far.safetensors", NST_NETWORK_VGG16, &m), NST_ERR_FORMAT);
    expect_msg(&m, "features.31.weight is not a layer of VGG-16 (features.0 .. features.30)",
               "--network vgg19");
    nst_weights_free(e);
    /* a convolution skipped; a convolution without its bias */
    e = edited(v19, "features.2.", NULL, 0, NULL);
    assert_int_equal(load_as(e, "skip.safetensors", NST_NETWORK_AUTO, &m), NST_ERR_FORMAT);
    expect_msg(&m, "skip features.2 (conv1_2 of VGG-19)", "up to features.34");
    nst_weights_free(e);
    e = edited(v16, "features.24.bias", NULL, 0, NULL);
    assert_int_equal(load_as(e, "nob.safetensors", NST_NETWORK_AUTO, &m), NST_ERR_FORMAT);
    expect_msg(&m, "no tensor features.24.bias (conv5_1)", "VGG-16");
    nst_weights_free(e);
    /* a wrong shape: channels that do not chain, a 5x5 kernel */
    int64_t s5[4] = {16, 5, 3, 3};
    e = edited(v16, "features.10.weight", "features.10.weight", 4, s5);
    assert_int_equal(load_as(e, "ch.safetensors", NST_NETWORK_AUTO, &m), NST_ERR_FORMAT);
    expect_msg(&m, "features.10.weight (conv3_1) takes 5 input channels but pool2 gives 2",
               NULL);
    nst_weights_free(e);
    int64_t k5[4] = {1, 3, 5, 5};
    e = edited(v16, "features.0.weight", "features.0.weight", 4, k5);
    assert_int_equal(load_as(e, "k5.safetensors", NST_NETWORK_AUTO, &m), NST_ERR_FORMAT);
    expect_msg(&m, "features.0.weight (conv1_1) has a 5x5 kernel", "VGG-16's conv1_1 is 3x3");
    nst_weights_free(e);
    /* no features at all; a classifier beside them is ignored */
    int64_t c2[2] = {3, 4};
    e = edited(v19, "features.", "conv1_1.weight", 4, s17);
    assert_int_equal(load_as(e, "nof.safetensors", NST_NETWORK_AUTO, &m), NST_ERR_FORMAT);
    expect_msg(&m, "no tensor is named features.N.weight", "conv1_1.weight");
    nst_weights_free(e);
    e = edited(v16, NULL, "classifier.0.weight", 2, c2);
    assert_int_equal(load_as(e, "cls.safetensors", NST_NETWORK_AUTO, &m), NST_OK);
    nst_weights_free(e);
    nst_weights_free(v19);
    nst_weights_free(v16);
}

/* ---- lookup ------------------------------------------------------------- */

static void touch(const char *path) { write_file(path, "x", 1); }

/* nst_weights_locate over the directories dirs (NULL-terminated) alone, into
 * a 512-byte out. */
static nst_status locate(const char *explicit_path, nst_network network,
                         const char *const *dirs, char *out, nst_msg *m) {
    nst_settings s = {0};
    for (int d = 0; dirs[d]; d++)
        snprintf(s.weights_dirs + strlen(s.weights_dirs),
                 sizeof s.weights_dirs - strlen(s.weights_dirs), "%s%s", d ? ":" : "", dirs[d]);
    return nst_weights_locate(&s, explicit_path, network, out, 512, m);
}

static void test_locate_order(void **state) {
    nst_msg m = {{0}};
    char out[512];
    const char *d1 = check_tmp_path("loc1"), *d2 = check_tmp_path("loc2"),
               *d3 = check_tmp_path("loc3");
    char f[512];
    system("rm -rf build/tmp/loc1 build/tmp/loc2 build/tmp/loc3");
    mkdir(d1, 0755), mkdir(d2, 0755), mkdir(d3, 0755);
    nst_settings s = {0};
    snprintf(s.weights_dirs, sizeof s.weights_dirs, "%s:%s::%s", d1, d2, d3);
    /* nothing anywhere: one message naming every place and the fix */
    assert_int_equal(nst_weights_locate(&s, NULL, NST_NETWORK_AUTO, out, sizeof out, &m), NST_ERR_IO);
    expect_msg(&m, "build/tmp/loc1, build/tmp/loc2, build/tmp/loc3", "make weights");
    expect_msg(&m, "$NST_WEIGHTS", NST_WEIGHTS_FILE);
    /* the torchvision name in the third, the trimmed file in the second */
    snprintf(f, sizeof f, "%s/%s", d3, NST_WEIGHTS_TORCHVISION_FILE);
    touch(f);
    assert_int_equal(nst_weights_locate(&s, NULL, NST_NETWORK_AUTO, out, sizeof out, &m), NST_OK);
    assert_string_equal(out, f);
    snprintf(f, sizeof f, "%s/%s", d2, NST_WEIGHTS_FILE);
    touch(f);
    assert_int_equal(nst_weights_locate(&s, NULL, NST_NETWORK_AUTO, out, sizeof out, &m), NST_OK);
    assert_string_equal(out, f);
    /* $NST_WEIGHTS beats the directories, and must exist */
    snprintf(s.weights, sizeof s.weights, "%s/%s", d3, NST_WEIGHTS_TORCHVISION_FILE);
    assert_int_equal(nst_weights_locate(&s, NULL, NST_NETWORK_AUTO, out, sizeof out, &m), NST_OK);
    assert_string_equal(out, s.weights);
    snprintf(s.weights, sizeof s.weights, "build/tmp/loc3/missing.safetensors");
    assert_int_equal(nst_weights_locate(&s, NULL, NST_NETWORK_AUTO, out, sizeof out, &m), NST_ERR_IO);
    expect_msg(&m, "missing.safetensors", "$NST_WEIGHTS");
    /* --weights beats everything, and must exist */
    snprintf(f, sizeof f, "%s/%s", d2, NST_WEIGHTS_FILE);
    assert_int_equal(nst_weights_locate(&s, f, NST_NETWORK_AUTO, out, sizeof out, &m), NST_OK);
    assert_string_equal(out, f);
    assert_int_equal(nst_weights_locate(&s, "build/tmp/nope.pth", NST_NETWORK_AUTO, out, sizeof out, &m),
                     NST_ERR_IO);
    expect_msg(&m, "nope.pth", "--weights");
    /* the search the environment gives: $XDG_DATA_HOME/nst unless the source
     * tree has weights */
    const char *old = getenv("NST_WEIGHTS");
    char *saved = old ? strdup(old) : NULL;
    unsetenv("NST_WEIGHTS");
    setenv("XDG_DATA_HOME", "build/tmp/loc1", 1);
    mkdir("build/tmp/loc1/nst", 0755);
    touch("build/tmp/loc1/nst/" NST_WEIGHTS_FILE);
    check_settings(&s);
    assert_int_equal(nst_weights_locate(&s, NULL, NST_NETWORK_AUTO, out, sizeof out, &m), NST_OK);
    struct stat sb;
    if (!stat(NST_SOURCE_DIR "/weights/" NST_WEIGHTS_FILE, &sb))
        assert_string_equal(out, NST_SOURCE_DIR "/weights/" NST_WEIGHTS_FILE);
    else
        assert_string_equal(out, "build/tmp/loc1/nst/" NST_WEIGHTS_FILE);
    unsetenv("XDG_DATA_HOME");
    if (saved) setenv("NST_WEIGHTS", saved, 1);
    free(saved);
}

/* VGG-16's files: found when asked for, or when no VGG-19 file is anywhere;
 * a VGG-19 file in a later directory still comes first by default. */
static void test_locate_vgg16(void **state) {
    nst_msg m = {{0}};
    char out[512], f16[512], f19[512];
    const char *d1 = check_tmp_path("l16a"), *d2 = check_tmp_path("l16b");
    system("rm -rf build/tmp/l16a build/tmp/l16b");
    mkdir(d1, 0755), mkdir(d2, 0755);
    const char *dirs[] = {d1, d2, NULL};
    assert_int_equal(locate(NULL, NST_NETWORK_VGG16, dirs, out, &m), NST_ERR_IO);
    expect_msg(&m, "no VGG-16 weights", "vgg16-conv.safetensors or vgg16-397923af.pth");
    expect_msg(&m, "NST_NETWORK=vgg16 make weights", "build/tmp/l16a, build/tmp/l16b");
    assert_int_equal(locate(NULL, NST_NETWORK_AUTO, dirs, out, &m), NST_ERR_IO);
    expect_msg(&m, "no VGG-19 or VGG-16 weights", "vgg19-dcbb9e9d.pth, vgg16-conv.safetensors");
    snprintf(f16, sizeof f16, "%s/vgg16-397923af.pth", d1);
    touch(f16);
    assert_int_equal(locate(NULL, NST_NETWORK_AUTO, dirs, out, &m), NST_OK);
    assert_string_equal(out, f16);
    assert_int_equal(locate(NULL, NST_NETWORK_VGG19, dirs, out, &m), NST_ERR_IO);
    expect_msg(&m, "no VGG-19 weights", "`make weights`");
    snprintf(f19, sizeof f19, "%s/" NST_WEIGHTS_FILE, d2);
    touch(f19);
    assert_int_equal(locate(NULL, NST_NETWORK_AUTO, dirs, out, &m), NST_OK);
    assert_string_equal(out, f19);
    assert_int_equal(locate(NULL, NST_NETWORK_VGG16, dirs, out, &m), NST_OK);
    assert_string_equal(out, f16);
}

/* ---- PyTorch checkpoints ------------------------------------------------ */

/* tests/data/tiny-vgg*.pth hold generate(7, 1/64, 16) plus classifier.6
 * (tools/make_pth.py); conv = 0: float32, 1: half, 2: bfloat16. */
static void check_tiny(const nst_weights *r, int conv) {
    nst_msg m = {{0}};
    nst_weights *w = NULL;
    assert_int_equal(nst_weights_generate(&w, 7, 1.0 / 64, 16, &m), NST_OK);
    assert_int_equal(r->count, w->count + 2);
    for (int i = 0; i < w->count; i++) {
        const nst_weight *a = &w->t[i], *b = nst_weights_find(r, a->name);
        assert_non_null(b);
        assert_int_equal(a->rank, b->rank);
        assert_memory_equal(a->shape, b->shape, sizeof a->shape[0] * (size_t)a->rank);
        for (size_t j = 0; j < a->count; j++) {
            float x = a->data[j];
            if (conv == 1) x = nst_f16_to_f32(nst_f32_to_f16(x));
            if (conv == 2) x = nst_bf16_to_f32(nst_f32_to_bf16(x));
            assert_true(b->data[j] == x);
        }
    }
    const nst_weight *cw = nst_weights_find(r, "classifier.6.weight"),
                     *cb = nst_weights_find(r, "classifier.6.bias");
    assert_non_null(cw);
    assert_non_null(cb);
    assert_int_equal(cw->shape[0], 5);
    assert_int_equal(cw->shape[1], 8);
    for (int j = 0; j < 40; j++) assert_true(cw->data[j] == (float)(j % 7 - 3) * 0.125f);
    for (int j = 0; j < 5; j++) assert_true(cb->data[j] == -0.25f * (float)j);
    nst_weights_free(w);
}

static void test_pth_equals_generated(void **state) {
    static const struct { const char *file; int conv; } files[] = {
        {"tests/data/tiny-vgg.pth", 0},
        {"tests/data/tiny-vgg-legacy.pth", 0},
        {"tests/data/tiny-vgg-half.pth", 1},
        {"tests/data/tiny-vgg-bf16.pth", 2},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        nst_msg m = {{0}};
        nst_weights *r = NULL;
        nst_status st = nst_weights_load(files[i].file, &r, &m);
        if (st) fprintf(stderr, "%s\n", m.text);
        assert_int_equal(st, NST_OK);
        check_tiny(r, files[i].conv);
        nst_weights_free(r);
        /* trimmed: conv1_1..conv5_1 only */
        assert_int_equal(nst_weights_load_trimmed(files[i].file, 28, &r, &m), NST_OK);
        assert_int_equal(r->count, 26);
        nst_weights_free(r);
    }
    /* and converted to safetensors, the values stay */
    nst_msg m = {{0}};
    nst_weights *r = NULL, *s = NULL;
    assert_int_equal(nst_weights_load("tests/data/tiny-vgg-legacy.pth", &r, &m), NST_OK);
    const char *p = check_tmp_path("from-pth.safetensors");
    assert_int_equal(nst_weights_save(r, p, "F32", &m), NST_OK);
    assert_int_equal(nst_weights_load(p, &s, &m), NST_OK);
    check_tiny(s, 0);
    nst_weights_free(r);
    nst_weights_free(s);
}

static void test_pth_views_and_strides(void **state) {
    nst_msg m = {{0}};
    nst_weights *r = NULL;
    /* {'state_dict': {a: Parameter(base[0:6].view(2,3)), b: base[6:10]}, 'epoch': 3} */
    assert_int_equal(nst_weights_load("tests/data/pth-views.pth", &r, &m), NST_OK);
    assert_int_equal(r->count, 2);
    const nst_weight *a = nst_weights_find(r, "a"), *b = nst_weights_find(r, "b");
    assert_non_null(a);
    assert_non_null(b);
    assert_int_equal(a->rank, 2);
    assert_int_equal(a->shape[1], 3);
    for (int i = 0; i < 6; i++) assert_true(a->data[i] == 0.5f * (float)i);
    for (int i = 0; i < 4; i++) assert_true(b->data[i] == 0.5f * (float)(i + 6));
    nst_weights_free(r);
    /* the pre-0.4 _rebuild_tensor form, as in torchvision's 2017 files */
    assert_int_equal(nst_weights_load("tests/data/pth-v1-legacy.pth", &r, &m), NST_OK);
    assert_int_equal(r->count, 1);
    assert_int_equal(r->t[0].shape[0], 2);
    for (int i = 0; i < 6; i++) assert_true(r->t[0].data[i] == 0.25f * (float)i);
    nst_weights_free(r);
    assert_int_equal(load_msg("tests/data/pth-strided.pth", &m), NST_ERR_FORMAT);
    expect_msg(&m, "features.0.weight", "not contiguous");
}

static void test_pth_hostile(void **state) {
    static const struct { const char *file, *a, *b; } cases[] = {
        {"tests/data/hostile-os-system.pth", "posix.system", "refused"},
        {"tests/data/hostile-eval-legacy.pth", "eval", "refused"},
        {"tests/data/hostile-inst.pth", "opcode 0x69", "refused"},
        {"tests/data/hostile-absurd.pth", "features.0.weight", "2^40"},
        {"tests/data/hostile-memo.pth", "memo index", NULL},
    };
    remove("build/tmp/pwned");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nst_msg m = {{0}};
        assert_int_not_equal(load_msg(cases[i].file, &m), NST_OK);
        expect_msg(&m, cases[i].file, NULL);
        expect_msg(&m, cases[i].a, cases[i].b);
    }
    assert_int_not_equal(access("build/tmp/pwned", F_OK), 0);
}

/* Finds the central-directory entry whose name ends in `tail`. */
static unsigned char *cd_entry(unsigned char *b, size_t n, const char *tail) {
    size_t tl = strlen(tail);
    for (size_t i = 0; i + 46 < n; i++)
        if (!memcmp(b + i, "PK\001\002", 4)) {
            size_t nl = b[i + 28] | b[i + 29] << 8;
            if (nl >= tl && i + 46 + nl <= n && !memcmp(b + i + 46 + nl - tl, tail, tl))
                return b + i;
        }
    return NULL;
}

static void test_pth_damaged(void **state) {
    nst_msg m = {{0}};
    size_t n;
    unsigned char *b = read_all("tests/data/tiny-vgg.pth", &n);
    const char *p = check_tmp_path("damaged.pth");
    /* a compressed entry */
    unsigned char *e = cd_entry(b, n, "/data.pkl");
    assert_non_null(e);
    e[10] = 8;
    write_file(p, b, n);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "data.pkl", "compressed");
    e[10] = 0;
    /* a storage byte changed: the CRC catches it */
    e = cd_entry(b, n, "/data/0");
    assert_non_null(e);
    size_t lho = e[42] | e[43] << 8 | (size_t)e[44] << 16 | (size_t)e[45] << 24;
    size_t off = lho + 30 + (b[lho + 26] | b[lho + 27] << 8) + (b[lho + 28] | b[lho + 29] << 8);
    b[off + 5] ^= 0x40;
    write_file(p, b, n);
    assert_int_equal(load_msg(p, &m), NST_ERR_FORMAT);
    expect_msg(&m, "features.0.weight", "CRC");
    b[off + 5] ^= 0x40;
    /* truncated at many points: an error every time, never a crash */
    for (size_t len = 0; len < n; len += len < 64 ? 1 : 97) {
        write_file(p, b, len);
        assert_int_not_equal(load_msg(p, &m), NST_OK);
    }
    free(b);
    b = read_all("tests/data/tiny-vgg-legacy.pth", &n);
    for (size_t len = 0; len < n; len += len < 64 ? 1 : 53) {
        write_file(p, b, len);
        assert_int_not_equal(load_msg(p, &m), NST_OK);
    }
    /* random byte changes in the pickles: errors or a sane table, never a crash */
    check_rng r;
    check_rng_seed(&r, 99);
    unsigned char *c = malloc(n);
    for (int it = 0; it < 400; it++) {
        memcpy(c, b, n);
        for (int k = 0; k < 3; k++) {
            size_t at = 16 + (size_t)check_uniform(&r, 0, 3000);
            c[at] = (unsigned char)check_uniform(&r, 0, 256);
        }
        write_file(p, c, n);
        nst_weights *w = NULL;
        if (nst_weights_load(p, &w, &m) == NST_OK) {
            assert_true(w->count > 0);
            nst_weights_free(w);
        }
    }
    free(c);
    free(b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_conversions),
        cmocka_unit_test(test_round_trip_f32),
        cmocka_unit_test(test_round_trip_f16),
        cmocka_unit_test(test_round_trip_bf16),
        cmocka_unit_test(test_save_refuses_unrepresentable),
        cmocka_unit_test(test_bad_header_length),
        cmocka_unit_test(test_too_short),
        cmocka_unit_test(test_bad_json),
        cmocka_unit_test(test_unknown_dtype),
        cmocka_unit_test(test_size_mismatch),
        cmocka_unit_test(test_offsets_outside),
        cmocka_unit_test(test_overlap),
        cmocka_unit_test(test_gap),
        cmocka_unit_test(test_absurd_rank_and_dims),
        cmocka_unit_test(test_nan_inf),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_html_page),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_input_metadata),
        cmocka_unit_test(test_network_match),
        cmocka_unit_test(test_locate_order),
        cmocka_unit_test(test_locate_vgg16),
        cmocka_unit_test(test_pth_equals_generated),
        cmocka_unit_test(test_pth_views_and_strides),
        cmocka_unit_test(test_pth_hostile),
        cmocka_unit_test(test_pth_damaged),
    };
    return cmocka_run_group_tests_name("weights", tests, NULL, NULL);
}
