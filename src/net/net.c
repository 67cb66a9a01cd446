/* net.c: the tables of VGG-19 and VGG-16 (torchvision's `features`
 * layouts), what derives from them, and matching a weight file against one
 * (see net.h). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "net.h"
#include "nst_int.h"
#include "weights.h"

/* ---- the tables ------------------------------------------------------------ */

#define CONV(b, i, w) {"conv" #b "_" #i, NST_LAYER_CONV, 3, 1, 1, w, 0}
#define RELU(b, i) {"relu" #b "_" #i, NST_LAYER_RELU, 1, 1, 0, 0, 0}
#define POOL(b) {"pool" #b, NST_LAYER_POOL, 2, 2, 0, 0, 0}
#define CR(b, i, w) CONV(b, i, w), RELU(b, i)

static const nst_net vgg19 = {
    NST_NETWORK_VGG19, "vgg19", "VGG-19", "vgg19-dcbb9e9d.pth", "vgg19-conv.safetensors", 37,
    {CR(1, 1, 64), CR(1, 2, 64), POOL(1),                                      /*  0..4 */
     CR(2, 1, 128), CR(2, 2, 128), POOL(2),                                    /*  5..9 */
     CR(3, 1, 256), CR(3, 2, 256), CR(3, 3, 256), CR(3, 4, 256), POOL(3),      /* 10..18 */
     CR(4, 1, 512), CR(4, 2, 512), CR(4, 3, 512), CR(4, 4, 512), POOL(4),      /* 19..27 */
     CR(5, 1, 512), CR(5, 2, 512), CR(5, 3, 512), CR(5, 4, 512), POOL(5)},     /* 28..36 */
    NULL, 0};

static const nst_net vgg16 = {
    NST_NETWORK_VGG16, "vgg16", "VGG-16", "vgg16-397923af.pth", "vgg16-conv.safetensors", 31,
    {CR(1, 1, 64), CR(1, 2, 64), POOL(1),                                      /*  0..4 */
     CR(2, 1, 128), CR(2, 2, 128), POOL(2),                                    /*  5..9 */
     CR(3, 1, 256), CR(3, 2, 256), CR(3, 3, 256), POOL(3),                     /* 10..16 */
     CR(4, 1, 512), CR(4, 2, 512), CR(4, 3, 512), POOL(4),                     /* 17..23 */
     CR(5, 1, 512), CR(5, 2, 512), CR(5, 3, 512), POOL(5)},                    /* 24..30 */
    NULL, 0};

static const nst_net *const nets[] = {&vgg19, &vgg16, NULL};

/* The WCT models: the normalised VGG-19 encoder (rows = the published
 * nn.Sequential indices: a reflection pad before each 3x3 convolution,
 * ceil-mode pools) and the five decoders, each the mirror of its encoder. */
#define WPAD(p, b, i) {p #b "_" #i, NST_LAYER_PAD, 1, 1, 1, 0, 0}
#define WCONV(b, i, w) {"conv" #b "_" #i, NST_LAYER_CONV, 3, 1, 0, w, 0}
#define WPOOL(b) {"pool" #b, NST_LAYER_POOL, 2, 2, 0, 0, 1}
#define EPCR(b, i, w) WPAD("pad", b, i), WCONV(b, i, w), RELU(b, i)
/* decoder: the convolution that undoes encoder convB_I, then its ReLU */
#define DCONV(b, i, w) {"dec" #b "_" #i, NST_LAYER_CONV, 3, 1, 0, w, 0}
#define DRELU(b, i) {"drelu" #b "_" #i, NST_LAYER_RELU, 1, 1, 0, 0, 0}
#define DPCR(b, i, w) WPAD("dpad", b, i), DCONV(b, i, w), DRELU(b, i)
#define DPC(b, i, w) WPAD("dpad", b, i), DCONV(b, i, w)
#define UP(b) {"up" #b, NST_LAYER_UPSAMPLE, 1, 1, 0, 0, 0}

static const nst_net wct_encoder = {
    NST_NETWORK_AUTO, "wct-encoder", "the WCT encoder (normalised VGG-19)", NULL, NULL, 44,
    {{"conv0", NST_LAYER_CONV, 1, 1, 0, 3, 0},                                  /*  0 */
     EPCR(1, 1, 64), EPCR(1, 2, 64), WPOOL(1),                                  /*  1..7 */
     EPCR(2, 1, 128), EPCR(2, 2, 128), WPOOL(2),                                /*  8..14 */
     EPCR(3, 1, 256), EPCR(3, 2, 256), EPCR(3, 3, 256), EPCR(3, 4, 256), WPOOL(3), /* 15..27 */
     EPCR(4, 1, 512), EPCR(4, 2, 512), EPCR(4, 3, 512), EPCR(4, 4, 512), WPOOL(4), /* 28..40 */
     EPCR(5, 1, 512)},                                                          /* 41..43 */
    "", 3};

