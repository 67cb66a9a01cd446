/* studio.c: `nst studio`, the HTTP side: options, libmicrohttpd, the checks
 * every request passes (token, Host, Origin), the endpoints and the page.
 *
 * libmicrohttpd parses HTTP (no parser here); each connection has its own
 * thread (MHD_USE_THREAD_PER_CONNECTION), so an event stream may block
 * waiting for the next change while the others go on.
 *
 * Preview frames reach the page by server-sent events plus a frame
 * endpoint: /events pushes a small JSON state (iteration, losses since the
 * last event, the number of the newest frame) whenever the run moves, and
 * the page fetches /frame.png when it has shown the previous one. A slow
 * page therefore skips frames instead of queueing them, the stream stays a
 * few hundred bytes per event, and the server keeps one frame (the newest)
 * however many pages watch. Events rather than polling: the page hears of a
 * frame the moment it exists, and 50 idle watchers cost 50 sleeping threads,
 * not 50 requests per interval.
 *
 * Nothing the page sends becomes a path: images arrive as request bodies,
 * are decoded in memory with the readers' pixel limit, and are kept in
 * memory; frames and results are encoded in memory. The server writes no
 * file (the kernel cache of nst's settings aside) and serves only the page
 * and the session's own images. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "image.h"
#include "studio.h"
#include "studio_html.h"
#include "weights.h"

typedef struct stream stream;

typedef struct server {
    studio *s;
    stream *streams; /* the open event streams, under s->mu */
    char token[33];
    char hosts[3][300]; /* the Host values accepted: 127.0.0.1:P, localhost:P, --host:P */
    int nhosts;
    int port;
} server;

/* One request's state across libmicrohttpd's calls: its body so far. */
typedef struct request {
    char *body;
    size_t len, cap;
    int too_big;
} request;

/* ---- responses ------------------------------------------------------------ */

static enum MHD_Result send_bytes(struct MHD_Connection *c, unsigned code, const char *type,
                                  const void *data, size_t len, int page) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    if (page) /* every byte from nst: nothing from the network */
        MHD_add_response_header(r, "Content-Security-Policy",
                                "default-src 'none'; script-src 'unsafe-inline'; style-src "
                                "'unsafe-inline'; img-src 'self' blob: data:; connect-src "
                                "'self'; form-action 'none'; frame-ancestors 'none'");
    enum MHD_Result ret = MHD_queue_response(c, code, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, unsigned code, json_t *j) {
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text) return MHD_NO;
    enum MHD_Result r = send_bytes(c, code, "application/json", text, strlen(text), 0);
    free(text);
    return r;
}

static enum MHD_Result send_error(struct MHD_Connection *c, unsigned code, const char *msg) {
    return send_json(c, code, json_pack("{s:s}", "error", msg));
}

static enum MHD_Result send_ok(struct MHD_Connection *c) {
    return send_json(c, 200, json_pack("{s:b}", "ok", 1));
}

/* ---- the checks ------------------------------------------------------------ */

static int same_secret(const char *a, const char *b) {
    size_t n = strlen(b);
    if (!a || strlen(a) != n) return 0;
    unsigned d = 0;
    for (size_t i = 0; i < n; i++) d |= (unsigned char)a[i] ^ (unsigned char)b[i];
    return d == 0;
}

static int host_ok(const server *sv, const char *host) {
    for (int i = 0; host && i < sv->nhosts; i++)
        if (!strcmp(host, sv->hosts[i])) return 1;
    return 0;
}

/* NULL when the request may go on, else why not (403). */
static const char *refusal(const server *sv, struct MHD_Connection *c) {
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (!host_ok(sv, host)) return "wrong Host header: open the address nst studio printed";
    const char *origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
    if (origin) {
        if (strncmp(origin, "http://", 7) || !host_ok(sv, origin + 7))
            return "request from another site refused";
    }
    const char *tok = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
    if (!tok) tok = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Nst-Token");
    if (!same_secret(tok, sv->token))
        return "missing or wrong token: open the address nst studio printed";
    return NULL;
}

/* The page's id (X-Nst-Client, or ?client= for the event stream): letters
 * and digits, 1..63 of them; "" when absent or malformed. */
static void client_id(struct MHD_Connection *c, char *out) {
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Nst-Client");
    if (!v) v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "client");
    out[0] = 0;
    if (!v || !*v || strlen(v) > 63) return;
    for (const char *p = v; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            return;
    strcpy(out, v);
}

static int active(const studio *s) {
    return s->state == STUDIO_RUNNING || s->state == STUDIO_PAUSED || s->start != START_NONE;
}

