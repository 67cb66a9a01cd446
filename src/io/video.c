/* video.c: video in and out through FFmpeg's libraries (video.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>

#include "image.h"
#include "nst_int.h"
#include "video.h"

static const char *averr(int e, char *buf, size_t len) {
    av_strerror(e, buf, len);
    return buf;
}

int nst_video_is_pattern(const char *path) {
    for (const char *p = strchr(path, '%'); p; p = strchr(p + 1, '%')) {
        const char *q = p + 1;
        if (*q == '0') q++;
        while (*q >= '0' && *q <= '9') q++;
        if (*q == 'd') return 1;
    }
    return 0;
}

/* ---- reading ---------------------------------------------------------------- */

struct nst_video_reader {
    AVFormatContext *fmt;
    AVCodecContext *dec;
    struct SwsContext *sws;
    AVPacket *pkt;
    AVFrame *frame;
    int stream;
    int eof;      /* the demuxer is done (the decoder is being drained) */
    int drained;  /* the decoder is done */
    long decoded; /* frames returned */
    long declared;
    char name[512];
};

void nst_video_close(nst_video_reader *r) {
    if (!r) return;
    sws_freeContext(r->sws);
    av_frame_free(&r->frame);
    av_packet_free(&r->pkt);
    avcodec_free_context(&r->dec);
    avformat_close_input(&r->fmt);
    free(r);
}

