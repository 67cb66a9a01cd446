/* bench_run.c: `nst bench --run N`, whole runs timed the way a user waits for
 * them: from program start to the written image. Each run is a child process
 * of this same program, `nst ... -n N --json`; the parent reads its
 * iteration lines as they come, so it knows when the first iteration ended,
 * the time per iteration, the final loss, and when the child exited with the
 * image written. Without --content and --style it writes a synthetic photo
 * and painting at the run's size (longest side --size; 4:3 and 8:5), so the
 * run resizes nothing and a peer can be given the very same files. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_run.h"
#include "cli.h"
#include "nst.h"

#define MAX_HIST 16
#define MAX_EXTRA 64

typedef struct run_opts {
    int iterations, size, repeat, json, cold, keep;
    int hist[MAX_HIST], nhist;
    const char *content, *style, *weights, *device, *nst;
    char *extra[MAX_EXTRA];
    int nextra;
} run_opts;

typedef struct run_result {
    int exit_status, iterations, evaluations, width, height;
    double wall, first, per_iter_ms, loss, cpu;
} run_result;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int usage(const char *fmt, const char *arg) {
    fprintf(stderr, "nst: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see nst bench --help)\n");
    return 2;
}

static const char *help_text =
    "usage: nst bench --run N [--size N] [--repeat R] [--lbfgs-history H[,H...]]\n"
    "                 [--content FILE --style FILE] [--weights FILE] [--device SEL]\n"
    "                 [--cold] [--keep] [--nst PROGRAM] [--json] [-- RUN OPTIONS...]\n\n"
    "Times whole runs of N iterations, each a fresh `nst` process, from program\n"
    "start to the written image: the total, when the first iteration ended (all\n"
    "setup included: device, weights, kernel builds, targets), the time per\n"
    "iteration after the first, the final loss, and the processor time the run\n"
    "used (user and system, all threads: steadier than wall time on a busy machine).\n"
    "Without --content and --style it writes a synthetic photo (4:3) and painting\n"
    "(8:5) whose longest side is --size (default 512), so nothing is resized;\n"
    "--keep prints where they are and leaves them (for a peer run on the same\n"
    "files). --lbfgs-history runs each history length in turn; --repeat R runs each\n"
    "R times (default 1). --cold gives every run an empty kernel cache and turns the\n"
    "drivers' own caches off (PoCL's, NVIDIA's): a first run on a fresh machine;\n"
    "otherwise the usual caches are used, so the first run may build kernels and\n"
    "later runs not. Options after -- go to every run (e.g. -- --optimizer adam).\n"
    "--nst PROGRAM times another build of nst (an older one, say) the same way.\n"
    "--json prints one object per run.\n";

enum { R_RUN = 256, R_SIZE, R_REPEAT, R_HIST, R_NST, R_JSON, R_COLD, R_KEEP };

static int parse(int argc, char **argv, run_opts *o) {
    static const struct option longopts[] = {
        {"run", required_argument, NULL, R_RUN},       {"size", required_argument, NULL, R_SIZE},
        {"repeat", required_argument, NULL, R_REPEAT}, {"lbfgs-history", required_argument, NULL, R_HIST},
        {"content", required_argument, NULL, 'c'},     {"style", required_argument, NULL, 's'},
        {"weights", required_argument, NULL, 'w'},     {"device", required_argument, NULL, 'd'},
        {"nst", required_argument, NULL, R_NST},       {"json", no_argument, NULL, R_JSON},
        {"cold", no_argument, NULL, R_COLD},           {"keep", no_argument, NULL, R_KEEP},
        {"help", no_argument, NULL, 'h'},              {NULL, 0, NULL, 0}};
    memset(o, 0, sizeof *o);
    o->size = 512;
    o->repeat = 1;
    /* what follows "--" goes to every run */
    int end = 1;
    while (end < argc && strcmp(argv[end], "--")) end++;
    for (int i = end + 1; i < argc; i++) {
        if (o->nextra == MAX_EXTRA) return usage("more than %s run options after --", "64");
        o->extra[o->nextra++] = argv[i];
    }
    char err[700];
    int c;
    optind = 0;
    while ((c = cli_next(end, argv, "-:c:s:w:d:h", longopts, "bench --run", err, sizeof err)) !=
           CLI_END) {
        const char *v = optarg;
        switch (c) {
        case CLI_ERROR: return usage("%s", err);
        case CLI_ARG: return usage("bench: unexpected argument '%s'", v);
        case 'h': fputs(help_text, stdout); return -1;
        case R_RUN:
            if (!cli_parse_int(v, &o->iterations) || o->iterations < 1 ||
                o->iterations > 1000000)
                return usage("--run '%s': give a number of iterations in 1..1000000", v);
            break;
        case R_SIZE:
            if (!cli_parse_int(v, &o->size) || o->size < 16 || o->size > 16384)
                return usage("--size '%s': give a size in 16..16384", v);
            break;
        case R_REPEAT:
            if (!cli_parse_int(v, &o->repeat) || o->repeat < 1 || o->repeat > 1000)
                return usage("--repeat '%s': give a whole number in 1..1000", v);
            break;
        case R_HIST: {
            const char *p = v;
            while (*p) {
                double d;
                if (o->nhist == MAX_HIST || !cli_parse_double(p, &d, &p) || d < 1 ||
                    d > 1000 || d != (int)d)
                    return usage("--lbfgs-history '%s': give up to 16 lengths in 1..1000, "
                                 "comma-separated", v);
                o->hist[o->nhist++] = (int)d;
                if (*p == ',') p++;
                else if (*p) return usage("--lbfgs-history '%s': separate lengths by commas",
                                          v);
            }
            break;
        }
        case 'c': o->content = v; break;
        case 's': o->style = v; break;
        case 'w': o->weights = v; break;
        case 'd': o->device = v; break;
        case R_NST: o->nst = v; break;
        case R_JSON: o->json = 1; break;
        case R_COLD: o->cold = 1; break;
        case R_KEEP: o->keep = 1; break;
        }
    }
    if (!o->content != !o->style) return usage("%s: give both --content and --style, or "
                                                "neither (synthetic images)", "bench --run");
    return 0;
}