/* rows of the encoder up to reluL_1 */
static const int wct_depth[6] = {0, 4, 11, 18, 31, 44};

static const nst_net wct_decoder[5] = {
    {NST_NETWORK_AUTO, "wct-decoder1", "the WCT decoder of level 1", NULL, NULL, 2,
     {DPC(1, 1, 3)}, "", 64},
    {NST_NETWORK_AUTO, "wct-decoder2", "the WCT decoder of level 2", NULL, NULL, 9,
     {DPCR(2, 1, 64), UP(1), DPCR(1, 2, 64), DPC(1, 1, 3)}, "", 128},
    {NST_NETWORK_AUTO, "wct-decoder3", "the WCT decoder of level 3", NULL, NULL, 16,
     {DPCR(3, 1, 128), UP(2), DPCR(2, 2, 128), DPCR(2, 1, 64), UP(1), DPCR(1, 2, 64),
      DPC(1, 1, 3)}, "", 256},
    {NST_NETWORK_AUTO, "wct-decoder4", "the WCT decoder of level 4", NULL, NULL, 29,
     {DPCR(4, 1, 256), UP(3), DPCR(3, 4, 256), DPCR(3, 3, 256), DPCR(3, 2, 256),
      DPCR(3, 1, 128), UP(2), DPCR(2, 2, 128), DPCR(2, 1, 64), UP(1), DPCR(1, 2, 64),
      DPC(1, 1, 3)}, "", 512},
    {NST_NETWORK_AUTO, "wct-decoder5", "the WCT decoder of level 5", NULL, NULL, 42,
     {DPCR(5, 1, 512), UP(4), DPCR(4, 4, 512), DPCR(4, 3, 512), DPCR(4, 2, 512),
      DPCR(4, 1, 256), UP(3), DPCR(3, 4, 256), DPCR(3, 3, 256), DPCR(3, 2, 256),
      DPCR(3, 1, 128), UP(2), DPCR(2, 2, 128), DPCR(2, 1, 64), UP(1), DPCR(1, 2, 64),
      DPC(1, 1, 3)}, "", 512},
};

const nst_net *nst_net_wct_encoder(void) { return &wct_encoder; }

int nst_net_wct_depth(int level) { return level >= 1 && level <= 5 ? wct_depth[level] : 0; }

const nst_net *nst_net_wct_decoder(int level) {
    return level >= 1 && level <= 5 ? &wct_decoder[level - 1] : NULL;
}

const nst_net *nst_net_at(int i) {
    return i >= 0 && i < (int)(sizeof nets / sizeof nets[0]) ? nets[i] : NULL;
}

const nst_net *nst_net_get(nst_network id) {
    for (int i = 0; nets[i]; i++)
        if (nets[i]->id == id) return nets[i];
    return NULL;
}

const nst_net *nst_net_find(const char *name) {
    for (int i = 0; name && nets[i]; i++)
        if (!strcasecmp(name, nets[i]->name) || !strcasecmp(name, nets[i]->title))
            return nets[i];
    return NULL;
}

/* ---- derived ----------------------------------------------------------------- */

int nst_net_index(const nst_net *n, const char *name) {
    for (int i = 0; name && i < n->nlayers; i++)
        if (!strcmp(n->layer[i].name, name)) return i;
    return -1;
}

const char *nst_net_layer_name(const nst_net *n, int i) {
    return i >= 0 && i < n->nlayers ? n->layer[i].name : NULL;
}

int nst_net_stride(const nst_net *n, int i) {
    int s = 1;
    for (int k = 0; k <= i && k < n->nlayers; k++) s *= n->layer[k].stride;
    return s;
}

int nst_net_convs(const nst_net *n) {
    int c = 0;
    for (int i = 0; i < n->nlayers; i++) c += n->layer[i].kind == NST_LAYER_CONV;
    return c;
}

int nst_net_conv_layer(const nst_net *n, int k) {
    for (int i = 0; i < n->nlayers; i++)
        if (n->layer[i].kind == NST_LAYER_CONV && k-- == 0) return i;
    return -1;
}

void nst_net_list(const nst_net *n, char *buf, size_t len) {
    size_t used = 0;
    if (!len) return;
    buf[0] = 0;
    for (int i = 0; i < n->nlayers && used + 1 < len; i++) {
        int w = snprintf(buf + used, len - used, "%s%s", i ? ", " : "", n->layer[i].name);
        if (w < 0) break;
        used += (size_t)w;
    }
}

