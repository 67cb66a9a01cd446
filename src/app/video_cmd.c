/* video_cmd.c: `nst video`, temporally consistent style transfer of a clip
 * (Ruder, Dosovitskiy and Brox 2016). Per frame t: the content frame at the
 * working size, the optical flow to and from frame t-1 (flow.h), the
 * consistency mask, the stylised frame t-1 warped to t as the starting image
 * (the content frame where the mask says the warp is unreliable) and as the
 * target of the temporal term; then a transfer. Finished frames are kept in a
 * work directory beside the output, so a rerun continues where the last one
 * stopped; the video is encoded from them at the end, atomically. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "flow.h"
#include "image.h"
#include "nst.h"
#include "options.h"
#include "video.h"
#include "video_cmd.h"
#include "weights.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130
#define LT_MAX 64 /* the farthest frame --long-term reaches back to */

static const char *video_usage =
    "usage: nst video -c IN -s PAINTING[,PAINTING...] -o OUT [options]\n"
    "\n"
    "Stylises a video frame by frame with temporal consistency (Ruder, Dosovitskiy\n"
    "& Brox 2016): each frame starts from the previous stylised frame warped by the\n"
    "optical flow, and a temporal term keeps it close to that frame wherever the\n"
    "flow is reliable, so the style does not flicker.\n"
    "\n"
    "  -c, --content IN          the clip: any container FFmpeg reads (.mp4, .mkv,\n"
    "                            .mov, .avi, .webm...) or an image sequence such as\n"
    "                            frames/%05d.png\n"
    "  -s, --style FILE[,FILE]   one or more paintings\n"
    "  -o, --output OUT          .mp4, .mkv, .mov, .avi: H.264 (lossless FFV1 where\n"
    "                            H.264 is missing), the clip's audio copied; or an\n"
    "                            image sequence such as out/%05d.png\n"
    "      --codec h264|ffv1|mpeg4  insist on a codec (default: H.264, else FFV1)\n"
    "      --temporal-weight W   weight of the temporal term (default 200; 0 =\n"
    "                            independent frames, each from its content)\n"
    "      --frame-iterations N  iterations of each frame after the first, which\n"
    "                            runs --iterations (default 150)\n"
    "      --long-term J[,J...]  long-term consistency: hold each pixel to the nearest\n"
    "                            of the frames t-J it is consistent with (e.g.\n"
    "                            1,10,20; default 1: the previous frame only)\n"
    "      --passes N            multi-pass: after the forward pass, N-1 more passes,\n"
    "                            backward and forward in turn, each frame starting\n"
    "                            from its last result blended with its neighbour's\n"
    "                            new one warped, --frame-iterations each (default 1)\n"
    "      --flow fast|medium|fine  optical-flow quality (default medium)\n"
    "      --frames N            stylise the first N frames only\n"
    "      --start-frame S       start at frame S (counted from 0), skipping those\n"
    "                            before it: with --frames, one stretch of a clip\n"
    "                            (no audio is copied then); nst batch splits a clip\n"
    "                            into such stretches\n"
    "      --work-dir DIR        where finished frames are kept (default: OUT.nst-work\n"
    "                            beside the output); a rerun continues from them\n"
    "      --keep-frames         keep the work directory after the video is written\n"
    "\n"
    "The image options apply (nst --help): --size (default 512), --style-blend,\n"
    "--style-scale, --content-weight, --style-weight, --tv-weight,\n"
    "--content-layers, --style-layers, --style-layer-weights, --pooling,\n"
    "--preserve-colors, --luminance-only, --luminance-match, --scales,\n"
    "--scale-iterations, --average-decay, -n/--iterations, --optimizer,\n"
    "--learning-rate, --lbfgs-history, --line-search, --max-memory, --tile,\n"
    "--seed, --jpeg-quality, -d/--device, -w/--weights, --network, --no-cache,\n"
    "--precision, -q/--quiet, --json (one event per frame), -h/--help.\n"
    "\n"
    "Ctrl-C stops after the current iteration; the frames done are kept and the\n"
    "same command continues. Exit status: 0 done, 1 failed, 2 bad usage,\n"
    "130 interrupted.\n";

static volatile sig_atomic_t v_stop = 0;
static void on_signal(int sig) {
    (void)sig;
    v_stop = 1;
}

#define usage_error(...) cli_usage_error("nst video", __VA_ARGS__)

typedef struct video_opts {
    opt_common com; /* what nst is given too */
    const char *work_dir, *codec;
    int keep_frames;
    int frame_iterations;
    int passes;      /* --passes: 1 forward, then alternately backward and forward */
    int lt[16], nlt; /* --long-term: frame offsets, ascending, lt[0] = 1 */
    long max_frames;
    long start_frame; /* --start-frame: frames skipped before the first */
    nst_flow_quality flow;
} video_opts;

static const char video_shortopts[] = "-:c:s:o:n:d:w:qh";

