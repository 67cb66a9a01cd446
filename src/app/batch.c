/* batch.c: `nst batch JOBS`, many transfers on every selected device at once.
 *
 * JOBS is a JSON Lines file, one transfer per line, its keys the long
 * options of the main command ({"content": "a.jpg", "style": "b.jpg",
 * "output": "out/a.png", "size": 768}). Each line becomes the argument list
 * of one run of this very program (/proc/self/exe), checked against the
 * command's own option table first, so a job means exactly what the same
 * command line means. One worker per device: each device runs one job at a
 * time as a child process (`nst ARGS --device N --json`), whose iteration
 * events are its progress. A child that dies (a killed process, a device
 * error) hands its job back, which is tried once more on another device; a
 * job that fails on its own arguments or inputs fails alone; the rest go on.
 *
 * Nothing finished is lost or redone: a child writes its image under a
 * hidden name beside the output (".nst-partial.NAME"), atomically, and the
 * batch renames it into place only when the child succeeded; a rerun skips
 * every job whose output exists. Children die with the batch (a kill -9 of
 * the batch included: PR_SET_PDEATHSIG), so nothing runs on unobserved.
 *
 * Cluster runs: --shard I/N (or Slurm's SLURM_ARRAY_TASK_ID and
 * SLURM_ARRAY_TASK_COUNT) keeps the I-th of N disjoint slices of the jobs,
 * dealt round-robin from the largest down so the slices weigh about the
 * same; a rerun of a slice skips its finished jobs like any rerun. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "batch.h"
#include "cli.h"
#include "video.h"
#include "video_cmd.h"
#include "video_join.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define EXIT_INTERRUPTED 130
#define MAX_SLOTS 64
#define MAX_ATTEMPTS 2 /* a job handed back by a failing worker is tried once more */

enum { J_QUEUED, J_RUNNING, J_DONE, J_SKIPPED, J_FAILED };

typedef struct job {
    int line;      /* in JOBS, from 1: the job's name in every message */
    int argc;      /* the child's arguments, argv[0] the program */
    char **argv;
    char *output;  /* where the result goes */
    char *staging; /* where the child writes it */
    double cost;   /* pixels x iterations: largest first */
    int state, attempts, avoid, device;
    double t0, seconds;
    int group; /* a stretch of the video groups[group]; -1 for an image */
    char error[1024];
} job;

/* A video job: its clip split into stretches of chunk_frames frames, each
 * but the first starting chunk_overlap frames early, each stretch a job
 * (a lossless .mkv in OUTPUT.nst-chunks/), joined into output once all are
 * there. */
typedef struct vgroup {
    int line;
    char *output, *content, *codec, *dir;
    int nchunks;
    char **chunks;
    long *start, *stop;
    int state; /* J_QUEUED until joined (J_DONE), found joined (J_SKIPPED) or J_FAILED */
    char error[1024];
} vgroup;

typedef struct slot {
    int dev;          /* index in nst's device list */
    char name[160];
    pid_t pid;        /* 0: idle */
    job *j;
    int out_fd, err_fd;
    char out[16384];  /* the child's stdout, up to the end of a line */
    size_t nout;
    char err[2048];   /* the tail of its stderr */
    size_t nerr;
    int iteration, iterations;
    int stopping; /* asked to stop (once: a second signal would cut its writing) */
} slot;

typedef struct batch {
    const char *file;
    int json, quiet, tty;
    int shard, shards;
    job *jobs;
    int njobs;
    slot slots[MAX_SLOTS];
    int nslots;
    char exe[4096];
    int done, skipped, failed, total; /* of this shard */
    int first_queued; /* no job before it is queued: the scans start here */
    double t0;
    int live; /* a live line is open on the terminal */
    vgroup *groups; /* the video jobs of the whole file, every slice's */
    int ngroups;
    long chunk_frames, chunk_overlap;
    int joined;
} batch;

static volatile sig_atomic_t g_stop = 0;
static void on_signal(int sig) {
    (void)sig;
    g_stop = 1;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int usage(const char *fmt, ...) NST_CLI_PRINTF(1, 2);
static int usage(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nst: batch: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see nst batch --help)\n");
    va_end(ap);
    return EXIT_USAGE;
}

static const char *help_text =
    "usage: nst batch JOBS [--devices all|SEL[,SEL...]] [--shard I/N] [--json] [--quiet]\n"
    "                      [--chunk-frames F] [--chunk-overlap O]\n"
    "\n"
    "Runs many transfers: JOBS is a JSON Lines file (- for standard input), one\n"
    "transfer per line, whose keys are the long options of nst itself, e.g.\n"
    "  {\"content\": \"a.jpg\", \"style\": \"van-gogh.jpg\", \"output\": \"out/a.png\"}\n"
    "  {\"content\": \"b.jpg\", \"style\": [\"x.jpg\", \"y.jpg\"], \"output\": \"out/b.png\",\n"
    "   \"size\": 768, \"preserve-colors\": true}\n"
    "(a list joins with commas; true gives a flag, false leaves it out; paths are\n"
    "relative to the current directory). Each job is checked as that command line\n"
    "would be, then run by a worker on one of the devices, largest jobs first.\n"
    "\n"
    "A line with \"video\": true is a clip for nst video (its keys are nst video's\n"
    "options), e.g. {\"video\": true, \"content\": \"clip.mp4\", \"style\": \"x.jpg\",\n"
    "\"output\": \"out.mp4\"}: the clip is split into stretches of F frames, each\n"
    "but the first starting O frames early, each stretch a job of its own (on any\n"
    "device or slice), kept in OUT.nst-chunks/; once all are done the batch that\n"
    "finds them so joins them into OUT, the overlaps cross-faded, the audio copied.\n"
    "\n"
    "  --devices SEL      the devices to use at once, one worker each: all, or\n"
    "                     indices and names separated by commas (a name takes every\n"
    "                     device whose platform or name contains it, e.g. nvidia);\n"
    "                     default: every GPU and accelerator, else the default device\n"
    "  --shard I/N        run only the I-th (0..N-1) of N disjoint slices of the jobs;\n"
    "                     under a Slurm job array, SLURM_ARRAY_TASK_ID and\n"
    "                     SLURM_ARRAY_TASK_COUNT choose it: e.g.\n"
    "                     sbatch --array=0-7 tools/nst-slurm-array.sh JOBS\n"
    "  --json             one JSON object per event on stdout (batch, skip, start,\n"
    "                     iteration, retry, done, failed, joined, summary)\n"
    "  -q, --quiet        print nothing but errors and the summary\n"
    "  --chunk-frames F   frames per stretch of a video job (default 120)\n"
    "  --chunk-overlap O  frames each stretch after the first starts early, cross-\n"
    "                     faded with the previous stretch's last O (default 6)\n"
    "\n"
    "Resumable: each output is written atomically (its directory made when missing)\n"
    "and renamed into place when its job succeeds; running the same batch again\n"
    "skips every job whose output exists.\n"
    "A job that fails is reported and the others go on; a job whose worker died or\n"
    "failed with its device is tried once more on another device. Ctrl-C stops\n"
    "the running jobs (their outputs are not written) and exits 130.\n"
    "Exit status: 0 when every job succeeded, 1 when any failed, 2 bad usage.\n";

