/*
 * Random cases of mcu_depthwise3x3_inplace and mcu_depthwise3x3_compact_inplace (the ring of three rows when
 * DepthwiseInPlace.RingSafe holds, and the tall ring; planar or compact rows, in exactly the scratch the planner gives)
 * against mcu_depthwise, the portable kernel the other tests hold against the C# int8 reference: shapes from
 * 1x1 to 12x12 with 1 to 13 channels, stride 1 and 2, padding 0 or 1 on each side, whole tensors and patches, every
 * requantization form (high word with and without the pre-shift, 64-bit) and clamping. Built for the host (portable C, with
 * sanitizers) and for Cortex-M7 (the asm paths, under QEMU).
 */
#include "dwcheck.h"
#include "mcunet_kernels.h"

int8_t dwcheck_arena[DWCHECK_ARENA_BYTES];

#define MAX_PIXELS (12 * 12)
#define MAX_C 13
static int8_t input[MAX_PIXELS * MAX_C], reference[MAX_PIXELS * MAX_C], buf[MAX_PIXELS * MAX_C];
static int8_t scratch[4096] __attribute__((aligned(4)));
static int8_t weights[9 * MAX_C];
static int32_t bias[MAX_C], folded[MAX_C], mult[MAX_C];
static int8_t shift[MAX_C];
static uint32_t state;

static int rnd(int lo, int hi) /* uniform in [lo, hi] */
{
    state = state * 1664525u + 1013904223u;
    return lo + (int)((state >> 8) % (uint32_t)(hi - lo + 1));
}

/* DepthwiseInPlace.RingSafe: every output row lands only on input rows the ring already holds */
static int ring_safe(const mcu_conv_params *p, mcu_region ib, mcu_region ob)
{
    for (int y = 0; y < ob.h; ++y) {
        int lands = ((y + 1) * ob.w - 1) / ib.w;
        if (lands > ib.h - 1) lands = ib.h - 1;
        int last = (ob.y0 + y) * p->sh - p->pad_top + 2;
        if (last > p->in_h - 1) last = p->in_h - 1;
        if (lands > last - ib.y0) return 0;
    }
    return 1;
}

