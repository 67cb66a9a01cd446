/* wct.c: universal style transfer (Li et al. 2017; nst.h, wct.h): the
 * models (encoders and decoders on fwdnet.h), the whitening and colouring
 * transform, and the run, coarse to fine.
 *
 * Where the work runs: the encoders, decoders, statistics (two GEMMs) and
 * the transform itself (one GEMM per region) on the device; the
 * eigen-decompositions of the covariances on the host with LAPACK's
 * symmetric divide-and-conquer solver (LAPACKE_dsyevd). They are small
 * (at most 512 x 512, one per painting and region per level, a few tens of
 * milliseconds), symmetric, and wanted exact: in double on the host they
 * cost less than the round trip to a device solver would save, need no
 * iterative GPU eigensolver of our own, and whitening (which divides by the
 * square roots of the eigenvalues) keeps the precision it needs. */
#include <errno.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fwdnet.h"
#include "image.h"
#include "wct.h"

#define ARG(x) sizeof(x), (const void *)&(x)
/* A 2-D launch over (columns, rows); the kernels bounds-check. */
#define launch_2d(rt, prog, name, cols, rows, ...)                                \
    nst_launch((rt), (prog), (name), 2, (const size_t[]){(cols), (rows)}, NULL, __VA_ARGS__)

#define ENC_FILE "vgg_normalised_conv%d_1.pth"
#define DEC_FILE "feature_invertor_conv%d_1.pth"
#define FETCH_HINT "tools/fetch-weights.sh wct (or NST_NETWORK=wct make weights)"

struct nst_wct_models {
    nst_runtime *rt;
    unsigned levels;
    nst_fwdnet *enc[NST_WCT_LEVELS], *dec[NST_WCT_LEVELS];
};

void nst_wct_params_default(nst_wct_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->size = 512;
    p->style_scale = 1.0;
    p->alpha = 0.6;
    p->levels = 0;
    p->eps = 1.0;
}

/* ---- finding and loading the models ----------------------------------------- */

static int is_file(const char *p) {
    struct stat sb;
    return !stat(p, &sb) && S_ISREG(sb.st_mode);
}

static int is_dir(const char *p) {
    struct stat sb;
    return !stat(p, &sb) && S_ISDIR(sb.st_mode);
}

/* Levels whose encoder (enc) or decoder (dec) file dir holds. */
static void levels_in(const char *dir, unsigned *enc, unsigned *dec) {
    char p[NST_PATH_MAX + 64], name[64];
    *enc = *dec = 0;
    for (int L = 1; L <= NST_WCT_LEVELS; L++) {
        snprintf(name, sizeof name, ENC_FILE, L);
        if (snprintf(p, sizeof p, "%s/%s", dir, name) < (int)sizeof p && is_file(p))
            *enc |= 1u << (L - 1);
        snprintf(name, sizeof name, DEC_FILE, L);
        if (snprintf(p, sizeof p, "%s/%s", dir, name) < (int)sizeof p && is_file(p))
            *dec |= 1u << (L - 1);
    }
}

