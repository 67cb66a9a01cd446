/* ref_temporal.h: the plain-C double reference of the temporal term
 * (src/objective/temporal.h). */
#ifndef NST_REF_TEMPORAL_H
#define NST_REF_TEMPORAL_H

#include <stddef.h>

/* sum_i c_i (x_i - t_i)^2 / D over the D = planes*h*w entries of x, c the
 * mask (h*w, shared by the planes). grad: NULL, or D doubles receiving
 * dL/dx (overwritten). */
double nst_ref_temporal(const double *x, const double *target, const double *mask, int planes,
                        int h, int w, double *grad);

#endif
