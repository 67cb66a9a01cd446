/* weights_io.c: loading a weight file whatever its format, trimming a table
 * to the layers nst uses, and finding the weight file on this machine. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nst_int.h"
#include "weights.h"

/* Sniffs the format from the first n (<= 16) bytes h and reads the stream. */
static nst_status load_stream(FILE *f, uint64_t size, const unsigned char *h, size_t n,
                              const char *path, int max_index, nst_weights **out,
                              nst_msg *msg) {
    if ((n >= 4 && !memcmp(h, "PK\003\004", 4)) || (n >= 3 && !memcmp(h, "\x80\x02\x8a", 3)))
        return nst_pth_read(f, size, path, max_index, out, msg);
    if (n >= 9 && h[8] == '{') return nst_safetensors_read(f, size, path, max_index, out, msg);
    size_t i = 0;
    while (i < n && (h[i] == ' ' || h[i] == '\n' || h[i] == '\r' || h[i] == '\t')) i++;
    if (i < n && h[i] == '<')
        return nst_fail(msg, NST_ERR_FORMAT,
                        "%s: this is an HTML/XML page, not weights (a failed download?); fetch "
                        "them again with `%s`", path, NST_WEIGHTS_FETCH_HINT);
    return nst_fail(msg, NST_ERR_FORMAT,
                    "%s: not a weight file nst reads (safetensors, or a PyTorch .pth "
                    "checkpoint)", path);
}

nst_status nst_weights_load_trimmed(const char *path, int max_index, nst_weights **out,
                                    nst_msg *msg) {
    unsigned char h[16] = {0};
    struct stat sb;
    FILE *f = fopen(path, "rb");
    if (!f || fstat(fileno(f), &sb)) {
        nst_status st = nst_fail(msg, NST_ERR_IO, "cannot read weights %s: %s", path,
                                 NST_STRERROR(errno));
        if (f) fclose(f);
        return st;
    }
    size_t n = fread(h, 1, sizeof h, f);
    nst_status st = load_stream(f, (uint64_t)sb.st_size, h, n, path, max_index, out, msg);
    fclose(f);
    if (st == NST_OK) snprintf((*out)->source, sizeof (*out)->source, "%s", path);
    return st;
}

nst_status nst_weights_load_memory(const void *buf, size_t len, const char *name, int max_index,
                                   nst_weights **out, nst_msg *msg) {
    unsigned char h[16] = {0};
    size_t n = len < sizeof h ? len : sizeof h;
    if (n) memcpy(h, buf, n);
    /* fmemopen may refuse an empty buffer; with n == 0 the stream is not used. */
    if (!len) return load_stream(NULL, 0, h, 0, name, max_index, out, msg);
    FILE *f = fmemopen((void *)buf, len, "rb");
    if (!f)
        return nst_fail(msg, NST_ERR_NOMEM, "%s: cannot open a stream on memory: %s", name,
                        NST_STRERROR(errno));
    nst_status st = load_stream(f, len, h, n, name, max_index, out, msg);
    fclose(f);
    if (st == NST_OK) snprintf((*out)->source, sizeof (*out)->source, "%s", name);
    return st;
}

nst_status nst_weights_load(const char *path, nst_weights **out, nst_msg *msg) {
    return nst_weights_load_trimmed(path, -1, out, msg);
}

nst_status nst_weights_load_network(const char *path, nst_network network, nst_weights **out,
                                    nst_msg *msg) {
    nst_weights *w = NULL;
    const nst_net *net = nst_net_get(network);
    if (network != NST_NETWORK_AUTO && !net)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "network %d is not one nst knows", (int)network);
    nst_status st = nst_weights_load(path, &w, msg);
    if (st == NST_OK && !net) st = nst_net_detect(w, &net, msg);
    if (st == NST_OK) st = nst_net_check(net, w, msg);
    if (st != NST_OK) {
        nst_weights_free(w);
        return st;
    }
    w->net = net;
    *out = w;
    return NST_OK;
}

