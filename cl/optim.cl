/* optim.cl: the device side of the optimisers (src/optim.c): element-wise
 * steps, and for L-BFGS's compact form the two products with its history
 * matrix W = [s_0; y_0; s_1; y_1; ...]: inner products of every row with the
 * gradient (and the newest y), split along the long dimension, and the
 * direction as a combination of the rows. */

/* One L-BFGS move from x: x_prev = x, g_prev = g, x += t * d. */
__kernel void optim_advance(const int n, const float t, __global float *x,
                            __global const float *d, __global float *x_prev,
                            __global const float *g, __global float *g_prev) {
    int i = get_global_id(0);
    if (i >= n) return;
    float xi = x[i];
    x_prev[i] = xi;
    g_prev[i] = g[i];
    x[i] = xi + t * d[i];
}

/* x = x0 + t * d (a line-search trial from the same start) */
__kernel void optim_move(const int n, __global const float *x0, const float t,
                         __global const float *d, __global float *x) {
    int i = get_global_id(0);
    if (i < n) x[i] = x0[i] + t * d[i];
}

/* The newest pair into one slot of the history matrix: s = x - x_prev at
 * w[s_off], y = g - g_prev at w[s_off + ld]. */
__kernel void optim_pair(const int n, __global const float *x, __global const float *x_prev,
                         __global const float *g, __global const float *g_prev,
                         __global float *w, const ulong s_off, const ulong ld) {
    int i = get_global_id(0);
    if (i >= n) return;
    w[s_off + i] = x[i] - x_prev[i];
    w[s_off + ld + i] = g[i] - g_prev[i];
}

/* Inner products of the rows of [W; g] with g and, when two is set, with the
 * row of W at y_off: rows r < nw are W's (r * ld onwards), row nw is g. Work
 * group (gx, r) sums elements [gx * chunk, (gx + 1) * chunk) in aligned
 * blocks of eight: each work item a contiguous run of blocks (CPUs: one
 * stream each), or with interleave every local-size-th block (GPUs: a warp
 * reads one contiguous span). It writes out[(2 r + c) * get_num_groups(0) +
 * gx] for column c (0: g, 1: y); with one group along x these are the inner
 * products themselves, otherwise optim_dots_sum adds the groups. chunk, ld
 * and y_off are multiples of 8 and the buffers start 32-byte aligned; the
 * local size is a power of two and sums has room for two floats per work
 * item. */
__kernel void optim_dots(const uint n, const uint chunk, const int nw, const ulong ld,
                         __global const float *w, __global const float *g, const ulong y_off,
                         const int two, const int interleave, __global float *out,
                         __local float *sums) {
    const uint gx = get_group_id(0), lid = get_local_id(0), ls = get_local_size(0);
    const int r = get_group_id(1);
    __global const float *a = r < nw ? w + (ulong)r * ld : g;
    __global const float *y = w + y_off;
    const uint lo = gx * chunk, hi = n - lo > chunk ? lo + chunk : n;
    const uint nb = (hi - lo) / 8, per = (nb + ls - 1) / ls;
    __global const float8 *a8 = (__global const float8 *)(a + lo);
    __global const float8 *g8 = (__global const float8 *)(g + lo);
    __global const float8 *y8 = (__global const float8 *)(y + lo);
    float8 v0 = (float8)(0.0f), v1 = (float8)(0.0f);
    for (uint k = 0; k < per; k++) {
        const uint b = interleave ? lid + k * ls : lid * per + k;
        if (b >= nb) break;
        const float8 ab = a8[b];
        v0 += ab * g8[b];
        if (two) v1 += ab * y8[b];
    }
    float4 h0 = v0.lo + v0.hi, h1 = v1.lo + v1.hi;
    float s0 = (h0.x + h0.y) + (h0.z + h0.w), s1 = (h1.x + h1.y) + (h1.z + h1.w);
    if (lid == 0) /* the last few elements */
        for (uint i = lo + 8 * nb; i < hi; i++) {
            s0 += a[i] * g[i];
            if (two) s1 += a[i] * y[i];
        }
    sums[lid] = s0;
    sums[ls + lid] = s1;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (uint h = ls / 2; h > 0; h >>= 1) {
        if (lid < h) {
            sums[lid] += sums[lid + h];
            sums[ls + lid] += sums[ls + lid + h];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        const uint groups = get_num_groups(0);
        out[(2 * r) * groups + gx] = sums[0];
        if (two) out[(2 * r + 1) * groups + gx] = sums[ls];
    }
}

/* out[k] = the sum of parts partials of optim_dots, for k < count */
__kernel void optim_dots_sum(const int count, const int parts, __global const float *partial,
                             __global float *out) {
    int k = get_global_id(0);
    if (k >= count) return;
    float s = 0.0f;
    for (int j = 0; j < parts; j++) s += partial[k * parts + j];
    out[k] = s;
}

/* The L-BFGS direction from its coefficients: d = a g + sum_r c[r] W_r over
 * the rows r < nw of W whose coefficient is not zero (rows of unused slots
 * may hold anything); eight elements a work item (aligned: ld is a multiple
 * of 8, the buffers start 32-byte aligned). */
__kernel void optim_combine(const int n, const float a, __global const float *g, const int nw,
                            const ulong ld, __global const float *w, __global const float *c,
                            __global float *d) {
    const int i = get_global_id(0) * 8;
    if (i >= n) return;
    if (n - i >= 8) {
        float8 s = a * ((__global const float8 *)g)[i / 8];
        for (int r = 0; r < nw; r++) {
            float cr = c[r];
            if (cr != 0.0f) s += cr * ((__global const float8 *)(w + (ulong)r * ld))[i / 8];
        }
        ((__global float8 *)d)[i / 8] = s;
    } else {
        for (int j = i; j < n; j++) {
            float s = a * g[j];
            for (int r = 0; r < nw; r++) {
                float cr = c[r];
                if (cr != 0.0f) s += cr * w[(ulong)r * ld + j];
            }
            d[j] = s;
        }
    }
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
