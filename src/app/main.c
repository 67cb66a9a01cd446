/* main.c: the `nst` command line. The only place that prints to the user and
 * chooses exit codes: 0 success, 1 runtime failure, 2 usage error,
 * 130 interrupted (the current image is still written). */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "bench_run.h"
#include "cli.h"
#include "devcheck.h"
#include "options.h"
#include "studio.h"
#include "nst.h"
#include "tune.h"
#include "video_cmd.h"
#include "weights.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static const char *usage_text =
    "usage: nst --content PHOTO --style PAINTING[,PAINTING...] -o OUTPUT [options]\n"
    "       nst devices [--check] [--device SEL]\n"
    "       nst bench [--size N[,N...]] [--evals N] [--device SEL] [--json]\n"
    "       nst bench --run N [--size N] [--lbfgs-history H[,H...]] [--repeat R] [--json]\n"
    "       nst tune [--device SEL] [--seconds N]\n"
    "       nst video -c CLIP -s PAINTING -o OUT [options]  (see nst video --help)\n"
    "       nst batch JOBS [--devices all|SEL[,SEL...]] [--shard I/N] [--json]\n"
    "       nst studio [--port N] [--host ADDR] [--device SEL] [--weights FILE]\n"
    "\n"
    "Paints PHOTO in the style of PAINTING (Gatys, Ecker & Bethge): optimises a new\n"
    "image whose VGG features match the photo's content and the painting's style.\n"
    "\n"
    "Images\n"
    "  -c, --content FILE        the photo (PNG or JPEG)\n"
    "  -s, --style FILE[,FILE]   one or more paintings, comma-separated or -s repeated\n"
    "      --style-blend W[,W]   how much each painting counts (sum 1; default equal)\n"
    "  -o, --output FILE         result; .png or .jpg decides the format\n"
    "      --size N              longest side of the output in pixels (default 512)\n"
    "      --style-scale F       paintings are resized to F x size (default 1)\n"
    "      --jpeg-quality Q      1..100 (default 95)\n"
    "      --png16               write a 16-bit PNG\n"
    "\n"
    "The result\n"
    "      --content-weight A    how much the photo's content counts (default 1)\n"
    "      --style-weight B      how much the style counts (default 10; 30 with\n"
    "                            --style-loss hist)\n"
    "      --style-loss gram|w2|hist  how the style's statistics are matched: Gram\n"
    "                            matrices, Gaussian fits (Wasserstein-2) or\n"
    "                            per-channel histograms (default gram)\n"
    "      --tv-weight G         smoothness; raise it against noise (default 1)\n"
    "      --content-layers L    VGG layers for content (default relu4_2)\n"
    "      --style-layers L      VGG layers for style\n"
    "                            (default relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)\n"
    "      --style-layer-weights W[,W]  one weight per style layer (default equal)\n"
    "      --pooling max|avg     VGG pooling (default max)\n"
    "      --init content|random|wct|FILE  starting image (default content; wct: the\n"
    "                            one-pass stylisation below, which needs its models)\n"
    "      --seed N              seed for --init random (default 0)\n"
    "\n"
    "Colour, regions, resolution\n"
    "      --preserve-colors     keep the photo's colours: the result's luminance with\n"
    "                            the photo's chroma\n"
    "      --luminance-only      transfer luminance only (the style's brightness matched\n"
    "                            to the photo's first), then keep the photo's colours\n"
    "      --luminance-match mean|histogram  how the style's luminance is matched\n"
    "                            (default mean: mean and deviation)\n"
    "      --mask FILE[,FILE]    one grey mask per style image: white where that style\n"
    "                            goes; regions are stylised independently\n"
    "      --scales N            coarse to fine: N sizes growing by sqrt(2) up to --size\n"
    "      --scale-iterations N  iterations of each scale after the first\n"
    "                            (default: half of --iterations)\n"
    "      --average-decay D     output the moving average of the iterates (e.g. 0.99)\n"
    "                            instead of the last iterate, against late noise"
    "\n"
    "Instant style (universal style transfer, Li et al. 2017: no optimisation)\n"
    "      --method gatys|wct    gatys (default): optimise; wct: whiten and colour the\n"
    "                            photo's features with the painting's, coarse to fine\n"
    "      --wct-models DIR      the WCT models (vgg_normalised_convL_1.pth and\n"
    "                            feature_invertor_convL_1.pth); default: weights/wct,\n"
    "                            ~/.local/share/nst/wct (tools/fetch-weights.sh wct)\n"
    "      --alpha F             style strength in [0,1] (default 0.6)\n"
    "      --wct-levels L[,L]    the levels to run, 1..5 (default: all present)\n"
    "\n"
    "The optimiser\n"
    "  -n, --iterations N        optimiser iterations (default 500)\n"
    "      --optimizer lbfgs|adam  (default lbfgs)\n"
    "      --learning-rate F     Adam's step (default 0.02) or L-BFGS's scale (1)\n"
    "      --lbfgs-history N     L-BFGS memory (default 100; fewer saves device memory)\n"
    "      --line-search         L-BFGS with a backtracking line search\n"
    "\n"
    "Memory\n"
    "      --max-memory SIZE     device memory the run may use, e.g. 4G or 512M\n"
    "                            (default: the device's global memory less 10%)\n"
    "      --tile auto|off|N     evaluate in tiles of at most N pixels a side; auto\n"
    "                            (default) tiles only when the whole image does not fit\n"
    "      --dry-run             print the memory plan (with --json: as JSON) and exit:\n"
    "                            0 when the run fits, 1 when not (with the largest\n"
    "                            --size that would)\n"
    "\n"
    "Device and files\n"
    "  -d, --device SEL          device index or name substring (see `nst devices`);\n"
    "                            NST_DEVICE does the same\n"
    "  -w, --weights FILE        VGG-19 or VGG-16 weights (.safetensors or torchvision\n"
    "                            .pth); default: $NST_WEIGHTS, weights/, ~/.local/share/nst\n"
    "      --network vgg19|vgg16|auto  the network the weights hold (default auto:\n"
    "                            detected from the file's layers)\n"
    "      --no-cache            do not cache compiled kernels\n"
    "      --precision fp32|tf32 the convolutions' matrix products: fp32 (default) or\n"
    "                            TF32 on the tensor cores of NVIDIA GPUs of compute\n"
    "                            capability 8.0+ (10-bit mantissas, fp32 sums: about\n"
    "                            1.3-1.4x faster at 512-1024 px, features within ~1%);\n"
    "                            NST_PRECISION does the same\n"
    "\n"
    "Progress\n"
    "      --print-every N       a progress line every N iterations when not on a\n"
    "                            terminal (default 50)\n"
    "      --save-every N        also write OUTPUT_NNNN.png every N iterations (or\n"
    "                            .jpg: the output's format)\n"
    "  -q, --quiet               print nothing but errors\n"
    "      --json                one JSON object per iteration on stdout\n"
    "  -h, --help                this text\n"
    "      --version             the version\n"
    "\n"
    "Ctrl-C stops after the current iteration and writes the image so far.\n"
    "Exit status: 0 done, 1 failed, 2 bad usage, 130 interrupted.\n";