nst_status nst_video_open(const char *path, nst_video_reader **out, nst_video_info *info,
                          nst_msg *msg) {
    char eb[128];
    nst_status st = NST_OK;
    int e;
    if (!out || !info) return nst_fail(msg, NST_ERR_INVALID_ARG, "nst_video_open: NULL argument");
    *out = NULL;
    memset(info, 0, sizeof *info);
    if (!path || !*path) return nst_fail(msg, NST_ERR_INVALID_ARG, "no video file named");
    if (!nst_video_is_pattern(path)) {
        struct stat sb;
        if (stat(path, &sb) != 0)
            return nst_fail(msg, NST_ERR_IO, "'%s': %s", path, strerror(errno));
        if (S_ISDIR(sb.st_mode))
            return nst_fail(msg, NST_ERR_IO, "'%s' is a directory; for an image sequence give "
                            "a pattern such as '%s/%%05d.png'", path, path);
        if (sb.st_size == 0) return nst_fail(msg, NST_ERR_FORMAT, "'%s' is empty", path);
    }
    nst_video_reader *r = calloc(1, sizeof *r);
    if (!r) return nst_fail(msg, NST_ERR_NOMEM, "video reader");
    snprintf(r->name, sizeof r->name, "%s", path);
    av_log_set_level(AV_LOG_QUIET);
    if ((e = avformat_open_input(&r->fmt, path, NULL, NULL)) < 0) {
        if (nst_video_is_pattern(path) && e == AVERROR(ENOENT))
            st = nst_fail(msg, NST_ERR_IO, "'%s': no file matches the pattern (frames are "
                          "numbered from 0 to 4 upwards)", path);
        else if (e == AVERROR(ENOENT) || e == AVERROR(EACCES))
            st = nst_fail(msg, NST_ERR_IO, "'%s': %s", path, averr(e, eb, sizeof eb));
        else
            st = nst_fail(msg, NST_ERR_FORMAT, "'%s' is not a video FFmpeg can read, or it is "
                          "truncated (%s)", path, averr(e, eb, sizeof eb));
        goto fail;
    }
    if ((e = avformat_find_stream_info(r->fmt, NULL)) < 0) {
        st = nst_fail(msg, NST_ERR_FORMAT, "'%s': cannot read its streams (%s); is it a "
                      "truncated or damaged file?", path, averr(e, eb, sizeof eb));
        goto fail;
    }
    const AVCodec *codec = NULL;
    r->stream = -1;
    for (unsigned i = 0; i < r->fmt->nb_streams; i++) {
        AVStream *s = r->fmt->streams[i];
        if (s->codecpar->codec_type == AVMEDIA_TYPE_AUDIO) info->has_audio = 1;
        if (s->codecpar->codec_type == AVMEDIA_TYPE_VIDEO && r->stream < 0 &&
            !(s->disposition & AV_DISPOSITION_ATTACHED_PIC))
            r->stream = (int)i;
    }
    if (r->stream < 0) {
        st = nst_fail(msg, NST_ERR_FORMAT, "'%s' has no video stream (%s%u stream%s)", path,
                      info->has_audio ? "audio only, " : "", r->fmt->nb_streams,
                      r->fmt->nb_streams == 1 ? "" : "s");
        goto fail;
    }
    AVStream *vs = r->fmt->streams[r->stream];
    int w = vs->codecpar->width, h = vs->codecpar->height;
    if (w <= 0 || h <= 0) {
        st = nst_fail(msg, NST_ERR_FORMAT, "'%s': its video stream has no frame size (%dx%d); "
                      "is the file damaged?", path, w, h);
        goto fail;
    }
    if (w > NST_VIDEO_MAX_SIDE || h > NST_VIDEO_MAX_SIDE ||
        (size_t)w * h > NST_MAX_PIXELS) {
        st = nst_fail(msg, NST_ERR_TOO_LARGE, "'%s': frames of %dx%d are too large (at most "
                      "%d pixels a side and %zu megapixels); scale the video down first, e.g. "
                      "ffmpeg -i IN -vf scale=1920:-2 OUT", path, w, h, NST_VIDEO_MAX_SIDE,
                      NST_MAX_PIXELS / 1000000);
        goto fail;
    }
    codec = avcodec_find_decoder(vs->codecpar->codec_id);
    if (!codec) {
        st = nst_fail(msg, NST_ERR_FORMAT, "'%s': no decoder for its video codec (%s) in this "
                      "FFmpeg", path, avcodec_get_name(vs->codecpar->codec_id));
        goto fail;
    }
    r->dec = avcodec_alloc_context3(codec);
    r->pkt = av_packet_alloc();
    r->frame = av_frame_alloc();
    if (!r->dec || !r->pkt || !r->frame) {
        st = nst_fail(msg, NST_ERR_NOMEM, "video decoder");
        goto fail;
    }
    avcodec_parameters_to_context(r->dec, vs->codecpar);
    r->dec->thread_count = 0;
    if ((e = avcodec_open2(r->dec, codec, NULL)) < 0) {
        st = nst_fail(msg, NST_ERR_FORMAT, "'%s': cannot open its %s decoder (%s)", path,
                      codec->name, averr(e, eb, sizeof eb));
        goto fail;
    }
    AVRational fr = vs->avg_frame_rate.num > 0 && vs->avg_frame_rate.den > 0 ? vs->avg_frame_rate
                                                                             : vs->r_frame_rate;
    if (fr.num <= 0 || fr.den <= 0) fr = (AVRational){25, 1};
    av_reduce(&fr.num, &fr.den, fr.num, fr.den, 1 << 30);
    info->w = w;
    info->h = h;
    info->fps_num = fr.num;
    info->fps_den = fr.den;
    r->declared = vs->nb_frames > 0 ? (long)vs->nb_frames : 0;
    if (r->declared) {
        info->frames = r->declared;
    } else if (vs->duration > 0) {
        info->frames = (long)(av_q2d(vs->time_base) * vs->duration * av_q2d(fr) + 0.5);
    } else if (r->fmt->duration > 0) {
        info->frames = (long)(r->fmt->duration / (double)AV_TIME_BASE * av_q2d(fr) + 0.5);
    }
    snprintf(info->codec, sizeof info->codec, "%s", codec->name);
    *out = r;
    return NST_OK;
fail:
    nst_video_close(r);
    return st;
}

/* The decoded frame as an nst_image. */
static nst_status frame_image(nst_video_reader *r, nst_image **out, nst_msg *msg) {
    AVFrame *f = r->frame;
    int w = f->width, h = f->height;
    nst_status st;
    if (w != r->dec->width || h != r->dec->height || w <= 0 || h <= 0)
        return nst_fail(msg, NST_ERR_FORMAT, "'%s': frame %ld is %dx%d, the stream %dx%d; "
                        "frames that change size are not supported", r->name, r->decoded + 1,
                        w, h, r->dec->width, r->dec->height);
    r->sws = sws_getCachedContext(r->sws, w, h, (enum AVPixelFormat)f->format, w, h,
                                  AV_PIX_FMT_RGB24, SWS_BICUBIC | SWS_ACCURATE_RND, NULL, NULL,
                                  NULL);
    if (!r->sws)
        return nst_fail(msg, NST_ERR_FORMAT, "'%s': cannot convert its pixel format (%s) to "
                        "RGB", r->name, av_get_pix_fmt_name((enum AVPixelFormat)f->format));
    uint8_t *rgb = malloc((size_t)w * h * 3);
    if (!rgb) return nst_fail(msg, NST_ERR_NOMEM, "video frame");
    uint8_t *dst[4] = {rgb, NULL, NULL, NULL};
    int stride[4] = {3 * w, 0, 0, 0};
    sws_scale(r->sws, (const uint8_t *const *)f->data, f->linesize, 0, h, dst, stride);
    if ((st = nst_image_create(w, h, out, msg)) == NST_OK) {
        size_t hw = (size_t)w * h;
        for (size_t i = 0; i < hw; i++)
            for (int c = 0; c < 3; c++) (*out)->data[c * hw + i] = rgb[3 * i + c] / 255.0f;
    }
    free(rgb);
    return st;
}

