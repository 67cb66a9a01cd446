/* options.c: the long options of every command in one table, and the
 * parsing of the options that commands share (options.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "options.h"

/* Every long option of every command, once, with the commands that take it
 * (opt_select). */
static const struct {
    struct option o;
    unsigned commands; /* OPT_RUN | OPT_VIDEO ...: the commands that take it */
} all_options[] = {
    /* the images */
    {{"content", required_argument, NULL, 'c'}, OPT_RUN | OPT_VIDEO},
    {{"style", required_argument, NULL, 's'}, OPT_RUN | OPT_VIDEO},
    {{"style-blend", required_argument, NULL, O_STYLE_BLEND}, OPT_RUN | OPT_VIDEO},
    {{"output", required_argument, NULL, 'o'}, OPT_RUN | OPT_VIDEO},
    {{"size", required_argument, NULL, O_SIZE}, OPT_RUN | OPT_VIDEO | OPT_BENCH},
    {{"style-scale", required_argument, NULL, O_STYLE_SCALE}, OPT_RUN | OPT_VIDEO},
    /* the result */
    {{"jpeg-quality", required_argument, NULL, O_JPEG_QUALITY}, OPT_RUN | OPT_VIDEO},
    {{"png16", no_argument, NULL, O_PNG16}, OPT_RUN},
    {{"content-weight", required_argument, NULL, O_CONTENT_WEIGHT}, OPT_RUN | OPT_VIDEO},
    {{"style-weight", required_argument, NULL, O_STYLE_WEIGHT}, OPT_RUN | OPT_VIDEO},
    {{"tv-weight", required_argument, NULL, O_TV_WEIGHT}, OPT_RUN | OPT_VIDEO},
    {{"style-loss", required_argument, NULL, O_STYLE_LOSS}, OPT_RUN},
    /* the layers */
    {{"content-layers", required_argument, NULL, O_CONTENT_LAYERS}, OPT_RUN | OPT_VIDEO},
    {{"style-layers", required_argument, NULL, O_STYLE_LAYERS}, OPT_RUN | OPT_VIDEO},
    {{"style-layer-weights", required_argument, NULL, O_STYLE_LAYER_WEIGHTS}, OPT_RUN | OPT_VIDEO},
    {{"pooling", required_argument, NULL, O_POOLING}, OPT_RUN | OPT_VIDEO},
    {{"init", required_argument, NULL, O_INIT}, OPT_RUN},
    {{"seed", required_argument, NULL, O_SEED}, OPT_RUN | OPT_VIDEO},
    /* colour and regions */
    {{"preserve-colors", no_argument, NULL, O_PRESERVE_COLORS}, OPT_RUN | OPT_VIDEO},
    {{"preserve-colours", no_argument, NULL, O_PRESERVE_COLORS}, OPT_RUN | OPT_VIDEO},
    {{"luminance-only", no_argument, NULL, O_LUMINANCE_ONLY}, OPT_RUN | OPT_VIDEO},
    {{"luminance-match", required_argument, NULL, O_LUMINANCE_MATCH}, OPT_RUN | OPT_VIDEO},
    {{"mask", required_argument, NULL, O_MASK}, OPT_RUN},
    /* resolution and averaging */
    {{"scales", required_argument, NULL, O_SCALES}, OPT_RUN | OPT_VIDEO},
    {{"scale-iterations", required_argument, NULL, O_SCALE_ITERATIONS}, OPT_RUN | OPT_VIDEO},
    {{"average-decay", required_argument, NULL, O_AVERAGE_DECAY}, OPT_RUN | OPT_VIDEO},
    {{"iterations", required_argument, NULL, 'n'}, OPT_RUN | OPT_VIDEO},
    /* the optimiser */
    {{"optimizer", required_argument, NULL, O_OPTIMIZER}, OPT_RUN | OPT_VIDEO},
    {{"learning-rate", required_argument, NULL, O_LEARNING_RATE}, OPT_RUN | OPT_VIDEO},
    {{"lbfgs-history", required_argument, NULL, O_LBFGS_HISTORY}, OPT_RUN | OPT_VIDEO},
    {{"line-search", no_argument, NULL, O_LINE_SEARCH}, OPT_RUN | OPT_VIDEO},
    /* memory */
    {{"max-memory", required_argument, NULL, O_MAX_MEMORY}, OPT_RUN | OPT_VIDEO},
    {{"tile", required_argument, NULL, O_TILE}, OPT_RUN | OPT_VIDEO | OPT_BENCH},
    {{"dry-run", no_argument, NULL, O_DRY_RUN}, OPT_RUN},
    /* device and files */
    {{"device", required_argument, NULL, 'd'},
     OPT_RUN | OPT_VIDEO | OPT_DEVICES | OPT_BENCH | OPT_TUNE},
    {{"weights", required_argument, NULL, 'w'}, OPT_RUN | OPT_VIDEO | OPT_BENCH},
    {{"network", required_argument, NULL, O_NETWORK}, OPT_RUN | OPT_VIDEO | OPT_BENCH},
    {{"no-cache", no_argument, NULL, O_NO_CACHE}, OPT_RUN | OPT_VIDEO},
    {{"precision", required_argument, NULL, O_PRECISION},
     OPT_RUN | OPT_VIDEO | OPT_DEVICES | OPT_BENCH},
    /* progress */
    {{"print-every", required_argument, NULL, O_PRINT_EVERY}, OPT_RUN},
    {{"save-every", required_argument, NULL, O_SAVE_EVERY}, OPT_RUN},
    {{"quiet", no_argument, NULL, 'q'}, OPT_RUN | OPT_VIDEO},
    {{"json", no_argument, NULL, O_JSON}, OPT_RUN | OPT_VIDEO | OPT_DEVICES | OPT_BENCH},
    {{"help", no_argument, NULL, 'h'}, OPT_RUN | OPT_VIDEO | OPT_DEVICES | OPT_BENCH | OPT_TUNE},
    {{"version", no_argument, NULL, O_VERSION}, OPT_RUN},
    /* devices, bench and tune */
    {{"check", no_argument, NULL, O_CHECK}, OPT_DEVICES},
    {{"tiny", no_argument, NULL, O_TINY}, OPT_DEVICES},
    {{"evals", required_argument, NULL, O_EVALS}, OPT_BENCH},
    {{"width-mult", required_argument, NULL, O_WIDTH_MULT}, OPT_BENCH},
    {{"seconds", required_argument, NULL, O_SECONDS}, OPT_TUNE},
    /* instant style */
    {{"method", required_argument, NULL, O_METHOD}, OPT_RUN},
    {{"wct-models", required_argument, NULL, O_WCT_MODELS}, OPT_RUN},
    {{"alpha", required_argument, NULL, O_ALPHA}, OPT_RUN},
    {{"wct-levels", required_argument, NULL, O_WCT_LEVELS}, OPT_RUN},
    /* nst video */
    {{"temporal-weight", required_argument, NULL, O_TEMPORAL_WEIGHT}, OPT_VIDEO},
    {{"frame-iterations", required_argument, NULL, O_FRAME_ITERATIONS}, OPT_VIDEO},
    {{"flow", required_argument, NULL, O_FLOW}, OPT_VIDEO},
    {{"frames", required_argument, NULL, O_FRAMES}, OPT_VIDEO},
    {{"work-dir", required_argument, NULL, O_WORK_DIR}, OPT_VIDEO},
    {{"keep-frames", no_argument, NULL, O_KEEP_FRAMES}, OPT_VIDEO},
    {{"codec", required_argument, NULL, O_CODEC}, OPT_VIDEO},
    {{"long-term", required_argument, NULL, O_LONG_TERM}, OPT_VIDEO},
    {{"passes", required_argument, NULL, O_PASSES}, OPT_VIDEO},
    {{"start-frame", required_argument, NULL, O_START_FRAME}, OPT_VIDEO},
    {{NULL, 0, NULL, 0}, 0}};