/* Under the lock: 1 when `client` may steer (nobody does, or it does). */
static int may_steer(const studio *s, const char *client) {
    return !s->controller[0] || !active(s) || !strcmp(s->controller, client);
}

static const char *busy_text =
    "busy: another page is steering the run on this device; this page watches";

/* ---- the state, as events and /state ------------------------------------- */

static const char *state_name(int st) {
    static const char *n[] = {"idle", "running", "paused", "done", "failed"};
    return st >= 0 && st <= 4 ? n[st] : "idle";
}

/* Under the lock: the state for `client`, with the loss points from *seen
 * on (at most 1000; *seen advanced). */
static json_t *state_json(const studio *s, const char *client, long *seen) {
    json_t *pts = json_array();
    long from = *seen, reset = 0;
    if (from > s->npoints || from < s->npoints - STUDIO_POINTS) {
        from = s->npoints - STUDIO_POINTS > 0 ? s->npoints - STUDIO_POINTS : 0;
        reset = 1;
    }
    long to = s->npoints - from > 1000 ? from + 1000 : s->npoints;
    for (long i = from; i < to; i++) {
        const studio_point *p = &s->points[i % STUDIO_POINTS];
        json_array_append_new(pts, json_pack("[i,f,f,f,f]", p->iteration, (double)p->loss,
                                             (double)p->content, (double)p->style,
                                             (double)p->tv));
    }
    *seen = to;
    json_t *names = json_array();
    for (int k = 0; k < s->nstyles; k++) json_array_append_new(names, json_string(s->style_names[k]));
    json_t *blend = json_array();
    for (int k = 0; k < s->nstyles; k++) json_array_append_new(blend, json_real(s->job.blend[k]));
    json_t *j = json_pack(
        "{s:s,s:i,s:i,s:i,s:i,s:i,s:I,s:f,s:s,s:I,s:b,s:b,s:o,s:b,s:o,s:s?,s:b,s:b,"
        "s:b,s:{s:f,s:f,s:f,s:f,s:i,s:i,s:b,s:b,s:o}}",
        "state", state_name(s->state), "run", s->run_id, "iteration", s->iteration,
        "iterations", s->iterations, "width", s->width, "height", s->height, "frame",
        (json_int_t)s->frame_id, "fps", s->fps, "message", s->message, "message_id",
        (json_int_t)s->message_id, "steer", may_steer(s, client), "reset", (int)reset, "points",
        pts, "content", s->content != NULL, "styles", names, "content_name",
        s->content ? s->content_name : NULL, "masks", s->masks[0] != NULL, "refined", s->refined,
        "wct", s->wct_used,
        "job", "content_weight", s->job.content_weight, "style_weight", s->job.style_weight,
        "tv_weight", s->job.tv_weight, "style_scale", s->job.style_scale, "size", s->job.size,
        "iterations", s->job.iterations, "preserve_colors", s->job.preserve_colors,
        "luminance_only", s->job.luminance_only, "blend", blend);
    return j;
}

/* ---- the event stream -------------------------------------------------------- */

struct stream {
    server *sv;
    stream *next;
    char client[64];
    unsigned long version; /* the state last sent */
    long seen;             /* loss points sent */
    char *out;             /* the event being sent */
    size_t len, off;
    int started;
};

/* Under the lock: the open event streams of `client`. */
static int streams_of(const server *sv, const char *client) {
    int n = 0;
    for (const stream *st = sv->streams; st; st = st->next) n += !strcmp(st->client, client);
    return n;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
    stream *st = cls;
    studio *s = st->sv->s;
    (void)pos;
    if (st->off < st->len) {
        size_t n = st->len - st->off < max ? st->len - st->off : max;
        memcpy(buf, st->out + st->off, n);
        st->off += n;
        return (ssize_t)n;
    }
    free(st->out);
    st->out = NULL;
    st->len = st->off = 0;
    pthread_mutex_lock(&s->mu);
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += 5;
    while (!s->shutdown && st->started && s->version == st->version)
        if (pthread_cond_timedwait(&s->changed, &s->mu, &until) == ETIMEDOUT) break;
    if (s->shutdown) {
        pthread_mutex_unlock(&s->mu);
        return MHD_CONTENT_READER_END_OF_STREAM;
    }
    if (st->started && s->version == st->version) { /* a comment keeps it alive */
        pthread_mutex_unlock(&s->mu);
        static const char ping[] = ": ping\n\n";
        memcpy(buf, ping, sizeof ping - 1 < max ? sizeof ping - 1 : max);
        return (ssize_t)(sizeof ping - 1 < max ? sizeof ping - 1 : max);
    }
    st->started = 1;
    st->version = s->version;
    json_t *j = state_json(s, st->client, &st->seen);
    if (st->seen < s->npoints) st->version--; /* more points to send at once */
    pthread_mutex_unlock(&s->mu);
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!text) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = strlen(text);
    st->out = malloc(n + 16);
    if (!st->out) {
        free(text);
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    st->len = (size_t)snprintf(st->out, n + 16, "data: %s\n\n", text);
    free(text);
    return stream_read(cls, pos, buf, max);
}