/* ---- jobs: a JSON object into a command line ------------------------------- */

/* Options that belong to the batch, not to a job. */
static const char *const not_in_jobs[] = {"device", "json", "quiet", "help", "version",
                                          "dry-run", "print-every", "save-every", NULL};

static int add_arg(job *j, const char *a) {
    char **v = realloc(j->argv, (size_t)(j->argc + 2) * sizeof *v);
    if (!v) return 0;
    j->argv = v;
    if (!(v[j->argc] = strdup(a))) return 0;
    v[++j->argc] = NULL;
    return 1;
}

/* A scalar JSON value as option text; 0 for anything else. */
static int scalar_text(json_t *v, char *buf, size_t len) {
    if (json_is_string(v)) snprintf(buf, len, "%s", json_string_value(v));
    else if (json_is_integer(v)) snprintf(buf, len, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) snprintf(buf, len, "%.17g", json_real_value(v));
    else return 0;
    return 1;
}

static int job_fail(job *j, const char *fmt, ...) NST_CLI_PRINTF(2, 3);
static int job_fail(job *j, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof j->error, fmt, ap);
    va_end(ap);
    j->state = J_FAILED;
    return 0;
}

/* The hidden name beside path the child writes to: ".nst-partial.NAME",
 * which keeps NAME's extension (and so its format). */
static char *staging_of(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash - path + 1) : 0;
    size_t len = strlen(path) + 16;
    char *s = malloc(len);
    if (s) snprintf(s, len, "%.*s.nst-partial.%s", (int)dir, path, path + dir);
    return s;
}

/* 0 when each file in list (comma-separated when split, as the command
 * splits --style and --mask) can be read; else the job fails naming it. */
static int inputs_readable(job *j, const char *what, const char *list, int split) {
    char buf[8192];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *f = split ? strtok(buf, ",") : buf; f; f = split ? strtok(NULL, ",") : NULL)
        if (access(f, R_OK) != 0)
            return !job_fail(j, "%s '%s': %s", what, f, strerror(errno));
    return 0;
}

/* Turns one line into a job: its argument list (checked against the
 * command's option table), output, staging name and cost. 0 with j->error
 * when the line is not a job. */
static int job_parse(job *j, const char *text, const char *exe, const char *sub,
                     const char *shortopts, const struct option *longopts) {
    json_error_t jerr;
    json_t *o = json_loads(text, 0, &jerr);
    const char *content = NULL, *style = NULL, *mask = NULL, *init = NULL;
    int size = 0, iterations = 0, scales = 1, ok = 0;
    nst_params def;
    nst_params_default(&def);
    size = def.size;
    iterations = def.iterations;
    if (!o) return job_fail(j, "not JSON: %s (column %d)", jerr.text, jerr.column);
    if (!json_is_object(o)) {
        json_decref(o);
        return job_fail(j, "not a JSON object: give {\"content\": ..., \"style\": ..., "
                           "\"output\": ...}");
    }
    if (!add_arg(j, exe) || (sub && !add_arg(j, sub))) goto nomem;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) {
        const char *name = strncmp(key, "--", 2) ? key : key + 2;
        if (!strcmp(name, "video") && json_is_false(v)) continue; /* an image job */
        for (int k = 0; not_in_jobs[k]; k++)
            if (!strcmp(name, not_in_jobs[k])) {
                job_fail(j, "key '%s' is not for a job%s", key,
                         !strcmp(name, "device") ? ": the batch's --devices chooses" : "");
                goto out;
            }
        const struct option *opt = NULL;
        for (int k = 0; longopts[k].name && !opt; k++)
            if (!strcmp(longopts[k].name, name)) opt = &longopts[k];
        if (!opt) { /* the command's own message, with its suggestion */
            char arg[300], err[700];
            char *av[3] = {(char *)exe, arg, NULL};
            snprintf(arg, sizeof arg, "--%s", name);
            optind = 0;
            if (cli_next(2, av, shortopts, longopts, NULL, err, sizeof err) == CLI_ERROR)
                job_fail(j, "key '%s': %s", key, err);
            else
                job_fail(j, "key '%s' is not a whole option name", key);
            goto out;
        }
        char val[8192] = "", arg[8400];
        if (opt->has_arg == no_argument) {
            if (!json_is_boolean(v)) {
                job_fail(j, "key '%s' is a flag: give true or false", key);
                goto out;
            }
            if (json_is_false(v)) continue;
            snprintf(arg, sizeof arg, "--%s", name);
        } else if (json_is_null(v)) {
            continue;
        } else {
            if (json_is_array(v)) {
                size_t i, used = 0;
                json_t *e;
                json_array_foreach(v, i, e) {
                    char one[4096];
                    if (!scalar_text(e, one, sizeof one)) {
                        job_fail(j, "key '%s': a list of strings or numbers", key);
                        goto out;
                    }
                    used += (size_t)snprintf(val + used, sizeof val - used, "%s%s", i ? "," : "",
                                             one);
                    if (used >= sizeof val) {
                        job_fail(j, "key '%s': the list is too long", key);
                        goto out;
                    }
                }
            } else if (!scalar_text(v, val, sizeof val)) {
                job_fail(j, "key '%s': give a string, a number or a list", key);
                goto out;
            }
            if (opt->val == 'o') {
                if (!(j->output = strdup(val)) || !(j->staging = staging_of(val))) goto nomem;
                snprintf(arg, sizeof arg, "--output=%s", j->staging);
            } else {
                snprintf(arg, sizeof arg, "--%s=%s", name, val);
            }
            if (opt->val == 'c') content = json_string_value(v);
            if (opt->val == 's') style = json_is_string(v) ? json_string_value(v) : NULL;
            if (!strcmp(name, "mask") && json_is_string(v)) mask = json_string_value(v);
            if (!strcmp(name, "init")) init = json_string_value(v);
            if (!strcmp(name, "size")) cli_parse_int(val, &size);
            if (opt->val == 'n') cli_parse_int(val, &iterations);
            if (!strcmp(name, "scales")) cli_parse_int(val, &scales);
        }
        if (!add_arg(j, arg)) goto nomem;
    }
    if (!j->output) {
        job_fail(j, "no output: give \"output\": \"FILE.png\"");
        goto out;
    }
    if (!sub && !cli_image_ext_ok(j->output)) {
        job_fail(j, "output '%s': the name must end in .png, .jpg or .jpeg", j->output);
        goto out;
    }
    if (!json_object_get(o, "content") || !json_object_get(o, "style")) {
        job_fail(j, "give both \"content\" and \"style\"");
        goto out;
    }
    /* a missing input fails the job here, without a worker */
    if (content && !sub && inputs_readable(j, "content", content, 0)) goto out;
    if (json_is_array(json_object_get(o, "style"))) {
        size_t i;
        json_t *e;
        json_array_foreach(json_object_get(o, "style"), i, e)
            if (json_is_string(e) && inputs_readable(j, "style", json_string_value(e), 1))
                goto out;
    } else if (style && inputs_readable(j, "style", style, 1)) {
        goto out;
    }
    if (mask && inputs_readable(j, "mask", mask, 1)) goto out;
    if (init && strcmp(init, "content") && strcmp(init, "random") &&
        inputs_readable(j, "init", init, 0))
        goto out;
    j->cost = (double)size * size * (iterations > 0 ? iterations : 1) * (scales > 1 ? 1.5 : 1);
    ok = 1;
    goto out;