/* A smooth synthetic photo (kind 0) or a striped painting (kind 1), with a
 * little deterministic noise. */
static int write_image(const char *path, int w, int h, int kind) {
    nst_image *img = NULL;
    nst_msg msg = {{0}};
    if (nst_image_create(w, h, &img, &msg) != NST_OK) {
        fprintf(stderr, "nst: %s\n", msg.text);
        return 0;
    }
    unsigned long long s = 0x9E3779B97F4A7C15ULL * (unsigned long long)(kind + 1);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double u = (double)x / w, v = (double)y / h, t;
                if (kind == 0)
                    t = 0.5 + 0.3 * sin(6.0 * u + 2.0 * c) * cos(4.0 * v - c) + 0.15 * (v - 0.5);
                else
                    t = 0.5 + 0.4 * sin(40.0 * (u + 0.6 * v) + 1.7 * c);
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                t += 0.05 * ((double)(s >> 40) / 16777216.0 - 0.5);
                img->data[((size_t)c * h + y) * w + x] = (float)(t < 0 ? 0 : t > 1 ? 1 : t);
            }
    nst_status st = nst_image_write(path, img, 95, 0, &msg);
    nst_image_free(img);
    if (st != NST_OK) fprintf(stderr, "nst: %s\n", msg.text);
    return st == NST_OK;
}

static void remove_tree(const char *dir) {
    char cmd[4400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) { /* a leftover temporary directory is harmless */ }
}

