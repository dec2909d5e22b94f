/*
 * MCUNetV2 verification harness: runs a generated model library on QEMU mps2-an500 through semihosting.
 *
 * Compile-time configuration (passed by QemuHarness as -D options):
 *   MODEL_HEADER        the library header, as a string literal:  -DMODEL_HEADER="vww.h"
 *   MODEL_INVOKE        int MODEL_INVOKE(const int8_t *input, int8_t *output)      e.g. vww_invoke
 *   MODEL_INPUT_BYTES   bytes of one input sample                                   e.g. VWW_INPUT_BYTES
 *   MODEL_OUTPUT_BYTES  bytes of one output                                         e.g. VWW_OUTPUT_BYTES
 *   MODEL_ARENA_BYTES   size of the library's static arena                          e.g. VWW_ARENA_BYTES
 *   MODEL_ARENA         the arena array (int8_t[], non-static in the library)       e.g. vww_arena
 *   MODEL_PROFILE, MODEL_LAYER_COUNT  the library's per-layer tick array (<prefix>_profile, present only when it was
 *                       compiled with -DMCU_PROFILE; weak here) and its length: sample 0's ticks per layer are written
 *                       to stats.txt as layer.<i>=<ticks>.
 *   MODEL_INVOKE_STREAMED  optional: int f(read_fn, void *ctx, int8_t *output), the streamed-input entry point
 *                       (StreamInput), with MODEL_INPUT_WIDTH and MODEL_INPUT_CHANNELS. Each sample is then also
 *                       run through it, reading regions of the sample, and its output must equal the plain one.
 *
 * Files (relative to QEMU's working directory):
 *   input.bin   N samples of MODEL_INPUT_BYTES, concatenated (N >= 1)
 *   output.bin  written: N outputs of MODEL_OUTPUT_BYTES, concatenated
 *   stats.txt   written: key=value lines: ticks.<i> per sample, then samples, input_bytes, output_bytes,
 *               arena_bytes, arena_high_water, stack_high_water and finally done=1
 *
 * Measurements:
 *   arena high-water  The arena is painted before every invocation and afterwards the highest byte offset that no
 *                     longer holds the paint is found. Sample 0 is run twice, painted with 0xA5 and then 0x5A, so
 *                     its footprint is exact (a deterministic write cannot equal both patterns). Later samples
 *                     alternate the patterns; for them the top written byte is missed only if its final value
 *                     equals that run's pattern, so the reported figure can undercount by a few bytes only when
 *                     a later sample reaches further into the arena than sample 0. Running sample 0 twice also
 *                     checks that the output does not depend on stale arena contents: differing outputs fail.
 *   stack high-water  Bytes of stack used by one invoke call (measured from the SP at the call): the stack below
 *                     the current SP is painted with a word pattern before each call and scanned afterwards.
 *   ticks             CMSDK timer0 (25 MHz) ticks spent in each invoke; under `-icount shift=0` one tick is
 *                     40 guest instructions.
 *
 * Exit status: 0 on success; non-zero when a file cannot be opened/read/written, input.bin is empty or not a
 * multiple of MODEL_INPUT_BYTES, invoke returns non-zero, outputs of the repeated sample differ, the streamed
 * entry point gives other bytes than the plain one (7), or the stack overflows its painted region.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include MODEL_HEADER

#ifndef MODEL_INVOKE
#error "MODEL_INVOKE is not defined"
#endif
#ifndef MODEL_INPUT_BYTES
#error "MODEL_INPUT_BYTES is not defined"
#endif
#ifndef MODEL_OUTPUT_BYTES
#error "MODEL_OUTPUT_BYTES is not defined"
#endif
#ifndef MODEL_ARENA_BYTES
#error "MODEL_ARENA_BYTES is not defined"
#endif
#ifndef MODEL_ARENA
#error "MODEL_ARENA is not defined"
#endif

extern int8_t MODEL_ARENA[];
#if defined(MODEL_PROFILE) && defined(MODEL_LAYER_COUNT)
extern uint32_t MODEL_PROFILE[] __attribute__((weak));
#endif

extern uint32_t __stack_bottom[];
extern uint32_t __stack_top[];

#define ARENA_PATTERN_A 0xA5u
#define ARENA_PATTERN_B 0x5Au
#define STACK_PATTERN 0xDEADBEEFu

/* CMSDK APB timer 0. */
#define TIMER0_CTRL (*(volatile uint32_t *)0x40000000u)
#define TIMER0_VALUE (*(volatile uint32_t *)0x40000004u)
#define TIMER0_RELOAD (*(volatile uint32_t *)0x40000008u)