static void stream_free(void *cls) {
    stream *st = cls;
    studio *s = st->sv->s;
    pthread_mutex_lock(&s->mu);
    for (stream **pp = &st->sv->streams; *pp; pp = &(*pp)->next)
        if (*pp == st) {
            *pp = st->next;
            break;
        }
    if (st->client[0] && !strcmp(st->client, s->controller) && !streams_of(st->sv, st->client)) {
        /* the steering page left: the run goes on, and another page may
         * take it over */
        s->controller[0] = 0;
        s->paused = 0;
        pthread_cond_broadcast(&s->wake);
        s->version++;
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->mu);
    free(st->out);
    free(st);
}

static enum MHD_Result open_stream(server *sv, struct MHD_Connection *c, const char *client) {
    stream *st = calloc(1, sizeof *st);
    if (!st) return send_error(c, 503, "out of memory");
    st->sv = sv;
    snprintf(st->client, sizeof st->client, "%s", client);
    pthread_mutex_lock(&sv->s->mu);
    st->next = sv->streams;
    sv->streams = st;
    pthread_mutex_unlock(&sv->s->mu);
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16384, stream_read, st, stream_free);
    if (!r) {
        stream_free(st);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "text/event-stream");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- commands ------------------------------------------------------------- */

/* Reads the fields of a job present in j into *job; NULL when they are
 * valid, else why not. */
static const char *read_job(json_t *j, int nstyles, studio_job *job) {
    static char why[200];
    const struct {
        const char *key;
        double *v, lo, hi;
    } reals[] = {{"content_weight", &job->content_weight, 0, 1e9},
                 {"style_weight", &job->style_weight, 0, 1e9},
                 {"tv_weight", &job->tv_weight, 0, 1e9},
                 {"style_scale", &job->style_scale, 0.0625, 4}};
    if (!json_is_object(j)) return "the settings must be a JSON object";
    for (size_t i = 0; i < sizeof reals / sizeof reals[0]; i++) {
        json_t *v = json_object_get(j, reals[i].key);
        if (!v) continue;
        double d = json_number_value(v);
        if (!json_is_number(v) || !isfinite(d) || d < reals[i].lo || d > reals[i].hi) {
            snprintf(why, sizeof why, "%s must be a number in [%g, %g]", reals[i].key,
                     reals[i].lo, reals[i].hi);
            return why;
        }
        *reals[i].v = d;
    }
    const struct {
        const char *key;
        int *v, lo, hi;
    } ints[] = {{"size", &job->size, 32, STUDIO_MAX_SIZE},
                {"iterations", &job->iterations, 1, 100000},
                {"preserve_colors", &job->preserve_colors, 0, 1},
                {"luminance_only", &job->luminance_only, 0, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_object_get(j, ints[i].key);
        if (!v) continue;
        double d = json_is_boolean(v) ? json_is_true(v) : json_number_value(v);
        if (!(json_is_number(v) || json_is_boolean(v)) || d != floor(d) || d < ints[i].lo ||
            d > ints[i].hi) {
            snprintf(why, sizeof why, "%s must be a whole number in %d..%d", ints[i].key,
                     ints[i].lo, ints[i].hi);
            return why;
        }
        *ints[i].v = (int)d;
    }
    json_t *b = json_object_get(j, "blend");
    if (b) {
        double sum = 0;
        if (!json_is_array(b) || (int)json_array_size(b) != nstyles)
            return "blend must have one weight per painting";
        for (int k = 0; k < nstyles; k++) {
            double d = json_number_value(json_array_get(b, (size_t)k));
            if (!json_is_number(json_array_get(b, (size_t)k)) || !(d >= 0) || d > 1e6)
                return "blend weights must be numbers >= 0";
            sum += d;
        }
        if (!(sum > 0)) return "blend weights must not all be 0";
        for (int k = 0; k < nstyles; k++)
            job->blend[k] = json_number_value(json_array_get(b, (size_t)k)) / sum;
    }
    return NULL;
}

/* A name for the command line: the file name's last part, safe characters
 * only (it never becomes a path here). */
static void clean_name(const char *in, const char *fallback, char *out, size_t cap) {
    const char *base = in ? strrchr(in, '/') : NULL;
    base = base ? base + 1 : in;
    size_t n = 0;
    for (const char *p = base; p && *p && n + 1 < cap && n < 100; p++)
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            strchr("._-+", *p))
            out[n++] = *p;
    out[n] = 0;
    if (!n || out[0] == '.') snprintf(out, cap, "%s", fallback);
}