/* a compile error when OPT_MAX is too small for the table */
typedef char opt_max_fits[sizeof all_options / sizeof all_options[0] <= OPT_MAX ? 1 : -1];

/* The options of all_options named in `names` into longopts (OPT_MAX
 * entries), ended by a zero entry. */
void opt_select(unsigned command, struct option *longopts) {
    int n = 0;
    for (int k = 0; all_options[k].o.name; k++)
        if (all_options[k].commands & command) longopts[n++] = all_options[k].o;
    longopts[n] = (struct option){NULL, 0, NULL, 0};
}

int opt_next(int argc, char **argv, const char *shortopts, unsigned command, const char *sub,
             const char *usage, const char *help) {
    struct option longopts[OPT_MAX];
    opt_select(command, longopts);
    char err[700];
    int c = cli_next(argc, argv, shortopts, longopts, sub, err, sizeof err);
    if (c == CLI_ERROR) cli_usage_error(usage, "%s", err);
    if (c == 'h') {
        fputs(help, stdout);
        exit(0);
    }
    return c;
}

int opt_params(int c, const char *v, nst_params *p, const char *usage) {
    /* the options that are plain numbers */
    const struct {
        int val;
        const char *name;
        int *i;    /* a whole number, */
        double *d; /* or any */
    } nums[] = {{O_SIZE, "--size", &p->size, NULL},
                {'n', "--iterations", &p->iterations, NULL},
                {O_SCALES, "--scales", &p->scales, NULL},
                {O_SCALE_ITERATIONS, "--scale-iterations", &p->scale_iterations, NULL},
                {O_LBFGS_HISTORY, "--lbfgs-history", &p->lbfgs_history, NULL},
                {O_STYLE_SCALE, "--style-scale", NULL, &p->style_scale},
                {O_CONTENT_WEIGHT, "--content-weight", NULL, &p->content_weight},
                {O_STYLE_WEIGHT, "--style-weight", NULL, &p->style_weight},
                {O_TV_WEIGHT, "--tv-weight", NULL, &p->tv_weight},
                {O_TEMPORAL_WEIGHT, "--temporal-weight", NULL, &p->temporal_weight},
                {O_LEARNING_RATE, "--learning-rate", NULL, &p->learning_rate},
                {O_AVERAGE_DECAY, "--average-decay", NULL, &p->average_decay}};
    for (size_t k = 0; k < sizeof nums / sizeof nums[0]; k++) {
        if (nums[k].val != c) continue;
        if (nums[k].i ? !cli_parse_int(v, nums[k].i) : !cli_parse_double(v, nums[k].d, NULL))
            return cli_usage_error(usage, "%s '%s': give a %snumber", nums[k].name, v,
                                   nums[k].i ? "whole " : "");
        return 0;
    }
    switch (c) {
    case O_PRESERVE_COLORS: p->preserve_colors = 1; return 0;
    case O_LUMINANCE_ONLY: p->luminance_only = 1; return 0;
    case O_LINE_SEARCH: p->line_search = 1; return 0;
    case O_CONTENT_LAYERS: p->content_layers = v; return 0;
    case O_STYLE_LAYERS: p->style_layers = v; return 0;
    case O_LUMINANCE_MATCH:
        if (!strcmp(v, "mean")) p->luminance_histogram = 0;
        else if (!strcmp(v, "histogram")) p->luminance_histogram = 1;
        else return cli_usage_error(usage, "--luminance-match '%s': choose mean or histogram", v);
        return 0;
    case O_OPTIMIZER:
        if (!strcmp(v, "lbfgs")) p->optimizer = NST_OPTIMIZER_LBFGS;
        else if (!strcmp(v, "adam")) p->optimizer = NST_OPTIMIZER_ADAM;
        else return cli_usage_error(usage, "--optimizer '%s': choose lbfgs or adam", v);
        return 0;
    case O_MAX_MEMORY: {
        unsigned long long b;
        if (!cli_parse_bytes(v, &b))
            return cli_usage_error(usage, "--max-memory '%s': give a size such as 4G or 512M", v);
        p->max_memory = b;
        return 0;
    }
    case O_TILE:
        if (!strcmp(v, "off")) p->tile = -1;
        else if (!strcmp(v, "auto")) p->tile = 0;
        else if (!cli_parse_int(v, &p->tile))
            return cli_usage_error(usage, "--tile '%s': give auto, off or a size in pixels", v);
        return 0;
    case O_SEED: {
        unsigned long long sd;
        if (!cli_parse_u64(v, &sd))
            return cli_usage_error(usage, "--seed '%s': give a whole number", v);
        p->seed = sd;
        return 0;
    }
    case O_STYLE_LOSS: {
        int sl = nst_style_loss_parse(v);
        if (sl < 0) return cli_usage_error(usage, "--style-loss '%s': choose gram, w2 or hist", v);
        p->style_loss = (nst_style_loss_kind)sl;
        return 0;
    }
    case O_POOLING:
        if (!strcmp(v, "max")) p->avg_pool = 0;
        else if (!strcmp(v, "avg") || !strcmp(v, "average")) p->avg_pool = 1;
        else return cli_usage_error(usage, "--pooling '%s': choose max or avg", v);
        return 0;
    }
    return OPT_NOT_PARAM;
}

