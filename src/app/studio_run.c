/* studio_run.c: nst studio's session: the one run on the device, in a worker
 * thread, steered by the page through the fields of `studio` under its lock.
 *
 * The worker waits for a start, then runs nst_transfer_run. Its progress
 * function, once per iteration: stops the run when a new start, a stop or
 * the shutdown is asked; applies a pending re-target (nst_transfer_retarget:
 * weights, blend, style scale, from the current image); records the losses;
 * reads the image back (nst_transfer_snapshot) for a frame when the last was
 * read more than fps_min_interval ago and the encoder thread is free (it makes
 * the PNG while the run goes on); and waits while paused. A start "from current"
 * (a change the running objective cannot take: size, colour modes, masks)
 * and "refine" begin a new run from the latest image (NST_INIT_IMAGE). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "image.h"
#include "studio.h"

double studio_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int studio_init(studio *s) {
    memset(s, 0, sizeof *s);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (pthread_mutex_init(&s->mu, NULL) || pthread_cond_init(&s->changed, &ca) ||
        pthread_cond_init(&s->wake, &ca))
        return -1;
    pthread_condattr_destroy(&ca);
    nst_params d; /* nst's own defaults, but a preview's size */
    nst_params_default(&d);
    s->job.content_weight = d.content_weight;
    s->job.style_weight = d.style_weight;
    s->job.tv_weight = d.tv_weight;
    s->job.style_scale = d.style_scale;
    s->job.size = 256;
    s->job.iterations = 300;
    s->fps_min_interval = 0.02;
    return 0;
}

void studio_notice(studio *s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->message, sizeof s->message, fmt, ap);
    va_end(ap);
    s->message_id++;
    s->version++;
    pthread_cond_broadcast(&s->changed);
}

/* Under the lock: img (made as number seq) becomes the latest image and its
 * PNG the frame, unless a later one was published already. */
static void publish(studio *s, nst_image *img, unsigned char *png, size_t len,
                    unsigned long seq) {
    if (seq <= s->published_seq) {
        nst_image_free(img);
        free(png);
        return;
    }
    s->published_seq = seq;
    nst_image_free(s->last);
    s->last = img;
    free(s->frame);
    s->frame = png;
    s->frame_len = len;
    s->frame_id++;
    s->frames_in_run++;
    s->frame_time = studio_now();
    double dt = s->frame_time - s->run_started;
    s->fps = dt > 0 ? s->frames_in_run / dt : 0;
    s->width = img->w;
    s->height = img->h;
}

/* Hands img (taken) to the encoder, replacing one it has not started. */
static void make_frame(studio *s, nst_image *img) {
    pthread_mutex_lock(&s->mu);
    nst_image_free(s->to_encode);
    s->to_encode = img;
    s->to_encode_seq = ++s->seq;
    pthread_cond_broadcast(&s->wake);
    pthread_mutex_unlock(&s->mu);
}

static void *encoder(void *arg) {
    studio *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->shutdown && !s->to_encode) pthread_cond_wait(&s->wake, &s->mu);
        if (s->shutdown) break;
        nst_image *img = s->to_encode;
        unsigned long seq = s->to_encode_seq;
        s->to_encode = NULL;
        pthread_mutex_unlock(&s->mu);
        unsigned char *png = NULL;
        size_t len = 0;
        int bad = studio_png(img, 1, &png, &len);
        pthread_mutex_lock(&s->mu);
        if (bad) {
            nst_image_free(img);
            continue;
        }
        publish(s, img, png, len, seq);
        s->version++;
        pthread_cond_broadcast(&s->changed);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static int stop_asked(const studio *s) { return s->shutdown || s->start != START_NONE; }

