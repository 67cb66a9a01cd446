/* pool.cl: 2x2 stride-2 pooling of [C,H,W] into [C,H/2,W/2] (floor, as PyTorch
 * without ceil_mode), forward and backward. max != 0 selects max pooling, whose
 * backward recomputes the argmax from the input: the first maximum in
 * row-major window order, as PyTorch's CPU kernel picks it. */

__kernel void pool_forward(const int C, const int H, const int W, const int max,
                           __global const float *x, __global float *y) {
    const int OH = H / 2, OW = W / 2;
    const int idx = get_global_id(0);
    if (idx >= C * OH * OW) return;
    const int ow = idx % OW, oh = (idx / OW) % OH, c = idx / (OH * OW);
    __global const float *p = x + (c * H + 2 * oh) * W + 2 * ow;
    const float a = p[0], b = p[1], d = p[W], e = p[W + 1];
    y[idx] = max ? fmax(fmax(a, b), fmax(d, e)) : ((a + b) + (d + e)) * 0.25f;
}

/* dx[c][h][w] = the share of dy routed to input pixel (h, w); 0 for rows and
 * columns the floor dropped. Overwrites dx. */
__kernel void pool_backward(const int C, const int H, const int W, const int max,
                            __global const float *x, __global const float *dy,
                            __global float *dx) {
    const int OH = H / 2, OW = W / 2;
    const int idx = get_global_id(0);
    if (idx >= C * H * W) return;
    const int w = idx % W, h = (idx / W) % H, c = idx / (H * W);
    const int oh = h / 2, ow = w / 2;
    float g = 0.0f;
    if (oh < OH && ow < OW) {
        const float d = dy[(c * OH + oh) * OW + ow];
        if (max) {
            __global const float *p = x + (c * H + 2 * oh) * W + 2 * ow;
            int best = 0;
            float bv = p[0];
            if (p[1] > bv) { best = 1; bv = p[1]; }
            if (p[W] > bv) { best = 2; bv = p[W]; }
            if (p[W + 1] > bv) { best = 3; }
            g = (best == (h - 2 * oh) * 2 + (w - 2 * ow)) ? d : 0.0f;
        } else {
            g = 0.25f * d;
        }
    }
    dx[idx] = g;
}

/* 2x2 stride-2 max pooling with ceil mode (PyTorch's ceil_mode=True): y is
 * [C, (H+1)/2, (W+1)/2]; a window cut by the border takes the max of the
 * pixels it holds. 2-D launch: (column, row over all channels) of y. */
__kernel void pool_max_ceil(const int C, const int H, const int W, __global const float *x,
                            __global float *y) {
    const int OH = (H + 1) / 2, OW = (W + 1) / 2;
    const int ow = get_global_id(0), r = get_global_id(1);
    if (ow >= OW || r >= C * OH) return;
    const int c = r / OH, oh = r - c * OH;
    const int h = 2 * oh, w = 2 * ow;
    __global const float *p = x + (c * H + h) * W + w;
    float m = p[0];
    if (w + 1 < W) m = fmax(m, p[1]);
    if (h + 1 < H) {
        m = fmax(m, p[W]);
        if (w + 1 < W) m = fmax(m, p[W + 1]);
    }
    y[r * OW + ow] = m;
}

/* Nearest-neighbour upsampling x2: x [C,H,W] -> y [C,2H,2W], y[c][h][w] =
 * x[c][h/2][w/2]. 2-D launch: (column, row over all channels) of y. */
__kernel void upsample_nearest2(const int C, const int H, const int W, __global const float *x,
                                __global float *y) {
    const int OW = 2 * W;
    const int ow = get_global_id(0), r = get_global_id(1);
    if (ow >= OW || r >= 2 * C * H) return;
    y[r * OW + ow] = x[(r / 2) * W + ow / 2]; /* row r of y is row r/2 of x (c*2H+h -> c*H+h/2) */
}