/* ---- option values -------------------------------------------------------- */

typedef struct run_opts {
    opt_common com; /* what nst video is given too */
    const char *init;
    char *masks[NST_MAX_STYLES];
    int nmasks;
    char mask_buf[4096]; /* the --mask names */
    size_t mask_used;
    int png16, print_every, save_every, dry_run;
    int method_wct, init_wct; /* --method wct; --init wct */
    const char *wct_models;
    nst_wct_params wct;
} run_opts;

#define usage_error(...) cli_usage_error("nst", __VA_ARGS__)

static const char run_shortopts[] = "-:c:s:o:n:d:w:qh";

/* Parses the main command's arguments into o. Values are parsed here (a
 * number must be a number); their ranges are the library's, which
 * nst_params_check reports at the end. */
/* One of the command's own options (opt_parse). */
static int run_option(int c, const char *v, void *ctx) {
    run_opts *o = ctx;
    int rc;
    switch (c) {
    case O_VERSION:
        printf("nst %s\n", NST_VERSION);
        exit(0);
    case O_MASK:
        if ((rc = opt_add_names("--mask", v, o->mask_buf, sizeof o->mask_buf, &o->mask_used,
                                o->masks, &o->nmasks, NST_MAX_STYLES, "nst")))
            return rc;
        break;
    case O_DRY_RUN: o->dry_run = 1; break;
    case O_INIT: o->init = v; break;
    case O_PRINT_EVERY:
        if (!cli_parse_int(v, &o->print_every) || o->print_every < 1)
            return usage_error("--print-every '%s': give a whole number >= 1", v);
        break;
    case O_SAVE_EVERY:
        if (!cli_parse_int(v, &o->save_every) || o->save_every < 1)
            return usage_error("--save-every '%s': give a whole number >= 1", v);
        break;
    case O_PNG16: o->png16 = 1; break;
    case O_METHOD:
        if (!strcmp(v, "gatys")) o->method_wct = 0;
        else if (!strcmp(v, "wct")) o->method_wct = 1;
        else return usage_error("--method '%s': choose gatys or wct", v);
        break;
    case O_WCT_MODELS: o->wct_models = v; break;
    case O_ALPHA:
        if (!cli_parse_double(v, &o->wct.alpha, NULL) || !(o->wct.alpha >= 0) ||
            !(o->wct.alpha <= 1))
            return usage_error("--alpha '%s': give a number in [0, 1]", v);
        break;
    case O_WCT_LEVELS: {
        double lv[NST_WCT_LEVELS + 1];
        int n = opt_doubles(v, lv, NST_WCT_LEVELS);
        o->wct.levels = 0;
        for (int k = 0; k < n; k++) {
            if (lv[k] != floor(lv[k]) || lv[k] < 1 || lv[k] > NST_WCT_LEVELS) n = -1;
            else o->wct.levels |= 1u << ((int)lv[k] - 1);
        }
        if (n < 1)
            return usage_error("--wct-levels '%s': give levels 1..%d separated by commas", v,
                               NST_WCT_LEVELS);
        break;
    }
    }
    return 0;
}

static int parse_run_args(int argc, char **argv, run_opts *o) {
    int rc;
    memset(o, 0, sizeof *o);
    opt_common_default(&o->com);
    o->print_every = 50;
    nst_wct_params_default(&o->wct);
    if ((rc = opt_parse(argc, argv, run_shortopts, OPT_RUN, "nst", usage_text, &o->com,
                        run_option, o)))
        return rc;
    if (!o->com.content) return usage_error("no content image: give --content PHOTO");
    if (o->com.nstyles == 0) return usage_error("no style image: give --style PAINTING");
    if (!o->com.output && !o->dry_run) return usage_error("no output file: give -o OUTPUT.png");
    if (o->com.output && !cli_image_ext_ok(o->com.output))
        return usage_error("output '%s': the name must end in .png, .jpg or .jpeg", o->com.output);
    if (o->method_wct && o->dry_run)
        return usage_error("--dry-run plans the optimisation: leave it out with --method wct");
    if (o->nmasks && o->nmasks != o->com.nstyles)
        return usage_error("--mask has %d masks for %d style images: give one per style",
                           o->nmasks, o->com.nstyles);
    if (o->com.nblend && o->com.nblend != o->com.nstyles)
        return usage_error("--style-blend has %d weights for %d style images", o->com.nblend,
                           o->com.nstyles);
    if (o->init) {
        struct stat sb;
        if (!strcmp(o->init, "content")) o->com.p.init = NST_INIT_CONTENT;
        else if (!strcmp(o->init, "random")) o->com.p.init = NST_INIT_RANDOM;
        else if (!strcmp(o->init, "wct")) o->init_wct = 1, o->com.p.init = NST_INIT_IMAGE;
        else if (stat(o->init, &sb) == 0) o->com.p.init = NST_INIT_IMAGE;
        else
            return usage_error("--init '%s': %s; give content, random, wct or an image file",
                               o->init, errno == ENOENT ? "no such file" : strerror(errno));
    }
    if (!o->com.style_weight_set)
        o->com.p.style_weight = nst_style_loss_weight(o->com.p.style_loss);
    if (o->com.nlayer_w) {
        o->com.p.style_layer_weights = o->com.layer_w;
        o->com.p.style_layer_weight_count = o->com.nlayer_w;
    }
    nst_msg msg = {{0}};
    /* every range is the library's: its message names the value */
    /* an --init image is read (and checked) after the arguments */
    nst_params chk = o->com.p;
    if (chk.init == NST_INIT_IMAGE) chk.init = NST_INIT_CONTENT;
    if (nst_params_check(&chk, o->com.nstyles, o->com.nblend ? o->com.blend : NULL, &msg) != NST_OK)
        return usage_error("%s", msg.text);
    return 0;
}

/* ---- progress --------------------------------------------------------------- */

typedef struct progress_ctx {
    const run_opts *o;
    int tty;
    int failed_save;
    int iteration, iterations, scale; /* the last iteration reported */
    cli_rate rate;     /* speed counted from the first iteration */
    int live;          /* a live compile line is open on the terminal */
    double compile_t0; /* when compiling began (CLOCK_MONOTONIC) */
} progress_ctx;

/* Kernels are compiling: say so at once (a first run on a CPU can take a
 * while), live on a terminal, one line otherwise, events with --json. */