nst_status nst_wct_locate(const nst_settings *s, const char *dir, char *out, size_t outlen,
                          nst_msg *msg) {
    unsigned e, d;
    if (!out) return nst_fail_null(msg, "nst_wct_locate", "out");
    if (dir && *dir) {
        if (!is_dir(dir))
            return nst_fail(msg, NST_ERR_IO, "WCT models directory %s: %s", dir,
                            errno ? NST_STRERROR(errno) : "not a directory");
        levels_in(dir, &e, &d);
        if (!(e & d))
            return nst_fail(msg, NST_ERR_IO,
                            "%s holds no WCT model: a level L needs both " ENC_FILE
                            " and " DEC_FILE " (L = 1..5); get them with " FETCH_HINT,
                            dir, 1, 1);
        if (strlen(dir) >= outlen)
            return nst_fail(msg, NST_ERR_INVALID_ARG, "WCT models path %s is too long", dir);
        strcpy(out, dir);
        return NST_OK;
    }
    const char *all = s && *s->weights_dirs ? s->weights_dirs
                                             : NST_SOURCE_DIR "/weights:" NST_PREFIX "/share/nst";
    char base[NST_PATH_MAX], cand[NST_PATH_MAX + 8], list[1024] = "";
    size_t used = 0;
    const char *dirs = all;
    while (nst_dirs_next(&dirs, base, sizeof base)) {
        for (int sub = 0; sub < 2; sub++) {
            if (snprintf(cand, sizeof cand, sub ? "%s" : "%s/wct", base) >= (int)sizeof cand)
                continue;
            levels_in(cand, &e, &d);
            if (e & d) {
                if (strlen(cand) >= outlen)
                    return nst_fail(msg, NST_ERR_INVALID_ARG, "WCT models path %s is too long",
                                    cand);
                strcpy(out, cand);
                return NST_OK;
            }
        }
        int w = snprintf(list + used, sizeof list - used, "%s%s/wct, %s", used ? ", " : "",
                         base, base);
        if (w > 0) used = used + (size_t)w < sizeof list ? used + (size_t)w : sizeof list - 1;
    }
    return nst_fail(msg, NST_ERR_IO,
                    "no WCT models found (" ENC_FILE " and " DEC_FILE ", L = 1..5) in %s; get "
                    "them with " FETCH_HINT ", or give --wct-models DIR",
                    1, 1, used ? list : "(no directories)");
}

void nst_wct_models_free(nst_wct_models *m) {
    if (!m) return;
    for (int i = 0; i < NST_WCT_LEVELS; i++) {
        nst_fwdnet_free(m->rt, m->enc[i]);
        nst_fwdnet_free(m->rt, m->dec[i]);
    }
    free(m);
}

unsigned nst_wct_models_levels(const nst_wct_models *m) { return m ? m->levels : 0; }

static nst_status load_net(nst_runtime *rt, const char *dir, const char *fmt, int level,
                           const nst_net *net, int depth, nst_fwdnet **out) {
    char name[64], path[NST_PATH_MAX + 64];
    nst_weights *w = NULL;
    snprintf(name, sizeof name, fmt, level);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    nst_status st = nst_weights_load(path, &w, RTM(rt));
    if (st == NST_OK) st = nst_fwdnet_create(rt, net, depth, w, out);
    nst_weights_free(w);
    return st;
}

nst_status nst_wct_models_load(nst_runtime *rt, const char *dir, nst_wct_models **out) {
    nst_status st = NST_OK;
    unsigned e, d;
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!out) return nst_fail_null(RTM(rt), "nst_wct_models_load", "out");
    *out = NULL;
    if (!dir) return nst_fail_null(RTM(rt), "nst_wct_models_load", "dir");
    NST_TRY(nst_wct_locate(NULL, dir, (char[NST_PATH_MAX]){0}, NST_PATH_MAX, RTM(rt)));
    levels_in(dir, &e, &d);
    for (int L = 1; L <= NST_WCT_LEVELS; L++) {
        unsigned bit = 1u << (L - 1);
        if ((e ^ d) & bit) {
            char name[64];
            snprintf(name, sizeof name, e & bit ? DEC_FILE : ENC_FILE, L);
            return nst_fail(RTM(rt), NST_ERR_IO,
                            "%s holds the %s of WCT level %d but not its %s (%s); get it with "
                            FETCH_HINT, dir, e & bit ? "encoder" : "decoder", L,
                            e & bit ? "decoder" : "encoder", name);
        }
    }
    /* compiled now (or loaded from the cache), so that a run times only itself */
    static const char *const progs[] = {"conv", "pool", "wct"};
    NST_TRY(nst_programs_prepare(rt, progs, 3, NST_BLAS_GEMM, NULL, NULL));
    nst_wct_models *m = calloc(1, sizeof *m);
    if (!m) return nst_fail(RTM(rt), NST_ERR_NOMEM, "out of host memory for the WCT models");
    m->rt = rt;
    for (int L = 1; L <= NST_WCT_LEVELS; L++) {
        if (!(e & d & (1u << (L - 1)))) continue;
        st = load_net(rt, dir, ENC_FILE, L, nst_net_wct_encoder(), nst_net_wct_depth(L),
                      &m->enc[L - 1]);
        if (st == NST_OK)
            st = load_net(rt, dir, DEC_FILE, L, nst_net_wct_decoder(L), 0, &m->dec[L - 1]);
        if (st != NST_OK) {
            nst_wct_models_free(m);
            return st;
        }
        m->levels |= 1u << (L - 1);
    }
    *out = m;
