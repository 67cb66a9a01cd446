/* tiled.cl: moving rectangles between a whole-image tensor and a tile's
 * tensor for tiled evaluation (src/tiled.c). */

/* Over the rectangle rows [y0, y0+rh) x columns [x0, x0+rw) of dst (a C x dh
 * x dw map): dst[c,y,x] = src[c,y+oy,x+ox] (accumulate 0) or += (accumulate
 * 1), src a C x sh x sw map. The caller keeps the shifted rectangle inside
 * src. Global size (rw, rh, C). */
__kernel void tiled_rect(const int C, const int dh, const int dw, const int sh, const int sw,
                         const int y0, const int x0, const int rh, const int rw, const int oy,
                         const int ox, const int accumulate, __global const float *src,
                         __global float *dst) {
    const int gx = get_global_id(0), gy = get_global_id(1), c = get_global_id(2);
    if (gx >= rw || gy >= rh || c >= C) return;
    const int y = y0 + gy, x = x0 + gx;
    const float v = src[((size_t)c * sh + (y + oy)) * sw + (x + ox)];
    const size_t d = ((size_t)c * dh + y) * dw + x;
    if (accumulate)
        dst[d] += v;
    else
        dst[d] = v;
}