/* One of the command's own options (opt_parse). */
static int video_option(int c, const char *v, void *ctx) {
    video_opts *o = ctx;
    switch (c) {
    case O_FRAME_ITERATIONS:
        if (!cli_parse_int(v, &o->frame_iterations))
            return usage_error("--frame-iterations '%s': give a whole number", v);
        break;
    case O_PASSES:
        if (!cli_parse_int(v, &o->passes))
            return usage_error("--passes '%s': give a whole number", v);
        break;
    case O_FLOW:
        if (!strcmp(v, "fast")) o->flow = NST_FLOW_FAST;
        else if (!strcmp(v, "medium")) o->flow = NST_FLOW_MEDIUM;
        else if (!strcmp(v, "fine")) o->flow = NST_FLOW_FINE;
        else return usage_error("--flow '%s': choose fast, medium or fine", v);
        break;
    case O_FRAMES: {
        int n;
        if (!cli_parse_int(v, &n) || n < 1)
            return usage_error("--frames '%s': give a whole number >= 1", v);
        o->max_frames = n;
        break;
    }
    case O_START_FRAME: {
        int n;
        if (!cli_parse_int(v, &n) || n < 0)
            return usage_error("--start-frame '%s': give a whole number >= 0 (the first "
                               "frame is 0)", v);
        o->start_frame = n;
        break;
    }
    case O_WORK_DIR: o->work_dir = v; break;
    case O_KEEP_FRAMES: o->keep_frames = 1; break;
    case O_LONG_TERM: {
        double d[16];
        int n = opt_doubles(v, d, 15);
        o->nlt = 0;
        o->lt[o->nlt++] = 1;
        for (int i = 0; i < n; i++) {
            int j = (int)d[i];
            if (j != d[i] || j < 1 || j > LT_MAX || j <= o->lt[o->nlt - 1] - (j == 1))
                return usage_error("--long-term '%s': give frame offsets in 1..%d, "
                                   "ascending, e.g. 1,10,20", v, LT_MAX);
            if (j > 1) o->lt[o->nlt++] = j;
        }
        if (n < 1) return usage_error("--long-term '%s': give frame offsets", v);
        break;
    }
    case O_CODEC:
        if (strcmp(v, "h264") && strcmp(v, "ffv1") && strcmp(v, "mpeg4"))
            return usage_error("--codec '%s': choose h264, ffv1 (lossless) or mpeg4", v);
        o->codec = v;
        break;
    }
    return 0;
}

static int parse_args(int argc, char **argv, video_opts *o) {
    int rc;
    memset(o, 0, sizeof *o);
    opt_common_default(&o->com);
    o->com.p.temporal_weight = 200;
    o->frame_iterations = 150;
    o->flow = NST_FLOW_MEDIUM;
    o->lt[0] = 1;
    o->nlt = 1;
    o->passes = 1;
    if ((rc = opt_parse(argc, argv, video_shortopts, OPT_VIDEO, "nst video", video_usage,
                        &o->com, video_option, o)))
        return rc;
    if (!o->com.content) return usage_error("no input video: give --content CLIP.mp4");
    if (o->com.nstyles == 0) return usage_error("no style image: give --style PAINTING");
    if (!o->com.output) return usage_error("no output: give -o OUT.mp4 (or out/%%05d.png)");
    if (o->com.nblend && o->com.nblend != o->com.nstyles)
        return usage_error("--style-blend has %d weights for %d style images", o->com.nblend,
                           o->com.nstyles);
    if (o->passes < 1 || o->passes > 100)
        return usage_error("--passes %d is not in 1..100", o->passes);
    if (o->frame_iterations < 1 || o->frame_iterations > 1000000)
        return usage_error("--frame-iterations %d is not in 1..1000000", o->frame_iterations);
    if (nst_video_is_pattern(o->com.output) && !cli_image_ext_ok(o->com.output))
        return usage_error("output '%s': an image sequence must end in .png, .jpg or .jpeg",
                           o->com.output);
    if (!strcmp(o->com.content, o->com.output))
        return usage_error("the output '%s' is the input", o->com.output);
    if (o->com.nlayer_w) {
        o->com.p.style_layer_weights = o->com.layer_w;
        o->com.p.style_layer_weight_count = o->com.nlayer_w;
    }
    nst_msg msg = {{0}};
    if (nst_params_check(&o->com.p, o->com.nstyles, o->com.nblend ? o->com.blend : NULL, &msg) !=
        NST_OK)
        return usage_error("%s", msg.text);
    return 0;
}

/* ---- the work directory ---------------------------------------------------- */

static void frame_path(const char *dir, long t, char *buf, size_t len) {
    snprintf(buf, len, "%s/frame_%06ld.png", dir, t + 1);
}

/* Frame t of pass k (pass 1: frame_NNNNNN.png), and the input frames kept
 * for the later passes (kind "input"). */
static void pass_path(const char *dir, const char *kind, int k, long t, char *buf, size_t len) {
    if (k == 1 && !strcmp(kind, "pass"))
        frame_path(dir, t, buf, len);
    else
        snprintf(buf, len, "%s/%s%d_%06ld.png", dir, kind, k, t + 1);
}

