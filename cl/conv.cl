/* conv.cl: the pieces of a stride-1 "same" convolution done as im2col + GEMM.
 * Layouts: image [C,H,W], weights [K,C,R,R] (OIHW, R odd, pad (R-1)/2),
 * column matrix [C*R*R, rows*W] (row-major, one column per output pixel). */

/* Column matrix for output rows [r0, r0+nr) of x [C,H,W]:
 * col[(c*R + i)*R + j][(h - r0)*W + w] = x[c][h + i - p][w + j - p], 0 outside. */
__kernel void conv_im2col(const int C, const int H, const int W, const int R, const int r0,
                          const int nr, __global const float *x, __global float *col) {
    const int n = nr * W;
    const int idx = get_global_id(0);
    if (idx >= C * R * R * n) return;
    const int pix = idx % n, row = idx / n;
    const int j = row % R, i = (row / R) % R, c = row / (R * R);
    const int p = (R - 1) / 2;
    const int h = r0 + pix / W + i - p, w = pix % W + j - p;
    col[idx] = (h >= 0 && h < H && w >= 0 && w < W) ? x[(c * H + h) * W + w] : 0.0f;
}

/* The kernel of the input gradient: wf[c][k][i][j] = w[k][c][R-1-i][R-1-j].
 * dx = conv(dy, wf) with the same padding, for stride 1 and odd R. */
__kernel void conv_flip(const int K, const int C, const int R, __global const float *w,
                        __global float *wf) {
    const int idx = get_global_id(0);
    if (idx >= K * C * R * R) return;
    const int j = idx % R, i = (idx / R) % R, k = (idx / (R * R)) % K, c = idx / (R * R * K);
    wf[idx] = w[((k * C + c) * R + (R - 1 - i)) * R + (R - 1 - j)];
}

/* y[k][p] = y[k][p] + b[k], then max(., 0) when relu != 0; y is [K, HW], in place. */
__kernel void conv_bias_act(const int K, const int HW, const int relu, __global const float *b,
                            __global float *y) {
    const int idx = get_global_id(0);
    if (idx >= K * HW) return;
    float v = y[idx] + b[idx / HW];
    y[idx] = (relu && !(v > 0.0f)) ? 0.0f : v;
}