fail:
    return st;
}

/* ---- the transform ------------------------------------------------------------ */

nst_status nst_wct_matrix_power(int c, const double *cov, double eps, double power, double *out,
                                nst_msg *msg) {
    double *a = malloc((size_t)c * c * sizeof *a), *ev = malloc((size_t)c * sizeof *ev);
    double *g = malloc((size_t)c * sizeof *g);
    nst_status st = NST_OK;
    if (!a || !ev || !g) {
        st = nst_fail(msg, NST_ERR_NOMEM, "out of host memory for a %dx%d covariance", c, c);
        goto done;
    }
    for (size_t i = 0; i < (size_t)c * c; i++) {
        if (!isfinite(cov[i])) {
            st = nst_fail(msg, NST_ERR_NUMERIC,
                          "a feature covariance holds NaN or Inf (the image or the model "
                          "gives non-finite features)");
            goto done;
        }
        a[i] = cov[i];
    }
    for (int i = 0; i < c; i++) a[(size_t)i * c + i] += eps;
    lapack_int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'V', 'U', c, a, c, ev);
    if (info) {
        st = nst_fail(msg, NST_ERR_NUMERIC,
                      "the eigen-decomposition of a %dx%d feature covariance failed "
                      "(LAPACKE_dsyevd: %d)", c, c, (int)info);
        goto done;
    }
    /* columns of a are the eigenvectors: out = A diag(g) A^T */
    for (int k = 0; k < c; k++) g[k] = ev[k] >= NST_WCT_EIG_MIN ? pow(ev[k], power) : 0.0;
    for (int i = 0; i < c; i++)
        for (int j = 0; j <= i; j++) {
            const double *ai = a + (size_t)i * c, *aj = a + (size_t)j * c;
            double s = 0;
            for (int k = 0; k < c; k++) s += ai[k] * g[k] * aj[k];
            out[(size_t)i * c + j] = out[(size_t)j * c + i] = s;
        }
done:
    free(a);
    free(ev);
    free(g);
    return st;
}

nst_status nst_wct_stats(nst_runtime *rt, const nst_tensor *f, const nst_tensor *b, double n,
                         double *mean, double *cov) {
    nst_status st = NST_OK;
    const int C = f->c, N = f->h * f->w;
    nst_tensor *ones = NULL, *mu = NULL, *g = NULL, *cv = NULL;
    float *host = NULL;
    if (n < 2)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "WCT statistics need at least 2 positions, the region has %.0f", n);
    if (!b) {
        NST_TRY(nst_tensor_create(rt, 1, 1, 1, N, &ones));
        NST_TRY(nst_tensor_fill(rt, ones, 1.0f));
        b = ones;
    }
    NST_TRY(nst_tensor_create(rt, 1, 1, 1, C, &mu));
    NST_TRY(nst_tensor_create(rt, 1, C, f->h, f->w, &g));
    NST_TRY(nst_tensor_create(rt, 1, 1, C, C, &cv));
    NST_TRY(nst_gemm(rt, 0, 0, (size_t)C, 1, (size_t)N, (float)(1.0 / n), f->buf, 0, (size_t)N,
                     b->buf, 0, 1, 0.0f, mu->buf, 0, 1));
    int has_b = 1;
    NST_TRY(launch_2d(rt, "wct", "wct_center", (size_t)N, (size_t)C, 7, ARG(C), ARG(N), ARG(has_b),
                      ARG(f->buf), ARG(mu->buf), ARG(b->buf), ARG(g->buf)));
    NST_TRY(nst_gemm(rt, 0, 1, (size_t)C, (size_t)C, (size_t)N, (float)(1.0 / (n - 1)), g->buf, 0,
                     (size_t)N, g->buf, 0, (size_t)N, 0.0f, cv->buf, 0, (size_t)C));
    host = malloc(((size_t)C * C + C) * sizeof *host);
    if (!host) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "out of host memory for WCT statistics");
        goto fail;
    }
    NST_TRY(nst_tensor_download(rt, mu, host));
    NST_TRY(nst_tensor_download(rt, cv, host + C));
    for (int i = 0; i < C; i++) mean[i] = host[i];
    for (size_t i = 0; i < (size_t)C * C; i++) cov[i] = host[C + i];
