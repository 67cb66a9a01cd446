/* loss.cl: the content, style and total-variation losses and the device
 * reductions behind them.
 *
 * Every reducing kernel runs as `groups` work-groups of a power-of-two size:
 * each work-item sums its grid-strided elements in order, the work-group sums
 * those by a tree in local memory and writes one partial; loss_reduce_final
 * then sums the partials the same way in a single work-group. No float
 * atomics, so a given device and size always gives the same bits. */

/* wg_sum (common.cl) is the tree sum of every reducing kernel. */

/* partial[group] = sum over the group's elements of x^2 (mode 0) or |x|
 * (mode 1). */
__kernel void loss_reduce_partial(const int n, __global const float *x, const int mode,
                                  __global float *partial, __local float *scratch) {
    float acc = 0.0f;
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        float v = x[i];
        acc += mode ? fabs(v) : v * v;
    }
    float s = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = s;
}

/* out[slot] = (sum of partial[0..nparts)) / denom; one work-group. */
__kernel void loss_reduce_final(const int nparts, __global const float *partial,
                                __global float *out, const int slot, const float denom,
                                __local float *scratch) {
    float acc = 0.0f;
    for (int i = get_local_id(0); i < nparts; i += get_local_size(0)) acc += partial[i];
    float s = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) out[slot] = s / denom;
}

/* Content: d = f - p; partial sums of d^2; df += gscale * d when has_grad
 * (gscale = 2 * weight / ||P||^2). */
__kernel void loss_content(const int n, __global const float *f, __global const float *p,
                           const int has_grad, const float gscale, __global float *df,
                           __global float *partial, __local float *scratch) {
    float acc = 0.0f;
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        float d = f[i] - p[i];
        acc += d * d;
        if (has_grad) df[i] += gscale * d;
    }
    float s = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = s;
}

/* Style: g := g - a in place (the Gram difference the gradient GEMM uses);
 * partial sums of (g - a)^2. */
__kernel void loss_style_diff(const int n, __global float *g, __global const float *a,
                              __global float *partial, __local float *scratch) {
    float acc = 0.0f;
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        float d = g[i] - a[i];
        g[i] = d;
        acc += d * d;
    }
    float s = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = s;
}

/* Total variation over `planes` planes of h x w: partial sums of the forward
 * differences squared (zero beyond the border) and, when has_grad,
 * dx += gscale * d/dx (gscale = weight / (planes*h*w)). */
__kernel void loss_tv(const int n, const int h, const int w, __global const float *x,
                      const int has_grad, const float gscale, __global float *dx,
                      __global float *partial, __local float *scratch) {
    float acc = 0.0f;
    const int hw = h * w;
    for (int i = get_global_id(0); i < n; i += get_global_size(0)) {
        const int r = i % hw, row = r / w, col = r % w;
        const float v = x[i];
        float g = 0.0f;
        if (row + 1 < h) {
            float d = x[i + w] - v;
            acc += d * d;
            g -= d;
        }
        if (col + 1 < w) {
            float d = x[i + 1] - v;
            acc += d * d;
            g -= d;
        }
        if (row > 0) g += v - x[i - w];
        if (col > 0) g += v - x[i - 1];
        if (has_grad) dx[i] += gscale * 2.0f * g;
    }
    float s = wg_sum(scratch, acc);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = s;
}

/* ---- guided (masked) Gram matrices ------------------------------------- */

/* out[c*m + p] = x[c*m + p] * mask[p] * r over n = C*m floats, with
 * r = 1/sqrt(s[slot]) when s[slot] > 0 and 0 otherwise (an empty mask).
 * out may be x (each element is read once, then written). */
__kernel void loss_mask_mul(const int n, const int m, __global const float *x,
                            __global const float *mask, __global const float *s,
                            const int slot, __global float *out) {
    int i = get_global_id(0);
    if (i >= n) return;
    float sv = s[slot];
    float r = sv > 0.0f ? 1.0f / sqrt(sv) : 0.0f;
    out[i] = x[i] * (mask[i % m] * r);
}

/* dst[dh][dw] = mean of the 2x2 block src[2i..2i+1][2j..2j+1] (src is sh x
 * sw, dh = sh/2 and dw = sw/2: an odd last row or column is dropped, as 2x2
 * pooling with stride 2 does). */
__kernel void loss_mask_down(const int dh, const int dw, __global const float *src,
                             const int sw, __global float *dst) {
    int j = get_global_id(0), i = get_global_id(1);
    if (i >= dh || j >= dw) return;
    __global const float *r0 = src + (2 * i) * sw + 2 * j;
    __global const float *r1 = r0 + sw;
    dst[i * dw + j] = 0.25f * ((r0[0] + r0[1]) + (r1[0] + r1[1]));
}

/* g[i] = sum over parts of partial[p][i] + beta * g[i]: the split-K Gram's
 * partial products, summed in a fixed order (deterministic). */
__kernel void loss_gram_sum(const int n, const int parts, __global const float *partial,
                            const float beta, __global float *g) {
    int i = get_global_id(0);
    if (i >= n) return;
    float acc = 0.0f;
    for (int p = 0; p < parts; p++) acc += partial[p * n + i];
    g[i] = beta == 0.0f ? acc : acc + beta * g[i];
}
