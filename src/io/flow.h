/* flow.h: optical flow between video frames, the consistency check of
 * Ruder, Dosovitskiy and Brox 2016 (section 3.1), and warping. Host only;
 * built into build/libnstvideo.a with video.c.
 *
 * A flow field is 2*w*h floats, (u, v) per pixel, row by row: the pixel p
 * of the first frame is at p + (u, v) in the second. The flow itself is
 * OpenCV's DIS optical flow (Kroeger et al. 2016, cv::DISOpticalFlow, in
 * flow_dis.cpp): dense, on the CPU in milliseconds per frame at 512 px,
 * from Debian's libopencv-video. */
#ifndef NST_FLOW_H
#define NST_FLOW_H

#include "nst.h"

typedef enum nst_flow_quality {
    NST_FLOW_FAST = 0,   /* DIS preset FAST */
    NST_FLOW_MEDIUM = 1, /* DIS preset MEDIUM (the default) */
    NST_FLOW_FINE = 2    /* MEDIUM with finer patches and more refinement */
} nst_flow_quality;

/* flow (2*w*h floats) from a to b, same size, computed on their luminance. */
nst_status nst_flow(const nst_image *a, const nst_image *b, nst_flow_quality q, float *flow,
                    nst_msg *msg);

/* The consistency mask of frame t (w*h floats, 1 consistent, 0 not) from
 * bwd, the flow from t to t-1, and fwd, the flow from t-1 to t: a pixel is
 * left out where the two disagree (a disocclusion):
 *   |fwd~ + bwd|^2 > 0.01 (|fwd~|^2 + |bwd|^2) + 0.5,   fwd~ = fwd(p + bwd(p)),
 * at motion boundaries, |grad u|^2 + |grad v|^2 > 0.01 |bwd|^2 + 0.002, and
 * where p + bwd(p) falls outside the frame. */
void nst_flow_consistency(const float *fwd, const float *bwd, int w, int h, float *mask);

/* out(p) = src(p + flow(p)), bilinear, clamped at the borders; flow of
 * src's size. */
nst_status nst_warp(const nst_image *src, const float *flow, nst_image **out, nst_msg *msg);

/* The raw DIS call (flow_dis.cpp): a and b are w*h grey bytes; preset 0..2
 * as nst_flow_quality. 0 on success, else -1 with the reason in err. */
int nst_flow_dis(const unsigned char *a, const unsigned char *b, int w, int h, int preset,
                 float *flow, char *err, size_t errlen);

#endif