static int on_compile(progress_ctx *c, const nst_progress *p) {
    const run_opts *o = c->o;
    if (p->programs_done == 0) c->compile_t0 = cli_mono_seconds();
    if (o->com.json) {
        printf("{\"event\":\"compile\",\"programs_done\":%d,\"programs\":%d,\"program\":",
               p->programs_done, p->programs);
        if (p->program)
            printf("\"%s\"}\n", cli_js(p->program));
        else
            printf("null}\n");
        fflush(stdout);
    } else if (!o->com.quiet && c->tty) {
        /* a live line that fits the terminal, ended when all are done */
        int last = p->programs_done == p->programs;
        char f[6][48] = {"nst: compiling kernels", " for this device", " (once)", "", "", ""};
        char line[300];
        snprintf(f[3], sizeof f[3], ": %d of %d", p->programs_done, p->programs);
        snprintf(f[4], sizeof f[4], " programs");
        if (last) snprintf(f[5], sizeof f[5], ", %.1f s", cli_mono_seconds() - c->compile_t0);
        const char *fields[6] = {f[0], f[1], f[2], f[3], f[4], f[5]};
        static const int drop[6] = {0, 4, 1, 0, 3, 2};
        cli_fit_line(line, sizeof line, cli_term_width(2), fields, drop, 6);
        fprintf(stderr, "\r\033[K%s%s", line, last ? "\n" : "");
        c->live = !last;
    } else if (!o->com.quiet && p->programs_done == 0) {
        fprintf(stderr, "nst: compiling kernels for this device (once; later runs load them "
                        "from the cache): %d programs\n", p->programs);
    }
    return g_stop != 0;
}

static int on_progress(const nst_progress *p, void *user) {
    progress_ctx *c = user;
    const run_opts *o = c->o;
    if (p->phase == NST_PHASE_COMPILE) return on_compile(c, p);
    c->iteration = p->iteration;
    c->iterations = p->iterations;
    c->scale = p->scale;
    double rate, eta;
    cli_rate_update(&c->rate, p->iteration, p->iterations, p->elapsed, &rate, &eta);
    char speed[32] = "";
    if (rate > 0) snprintf(speed, sizeof speed, "  %.2f it/s", rate);
    if (o->com.json) {
        printf("{\"event\":\"iteration\",\"iteration\":%d,\"iterations\":%d,\"evaluations\":%d,"
               "\"scale\":%d,\"width\":%d,\"height\":%d,"
               "\"loss\":%.9g,\"content\":%.9g,\"style\":%.9g,\"tv\":%.9g,\"elapsed\":%.4f,"
               "\"eta\":%.3f}\n",
               p->iteration, p->iterations, p->evaluations, p->scale, p->width, p->height,
               p->loss, p->content, p->style, p->tv, p->elapsed, eta);
        fflush(stdout);
    }
    if (!o->com.quiet && !o->com.json) {
        char etab[32];
        cli_fmt_duration(eta, etab, sizeof etab);
        int last = p->iteration == p->iterations;
        if (c->tty) {
            /* one line that fits the terminal: the loss terms go first, then the
             * image size, the speed, the scale, the loss, the ETA */
            char f[7][96] = {""}, line[512];
            if (o->com.p.scales > 1) {
                snprintf(f[0], sizeof f[0], "scale %d/%d", p->scale, o->com.p.scales);
                snprintf(f[1], sizeof f[1], " %dx%d", p->width, p->height);
            }
            snprintf(f[2], sizeof f[2], "  iteration %d/%d", p->iteration, p->iterations);
            snprintf(f[3], sizeof f[3], "  loss %.4g", p->loss);
            snprintf(f[4], sizeof f[4], " (content %.4g, style %.4g, tv %.4g)", p->content,
                     p->style, p->tv);
            snprintf(f[5], sizeof f[5], "%s", speed);
            snprintf(f[6], sizeof f[6], "  ETA %s", etab);
            const char *fields[7] = {f[0], f[1], f[2], f[3], f[4], f[5], f[6]};
            static const int drop[7] = {3, 5, 0, 2, 6, 4, 1};
            cli_fit_line(line, sizeof line, cli_term_width(2), fields, drop, 7);
            fprintf(stderr, "\r\033[K%s%s", line, last ? "\n" : "");
        } else if (p->iteration % o->print_every == 0 || p->iteration == 1 || last) {
            fprintf(stderr,
                    "iteration %d/%d  loss %.6g  content %.6g  style %.6g  tv %.6g%s\n",
                    p->iteration, p->iterations, p->loss, p->content, p->style, p->tv, speed);
        }
    }
    if (o->save_every && p->iteration % o->save_every == 0 && p->iteration < p->iterations) {
        char path[4096];
        cli_numbered_path(o->com.output, p->iteration, path, sizeof path);
        nst_image *img = NULL;
        nst_msg msg = {{0}};
        nst_status st = nst_transfer_snapshot(p->transfer, &img);
        if (st == NST_OK) st = nst_image_write(path, img, o->com.jpeg_quality, o->png16, &msg);
        if (st != NST_OK && !c->failed_save) {
            fprintf(stderr, "%snst: could not save %s: %s\n", c->tty ? "\n" : "", path,
                    msg.text[0] ? msg.text : nst_strerror(st));
            c->failed_save = 1;
        }
        nst_image_free(img);
    }
    return g_stop != 0;
}

/* ---- the memory plan ------------------------------------------------------------ */

static double mib(uint64_t b) { return b / 1048576.0; }

