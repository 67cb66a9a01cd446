/* optim.c: L-BFGS (Nocedal & Wright, algorithm 7.4, with the step rules of
 * torch.optim.LBFGS) and Adam over device vectors; kernels in cl/optim.cl,
 * dot products, scaling and axpy through CLBlast. */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "loss.h"
#include "optim.h"

#define LS_MAX_TRIALS 25 /* evaluations one line search may spend */
#define ARMIJO_C1 1e-4
#define MIN_CURVATURE 1e-10 /* y.s below this: the pair is not kept */

struct nst_optim {
    nst_optim_params p;
    size_t n;
    int h;                 /* L-BFGS history length, 0 for Adam */
    nst_tensor *g;         /* gradient at the current x, reshaped like x */
    cl_mem sc;             /* device scalars, see the SC_ slots */
    /* L-BFGS */
    cl_mem g_prev, d, x_prev;
    cl_mem *s, *y;         /* ring of history pairs, p.history each */
    double *rho;           /* 1 / (y_k . s_k) */
    double gamma;          /* initial Hessian scale s.y / y.y of the newest pair */
    int head, count;       /* next slot to write, pairs kept */
    int have_g, iter, converged;
    double loss, gg;       /* at the current x */
    /* Adam */
    cl_mem m, v;
    long t;
    int evals;
};

/* Device scalar slots: [0,h) s_i.q, [h,2h) y_i.r, then these. */
#define SC_GTD(o) (2 * (o)->h)
#define SC_YS(o) (2 * (o)->h + 1)
#define SC_YY(o) (2 * (o)->h + 2)
#define SC_GG(o) (2 * (o)->h + 3)
#define SC_G1(o) (2 * (o)->h + 4)
#define SC_COUNT(h) (2 * (size_t)(h) + 8)

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

static int hist(const nst_optim_params *p) { return p->kind == NST_OPTIM_LBFGS ? p->history : 0; }