nomem:
    job_fail(j, "out of memory");
out:
    json_decref(o);
    return ok;
}

static void job_free(job *j) {
    for (int i = 0; i < j->argc; i++) free(j->argv[i]);
    free(j->argv);
    free(j->output);
    free(j->staging);
}

/* ---- video jobs: a clip in stretches, joined ------------------------------------ */

/* 1 when the line is an object with "video": true. */
static int is_video_line(const char *text) {
    json_t *o = json_loads(text, 0, NULL);
    int v = o && json_is_true(json_object_get(o, "video"));
    json_decref(o);
    return v;
}

static job *new_job(batch *b, int line) {
    if (b->njobs % 64 == 0) {
        job *g = realloc(b->jobs, (size_t)(b->njobs + 64) * sizeof *g);
        if (!g) return NULL;
        b->jobs = g;
    }
    job *j = &b->jobs[b->njobs++];
    memset(j, 0, sizeof *j);
    j->line = line;
    j->avoid = j->device = -1;
    j->group = -1;
    return j;
}

/* A line that cannot become stretches: one failed job naming it. */
static int video_line_fails(batch *b, int line, const char *fmt, ...) NST_CLI_PRINTF(3, 4);
static int video_line_fails(batch *b, int line, const char *fmt, ...) {
    job *j = new_job(b, line);
    if (!j) return 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->error, sizeof j->error, fmt, ap);
    va_end(ap);
    j->state = J_FAILED;
    return 1;
}

/* Turns a video line into its stretches, one job each, and their group.
 * The clip's frames [0, F) are stretch 0, and each later stretch k holds
 * [kF - O, (k+1)F): its first O frames, the overlap, start the temporal
 * chain from the previous stretch's last frames' inputs, so that by frame kF
 * it has settled, and at the join the overlap is cross-faded from the
 * earlier stretch to the later. 0 only when out of memory. */
static int video_jobs(batch *b, const char *text, int line) {
    const char *vshort;
    const struct option *vopts = video_cmd_options(&vshort);
    json_t *o = json_loads(text, 0, NULL);
    const char *out = json_string_value(json_object_get(o, "output"));
    const char *content = json_string_value(json_object_get(o, "content"));
    const char *codec = json_string_value(json_object_get(o, "codec"));
    int rc = 1;
    if (!out || !content) {
        rc = video_line_fails(b, line, "a video job needs \"content\": \"CLIP.mp4\" and "
                                       "\"output\": \"OUT.mp4\"");
        goto out;
    }
    if (nst_video_is_pattern(out)) {
        rc = video_line_fails(b, line, "output '%s': a video job writes a video file (.mp4, "
                                       ".mkv, .mov, .avi), which appears whole or not at all; "
                                       "for an image sequence run nst video", out);
        goto out;
    }
    static const char *const refused[] = {"start-frame", "work-dir", "keep-frames", NULL};
    for (int k = 0; refused[k]; k++)
        if (json_object_get(o, refused[k])) {
            rc = video_line_fails(b, line, "key '%s' is not for a video job: the batch splits "
                                           "the clip and keeps the stretches itself", refused[k]);
            goto out;
        }
    long frames = 0, limit = 0;
    nst_msg msg = {{0}};
    if (json_is_integer(json_object_get(o, "frames")))
        limit = (long)json_integer_value(json_object_get(o, "frames"));
    if (nst_video_count(content, &frames, &msg) != NST_OK) {
        rc = video_line_fails(b, line, "%s", msg.text);
        goto out;
    }
    if (limit > 0 && limit < frames) frames = limit;
    int size = 512, fit = 150, iters = 500;
    nst_params def;
    nst_params_default(&def);
    iters = def.iterations;
    if (json_is_integer(json_object_get(o, "size")))
        size = (int)json_integer_value(json_object_get(o, "size"));
    if (json_is_integer(json_object_get(o, "frame-iterations")))
        fit = (int)json_integer_value(json_object_get(o, "frame-iterations"));
    if (json_is_integer(json_object_get(o, "iterations")))
        iters = (int)json_integer_value(json_object_get(o, "iterations"));
    long F = b->chunk_frames, O = b->chunk_overlap;
    int n = (int)((frames + F - 1) / F);
    vgroup *g = realloc(b->groups, (size_t)(b->ngroups + 1) * sizeof *g);
    if (!g) goto nomem;
    b->groups = g;
    g = &b->groups[b->ngroups++];
    memset(g, 0, sizeof *g);
    g->line = line;
    g->state = J_QUEUED;
    size_t dl = strlen(out) + 16;
    g->output = strdup(out);
    g->content = strdup(content);
    g->codec = codec ? strdup(codec) : NULL;
    g->dir = malloc(dl);
    g->chunks = calloc((size_t)n, sizeof *g->chunks);
    g->start = calloc((size_t)n, sizeof *g->start);
    g->stop = calloc((size_t)n, sizeof *g->stop);
    if (!g->output || !g->content || (codec && !g->codec) || !g->dir || !g->chunks ||
        !g->start || !g->stop)
        goto nomem;
    snprintf(g->dir, dl, "%s.nst-chunks", out);
    g->nchunks = n;
    json_object_del(o, "video");
    json_object_del(o, "codec");
    json_object_del(o, "frames");
    for (int k = 0; k < n; k++) {
        long s0 = k ? k * F - O : 0, s1 = (k + 1) * F < frames ? (k + 1) * F : frames;
        char path[4200];
        snprintf(path, sizeof path, "%s/frames_%06ld-%06ld.mkv", g->dir, s0, s1);
        g->start[k] = s0;
        g->stop[k] = s1;
        if (!(g->chunks[k] = strdup(path))) goto nomem;
        json_object_set_new(o, "output", json_string(path));
        json_object_set_new(o, "start-frame", json_integer(s0));
        json_object_set_new(o, "frames", json_integer(s1 - s0));
        json_object_set_new(o, "codec", json_string("ffv1"));
        char *line_text = json_dumps(o, JSON_COMPACT);
        job *j = line_text ? new_job(b, line) : NULL;
        if (!j) {
            free(line_text);
            goto nomem;
        }
        int parsed = job_parse(j, line_text, b->exe, "video", vshort, vopts);
        free(line_text);
        j->group = b->ngroups - 1;
        if (!parsed) { /* the line's own fault: one failed job says it */
            g->state = J_FAILED;
            break;
        }
        j->cost = (double)size * size * (double)((k ? 0 : iters) + (s1 - s0) * fit);
    }
    goto out;
nomem:
    fprintf(stderr, "nst: batch: out of memory\n");
    rc = 0;
out:
    json_decref(o);
    return rc;
}

