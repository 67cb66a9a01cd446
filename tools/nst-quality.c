/* nst-quality: how close style transfers are to their painting and photo, on
 * the features of a VGG weight file: for each output image, the sliced
 * Wasserstein distance between its features and the painting's at each style
 * layer, and the relative error of its features against the photo's at the
 * content layer. Prints a Markdown table (docs/STYLE_LOSSES.md).
 *
 *   nst-quality -w WEIGHTS -c PHOTO -s PAINTING [--size N]
 *       [--style-layers relu1_1,relu2_1,relu3_1] [--content-layer relu3_2]
 *       [--projections 64] [--device D] LABEL=IMAGE...
 *
 * Every image is resized so that its longest side is N (default: each
 * output's own), the photo to the output's size and the painting to the same
 * longest side, as nst does with --style-scale 1.
 *
 * Sliced Wasserstein distance at a layer with C channels: the features of
 * the output (C x n positions) and of the painting (C x m) are projected on
 * P random unit directions of R^C (a fixed stream: the same for every
 * image); per direction, the two sorted projections are compared at Q =
 * min(n, m) quantiles, (q + 1/2)/Q, and SW2 = sqrt(mean over directions and
 * quantiles of the squared difference). It is reported relative to the
 * spread of the painting's projections (the root mean square of their
 * deviation from their mean), so 1 is as far as the painting's features
 * spread and the layers compare. Content error: ||F - P|| / ||P|| at the
 * content layer, F the output's features, P the photo's. Features are
 * computed on the device, the statistics in double on the host. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "objective.h"
#include "vgg.h"
#include "weights.h"

static int usage(void) {
    fprintf(stderr, "usage: nst-quality -w WEIGHTS -c PHOTO -s PAINTING [--size N] "
                    "[--style-layers L] [--content-layer L] [--projections P] [--device D] "
                    "LABEL=IMAGE...\n");
    return 2;
}

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A standard normal number (Box-Muller). */
static double normal(uint64_t *s) {
    double u = ((splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
    double v = ((splitmix(s) >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Relative sliced W2 between x (c x n) and y (c x m). */
static double sliced_w2(const float *x, int n, const float *y, int m, int c, int dirs) {
    double *d = malloc((size_t)c * sizeof *d), *px = malloc((size_t)n * sizeof *px);
    double *py = malloc((size_t)m * sizeof *py), sum = 0, spread = 0;
    uint64_t seed = 20261126;
    int q = n < m ? n : m;
    for (int k = 0; k < dirs; k++) {
        double norm = 0;
        for (int i = 0; i < c; i++) {
            d[i] = normal(&seed);
            norm += d[i] * d[i];
        }
        for (int i = 0; i < c; i++) d[i] /= sqrt(norm);
        for (int p = 0; p < n; p++) {
            px[p] = 0;
            for (int i = 0; i < c; i++) px[p] += d[i] * x[(size_t)i * n + p];
        }
        double mean = 0;
        for (int p = 0; p < m; p++) {
            py[p] = 0;
            for (int i = 0; i < c; i++) py[p] += d[i] * y[(size_t)i * m + p];
            mean += py[p] / m;
        }
        for (int p = 0; p < m; p++) spread += (py[p] - mean) * (py[p] - mean) / m / dirs;
        qsort(px, (size_t)n, sizeof *px, cmp_d);
        qsort(py, (size_t)m, sizeof *py, cmp_d);
        for (int j = 0; j < q; j++) {
            double e = px[(size_t)((j + 0.5) * n / q)] - py[(size_t)((j + 0.5) * m / q)];
            sum += e * e / q / dirs;
        }
    }
    free(d);
    free(px);
    free(py);
    return spread > 0 ? sqrt(sum / spread) : sqrt(sum);
}

typedef struct feats {
    int n;
    int c[NST_MAX_LAYERS + 1], m[NST_MAX_LAYERS + 1];
    float *f[NST_MAX_LAYERS + 1];
} feats;

/* img resized to w x h through the network: the taps' features. */
static nst_status features(nst_runtime *rt, nst_vgg *net, const nst_image *img, int w, int h,
                           const char *const *taps, int ntaps, feats *out) {
    nst_image *sized = NULL;
    nst_tensor *t = NULL;
    nst_status st = nst_image_resize(img, w, h, &sized, RTM(rt));
    if (st == NST_OK) st = nst_tensor_create(rt, 1, 3, h, w, &t);
    if (st == NST_OK) st = nst_tensor_upload(rt, t, sized->data);
    if (st == NST_OK) st = nst_vgg_resize(rt, net, h, w);
    if (st == NST_OK) st = nst_vgg_forward(rt, net, t);
    out->n = ntaps;
    for (int i = 0; i < ntaps && st == NST_OK; i++) {
        const nst_tensor *f = nst_vgg_tap(net, taps[i]);
        out->c[i] = f->c;
        out->m[i] = f->h * f->w;
        if (!(out->f[i] = malloc(f->count * sizeof(float))))
            st = nst_fail(RTM(rt), NST_ERR_NOMEM, "features");
        else
            st = nst_tensor_download(rt, f, out->f[i]);
    }
    nst_tensor_free(rt, t);
    nst_image_free(sized);
    return st;
}

static void feats_free(feats *f) {
    for (int i = 0; i < f->n; i++) free(f->f[i]);
    memset(f, 0, sizeof *f);
}

int main(int argc, char **argv) {
    const char *weights = NULL, *photo = NULL, *painting = NULL, *device = NULL;
    const char *style_layers = "relu1_1,relu2_1,relu3_1", *content_layer = "relu3_2";
    int size = 0, dirs = 64, nout = 0;
    char *outs[64];
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int has = v != NULL;
        if (!strcmp(a, "-w") && has) weights = argv[++i];
        else if (!strcmp(a, "-c") && has) photo = argv[++i];
        else if (!strcmp(a, "-s") && has) painting = argv[++i];
        else if (!strcmp(a, "--size") && has) size = atoi(argv[++i]);
        else if (!strcmp(a, "--style-layers") && has) style_layers = argv[++i];
        else if (!strcmp(a, "--content-layer") && has) content_layer = argv[++i];
        else if (!strcmp(a, "--projections") && has) dirs = atoi(argv[++i]);
        else if (!strcmp(a, "--device") && has) device = argv[++i];
        else if (strchr(a, '=') && a[0] != '-' && nout < 64) outs[nout++] = argv[i];
        else return usage();
    }
    if (!weights || !photo || !painting || !nout || dirs < 1 || size < 0) return usage();

    nst_msg msg = {{0}};
    nst_layer_list sl;
    if (nst_layers_parse(style_layers, "style layers", &sl, &msg) != NST_OK) {
        fprintf(stderr, "nst-quality: %s\n", msg.text);
        return 2;
    }
    const char *taps[NST_MAX_LAYERS + 1];
    for (int i = 0; i < sl.n; i++) taps[i] = sl.name[i];
    taps[sl.n] = content_layer;
    int ntaps = sl.n + 1, rc = 1;

    nst_settings set;
    nst_runtime *rt = NULL;
    nst_model *model = NULL;
    nst_vgg *net = NULL;
    nst_image *ph = NULL, *pa = NULL;
    if (nst_settings_from_env(&set, &msg) != NST_OK) {
        fprintf(stderr, "nst-quality: %s\n", msg.text);
        return 2;
    }
    nst_runtime_options ro = {device, 0, 0, &set};
    if (nst_runtime_open(&rt, &ro, &msg) != NST_OK) {
        fprintf(stderr, "nst-quality: %s\n", msg.text);
        return 1;
    }
    if (nst_model_load(rt, weights, &model) != NST_OK ||
        nst_vgg_create(rt, model->weights, taps, ntaps, 0, &net) != NST_OK ||
        nst_image_read(photo, 0, &ph, RTM(rt)) != NST_OK ||
        nst_image_read(painting, 0, &pa, RTM(rt)) != NST_OK)
        goto fail;
    printf("| output |");
    for (int i = 0; i < sl.n; i++) printf(" SW %s |", sl.name[i]);
    printf(" content error %s |\n|---|", content_layer);
    for (int i = 0; i <= sl.n; i++) printf("---:|");
    printf("\n");
    for (int k = 0; k < nout; k++) {
        char *eq = strchr(outs[k], '=');
        *eq = 0;
        nst_image *img = NULL;
        feats fo = {0}, fc = {0}, fs = {0};
        if (nst_image_read(eq + 1, 0, &img, RTM(rt)) != NST_OK) goto fail;
        int w = img->w, h = img->h, sw, sh;
        if (size) nst_image_fit_size(img->w, img->h, size, &w, &h);
        nst_image_fit_size(pa->w, pa->h, w > h ? w : h, &sw, &sh);
        nst_status st = features(rt, net, img, w, h, taps, ntaps, &fo);
        if (st == NST_OK) st = features(rt, net, ph, w, h, taps, ntaps, &fc);
        if (st == NST_OK) st = features(rt, net, pa, sw, sh, taps, ntaps, &fs);
        nst_image_free(img);
        if (st != NST_OK) {
            feats_free(&fo);
            feats_free(&fc);
            feats_free(&fs);
            goto fail;
        }
        printf("| %s |", outs[k]);
        for (int i = 0; i < sl.n; i++)
            printf(" %.3f |", sliced_w2(fo.f[i], fo.m[i], fs.f[i], fs.m[i], fo.c[i], dirs));
        double e = 0, p = 0;
        size_t n = (size_t)fo.c[sl.n] * fo.m[sl.n];
        for (size_t j = 0; j < n; j++) {
            double d = (double)fo.f[sl.n][j] - fc.f[sl.n][j];
            e += d * d;
            p += (double)fc.f[sl.n][j] * fc.f[sl.n][j];
        }
        printf(" %.3f |\n", p > 0 ? sqrt(e / p) : 0.0);
        fflush(stdout);
        feats_free(&fo);
        feats_free(&fc);
        feats_free(&fs);
    }
    rc = 0;
fail:
    if (rc) fprintf(stderr, "nst-quality: %s\n", nst_last_error(rt));
    nst_image_free(ph);
    nst_image_free(pa);
    nst_vgg_free(rt, net);
    nst_model_free(model);
    nst_runtime_close(rt);
    return rc;
}