/* The next frame into *out (converted), or only decoded when out is NULL;
 * *got = 0 after the last one. */
static nst_status next_frame(nst_video_reader *r, nst_image **out, int *got, nst_msg *msg) {
    char eb[128];
    int e;
    *got = 0;
    if (out) *out = NULL;
    for (;;) {
        if (r->drained) break;
        e = avcodec_receive_frame(r->dec, r->frame);
        if (e == 0) {
            nst_status st = out ? frame_image(r, out, msg) : NST_OK;
            av_frame_unref(r->frame);
            if (st == NST_OK) {
                r->decoded++;
                *got = 1;
            }
            return st;
        }
        if (e == AVERROR_EOF) {
            r->drained = 1;
            break;
        }
        if (e != AVERROR(EAGAIN))
            return nst_fail(msg, NST_ERR_FORMAT, "'%s': cannot decode frame %ld (%s); the file "
                            "is damaged or truncated", r->name, r->decoded + 1,
                            averr(e, eb, sizeof eb));
        if (r->eof) {
            avcodec_send_packet(r->dec, NULL);
            continue;
        }
        e = av_read_frame(r->fmt, r->pkt);
        if (e == AVERROR_EOF) {
            r->eof = 1;
            avcodec_send_packet(r->dec, NULL);
            continue;
        }
        if (e < 0)
            return nst_fail(msg, NST_ERR_FORMAT, "'%s': cannot read past frame %ld (%s); the "
                            "file is damaged or truncated", r->name, r->decoded,
                            averr(e, eb, sizeof eb));
        if (r->pkt->stream_index == r->stream) {
            e = avcodec_send_packet(r->dec, r->pkt);
            av_packet_unref(r->pkt);
            if (e < 0 && e != AVERROR(EAGAIN))
                return nst_fail(msg, NST_ERR_FORMAT, "'%s': cannot decode frame %ld (%s); the "
                                "file is damaged or truncated", r->name, r->decoded + 1,
                                averr(e, eb, sizeof eb));
        } else {
            av_packet_unref(r->pkt);
        }
    }
    if (r->decoded == 0)
        return nst_fail(msg, NST_ERR_FORMAT, "'%s' holds no video frames", r->name);
    if (r->declared && r->decoded < r->declared)
        return nst_fail(msg, NST_ERR_FORMAT, "'%s' ends after %ld of the %ld frames it "
                        "declares: the file is truncated", r->name, r->decoded, r->declared);
    return NST_OK;
}

nst_status nst_video_next(nst_video_reader *r, nst_image **out, nst_msg *msg) {
    int got;
    return next_frame(r, out, &got, msg);
}

nst_status nst_video_count(const char *path, long *frames, nst_msg *msg) {
    nst_video_reader *r = NULL;
    nst_video_info info;
    nst_status st = nst_video_open(path, &r, &info, msg);
    int got = 1;
    *frames = 0;
    while (st == NST_OK && got) st = next_frame(r, NULL, &got, msg);
    if (st == NST_OK) *frames = r->decoded;
    nst_video_close(r);
    return st;
}

/* ---- writing ---------------------------------------------------------------- */

struct nst_video_writer {
    char path[1024], tmp[1100];
    int pattern; /* an image sequence: one file per frame */
    int jpeg_quality;
    int w, h;    /* of the images given */
    int ew, eh;  /* encoded (even for 4:2:0) */
    AVFormatContext *oc;
    AVCodecContext *enc;
    AVStream *vs, *as;
    struct SwsContext *sws;
    AVFrame *frame;
    AVPacket *pkt;
    long frames;
    AVRational fps;
    /* audio copied from another file */
    AVFormatContext *ic;
    int ain;
    AVPacket *apkt;
    int apending, aeof;
    int64_t aoffset; /* the input's start, in its audio time base */
    int header, finished;
};

