/* term_w2.c: the Wasserstein-2 style term (objective_int.h): at each style
 * layer the features are fitted by a Gaussian, mean mu and covariance Sigma
 * over the positions, and the term is the squared 2-Wasserstein distance
 * between the image's fit and the painting's, normalised by the painting's
 * (so it means the same at every size and layer):
 *
 *   L_l = (||mu - mu_s||^2 + tr Sigma + tr S^2 - 2 tr A^(1/2)) / N_l,
 *   A   = S Sigma S + e_a I,   S = (Sigma_s + e_s I)^(1/2),
 *   N_l = ||mu_s||^2 + tr Sigma_s,   term = sum_l b w_l L_l.
 *
 * The ridges e_s = rho t / C and e_a = rho (t / C)^2 (t = tr Sigma_s, C the
 * channels, rho = W2_RIDGE) keep rank-deficient covariances (dead ReLU
 * channels) invertible; they are fixed with the targets, so they do not
 * depend on the image.
 *
 * Matrix square roots: the coupled Newton-Schulz iteration (Higham 2008,
 * "Functions of Matrices", 6.3), matrix products only, on the GEMM module:
 * Y_0 = A / c, Z_0 = I (c = tr A >= the largest eigenvalue of the
 * positive semi-definite A), P = (3 I - Z Y) / 2, Y <- Y P, Z <- P Z;
 * Y -> (A/c)^(1/2), Z -> (A/c)^(-1/2). A normalised eigenvalue x grows
 * about 9/4 per step while small, then converges quadratically: W2_ITERS
 * steps reach every eigenvalue above ~1e-7 of c; the ridges keep them at
 * least rho / C of it. S is computed once per target.
 *
 * Gradient (derived by hand, checked by finite differences in tests/):
 * with positions weighted by w_p (1; a region's mask; in tiles, 1 on the
 * tile's owned positions), W = sum_p w_p, D = diag(w):
 *   mu = F w / W,  Sigma = F D F^T / W - mu mu^T.
 * d tr A^(1/2) = 1/2 tr(A^(-1/2) dA) = 1/2 tr(S A^(-1/2) S dSigma), so
 *   dL/dSigma = (I - T) / N,  T = S A^(-1/2) S (the optimal transport map
 *   from the image's Gaussian to the painting's), dL/dmu = 2 (mu - mu_s) / N.
 * For a symmetric G = dL/dSigma: tr(G dSigma) = 2 tr(G F D dF^T) / W -
 * 2 mu^T G dF w / W, and dmu = dF w / W, hence
 *   dL/dF = 2 / (N W) [ (I - T)(F - mu 1^T) + (mu - mu_s) 1^T ] D
 *         = 2 / N [ G' F D + b' w^T ],
 *   G' = (I - T) / W,  b' = (mu - mu_s) / W - G' mu.
 *
 * Several paintings blend as a mixture: the target is the Gaussian fit of
 * the paintings' features weighted by the blend, mu_s = sum_k b_k E_k[f],
 * Sigma_s = sum_k b_k E_k[f f^T] - mu_s mu_s^T (for the Gram term the blend
 * is the same mixture of second moments). With regions, region r's target
 * is painting r's fit and its statistics weight the positions by its mask.
 *
 * In tiles, pass 1 adds each tile's owned raw moments (sum f, sum f f^T);
 * at its end the fit, the value and G', b' per layer; pass 2 the gradient
 * at the owned positions. Regions are not tiled (as for the Gram term). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "objective_int.h"

#define W2_RIDGE 1e-3
#define W2_ITERS 24
#define W2_NS 5 /* C x C scratch matrices */

static const uint64_t F = sizeof(float);

typedef struct w2_term {
    nst_style_base base;
    /* targets per layer and region: the raw moments while the style images
     * come, then mu_s and S */
    cl_mem mus[NST_MAX_LAYERS][NST_MAX_STYLES];
    cl_mem sroot[NST_MAX_LAYERS][NST_MAX_STYLES];
    float trs[NST_MAX_LAYERS][NST_MAX_STYLES];   /* tr S^2 */
    float norm[NST_MAX_LAYERS][NST_MAX_STYLES];  /* N */
    float ridge[NST_MAX_LAYERS][NST_MAX_STYLES]; /* e_a */
    cl_mem mask[NST_MAX_LAYERS][NST_MAX_STYLES];
    /* the evaluation's, per layer: raw moments, W, tr A, G', b' */
    cl_mem m1[NST_MAX_LAYERS], m2[NST_MAX_LAYERS], wsum[NST_MAX_LAYERS];
    cl_mem tr[NST_MAX_LAYERS], g[NST_MAX_LAYERS], b[NST_MAX_LAYERS];
    cl_mem ns[W2_NS]; /* shared C x C scratch */
    cl_mem mu;        /* C floats */
    cl_mem fw;        /* regions: F D */
} w2_term;