/* Prints the plan; returns the exit status of --dry-run. */
static int print_plan(const run_opts *o, const nst_runtime *rt, const nst_plan *pl) {
    const char *opt = pl->optimizer_kind == NST_OPTIMIZER_ADAM ? "adam" : "lbfgs";
    if (o->com.json) {
        printf("{\"event\":\"plan\",\"device\":\"%s\",\"width\":%d,\"height\":%d,"
               "\"style_width\":%d,\"style_height\":%d,\"budget\":%llu,\"reserve\":%llu,"
               "\"device_global\":%llu,\"device_max_alloc\":%llu,\"weights\":%llu,"
               "\"activations\":%llu,\"content_targets\":%llu,\"style_targets\":%llu,"
               "\"loss_scratch\":%llu,\"images\":%llu,\"optimizer\":%llu,"
               "\"targets_peak\":%llu,\"eval_peak\":%llu,\"peak\":%llu,"
               "\"largest_alloc\":%llu,\"tiled\":%s,\"tile\":%d,\"tile_width\":%d,"
               "\"tile_height\":%d,\"tiles_x\":%d,\"tiles_y\":%d,\"halo\":%d,"
               "\"optimizer_kind\":\"%s\",\"lbfgs_history\":%d,\"history_reduced\":%s,"
               "\"fits\":%s,\"max_size\":%d,\"note\":\"%s\"}\n",
               cli_js(nst_runtime_device(rt)->name), pl->width, pl->height, pl->style_width,
               pl->style_height, (unsigned long long)pl->budget,
               (unsigned long long)pl->reserve,
               (unsigned long long)pl->device_global, (unsigned long long)pl->device_max_alloc,
               (unsigned long long)pl->weights, (unsigned long long)pl->activations,
               (unsigned long long)pl->content_targets, (unsigned long long)pl->style_targets,
               (unsigned long long)pl->loss_scratch, (unsigned long long)pl->images,
               (unsigned long long)pl->optimizer, (unsigned long long)pl->targets_peak,
               (unsigned long long)pl->eval_peak, (unsigned long long)pl->peak,
               (unsigned long long)pl->largest_alloc, pl->tiled ? "true" : "false", pl->tile,
               pl->tile_w, pl->tile_h, pl->tiles_x, pl->tiles_y, pl->halo, opt,
               pl->lbfgs_history, pl->history_reduced ? "true" : "false",
               pl->fits ? "true" : "false", pl->max_size, cli_js(pl->note));
    } else {
        char act[96], optim[64];
        if (pl->tiled)
            snprintf(act, sizeof act, "one %dx%d tile", pl->tile_w, pl->tile_h);
        else
            snprintf(act, sizeof act, "the whole %dx%d image", pl->width, pl->height);
        if (pl->optimizer_kind == NST_OPTIMIZER_ADAM)
            snprintf(optim, sizeof optim, "Adam, 2 moments");
        else
            snprintf(optim, sizeof optim, "L-BFGS, %d pairs", pl->lbfgs_history);
        printf("memory plan: %dx%d output, style %dx%d, on %s\n", pl->width, pl->height,
               pl->style_width, pl->style_height, nst_runtime_device(rt)->name);
        printf("  budget           %8.0f MiB  (%s; device %.0f MiB, largest allocation %.0f "
               "MiB;\n                                %.0f MiB kept for CLBlast and the driver)\n",
               mib(pl->budget), o->com.p.max_memory ? "--max-memory" : "device less 10%",
               mib(pl->device_global), mib(pl->device_max_alloc), mib(pl->reserve));
        printf("  weights          %8.1f MiB\n", mib(pl->weights));
        printf("  activations      %8.1f MiB  (%s)\n", mib(pl->activations), act);
        printf("  content targets  %8.1f MiB\n", mib(pl->content_targets));
        printf("  style targets    %8.1f MiB\n", mib(pl->style_targets));
        printf("  loss scratch     %8.1f MiB\n", mib(pl->loss_scratch));
        printf("  images           %8.1f MiB\n", mib(pl->images));
        printf("  optimiser        %8.1f MiB  (%s)\n", mib(pl->optimizer), optim);
        printf("  peak             %8.1f MiB  (evaluation %.1f, targets %.1f); largest buffer "
               "%.1f MiB\n",
               mib(pl->peak), mib(pl->eval_peak), mib(pl->targets_peak), mib(pl->largest_alloc));
        if (pl->fits && pl->tiled)
            printf("  plan: %d x %d tiles of %dx%d pixels, halo %d\n", pl->tiles_x, pl->tiles_y,
                   pl->tile_w, pl->tile_h, pl->halo);
        else if (pl->fits)
            printf("  plan: the whole image at once\n");
        else if (pl->max_size)
            printf("  plan: does not fit; the largest --size that fits is %d\n", pl->max_size);
        else
            printf("  plan: does not fit at any size\n");
        printf("  %s\n", pl->note);
    }
    fflush(stdout);
    return pl->fits ? 0 : EXIT_RUNTIME;
}

/* ---- the main job -------------------------------------------------------------- */

/* The WCT stylisation of the options' images into *out (the models loaded
 * from dir on rt); prints its time. 0, or non-zero after saying why. */
static int run_wct(const run_opts *o, nst_runtime *rt, const char *dir, const nst_image *content,
                   nst_image *const *styles, nst_image *const *masks, nst_image **out) {
    nst_wct_models *m = NULL;
    nst_wct_params wp = o->wct;
    wp.size = o->com.p.size;
    wp.style_scale = o->com.p.style_scale;
    if (nst_wct_models_load(rt, dir, &m) != NST_OK) {
        fprintf(stderr, "nst: %s\n", nst_last_error(rt));
        return 1;
    }
    unsigned lv = wp.levels ? wp.levels : nst_wct_models_levels(m);
    char levels[32] = "";
    for (int L = NST_WCT_LEVELS; L >= 1; L--)
        if (lv & (1u << (L - 1)))
            snprintf(levels + strlen(levels), sizeof levels - strlen(levels), "%s%d",
                     levels[0] ? "," : "", L);
    double t0 = cli_mono_seconds();
    nst_status st = nst_wct_run(rt, m, &wp, content, (const nst_image *const *)styles,
                                o->com.nstyles, o->com.nblend ? o->com.blend : NULL,
                                o->nmasks ? (const nst_image *const *)masks : NULL, out);
    double ms = (cli_mono_seconds() - t0) * 1e3;
    nst_wct_models_free(m);
    if (st != NST_OK) {
        fprintf(stderr, "nst: %s\n", nst_last_error(rt));
        return 1;
    }
    if (o->com.json)
        printf("{\"event\":\"wct\",\"ms\":%.3f,\"width\":%d,\"height\":%d,\"levels\":\"%s\","
               "\"alpha\":%g,\"models\":\"%s\"}\n",
               ms, (*out)->w, (*out)->h, levels, wp.alpha, cli_js(dir));
    else if (!o->com.quiet)
        fprintf(stderr, "nst: WCT (levels %s, alpha %g, models %s) on %s: %dx%d in %.0f ms\n",
                levels, wp.alpha, dir, nst_runtime_device(rt)->name, (*out)->w, (*out)->h, ms);
    fflush(stdout);
    return 0;
}

