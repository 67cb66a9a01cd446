/* util.cl: small element-wise helpers shared by several modules. */

/* y[i] = a * x[i] + b * y[i] */
__kernel void util_axpby(const int n, const float a, __global const float *x, const float b,
                         __global float *y) {
    int i = get_global_id(0);
    if (i < n) y[i] = a * x[i] + b * y[i];
}

/* x[i] = clamp(x[i], lo, hi) */
__kernel void util_clamp(const int n, __global float *x, const float lo, const float hi) {
    int i = get_global_id(0);
    if (i < n) x[i] = clamp(x[i], lo, hi);
}

/* flag[0] = 1 if any x[i] is NaN or Inf (flag must be zeroed first). */
__kernel void util_nonfinite(const int n, __global const float *x, __global int *flag) {
    int i = get_global_id(0);
    if (i < n && !isfinite(x[i])) flag[0] = 1;
}