static int regions(const w2_term *s) { return nst_style_regions(&s->base); }

static int w2_active(const nst_params *p) { return p->style_loss == NST_STYLE_W2; }

/* ---- device steps ---- */

static nst_status zeroed(nst_runtime *rt, cl_mem *buf, size_t floats) {
    nst_status st = NST_OK;
    if (!*buf) NST_TRY(nst_buffer_create(rt, floats * sizeof(float), buf));
    NST_TRY(nst_fill_zero(rt, *buf, floats));
fail:
    return st;
}

static nst_status fill_value(nst_runtime *rt, cl_mem buf, float v) {
    nst_status st = NST_OK;
    NST_CL(RTM(rt), clEnqueueFillBuffer(rt->queue, buf, &v, sizeof v, 0, sizeof v, 0, NULL, NULL));
fail:
    return st;
}

/* out[r] (+)= scale * sum of row r of x (rows x m). */
static nst_status rowsum(nst_runtime *rt, int rows, size_t m, cl_mem x, cl_mem out, int acc,
                         float scale) {
    size_t wg = 1, lim = rt->info.max_work_group < 256 ? rt->info.max_work_group : 256;
    while (wg * 2 <= lim) wg *= 2;
    size_t global = wg * (size_t)rows;
    int im = (int)m;
    return nst_launch(rt, "w2", "w2_rowsum", 1, &global, &wg, 7, sizeof(int), &rows, sizeof(int),
                      &im, sizeof(cl_mem), &x, sizeof(cl_mem), &out, sizeof(int), &acc,
                      sizeof(float), &scale, wg * sizeof(float), NULL);
}

/* Raw moments of x (c x m, already weighted: F D) against f: m1 (+)= scale *
 * x 1, m2 (+)= scale * x f^T. */
static nst_status raw_moments(nst_runtime *rt, int c, size_t m, cl_mem x, cl_mem f, cl_mem m1,
                              cl_mem m2, int acc, float scale) {
    nst_status st = NST_OK;
    NST_TRY(rowsum(rt, c, m, x, m1, acc, scale));
    NST_TRY(nst_gemm(rt, 0, 1, (size_t)c, (size_t)c, m, scale, x, 0, m, f, 0, m, acc ? 1.0f : 0.0f,
                     m2, 0, (size_t)c));
fail:
    return st;
}

/* mu, sigma from the raw moments and W. */
static nst_status moments(nst_runtime *rt, int c, cl_mem m1, cl_mem m2, cl_mem wsum, cl_mem mu,
                          cl_mem sigma) {
    size_t g[2] = {(size_t)c, (size_t)c};
    return nst_launch(rt, "w2", "w2_moments", 2, g, NULL, 6, sizeof(int), &c, sizeof(cl_mem), &m1,
                      sizeof(cl_mem), &m2, sizeof(cl_mem), &wsum, sizeof(cl_mem), &mu,
                      sizeof(cl_mem), &sigma);
}

/* Newton-Schulz on a + ridge I (c x c, in ns[0]): on return ns[*y] holds
 * (A/c)^(1/2), ns[*z] (A/c)^(-1/2), tr[0] the normaliser c. ns[0] is
 * overwritten. */
