/* weights_gen.c: the in-memory weights table and the deterministic
 * generator of test networks of a table's topology (net.h). File formats
 * live elsewhere. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nst_int.h"
#include "weights.h"

const nst_weight *nst_weights_find(const nst_weights *w, const char *name) {
    for (int i = 0; w && i < w->count; i++)
        if (!strcmp(w->t[i].name, name)) return &w->t[i];
    return NULL;
}

nst_weight *nst_weights_add(nst_weights *w, const char *name, int rank, const int64_t *shape) {
    if (rank < 1 || rank > 4 || strlen(name) >= sizeof w->t[0].name) return NULL;
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] <= 0 || (size_t)shape[i] > ((size_t)1 << 40) / count) return NULL;
        count *= (size_t)shape[i];
    }
    nst_weight *t = realloc(w->t, (size_t)(w->count + 1) * sizeof *t);
    if (!t) return NULL;
    w->t = t;
    nst_weight *n = &w->t[w->count];
    memset(n, 0, sizeof *n);
    n->data = calloc(count, sizeof(float));
    if (!n->data) return NULL;
    strcpy(n->name, name);
    n->rank = rank;
    for (int i = 0; i < rank; i++) n->shape[i] = shape[i];
    n->count = count;
    w->count++;
    return n;
}

const nst_net *nst_weights_net(const nst_weights *w) {
    const nst_net *n = NULL;
    if (w && w->net) return w->net;
    if (!w || nst_net_detect(w, &n, NULL) != NST_OK) n = nst_net_get(NST_NETWORK_VGG19);
    return n;
}

void nst_weights_free(nst_weights *w) {
    if (!w) return;
    for (int i = 0; i < w->count; i++) free(w->t[i].data);
    free(w->t);
    free(w);
}

/* splitmix64: the same stream on every platform. */
static uint64_t mix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static double uniform(uint64_t *s) { return (double)(mix(s) >> 11) / 9007199254740992.0; }

nst_status nst_weights_generate_net(nst_weights **out, const nst_net *net, uint64_t seed,
                                    double width_mult, int convs, nst_msg *msg) {
    if (!(width_mult > 0) || width_mult > 16)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "width multiplier %g is not in (0, 16]",
                        width_mult);
    if (convs < 1 || convs > nst_net_convs(net))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "%d convolutions is not in 1..%d (%s)", convs,
                        nst_net_convs(net), net->title);
    nst_weights *w = calloc(1, sizeof *w);
    if (!w) return nst_fail(msg, NST_ERR_NOMEM, "weights table");
    w->net = net;
    uint64_t s = seed;
    int in = 3;
    for (int k = 0; k < convs; k++) {
        int i = nst_net_conv_layer(net, k), r = net->layer[i].kernel;
        int outc = (int)lround(net->layer[i].width * width_mult);
        if (outc < 1) outc = 1;
        char name[64];
        int64_t ws[4] = {outc, in, r, r}, bs[1] = {outc};
        snprintf(name, sizeof name, "features.%d.weight", i);
        nst_weight *tw = nst_weights_add(w, name, 4, ws);
        if (!tw) goto oom;
        /* He: Var = 2 / fan_in keeps the ReLU activations' scale; uniform on
         * [-a, a] has variance a^2 / 3. */
        double a = sqrt(3.0 * 2.0 / (in * (double)(r * r)));
        for (size_t j = 0; j < tw->count; j++) tw->data[j] = (float)((2 * uniform(&s) - 1) * a);
        snprintf(name, sizeof name, "features.%d.bias", i);
        nst_weight *tb = nst_weights_add(w, name, 1, bs);
        if (!tb) goto oom;
        for (size_t j = 0; j < tb->count; j++) tb->data[j] = (float)((2 * uniform(&s) - 1) * 0.05);
        in = outc;
    }
    *out = w;
    return NST_OK;
oom:
    nst_weights_free(w);
    return nst_fail(msg, NST_ERR_NOMEM, "generating weights");
}

nst_status nst_weights_generate(nst_weights **out, uint64_t seed, double width_mult, int convs,
                                nst_msg *msg) {
    return nst_weights_generate_net(out, nst_net_get(NST_NETWORK_VGG19), seed, width_mult, convs,
                                    msg);
}
