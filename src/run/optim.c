/* optim.c: L-BFGS (Nocedal & Wright, algorithm 7.4, with the step rules of
 * torch.optim.LBFGS) and Adam over device vectors; kernels in cl/optim.cl.
 *
 * L-BFGS uses the compact representation of its inverse Hessian (Byrd,
 * Nocedal & Schnabel 1994, section 4):
 *
 *   H = gamma I + [S Y] [ R^-T (D + gamma Y'Y) R^-1   -R^-T ] [ S' ]
 *                       [ -R^-1                         0   ] [ Y' ]
 *
 * with S and Y the kept pairs as columns, oldest first, R the upper triangle
 * of S'Y, D its diagonal and gamma = s.y / y.y of the newest pair. The pairs
 * live on the device as the rows of one matrix W (s and y of each slot side
 * by side, a ring of history + 1 slots: the spare one takes the pair being
 * tested); the host keeps S'Y and Y'Y, one new column per accepted pair, in
 * double. Per step the device does two passes over W: the inner products of
 * its rows with the new gradient and the new y (which give that column and
 * S'g, Y'g, g.g in one read back), and the direction d = -H g as one
 * combination of the rows; the host solves the two small triangular systems
 * in between. Nothing goes back and forth per history entry. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "optim.h"

#define LS_MAX_TRIALS 25 /* evaluations one line search may spend */
#define ARMIJO_C1 1e-4
#define MIN_CURVATURE 1e-10 /* y.s below this: the pair is not kept */
#define MAX_HISTORY 1000    /* the host keeps (history + 1)^2 doubles twice */
#define ROW_ALIGN 32        /* floats: rows of W start on 128-byte boundaries */

/* The row stride of W: an odd multiple of ROW_ALIGN, so that the same column
 * of successive rows does not fall into one cache set. */
static size_t row_stride(size_t n) {
    size_t ld = nst_round_up(n, ROW_ALIGN);
    return (ld / ROW_ALIGN) % 2 ? ld : ld + ROW_ALIGN;
}

struct nst_optim {
    nst_optim_params p;
    size_t n;
    int h;                 /* L-BFGS history length, 0 for Adam */
    nst_tensor *g;         /* gradient at the current x, reshaped like x */
    cl_mem sc;             /* device scalars: inner products, then |g|_1 */
    float *hsc;            /* host copy of the inner products */
    size_t dots_wg;        /* work-group size of optim_dots, 0 until known */
    int interleave;        /* optim_dots: blocks interleaved across work items */
    /* L-BFGS */
    cl_mem g_prev, d, x_prev;
    cl_mem w;              /* history: row 2k is s, row 2k+1 is y of slot k */
    cl_mem coef;           /* the direction's coefficient of each row of w */
    size_t ld;             /* row stride of w in floats */
    int slots;             /* history + 1 */
    int head, count, used; /* free slot; pairs kept, in the slots before head;
                            * slots ever written (rows 0 .. 2 used of w) */
    double *sy, *yy;       /* [slots][slots]: s_i.y_j (i older than j), y_i.y_j */
    double *sg, *yg;       /* s_k.g and y_k.g of each slot for the current g */
    double *work;          /* 3 * history */
    float *cf;             /* host coefficients, 2 slots */
    double gamma;          /* initial Hessian scale s.y / y.y of the newest pair */
    int have_g, iter, converged;
    double loss, gg;       /* at the current x */
    /* Adam */
    cl_mem m, v;
    long t;
    int evals;
};

/* Device scalars: the inner products of up to 2 slots + 1 rows with two
 * vectors, then |g|_1. */
static size_t sc_count(int slots) { return 2 * (2 * (size_t)slots + 1) + 1; }
#define SC_G1(o) (sc_count((o)->slots) - 1)