static nst_status ns_sqrt(nst_runtime *rt, cl_mem *ns, int c, float ridge, cl_mem tr, int *y,
                          int *z) {
    nst_status st = NST_OK;
    size_t g2[2] = {(size_t)c, (size_t)c}, one = 1, cc = (size_t)c;
    int iy = 1, iz = 2, ip = 0, iy2 = 3, iz2 = 4;
    NST_TRY(nst_launch(rt, "w2", "w2_trace", 1, &one, NULL, 4, sizeof(int), &c, sizeof(cl_mem),
                       &ns[0], sizeof(float), &ridge, sizeof(cl_mem), &tr));
    NST_TRY(nst_launch(rt, "w2", "w2_ns_init", 2, g2, NULL, 6, sizeof(int), &c, sizeof(cl_mem),
                       &ns[0], sizeof(float), &ridge, sizeof(cl_mem), &tr, sizeof(cl_mem),
                       &ns[iy], sizeof(cl_mem), &ns[iz]));
    for (int it = 0; it < W2_ITERS; it++) {
        NST_TRY(nst_gemm(rt, 0, 0, cc, cc, cc, 1.0f, ns[iz], 0, cc, ns[iy], 0, cc, 0.0f, ns[ip],
                         0, cc));
        NST_TRY(nst_launch(rt, "w2", "w2_ns_mid", 2, g2, NULL, 2, sizeof(int), &c,
                           sizeof(cl_mem), &ns[ip]));
        NST_TRY(nst_gemm(rt, 0, 0, cc, cc, cc, 1.0f, ns[iy], 0, cc, ns[ip], 0, cc, 0.0f,
                         ns[iy2], 0, cc));
        NST_TRY(nst_gemm(rt, 0, 0, cc, cc, cc, 1.0f, ns[ip], 0, cc, ns[iz], 0, cc, 0.0f,
                         ns[iz2], 0, cc));
        int ty = iy, tz = iz;
        iy = iy2;
        iz = iz2;
        iy2 = ty;
        iz2 = tz;
    }
    *y = iy;
    *z = iz;
fail:
    return st;
}

static nst_status scale_pow(nst_runtime *rt, size_t n, cl_mem y, cl_mem tr, float power) {
    int in = (int)n;
    return nst_launch(rt, "w2", "w2_scale_pow", 1, &n, NULL, 4, sizeof(int), &in, sizeof(cl_mem),
                      &y, sizeof(cl_mem), &tr, sizeof(float), &power);
}

/* p = a b (c x c). */
static nst_status mm(nst_runtime *rt, int c, cl_mem a, cl_mem b, cl_mem p) {
    size_t cc = (size_t)c;
    return nst_gemm(rt, 0, 0, cc, cc, cc, 1.0f, a, 0, cc, b, 0, cc, 0.0f, p, 0, cc);
}

/* From layer l's raw moments (m1, m2, wsum) against region r's target: the
 * value into values[slot], G' into g[l] and b' into b[l]. */
static nst_status fit_and_grad(w2_term *s, nst_objective *o, int l, int r, int c, size_t slot) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    cl_mem *ns = s->ns, sr = s->sroot[l][r];
    size_t g2[2] = {(size_t)c, (size_t)c}, one = 1, cv = (size_t)c;
    int y, z, islot = (int)slot;
    float trs = s->trs[l][r], norm = s->norm[l][r];
    /* the image's fit: mu, Sigma in g[l] */
    NST_TRY(moments(rt, c, s->m1[l], s->m2[l], s->wsum[l], s->mu, s->g[l]));
    /* A = S Sigma S (ns[0]) and its roots */
    NST_TRY(mm(rt, c, sr, s->g[l], ns[1]));
    NST_TRY(mm(rt, c, ns[1], sr, ns[0]));
    NST_TRY(ns_sqrt(rt, ns, c, s->ridge[l][r], s->tr[l], &y, &z));
    NST_TRY(nst_launch(rt, "w2", "w2_value", 1, &one, NULL, 10, sizeof(int), &c, sizeof(cl_mem),
                       &s->mu, sizeof(cl_mem), &s->mus[l][r], sizeof(cl_mem), &s->g[l],
                       sizeof(cl_mem), &ns[y], sizeof(cl_mem), &s->tr[l], sizeof(float), &trs,
                       sizeof(float), &norm, sizeof(cl_mem), &o->values, sizeof(int), &islot));
    /* T = S A^(-1/2) S, then G' = (I - T) / W in g[l], b' (ns_sqrt leaves
     * ns[0] free) */
    int p = 0;
    NST_TRY(scale_pow(rt, cv * cv, ns[z], s->tr[l], -0.5f));
    NST_TRY(mm(rt, c, sr, ns[z], ns[p]));
    NST_TRY(mm(rt, c, ns[p], sr, s->g[l]));
    NST_TRY(nst_launch(rt, "w2", "w2_gmat", 2, g2, NULL, 3, sizeof(int), &c, sizeof(cl_mem),
                       &s->g[l], sizeof(cl_mem), &s->wsum[l]));
    NST_TRY(nst_launch(rt, "w2", "w2_bias_vec", 1, &cv, NULL, 6, sizeof(int), &c, sizeof(cl_mem),
                       &s->g[l], sizeof(cl_mem), &s->mu, sizeof(cl_mem), &s->mus[l][r],
                       sizeof(cl_mem), &s->wsum[l], sizeof(cl_mem), &s->b[l]));