static int on_progress(const nst_progress *p, void *user) {
    studio *s = user;
    if (p->phase != NST_PHASE_ITERATION) {
        pthread_mutex_lock(&s->mu);
        int stop = stop_asked(s);
        pthread_mutex_unlock(&s->mu);
        return stop;
    }
    pthread_mutex_lock(&s->mu);
    if (stop_asked(s)) {
        pthread_mutex_unlock(&s->mu);
        return 1;
    }
    if (s->retarget) {
        s->retarget = 0;
        nst_retarget r;
        double blend[NST_MAX_STYLES], sum = 0;
        nst_retarget_default(&r);
        r.content_weight = s->job.content_weight;
        r.style_weight = s->job.style_weight;
        r.tv_weight = s->job.tv_weight;
        r.style_scale = s->job.style_scale;
        for (int k = 0; k < s->nstyles; k++) sum += s->job.blend[k];
        for (int k = 0; k < s->nstyles; k++)
            blend[k] = sum > 0 ? s->job.blend[k] / sum : 1.0 / s->nstyles;
        if (s->nstyles > 1) r.blend = blend;
        pthread_mutex_unlock(&s->mu);
        nst_status st = nst_transfer_retarget(p->transfer, &r);
        pthread_mutex_lock(&s->mu);
        if (st != NST_OK) studio_notice(s, "could not change the run: %s", nst_last_error(s->rt));
    }
    studio_point *pt = &s->points[s->npoints % STUDIO_POINTS];
    pt->iteration = p->iteration;
    pt->loss = (float)p->loss;
    pt->content = (float)p->content;
    pt->style = (float)p->style;
    pt->tv = (float)p->tv;
    s->npoints++;
    s->iteration = p->iteration;
    s->iterations = p->iterations;
    s->version++;
    pthread_cond_broadcast(&s->changed);
    /* a frame at most every fps_min_interval, and none while the encoder
     * still has one to do (the run would read back images for nothing) */
    int frame = (studio_now() - s->snap_time >= s->fps_min_interval && !s->to_encode) ||
                p->iteration == 1;
    if (frame) s->snap_time = studio_now();
    pthread_mutex_unlock(&s->mu);
    if (frame) {
        nst_image *img = NULL;
        if (nst_transfer_snapshot(p->transfer, &img) == NST_OK) make_frame(s, img);
    }
    pthread_mutex_lock(&s->mu);
    if (s->paused && !stop_asked(s)) {
        s->state = STUDIO_PAUSED;
        s->version++;
        pthread_cond_broadcast(&s->changed);
        while (s->paused && !stop_asked(s)) pthread_cond_wait(&s->wake, &s->mu);
        s->state = STUDIO_RUNNING;
        s->version++;
        pthread_cond_broadcast(&s->changed);
    }
    int stop = stop_asked(s);
    pthread_mutex_unlock(&s->mu);
    return stop;
}

/* Under the lock: the parameters of the next run, from s->job. */
static void job_params(const studio *s, int kind, nst_params *p, double *blend) {
    nst_params_default(p);
    p->size = s->job.size;
    if (kind == START_REFINE) {
        int full = s->content->w > s->content->h ? s->content->w : s->content->h;
        p->size = full < STUDIO_MAX_SIZE ? full : STUDIO_MAX_SIZE;
        if (p->size < s->job.size) p->size = s->job.size;
    }
    if (s->content_layers) p->content_layers = s->content_layers;
    if (s->style_layers) p->style_layers = s->style_layers;
    p->content_weight = s->job.content_weight;
    p->style_weight = s->job.style_weight;
    p->tv_weight = s->job.tv_weight;
    p->style_scale = s->job.style_scale;
    p->iterations = s->job.iterations;
    if (kind == START_REFINE) /* as a second scale: half the iterations */
        p->iterations = s->job.iterations / 2 > 0 ? s->job.iterations / 2 : 1;
    p->preserve_colors = s->job.preserve_colors;
    p->luminance_only = s->job.luminance_only;
    double sum = 0;
    for (int k = 0; k < s->nstyles; k++) sum += s->job.blend[k];
    for (int k = 0; k < s->nstyles; k++)
        blend[k] = sum > 0 ? s->job.blend[k] / sum : 1.0 / s->nstyles;
}

