/* winograd.c: launchers of the Winograd convolution (see winograd.h); the
 * transforms are in cl/winograd.cl, the alpha^2 products are one CLBlast
 * strided-batched GEMM per band of tile rows. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "winograd.h"

#define ARG(x) sizeof(x), (const void *)&(x)

/* tiles per work item of the CPU-shaped kernels: WG4_RUN in cl/winograd.cl */
enum { WG4_RUN = 16 };

int nst_winograd_mode(const nst_runtime *rt) {
    switch (rt->settings.conv) {
    case NST_CONV_WINOGRAD4: return 4;
    case NST_CONV_WINOGRAD2: return 2;
    case NST_CONV_IM2COL: return 0;
    }
    return -1;
}

static nst_status bad_shape(nst_runtime *rt, const char *op, const char *what,
                            const nst_tensor *t) {
    return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: %s has shape [%d,%d,%d,%d]", op, what,
                    t->n, t->c, t->h, t->w);
}

static nst_status bad_m(nst_runtime *rt, const char *op, int m) {
    return nst_fail(RTM(rt), NST_ERR_INVALID_ARG,
                    "%s: Winograd tile size %d is not supported (2 or 4)", op, m);
}

static size_t launch_wg(const nst_runtime *rt) { return nst_wg_1d(rt); }

/* cl/winograd.cl is built once per tile size (WG_M): a run uses one. */
static const char *wg_program(int m) { return m == 4 ? "winograd4" : "winograd2"; }

nst_status nst_winograd_filter(nst_runtime *rt, int m, nst_tensor *u, const nst_tensor *w) {
    const char *op = "winograd filter";
    if (m != 2 && m != 4) return bad_m(rt, op, m);
    const int K = w->n, C = w->c, A = m + 2;
    if (w->h != 3 || w->w != 3) return bad_shape(rt, op, "weight", w);
    if (u->n != A * A || u->c != K || u->h != C || u->w != 1)
        return bad_shape(rt, op, "transformed weight", u);
    if (u->count > (size_t)INT_MAX)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "%s: %zu weights are too many", op,
                        u->count);
    size_t n = (size_t)K * C;
    return nst_launch(rt, wg_program(m), m == 4 ? "wg4_filter" : "wg2_filter", 1,
                      (const size_t[]){n}, (const size_t[]){launch_wg(rt)}, 4, ARG(K), ARG(C),
                      ARG(w->buf), ARG(u->buf));
}

/* Floats of V and M for one tile row. */
static size_t row_floats(int m, int C, int K, int W) {
    size_t A = (size_t)m + 2, tw = ((size_t)W + m - 1) / m;
    return A * A * ((size_t)C + K) * tw;
}

size_t nst_winograd_scratch_floats(int m, int C, int K, int H, int W, size_t cap_floats) {
    size_t row = row_floats(m, C, K, W), th = ((size_t)H + m - 1) / m;
    size_t rows = cap_floats / row;
    if (rows < 1) rows = 1;
    if (rows > th) rows = th;
    return rows * row;
}

/* out = conv(in, w) + bias (forward, flip = 0) or the input gradient
 * (flip = 1), band by band. Cin/Cout: channels of in/out. in is read as 0
 * wherever mask (NULL: none; in's shape) is not positive. */