fail:
    free(host);
    nst_tensor_free(rt, ones);
    nst_tensor_free(rt, mu);
    nst_tensor_free(rt, g);
    nst_tensor_free(rt, cv);
    return st;
}

/* t += w * a b, all c x c */
static void matmul_add(int c, double w, const double *a, const double *b, double *t) {
    for (int i = 0; i < c; i++)
        for (int k = 0; k < c; k++) {
            double s = w * a[(size_t)i * c + k];
            if (s == 0) continue;
            const double *bk = b + (size_t)k * c;
            double *ti = t + (size_t)i * c;
            for (int j = 0; j < c; j++) ti[j] += s * bk[j];
        }
}

nst_status nst_wct_transform(nst_runtime *rt, const nst_tensor *fc, int nstyles,
                             const double *const *smean, const double *const *scov,
                             const double *blend, const nst_tensor *const *regions,
                             const double *n, const nst_tensor *uncovered, double alpha,
                             double eps, nst_tensor *out) {
    nst_status st = NST_OK;
    const int C = fc->c, N = fc->h * fc->w;
    const size_t CC = (size_t)C * C;
    double *mc = malloc(C * sizeof *mc), *cc = malloc(CC * sizeof *cc);
    double *wm = malloc(CC * sizeof *wm), *km = malloc(CC * sizeof *km);
    double *t = malloc(CC * sizeof *t), *ms = malloc(C * sizeof *ms);
    float *tf = malloc((CC + C) * sizeof *tf);
    nst_tensor *tt = NULL, *mst = NULL, *mct = NULL, *g = NULL, *y = NULL;
    if (!mc || !cc || !wm || !km || !t || !ms || !tf) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "out of host memory for the WCT of %d channels", C);
        goto fail;
    }
    NST_TRY(nst_tensor_create(rt, 1, 1, C, C, &tt));
    NST_TRY(nst_tensor_create(rt, 1, 1, 1, C, &mst));
    NST_TRY(nst_tensor_create(rt, 1, 1, 1, C, &mct));
    NST_TRY(nst_tensor_create(rt, 1, C, fc->h, fc->w, &g));
    NST_TRY(nst_tensor_create(rt, 1, C, fc->h, fc->w, &y));
    NST_TRY(nst_tensor_fill(rt, out, 0.0f));
    int nreg = regions ? nstyles : 1;
    for (int r = 0; r < nreg; r++) {
        const nst_tensor *b = regions ? regions[r] : NULL;
        if (regions && n[r] < 2) continue; /* too few positions: they keep the content */
        NST_TRY(nst_wct_stats(rt, fc, b, regions ? n[r] : N, mc, cc));
        NST_TRY(nst_wct_matrix_power(C, cc, eps, -0.5, wm, RTM(rt)));
        memset(t, 0, CC * sizeof *t);
        memset(ms, 0, C * sizeof *ms);
        for (int k = regions ? r : 0; k < (regions ? r + 1 : nstyles); k++) {
            double wk = regions ? 1.0 : blend ? blend[k] : 1.0 / nstyles;
            NST_TRY(nst_wct_matrix_power(C, scov[k], 0.0, 0.5, km, RTM(rt)));
            matmul_add(C, wk, km, wm, t);
            for (int i = 0; i < C; i++) ms[i] += wk * smean[k][i];
        }
        for (size_t i = 0; i < CC; i++) tf[i] = (float)t[i];
        NST_TRY(nst_tensor_upload(rt, tt, tf));
        for (int i = 0; i < C; i++) tf[i] = (float)ms[i];
        NST_TRY(nst_tensor_upload(rt, mst, tf));
        for (int i = 0; i < C; i++) tf[i] = (float)mc[i];
        NST_TRY(nst_tensor_upload(rt, mct, tf));
        int has_b = b != NULL;
        cl_mem bb = b ? b->buf : fc->buf; /* unused when !has_b */
        NST_TRY(launch_2d(rt, "wct", "wct_center", (size_t)N, (size_t)C, 7, ARG(C), ARG(N), ARG(has_b),
                          ARG(fc->buf), ARG(mct->buf), ARG(bb), ARG(g->buf)));
        NST_TRY(nst_gemm(rt, 0, 0, (size_t)C, (size_t)N, (size_t)C, 1.0f, tt->buf, 0, (size_t)C,
                         g->buf, 0, (size_t)N, 0.0f, y->buf, 0, (size_t)N));
        NST_TRY(launch_2d(rt, "wct", "wct_accumulate", (size_t)N, (size_t)C, 7, ARG(C), ARG(N),
                          ARG(has_b), ARG(y->buf), ARG(mst->buf), ARG(bb), ARG(out->buf)));
    }
    {
        float a = (float)alpha;
        int has_u = regions && uncovered;
        cl_mem ub = has_u ? uncovered->buf : fc->buf;
        NST_TRY(launch_2d(rt, "wct", "wct_mix", (size_t)N, (size_t)C, 8, ARG(C), ARG(N), ARG(a),
                          ARG(has_u), ARG(out->buf), ARG(fc->buf), ARG(ub), ARG(out->buf)));
    }
