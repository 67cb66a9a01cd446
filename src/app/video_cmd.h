/* video_cmd.h: `nst video` (video_cmd.c). */
#ifndef NST_VIDEO_CMD_H
#define NST_VIDEO_CMD_H

#include "nst.h"

/* argv[0] is "video"; returns the exit status. */
int cmd_video(int argc, char **argv, const nst_settings *set);

#endif
