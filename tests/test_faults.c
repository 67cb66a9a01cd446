/* test_faults.c: every device allocation of a whole transfer made to fail in
 * turn. Each run must return an error (or succeed once the failure point is
 * past the last allocation), never crash, and leave no device buffer behind;
 * under `make check-asan` the same runs prove the host side frees everything
 * on every error path too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "check.h"

static nst_image *pattern(int w, int h, int kind) {
    nst_image *img = NULL;
    assert_int_equal(nst_image_create(w, h, &img, NULL), NST_OK);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img->data[((size_t)c * h + y) * w + x] =
                    kind ? (float)(((x + y + c) % 5) / 4.0) : (float)(x + c * y) / (w + 3 * h);
    return img;
}

/* Runs one small transfer with allocation `k` failing; returns its status. */
static nst_status run_failing_at(nst_runtime *rt, nst_model *model, const nst_params *p, int k,
                                 const nst_image *content, const nst_image *const *styles,
                                 int nstyles) {
    nst_image *out = NULL;
    rt->fail_alloc_at = k;
    rt->nallocs = 0;
    nst_status st = nst_transfer_run(rt, model, p, content, styles, nstyles, NULL, NULL, NULL,
                                     &out);
    rt->fail_alloc_at = 0;
    if (st == NST_OK) {
        assert_non_null(out);
    } else {
        assert_int_equal(st, NST_ERR_NOMEM);
        assert_non_null(strstr(nst_last_error(rt), "injected"));
        assert_null(out);
    }
    nst_image_free(out);
    assert_int_equal(nst_mem_in_use(rt), 0); /* no device buffer left behind */
    return st;
}

static void fail_every_allocation(const char *what, nst_params *p, int nstyles, int masks) {
    nst_runtime *rt = check_runtime();
    nst_model *model = check_model(rt);
    nst_image *content = pattern(40, 32, 0), *style = pattern(36, 36, 1), *mask = pattern(40, 32, 1);
    const nst_image *styles[2] = {style, content};
    const nst_image *mlist[2] = {mask, mask};
    if (masks) p->masks = mlist;
    size_t base = nst_mem_in_use(rt);
    assert_int_equal(base, 0);
    int k = 1, failures = 0;
    for (; k < 2000; k++) {
        if (run_failing_at(rt, model, p, k, content, styles, nstyles) == NST_OK) break;
        failures++;
    }
    fprintf(stderr, "%s: %d allocations each failed in turn, then a clean run\n", what, failures);
    assert_true(failures > 10);
    assert_true(k < 2000);
    nst_image_free(content);
    nst_image_free(style);
    nst_image_free(mask);
    nst_model_free(model);
    nst_runtime_close(rt);
}

static void test_lbfgs_run(void **state) {
    nst_params p;
    nst_params_default(&p);
    p.size = 40;
    p.iterations = 2;
    fail_every_allocation("L-BFGS, one style", &p, 1, 0);
}

static void test_adam_scales_regions_average(void **state) {
    nst_params p;
    nst_params_default(&p);
    p.size = 48;
    p.iterations = 2;
    p.scale_iterations = 1;
    p.scales = 2;
    p.optimizer = NST_OPTIMIZER_ADAM;
    p.average_decay = 0.9;
    p.luminance_only = 1;
    fail_every_allocation("Adam, 2 scales, 2 regions, averaging, luminance", &p, 2, 1);
}

static void test_tiled_run(void **state) {
    nst_params p;
    nst_params_default(&p);
    p.size = 96;
    p.iterations = 1;
    p.tile = 48;
    p.style_layers = "relu1_1,relu2_1";
    p.content_layers = "relu2_2";
    fail_every_allocation("tiled", &p, 1, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lbfgs_run),
        cmocka_unit_test(test_adam_scales_regions_average),
        cmocka_unit_test(test_tiled_run),
    };
    return cmocka_run_group_tests_name("faults", tests, NULL, NULL);
}
