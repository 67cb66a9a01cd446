/* model.c: nst_model, a network's weights on the host matched against its
 * description (net.h), loaded from a file or generated. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nst_int.h"
#include "weights.h"
#include "net.h"

const char *nst_network_name(nst_network n) {
    const nst_net *net = nst_net_get(n);
    return n == NST_NETWORK_AUTO ? "auto" : net ? net->name : NULL;
}

int nst_network_parse(const char *name) {
    const nst_net *net = nst_net_find(name);
    if (net) return (int)net->id;
    return name && !strcasecmp(name, "auto") ? (int)NST_NETWORK_AUTO : -1;
}

/* NST_ERR_INVALID_ARG unless network is AUTO or a known one. */
static nst_status check_network(nst_runtime *rt, const char *fn, nst_network network) {
    if (network == NST_NETWORK_AUTO || nst_net_get(network)) return NST_OK;
    return nst_fail(RTM(rt), NST_ERR_INVALID_ARG, "%s: network %d is not one nst knows (%s)", fn,
                    (int)network, "NST_NETWORK_AUTO, NST_NETWORK_VGG19, NST_NETWORK_VGG16");
}

nst_status nst_model_load_network(nst_runtime *rt, const char *path, nst_network network,
                                  nst_model **out) {
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!path) return nst_fail_null(RTM(rt), "nst_model_load", "path");
    if (!out) return nst_fail_null(RTM(rt), "nst_model_load", "out");
    nst_status st = check_network(rt, "nst_model_load_network", network);
    if (st != NST_OK) return st;
    nst_model *m = calloc(1, sizeof *m);
    if (!m) return nst_fail(RTM(rt), NST_ERR_NOMEM, "model");
    st = nst_weights_load_network(path, network, &m->weights, RTM(rt));
    if (st != NST_OK) {
        free(m);
        return st;
    }
    *out = m;
    return NST_OK;
}

nst_status nst_model_load(nst_runtime *rt, const char *path, nst_model **out) {
    return nst_model_load_network(rt, path, NST_NETWORK_AUTO, out);
}

nst_status nst_model_generate_network(nst_runtime *rt, nst_network network, uint64_t seed,
                                      double width_mult, nst_model **out) {
    if (!rt) return NST_ERR_INVALID_ARG;
    if (!out) return nst_fail_null(RTM(rt), "nst_model_generate", "out");
    nst_status st = check_network(rt, "nst_model_generate_network", network);
    if (st != NST_OK) return st;
    const nst_net *net = nst_net_get(network == NST_NETWORK_AUTO ? NST_NETWORK_VGG19 : network);
    nst_model *m = calloc(1, sizeof *m);
    if (!m) return nst_fail(RTM(rt), NST_ERR_NOMEM, "model");
    st = nst_weights_generate_net(&m->weights, net, seed, width_mult, nst_net_convs(net),
                                  RTM(rt));
    if (st != NST_OK) {
        free(m);
        return st;
    }
    *out = m;
    return NST_OK;
}

nst_status nst_model_generate(nst_runtime *rt, uint64_t seed, double width_mult, nst_model **out) {
    return nst_model_generate_network(rt, NST_NETWORK_VGG19, seed, width_mult, out);
}

nst_network nst_model_network(const nst_model *m) {
    return m ? nst_weights_net(m->weights)->id : NST_NETWORK_AUTO;
}

void nst_model_free(nst_model *m) {
    if (!m) return;
    nst_weights_free(m->weights);
    free(m);
}
