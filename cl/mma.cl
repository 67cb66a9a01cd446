/* mma.cl: batched C = alpha op(A) B + beta C in TF32 on NVIDIA tensor cores
 * (compute capability 8.0 and later), through NVIDIA OpenCL's inline PTX:
 * cvt.rna.tf32.f32 rounds each operand to TF32 (10-bit mantissa, round to
 * nearest, ties away) as it enters local memory, and mma.sync m16n8k8
 * multiplies in TF32 and accumulates in fp32. The error of each element is
 * then at most (2^-10 + K 2^-24) sum_k |a_ik| |b_kj| (two roundings of
 * 2^-11 per product, fp32 accumulation), the bound `nst devices --check`
 * holds these kernels to. Row-major operands: A is M x K (lda), or K x M when
 * trans_a; B is K x N (ldb); C is M x N (ldc); the batch is the grid's third
 * dimension with strides sa, sb, sc. Blocks of BM x 128 outputs, 256 threads
 * (8 warps of (BM / 2) x 32), BK = 32; the next step's operands are read
 * from global memory into registers while this step multiplies.
 * vec: bit 0, A's rows (lda, a_off, sa) are multiples of 4 floats; bit 1, B's;
 * then the operands are read as float4 and stored to local memory 16 bytes
 * at a time; bit 2, C's are even: the results are stored in pairs.
 * Local layouts keep both the stores and the fragment loads free of bank
 * conflicts: A as [m][k] (rows of 36 words) when it arrives k-fastest, as
 * [k][m] (rows of BM + 8) when it arrives m-fastest; B as [k][n].
 * Built everywhere; the kernels exist only where the runtime defines
 * NST_TF32_MMA (an NVIDIA device with tensor cores). */

#ifdef NST_TF32_MMA

#define MMA_BN 128
#define MMA_BK 32