static void *worker(void *arg) {
    studio *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->shutdown && s->start == START_NONE) pthread_cond_wait(&s->wake, &s->mu);
        if (s->shutdown) break;
        int kind = s->start;
        s->start = START_NONE;
        s->retarget = 0;
        if (!s->content || s->nstyles < 1) {
            studio_notice(s, "drop a photo and at least one painting first");
            continue;
        }
        /* the inputs are copied: the page may replace them during the run */
        nst_params p;
        double blend[NST_MAX_STYLES];
        job_params(s, kind, &p, blend);
        int n = s->nstyles, have_masks = s->masks[0] != NULL;
        nst_image *content = NULL, *init = NULL, *styles[NST_MAX_STYLES] = {0},
                  *masks[NST_MAX_STYLES] = {0};
        int ok = nst_image_clone(s->content, &content, NULL) == NST_OK;
        for (int k = 0; k < n; k++) {
            ok = ok && nst_image_clone(s->styles[k], &styles[k], NULL) == NST_OK;
            if (have_masks) ok = ok && nst_image_clone(s->masks[k], &masks[k], NULL) == NST_OK;
        }
        if (kind != START_FRESH && s->last) {
            ok = ok && nst_image_clone(s->last, &init, NULL) == NST_OK;
            p.init = NST_INIT_IMAGE;
            p.init_image = init;
        }
        if (have_masks) p.masks = (const nst_image *const *)masks;
        s->refined = kind == START_REFINE;
        s->state = STUDIO_RUNNING;
        s->paused = 0;
        s->run_id++;
        s->iteration = 0;
        s->iterations = p.iterations;
        s->run_started = s->frame_time = s->snap_time = studio_now();
        s->frames_in_run = 0;
        s->fps = 0;
        if (kind == START_FRESH) s->npoints = 0;
        s->version++;
        pthread_cond_broadcast(&s->changed);
        s->wct_used = 0;
        pthread_mutex_unlock(&s->mu);

        /* the first preview at once: WCT's one-pass stylisation, from which
         * the optimisation then starts (as nst --init wct) */
        nst_image *first = NULL;
        if (ok && kind == START_FRESH && s->wct) {
            nst_wct_params wp;
            nst_wct_params_default(&wp);
            wp.size = p.size;
            wp.style_scale = p.style_scale;
            if (nst_wct_run(s->rt, s->wct, &wp, content, (const nst_image *const *)styles, n,
                            n > 1 ? blend : NULL,
                            have_masks ? (const nst_image *const *)masks : NULL,
                            &first) == NST_OK) {
                nst_image *shown = NULL;
                if (nst_image_clone(first, &shown, NULL) == NST_OK) make_frame(s, shown);
                p.init = NST_INIT_IMAGE;
                p.init_image = first;
                pthread_mutex_lock(&s->mu);
                s->wct_used = 1;
                pthread_mutex_unlock(&s->mu);
            }
        }

        nst_image *out = NULL;
        nst_status st = NST_ERR_NOMEM;
        if (ok)
            st = nst_transfer_run(s->rt, s->model, &p, content,
                                  (const nst_image *const *)styles, n, n > 1 ? blend : NULL,
                                  on_progress, s, &out);
        /* the result: published here, not by the encoder, so that a run
         * that follows at once starts from it */
        pthread_mutex_lock(&s->mu);
        unsigned long seq = ++s->seq;
        pthread_mutex_unlock(&s->mu);
        unsigned char *png = NULL;
        size_t len = 0;
        if (out && studio_png(out, 1, &png, &len) != 0) png = NULL;

        pthread_mutex_lock(&s->mu);
        if (out && png) publish(s, out, png, len, seq);
        else nst_image_free(out);
        if (st == NST_OK) {
            s->state = STUDIO_DONE;
        } else if (st == NST_ERR_INTERRUPTED) {
            s->state = s->start != START_NONE ? STUDIO_RUNNING : STUDIO_DONE;
        } else {
            s->state = STUDIO_FAILED;
            studio_notice(s, "the run failed: %s", ok ? nst_last_error(s->rt) : "out of memory");
        }
        s->paused = 0;
        s->version++;
        pthread_cond_broadcast(&s->changed);
        /* the page that steered it may now be another */
        if (s->start == START_NONE) s->controller[0] = 0;
        nst_image_free(content);
        nst_image_free(init);
        nst_image_free(first);
        for (int k = 0; k < n; k++) {
            nst_image_free(styles[k]);
            nst_image_free(masks[k]);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

int studio_start_worker(studio *s) {
    if (pthread_create(&s->encoder, NULL, encoder, s) != 0) return -1;
    s->encoder_started = 1;
    if (pthread_create(&s->worker, NULL, worker, s) != 0) return -1;
    s->worker_started = 1;
    return 0;
}

void studio_stop(studio *s) {
    pthread_mutex_lock(&s->mu);
    s->shutdown = 1;
    pthread_cond_broadcast(&s->wake);
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->mu);
    if (s->worker_started) pthread_join(s->worker, NULL);
    if (s->encoder_started) pthread_join(s->encoder, NULL);
    s->worker_started = s->encoder_started = 0;
    nst_image_free(s->to_encode);
    s->to_encode = NULL;
    nst_image_free(s->content);
    for (int k = 0; k < NST_MAX_STYLES; k++) {
        nst_image_free(s->styles[k]);
        nst_image_free(s->masks[k]);
    }
    nst_image_free(s->last);
    free(s->frame);
    s->content = s->last = NULL;
    s->frame = NULL;
}

