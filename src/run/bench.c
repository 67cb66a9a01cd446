/* bench.c: timing one optimiser evaluation (nst bench): VGG forward to the
 * deepest tap, the losses, the backward pass to the image, at a given size,
 * with random content and style images; per-kernel device times from
 * profiling events, and the host BLAS's times when it runs the products. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image.h"
#include "objective.h"

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Sums the profiled device time per kernel name over events [from, to). */
static void add_kernel_times(nst_runtime *rt, int from, nst_bench_result *r) {
    for (int i = from; i < rt->nevents; i++) {
        cl_ulong t0 = 0, t1 = 0;
        double ms = rt->events[i].host_ms; /* work done on the host has no event */
        if (rt->events[i].ev) {
            if (clGetEventProfilingInfo(rt->events[i].ev, CL_PROFILING_COMMAND_START, sizeof t0,
                                        &t0, NULL) != CL_SUCCESS ||
                clGetEventProfilingInfo(rt->events[i].ev, CL_PROFILING_COMMAND_END, sizeof t1,
                                        &t1, NULL) != CL_SUCCESS)
                continue;
            ms = (t1 - t0) * 1e-6;
        }
        int k = 0;
        while (k < r->nkernels && strcmp(r->kernels[k].name, rt->events[i].name)) k++;
        if (k == r->nkernels) {
            if (k == (int)(sizeof r->kernels / sizeof r->kernels[0])) continue;
            snprintf(r->kernels[k].name, sizeof r->kernels[k].name, "%s", rt->events[i].name);
            r->nkernels++;
        }
        r->kernels[k].ms += ms;
        r->kernels[k].calls++;
    }
    for (int i = from; i < rt->nevents; i++)
        if (rt->events[i].ev) clReleaseEvent(rt->events[i].ev);
    rt->nevents = from;
}

static int cmp_kernel(const void *a, const void *b) {
    double x = ((const nst_bench_kernel *)a)->ms, y = ((const nst_bench_kernel *)b)->ms;
    return x > y ? -1 : x < y;
}

nst_status nst_bench_eval(nst_runtime *rt, nst_model *model, const nst_params *p, int w, int h,
                          int evals, nst_bench_result *out) {
    nst_status st = NST_OK;
    nst_objective *obj = NULL;
    nst_tensor *x = NULL, *grad = NULL;
    nst_image *content = NULL, *style = NULL;
    double *times = NULL;
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!out) return nst_fail_null(RTM(rt), "nst_bench_eval", "out");
    memset(out, 0, sizeof *out);
    if (!model) return nst_fail_null(RTM(rt), "nst_bench_eval", "model");
    if (!p) return nst_fail_null(RTM(rt), "nst_bench_eval", "p");
    if (evals < 1 || w < 16 || h < 16 || w > 65536 || h > 65536)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "bench: %d evaluations at %dx%d (give at least 1 evaluation and sides "
                        "in 16..65536)",
                        evals, w, h);
    nst_params q = *p;
    q.size = w > h ? w : h;
    q.masks = NULL;
    q.init = NST_INIT_CONTENT; /* the bench starts from its own image, at one scale */
    q.scales = 1;
    NST_TRY(nst_params_check(&q, 1, NULL, RTM(rt)));
    NST_TRY(nst_objective_create(rt, model->weights, &q, 0, &obj));
    times = calloc((size_t)evals, sizeof *times);
    if (!times) {
        st = nst_fail(RTM(rt), NST_ERR_NOMEM, "bench");
        goto fail;
    }
    NST_TRY(nst_image_create(w, h, &content, RTM(rt)));
    NST_TRY(nst_image_create(w, h, &style, RTM(rt)));
    uint64_t s = 12345;
    for (size_t i = 0; i < (size_t)3 * w * h; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        content->data[i] = (float)((s >> 40) / 16777216.0);
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        style->data[i] = (float)((s >> 40) / 16777216.0);
    }
    const nst_image *styles[1] = {style};
    NST_TRY(nst_objective_targets(obj, content, styles, 1, NULL, NULL, q.tile > 0 ? q.tile : 0));
    NST_TRY(nst_tensor_create(rt, 1, 3, h, w, &x));
    NST_TRY(nst_tensor_create(rt, 1, 3, h, w, &grad));
    NST_TRY(nst_tensor_upload(rt, x, content->data));
    double loss;
    for (int i = 0; i < 2; i++) NST_TRY(nst_objective_evaluate(obj, rt, x, grad, &loss));
    NST_TRY(nst_finish(rt));
    add_kernel_times(rt, 0, out); /* drop the warm-up events */
    out->nkernels = 0;
    memset(out->kernels, 0, sizeof out->kernels);
    for (int i = 0; i < evals; i++) {
        double t0 = seconds();
        NST_TRY(nst_objective_evaluate(obj, rt, x, grad, &loss)); /* ends in a blocking read */
        times[i] = (seconds() - t0) * 1e3;
        add_kernel_times(rt, 0, out);
    }
    qsort(times, (size_t)evals, sizeof *times, cmp_double);
    out->w = w;
    out->h = h;
    out->evals = evals;
    out->min_ms = times[0];
    out->max_ms = times[evals - 1];
    out->median_ms = evals % 2 ? times[evals / 2] : 0.5 * (times[evals / 2 - 1] + times[evals / 2]);
    out->gflop = nst_vgg_flops(nst_objective_network(obj)) * 1e-9;
    out->gflops = out->gflop / (out->median_ms * 1e-3);
    for (int k = 0; k < out->nkernels; k++) {
        out->kernels[k].ms /= evals;
        out->kernels[k].calls /= evals;
    }
    qsort(out->kernels, (size_t)out->nkernels, sizeof out->kernels[0], cmp_kernel);
fail:
    out->peak_mib = rt->mem_peak / 1048576.0;
    free(times);
    nst_image_free(content);
    nst_image_free(style);
    nst_tensor_free(rt, x);
    nst_tensor_free(rt, grad);
    nst_objective_free(rt, obj);
    return st;
}