static int run_transfer(int argc, char **argv, const nst_settings *set) {
    run_opts o;
    int rc = parse_run_args(argc, argv, &o);
    if (rc) return rc;
    char why[4400];
    if (!o.dry_run && cli_output_check(o.com.output, why, sizeof why) != 0) {
        /* found now, not after the whole run */
        fprintf(stderr, "nst: cannot write '%s': %s\n", o.com.output, why);
        return EXIT_RUNTIME;
    }

    nst_msg msg = {{0}};
    nst_image *content = NULL, *init = NULL, *result = NULL;
    nst_image *styles[NST_MAX_STYLES] = {0};
    nst_image *masks[NST_MAX_STYLES] = {0};
    nst_runtime *rt = NULL;
    nst_model *model = NULL;
    char wpath[4096];
    nst_status st;
    rc = EXIT_RUNTIME;

    char wctdir[NST_PATH_MAX];
    if ((o.method_wct || o.init_wct) &&
        (st = nst_wct_locate(set, o.wct_models, wctdir, sizeof wctdir, &msg)) != NST_OK) {
        fprintf(stderr, "nst: %s%s\n", o.init_wct ? "--init wct needs the WCT models: " : "",
                msg.text);
        goto done;
    }
    if (!o.method_wct &&
        (st = nst_weights_locate(set, o.com.weights, o.com.network, wpath, sizeof wpath, &msg)) !=
            NST_OK) {
        fprintf(stderr, "nst: %s\n", msg.text);
        goto done;
    }
    if ((st = nst_image_read(o.com.content, 0, &content, &msg)) != NST_OK) {
        fprintf(stderr, "nst: content image: %s\n", msg.text);
        goto done;
    }
    for (int i = 0; i < o.com.nstyles; i++) {
        if ((st = nst_image_read(o.com.styles[i], 0, &styles[i], &msg)) != NST_OK) {
            fprintf(stderr, "nst: style image: %s\n", msg.text);
            goto done;
        }
    }
    for (int i = 0; i < o.nmasks; i++) {
        if ((st = nst_image_read(o.masks[i], 0, &masks[i], &msg)) != NST_OK) {
            fprintf(stderr, "nst: mask: %s\n", msg.text);
            goto done;
        }
    }
    if (o.nmasks) o.com.p.masks = (const nst_image *const *)masks;
    if (o.com.p.init == NST_INIT_IMAGE && !o.init_wct) {
        if ((st = nst_image_read(o.init, 0, &init, &msg)) != NST_OK) {
            fprintf(stderr, "nst: --init image: %s\n", msg.text);
            goto done;
        }
        o.com.p.init_image = init;
    }
    nst_runtime_options ro = {0};
    ro.device = o.com.device;
    ro.no_cache = o.com.no_cache;
    nst_settings run_set = opt_settings(set, o.com.precision);
    ro.settings = &run_set;
    if ((st = nst_runtime_open(&rt, &ro, &msg)) != NST_OK) {
        fprintf(stderr, "nst: %s\n", msg.text);
        goto done;
    }
    if (*nst_runtime_warning(rt)) fprintf(stderr, "nst: warning: %s\n", nst_runtime_warning(rt));
    progress_ctx pc = {.o = &o, .tty = isatty(2)};
    if ((o.method_wct || o.init_wct) && !o.dry_run) {
        /* the one-pass stylisation: the result, or the optimisation's start */
        if (run_wct(&o, rt, wctdir, content, styles, masks, &init)) goto done;
        if (o.method_wct) {
            result = init;
            init = NULL;
            st = NST_OK;
            goto write;
        }
        o.com.p.init_image = init;
    }
    if (!o.method_wct && !o.dry_run &&
        (st = nst_transfer_prepare(rt, &o.com.p, on_progress, &pc)) != NST_OK) {
        fprintf(stderr, "%snst: %s\n", pc.live ? "\n" : "", nst_last_error(rt));
        rc = st == NST_ERR_INTERRUPTED ? EXIT_INTERRUPTED : EXIT_RUNTIME;
        goto done;
    }
    if ((st = nst_model_load_network(rt, wpath, o.com.network, &model)) != NST_OK) {
        fprintf(stderr, "nst: %s\n", nst_last_error(rt));
        goto done;
    }
    if (o.dry_run) {
        nst_plan plan;
        int wh[2 * NST_MAX_STYLES];
        for (int i = 0; i < o.com.nstyles; i++) {
            wh[2 * i] = styles[i]->w;
            wh[2 * i + 1] = styles[i]->h;
        }
        st = nst_transfer_plan(rt, model, &o.com.p, content->w, content->h, wh, o.com.nstyles,
                               &plan);
        if (st != NST_OK) {
            fprintf(stderr, "nst: %s\n", nst_last_error(rt));
            goto done;
        }
        rc = print_plan(&o, rt, &plan);
        if (!plan.fits) fprintf(stderr, "nst: %s\n", plan.note);
        goto done;
    }
    if (!o.com.quiet && !o.com.json)
        fprintf(stderr, "nst: %s on %s, weights %s (%s)\n", o.com.content,
                nst_runtime_device(rt)->name, wpath, nst_network_name(nst_model_network(model)));

    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    st = nst_transfer_run(rt, model, &o.com.p, content, (const nst_image *const *)styles,
                          o.com.nstyles, o.com.nblend ? o.com.blend : NULL, on_progress, &pc,
                          &result);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (st != NST_OK && st != NST_ERR_INTERRUPTED)
        fprintf(stderr, "%snst: %s\n", pc.tty && !o.com.quiet ? "\n" : "", nst_last_error(rt));
write:
    if (result && (st == NST_OK || st == NST_ERR_INTERRUPTED || st == NST_ERR_NUMERIC)) {
        const char *sep =
            st == NST_ERR_INTERRUPTED && pc.tty && !o.com.quiet && !o.com.json ? "\n" : "";
        char kept[4200];
        const char *out = o.com.output;
        nst_status ws = nst_image_write(o.com.output, result, o.com.jpeg_quality, o.png16, &msg);
        if (ws != NST_OK) {
            /* keep the work: beside the output, in the cache directory, in /tmp */
            fprintf(stderr, "%snst: %s\n", sep, msg.text);
            sep = "";
            out = NULL;
            for (int w = 0; w < 3 && !out; w++) {
                nst_msg m2 = {{0}};
                if (cli_fallback_path(o.com.output, w, set->cache_dir, kept, sizeof kept) == 0 &&
                    nst_image_write(kept, result, o.com.jpeg_quality, o.png16, &m2) == NST_OK)
                    out = kept;
            }
            if (!out) {
                fprintf(stderr, "nst: the image could not be kept anywhere (tried beside %s, the "
                                "cache directory and the temporary directory)\n",
                        o.com.output);
                goto done;
            }
        }
        if (st == NST_ERR_INTERRUPTED && !o.com.quiet) {
            char at[64] = "";
            if (o.com.p.scales > 1)
                snprintf(at, sizeof at, "scale %d of %d, ", pc.scale, o.com.p.scales);
            fprintf(stderr,
                    "%snst: interrupted at %siteration %d of %d; image so far written to "
                    "%s%s\n",
                    sep, at, pc.iteration, pc.iterations, out,
                    out == o.com.output ? "" : " instead");
        } else if (st == NST_ERR_NUMERIC) {
            fprintf(stderr, "nst: wrote the last finite image to %s\n", out);
        } else if (out != o.com.output) {
            fprintf(stderr, "nst: wrote the image to %s instead\n", out);
        } else if (!o.com.quiet && !o.com.json) {
            fprintf(stderr, "nst: wrote %s (%dx%d; peak device memory %.0f MiB)\n", out,
                    result->w, result->h, nst_runtime_peak_bytes(rt) / 1048576.0);
        }
        if (o.com.json)
            printf("{\"event\":\"done\",\"output\":\"%s\",\"width\":%d,\"height\":%d,"
                   "\"interrupted\":%s,\"iteration\":%d,\"peak_mib\":%.1f}\n",
                   cli_js(out), result->w, result->h, st == NST_ERR_INTERRUPTED ? "true" : "false",
                   pc.iteration, nst_runtime_peak_bytes(rt) / 1048576.0);
        if (ws != NST_OK) goto done; /* exit 1: the output is not where it was asked for */
    }
    rc = st == NST_OK ? 0 : st == NST_ERR_INTERRUPTED ? EXIT_INTERRUPTED : EXIT_RUNTIME;
done:
    nst_image_free(result);
    nst_image_free(content);
    nst_image_free(init);
    for (int i = 0; i < NST_MAX_STYLES; i++) {
        nst_image_free(styles[i]);
        nst_image_free(masks[i]);
    }
    nst_model_free(model);
    nst_runtime_close(rt);
    return rc;
}