void nst_optim_defaults(nst_optim_params *p, int kind) {
    memset(p, 0, sizeof *p);
    p->kind = kind;
    p->history = 100;
    p->line_search = 0;
    p->beta1 = 0.9;
    p->beta2 = 0.999;
    p->eps = 1e-8;
    if (kind == NST_OPTIM_ADAM) {
        p->lr = 0.02;
        p->clamp = 1;
    } else {
        p->lr = 1.0;
        p->clamp = 0;
    }
}

static int slots_of(const nst_optim_params *p) {
    return p->kind == NST_OPTIM_LBFGS ? p->history + 1 : 0;
}

size_t nst_optim_memory_bytes(const nst_optim_params *p, size_t n) {
    size_t slots = (size_t)slots_of(p), floats = sc_count((int)slots);
    if (p->kind == NST_OPTIM_LBFGS)
        floats += 4 * n + 2 * slots * row_stride(n) + 2 * slots;
    else
        floats += 3 * n;
    return floats * sizeof(float);
}

static nst_status check_params(nst_runtime *rt, const nst_optim_params *p, size_t n) {
    if (p->kind != NST_OPTIM_LBFGS && p->kind != NST_OPTIM_ADAM)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "optimiser kind %d is neither L-BFGS (%d) "
                        "nor Adam (%d)", p->kind, NST_OPTIM_LBFGS, NST_OPTIM_ADAM);
    if (n == 0 || n > (size_t)INT_MAX)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "optimiser over %zu values: must be 1 to "
                        "%d", n, INT_MAX);
    if (!(p->lr > 0) || !isfinite(p->lr))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "learning rate %g must be positive",
                        p->lr);
    if (p->kind == NST_OPTIM_LBFGS && (p->history < 1 || p->history > MAX_HISTORY))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "L-BFGS history %d must be 1 to %d",
                        p->history, MAX_HISTORY);
    if (p->kind == NST_OPTIM_ADAM &&
        (!(p->beta1 >= 0 && p->beta1 < 1) || !(p->beta2 >= 0 && p->beta2 < 1) || !(p->eps > 0)))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "Adam betas %g, %g must lie in [0,1) and "
                        "eps %g must be positive", p->beta1, p->beta2, p->eps);
    return NST_OK;
}

nst_status nst_optim_create(nst_runtime *rt, const nst_optim_params *p, size_t n,
                            nst_optim **out) {
    nst_status st = check_params(rt, p, n);
    if (st != NST_OK) return st;
    nst_optim *o = calloc(1, sizeof *o);
    if (!o) return nst_fail(RTM(rt), NST_ERR_NOMEM, "optimiser state");
    o->p = *p;
    o->n = n;
    o->h = p->kind == NST_OPTIM_LBFGS ? p->history : 0;
    o->slots = slots_of(p);
    /* GPUs read W best with the work items of a group side by side, CPUs
     * with each streaming its own run; p->dots overrides (for tests) */
    o->interleave = p->dots == NST_OPTIM_DOTS_AUTO ? strcmp(rt->info.type, "CPU") != 0
                                                   : p->dots == NST_OPTIM_DOTS_INTERLEAVED;
    size_t bytes = n * sizeof(float), slots = (size_t)o->slots;
    o->hsc = malloc(sc_count(o->slots) * sizeof(float));
    if (!o->hsc) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "optimiser state");
        goto fail;
    }
    NST_TRY(nst_tensor_create(rt, 1, 1, 1, (int)n, &o->g));
    NST_TRY(nst_buffer_create(rt, sc_count(o->slots) * sizeof(float), &o->sc));
    if (p->kind == NST_OPTIM_LBFGS) {
        o->sy = malloc(slots * slots * sizeof(double));
        o->yy = malloc(slots * slots * sizeof(double));
        o->sg = calloc(slots, sizeof(double));
        o->yg = calloc(slots, sizeof(double));
        o->work = malloc(3 * (size_t)p->history * sizeof(double));
        o->cf = calloc(2 * slots, sizeof(float));
        if (!o->sy || !o->yy || !o->sg || !o->yg || !o->work || !o->cf) {
            st = nst_fail(RTM(rt), NST_ERR_NOMEM, "L-BFGS history of %d", p->history);
            goto fail;
        }
        o->ld = row_stride(n);
        NST_TRY(nst_buffer_create(rt, bytes, &o->g_prev));
        NST_TRY(nst_buffer_create(rt, bytes, &o->d));
        NST_TRY(nst_buffer_create(rt, bytes, &o->x_prev));
        NST_TRY(nst_buffer_create(rt, 2 * slots * o->ld * sizeof(float), &o->w));
        NST_TRY(nst_buffer_create(rt, 2 * slots * sizeof(float), &o->coef));
    } else {
        NST_TRY(nst_buffer_create(rt, bytes, &o->m));
        NST_TRY(nst_buffer_create(rt, bytes, &o->v));
    }
    NST_TRY(nst_optim_reset(rt, o));
    *out = o;
    return NST_OK;