void nst_video_writer_free(nst_video_writer *wr) {
    if (!wr) return;
    if (wr->oc) {
        if (wr->oc->pb) avio_closep(&wr->oc->pb);
        avformat_free_context(wr->oc);
    }
    if (!wr->pattern && !wr->finished && wr->tmp[0]) unlink(wr->tmp);
    avcodec_free_context(&wr->enc);
    sws_freeContext(wr->sws);
    av_frame_free(&wr->frame);
    av_packet_free(&wr->pkt);
    av_packet_free(&wr->apkt);
    avformat_close_input(&wr->ic);
    free(wr);
}

/* The encoder: H.264 where present and accepted, else FFV1, else MPEG-4. */
static const AVCodec *pick_encoder(const AVOutputFormat *of, const char *want, char *label,
                                   size_t len) {
    static const struct {
        const char *key, *name;
        const char *label;
    } c[] = {{"h264", "libx264", "H.264 (libx264)"}, {"ffv1", "ffv1", "FFV1 (lossless)"},
             {"mpeg4", "mpeg4", "MPEG-4 part 2"}};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        if (want && strcmp(want, c[i].key)) continue;
        const AVCodec *e = avcodec_find_encoder_by_name(c[i].name);
        if (e && avformat_query_codec(of, e->id, FF_COMPLIANCE_NORMAL) == 1) {
            snprintf(label, len, "%s", c[i].label);
            return e;
        }
    }
    return NULL;
}

static nst_status write_packets(nst_video_writer *wr, nst_msg *msg);

/* Audio packets up to time t seconds (all of them for t < 0). */
static nst_status pump_audio(nst_video_writer *wr, double t, nst_msg *msg) {
    char eb[128];
    if (!wr->ic) return NST_OK;
    AVStream *ist = wr->ic->streams[wr->ain];
    for (;;) {
        if (!wr->apending) {
            if (wr->aeof) return NST_OK;
            int e = av_read_frame(wr->ic, wr->apkt);
            if (e < 0) {
                wr->aeof = 1; /* a damaged tail of audio ends the audio, not the video */
                return NST_OK;
            }
            if (wr->apkt->stream_index != wr->ain) {
                av_packet_unref(wr->apkt);
                continue;
            }
            if (wr->apkt->pts != AV_NOPTS_VALUE) wr->apkt->pts -= wr->aoffset;
            if (wr->apkt->dts != AV_NOPTS_VALUE) wr->apkt->dts -= wr->aoffset;
            wr->apending = 1;
        }
        int64_t ts = wr->apkt->dts != AV_NOPTS_VALUE ? wr->apkt->dts : wr->apkt->pts;
        if (t >= 0 && ts != AV_NOPTS_VALUE && ts * av_q2d(ist->time_base) > t) return NST_OK;
        av_packet_rescale_ts(wr->apkt, ist->time_base, wr->as->time_base);
        wr->apkt->stream_index = wr->as->index;
        wr->apkt->pos = -1;
        int e = av_interleaved_write_frame(wr->oc, wr->apkt);
        wr->apending = 0;
        av_packet_unref(wr->apkt);
        if (e < 0)
            return nst_fail(msg, NST_ERR_IO, "'%s': cannot write audio (%s)", wr->path,
                            averr(e, eb, sizeof eb));
    }
}

/* Opens the first audio stream of `from` for copying into wr, when the
 * container takes its codec; says what happened in note. */
