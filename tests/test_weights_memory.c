/* test_weights_memory.c: weight files loaded from memory, and the inputs the
 * fuzzer (tests/fuzz/fuzz_weights.c) taught us about.
 *  - nst_weights_load_memory gives exactly what nst_weights_load gives from
 *    the same bytes on disk (status, names, shapes, bit-identical data), for
 *    every checkpoint under tests/data and every fuzzing seed;
 *  - every truncation and every single-byte corruption of the small seeds
 *    either loads a consistent table or fails cleanly (status, message, no
 *    table): under `make check-asan` / `check-valgrind` this is a small
 *    deterministic fuzz run;
 *  - every file under tests/bad/weights/ (regression inputs, one per bug found by
 *    fuzzing, named after it) is refused with a message, from disk and from
 *    memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "check.h"
#include "weights.h"

#define SEEDS "tests/fuzz/corpus_weights"
#define BAD "tests/bad/weights"
#define MAX_FILES 64

static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len >= 0);
    assert_int_equal(fseek(f, 0, SEEK_SET), 0);
    unsigned char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The regular files of dir whose names end in one of the suffixes (NULL:
 * any), sorted; returns the count, 0 when dir does not exist. */
static int list_files(const char *dir, const char *const *suffixes, char *out[MAX_FILES]) {
    DIR *d = opendir(dir);
    int n = 0;
    if (!d) return 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        size_t l = strlen(e->d_name);
        int ok = !suffixes;
        for (int i = 0; suffixes && suffixes[i]; i++) {
            size_t s = strlen(suffixes[i]);
            ok |= l >= s && !strcmp(e->d_name + l - s, suffixes[i]);
        }
        if (!ok) continue;
        assert_true(n < MAX_FILES);
        out[n] = malloc(strlen(dir) + l + 2);
        assert_non_null(out[n]);
        sprintf(out[n], "%s/%s", dir, e->d_name);
        struct stat sb;
        if (stat(out[n], &sb) || !S_ISREG(sb.st_mode))
            free(out[n]);
        else
            n++;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof out[0], by_name);
    return n;
}

static void free_list(char **l, int n) {
    for (int i = 0; i < n; i++) free(l[i]);
}

/* A successful load must give a consistent table; a failure no table and a
 * message. Returns the status. */
static nst_status load_mem_checked(const unsigned char *b, size_t n, int max_index,
                                   nst_weights **keep) {
    nst_msg m = {{0}};
    nst_weights *w = NULL;
    nst_status st = nst_weights_load_memory(b, n, "<memory>", max_index, &w, &m);
    if (st != NST_OK) {
        assert_null(w);
        assert_true(m.text[0] != 0);
        assert_non_null(memchr(m.text, 0, sizeof m.text));
        return st;
    }
    assert_non_null(w);
    for (int i = 0; i < w->count; i++) {
        const nst_weight *t = &w->t[i];
        assert_true(t->rank >= 1 && t->rank <= 4);
        size_t c = 1;
        for (int k = 0; k < t->rank; k++) c *= (size_t)t->shape[k];
        assert_int_equal(c, t->count);
        for (size_t j = 0; j < t->count; j++) assert_true(isfinite(t->data[j]));
        assert_ptr_equal(nst_weights_find(w, t->name), t);
    }
    if (keep)
        *keep = w;
    else
        nst_weights_free(w);
    return st;
}

static void same_tables(const nst_weights *a, const nst_weights *b) {
    assert_int_equal(a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        assert_string_equal(a->t[i].name, b->t[i].name);
        assert_int_equal(a->t[i].rank, b->t[i].rank);
        assert_memory_equal(a->t[i].shape, b->t[i].shape, sizeof a->t[i].shape);
        assert_int_equal(a->t[i].count, b->t[i].count);
        assert_memory_equal(a->t[i].data, b->t[i].data, a->t[i].count * sizeof(float));
    }
}

