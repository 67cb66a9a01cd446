/* hist.cl: the histogram style term's device work (src/objective/term_hist.c):
 * each channel's values sorted on the device by a bitonic network (a fixed
 * sequence of compare-exchange passes: no data-dependent control flow, every
 * pass one launch over all channels at once), then each value replaced by
 * the painting's quantile at its rank. Ties are broken by position, so the
 * order is that of a stable sort and the same on every device. */

/* keys[c*n + i] = f[c*m + i] for the positions in the region (all when
 * has_mask is 0, else mask[i] > 0.5), +inf for the others and for the padding
 * i >= m; idx the positions. Global (n, C), n a power of two >= m. */
__kernel void hist_keys(const int m, const int n, __global const float *f, const int has_mask,
                        __global const float *mask, __global float *keys, __global int *idx) {
    const int i = get_global_id(0), c = get_global_id(1);
    if (i >= n) return;
    const int in = i < m && (!has_mask || mask[i] > 0.5f);
    keys[(size_t)c * n + i] = in ? f[(size_t)c * m + i] : INFINITY;
    idx[(size_t)c * n + i] = i;
}

/* One compare-exchange pass (stage k, distance j) of the bitonic sort of
 * each row of n (key, index) pairs into ascending order. Global (n, C). */
__kernel void hist_bitonic(const int n, const int j, const int k, __global float *keys,
                           __global int *idx) {
    const int i = get_global_id(0), c = get_global_id(1);
    if (i >= n) return;
    const int l = i ^ j;
    if (l <= i) return;
    const size_t b = (size_t)c * n;
    const float a = keys[b + i], e = keys[b + l];
    const int ia = idx[b + i], ie = idx[b + l];
    const int greater = a > e || (a == e && ia > ie);
    if ((i & k) == 0 ? greater : !greater) {
        keys[b + i] = e;
        keys[b + l] = a;
        idx[b + i] = ie;
        idx[b + l] = ia;
    }
}

/* The region's r-th smallest value of channel c (r < cnt) becomes the
 * quantile q[c*K + (2r+1)K / (2 cnt)]: t[c*m + idx[c*n + r]] = that. Global
 * (cnt, C). */
__kernel void hist_scatter(const int m, const int n, const int cnt, const int K,
                           __global const float *q, __global const int *idx, __global float *t) {
    const int r = get_global_id(0), c = get_global_id(1);
    if (r >= cnt) return;
    const long j = ((2 * (long)r + 1) * K) / (2 * (long)cnt);
    t[(size_t)c * m + idx[(size_t)c * n + r]] = q[(size_t)c * K + (j < K ? j : K - 1)];
}

/* The steps j <= L of stages k0, 2 k0, ..., k1 of the same sort, in local
 * memory: each work-group holds a block of B = 2 L pairs (L its size), and
 * stage k >= B leaves blocks independent once j < B. With k0 = 2 and k1 = B
 * it sorts each block (the first stages entire); with k0 = k1 = k it ends
 * stage k after hist_bitonic's steps j >= B. Global (n/2, C), local (L, 1). */
__kernel void hist_bitonic_local(const int n, const int k0, const int k1, __global float *keys,
                                 __global int *idx, __local float *lk, __local int *li) {
    const int lid = get_local_id(0), L = get_local_size(0), c = get_global_id(1);
    const int base = get_group_id(0) * 2 * L;
    const size_t row = (size_t)c * n;
    lk[lid] = keys[row + base + lid];
    lk[lid + L] = keys[row + base + lid + L];
    li[lid] = idx[row + base + lid];
    li[lid + L] = idx[row + base + lid + L];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = k0; k <= k1; k *= 2)
        for (int j = k / 2 < L ? k / 2 : L; j > 0; j >>= 1) {
            const int i = 2 * lid - (lid & (j - 1)), l = i + j;
            const float a = lk[i], e = lk[l];
            const int ia = li[i], ie = li[l];
            const int greater = a > e || (a == e && ia > ie);
            if (((base + i) & k) == 0 ? greater : !greater) {
                lk[i] = e;
                lk[l] = a;
                li[i] = ie;
                li[l] = ia;
            }
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    keys[row + base + lid] = lk[lid];
    keys[row + base + lid + L] = lk[lid + L];
    idx[row + base + lid] = li[lid];
    idx[row + base + lid + L] = li[lid + L];
}