/* Under the lock: masks for every style once one is given (black: none). */
static int fill_masks(studio *s, const nst_image *like) {
    for (int k = 0; k < s->nstyles; k++)
        if (!s->masks[k] && nst_image_create(like->w, like->h, &s->masks[k], NULL) != NST_OK)
            return -1;
    return 0;
}

static enum MHD_Result do_upload(server *sv, struct MHD_Connection *c, request *rq,
                                 const char *client) {
    studio *s = sv->s;
    const char *kind = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "kind");
    const char *name = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "name");
    const char *ks = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "k");
    int mask = kind && !strcmp(kind, "mask");
    if (!kind || (strcmp(kind, "content") && strcmp(kind, "style") && !mask))
        return send_error(c, 400, "kind must be content, style or mask");
    if (rq->too_big) {
        char m[200];
        snprintf(m, sizeof m, "the file is larger than %u MiB", STUDIO_MAX_UPLOAD >> 20);
        return send_error(c, 413, m);
    }
    nst_image *img = NULL;
    nst_msg msg = {{0}};
    if (nst_image_read_memory(rq->body, rq->len, STUDIO_MAX_PIXELS, &img, &msg) != NST_OK) {
        char m[1200];
        snprintf(m, sizeof m, "not a usable image: %s", msg.text);
        return send_error(c, 400, m);
    }
    pthread_mutex_lock(&s->mu);
    const char *refuse = NULL;
    unsigned code = 200;
    int index = 0;
    if (!may_steer(s, client)) {
        refuse = busy_text;
        code = 409;
    } else if (!strcmp(kind, "content")) {
        nst_image_free(s->content);
        s->content = img;
        img = NULL;
        clean_name(name, "photo.png", s->content_name, sizeof s->content_name);
        nst_image_free(s->last); /* a new photo: the next run starts from it */
        s->last = NULL;
        for (int k = 0; k < NST_MAX_STYLES; k++) { /* masks were painted on the old one */
            nst_image_free(s->masks[k]);
            s->masks[k] = NULL;
        }
    } else if (!strcmp(kind, "style")) {
        if (s->nstyles >= NST_MAX_STYLES) {
            refuse = "at most 16 paintings";
            code = 400;
        } else {
            index = s->nstyles;
            s->styles[index] = img;
            img = NULL;
            char fb[32];
            snprintf(fb, sizeof fb, "painting-%d.png", index + 1);
            clean_name(name, fb, s->style_names[index], sizeof s->style_names[index]);
            s->nstyles++;
            for (int k = 0; k < s->nstyles; k++) s->job.blend[k] = 1.0 / s->nstyles;
            if (s->masks[0] && fill_masks(s, s->masks[0])) refuse = "out of memory";
        }
    } else { /* a mask: k is 1-based */
        int k = 0;
        if (!ks || !cli_parse_int(ks, &k) || k < 1 || k > s->nstyles) {
            refuse = "k must name a painting (1..the number of paintings)";
            code = 400;
        } else {
            nst_image_free(s->masks[k - 1]);
            s->masks[k - 1] = img;
            img = NULL;
            if (fill_masks(s, s->masks[k - 1])) refuse = "out of memory";
            index = k - 1;
            /* new regions: the running objective has none or others, so a
             * run from the current image takes over */
            if (!refuse && (s->state == STUDIO_RUNNING || s->state == STUDIO_PAUSED)) {
                s->start = START_FROM_CURRENT;
                snprintf(s->controller, sizeof s->controller, "%s", client);
                pthread_cond_broadcast(&s->wake);
            }
        }
    }
    /* a new photo or another painting mid-run: the running objective has
     * neither, so a run takes over (from the photo, or from the current image) */
    if (!refuse && !mask && (s->state == STUDIO_RUNNING || s->state == STUDIO_PAUSED)) {
        s->start = !strcmp(kind, "content") ? START_FRESH : START_FROM_CURRENT;
        snprintf(s->controller, sizeof s->controller, "%s", client);
        pthread_cond_broadcast(&s->wake);
    }
    s->version++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    nst_image_free(img);
    if (refuse) return send_error(c, code, refuse);
    return send_json(c, 200, json_pack("{s:b,s:i}", "ok", 1, "index", index));
}