static nst_status run(nst_runtime *rt, const char *op, int m, int flip, cl_mem out, int Cout,
                      const nst_tensor *in, const nst_tensor *mask, const nst_tensor *u,
                      const nst_tensor *b, int relu, int accumulate, cl_mem scratch,
                      size_t scratch_floats) {
    nst_status st = NST_OK;
    const int Cin = in->c, H = in->h, W = in->w, A2 = (m + 2) * (m + 2);
    const int tw = (W + m - 1) / m, th = (H + m - 1) / m;
    const int K = flip ? Cin : Cout, C = flip ? Cout : Cin; /* u is [A2][K][C] */
    if (in->count > (size_t)INT_MAX || (size_t)Cout * H * W > (size_t)INT_MAX)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE,
                        "%s: a %dx%d image with %d channels exceeds what one kernel indexes; "
                        "use a smaller image",
                        op, W, H, Cin > Cout ? Cin : Cout);
    size_t row = row_floats(m, Cin, Cout, W);
    size_t band = scratch_floats / row;
    if (band < 1)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE,
                        "%s: one row of Winograd tiles (%zu floats) does not fit the %zu-float "
                        "scratch",
                        op, row, scratch_floats);
    if (band > (size_t)th) band = (size_t)th;
    if (band * row > (size_t)INT_MAX)
        band = (size_t)INT_MAX / row; /* kernels index V and M with int */
    if (band < 1)
        return nst_fail(RTM(rt), NST_ERR_TOO_LARGE, "%s: one row of tiles is too large", op);
    const int has_bias = b != NULL;
    const int has_mask = mask != NULL;
    cl_mem mbuf = mask ? mask->buf : in->buf; /* not read without a mask */
    cl_mem bias = b ? b->buf : out; /* not read without a bias */
    const char *kin, *kout;
    if (m == 4) {
        kin = flip ? "wg4_input_flip" : "wg4_input";
        kout = flip ? "wg4_output_flip" : "wg4_output";
    } else {
        kin = flip ? "wg2_input_flip" : "wg2_input";
        kout = flip ? "wg2_output_flip" : "wg2_output";
    }
    /* F(4x4) has CPU-shaped transforms: one work item per run of WG4_RUN
     * tiles of a tile row (cl/winograd.cl) */
    const int cpu = m == 4 && nst_cpu_kernels(rt);
    if (cpu) {
        kin = flip ? "wg4_input_flip_cpu" : "wg4_input_cpu";
        kout = flip ? "wg4_output_flip_cpu" : "wg4_output_cpu";
    }
    const size_t wg = cpu ? nst_wg_1d_cpu(rt) : launch_wg(rt);
    for (int t0 = 0; t0 < th; t0 += (int)band) {
        const int nt = th - t0 < (int)band ? th - t0 : (int)band;
        const size_t P = (size_t)nt * tw, moff = (size_t)A2 * Cin * P;
        const int moff_i = (int)moff;
        /* work items per channel: one per tile, or per run of tiles */
        const size_t per = cpu ? (size_t)nt * ((tw + WG4_RUN - 1) / WG4_RUN) : P;
        NST_TRY(nst_launch(rt, wg_program(m), kin, 1, (const size_t[]){(size_t)Cin * per},
                           (const size_t[]){wg}, 10, ARG(Cin), ARG(H), ARG(W), ARG(t0), ARG(nt),
                           ARG(tw), ARG(in->buf), ARG(has_mask), ARG(mbuf), ARG(scratch)));
        /* M[a] = U[a] V[a] ([K x C] [C x P]), or U[a]^T V[a] for the gradient */
        NST_TRY(nst_gemm_strided_batched(rt, flip, 0, (size_t)Cout, P, (size_t)Cin, 1.0f, u->buf,
                                         0, (size_t)C, (size_t)K * C, scratch, 0, P,
                                         (size_t)Cin * P, 0.0f, scratch, moff, P,
                                         (size_t)Cout * P, (size_t)A2));
        NST_TRY(nst_launch(rt, wg_program(m), kout, 1, (const size_t[]){(size_t)Cout * per},
                           (const size_t[]){wg}, 13, ARG(Cout), ARG(H), ARG(W), ARG(t0), ARG(nt),
                           ARG(tw), ARG(has_bias), ARG(relu), ARG(accumulate), ARG(bias),
                           ARG(scratch), ARG(moff_i), ARG(out)));
    }
fail:
    return st;
}

/* The shapes of one convolution: `in` [1, Cin, H, W] through the
 * transformed weight u [A*A, K, C, 1] (Cin = C, or K for the gradient,
 * flip) into `out` [1, Cout, H, W]. */
static nst_status check_args(nst_runtime *rt, const char *op, int m, int flip,
                             const nst_tensor *in, const char *in_name, const nst_tensor *u,
                             const nst_tensor *out, const char *out_name) {
    if (m != 2 && m != 4) return bad_m(rt, op, m);
    const int A = m + 2, cin = flip ? u->c : u->h, cout = flip ? u->h : u->c;
    if (in->n != 1) return bad_shape(rt, op, in_name, in);
    if (u->n != A * A || cin != in->c || u->w != 1)
        return bad_shape(rt, op, "transformed weight", u);
    if (out->n != 1 || out->c != cout || out->h != in->h || out->w != in->w)
        return bad_shape(rt, op, out_name, out);
    return NST_OK;
}

nst_status nst_winograd_forward(nst_runtime *rt, int m, nst_tensor *y, const nst_tensor *x,
                                const nst_tensor *u, const nst_tensor *b, int relu,
                                cl_mem scratch, size_t scratch_floats) {
    const char *op = "winograd forward";
    nst_status st = check_args(rt, op, m, 0, x, "input", u, y, "output");
    if (st != NST_OK) return st;
    if ((int)b->count != u->c) return bad_shape(rt, op, "bias", b);
    return run(rt, op, m, 0, y->buf, u->c, x, NULL, u, b, relu != 0, 0, scratch,
               scratch_floats);
}

nst_status nst_winograd_backward_input(nst_runtime *rt, int m, nst_tensor *dx,
                                       const nst_tensor *dy, const nst_tensor *relu_out,
                                       const nst_tensor *u, int accumulate, cl_mem scratch,
                                       size_t scratch_floats) {
    const char *op = "winograd backward";
    nst_status st = check_args(rt, op, m, 1, dy, "output gradient", u, dx, "input gradient");
    if (st != NST_OK) return st;
    if (relu_out && (relu_out->n != 1 || relu_out->c != dy->c || relu_out->h != dy->h ||
                     relu_out->w != dy->w))
        return bad_shape(rt, op, "ReLU output", relu_out);
    return run(rt, op, m, 1, dx->buf, u->h, dy, relu_out, u, NULL, 0, accumulate != 0, scratch,
               scratch_floats);
}