static inline uint tf32(float x) {
    uint r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

/* Four neighbours of a row, src[0..3], into dst: one float4 when the row is
 * inside (row_in) and so are all four (left: columns inside from src on),
 * else one at a time with zeros outside. src is 16-byte aligned (vec). */
static inline void mma_load4(__global const float *src, const int row_in, const int left,
                             float *dst) {
    if (row_in && left >= 4) {
        const float4 v = *(__global const float4 *)src;
        dst[0] = v.s0, dst[1] = v.s1, dst[2] = v.s2, dst[3] = v.s3;
    } else {
        for (int j = 0; j < 4; j++) dst[j] = row_in && j < left ? src[j] : 0.0f;
    }
}

/* TRANS_A 0: A [M][lda], a thread reads along k; element (m, k) of the tile
 * at As[AIDX(m, k)]. TRANS_A 1: A [K][lda], a thread reads along m. */
#define MMA_GEMM(NAME, BM, TRANS_A)                                                           \
    __kernel __attribute__((reqd_work_group_size(256, 1, 1))) void NAME(                      \
        const int M, const int N, const int K, const float alpha, __global const float *A,    \
        const long a_off, const int lda, const long sa, __global const float *B,              \
        const long b_off, const int ldb, const long sb, const float beta, __global float *C,  \
        const long c_off, const int ldc, const long sc, const int vec) {                      \
        enum { FM = BM / 32, FN = 4, AE = BM * MMA_BK / 256, BE = MMA_BK * MMA_BN / 256 };    \
        enum { AROW = TRANS_A ? BM + 8 : MMA_BK + 4 };                                        \
        __local uint As[TRANS_A ? MMA_BK * (BM + 8) : BM * (MMA_BK + 4)];                     \
        __local uint Bs[MMA_BK][MMA_BN + 8];                                                  \
        const int tid = get_local_id(0), lane = tid & 31, warp = tid >> 5;                    \
        const int g = lane >> 2, t = lane & 3;                                                \
        const int wm = (warp >> 2) * (BM / 2), wn = (warp & 3) * 32;                          \
        const int m0 = get_group_id(1) * BM, n0 = get_group_id(0) * MMA_BN;                   \
        const long z = get_group_id(2);                                                       \
        A += a_off + z * sa;                                                                  \
        B += b_off + z * sb;                                                                  \
        C += c_off + z * sc;                                                                  \
        float acc[FM][FN][4];                                                                 \
        for (int i = 0; i < FM; i++)                                                          \
            for (int j = 0; j < FN; j++)                                                      \
                for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;                              \
        float ra[AE], rb[BE]; /* the next step's operands */                                  \
        for (int k0 = 0; k0 < K; k0 += MMA_BK) {                                              \
            if (k0 == 0) {                                                                    \
                MMA_LOAD(0, BM, TRANS_A);                                                     \
            }                                                                                 \
            if (vec & 1) {                                                                    \
                for (int e = 0; e < AE / 4; e++) {                                            \
                    const int q = tid + e * 256;                                              \
                    const int at = TRANS_A ? (q / (BM / 4)) * AROW + (q % (BM / 4)) * 4       \
                                           : (q / (MMA_BK / 4)) * AROW + (q % (MMA_BK / 4)) * 4; \
                    *(__local uint4 *)&As[at] = (uint4)(tf32(ra[4 * e]), tf32(ra[4 * e + 1]), \
                                                        tf32(ra[4 * e + 2]), tf32(ra[4 * e + 3])); \
                }                                                                             \
            } else {                                                                          \
                for (int e = 0; e < AE; e++) {                                                \
                    const int q = tid + e * 256;                                              \
                    if (TRANS_A) As[(q / BM) * AROW + q % BM] = tf32(ra[e]);                  \
                    else As[(q / MMA_BK) * AROW + q % MMA_BK] = tf32(ra[e]);                  \
                }                                                                             \
            }                                                                                 \
            if (vec & 2) {                                                                    \
                for (int e = 0; e < BE / 4; e++) {                                            \
                    const int q = tid + e * 256;                                              \
                    *(__local uint4 *)&Bs[q / (MMA_BN / 4)][(q % (MMA_BN / 4)) * 4] =         \
                        (uint4)(tf32(rb[4 * e]), tf32(rb[4 * e + 1]), tf32(rb[4 * e + 2]),    \
                                tf32(rb[4 * e + 3]));                                         \
                }                                                                             \
            } else {                                                                          \
                for (int e = 0; e < BE; e++) {                                                \
                    const int q = tid + e * 256;                                              \
                    Bs[q / MMA_BN][q % MMA_BN] = tf32(rb[e]);                                 \
                }                                                                             \
            }                                                                                 \
            barrier(CLK_LOCAL_MEM_FENCE);                                                     \
            if (k0 + MMA_BK < K) {                                                            \
                MMA_LOAD(k0 + MMA_BK, BM, TRANS_A);                                           \
            }                                                                                 \
            for (int kk = 0; kk < MMA_BK; kk += 8) {                                          \
                uint a[FM][4], b[FN][2];                                                      \
                for (int i = 0; i < FM; i++) {                                                \
                    const int r = wm + i * 16 + g;                                            \
                    a[i][0] = As[TRANS_A ? (kk + t) * AROW + r : r * AROW + kk + t];          \
                    a[i][1] = As[TRANS_A ? (kk + t) * AROW + r + 8 : (r + 8) * AROW + kk + t]; \
                    a[i][2] = As[TRANS_A ? (kk + t + 4) * AROW + r : r * AROW + kk + t + 4];  \
                    a[i][3] = As[TRANS_A ? (kk + t + 4) * AROW + r + 8                        \
                                         : (r + 8) * AROW + kk + t + 4];                      \
                }                                                                             \
                for (int j = 0; j < FN; j++) {                                                \
                    const int c = wn + j * 8 + g;                                             \
                    b[j][0] = Bs[kk + t][c];                                                  \
                    b[j][1] = Bs[kk + t + 4][c];                                              \
                }                                                                             \
                for (int i = 0; i < FM; i++)                                                  \
                    for (int j = 0; j < FN; j++)                                              \
                        asm volatile("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "    \
                                     "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"  \
                                     : "+f"(acc[i][j][0]), "+f"(acc[i][j][1]),                \
                                       "+f"(acc[i][j][2]), "+f"(acc[i][j][3])                 \
                                     : "r"(a[i][0]), "r"(a[i][1]), "r"(a[i][2]),              \
                                       "r"(a[i][3]), "r"(b[j][0]), "r"(b[j][1]));             \
            }                                                                                 \
            barrier(CLK_LOCAL_MEM_FENCE);                                                     \
        }                                                                                     \
        for (int i = 0; i < FM; i++)                                                          \
            for (int j = 0; j < FN; j++)                                                      \
                for (int h = 0; h < 2; h++) { /* rows g and g + 8: columns n, n + 1 */        \
                    const int m = m0 + wm + i * 16 + g + 8 * h;                               \
                    const int n = n0 + wn + j * 8 + 2 * t;                                    \
                    if (m >= M || n >= N) continue;                                           \
                    __global float *p = C + (long)m * ldc + n;                                \
                    float2 v = (float2)(alpha * acc[i][j][2 * h], alpha * acc[i][j][2 * h + 1]); \
                    if ((vec & 4) && n + 1 < N) {                                             \
                        if (beta != 0.0f) v += beta * *(__global float2 *)p;                  \
                        *(__global float2 *)p = v;                                            \
                    } else {                                                                  \
                        p[0] = v.s0 + (beta != 0.0f ? beta * p[0] : 0.0f);                    \
                        if (n + 1 < N) p[1] = v.s1 + (beta != 0.0f ? beta * p[1] : 0.0f);     \
                    }                                                                         \
                }                                                                             \
    }

/* Reads the operands of the step at k = KB into ra, rb (zero outside): four
 * neighbours along a row at a time when vec allows, else one. */
#define MMA_LOAD(KB, BM, TRANS_A)                                                             \
    if (vec & 1) {                                                                            \
        for (int e = 0; e < AE / 4; e++) {                                                    \
            const int q = tid + e * 256;                                                      \
            /* (row, first column) of A as stored: [k][m] when TRANS_A, else [m][k] */        \
            const int rw = TRANS_A ? (KB) + q / (BM / 4) : m0 + q / (MMA_BK / 4);             \
            const int cl = TRANS_A ? m0 + (q % (BM / 4)) * 4 : (KB) + (q % (MMA_BK / 4)) * 4; \
            const int rows = TRANS_A ? K : M, cols = TRANS_A ? M : K;                         \
            mma_load4(A + (long)rw * lda + cl, rw < rows, cols - cl, ra + 4 * e);             \
        }                                                                                     \
    } else {                                                                                  \
        for (int e = 0; e < AE; e++) {                                                        \
            const int q = tid + e * 256;                                                      \
            const int m = TRANS_A ? q % BM : q / MMA_BK, k = TRANS_A ? q / BM : q % MMA_BK;   \
            const int gm = m0 + m, gk = (KB) + k;                                             \
            ra[e] = (gm < M && gk < K) ? A[TRANS_A ? (long)gk * lda + gm : (long)gm * lda + gk] \
                                       : 0.0f;                                                \
        }                                                                                     \
    }                                                                                         \
    if (vec & 2) {                                                                            \
        for (int e = 0; e < BE / 4; e++) {                                                    \
            const int q = tid + e * 256;                                                      \
            const int gk = (KB) + q / (MMA_BN / 4), gn = n0 + (q % (MMA_BN / 4)) * 4;         \
            mma_load4(B + (long)gk * ldb + gn, gk < K, N - gn, rb + 4 * e);                   \
        }                                                                                     \
    } else {                                                                                  \
        for (int e = 0; e < BE; e++) {                                                        \
            const int q = tid + e * 256;                                                      \
            const int n = q % MMA_BN, k = q / MMA_BN, gn = n0 + n, gk = (KB) + k;             \
            rb[e] = (gn < N && gk < K) ? B[(long)gk * ldb + gn] : 0.0f;                       \
        }                                                                                     \
    }

MMA_GEMM(mma_tf32_128n, 128, 0) /* M > 64 */
MMA_GEMM(mma_tf32_128t, 128, 1)
MMA_GEMM(mma_tf32_64n, 64, 0)   /* M <= 64: the first layers' 64 channels */
MMA_GEMM(mma_tf32_64t, 64, 1)

#else
/* no tensor cores here: an empty program */
#endif