void nst_weights_trim(nst_weights *w, int max_index) {
    int k = 0;
    for (int i = 0; i < w->count; i++) {
        if (nst_weights_keep(w->t[i].name, max_index))
            w->t[k++] = w->t[i];
        else
            free(w->t[i].data);
    }
    w->count = k;
}

/* ---- lookup ------------------------------------------------------------ */

static int is_file(const char *p) {
    struct stat sb;
    errno = 0;
    return !stat(p, &sb) && S_ISREG(sb.st_mode);
}

static nst_status must_exist(const char *p, const char *from, char *out, size_t outlen,
                             nst_msg *msg) {
    if (!is_file(p))
        return nst_fail(msg, NST_ERR_IO, "weights %s (from %s) cannot be read: %s", p, from,
                        errno ? NST_STRERROR(errno) : "not a regular file");
    if (strlen(p) >= outlen)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "weights path %s is too long", p);
    strcpy(out, p);
    return NST_OK;
}

nst_status nst_weights_locate(const nst_settings *s, const char *explicit_path,
                              nst_network network, char *out, size_t outlen, nst_msg *msg) {
    const char *names[8];
    int nn = 0;
    if (explicit_path && *explicit_path)
        return must_exist(explicit_path, "--weights", out, outlen, msg);
    if (s && *s->weights) return must_exist(s->weights, "$NST_WEIGHTS", out, outlen, msg);
    for (int k = 0; nst_net_at(k) && nn + 2 <= 8; k++) {
        const nst_net *n = nst_net_at(k);
        if (network != NST_NETWORK_AUTO && n->id != network) continue;
        names[nn++] = n->trimmed_file;
        names[nn++] = n->torchvision_file;
    }
    const char *all = s && *s->weights_dirs ? s->weights_dirs
                                             : NST_SOURCE_DIR "/weights:" NST_PREFIX "/share/nst";
    char dir[NST_PATH_MAX];
    /* each network's pair of names in every directory, then the next network */
    for (int k = 0; k < nn; k += 2) {
        const char *dirs = all;
        while (nst_dirs_next(&dirs, dir, sizeof dir))
            for (int j = k; j < k + 2; j++) {
                char p[NST_PATH_MAX + 64];
                if (snprintf(p, sizeof p, "%s/%s", dir, names[j]) >= (int)sizeof p) continue;
                if (is_file(p)) {
                    if (strlen(p) >= outlen)
                        return nst_fail(msg, NST_ERR_INVALID_ARG, "weights path %s is too long",
                                        p);
                    strcpy(out, p);
                    return NST_OK;
                }
            }
    }
    char list[768] = "", files[256] = "";
    size_t used = 0;
    const char *dirs = all;
    for (int d = 0; nst_dirs_next(&dirs, dir, sizeof dir); d++) {
        int w = snprintf(list + used, sizeof list - used, "%s%s", d ? ", " : "", dir);
        if (w > 0) used = used + (size_t)w < sizeof list ? used + (size_t)w : sizeof list - 1;
    }
    for (int j = 0; j < nn; j++)
        snprintf(files + strlen(files), sizeof files - strlen(files), "%s%s",
                 j == 0 ? "" : j + 1 == nn ? " or " : ", ", names[j]);
    char titles[64] = "", hint[64];
    for (int k = 0; nst_net_at(k); k++)
        if (network == NST_NETWORK_AUTO || nst_net_at(k)->id == network)
            snprintf(titles + strlen(titles), sizeof titles - strlen(titles), "%s%s",
                     titles[0] ? " or " : "", nst_net_at(k)->title);
    if (network == NST_NETWORK_AUTO || network == NST_NETWORK_VGG19)
        snprintf(hint, sizeof hint, "%s", NST_WEIGHTS_FETCH_HINT);
    else
        snprintf(hint, sizeof hint, "NST_NETWORK=%s %s", nst_network_name(network),
                 NST_WEIGHTS_FETCH_HINT);
    return nst_fail(msg, NST_ERR_IO,
                    "no %s weights found: looked for --weights, $NST_WEIGHTS, and %s in %s. "
                    "Fetch them with `%s` in the source tree (or pass --weights FILE)",
                    titles, files, used ? list : "(no directories)", hint);
}