/* Splits "a,b,c" into doubles; returns the count or -1. */
int opt_doubles(const char *s, double *out, int max) {
    int n = 0;
    const char *p = s;
    while (*p) {
        if (n == max) return -1;
        if (!cli_parse_double(p, &out[n], &p)) return -1;
        n++;
        if (*p == ',') p++;
        else if (*p) return -1;
    }
    return n;
}

/* Adds the comma-separated names in v to items[*n..]: a repeated option adds
 * to the list. The names are copied into buf (cap bytes, *used taken). */
int opt_add_names(const char *opt, const char *v, char *buf, size_t cap, size_t *used,
                  char **items, int *n, int max, const char *usage) {
    size_t len = strlen(v);
    if (len >= cap - *used) return cli_usage_error(usage, "%s: list too long", opt);
    char *copy = buf + *used;
    memcpy(copy, v, len + 1);
    *used += len + 1;
    int before = *n;
    for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
        if (*n == max) return cli_usage_error(usage, "%s: at most %d files", opt, max);
        items[(*n)++] = tok;
    }
    if (*n == before) return cli_usage_error(usage, "%s: no file given", opt);
    return 0;
}

/* --network's value into *out; the usage error reported (non-zero) when it
 * names no network. */
int opt_network(const char *v, nst_network *out, const char *usage) {
    int n = nst_network_parse(v);
    if (n < 0) return cli_usage_error(usage, "--network '%s': choose vgg19, vgg16 or auto", v);
    *out = (nst_network)n;
    return 0;
}

