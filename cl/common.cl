/* common.cl: prepended to every program. OpenCL C 1.2, no extensions. */
#define IDX4(n, c, h, w, C, H, W) ((((n) * (C) + (c)) * (H) + (h)) * (W) + (w))

/* Tree sum of v over the work-group (a power-of-two size); every work-item
 * must call it. The reducing kernels' one way to sum (loss.cl). */
inline float wg_sum(__local float *s, float v) {
    const int lid = get_local_id(0);
    s[lid] = v;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int o = get_local_size(0) / 2; o > 0; o >>= 1) {
        if (lid < o) s[lid] += s[lid + o];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return s[0];
}
