/* options.h: the long options of every command in one table, and the
 * parsing that commands share (options.c): the options of the transfer's
 * parameters (nst_params) mean the same to nst, nst video and a batch job. */
#ifndef NST_OPTIONS_H
#define NST_OPTIONS_H

#include "nst.h"

struct option;

/* The options of every command; those without a short form get a val >= 256. */
enum {
    O_STYLE_BLEND = 256, O_SIZE, O_STYLE_SCALE, O_JPEG_QUALITY, O_PNG16, O_CONTENT_WEIGHT,
    O_STYLE_WEIGHT, O_TV_WEIGHT, O_CONTENT_LAYERS, O_STYLE_LAYERS, O_STYLE_LAYER_WEIGHTS,
    O_POOLING, O_INIT, O_SEED, O_PRESERVE_COLORS, O_LUMINANCE_ONLY, O_LUMINANCE_MATCH, O_MASK,
    O_SCALES, O_SCALE_ITERATIONS, O_AVERAGE_DECAY, O_OPTIMIZER, O_LEARNING_RATE,
    O_LBFGS_HISTORY, O_LINE_SEARCH, O_MAX_MEMORY, O_TILE, O_DRY_RUN, O_NO_CACHE,
    O_PRINT_EVERY, O_SAVE_EVERY, O_JSON, O_VERSION, O_CHECK, O_TINY, O_EVALS, O_WIDTH_MULT, O_NETWORK,
    O_SECONDS, O_METHOD, O_WCT_MODELS, O_ALPHA, O_WCT_LEVELS, O_STYLE_LOSS, O_PRECISION,
    /* nst video */
    O_TEMPORAL_WEIGHT, O_FRAME_ITERATIONS, O_FLOW, O_FRAMES, O_WORK_DIR, O_KEEP_FRAMES,
    O_CODEC, O_LONG_TERM, O_PASSES, O_START_FRAME
};

enum { OPT_MAX = 96 }; /* room for any command's table, ended by a zero entry */

/* The commands (a bit each), by the options they take. */
enum { OPT_RUN = 1, OPT_VIDEO = 2, OPT_DEVICES = 4, OPT_BENCH = 8, OPT_TUNE = 16 };

/* The options of the table that `command` (OPT_RUN...) takes into longopts
 * (OPT_MAX entries), in the table's order, ended by a zero entry. */
void opt_select(unsigned command, struct option *longopts);

/* The next option of a command (cli_next) among those it takes; sub
 * prefixes cli_next's messages (NULL: none). A usage error is reported as
 * `usage` says (cli_usage_error) and returned as CLI_ERROR; -h prints help
 * and exits 0. */
int opt_next(int argc, char **argv, const char *shortopts, unsigned command, const char *sub,
             const char *usage, const char *help);

/* The option c with value v when it sets a field of p: 0 when parsed, the
 * usage exit status when v is not a valid value (reported as `usage` says),
 * OPT_NOT_PARAM when c is another option. Values are parsed here; their
 * ranges are the library's (nst_params_check). */
enum { OPT_NOT_PARAM = -1 };
int opt_params(int c, const char *v, nst_params *p, const char *usage);

/* What nst and nst video are both given: the images, the device and the
 * files, the output's form, the messages, and the transfer's parameters. */
typedef struct opt_common {
    const char *content, *output, *device, *weights;
    char *styles[NST_MAX_STYLES];
    int nstyles;
    double blend[NST_MAX_STYLES];
    int nblend;
    double layer_w[NST_MAX_LAYERS];
    int nlayer_w;
    int jpeg_quality, no_cache, quiet, json;
    const char *precision; /* --precision: fp32 or tf32; NULL = the settings' */
    int style_weight_set; /* --style-weight given: else the style loss's default */
    nst_network network;
    nst_params p;
    char style_buf[4096]; /* the --style names */
    size_t style_used;
} opt_common;

/* The defaults: nst_params_default, JPEG quality 95, nothing given. */
void opt_common_default(opt_common *o);

/* The option c with value v when it sets a field of o (opt_params for those
 * of o->p): 0 when parsed, the usage exit status when v is not a valid value
 * (reported as `usage` says), OPT_NOT_COMMON when c is another option. */
enum { OPT_NOT_COMMON = -1 };
int opt_common_parse(int c, const char *v, opt_common *o, const char *usage);

/* The next option of a command that is not one of opt_common's (those are
 * parsed into com): its val, with its value in optarg; CLI_END; or
 * CLI_ERROR when a usage error was reported (as `usage` says), an argument
 * that is not an option among them. -h prints help and exits 0. */
int opt_next_own(int argc, char **argv, const char *shortopts, unsigned command,
                 const char *usage, const char *help, opt_common *com);

/* Parses a command's arguments from the first: opt_common's options into
 * com, each other option through own(c, value, ctx), which returns 0 or
 * the usage exit status (its error reported). 0, or the usage exit status
 * when an option was wrong. */
int opt_parse(int argc, char **argv, const char *shortopts, unsigned command, const char *usage,
              const char *help, opt_common *com, int (*own)(int c, const char *v, void *ctx),
              void *ctx);

/* Splits "a,b,c" into doubles; returns the count or -1. */
int opt_doubles(const char *s, double *out, int max);

/* Adds the comma-separated names in v to items[*n..]: a repeated option adds
 * to the list. The names are copied into buf (cap bytes, *used taken). 0, or
 * the usage exit status with the error reported as `usage` says. */
int opt_add_names(const char *opt, const char *v, char *buf, size_t cap, size_t *used,
                  char **items, int *n, int max, const char *usage);

/* --precision's value v checked (fp32 or tf32): 0, or the usage exit status
 * (reported as `usage` says). */
int opt_precision(const char *v, const char *usage);
/* The settings a command runs with: *set, with --precision's value when
 * given (precision may be NULL). */
nst_settings opt_settings(const nst_settings *set, const char *precision);

/* --network's value into *out; 0, or the usage exit status (reported) when
 * it names no network. */
int opt_network(const char *v, nst_network *out, const char *usage);

#endif
