/* ref_temporal.c: the temporal term in double precision, loop by loop. */
#include "ref_temporal.h"

double nst_ref_temporal(const double *x, const double *target, const double *mask, int planes,
                        int h, int w, double *grad) {
    size_t hw = (size_t)h * w, n = (size_t)planes * hw;
    double s = 0;
    for (int p = 0; p < planes; p++)
        for (size_t i = 0; i < hw; i++) {
            size_t k = (size_t)p * hw + i;
            double d = x[k] - target[k];
            s += mask[i] * d * d;
            if (grad) grad[k] = 2 * mask[i] * d / n;
        }
    return s / n;
}
