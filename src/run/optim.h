/* optim.h: L-BFGS and Adam over a device vector (the image being optimised).
 *
 * All optimiser state (gradient, L-BFGS history s_k/y_k, Adam moments) lives
 * on the device; per iteration the host reads back only the loss (from the
 * callback) and one batch of inner products. L-BFGS computes its direction
 * by the compact representation (two passes over the history and a small
 * solve on the host), so a step costs about the same at any history length.
 *
 * The optimiser owns its buffers; the caller owns x and the callback context.
 * One nst_optim serves vectors of exactly the n floats it was created for. */
#ifndef NST_OPTIM_H
#define NST_OPTIM_H

#include "nst_int.h"

enum { NST_OPTIM_LBFGS = 0, NST_OPTIM_ADAM = 1 };

/* Evaluates the objective at x: OVERWRITES grad (shaped like x) with the
 * gradient and stores the loss in *loss. A status other than NST_OK stops the
 * step and is returned as is (the callback leaves its message in rt). */
typedef nst_status (*nst_eval_fn)(void *ctx, nst_runtime *rt, const nst_tensor *x,
                                  nst_tensor *grad, double *loss);

typedef struct nst_optim_params {
    int kind;        /* NST_OPTIM_LBFGS or NST_OPTIM_ADAM */
    int history;     /* L-BFGS: pairs (s_k, y_k) kept; 1 to 1000 */
    int line_search; /* L-BFGS: 1 = backtracking Armijo search, 0 = fixed steps */
    double lr;       /* L-BFGS: step length (1); Adam: learning rate */
    double beta1, beta2, eps; /* Adam */
    int clamp;       /* Adam: clamp x to [0,1] after each step (L-BFGS ignores it) */
    int dots;        /* L-BFGS: how the history's inner products read it:
                        NST_OPTIM_DOTS_AUTO (by device type), _CONTIGUOUS, _INTERLEAVED */
} nst_optim_params;

enum { NST_OPTIM_DOTS_AUTO = 0, NST_OPTIM_DOTS_CONTIGUOUS, NST_OPTIM_DOTS_INTERLEAVED };

/* L-BFGS: history 100, lr 1, no line search. Adam: lr 0.02, betas 0.9 and
 * 0.999, eps 1e-8, clamp on. */
void nst_optim_defaults(nst_optim_params *p, int kind);

typedef struct nst_optim nst_optim;

nst_status nst_optim_create(nst_runtime *rt, const nst_optim_params *p, size_t n,
                            nst_optim **out);
/* One iteration, updating x in place (x->count must be n).
 * L-BFGS: evaluates at x first if it has no gradient yet (first step, after a
 * reset), then moves along the quasi-Newton direction: without line search by
 * lr (the first step, and any step made with an empty history, by lr *
 * min(1, 1/|g|_1), as torch.optim.LBFGS), with it by the first length from lr
 * down (halving or less) that passes the Armijo test; *loss is the loss at the
 * new x. Adam: evaluates at x and updates x; *loss is the loss at x before
 * the update.
 * A NaN or Inf loss or gradient returns NST_ERR_NUMERIC with x left at the
 * last finite iterate. When L-BFGS can make no progress (zero gradient, or no
 * step length decreases the loss) x is left as is, nst_optim_converged turns
 * 1 and later steps return at once until a reset.
 * L-BFGS keeps the gradient of its last evaluation: change x between steps
 * only after nst_optim_reset. */
nst_status nst_optim_step(nst_runtime *rt, nst_optim *o, nst_tensor *x, nst_eval_fn f,
                          void *ctx, double *loss);
/* Objective evaluations since creation or the last reset. */
int nst_optim_evals(const nst_optim *o);
/* 1 once L-BFGS has stopped making progress (see nst_optim_step). */
int nst_optim_converged(const nst_optim *o);
/* Forgets history, moments and the step count: the next step starts afresh. */
nst_status nst_optim_reset(nst_runtime *rt, nst_optim *o);
/* Reads the direction of the last L-BFGS step (n floats) into dst: the step
 * moved x by a multiple of it. For tests and diagnostics. */
nst_status nst_optim_read_direction(nst_runtime *rt, const nst_optim *o, float *dst);
/* Device bytes nst_optim_create allocates for these parameters and n. */
size_t nst_optim_memory_bytes(const nst_optim_params *p, size_t n);
void nst_optim_free(nst_runtime *rt, nst_optim *o);

/* ---- iterate averaging -------------------------------------------------- */
/* An exponential moving average of the iterates x_1, x_2, ... with
 * zero-debiasing, as crowsonkb's style-transfer averages its Adam iterates
 * against last-iteration noise:
 *
 *   u_t = decay * u_{t-1} + (1 - decay) * x_t,  u_0 = 0
 *   avg_t = u_t / (1 - decay^t)
 *
 * `avg` holds avg_t itself (already corrected), updated by the equivalent
 * recurrence avg_t = avg_{t-1} + w_t (x_t - avg_{t-1}) with
 * w_t = (1 - decay) / (1 - decay^t), so w_1 = 1: the first update copies x
 * (whatever avg held) and later ones are never biased toward zero. The
 * caller owns both tensors; no state besides avg and the step count. */

/* avg := avg_step given avg_{step-1} and x = x_step. step counts updates
 * from 1 (step 1 starts a new average); decay in [0,1) (0: avg = x). avg and
 * x have the same shape. */
nst_status nst_ema_update(nst_runtime *rt, nst_tensor *avg, const nst_tensor *x, float decay,
                          int step);
/* dst := the corrected average held in avg (a copy; same shape). step is the
 * number of updates made, which must be at least 1. */
nst_status nst_ema_read(nst_runtime *rt, nst_tensor *dst, const nst_tensor *avg, int step);

#endif