fail:
    free(mc);
    free(cc);
    free(wm);
    free(km);
    free(t);
    free(ms);
    free(tf);
    nst_tensor_free(rt, tt);
    nst_tensor_free(rt, mst);
    nst_tensor_free(rt, mct);
    nst_tensor_free(rt, g);
    nst_tensor_free(rt, y);
    return st;
}

/* ---- the run -------------------------------------------------------------------- */

static nst_status check_params(nst_runtime *rt, const nst_wct_models *m, const nst_wct_params *p,
                               int nstyles, const double *blend) {
    nst_msg *msg = RTM(rt);
    if (p->size != 0 && (p->size < 16 || p->size > 65536))
        return nst_fail(msg, NST_ERR_INVALID_ARG,
                        "WCT size %d: give 0 (the content's size) or 16..65536", p->size);
    if (!(p->style_scale > 0 && p->style_scale <= 16))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "WCT style_scale %g: give a number in (0, 16]",
                        p->style_scale);
    if (!(p->alpha >= 0 && p->alpha <= 1))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "WCT alpha %g: give a number in [0, 1]",
                        p->alpha);
    if (!(isfinite(p->eps) && p->eps >= 0))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "WCT eps %g: give a finite number >= 0",
                        p->eps);
    if (p->levels & ~((1u << NST_WCT_LEVELS) - 1))
        return nst_fail(msg, NST_ERR_INVALID_ARG, "WCT levels 0x%x: the levels are 1..%d",
                        p->levels, NST_WCT_LEVELS);
    unsigned missing = p->levels & ~m->levels;
    for (int L = 1; L <= NST_WCT_LEVELS; L++)
        if (missing & (1u << (L - 1)))
            return nst_fail(msg, NST_ERR_INVALID_ARG,
                            "WCT level %d was asked for but the models hold no " ENC_FILE
                            " and " DEC_FILE "; get them with " FETCH_HINT,
                            L, L, L);
    if (nstyles < 1 || nstyles > NST_MAX_STYLES)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "nst_wct_run: %d paintings; give 1..%d",
                        nstyles, NST_MAX_STYLES);
    if (blend) {
        double sum = 0;
        for (int k = 0; k < nstyles; k++) {
            if (!(blend[k] >= 0 && isfinite(blend[k])))
                return nst_fail(msg, NST_ERR_INVALID_ARG,
                                "blend weight %d is %g: give finite weights >= 0", k + 1,
                                blend[k]);
            sum += blend[k];
        }
        if (fabs(sum - 1) > 1e-6)
            return nst_fail(msg, NST_ERR_INVALID_ARG,
                            "the blend weights sum to %g: they must sum to 1", sum);
    }
    return NST_OK;
}

