/* studio.h: `nst studio`, a local web page that steers a style transfer as
 * it forms (not part of the library).
 *
 * studio.c       the command: options, the HTTP server (libmicrohttpd), the
 *                token, Host and Origin checks, the endpoints, the page.
 * studio_run.c   the session: uploaded images, the one run on the device (a
 *                worker thread, and one that encodes its frames), its commands (start, re-target, pause,
 *                resume, start over, refine), its frames and loss curves.
 * studio_png.c   PNG encoding into memory (libpng), for frames and results. */
#ifndef NST_STUDIO_H
#define NST_STUDIO_H

#include <pthread.h>
#include <stddef.h>

#include "nst.h"

/* Uploads: at most this many bytes and pixels (the image reader refuses a
 * larger image from its header, before decoding: decompression bombs). */
#define STUDIO_MAX_UPLOAD (32u << 20)
#define STUDIO_MAX_PIXELS ((size_t)25 * 1000 * 1000)
/* The largest --size the page may ask for ("refine at full size" is the
 * photo's own size up to this). */
#define STUDIO_MAX_SIZE 2048
#define STUDIO_POINTS 4096 /* loss points kept for the curves */

/* `nst studio ...`: argv[0] is "studio". */
int studio_main(int argc, char **argv, const nst_settings *set);

/* PNG of img (8-bit RGB) into *out (malloc'ed), `level` zlib's compression
 * (1 fast, for previews; 6 for downloads). 0 on success. */
int studio_png(const nst_image *img, int level, unsigned char **out, size_t *len);

/* ---- the session (studio_run.c) ---- */

/* What the page asks for. */
typedef struct studio_job {
    double content_weight, style_weight, tv_weight, style_scale;
    double blend[NST_MAX_STYLES]; /* normalised to sum 1 when used */
    int size, iterations, preserve_colors, luminance_only;
} studio_job;

typedef struct studio_point {
    int iteration;
    float loss, content, style, tv;
} studio_point;

enum { STUDIO_IDLE = 0, STUDIO_RUNNING, STUDIO_PAUSED, STUDIO_DONE, STUDIO_FAILED };
/* a start's kind */
enum { START_NONE = 0, START_FRESH, START_FROM_CURRENT, START_REFINE };

typedef struct studio {
    pthread_mutex_t mu;
    pthread_cond_t changed; /* state, frame or points: wakes the event streams */
    pthread_cond_t wake;    /* commands: wakes the worker (and a paused run) */
    nst_runtime *rt;
    nst_model *model;
    nst_wct_models *wct; /* NULL: none found; else the first preview of a run is WCT's */
    int wct_used;        /* the current run started from WCT's image (--init wct) */
    const char *wct_dir; /* --wct-models as given, or NULL */
    char weights_path[4096];
    const char *content_layers, *style_layers; /* NULL: nst's defaults */
    /* inputs */
    nst_image *content;
    char content_name[128];
    nst_image *styles[NST_MAX_STYLES];
    char style_names[NST_MAX_STYLES][128];
    int nstyles;
    nst_image *masks[NST_MAX_STYLES]; /* all NULL, or one per style */
    /* commands */
    int start;            /* START_* pending */
    studio_job job;       /* the settings of the run (the next one when start is set) */
    int retarget;         /* 1: job's weights, blend, scale to apply to the running run */
    int paused, shutdown;
    /* the run */
    int state;            /* STUDIO_* */
    int run_id;           /* counts runs */
    char message[1024];   /* an error or a notice for the page, "" when none */
    unsigned long message_id;
    int iteration, iterations, width, height, refined;
    studio_point points[STUDIO_POINTS];
    long npoints;         /* points recorded this session (ring of STUDIO_POINTS) */
    nst_image *last;      /* the latest image (a frame or the result) */
    unsigned char *frame; /* its PNG */
    size_t frame_len;
    unsigned long frame_id;
    double frame_time, fps; /* the last frame's time; frames per second over the run */
    double snap_time;       /* when the run last read its image back for a frame */
    double run_started;
    unsigned long frames_in_run;
    double fps_min_interval; /* seconds between frames at the most */
    unsigned long version;   /* bumped on every change the page shows */
    /* the page that steers: X-Nst-Client of the one that started the run */
    char controller[64]; /* "" when none; released when its event streams close */
    pthread_t worker, encoder;
    int worker_started, encoder_started;
    /* frames: the worker reads the image back (nst_transfer_snapshot) and
     * leaves it here; the encoder thread makes its PNG, so the run does not
     * wait for the encoding. The newest wins; seq orders what is published. */
    nst_image *to_encode;
    unsigned long to_encode_seq, seq, published_seq;
} studio;

/* Opens nothing: s is zeroed and its locks made. */
int studio_init(studio *s);
/* Starts the worker thread (the runtime and the model are s's). */
int studio_start_worker(studio *s);
/* Stops the run and the worker, frees everything s holds. */
void studio_stop(studio *s);
/* Under s->mu: a notice for the page. */
void studio_notice(studio *s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The `nst` command line that reproduces the current settings, into buf. */
void studio_command(studio *s, char *buf, size_t cap);
double studio_now(void);

#endif
