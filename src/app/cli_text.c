/* cli_text.c: helpers the commands share (cli.h): JSON string escaping,
 * durations, the monotonic clock, the usage-error line and the device list
 * with its error message. */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "cli.h"
#include "nst.h"

const char *cli_js(const char *s) {
    static char bufs[4][2048];
    static int k = 0;
    char *b = bufs[k++ % 4];
    size_t n = 0;
    for (; *s && n + 8 < sizeof bufs[0]; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            b[n++] = '\\';
            b[n++] = (char)c;
        } else if (c < 0x20) {
            n += (size_t)snprintf(b + n, sizeof bufs[0] - n, "\\u%04x", c);
        } else {
            b[n++] = (char)c;
        }
    }
    b[n] = 0;
    return b;
}

void cli_fmt_duration(double s, char *buf, size_t len) {
    if (!(s >= 0) || s > 1e7) {
        snprintf(buf, len, "?");
    } else if (s < 60) {
        snprintf(buf, len, "%.0fs", s);
    } else if (s < 3600) {
        snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    } else {
        snprintf(buf, len, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
    }
}

double cli_mono_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

int cli_usage_error(const char *command, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", command);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see %s --help)\n", command);
    va_end(ap);
    return 2;
}

int cli_devices_list(const struct nst_settings *set, struct nst_device_info **devs, int *n) {
    nst_msg msg = {{0}};
    if (nst_devices_list_with(set, devs, n, &msg) == NST_OK) return 0;
    fprintf(stderr, "nst: %s\n", msg.text);
    return -1;
}
