/* ref_alloc.c: test-failing allocation helpers (see ref_alloc.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "ref_alloc.h"
#include "reference.h"

double *ref_alloc(size_t n) {
    double *p = nst_ref_alloc(n);
    assert_non_null(p);
    return p;
}

double *ref_from_float(const float *x, size_t n) {
    double *p = nst_ref_from_float(x, n);
    assert_non_null(p);
    return p;
}
