/* nst-warp-error: the temporal warping error of a stylised video, the
 * standard measure of flicker (Lai et al. 2018; Ruder et al. 2016):
 *
 *   E = mean over t >= 1 of  mean over consistent pixels p and channels of
 *       |O_t(p) - O_{t-1}(p + b_t(p))|
 *
 * with O the stylised frames in [0,1], b_t the optical flow from input frame
 * t to t-1 and the consistency mask of the forward-backward check (flow.h),
 * both computed on the input clip at the stylised frames' size.
 *
 * usage: nst-warp-error --content IN --stylised OUT [--flow fast|medium|fine]
 *                       [--frames N] [--json] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "image.h"
#include "video.h"

static int usage(void) {
    fprintf(stderr, "usage: nst-warp-error --content IN --stylised OUT [--flow fast|medium|fine]\n"
                    "                      [--frames N] [--json]\n\n"
                    "Prints the temporal warping error of OUT, the stylised version of the\n"
                    "clip IN: the mean |O_t - warp(O_t-1)| over the pixels the optical flow of\n"
                    "IN finds consistent, in [0,1] (and in 8-bit levels).\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *in = NULL, *out = NULL;
    int json = 0;
    long max_frames = 0;
    nst_flow_quality q = NST_FLOW_MEDIUM;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--content") && i + 1 < argc) in = argv[++i];
        else if (!strcmp(argv[i], "--stylised") && i + 1 < argc) out = argv[++i];
        else if (!strcmp(argv[i], "--frames") && i + 1 < argc) max_frames = atol(argv[++i]);
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--flow") && i + 1 < argc) {
            const char *v = argv[++i];
            q = !strcmp(v, "fast") ? NST_FLOW_FAST : !strcmp(v, "fine") ? NST_FLOW_FINE
                                                                          : NST_FLOW_MEDIUM;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage();
            return 0;
        } else return usage();
    }
    if (!in || !out) return usage();
    nst_msg msg = {{0}};
    nst_video_reader *ri = NULL, *ro = NULL;
    nst_video_info ii, io;
    if (nst_video_open(in, &ri, &ii, &msg) != NST_OK || nst_video_open(out, &ro, &io, &msg) != NST_OK) {
        fprintf(stderr, "nst-warp-error: %s\n", msg.text);
        return 1;
    }
    int w = io.w, h = io.h;
    size_t hw = (size_t)w * h;
    float *fwd = malloc(2 * hw * sizeof *fwd), *bwd = malloc(2 * hw * sizeof *bwd),
          *mask = malloc(hw * sizeof *mask);
    nst_image *pc = NULL, *po = NULL;
    double sum = 0, cover = 0;
    long pairs = 0, t = 0;
    int rc = 0;
    for (;; t++) {
        if (max_frames && t >= max_frames) break;
        nst_image *rawc = NULL, *o = NULL, *c = NULL;
        if (nst_video_next(ri, &rawc, &msg) != NST_OK || nst_video_next(ro, &o, &msg) != NST_OK) {
            fprintf(stderr, "nst-warp-error: %s\n", msg.text);
            nst_image_free(rawc);
            rc = 1;
            break;
        }
        if (!rawc || !o) {
            nst_image_free(rawc);
            nst_image_free(o);
            break;
        }
        if (nst_image_resize(rawc, w, h, &c, &msg) != NST_OK) {
            fprintf(stderr, "nst-warp-error: %s\n", msg.text);
            rc = 1;
            break;
        }
        nst_image_free(rawc);
        if (pc) {
            nst_image *warped = NULL;
            if (nst_flow(c, pc, q, bwd, &msg) != NST_OK || nst_flow(pc, c, q, fwd, &msg) != NST_OK ||
                nst_warp(po, bwd, &warped, &msg) != NST_OK) {
                fprintf(stderr, "nst-warp-error: %s\n", msg.text);
                rc = 1;
                break;
            }
            nst_flow_consistency(fwd, bwd, w, h, mask);
            double e = 0, n = 0;
            for (size_t i = 0; i < hw; i++) {
                if (mask[i] < 0.5f) continue;
                for (int k = 0; k < 3; k++) {
                    double d = o->data[k * hw + i] - warped->data[k * hw + i];
                    e += d < 0 ? -d : d;
                }
                n += 3;
            }
            nst_image_free(warped);
            if (n > 0) {
                sum += e / n;
                cover += n / (3.0 * hw);
                pairs++;
            }
            if (json)
                printf("{\"event\":\"pair\",\"frame\":%ld,\"error\":%.6f,\"consistent\":%.4f}\n",
                       t + 1, n > 0 ? e / n : 0, n / (3.0 * hw));
        }
        nst_image_free(pc);
        nst_image_free(po);
        pc = c;
        po = o;
    }
    if (rc == 0) {
        double mean = pairs ? sum / pairs : 0;
        if (json)
            printf("{\"event\":\"result\",\"frames\":%ld,\"pairs\":%ld,\"warping_error\":%.6f,"
                   "\"warping_error_8bit\":%.3f,\"consistent\":%.4f,\"width\":%d,\"height\":%d}\n",
                   t, pairs, mean, 255 * mean, pairs ? cover / pairs : 0, w, h);
        else
            printf("%s: warping error %.6f (%.3f of 255) over %ld frame pairs at %dx%d, %.0f%% of "
                   "pixels consistent\n", out, mean, 255 * mean, pairs, w, h,
                   pairs ? 100 * cover / pairs : 0);
    }
    nst_image_free(pc);
    nst_image_free(po);
    free(fwd);
    free(bwd);
    free(mask);
    nst_video_close(ri);
    nst_video_close(ro);
    return rc;
}
