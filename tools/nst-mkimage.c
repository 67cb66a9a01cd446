/* nst-mkimage: writes synthetic test pictures and reports image sizes, so
 * tests and demos need no image files from elsewhere.
 *   nst-mkimage --pattern photo|stripes|noise --size WxH [--seed N] --out FILE
 *   nst-mkimage --info FILE      prints "W H" */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nst.h"

static float pattern(const char *kind, int c, int x, int y, int w, int h, unsigned *seed) {
    if (!strcmp(kind, "stripes")) {
        double s = 0.5 + 0.5 * sin((x + 2 * y) * 0.35);
        return (float)(c == 0 ? 0.15 + 0.8 * s : c == 1 ? 0.6 * (1 - s) : 0.3 + 0.5 * s);
    }
    if (!strcmp(kind, "noise")) {
        *seed = *seed * 1103515245u + 12345u;
        return (float)((*seed >> 8) & 0xffff) / 65535.0f;
    }
    /* photo: a sky gradient, a sun and a hill */
    double hill = h * (0.65 + 0.1 * sin(x * 6.0 / w));
    double dx = x - w * 0.7, dy = y - h * 0.3;
    if (dx * dx + dy * dy < (w * w) / 100.0) return (float)(c == 2 ? 0.2 : 0.95);
    if (y > hill) return (float)(c == 1 ? 0.5 - 0.2 * (y - hill) / h : 0.2);
    return (float)(c == 2 ? 0.9 : 0.4 + 0.4 * y / h);
}

int main(int argc, char **argv) {
    const char *kind = "photo", *out = NULL, *info = NULL;
    int w = 64, h = 48;
    unsigned seed = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--pattern")) kind = argv[i + 1];
        else if (!strcmp(argv[i], "--size") && sscanf(argv[i + 1], "%dx%d", &w, &h) == 2) {}
        else if (!strcmp(argv[i], "--seed")) seed = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--out")) out = argv[i + 1];
        else if (!strcmp(argv[i], "--info")) info = argv[i + 1];
        else {
            fprintf(stderr, "nst-mkimage: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    nst_msg msg = {{0}};
    if (info) {
        nst_image *img = NULL;
        if (nst_image_read(info, 0, &img, &msg) != NST_OK) {
            fprintf(stderr, "nst-mkimage: %s\n", msg.text);
            return 1;
        }
        printf("%d %d\n", img->w, img->h);
        nst_image_free(img);
        return 0;
    }
    if (!out || w < 1 || h < 1 || w > 16384 || h > 16384) {
        fprintf(stderr, "usage: nst-mkimage --pattern photo|stripes|noise --size WxH --out FILE\n"
                        "       nst-mkimage --info FILE\n");
        return 2;
    }
    nst_image *img = NULL;
    if (nst_image_create(w, h, &img, &msg) != NST_OK) {
        fprintf(stderr, "nst-mkimage: %s\n", msg.text);
        return 1;
    }
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                img->data[((size_t)c * h + y) * w + x] = pattern(kind, c, x, y, w, h, &seed);
    int rc = 0;
    if (nst_image_write(out, img, 95, 0, &msg) != NST_OK) {
        fprintf(stderr, "nst-mkimage: %s\n", msg.text);
        rc = 1;
    }
    nst_image_free(img);
    return rc;
}