static void test_memory_equals_file(void **state) {
    static const char *const pth[] = {".pth", NULL};
    char *files[2 * MAX_FILES];
    int n = list_files("tests/data", pth, files);
    n += list_files(SEEDS, NULL, files + n);
    assert_true(n >= 10);
    int loaded = 0;
    for (int i = 0; i < n; i++) {
        for (int trim = 0; trim < 2; trim++) {
            int mi = trim ? NST_WEIGHTS_TRIM_INDEX : -1;
            nst_msg m = {{0}};
            nst_weights *a = NULL, *b = NULL;
            nst_status sa = nst_weights_load_trimmed(files[i], mi, &a, &m);
            size_t len;
            unsigned char *buf = read_all(files[i], &len);
            nst_status sb = load_mem_checked(buf, len, mi, &b);
            if (sa != sb) fprintf(stderr, "%s: file %d, memory %d\n", files[i], sa, sb);
            assert_int_equal(sa, sb);
            if (sa == NST_OK) {
                same_tables(a, b);
                loaded++;
            }
            nst_weights_free(a);
            nst_weights_free(b);
            free(buf);
        }
    }
    assert_true(loaded >= 8); /* the valid files really were compared */
    free_list(files, n);
}

static void test_empty_and_tiny_buffers(void **state) {
    static const char *const inputs[] = {"", "P", "PK\003\004", "\x80\x02\x8a",
                                         "\x02\0\0\0\0\0\0\0{}", "\x09\0\0\0\0\0\0\0{"};
    for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
        size_t n = i == 4 ? 10 : i == 5 ? 9 : strlen(inputs[i]);
        nst_status st = load_mem_checked((const unsigned char *)inputs[i], n, -1, NULL);
        /* "{}" is an empty safetensors file: a valid table with no tensors */
        assert_int_equal(st, i == 4 ? NST_OK : NST_ERR_FORMAT);
    }
}

/* Every prefix and every byte inverted, of every seed under 2 KB. */
static void test_truncated_and_corrupted_seeds(void **state) {
    char *files[MAX_FILES];
    int n = list_files(SEEDS, NULL, files), swept = 0, refused = 0;
    for (int i = 0; i < n; i++) {
        size_t len;
        unsigned char *buf = read_all(files[i], &len);
        if (len > 2048) {
            free(buf);
            continue;
        }
        swept++;
        for (size_t k = 0; k < len; k++) refused += load_mem_checked(buf, k, -1, NULL) != NST_OK;
        for (size_t k = 0; k < len; k++) {
            buf[k] ^= 0xff;
            refused += load_mem_checked(buf, len, k & 1 ? NST_WEIGHTS_TRIM_INDEX : -1, NULL) !=
                       NST_OK;
            buf[k] ^= 0xff;
        }
        free(buf);
    }
    assert_true(swept >= 8);
    assert_true(refused > 0);
    free_list(files, n);
}

static void test_regressions_refused(void **state) {
    char *files[MAX_FILES];
    int n = list_files(BAD, NULL, files);
    for (int i = 0; i < n; i++) {
        if (strstr(files[i], "README")) continue;
        nst_msg m = {{0}};
        nst_weights *w = NULL;
        nst_status st = nst_weights_load(files[i], &w, &m);
        if (st == NST_OK) fprintf(stderr, "%s: loaded, should be refused\n", files[i]);
        assert_int_not_equal(st, NST_OK);
        assert_null(w);
        assert_true(m.text[0] != 0);
        size_t len;
        unsigned char *buf = read_all(files[i], &len);
        assert_int_not_equal(load_mem_checked(buf, len, -1, NULL), NST_OK);
        assert_int_not_equal(load_mem_checked(buf, len, NST_WEIGHTS_TRIM_INDEX, NULL), NST_OK);
        free(buf);
    }
    free_list(files, n);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_memory_equals_file),
        cmocka_unit_test(test_empty_and_tiny_buffers),
        cmocka_unit_test(test_truncated_and_corrupted_seeds),
        cmocka_unit_test(test_regressions_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