fail:
    nst_optim_free(rt, o);
    return st;
}

void nst_optim_free(nst_runtime *rt, nst_optim *o) {
    if (!o) return;
    /* a coefficient upload may still read o->cf */
    if (o->cf) clFinish(rt->queue);
    nst_tensor_free(rt, o->g);
    nst_buffer_free(rt, o->sc);
    nst_buffer_free(rt, o->g_prev);
    nst_buffer_free(rt, o->d);
    nst_buffer_free(rt, o->x_prev);
    nst_buffer_free(rt, o->w);
    nst_buffer_free(rt, o->coef);
    nst_buffer_free(rt, o->m);
    nst_buffer_free(rt, o->v);
    free(o->hsc);
    free(o->sy);
    free(o->yy);
    free(o->sg);
    free(o->yg);
    free(o->work);
    free(o->cf);
    free(o);
}

static nst_status zero(nst_runtime *rt, cl_mem b, size_t n) {
    nst_status st = NST_OK;
    float z = 0.0f;
    NST_CL(RTM(rt), clEnqueueFillBuffer(rt->queue, b, &z, sizeof z, 0, n * sizeof(float), 0,
                                        NULL, NULL));
fail:
    return st;
}

static nst_status copy(nst_runtime *rt, cl_mem src, cl_mem dst, size_t n) {
    nst_status st = NST_OK;
    NST_CL(RTM(rt), clEnqueueCopyBuffer(rt->queue, src, dst, 0, 0, n * sizeof(float), 0, NULL,
                                        NULL));
fail:
    return st;
}

nst_status nst_optim_reset(nst_runtime *rt, nst_optim *o) {
    nst_status st = NST_OK;
    o->head = o->count = o->used = 0;
    o->gamma = 1.0;
    o->have_g = o->iter = o->converged = 0;
    o->loss = o->gg = 0;
    o->t = 0;
    o->evals = 0;
    if (o->m) NST_TRY(zero(rt, o->m, o->n));
    if (o->v) NST_TRY(zero(rt, o->v, o->n));
fail:
    return st;
}

int nst_optim_evals(const nst_optim *o) { return o->evals; }
int nst_optim_converged(const nst_optim *o) { return o->converged; }

nst_status nst_optim_read_direction(nst_runtime *rt, const nst_optim *o, float *dst) {
    if (!o->d)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "only L-BFGS has a search direction");
    return nst_read_floats(rt, o->d, 0, o->n, dst);
}

/* ---- device work --------------------------------------------------------- */

#define LAUNCH(rt, name, n, nargs, ...)                                                  \
    do {                                                                                 \
        size_t g_ = (n), l_ = nst_wg_1d(rt);                                             \
        NST_TRY(nst_launch((rt), "optim", (name), 1, &g_, &l_, (nargs), __VA_ARGS__));    \
    } while (0)