fail:
    return st;
}

/* df += 2 weight / N [G' x + b' w^T] over a rectangle of f's positions: x
 * the weighted features (F D; zero off the rectangle), w the mask (NULL: 1). */
static nst_status add_grad(w2_term *s, nst_objective *o, int l, int r, const nst_tensor *f,
                           cl_mem x, cl_mem mask, int y0, int x0, int rh, int rw,
                           nst_tensor *df) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    size_t c = (size_t)f->c, m = (size_t)f->h * f->w;
    float alpha = (float)(2.0 * s->base.weight[l] / s->norm[l][r]);
    int C = f->c, h = f->h, w = f->w, has_mask = mask != NULL;
    cl_mem mk = mask ? mask : s->b[l];
    size_t global[3] = {(size_t)rw, (size_t)rh, c};
    NST_TRY(nst_gemm(rt, 0, 0, c, m, c, alpha, s->g[l], 0, c, x, 0, m, 1.0f, df->buf, 0, m));
    if (rh > 0 && rw > 0)
        NST_TRY(nst_launch(rt, "w2", "w2_bias_add", 3, global, NULL, 12, sizeof(int), &C,
                           sizeof(int), &h, sizeof(int), &w, sizeof(int), &y0, sizeof(int), &x0,
                           sizeof(int), &rh, sizeof(int), &rw, sizeof(cl_mem), &s->b[l],
                           sizeof(int), &has_mask, sizeof(cl_mem), &mk, sizeof(float), &alpha,
                           sizeof(cl_mem), &df->buf));
fail:
    return st;
}

/* ---- targets ---- */

/* Adds scale * painting raw moments of f (its owned part fm in tiles) into
 * region r's target at layer l. */
static nst_status add_target(w2_term *s, nst_objective *o, int l, int r, const nst_tensor *x,
                             float scale) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    int c = x->c;
    if (!s->mus[l][r]) {
        NST_TRY(zeroed(rt, &s->mus[l][r], (size_t)c));
        NST_TRY(zeroed(rt, &s->sroot[l][r], (size_t)c * c));
    }
    NST_TRY(raw_moments(rt, c, (size_t)x->h * x->w, x->buf, x->buf, s->mus[l][r], s->sroot[l][r],
                        1, scale));
fail:
    return st;
}

/* arg: the region with regions, else the blend weight. */
static nst_status w2_target_at(nst_term *t, nst_objective *o, const nst_style_at *a, double arg) {
    w2_term *s = t->state;
    int regions = s->base.nregions != 0;
    double scale = (regions ? 1.0 : arg) / ((double)a->f->h * a->f->w);
    return add_target(s, o, a->l, regions ? (int)arg : 0, a->f, (float)scale);
}

static nst_status w2_targets(nst_term *t, nst_objective *o, int k, double blend) {
    w2_term *s = t->state;
    return nst_style_each_layer(t, o, NULL, NULL, s->base.nregions ? k : blend, w2_target_at);
}

static nst_status w2_tile_target_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                    double blend) {
    return add_target(t->state, o, a->l, 0, &a->fm, (float)(blend / a->m));
}

static nst_status w2_tile_targets(nst_term *t, nst_objective *o, const nst_tiling *tg,
                                  const nst_tile *tl, double blend) {
    return nst_style_each_layer(t, o, tg, tl, blend, w2_tile_target_at);
}

/* The targets' mu_s and S from their raw moments, the scalars, and the
 * evaluation's buffers. */
