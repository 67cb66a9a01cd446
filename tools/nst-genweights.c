/* nst-genweights: writes generated VGG-19-topology test networks, converts
 * weight files (safetensors or PyTorch .pth) to nst's trimmed safetensors,
 * and lists a weight file's tensors.
 *
 *   nst-genweights --out FILE [--seed N] [--width-mult F] [--convs N] [--dtype D]
 *   nst-genweights --convert IN --out FILE [--dtype D] [--trim | --max-index N]
 *   nst-genweights --info FILE
 * D is F32 (default for generation), F16 (default for conversion) or BF16.
 * Exit status: 0 success, 1 failure, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights.h"

static int usage(const char *why) {
    FILE *f = why ? stderr : stdout;
    if (why) fprintf(stderr, "nst-genweights: %s\n", why);
    fprintf(f, "usage: nst-genweights --out FILE [--seed N] [--width-mult F] [--convs N] "
               "[--dtype F32|F16|BF16]\n"
               "       nst-genweights --convert IN --out FILE [--dtype D] [--trim | --max-index N]\n"
               "       nst-genweights --info FILE\n");
    if (!why)
        fprintf(f, "\nWrites a generated network of VGG-19's topology (random weights; --width-mult\n"
                   "scales the widths, --convs keeps the first N convolutions), converts a weight\n"
                   "file (safetensors or torchvision .pth) to nst's safetensors (--trim keeps the\n"
                   "layers up to conv5_1), or lists a file's tensors (--info). D is F32 (default\n"
                   "when generating), F16 (default when converting) or BF16.\n");
    return 2;
}

static int fail(nst_status st, const nst_msg *msg) {
    fprintf(stderr, "nst-genweights: %s: %s\n", nst_strerror(st), msg->text);
    return 1;
}

int main(int argc, char **argv) {
    const char *out = NULL, *in = NULL, *info = NULL, *dtype = NULL;
    unsigned long long seed = 1;
    double width = 1.0;
    int convs = NST_VGG_CONVS, max_index = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--trim")) {
            max_index = NST_WEIGHTS_TRIM_INDEX;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(NULL), 0;
        static const char *const valued[] = {"--out", "--convert", "--info", "--dtype", "--seed",
                                             "--width-mult", "--convs", "--max-index"};
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++) known |= !strcmp(a, valued[k]);
        char why[160];
        if (!known) {
            snprintf(why, sizeof why, "unknown option '%.100s'", a);
            return usage(why);
        }
        if (!v) {
            snprintf(why, sizeof why, "option %s needs a value", a);
            return usage(why);
        }
        i++;
        if (!strcmp(a, "--out")) out = v;
        else if (!strcmp(a, "--convert")) in = v;
        else if (!strcmp(a, "--info")) info = v;
        else if (!strcmp(a, "--dtype")) dtype = v;
        else if (!strcmp(a, "--seed")) seed = strtoull(v, &end, 0);
        else if (!strcmp(a, "--width-mult")) width = strtod(v, &end);
        else if (!strcmp(a, "--convs")) convs = (int)strtol(v, &end, 10);
        else if (!strcmp(a, "--max-index")) max_index = (int)strtol(v, &end, 10);
        if (end && *end) return usage("a numeric option has a malformed value");
    }
    nst_msg msg = {{0}};
    nst_weights *w = NULL;
    nst_status st;
    if (info) {
        if ((st = nst_weights_load(info, &w, &msg))) return fail(st, &msg);
        size_t total = 0;
        for (int i = 0; i < w->count; i++) {
            const nst_weight *t = &w->t[i];
            printf("%-28s [", t->name);
            for (int d = 0; d < t->rank; d++) printf("%s%lld", d ? "," : "", (long long)t->shape[d]);
            printf("]\n");
            total += t->count;
        }
        printf("%d tensors, %zu values\n", w->count, total);
        nst_weights_free(w);
        return 0;
    }
    if (!out) return usage("--out is required");
    if (in) {
        st = nst_weights_load_trimmed(in, max_index, &w, &msg);
        if (!dtype) dtype = "F16";
    } else {
        st = nst_weights_generate(&w, (uint64_t)seed, width, convs, &msg);
        if (!dtype) dtype = "F32";
    }
    if (st) return fail(st, &msg);
    st = nst_weights_save(w, out, dtype, &msg);
    int n = w->count;
    nst_weights_free(w);
    if (st) return fail(st, &msg);
    fprintf(stderr, "nst-genweights: wrote %s (%d tensors, %s)\n", out, n, dtype);
    return 0;
}