/* x_prev = x, g_prev = g, x += t d */
static nst_status advance(nst_runtime *rt, nst_optim *o, nst_tensor *x, float t) {
    nst_status st = NST_OK;
    int n = (int)o->n;
    LAUNCH(rt, "optim_advance", o->n, 7, sizeof(int), &n, sizeof(float), &t, sizeof(cl_mem),
           &x->buf, sizeof(cl_mem), &o->d, sizeof(cl_mem), &o->x_prev, sizeof(cl_mem),
           &o->g->buf, sizeof(cl_mem), &o->g_prev);
fail:
    return st;
}

/* x = x_prev + t * d */
static nst_status move(nst_runtime *rt, nst_optim *o, nst_tensor *x, float t) {
    nst_status st = NST_OK;
    int n = (int)o->n;
    LAUNCH(rt, "optim_move", o->n, 5, sizeof(int), &n, sizeof(cl_mem), &o->x_prev,
           sizeof(float), &t, sizeof(cl_mem), &o->d, sizeof(cl_mem), &x->buf);
fail:
    return st;
}

/* The work-group size of optim_dots: a power of two up to 256 within the
 * kernel's limit on this device (its tree sum needs a power of two). */
static nst_status dots_wg(nst_runtime *rt, nst_optim *o) {
    nst_status st = NST_OK;
    if (o->dots_wg) return NST_OK;
    cl_kernel k;
    size_t kwg = 0;
    NST_TRY(nst_kernel_get(rt, "optim", "optim_dots", &k));
    NST_CL(RTM(rt), clGetKernelWorkGroupInfo(k, rt->device, CL_KERNEL_WORK_GROUP_SIZE,
                                             sizeof kwg, &kwg, NULL));
    size_t lim = kwg < rt->info.max_work_group ? kwg : rt->info.max_work_group;
    if (lim > 256) lim = 256;
    o->dots_wg = 1;
    while (o->dots_wg * 2 <= lim) o->dots_wg *= 2;
fail:
    return st;
}

/* Device scalars 2r and 2r+1 := row r of [W rows 0..nw-1; g] times g and
 * (when two) times the row y_row of W. A few long inner products: split
 * along n into enough work-groups to fill the device, then summed. */
static nst_status dots(nst_runtime *rt, nst_optim *o, int nw, int two, size_t y_row) {
    nst_status st = NST_OK;
    NST_TRY(dots_wg(rt, o));
    size_t ls = o->dots_wg, rows = (size_t)nw + 1;
    size_t want = 8 * (size_t)(rt->info.compute_units ? rt->info.compute_units : 1);
    size_t groups = (want + rows - 1) / rows, most = (o->n + 4 * ls - 1) / (4 * ls);
    if (groups > most) groups = most; /* at least 4 elements a work item */
    if (groups > 256) groups = 256;
    if (groups < 1) groups = 1;
    cl_uint n = (cl_uint)o->n, chunk = (cl_uint)nst_round_up((o->n + groups - 1) / groups, 8);
    groups = (o->n + chunk - 1) / chunk;
    cl_mem out = o->sc, w = o->w ? o->w : o->g->buf;
    if (groups > 1)
        NST_TRY(nst_scratch(rt, NST_SCRATCH_SMALL, 2 * rows * groups * sizeof(float), &out));
    cl_ulong ld = o->ld, y_off = (cl_ulong)y_row * o->ld;
    size_t global[2] = {groups * ls, rows}, local[2] = {ls, 1};
    NST_TRY(nst_launch(rt, "optim", "optim_dots", 2, global, local, 11, sizeof(cl_uint), &n,
                       sizeof(cl_uint), &chunk, sizeof(int), &nw, sizeof(cl_ulong), &ld,
                       sizeof(cl_mem), &w, sizeof(cl_mem), &o->g->buf, sizeof(cl_ulong), &y_off,
                       sizeof(int), &two, sizeof(int), &o->interleave, sizeof(cl_mem), &out,
                       2 * ls * sizeof(float), NULL));
    if (groups > 1) {
        int count = 2 * (int)rows, parts = (int)groups;
        LAUNCH(rt, "optim_dots_sum", (size_t)count, 4, sizeof(int), &count, sizeof(int), &parts,
               sizeof(cl_mem), &out, sizeof(cl_mem), &o->sc);
    }
fail:
    return st;
}