void nst_net_receptive(const nst_net *n, int depth, int *halo, int *align) {
    /* The image pixels [lo, hi] that position 0 of layer depth-1 depends on:
     * a layer of kernel k, stride s, padding p maps [lo, hi] of its output to
     * [s*lo - p, s*hi + k-1 - p] of its input. */
    long lo = 0, hi = 0, s = 1;
    if (depth > n->nlayers) depth = n->nlayers;
    for (int i = depth - 1; i >= 0; i--) {
        const nst_net_layer *L = &n->layer[i];
        lo = L->stride * lo - L->pad;
        hi = L->stride * hi + L->kernel - 1 - L->pad;
        s *= L->stride;
    }
    /* beyond its own cell [0, s-1] of pixels: a on the left, b on the right */
    long a = -lo, b = hi - (s - 1);
    long h = a > b ? a : b;
    if (h < 0) h = 0;
    *align = (int)s;
    *halo = (int)((h + s - 1) / s * s);
}

/* ---- matching weights ------------------------------------------------------- */

/* "FILE: " for messages, or "" when the weights came from no file. */
static const char *src(const nst_weights *w, char *buf, size_t len) {
    if (w && w->source[0]) snprintf(buf, len, "%s: ", w->source);
    else buf[0] = 0;
    return buf;
}

/* N of "features.N.<part>" (part written into part, at most 15 chars); -1 when
 * the name is not of that form. */
static int features_index(const char *name, char *part) {
    if (strncmp(name, "features.", 9) || !isdigit((unsigned char)name[9])) return -1;
    char *end = NULL;
    long n = strtol(name + 9, &end, 10);
    if (*end != '.' || n > 1000000) return -1;
    snprintf(part, 16, "%s", end + 1);
    return (int)n;
}

static const char *prefix(const nst_net *n) { return n->prefix ? n->prefix : "features."; }

static const nst_weight *find_in(const nst_net *n, const nst_weights *w, int index,
                                 const char *part) {
    char name[64];
    snprintf(name, sizeof name, "%s%d.%s", prefix(n), index, part);
    return nst_weights_find(w, name);
}

static const nst_weight *find(const nst_weights *w, int index, const char *part) {
    char name[64];
    snprintf(name, sizeof name, "features.%d.%s", index, part);
    return nst_weights_find(w, name);
}

nst_status nst_net_match(const nst_net *n, const nst_weights *w, int depth, nst_net_shape *shape,
                         nst_msg *msg) {
    char f[300];
    int c = n->in_channels ? n->in_channels : 3;
    if (depth > n->nlayers) depth = n->nlayers;
    if (shape) memset(shape, 0, sizeof *shape);
    for (int i = 0; i < depth; i++) {
        const nst_net_layer *L = &n->layer[i];
        int cin = c;
        if (L->kind == NST_LAYER_CONV) {
            const nst_weight *tw = find_in(n, w, i, "weight"), *tb = find_in(n, w, i, "bias");
            if (!tw || !tb)
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%sthe weights have no tensor %s%d.%s (%s), which the "
                                "requested layers of %s need",
                                src(w, f, sizeof f), prefix(n), i, tw ? "bias" : "weight",
                                L->name, n->title);
            if (tw->rank != 4 || tb->rank != 1)
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%sweight %s (%s) has rank %d, expected %d (%s)",
                                src(w, f, sizeof f), tw->rank != 4 ? tw->name : tb->name, L->name,
                                tw->rank != 4 ? tw->rank : tb->rank, tw->rank != 4 ? 4 : 1,
                                tw->rank != 4 ? "[out, in, k, k]" : "[out]");
            if (tw->shape[2] != L->kernel || tw->shape[3] != L->kernel)
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%sweight %s (%s) has a %lldx%lld kernel; %s's %s is %dx%d",
                                src(w, f, sizeof f), tw->name, L->name, (long long)tw->shape[2],
                                (long long)tw->shape[3], n->title, L->name, L->kernel, L->kernel);
            if (tw->shape[1] != c)
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%sweight %s (%s) takes %lld input channels but %s gives %d",
                                src(w, f, sizeof f), tw->name, L->name, (long long)tw->shape[1],
                                i ? n->layer[i - 1].name
                                  : n->in_channels ? "the encoder" : "the RGB image", c);
            if (tw->shape[0] < 1 || tw->shape[0] > 65536 || tb->shape[0] != tw->shape[0])
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%sbias %s (%s) has %lld values but %s has %lld output channels",
                                src(w, f, sizeof f), tb->name, L->name, (long long)tb->shape[0],
                                tw->name, (long long)tw->shape[0]);
            c = (int)tw->shape[0];
        }
        if (shape) {
            shape->cin[i] = cin;
            shape->cout[i] = c;
            shape->depth = i + 1;
        }
    }
    return NST_OK;
}

