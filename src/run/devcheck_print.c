/* devcheck_print.c: the table of `nst devices --check` (see devcheck.h). */
#include <math.h>
#include <stdio.h>

#include "devcheck.h"

void nst_device_check_print(FILE *f, const nst_device_info *d, const nst_check_row *rows,
                            int n) {
    int passed = 0;
    fprintf(f, "device %d: %s\n  platform %s; %s; driver %s\n", d->index, d->name, d->platform,
            d->version, d->driver);
    fprintf(f, "  %-46s %11s %11s  %-18s %-6s %9s\n", "operation", "max abs err", "max rel err",
            "tolerance", "result", "ms");
    for (int i = 0; i < n; i++) {
        const nst_check_row *r = &rows[i];
        char ea[16] = "-", er[16] = "-", tol[32] = "-";
        if (r->measured && !isnan(r->max_abs)) {
            snprintf(ea, sizeof ea, "%.2e", r->max_abs);
            snprintf(er, sizeof er, "%.2e", r->max_rel);
        }
        if (r->measured) {
            if (r->whole)
                snprintf(tol, sizeof tol, "rel <= %.0e", r->rtol);
            else if (r->atol == 0 && r->rtol == 0)
                snprintf(tol, sizeof tol, "exact");
            else if (r->atol == 0)
                snprintf(tol, sizeof tol, "%.0e|ref|", r->rtol);
            else
                snprintf(tol, sizeof tol, "%.0e+%.0e|ref|", r->atol, r->rtol);
        }
        fprintf(f, "  %-46s %11s %11s  %-18s %-6s %9.2f\n", r->op, ea, er, tol,
                r->pass ? "pass" : "FAIL", r->ms);
        passed += r->pass;
    }
    for (int i = 0; i < n; i++)
        if (!rows[i].pass && rows[i].note[0])
            fprintf(f, "  %s: %s\n", rows[i].op, rows[i].note);
    fprintf(f, "  %d of %d passed%s\n", passed, n, passed == n ? "" : ": DEVICE FAILED THE CHECK");
}