/* ---- evaluation -------------------------------------------------------- */

static nst_status bad_gradient(nst_runtime *rt, const nst_optim *o) {
    return nst_fail(RTM(rt), NST_ERR_NUMERIC, "the gradient holds a NaN or Inf at evaluation "
                    "%d; the image is kept at the last finite iterate (lower the learning rate "
                    "or the loss weights)", o->evals);
}

/* Calls f at x; the gradient lands in o->g. A NaN or Inf loss gives
 * NST_ERR_NUMERIC; with check_grad so does a NaN or Inf in the gradient,
 * and o->gg is its squared norm (otherwise the caller reads it later). */
static nst_status evaluate(nst_runtime *rt, nst_optim *o, nst_tensor *x, nst_eval_fn f,
                           void *ctx, double *loss, int check_grad) {
    nst_status st = NST_OK;
    o->g->n = x->n;
    o->g->c = x->c;
    o->g->h = x->h;
    o->g->w = x->w;
    *loss = NAN;
    NST_TRY(f(ctx, rt, x, o->g, loss));
    o->evals++;
    if (!isfinite(*loss))
        return nst_fail(RTM(rt), NST_ERR_NUMERIC, "the loss is %g at evaluation %d; the image "
                        "is kept at the last finite iterate (lower the learning rate or the "
                        "loss weights)", *loss, o->evals);
    if (check_grad) {
        float gg;
        NST_TRY(dots(rt, o, 0, 0, 0));
        NST_TRY(nst_read_floats(rt, o->sc, 0, 1, &gg));
        o->gg = gg;
        if (!isfinite(o->gg)) return bad_gradient(rt, o);
    }
fail:
    return st;
}

/* ---- L-BFGS ------------------------------------------------------------ */

/* The coefficients of d = -H g = -gamma g + sum_k (cs_k s_k + cy_k y_k) in
 * o->cf (rows of W; zero for slots not kept), from S'g, Y'g and the kept
 * S'Y, Y'Y: with a = S'g, b = Y'g, u = R^-1 a and
 * w = R^-T ((D + gamma Y'Y) u - gamma b), cs = -w and cy = gamma u.
 * Returns g.d. */
static double compact_coefficients(nst_optim *o) {
    const int c = o->count, S = o->slots;
    double *u = o->work, *v = o->work + c, *w = o->work + 2 * c, gam = o->gamma;
    int k[MAX_HISTORY];
    for (int j = 0; j < c; j++) k[j] = (o->head - c + j + S) % S; /* oldest first */
#define SY(i, j) o->sy[(size_t)k[i] * S + k[j]]
#define YY(i, j) o->yy[(size_t)k[i] * S + k[j]]
    for (int i = c - 1; i >= 0; i--) { /* R u = a */
        double t = o->sg[k[i]];
        for (int j = i + 1; j < c; j++) t -= SY(i, j) * u[j];
        u[i] = t / SY(i, i);
    }
    for (int i = 0; i < c; i++) {
        double t = 0;
        for (int j = 0; j < c; j++) t += YY(i, j) * u[j];
        v[i] = SY(i, i) * u[i] + gam * (t - o->yg[k[i]]);
    }
    for (int i = 0; i < c; i++) { /* R' w = v */
        double t = v[i];
        for (int j = 0; j < i; j++) t -= SY(j, i) * w[j];
        w[i] = t / SY(i, i);
    }
#undef SY
#undef YY
    memset(o->cf, 0, 2 * (size_t)o->used * sizeof *o->cf);
    double gtd = -gam * o->gg;
    for (int i = 0; i < c; i++) {
        o->cf[2 * k[i]] = (float)-w[i];
        o->cf[2 * k[i] + 1] = (float)(gam * u[i]);
        gtd += -w[i] * o->sg[k[i]] + gam * u[i] * o->yg[k[i]];
    }
    return gtd;
}

