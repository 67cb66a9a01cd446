/* fuzz_image.c: libFuzzer target for the image reader (PNG and JPEG from
 * memory), followed by a resize and the colour helpers on what it decodes.
 * Not part of `make test`; build and run with clang:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc/runtime -Isrc/io \
 *       $(pkg-config --cflags libpng libjpeg OpenCL) -o build/fuzz_image \
 *       tests/fuzz/fuzz_image.c src/io/image.c src/io/image_png.c src/io/image_jpeg.c \
 *       src/io/resize.c src/io/color.c src/runtime/status.c $(pkg-config --libs libpng libjpeg) -lm
 *   mkdir -p build/fuzz_corpus
 *   build/fuzz_image -max_total_time=30 build/fuzz_corpus tests/fuzz/corpus_image
 *
 * A crash found here becomes a file in tests/bad/ and a case in
 * tests/test_image.c. */
#include <stdint.h>
#include <string.h>

#include "image.h"

/* Small enough that every input decodes in milliseconds. */
#define FUZZ_MAX_PIXELS (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nst_image *img = NULL, *small = NULL, *pc = NULL;
    nst_msg msg;
    memset(&msg, 0, sizeof msg);
    nst_status st = nst_image_read_memory(data, size, FUZZ_MAX_PIXELS, &img, &msg);
    if (st != NST_OK) {
        /* every failure leaves a message and no image */
        if (img || msg.text[0] == 0 || memchr(msg.text, 0, sizeof msg.text) == NULL)
            __builtin_trap();
        return 0;
    }
    if (!img || img->w < 1 || img->h < 1 || (size_t)img->w * img->h > FUZZ_MAX_PIXELS)
        __builtin_trap();
    for (size_t i = 0; i < 3 * (size_t)img->w * img->h; i++)
        if (!(img->data[i] >= 0.0f && img->data[i] <= 1.0f)) __builtin_trap();
    int w, h;
    nst_image_fit_size(img->w, img->h, 7, &w, &h);
    if (nst_image_resize(img, w, h, &small, &msg) == NST_OK)
        nst_image_preserve_colors(small, img, &pc, &msg);
    nst_image_free(pc);
    nst_image_free(small);
    nst_image_free(img);
    return 0;
}
