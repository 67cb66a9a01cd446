/* conv.cl: the pieces of a stride-1 "same" convolution done as im2col + GEMM.
 * Layouts: image [C,H,W], weights [K,C,R,R] (OIHW, R odd, pad (R-1)/2),
 * column matrix [C*R*R, rows*W] (row-major, one column per output pixel). */

/* q = a / b for 0 <= a <= INT_MAX, b > 0 and a quotient below 2^20 (so the
 * float estimate is off by at most one): CPUs vectorise this, where integer
 * division by a value known only at run time is done one lane at a time. */
inline int im2col_div(const int a, const int b, const float inv_b) {
    int q = convert_int_rtz((float)a * inv_b);
    const int r = (int)((uint)a - (uint)q * (uint)b);
    return q + (r >= b) - (r < 0);
}

/* Where entry idx of an im2col matrix of nr rows (n = nr * W positions)
 * reads: channel *c, and the unpadded row *h and column *w (outside the
 * image at the border). */
inline void im2col_at(const int idx, const int n, const int W, const int R, const int r0,
                      int *c, int *h, int *w) {
    const int row = im2col_div(idx, n, 1.0f / (float)n); /* (c, i, j) */
    const int pix = idx - row * n;
    const int y = im2col_div(pix, W, 1.0f / (float)W);
    int i, j;
    if (R == 3) { /* the common case: constant divisors */
        *c = row / 9;
        i = (row - 9 * *c) / 3;
        j = row - 9 * *c - 3 * i;
    } else {
        *c = row / (R * R);
        i = (row - *c * R * R) / R;
        j = row - *c * R * R - i * R;
    }
    const int p = (R - 1) / 2;
    *h = r0 + y + i - p;
    *w = pix - y * W + j - p;
}

/* Column matrix for output rows [r0, r0+nr) of x [C,H,W]:
 * col[(c*R + i)*R + j][(h - r0)*W + w] = x[c][h + i - p][w + j - p], 0 outside. */
__kernel void conv_im2col(const int C, const int H, const int W, const int R, const int r0,
                          const int nr, __global const float *x, __global float *col) {
    const int n = nr * W;
    const int idx = get_global_id(0);
    if (idx >= C * R * R * n) return;
    int c, h, w;
    im2col_at(idx, n, W, R, r0, &c, &h, &w);
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

/* As conv_im2col with reflection padding (PyTorch's ReflectionPad2d, then a
 * convolution without padding): a row or column p before the border reads
 * the one p after it, without repeating the edge (needs H, W > p). */
__kernel void conv_im2col_reflect(const int C, const int H, const int W, const int R,
                                  const int r0, const int nr, __global const float *x,
                                  __global float *col) {
    const int n = nr * W;
    const int idx = get_global_id(0);
    if (idx >= C * R * R * n) return;
    int c, h, w;
    im2col_at(idx, n, W, R, r0, &c, &h, &w);
    h = h < 0 ? -h : (h >= H ? 2 * H - 2 - h : h);
    w = w < 0 ? -w : (w >= W ? 2 * W - 2 - w : w);
    col[idx] = x[(c * H + h) * W + w];
}

/* xp [C,H+2p,W+2p] = x [C,H,W] reflection-padded by p (p < H, W): the
 * input of a same-size convolution whose interior is the reflected one.
 * 2-D launch: (column of xp, row of xp over all channels). */
__kernel void conv_pad_reflect(const int C, const int H, const int W, const int p,
                               __global const float *x, __global float *xp) {
    const int PH = H + 2 * p, PW = W + 2 * p;
    const int pw = get_global_id(0), r = get_global_id(1);
    if (pw >= PW || r >= C * PH) return;
    const int c = r / PH, ph = r - c * PH;
    int h = ph - p, w = pw - p;
    h = h < 0 ? -h : (h >= H ? 2 * H - 2 - h : h);
    w = w < 0 ? -w : (w >= W ? 2 * W - 2 - w : w);
    xp[r * PW + pw] = x[(c * H + h) * W + w];
}

/* y [C,H,W] = the interior of yp [C,H+2p,W+2p]. 2-D launch: (column, row
 * over all channels) of y. */
__kernel void conv_crop(const int C, const int H, const int W, const int p,
                        __global const float *yp, __global float *y) {
    const int w = get_global_id(0), r = get_global_id(1);
    if (w >= W || r >= C * H) return;
    const int c = r / H, h = r - c * H;
    y[r * W + w] = yp[(c * (H + 2 * p) + h + p) * (W + 2 * p) + w + p];
}