static void group_free(vgroup *g) {
    for (int k = 0; g->chunks && k < g->nchunks; k++) free(g->chunks[k]);
    free(g->chunks);
    free(g->start);
    free(g->stop);
    free(g->output);
    free(g->content);
    free(g->codec);
    free(g->dir);
}

/* Reads JOBS: one job per non-blank line; a line that is not a job is a
 * failed job. 0 with a message when the file cannot be read. */
static int read_jobs(batch *b, const char *shortopts, const struct option *longopts) {
    FILE *f = strcmp(b->file, "-") ? fopen(b->file, "r") : stdin;
    if (!f) {
        fprintf(stderr, "nst: batch: cannot read '%s': %s\n", b->file, strerror(errno));
        return 0;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    int lineno = 0, ok = 1;
    while ((n = getline(&line, &cap, f)) >= 0) {
        lineno++;
        size_t k = strspn(line, " \t\r\n");
        if (line[k] == 0) continue;
        if (is_video_line(line)) {
            if (!video_jobs(b, line, lineno)) {
                ok = 0;
                break;
            }
            continue;
        }
        job *j = new_job(b, lineno);
        if (!j) {
            fprintf(stderr, "nst: batch: out of memory\n");
            ok = 0;
            break;
        }
        job_parse(j, line, b->exe, NULL, shortopts, longopts);
    }
    free(line);
    if (f != stdin) fclose(f);
    return ok;
}

/* Largest first; the file's order among equals. */
static int by_cost(const void *pa, const void *pb) {
    const job *a = pa, *b = pb;
    if (a->cost != b->cost) return a->cost > b->cost ? -1 : 1;
    return a->line - b->line;
}

static int by_output(const void *pa, const void *pb) {
    const job *a = *(const job *const *)pa, *b = *(const job *const *)pb;
    return strcmp(a->output, b->output);
}

/* Two jobs writing one file would overwrite each other: a usage error. */
static int check_outputs(batch *b) {
    job **v = malloc((size_t)(b->njobs ? b->njobs : 1) * sizeof *v);
    int n = 0, rc = 0;
    if (!v) return 0;
    for (int i = 0; i < b->njobs; i++)
        if (b->jobs[i].output) v[n++] = &b->jobs[i];
    qsort(v, (size_t)n, sizeof *v, by_output);
    for (int i = 1; i < n && !rc; i++)
        if (!strcmp(v[i - 1]->output, v[i]->output))
            rc = usage("lines %d and %d both write '%s': give each job its own output",
                       v[i - 1]->line < v[i]->line ? v[i - 1]->line : v[i]->line,
                       v[i - 1]->line < v[i]->line ? v[i]->line : v[i - 1]->line, v[i]->output);
    free(v);
    return rc;
}

/* ---- devices and shards ---------------------------------------------------- */

static int contains_nocase(const char *hay, const char *needle) {
    size_t n = strlen(needle);
    for (; *hay; hay++)
        if (!strncasecmp(hay, needle, n)) return 1;
    return n == 0;
}

static int parse_devices(batch *b, const char *sel, const nst_settings *set) {
    nst_device_info *devs = NULL;
    int n = 0;
    if (cli_devices_list(set, &devs, &n)) return EXIT_RUNTIME;
    nst_msg msg = {{0}};
    int pick[MAX_SLOTS], np = 0;
    char want[1024];
    snprintf(want, sizeof want, "%s", sel ? sel : "");
    if (!sel) { /* every GPU and accelerator, else the default (NST_DEVICE's) */
        for (int i = 0; i < n && np < MAX_SLOTS; i++)
            if (!strcmp(devs[i].type, "GPU") || !strcmp(devs[i].type, "accelerator"))
                pick[np++] = i;
        if (np == 0) {
            int idx = -1;
            if (nst_device_select(devs, n, set->device, &idx, &msg) != NST_OK) {
                fprintf(stderr, "nst: %s\n", msg.text);
                free(devs);
                return EXIT_RUNTIME;
            }
            pick[np++] = idx;
        }
    }
    for (char *tok = sel ? strtok(want, ",") : NULL; tok; tok = strtok(NULL, ",")) {
        int idx, before = np;
        if (!strcasecmp(tok, "all")) {
            for (int i = 0; i < n && np < MAX_SLOTS; i++) pick[np++] = i;
        } else if (cli_parse_int(tok, &idx)) {
            if (idx < 0 || idx >= n) {
                fprintf(stderr, "nst: batch: --devices: no device %d (there are %d; see nst "
                                "devices)\n", idx, n);
                free(devs);
                return EXIT_RUNTIME;
            }
            pick[np++] = idx;
        } else {
            for (int i = 0; i < n && np < MAX_SLOTS; i++) {
                char full[300];
                snprintf(full, sizeof full, "%s %s", devs[i].platform, devs[i].name);
                if (contains_nocase(full, tok)) pick[np++] = i;
            }
        }
        if (np == before) {
            fprintf(stderr, "nst: batch: --devices: '%s' matches no device; the devices are:\n",
                    tok);
            for (int i = 0; i < n; i++)
                fprintf(stderr, "  %d: %s (%s)\n", i, devs[i].name, devs[i].platform);
            free(devs);
            return EXIT_RUNTIME;
        }
        if (np >= MAX_SLOTS) break;
    }
    for (int i = 0; i < np; i++) { /* each device once */
        int dup = 0;
        for (int k = 0; k < b->nslots; k++) dup |= b->slots[k].dev == pick[i];
        if (dup) continue;
        slot *s = &b->slots[b->nslots++];
        memset(s, 0, sizeof *s);
        s->dev = pick[i];
        s->out_fd = s->err_fd = -1;
        snprintf(s->name, sizeof s->name, "%s", devs[pick[i]].name);
    }
    free(devs);
    return 0;
}

/* I/N from --shard, else from a Slurm job array, else 0/1. */
static int parse_shard(batch *b, const char *arg) {
    b->shard = 0;
    b->shards = 1;
    if (arg) {
        const char *p = arg;
        double i, n;
        if (!cli_parse_double(p, &i, &p) || *p != '/' || !cli_parse_double(p + 1, &n, NULL) ||
            i != (int)i || n != (int)n || n < 1 || i < 0 || i >= n || n > 1e6)
            return usage("--shard '%s': give I/N with 0 <= I < N, e.g. 0/4", arg);
        b->shard = (int)i;
        b->shards = (int)n;
        return 0;
    }
    const char *id = getenv("SLURM_ARRAY_TASK_ID"), *count = getenv("SLURM_ARRAY_TASK_COUNT");
    const char *min = getenv("SLURM_ARRAY_TASK_MIN"), *step = getenv("SLURM_ARRAY_TASK_STEP");
    if (!id || !count) return 0;
    int iid, n, lo = 0, st = 1;
    if (!cli_parse_int(id, &iid) || !cli_parse_int(count, &n) || n < 1 ||
        (min && !cli_parse_int(min, &lo)) || (step && !cli_parse_int(step, &st)) || st < 1)
        return usage("SLURM_ARRAY_TASK_ID '%s' and SLURM_ARRAY_TASK_COUNT '%s' are not "
                     "numbers; give --shard I/N", id, count);
    int i = (iid - lo) / st;
    if (i < 0 || i >= n || (iid - lo) % st)
        return usage("array task %d is not one of the %d tasks from %d by %d; give --shard I/N",
                     iid, n, lo, st);
    b->shard = i;
    b->shards = n;
    return 0;
}

/* ---- printing ---------------------------------------------------------------- */

static void end_live(batch *b) {
    if (b->live) fprintf(stderr, "\r\033[K");
    b->live = 0;
}

/* A line for people on stderr (above the live line on a terminal). */
static void say(batch *b, const char *fmt, ...) NST_CLI_PRINTF(2, 3);
static void say(batch *b, const char *fmt, ...) {
    if (b->quiet || b->json) return;
    end_live(b);
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "nst: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

/* The time left: the elapsed time scaled by the work left over the work done,
 * a job's work its cost (pixels x iterations), a running one's in proportion
 * to its iterations; -1 before any is known. */
static double eta_seconds(const batch *b) {
    double did = 0, left = 0;
    for (int i = 0; i < b->njobs; i++) {
        const job *j = &b->jobs[i];
        if (j->state == J_QUEUED) left += j->cost;
        else if ((j->state == J_DONE || j->state == J_FAILED) && j->attempts) did += j->cost;
    }
    for (int k = 0; k < b->nslots; k++) {
        const slot *s = &b->slots[k];
        if (!s->pid) continue;
        double frac = s->iterations > 0 ? (double)s->iteration / s->iterations : 0;
        did += s->j->cost * frac;
        left += s->j->cost * (1 - frac);
    }
    return did > 0 ? (now() - b->t0) * left / did : -1;
}

static void live_line(batch *b) {
    if (!b->tty || b->quiet || b->json) return;
    char f[2 + MAX_SLOTS][128], line[1024];
    const char *fields[2 + MAX_SLOTS];
    int drop[2 + MAX_SLOTS], n = 0;
    snprintf(f[n], sizeof f[n], "batch %d/%d done", b->done + b->skipped, b->total);
    if (b->failed)
        snprintf(f[n] + strlen(f[n]), sizeof f[n] - strlen(f[n]), ", %d failed", b->failed);
    drop[n] = 0;
    fields[n] = f[n];
    n++;
    double eta = eta_seconds(b);
    int e = (int)(eta + 0.5);
    if (!(eta >= 0) || eta > 1e7) f[n][0] = 0;
    else if (e < 60) snprintf(f[n], sizeof f[n], ", ETA %ds", e);
    else if (e < 3600) snprintf(f[n], sizeof f[n], ", ETA %dm%02ds", e / 60, e % 60);
    else snprintf(f[n], sizeof f[n], ", ETA %dh%02dm", e / 3600, e / 60 % 60);
    drop[n] = 1;
    fields[n] = f[n];
    n++;
    for (int k = 0; k < b->nslots && n < 2 + MAX_SLOTS; k++) {
        slot *s = &b->slots[k];
        if (!s->pid) continue;
        const char *base = strrchr(s->j->output, '/');
        snprintf(f[n], sizeof f[n], "  [%d] %s %d/%d", s->dev, base ? base + 1 : s->j->output,
                 s->iteration, s->iterations);
        drop[n] = 2 + k;
        fields[n] = f[n];
        n++;
    }
    cli_fit_line(line, sizeof line, cli_term_width(2), fields, drop, n);
    fprintf(stderr, "\r\033[K%s", line);
    b->live = 1;
}

/* ---- workers ------------------------------------------------------------------- */

/* Removes what a job's worker may have left when it was stopped or killed:
 * its staging file, and the temporary file of an atomic write cut short
 * (".STAGING.XXXXXXXX.tmp" beside it, the image writer's name). */
static void remove_partials(const job *j) {
    unlink(j->staging);
    const char *slash = strrchr(j->staging, '/');
    const char *base = slash ? slash + 1 : j->staging;
    char dir[4096];
    if (slash) snprintf(dir, sizeof dir, "%.*s", (int)(slash - j->staging), j->staging);
    else snprintf(dir, sizeof dir, ".");
    if (slash == j->staging) snprintf(dir, sizeof dir, "/");
    DIR *d = opendir(dir);
    if (!d) return;
    size_t n = strlen(base);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t len = strlen(e->d_name);
        if (len > n + 6 && e->d_name[0] == '.' && !strncmp(e->d_name + 1, base, n) &&
            e->d_name[n + 1] == '.' &&
            (!strcmp(e->d_name + len - 4, ".tmp") || len == n + 8)) {
            char path[8300];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    }
    closedir(d);
}

/* Creates the directory that will hold path (mkdir -p); 0 when it exists
 * afterwards, else -1 with errno. */
static int make_parent_dirs(const char *path) {
    char dir[4096];
    const char *slash = strrchr(path, '/');
    if (!slash || slash == path) return 0;
    snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
    for (char *p = dir + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(dir, 0777);
            *p = '/';
        }
    struct stat sb;
    if (mkdir(dir, 0777) == 0 || (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode))) return 0;
    if (errno == EEXIST) errno = ENOTDIR;
    return -1;
}

/* The environment as the batch was started, before any OpenCL driver was
 * loaded: drivers change their process's (PoCL sets HWLOC_PLUGINS_PATH)
 * and, inherited, such changes hide devices from a child's own drivers.
 * Children get this copy. */
static char **startup_env;

static void save_environment(void) {
    extern char **environ;
    size_t n = 0;
    while (environ[n]) n++;
    startup_env = calloc(n + 1, sizeof *startup_env);
    for (size_t i = 0; startup_env && i < n; i++) startup_env[i] = strdup(environ[i]);
}

/* Starts job j on slot s: a child of this program with the job's arguments
 * and the slot's device. 0 when it could not be started. */
static int start_job(batch *b, slot *s, job *j) {
    int out[2], err[2];
    char dev[16];
    snprintf(dev, sizeof dev, "--device=%d", s->dev);
    if (pipe(out) != 0) return 0;
    if (pipe(err) != 0) {
        close(out[0]);
        close(out[1]);
        return 0;
    }
    /* the read ends stay here: no later worker holds them */
    fcntl(out[0], F_SETFD, FD_CLOEXEC);
    fcntl(err[0], F_SETFD, FD_CLOEXEC);
    remove_partials(j); /* the leftovers of a run that was killed */
    fflush(stdout);
    fflush(stderr);
    /* the child's arguments are made here: between fork and exec the child
     * of a process with driver threads may only make async-signal-safe calls */
    char **av = malloc((size_t)(j->argc + 3) * sizeof *av);
    if (!av) {
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        return 0;
    }
    memcpy(av, j->argv, (size_t)j->argc * sizeof *av);
    av[j->argc] = dev;
    av[j->argc + 1] = "--json";
    av[j->argc + 2] = NULL;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        free(av);
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        return 0;
    }
    if (pid == 0) {
        /* the child dies with the batch, even with a kill -9 of it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int null = open("/dev/null", O_RDONLY);
        if (null >= 0) dup2(null, 0);
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]), close(out[1]), close(err[0]), close(err[1]);
        /* nothing else of this process's descriptors (its drivers' files) */
        for (int fd = 3, n = (int)sysconf(_SC_OPEN_MAX); fd < n && fd < 65536; fd++) close(fd);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        if (startup_env) execve(b->exe, av, startup_env);
        else execv(b->exe, av);
        fprintf(stderr, "nst: cannot run %s: %s\n", b->exe, strerror(errno));
        _exit(127);
    }
    free(av);
    close(out[1]);
    close(err[1]);
    s->pid = pid;
    s->j = j;
    s->out_fd = out[0];
    s->err_fd = err[0];
    s->nout = s->nerr = 0;
    s->iteration = 0;
    s->iterations = 0;
    s->stopping = 0;
    j->state = J_RUNNING;
    j->device = s->dev;
    j->attempts++;
    j->t0 = now();
    if (b->json)
        printf("{\"event\":\"start\",\"job\":%d,\"output\":\"%s\",\"device\":%d,"
               "\"attempt\":%d,\"pid\":%ld}\n",
               j->line, cli_js(j->output), s->dev, j->attempts, (long)pid);
    fflush(stdout);
    return 1;
}