/* A word for the shell: as is when plain, else in single quotes. */
static void shell_word(char *buf, size_t cap, size_t *n, const char *w) {
    int plain = *w != 0;
    for (const char *c = w; *c; c++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/,+=:",
                    *c))
            plain = 0;
    if (*n >= cap) return;
    if (plain) {
        *n += (size_t)snprintf(buf + *n, cap - *n, " %s", w);
        return;
    }
    *n += (size_t)snprintf(buf + *n, cap - *n, " '");
    for (const char *c = w; *c && *n < cap; c++)
        *n += (size_t)snprintf(buf + *n, cap - *n, *c == '\'' ? "'\\''" : "%c", *c);
    if (*n < cap) *n += (size_t)snprintf(buf + *n, cap - *n, "'");
}

void studio_command(studio *s, char *buf, size_t cap) {
    size_t n = 0;
    char tmp[2048];
    nst_params p;
    double blend[NST_MAX_STYLES];
    buf[0] = 0;
    if (!s->content || s->nstyles < 1) {
        snprintf(buf, cap, "# drop a photo and a painting first");
        return;
    }
    job_params(s, s->refined ? START_REFINE : START_FRESH, &p, blend);
    n += (size_t)snprintf(buf + n, cap - n, "nst --content");
    shell_word(buf, cap, &n, s->content_name);
    size_t m = 0;
    tmp[0] = 0;
    for (int k = 0; k < s->nstyles && m < sizeof tmp; k++)
        m += (size_t)snprintf(tmp + m, sizeof tmp - m, "%s%s", k ? "," : "", s->style_names[k]);
    n += (size_t)snprintf(buf + n, cap - n < cap ? cap - n : 0, " --style");
    shell_word(buf, cap, &n, tmp);
    if (s->nstyles > 1 && n < cap) {
        m = 0;
        for (int k = 0; k < s->nstyles && m < sizeof tmp; k++)
            m += (size_t)snprintf(tmp + m, sizeof tmp - m, "%s%.4g", k ? "," : "", blend[k]);
        n += (size_t)snprintf(buf + n, cap - n, " --style-blend %s", tmp);
    }
    if (s->masks[0] && n < cap) {
        m = 0;
        for (int k = 0; k < s->nstyles && m < sizeof tmp; k++)
            m += (size_t)snprintf(tmp + m, sizeof tmp - m, "%smask-%d.png", k ? "," : "", k + 1);
        n += (size_t)snprintf(buf + n, cap - n, " --mask %s", tmp);
    }
    if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n,
                              " --size %d --style-scale %.4g --content-weight %.4g"
                              " --style-weight %.4g --tv-weight %.4g",
                              s->refined ? p.size : s->job.size, p.style_scale,
                              p.content_weight, p.style_weight, p.tv_weight);
    if (s->refined && n < cap) /* the preview, then the full size: coarse to fine */
        n += (size_t)snprintf(buf + n, cap - n, " --scales 2 --iterations %d", s->job.iterations);
    else if (n < cap)
        n += (size_t)snprintf(buf + n, cap - n, " --iterations %d", p.iterations);
    if (s->wct_used && n < cap) n += (size_t)snprintf(buf + n, cap - n, " --init wct");
    if (s->wct_used && s->wct_dir && n < cap) {
        n += (size_t)snprintf(buf + n, cap - n, " --wct-models");
        shell_word(buf, cap, &n, s->wct_dir);
    }
    if (p.preserve_colors && n < cap) n += (size_t)snprintf(buf + n, cap - n, " --preserve-colors");
    if (p.luminance_only && n < cap) n += (size_t)snprintf(buf + n, cap - n, " --luminance-only");
    if (s->content_layers && n < cap) {
        n += (size_t)snprintf(buf + n, cap - n, " --content-layers");
        shell_word(buf, cap, &n, s->content_layers);
    }
    if (s->style_layers && n < cap) {
        n += (size_t)snprintf(buf + n, cap - n, " --style-layers");
        shell_word(buf, cap, &n, s->style_layers);
    }
    if (s->weights_path[0] && n < cap) {
        n += (size_t)snprintf(buf + n, cap - n, " --weights");
        shell_word(buf, cap, &n, s->weights_path);
    }
    if (n < cap) snprintf(buf + n, cap - n, " -o nst-studio.png");
}
