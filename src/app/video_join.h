/* video_join.h: one clip from its stylised stretches (video_join.c). */
#ifndef NST_VIDEO_JOIN_H
#define NST_VIDEO_JOIN_H

#include <stddef.h>

/* Writes output (atomically: nothing at output until it is whole) from n
 * stylised stretches of one clip, in order: chunk k holds frames
 * [start[k], stop[k]) of the clip, start[0] = 0, start[k] <= stop[k-1]
 * (frames held by two neighbours, the overlap) and stop[k] > stop[k-1].
 * An overlap is cross-faded: its i-th of O frames is (1 - a) of the earlier
 * stretch plus a of the later one, a = (i + 1) / (O + 1). fps: the frame
 * rate; audio_from: the clip whose audio is copied, or NULL; codec as
 * nst_video_writer_open; fps_num/fps_den the clip's frame rate (0: the first
 * stretch's). 0 on success, else -1 with a message in err. */
int video_join(const char *const *chunks, const long *start, const long *stop, int n,
               const char *output, const char *codec, int fps_num, int fps_den,
               const char *audio_from, char *note,
               size_t note_len, char *err, size_t err_len);

#endif