/* One line of the child's --json stream: its progress. */
static void child_line(batch *b, slot *s, const char *line) {
    json_t *o = json_loads(line, 0, NULL);
    if (!o) return;
    const char *ev = json_string_value(json_object_get(o, "event"));
    if (ev && !strcmp(ev, "frame")) { /* a video stretch: frames for iterations */
        s->iteration = (int)json_integer_value(json_object_get(o, "frame"));
        s->iterations = (int)json_integer_value(json_object_get(o, "frames"));
    } else if (ev && !strcmp(ev, "iteration")) {
        s->iteration = (int)json_integer_value(json_object_get(o, "iteration"));
        s->iterations = (int)json_integer_value(json_object_get(o, "iterations"));
        if (b->json) {
            printf("{\"event\":\"iteration\",\"job\":%d,\"device\":%d,\"iteration\":%d,"
                   "\"iterations\":%d,\"loss\":%.9g}\n",
                   s->j->line, s->dev, s->iteration, s->iterations,
                   json_number_value(json_object_get(o, "loss")));
            fflush(stdout);
        }
    }
    json_decref(o);
}

/* Reads what fd has; 0 at its end. */
static int drain(batch *b, slot *s, int is_out) {
    char buf[4096];
    ssize_t n = read(is_out ? s->out_fd : s->err_fd, buf, sizeof buf);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 1;
    if (n <= 0) return 0;
    if (!is_out) { /* keep the tail */
        for (ssize_t i = 0; i < n; i++) {
            if (s->nerr == sizeof s->err - 1) {
                memmove(s->err, s->err + sizeof s->err / 2, sizeof s->err / 2);
                s->nerr -= sizeof s->err / 2;
            }
            s->err[s->nerr++] = buf[i];
        }
        s->err[s->nerr] = 0;
        return 1;
    }
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            s->out[s->nout] = 0;
            child_line(b, s, s->out);
            s->nout = 0;
        } else if (s->nout < sizeof s->out - 1) {
            s->out[s->nout++] = buf[i];
        }
    }
    return 1;
}