size_t nst_optim_memory_bytes(const nst_optim_params *p, size_t n) {
    size_t vecs = p->kind == NST_OPTIM_LBFGS ? 4 + 2 * (size_t)p->history : 3;
    return (vecs * n + SC_COUNT(hist(p))) * sizeof(float);
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
    if (p->kind == NST_OPTIM_LBFGS && (p->history < 1 || p->history > 100000))
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "L-BFGS history %d must be 1 to 100000",
                        p->history);
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
    o->h = hist(p);
    size_t bytes = n * sizeof(float);
    NST_TRY(nst_tensor_create(rt, 1, 1, 1, (int)n, &o->g));
    NST_TRY(nst_buffer_create(rt, SC_COUNT(hist(p)) * sizeof(float), &o->sc));
    if (p->kind == NST_OPTIM_LBFGS) {
        int h = p->history;
        o->s = calloc((size_t)h, sizeof *o->s);
        o->y = calloc((size_t)h, sizeof *o->y);
        o->rho = calloc((size_t)h, sizeof *o->rho);
        if (!o->s || !o->y || !o->rho) {
            st = nst_fail(RTM(rt), NST_ERR_NOMEM, "L-BFGS history of %d", h);
            goto fail;
        }
        NST_TRY(nst_buffer_create(rt, bytes, &o->g_prev));
        NST_TRY(nst_buffer_create(rt, bytes, &o->d));
        NST_TRY(nst_buffer_create(rt, bytes, &o->x_prev));
        for (int i = 0; i < h; i++) {
            NST_TRY(nst_buffer_create(rt, bytes, &o->s[i]));
            NST_TRY(nst_buffer_create(rt, bytes, &o->y[i]));
        }
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
    nst_tensor_free(rt, o->g);
    nst_buffer_free(rt, o->sc);
    nst_buffer_free(rt, o->g_prev);
    nst_buffer_free(rt, o->d);
    nst_buffer_free(rt, o->x_prev);
    for (int i = 0; o->s && i < o->h; i++) nst_buffer_free(rt, o->s[i]);
    for (int i = 0; o->y && i < o->h; i++) nst_buffer_free(rt, o->y[i]);
    nst_buffer_free(rt, o->m);
    nst_buffer_free(rt, o->v);
    free(o->s);
    free(o->y);
    free(o->rho);
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
    o->head = o->count = 0;
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

/* ---- element-wise launches --------------------------------------------- */

#define LAUNCH(rt, name, n, nargs, ...)                                                  \
    do {                                                                                 \
        size_t g_ = (n), l_ = nst_wg_1d(rt);                                             \
        NST_TRY(nst_launch((rt), "optim", (name), 1, &g_, &l_, (nargs), __VA_ARGS__));    \
    } while (0)

static nst_status scale_copy(nst_runtime *rt, nst_optim *o, float a, cl_mem x, cl_mem y) {
    nst_status st = NST_OK;
    int n = (int)o->n;
    LAUNCH(rt, "optim_scale_copy", o->n, 4, sizeof(int), &n, sizeof(float), &a, sizeof(cl_mem),
           &x, sizeof(cl_mem), &y);
fail:
    return st;
}

static nst_status sub(nst_runtime *rt, nst_optim *o, cl_mem a, cl_mem b, cl_mem out) {
    nst_status st = NST_OK;
    int n = (int)o->n;
    LAUNCH(rt, "optim_sub", o->n, 4, sizeof(int), &n, sizeof(cl_mem), &a, sizeof(cl_mem), &b,
           sizeof(cl_mem), &out);
fail:
    return st;
}

/* y += (ca * sc[ia] + cb * sc[ib]) * x */
static nst_status axpy_sc(nst_runtime *rt, nst_optim *o, int ia, float ca, int ib, float cb,
                          cl_mem x, cl_mem y) {
    nst_status st = NST_OK;
    int n = (int)o->n;
    LAUNCH(rt, "optim_axpy_sc", o->n, 8, sizeof(int), &n, sizeof(cl_mem), &o->sc, sizeof(int),
           &ia, sizeof(float), &ca, sizeof(int), &ib, sizeof(float), &cb, sizeof(cl_mem), &x,
           sizeof(cl_mem), &y);
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

/* Reads `count` device scalars starting at slot into host doubles. */
static nst_status read_sc(nst_runtime *rt, nst_optim *o, int slot, int count, double *dst) {
    float tmp[4];
    nst_status st = nst_read_floats(rt, o->sc, (size_t)slot, (size_t)count, tmp);
    for (int i = 0; st == NST_OK && i < count; i++) dst[i] = tmp[i];
    return st;
}

/* ---- evaluation -------------------------------------------------------- */

/* Calls f at x; the gradient lands in o->g, its squared norm in o->gg. A NaN
 * or Inf loss or gradient gives NST_ERR_NUMERIC. */
static nst_status evaluate(nst_runtime *rt, nst_optim *o, nst_tensor *x, nst_eval_fn f,
                           void *ctx, double *loss) {
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
    NST_TRY(nst_dot(rt, o->n, o->g->buf, 0, o->g->buf, 0, o->sc, (size_t)SC_GG(o)));
    NST_TRY(read_sc(rt, o, SC_GG(o), 1, &o->gg));
    if (!isfinite(o->gg))
        return nst_fail(RTM(rt), NST_ERR_NUMERIC, "the gradient holds a NaN or Inf at evaluation "
                        "%d; the image is kept at the last finite iterate (lower the learning "
                        "rate or the loss weights)", o->evals);
fail:
    return st;
}

/* ---- L-BFGS ------------------------------------------------------------ */

/* d = -H g by the two-loop recursion over the kept pairs, newest first. The
 * coefficients alpha_i = rho_i s_i.q and beta_i = rho_i y_i.r stay on the
 * device (slots i and h+i). */
static nst_status lbfgs_direction(nst_runtime *rt, nst_optim *o) {
    nst_status st = NST_OK;
    int h = o->p.history;
    NST_TRY(scale_copy(rt, o, -1.0f, o->g->buf, o->d));
    if (o->count == 0) return NST_OK;
    for (int k = 0; k < o->count; k++) {
        int i = (o->head - 1 - k + h) % h;
        NST_TRY(nst_dot(rt, o->n, o->s[i], 0, o->d, 0, o->sc, (size_t)i));
        NST_TRY(axpy_sc(rt, o, i, (float)-o->rho[i], i, 0.0f, o->y[i], o->d));
    }
    NST_TRY(nst_scal(rt, o->n, (float)o->gamma, o->d, 0));
    for (int k = o->count - 1; k >= 0; k--) {
        int i = (o->head - 1 - k + h) % h;
        NST_TRY(nst_dot(rt, o->n, o->y[i], 0, o->d, 0, o->sc, (size_t)(h + i)));
        NST_TRY(axpy_sc(rt, o, i, (float)o->rho[i], h + i, (float)-o->rho[i], o->s[i], o->d));
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
        NST_TRY(evaluate(rt, o, x, f, ctx, &o->loss));
        o->have_g = 1;
    }
    *loss = o->loss;
    if (o->gg == 0) {
        o->converged = 1;
        return NST_OK;
    }
    NST_TRY(lbfgs_direction(rt, o));
    double gtd;
    NST_TRY(nst_dot(rt, o->n, o->g->buf, 0, o->d, 0, o->sc, (size_t)SC_GTD(o)));
    NST_TRY(read_sc(rt, o, SC_GTD(o), 1, &gtd));
    if (!(gtd < 0)) { /* not a descent direction: drop the history */
        o->count = 0;
        NST_TRY(scale_copy(rt, o, -1.0f, o->g->buf, o->d));
        gtd = -o->gg;
    }
    double t = o->p.lr;
    if (o->count == 0) { /* no curvature known yet: a short first step */
        double g1;
        NST_TRY(nst_sum_abs(rt, o->g->buf, o->n, o->sc, (size_t)SC_G1(o)));
        NST_TRY(read_sc(rt, o, SC_G1(o), 1, &g1));
        t = o->p.lr * fmin(1.0, 1.0 / g1);
    }
    const double f0 = o->loss, gg0 = o->gg;
    NST_TRY(copy(rt, x->buf, o->x_prev, o->n));
    NST_TRY(copy(rt, o->g->buf, o->g_prev, o->n));
    if (!o->p.line_search) {
        NST_TRY(move(rt, o, x, (float)t));
        st = evaluate(rt, o, x, f, ctx, &o->loss);
        if (st != NST_OK) {
            nst_msg keep = rt->msg; /* the restore must not hide the cause */
            if (lbfgs_restore(rt, o, x, f0, gg0) == NST_OK) rt->msg = keep;
            return st;
        }
    } else {
        int accepted = 0, numeric = 0;
        nst_msg why = {{0}};
        for (int trial = 0; trial < LS_MAX_TRIALS && !accepted; trial++) {
            NST_TRY(move(rt, o, x, (float)t));
            double fx;
            st = evaluate(rt, o, x, f, ctx, &fx);
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
    /* the new pair: s = x - x_prev, y = g - g_prev */
    {
        int slot = o->head;
        double sy[2];
        NST_TRY(sub(rt, o, x->buf, o->x_prev, o->s[slot]));
        NST_TRY(sub(rt, o, o->g->buf, o->g_prev, o->y[slot]));
        NST_TRY(nst_dot(rt, o->n, o->y[slot], 0, o->s[slot], 0, o->sc, (size_t)SC_YS(o)));
        NST_TRY(nst_dot(rt, o->n, o->y[slot], 0, o->y[slot], 0, o->sc, (size_t)SC_YY(o)));
        NST_TRY(read_sc(rt, o, SC_YS(o), 2, sy));
        if (sy[0] > MIN_CURVATURE && isfinite(sy[0]) && sy[1] > 0 && isfinite(sy[1])) {
            o->rho[slot] = 1.0 / sy[0];
            o->gamma = sy[0] / sy[1];
            o->head = (o->head + 1) % o->p.history;
            if (o->count < o->p.history) o->count++;
        }
    }
    o->iter++;
    *loss = o->loss;
    return NST_OK;
fail_restore: {
    nst_msg keep = rt->msg;
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
    NST_TRY(evaluate(rt, o, x, f, ctx, loss));
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