void opt_common_default(opt_common *o) {
    memset(o, 0, sizeof *o);
    nst_params_default(&o->p);
    o->jpeg_quality = 95;
}

int opt_common_parse(int c, const char *v, opt_common *o, const char *usage) {
    o->style_weight_set |= c == O_STYLE_WEIGHT;
    int rc = opt_params(c, v, &o->p, usage);
    if (rc != OPT_NOT_PARAM) return rc;
    switch (c) {
    case 'c': o->content = v; return 0;
    case 'o': o->output = v; return 0;
    case 'd': o->device = v; return 0;
    case 'w': o->weights = v; return 0;
    case 'q': o->quiet = 1; return 0;
    case O_JSON: o->json = 1; return 0;
    case O_NO_CACHE: o->no_cache = 1; return 0;
    case O_PRECISION: o->precision = v; return opt_precision(v, usage);
    case O_NETWORK: return opt_network(v, &o->network, usage);
    case 's':
        return opt_add_names("--style", v, o->style_buf, sizeof o->style_buf, &o->style_used,
                             o->styles, &o->nstyles, NST_MAX_STYLES, usage);
    case O_STYLE_BLEND:
        o->nblend = opt_doubles(v, o->blend, NST_MAX_STYLES);
        if (o->nblend < 1)
            return cli_usage_error(usage, "--style-blend '%s': give numbers separated by commas",
                                   v);
        return 0;
    case O_STYLE_LAYER_WEIGHTS:
        o->nlayer_w = opt_doubles(v, o->layer_w, NST_MAX_LAYERS);
        if (o->nlayer_w < 1)
            return cli_usage_error(usage, "--style-layer-weights '%s': give at most %d numbers "
                                   "separated by commas", v, NST_MAX_LAYERS);
        return 0;
    case O_JPEG_QUALITY:
        /* checked now, not when the image is written at the end */
        if (!cli_parse_int(v, &o->jpeg_quality) || o->jpeg_quality < 1 || o->jpeg_quality > 100)
            return cli_usage_error(usage, "--jpeg-quality '%s': give a whole number in 1..100",
                                   v);
        return 0;
    }
    return OPT_NOT_COMMON;
}

int opt_next_own(int argc, char **argv, const char *shortopts, unsigned command,
                 const char *usage, const char *help, opt_common *com) {
    for (;;) {
        int c = opt_next(argc, argv, shortopts, command, NULL, usage, help);
        if (c == CLI_END || c == CLI_ERROR) return c;
        if (c == CLI_ARG) {
            cli_usage_error(usage, "unexpected argument '%s'", optarg);
            return CLI_ERROR;
        }
        int rc = opt_common_parse(c, optarg, com, usage);
        if (rc == OPT_NOT_COMMON) return c;
        if (rc) return CLI_ERROR;
    }
}

int opt_parse(int argc, char **argv, const char *shortopts, unsigned command, const char *usage,
              const char *help, opt_common *com, int (*own)(int c, const char *v, void *ctx),
              void *ctx) {
    int c, rc;
    optind = 0;
    while ((c = opt_next_own(argc, argv, shortopts, command, usage, help, com)) != CLI_END) {
        if (c == CLI_ERROR) return 2;
        if ((rc = own(c, optarg, ctx))) return rc;
    }
    return 0;
}

int opt_precision(const char *v, const char *usage) {
    if (!strcmp(v, "fp32") || !strcmp(v, "tf32")) return 0;
    return cli_usage_error(usage, "--precision '%s': give fp32 (the default) or tf32 (NVIDIA "
                                  "tensor cores, compute capability 8.0 and later)", v);
}

nst_settings opt_settings(const nst_settings *set, const char *precision) {
    nst_settings s = *set;
    if (precision) snprintf(s.precision, sizeof s.precision, "%s", precision);
    return s;
}
