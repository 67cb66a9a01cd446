/* common.cl: prepended to every program. OpenCL C 1.2, no extensions. */
#define IDX4(n, c, h, w, C, H, W) ((((n) * (C) + (c)) * (H) + (h)) * (W) + (w))
