/* wct.cl: the element-wise steps of the whitening and colouring transform
 * (src/run/wct.c). Features are [C, N] row-major (N positions); b is a
 * region's 0/1 weight per position (used when has_b != 0, else 1). 2-D
 * launches: (position n, channel c). */

/* g[c][n] = (x[c][n] - mu[c]) * b[n]: centred (and masked) features. */
__kernel void wct_center(const int C, const int N, const int has_b, __global const float *x,
                         __global const float *mu, __global const float *b,
                         __global float *g) {
    const int n = get_global_id(0), c = get_global_id(1);
    if (n >= N || c >= C) return;
    const int idx = c * N + n;
    const float v = x[idx] - mu[c];
    g[idx] = has_b ? v * b[n] : v;
}

/* acc[c][n] += (y[c][n] + mu[c]) * b[n]: a region's coloured features with
 * the painting's mean. */
__kernel void wct_accumulate(const int C, const int N, const int has_b, __global const float *y,
                             __global const float *mu, __global const float *b,
                             __global float *acc) {
    const int n = get_global_id(0), c = get_global_id(1);
    if (n >= N || c >= C) return;
    const int idx = c * N + n;
    const float v = y[idx] + mu[c];
    acc[idx] += has_b ? v * b[n] : v;
}

/* out = alpha * acc + (1 - alpha) * x where u[n] == 0 (a covered position),
 * x where u[n] != 0 (has_u; no region covers it). out may be acc. */
__kernel void wct_mix(const int C, const int N, const float alpha, const int has_u,
                      __global const float *acc, __global const float *x,
                      __global const float *u, __global float *out) {
    const int n = get_global_id(0), c = get_global_id(1);
    if (n >= N || c >= C) return;
    const int idx = c * N + n;
    const float v = alpha * acc[idx] + (1.0f - alpha) * x[idx];
    out[idx] = (has_u && u[n] != 0.0f) ? x[idx] : v;
}

/* y [C,OH,OW] = the top-left OH x OW of x [C,H,W], clamped to [lo, hi]
 * when clamp != 0. 2-D launch: (column, row over all channels) of y. */
__kernel void wct_crop(const int C, const int H, const int W, const int OH, const int OW,
                       const int clamp, const float lo, const float hi,
                       __global const float *x, __global float *y) {
    const int w = get_global_id(0), r = get_global_id(1);
    if (w >= OW || r >= C * OH) return;
    const int c = r / OH, h = r - c * OH;
    const float v = x[(c * H + h) * W + w];
    y[r * OW + w] = clamp ? fmin(fmax(v, lo), hi) : v;
}