static nst_status finish(w2_term *s, nst_objective *o, int h, int w) {
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    int maxc = 1;
    float *host = NULL;
    for (int l = 0; l < s->base.layers.n; l++) {
        int c = nst_objective_channels(o, s->base.layers.name[l], NULL);
        if (c > maxc) maxc = c;
    }
    size_t mc = (size_t)maxc;
    for (int i = 0; i < W2_NS; i++) NST_TRY(zeroed(rt, &s->ns[i], mc * mc));
    NST_TRY(zeroed(rt, &s->mu, mc));
    host = malloc(mc * sizeof *host);
    if (!host) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "style targets");
        goto fail;
    }
    for (int l = 0; l < s->base.layers.n; l++) {
        int str, c = nst_objective_channels(o, s->base.layers.name[l], &str);
        size_t cc = (size_t)c * c;
        NST_TRY(zeroed(rt, &s->m1[l], (size_t)c));
        NST_TRY(zeroed(rt, &s->m2[l], cc));
        NST_TRY(zeroed(rt, &s->g[l], cc));
        NST_TRY(zeroed(rt, &s->b[l], (size_t)c));
        NST_TRY(zeroed(rt, &s->wsum[l], 1));
        NST_TRY(zeroed(rt, &s->tr[l], 1));
        NST_TRY(fill_value(rt, s->wsum[l], 1.0f));
        (void)h;
        (void)w;
        for (int r = 0; r < regions(s); r++) {
            int y, z;
            float tr;
            /* Sigma_s into ns[0], mu_s into s->mu then back */
            NST_TRY(moments(rt, c, s->mus[l][r], s->sroot[l][r], s->wsum[l], s->mu, s->ns[0]));
            NST_CL(RTM(rt), clEnqueueCopyBuffer(rt->queue, s->mu, s->mus[l][r], 0, 0,
                                                (size_t)c * F, 0, NULL, NULL));
            NST_TRY(nst_launch(rt, "w2", "w2_trace", 1, &(size_t){1}, NULL, 4, sizeof(int), &c,
                               sizeof(cl_mem), &s->ns[0], sizeof(float), &(float){0},
                               sizeof(cl_mem), &s->tr[l]));
            NST_TRY(nst_read_floats(rt, s->tr[l], 0, 1, &tr));
            NST_TRY(nst_read_floats(rt, s->mus[l][r], 0, (size_t)c, host));
            double t = tr > 0 ? tr : 0, mu2 = 0;
            for (int i = 0; i < c; i++) mu2 += (double)host[i] * host[i];
            double es = W2_RIDGE * t / c;
            s->trs[l][r] = (float)(t + c * es);
            s->norm[l][r] = mu2 + t > 0 ? (float)(mu2 + t) : 1.0f;
            s->ridge[l][r] = (float)(W2_RIDGE * (t / c) * (t / c));
            /* S = (Sigma_s + e_s I)^(1/2) */
            NST_TRY(ns_sqrt(rt, s->ns, c, (float)es, s->tr[l], &y, &z));
            NST_TRY(scale_pow(rt, cc, s->ns[y], s->tr[l], 0.5f));
            NST_CL(RTM(rt), clEnqueueCopyBuffer(rt->queue, s->ns[y], s->sroot[l][r], 0, 0, cc * F,
                                                0, NULL, NULL));
        }
    }
fail:
    free(host);
    return st;
}

/* W per layer is the image's positions (the tiles' owned ones add up to
 * it). */
static nst_status w2_tile_finish(nst_term *t, nst_objective *o, const nst_tiling *tg) {
    w2_term *s = t->state;
    nst_status st = NST_OK;
    NST_TRY(finish(s, o, tg->h, tg->w));
    for (int l = 0; l < s->base.layers.n; l++) {
        int str;
        nst_objective_channels(o, s->base.layers.name[l], &str);
        NST_TRY(fill_value(o->rt, s->wsum[l], (float)nst_tiling_positions(tg, str)));
    }
fail:
    return st;
}

/* With regions, the masks and the scratch of masked features. */
static nst_status w2_finish(nst_term *t, nst_objective *o, const nst_image *content,
                            const nst_image *const *masks) {
    w2_term *s = t->state;
    int regions = s->base.nregions;
    size_t n = nst_objective_largest_tap(o, content->h, content->w);
    nst_status st = finish(s, o, content->h, content->w);
    if (st == NST_OK && regions) st = nst_buffer_create(o->rt, n * F, &s->fw);
    if (st == NST_OK && regions)
        st = nst_style_masks(o, &s->base.layers, regions, content, masks, s->mask);
    return st;
}

/* ---- evaluation ---- */

/* Layer l, region r: positions weighted by the region's mask (else 1). */
static nst_status w2_evaluate_one(nst_term *t, nst_objective *o, int l, int r,
                                  const nst_tensor *f, nst_tensor *df, size_t slot) {
    w2_term *s = t->state;
    nst_runtime *rt = o->rt;
    nst_status st = NST_OK;
    size_t m = (size_t)f->h * f->w;
    cl_mem x = f->buf, mask = s->base.nregions ? s->mask[l][r] : NULL;
    if (mask) {
        int n = (int)f->count, im = (int)m;
        size_t g = f->count;
        NST_TRY(nst_launch(rt, "w2", "w2_colscale", 1, &g, NULL, 5, sizeof(int), &n, sizeof(int),
                           &im, sizeof(cl_mem), &f->buf, sizeof(cl_mem), &mask, sizeof(cl_mem),
                           &s->fw));
        NST_TRY(rowsum(rt, 1, m, mask, s->wsum[l], 0, 1.0f));
        x = s->fw;
    } else {
        NST_TRY(fill_value(rt, s->wsum[l], (float)m));
    }
    NST_TRY(raw_moments(rt, f->c, m, x, f->buf, s->m1[l], s->m2[l], 0, 1.0f));
    NST_TRY(fit_and_grad(s, o, l, r, f->c, slot));
    NST_TRY(add_grad(s, o, l, r, f, x, mask, 0, 0, f->h, f->w, df));
fail:
    return st;
}

