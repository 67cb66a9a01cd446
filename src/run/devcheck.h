/* devcheck.h: the self-check behind `nst devices --check`: every kernel, the
 * BLAS routines nst uses (through CLBlast or the host BLAS, whichever the
 * runtime runs them on: nst_runtime_gemm), both optimisers and a short whole-network
 * forward and backward run on the runtime's device on fixed-seed random data
 * and are compared with the plain-C double references (src/reference.h),
 * under the same tolerances as the test suites. One row per operation.
 *
 * Times are wall-clock milliseconds of the device work of a row (enqueue to
 * finish, uploads and the reference excluded); the first use of a CLBlast
 * routine includes its kernel compilation. */
#ifndef NST_DEVCHECK_H
#define NST_DEVCHECK_H

#include <stddef.h>
#include <stdio.h>

#include "nst.h"

/* Rows nst_device_check may fill; pass at least this many. */
#define NST_CHECK_MAX_ROWS 40

typedef struct nst_check_row {
    char op[48];    /* the operation and its sizes */
    double max_abs; /* max |device - reference|; NaN when not measured */
    double max_rel; /* max_abs / max |reference| (over the whole tensor) */
    double atol;    /* element-wise rows: |d| <= atol + rtol * |reference| */
    double rtol;    /* whole-tensor rows: max_rel <= rtol */
    int whole;      /* 1: the whole-tensor criterion, 0: element-wise */
    int measured;   /* 0 for rows without numbers (building the programs) */
    int pass;
    double ms;
    char note[96];  /* why a row failed without numbers (an error message) */
} nst_check_row;

/* Runs the check on rt's device and fills rows[0..*nrows). tiny != 0 keeps
 * every case a few kilobytes (a few seconds on a slow software device such
 * as rusticl on llvmpipe); 0 uses larger, still awkward sizes.
 * A case that fails with an error (a kernel that does not build, an OpenCL
 * error) fails its rows with the message in their note and the check goes on.
 * Returns NST_OK when every row passes; otherwise the first error's status,
 * or NST_ERR_NUMERIC when only tolerances were missed, with a summary in rt's
 * message. NST_ERR_INVALID_ARG when max_rows < NST_CHECK_MAX_ROWS. */
nst_status nst_device_check(nst_runtime *rt, int tiny, nst_check_row *rows, int max_rows,
                            int *nrows);

/* Compares got[0..n) with want under row->atol/rtol/whole: fills max_abs,
 * max_rel, measured and pass (a NaN anywhere fails). Returns row->pass. */
int nst_check_compare(nst_check_row *row, const float *got, const double *want, size_t n);

/* Prints a heading naming device d, one line per row (operation, max abs and
 * rel error, tolerance, pass/FAIL, ms), the notes of failed rows and a
 * summary line "N of M passed". */
void nst_device_check_print(FILE *f, const nst_device_info *d, const nst_check_row *rows, int n);

#endif