/* ---- devices ------------------------------------------------------------------- */

/* Runs the self-check on every selected device (all of them by default). */
static int devices_check(const nst_device_info *devs, int n, const char *sel, int tiny, int json,
                         const nst_settings *set) {
    int failed = 0, checked = 0;
    for (int i = 0; i < n; i++) {
        if (sel) {
            nst_msg m = {{0}};
            int idx = -1;
            if (nst_device_select(devs, n, sel, &idx, &m) != NST_OK) {
                fprintf(stderr, "nst: %s\n", m.text);
                return EXIT_RUNTIME;
            }
            if (idx != i) continue;
        }
        char index[16];
        snprintf(index, sizeof index, "%d", i);
        nst_runtime *rt = NULL;
        nst_runtime_options ro = {0};
        ro.device = index;
        ro.settings = set;
        nst_msg msg = {{0}};
        nst_check_row rows[NST_CHECK_MAX_ROWS];
        int nrows = 0;
        checked++;
        if (nst_runtime_open(&rt, &ro, &msg) != NST_OK) {
            fprintf(stderr, "nst: device %d: %s\n", i, msg.text);
            failed++;
            continue;
        }
        nst_status st = nst_device_check(rt, tiny, rows, NST_CHECK_MAX_ROWS, &nrows);
        if (json) {
            printf("{\"device\":%d,\"name\":\"%s\",\"gemm\":\"%s\",\"pass\":%s,\"rows\":[", i,
                   cli_js(devs[i].name), cli_js(nst_runtime_gemm(rt)),
                   st == NST_OK ? "true" : "false");
            for (int r = 0; r < nrows; r++)
                printf("%s{\"op\":\"%s\",\"max_abs\":%.3g,\"max_rel\":%.3g,\"pass\":%s,"
                       "\"ms\":%.3f}",
                       r ? "," : "", rows[r].op, rows[r].measured ? rows[r].max_abs : 0,
                       rows[r].measured ? rows[r].max_rel : 0, rows[r].pass ? "true" : "false",
                       rows[r].ms);
            printf("]}\n");
        } else {
            nst_device_check_print(stdout, nst_runtime_device(rt), rows, nrows);
            printf("  matrix products: %s\n", nst_runtime_gemm(rt));
            if (st != NST_OK) printf("  FAILED: %s\n", nst_last_error(rt));
            printf("\n");
        }
        fflush(stdout);
        failed += st != NST_OK;
        nst_runtime_close(rt);
    }
    if (!json)
        printf("%d of %d device%s passed\n", checked - failed, checked, checked == 1 ? "" : "s");
    return failed ? EXIT_RUNTIME : 0;
}

/* Where device d runs the matrix products: "host" or "clblast" (the
 * settings' gemm, else detection), or NULL with the reason in m. */
static const char *gemm_key(const nst_device_info *d, const nst_settings *set, nst_msg *m) {
    int host = 0;
    if (nst_gemm_choose(d, set->gemm, &host, m) != NST_OK) return NULL;
    return host ? "host" : "clblast";
}

static const char devices_usage[] =
    "usage: nst devices [--check [--tiny]] [--device SEL] [--precision fp32|tf32]\n"
    "                   [--json]\n\n"
    "Lists every OpenCL device; * marks the default.\n"
    "--check runs every kernel, the losses, the optimisers and a short VGG\n"
    "forward and backward on each device (or the one --device selects) against\n"
    "plain-C references and prints the errors, the tolerances and the times;\n"
    "the exit status is 1 when any device fails. --tiny keeps the cases small\n"
    "for slow devices. --precision tf32 checks the tensor-core products (and the\n"
    "network through them) against their error bounds instead.\n";

static int cmd_devices(int argc, char **argv, const nst_settings *given) {
    int check = 0, tiny = 0, json = 0, c;
    const char *sel = NULL, *precision = NULL;
    optind = 0;
    while ((c = opt_next(argc, argv, "-:d:h", OPT_DEVICES, "devices", "nst", devices_usage)) !=
           CLI_END) {
        if (c == CLI_ERROR) return EXIT_USAGE;
        if (c == O_CHECK) {
            check = 1;
        } else if (c == O_TINY) {
            tiny = 1;
        } else if (c == O_JSON) {
            json = 1;
        } else if (c == 'd') {
            sel = optarg;
        } else if (c == O_PRECISION) {
            if (opt_precision(optarg, "nst")) return EXIT_USAGE;
            precision = optarg;
        } else {
            return usage_error("devices: unexpected argument '%s'", optarg);
        }
    }
    const nst_settings dev_set = opt_settings(given, precision), *set = &dev_set;
    nst_device_info *devs = NULL;
    int n = 0;
    if (cli_devices_list(set, &devs, &n)) return EXIT_RUNTIME;
    int rc = 0;
    if (check) {
        rc = devices_check(devs, n, sel, tiny, json, set);
    } else {
        for (int i = 0; i < n; i++) {
            const nst_device_info *d = &devs[i];
            nst_msg gm = {{0}};
            if (json) {
                const char *gemm = gemm_key(d, set, &gm);
                printf("{\"index\":%d,\"name\":\"%s\",\"platform\":\"%s\",\"type\":\"%s\","
                       "\"global_mem\":%llu,\"max_alloc\":%llu,\"compute_units\":%u,"
                       "\"version\":\"%s\",\"fp16\":%s,\"tf32\":%s,\"gemm\":\"%s\","
                       "\"default\":%s}\n",
                       d->index, cli_js(d->name), cli_js(d->platform), d->type,
                       (unsigned long long)d->global_mem, (unsigned long long)d->max_alloc,
                       d->compute_units, cli_js(d->version), d->fp16 ? "true" : "false",
                       d->tf32 ? "true" : "false",
                       cli_js(gemm ? gemm : gm.text),
                       d->is_default ? "true" : "false");
                continue;
            }
            printf("%s%d: %s\n", d->is_default ? "*" : " ", d->index, d->name);
            printf("    platform      %s\n", d->platform);
            printf("    type          %s\n", d->type);
            printf("    memory        %.0f MiB global, %.0f MiB max allocation, %.0f KiB local\n",
                   d->global_mem / 1048576.0, d->max_alloc / 1048576.0, d->local_mem / 1024.0);
            printf("    compute units %u (max work-group %zu)\n", d->compute_units,
                   d->max_work_group);
            printf("    version       %s; %s; driver %s\n", d->version, d->c_version, d->driver);
            printf("    fp16          %s\n", d->fp16 ? "yes" : "no");
            printf("    TF32          %s\n", d->tf32 ? "yes (--precision tf32)" : "no");
            const char *g = gemm_key(d, set, &gm);
            printf("    GEMM          %s\n", !g                  ? gm.text
                                             : !strcmp(g, "host") ? "host BLAS on mapped buffers"
                                                                  : "CLBlast");
        }
        if (!json) printf("(* = default; choose with --device N, --device NAME or NST_DEVICE)\n");
    }
    free(devs);
    return rc;
}

