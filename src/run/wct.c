/* wct.c: universal style transfer (see nst.h). */
#include <stdlib.h>
#include <string.h>

#include "nst_int.h"

void nst_wct_params_default(nst_wct_params *p) {
    if (!p) return;
    memset(p, 0, sizeof *p);
    p->size = 512;
    p->style_scale = 1.0;
    p->alpha = 0.6;
    p->levels = 0;
    p->eps = 1.0;
}

nst_status nst_wct_locate(const nst_settings *s, const char *dir, char *out, size_t outlen,
                          nst_msg *msg) {
    return nst_fail(msg, NST_ERR_IO, "WCT models are not supported in this build yet");
}

nst_status nst_wct_models_load(nst_runtime *rt, const char *dir, nst_wct_models **out) {
    if (out) *out = NULL;
    return rt ? nst_fail(RTM(rt), NST_ERR_IO, "WCT models are not supported in this build yet")
              : NST_ERR_INVALID_ARG;
}

unsigned nst_wct_models_levels(const nst_wct_models *m) { return 0; }

void nst_wct_models_free(nst_wct_models *m) {}

nst_status nst_wct_run(nst_runtime *rt, const nst_wct_models *m, const nst_wct_params *p,
                       const nst_image *content, const nst_image *const *styles, int nstyles,
                       const double *blend, const nst_image *const *masks, nst_image **out) {
    if (out) *out = NULL;
    return rt ? nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "WCT is not supported in this build yet")
              : NST_ERR_INVALID_ARG;
}