nst_status nst_net_check(const nst_net *n, const nst_weights *w, nst_msg *msg) {
    char f[300], part[16];
    int last = -1, any = 0;
    for (int t = 0; t < w->count; t++) {
        const char *name = w->t[t].name;
        if (strncmp(name, "features.", 9)) continue;
        int i = features_index(name, part);
        any = 1;
        if (i < 0 || i >= n->nlayers)
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%stensor %s is not a layer of %s (features.0 .. features.%d)%s",
                            src(w, f, sizeof f), name, n->title, n->nlayers - 1,
                            i >= n->nlayers && n->id != NST_NETWORK_VGG19
                                ? "; is this VGG-19? (--network vgg19)" : "");
        if (n->layer[i].kind != NST_LAYER_CONV) {
            /* the index of another network's convolution: say which */
            const nst_net *other = NULL;
            for (int k = 0; nets[k] && !other; k++)
                if (nets[k] != n && i < nets[k]->nlayers &&
                    nets[k]->layer[i].kind == NST_LAYER_CONV)
                    other = nets[k];
            if (other)
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%stensor %s: features.%d of %s is %s, which has no weights; the "
                                "file looks like %s: give --network %s, or leave --network out "
                                "to detect it",
                                src(w, f, sizeof f), name, i, n->title, n->layer[i].name,
                                other->title, other->name);
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%stensor %s: features.%d of %s is %s, which has no weights (a "
                            "batch-normalised network is not supported)",
                            src(w, f, sizeof f), name, i, n->title, n->layer[i].name);
        }
        if (strcmp(part, "weight") && strcmp(part, "bias"))
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%stensor %s: %s's %s has only a weight and a bias (a "
                            "batch-normalised network is not supported)",
                            src(w, f, sizeof f), name, n->title, n->layer[i].name);
        if (i > last) last = i;
    }
    if (!any)
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%sno tensor is named features.N.weight: not a VGG in torchvision's "
                        "layout (its first tensor is %s)",
                        src(w, f, sizeof f), w->count ? w->t[0].name : "none: the file is empty");
    /* convolutions from conv1_1 on, none skipped */
    for (int i = 0; i <= last; i++)
        if (n->layer[i].kind == NST_LAYER_CONV && !find(w, i, "weight") && !find(w, i, "bias"))
            return nst_fail(msg, NST_ERR_FORMAT,
                            "%sthe weights skip features.%d (%s of %s) but hold later layers "
                            "(up to features.%d)",
                            src(w, f, sizeof f), i, n->layer[i].name, n->title, last);
    return nst_net_match(n, w, last + 1, NULL, msg);
}

nst_status nst_net_detect(const nst_weights *w, const nst_net **out, nst_msg *msg) {
    /* a convolution index found in one network's table only votes for it */
    const char *seen[8] = {0};
    const nst_net *pick = NULL;
    char f[300], part[16];
    for (int t = 0; t < w->count; t++) {
        int i = features_index(w->t[t].name, part);
        if (i < 0) continue;
        for (int k = 0; nets[k]; k++) {
            int mine = i < nets[k]->nlayers && nets[k]->layer[i].kind == NST_LAYER_CONV;
            int others = 0;
            for (int j = 0; nets[j]; j++)
                others += j != k && i < nets[j]->nlayers &&
                          nets[j]->layer[i].kind == NST_LAYER_CONV;
            if (!mine || others || seen[k]) continue;
            seen[k] = w->t[t].name;
            if (pick && pick != nets[k]) {
                int p = 0;
                while (nets[p] != pick) p++;
                return nst_fail(msg, NST_ERR_FORMAT,
                                "%sthe weights mix %s (%s) and %s (%s) convolutions",
                                src(w, f, sizeof f), pick->title, seen[p], nets[k]->title,
                                seen[k]);
            }
            pick = nets[k];
        }
    }
    *out = pick ? pick : nets[0];
    return NST_OK;
}

/* ---- input conventions -------------------------------------------------------- */

static const nst_input_norm inputs[] = {
    {"torchvision", 0, {0.485, 0.456, 0.406}, {0.229, 0.224, 0.225}},
    /* Caffe: 255 x - mean = (x - mean / 255) / (1 / 255), channels B, G, R */
    {"caffe", 1, {103.939 / 255, 116.779 / 255, 123.68 / 255}, {1.0 / 255, 1.0 / 255, 1.0 / 255}},
};

const nst_input_norm *nst_input_get(int input) {
    return input >= 0 && input < (int)(sizeof inputs / sizeof inputs[0]) ? &inputs[input] : NULL;
}

int nst_input_find(const char *name) {
    for (int i = 0; name && i < (int)(sizeof inputs / sizeof inputs[0]); i++)
        if (!strcmp(name, inputs[i].name)) return i;
    return -1;
}