int dwcheck_invoke(const int8_t *in, int8_t *out)
{
    state = (uint32_t)(uint8_t)in[0] | (uint32_t)(uint8_t)in[1] << 8 | (uint32_t)(uint8_t)in[2] << 16 | (uint32_t)(uint8_t)in[3] << 24;
    int32_t mismatches = 0, seen = 0;
    for (int n = 0; n < 300; ++n) {
        const int h = rnd(1, 12), w = rnd(1, 12), c = rnd(1, MAX_C), s = rnd(1, 2);
        const int pt = rnd(0, 1), pl = rnd(0, 1), pb = rnd(0, 1), pr = rnd(0, 1);
        const int oh = (h + pt + pb - 3) / s + 1, ow = (w + pl + pr - 3) / s + 1;
        if (h + pt + pb < 3 || w + pl + pr < 3 || oh < 1 || ow < 1) continue;
        const int high_word = rnd(0, 4) != 0, clamp = rnd(0, 3) == 0;
        const int in_zp = rnd(-128, 127), out_zp = rnd(-128, 127);
        const int act_min = clamp ? rnd(-128, 0) : -128, act_max = clamp ? rnd(act_min, 127) : 127;
        for (int i = 0; i < 9 * c; ++i) weights[i] = (int8_t)rnd(-127, 127);
        const int all32 = rnd(0, 1); /* high word: every shift 32 (no pre-shift) */
        for (int j = 0; j < c; ++j) {
            bias[j] = rnd(-20000, 20000);
            mult[j] = rnd(1 << 30, 0x7fffffff);
            /* high word: shifts up to 32 (FixedPointMultiplier.ForHighWord), below it a pre-shift; else any */
            shift[j] = (int8_t)(!high_word ? rnd(28, 60) : all32 || rnd(0, 3) ? 32 : rnd(28, 31));
            int32_t sum = 0;
            for (int t = 0; t < 9; ++t) sum += weights[t * c + j];
            folded[j] = bias[j] - in_zp * sum;
            if (high_word && shift[j] < 32) seen |= DWCHECK_PRESHIFT;
        }
        /* a patch: an output region, and the input region its windows read (inside the tensor) */
        const int patch = rnd(0, 1);
        const int oy0 = patch ? rnd(0, oh - 1) : 0, ox0 = patch ? rnd(0, ow - 1) : 0;
        const int ph = patch ? rnd(1, oh - oy0) : oh, pw = patch ? rnd(1, ow - ox0) : ow;
        int iy0 = oy0 * s - pt, iy1 = (oy0 + ph - 1) * s - pt + 3, ix0 = ox0 * s - pl, ix1 = (ox0 + pw - 1) * s - pl + 3;
        if (iy0 < 0) iy0 = 0;
        if (ix0 < 0) ix0 = 0;
        if (iy1 > h) iy1 = h;
        if (ix1 > w) ix1 = w;
        const mcu_region ib = {(int16_t)iy0, (int16_t)ix0, (int16_t)(iy1 - iy0), (int16_t)(ix1 - ix0)};
        const mcu_region ob = {(int16_t)oy0, (int16_t)ox0, (int16_t)ph, (int16_t)pw};
        if (ob.h * ob.w > ib.h * ib.w) continue; /* the output must fit over the input */
        mcu_conv_params p = {(int16_t)h, (int16_t)w, (int16_t)c, (int16_t)c, (int16_t)c, 3, 3, (uint8_t)s, (uint8_t)s, 1, 1,
                             (int16_t)pt, (int16_t)pl, in_zp, out_zp, act_min, act_max, weights, bias, mult, shift,
                             (uint8_t)high_word, NULL};
        for (int i = 0; i < ib.h * ib.w * c; ++i) input[i] = (int8_t)rnd(-128, 127);
        mcu_depthwise(&p, input, ib, reference, ob, ob);
        p.bias = folded;
        /* modes 0, 1: the ring of three and the tall ring of mcu_depthwise3x3_inplace (planar rows at stride 1, compact
           at stride 2); 2, 3: the same of mcu_depthwise3x3_compact_inplace (compact rows at stride 1 too) */
        for (int mode = 0; mode < 4; ++mode) {
            const int ring = !(mode & 1), compact = s == 2 || mode >= 2;
            const int slots = ring ? 3 : 1000;
            if (s == 2 && mode >= 2) break; /* the same kernel as modes 0 and 1 */
            if (ring && !ring_safe(&p, ib, ob)) continue;
            for (int i = 0; i < ib.h * ib.w * c; ++i) buf[i] = input[i];
            /* the scratch the planner gives (DepthwiseInPlace.RingScratchBytes), at the end of the array: the host
               build's sanitizer sees any access past it */
            const int ring_rows = ring ? 3 : (ob.h - 1) * s + 3;
            const int need = compact ? ring_rows * 8 * ((ob.w - 1) * s + 3)
                                     : 2 * ring_rows * (c < 4 ? c : 4) * (2 * ((ob.w + 1) / 2) + 2) + (ring ? 1 : ob.h) * 8 * ((ob.w + 1) / 2);
            int8_t *const sc = scratch + sizeof scratch - ((need + 3) & ~3);
            if (mode >= 2) mcu_depthwise3x3_compact_inplace(&p, buf, ib, ob, sc, slots);
            else mcu_depthwise3x3_inplace(&p, buf, ib, ob, sc, slots);
            int bad = 0;
            for (int i = 0; i < ob.h * ob.w * c; ++i) bad |= buf[i] != reference[i];
            mismatches += bad;
            seen |= ring ? DWCHECK_RING : DWCHECK_TALL;
            if (compact && s == 1) seen |= DWCHECK_COMPACT1;
        }
        if (s == 2) seen |= DWCHECK_STRIDE2;
        if (clamp && (act_min > -128 || act_max < 127)) seen |= DWCHECK_CLAMP;
        if (patch && (ib.h < h || ib.w < w)) seen |= DWCHECK_PATCH;
        if (c % 4) seen |= DWCHECK_TAIL;
        if (!high_word) seen |= DWCHECK_64BIT;
        if (high_word && all32) seen |= DWCHECK_SHIFT32;
    }
    memcpy(out, &mismatches, 4);
    memcpy(out + 4, &seen, 4);
    return 0;
}