/* ---- bench ---------------------------------------------------------------------- */

/* Kernel build time with an empty cache, then from the cache it filled. */
static int bench_build_times(const char *device, const nst_settings *set, double *cold,
                             double *warm, nst_msg *msg) {
    char dir[] = "/tmp/nst-bench-cache-XXXXXX";
    if (!mkdtemp(dir)) {
        snprintf(msg->text, sizeof msg->text, "cannot create a temporary cache directory");
        return 0;
    }
    nst_settings fresh = *set; /* an empty cache of its own */
    snprintf(fresh.cache_dir, sizeof fresh.cache_dir, "%s", dir);
    fresh.no_cache = 0;
    int ok = 1;
    for (int pass = 0; pass < 2 && ok; pass++) {
        nst_runtime *rt = NULL;
        nst_runtime_options ro = {0};
        ro.device = device;
        ro.settings = &fresh;
        ok = nst_runtime_open(&rt, &ro, msg) == NST_OK &&
             nst_runtime_build_all(rt, pass ? warm : cold) == NST_OK;
        if (!ok && rt) snprintf(msg->text, sizeof msg->text, "%s", nst_last_error(rt));
        nst_runtime_close(rt);
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) { /* a leftover temporary directory is harmless */ }
    return ok;
}

static const char bench_usage[] =
    "usage: nst bench [--size N[,N...]] [--evals N] [--device SEL] [--weights FILE]\n"
    "                 [--network vgg19|vgg16] [--width-mult F] [--tile N]\n"
    "                 [--precision fp32|tf32] [--json]\n\n"
    "Times one optimiser evaluation (VGG-19 forward to relu5_1, content, style and\n"
    "TV losses, backward to the image) per size: median, min and max over --evals\n"
    "runs after 2 warm-ups, GFLOP/s of the counted convolution work, the kernels\n"
    "by device time, peak device memory, and kernel build time cold and cached.\n"
    "Without --weights it uses a generated network of the real VGG-19 widths\n"
    "(timing does not depend on weight values), or of VGG-16's with --network\n"
    "vgg16. --tile N evaluates in tiles of at most N pixels a side. --precision\n"
    "tf32 times the tensor-core products (NVIDIA, compute capability 8.0+).\n"
    "Defaults: --size 256,512 --evals 10.\n"
    "--run N times whole runs instead: see nst bench --run 1 --help.\n";

static int cmd_bench(int argc, char **argv, const nst_settings *given) {
    for (int i = 1; i < argc && strcmp(argv[i], "--"); i++) /* whole runs: bench_run.c */
        if (!strcmp(argv[i], "--run") || !strncmp(argv[i], "--run=", 6))
            return nst_bench_run(argc, argv);
    const char *device = NULL, *weights = NULL, *precision = NULL;
    nst_network network = NST_NETWORK_AUTO;
    int sizes[16], nsizes = 0, evals = 10, json = 0, c;
    double width = 1.0;
    nst_params p;
    nst_params_default(&p);
    optind = 0;
    while ((c = opt_next(argc, argv, "-:d:w:h", OPT_BENCH, "bench", "nst", bench_usage)) !=
           CLI_END) {
        const char *v = optarg;
        if (c == CLI_ERROR) return EXIT_USAGE;
        if (c == O_SIZE) {
            const char *p = v;
            while (*p) {
                double d;
                if (nsizes == 16 || !cli_parse_double(p, &d, &p) || d < 16 || d > 16384 ||
                    d != (int)d)
                    return usage_error("--size '%s': give sizes in 16..16384, comma-separated", v);
                sizes[nsizes++] = (int)d;
                if (*p == ',') p++;
                else if (*p) return usage_error("--size '%s': give sizes separated by commas", v);
            }
        } else if (c == O_EVALS) {
            if (!cli_parse_int(v, &evals) || evals < 1 || evals > 10000)
                return usage_error("--evals '%s': give a whole number in 1..10000", v);
        } else if (c == 'd') {
            device = v;
        } else if (c == 'w') {
            weights = v;
        } else if (c == O_NETWORK) {
            if (opt_network(v, &network, "nst")) return EXIT_USAGE;
        } else if (c == O_WIDTH_MULT) {
            if (!cli_parse_double(v, &width, NULL) || !(width > 0) || width > 4)
                return usage_error("--width-mult '%s': give a number in (0, 4]", v);
        } else if (c == O_TILE) {
            if (!cli_parse_int(v, &p.tile))
                return usage_error("--tile '%s': give a size in pixels", v);
        } else if (c == O_JSON) {
            json = 1;
        } else if (c == O_PRECISION) {
            if (opt_precision(v, "nst")) return EXIT_USAGE;
            precision = v;
        } else {
            return usage_error("bench: unexpected argument '%s'", v);
        }
    }
    const nst_settings bench_set = opt_settings(given, precision), *set = &bench_set;
    nst_msg msg = {{0}};
    if (nst_params_check(&p, 1, NULL, &msg) != NST_OK) return usage_error("%s", msg.text);
    if (nsizes == 0) {
        sizes[0] = 256;
        sizes[1] = 512;
        nsizes = 2;
    }
    double cold = 0, warm = 0;
    if (!bench_build_times(device, set, &cold, &warm, &msg)) {
        fprintf(stderr, "nst: %s\n", msg.text);
        return EXIT_RUNTIME;
    }
    int rc = 0;
    for (int si = 0; si < nsizes && rc == 0; si++) {
        nst_runtime *rt = NULL;
        nst_model *model = NULL;
        nst_runtime_options ro = {0};
        ro.device = device;
        ro.profile = 1;
        ro.settings = set;
        nst_bench_result r;
        nst_status st = nst_runtime_open(&rt, &ro, &msg);
        if (st != NST_OK) {
            fprintf(stderr, "nst: %s\n", msg.text);
            return EXIT_RUNTIME;
        }
        st = weights ? nst_model_load_network(rt, weights, network, &model)
                     : nst_model_generate_network(rt, network, 1, width, &model);
        if (st == NST_OK) st = nst_bench_eval(rt, model, &p, sizes[si], sizes[si], evals, &r);
        if (st != NST_OK) {
            fprintf(stderr, "nst: bench at %d: %s\n", sizes[si], nst_last_error(rt));
            rc = EXIT_RUNTIME;
        } else if (json) {
            printf("{\"device\":\"%s\",\"size\":%d,\"evals\":%d,\"median_ms\":%.3f,\"min_ms\":%.3f,"
                   "\"max_ms\":%.3f,\"gflop\":%.2f,\"gflops\":%.1f,\"peak_mib\":%.1f,"
                   "\"build_cold_s\":%.3f,\"build_cached_s\":%.3f,\"gemm_tuned\":%s,"
                   "\"gemm\":\"%s\",\"kernels\":[",
                   cli_js(nst_runtime_device(rt)->name), r.w, r.evals, r.median_ms, r.min_ms,
                   r.max_ms,
                   r.gflop, r.gflops, r.peak_mib, cold, warm,
                   nst_tune_applied(rt) ? "true" : "false", cli_js(nst_runtime_gemm(rt)));
            for (int k = 0; k < r.nkernels; k++)
                printf("%s{\"name\":\"%s\",\"ms\":%.3f,\"calls\":%d}", k ? "," : "",
                       r.kernels[k].name, r.kernels[k].ms, r.kernels[k].calls);
            printf("]}\n");
        } else {
            printf("%s, %dx%d, %d evaluations: median %.2f ms (min %.2f, max %.2f), "
                   "%.1f GFLOP, %.1f GFLOP/s, peak %.0f MiB\n",
                   nst_runtime_device(rt)->name, r.w, r.h, r.evals, r.median_ms, r.min_ms,
                   r.max_ms, r.gflop, r.gflops, r.peak_mib);
            if (si == 0)
                printf("  kernel build: %.3f s cold, %.3f s from cache\n", cold, warm);
            printf("  GEMM: %s\n", nst_runtime_gemm(rt));
            if (*nst_tune_note(rt)) /* CLBlast's kernel parameters, when it ran */
                printf("  GEMM parameters: %s\n", nst_tune_note(rt));
            double total = 0;
            for (int k = 0; k < r.nkernels; k++) total += r.kernels[k].ms;
            for (int k = 0; k < r.nkernels && k < 12; k++)
                printf("  %-28s %9.3f ms %5.1f%% %5d calls\n", r.kernels[k].name,
                       r.kernels[k].ms, total > 0 ? 100 * r.kernels[k].ms / total : 0,
                       r.kernels[k].calls);
        }
        fflush(stdout);
        nst_model_free(model);
        nst_runtime_close(rt);
    }
    return rc;
}

