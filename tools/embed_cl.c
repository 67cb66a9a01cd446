/* embed_cl: turn an OpenCL source file into a C header holding it as a byte array.
 * A byte array, not a string literal: C99 only promises literals up to 4095 bytes.
 * usage: embed_cl INPUT.cl OUTPUT.h SYMBOL */
#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s INPUT.cl OUTPUT.h SYMBOL\n", argv[0]);
        return 2;
    }
    FILE *in = fopen(argv[1], "rb");
    if (!in) { perror(argv[1]); return 1; }
    FILE *out = fopen(argv[2], "wb");
    if (!out) { perror(argv[2]); fclose(in); return 1; }
    fprintf(out, "/* generated from %s by tools/embed_cl.c; do not edit */\n", argv[1]);
    fprintf(out, "static const char %s[] = {", argv[3]);
    int c;
    unsigned long n = 0;
    while ((c = fgetc(in)) != EOF) {
        fprintf(out, "%s0x%02x,", (n++ % 16) ? "" : "\n    ", (unsigned)c);
    }
    fprintf(out, "\n    0x00\n};\n");
    fclose(in);
    int rc = ferror(out) ? 1 : 0;
    if (fclose(out) != 0) rc = 1;
    return rc;
}
