/* act.cl: element-wise layers: ReLU forward and backward, and the input
 * normalisation (x - mean[c]) / std[c] of a [3,H,W] image (channels reversed
 * for a B, G, R network) and its backward. */

/* y = max(x, 0) */
__kernel void act_relu_forward(const int n, __global const float *x, __global float *y) {
    const int i = get_global_id(0);
    if (i < n) y[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

/* dx = dy where y > 0, else 0 (y is the ReLU's output); dx may be dy. */
__kernel void act_relu_backward(const int n, __global const float *y, __global const float *dy,
                                __global float *dx) {
    const int i = get_global_id(0);
    if (i < n) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

/* y[c][p] = (x[c'][p] - m[c]) / s[c] over a [3, HW] image, c' = 2 - c when bgr
 * (the network takes B, G, R), else c. */
__kernel void act_normalize_forward(const int HW, const int bgr, const float m0, const float m1,
                                    const float m2, const float s0, const float s1,
                                    const float s2, __global const float *x,
                                    __global float *y) {
    const int i = get_global_id(0);
    if (i >= 3 * HW) return;
    const int c = i / HW;
    const float m = c == 0 ? m0 : (c == 1 ? m1 : m2);
    const float s = c == 0 ? s0 : (c == 1 ? s1 : s2);
    y[i] = (x[bgr ? (2 - c) * HW + (i - c * HW) : i] - m) / s;
}

/* dx[c][p] = dy[c'][p] / s[c'], c' as above; overwrites dx. */
__kernel void act_normalize_backward(const int HW, const int bgr, const float s0,
                                     const float s1, const float s2, __global const float *dy,
                                     __global float *dx) {
    const int i = get_global_id(0);
    if (i >= 3 * HW) return;
    const int c = i / HW, k = bgr ? 2 - c : c;
    dx[i] = dy[k * HW + (i - c * HW)] / (k == 0 ? s0 : (k == 1 ? s1 : s2));
}