/* d = -g with no pairs kept, else from the coefficients in o->cf. */
static nst_status lbfgs_direction(nst_runtime *rt, nst_optim *o) {
    nst_status st = NST_OK;
    int n = (int)o->n, nw = o->count ? 2 * o->used : 0;
    float a = o->count ? (float)-o->gamma : -1.0f;
    cl_ulong ld = o->ld;
    if (nw) /* read by the device after this returns: o->cf stays until the next read back */
        NST_CL(RTM(rt), clEnqueueWriteBuffer(rt->queue, o->coef, CL_FALSE, 0,
                                             (size_t)nw * sizeof(float), o->cf, 0, NULL, NULL));
    LAUNCH(rt, "optim_combine", (o->n + 7) / 8, 8, sizeof(int), &n, sizeof(float), &a, sizeof(cl_mem),
           &o->g->buf, sizeof(int), &nw, sizeof(cl_ulong), &ld, sizeof(cl_mem), &o->w,
           sizeof(cl_mem), &o->coef, sizeof(cl_mem), &o->d);
fail:
    return st;
}

/* After a step: the pair (x - x_prev, g - g_prev) goes into the free slot;
 * one pass over W gives every row's inner products with g and that y, read
 * back at once. The pair is kept when its curvature y.s is positive, adding
 * a column to S'Y and Y'Y; S'g and Y'g are refreshed either way. A NaN or
 * Inf in the gradient gives NST_ERR_NUMERIC and changes nothing. */
static nst_status lbfgs_update(nst_runtime *rt, nst_optim *o, nst_tensor *x) {
    nst_status st = NST_OK;
    const int k = o->head, S = o->slots;
    if (k + 1 > o->used) o->used = k + 1;
    const int nw = 2 * o->used, n = (int)o->n;
    cl_ulong ld = o->ld, s_off = 2 * (cl_ulong)k * o->ld;
    LAUNCH(rt, "optim_pair", o->n, 8, sizeof(int), &n, sizeof(cl_mem), &x->buf, sizeof(cl_mem),
           &o->x_prev, sizeof(cl_mem), &o->g->buf, sizeof(cl_mem), &o->g_prev, sizeof(cl_mem),
           &o->w, sizeof(cl_ulong), &s_off, sizeof(cl_ulong), &ld);
    NST_TRY(dots(rt, o, nw, 1, 2 * (size_t)k + 1));
    const float *r = o->hsc; /* r[2 i]: row i times g, r[2 i + 1]: row i times y */
    NST_TRY(nst_read_floats(rt, o->sc, 0, 2 * ((size_t)nw + 1), o->hsc));
    double gg = r[2 * nw];
    if (!isfinite(gg)) return bad_gradient(rt, o);
    o->gg = gg;
    double ys = r[2 * (2 * k) + 1], yy = r[2 * (2 * k + 1) + 1];
    if (ys > MIN_CURVATURE && isfinite(ys) && yy > 0 && isfinite(yy)) {
        o->head = (k + 1) % S;
        if (o->count < o->h) o->count++;
        for (int j = 0; j < o->count; j++) { /* the kept slots, k the newest */
            int i = (o->head - o->count + j + S) % S;
            o->sy[(size_t)i * S + k] = r[2 * (2 * i) + 1];
            o->yy[(size_t)i * S + k] = o->yy[(size_t)k * S + i] = r[2 * (2 * i + 1) + 1];
        }
        o->gamma = ys / yy;
    }
    for (int i = 0; i < o->used; i++) {
        o->sg[i] = r[2 * (2 * i)];
        o->yg[i] = r[2 * (2 * i + 1)];
    }
fail:
    return st;
}

