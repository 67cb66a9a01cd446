/* tensor.c: float32 NCHW device tensors and raw device buffers, with the
 * runtime's memory accounting (current and peak bytes allocated). */
#include <stdlib.h>

#include "nst_int.h"

/* A cl_mem's size, for accounting at free time. */
static size_t mem_size(cl_mem m) {
    size_t n = 0;
    if (clGetMemObjectInfo(m, CL_MEM_SIZE, sizeof n, &n, NULL) != CL_SUCCESS) n = 0;
    return n;
}

nst_status nst_buffer_create(nst_runtime *rt, size_t bytes, cl_mem *out) {
    if (bytes == 0) bytes = 4;
    if (rt->fail_alloc_at > 0 && ++rt->nallocs == rt->fail_alloc_at)
        return nst_fail(RTM(rt), NST_ERR_NOMEM, "allocation %d failed (injected)", rt->nallocs);
    if (bytes > rt->info.max_alloc)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE,
                        "a buffer of %.1f MiB exceeds %s's largest allocation of %.1f MiB; try "
                        "a smaller --size",
                        bytes / 1048576.0, rt->info.name, rt->info.max_alloc / 1048576.0);
    cl_int e = CL_SUCCESS;
    cl_mem m = clCreateBuffer(rt->ctx, CL_MEM_READ_WRITE, bytes, NULL, &e);
    if (e != CL_SUCCESS) return nst_fail_cl(RTM(rt), e, "clCreateBuffer", __FILE__, __LINE__);
    rt->mem_now += bytes;
    if (rt->mem_now > rt->mem_peak) rt->mem_peak = rt->mem_now;
    *out = m;
    return NST_OK;
}

void nst_buffer_free(nst_runtime *rt, cl_mem buf) {
    if (!buf) return;
    size_t n = mem_size(buf);
    rt->mem_now = rt->mem_now >= n ? rt->mem_now - n : 0;
    clReleaseMemObject(buf);
}

nst_status nst_tensor_create(nst_runtime *rt, int n, int c, int h, int w, nst_tensor **out) {
    if (n <= 0 || c <= 0 || h <= 0 || w <= 0)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "tensor shape %dx%dx%dx%d", n, c, h, w);
    nst_tensor *t = calloc(1, sizeof *t);
    if (!t) return nst_fail(RTM(rt), NST_ERR_NOMEM, "tensor %dx%dx%dx%d", n, c, h, w);
    t->n = n;
    t->c = c;
    t->h = h;
    t->w = w;
    t->count = (size_t)n * c * h * w;
    nst_status st = nst_buffer_create(rt, t->count * sizeof(float), &t->buf);
    if (st != NST_OK) {
        free(t);
        return st;
    }
    *out = t;
    return NST_OK;
}

void nst_tensor_free(nst_runtime *rt, nst_tensor *t) {
    if (!t) return;
    nst_buffer_free(rt, t->buf);
    free(t);
}

nst_status nst_write_floats(nst_runtime *rt, cl_mem buf, size_t off, size_t count,
                            const float *src) {
    nst_status st = NST_OK;
    if (count == 0) return NST_OK;
    NST_CL(RTM(rt), clEnqueueWriteBuffer(rt->queue, buf, CL_TRUE, off * sizeof(float),
                                         count * sizeof(float), src, 0, NULL, NULL));
fail:
    return st;
}

nst_status nst_read_floats(nst_runtime *rt, cl_mem buf, size_t off, size_t count, float *dst) {
    nst_status st = NST_OK;
    if (count == 0) return NST_OK;
    NST_CL(RTM(rt), clEnqueueReadBuffer(rt->queue, buf, CL_TRUE, off * sizeof(float),
                                        count * sizeof(float), dst, 0, NULL, NULL));
fail:
    return st;
}

nst_status nst_tensor_upload(nst_runtime *rt, nst_tensor *t, const float *src) {
    return nst_write_floats(rt, t->buf, 0, t->count, src);
}

nst_status nst_tensor_download(nst_runtime *rt, const nst_tensor *t, float *dst) {
    return nst_read_floats(rt, t->buf, 0, t->count, dst);
}

nst_status nst_tensor_fill(nst_runtime *rt, nst_tensor *t, float value) {
    nst_status st = NST_OK;
    NST_CL(RTM(rt), clEnqueueFillBuffer(rt->queue, t->buf, &value, sizeof value, 0,
                                        t->count * sizeof(float), 0, NULL, NULL));
fail:
    return st;
}

nst_status nst_tensor_copy(nst_runtime *rt, nst_tensor *dst, const nst_tensor *src) {
    nst_status st = NST_OK;
    if (dst->count != src->count)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "copy between tensors of %zu and %zu",
                        src->count, dst->count);
    NST_CL(RTM(rt), clEnqueueCopyBuffer(rt->queue, src->buf, dst->buf, 0, 0,
                                        src->count * sizeof(float), 0, NULL, NULL));
fail:
    return st;
}

nst_status nst_scratch(nst_runtime *rt, int which, size_t bytes, cl_mem *out) {
    if (bytes > rt->scratch_bytes[which]) {
        size_t want = bytes < 16384 ? 16384 : bytes;
        nst_buffer_free(rt, rt->scratch[which]);
        rt->scratch[which] = NULL;
        rt->scratch_bytes[which] = 0;
        nst_status st = nst_buffer_create(rt, want, &rt->scratch[which]);
        if (st != NST_OK) return st;
        rt->scratch_bytes[which] = want;
    }
    *out = rt->scratch[which];
    return NST_OK;
}
