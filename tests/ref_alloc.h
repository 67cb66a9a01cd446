/* ref_alloc.h: allocation helpers of the test suites around the library's
 * references (src/reference.h): they fail the test when memory is short. */
#ifndef NST_TEST_REF_ALLOC_H
#define NST_TEST_REF_ALLOC_H

#include <stddef.h>

/* Zeroed doubles (free()). */
double *ref_alloc(size_t n);
/* A double copy of x (free()). */
double *ref_from_float(const float *x, size_t n);

#endif