/* One child run; 0 when it could not be started or read. */
static int run_once(const char *exe, char *const *args, const char *cache,
                    const char *out, run_result *r) {
    memset(r, 0, sizeof *r);
    r->exit_status = -1;
    int fd[2];
    if (pipe(fd) != 0) {
        fprintf(stderr, "nst: bench: pipe: %s\n", strerror(errno));
        return 0;
    }
    unlink(out);
    fflush(stdout);
    fflush(stderr);
    double t0 = now();
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "nst: bench: fork: %s\n", strerror(errno));
        close(fd[0]);
        close(fd[1]);
        return 0;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        close(fd[0]);
        close(fd[1]);
        if (cache) { /* and the drivers' own caches off (PoCL, NVIDIA) */
            setenv("NST_CACHE_DIR", cache, 1);
            setenv("POCL_KERNEL_CACHE", "0", 1);
            setenv("CUDA_CACHE_DISABLE", "1", 1);
        }
        execv(exe, args);
        fprintf(stderr, "nst: bench: cannot run %s: %s\n", exe, strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    FILE *f = fdopen(fd[0], "r");
    char *line = NULL;
    size_t cap = 0;
    double first_elapsed = 0, last_elapsed = 0;
    while (f && getline(&line, &cap, f) >= 0) {
        double t = now() - t0;
        json_t *j = json_loads(line, 0, NULL);
        const char *ev = j ? json_string_value(json_object_get(j, "event")) : NULL;
        if (ev && !strcmp(ev, "iteration")) {
            int it = (int)json_integer_value(json_object_get(j, "iteration"));
            double el = json_number_value(json_object_get(j, "elapsed"));
            if (r->iterations == 0) {
                r->first = t;
                first_elapsed = el;
            }
            last_elapsed = el;
            r->iterations = it;
            r->evaluations = (int)json_integer_value(json_object_get(j, "evaluations"));
            r->loss = json_number_value(json_object_get(j, "loss"));
            r->width = (int)json_integer_value(json_object_get(j, "width"));
            r->height = (int)json_integer_value(json_object_get(j, "height"));
        }
        json_decref(j);
    }
    free(line);
    if (f) fclose(f);
    else close(fd[0]);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
    r->wall = now() - t0;
    r->cpu = ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
             1e-6 * (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    r->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r->iterations > 1)
        r->per_iter_ms = (last_elapsed - first_elapsed) / (r->iterations - 1) * 1e3;
    struct stat sb;
    if (r->exit_status == 0 && (stat(out, &sb) != 0 || sb.st_size == 0)) {
        fprintf(stderr, "nst: bench: the run exited 0 but wrote no %s\n", out);
        r->exit_status = 1;
    }
    return 1;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int nst_bench_run(int argc, char **argv) {
    run_opts o;
    int rc = parse(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;
    char exe[4096];
    if (o.nst) {
        snprintf(exe, sizeof exe, "%s", o.nst);
    } else {
        ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (len <= 0) {
            fprintf(stderr, "nst: bench --run: cannot find this program (/proc/self/exe)\n");
            return 1;
        }
        exe[len] = 0;
    }
    if (access(exe, X_OK) != 0) {
        fprintf(stderr, "nst: bench --run: cannot run %s: %s\n", exe, strerror(errno));
        return 1;
    }
    const char *tmp = getenv("TMPDIR");
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/nst-bench-run-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "nst: bench --run: cannot create a temporary directory %s: %s\n", dir,
                strerror(errno));
        return 1;
    }
    char content[4200], style[4200], out[4200], cache[4200];
    snprintf(out, sizeof out, "%s/out.png", dir);
    rc = 0;
    if (!o.content) {
        snprintf(content, sizeof content, "%s/content.png", dir);
        snprintf(style, sizeof style, "%s/style.png", dir);
        if (!write_image(content, o.size, (o.size * 3 + 2) / 4, 0) ||
            !write_image(style, o.size, (o.size * 5 + 4) / 8, 1)) {
            rc = 1;
            goto done;
        }
        o.content = content;
        o.style = style;
        if (o.keep && !o.json)
            printf("inputs: %s (%dx%d), %s (%dx%d)\n", content, o.size, (o.size * 3 + 2) / 4,
                   style, o.size, (o.size * 5 + 4) / 8);
    }
    int nh = o.nhist ? o.nhist : 1;
    for (int hi = 0; hi < nh && rc == 0; hi++) {
        char iters[16], size[16], hist[16];
        snprintf(iters, sizeof iters, "%d", o.iterations);
        snprintf(size, sizeof size, "%d", o.size);
        snprintf(hist, sizeof hist, "%d", o.nhist ? o.hist[hi] : 0);
        char *args[24 + MAX_EXTRA];
        int na = 0;
        args[na++] = exe;
        args[na++] = "--content";
        args[na++] = (char *)o.content;
        args[na++] = "--style";
        args[na++] = (char *)o.style;
        args[na++] = "-o";
        args[na++] = out;
        args[na++] = "--size";
        args[na++] = size;
        args[na++] = "-n";
        args[na++] = iters;
        args[na++] = "--json";
        if (o.nhist) {
            args[na++] = "--lbfgs-history";
            args[na++] = hist;
        }
        if (o.weights) {
            args[na++] = "--weights";
            args[na++] = (char *)o.weights;
        }
        if (o.device) {
            args[na++] = "--device";
            args[na++] = (char *)o.device;
        }
        for (int i = 0; i < o.nextra; i++) args[na++] = o.extra[i];
        args[na] = NULL;
        double walls[1000], pers[1000];
        int good = 0;
        for (int k = 0; k < o.repeat; k++) {
            run_result r;
            const char *cdir = NULL;
            if (o.cold) {
                snprintf(cache, sizeof cache, "%s/cache-%d-%d", dir, hi, k);
                cdir = cache;
            }
            if (!run_once(exe, args, cdir, out, &r)) {
                rc = 1;
                break;
            }
            if (o.json) {
                printf("{\"event\":\"run\",\"run\":%d,\"lbfgs_history\":%d,\"width\":%d,"
                       "\"height\":%d,\"iterations\":%d,\"evaluations\":%d,\"wall_s\":%.4f,"
                       "\"first_iteration_s\":%.4f,\"per_iteration_ms\":%.4f,"
                       "\"final_loss\":%.9g,\"cpu_s\":%.3f,\"cold\":%s,\"exit\":%d}\n",
                       k + 1, o.nhist ? o.hist[hi] : 0, r.width, r.height, r.iterations,
                       r.evaluations, r.wall, r.first, r.per_iter_ms, r.loss, r.cpu,
                       o.cold ? "true" : "false", r.exit_status);
            } else if (r.exit_status == 0) {
                char hl[32] = "default history";
                if (o.nhist) snprintf(hl, sizeof hl, "history %d", o.hist[hi]);
                printf("%dx%d, %d iterations, %s, run %d: %.3f s to the written image, first "
                       "iteration at %.3f s, %.3f ms per iteration, final loss %.9g "
                       "(%d evaluations; %.2f s of processor time)\n",
                       r.width, r.height, r.iterations, hl, k + 1, r.wall, r.first,
                       r.per_iter_ms, r.loss, r.evaluations, r.cpu);
            }
            fflush(stdout);
            if (o.cold) remove_tree(cache);
            if (r.exit_status != 0) {
                fprintf(stderr, "nst: bench: the run exited with status %d\n", r.exit_status);
                rc = 1;
                break;
            }
            walls[good] = r.wall;
            pers[good++] = r.per_iter_ms;
        }
        if (rc == 0 && good > 1 && !o.json)
            printf("  median of %d: %.3f s to the written image, %.3f ms per iteration\n", good,
                   median(walls, good), median(pers, good));
    }
done:
    if (o.keep) {
        unlink(out);
        if (!o.json) printf("kept %s\n", dir);
    } else {
        remove_tree(dir);
    }
    return rc;
}