static void open_audio(nst_video_writer *wr, const char *from, char *note, size_t len) {
    if (avformat_open_input(&wr->ic, from, NULL, NULL) < 0 ||
        avformat_find_stream_info(wr->ic, NULL) < 0) {
        avformat_close_input(&wr->ic);
        return;
    }
    int a = av_find_best_stream(wr->ic, AVMEDIA_TYPE_AUDIO, -1, -1, NULL, 0);
    if (a < 0) {
        avformat_close_input(&wr->ic);
        return;
    }
    AVStream *ist = wr->ic->streams[a];
    const char *cname = avcodec_get_name(ist->codecpar->codec_id);
    size_t used = strlen(note);
    if (avformat_query_codec(wr->oc->oformat, ist->codecpar->codec_id, FF_COMPLIANCE_NORMAL) !=
        1) {
        snprintf(note + used, len - used, "; audio (%s) left out: this container does not "
                 "take it (try .mkv)", cname);
        avformat_close_input(&wr->ic);
        return;
    }
    wr->as = avformat_new_stream(wr->oc, NULL);
    wr->apkt = av_packet_alloc();
    if (!wr->as || !wr->apkt || avcodec_parameters_copy(wr->as->codecpar, ist->codecpar) < 0) {
        avformat_close_input(&wr->ic);
        return;
    }
    wr->as->codecpar->codec_tag = 0;
    wr->as->time_base = ist->time_base;
    wr->ain = a;
    wr->aoffset = wr->ic->start_time != AV_NOPTS_VALUE
                      ? av_rescale_q(wr->ic->start_time, AV_TIME_BASE_Q, ist->time_base)
                      : 0;
    snprintf(note + used, len - used, ", audio copied (%s)", cname);
}

nst_status nst_video_writer_open(const char *path, int w, int h, int fps_num, int fps_den,
                                 const char *codec_name, const char *audio_from, nst_video_writer **out, char *note,
                                 size_t note_len, nst_msg *msg) {
    char eb[128], label[64], notebuf[256] = "";
    nst_status st = NST_OK;
    int e;
    if (!out || !path) return nst_fail(msg, NST_ERR_INVALID_ARG, "nst_video_writer_open: NULL");
    *out = NULL;
    if (w < 2 || h < 2 || fps_num <= 0 || fps_den <= 0)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "video of %dx%d at %d/%d frames per second",
                        w, h, fps_num, fps_den);
    nst_video_writer *wr = calloc(1, sizeof *wr);
    if (!wr) return nst_fail(msg, NST_ERR_NOMEM, "video writer");
    snprintf(wr->path, sizeof wr->path, "%s", path);
    wr->w = w;
    wr->h = h;
    wr->fps = (AVRational){fps_num, fps_den};
    if (nst_video_is_pattern(path)) {
        wr->pattern = 1;
        snprintf(notebuf, sizeof notebuf, "one image per frame");
        goto done;
    }
    av_log_set_level(AV_LOG_QUIET);
    const AVOutputFormat *of = av_guess_format(NULL, path, NULL);
    if (!of || (of->flags & AVFMT_NOFILE) || of->video_codec == AV_CODEC_ID_NONE) {
        st = nst_fail(msg, NST_ERR_INVALID_ARG, "'%s': cannot tell a video container from the "
                      "name; end it in .mp4, .mkv, .mov or .avi, or give an image sequence "
                      "such as frames/%%05d.png", path);
        goto fail;
    }
    if (codec_name && strcmp(codec_name, "h264") && strcmp(codec_name, "ffv1") &&
        strcmp(codec_name, "mpeg4")) {
        st = nst_fail(msg, NST_ERR_INVALID_ARG, "codec '%s': choose h264, ffv1 or mpeg4",
                      codec_name);
        goto fail;
    }
    const AVCodec *codec = pick_encoder(of, codec_name, label, sizeof label);
    if (!codec && codec_name) {
        st = nst_fail(msg, NST_ERR_INVALID_ARG, "'%s': this FFmpeg cannot write %s into the %s "
                      "container; try another codec or .mkv", path, codec_name, of->name);
        goto fail;
    }
    if (!codec) {
        st = nst_fail(msg, NST_ERR_INVALID_ARG, "'%s': this FFmpeg has no encoder (H.264, FFV1, "
                      "MPEG-4) for the %s container; try .mkv", path, of->name);
        goto fail;
    }
    /* the temporary file beside the output */
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path + 1) : 0;
    snprintf(wr->tmp, sizeof wr->tmp, "%.*s.%s.XXXXXX", dirlen, path,
             slash ? slash + 1 : path);
    int fd = mkstemp(wr->tmp);
    if (fd < 0) {
        st = nst_fail(msg, NST_ERR_IO, "cannot create a file beside '%s': %s", path,
                      strerror(errno));
        wr->tmp[0] = 0;
        goto fail;
    }
    close(fd);
    if ((e = avformat_alloc_output_context2(&wr->oc, of, NULL, wr->tmp)) < 0) {
        st = nst_fail(msg, NST_ERR_NOMEM, "'%s': %s", path, averr(e, eb, sizeof eb));
        goto fail;
    }
    int is420 = codec->id != AV_CODEC_ID_FFV1;
    wr->ew = is420 ? w & ~1 : w;
    wr->eh = is420 ? h & ~1 : h;
    wr->enc = avcodec_alloc_context3(codec);
    wr->vs = avformat_new_stream(wr->oc, NULL);
    wr->frame = av_frame_alloc();
    wr->pkt = av_packet_alloc();
    if (!wr->enc || !wr->vs || !wr->frame || !wr->pkt) {
        st = nst_fail(msg, NST_ERR_NOMEM, "video encoder");
        goto fail;
    }
    wr->enc->width = wr->ew;
    wr->enc->height = wr->eh;
    wr->enc->time_base = (AVRational){fps_den, fps_num};
    wr->enc->framerate = wr->fps;
    wr->enc->pix_fmt = is420 ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_BGR0;
    wr->enc->thread_count = 0;
    if (codec->id == AV_CODEC_ID_H264) {
        av_opt_set(wr->enc->priv_data, "crf", "18", 0);
        av_opt_set(wr->enc->priv_data, "preset", "medium", 0);
    } else if (codec->id == AV_CODEC_ID_FFV1) {
        wr->enc->level = 3; /* slices, so that it may use threads */
    } else if (codec->id == AV_CODEC_ID_MPEG4) {
        wr->enc->flags |= AV_CODEC_FLAG_QSCALE;
        wr->enc->global_quality = FF_QP2LAMBDA * 2;
    }
    if (of->flags & AVFMT_GLOBALHEADER) wr->enc->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((e = avcodec_open2(wr->enc, codec, NULL)) < 0) {
        st = nst_fail(msg, NST_ERR_FORMAT, "'%s': cannot open the %s encoder (%s)", path,
                      codec->name, averr(e, eb, sizeof eb));
        goto fail;
    }
    avcodec_parameters_from_context(wr->vs->codecpar, wr->enc);
    wr->vs->time_base = wr->enc->time_base;
    wr->vs->avg_frame_rate = wr->fps;
    snprintf(notebuf, sizeof notebuf, "%s", label);
    if (audio_from) open_audio(wr, audio_from, notebuf, sizeof notebuf);
    wr->frame->format = wr->enc->pix_fmt;
    wr->frame->width = wr->ew;
    wr->frame->height = wr->eh;
    if (av_frame_get_buffer(wr->frame, 0) < 0) {
        st = nst_fail(msg, NST_ERR_NOMEM, "video frame");
        goto fail;
    }
    wr->sws = sws_getContext(wr->ew, wr->eh, AV_PIX_FMT_RGB24, wr->ew, wr->eh, wr->enc->pix_fmt,
                             SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL,
                             NULL);
    if (!wr->sws) {
        st = nst_fail(msg, NST_ERR_FORMAT, "cannot convert RGB for the %s encoder",
                      codec->name);
        goto fail;
    }
    if ((e = avio_open(&wr->oc->pb, wr->tmp, AVIO_FLAG_WRITE)) < 0) {
        st = nst_fail(msg, NST_ERR_IO, "cannot write beside '%s': %s", path,
                      averr(e, eb, sizeof eb));
        goto fail;
    }
    if ((e = avformat_write_header(wr->oc, NULL)) < 0) {
        st = nst_fail(msg, NST_ERR_IO, "'%s': cannot write the header (%s)", path,
                      averr(e, eb, sizeof eb));
        goto fail;
    }
    wr->header = 1;
