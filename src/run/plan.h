/* plan.h: the memory plan of a run (plan.c; the public nst_transfer_plan):
 * the device bytes of the model, the objective and the optimiser at the
 * run's sizes, and the decision between the whole image, tiles and a
 * refusal. */
#ifndef NST_PLAN_H
#define NST_PLAN_H

#include "objective.h"

/* The plan of nst_transfer_plan for the objective o of p (nst_objective_create),
 * built from the weights w. */
nst_status nst_plan_compute(nst_runtime *rt, const nst_params *p, const nst_objective *o,
                            const nst_weights *w, int content_w, int content_h,
                            const int *style_wh, int nstyles, nst_plan *out);

#endif