/* Global on purpose: QemuHarness reads the sizes of these symbols from harness_main.o to learn the model's
   input/output sizes before running QEMU. */
int8_t harness_input[MODEL_INPUT_BYTES] __attribute__((aligned(16)));
int8_t harness_output[MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));
static int8_t first_output[MODEL_OUTPUT_BYTES] __attribute__((aligned(16)));

static uint32_t arena_high_water;
static uint32_t stack_high_water;

static void timer_start(void)
{
    TIMER0_CTRL = 0;
    TIMER0_RELOAD = 0xFFFFFFFFu;
    TIMER0_VALUE = 0xFFFFFFFFu;
    TIMER0_CTRL = 1;
}

static inline uint32_t current_sp(void)
{
    uint32_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    return sp;
}

/* Paints [__stack_bottom, own SP). Everything this function keeps lives at or above its SP. */
static void __attribute__((noinline)) paint_stack(void)
{
    uint32_t limit = current_sp() & ~3u;
    for (volatile uint32_t *p = __stack_bottom; (uint32_t)p < limit; ++p) *p = STACK_PATTERN;
}

/* Lowest stack address whose word no longer holds the paint. */
static uint32_t lowest_touched_stack(void)
{
    const volatile uint32_t *p = __stack_bottom;
    while ((uint32_t)p < (uint32_t)__stack_top && *p == STACK_PATTERN) ++p;
    return (uint32_t)p;
}

static void paint_arena(uint8_t pattern)
{
    memset(MODEL_ARENA, pattern, (size_t)MODEL_ARENA_BYTES);
}

static void scan_arena(uint8_t pattern)
{
    const volatile uint8_t *a = (const volatile uint8_t *)MODEL_ARENA;
    uint32_t n = (uint32_t)MODEL_ARENA_BYTES;
    while (n > arena_high_water && a[n - 1] == pattern) --n;
    if (n > arena_high_water) arena_high_water = n;
}

static int invoke_plain(void) { return MODEL_INVOKE(harness_input, harness_output); }

#ifdef MODEL_INVOKE_STREAMED
static uint32_t streamed_reads;

/* The read callback of the streamed entry point: copies a region of the current sample. */
static int read_region(void *ctx, int y0, int x0, int h, int w, int8_t *dst)
{
    (void)ctx;
    if (y0 < 0 || x0 < 0 || h < 0 || w < 0 || (uint32_t)(y0 + h) * MODEL_INPUT_WIDTH * MODEL_INPUT_CHANNELS > (uint32_t)MODEL_INPUT_BYTES
        || x0 + w > MODEL_INPUT_WIDTH)
        return 99;
    for (int y = 0; y < h; ++y)
        memcpy(dst + (size_t)y * w * MODEL_INPUT_CHANNELS,
               harness_input + ((size_t)(y0 + y) * MODEL_INPUT_WIDTH + x0) * MODEL_INPUT_CHANNELS, (size_t)w * MODEL_INPUT_CHANNELS);
    ++streamed_reads;
    return 0;
}

static int invoke_streamed(void) { return MODEL_INVOKE_STREAMED(read_region, 0, harness_output); }
#endif

/* One measured invocation: paint, time, invoke, scan. Returns the invoke status, or exits on stack overflow. */
static int run_one(int (*invoke)(void), uint8_t arena_pattern, uint32_t *ticks)
{
#if defined(MODEL_PROFILE) && defined(MODEL_LAYER_COUNT)
    if (MODEL_PROFILE) memset(MODEL_PROFILE, 0, sizeof(uint32_t) * (size_t)MODEL_LAYER_COUNT);
#endif
    paint_arena(arena_pattern);
    paint_stack();
    uint32_t sp_at_call = current_sp();
    uint32_t start = TIMER0_VALUE;
    int status = invoke();
    uint32_t stop = TIMER0_VALUE;
    *ticks = start - stop;
    uint32_t lowest = lowest_touched_stack();
    if (lowest <= (uint32_t)__stack_bottom) {
        printf("harness: stack overflow (invoke used all %lu painted bytes)\n",
               (unsigned long)(sp_at_call - (uint32_t)__stack_bottom));
        exit(4);
    }
    if (sp_at_call > lowest && sp_at_call - lowest > stack_high_water) stack_high_water = sp_at_call - lowest;
    scan_arena(arena_pattern);
    return status;
}