static nst_status upload_image(nst_runtime *rt, const nst_image *img, nst_tensor **out) {
    nst_status st = nst_tensor_create(rt, 1, 3, img->h, img->w, out);
    if (st == NST_OK) st = nst_tensor_upload(rt, *out, img->data);
    return st;
}

/* The regions of a level's h x w features: each position to the style whose
 * mask is brightest there, if at least half white (a region of fewer than 2
 * positions is dropped). reg[k] are [N] 0/1 tensors, cnt[k] their sizes, unc
 * 1 where none. */
static nst_status make_regions(nst_runtime *rt, const nst_image *const *masks, int nstyles, int h,
                               int w, nst_tensor **reg, double *cnt, nst_tensor **unc) {
    nst_status st = NST_OK;
    const size_t N = (size_t)h * w;
    float *val = malloc(N * nstyles * sizeof *val), *bit = malloc(N * sizeof *bit);
    int *owner = malloc(N * sizeof *owner);
    nst_image *r = NULL;
    if (!val || !bit || !owner) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "out of host memory for the WCT masks");
        goto fail;
    }
    for (int k = 0; k < nstyles; k++) {
        NST_TRY(nst_image_resize(masks[k], w, h, &r, RTM(rt)));
        for (size_t i = 0; i < N; i++)
            val[k * N + i] = (r->data[i] + r->data[N + i] + r->data[2 * N + i]) / 3.0f;
        nst_image_free(r);
        r = NULL;
    }
    for (size_t i = 0; i < N; i++) {
        int best = -1;
        float bv = 0.5f;
        for (int k = 0; k < nstyles; k++)
            if (val[k * N + i] >= bv && (best < 0 || val[k * N + i] > bv)) {
                best = k;
                bv = val[k * N + i];
            }
        owner[i] = best;
    }
    /* a region of fewer than 2 positions has no covariance: it keeps the content */
    for (int k = 0; k < nstyles; k++) {
        size_t c = 0;
        for (size_t i = 0; i < N; i++) c += owner[i] == k;
        if (c < 2)
            for (size_t i = 0; i < N; i++)
                if (owner[i] == k) owner[i] = -1;
    }
    for (int k = 0; k <= nstyles; k++) {
        double c = 0;
        int who = k < nstyles ? k : -1;
        for (size_t i = 0; i < N; i++) {
            bit[i] = owner[i] == who ? 1.0f : 0.0f;
            c += bit[i];
        }
        nst_tensor **t = k < nstyles ? &reg[k] : unc;
        NST_TRY(nst_tensor_create(rt, 1, 1, 1, (int)N, t));
        NST_TRY(nst_tensor_upload(rt, *t, bit));
        if (k < nstyles) cnt[k] = c;
    }
fail:
    nst_image_free(r);
    free(val);
    free(bit);
    free(owner);
    return st;
}

