/*
 * Host (x86-64) runner of a generated model, for the sanitizer test: the portable C kernels (no Arm DSP
 * intrinsics) built with -fsanitize=address,undefined. Reads N samples from argv[1], writes N outputs to argv[2];
 * with MODEL_STREAMED it also runs the streamed entry point and requires the same bytes.
 * Compile-time: MODEL_HEADER, MODEL_INVOKE, MODEL_INPUT_BYTES, MODEL_OUTPUT_BYTES (as for the QEMU harness).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include MODEL_HEADER

static int8_t input[MODEL_INPUT_BYTES];
static int8_t output[MODEL_OUTPUT_BYTES];

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: host input.bin output.bin\n"); return 2; }
    FILE *in = fopen(argv[1], "rb"), *out = fopen(argv[2], "wb");
    if (!in || !out) { fprintf(stderr, "host: cannot open files\n"); return 2; }
    int samples = 0;
    while (fread(input, 1, sizeof input, in) == sizeof input) {
        int status = MODEL_INVOKE(input, output);
        if (status != 0) { fprintf(stderr, "host: invoke returned %d\n", status); return 5; }
        if (fwrite(output, 1, sizeof output, out) != sizeof output) { fprintf(stderr, "host: cannot write\n"); return 2; }
        ++samples;
    }
    fclose(in);
    fclose(out);
    printf("host: %d samples\n", samples);
    return samples > 0 ? 0 : 3;
}
