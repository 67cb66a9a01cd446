/* fuzz_weights.c: libFuzzer target for the weight-file readers.
 *
 * Each input is handed to nst_weights_load_memory (format sniffing, then the
 * safetensors reader or the PyTorch zip/legacy checkpoint reader), once
 * keeping every tensor and once trimmed to conv5_1 (whose tensors are
 * validated but not all read). A successful load must give a consistent
 * table: finite values, count equal to the product of the shape. Any crash,
 * sanitizer report, leak or failed check is a bug. Seeds:
 * tests/fuzz/corpus_weights/; dictionary: tests/fuzz/fuzz_weights.dict. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "weights.h"

static void check_table(const nst_weights *w) {
    if (!w || w->count < 0) abort();
    for (int i = 0; i < w->count; i++) {
        const nst_weight *t = &w->t[i];
        if (t->rank < 1 || t->rank > 4 || !memchr(t->name, 0, sizeof t->name)) abort();
        size_t count = 1;
        for (int d = 0; d < t->rank; d++) count *= (size_t)t->shape[d];
        if (count != t->count) abort();
        for (size_t j = 0; j < t->count; j++)
            if (!isfinite(t->data[j])) abort();
        if (nst_weights_find(w, t->name) == NULL) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const int max_index[] = {-1, NST_WEIGHTS_TRIM_INDEX};
    for (int k = 0; k < 2; k++) {
        nst_msg msg = {{0}};
        nst_weights *w = NULL;
        nst_status st = nst_weights_load_memory(data, size, "<fuzz>", max_index[k], &w, &msg);
        if (st == NST_OK) {
            check_table(w);
            nst_weights_free(w);
        } else {
            /* Failures leave nothing behind and always say why. */
            if (w || !msg.text[0] || !memchr(msg.text, 0, sizeof msg.text)) abort();
        }
    }
    return 0;
}