/* One level: x (an image tensor) -> *next, the decoded image cropped to x's size. */
static nst_status run_level(nst_runtime *rt, const nst_wct_models *m, int L,
                            const nst_wct_params *p, nst_tensor *x, nst_tensor *const *simg,
                            int nstyles, const double *blend, const nst_image *const *masks,
                            int last, nst_tensor **next) {
    nst_status st = NST_OK;
    nst_fwdnet *enc = m->enc[L - 1], *dec = m->dec[L - 1];
    nst_tensor *fc = NULL, *fs = NULL, *fo = NULL, *y = NULL, *unc = NULL;
    nst_tensor *reg[NST_MAX_STYLES] = {0};
    double *smean[NST_MAX_STYLES] = {0}, *scov[NST_MAX_STYLES] = {0}, cnt[NST_MAX_STYLES];
    int c, h, w;
    *next = NULL;
    if (nst_fwdnet_shape(enc, x->h, x->w, &c, &h, &w))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "the image (%dx%d) is too small for WCT level %d: give each side at "
                        "least %d pixels", x->w, x->h, L, (1 << (L - 1)) + 1);
    NST_TRY(nst_fwdnet_forward(rt, enc, x, &fc));
    for (int k = 0; k < nstyles; k++) {
        int sc, sh, sw;
        if (nst_fwdnet_shape(enc, simg[k]->h, simg[k]->w, &sc, &sh, &sw) || sh * sw < 2) {
            st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                          "painting %d (%dx%d) is too small for WCT level %d: raise the style "
                          "scale", k + 1, simg[k]->w, simg[k]->h, L);
            goto fail;
        }
        smean[k] = malloc((size_t)sc * sizeof **smean);
        scov[k] = malloc((size_t)sc * sc * sizeof **scov);
        if (!smean[k] || !scov[k]) {
            st = nst_fail(RTM(rt), NST_ERR_NOMEM, "out of host memory for WCT statistics");
            goto fail;
        }
        NST_TRY(nst_fwdnet_forward(rt, enc, simg[k], &fs));
        NST_TRY(nst_wct_stats(rt, fs, NULL, (double)sh * sw, smean[k], scov[k]));
        nst_tensor_free(rt, fs);
        fs = NULL;
    }
    if (masks) NST_TRY(make_regions(rt, masks, nstyles, h, w, reg, cnt, &unc));
    NST_TRY(nst_tensor_create(rt, 1, c, h, w, &fo));
    if (!masks && h * w < 2) {
        NST_TRY(nst_tensor_copy(rt, fo, fc));
    } else {
        NST_TRY(nst_wct_transform(rt, fc, nstyles, (const double *const *)smean,
                                  (const double *const *)scov, blend,
                                  masks ? (const nst_tensor *const *)reg : NULL, cnt, unc,
                                  p->alpha, p->eps, fo));
    }
    nst_tensor_free(rt, fc);
    fc = NULL;
    NST_TRY(nst_fwdnet_forward(rt, dec, fo, &y));
    if (y->c != 3 || y->h < x->h || y->w < x->w) {
        st = nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                      "WCT level %d's decoder gives [%d,%d,%d] for a %dx%d image", L, y->c, y->h,
                      y->w, x->w, x->h);
        goto fail;
    }
    NST_TRY(nst_tensor_create(rt, 1, 3, x->h, x->w, next));
    {
        int C3 = 3, H = y->h, W = y->w, OH = x->h, OW = x->w, clamp = last;
        float lo = 0.0f, hi = 1.0f;
        NST_TRY(launch_2d(rt, "wct", "wct_crop", (size_t)OW, (size_t)3 * OH, 10, ARG(C3), ARG(H), ARG(W),
                          ARG(OH), ARG(OW), ARG(clamp), ARG(lo), ARG(hi), ARG(y->buf),
                          ARG((*next)->buf)));
    }