/* The child's last message: its last lines on stderr, less the help hint. */
static void child_message(slot *s, char *out, size_t len) {
    char *e = s->err;
    size_t n = strlen(e);
    while (n && (e[n - 1] == '\n' || e[n - 1] == ' ')) e[--n] = 0;
    char *hint = strstr(e, "\n(see nst --help)");
    if (hint) *hint = 0, n = strlen(e);
    char *last = strrchr(e, '\n');
    const char *m = last ? last + 1 : e;
    if (!strncmp(m, "nst: ", 5)) m += 5;
    snprintf(out, len, "%s", *m ? m : "no message");
}

/* A failed job, for people (stderr) or programs (--json). */
static void report_failed(batch *b, const job *j, int device, int code) {
    char dev[16] = "null";
    if (device >= 0) snprintf(dev, sizeof dev, "%d", device);
    if (b->json) {
        printf("{\"event\":\"failed\",\"job\":%d,\"output\":\"%s\",\"device\":%s,"
               "\"exit\":%d,\"error\":\"%s\"}\n",
               j->line, cli_js(j->output ? j->output : ""), dev, code, cli_js(j->error));
        fflush(stdout);
    } else {
        end_live(b);
        if (device >= 0)
            fprintf(stderr, "nst: FAILED %s (line %d) on %d: %s\n", j->output, j->line, device,
                    j->error);
        else
            fprintf(stderr, "nst: FAILED line %d of %s: %s\n", j->line, b->file, j->error);
    }
}

/* The child of slot s has ended: its job is done, handed back or failed. */
static void finish_job(batch *b, slot *s, int status) {
    job *j = s->j;
    j->seconds = now() - j->t0;
    s->pid = 0;
    s->j = NULL;
    close(s->out_fd);
    close(s->err_fd);
    s->out_fd = s->err_fd = -1;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    char why[1024];
    if (code == 0) {
        if (rename(j->staging, j->output) == 0) {
            j->state = J_DONE;
            b->done++;
            say(b, "done %s (line %d) on %d: %s, %.1f s", j->output, j->line, s->dev, s->name,
                j->seconds);
            if (b->json)
                printf("{\"event\":\"done\",\"job\":%d,\"output\":\"%s\",\"device\":%d,"
                       "\"attempt\":%d,\"seconds\":%.3f}\n",
                       j->line, cli_js(j->output), s->dev, j->attempts, j->seconds);
            fflush(stdout);
            return;
        }
        snprintf(why, sizeof why, "cannot rename the result to '%s': %s", j->output,
                 strerror(errno));
        code = EXIT_RUNTIME;
    } else if (WIFSIGNALED(status)) {
        snprintf(why, sizeof why, "the worker on device %d was killed by signal %d", s->dev,
                 WTERMSIG(status));
    } else {
        child_message(s, why, sizeof why);
    }
    remove_partials(j); /* an image so far is no result */
    /* exit 2: the job's own arguments; 130: stopped; else maybe the device's */
    int retry = !g_stop && code != EXIT_USAGE && code != EXIT_INTERRUPTED &&
                j->attempts < MAX_ATTEMPTS;
    if (retry) {
        j->state = J_QUEUED;
        j->avoid = s->dev;
        if (j - b->jobs < b->first_queued) b->first_queued = (int)(j - b->jobs);
        say(b, "%s (line %d) failed on %d: %s; trying it once more%s", j->output, j->line,
            s->dev, why, b->nslots > 1 ? " on another device" : "");
        if (b->json)
            printf("{\"event\":\"retry\",\"job\":%d,\"output\":\"%s\",\"device\":%d,"
                   "\"error\":\"%s\"}\n",
                   j->line, cli_js(j->output), s->dev, cli_js(why));
    } else {
        j->state = J_FAILED;
        snprintf(j->error, sizeof j->error, "%s", why);
        b->failed++;
        report_failed(b, j, s->dev, code);
    }
    fflush(stdout);
}

/* The next job for slot s: the largest queued one not handed back by this
 * device (unless it is the only one). */