done:
    if (note && note_len) snprintf(note, note_len, "%s", notebuf);
    *out = wr;
    return NST_OK;
fail:
    nst_video_writer_free(wr);
    return st;
}

/* Drains the encoder's packets into the file. */
static nst_status write_packets(nst_video_writer *wr, nst_msg *msg) {
    char eb[128];
    for (;;) {
        int e = avcodec_receive_packet(wr->enc, wr->pkt);
        if (e == AVERROR(EAGAIN) || e == AVERROR_EOF) return NST_OK;
        if (e < 0)
            return nst_fail(msg, NST_ERR_FORMAT, "'%s': the encoder failed (%s)", wr->path,
                            averr(e, eb, sizeof eb));
        av_packet_rescale_ts(wr->pkt, wr->enc->time_base, wr->vs->time_base);
        wr->pkt->stream_index = wr->vs->index;
        e = av_interleaved_write_frame(wr->oc, wr->pkt);
        av_packet_unref(wr->pkt);
        if (e < 0)
            return nst_fail(msg, NST_ERR_IO, "'%s': cannot write (%s)", wr->path,
                            averr(e, eb, sizeof eb));
    }
}

void nst_video_writer_jpeg_quality(nst_video_writer *wr, int quality) {
    if (wr && quality >= 1 && quality <= 100) wr->jpeg_quality = quality;
}

