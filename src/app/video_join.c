/* video_join.c: one clip from its stylised stretches, the overlaps
 * cross-faded (video_join.h). */
#include <stdio.h>
#include <string.h>

#include "nst.h"
#include "video.h"
#include "video_join.h"

int video_join(const char *const *chunks, const long *start, const long *stop, int n,
               const char *output, const char *codec, int fps_num, int fps_den,
               const char *audio_from, char *note,
               size_t note_len, char *err, size_t err_len) {
    nst_msg msg = {{0}};
    nst_video_reader *cur = NULL, *next = NULL;
    nst_video_writer *wr = NULL;
    nst_video_info ci, ni;
    nst_image *a = NULL, *b = NULL;
    int rc = -1, k = 0;
    for (int i = 0; i < n; i++)
        if ((i == 0 && start[0] != 0) || stop[i] <= start[i] ||
            (i > 0 && (start[i] > stop[i - 1] || stop[i] <= stop[i - 1] ||
                       start[i] < start[i - 1]))) {
            snprintf(err, err_len, "the stretches of '%s' do not follow one another", output);
            return -1;
        }
    if (nst_video_open(chunks[0], &cur, &ci, &msg) != NST_OK) goto fail_msg;
    if (fps_num <= 0 || fps_den <= 0) fps_num = ci.fps_num, fps_den = ci.fps_den;
    if (nst_video_writer_open(output, ci.w, ci.h, fps_num, fps_den, codec, audio_from, &wr, note,
                              note_len, &msg) != NST_OK)
        goto fail_msg;
    for (long t = 0; t < stop[n - 1]; t++) {
        if (k + 1 < n && t == start[k + 1]) {
            if (nst_video_open(chunks[k + 1], &next, &ni, &msg) != NST_OK) goto fail_msg;
            if (ni.w != ci.w || ni.h != ci.h) {
                snprintf(err, err_len, "'%s' is %dx%d, '%s' %dx%d: stretches of one clip must "
                                       "share a size", chunks[k], ci.w, ci.h, chunks[k + 1],
                         ni.w, ni.h);
                goto fail;
            }
        }
        if (nst_video_next(cur, &a, &msg) != NST_OK) goto fail_msg;
        if (!a) {
            snprintf(err, err_len, "'%s' ends before frame %ld: run the batch again to redo it",
                     chunks[k], t);
            goto fail;
        }
        if (next) {
            if (nst_video_next(next, &b, &msg) != NST_OK) goto fail_msg;
            if (!b) {
                snprintf(err, err_len, "'%s' ends early: run the batch again to redo it",
                         chunks[k + 1]);
                goto fail;
            }
            float al = (float)(t - start[k + 1] + 1) / (float)(stop[k] - start[k + 1] + 1);
            size_t len = 3 * (size_t)a->w * a->h;
            for (size_t i = 0; i < len; i++) a->data[i] = (1 - al) * a->data[i] + al * b->data[i];
            nst_image_free(b);
            b = NULL;
        }
        if (nst_video_writer_add(wr, a, &msg) != NST_OK) goto fail_msg;
        nst_image_free(a);
        a = NULL;
        if (t == stop[k] - 1 && k + 1 < n) {
            nst_video_close(cur);
            cur = next;
            next = NULL;
            if (!cur) { /* the next stretch starts just after this one */
                if (nst_video_open(chunks[k + 1], &cur, &ni, &msg) != NST_OK) goto fail_msg;
            }
            k++;
        }
    }
    if (nst_video_writer_finish(wr, &msg) != NST_OK) goto fail_msg;
    rc = 0;
    goto out;
fail_msg:
    snprintf(err, err_len, "%s", msg.text);
fail:
out:
    nst_image_free(a);
    nst_image_free(b);
    nst_video_writer_free(wr);
    nst_video_close(cur);
    nst_video_close(next);
    return rc;
}