/* Puts x and its gradient back to the start of the step. */
static nst_status lbfgs_restore(nst_runtime *rt, nst_optim *o, nst_tensor *x, double f0,
                                double gg0) {
    nst_status st = NST_OK;
    NST_TRY(copy(rt, o->x_prev, x->buf, o->n));
    NST_TRY(copy(rt, o->g_prev, o->g->buf, o->n));
    o->loss = f0;
    o->gg = gg0;
fail:
    return st;
}

static nst_status lbfgs_step(nst_runtime *rt, nst_optim *o, nst_tensor *x, nst_eval_fn f,
                             void *ctx, double *loss) {
    nst_status st = NST_OK;
    if (o->converged) {
        *loss = o->loss;
        return NST_OK;
    }
    if (!o->have_g) {
        NST_TRY(evaluate(rt, o, x, f, ctx, &o->loss, 1));
        o->have_g = 1;
    }
    *loss = o->loss;
    if (o->gg == 0) {
        o->converged = 1;
        return NST_OK;
    }
    double gtd = -o->gg;
    if (o->count > 0) {
        gtd = compact_coefficients(o);
        if (!(gtd < 0)) { /* not a descent direction: drop the history */
            o->count = 0;
            gtd = -o->gg;
        }
    }
    NST_TRY(lbfgs_direction(rt, o));
    double t = o->p.lr;
    if (o->count == 0) { /* no curvature known yet: a short first step */
        float g1;
        NST_TRY(nst_sum_abs(rt, o->g->buf, o->n, o->sc, SC_G1(o)));
        NST_TRY(nst_read_floats(rt, o->sc, SC_G1(o), 1, &g1));
        t = o->p.lr * fmin(1.0, 1.0 / g1);
    }
    const double f0 = o->loss, gg0 = o->gg;
    if (!o->p.line_search) {
        NST_TRY(advance(rt, o, x, (float)t));
        st = evaluate(rt, o, x, f, ctx, &o->loss, 0);
        if (st != NST_OK) goto fail_restore;
    } else {
        int accepted = 0, numeric = 0;
        nst_msg why = {{0}};
        for (int trial = 0; trial < LS_MAX_TRIALS && !accepted; trial++) {
            if (trial == 0)
                NST_TRY(advance(rt, o, x, (float)t));
            else
                NST_TRY(move(rt, o, x, (float)t));
            double fx;
            st = evaluate(rt, o, x, f, ctx, &fx, 1);
            if (st == NST_ERR_NUMERIC) { /* too far: a much shorter step */
                numeric = 1;
                why = rt->msg;
                t *= 0.1;
                continue;
            }
            if (st != NST_OK) goto fail_restore;
            numeric = 0;
            if (fx <= f0 + ARMIJO_C1 * t * gtd) {
                accepted = 1;
                o->loss = fx;
                break;
            }
            /* minimiser of the quadratic through f0, gtd and fx, kept in [t/10, t/2] */
            double tq = -gtd * t * t / (2 * (fx - f0 - gtd * t));
            t = fmin(fmax(tq, 0.1 * t), 0.5 * t);
        }
        if (!accepted) {
            NST_TRY(lbfgs_restore(rt, o, x, f0, gg0));
            if (numeric) {
                rt->msg = why;
                return NST_ERR_NUMERIC;
            }
            o->converged = 1; /* no length decreases the loss: as good as it gets */
            return NST_OK;
        }
    }
    st = lbfgs_update(rt, o, x);
    if (st != NST_OK) goto fail_restore;
    o->iter++;
    *loss = o->loss;
    return NST_OK;
fail_restore: {
    nst_msg keep = rt->msg; /* the restore must not hide the cause */
    if (lbfgs_restore(rt, o, x, f0, gg0) == NST_OK) rt->msg = keep;
    return st;
}
fail:
    return st;
}

