/* video.h: reading and writing video through FFmpeg's libraries
 * (libavformat, libavcodec, libswscale), frames as nst_images. Host only.
 * Built into build/libnstvideo.a, not into libnst: only the nst command and
 * the video tools link FFmpeg.
 *
 * Input: any container and codec FFmpeg reads, or an image sequence given
 * as a printf pattern ("frames/%05d.png", numbered from 0 to 4 upwards).
 * Output: by the name's extension: a container (.mp4, .mkv, .mov, .avi...)
 * gets H.264 (libx264, 4:2:0, CRF 18) where that encoder is present and the
 * container takes it, else FFV1 (lossless), else MPEG-4 part 2; a pattern
 * gets one PNG or JPEG per frame, numbered from 1. The first audio stream of
 * a given file is copied through unchanged (no re-encoding) when the
 * container takes its codec. */
#ifndef NST_VIDEO_H
#define NST_VIDEO_H

#include <stddef.h>

#include "nst.h"

/* Frames wider or taller than this, or of more pixels than NST_MAX_PIXELS,
 * are refused before anything is decoded. */
#define NST_VIDEO_MAX_SIDE 16384

typedef struct nst_video_info {
    int w, h;               /* frame size */
    int fps_num, fps_den;   /* frame rate (25/1 when the file gives none) */
    long frames;            /* frames the file declares or its duration implies; 0 unknown */
    int has_audio;          /* an audio stream is present */
    char codec[32];         /* the video codec's name */
} nst_video_info;

/* 1 when path is an image-sequence pattern (holds a %d or %0Nd). */
int nst_video_is_pattern(const char *path);

typedef struct nst_video_reader nst_video_reader;

/* Opens path and its video stream. Errors (the message names the file and
 * says what to do): NST_ERR_IO (missing, unreadable), NST_ERR_FORMAT (not a
 * video, no video stream, a codec FFmpeg cannot decode, a truncated file),
 * NST_ERR_TOO_LARGE (frames beyond NST_VIDEO_MAX_SIDE or NST_MAX_PIXELS). */
nst_status nst_video_open(const char *path, nst_video_reader **out, nst_video_info *info,
                          nst_msg *msg);
/* The next frame, RGB in [0,1] at the stream's size; *out NULL after the
 * last one. A decoding error, or a file that ends before the frames it
 * declares, is NST_ERR_FORMAT naming the frame. */
nst_status nst_video_next(nst_video_reader *r, nst_image **out, nst_msg *msg);
void nst_video_close(nst_video_reader *r);
/* Decodes the whole of path (without converting frames) and counts its
 * frames: the checks of nst_video_open and nst_video_next, before any work
 * is done on it. */
nst_status nst_video_count(const char *path, long *frames, nst_msg *msg);

typedef struct nst_video_writer nst_video_writer;

/* Starts writing w x h frames at fps_num/fps_den to path. A container is
 * written to a temporary file beside path and renamed over it by
 * nst_video_writer_finish only: until then, and on any failure, an existing
 * file at path is untouched. 4:2:0 codecs drop an odd last row or column.
 * codec: "h264", "ffv1" or "mpeg4" to insist on one, NULL for the choice
 * above.
 * audio_from: a file whose first audio stream is copied, or NULL. note (may
 * be NULL, note_len bytes) receives what was chosen: "H.264 (libx264)",
 * ", audio copied (aac)" or why audio was left out. */
nst_status nst_video_writer_open(const char *path, int w, int h, int fps_num, int fps_den,
                                 const char *codec, const char *audio_from, nst_video_writer **out, char *note,
                                 size_t note_len, nst_msg *msg);
/* The JPEG quality (1..100) of an image sequence's .jpg files (default 95). */
void nst_video_writer_jpeg_quality(nst_video_writer *wr, int quality);
/* Adds the next frame (w x h as opened). */
nst_status nst_video_writer_add(nst_video_writer *wr, const nst_image *img, nst_msg *msg);
/* Flushes the encoder, copies the rest of the audio, writes the trailer and
 * renames the file into place. */
nst_status nst_video_writer_finish(nst_video_writer *wr, nst_msg *msg);
/* Frees wr; a container not finished is removed (path untouched). */
void nst_video_writer_free(nst_video_writer *wr);

#endif
