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