static enum MHD_Result do_command(server *sv, struct MHD_Connection *c, const char *url,
                                  request *rq, const char *client) {
    studio *s = sv->s;
    json_t *j = NULL;
    if (!strcmp(url, "/start") || !strcmp(url, "/retarget")) {
        json_error_t e;
        j = json_loadb(rq->body ? rq->body : "{}", rq->body ? rq->len : 2, 0, &e);
        if (!j) return send_error(c, 400, "the settings are not valid JSON");
    }
    pthread_mutex_lock(&s->mu);
    const char *refuse = NULL;
    unsigned code = 400;
    if (!may_steer(s, client)) {
        refuse = busy_text;
        code = 409;
    } else if (!strcmp(url, "/start") || !strcmp(url, "/retarget")) {
        studio_job job = s->job;
        refuse = read_job(j, s->nstyles, &job);
        if (!refuse && !strcmp(url, "/start")) {
            if (!s->content || s->nstyles < 1) {
                refuse = "drop a photo and at least one painting first";
            } else {
                s->job = job;
                s->start = START_FRESH;
            }
        } else if (!refuse) {
            /* what the running objective takes as is; the rest starts a run
             * from the current image */
            int restart = job.size != s->job.size ||
                          job.preserve_colors != s->job.preserve_colors ||
                          job.luminance_only != s->job.luminance_only ||
                          job.iterations != s->job.iterations;
            s->job = job;
            if (s->state == STUDIO_RUNNING || s->state == STUDIO_PAUSED) {
                if (restart) s->start = START_FROM_CURRENT;
                else s->retarget = 1;
            } else if ((s->state == STUDIO_DONE || s->state == STUDIO_FAILED) && s->last) {
                s->start = START_FROM_CURRENT;
            }
        }
    } else if (!strcmp(url, "/pause")) {
        s->paused = 1;
    } else if (!strcmp(url, "/resume")) {
        s->paused = 0;
    } else if (!strcmp(url, "/restart")) {
        if (!s->content || s->nstyles < 1) refuse = "drop a photo and at least one painting first";
        else s->start = START_FRESH;
    } else if (!strcmp(url, "/refine")) {
        if (!s->last) refuse = "nothing to refine yet: start a run first";
        else s->start = START_REFINE;
    } else if (!strcmp(url, "/masks/clear")) {
        int had = s->masks[0] != NULL;
        for (int k = 0; k < NST_MAX_STYLES; k++) {
            nst_image_free(s->masks[k]);
            s->masks[k] = NULL;
        }
        if (had && (s->state == STUDIO_RUNNING || s->state == STUDIO_PAUSED))
            s->start = START_FROM_CURRENT;
    } else if (!strcmp(url, "/styles/clear")) {
        if (active(s)) refuse = "pause is not enough: wait for the run to end, or start over";
        for (int k = 0; !refuse && k < NST_MAX_STYLES; k++) {
            nst_image_free(s->styles[k]);
            nst_image_free(s->masks[k]);
            s->styles[k] = s->masks[k] = NULL;
        }
        if (!refuse) s->nstyles = 0;
    } else {
        refuse = "no such command";
        code = 404;
    }
    if (!refuse && s->start != START_NONE) {
        snprintf(s->controller, sizeof s->controller, "%s", client);
        s->message[0] = 0;
    }
    s->version++;
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    json_decref(j);
    if (refuse) return send_error(c, code, refuse);
    return send_ok(c);
}