nst_status nst_video_writer_add(nst_video_writer *wr, const nst_image *img, nst_msg *msg) {
    char eb[128];
    nst_status st;
    if (!wr || !img || !img->data)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "nst_video_writer_add: NULL");
    if (img->w != wr->w || img->h != wr->h)
        return nst_fail(msg, NST_ERR_INVALID_ARG, "frame of %dx%d for a %dx%d video", img->w,
                        img->h, wr->w, wr->h);
    if (wr->pattern) {
        char name[1100];
        snprintf(name, sizeof name, wr->path, (int)(wr->frames + 1));
        if ((st = nst_image_write(name, img, wr->jpeg_quality, 0, msg)) != NST_OK) return st;
        wr->frames++;
        return NST_OK;
    }
    /* audio up to this frame's end, then the frame */
    if ((st = pump_audio(wr, (wr->frames + 1) / av_q2d(wr->fps), msg)) != NST_OK) return st;
    if (av_frame_make_writable(wr->frame) < 0) return nst_fail(msg, NST_ERR_NOMEM, "frame");
    uint8_t *rgb = malloc((size_t)wr->ew * wr->eh * 3);
    if (!rgb) return nst_fail(msg, NST_ERR_NOMEM, "video frame");
    size_t hw = (size_t)img->w * img->h;
    for (int y = 0; y < wr->eh; y++)
        for (int x = 0; x < wr->ew; x++)
            for (int c = 0; c < 3; c++) {
                float v = img->data[c * hw + (size_t)y * img->w + x];
                v = v > 0 ? (v < 1 ? v : 1) : 0; /* NaN -> 0 */
                rgb[((size_t)y * wr->ew + x) * 3 + c] = (uint8_t)(v * 255.0f + 0.5f);
            }
    const uint8_t *src[4] = {rgb, NULL, NULL, NULL};
    int stride[4] = {3 * wr->ew, 0, 0, 0};
    sws_scale(wr->sws, src, stride, 0, wr->eh, wr->frame->data, wr->frame->linesize);
    free(rgb);
    wr->frame->pts = wr->frames;
    int e = avcodec_send_frame(wr->enc, wr->frame);
    if (e < 0)
        return nst_fail(msg, NST_ERR_FORMAT, "'%s': the encoder refused frame %ld (%s)",
                        wr->path, wr->frames + 1, averr(e, eb, sizeof eb));
    wr->frames++;
    return write_packets(wr, msg);
}

nst_status nst_video_writer_finish(nst_video_writer *wr, nst_msg *msg) {
    char eb[128];
    nst_status st;
    int e;
    if (!wr) return nst_fail(msg, NST_ERR_INVALID_ARG, "nst_video_writer_finish: NULL");
    if (wr->pattern) {
        wr->finished = 1;
        return NST_OK;
    }
    if (wr->frames == 0) return nst_fail(msg, NST_ERR_INVALID_ARG, "'%s': no frames", wr->path);
    avcodec_send_frame(wr->enc, NULL);
    if ((st = write_packets(wr, msg)) != NST_OK) return st;
    if ((st = pump_audio(wr, -1, msg)) != NST_OK) return st;
    if ((e = av_write_trailer(wr->oc)) < 0)
        return nst_fail(msg, NST_ERR_IO, "'%s': cannot finish the file (%s)", wr->path,
                        averr(e, eb, sizeof eb));
    if ((e = avio_closep(&wr->oc->pb)) < 0)
        return nst_fail(msg, NST_ERR_IO, "'%s': cannot write (%s)", wr->path,
                        averr(e, eb, sizeof eb));
    int fd = open(wr->tmp, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    struct stat sb;
    if (stat(wr->path, &sb) == 0) chmod(wr->tmp, sb.st_mode & 07777);
    else {
        mode_t um = umask(0);
        umask(um);
        chmod(wr->tmp, 0666 & ~um);
    }
    if (rename(wr->tmp, wr->path) != 0)
        return nst_fail(msg, NST_ERR_IO, "cannot move the video into '%s': %s", wr->path,
                        strerror(errno));
    wr->finished = 1;
    return NST_OK;
}