/* ---- tune ----------------------------------------------------------------------- */

static void tune_progress(void *ctx, const char *line) {
    (void)ctx;
    printf("  %s\n", line);
    fflush(stdout);
}

static const char tune_usage[] =
    "usage: nst tune [--device SEL] [--seconds N]\n\n"
    "Searches CLBlast's GEMM kernel parameters for the device for N seconds\n"
    "(default 300, kernel builds included; each candidate builds its kernels,\n"
    "which takes 10 s or more on a CPU), keeps the fastest whose results match a\n"
    "reference, and saves them in the cache directory for that device, driver\n"
    "and CLBlast. Every later run on the device uses them; NST_TUNE=0 turns\n"
    "that off. Running it again continues the search from the saved result.\n";

static int cmd_tune(int argc, char **argv, const nst_settings *set) {
    const char *device = NULL;
    double seconds = 300;
    int c;
    optind = 0;
    while ((c = opt_next(argc, argv, "-:d:h", OPT_TUNE, "tune", "nst", tune_usage)) != CLI_END) {
        if (c == CLI_ERROR) return EXIT_USAGE;
        if (c == O_SECONDS) {
            if (!cli_parse_double(optarg, &seconds, NULL) || !(seconds >= 1) || seconds > 86400)
                return usage_error("--seconds '%s': give a number in 1..86400", optarg);
        } else if (c == 'd') {
            device = optarg;
        } else {
            return usage_error("tune: unexpected argument '%s'", optarg);
        }
    }
    nst_msg msg = {{0}};
    nst_runtime *rt = NULL;
    nst_runtime_options ro = {0};
    ro.device = device;
    ro.settings = set;
    if (nst_runtime_open(&rt, &ro, &msg) != NST_OK) {
        fprintf(stderr, "nst: %s\n", msg.text);
        return EXIT_RUNTIME;
    }
    printf("tuning GEMM on %s for %.0f s\n", nst_runtime_device(rt)->name, seconds);
    /* a new seed each run: running it again explores further */
    nst_tune_options to = {seconds, (unsigned long long)time(NULL) * 2654435761ULL + getpid(),
                           tune_progress, NULL};
    nst_tune_result r;
    int rc = 0;
    if (nst_tune_gemm(rt, &to, &r) != NST_OK) {
        fprintf(stderr, "nst: %s\n", nst_last_error(rt));
        rc = EXIT_RUNTIME;
    } else {
        printf("%d candidates in %.0f s (%d wrong, %d failed): %.1f GFLOP/s, CLBlast's own "
               "%.1f\nsaved %s (%s)\n",
               r.tried, r.elapsed, r.rejected, r.failed, r.best_gflops, r.default_gflops, r.path,
               r.saved_params ? "tuned parameters" : "nothing faster: CLBlast's own kept");
        /* a search needs a few dozen candidates; say what that takes here */
        if (r.tried < 25 && r.candidate_seconds > 0)
            printf("a short search: a candidate takes about %.0f s on this device (building its "
                   "kernels, mostly); --seconds %.0f would try about 25\n",
                   r.candidate_seconds, 60 * ceil((r.elapsed - r.tried * r.candidate_seconds +
                                                   25 * r.candidate_seconds) / 60));
    }
    nst_runtime_close(rt);
    return rc;
}

int main(int argc, char **argv) {
    /* the environment is read here, once; the library only sees the settings */
    nst_settings set;
    nst_msg msg = {{0}};
    if (nst_settings_from_env(&set, &msg) != NST_OK) {
        fprintf(stderr, "nst: %s\n", msg.text);
        return EXIT_USAGE;
    }
    if (argc >= 2 && !strcmp(argv[1], "bench")) return cmd_bench(argc - 1, argv + 1, &set);
    if (argc >= 2 && !strcmp(argv[1], "devices")) return cmd_devices(argc - 1, argv + 1, &set);
    if (argc >= 2 && !strcmp(argv[1], "tune")) return cmd_tune(argc - 1, argv + 1, &set);
    if (argc >= 2 && !strcmp(argv[1], "video")) return cmd_video(argc - 1, argv + 1, &set);
    if (argc >= 2 && !strcmp(argv[1], "batch")) { /* a job is checked as the main command */
        struct option job_options[OPT_MAX];
        opt_select(OPT_RUN, job_options);
        return nst_batch(argc - 1, argv + 1, run_shortopts, job_options, &set);
    }
    if (argc >= 2 && !strcmp(argv[1], "studio")) return studio_main(argc - 1, argv + 1, &set);
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_USAGE;
    }
    return run_transfer(argc, argv, &set);
}