/* What decides the frames: a rerun continues only with the same. */
static void run_signature(const video_opts *o, const nst_video_info *in, int w, int h,
                          const char *weights, char *buf, size_t len) {
    const nst_params *p = &o->com.p;
    size_t n = (size_t)snprintf(
        buf, len,
        "nst video work directory\ninput %s (%dx%d)\nsize %dx%d\nweights %s\n"
        "weights a=%.9g b=%.9g g=%.9g temporal=%.9g\nlayers %s | %s\niterations %d then %d\n"
        "optimizer %d lr %.9g history %d line-search %d\nscales %d/%d pooling %d colors %d/%d/%d"
        "\nflow %d decay %.9g seed %llu style-scale %.9g\nstyles",
        o->com.content, in->w, in->h, w, h, weights, p->content_weight, p->style_weight,
        p->tv_weight, p->temporal_weight, p->content_layers, p->style_layers, p->iterations,
        o->frame_iterations, (int)p->optimizer, p->learning_rate, p->lbfgs_history,
        p->line_search, p->scales, p->scale_iterations, p->avg_pool, p->preserve_colors,
        p->luminance_only, p->luminance_histogram, (int)o->flow, p->average_decay,
        (unsigned long long)p->seed, p->style_scale);
    for (int i = 0; i < o->com.nstyles && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, " %s:%.6g", o->com.styles[i],
                              o->com.nblend ? o->com.blend[i] : 1.0 / o->com.nstyles);
    for (int i = 0; i < o->com.nlayer_w && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, " lw%.6g", o->com.layer_w[i]);
    for (int i = 1; i < o->nlt && n < len; i++)
        n += (size_t)snprintf(buf + n, len - n, " long-term %d", o->lt[i]);
    if (o->passes > 1 && n < len)
        n += (size_t)snprintf(buf + n, len - n, " passes %d", o->passes);
    if (o->start_frame > 0 && n < len)
        n += (size_t)snprintf(buf + n, len - n, " start-frame %ld", o->start_frame);
    if (n < len) snprintf(buf + n, len - n, "\n");
}

/* Creates the work directory or checks that it belongs to this run. */
static int work_dir_open(const char *dir, const char *sig) {
    char path[1200];
    snprintf(path, sizeof path, "%s/run.txt", dir);
    if (mkdir(dir, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "nst video: cannot create the work directory '%s': %s\n", dir,
                strerror(errno));
        return -1;
    }
    FILE *f = fopen(path, "r");
    if (f) {
        char have[8192];
        size_t n = fread(have, 1, sizeof have - 1, f);
        fclose(f);
        have[n] = 0;
        if (strcmp(have, sig) != 0) {
            fprintf(stderr, "nst video: the work directory '%s' holds frames of a different run "
                            "(other input, options or weights; see %s): remove it to start "
                            "again, or give --work-dir\n", dir, path);
            return -1;
        }
        return 0;
    }
    char tmp[1300];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    f = fopen(tmp, "w");
    if (!f || fputs(sig, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "nst video: cannot write in the work directory '%s': %s\n", dir,
                strerror(errno));
        return -1;
    }
    return 0;
}

