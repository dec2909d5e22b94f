/* A stand-in "model" whose invoke checks the 3x3 depthwise ring kernels on random cases (dwcheck.c). */
#ifndef DWCHECK_H
#define DWCHECK_H
#include <stdint.h>
#define DWCHECK_INPUT_BYTES 4
#define DWCHECK_OUTPUT_BYTES 8
#define DWCHECK_ARENA_BYTES 16
extern int8_t dwcheck_arena[DWCHECK_ARENA_BYTES];
/* input: a 32-bit seed; output: mismatching cases (int32), then the bits of what the cases exercised (DWCHECK_*) */
int dwcheck_invoke(const int8_t *input, int8_t *output);
#define DWCHECK_RING 1        /* the ring of three rows */
#define DWCHECK_TALL 2        /* the tall ring */
#define DWCHECK_STRIDE2 4
#define DWCHECK_PRESHIFT 8    /* a high-word layer with a shift below 32 */
#define DWCHECK_SHIFT32 16    /* a high-word layer with every shift 32 (no pre-shift) */
#define DWCHECK_CLAMP 32      /* act_min above -128 or act_max below 127 */
#define DWCHECK_PATCH 64      /* a region inside the tensor (a patch) */
#define DWCHECK_TAIL 128      /* a channel count that is not a multiple of 4 */
#define DWCHECK_64BIT 256     /* high_word 0: the 64-bit requantization */
#define DWCHECK_COMPACT1 512  /* compact rows at stride 1 */
#endif
