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

/* pool_backward shaped for CPU devices (nst_cpu_kernels chooses): one work
 * item per pair of input rows of a channel, 4 windows a step on vectors
 * (vload8 of both rows, vstore8 of both gradient rows) instead of one work
 * item per pixel with a window recomputed for each and index divisions.
 * Same result: the same first maximum, the same zeros. */
__kernel void pool_backward_cpu(const int C, const int H, const int W, const int max,
                                __global const float *x, __global const float *dy,
                                __global float *dx) {
    const int OH = H / 2, OW = W / 2, R = (H + 1) / 2;
    const int idx = get_global_id(0);
    if (idx >= C * R) return;
    const int oh = idx % R, c = idx / R;
    __global float *d0 = dx + ((size_t)c * H + 2 * oh) * W, *d1 = d0 + W;
    if (oh >= OH) { /* the odd last row, dropped by the floor */
        for (int w = 0; w < W; w++) d0[w] = 0.0f;
        return;
    }
    __global const float *x0 = x + ((size_t)c * H + 2 * oh) * W, *x1 = x0 + W;
    __global const float *g = dy + ((size_t)c * OH + oh) * OW;
    int ow = 0;
    for (; ow + 4 <= OW; ow += 4) {
        const float8 a = vload8(0, x0 + 2 * ow), b = vload8(0, x1 + 2 * ow);
        const float4 gd = vload4(0, g + ow), z = (float4)(0.0f);
        float4 gp, gq, gr, gs;
        if (max) { /* window order p q / r s; a later value wins only when greater */
            const float4 p = a.even, q = a.odd, r = b.even, s = b.odd;
            const int4 bq = q > p;
            float4 bv = select(p, q, bq);
            const int4 br = r > bv;
            bv = select(bv, r, br);
            const int4 bs = s > bv;
            gs = select(z, gd, bs);
            gr = select(z, gd, br & ~bs);
            gq = select(z, gd, bq & ~br & ~bs);
            gp = select(z, gd, ~(bq | br | bs));
        } else {
            gp = gq = gr = gs = 0.25f * gd;
        }
        vstore8((float8)(gp.s0, gq.s0, gp.s1, gq.s1, gp.s2, gq.s2, gp.s3, gq.s3), 0,
                d0 + 2 * ow);
        vstore8((float8)(gr.s0, gs.s0, gr.s1, gs.s1, gr.s2, gs.s2, gr.s3, gs.s3), 0,
                d1 + 2 * ow);
    }
    for (; ow < OW; ow++) {
        const float d = g[ow];
        float o[4] = {0.25f * d, 0.25f * d, 0.25f * d, 0.25f * d};
        if (max) {
            const float v[4] = {x0[2 * ow], x0[2 * ow + 1], x1[2 * ow], x1[2 * ow + 1]};
            int best = 0;
            for (int i = 1; i < 4; i++)
                if (v[i] > v[best]) best = i;
            for (int i = 0; i < 4; i++) o[i] = i == best ? d : 0.0f;
        }
        d0[2 * ow] = o[0];
        d0[2 * ow + 1] = o[1];
        d1[2 * ow] = o[2];
        d1[2 * ow + 1] = o[3];
    }
    if (W & 1) d0[W - 1] = d1[W - 1] = 0.0f; /* the odd last column */
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