fail:
    if (st != NST_OK) {
        nst_tensor_free(rt, *next);
        *next = NULL;
    }
    nst_tensor_free(rt, fc);
    nst_tensor_free(rt, fs);
    nst_tensor_free(rt, fo);
    nst_tensor_free(rt, y);
    nst_tensor_free(rt, unc);
    for (int k = 0; k < NST_MAX_STYLES; k++) {
        nst_tensor_free(rt, reg[k]);
        free(smean[k]);
        free(scov[k]);
    }
    return st;
}

nst_status nst_wct_run(nst_runtime *rt, const nst_wct_models *m, const nst_wct_params *p,
                       const nst_image *content, const nst_image *const *styles, int nstyles,
                       const double *blend, const nst_image *const *masks, nst_image **out) {
    nst_status st = NST_OK;
    nst_image *c = NULL, *s = NULL, *img = NULL;
    nst_tensor *x = NULL, *nx = NULL, *simg[NST_MAX_STYLES] = {0};
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!out) return nst_fail_null(RTM(rt), "nst_wct_run", "out");
    *out = NULL;
    if (!m) return nst_fail_null(RTM(rt), "nst_wct_run", "models");
    if (!p) return nst_fail_null(RTM(rt), "nst_wct_run", "params");
    if (m->rt != rt)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "nst_wct_run: the models were loaded on another runtime");
    NST_TRY(nst_image_check(content, "nst_wct_run", "content", RTM(rt)));
    if (nstyles >= 1 && !styles) return nst_fail_null(RTM(rt), "nst_wct_run", "styles");
    NST_TRY(check_params(rt, m, p, nstyles, blend));
    for (int k = 0; k < nstyles; k++) {
        char what[32];
        snprintf(what, sizeof what, "styles[%d]", k);
        NST_TRY(nst_image_check(styles[k], "nst_wct_run", what, RTM(rt)));
        if (masks) {
            snprintf(what, sizeof what, "masks[%d]", k);
            NST_TRY(nst_image_check(masks[k], "nst_wct_run", what, RTM(rt)));
        }
    }
    unsigned levels = p->levels ? p->levels : m->levels;
    if (!levels)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "the WCT models hold no level");
    int cw = content->w, ch = content->h;
    if (p->size) nst_image_fit_size(content->w, content->h, p->size, &cw, &ch);
    NST_TRY(nst_image_resize(content, cw, ch, &c, RTM(rt)));
    NST_TRY(upload_image(rt, c, &x));
    int longest = cw > ch ? cw : ch;
    int slong = (int)lround(p->style_scale * longest);
    if (slong < 1) slong = 1;
    for (int k = 0; k < nstyles; k++) {
        int sw, sh;
        nst_image_fit_size(styles[k]->w, styles[k]->h, slong, &sw, &sh);
        NST_TRY(nst_image_resize(styles[k], sw, sh, &s, RTM(rt)));
        NST_TRY(upload_image(rt, s, &simg[k]));
        nst_image_free(s);
        s = NULL;
    }
    int lowest = 1;
    while (!(levels & (1u << (lowest - 1)))) lowest++;
    for (int L = NST_WCT_LEVELS; L >= 1; L--) {
        if (!(levels & (1u << (L - 1)))) continue;
        NST_TRY(run_level(rt, m, L, p, x, simg, nstyles, blend, masks, L == lowest, &nx));
        nst_tensor_free(rt, x);
        x = nx;
        nx = NULL;
    }
    NST_TRY(nst_image_create(cw, ch, &img, RTM(rt)));
    NST_TRY(nst_tensor_download(rt, x, img->data));
    *out = img;
    img = NULL;
fail:
    nst_image_free(c);
    nst_image_free(s);
    nst_image_free(img);
    nst_tensor_free(rt, x);
    nst_tensor_free(rt, nx);
    for (int k = 0; k < NST_MAX_STYLES; k++) nst_tensor_free(rt, simg[k]);
    return st;
}
