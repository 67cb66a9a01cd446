/* optim.cl: element-wise pieces of the optimisers (src/optim.c). The L-BFGS
 * two-loop recursion reads its coefficients from device scalars, so it runs
 * without a round trip to the host. */

/* y = a * x */
__kernel void optim_scale_copy(const int n, const float a, __global const float *x,
                               __global float *y) {
    int i = get_global_id(0);
    if (i < n) y[i] = a * x[i];
}

/* out = a - b */
__kernel void optim_sub(const int n, __global const float *a, __global const float *b,
                        __global float *out) {
    int i = get_global_id(0);
    if (i < n) out[i] = a[i] - b[i];
}

/* y += (ca * sc[ia] + cb * sc[ib]) * x */
__kernel void optim_axpy_sc(const int n, __global const float *sc, const int ia, const float ca,
                            const int ib, const float cb, __global const float *x,
                            __global float *y) {
    int i = get_global_id(0);
    if (i < n) y[i] += (ca * sc[ia] + cb * sc[ib]) * x[i];
}

/* x = x0 + t * d */
__kernel void optim_move(const int n, __global const float *x0, const float t,
                         __global const float *d, __global float *x) {
    int i = get_global_id(0);
    if (i < n) x[i] = x0[i] + t * d[i];
}

/* One Adam step as torch.optim.Adam: step = lr / (1 - beta1^t), rsq =
 * 1 / sqrt(1 - beta2^t); x -= step * m / (sqrt(v) * rsq + eps); then x is
 * clamped to [0,1] when clamp is set. */
__kernel void optim_adam(const int n, __global float *x, __global const float *g,
                         __global float *m, __global float *v, const float beta1,
                         const float beta2, const float step, const float rsq, const float eps,
                         const int clamp01) {
    int i = get_global_id(0);
    if (i >= n) return;
    float gi = g[i];
    float mi = beta1 * m[i] + (1.0f - beta1) * gi;
    float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    float xi = x[i] - step * mi / (sqrt(vi) * rsq + eps);
    x[i] = clamp01 ? clamp(xi, 0.0f, 1.0f) : xi;
}

/* Iterate averaging: avg += w * (x - avg), w = (1 - decay) / (1 - decay^t). */
__kernel void optim_ema(const int n, __global float *avg, __global const float *x,
                        const float w) {
    int i = get_global_id(0);
    if (i < n) avg[i] += w * (x[i] - avg[i]);
}