static void work_dir_remove(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char path[1400];
    while ((e = readdir(d))) {
        if (!strncmp(e->d_name, "frame_", 6) || !strncmp(e->d_name, "pass", 4) ||
            !strncmp(e->d_name, "input", 5) || !strcmp(e->d_name, "run.txt")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
    rmdir(dir);
}

/* ---- progress ------------------------------------------------------------------ */

typedef struct frame_ctx {
    const video_opts *o;
    int tty;
    long frame, frames;
    double eta;
    double loss, temporal; /* at the last iteration */
} frame_ctx;

static int on_progress(const nst_progress *p, void *user) {
    frame_ctx *c = user;
    if (p->phase == NST_PHASE_COMPILE) {
        if (!c->o->com.quiet && !c->o->com.json && p->programs_done == 0)
            fprintf(stderr, "nst video: compiling kernels for this device (once): %d programs\n",
                    p->programs);
        return v_stop != 0;
    }
    c->loss = p->loss;
    c->temporal = p->temporal;
    if (c->tty && !c->o->com.quiet && !c->o->com.json) {
        char eta[32];
        cli_fmt_duration(c->eta, eta, sizeof eta);
        fprintf(stderr, "\r\033[Kframe %ld/%ld  iteration %d/%d  loss %.4g  ETA %s", c->frame,
                c->frames, p->iteration, p->iterations, p->loss, eta);
    }
    return v_stop != 0;
}

/* ---- the run --------------------------------------------------------------------- */

/* The stylised frame t at w x h from its file in the work directory, or
 * NULL when it is not there (or not whole). */
static nst_image *load_file(const char *path, int w, int h) {
    nst_image *img = NULL;
    if (access(path, F_OK) != 0) return NULL;
    if (nst_image_read(path, 0, &img, NULL) != NST_OK) return NULL;
    if (img->w != w || img->h != h) {
        nst_image_free(img);
        return NULL;
    }
    return img;
}

static nst_image *load_done(const char *dir, long t, int w, int h) {
    char path[1200];
    frame_path(dir, t, path, sizeof path);
    return load_file(path, w, h);
}

static nst_image *load_pass(const char *dir, const char *kind, int k, long t, int w, int h) {
    char path[1200];
    pass_path(dir, kind, k, t, path, sizeof path);
    return load_file(path, w, h);
}

/* The temporal term's target and mask for frame t, and its starting image.
 * For each offset j of --long-term (ascending, j = 1 first) with t-j >= 0:
 * the flow between input frames t and t-j both ways, its consistency mask
 * c_j, and stylised frame t-j warped to t (w_j). As in Ruder et al. (section
 * 3.2), each pixel is held to the nearest frame it is consistent with:
 * c'_j = max(c_j - sum of c_k over the nearer k, 0), which are disjoint for
 * binary masks, so that sum_j c'_j (x - w_j)^2 is one term with mask
 * M = sum_j c'_j and target sum_j c'_j w_j / M. The start is M target +
 * (1 - M) content. past[k]: input frame t-1-k at w x h. */
static nst_status temporal_inputs(const video_opts *o, long t, const nst_image *content,
                                  nst_image *const *past, const nst_image *prev_out,
                                  const char *work, float *fwd, float *bwd, float *cj,
                                  float *closer, nst_image **target, nst_image **mask,
                                  nst_image **init, double *coverage, nst_msg *msg) {
    int w = content->w, h = content->h;
    size_t hw = (size_t)w * h;
    nst_status st;
    nst_image *warped = NULL, *older = NULL;
    *target = *mask = *init = NULL;
    if ((st = nst_image_create(w, h, target, msg)) != NST_OK ||
        (st = nst_image_create(w, h, mask, msg)) != NST_OK ||
        (st = nst_image_create(w, h, init, msg)) != NST_OK)
        goto fail;
    memset(closer, 0, hw * sizeof *closer);
    for (int k = 0; k < o->nlt && o->lt[k] <= t; k++) {
        int j = o->lt[k];
        const nst_image *src = prev_out;
        if (j > 1) {
            if (!past[j - 1] || !(older = load_done(work, t - j, w, h))) continue;
            src = older;
        }
        if ((st = nst_flow(content, past[j - 1], o->flow, bwd, msg)) != NST_OK ||
            (st = nst_flow(past[j - 1], content, o->flow, fwd, msg)) != NST_OK ||
            (st = nst_warp(src, bwd, &warped, msg)) != NST_OK)
            goto fail;
        nst_flow_consistency(fwd, bwd, w, h, cj);
        for (size_t i = 0; i < hw; i++) {
            float c = cj[i] - closer[i];
            c = c > 0 ? c : 0;
            closer[i] += cj[i];
            (*mask)->data[i] += c;
            for (int ch = 0; ch < 3; ch++) (*target)->data[ch * hw + i] += c * warped->data[ch * hw + i];
        }
        nst_image_free(warped);
        nst_image_free(older);
        warped = older = NULL;
    }
    *coverage = 0;
    for (size_t i = 0; i < hw; i++) {
        float m = (*mask)->data[i];
        if (m > 1) m = 1;
        *coverage += m;
        for (int ch = 0; ch < 3; ch++) {
            size_t q = ch * hw + i;
            float tv = (*mask)->data[i] > 0 ? (*target)->data[q] / (*mask)->data[i] : content->data[q];
            (*target)->data[q] = tv;
            (*init)->data[q] = m * tv + (1 - m) * content->data[q];
        }
        (*mask)->data[i] = (*mask)->data[hw + i] = (*mask)->data[2 * hw + i] = m;
    }
    *coverage /= (double)hw;
    return NST_OK;
fail:
    nst_image_free(warped);
    nst_image_free(older);
    nst_image_free(*target);
    nst_image_free(*mask);
    nst_image_free(*init);
    *target = *mask = *init = NULL;
    return st;
}

int cmd_video(int argc, char **argv, const nst_settings *set) {
    video_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc;
    rc = EXIT_RUNTIME;
    nst_msg msg = {{0}};
    nst_video_reader *rd = NULL;
    nst_video_writer *wr = NULL;
    nst_video_info info;
    nst_runtime *rt = NULL;
    nst_model *model = NULL;
    nst_image *styles[NST_MAX_STYLES] = {0};
    nst_image *past[LT_MAX] = {0}; /* input frames t-1, t-2, ... at the working size */
    nst_image *prev_out = NULL, *content = NULL, *frame = NULL;
    float *closer = NULL;
    float *fwd = NULL, *bwd = NULL;
    float *maskv = NULL;
    char wpath[4096], work[1100], why[4400], sig[8192];
    long frames = 0;
    int pattern_out = nst_video_is_pattern(o.com.output);

    /* everything about the input is checked before any work */
    if (nst_video_count(o.com.content, &frames, &msg) != NST_OK) {
        fprintf(stderr, "nst video: %s\n", msg.text);
        return EXIT_RUNTIME;
    }
    if (nst_video_open(o.com.content, &rd, &info, &msg) != NST_OK) {
        fprintf(stderr, "nst video: %s\n", msg.text);
        return EXIT_RUNTIME;
    }
    if (o.start_frame >= frames) {
        fprintf(stderr, "nst video: --start-frame %ld: '%s' has %ld frames (0 to %ld)\n",
                o.start_frame, o.com.content, frames, frames - 1);
        goto done;
    }
    frames -= o.start_frame;
    if (o.max_frames && o.max_frames < frames) frames = o.max_frames;
    int w, h;
    nst_image_fit_size(info.w, info.h, o.com.p.size, &w, &h);
    if (w < 16 || h < 16) {
        fprintf(stderr, "nst video: '%s': frames of %dx%d become %dx%d at --size %d, below the "
                        "network's 16 pixels a side; give a larger --size or a less elongated "
                        "video\n", o.com.content, info.w, info.h, w, h, o.com.p.size);
        goto done;
    }
    if (!pattern_out && cli_output_check(o.com.output, why, sizeof why) != 0) {
        fprintf(stderr, "nst video: cannot write '%s': %s\n", o.com.output, why);
        goto done;
    }
    if (nst_weights_locate(set, o.com.weights, o.com.network, wpath, sizeof wpath, &msg) !=
        NST_OK) {
        fprintf(stderr, "nst video: %s\n", msg.text);
        goto done;
    }
    for (int i = 0; i < o.com.nstyles; i++) {
        if (nst_image_read(o.com.styles[i], 0, &styles[i], &msg) != NST_OK) {
            fprintf(stderr, "nst video: style image: %s\n", msg.text);
            goto done;
        }
    }
    if (strlen(o.com.output) > 1000 || (o.work_dir && strlen(o.work_dir) > 1000)) {
        fprintf(stderr, "nst video: the output or work directory name is too long\n");
        goto done;
    }
    if (o.work_dir) {
        snprintf(work, sizeof work, "%s", o.work_dir);
    } else {
        snprintf(work, sizeof work, "%s.nst-work", o.com.output);
        for (char *q = strrchr(work, '/') ? strrchr(work, '/') : work; *q; q++)
            if (*q == '%') *q = '_';
    }
    nst_runtime_options ro = {0};
    ro.device = o.com.device;
    ro.no_cache = o.com.no_cache;
    nst_settings run_set = opt_settings(set, o.com.precision);
    ro.settings = &run_set;
    if (nst_runtime_open(&rt, &ro, &msg) != NST_OK) {
        fprintf(stderr, "nst video: %s\n", msg.text);
        goto done;
    }
    if (nst_model_load_network(rt, wpath, o.com.network, &model) != NST_OK) {
        fprintf(stderr, "nst video: %s\n", nst_last_error(rt));
        goto done;
    }
    run_signature(&o, &info, w, h, wpath, sig, sizeof sig);
    if (work_dir_open(work, sig) != 0) goto done;
    size_t hw = (size_t)w * h;
    fwd = malloc(2 * hw * sizeof *fwd);
    bwd = malloc(2 * hw * sizeof *bwd);
    maskv = malloc(hw * sizeof *maskv);
    closer = malloc(hw * sizeof *closer);
    if (!fwd || !bwd || !maskv || !closer) {
        fprintf(stderr, "nst video: out of memory\n");
        goto done;
    }
    if (!o.com.quiet && !o.com.json)
        fprintf(stderr, "nst video: %s: %ld frames of %dx%d at %.3g fps, stylised at %dx%d on "
                        "%s; frames kept in %s\n", o.com.content, frames, info.w, info.h,
                (double)info.fps_num / info.fps_den, w, h, nst_runtime_device(rt)->name, work);
    if (o.com.json)
        printf("{\"event\":\"start\",\"input\":\"%s\",\"frames\":%ld,\"width\":%d,\"height\":%d,"
               "\"fps\":%.6g,\"work_dir\":\"%s\",\"device\":\"%s\"}\n",
               cli_js(o.com.content), frames, w, h, (double)info.fps_num / info.fps_den,
               cli_js(work), cli_js(nst_runtime_device(rt)->name));
    fflush(stdout);

    for (long t = 0; t < o.start_frame; t++) {
        nst_image *raw = NULL;
        if (nst_video_next(rd, &raw, &msg) != NST_OK || !raw) {
            fprintf(stderr, "nst video: %s\n", raw ? msg.text : "the input ended early");
            goto done;
        }
        nst_image_free(raw);
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    frame_ctx fc = {.o = &o, .tty = isatty(2), .frames = frames, .eta = -1};
    double t_start = cli_mono_seconds(), spent = 0;
    long done_here = 0, its_here = 0, its_left_total = 0;
    nst_status st = NST_OK;
    for (long t = 0; t < frames; t++) {
        nst_image *raw = NULL;
        if ((st = nst_video_next(rd, &raw, &msg)) != NST_OK || !raw) {
            fprintf(stderr, "nst video: %s\n", raw ? msg.text : "the input ended early");
            goto stop;
        }
        st = nst_image_resize(raw, w, h, &content, &msg);
        nst_image_free(raw);
        if (st != NST_OK) {
            fprintf(stderr, "nst video: %s\n", msg.text);
            goto stop;
        }
        fc.frame = t + 1;
        double t0 = cli_mono_seconds();
        if (o.passes > 1) {
            char ipath[1200];
            pass_path(work, "input", 1, t, ipath, sizeof ipath);
            if (access(ipath, F_OK) != 0 &&
                (st = nst_image_write(ipath, content, 0, 1, &msg)) != NST_OK) {
                fprintf(stderr, "nst video: cannot keep input frame %ld: %s\n", t + 1, msg.text);
                goto stop;
            }
        }
        nst_image *out = load_done(work, t, w, h);
        int resumed = out != NULL;
        int use_temporal = t > 0 && prev_out && o.com.p.temporal_weight > 0;
        double loss = 0, temporal = 0, coverage = 0, flow_secs = 0;
        if (!out) {
            nst_params p = o.com.p;
            nst_image *warped = NULL, *init = NULL, *maskimg = NULL;
            if (use_temporal) {
                /* flow both ways, the consistency mask, the warped previous frame */
                double f0 = cli_mono_seconds();
                if ((st = temporal_inputs(&o, t, content, past, prev_out, work, fwd, bwd, maskv,
                                          closer, &warped, &maskimg, &init, &coverage,
                                          &msg)) != NST_OK) {
                    fprintf(stderr, "nst video: frame %ld: %s\n", t + 1, msg.text);
                    goto stop;
                }
                flow_secs = cli_mono_seconds() - f0;
                if (o.com.p.luminance_only) {
                    /* the run optimises luminance: start from and hold to the
                     * previous frame's */
                    nst_image *gi = NULL, *gw = NULL;
                    if ((st = nst_image_luminance(init, &gi, &msg)) != NST_OK ||
                        (st = nst_image_luminance(warped, &gw, &msg)) != NST_OK) {
                        fprintf(stderr, "nst video: frame %ld: %s\n", t + 1, msg.text);
                        nst_image_free(gi);
                        nst_image_free(warped);
                        nst_image_free(init);
                        nst_image_free(maskimg);
                        goto stop;
                    }
                    nst_image_free(init);
                    nst_image_free(warped);
                    init = gi;
                    warped = gw;
                }
                p.init = NST_INIT_IMAGE;
                p.init_image = init;
                p.temporal_target = warped;
                p.temporal_mask = maskimg;
                p.iterations = o.frame_iterations;
            } else if (t > 0) {
                p.iterations = o.frame_iterations;
                p.temporal_target = NULL;
            }
            nst_image *result = NULL;
            fc.eta = done_here ? spent / its_here * its_left_total : -1;
            st = nst_transfer_run(rt, model, &p, content, (const nst_image *const *)styles,
                                  o.com.nstyles, o.com.nblend ? o.com.blend : NULL, on_progress,
                                  &fc, &result);
            nst_image_free(warped);
            nst_image_free(init);
            nst_image_free(maskimg);
            if (st != NST_OK) {
                nst_image_free(result);
                if (st == NST_ERR_INTERRUPTED) {
                    if (fc.tty && !o.com.quiet && !o.com.json) fputc('\n', stderr);
                    fprintf(stderr, "nst video: interrupted at frame %ld of %ld; the %ld frames "
                                    "done are kept in %s: run the same command to continue\n",
                            t + 1, frames, t, work);
                    rc = EXIT_INTERRUPTED;
                } else {
                    fprintf(stderr, "%snst video: frame %ld: %s\n",
                            fc.tty && !o.com.quiet && !o.com.json ? "\n" : "", t + 1,
                            nst_last_error(rt));
                }
                goto stop;
            }
            char path[1200];
            frame_path(work, t, path, sizeof path);
            /* 16-bit, and read back, so that a resumed run continues from the same
             * pixels as one that went straight through */
            st = nst_image_write(path, result, 0, 1, &msg);
            nst_image_free(result);
            if (st != NST_OK || !(out = load_done(work, t, w, h))) {
                fprintf(stderr, "nst video: cannot keep frame %ld: %s\n", t + 1,
                        st != NST_OK ? msg.text : "it could not be read back");
                goto stop;
            }
            loss = fc.loss;
            temporal = fc.temporal;
            done_here++;
            its_here += p.iterations;
            spent = cli_mono_seconds() - t_start;
        }
        /* what is left: the remaining frames at frame_iterations each */
        its_left_total = ((frames - t - 1) + (long)(o.passes - 1) * (frames - 1)) *
                         (long)o.frame_iterations;
        double eta = done_here && its_here ? spent / its_here * its_left_total : -1;
        double secs = cli_mono_seconds() - t0;
        if (o.com.json) {
            printf("{\"event\":\"frame\",\"frame\":%ld,\"frames\":%ld,\"resumed\":%s,"
                   "\"warped\":%s,\"consistent\":%.4f,\"loss\":%.9g,\"temporal\":%.9g,"
                   "\"flow_seconds\":%.3f,\"seconds\":%.3f,\"elapsed\":%.3f,\"eta\":%.1f}\n",
                   t + 1, frames, resumed ? "true" : "false",
                   use_temporal && !resumed ? "true" : "false", coverage, loss, temporal, flow_secs,
                   secs,
                   cli_mono_seconds() - t_start, eta);
            fflush(stdout);
        } else if (!o.com.quiet) {
            char etab[32];
            cli_fmt_duration(eta, etab, sizeof etab);
            char cov[48] = "";
            if (use_temporal && !resumed)
                snprintf(cov, sizeof cov, ", flow consistent on %.0f%%", 100 * coverage);
            fprintf(stderr, "%sframe %ld/%ld %s in %.1f s%s  ETA %s\n",
                    fc.tty ? "\r\033[K" : "", t + 1, frames, resumed ? "kept from before" : "done",
                    secs, cov, etab);
        }
        int keep = o.lt[o.nlt - 1];
        nst_image_free(past[keep - 1]);
        memmove(past + 1, past, (keep - 1) * sizeof past[0]);
        past[0] = content;
        content = NULL;
        nst_image_free(prev_out);
        prev_out = out;
    }

    /* multi-pass (Ruder et al., section 3.3): passes backward and forward in
     * turn; frame t starts from delta c warp(x_n) + (1 - delta c) x_t, x_n its
     * neighbour's result of this pass, x_t its own of the last, and holds to
     * the warped neighbour where consistent */
    for (int k = 2; k <= o.passes; k++) {
        int back = k % 2 == 0;
        nst_image *near = NULL; /* the neighbour's result in this pass */
        nst_image *cn = NULL;   /* the neighbour's input frame */
        for (long q = 0; q < frames; q++) {
            long t = back ? frames - 1 - q : q;
            double t0 = cli_mono_seconds(), coverage = 0, flow_secs = 0;
            nst_image *ct = load_pass(work, "input", 1, t, w, h);
            nst_image *out = load_pass(work, "pass", k, t, w, h);
            int resumed = out != NULL;
            if (!ct) {
                fprintf(stderr, "nst video: input frame %ld is missing from %s; remove the "
                                "directory and start again\n", t + 1, work);
                nst_image_free(out);
                nst_image_free(near);
                nst_image_free(cn);
                goto stop;
            }
            if (!out) {
                nst_image *old = load_pass(work, "pass", k - 1, t, w, h);
                nst_image *warped = NULL, *maskimg = NULL, *init = NULL, *result = NULL;
                char path[1200];
                st = old ? NST_OK : NST_ERR_IO;
                if (!old) snprintf(msg.text, sizeof msg.text, "frame %ld of pass %d is missing",
                                   t + 1, k - 1);
                if (st == NST_OK && near && o.com.p.temporal_weight > 0) {
                    video_opts one = o;
                    one.nlt = 1;
                    nst_image *pastn[LT_MAX] = {cn};
                    double f0 = cli_mono_seconds();
                    st = temporal_inputs(&one, 1, ct, pastn, near, work, fwd, bwd, maskv, closer,
                                         &warped, &maskimg, &init, &coverage, &msg);
                    flow_secs = cli_mono_seconds() - f0;
                    for (size_t i = 0; st == NST_OK && i < 3 * hw; i++) {
                        float dc = 0.5f * maskimg->data[i];
                        init->data[i] = dc * warped->data[i] + (1 - dc) * old->data[i];
                    }
                    if (st == NST_OK && o.com.p.luminance_only) {
                        nst_image *gi = NULL, *gw = NULL;
                        st = nst_image_luminance(init, &gi, &msg);
                        if (st == NST_OK) st = nst_image_luminance(warped, &gw, &msg);
                        nst_image_free(init);
                        nst_image_free(warped);
                        init = gi;
                        warped = gw;
                    }
                }
                if (st == NST_OK) {
                    nst_params p = o.com.p;
                    p.iterations = o.frame_iterations;
                    p.init = NST_INIT_IMAGE;
                    p.init_image = init ? init : old;
                    p.temporal_target = warped;
                    p.temporal_mask = maskimg;
                    fc.frame = t + 1;
                    st = nst_transfer_run(rt, model, &p, ct, (const nst_image *const *)styles,
                                          o.com.nstyles, o.com.nblend ? o.com.blend : NULL,
                                          on_progress, &fc, &result);
                    if (st != NST_OK && st != NST_ERR_INTERRUPTED)
                        snprintf(msg.text, sizeof msg.text, "%s", nst_last_error(rt));
                }
                nst_image_free(old);
                nst_image_free(warped);
                nst_image_free(maskimg);
                nst_image_free(init);
                if (st == NST_OK) {
                    pass_path(work, "pass", k, t, path, sizeof path);
                    st = nst_image_write(path, result, 0, 1, &msg);
                    if (st == NST_OK && !(out = load_file(path, w, h))) st = NST_ERR_IO;
                }
                nst_image_free(result);
                if (st != NST_OK) {
                    if (fc.tty && !o.com.quiet && !o.com.json) fputc('\n', stderr);
                    if (st == NST_ERR_INTERRUPTED) {
                        fprintf(stderr, "nst video: interrupted at frame %ld in pass %d of %d; "
                                        "the frames done are kept in %s: run the same command "
                                        "to continue\n", t + 1, k, o.passes, work);
                        rc = EXIT_INTERRUPTED;
                    } else {
                        fprintf(stderr, "nst video: pass %d, frame %ld: %s\n", k, t + 1,
                                msg.text);
                    }
                    nst_image_free(ct);
                    nst_image_free(near);
                    nst_image_free(cn);
                    goto stop;
                }
                done_here++;
                its_here += o.frame_iterations;
                spent = cli_mono_seconds() - t_start;
            }
            its_left_total = ((long)(o.passes - k) * (frames - 1) + (frames - 1 - q)) *
                             (long)o.frame_iterations;
            double eta = done_here && its_here ? spent / its_here * its_left_total : -1;
            if (o.com.json) {
                printf("{\"event\":\"frame\",\"pass\":%d,\"passes\":%d,\"frame\":%ld,"
                       "\"frames\":%ld,\"resumed\":%s,\"warped\":%s,\"consistent\":%.4f,"
                       "\"loss\":%.9g,\"temporal\":%.9g,\"flow_seconds\":%.3f,"
                       "\"seconds\":%.3f,\"elapsed\":%.3f,\"eta\":%.1f}\n",
                       k, o.passes, t + 1, frames, resumed ? "true" : "false",
                       near && !resumed ? "true" : "false", coverage, resumed ? 0 : fc.loss,
                       resumed ? 0 : fc.temporal, flow_secs, cli_mono_seconds() - t0,
                       cli_mono_seconds() - t_start, eta);
                fflush(stdout);
            } else if (!o.com.quiet) {
                char etab[32];
                cli_fmt_duration(eta, etab, sizeof etab);
                fprintf(stderr, "%spass %d/%d frame %ld/%ld %s in %.1f s  ETA %s\n",
                        fc.tty ? "\r\033[K" : "", k, o.passes, t + 1, frames,
                        resumed ? "kept from before" : "done", cli_mono_seconds() - t0, etab);
            }
            nst_image_free(near);
            nst_image_free(cn);
            near = out;
            cn = ct;
        }
        nst_image_free(near);
        nst_image_free(cn);
    }

    /* the video, from the frames kept */
    char note[256] = "";
    if (nst_video_writer_open(o.com.output, w, h, info.fps_num, info.fps_den, o.codec,
                              pattern_out || !info.has_audio || o.start_frame ? NULL
                                                                              : o.com.content,
                              &wr, note, sizeof note, &msg) != NST_OK) {
        fprintf(stderr, "nst video: %s (the frames are kept in %s)\n", msg.text, work);
        goto stop;
    }
    nst_video_writer_jpeg_quality(wr, o.com.jpeg_quality);
    for (long t = 0; t < frames; t++) {
        nst_image *img = load_pass(work, "pass", o.passes, t, w, h);
        if (!img) {
            fprintf(stderr, "nst video: frame %ld is missing from %s\n", t + 1, work);
            goto stop;
        }
        st = nst_video_writer_add(wr, img, &msg);
        nst_image_free(img);
        if (st == NST_OK && v_stop) {
            /* the temporary file goes with the writer; the frames stay */
            fprintf(stderr, "nst video: interrupted while writing %s; the frames are kept in "
                            "%s: run the same command to write it\n", o.com.output, work);
            rc = EXIT_INTERRUPTED;
            goto stop;
        }
        if (st != NST_OK) {
            fprintf(stderr, "nst video: %s (the frames are kept in %s)\n", msg.text, work);
            goto stop;
        }
    }
    if (nst_video_writer_finish(wr, &msg) != NST_OK) {
        fprintf(stderr, "nst video: %s (the frames are kept in %s)\n", msg.text, work);
        goto stop;
    }
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (!o.keep_frames) work_dir_remove(work);
    if (!o.com.quiet && !o.com.json)
        fprintf(stderr, "nst video: wrote %s (%ld frames, %dx%d, %s)\n", o.com.output, frames, w, h,
                note);
    if (o.com.json)
        printf("{\"event\":\"done\",\"output\":\"%s\",\"frames\":%ld,\"width\":%d,\"height\":%d,"
               "\"codec\":\"%s\",\"seconds\":%.3f}\n",
               cli_js(o.com.output), frames, w, h, cli_js(note), cli_mono_seconds() - t_start);
    rc = 0;
    goto done;
stop:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
done:
    nst_video_writer_free(wr);
    nst_video_close(rd);
    nst_image_free(content);
    nst_image_free(frame);
    for (int i = 0; i < LT_MAX; i++) nst_image_free(past[i]);
    free(closer);
    nst_image_free(prev_out);
    for (int i = 0; i < NST_MAX_STYLES; i++) nst_image_free(styles[i]);
    free(fwd);
    free(bwd);
    free(maskv);
    nst_model_free(model);
    nst_runtime_close(rt);
    return rc;
}

const struct option *video_cmd_options(const char **shortopts) {
    static struct option longopts[OPT_MAX];
    if (!longopts[0].name) opt_select(OPT_VIDEO, longopts);
    if (shortopts) *shortopts = video_shortopts;
    return longopts;
}