static nst_status w2_evaluate(nst_term *t, nst_objective *o) {
    return nst_style_evaluate(t, o, w2_evaluate_one);
}

static nst_status w2_sums_begin_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                   double unused) {
    w2_term *s = t->state;
    nst_status st = nst_fill_zero(o->rt, s->m1[a->l], (size_t)a->c);
    return st == NST_OK ? nst_fill_zero(o->rt, s->m2[a->l], (size_t)a->c * a->c) : st;
}

NST_STYLE_LAYER_HOOK(w2_sums_begin)

static nst_status w2_sums_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                             double unused) {
    w2_term *s = t->state;
    return raw_moments(o->rt, a->c, (size_t)a->f->h * a->f->w, a->fm.buf, a->fm.buf, s->m1[a->l],
                       s->m2[a->l], 1, 1.0f);
}

NST_STYLE_TILE_HOOK(w2_sums)

static nst_status w2_sums_end_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                 double unused) {
    return fit_and_grad(t->state, o, a->l, 0, a->c, (size_t)(t->slot + a->l));
}

NST_STYLE_LAYER_HOOK(w2_sums_end)

/* The gradient at the tile's owned positions. */
static nst_status w2_tile_evaluate_at(nst_term *t, nst_objective *o, const nst_style_at *a,
                                      double unused) {
    int y0, x0, rh, rw;
    nst_tile_owned(a->tl, a->stride, &y0, &x0, &rh, &rw);
    return add_grad(t->state, o, a->l, 0, a->f, a->fm.buf, NULL, y0, x0, rh, rw, a->df);
}

NST_STYLE_TILE_HOOK(w2_tile_evaluate)

static void w2_memory(const nst_term *t, const nst_objective *o, const nst_term_sizes *sz,
                      nst_term_memory *m) {
    const w2_term *s = t->state;
    uint64_t max_cc = 1, max_cm = 1, masks = 0, per = 0;
    for (int l = 0; l < s->base.layers.n; l++) {
        int str, c = nst_objective_channels(o, s->base.layers.name[l], &str);
        uint64_t cc = (uint64_t)c * c, pos = (uint64_t)(sz->h / str) * (sz->w / str);
        m->style_targets += (cc + c) * regions(s) * F;
        per += (2 * cc + 2 * c + 2) * F;
        max_cc = cc > max_cc ? cc : max_cc;
        max_cm = c * pos > max_cm ? c * pos : max_cm;
        masks += s->base.nregions * pos * F;
    }
    m->scratch = per + W2_NS * max_cc * F + (s->base.nregions ? max_cm * F + masks : 0);
    m->largest = s->base.nregions && max_cm > max_cc ? max_cm * F : max_cc * F;
}

/* Frees n buffers of an array and clears them. */
static void free_buffers(nst_runtime *rt, cl_mem *b, size_t n) {
    for (size_t i = 0; i < n; i++) {
        nst_buffer_free(rt, b[i]);
        b[i] = NULL;
    }
}

static void w2_release(nst_term *t, nst_runtime *rt) {
    w2_term *s = t->state;
    const size_t lr = NST_MAX_LAYERS * NST_MAX_STYLES;
    free_buffers(rt, &s->mus[0][0], lr);
    free_buffers(rt, &s->sroot[0][0], lr);
    free_buffers(rt, &s->mask[0][0], lr);
    cl_mem *per_layer[] = {s->m1, s->m2, s->wsum, s->tr, s->g, s->b};
    for (int i = 0; i < 6; i++) free_buffers(rt, per_layer[i], NST_MAX_LAYERS);
    free_buffers(rt, s->ns, W2_NS);
    free_buffers(rt, &s->mu, 1);
    free_buffers(rt, &s->fw, 1);
}

const nst_term_ops nst_term_w2 = NST_STYLE_SUMS_OPS(w2, nst_style_value);