/* ---- Adam -------------------------------------------------------------- */

static nst_status adam_step(nst_runtime *rt, nst_optim *o, nst_tensor *x, nst_eval_fn f,
                            void *ctx, double *loss) {
    nst_status st = NST_OK;
    NST_TRY(evaluate(rt, o, x, f, ctx, loss, 1));
    o->t++;
    const nst_optim_params *p = &o->p;
    float step = (float)(p->lr / (1.0 - pow(p->beta1, (double)o->t)));
    float rsq = (float)(1.0 / sqrt(1.0 - pow(p->beta2, (double)o->t)));
    float b1 = (float)p->beta1, b2 = (float)p->beta2, eps = (float)p->eps;
    int n = (int)o->n, clamp01 = p->clamp != 0;
    LAUNCH(rt, "optim_adam", o->n, 11, sizeof(int), &n, sizeof(cl_mem), &x->buf, sizeof(cl_mem),
           &o->g->buf, sizeof(cl_mem), &o->m, sizeof(cl_mem), &o->v, sizeof(float), &b1,
           sizeof(float), &b2, sizeof(float), &step, sizeof(float), &rsq, sizeof(float), &eps,
           sizeof(int), &clamp01);
fail:
    return st;
}

nst_status nst_optim_step(nst_runtime *rt, nst_optim *o, nst_tensor *x, nst_eval_fn f,
                          void *ctx, double *loss) {
    if (x->count != o->n)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "optimiser made for %zu values was given "
                        "a tensor of %zu", o->n, x->count);
    double dummy;
    if (!loss) loss = &dummy;
    return o->p.kind == NST_OPTIM_LBFGS ? lbfgs_step(rt, o, x, f, ctx, loss)
                                        : adam_step(rt, o, x, f, ctx, loss);
}

/* ---- iterate averaging -------------------------------------------------- */

static nst_status ema_check(nst_runtime *rt, const char *what, const nst_tensor *a,
                            const nst_tensor *b, int step) {
    if (a->n != b->n || a->c != b->c || a->h != b->h || a->w != b->w)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: tensors %dx%dx%dx%d and %dx%dx%dx%d "
                        "differ in shape", what, a->n, a->c, a->h, a->w, b->n, b->c, b->h,
                        b->w);
    if (a->count > (size_t)INT_MAX)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "%s: %zu values exceed the kernel's int "
                        "indexing", what, a->count);
    if (step < 1)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: step %d; steps count updates from "
                        "1", what, step);
    return NST_OK;
}

nst_status nst_ema_update(nst_runtime *rt, nst_tensor *avg, const nst_tensor *x, float decay,
                          int step) {
    nst_status st = ema_check(rt, "iterate average", avg, x, step);
    if (st != NST_OK) return st;
    if (!(decay >= 0.0f && decay < 1.0f))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "iterate average: decay %g must be in "
                        "[0, 1)", (double)decay);
    if (step == 1 || decay == 0.0f) return nst_tensor_copy(rt, avg, x);
    /* w_t = (1 - d) / (1 - d^t), in double: d^t is close to 1 for d near 1 */
    double d = decay, w = (1.0 - d) / -expm1((double)step * log(d));
    float wf = (float)w;
    int n = (int)avg->count;
    size_t wg = nst_wg_1d(rt), global = nst_round_up(avg->count, wg);
    return nst_launch(rt, "optim", "optim_ema", 1, &global, &wg, 4, sizeof(int), &n,
                      sizeof(cl_mem), &avg->buf, sizeof(cl_mem), &x->buf, sizeof(float), &wf);
}

nst_status nst_ema_read(nst_runtime *rt, nst_tensor *dst, const nst_tensor *avg, int step) {
    nst_status st = ema_check(rt, "iterate average read", dst, avg, step);
    if (st != NST_OK) return st;
    return nst_tensor_copy(rt, dst, avg);
}
