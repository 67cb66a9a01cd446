/* mma.c: the batched products in TF32 on tensor cores (cl/mma.cl), for the
 * runtimes whose precision is tf32. The kernels take any shape and offset;
 * blocks are 64 or 128 rows by 128 columns, the smaller for M <= 64. */
#include <limits.h>

#include "nst_int.h"

#define ARG(x) sizeof(x), (const void *)&(x)

nst_status nst_mma_batched(nst_runtime *rt, int trans_a, size_t m, size_t n, size_t k,
                           float alpha, cl_mem a, size_t a_off, size_t lda, size_t a_stride,
                           cl_mem b, size_t b_off, size_t ldb, size_t b_stride, float beta,
                           cl_mem c, size_t c_off, size_t ldc, size_t c_stride, size_t batch) {
    if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
        ldc > INT_MAX)
        return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                        "TF32 product %zux%zux%zu: a dimension is past %d", m, n, k, INT_MAX);
    const int bm = m <= 64 ? 64 : 128;
    const int M = (int)m, N = (int)n, K = (int)k, ta = trans_a != 0;
    const int la = (int)lda, lb = (int)ldb, lc = (int)ldc;
    const cl_long ao = (cl_long)a_off, bo = (cl_long)b_off, co = (cl_long)c_off;
    const cl_long sa = (cl_long)a_stride, sb = (cl_long)b_stride, sc = (cl_long)c_stride;
    const size_t global[3] = {(n + 127) / 128 * 256, (m + (size_t)bm - 1) / (size_t)bm, batch};
    const size_t local[3] = {256, 1, 1};
    /* rows that are multiples of 4 floats (A, B) or 2 (C) take vector loads and stores */
    const int vec = ((lda | a_off | a_stride) % 4 == 0) | ((ldb | b_off | b_stride) % 4 == 0) << 1 |
                    ((ldc | c_off | c_stride) % 2 == 0) << 2;
    static const char *const names[2][2] = {{"mma_tf32_64n", "mma_tf32_64t"},
                                            {"mma_tf32_128n", "mma_tf32_128t"}};
    return nst_launch(rt, "mma", names[bm == 128][ta], 3, global, local, 18, ARG(M), ARG(N),
                      ARG(K), ARG(alpha), ARG(a), ARG(ao), ARG(la),
                      ARG(sa), ARG(b), ARG(bo), ARG(lb), ARG(sb), ARG(beta), ARG(c), ARG(co),
                      ARG(lc), ARG(sc), ARG(vec));
}
