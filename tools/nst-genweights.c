/* nst-genweights: writes generated test networks of VGG-19's or VGG-16's
 * topology, converts weight files (safetensors or PyTorch .pth) to nst's
 * trimmed safetensors, and lists a weight file's tensors.
 *
 *   nst-genweights --out FILE [--network N] [--seed N] [--width-mult F] [--convs N]
 *                  [--dtype D]
 *   nst-genweights --convert IN --out FILE [--network N] [--input C] [--dtype D]
 *                  [--trim | --max-index N]
 *   nst-genweights --info FILE
 * N is vgg19 (default for generation) or vgg16; conversion detects it from
 * the file unless given, and checks the file against it. --trim keeps
 * conv1_1 .. conv5_1 of that network. C (caffe or torchvision) declares the
 * input convention the weights expect, written into the file's metadata.
 * D is F32 (default for generation), F16 (default for conversion) or BF16.
 * Exit status: 0 success, 1 failure, 2 usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "weights.h"

static int usage(const char *why) {
    FILE *f = why ? stderr : stdout;
    if (why) fprintf(stderr, "nst-genweights: %s\n", why);
    fprintf(f, "usage: nst-genweights --out FILE [--network vgg19|vgg16] [--seed N] [--width-mult F]\n"
               "                      [--convs N] [--dtype F32|F16|BF16]\n"
               "       nst-genweights --convert IN --out FILE [--network vgg19|vgg16]\n"
               "                      [--input caffe|torchvision] [--dtype D]\n"
               "                      [--trim | --max-index N]\n"
               "       nst-genweights --info FILE\n");
    if (!why)
        fprintf(f, "\nWrites a generated network of VGG-19's or VGG-16's topology (random weights;\n"
                   "--width-mult scales the widths, --convs keeps the first N convolutions),\n"
                   "converts a weight file (safetensors or torchvision .pth) to nst's safetensors\n"
                   "(--trim keeps the layers up to conv5_1; --input records the file's input\n"
                   "convention), or lists a file's tensors (--info). D is F32 (default when\n"
                   "generating), F16 (default when converting) or BF16.\n");
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
    int convs = -1, max_index = -1, trim = 0, input = -1;
    const nst_net *net = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--trim")) {
            trim = 1;
            max_index = NST_WEIGHTS_TRIM_INDEX;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) return usage(NULL), 0;
        static const char *const valued[] = {"--out", "--convert", "--info", "--dtype", "--seed",
                                             "--width-mult", "--convs", "--max-index", "--network",
                                             "--input"};
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
        else if (!strcmp(a, "--network")) {
            if (!(net = nst_net_find(v))) return usage("--network: choose vgg19 or vgg16");
        } else if (!strcmp(a, "--input")) {
            if ((input = nst_input_find(v)) < 0)
                return usage("--input: choose caffe or torchvision");
        }
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
        const nst_net *n = NULL;
        nst_msg why = {{0}};
        if (nst_net_detect(w, &n, &why) != NST_OK || nst_net_check(n, w, &why) != NST_OK)
            printf("network: none nst runs (%s)\n", why.text);
        else {
            int convs_in = 0;
            for (int k = 0; k < nst_net_convs(n); k++) {
                char name[64];
                snprintf(name, sizeof name, "features.%d.weight", nst_net_conv_layer(n, k));
                convs_in += nst_weights_find(w, name) != NULL;
            }
            printf("network: %s, %d of its %d convolutions\n", n->name, convs_in,
                   nst_net_convs(n));
        }
        printf("input: %s\n", nst_input_get(w->input) ? nst_input_get(w->input)->name : "?");
        nst_weights_free(w);
        return 0;
    }
    if (!out) return usage("--out is required");
    if (in) {
        st = nst_weights_load_trimmed(in, max_index, &w, &msg);
        if (st == NST_OK && !net) st = nst_net_detect(w, &net, &msg);
        if (st == NST_OK && trim) nst_weights_trim(w, nst_net_index(net, "conv5_1"));
        if (st == NST_OK) st = nst_net_check(net, w, &msg);
        if (!dtype) dtype = "F16";
    } else {
        if (!net) net = nst_net_get(NST_NETWORK_VGG19);
        st = nst_weights_generate_net(&w, net, (uint64_t)seed, width,
                                      convs < 0 ? nst_net_convs(net) : convs, &msg);
        if (!dtype) dtype = "F32";
    }
    if (st) {
        nst_weights_free(w);
        return fail(st, &msg);
    }
    if (input >= 0) w->input = input;
    st = nst_weights_save(w, out, dtype, &msg);
    int n = w->count;
    nst_weights_free(w);
    if (st) return fail(st, &msg);
    fprintf(stderr, "nst-genweights: wrote %s (%s, %d tensors, %s)\n", out, net->name, n, dtype);
    return 0;
}