int main(void)
{
    FILE *in = fopen("input.bin", "rb");
    if (!in) {
        printf("harness: cannot open input.bin\n");
        return 2;
    }
    FILE *out = fopen("output.bin", "wb");
    if (!out) {
        printf("harness: cannot create output.bin\n");
        fclose(in);
        return 2;
    }

    FILE *stats = fopen("stats.txt", "w");
    if (!stats) {
        printf("harness: cannot create stats.txt\n");
        return 2;
    }

    timer_start();

    uint32_t samples = 0;
    for (;;) {
        size_t got = fread(harness_input, 1, (size_t)MODEL_INPUT_BYTES, in);
        if (got == 0) break;
        if (got != (size_t)MODEL_INPUT_BYTES) {
            printf("harness: input.bin ends with a partial sample (%lu of %lu bytes)\n",
                   (unsigned long)got, (unsigned long)MODEL_INPUT_BYTES);
            return 3;
        }

        uint32_t ticks = 0;
        int status;
        if (samples == 0) {
            status = run_one(invoke_plain, ARENA_PATTERN_A, &ticks);
            if (status != 0) {
                printf("harness: invoke returned %d for sample 0\n", status);
                return 5;
            }
            memcpy(first_output, harness_output, (size_t)MODEL_OUTPUT_BYTES);
            status = run_one(invoke_plain, ARENA_PATTERN_B, &ticks);
            if (status == 0 && memcmp(first_output, harness_output, (size_t)MODEL_OUTPUT_BYTES) != 0) {
                printf("harness: sample 0 gave different outputs on two runs (output depends on arena contents)\n");
                return 6;
            }
        } else {
            status = run_one(invoke_plain, (samples & 1u) ? ARENA_PATTERN_A : ARENA_PATTERN_B, &ticks);
        }
        if (status != 0) {
            printf("harness: invoke returned %d for sample %lu\n", status, (unsigned long)samples);
            return 5;
        }
        fprintf(stats, "ticks.%lu=%lu\n", (unsigned long)samples, (unsigned long)ticks);
#if defined(MODEL_PROFILE) && defined(MODEL_LAYER_COUNT)
        if (samples == 0 && MODEL_PROFILE)
            for (int i = 0; i < MODEL_LAYER_COUNT; ++i) fprintf(stats, "layer.%d=%lu\n", i, (unsigned long)MODEL_PROFILE[i]);
#endif
#ifdef MODEL_INVOKE_STREAMED
        {
            memcpy(first_output, harness_output, (size_t)MODEL_OUTPUT_BYTES);
            uint32_t streamed_ticks = 0;
            int streamed_status = run_one(invoke_streamed, (samples & 1u) ? ARENA_PATTERN_B : ARENA_PATTERN_A, &streamed_ticks);
            if (streamed_status != 0 || memcmp(first_output, harness_output, (size_t)MODEL_OUTPUT_BYTES) != 0) {
                printf("harness: the streamed entry point gave %s for sample %lu\n",
                       streamed_status != 0 ? "an error" : "other bytes than the plain one", (unsigned long)samples);
                return 7;
            }
            fprintf(stats, "streamed_ticks.%lu=%lu\n", (unsigned long)samples, (unsigned long)streamed_ticks);
        }
#endif
        if (fwrite(harness_output, 1, (size_t)MODEL_OUTPUT_BYTES, out) != (size_t)MODEL_OUTPUT_BYTES) {
            printf("harness: cannot write output.bin\n");
            return 2;
        }
        ++samples;
    }
    fclose(in);
    if (fclose(out) != 0) {
        printf("harness: cannot write output.bin\n");
        return 2;
    }
    if (samples == 0) {
        printf("harness: input.bin is empty\n");
        return 3;
    }

    fprintf(stats, "samples=%lu\n", (unsigned long)samples);
    fprintf(stats, "input_bytes=%lu\n", (unsigned long)MODEL_INPUT_BYTES);
    fprintf(stats, "output_bytes=%lu\n", (unsigned long)MODEL_OUTPUT_BYTES);
    fprintf(stats, "arena_bytes=%lu\n", (unsigned long)MODEL_ARENA_BYTES);
    fprintf(stats, "arena_high_water=%lu\n", (unsigned long)arena_high_water);
    fprintf(stats, "stack_high_water=%lu\n", (unsigned long)stack_high_water);
#ifdef MODEL_INVOKE_STREAMED
    fprintf(stats, "streamed_reads=%lu\n", (unsigned long)streamed_reads);
#endif
    fprintf(stats, "done=1\n");
    if (fclose(stats) != 0) {
        printf("harness: cannot write stats.txt\n");
        return 2;
    }
    printf("harness: %lu samples done\n", (unsigned long)samples);
    return 0;
}