static job *next_job(batch *b, slot *s) {
    while (b->first_queued < b->njobs && b->jobs[b->first_queued].state != J_QUEUED)
        b->first_queued++;
    for (int i = b->first_queued; i < b->njobs; i++) {
        job *j = &b->jobs[i];
        if (j->state == J_QUEUED && (j->avoid != s->dev || b->nslots == 1)) return j;
    }
    return NULL;
}

static int run_jobs(batch *b) {
    double last_live = 0;
    for (;;) {
        int running = 0;
        for (int k = 0; k < b->nslots && !g_stop; k++) {
            slot *s = &b->slots[k];
            job *j;
            while (!s->pid && (j = next_job(b, s)) != NULL) {
                if (make_parent_dirs(j->output) != 0)
                    job_fail(j, "cannot create the directory of '%s': %s", j->output,
                             strerror(errno));
                else if (start_job(b, s, j))
                    break;
                else
                    job_fail(j, "cannot start a worker: %s", strerror(errno));
                b->failed++;
                report_failed(b, j, -1, 1);
            }
        }
        for (int k = 0; k < b->nslots; k++) running += b->slots[k].pid != 0;
        while (b->first_queued < b->njobs && b->jobs[b->first_queued].state != J_QUEUED)
            b->first_queued++;
        if (!running && (g_stop || b->first_queued == b->njobs)) break;
        if (!running) { /* every queued job avoids every idle device: let them */
            for (int i = b->first_queued; i < b->njobs; i++) b->jobs[i].avoid = -1;
            continue;
        }
        struct pollfd pf[2 * MAX_SLOTS];
        int owner[2 * MAX_SLOTS], np = 0;
        for (int k = 0; k < b->nslots; k++) {
            slot *s = &b->slots[k];
            if (!s->pid) continue;
            /* owner: k for the slot's stdout, -1 - k for its stderr */
            if (s->out_fd >= 0) {
                pf[np] = (struct pollfd){s->out_fd, POLLIN, 0};
                owner[np++] = k;
            }
            if (s->err_fd >= 0) {
                pf[np] = (struct pollfd){s->err_fd, POLLIN, 0};
                owner[np++] = -1 - k;
            }
        }
        int r = poll(pf, (nfds_t)np, 250);
        if (r < 0 && errno != EINTR) break;
        for (int i = 0; r > 0 && i < np; i++) {
            if (!pf[i].revents) continue;
            int is_out = owner[i] >= 0;
            slot *s = &b->slots[is_out ? owner[i] : -1 - owner[i]];
            if (!drain(b, s, is_out)) {
                close(is_out ? s->out_fd : s->err_fd);
                if (is_out) s->out_fd = -1;
                else s->err_fd = -1;
            }
        }
        for (int k = 0; k < b->nslots; k++) {
            slot *s = &b->slots[k];
            if (!s->pid || s->out_fd >= 0 || s->err_fd >= 0) continue;
            int status;
            if (waitpid(s->pid, &status, 0) == s->pid) finish_job(b, s, status);
        }
        if (g_stop)
            for (int k = 0; k < b->nslots; k++)
                if (b->slots[k].pid && !b->slots[k].stopping) {
                    kill(b->slots[k].pid, SIGTERM);
                    b->slots[k].stopping = 1;
                }
        if (b->tty && now() - last_live > 0.5) {
            live_line(b);
            last_live = now();
        }
    }
    end_live(b);
    return 0;
}

/* Joins the videos whose stretches are all there and whose output is not,
 * whichever slice ran them: the batch that finds the last stretch done
 * joins. A lock in the stretches' directory (flock) keeps two batches from
 * joining one video at once; the second finds the output written. */
static void join_videos(batch *b) {
    for (int i = 0; i < b->ngroups && !g_stop; i++) {
        vgroup *g = &b->groups[i];
        struct stat sb;
        if (g->state != J_QUEUED) continue;
        int all = 1;
        for (int k = 0; k < g->nchunks && all; k++) all = stat(g->chunks[k], &sb) == 0;
        if (!all) continue;
        char lock[4300];
        snprintf(lock, sizeof lock, "%s/join.lock", g->dir);
        int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0 || flock(fd, LOCK_EX | LOCK_NB) != 0) {
            if (fd >= 0) close(fd);
            say(b, "%s (line %d): another batch is joining it", g->output, g->line);
            continue;
        }
        if (stat(g->output, &sb) == 0) { /* joined already: the stretches have served */
            for (int k = 0; k < g->nchunks; k++) unlink(g->chunks[k]);
            unlink(lock);
            close(fd);
            rmdir(g->dir);
            g->state = J_SKIPPED;
            continue;
        }
        double t0 = now();
        char note[256] = "", err[1024] = "";
        nst_video_info info;
        nst_video_reader *rd = NULL;
        nst_msg msg = {{0}};
        memset(&info, 0, sizeof info);
        int opened = nst_video_open(g->content, &rd, &info, &msg) == NST_OK;
        int audio = opened && info.has_audio && !nst_video_is_pattern(g->content);
        nst_video_close(rd);
        if (video_join((const char *const *)g->chunks, g->start, g->stop, g->nchunks, g->output,
                       g->codec, opened ? info.fps_num : 0, opened ? info.fps_den : 0,
                       audio && !nst_video_is_pattern(g->output) ? g->content : NULL,
                       note, sizeof note, err, sizeof err) != 0) {
            g->state = J_FAILED;
            snprintf(g->error, sizeof g->error, "joining: %s", err);
            b->failed++;
            job j = {.line = g->line, .output = g->output, .error = ""};
            snprintf(j.error, sizeof j.error, "%s", g->error);
            report_failed(b, &j, -1, EXIT_RUNTIME);
            close(fd);
            continue;
        }
        g->state = J_DONE;
        b->joined++;
        say(b, "joined %s (line %d) from %d stretches of %ld frames, %s, %.1f s", g->output,
            g->line, g->nchunks, g->stop[g->nchunks - 1], note, now() - t0);
        if (b->json)
            printf("{\"event\":\"joined\",\"job\":%d,\"output\":\"%s\",\"chunks\":%d,"
                   "\"frames\":%ld,\"seconds\":%.3f}\n",
                   g->line, cli_js(g->output), g->nchunks, g->stop[g->nchunks - 1], now() - t0);
        fflush(stdout);
        /* the stretches have served: the output now says the video is done */
        for (int k = 0; k < g->nchunks; k++) unlink(g->chunks[k]);
        unlink(lock);
        close(fd);
        rmdir(g->dir);
    }
}

/* ---- the command ----------------------------------------------------------------- */