static enum MHD_Result send_image(struct MHD_Connection *c, const nst_image *img, int level,
                                  const char *download) {
    unsigned char *png = NULL;
    size_t len = 0;
    if (studio_png(img, level, &png, &len) != 0) return send_error(c, 503, "out of memory");
    struct MHD_Response *r = MHD_create_response_from_buffer(len, png, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(png);
        return MHD_NO;
    }
    MHD_add_response_header(r, "Content-Type", "image/png");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (download) {
        char d[200];
        snprintf(d, sizeof d, "attachment; filename=\"%s\"", download);
        MHD_add_response_header(r, "Content-Disposition", d);
    }
    enum MHD_Result ret = MHD_queue_response(c, 200, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result do_get(server *sv, struct MHD_Connection *c, const char *url,
                              const char *client) {
    studio *s = sv->s;
    if (!strcmp(url, "/") || !strcmp(url, "/index.html"))
        return send_bytes(c, 200, "text/html; charset=utf-8", nst_studio_html,
                          sizeof nst_studio_html - 1, 1);
    if (!strcmp(url, "/events")) return open_stream(sv, c, client);
    if (!strcmp(url, "/state")) {
        long seen = 0;
        pthread_mutex_lock(&s->mu);
        json_t *j = state_json(s, client, &seen);
        pthread_mutex_unlock(&s->mu);
        return send_json(c, 200, j);
    }
    if (!strcmp(url, "/frame.png")) {
        pthread_mutex_lock(&s->mu);
        if (!s->frame) {
            pthread_mutex_unlock(&s->mu);
            return send_error(c, 404, "no frame yet");
        }
        struct MHD_Response *r =
            MHD_create_response_from_buffer(s->frame_len, s->frame, MHD_RESPMEM_MUST_COPY);
        char id[32];
        snprintf(id, sizeof id, "%lu", s->frame_id);
        pthread_mutex_unlock(&s->mu);
        if (!r) return MHD_NO;
        MHD_add_response_header(r, "Content-Type", "image/png");
        MHD_add_response_header(r, "Cache-Control", "no-store");
        MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
        MHD_add_response_header(r, "X-Nst-Frame", id);
        enum MHD_Result ret = MHD_queue_response(c, 200, r);
        MHD_destroy_response(r);
        return ret;
    }
    if (!strcmp(url, "/result.png") || !strcmp(url, "/mask.png")) {
        int mask = !strcmp(url, "/mask.png"), k = 0;
        const char *ks = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "k");
        nst_image *img = NULL;
        pthread_mutex_lock(&s->mu);
        const nst_image *src = s->last;
        if (mask) src = ks && cli_parse_int(ks, &k) && k >= 1 && k <= s->nstyles
                            ? s->masks[k - 1] : NULL;
        if (src && nst_image_clone(src, &img, NULL) != NST_OK) img = NULL;
        pthread_mutex_unlock(&s->mu);
        if (!img) return send_error(c, 404, mask ? "no such mask" : "no result yet");
        char name[32];
        snprintf(name, sizeof name, mask ? "mask-%d.png" : "nst-studio.png", k);
        enum MHD_Result r = send_image(c, img, 6, name);
        nst_image_free(img);
        return r;
    }
    if (!strcmp(url, "/command")) {
        char cmd[8192];
        pthread_mutex_lock(&s->mu);
        studio_command(s, cmd, sizeof cmd);
        pthread_mutex_unlock(&s->mu);
        size_t n = strlen(cmd);
        if (n + 1 < sizeof cmd) cmd[n++] = '\n';
        return send_bytes(c, 200, "text/plain; charset=utf-8", cmd, n, 0);
    }
    return send_error(c, 404, "no such page");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls) {
    server *sv = cls;
    request *rq = *con_cls;
    (void)version;
    if (!rq) { /* the headers: checked before any body is read */
        const char *why = refusal(sv, c);
        if (why) return send_error(c, 403, why);
        int get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
        if (!get && strcmp(method, "POST")) return send_error(c, 405, "GET or POST only");
        const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
        unsigned long long n = 0;
        if (cl && (!cli_parse_u64(cl, &n) || n > STUDIO_MAX_UPLOAD)) {
            char m[200];
            snprintf(m, sizeof m, "the file is larger than %u MiB", STUDIO_MAX_UPLOAD >> 20);
            return send_error(c, 413, m);
        }
        rq = calloc(1, sizeof *rq);
        if (!rq) return MHD_NO;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) { /* more of the body: kept up to the limit */
        if (!rq->too_big && rq->len + *upload_size > STUDIO_MAX_UPLOAD) {
            rq->too_big = 1;
            free(rq->body);
            rq->body = NULL;
            rq->len = rq->cap = 0;
        }
        if (!rq->too_big) {
            if (rq->len + *upload_size > rq->cap) {
                size_t cap = rq->cap ? rq->cap : 65536;
                while (cap < rq->len + *upload_size) cap *= 2;
                char *b = realloc(rq->body, cap);
                if (!b) return MHD_NO;
                rq->body = b;
                rq->cap = cap;
            }
            memcpy(rq->body + rq->len, upload, *upload_size);
            rq->len += *upload_size;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    char client[64];
    client_id(c, client);
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD")) return do_get(sv, c, url, client);
    if (!client[0]) return send_error(c, 400, "a command needs the page's X-Nst-Client header");
    if (!strcmp(url, "/upload")) return do_upload(sv, c, rq, client);
    return do_command(sv, c, url, rq, client);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    request *rq = *con_cls;
    (void)cls;
    (void)c;
    (void)toe;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

/* ---- the command ------------------------------------------------------------ */

static const char studio_usage[] =
    "usage: nst studio [--port N] [--host ADDR] [--device SEL] [--weights FILE]\n"
    "\n"
    "Style transfer you steer as it forms, in the browser: a local web page to drop\n"
    "a photo and paintings on, watch the result form, move the weights mid-run,\n"
    "paint where each painting goes, and download the image with the nst command\n"
    "line that makes it again. The first line printed is the page's address, with\n"
    "its token: only requests carrying it are answered.\n"
    "\n"
    "  -p, --port N          the port (default 8642; 0: any free one)\n"
    "      --host ADDR       the IPv4 address to listen on (default 127.0.0.1);\n"
    "                        another makes the page reachable from the network\n"
    "  -d, --device SEL      device index or name substring (see `nst devices`)\n"
    "  -w, --weights FILE    VGG weights, as for a run (default: as for a run)\n"
    "      --content-layers L, --style-layers L  VGG layers, as for a run\n"
    "      --wct-models DIR  WCT's models, for each run's first preview (default: as\n"
    "                        for a run; without them, previews start with the\n"
    "                        optimisation)\n"
    "      --no-cache        do not cache compiled kernels\n"
    "  -h, --help            this text\n"
    "\n"
    "One run at a time: the page that starts it steers it, others watch.\n"
    "Ctrl-C stops the server.\n";

int studio_main(int argc, char **argv, const nst_settings *set) {
    enum { O_HOST = 1000, O_NO_CACHE, O_CONTENT_LAYERS, O_STYLE_LAYERS, O_WCT_MODELS };
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},  {"host", required_argument, NULL, O_HOST},
        {"device", required_argument, NULL, 'd'}, {"weights", required_argument, NULL, 'w'},
        {"no-cache", no_argument, NULL, O_NO_CACHE}, {"help", no_argument, NULL, 'h'},
        {"content-layers", required_argument, NULL, O_CONTENT_LAYERS},
        {"style-layers", required_argument, NULL, O_STYLE_LAYERS},
        {"wct-models", required_argument, NULL, O_WCT_MODELS},
        {NULL, 0, NULL, 0}};
    const char *host = "127.0.0.1", *device = NULL, *weights = NULL, *clayers = NULL,
               *slayers = NULL, *wct_models = NULL;
    int port = 8642, no_cache = 0, opt;
    char err[512];
    optind = 0;
    while ((opt = cli_next(argc, argv, "-:p:d:w:h", longopts, "studio", err, sizeof err)) !=
           CLI_END) {
        switch (opt) {
        case 'p':
            if (!cli_parse_int(optarg, &port) || port < 0 || port > 65535) {
                fprintf(stderr, "nst studio: --port '%s' is not a port (0..65535)\n", optarg);
                return 2;
            }
            break;
        case O_HOST: host = optarg; break;
        case 'd': device = optarg; break;
        case 'w': weights = optarg; break;
        case O_NO_CACHE: no_cache = 1; break;
        case O_CONTENT_LAYERS: clayers = optarg; break;
        case O_STYLE_LAYERS: slayers = optarg; break;
        case O_WCT_MODELS: wct_models = optarg; break;
        case 'h': fputs(studio_usage, stdout); return 0;
        case CLI_ARG:
            fprintf(stderr, "nst studio: unexpected argument '%s'\n%s", optarg, studio_usage);
            return 2;
        default: fprintf(stderr, "nst %s\n", err); return 2;
        }
    }
    struct sockaddr_in addr;
    memset(&addr, 0, sizeof addr);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        fprintf(stderr, "nst studio: --host '%s' is not an IPv4 address (e.g. 127.0.0.1)\n",
                host);
        return 2;
    }
    if (addr.sin_addr.s_addr == htonl(INADDR_ANY)) {
        fprintf(stderr, "nst studio: --host 0.0.0.0 listens everywhere, but the page checks "
                        "the Host header against the address: give the address people will "
                        "open (e.g. 192.168.1.5)\n");
        return 2;
    }

    /* the token: 128 bits from the kernel */
    unsigned char rnd[16];
    server sv;
    memset(&sv, 0, sizeof sv);
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
        fprintf(stderr, "nst studio: no random numbers for the token: %s\n", strerror(errno));
        return 1;
    }
    for (int i = 0; i < 16; i++) snprintf(sv.token + 2 * i, 3, "%02x", rnd[i]);

    studio s;
    if (studio_init(&s)) {
        fprintf(stderr, "nst studio: cannot create locks\n");
        return 1;
    }
    sv.s = &s;
    s.content_layers = clayers;
    s.style_layers = slayers;
    s.wct_dir = wct_models;
    nst_msg msg = {{0}};
    int rc = 1;
    struct MHD_Daemon *d = NULL;
    if (nst_weights_locate(set, weights, NST_NETWORK_AUTO, s.weights_path, sizeof s.weights_path,
                           &msg) != NST_OK) {
        fprintf(stderr, "nst studio: %s\n", msg.text);
        goto done;
    }
    if (!weights) s.weights_path[0] = 0; /* the command line needs no --weights */
    char wpath[4096];
    nst_weights_locate(set, weights, NST_NETWORK_AUTO, wpath, sizeof wpath, &msg);
    nst_runtime_options ro = {0};
    ro.device = device;
    ro.no_cache = no_cache;
    ro.settings = set;
    if (nst_runtime_open(&s.rt, &ro, &msg) != NST_OK) {
        fprintf(stderr, "nst studio: %s\n", msg.text);
        goto done;
    }
    nst_params p;
    nst_params_default(&p);
    if (clayers) p.content_layers = clayers;
    if (slayers) p.style_layers = slayers;
    if (nst_params_check(&p, 1, NULL, &msg) != NST_OK) {
        fprintf(stderr, "nst studio: %s\n", msg.text);
        rc = 2;
        goto done;
    }
    if (nst_transfer_prepare(s.rt, &p, NULL, NULL) != NST_OK ||
        nst_model_load(s.rt, wpath, &s.model) != NST_OK) {
        fprintf(stderr, "nst studio: %s\n", nst_last_error(s.rt));
        goto done;
    }

    /* WCT's models, when nst finds them, give each run its first preview */
    char wdir[4096];
    nst_msg wmsg = {{0}};
    if (nst_wct_locate(set, wct_models, wdir, sizeof wdir, &wmsg) != NST_OK) {
        if (wct_models) { /* asked for, and not there: say so */
            fprintf(stderr, "nst studio: %s\n", wmsg.text);
            rc = 2;
            goto done;
        }
    } else if (nst_wct_models_load(s.rt, wdir, &s.wct) != NST_OK) {
        fprintf(stderr, "nst studio: warning: WCT models in %s not used: %s\n", wdir,
                nst_last_error(s.rt));
        s.wct = NULL;
    }

    /* Ctrl-C and SIGTERM are taken by sigwait below, in this thread only:
     * every thread started from here on has them blocked */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN); /* a page that leaves mid-write is not a crash */

    /* no MHD_USE_ERROR_LOG: a page closed mid-stream is routine, not news */
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                         0, NULL, NULL, on_request, &sv, MHD_OPTION_SOCK_ADDR, &addr,
                         MHD_OPTION_CONNECTION_LIMIT, (unsigned)256,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "nst studio: cannot listen on %s:%d: %s%s\n", host, port,
                strerror(errno), port ? " (another --port, or 0 for any free one?)" : "");
        goto done;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    sv.port = info ? info->port : port;
    snprintf(sv.hosts[0], sizeof sv.hosts[0], "127.0.0.1:%d", sv.port);
    snprintf(sv.hosts[1], sizeof sv.hosts[1], "localhost:%d", sv.port);
    snprintf(sv.hosts[2], sizeof sv.hosts[2], "%s:%d", host, sv.port);
    sv.nhosts = 3;
    if (studio_start_worker(&s)) {
        fprintf(stderr, "nst studio: cannot start a thread\n");
        goto done;
    }
    printf("http://%s:%d/?token=%s\n", host, sv.port, sv.token);
    fflush(stdout);
    fprintf(stderr, "nst studio: %s, weights %s; %s; open the address above; Ctrl-C stops\n",
            nst_runtime_device(s.rt)->name, wpath,
            s.wct ? "first previews from WCT" : "no WCT models: previews from the optimisation");
    int sig = 0;
    sigwait(&sigs, &sig);
    fprintf(stderr, "nst studio: stopping\n");
    rc = 0;
done:
    pthread_mutex_lock(&s.mu); /* the streams and the run end */
    s.shutdown = 1;
    pthread_cond_broadcast(&s.changed);
    pthread_cond_broadcast(&s.wake);
    pthread_mutex_unlock(&s.mu);
    if (d) MHD_stop_daemon(d);
    studio_stop(&s);
    nst_wct_models_free(s.wct);
    nst_model_free(s.model);
    nst_runtime_close(s.rt);
    return rc;
}
