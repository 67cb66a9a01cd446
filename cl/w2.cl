/* w2.cl: the small kernels of the Wasserstein-2 style term
 * (src/objective/term_w2.c); its matrix products go through the GEMM module.
 * C x C matrices are row-major; a feature map is C rows of m positions.
 * Reductions run in a fixed order (no atomics): the same device and sizes
 * give the same bits. */

/* out[r] = scale * sum over p of x[r*m + p] (acc 0) or out[r] += that
 * (acc 1); one work-group per row, local size a power of two. */
__kernel void w2_rowsum(const int rows, const int m, __global const float *x,
                        __global float *out, const int acc, const float scale,
                        __local float *s) {
    const int r = get_group_id(0), lid = get_local_id(0), n = get_local_size(0);
    if (r >= rows) return;
    float v = 0.0f;
    for (int p = lid; p < m; p += n) v += x[(size_t)r * m + p];
    s[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int o = n / 2; o > 0; o >>= 1) {
        if (lid < o) s[lid] += s[lid + o];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) out[r] = acc ? out[r] + scale * s[0] : scale * s[0];
}

/* out[c*m + p] = x[c*m + p] * w[p] over n = C*m floats. */
__kernel void w2_colscale(const int n, const int m, __global const float *x,
                          __global const float *w, __global float *out) {
    const int i = get_global_id(0);
    if (i < n) out[i] = x[i] * w[i % m];
}

/* From the raw moments m1 = sum w f, m2 = sum w f f^T and W = wsum[0]:
 * mu = m1 / W and sigma = m2 / W - mu mu^T (zero when W <= 0). 2-D c x c. */
__kernel void w2_moments(const int c, __global const float *m1, __global const float *m2,
                         __global const float *wsum, __global float *mu, __global float *sigma) {
    const int j = get_global_id(0), i = get_global_id(1);
    if (i >= c || j >= c) return;
    const float w = wsum[0], r = w > 0.0f ? 1.0f / w : 0.0f;
    const float mi = m1[i] * r, mj = m1[j] * r;
    sigma[i * c + j] = m2[i * c + j] * r - mi * mj;
    if (j == 0) mu[i] = mi;
}

/* out[0] = tr(a) + c * ridge; one work-item. */
__kernel void w2_trace(const int c, __global const float *a, const float ridge,
                       __global float *out) {
    if (get_global_id(0) != 0) return;
    float t = 0.0f;
    for (int i = 0; i < c; i++) t += a[i * c + i];
    out[0] = t + c * ridge;
}

/* The start of the coupled Newton-Schulz iteration: y = (a + ridge I) / tr,
 * z = I, with tr = tr[0] (w2_trace). 2-D c x c. */
__kernel void w2_ns_init(const int c, __global const float *a, const float ridge,
                         __global const float *tr, __global float *y, __global float *z) {
    const int j = get_global_id(0), i = get_global_id(1);
    if (i >= c || j >= c) return;
    const float t = tr[0] > 0.0f ? tr[0] : 1.0f;
    y[i * c + j] = (a[i * c + j] + (i == j ? ridge : 0.0f)) / t;
    z[i * c + j] = i == j ? 1.0f : 0.0f;
}

/* p = (3 I - p) / 2, the iteration's middle factor. 2-D c x c. */
__kernel void w2_ns_mid(const int c, __global float *p) {
    const int j = get_global_id(0), i = get_global_id(1);
    if (i >= c || j >= c) return;
    p[i * c + j] = (i == j ? 1.5f : 0.0f) - 0.5f * p[i * c + j];
}

/* y *= tr[0]^power over n floats (power 1/2: the square root of the
 * unnormalised matrix, -1/2: its inverse). */
__kernel void w2_scale_pow(const int n, __global float *y, __global const float *tr,
                           const float power) {
    const int i = get_global_id(0);
    const float t = tr[0] > 0.0f ? tr[0] : 1.0f;
    if (i < n) y[i] *= pow(t, power);
}

/* out[slot] = (||mu - mus||^2 + tr(sigma) + trs - 2 sqrt(tr[0]) tr(y)) / norm:
 * the normalised squared distance, y the normalised square root of
 * A = S sigma S + ridge I (tr[0] its normaliser). One work-item. */
__kernel void w2_value(const int c, __global const float *mu, __global const float *mus,
                       __global const float *sigma, __global const float *y,
                       __global const float *tr, const float trs, const float norm,
                       __global float *out, const int slot) {
    if (get_global_id(0) != 0) return;
    float d = 0.0f, tx = 0.0f, ty = 0.0f;
    for (int i = 0; i < c; i++) {
        const float e = mu[i] - mus[i];
        d += e * e;
        tx += sigma[i * c + i];
        ty += y[i * c + i];
    }
    out[slot] = (d + tx + trs - 2.0f * sqrt(tr[0] > 0.0f ? tr[0] : 1.0f) * ty) / norm;
}

/* g = (I - t) / W in place of t, W = wsum[0]. 2-D c x c. */
__kernel void w2_gmat(const int c, __global float *t, __global const float *wsum) {
    const int j = get_global_id(0), i = get_global_id(1);
    if (i >= c || j >= c) return;
    const float w = wsum[0], r = w > 0.0f ? 1.0f / w : 0.0f;
    t[i * c + j] = ((i == j ? 1.0f : 0.0f) - t[i * c + j]) * r;
}

/* b = (mu - mus) / W - g mu, g from w2_gmat. c work-items. */
__kernel void w2_bias_vec(const int c, __global const float *g, __global const float *mu,
                          __global const float *mus, __global const float *wsum,
                          __global float *b) {
    const int i = get_global_id(0);
    if (i >= c) return;
    const float w = wsum[0], r = w > 0.0f ? 1.0f / w : 0.0f;
    float acc = 0.0f;
    for (int j = 0; j < c; j++) acc += g[i * c + j] * mu[j];
    b[i] = (mu[i] - mus[i]) * r - acc;
}

/* df[ch, y, x] += alpha * b[ch] * w(y, x) over the rectangle rows [y0, y0+rh)
 * x columns [x0, x0+rw) of an h x w map, w = mask[y*w + x] when has_mask,
 * else 1. Global size (rw, rh, C). */
__kernel void w2_bias_add(const int C, const int h, const int w, const int y0, const int x0,
                          const int rh, const int rw, __global const float *b,
                          const int has_mask, __global const float *mask, const float alpha,
                          __global float *df) {
    const int gx = get_global_id(0), gy = get_global_id(1), ch = get_global_id(2);
    if (gx >= rw || gy >= rh || ch >= C) return;
    const int y = y0 + gy, x = x0 + gx;
    const float m = has_mask ? mask[y * w + x] : 1.0f;
    df[((size_t)ch * h + y) * w + x] += alpha * b[ch] * m;
}