int nst_batch(int argc, char **argv, const char *shortopts, const struct option *longopts,
              const nst_settings *set) {
    if (!startup_env) save_environment();
    enum { B_DEVICES = 256, B_SHARD, B_JSON, B_CHUNK_FRAMES, B_CHUNK_OVERLAP };
    static const struct option opts[] = {{"devices", required_argument, NULL, B_DEVICES},
                                         {"shard", required_argument, NULL, B_SHARD},
                                         {"json", no_argument, NULL, B_JSON},
                                         {"chunk-frames", required_argument, NULL,
                                          B_CHUNK_FRAMES},
                                         {"chunk-overlap", required_argument, NULL,
                                          B_CHUNK_OVERLAP},
                                         {"quiet", no_argument, NULL, 'q'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    static batch b;
    memset(&b, 0, sizeof b);
    b.chunk_frames = 120;
    b.chunk_overlap = 6;
    const char *devices = NULL, *shard = NULL;
    char err[700];
    int c, rc;
    optind = 0;
    while ((c = cli_next(argc, argv, "-:qh", opts, "batch", err, sizeof err)) != CLI_END) {
        switch (c) {
        case CLI_ERROR:
            fprintf(stderr, "nst: %s\n(see nst batch --help)\n", err);
            return EXIT_USAGE;
        case CLI_ARG:
            if (b.file) return usage("one JOBS file, not '%s' too", optarg);
            b.file = optarg;
            break;
        case 'h': fputs(help_text, stdout); return 0;
        case 'q': b.quiet = 1; break;
        case B_JSON: b.json = 1; break;
        case B_DEVICES: devices = optarg; break;
        case B_SHARD: shard = optarg; break;
        case B_CHUNK_FRAMES:
        case B_CHUNK_OVERLAP: {
            int v;
            if (!cli_parse_int(optarg, &v) || v < (c == B_CHUNK_FRAMES) || v > 1000000)
                return usage("--%s '%s': give a whole number >= %d",
                             c == B_CHUNK_FRAMES ? "chunk-frames" : "chunk-overlap", optarg,
                             c == B_CHUNK_FRAMES);
            *(c == B_CHUNK_FRAMES ? &b.chunk_frames : &b.chunk_overlap) = v;
            break;
        }
        }
    }
    if (b.chunk_overlap >= b.chunk_frames)
        return usage("--chunk-overlap %ld must be less than --chunk-frames %ld",
                     b.chunk_overlap, b.chunk_frames);
    if (!b.file) return usage("no JOBS file: give a JSON Lines file, one job per line");
    if ((rc = parse_shard(&b, shard))) return rc;
    ssize_t n = readlink("/proc/self/exe", b.exe, sizeof b.exe - 1);
    if (n <= 0) {
        fprintf(stderr, "nst: batch: cannot find this program (/proc/self/exe): %s\n",
                strerror(errno));
        return EXIT_RUNTIME;
    }
    b.exe[n] = 0;
    b.tty = isatty(2);
    b.t0 = now();
    rc = EXIT_RUNTIME;
    if (!read_jobs(&b, shortopts, longopts)) goto out;
    if ((rc = check_outputs(&b))) goto out;
    if ((rc = parse_devices(&b, devices, set))) goto out;
    /* the slices: dealt from the largest down, so they weigh about the same */
    qsort(b.jobs, (size_t)b.njobs, sizeof *b.jobs, by_cost);
    int kept = 0;
    for (int i = 0; i < b.njobs; i++) {
        if (i % b.shards != b.shard) {
            job_free(&b.jobs[i]);
            continue;
        }
        b.jobs[kept++] = b.jobs[i];
    }
    b.njobs = kept;
    b.total = kept;
    for (int i = 0; i < b.njobs; i++) {
        struct stat sb;
        int g = b.jobs[i].group;
        if (b.jobs[i].state == J_FAILED) b.failed++;
        else if (stat(b.jobs[i].output, &sb) == 0 ||
                 (g >= 0 && stat(b.groups[g].output, &sb) == 0))
            b.jobs[i].state = J_SKIPPED, b.skipped++;
    }
    if (b.json) {
        printf("{\"event\":\"batch\",\"file\":\"%s\",\"jobs\":%d,\"shard\":%d,\"shards\":%d,"
               "\"todo\":%d,\"skipped\":%d,\"devices\":[",
               cli_js(b.file), b.total, b.shard, b.shards, b.total - b.skipped - b.failed,
               b.skipped);
        for (int k = 0; k < b.nslots; k++)
            printf("%s{\"index\":%d,\"name\":\"%s\"}", k ? "," : "", b.slots[k].dev,
                   cli_js(b.slots[k].name));
        printf("]}\n");
    } else if (!b.quiet) {
        fprintf(stderr, "nst: batch %s: %d job%s", b.file, b.total, b.total == 1 ? "" : "s");
        if (b.shards > 1) fprintf(stderr, " in slice %d of %d", b.shard, b.shards);
        if (b.skipped) fprintf(stderr, ", %d already done", b.skipped);
        fprintf(stderr, "; on");
        for (int k = 0; k < b.nslots; k++)
            fprintf(stderr, "%s %d: %s", k ? "," : "", b.slots[k].dev, b.slots[k].name);
        fprintf(stderr, "\n");
    }
    for (int i = 0; i < b.njobs; i++) {
        job *j = &b.jobs[i];
        if (j->state == J_FAILED) {
            report_failed(&b, j, -1, EXIT_USAGE);
        } else if (j->state == J_SKIPPED && b.json) {
            printf("{\"event\":\"skip\",\"job\":%d,\"output\":\"%s\"}\n", j->line,
                   cli_js(j->output));
        }
    }
    fflush(stdout);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);
    run_jobs(&b);
    if (!g_stop) join_videos(&b);
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    int left = 0;
    for (int i = 0; i < b.njobs; i++) left += b.jobs[i].state == J_QUEUED;
    double secs = now() - b.t0;
    if (b.json) {
        printf("{\"event\":\"summary\",\"jobs\":%d,\"done\":%d,\"skipped\":%d,\"failed\":%d,"
               "\"not_run\":%d,\"joined\":%d,\"seconds\":%.3f,\"interrupted\":%s}\n",
               b.total, b.done, b.skipped, b.failed, left, b.joined, secs,
               g_stop ? "true" : "false");
    } else {
        fprintf(stderr, "nst: batch %s: %d done, %d already done, %d failed%s%s in %.1f s\n",
                b.file, b.done, b.skipped, b.failed, g_stop ? ", interrupted" : "",
                left ? " (some not run)" : "", secs);
        for (int i = 0; i < b.ngroups; i++)
            if (b.groups[i].state == J_QUEUED && !g_stop)
                fprintf(stderr, "  %s (line %d): waiting for stretches of other slices or "
                                "failed ones; the batch run that finishes the last joins it\n",
                        b.groups[i].output, b.groups[i].line);
        for (int i = 0; i < b.njobs && b.failed; i++)
            if (b.jobs[i].state == J_FAILED)
                fprintf(stderr, "  failed: line %d%s%s: %s\n", b.jobs[i].line,
                        b.jobs[i].output ? " " : "", b.jobs[i].output ? b.jobs[i].output : "",
                        b.jobs[i].error);
    }
    fflush(stdout);
    rc = g_stop ? EXIT_INTERRUPTED : b.failed ? EXIT_RUNTIME : 0;
out:
    for (int i = 0; i < b.njobs; i++) job_free(&b.jobs[i]);
    free(b.jobs);
    for (int i = 0; i < b.ngroups; i++) group_free(&b.groups[i]);
    free(b.groups);
    return rc;
}
