/*
 * MCUNetV2.Build int8 kernels. Included once by each generated model source; every function is static, so two
 * models linked into one firmware do not collide.
 *
 * Integer semantics (identical to the C# reference MCUNetV2.Compiler.Quantization.Int8Executor):
 *   requant(acc, m, s) = (acc * m + 2^(s-1)) >> s           (64-bit product, arithmetic shift)
 *   conv:  y = clamp(requant(bias + sum (x - in_zp) * w) + out_zp, act_min, act_max)
 *   add:   y = clamp(requant_o(requant_a((a - za) << 20) + requant_b((b - zb) << 20)) + out_zp, act_min, act_max)
 *   avg:   y = round-half-away-from-zero(sum / count), padding in count only with count_include_pad
 *   max:   y = max over the window (padding never wins); lookup: y = table[x + 128]
 *   mul:   y = clamp(requant((a - za) * (b - zb)) + out_zp); concat: y = clamp(requant(x - zx) + out_zp)
 *   prelu: d = x - in_zp; y = clamp(d >= 0 ? requant(d, m_pos) + out_zp : requant(sign[c] * d, m_neg[c]) + out_zp)
 *   softmax: e_i = table[max - x_i]; y_i = clamp((e_i * 256 + sum/2) / sum - 128)
 *   relayout: y = x moved (a strided copy: output in order, index (i_0..i_n) reads x[sum i_k * stride_k])
 *
 * A feature map lives in a buffer that holds a rectangular region of it (mcu_region: first row, first column,
 * rows, columns), channels last. Kernels compute an output region; taps that fall outside the whole input tensor
 * are zero padding, taps inside it are guaranteed by the planner to lie inside the input buffer's region. Per-layer
 * execution is the special case where every buffer holds the whole tensor.
 */
#ifndef MCUNET_KERNELS_H
#define MCUNET_KERNELS_H

/* A model uses only some kernels; the others must not warn (-Wall) in the user's build. */
#if defined(__GNUC__)
#define MCU_KERNEL static __attribute__((unused))
#define MCU_NOINLINE __attribute__((noinline))
#else
#define MCU_KERNEL static
#define MCU_NOINLINE
#endif

#include <stdint.h>
#include <string.h>

/* Integer code only: GCC would otherwise spill integer registers into FPU registers under -mfloat-abi=hard, and the
   inference code must run with the FPU off. */
#if defined(__GNUC__) && !defined(__clang__) && defined(__arm__)
#pragma GCC push_options
#pragma GCC target("general-regs-only")
#define MCU_GENERAL_REGS_ONLY 1
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define MCU_USE_DSP 1
#else
#define MCU_USE_DSP 0
#endif

typedef struct { int16_t y0, x0, h, w; } mcu_region;

/*
 * Layer profiling for benchmarks only (compile with -DMCU_PROFILE): after each layer the time since the previous
 * mark is added to that layer's slot, read from CMSDK timer0 of the mps2-an500 board (counting down at 25 MHz; under
 * QEMU -icount shift=0 one tick is 40 instructions). Without MCU_PROFILE the marks compile to nothing.
 */
#ifdef MCU_PROFILE
#define MCU_PROFILE_TIMER (*(volatile uint32_t *)0x40000004u)
#define MCU_PROFILE_START() uint32_t mcu_profile_last = MCU_PROFILE_TIMER
#define MCU_PROFILE_MARK(slots, i) do { uint32_t mcu_now = MCU_PROFILE_TIMER; (slots)[i] += mcu_profile_last - mcu_now; mcu_profile_last = mcu_now; } while (0)
#else
#define MCU_PROFILE_START() ((void)0)
#define MCU_PROFILE_MARK(slots, i) ((void)0)
#endif

typedef struct {
    int16_t in_h, in_w, in_c, out_c, groups;
    uint8_t kh, kw, sh, sw, dh, dw;
    int16_t pad_top, pad_left;
    int32_t in_zp, out_zp, act_min, act_max;
    /* conv: [out_c][kh][kw][in_c/groups]; depthwise: [kh][kw][c]; fc: [out][in]; pointwise, im2col: a word stream
       holding weights, biases and requantization constants (see mcu_pointwise), bias, mult and shift then unused */
    const int8_t *weights;
    const int32_t *bias;     /* conv, depthwise not in place: the model's; fc, depthwise in place: bias - in_zp * sum(w) */
    const int32_t *mult;
    const int8_t *shift;
    uint8_t high_word;       /* 0: 64-bit requant; else 1 (high word) | 2 (some pre-shift e > 0) */
    uint32_t *columns;       /* pointwise: room in the arena for the widened inputs (6 words per group of 4 inputs), or
                                NULL: the kernel puts them on the stack */
} mcu_conv_params;

typedef struct {
    int16_t c;
    int32_t zp_a, zp_b, mult_a, mult_b, mult_out, out_zp, act_min, act_max;
    int8_t shift_a, shift_b, shift_out, sign_b; /* sign_b = -1: subtract */
    int8_t broadcast_b; /* 1: b is one value per channel for every pixel */
} mcu_add_params;

typedef struct {
    int16_t in_h, in_w, c;
    uint8_t kh, kw, sh, sw, dh, dw;
    int16_t pad_top, pad_left, pad_bottom, pad_right;
    uint8_t count_include_pad;
    int32_t zp; /* average pool: counted padding adds zp to the sum */
} mcu_pool_params;

typedef struct {
    int16_t in_c, out_c, channel_offset;
    int32_t zp, mult, out_zp;
    int8_t shift;
} mcu_concat_params;

typedef struct {
    int16_t c;
    int32_t zp_a, zp_b, mult, out_zp;
    int8_t shift;
    int8_t broadcast_b; /* 1: b is one value per channel for every pixel */
} mcu_mul_params;

/* PRelu with one slope per channel: the negative branch uses multiplier m_neg[c] of |slope[c]| * in_scale / out_scale
   and sign[c] (-1 for a negative slope, else +1), applied to d before the requantization. */
typedef struct {
    int16_t c;
    int32_t in_zp, out_zp, mult_pos;
    int8_t shift_pos;
    const int32_t *mult_neg;
    const int8_t *shift_neg;
    const int8_t *sign_neg;
} mcu_prelu_params;

static inline int32_t mcu_requant(int32_t acc, int32_t mult, int shift)
{
    const int64_t product = (int64_t)acc * mult;
    /* shift > 32 (Mul, Concat and PRelu multipliers; convolutions and Adds have at most 32): the rounding bit
       2^(shift-1) falls in the high word, and the low word can never carry a sum of integers across a multiple of
       2^(shift-32), so only the high word matters. Same value. */
    if (shift > 32) {
        const int32_t high = (int32_t)(product >> 32);
        return (high + (1 << (shift - 33))) >> (shift - 32);
    }
    return (int32_t)((product + ((int64_t)1 << (shift - 1))) >> shift);
}

static inline int8_t mcu_clamp(int32_t v, int32_t lo, int32_t hi)
{
    return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}

/* A word read or written through any pointer type: aligned (mcu_word) or at any byte address (mcu_uword, and
   mcu_uhalf for a halfword; the Cortex-M7 loads and stores words and halfwords at any address). */
typedef uint32_t mcu_word __attribute__((may_alias, aligned(4)));
typedef uint32_t mcu_uword __attribute__((may_alias, aligned(1)));
typedef uint16_t mcu_uhalf __attribute__((may_alias, aligned(1)));

static inline int mcu_offset(mcu_region b, int y, int x, int c)
{
    return ((y - b.y0) * b.w + (x - b.x0)) * c;
}

#if MCU_USE_DSP
/* Bytes 1 and 3 of x, sign-extended to halfwords: SXTB16 with its rotate operand (GCC does not fold the rotate). */
static inline uint32_t mcu_sxtb16_ror8(uint32_t x)
{
    uint32_t r;
    __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
    return r;
}
/* [a.lo b.lo] (PKHBT) and [a.hi b.hi] (PKHTB): GCC builds them from three instructions each. */
static inline uint32_t mcu_pack_low(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
static inline uint32_t mcu_pack_high(uint32_t a, uint32_t b)
{
    uint32_t r;
    __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
    return r;
}
#endif

/* sum a[i] * b[i] for i < n, added to acc. */
static inline int32_t mcu_dot_s8(const int8_t *a, const int8_t *b, int n, int32_t acc)
{
    int i = 0;
#if MCU_USE_DSP
    for (; i + 4 <= n; i += 4) {
        uint32_t va, vb;
        memcpy(&va, a + i, 4);
        memcpy(&vb, b + i, 4);
        acc = __smlad(__sxtb16(va), __sxtb16(vb), acc);
        acc = __smlad(mcu_sxtb16_ror8(va), mcu_sxtb16_ror8(vb), acc);
    }
#endif
    for (; i < n; ++i) acc += a[i] * b[i];
    return acc;
}

/* Any convolution: kernel, stride, dilation, groups. */
MCU_KERNEL void mcu_conv(const mcu_conv_params *p, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    const int cpg = p->in_c / p->groups, opg = p->out_c / p->groups;
    for (int oy = r.y0; oy < r.y0 + r.h; ++oy) {
        for (int ox = r.x0; ox < r.x0 + r.w; ++ox) {
            int8_t *o = out + mcu_offset(ob, oy, ox, p->out_c);
            const int iy0 = oy * p->sh - p->pad_top, ix0 = ox * p->sw - p->pad_left;
            for (int oc = 0; oc < p->out_c; ++oc) {
                const int g = oc / opg;
                int32_t acc = p->bias[oc];
                const int8_t *w = p->weights + oc * p->kh * p->kw * cpg;
                for (int ky = 0; ky < p->kh; ++ky) {
                    const int iy = iy0 + ky * p->dh;
                    if (iy < 0 || iy >= p->in_h) { w += p->kw * cpg; continue; }
                    for (int kx = 0; kx < p->kw; ++kx, w += cpg) {
                        const int ix = ix0 + kx * p->dw;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int8_t *x = in + mcu_offset(ib, iy, ix, p->in_c) + g * cpg;
                        for (int ic = 0; ic < cpg; ++ic) acc += (x[ic] - p->in_zp) * w[ic];
                    }
                }
                o[oc] = mcu_clamp(mcu_requant(acc, p->mult[oc], p->shift[oc]) + p->out_zp, p->act_min, p->act_max);
            }
        }
    }
}

/*
 * 1x1 convolution, stride 1, no padding, one group: a matrix product per pixel.
 * Its weights and per-channel constants are one stream of 32-bit words (mcu_conv_params.weights; bias, mult and
 * shift are unused), two output channels a and b at a time:
 *   bias_a, bias_b, then per 4 input channels the 4 weights of a and the 4 of b (one word each, in_c padded with
 *   zeros to a multiple of 4), then mult_a, mult_b and the shifts (h_a | h_b << 16),
 * where bias is folded (bias - in_zp * sum(w)); with high_word h is the pre-shift (h = e << 8: the high-word
 * requantization's, out_zp its addend), else h = s. An odd last channel follows alone: bias, its weight words, mult, h.
 * One pointer walks the whole layer.
 */

/* The length of each output's dot product: in_c for a pointwise convolution, kh * kw * in_c for mcu_conv_im2col,
   which runs on the same stream. */
static inline int mcu_depth(const mcu_conv_params *p) { return p->kh * p->kw * p->in_c; }

/* The shift of mcu_requant from a stream's shift half h. */
static inline int mcu_stream_shift(const mcu_conv_params *p, uint32_t h)
{
    return p->high_word ? 32 - (int)((h >> 8) & 0xff) : (int16_t)h;
}

/* Words of one channel's weights per group of 4 inputs: one word of 4 int8, or (MCU_POINTWISE_WEIGHTS16: the model
   was built with PointwiseWeights="int16") two words of int16 pairs, [w0 w2] and [w1 w3], as SXTB16 would give them. */
#ifdef MCU_POINTWISE_WEIGHTS16
#define MCU_POINTWISE_CHANNEL_WORDS 2
#else
#define MCU_POINTWISE_CHANNEL_WORDS 1
#endif

/* Words of one pair of output channels in the stream. */
static inline int mcu_pointwise_pair_words(int in_c) { return 5 + 2 * MCU_POINTWISE_CHANNEL_WORDS * ((in_c + 3) >> 2); }

/* Weight i of a channel whose words for the first group of 4 inputs are at w, `stride` words between groups. */
static inline int32_t mcu_pointwise_weight(const mcu_word *w, int stride, int i)
{
    const mcu_word *g = w + (i >> 2) * stride;
#ifdef MCU_POINTWISE_WEIGHTS16
    const uint32_t v = g[i & 1]; /* [w0 w2] [w1 w3] */
    return (int16_t)(i & 2 ? v >> 16 : v);
#else
    return (int8_t)(g[0] >> (8 * (i & 3)));
#endif
}

static inline int32_t mcu_pointwise_dot(const mcu_conv_params *p, const int8_t *x, int oc, int32_t *mult, int *shift)
{
    const int chunks = (mcu_depth(p) + 3) >> 2, cw = MCU_POINTWISE_CHANNEL_WORDS;
    const int lone = (p->out_c & 1) && oc == p->out_c - 1, second = oc & 1;
    const mcu_word *q = (const mcu_word *)(const void *)p->weights + (oc >> 1) * mcu_pointwise_pair_words(mcu_depth(p));
    const mcu_word *w = q + (lone ? 1 : 2) + second * cw;
    const int stride = lone ? cw : 2 * cw;
    int32_t acc = (int32_t)q[second];
    for (int i = 0; i < mcu_depth(p); ++i) acc += x[i] * mcu_pointwise_weight(w, stride, i);
    const mcu_word *r = q + (lone ? 1 + cw * chunks : 2 + 2 * cw * chunks);
    *mult = (int32_t)r[lone ? 0 : second];
    const uint32_t shifts = r[lone ? 1 : 2];
    *shift = mcu_stream_shift(p, second ? shifts >> 16 : shifts & 0xffff);
    return acc;
}

/* One output pixel of a pointwise convolution: o[0..out_c) from the in_c values at x. */
static inline void mcu_pointwise_pixel(const mcu_conv_params *p, const int8_t *x, int8_t *o)
{
    for (int oc = 0; oc < p->out_c; ++oc) {
        int32_t mult;
        int shift;
        const int32_t acc = mcu_pointwise_dot(p, x, oc, &mult, &shift);
        o[oc] = mcu_clamp(mcu_requant(acc, mult, shift) + p->out_zp, p->act_min, p->act_max);
    }
}

#if MCU_USE_DSP
/*
 * The high-word requantization (mcu_conv_params.high_word, the compiler checked every channel): every shift s is at
 * most 32 (FixedPointMultiplier.ForHighWord), so with the pre-shift e = 32 - s requant(acc, m, s) + out_zp is
 * ((acc << e) * m + 2^31) >> 32 + out_zp exactly: one SMMLAR with out_zp as its addend (acc << e, which the compiler
 * proved fits in 32 bits, with shift 32 is the same requantization). The kernels do this in asm (MCU_POINTWISE_*,
 * MCU_DW_*): SMMLAR, SSAT.
 */

/* `apply(requant)` for the requantization variant of high_word (1, | 2 pre-shift): the asm pieces preshift, scale and
   pack of a kernel, in that order. */
#define MCU_REQUANT_VARIANTS(high_word, apply, preshift, scale, pack)                                                  \
    if (high_word & 2) {                                                                                               \
        apply(preshift scale pack)                                                                                     \
    } else {                                                                                                           \
        apply(scale pack)                                                                                              \
    }

/* Four int8 values clamped to [lo, hi] at once (lo4, hi4: the bound in every byte). */
static inline uint32_t mcu_clamp4(uint32_t v, uint32_t lo4, uint32_t hi4)
{
    (void)__ssub8(v, lo4);
    v = __sel(v, lo4);
    (void)__ssub8(hi4, v);
    return __sel(v, hi4);
}

/* The last 1 to 3 input channels (from i) of `pixels` pixels, the rest of the group zero, as the expansions' words. */
static inline void mcu_pointwise_expand_tail(const int8_t *const *x, int pixels, int i, int cin, uint32_t *col)
{
    for (int k = 0; k < pixels; ++k) {
        uint32_t v = 0;
        for (int j = 0; i + j < cin; ++j) v |= (uint32_t)(uint8_t)x[k][i + j] << (8 * j);
        col[2 * k] = __sxtb16(v);
        col[2 * k + 1] = mcu_sxtb16_ror8(v);
    }
}

/* Two pixels' inputs (x0, x1), sign-extended to halfwords for mcu_pointwise_pair: per 4 channels the words
   [x0 c0 c2] [x0 c1 c3] [x1 c0 c2] [x1 c1 c3], the last group padded with zeros. Done once per pixel pair and used
   by every output channel. */
static inline void mcu_pointwise_expand(const int8_t *x0, const int8_t *x1, int cin, uint32_t *col)
{
    int i = cin & ~3;
    if (i) {
        const int8_t *const end = x0 + i;
        uint32_t a, ao, b, bo;
        __asm__ volatile("1:\n\t"
                         "ldr    %[a], [%[x0]], #4\n\t"
                         "ldr    %[b], [%[x1]], #4\n\t"
                         "sxtb16 %[ao], %[a], ror #8\n\t"
                         "sxtb16 %[a], %[a]\n\t"
                         "sxtb16 %[bo], %[b], ror #8\n\t"
                         "sxtb16 %[b], %[b]\n\t"
                         "strd   %[a], %[ao], [%[col]], #8\n\t"
                         "strd   %[b], %[bo], [%[col]], #8\n\t"
                         "cmp    %[x0], %[end]\n\t"
                         "bne    1b\n\t"
                         : [x0] "+&r"(x0), [x1] "+&r"(x1), [col] "+&r"(col), [a] "=&r"(a), [ao] "=&r"(ao), [b] "=&r"(b),
                           [bo] "=&r"(bo)
                         : [end] "r"(end)
                         : "memory", "cc");
        x0 -= i; /* (the tail below indexes from the start) */
        x1 -= i;
    }
    if (i < cin) {
        const int8_t *const x[2] = {x0, x1};
        mcu_pointwise_expand_tail(x, 2, i, cin, col);
    }
}

/* The weights of a group of 4 inputs of both channels from w (advanced), as halfwords: a's [w0 w2] [w1 w3] in ae, ao,
   b's in be, bo (register names as strings; the pair kernel's operands and the three-pixel kernel's registers). */
#ifdef MCU_POINTWISE_WEIGHTS16
#define MCU_PW_WEIGHTS(w, ae, ao, be, bo)                                                                              \
    "ldrd   " ae ", " ao ", [" w "], #8\n\t"                                                                           \
    "ldrd   " be ", " bo ", [" w "], #8\n\t"
#else
#define MCU_PW_WEIGHTS(w, ae, ao, be, bo)                                                                              \
    "ldrd   " ao ", " bo ", [" w "], #8\n\t"                                                                           \
    "sxtb16 " ae ", " ao "\n\t"                                                                                        \
    "sxtb16 " ao ", " ao ", ror #8\n\t"                                                                                \
    "sxtb16 " be ", " bo "\n\t"                                                                                        \
    "sxtb16 " bo ", " bo ", ror #8\n\t"
#endif
/* one pixel's two words x0, x1 into the sums a += [x0 x1].[ae ao] and b += [x0 x1].[be bo], starting from a_in, b_in */
#define MCU_PW_PIXEL(a, b, a_in, b_in, x0, x1, ae, ao, be, bo)                                                         \
    "smlad  " a ", " x0 ", " ae ", " a_in "\n\t"                                                                       \
    "smlad  " a ", " x1 ", " ao ", " a "\n\t"                                                                          \
    "smlad  " b ", " x0 ", " be ", " b_in "\n\t"                                                                       \
    "smlad  " b ", " x1 ", " bo ", " b "\n\t"
/* a += x * (weights of a), b += x * (weights of b) for one group of 4 input channels of both pixels (x: the 4 words
   of mcu_pointwise_expand, w: the 2 weight words; both advanced): both weight words at once, sign-extended in halves
   into four registers, then each pixel's two words (8 SMLAD). Written out because GCC spills in this loop. */
#define MCU_POINTWISE_LOAD_WEIGHTS MCU_PW_WEIGHTS("%[w]", "%[ae]", "%[ao]", "%[be]", "%[bo]")
#define MCU_POINTWISE_PIXEL(a, b, a_in, b_in)                                                                          \
    MCU_PW_PIXEL("%[" a "]", "%[" b "]", "%[" a_in "]", "%[" b_in "]", "%[x0]", "%[x1]", "%[ae]", "%[ao]", "%[be]", "%[bo]")
#define MCU_POINTWISE_CHUNK_ASM                                                                                        \
    MCU_POINTWISE_LOAD_WEIGHTS                                                                                         \
    "ldrd   %[x0], %[x1], [%[x]], #8\n\t" MCU_POINTWISE_PIXEL("a0", "b0", "a0", "b0")                                  \
    "ldrd   %[x0], %[x1], [%[x]], #8\n\t" MCU_POINTWISE_PIXEL("a1", "b1", "a1", "b1")
/* The first group, which also loads the biases: the second pixel's sums start from them, before the first's move on. */
#define MCU_POINTWISE_FIRST_ASM                                                                                        \
    "ldrd   %[a0], %[b0], [%[w]], #8\n\t"                                                                              \
    MCU_POINTWISE_LOAD_WEIGHTS                                                                                         \
    "ldrd   %[x0], %[x1], [%[x], #8]\n\t" MCU_POINTWISE_PIXEL("a1", "b1", "a0", "b0")                                  \
    "ldrd   %[x0], %[x1], [%[x]], #16\n\t" MCU_POINTWISE_PIXEL("a0", "b0", "a0", "b0")
#define MCU_POINTWISE_FIRST(a0, a1, b0, b1, x, w)                                                                      \
    do { uint32_t t0, t1, t2, t3, t4, t5;                                                                              \
         __asm__ volatile(MCU_POINTWISE_FIRST_ASM                                                                      \
                          : [a0] "=&r"(a0), [a1] "=&r"(a1), [b0] "=&r"(b0), [b1] "=&r"(b1), [x] "+r"(x), [w] "+r"(w),   \
                            [x0] "=&r"(t0), [x1] "=&r"(t1), [ae] "=&r"(t2), [ao] "=&r"(t3), [be] "=&r"(t4),            \
                            [bo] "=&r"(t5) : : "memory"); } while (0)
#define MCU_POINTWISE_CHUNK_OPERANDS(a0, a1, b0, b1, x, w)                                                             \
    : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [x] "+r"(x), [w] "+r"(w),                          \
      [x0] "=&r"(t0), [x1] "=&r"(t1), [ae] "=&r"(t2), [ao] "=&r"(t3), [be] "=&r"(t4), [bo] "=&r"(t5)                  \
    : : "memory"
#define MCU_POINTWISE_CHUNK(a0, a1, b0, b1, x, w)                                                                      \
    do { uint32_t t0, t1, t2, t3, t4, t5;                                                                              \
         __asm__ volatile(MCU_POINTWISE_CHUNK_ASM MCU_POINTWISE_CHUNK_OPERANDS(a0, a1, b0, b1, x, w)); } while (0)
#define MCU_POINTWISE_CHUNK2(a0, a1, b0, b1, x, w)                                                                     \
    do { uint32_t t0, t1, t2, t3, t4, t5;                                                                              \
         __asm__ volatile(MCU_POINTWISE_CHUNK_ASM MCU_POINTWISE_CHUNK_ASM                                              \
                          MCU_POINTWISE_CHUNK_OPERANDS(a0, a1, b0, b1, x, w)); } while (0)

/* The high-word requantization of a pair's four sums (a: channel a, b: channel b; 0, 1: the pixels) with mult and the
   shifts h = e << 8 read from w (advanced past them; MCU_POINTWISE_REQUANT_LOAD) and out_zp (zp), packed as bytes
   [a0 b0 a1 b1] into a0 (MCU_POINTWISE_PACK). */
#define MCU_POINTWISE_REQUANT_LOAD                                                                                     \
    "ldrd   %[t0], %[t1], [%[w]], #8\n\t"                                                                                \
    "ldr    %[t4], [%[w]], #4\n\t"
/* the pre-shift e (layers with a shift below 32: mcu_conv_params.high_word 2) */
#define MCU_POINTWISE_PRESHIFT                                                                                         \
    "lsr    %[t5], %[t4], #8\n\t"                                                                                        \
    "lsl    %[a0], %[a0], %[t5]\n\t"                                                                                     \
    "lsl    %[a1], %[a1], %[t5]\n\t"                                                                                     \
    "lsr    %[t5], %[t4], #24\n\t"                                                                                       \
    "lsl    %[b0], %[b0], %[t5]\n\t"                                                                                     \
    "lsl    %[b1], %[b1], %[t5]\n\t"
#define MCU_POINTWISE_SCALE                                                                                            \
    "smmlar %[a0], %[a0], %[t0], %[zp]\n\t"                                                                             \
    "smmlar %[a1], %[a1], %[t0], %[zp]\n\t"                                                                             \
    "smmlar %[b0], %[b0], %[t1], %[zp]\n\t"                                                                             \
    "smmlar %[b1], %[b1], %[t1], %[zp]\n\t"
#define MCU_POINTWISE_PACK                                                                                             \
    "ssat   %[a0], #8, %[a0]\n\t"                                                                                        \
    "ssat   %[b0], #8, %[b0]\n\t"                                                                                        \
    "ssat   %[a1], #8, %[a1]\n\t"                                                                                        \
    "ssat   %[b1], #8, %[b1]\n\t"                                                                                        \
    "bfi    %[a0], %[b0], #8, #8\n\t"                                                                                    \
    "bfi    %[a0], %[a1], #16, #8\n\t"                                                                                   \
    "bfi    %[a0], %[b1], #24, #8\n\t"

/* The last channel of an odd count, alone, for `pixels` pixels expanded in col (two words each per group of 4 inputs):
   w at its words (bias, the weights, mult, h), out[i] its byte in pixel i. */
static inline void mcu_pointwise_lone(const mcu_conv_params *p, const mcu_word *w, const uint32_t *col, int pixels, int8_t *const *out)
{
    int32_t acc[3];
    for (int i = 0; i < pixels; ++i) acc[i] = (int32_t)w[0];
    ++w;
    for (int k = (mcu_depth(p) + 3) >> 2; k > 0; --k, col += 2 * pixels, w += MCU_POINTWISE_CHANNEL_WORDS) {
#ifdef MCU_POINTWISE_WEIGHTS16
        const uint32_t we = w[0], wo = w[1];
#else
        const uint32_t we = __sxtb16(w[0]), wo = mcu_sxtb16_ror8(w[0]);
#endif
        for (int i = 0; i < pixels; ++i) acc[i] = __smlad(col[2 * i + 1], wo, __smlad(col[2 * i], we, acc[i]));
    }
    const int32_t m = (int32_t)w[0];
    const int s = mcu_stream_shift(p, w[1] & 0xffff);
    for (int i = 0; i < pixels; ++i) *out[i] = mcu_clamp(mcu_requant(acc[i], m, s) + p->out_zp, p->act_min, p->act_max);
}

/* Two output pixels (expanded in col by mcu_pointwise_expand) to o0 and o1, two output channels at a time: per 4
   input channels two weight words, each sign-extended in two halves and used for both pixels (8 SMLAD). */
static MCU_NOINLINE void mcu_pointwise_pair(const mcu_conv_params *p, const uint32_t *col, int8_t *o0, int8_t *o1)
{
    const int chunks = (mcu_depth(p) + 3) >> 2, pairs = p->out_c >> 1, high_word = p->high_word;
    const int32_t out_zp = p->out_zp, act_min = p->act_min, act_max = p->act_max;
    const uint32_t lo4 = (uint8_t)act_min * 0x01010101u, hi4 = (uint8_t)act_max * 0x01010101u;
    const int clamp = act_min > -128 || act_max < 127;
    const mcu_word *w = (const mcu_word *)(const void *)p->weights;
    /* one loop over the channel pairs per requantization variant */
#define MCU_POINTWISE_PAIRS_OF(rest, ...)                                                                              \
    for (int j = 0; j < pairs; ++j, o0 += 2, o1 += 2) {                                                                \
        int32_t a0, a1, b0, b1;                                                                                        \
        const uint32_t *x = col;                                                                                       \
        MCU_POINTWISE_FIRST(a0, a1, b0, b1, x, w);                                                                     \
        rest(a0, a1, b0, b1, x, w)                                                                                     \
        __VA_ARGS__                                                                                                    \
    }
/* the groups after the first, two a turn (the pair kernel runs only the one or two pixels the three-pixel kernel
   leaves, and layers with the 64-bit requantization: one loop, not specialised by the group count) */
#define MCU_POINTWISE_RESTN(a0, a1, b0, b1, x, w)                                                                      \
    {                                                                                                                  \
        int k = chunks - 1;                                                                                            \
        for (; k >= 2; k -= 2) MCU_POINTWISE_CHUNK2(a0, a1, b0, b1, x, w);                                             \
        if (k) MCU_POINTWISE_CHUNK(a0, a1, b0, b1, x, w);                                                              \
    }
#define MCU_POINTWISE_PAIRS(...) MCU_POINTWISE_PAIRS_OF(MCU_POINTWISE_RESTN, __VA_ARGS__)
#define MCU_POINTWISE_STORE_HIGH(requant)                                                                              \
    {                                                                                                                  \
        uint32_t t0, t1, t4, t5;                                                                                       \
        __asm__ volatile(MCU_POINTWISE_REQUANT_LOAD requant                                                            \
                         : [a0] "+r"(a0), [a1] "+r"(a1), [b0] "+r"(b0), [b1] "+r"(b1), [w] "+r"(w), [t0] "=&r"(t0),    \
                           [t1] "=&r"(t1), [t4] "=&r"(t4), [t5] "=&r"(t5)                                              \
                         : [zp] "r"(out_zp) : "memory");                                                               \
        uint32_t y = (uint32_t)a0;                                                                                     \
        if (clamp) y = mcu_clamp4(y, lo4, hi4);                                                                        \
        const uint16_t y0 = (uint16_t)y, y1 = (uint16_t)(y >> 16);                                                     \
        memcpy(o0, &y0, 2);                                                                                            \
        memcpy(o1, &y1, 2);                                                                                            \
    }
#define MCU_POINTWISE_STORE_64                                                                                         \
    {                                                                                                                  \
        const int32_t ma = (int32_t)w[0], mb = (int32_t)w[1];                                                          \
        const uint32_t h = w[2];                                                                                       \
        const int sa = (int16_t)(h & 0xffff), sb = (int16_t)(h >> 16);                                                \
        o0[0] = mcu_clamp(mcu_requant(a0, ma, sa) + out_zp, act_min, act_max);                                         \
        o0[1] = mcu_clamp(mcu_requant(b0, mb, sb) + out_zp, act_min, act_max);                                         \
        o1[0] = mcu_clamp(mcu_requant(a1, ma, sa) + out_zp, act_min, act_max);                                         \
        o1[1] = mcu_clamp(mcu_requant(b1, mb, sb) + out_zp, act_min, act_max);                                         \
        w += 3;                                                                                                        \
    }
#define MCU_POINTWISE_PAIRS_HIGH(requant) MCU_POINTWISE_PAIRS(MCU_POINTWISE_STORE_HIGH(requant))
    if (!high_word)
        MCU_POINTWISE_PAIRS_OF(MCU_POINTWISE_RESTN, MCU_POINTWISE_STORE_64) /* rare: the loop only */
    else
        MCU_REQUANT_VARIANTS(high_word, MCU_POINTWISE_PAIRS_HIGH, MCU_POINTWISE_PRESHIFT, MCU_POINTWISE_SCALE,
                             MCU_POINTWISE_PACK)
    if (p->out_c & 1) {
        int8_t *const o[2] = {o0, o1};
        mcu_pointwise_lone(p, w, col, 2, o);
    }
}
#endif

#if MCU_USE_DSP
/* Three pixels' inputs (x0, x1, x2), sign-extended to halfwords for mcu_pointwise_run3: per 4 channels the words
   [x0 c0 c2] [x0 c1 c3] [x1 c0 c2] [x1 c1 c3] [x2 c0 c2] [x2 c1 c3], the last group padded with zeros. */
static inline void mcu_pointwise_expand3(const int8_t *x0, const int8_t *x1, const int8_t *x2, int cin, uint32_t *col)
{
    int i = cin & ~3;
    if (i) {
        const int8_t *const end = x0 + i;
        uint32_t a, ao;
        __asm__ volatile("1:\n\t"
                         "ldr    %[a], [%[x0]], #4\n\t"
                         "sxtb16 %[ao], %[a], ror #8\n\t"
                         "sxtb16 %[a], %[a]\n\t"
                         "strd   %[a], %[ao], [%[col]], #8\n\t"
                         "ldr    %[a], [%[x1]], #4\n\t"
                         "sxtb16 %[ao], %[a], ror #8\n\t"
                         "sxtb16 %[a], %[a]\n\t"
                         "strd   %[a], %[ao], [%[col]], #8\n\t"
                         "ldr    %[a], [%[x2]], #4\n\t"
                         "sxtb16 %[ao], %[a], ror #8\n\t"
                         "sxtb16 %[a], %[a]\n\t"
                         "strd   %[a], %[ao], [%[col]], #8\n\t"
                         "cmp    %[x0], %[end]\n\t"
                         "bne    1b\n\t"
                         : [x0] "+&r"(x0), [x1] "+&r"(x1), [x2] "+&r"(x2), [col] "+&r"(col), [a] "=&r"(a), [ao] "=&r"(ao)
                         : [end] "r"(end)
                         : "memory", "cc");
        x0 -= i;
        x1 -= i;
        x2 -= i;
    }
    if (i < cin) {
        const int8_t *const x[3] = {x0, x1, x2};
        mcu_pointwise_expand_tail(x, 3, i, cin, col);
    }
}

/* What mcu_pointwise_run3 reads (offsets are the asm's, bytes); its words become its frame. */
typedef struct {
    int8_t *o[3];            /* 0: the three pixels' outputs, advanced by 2 per channel pair */
    uint32_t *col;           /* 12: mcu_pointwise_expand3's words */
    const uint32_t *col_end; /* 16: col + 6 words per group of 4 inputs */
    const mcu_word *w_end;   /* 20: the end of the channel pairs' words */
    uint32_t lo4, hi4;       /* 24, 28: act_min, act_max in every byte */
    const mcu_word *w;       /* 32: the stream */
    int32_t entry;           /* 36: where a pair's groups after the first start (MCU_PW3_VARIANT): loop body
                                (4 - g % 4) % 4 for g groups after the first, 4 (g = 0: none), or for g <= 4 straight
                                body 4 - g (entry 9 - g) */
    int32_t variant;         /* 40: 1 (pre-shift e) | 2 (clamp to act_min, act_max) */
    int32_t out_zp;          /* 44: the requantization's addend */
} mcu_pw3_job;

/*
 * Three output pixels, two output channels at a time, every channel pair of the stream (high-word requantization):
 * per group of 4 inputs both channels' weight words widened once and used for the three pixels (12 SMLAD); r0 col, r1
 * the stream, r2-r4 channel a's sums of pixels 0-2, r5-r7 channel b's, r8-r11 the weights, r12/lr a pixel's two words.
 * The groups after the first run in a loop unrolled four times, entered part way (the job's entry, an address loaded
 * into pc), so a pair spends no instruction on counting them; a pair of at most five groups runs them straight.
 */
#define MCU_PW3_WEIGHTS MCU_PW_WEIGHTS("r1", "r8", "r9", "r10", "r11")
/* one pixel's words (r12, lr) into channel a's sum `a` and b's `b`, starting from a_in and b_in */
#define MCU_PW3_PIXEL(a, b, a_in, b_in) MCU_PW_PIXEL(a, b, a_in, b_in, "r12", "lr", "r8", "r9", "r10", "r11")
#define MCU_PW3_GROUP                                                                                                  \
    MCU_PW3_WEIGHTS                                                                                                    \
    "ldrd   r12, lr, [r0], #8\n\t" MCU_PW3_PIXEL("r2", "r5", "r2", "r5")                                               \
    "ldrd   r12, lr, [r0], #8\n\t" MCU_PW3_PIXEL("r3", "r6", "r3", "r6")                                               \
    "ldrd   r12, lr, [r0], #8\n\t" MCU_PW3_PIXEL("r4", "r7", "r4", "r7")
/* the first group, after the biases (r2, r5): pixels 2 and 1 start from them before pixel 0 moves on */
#define MCU_PW3_FIRST                                                                                                  \
    "ldrd   r2, r5, [r1], #8\n\t"                                                                                      \
    MCU_PW3_WEIGHTS                                                                                                    \
    "ldrd   r12, lr, [r0, #16]\n\t" MCU_PW3_PIXEL("r4", "r7", "r2", "r5")                                              \
    "ldrd   r12, lr, [r0, #8]\n\t" MCU_PW3_PIXEL("r3", "r6", "r2", "r5")                                               \
    "ldrd   r12, lr, [r0], #24\n\t" MCU_PW3_PIXEL("r2", "r5", "r2", "r5")
/* mult (r8, r9) and the shifts h (r12, e_a | e_b << 16 shifted left by 8), the sums shifted left */
#define MCU_PW3_PRESHIFT                                                                                               \
    "ldrd   r8, r9, [r1], #8\n\t"                                                                                      \
    "ldr    r12, [r1], #4\n\t"                                                                                         \
    "lsr    lr, r12, #8\n\t"                                                                                           \
    "lsl    r2, r2, lr\n\t"                                                                                            \
    "lsl    r3, r3, lr\n\t"                                                                                            \
    "lsl    r4, r4, lr\n\t"                                                                                            \
    "lsr    lr, r12, #24\n\t"                                                                                          \
    "lsl    r5, r5, lr\n\t"                                                                                            \
    "lsl    r6, r6, lr\n\t"                                                                                            \
    "lsl    r7, r7, lr\n\t"
/* the same without the pre-shift: mult, past h */
#define MCU_PW3_NO_PRESHIFT "ldrd   r8, r9, [r1], #12\n\t"
/* mult (r8, r9) of the pair and out_zp (r10, from the frame) */
#define MCU_PW3_SCALE                                                                                                  \
    "ldr    r10, [sp, #44]\n\t"                                                                                        \
    "smmlar r2, r2, r8, r10\n\t"                                                                                      \
    "smmlar r3, r3, r8, r10\n\t"                                                                                      \
    "smmlar r4, r4, r8, r10\n\t"                                                                                      \
    "smmlar r5, r5, r9, r10\n\t"                                                                                      \
    "smmlar r6, r6, r9, r10\n\t"                                                                                      \
    "smmlar r7, r7, r9, r10\n\t"
/* saturated and packed per pixel as [a b] */
#define MCU_PW3_PACK                                                                                                   \
    "ssat   r2, #8, r2\n\t"                                                                                            \
    "ssat   r3, #8, r3\n\t"                                                                                            \
    "ssat   r4, #8, r4\n\t"                                                                                            \
    "ssat   r5, #8, r5\n\t"                                                                                            \
    "ssat   r6, #8, r6\n\t"                                                                                            \
    "ssat   r7, #8, r7\n\t"                                                                                            \
    "bfi    r2, r5, #8, #8\n\t"                                                                                        \
    "bfi    r3, r6, #8, #8\n\t"                                                                                        \
    "bfi    r4, r7, #8, #8\n\t"
/* pixels 0 and 1 as one word [a0 b0 a1 b1] and pixel 2 clamped byte-wise to lo4, hi4 (sp+24, sp+28) */
#define MCU_PW3_CLAMP                                                                                                  \
    "ldrd   r11, r12, [sp, #24]\n\t"                                                                                   \
    "bfi    r2, r3, #16, #16\n\t"                                                                                      \
    "ssub8  lr, r2, r11\n\t"                                                                                           \
    "sel    r2, r2, r11\n\t"                                                                                           \
    "ssub8  lr, r12, r2\n\t"                                                                                           \
    "sel    r2, r2, r12\n\t"                                                                                           \
    "ssub8  lr, r4, r11\n\t"                                                                                           \
    "sel    r4, r4, r11\n\t"                                                                                           \
    "ssub8  lr, r12, r4\n\t"                                                                                           \
    "sel    r4, r4, r12\n\t"                                                                                           \
    "lsr    r3, r2, #16\n\t"
/* the groups after the first: a loop unrolled four times, entered at body g0-g3, and for a pair of at most 5 groups
   the same bodies once more without the loop (h0-h3, into their own copy of the requantization); -Os: one body
   (every entry g0, the loop only) */
#ifdef __OPTIMIZE_SIZE__
#define MCU_PW3_GROUPS(v)                                                                                              \
    ".Lmcu_pw3_g0" v ":\n\t"                                                                                           \
    ".set   .Lmcu_pw3_g1" v ", .Lmcu_pw3_g0" v "\n\t"                                                                  \
    ".set   .Lmcu_pw3_g2" v ", .Lmcu_pw3_g0" v "\n\t"                                                                  \
    ".set   .Lmcu_pw3_g3" v ", .Lmcu_pw3_g0" v "\n\t" MCU_PW3_GROUP
#define MCU_PW3_STRAIGHT(v, pre, clamp)                                                                                \
    ".set   .Lmcu_pw3_h0" v ", .Lmcu_pw3_g0" v "\n\t"                                                                  \
    ".set   .Lmcu_pw3_h1" v ", .Lmcu_pw3_g0" v "\n\t"                                                                  \
    ".set   .Lmcu_pw3_h2" v ", .Lmcu_pw3_g0" v "\n\t"                                                                  \
    ".set   .Lmcu_pw3_h3" v ", .Lmcu_pw3_g0" v "\n\t"
#else
#define MCU_PW3_GROUPS(v)                                                                                              \
    ".Lmcu_pw3_g0" v ":\n\t" MCU_PW3_GROUP                                                                             \
    ".Lmcu_pw3_g1" v ":\n\t" MCU_PW3_GROUP                                                                             \
    ".Lmcu_pw3_g2" v ":\n\t" MCU_PW3_GROUP                                                                             \
    ".Lmcu_pw3_g3" v ":\n\t" MCU_PW3_GROUP
#define MCU_PW3_STRAIGHT(v, pre, clamp)                                                                                \
    ".Lmcu_pw3_h0" v ":\n\t" MCU_PW3_GROUP                                                                             \
    ".Lmcu_pw3_h1" v ":\n\t" MCU_PW3_GROUP                                                                             \
    ".Lmcu_pw3_h2" v ":\n\t" MCU_PW3_GROUP                                                                             \
    ".Lmcu_pw3_h3" v ":\n\t" MCU_PW3_GROUP                                                                             \
    MCU_PW3_REQUANT(v, pre, clamp)
#endif
/* the pair's requantization and stores, then the next pair or the end */
#define MCU_PW3_REQUANT(v, pre, clamp)                                                                                 \
    pre MCU_PW3_SCALE MCU_PW3_PACK clamp                                                                               \
    "ldm    sp, {r8, r9, r10}\n\t"                                                                                     \
    "strh   r2, [r8], #2\n\t"                                                                                          \
    "strh   r3, [r9], #2\n\t"                                                                                          \
    "strh   r4, [r10], #2\n\t"                                                                                         \
    "stm    sp, {r8, r9, r10}\n\t"                                                                                     \
    "ldr    r12, [sp, #20]\n\t"                                                                                        \
    "cmp    r1, r12\n\t"                                                                                               \
    "bne    .Lmcu_pw3_pair" v "\n\t"                                                                                   \
    "b      .Lmcu_pw3_done\n\t"
/* A variant: where a pair's groups after the first start (the job's entry, an index into the variant's table of
   addresses: g0-g3, the requantization, h0-h3) becomes the address once per call, so a pair jumps there with one
   load into pc. */
#define MCU_PW3_VARIANT(v, pre, clamp)                                                                                 \
    ".Lmcu_pw3_v" v ":\n\t"                                                                                            \
    "ldr    r12, [sp, #36]\n\t"                                                                                        \
    "adr.w  r0, .Lmcu_pw3_entries" v "\n\t"                                                                            \
    "ldr    r12, [r0, r12, lsl #2]\n\t"                                                                                \
    "str    r12, [sp, #36]\n\t"                                                                                        \
    ".Lmcu_pw3_pair" v ":\n\t"                                                                                         \
    "ldr    r0, [sp, #12]\n\t"                                                                                         \
    MCU_PW3_FIRST                                                                                                      \
    "ldr    pc, [sp, #36]\n\t"                                                                                         \
    MCU_PW3_STRAIGHT(v, pre, clamp)                                                                                    \
    MCU_PW3_GROUPS(v)                                                                                                  \
    "ldr    r12, [sp, #16]\n\t"                                                                                        \
    "cmp    r0, r12\n\t"                                                                                               \
    "bne    .Lmcu_pw3_g0" v "\n\t"                                                                                     \
    ".Lmcu_pw3_requant" v ":\n\t"                                                                                      \
    MCU_PW3_REQUANT(v, pre, clamp)                                                                                     \
    ".p2align 2\n\t"                                                                                                   \
    ".Lmcu_pw3_entries" v ":\n\t" /* Thumb addresses: bit 0 set */                                                    \
    ".word  .Lmcu_pw3_g0" v " + 1, .Lmcu_pw3_g1" v " + 1, .Lmcu_pw3_g2" v " + 1, .Lmcu_pw3_g3" v " + 1\n\t"             \
    ".word  .Lmcu_pw3_requant" v " + 1\n\t"                                                                            \
    ".word  .Lmcu_pw3_h0" v " + 1, .Lmcu_pw3_h1" v " + 1, .Lmcu_pw3_h2" v " + 1, .Lmcu_pw3_h3" v " + 1\n\t"

/* Every channel pair of the job (at least one) for its three pixels. */
__attribute__((naked, noinline, unused)) static void mcu_pointwise_run3(const mcu_pw3_job *job __attribute__((unused)))
{
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "sub    sp, sp, #48\n\t"
        "ldm    r0, {r1-r12}\n\t"
        "stm    sp, {r1-r12}\n\t"
        "ldr    r1, [sp, #32]\n\t"
        "ldr    r12, [sp, #40]\n\t"
        "tbh    [pc, r12, lsl #1]\n\t"
        ".Lmcu_pw3_table:\n\t"
        ".hword (.Lmcu_pw3_v0 - .Lmcu_pw3_table) / 2\n\t"
        ".hword (.Lmcu_pw3_v1 - .Lmcu_pw3_table) / 2\n\t"
        ".hword (.Lmcu_pw3_v2 - .Lmcu_pw3_table) / 2\n\t"
        ".hword (.Lmcu_pw3_v3 - .Lmcu_pw3_table) / 2\n\t"
        MCU_PW3_VARIANT("0", MCU_PW3_NO_PRESHIFT, "")
        MCU_PW3_VARIANT("1", MCU_PW3_PRESHIFT, "")
        MCU_PW3_VARIANT("2", MCU_PW3_NO_PRESHIFT, MCU_PW3_CLAMP)
        MCU_PW3_VARIANT("3", MCU_PW3_PRESHIFT, MCU_PW3_CLAMP)
        ".Lmcu_pw3_done:\n\t"
        "add    sp, sp, #48\n\t"
        "pop    {r4-r11, pc}\n\t");
}

/* The parts of a job that stay the same for every pixel triple of a call (col: room for the expanded inputs,
   mcu_pointwise_col_words); 0 when the layer's requantization (64-bit) or a single output channel leaves the triples
   to the pair kernel. */
static inline int mcu_pointwise_job3(const mcu_conv_params *p, mcu_pw3_job *job, uint32_t *col)
{
    const int chunks = (mcu_depth(p) + 3) >> 2, pairs = p->out_c >> 1;
    if (!p->high_word || pairs == 0) return 0;
    job->col = col;
    job->col_end = col + 6 * chunks;
    job->w = (const mcu_word *)(const void *)p->weights;
    job->w_end = job->w + pairs * mcu_pointwise_pair_words(mcu_depth(p));
    job->lo4 = (uint8_t)p->act_min * 0x01010101u;
    job->hi4 = (uint8_t)p->act_max * 0x01010101u;
    const int groups = chunks - 1; /* after the first */
    job->entry = groups == 0 ? 4 : groups <= 4 ? 9 - groups : (4 - groups % 4) % 4;
    job->variant = (p->high_word & 2 ? 1 : 0) | (p->act_min > -128 || p->act_max < 127 ? 2 : 0);
    job->out_zp = p->out_zp;
    return 1;
}

/* Three output pixels to o0, o1 and o2 from their inputs expanded in the job's col (mcu_pointwise_expand3's layout),
   with a job of mcu_pointwise_job3. */
static inline void mcu_pointwise_three_expanded(const mcu_conv_params *p, mcu_pw3_job *job, int8_t *o0, int8_t *o1, int8_t *o2)
{
    const int cout = p->out_c;
    job->o[0] = o0;
    job->o[1] = o1;
    job->o[2] = o2;
    mcu_pointwise_run3(job);
    if (cout & 1) {
        int8_t *const o[3] = {o0 + cout - 1, o1 + cout - 1, o2 + cout - 1};
        mcu_pointwise_lone(p, job->w_end, job->col, 3, o);
    }
}

/* Three output pixels (x0 -> o0, x1 -> o1, x2 -> o2). */
static MCU_NOINLINE void mcu_pointwise_three(const mcu_conv_params *p, mcu_pw3_job *job, const int8_t *x0, const int8_t *x1,
                                             const int8_t *x2, int8_t *o0, int8_t *o1, int8_t *o2)
{
    mcu_pointwise_expand3(x0, x1, x2, mcu_depth(p), job->col);
    mcu_pointwise_three_expanded(p, job, o0, o1, o2);
}
#endif

/* Words of a pointwise (or im2col) convolution's expanded inputs: three pixels' (the two of the pair kernel fit in
   them) on the DSP path, two pixels' otherwise; the plan's columns (MemoryLayout.PointwiseColumnBytes) or the stack. */
static inline int mcu_pointwise_col_words(int depth)
{
#if MCU_USE_DSP
    return 6 * ((depth + 3) >> 2);
#else
    return (depth + 3) & ~3;
#endif
}

/* Pixels of a run of `total` that go in pairs after the triples: one pixel left over would cost a whole pair, so
   the last four go as two pairs instead. */
static inline int mcu_pointwise_pair_tail(int total) { return total % 3 == 1 && total >= 4 ? 4 : total % 3; }

/* The pixel after (y, x) in region r, in row order. */
static inline void mcu_region_next(mcu_region r, int *y, int *x)
{
    if (++*x == r.x0 + r.w) {
        *x = r.x0;
        ++*y;
    }
}

/* A pointwise convolution (or im2col column) of two pixels, x0 -> o0 and x1 -> o1; x1 = x0 and o1 = o0 for one
   pixel. col: scratch of (depth + 3) & ~3 words. */
static inline void mcu_pointwise_two(const mcu_conv_params *p, const int8_t *x0, const int8_t *x1, int8_t *o0, int8_t *o1,
                                     uint32_t *col)
{
#if MCU_USE_DSP
    mcu_pointwise_expand(x0, x1, mcu_depth(p), col);
    mcu_pointwise_pair(p, col, o0, o1);
#else
    (void)col;
    mcu_pointwise_pixel(p, x0, o0);
    if (o1 != o0) mcu_pointwise_pixel(p, x1, o1);
#endif
}

/* Pixels are taken in row order across rows, three at a time on the DSP path (the last one to four in pairs), two at
   a time otherwise; a group may span two rows, so no width leaves a pixel alone. */
MCU_KERNEL void mcu_pointwise(const mcu_conv_params *p, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    const int cin = p->in_c, cout = p->out_c;
    uint32_t stack_col[p->columns ? 1 : mcu_pointwise_col_words(cin)];
    uint32_t *const col = p->columns ? p->columns : stack_col;
#if MCU_USE_DSP
    mcu_pw3_job job;
    if (mcu_pointwise_job3(p, &job, col)) { /* three pixels at a time in row order across rows, the last ones in pairs */
        const int8_t *qx[3];
        int8_t *qo[3];
        int nq = 0, left3 = r.h * r.w - mcu_pointwise_pair_tail(r.h * r.w); /* pixels still for the triples */
        for (int oy = r.y0; oy < r.y0 + r.h; ++oy) {
            const int8_t *x = in + mcu_offset(ib, oy, r.x0, cin);
            int8_t *o = out + mcu_offset(ob, oy, r.x0, cout);
            for (int n = r.w; n > 0;) {
                if (nq == 0 && left3 >= 3 && n >= 3) { /* a whole triple in the row */
                    mcu_pointwise_three(p, &job, x, x + cin, x + 2 * cin, o, o + cout, o + 2 * cout);
                    x += 3 * cin;
                    o += 3 * cout;
                    n -= 3;
                    left3 -= 3;
                    continue;
                }
                qx[nq] = x;
                qo[nq] = o;
                ++nq;
                x += cin;
                o += cout;
                --n;
                if (left3 > 0 && nq == 3) {
                    mcu_pointwise_three(p, &job, qx[0], qx[1], qx[2], qo[0], qo[1], qo[2]);
                    nq = 0;
                    left3 -= 3;
                } else if (left3 == 0 && nq == 2) {
                    mcu_pointwise_two(p, qx[0], qx[1], qo[0], qo[1], col);
                    nq = 0;
                }
            }
        }
        if (nq) mcu_pointwise_two(p, qx[0], qx[0], qo[0], qo[0], col); /* one pixel alone */
        return;
    }
#endif
    const int8_t *held_x = NULL;
    int8_t *held_o = NULL;
    for (int oy = r.y0; oy < r.y0 + r.h; ++oy) {
        const int8_t *x = in + mcu_offset(ib, oy, r.x0, cin);
        int8_t *o = out + mcu_offset(ob, oy, r.x0, cout);
        int n = r.w;
        if (held_x && n > 0) {
            mcu_pointwise_two(p, held_x, x, held_o, o, col);
            held_x = NULL;
            x += cin;
            o += cout;
            --n;
        }
        for (; n >= 2; n -= 2, x += 2 * cin, o += 2 * cout) mcu_pointwise_two(p, x, x + cin, o, o + cout, col);
        if (n) {
            held_x = x;
            held_o = o;
        }
    }
    if (held_x) mcu_pointwise_two(p, held_x, held_x, held_o, held_o, col);
}

/*
 * A convolution of one group whose window holds at most MCU_IM2COL_MAX values (the first RGB layer, say): per output
 * pixel the window is gathered into a column (taps outside the input filled with in_zp, which then contribute
 * nothing), and the columns of two pixels go through the pointwise kernel as a 1x1 convolution of depth kh * kw * in_c
 * (same weight stream, bias folded over the whole window): sum x*w + folded bias is the reference's bias +
 * sum (x - in_zp) * w over the taps inside the input.
 */
#define MCU_IM2COL_MAX 256

/* n bytes from src to dst, a word at a time (n is small here: a library call would cost more). */
static inline void mcu_copy_small(int8_t *dst, const int8_t *src, int n)
{
    for (; n >= 4; n -= 4, dst += 4, src += 4) *(mcu_uword *)dst = *(const mcu_uword *)src;
    for (; n > 0; --n) *dst++ = *src++;
}

static inline void mcu_im2col_gather(const mcu_conv_params *p, const int8_t *in, mcu_region ib, int oy, int ox, int8_t *col)
{
    /* the parameters as locals: the stores below may alias *p */
    const int cin = p->in_c, kh = p->kh, kw = p->kw, dh = p->dh, dw = p->dw, in_h = p->in_h, in_w = p->in_w;
    const int8_t zp = (int8_t)p->in_zp;
    const int iy0 = oy * p->sh - p->pad_top, ix0 = ox * p->sw - p->pad_left, run = kw * cin;
    const int columns_inside = dw == 1 && ix0 >= 0 && ix0 + kw - 1 < in_w;
    if (columns_inside && iy0 >= 0 && iy0 + (kh - 1) * dh < in_h) { /* the usual case: kh runs of bytes */
        const int8_t *src = in + mcu_offset(ib, iy0, ix0, cin);
        const int down = ib.w * cin * dh;
        for (int ky = 0; ky < kh; ++ky, src += down, col += run) mcu_copy_small(col, src, run);
        return;
    }
    for (int ky = 0, iy = iy0; ky < kh; ++ky, iy += dh, col += run) {
        if (iy < 0 || iy >= in_h) {
            for (int i = 0; i < run; ++i) col[i] = zp;
            continue;
        }
        const int8_t *src = in + mcu_offset(ib, iy, ib.x0, cin);
        if (columns_inside) { /* the row's taps are one run of bytes */
            mcu_copy_small(col, src + (ix0 - ib.x0) * cin, run);
            continue;
        }
        for (int kx = 0, ix = ix0; kx < kw; ++kx, ix += dw) {
            int8_t *d = col + kx * cin;
            if (ix < 0 || ix >= in_w) for (int i = 0; i < cin; ++i) d[i] = zp;
            else mcu_copy_small(d, src + (ix - ib.x0) * cin, cin);
        }
    }
}

#if MCU_USE_DSP
/* One pixel's window of a 3x3 convolution of 3 channels, inside the input (src at its top-left tap, rows `down` bytes
   apart), straight into the expanded words of its column (7 groups of 4 of the 27 values, the last padded with zero;
   `stride` words from a group to the next): the groups that cross a row of the window are put together from the rows'
   bytes, so nothing is gathered first. */
static inline void mcu_rgb3x3_expand(const int8_t *src, int down, uint32_t *col, int stride)
{
    const int8_t *r1 = src + down, *r2 = r1 + down;
    uint32_t g[7];
    g[0] = *(const mcu_uword *)src;
    g[1] = *(const mcu_uword *)(src + 4);
    g[2] = (*(const mcu_uword *)(r1 - 1) & ~0xffu) | (uint8_t)src[8];   /* [r0 8] [r1 0-2] */
    g[3] = *(const mcu_uword *)(r1 + 3);
    g[4] = (uint32_t)*(const mcu_uhalf *)(r1 + 7) | (uint32_t)*(const mcu_uhalf *)r2 << 16;
    g[5] = *(const mcu_uword *)(r2 + 2);
    g[6] = *(const mcu_uword *)(r2 + 5) >> 8;                         /* [r2 6-8] and zero */
#pragma GCC unroll 7 /* g stays in registers, the stores at fixed offsets */
    for (int k = 0; k < 7; ++k, col += stride) {
        col[0] = __sxtb16(g[k]);
        col[1] = mcu_sxtb16_ror8(g[k]);
    }
}

/* One pixel's gathered column (depth values) as expanded words, `stride` words from a group to the next. */
static inline void mcu_expand_one(const int8_t *x, int depth, uint32_t *col, int stride)
{
    int i = 0;
    for (; i + 4 <= depth; i += 4, col += stride) {
        const uint32_t v = *(const mcu_uword *)(x + i);
        col[0] = __sxtb16(v);
        col[1] = mcu_sxtb16_ror8(v);
    }
    if (i < depth) mcu_pointwise_expand_tail(&x, 1, i, depth, col);
}
#endif

MCU_KERNEL void mcu_conv_im2col(const mcu_conv_params *p, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    const int depth = mcu_depth(p), cout = p->out_c, total = r.h * r.w;
    int8_t col0[MCU_IM2COL_MAX], col1[MCU_IM2COL_MAX];
    int ya = r.y0, xa = r.x0, i = 0;
    uint32_t expanded[mcu_pointwise_col_words(depth)];
#if MCU_USE_DSP
    mcu_pw3_job job;
    /* a 3x3 window of 3 channels (an RGB input) inside the input goes straight to its expanded words */
    const int rgb = p->kh == 3 && p->kw == 3 && p->in_c == 3 && p->dh == 1 && p->dw == 1, down = ib.w * 3;
    if (mcu_pointwise_job3(p, &job, expanded)) /* three pixels at a time, the last ones in pairs */
        for (const int end3 = total - mcu_pointwise_pair_tail(total); i < end3; i += 3) {
            int8_t *o[3];
            for (int k = 0; k < 3; ++k) {
                const int iy0 = ya * p->sh - p->pad_top, ix0 = xa * p->sw - p->pad_left;
                o[k] = out + mcu_offset(ob, ya, xa, cout);
                if (rgb && iy0 >= 0 && iy0 + 2 < p->in_h && ix0 >= 0 && ix0 + 2 < p->in_w)
                    mcu_rgb3x3_expand(in + mcu_offset(ib, iy0, ix0, 3), down, expanded + 2 * k, 6);
                else {
                    mcu_im2col_gather(p, in, ib, ya, xa, col0);
                    mcu_expand_one(col0, depth, expanded + 2 * k, 6);
                }
                mcu_region_next(r, &ya, &xa);
            }
            mcu_pointwise_three_expanded(p, &job, o[0], o[1], o[2]);
        }
#endif
    for (; i < total; i += 2) {
        const int two = i + 1 < total;
        int yb = ya, xb = xa;
        if (two) mcu_region_next(r, &yb, &xb);
        mcu_im2col_gather(p, in, ib, ya, xa, col0);
        if (two) mcu_im2col_gather(p, in, ib, yb, xb, col1);
        mcu_pointwise_two(p, col0, two ? col1 : col0, out + mcu_offset(ob, ya, xa, cout), out + mcu_offset(ob, yb, xb, cout), expanded);
        ya = yb;
        xa = xb;
        mcu_region_next(r, &ya, &xa);
    }
}

/* Depthwise convolution (one filter per channel), weights [kh][kw][c]. */
MCU_KERNEL void mcu_depthwise(const mcu_conv_params *p, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    const int c = p->out_c;
    int tap_in[64], tap_w[64];
    for (int oy = r.y0; oy < r.y0 + r.h; ++oy) {
        for (int ox = r.x0; ox < r.x0 + r.w; ++ox) {
            const int iy0 = oy * p->sh - p->pad_top, ix0 = ox * p->sw - p->pad_left;
            int taps = 0;
            for (int ky = 0; ky < p->kh; ++ky) {
                const int iy = iy0 + ky * p->dh;
                if (iy < 0 || iy >= p->in_h) continue;
                for (int kx = 0; kx < p->kw; ++kx) {
                    const int ix = ix0 + kx * p->dw;
                    if (ix < 0 || ix >= p->in_w) continue;
                    tap_in[taps] = mcu_offset(ib, iy, ix, c);
                    tap_w[taps] = (ky * p->kw + kx) * c;
                    ++taps;
                }
            }
            int8_t *o = out + mcu_offset(ob, oy, ox, c);
            for (int ch = 0; ch < c; ++ch) {
                int32_t acc = p->bias[ch];
                for (int t = 0; t < taps; ++t) acc += (in[tap_in[t] + ch] - p->in_zp) * p->weights[tap_w[t] + ch];
                o[ch] = mcu_clamp(mcu_requant(acc, p->mult[ch], p->shift[ch]) + p->out_zp, p->act_min, p->act_max);
            }
        }
    }
}

/*
 * Depthwise convolution written over its own input (MCUNetV2's in-place depthwise): buf holds the input region ib
 * and receives the output region ob from its first byte, channels last. Output (pixel p, channel ch) lands on input
 * (pixel p, channel ch), so computing a block of MCU_DW_BLOCK channels at a time only overwrites the block at hand.
 * Within a block an output row waits in a ring of `rows` scratch rows (ob.w pixels x MCU_DW_BLOCK bytes) until no
 * later output row reads the input rows it lands on (the rule of DepthwiseInPlace.SafeAfter in the compiler, which
 * sized the ring).
 * The bias comes with the zero point folded over the whole window, bias - in_zp * sum(w) (the compiler folds it), and
 * a window that reaches past the input is computed with in_zp in the taps outside, which then add in_zp * w back: the
 * sum equals the reference's bias + sum (x - in_zp) * w over the taps inside the input.
 */
#define MCU_DW_BLOCK 4
#define MCU_DW_MAX_TAPS 64

static inline int mcu_dw_safe_after(const mcu_conv_params *p, mcu_region ib, mcu_region ob, int row)
{
    int input_row = ((row + 1) * ob.w - 1) / ib.w;
    if (input_row > ib.h - 1) input_row = ib.h - 1;
    int y = (ib.y0 + input_row + p->pad_top) / p->sh;
    if (y > ob.y0 + ob.h - 1) y = ob.y0 + ob.h - 1;
    return y - ob.y0;
}

/* `pixels` pixels of a channel block (n channels), MCU_DW_BLOCK bytes apart at held (word-aligned), to dst, c bytes
   apart: how a depthwise kernel writes the output rows it held back over the buffer. */
static inline void mcu_dw_copy_pixels(int8_t *dst, int c, const int8_t *held, int pixels, int n)
{
    int x = 0;
    if (n == MCU_DW_BLOCK) {
#if MCU_USE_DSP
        if (pixels >= 2) { /* two pixels a turn */
            const int8_t *const end = held + 8 * (pixels >> 1);
            uint32_t a, b;
            __asm__ volatile("1:\n\t"
                             "ldrd   %[a], %[b], [%[h]], #8\n\t"
                             "str    %[b], [%[d], %[c]]\n\t"
                             "str    %[a], [%[d]]\n\t"
                             "add    %[d], %[d], %[c], lsl #1\n\t"
                             "cmp    %[h], %[end]\n\t"
                             "bne    1b\n\t"
                             : [h] "+&r"(held), [d] "+&r"(dst), [a] "=&r"(a), [b] "=&r"(b)
                             : [c] "r"(c), [end] "r"(end)
                             : "memory", "cc");
            x = pixels & ~1;
        }
#endif
        for (; x < pixels; ++x, dst += c, held += MCU_DW_BLOCK) *(mcu_uword *)dst = *(const mcu_uword *)held;
    } else
        for (; x < pixels; ++x, dst += c, held += MCU_DW_BLOCK) for (int j = 0; j < n; ++j) dst[j] = held[j];
}

/* Output row `row` of the channel block at cb (n channels), held in the scratch ring, to its place in the buffer. */
static inline void mcu_dw_write_row(int8_t *buf, mcu_region ob, int c, int cb, int n, int row, const int8_t *scratch, int rows)
{
    mcu_dw_copy_pixels(buf + row * ob.w * c + cb, c, scratch + (row % rows) * ob.w * MCU_DW_BLOCK, ob.w, n);
}

/* A block's constants: per channel the bias with the zero point folded over the whole window, multiplier and shift;
   on the DSP path also one stream of words for mcu_dw4_row: bias[4], per tap the block's weights as sign-extended
   halves [c0 c2] [c1 c3], then (see the high-word requantization) mult[4], out_zp, the clamp bounds lo4, hi4, in_zp
   in every byte and e[4] (MCU_DW_TAIL_*). */
typedef struct {
    int32_t bias[MCU_DW_BLOCK], mult[MCU_DW_BLOCK], shift[MCU_DW_BLOCK];
    int32_t out_zp, act_min, act_max;
    int high_word; /* 0: mcu_requant; else 1 | 2 (a shift below 32: pre-shift e) */
    const uint32_t *stream;
} mcu_dw4_consts;

/* The constants of the block at cb (n channels) for the C paths (mcu_dw_output). */
static inline void mcu_dw4_consts_c(const mcu_conv_params *p, int cb, int n, mcu_dw4_consts *k)
{
    k->out_zp = p->out_zp;
    k->act_min = p->act_min;
    k->act_max = p->act_max;
    for (int j = 0; j < n; ++j) {
        k->bias[j] = p->bias[cb + j];
        k->mult[j] = p->mult[cb + j];
        k->shift[j] = p->shift[cb + j];
    }
}

/* Output j of the block from its sum (bias included). */
static inline int8_t mcu_dw_output(const mcu_dw4_consts *k, int j, int32_t acc)
{
    return mcu_clamp(mcu_requant(acc, k->mult[j], k->shift[j]) + k->out_zp, k->act_min, k->act_max);
}

/* Words of a block's stream (mcu_dw4_block) before the taps, and after them; the tail starts with mult[4]. */
#define MCU_DW_STREAM_HEAD 4
#define MCU_DW_STREAM_TAIL 12
#define MCU_DW_TAIL_ZP 4      /* out_zp: the requantization's addend */
#define MCU_DW_TAIL_LO 5      /* act_min in every byte, then act_max (6) */
#define MCU_DW_TAIL_IN_ZP 7   /* in_zp in every byte: the value of a tap outside the input */
#define MCU_DW_TAIL_E 8       /* the pre-shifts e[4] */

#if MCU_USE_DSP
#define MCU_STR_(x) #x
#define MCU_STR(x) MCU_STR_(x)

/* One tap of a 4-channel block: the input word at t (+ offset), sign-extended in halves, times the tap's two weight
   words at w (advanced), into a0..a3 (SMLABB/SMLATT). The kernels' loops are written out because GCC spills in them. */
#define MCU_DW_TAP(offset) "ldr    %[xv], [%[t]" offset "]\n\t" MCU_DW_TAP_MAC
/* the tap's multiply-accumulate, the input word in xv */
#define MCU_DW_TAP_MAC                                                                                                 \
    "sxtb16 %[xe], %[xv]\n\t"                                                                                            \
    "sxtb16 %[xv], %[xv], ror #8\n\t"                                                                                    \
    "ldrd   %[w0], %[w1], [%[w]], #8\n\t"                                                                                \
    "smlabb %[a0], %[xe], %[w0], %[a0]\n\t"                                                                              \
    "smlatt %[a2], %[xe], %[w0], %[a2]\n\t"                                                                              \
    "smlabb %[a1], %[xv], %[w1], %[a1]\n\t"                                                                              \
    "smlatt %[a3], %[xv], %[w1], %[a3]\n\t"
/* The pre-shift e of the high-word requantization (w at the tail) of a0..a3, for blocks with a shift below 32. */
#define MCU_DW_PRESHIFT                                                                                                \
    "ldrd   %[w0], %[w1], [%[w], #(4 * " MCU_STR(MCU_DW_TAIL_E) ")]\n\t"                                                  \
    "ldrd   %[xv], %[xe], [%[w], #(4 * " MCU_STR(MCU_DW_TAIL_E) " + 8)]\n\t"                                                                               \
    "lsl    %[a0], %[a0], %[w0]\n\t"                                                                                     \
    "lsl    %[a1], %[a1], %[w1]\n\t"                                                                                     \
    "lsl    %[a2], %[a2], %[xv]\n\t"                                                                                     \
    "lsl    %[a3], %[a3], %[xe]\n\t"
/* The high-word requantization of a0..a3 (mult[4] and out_zp read from w at the tail, w left at MCU_DW_TAIL_LO);
   MCU_DW_PACK then packs into a0. */
#define MCU_DW_SCALE                                                                                                   \
    "ldrd   %[w0], %[w1], [%[w]], #8\n\t"                                                                                \
    "ldr    %[xv], [%[w], #(4 * " MCU_STR(MCU_DW_TAIL_ZP) " - 8)]\n\t"                                                    \
    "smmlar %[a0], %[a0], %[w0], %[xv]\n\t"                                                                             \
    "smmlar %[a1], %[a1], %[w1], %[xv]\n\t"                                                                             \
    "ldrd   %[w0], %[w1], [%[w]], #(4 * " MCU_STR(MCU_DW_TAIL_LO) " - 8)\n\t"                                             \
    "smmlar %[a2], %[a2], %[w0], %[xv]\n\t"                                                                             \
    "smmlar %[a3], %[a3], %[w1], %[xv]\n\t"
/* saturated, packed into a0 and clamped to the bounds (w at MCU_DW_TAIL_LO) */
#define MCU_DW_PACK                                                                                                    \
    "ssat   %[a0], #8, %[a0]\n\t"                                                                                        \
    "ssat   %[a1], #8, %[a1]\n\t"                                                                                        \
    "ssat   %[a2], #8, %[a2]\n\t"                                                                                        \
    "ssat   %[a3], #8, %[a3]\n\t"                                                                                        \
    "bfi    %[a0], %[a1], #8, #8\n\t"                                                                                    \
    "bfi    %[a0], %[a2], #16, #8\n\t"                                                                                   \
    "bfi    %[a0], %[a3], #24, #8\n\t"                                                                                   \
    "ldrd   %[w0], %[w1], [%[w]]\n\t"                                                                                    \
    "ssub8  %[xv], %[a0], %[w0]\n\t"                                                                                     \
    "sel    %[a0], %[a0], %[w0]\n\t"                                                                                     \
    "ssub8  %[xv], %[w1], %[a0]\n\t"                                                                                     \
    "sel    %[a0], %[a0], %[w1]\n\t"
/* the requantization variant of a block's flags (MCU_REQUANT_VARIANTS) */
#define MCU_DW_VARIANTS(flags, apply) MCU_REQUANT_VARIANTS(flags, apply, MCU_DW_PRESHIFT, MCU_DW_SCALE, MCU_DW_PACK)
#define MCU_DW_BIAS                                                                                                    \
    "ldrd   %[a0], %[a1], [%[w]], #8\n\t"                                                                                \
    "ldrd   %[a2], %[a3], [%[w]], #8\n\t"
#define MCU_DW_OPERANDS(t)                                                                                             \
    [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), [t] "+r"(t), [w] "+r"(w),                          \
    [xv] "=&r"(xv), [xe] "=&r"(xe), [w0] "=&r"(w0), [w1] "=&r"(w1)

#define MCU_DW_TAP_OPERANDS(t)                                                                                         \
    [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [t] "+r"(t), [w] "+r"(w),                              \
    [xv] "=&r"(xv), [xe] "=&r"(xe), [w0] "=&r"(w0), [w1] "=&r"(w1)

/* The block's four outputs from their sums to out; w: the stream after the taps. */
static inline void mcu_dw4_output(const mcu_dw4_consts *k, const uint32_t *w, int32_t a0, int32_t a1, int32_t a2, int32_t a3,
                                  int8_t *out)
{
    if (k->high_word) {
        uint32_t xv, xe, w0, w1;
#define MCU_DW_OUTPUT_ASM(requant)                                                                                     \
    __asm__ volatile(requant : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w),                  \
                     [xv] "=&r"(xv), [xe] "=&r"(xe), [w0] "=&r"(w0), [w1] "=&r"(w1) : : "memory");
        MCU_DW_VARIANTS(k->high_word, MCU_DW_OUTPUT_ASM)
        memcpy(out, &a0, 4);
        return;
    }
    out[0] = mcu_dw_output(k, 0, a0);
    out[1] = mcu_dw_output(k, 1, a1);
    out[2] = mcu_dw_output(k, 2, a2);
    out[3] = mcu_dw_output(k, 3, a3);
}

/* A 5x5 or 7x7 window with its own asm block: the model's source defines MCU_DW_KERNEL_5X5 / MCU_DW_KERNEL_7X7 when
   it has such a layer, so other models do not carry the code. */
static inline int mcu_dw_large(int kh, int kw)
{
#ifdef MCU_DW_KERNEL_5X5
    if (kh == 5 && kw == 5) return 1;
#endif
#ifdef MCU_DW_KERNEL_7X7
    if (kh == 7 && kw == 7) return 1;
#endif
    (void)kh;
    (void)kw;
    return 0;
}

/* `count` outputs of a 4-channel block along a row, windows inside the input: src at the first window's top-left
   tap; `step` bytes between taps, `down` between tap rows, `advance` between windows; out gets 4 bytes per output. */
static MCU_NOINLINE void mcu_dw4_row(const mcu_conv_params *p, const int8_t *src, int step, int down, int advance, int count,
                                     const mcu_dw4_consts *k, int8_t *out)
{
    const int kh = p->kh, kw = p->kw, step2 = 2 * step;
    const uint32_t *const stream = k->stream;
    uint32_t xv, xe, w0, w1;
    int32_t a0, a1, a2, a3;
    if (kh == 3 && kw == 3 && k->high_word) {
        /* the whole row in one loop per requantization variant */
#define MCU_DW_3X3                                                                                                     \
    MCU_DW_BIAS                                                                                                        \
    MCU_DW_TAP("") MCU_DW_TAP(", %[s1]") MCU_DW_TAP(", %[s2]") "add %[t], %[t], %[down]\n\t"                            \
    MCU_DW_TAP("") MCU_DW_TAP(", %[s1]") MCU_DW_TAP(", %[s2]") "add %[t], %[t], %[down]\n\t"                            \
    MCU_DW_TAP("") MCU_DW_TAP(", %[s1]") MCU_DW_TAP(", %[s2]")
#define MCU_DW_3X3_ROW(requant)                                                                                        \
    for (; count > 0; --count, src += advance, out += MCU_DW_BLOCK) {                                                  \
        const uint32_t *w = stream;                                                                                    \
        const int8_t *t = src;                                                                                         \
        __asm__ volatile(MCU_DW_3X3 requant                                                                            \
                         : MCU_DW_OPERANDS(t) : [s1] "r"(step), [s2] "r"(step2), [down] "r"(down) : "memory");         \
        memcpy(out, &a0, 4);                                                                                           \
    }
        MCU_DW_VARIANTS(k->high_word, MCU_DW_3X3_ROW)
        return;
    }
#if defined(MCU_DW_KERNEL_5X5) || defined(MCU_DW_KERNEL_7X7)
    if (k->high_word && mcu_dw_large(kh, kw)) {
        /* 5x5 and 7x7 windows, one asm block each (the requantization variant with the pre-shift) */
        const int next = down - kw * step;
#define MCU_DW_TAP_NEXT MCU_DW_TAP("") "add %[t], %[t], %[step]\n\t"
#define MCU_DW_LARGE_ROW(taps)                                                                                         \
    for (; count > 0; --count, src += advance, out += MCU_DW_BLOCK) {                                                  \
        const uint32_t *w = stream;                                                                                    \
        const int8_t *t = src;                                                                                         \
        __asm__ volatile(MCU_DW_BIAS taps MCU_DW_PRESHIFT MCU_DW_SCALE MCU_DW_PACK                                      \
                         : MCU_DW_OPERANDS(t) : [step] "r"(step), [next] "r"(next) : "memory");                       \
        memcpy(out, &a0, 4);                                                                                           \
    }
#ifdef MCU_DW_KERNEL_5X5
#define MCU_DW_ROW5 MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT "add %[t], %[t], %[next]\n\t"
        if (kh == 5) { MCU_DW_LARGE_ROW(MCU_DW_ROW5 MCU_DW_ROW5 MCU_DW_ROW5 MCU_DW_ROW5 MCU_DW_ROW5) return; }
#endif
#ifdef MCU_DW_KERNEL_7X7
#define MCU_DW_ROW7                                                                                                    \
    MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT MCU_DW_TAP_NEXT     \
    "add %[t], %[t], %[next]\n\t"
        if (kh == 7) { MCU_DW_LARGE_ROW(MCU_DW_ROW7 MCU_DW_ROW7 MCU_DW_ROW7 MCU_DW_ROW7 MCU_DW_ROW7 MCU_DW_ROW7 MCU_DW_ROW7) return; }
#endif
    }
#endif
    for (; count > 0; --count, src += advance, out += MCU_DW_BLOCK) {
        const uint32_t *w = stream;
        const int8_t *t = src;
        __asm__ volatile(MCU_DW_BIAS : MCU_DW_OPERANDS(t) : : "memory");
        for (int ky = 0; ky < kh; ++ky, t = src + ky * down)
            for (int n = kw; n > 0; --n)
                __asm__ volatile(MCU_DW_TAP("") "add %[t], %[t], %[s]\n\t" : MCU_DW_TAP_OPERANDS(t) : [s] "r"(step) : "memory");
        mcu_dw4_output(k, w, a0, a1, a2, a3, out);
    }
}

/* A tap of a 3x3 window that may lie outside the input: bit 31 of m (shifted out) says inside; outside, the tap
   reads the block's in_zp word, 18 - 2 i + MCU_DW_TAIL_IN_ZP words after tap i's weights in the stream (9 taps of 2
   words, then the tail). Conditional loads that do not execute touch no memory. */
#define MCU_DW_EDGE_TAP(i)                                                                                             \
    "lsls   %[m], %[m], #1\n\t"                                                                                          \
    "ite    cs\n\t"                                                                                                      \
    "ldrcs  %[xv], [%[t]]\n\t"                                                                                           \
    "ldrcc  %[xv], [%[w], #(4 * (18 - 2 * " #i " + " MCU_STR(MCU_DW_TAIL_IN_ZP) "))]\n\t"                               \
    "add    %[t], %[t], %[step]\n\t" MCU_DW_TAP_MAC

/* One output of a 4-channel 3x3 block (high word) whose window reaches past the input: t at its top-left tap (an
   address that may lie outside the buffer; only the taps inside are read), bit 31 - i of mask set for tap i inside. */
static MCU_NOINLINE void mcu_dw4_3x3_edge(const int8_t *t, int step, int down, uint32_t mask, const mcu_dw4_consts *k,
                                          int8_t *out)
{
    const uint32_t *w = k->stream;
    const int next_row = down - 3 * step;
    uint32_t xv, xe, w0, w1;
    int32_t a0, a1, a2, a3;
#define MCU_DW_3X3_EDGE                                                                                                \
    MCU_DW_BIAS                                                                                                        \
    MCU_DW_EDGE_TAP(0) MCU_DW_EDGE_TAP(1) MCU_DW_EDGE_TAP(2) "add %[t], %[t], %[next]\n\t"                              \
    MCU_DW_EDGE_TAP(3) MCU_DW_EDGE_TAP(4) MCU_DW_EDGE_TAP(5) "add %[t], %[t], %[next]\n\t"                              \
    MCU_DW_EDGE_TAP(6) MCU_DW_EDGE_TAP(7) MCU_DW_EDGE_TAP(8)
#define MCU_DW_EDGE_ASM(requant)                                                                                       \
    __asm__ volatile(MCU_DW_3X3_EDGE requant                                                                           \
                     : MCU_DW_OPERANDS(t), [m] "+r"(mask) : [step] "r"(step), [next] "r"(next_row) : "memory", "cc");
    MCU_DW_VARIANTS(k->high_word, MCU_DW_EDGE_ASM)
    memcpy(out, &a0, 4);
}

#endif

/* The block at cb (n channels): its constants for the C paths and its requantization variant (k->high_word, as
   MCU_REQUANT_VARIANTS reads it: | 2 pre-shift, 3 for the 5x5 and 7x7 windows); on the DSP
   path, for a whole block, its stream of words (k->stream), which the held-back-rows kernel and the compact rows'
   kernel read. */
static MCU_NOINLINE void mcu_dw4_block(const mcu_conv_params *p, int cb, int n, int taps, mcu_dw4_consts *k, uint32_t *stream)
{
    mcu_dw4_consts_c(p, cb, n, k);
    k->high_word = p->high_word ? 1 : 0;
    k->stream = 0;
#if MCU_USE_DSP
    if (n < MCU_DW_BLOCK) return;
    const int c = p->out_c;
    const int8_t *w = p->weights + cb;
    uint32_t *t = stream + MCU_DW_STREAM_HEAD;
#pragma GCC unroll 9
    for (int i = 0; i < taps; ++i, w += c, t += 2) {
        const uint32_t v = *(const mcu_uword *)w;
        t[0] = __sxtb16(v);
        t[1] = mcu_sxtb16_ror8(v);
    }
    /* the tail: mult[4], then MCU_DW_TAIL_* */
    int hw = k->high_word;
#pragma GCC unroll 4
    for (int j = 0; j < MCU_DW_BLOCK; ++j) {
        const int e = 32 - k->shift[j]; /* a high-word layer's shifts are at most 32 */
        if (e) hw |= 2;
        stream[j] = (uint32_t)k->bias[j];
        t[j] = (uint32_t)k->mult[j];
        t[MCU_DW_TAIL_E + j] = (uint32_t)e;
    }
    t[MCU_DW_TAIL_ZP] = (uint32_t)p->out_zp;
    if (!k->high_word) hw = 0;
    else if (mcu_dw_large(p->kh, p->kw)) hw = 3; /* the one variant of the 5x5 and 7x7 windows */
    t[MCU_DW_TAIL_LO] = (uint8_t)p->act_min * 0x01010101u;
    t[MCU_DW_TAIL_LO + 1] = (uint8_t)p->act_max * 0x01010101u;
    t[MCU_DW_TAIL_IN_ZP] = (uint8_t)p->in_zp * 0x01010101u;
    k->high_word = hw;
    k->stream = stream;
#else
    (void)taps;
    (void)stream;
#endif
}

/* One output pixel of the block (n channels) from a kh x kw window: src at its top-left tap, `step` bytes between
   taps, `down` between tap rows; w the block's weights at tap (0, 0). */
static inline void mcu_dw_window(const mcu_conv_params *p, const int8_t *src, int step, int down, const int8_t *w, int n,
                          const mcu_dw4_consts *k, int8_t *out)
{
    const int c = p->out_c;
#if MCU_USE_DSP
    if (n == MCU_DW_BLOCK) { mcu_dw4_row(p, src, step, down, 0, 1, k, out); return; }
#endif
    int32_t a0 = k->bias[0], a1 = k->bias[1], a2 = k->bias[2], a3 = k->bias[3];
    for (int ky = 0; ky < p->kh; ++ky, src += down - p->kw * step)
        for (int kx = 0; kx < p->kw; ++kx, src += step, w += c) {
            a0 += src[0] * w[0];
            if (n > 1) a1 += src[1] * w[1];
            if (n > 2) a2 += src[2] * w[2];
            if (n > 3) a3 += src[3] * w[3];
        }
    const int32_t acc[MCU_DW_BLOCK] = {a0, a1, a2, a3};
    for (int j = 0; j < n; ++j) out[j] = mcu_dw_output(k, j, acc[j]);
}

MCU_KERNEL void mcu_depthwise_inplace(const mcu_conv_params *p, int8_t *buf, mcu_region ib, mcu_region ob, int8_t *scratch, int rows)
{
    /* the parameters as locals: the stores below may alias *p, which would force reloads */
    const int kh = p->kh, kw = p->kw, sh = p->sh, sw = p->sw, dh = p->dh, dw = p->dw;
    const int in_h = p->in_h, in_w = p->in_w, pad_top = p->pad_top, pad_left = p->pad_left;
    const int c = p->out_c, step = dw * c, down = ib.w * c * dh, taps = kh * kw;
    const uint32_t zp4 = (uint8_t)p->in_zp * 0x01010101u;
    /* output columns whose window lies inside the input's columns */
    int xa = 0, xb = ob.w;
    while (xa < xb && (ob.x0 + xa) * sw - pad_left < 0) ++xa;
    while (xb > xa && (ob.x0 + xb - 1) * sw - pad_left + (kw - 1) * dw >= in_w) --xb;
    uint32_t stream[MCU_DW_STREAM_HEAD + 2 * taps + MCU_DW_STREAM_TAIL]; /* (the DSP path's) */
    /* released[y]: output rows that may leave the ring once row y is computed (the same for every channel block) */
    int16_t released[ob.h];
    for (int y = 0, head = 0; y < ob.h; ++y) {
        while (head <= y && mcu_dw_safe_after(p, ib, ob, head) <= y) ++head;
        released[y] = (int16_t)head;
    }
    for (int cb = 0; cb < c; cb += MCU_DW_BLOCK) {
        const int n = c - cb < MCU_DW_BLOCK ? c - cb : MCU_DW_BLOCK;
        const int8_t *w = p->weights + cb;
        mcu_dw4_consts k;
        mcu_dw4_block(p, cb, n, taps, &k, stream);
#if MCU_USE_DSP
        const int edge3x3 = n == MCU_DW_BLOCK && kh == 3 && kw == 3 && k.high_word;
#endif
        int head = 0, ring = 0;
        for (int y = 0; y < ob.h; ++y) {
            int8_t *row = scratch + ring * ob.w * MCU_DW_BLOCK;
            if (++ring == rows) ring = 0;
            const int iy0 = (ob.y0 + y) * sh - pad_top;
            const int rows_inside = iy0 >= 0 && iy0 + (kh - 1) * dh < in_h;
#if MCU_USE_DSP
            const int fast_row = rows_inside && n == MCU_DW_BLOCK && xa < xb;
            uint32_t edge_rows = 0x1ffu; /* bits 6-8, 3-5, 0-2: rows 0, 1, 2 of the window inside */
            if (!rows_inside)
                for (int ky = 0; ky < 3; ++ky)
                    if (iy0 + ky * dh < 0 || iy0 + ky * dh >= in_h) edge_rows &= ~(0x1c0u >> (3 * ky));
            if (fast_row) /* the row's interior windows at once */
                mcu_dw4_row(p, buf + mcu_offset(ib, iy0, (ob.x0 + xa) * sw - pad_left, c) + cb, step, down, sw * c,
                            xb - xa, &k, row + xa * MCU_DW_BLOCK);
#else
            const int fast_row = 0;
#endif
            /* the windows left: at the input's border, or all of them when the row has no fast path */
            for (int x = fast_row && xa == 0 ? xb : 0; x < ob.w; ++x) {
                if (fast_row && x == xa) { x = xb - 1; continue; } /* done above */
                const int ix0 = (ob.x0 + x) * sw - pad_left;
                if (rows_inside && x >= xa && x < xb) {
                    mcu_dw_window(p, buf + mcu_offset(ib, iy0, ix0, c) + cb, step, down, w, n, &k, row + x * MCU_DW_BLOCK);
                    continue;
                }
                /* a window reaching past the input: in_zp in the taps outside */
#if MCU_USE_DSP
                if (edge3x3) {
                    /* tap i = 3 ky + kx inside: bit 8 - i of rows & columns, moved to bit 31 - i */
                    uint32_t columns = 0;
                    for (int kx = 0; kx < 3; ++kx) {
                        const int ix = ix0 + kx * dw;
                        if (ix >= 0 && ix < in_w) columns |= 0x124u >> kx; /* bits 8-kx, 5-kx, 2-kx */
                    }
                    const uint32_t mask = (edge_rows & columns) << 23;
                    const intptr_t at = (intptr_t)((iy0 - ib.y0) * ib.w + (ix0 - ib.x0)) * c + cb;
                    mcu_dw4_3x3_edge((const int8_t *)((uintptr_t)buf + (uintptr_t)at), step, down, mask, &k, row + x * MCU_DW_BLOCK);
                    continue;
                }
#endif
                uint32_t window[MCU_DW_MAX_TAPS];
                for (int t = 0; t < taps; ++t) window[t] = zp4;
                /* the taps inside: rows [ky0, ky1), columns [kx0, kx1) of the window */
                int ky0 = 0, ky1 = kh, kx0 = 0, kx1 = kw;
                while (ky0 < kh && iy0 + ky0 * dh < 0) ++ky0;
                while (ky1 > ky0 && iy0 + (ky1 - 1) * dh >= in_h) --ky1;
                while (kx0 < kw && ix0 + kx0 * dw < 0) ++kx0;
                while (kx1 > kx0 && ix0 + (kx1 - 1) * dw >= in_w) --kx1;
                for (int ky = ky0; ky < ky1; ++ky) {
                    const int8_t *src = buf + mcu_offset(ib, iy0 + ky * dh, ix0 + kx0 * dw, c) + cb;
                    uint32_t *d = window + ky * kw + kx0;
                    if (n == MCU_DW_BLOCK)
                        for (int kx = kx0; kx < kx1; ++kx, src += step) *d++ = *(const mcu_uword *)src;
                    else
                        for (int kx = kx0; kx < kx1; ++kx, src += step) memcpy(d++, src, (size_t)n);
                }
                mcu_dw_window(p, (const int8_t *)window, MCU_DW_BLOCK, kw * MCU_DW_BLOCK, w, n, &k, row + x * MCU_DW_BLOCK);
            }
            for (; head < released[y]; ++head) mcu_dw_write_row(buf, ob, c, cb, n, head, scratch, rows);
        }
        for (; head < ob.h; ++head) mcu_dw_write_row(buf, ob, c, cb, n, head, scratch, rows);
    }
}

/*
 * In-place 3x3 depthwise convolution at stride 1, dilation 1, from a ring of planar rows (mcu_depthwise3x3_inplace;
 * stride 2 goes to the compact rows, mcu_depthwise3x3_compact_inplace). Per block of MCU_DW_BLOCK channels the input
 * rows the windows read are copied into the
 * ring, one planar row of q15 values per channel, in_zp in the columns and rows outside the input, so every window
 * lies inside the ring: no border variants. Output rows go to a row buffer (MCU_DW_BLOCK bytes per pixel), then over
 * their place in buf.
 * - The ring of MCU_DW3_SLOTS rows: an output row is written right after it is computed; the compiler picks it only
 *   when no output row lands on an input row still to be copied (DepthwiseInPlace.RingSafe).
 * - The tall ring (`slots` at least mcu_dw3_tall_slots): every input row of the block first, then every output row,
 *   one pass per channel; for small layers, where the ring's per-row overhead would dominate.
 * Scratch: the ring, slots x min(c, MCU_DW_BLOCK) x pitch int16 (mcu_dw3_pitch), then the row buffer, one row (ring) or
 * ob.h rows (tall) of an even number of pixels (ob.w rounded up) x MCU_DW_BLOCK bytes.
 * On the DSP path a row of one channel runs two outputs at a time from [v(s) v(s+1)] and [v(s+2) v(s+3)]
 * (MCU_DW3_TAPS), for each of the three rows.
 */
#define MCU_DW3_SLOTS 3

/* int16 entries of a planar row: what the pairs of outputs read, 2 per pair and two more (at least the ob.w + 2
   columns of the windows), an even count so that every row starts at a word. */
static inline int mcu_dw3_pitch(int out_w) { return 2 * ((out_w + 1) >> 1) + 2; }

/* The columns of a block's ring rows (either kernel): ring column col is input column cx0 + col (returned); [*ca, *cz)
   lie inside the input, the others hold in_zp. */
static inline int mcu_dw3_columns(const mcu_conv_params *p, mcu_region ob, int columns, int *ca, int *cz)
{
    const int cx0 = ob.x0 * p->sw - p->pad_left;
    int a = cx0 < 0 ? -cx0 : 0, z = p->in_w - cx0;
    if (a > columns) a = columns;
    if (z > columns) z = columns;
    *ca = a;
    *cz = z < a ? a : z;
    return cx0;
}

#if MCU_USE_DSP
/* What mcu_dw3_transpose reads (offsets: the asm's, bytes). */
typedef struct {
    const int8_t *src;   /* 0: the first row's first pixel [c0 c1 c2 c3] */
    int32_t c;           /* 4: bytes between two pixels */
    int16_t *d0, *d2;    /* 8, 12: the first row's ring rows of channels 0 and 2 (1 and 3 pb bytes after them) */
    int32_t pb;          /* 16 */
    int32_t rows;        /* 20: at least 1 */
    int32_t even;        /* 24: bytes of the row's even pixel count (at least 2 pixels) */
    int32_t odd;         /* 28: 1: the last pixel again with the one before it */
    int32_t src_next;    /* 32: bytes from a row's end to the next row's first pixel */
    int32_t dst_next;    /* 36: the same for the ring rows */
} mcu_dw3_transpose_job;

/* Two pixels into the four ring rows as words [c(x) c(x+1)]: r0 src (advanced), r2/r3 d0/d2 (advanced), r1 c, r4 pb.
   The pixels' bytes [a0 b0 c0 d0] and [a1 b1 c1 d1] are paired first ([a0 b0 a1 b1], [c0 d0 c1 d1], PKHBT/PKHTB), so
   each SXTB16 gives a ring word. */
#define MCU_DW3_TRANSPOSE_PAIR                                                                                         \
    "ldr    r6, [r0]\n\t"                                                                                              \
    "ldr    r8, [r0, r1]\n\t"                                                                                          \
    "add    r0, r0, r1, lsl #1\n\t"                                                                                    \
    "pkhbt  r7, r6, r8, lsl #16\n\t"                                                                                   \
    "pkhtb  r9, r8, r6, asr #16\n\t"                                                                                   \
    "sxtb16 r10, r7, ror #8\n\t"                                                                                       \
    "str    r10, [r2, r4]\n\t"                                                                                         \
    "sxtb16 r10, r7\n\t"                                                                                               \
    "str    r10, [r2], #4\n\t"                                                                                         \
    "sxtb16 r10, r9, ror #8\n\t"                                                                                       \
    "str    r10, [r3, r4]\n\t"                                                                                         \
    "sxtb16 r10, r9\n\t"                                                                                               \
    "str    r10, [r3], #4\n\t"

/* The job's rows of pixels [c0 c1 c2 c3] into planar q15 ring rows, two pixels a turn, all rows in one call. */
__attribute__((naked, noinline, unused)) static void mcu_dw3_transpose(const mcu_dw3_transpose_job *job __attribute__((unused)))
{
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "mov    r12, r0\n\t"
        "ldm    r12, {r0-r4, r11}\n\t" /* src, c, d0, d2, pb, rows */
        "ldr    lr, [r12, #24]\n\t"
        "1:\n\t"
        "add    r5, r0, lr\n\t"
        "2:\n\t" MCU_DW3_TRANSPOSE_PAIR
        "cmp    r0, r5\n\t"
        "bne    2b\n\t"
        "ldr    r6, [r12, #28]\n\t"
        "cmp    r6, #0\n\t"
        "beq    3f\n\t"
        "sub    r0, r0, r1\n\t"
        "sub    r2, r2, #2\n\t"
        "sub    r3, r3, #2\n\t"
        MCU_DW3_TRANSPOSE_PAIR
        "3:\n\t"
        "ldrd   r6, r7, [r12, #32]\n\t"
        "add    r0, r0, r6\n\t"
        "add    r2, r2, r7\n\t"
        "add    r3, r3, r7\n\t"
        "subs   r11, r11, #1\n\t"
        "bne    1b\n\t"
        "pop    {r4-r11, pc}\n\t");
}
#endif

/* Input rows iy, iy + 1, ... (`count`, of the tensor) of the block at cb (n channels) into the ring rows from `slot`
   on, `step` int16 apart: planar columns [ca, cz) (input columns cx0 + col, inside the input; the columns around them
   hold in_zp from the start of the call). */
static inline void mcu_dw3_load_rows(const mcu_conv_params *p, const int8_t *buf, mcu_region ib, int cb, int n, int iy, int count,
                              int cx0, int ca, int cz, int pitch, int16_t *slot, int step)
{
    const int c = p->out_c, width = cz - ca;
    for (; count > 0 && iy < 0; --count, ++iy, slot += step) /* rows of padding */
        for (int j = 0; j < n; ++j)
            for (int col = ca; col < cz; ++col) slot[j * pitch + col] = (int16_t)p->in_zp;
    int inside = p->in_h - iy < count ? p->in_h - iy : count;
    const int8_t *src = buf + mcu_offset(ib, iy, cx0 + ca, c) + cb;
#if MCU_USE_DSP
    if (n == MCU_DW_BLOCK && width >= 2 && inside > 0) { /* the rows inside the input in one call */
        const mcu_dw3_transpose_job job = {src, c, slot + ca, slot + 2 * pitch + ca, 2 * pitch, inside, (width & ~1) * c,
                                           width & 1, ib.w * c - width * c, 2 * step - 2 * width};
        mcu_dw3_transpose(&job);
        count -= inside;
        slot += inside * step;
        inside = 0;
    }
#endif
    for (; inside > 0; --inside, --count, src += ib.w * c, slot += step)
        for (int x = 0; x < width; ++x)
            for (int j = 0; j < n; ++j) slot[j * pitch + ca + x] = src[x * c + j];
    for (; count > 0; --count, slot += step) /* rows of padding */
        for (int j = 0; j < n; ++j)
            for (int col = ca; col < cz; ++col) slot[j * pitch + col] = (int16_t)p->in_zp;
}

/* Rows of outputs of the block's channels (see mcu_depthwise3x3_inplace); offsets are the asm's (bytes). */
typedef struct {
    const int16_t *row0;   /* 0: ring row 0 of channel 0 at the first window */
    int32_t down1, down2;  /* 4, 8: bytes from a channel's row 0 to its rows 1 and 2 */
    int8_t *out;           /* 12: the row buffer */
    int32_t span;          /* 16: bytes row 0 advances over a row's pairs of outputs (4 per pair) */
    int32_t pitch;         /* 20: bytes between two channels' ring rows */
    const uint32_t *consts;/* 24: per channel MCU_DW3_CONSTS words */
    int32_t channels;      /* 28 */
    int32_t variant;       /* 32: 1 (pre-shift e) | 2 (clamp to act_min, act_max) | 4 (odd: the last output alone) */
    int32_t rows;          /* 36: output rows */
    int32_t advance;       /* 40: bytes from the end of a row's windows to the next row's */
    int32_t odd;           /* 44: 1: a row ends with one output after its pairs */
} mcu_dw3_job;

/* A channel's words: bias, bias, mult, k, unused, e (the frame's first six words), unused, act_min and act_max in every
   byte (the first channel's only: the layer's), then per row ky the weights A = [wk0 wk1] and C = [wk1 wk2] */
#define MCU_DW3_CONSTS 16

#if MCU_USE_DSP
/* The loop of one channel's rows, two outputs per turn: r0-r2 the ring rows, r3 the row buffer, r4-r8 and lr the
   weights, r9/r10 the sums; the requantization constants and the end of the row on r0 at sp (per channel, per row).
   Per row [v0 v1] [v2 v3] (one LDRD) against A = [w0 w1] and C = [w1 w2]: out0 = [v0 v1].A + v2 w2 (SMLAD, SMLABT),
   out1 = v1 w0 + [v2 v3].C (SMLATB, SMLAD): five instructions per row for two outputs. */
#define MCU_DW3_TAPS(row, a, c)                                                                                        \
    "ldrd   r11, r12, [" row "], #4\n\t"                                                                               \
    "smlad  r9, r11, " a ", r9\n\t"                                                                                    \
    "smlatb r10, r11, " a ", r10\n\t"                                                                                  \
    "smlabt r9, r12, " c ", r9\n\t"                                                                                    \
    "smlad  r10, r12, " c ", r10\n\t"
#define MCU_DW3_PRESHIFT "ldr r11, [sp, #20]\n\tlsl r9, r9, r11\n\tlsl r10, r10, r11\n\t"
/* the two outputs as bytes 0 and 1 of r9, clamped byte-wise to act_min, act_max (in every byte at sp+28, sp+32) */
#define MCU_DW3_CLAMP                                                                                                  \
    "bfi    r9, r10, #8, #8\n\t"                                                                                       \
    "ldrd   r11, r12, [sp, #28]\n\t"                                                                                   \
    "ssub8  r10, r9, r11\n\t"                                                                                          \
    "sel    r9, r9, r11\n\t"                                                                                           \
    "ssub8  r10, r12, r9\n\t"                                                                                          \
    "sel    r9, r9, r12\n\t"                                                                                           \
    "lsr    r10, r9, #8\n\t"
/* an odd row's last output alone (the row's advance moves the rows past it) */
#define MCU_DW3_TAIL_TAPS(row, a, c)                                                                                   \
    "ldr    r11, [" row "]\n\t"                                                                                        \
    "smlad  r9, r11, " a ", r9\n\t"                                                                                    \
    "ldr    r11, [" row ", #4]\n\t"                                                                                    \
    "smlabt r9, r11, " c ", r9\n\t"
#define MCU_DW3_TAIL(pre, clamp)                                                                                       \
    "ldr    r9, [sp]\n\t"                                                                                              \
    MCU_DW3_TAIL_TAPS("r0", "r4", "r5") MCU_DW3_TAIL_TAPS("r1", "r6", "r7") MCU_DW3_TAIL_TAPS("r2", "r8", "lr")        \
    pre                                                                                                                \
    "ldrd   r11, r12, [sp, #8]\n\t"                                                                                    \
    "smmlar r9, r9, r11, r12\n\t"                                                                                      \
    "ssat   r9, #8, r9\n\t"                                                                                            \
    clamp                                                                                                              \
    "strb   r9, [r3], #4\n\t"
#define MCU_DW3_TAIL_PRESHIFT "ldr r11, [sp, #20]\n\tlsl r9, r9, r11\n\t"
#define MCU_DW3_TAIL_CLAMP                                                                                             \
    "ldrd   r11, r12, [sp, #28]\n\t"                                                                                   \
    "ssub8  r10, r9, r11\n\t"                                                                                          \
    "sel    r9, r9, r11\n\t"                                                                                           \
    "ssub8  r10, r12, r9\n\t"                                                                                          \
    "sel    r9, r9, r12\n\t"
#define MCU_DW3_LOOP(taps, pre, clamp, tail)                                                                           \
    "1:\n\t"                                                                                                           \
    "ldrd   r9, r10, [sp]\n\t"                                                                                         \
    taps("r0", "r4", "r5") taps("r1", "r6", "r7") taps("r2", "r8", "lr")                                               \
    pre                                                                                                                \
    "ldrd   r11, r12, [sp, #8]\n\t"                                                                                    \
    "smmlar r9, r9, r11, r12\n\t"                                                                                      \
    "smmlar r10, r10, r11, r12\n\t"                                                                                    \
    "ssat   r9, #8, r9\n\t"                                                                                            \
    "ssat   r10, #8, r10\n\t"                                                                                          \
    clamp                                                                                                              \
    "strb   r9, [r3], #4\n\t"                                                                                          \
    "strb   r10, [r3], #4\n\t"                                                                                         \
    "ldr    r11, [sp, #24]\n\t"                                                                                        \
    "cmp    r0, r11\n\t"                                                                                               \
    "blo    1b\n\t"                                                                                                    \
    tail                                                                                                               \
    "ldr    r11, [sp, #44]\n\t" /* rows left */                                                                        \
    "subs   r11, r11, #1\n\t"                                                                                          \
    "beq    .Lmcu_dw3_next\n\t"                                                                                        \
    "str    r11, [sp, #44]\n\t"                                                                                        \
    "ldrd   r11, r12, [sp, #48]\n\t" /* span, advance */                                                              \
    "add    r0, r0, r12\n\t"                                                                                           \
    "add    r1, r1, r12\n\t"                                                                                           \
    "add    r2, r2, r12\n\t"                                                                                           \
    "add    r11, r0, r11\n\t"                                                                                          \
    "str    r11, [sp, #24]\n\t"                                                                                        \
    "b      1b\n\t"

/* The job's rows of every channel of the block (high-word requantization). Frame: sp+0 bias twice, +8 mult, k, +16
   unused, +20 e (the channel's), +24 the end of the row on r0, +28 act_min, act_max (bytes), +36 the job, +40 the
   channel, +44 rows left, +48 span, advance (the layer's, once a call). */
__attribute__((naked, noinline, unused)) static void mcu_dw3_rows(const mcu_dw3_job *job __attribute__((unused)))
{
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "sub    sp, sp, #56\n\t"
        "str    r0, [sp, #36]\n\t"
        "movs   r1, #0\n\t"
        "str    r1, [sp, #40]\n\t"
        "ldr    r10, [r0, #24]\n\t"
        "ldrd   r1, r2, [r10, #28]\n\t"  /* act_min, act_max: the layer's, once */
        "strd   r1, r2, [sp, #28]\n\t"
        "ldr    r1, [r0, #16]\n\t"
        "ldr    r2, [r0, #40]\n\t"
        "strd   r1, r2, [sp, #48]\n\t"   /* span, advance */
        ".Lmcu_dw3_channel:\n\t"
        "ldr    r12, [sp, #36]\n\t"
        "ldr    r11, [sp, #40]\n\t"
        "ldr    r10, [r12, #24]\n\t"
        "add    r10, r10, r11, lsl #6\n\t"
        "ldm    r10!, {r0-r3, r9, lr}\n\t" /* bias, bias, mult, k, unused, e */
        "stm    sp, {r0-r3, r9, lr}\n\t"
        "add    r10, r10, #12\n\t"         /* past two unused words and act_min, act_max */
        "ldm    r10, {r4-r8, lr}\n\t"      /* the weights A, C of rows 0-2 */
        "ldr    r9, [r12, #36]\n\t"
        "str    r9, [sp, #44]\n\t"         /* rows */
        "ldr    r9, [r12, #20]\n\t"        /* pitch */
        "ldm    r12, {r0-r3}\n\t"          /* row0, down1, down2, out */
        "mla    r0, r9, r11, r0\n\t"
        "add    r1, r1, r0\n\t"
        "add    r2, r2, r0\n\t"
        "add    r3, r3, r11\n\t"
        "ldr    r9, [sp, #48]\n\t"
        "add    r9, r9, r0\n\t"
        "str    r9, [sp, #24]\n\t"         /* the end of the row on r0 (row0 + span) */
        "ldr    r9, [r12, #32]\n\t"
        "tbh    [pc, r9, lsl #1]\n\t"
        ".Lmcu_dw3_table:\n\t"
        ".hword (.Lmcu_dw3_v0 - .Lmcu_dw3_table) / 2\n\t"
        ".hword (.Lmcu_dw3_v1 - .Lmcu_dw3_table) / 2\n\t"
        ".hword (.Lmcu_dw3_v2 - .Lmcu_dw3_table) / 2\n\t"
        ".hword (.Lmcu_dw3_v3 - .Lmcu_dw3_table) / 2\n\t"
        ".hword (.Lmcu_dw3_v4 - .Lmcu_dw3_table) / 2\n\t"
        ".hword (.Lmcu_dw3_v5 - .Lmcu_dw3_table) / 2\n\t"
        ".hword (.Lmcu_dw3_v6 - .Lmcu_dw3_table) / 2\n\t"
        ".hword (.Lmcu_dw3_v7 - .Lmcu_dw3_table) / 2\n\t"
        ".Lmcu_dw3_v0:\n\t" MCU_DW3_LOOP(MCU_DW3_TAPS, "", "", "")
        ".Lmcu_dw3_v1:\n\t" MCU_DW3_LOOP(MCU_DW3_TAPS, MCU_DW3_PRESHIFT, "", "")
        ".Lmcu_dw3_v2:\n\t" MCU_DW3_LOOP(MCU_DW3_TAPS, "", MCU_DW3_CLAMP, "")
        ".Lmcu_dw3_v3:\n\t" MCU_DW3_LOOP(MCU_DW3_TAPS, MCU_DW3_PRESHIFT, MCU_DW3_CLAMP, "")
        ".Lmcu_dw3_v4:\n\t" MCU_DW3_LOOP(MCU_DW3_TAPS, "", "", MCU_DW3_TAIL("", ""))
        ".Lmcu_dw3_v5:\n\t" MCU_DW3_LOOP(MCU_DW3_TAPS, MCU_DW3_PRESHIFT, "", MCU_DW3_TAIL(MCU_DW3_TAIL_PRESHIFT, ""))
        ".Lmcu_dw3_v6:\n\t" MCU_DW3_LOOP(MCU_DW3_TAPS, "", MCU_DW3_CLAMP, MCU_DW3_TAIL("", MCU_DW3_TAIL_CLAMP))
        ".Lmcu_dw3_v7:\n\t"
        MCU_DW3_LOOP(MCU_DW3_TAPS, MCU_DW3_PRESHIFT, MCU_DW3_CLAMP, MCU_DW3_TAIL(MCU_DW3_TAIL_PRESHIFT, MCU_DW3_TAIL_CLAMP))
        ".Lmcu_dw3_next:\n\t"
        "ldr    r12, [sp, #36]\n\t"
        "ldr    r11, [sp, #40]\n\t"
        "ldr    r10, [r12, #28]\n\t"
        "adds   r11, r11, #1\n\t"
        "str    r11, [sp, #40]\n\t"
        "cmp    r11, r10\n\t"
        "blt    .Lmcu_dw3_channel\n\t"
        "add    sp, sp, #56\n\t"
        "pop    {r4-r11, pc}\n\t");
}
#endif

/* The job's rows in C (the host, and blocks the asm does not take): the same outputs. */
static void mcu_dw3_rows_c(const mcu_conv_params *p, const mcu_dw4_consts *k, int cb, const mcu_dw3_job *job)
{
    const int c = p->out_c, outputs = job->span / 2 + job->odd; /* as the DSP path */
    for (int j = 0; j < job->channels; ++j) {
        const int8_t *w = p->weights + cb + j;
        const int8_t *a = (const int8_t *)job->row0 + j * job->pitch;
        int8_t *o = job->out + j;
        for (int y = 0; y < job->rows; ++y, a += job->span + job->advance) {
            const int16_t *r0 = (const int16_t *)(const void *)a;
            const int16_t *r1 = (const int16_t *)(const void *)(a + job->down1);
            const int16_t *r2 = (const int16_t *)(const void *)(a + job->down2);
            for (int x = 0; x < outputs; ++x, o += MCU_DW_BLOCK) {
                int32_t acc = k->bias[j];
                for (int kx = 0; kx < 3; ++kx)
                    acc += r0[x + kx] * w[kx * c] + r1[x + kx] * w[(3 + kx) * c] + r2[x + kx] * w[(6 + kx) * c];
                *o = mcu_dw_output(k, j, acc);
            }
        }
    }
}

/* `rows` output rows of the block at cb (n channels), held in the row buffer `held` (ob.w outputs a row, an even
   count when the rows end with pairs only), over their place in buf: output rows follow each other in buf, so rows
   without a gap in the buffer go at once. */
static inline void mcu_dw3_write_rows(int8_t *buf, mcu_region ob, int c, int cb, int n, int y, int rows, const int8_t *held)
{
    const int stride = ob.w > 1 ? MCU_DW_BLOCK * ob.w : 2 * MCU_DW_BLOCK; /* bytes of a row in the row buffer */
    if (stride == MCU_DW_BLOCK * ob.w) {
        mcu_dw_copy_pixels(buf + y * ob.w * c + cb, c, held, rows * ob.w, n);
        return;
    }
    for (; rows > 0; --rows, ++y, held += stride) mcu_dw_copy_pixels(buf + y * ob.w * c + cb, c, held, ob.w, n);
}

#if MCU_USE_DSP
/* The asm's words for the block at cb (n channels, MCU_DW3_CONSTS each) and its variant (a high-word layer's). */
static MCU_NOINLINE void mcu_dw3_consts(const mcu_conv_params *p, int cb, int n, uint32_t *q, int32_t *variant)
{
    const int c = p->out_c;
    int v = p->act_min > -128 || p->act_max < 127 ? 2 : 0;
    q[7] = (uint8_t)p->act_min * 0x01010101u; /* the layer's, read from the first channel's words */
    q[8] = (uint8_t)p->act_max * 0x01010101u;
    for (int j = 0; j < n; ++j, q += MCU_DW3_CONSTS) {
        const int e = 32 - p->shift[cb + j]; /* the pre-shift: a high-word layer's shifts are at most 32 */
        v |= e != 0;
        q[0] = q[1] = (uint32_t)p->bias[cb + j];
        q[2] = (uint32_t)p->mult[cb + j];
        q[3] = (uint32_t)p->out_zp;
        q[4] = 0;
        q[5] = (uint32_t)e;
        const int8_t *w = p->weights + cb + j;
        for (int ky = 0; ky < 3; ++ky, w += 3 * c) { /* A = [w0 w1], C = [w1 w2] of each row */
            q[9 + 2 * ky] = mcu_pack_low((uint32_t)w[0], (uint32_t)w[c]);
            q[10 + 2 * ky] = mcu_pack_low((uint32_t)w[c], (uint32_t)w[2 * c]);
        }
    }
    *variant = v;
}

#endif

/* Ring rows a layer needs to hold every input row of a block at once (the tall ring: one pass per block). */
static inline int mcu_dw3_tall_slots(const mcu_conv_params *p, mcu_region ob) { return (ob.h - 1) * p->sh + 3; }

/* The tall ring's slots [*first, *last) that hold input rows (slot s holds row iy_first + s); the others are rows of
   padding, the same in_zp for every block, so the kernels fill them once per call. */
static inline void mcu_dw3_tall_inside(const mcu_conv_params *p, int iy_first, int slots, int *first, int *last)
{
    *first = iy_first < 0 ? -iy_first : 0;
    *last = p->in_h - iy_first < slots ? p->in_h - iy_first : slots;
    if (*last < *first) *last = *first;
}

/*
 * In-place 3x3 depthwise convolution from compact rows (mcu_depthwise3x3_compact_inplace; stride 2, and stride 1 on
 * narrow regions, as the compiler picks): the rows a block's windows read are copied into a ring of compact rows, per
 * input column the block's four channels as halfwords [c0 c2] [c1 c3] (in_zp outside the input), so every window lies
 * inside the ring at fixed offsets: a tap is one LDRD and the row kernel needs no border variants; one output of four
 * channels a turn. At stride 2 each input value feeds only two to four windows, so the planar rows of stride 1 would
 * cost about what their paired multiplies save; on narrow rows their per-row and per-channel set-up does. Outputs go
 * straight over buf: in the tall ring every input row is copied first; the ring of three is used only when each output
 * row lands on input rows it already holds (DepthwiseInPlace.RingSafe).
 * Scratch: `slots` rows of 8 ((ob.w - 1) sw + 3) bytes (3, or mcu_dw3_tall_slots: every row of a block at once).
 */
static inline int mcu_dw3c_row_bytes(int out_w, int sw) { return 8 * ((out_w - 1) * sw + 3); }

/* Channel j's halfword in a compact column: [c0 c2] [c1 c3]. */
static inline int mcu_dw3c_half(int j) { return (j & 1) * 2 + (j >> 1); }

/* Rows of outputs of a block (offsets: the asm's, bytes). */
typedef struct {
    const int8_t *row[3];   /* 0, 4, 8: rows 0-2 of the first row's windows, at the first window */
    int8_t *out;            /* 12: the first output in buf */
    int32_t step;           /* 16: bytes between two outputs in buf (c) */
    const uint32_t *consts; /* 20: the block's stream (mcu_dw4_block) */
    int32_t variant;        /* 24: 1 (pre-shift e) | 2 (clamp to act_min, act_max) | 4 (stride 1) */
    int32_t rows;           /* 28: output rows */
    int32_t span;           /* 32: bytes a row pointer moves over a row (8 sw a window) */
    int32_t advance;        /* 36: bytes from the end of a row's windows to the next row's */
} mcu_dw3c_job;


#if MCU_USE_DSP
/* One tap: the column of the four channels at `at` (row pointer and offset), [c0 c2] [c1 c3], times the tap's weights. */
#define MCU_DW3C_TAP(at, tap)                                                                                         \
    "ldrd   r8, r9, " at "\n\t"                                                                                        \
    "ldrd   r10, r11, [r12, #(16 + 8 * " #tap ")]\n\t"                                                                 \
    "smlabb r4, r8, r10, r4\n\t"                                                                                       \
    "smlatt r6, r8, r10, r6\n\t"                                                                                       \
    "smlabb r5, r9, r11, r5\n\t"                                                                                       \
    "smlatt r7, r9, r11, r7\n\t"
/* a row of the window: columns 2, 1, then 0 with the row pointer moving to the next window (`step`: 8 sw bytes) */
#define MCU_DW3C_ROW(r, t0, t1, t2, step)                                                                             \
    MCU_DW3C_TAP("[" r ", #16]", t2) MCU_DW3C_TAP("[" r ", #8]", t1) MCU_DW3C_TAP("[" r "], #" step, t0)
/* the byte offset of slot `slot` of the block stream's tail (mcu_dw4_block; after the bias and 9 taps' weights) */
#define MCU_DW3C_TAIL(slot) "#(4 * (" MCU_STR(MCU_DW_STREAM_HEAD) " + 18 + " MCU_STR(slot) "))"
#define MCU_DW3C_PRESHIFT                                                                                             \
    "ldrd   r8, r9, [r12, " MCU_DW3C_TAIL(MCU_DW_TAIL_E) "]\n\t"                                                      \
    "ldrd   r10, r11, [r12, " MCU_DW3C_TAIL(MCU_DW_TAIL_E) " + 8]\n\t"                                                \
    "lsl    r4, r4, r8\n\t"                                                                                            \
    "lsl    r5, r5, r9\n\t"                                                                                            \
    "lsl    r6, r6, r10\n\t"                                                                                           \
    "lsl    r7, r7, r11\n\t"
#define MCU_DW3C_CLAMP                                                                                                \
    "ldrd   r8, r9, [r12, " MCU_DW3C_TAIL(MCU_DW_TAIL_LO) "]\n\t" /* act_min, act_max in every byte */                 \
    "ssub8  r10, r4, r8\n\t"                                                                                           \
    "sel    r4, r4, r8\n\t"                                                                                            \
    "ssub8  r10, r9, r4\n\t"                                                                                           \
    "sel    r4, r4, r9\n\t"
/* frame: sp+0 rows left, +4 span, +8 advance, +12 the end of the row's windows on r0 */
#define MCU_DW3C_LOOP(step, pre, clamp)                                                                               \
    "1:\n\t"                                                                                                           \
    "ldrd   r4, r5, [r12]\n\t" /* bias[4] */                                                                           \
    "ldrd   r6, r7, [r12, #8]\n\t"                                                                                     \
    MCU_DW3C_ROW("r0", 0, 1, 2, step) MCU_DW3C_ROW("r1", 3, 4, 5, step) MCU_DW3C_ROW("r2", 6, 7, 8, step)         \
    pre                                                                                                                \
    "ldrd   r8, r9, [r12, " MCU_DW3C_TAIL(0) "]\n\t" /* m0 m1 */                                                       \
    "ldr    r10, [r12, " MCU_DW3C_TAIL(MCU_DW_TAIL_ZP) "]\n\t" /* out_zp */                                           \
    "smmlar r4, r4, r8, r10\n\t"                                                                                       \
    "smmlar r5, r5, r9, r10\n\t"                                                                                       \
    "ldrd   r8, r9, [r12, " MCU_DW3C_TAIL(2) "]\n\t" /* m2 m3 */                                                       \
    "smmlar r6, r6, r8, r10\n\t"                                                                                       \
    "smmlar r7, r7, r9, r10\n\t"                                                                                       \
    "ssat   r4, #8, r4\n\t"                                                                                            \
    "ssat   r5, #8, r5\n\t"                                                                                            \
    "ssat   r6, #8, r6\n\t"                                                                                            \
    "ssat   r7, #8, r7\n\t"                                                                                            \
    "bfi    r4, r5, #8, #8\n\t"                                                                                        \
    "bfi    r4, r6, #16, #8\n\t"                                                                                       \
    "bfi    r4, r7, #24, #8\n\t"                                                                                       \
    clamp                                                                                                              \
    "str    r4, [r3]\n\t"                                                                                              \
    "add    r3, r3, lr\n\t"                                                                                            \
    "ldr    r8, [sp, #12]\n\t"                                                                                         \
    "cmp    r0, r8\n\t"                                                                                                \
    "blo    1b\n\t"                                                                                                    \
    "ldr    r8, [sp]\n\t"                                                                                              \
    "subs   r8, r8, #1\n\t"                                                                                            \
    "beq    .Lmcu_dw3c_done\n\t"                                                                                       \
    "ldrd   r9, r10, [sp, #4]\n\t"                                                                                     \
    "add    r0, r0, r10\n\t"                                                                                           \
    "add    r1, r1, r10\n\t"                                                                                           \
    "add    r2, r2, r10\n\t"                                                                                           \
    "add    r9, r9, r0\n\t"                                                                                            \
    "str    r8, [sp]\n\t"                                                                                              \
    "str    r9, [sp, #12]\n\t"                                                                                         \
    "b      1b\n\t"

/* The job's rows, one output (four channels) a turn, each written over buf: r0-r2 the rows, r3 the output, r4-r7 the
   sums, r8/r9 a column's halves, r10/r11 a tap's weights, r12 the constants, lr the step between outputs. */
__attribute__((naked, noinline, unused)) static void mcu_dw3c_rows(const mcu_dw3c_job *job __attribute__((unused)))
{
    __asm__ volatile(
        "push   {r4-r11, lr}\n\t"
        "sub    sp, sp, #16\n\t"
        "ldrd   r4, r5, [r0, #28]\n\t" /* rows, span */
        "ldr    r6, [r0, #36]\n\t"     /* advance */
        "ldr    r7, [r0]\n\t"
        "add    r7, r7, r5\n\t"        /* the end of the first row's windows */
        "stm    sp, {r4-r7}\n\t"
        "ldr    r12, [r0, #20]\n\t"
        "ldr    r4, [r0, #24]\n\t"
        "ldr    lr, [r0, #16]\n\t"
        "ldm    r0, {r0-r3}\n\t"
        "tbh    [pc, r4, lsl #1]\n\t"
        ".Lmcu_dw3c_table:\n\t"
        ".hword (.Lmcu_dw3c_v0 - .Lmcu_dw3c_table) / 2\n\t"
        ".hword (.Lmcu_dw3c_v1 - .Lmcu_dw3c_table) / 2\n\t"
        ".hword (.Lmcu_dw3c_v2 - .Lmcu_dw3c_table) / 2\n\t"
        ".hword (.Lmcu_dw3c_v3 - .Lmcu_dw3c_table) / 2\n\t"
        ".hword (.Lmcu_dw3c_v4 - .Lmcu_dw3c_table) / 2\n\t"
        ".hword (.Lmcu_dw3c_v5 - .Lmcu_dw3c_table) / 2\n\t"
        ".hword (.Lmcu_dw3c_v6 - .Lmcu_dw3c_table) / 2\n\t"
        ".hword (.Lmcu_dw3c_v7 - .Lmcu_dw3c_table) / 2\n\t"
        ".Lmcu_dw3c_v0:\n\t" MCU_DW3C_LOOP("16", "", "")
        ".Lmcu_dw3c_v1:\n\t" MCU_DW3C_LOOP("16", MCU_DW3C_PRESHIFT, "")
        ".Lmcu_dw3c_v2:\n\t" MCU_DW3C_LOOP("16", "", MCU_DW3C_CLAMP)
        ".Lmcu_dw3c_v3:\n\t" MCU_DW3C_LOOP("16", MCU_DW3C_PRESHIFT, MCU_DW3C_CLAMP)
        ".Lmcu_dw3c_v4:\n\t" MCU_DW3C_LOOP("8", "", "")
        ".Lmcu_dw3c_v5:\n\t" MCU_DW3C_LOOP("8", MCU_DW3C_PRESHIFT, "")
        ".Lmcu_dw3c_v6:\n\t" MCU_DW3C_LOOP("8", "", MCU_DW3C_CLAMP)
        ".Lmcu_dw3c_v7:\n\t" MCU_DW3C_LOOP("8", MCU_DW3C_PRESHIFT, MCU_DW3C_CLAMP)
        ".Lmcu_dw3c_done:\n\t"
        "add    sp, sp, #16\n\t"
        "pop    {r4-r11, pc}\n\t");
}

#endif

/* The job's rows in C (the host, blocks of fewer than four channels, and blocks the asm does not take): the same
   outputs, n bytes each. */
static void mcu_dw3c_rows_c(const mcu_conv_params *p, const mcu_dw4_consts *k, int cb, int n, const mcu_dw3c_job *job)
{
    const int c = p->out_c, sw = p->sw, count = job->span / (8 * sw);
    int8_t *o = job->out;
    for (int y = 0; y < job->rows; ++y)
        for (int x = 0; x < count; ++x, o += job->step)
            for (int j = 0; j < n; ++j) {
                const int at = y * (job->span + job->advance) + 8 * sw * x + 2 * mcu_dw3c_half(j);
                int32_t acc = k->bias[j];
                for (int ky = 0; ky < 3; ++ky)
                    for (int kx = 0; kx < 3; ++kx) {
                        int16_t v;
                        memcpy(&v, job->row[ky] + at + 8 * kx, 2);
                        acc += v * p->weights[(3 * ky + kx) * c + cb + j];
                    }
                o[j] = mcu_dw_output(k, j, acc);
            }
}

#if MCU_USE_DSP
/* `rows` rows of at least 2 pixels [c0 c1 c2 c3] (c bytes apart) from src into compact columns [c0 c2] [c1 c3] at dst;
   the moves between rows and the pair count in `step` (pairs, odd, src and dst moves after a row). Two pixels a turn;
   an odd last pixel again with the one before it. */
typedef struct { int32_t pairs, odd, src_next, dst_next; } mcu_dw3c_copy_step;
#define MCU_DW3C_COPY_PAIR                                                                                            \
    "ldr    %[a], [%[s]]\n\t"                                                                                          \
    "ldr    %[b], [%[s], %[c]]\n\t"                                                                                    \
    "add    %[s], %[s], %[c], lsl #1\n\t"                                                                              \
    "sxtb16 %[ao], %[a], ror #8\n\t"                                                                                   \
    "sxtb16 %[a], %[a]\n\t"                                                                                            \
    "sxtb16 %[bo], %[b], ror #8\n\t"                                                                                   \
    "sxtb16 %[b], %[b]\n\t"                                                                                            \
    "strd   %[a], %[ao], [%[d]], #8\n\t"                                                                               \
    "strd   %[b], %[bo], [%[d]], #8\n\t"
static inline void mcu_dw3c_copy(const int8_t *src, int c, int8_t *dst, int rows, const mcu_dw3c_copy_step *step)
{
    uint32_t a, ao, b, bo, k;
    __asm__ volatile("1:\n\t"
                     "ldr    %[k], [%[st]]\n\t"
                     "2:\n\t"
                     MCU_DW3C_COPY_PAIR
                     "subs   %[k], %[k], #1\n\t"
                     "bne    2b\n\t"
                     "ldr    %[k], [%[st], #4]\n\t"
                     "cmp    %[k], #0\n\t"
                     "beq    3f\n\t"
                     "sub    %[s], %[s], %[c]\n\t"
                     "sub    %[d], %[d], #8\n\t"
                     MCU_DW3C_COPY_PAIR
                     "3:\n\t"
                     "ldrd   %[a], %[b], [%[st], #8]\n\t"
                     "add    %[s], %[s], %[a]\n\t"
                     "add    %[d], %[d], %[b]\n\t"
                     "subs   %[rows], %[rows], #1\n\t"
                     "bne    1b\n\t"
                     : [s] "+&r"(src), [d] "+&r"(dst), [rows] "+&r"(rows), [a] "=&r"(a), [ao] "=&r"(ao), [b] "=&r"(b),
                       [bo] "=&r"(bo), [k] "=&r"(k)
                     : [c] "r"(c), [st] "r"(step)
                     : "memory", "cc");
}
#endif

/* A compact column of in_zp (every channel). */
static inline void mcu_dw3c_fill(int8_t *col, int32_t in_zp)
{
    const uint32_t zp2 = (uint16_t)in_zp * 0x00010001u;
    memcpy(col, &zp2, 4);
    memcpy(col + 4, &zp2, 4);
}

/* `count` input rows from iy (of the tensor) of the block at cb (n channels) into consecutive ring rows from `row`:
   columns [ca, cz) from the input (column col is input column cx0 + col), in_zp in every column of a row outside the
   input; channels past n zero. */
static inline void mcu_dw3c_load_rows(const mcu_conv_params *p, const int8_t *buf, mcu_region ib, int cb, int n, int iy,
                                       int count, int cx0, int ca, int cz, int8_t *row, int row_bytes)
{
    const int c = p->out_c, down = ib.w * c;
    for (; count > 0 && iy < 0; --count, ++iy, row += row_bytes) /* rows of padding */
        for (int col = ca; col < cz; ++col) mcu_dw3c_fill(row + 8 * col, p->in_zp);
    int inside = p->in_h - iy < count ? p->in_h - iy : count;
    const int8_t *src = buf + mcu_offset(ib, iy, cx0 + ca, c) + cb;
#if MCU_USE_DSP
    if (n == MCU_DW_BLOCK && cz - ca >= 2 && inside > 0) {
        const int width = cz - ca;
        const mcu_dw3c_copy_step step = {width >> 1, width & 1, down - width * c, row_bytes - 8 * width};
        mcu_dw3c_copy(src, c, row + 8 * ca, inside, &step);
        count -= inside;
        iy += inside;
        row += inside * row_bytes;
        inside = 0;
    }
#endif
    for (; inside > 0; --inside, --count, ++iy, src += down, row += row_bytes) {
        const int8_t *x = src;
        int8_t *d = row + 8 * ca;
        for (int col = ca; col < cz; ++col, x += c, d += 8)
            for (int j = 0; j < MCU_DW_BLOCK; ++j) {
                const int16_t v = j < n ? x[j] : 0;
                memcpy(d + 2 * mcu_dw3c_half(j), &v, 2);
            }
    }
    for (; count > 0; --count, row += row_bytes) /* rows of padding */
        for (int col = ca; col < cz; ++col) mcu_dw3c_fill(row + 8 * col, p->in_zp);
}

MCU_KERNEL void mcu_depthwise3x3_compact_inplace(const mcu_conv_params *p, int8_t *buf, mcu_region ib, mcu_region ob,
                                                 int8_t *scratch, int slots)
{
    const int c = p->out_c, sh = p->sh, sw = p->sw, columns = (ob.w - 1) * sw + 3, row_bytes = mcu_dw3c_row_bytes(ob.w, sw);
    const int tall = slots >= mcu_dw3_tall_slots(p, ob);
    slots = tall ? mcu_dw3_tall_slots(p, ob) : MCU_DW3_SLOTS;
    int ca, cz;
    const int cx0 = mcu_dw3_columns(p, ob, columns, &ca, &cz);
    for (int r = 0; r < slots; ++r) { /* the columns outside the input, once */
        for (int col = 0; col < ca; ++col) mcu_dw3c_fill(scratch + r * row_bytes + 8 * col, p->in_zp);
        for (int col = cz; col < columns; ++col) mcu_dw3c_fill(scratch + r * row_bytes + 8 * col, p->in_zp);
    }
    const int iy_first = ob.y0 * sh - p->pad_top;
    int sa = 0, sz = 0; /* the tall ring's slots of input rows */
    if (tall) {
        mcu_dw3_tall_inside(p, iy_first, slots, &sa, &sz);
        for (int r = 0; r < slots; ++r)
            if (r < sa || r >= sz) mcu_dw3c_load_rows(p, buf, ib, 0, 0, iy_first + r, 1, cx0, ca, cz, scratch + r * row_bytes, row_bytes);
    }
    mcu_dw3c_job job = {{scratch, scratch, scratch}, buf, c, 0, 0, 1, 8 * sw * ob.w, sh * row_bytes - 8 * sw * ob.w};
    for (int cb = 0; cb < c; cb += MCU_DW_BLOCK) {
        const int n = c - cb < MCU_DW_BLOCK ? c - cb : MCU_DW_BLOCK;
        mcu_dw4_consts k;
        uint32_t stream[MCU_DW_STREAM_HEAD + 2 * 9 + MCU_DW_STREAM_TAIL]; /* (the DSP path's) */
        mcu_dw4_block(p, cb, n, 9, &k, stream);
#if MCU_USE_DSP
        /* the asm takes whole blocks of the high-word form */
        const int asm_rows = k.stream && k.high_word;
        job.variant = (k.high_word & 2 ? 1 : 0) | (p->act_min > -128 || p->act_max < 127 ? 2 : 0) | (sw == 1 ? 4 : 0);
        job.consts = stream;
#endif
        if (tall) { /* every input row, then every output row in one call */
            mcu_dw3c_load_rows(p, buf, ib, cb, n, iy_first + sa, sz - sa, cx0, ca, cz, scratch + sa * row_bytes, row_bytes);
            job.row[0] = scratch;
            job.row[1] = scratch + row_bytes;
            job.row[2] = scratch + 2 * row_bytes;
            job.out = buf + cb;
            job.rows = ob.h;
#if MCU_USE_DSP
            if (asm_rows) mcu_dw3c_rows(&job); else
#endif
            mcu_dw3c_rows_c(p, &k, cb, n, &job);
            continue;
        }
        /* the ring of three: input row iy in slot (iy - iy_first) % 3; `next` is the next row to load */
        int next = iy_first;
        for (int y = 0; y < ob.h; ++y) {
            const int iy0 = (ob.y0 + y) * sh - p->pad_top;
            if (next < iy0) next = iy0; /* rows no window reads */
            for (; next <= iy0 + 2; ++next)
                mcu_dw3c_load_rows(p, buf, ib, cb, n, next, 1, cx0, ca, cz, scratch + (next - iy_first) % MCU_DW3_SLOTS * row_bytes,
                                    row_bytes);
            for (int ky = 0; ky < 3; ++ky) job.row[ky] = scratch + (iy0 + ky - iy_first) % MCU_DW3_SLOTS * row_bytes;
            job.out = buf + y * ob.w * c + cb;
#if MCU_USE_DSP
            if (asm_rows) mcu_dw3c_rows(&job); else
#endif
            mcu_dw3c_rows_c(p, &k, cb, n, &job);
        }
    }
}

MCU_KERNEL void mcu_depthwise3x3_inplace(const mcu_conv_params *p, int8_t *buf, mcu_region ib, mcu_region ob, int8_t *scratch,
                                         int slots)
{
    if (p->sw == 2) {
        mcu_depthwise3x3_compact_inplace(p, buf, ib, ob, scratch, slots);
        return;
    }
    const int c = p->out_c, sh = p->sh, pitch = mcu_dw3_pitch(ob.w), columns = ob.w + 2;
    const int nb = c < MCU_DW_BLOCK ? c : MCU_DW_BLOCK; /* channels of a ring slot */
    const int tall = slots >= mcu_dw3_tall_slots(p, ob);
    slots = tall ? mcu_dw3_tall_slots(p, ob) : MCU_DW3_SLOTS;
    const int slot_bytes = 2 * nb * pitch;
    int16_t *const ring = (int16_t *)(void *)scratch;
    int8_t *const held = scratch + slots * slot_bytes;
    int ca, cz;
    const int cx0 = mcu_dw3_columns(p, ob, columns, &ca, &cz);
    const int iy_first = ob.y0 * sh - p->pad_top;
    for (int r = 0; r < slots * nb; ++r) { /* the columns outside the input, once */
        for (int col = 0; col < ca; ++col) ring[r * pitch + col] = (int16_t)p->in_zp;
        for (int col = cz; col < pitch; ++col) ring[r * pitch + col] = (int16_t)p->in_zp;
    }
    int sa = 0, sz = 0; /* the tall ring's slots of input rows */
    if (tall) {
        mcu_dw3_tall_inside(p, iy_first, slots, &sa, &sz);
        for (int r = 0; r < slots; ++r)
            if (r < sa || r >= sz) mcu_dw3_load_rows(p, buf, ib, 0, nb, iy_first + r, 1, cx0, ca, cz, pitch, ring + r * nb * pitch, 0);
    }
    /* an odd row (of more than one output) ends with one output alone; else pairs, the last one of one output rounded up */
    const int odd = ob.w > 1 && (ob.w & 1), pairs = odd ? ob.w >> 1 : (ob.w + 1) >> 1;
    mcu_dw3_job job = {ring, slot_bytes, 2 * slot_bytes, held, 4 * pairs, 2 * pitch, 0, 0, 0, 1, 0, odd};
    for (int cb = 0; cb < c; cb += MCU_DW_BLOCK) {
        const int n = c - cb < MCU_DW_BLOCK ? c - cb : MCU_DW_BLOCK;
        int asm_rows = 0; /* the block's rows by mcu_dw3_rows */
        job.channels = n;
#if MCU_USE_DSP
        uint32_t consts[MCU_DW_BLOCK * MCU_DW3_CONSTS];
        if (p->high_word) {
            mcu_dw3_consts(p, cb, n, consts, &job.variant);
            asm_rows = 1;
        }
        job.variant |= odd ? 4 : 0;
        job.consts = consts;
#endif
        mcu_dw4_consts k; /* the C path's */
        if (!asm_rows) mcu_dw4_consts_c(p, cb, n, &k);
        if (tall) {
            /* every input row of the block, then every output row, then the rows over buf */
            mcu_dw3_load_rows(p, buf, ib, cb, n, iy_first + sa, sz - sa, cx0, ca, cz, pitch, ring + sa * nb * pitch, nb * pitch);
            job.row0 = ring;
            job.rows = ob.h;
            job.advance = sh * slot_bytes - job.span;
#if MCU_USE_DSP
            if (asm_rows) mcu_dw3_rows(&job); else
#endif
            mcu_dw3_rows_c(p, &k, cb, &job);
            mcu_dw3_write_rows(buf, ob, c, cb, n, 0, ob.h, held);
            continue;
        }
        /* input row iy sits in ring slot (iy - iy_first) % slots; `next` is the next row to load, at slot `at` */
        int next = iy_first, at = 0;
        for (int y = 0; y < ob.h; ++y) {
            const int iy0 = (ob.y0 + y) * sh - p->pad_top;
            for (; next < iy0; ++next) at = at == slots - 1 ? 0 : at + 1; /* rows no window reads */
            for (; next <= iy0 + 2; ++next, at = at == slots - 1 ? 0 : at + 1)
                mcu_dw3_load_rows(p, buf, ib, cb, n, next, 1, cx0, ca, cz, pitch, ring + at * nb * pitch, 0);
            /* rows iy0 + 2, iy0 + 1, iy0 in the three slots before `at` (slots == MCU_DW3_SLOTS: iy0 at `at`) */
            const int a0 = at;
            job.row0 = ring + a0 * nb * pitch;
            job.down1 = (a0 + 1 < slots ? 1 : 1 - slots) * slot_bytes;
            job.down2 = (a0 + 2 < slots ? 2 : 2 - slots) * slot_bytes;
#if MCU_USE_DSP
            if (asm_rows) mcu_dw3_rows(&job); else
#endif
            mcu_dw3_rows_c(p, &k, cb, &job);
            mcu_dw3_write_rows(buf, ob, c, cb, n, y, 1, held);
        }
    }
}

MCU_KERNEL void mcu_fully_connected(const mcu_conv_params *p, const int8_t *in, int8_t *out)
{
    const int8_t *w = p->weights;
    for (int o = 0; o < p->out_c; ++o, w += p->in_c) {
        const int32_t acc = mcu_dot_s8(in, w, p->in_c, p->bias[o]);
        out[o] = mcu_clamp(mcu_requant(acc, p->mult[o], p->shift[o]) + p->out_zp, p->act_min, p->act_max);
    }
}

/* One element of an Add (see the integer semantics at the top). */
static inline int8_t mcu_add_value(const mcu_add_params *p, int8_t a, int8_t b)
{
    const int32_t va = mcu_requant((int32_t)((uint32_t)(a - p->zp_a) << 20), p->mult_a, p->shift_a);
    const int32_t vb = p->sign_b * mcu_requant((int32_t)((uint32_t)(b - p->zp_b) << 20), p->mult_b, p->shift_b);
    return mcu_clamp(mcu_requant(va + vb, p->mult_out, p->shift_out) + p->out_zp, p->act_min, p->act_max);
}

/* An Add's constants for mcu_add_run, derived once per kernel call. With shifts of at most 32 (the quantizer's
   FixedPointMultiplier.ForHighWord) every requantization takes the rounded high word (SMMULR for the inputs, SMMLAR
   with out_zp for the output, as the high-word requantization): an input shift s becomes 32 with (x - zp) shifted
   left by 20 + 32 - s instead of 20 (|x - zp| <= 255, so at most 23 fits: s at least 29); the output's shift must be
   32. */
typedef struct {
    int high_word;
    int clamp; /* act_min above -128 or act_max below 127 */
    /* mcu_add_run's asm reads these in this order, from za on (offsets 0, 12, 24, 32, 36) */
    int32_t za, la, ma, zb, lb, mb, sign, mo, ko;
    uint32_t lo4, hi4; /* act_min, act_max in every byte */
} mcu_add_consts;

static inline void mcu_add_prepare(const mcu_add_params *p, mcu_add_consts *k)
{
    const int sa = p->shift_a, sb = p->shift_b, so = p->shift_out;
    k->high_word = MCU_USE_DSP && sa >= 29 && sa <= 32 && sb >= 29 && sb <= 32 && so == 32;
    if (!k->high_word) return;
    k->za = p->zp_a;
    k->zb = p->zp_b;
    k->ma = p->mult_a;
    k->mb = p->mult_b;
    k->mo = p->mult_out;
    k->sign = p->sign_b;
    k->la = 20 + 32 - sa;
    k->lb = 20 + 32 - sb;
    k->ko = p->out_zp;
    k->lo4 = (uint8_t)p->act_min * 0x01010101u;
    k->hi4 = (uint8_t)p->act_max * 0x01010101u;
    k->clamp = p->act_min > -128 || p->act_max < 127;
}

#if MCU_USE_DSP
/* one input's two elements v0, v1: (v - z) << l times m, the rounded high word (z, l at w + off, m after them) */
#define MCU_ADD_INPUT(v0, v1, off)                                                                                     \
    "ldrd   %[t0], %[t1], [%[w], #" off "]\n\t"                                                                        \
    "sub    %[" v0 "], %[" v0 "], %[t0]\n\t"                                                                           \
    "sub    %[" v1 "], %[" v1 "], %[t0]\n\t"                                                                           \
    "lsl    %[" v0 "], %[" v0 "], %[t1]\n\t"                                                                           \
    "lsl    %[" v1 "], %[" v1 "], %[t1]\n\t"                                                                           \
    "ldr    %[t0], [%[w], #(" off " + 8)]\n\t"                                                                         \
    "smmulr %[" v0 "], %[" v0 "], %[t0]\n\t"                                                                          \
    "smmulr %[" v1 "], %[" v1 "], %[t0]\n\t"
/* two elements of mcu_add_run, the constants read from k as it goes (za la ma, then zb lb mb), packed into x0
   (bytes 0, 1) */
#define MCU_ADD_TWO                                                                                                    \
    "ldrsb  %[x0], [%[a]], #1\n\t"                                                                                     \
    "ldrsb  %[x1], [%[a]], #1\n\t"                                                                                     \
    "ldrsb  %[y0], [%[b]], #1\n\t"                                                                                     \
    "ldrsb  %[y1], [%[b]], #1\n\t"                                                                                     \
    MCU_ADD_INPUT("x0", "x1", "0") MCU_ADD_INPUT("y0", "y1", "12")                                                     \
    "ldrd   %[t0], %[t1], [%[w], #24]\n\t" /* sign, mo */                                                              \
    "mla    %[x0], %[y0], %[t0], %[x0]\n\t"                                                                            \
    "mla    %[x1], %[y1], %[t0], %[x1]\n\t"                                                                            \
    "ldr    %[y0], [%[w], #32]\n\t" /* ko = out_zp */                                                                  \
    "smmlar %[x0], %[x0], %[t1], %[y0]\n\t"                                                                           \
    "smmlar %[x1], %[x1], %[t1], %[y0]\n\t"                                                                           \
    "ssat   %[x0], #8, %[x0]\n\t"                                                                                      \
    "ssat   %[x1], #8, %[x1]\n\t"                                                                                      \
    "bfi    %[x0], %[x1], #8, #8\n\t"
/* x0 clamped byte-wise to act_min, act_max (an Add with an activation) */
#define MCU_ADD_CLAMP                                                                                                  \
    "ldrd   %[t0], %[t1], [%[w], #36]\n\t" /* act_min, act_max in every byte */                                        \
    "ssub8  %[y0], %[x0], %[t0]\n\t"                                                                                   \
    "sel    %[x0], %[x0], %[t0]\n\t"                                                                                   \
    "ssub8  %[y0], %[t1], %[x0]\n\t"                                                                                   \
    "sel    %[x0], %[x0], %[t1]\n\t"
#endif

/* o[i] = a[i] + b[i] (an Add's values, see the integer semantics at the top) for i < n, in increasing order (o may be
   a or b). */
static MCU_NOINLINE void mcu_add_run(const mcu_add_params *p, const mcu_add_consts *k, const int8_t *a, const int8_t *b,
                                     int8_t *o, int n)
{
#if MCU_USE_DSP
    if (k->high_word) {
        if (n >= 2) { /* two elements a turn, the constants read from k as the loop goes */
            const int8_t *const end = a + (n & ~1);
            const int32_t *w = &k->za;
            int32_t x0, x1, y0, y1, t0, t1;
#define MCU_ADD_RUN(clamp)                                                                                             \
    __asm__ volatile("1:\n\t" MCU_ADD_TWO clamp "strh   %[x0], [%[o]], #2\n\tcmp    %[a], %[end]\n\tbne    1b\n\t"         \
                     : [a] "+&r"(a), [b] "+&r"(b), [o] "+&r"(o), [x0] "=&r"(x0), [x1] "=&r"(x1), [y0] "=&r"(y0),             \
                       [y1] "=&r"(y1), [t0] "=&r"(t0), [t1] "=&r"(t1)                                                        \
                     : [w] "r"(w), [end] "r"(end)                                                                            \
                     : "memory", "cc")
            if (k->clamp) MCU_ADD_RUN(MCU_ADD_CLAMP); else MCU_ADD_RUN("");
            n &= 1;
        }
        /* an odd last element: the portable form (the same value) */
    }
#else
    (void)k;
#endif
    for (int i = 0; i < n; ++i) o[i] = mcu_add_value(p, a[i], b[i]);
}

MCU_KERNEL void mcu_add(const mcu_add_params *p, const int8_t *a, mcu_region ab, const int8_t *b, mcu_region bb,
                    int8_t *out, mcu_region ob, mcu_region r)
{
    mcu_add_consts k;
    mcu_add_prepare(p, &k);
    for (int y = r.y0; y < r.y0 + r.h; ++y) {
        const int8_t *pa = a + mcu_offset(ab, y, r.x0, p->c);
        int8_t *o = out + mcu_offset(ob, y, r.x0, p->c);
        if (!p->broadcast_b) { /* a row of the region is contiguous in every buffer */
            mcu_add_run(p, &k, pa, b + mcu_offset(bb, y, r.x0, p->c), o, r.w * p->c);
            continue;
        }
        for (int x = 0; x < r.w; ++x, pa += p->c, o += p->c) mcu_add_run(p, &k, pa, b, o, p->c);
    }
}

/*
 * A pointwise convolution and the residual Add that reads it, pixel by pixel: the convolution's output pixels go to
 * tmp (three pixels, 3 x out_c bytes) and are added to the skip tensor at once, so the convolution's output is never
 * stored. The output may be the skip tensor's buffer (in place): each pixel is read before it is written, in
 * increasing order.
 * conv_is_a: the convolution is the Add's first operand.
 */
MCU_KERNEL void mcu_pointwise_add(const mcu_conv_params *pc, const mcu_add_params *pa, int conv_is_a,
                                  const int8_t *in, mcu_region ib, const int8_t *skip, mcu_region sb,
                                  int8_t *out, mcu_region ob, mcu_region r, int8_t *tmp)
{
    const int cin = pc->in_c, c = pa->c, total = r.h * r.w;
    mcu_add_consts consts;
    mcu_add_prepare(pa, &consts);
    uint32_t stack_col[pc->columns ? 1 : mcu_pointwise_col_words(cin)];
    uint32_t *const col = pc->columns ? pc->columns : stack_col;
#if MCU_USE_DSP
    mcu_pw3_job job;
    const int three = mcu_pointwise_job3(pc, &job, col);
#else
    const int three = 0;
#endif
    int ya = r.y0, xa = r.x0;
    for (int i = 0; i < total;) {
        const int n = three && i < total - mcu_pointwise_pair_tail(total) ? 3 : total - i >= 2 ? 2 : 1;
        int y[3] = {ya, ya, ya}, x[3] = {xa, xa, xa};
        for (int k = 1; k < n; ++k) {
            y[k] = y[k - 1];
            x[k] = x[k - 1];
            mcu_region_next(r, &y[k], &x[k]);
        }
        ya = y[n - 1];
        xa = x[n - 1];
        mcu_region_next(r, &ya, &xa);
#if MCU_USE_DSP
        if (n == 3)
            mcu_pointwise_three(pc, &job, in + mcu_offset(ib, y[0], x[0], cin), in + mcu_offset(ib, y[1], x[1], cin),
                                in + mcu_offset(ib, y[2], x[2], cin), tmp, tmp + c, tmp + 2 * c);
        else
#endif
            mcu_pointwise_two(pc, in + mcu_offset(ib, y[0], x[0], cin), in + mcu_offset(ib, y[n - 1], x[n - 1], cin), tmp,
                              tmp + (n - 1) * c, col);
        for (int k = 0; k < n; ++k) {
            const int8_t *s = skip + mcu_offset(sb, y[k], x[k], c), *t = tmp + k * c;
            mcu_add_run(pa, &consts, conv_is_a ? t : s, conv_is_a ? s : t, out + mcu_offset(ob, y[k], x[k], c), c);
        }
        i += n;
    }
}

#if MCU_USE_DSP
/* The sums of 4 channels over a window of h rows of w pixels: src at the first pixel's 4 channels, `down` bytes
   between rows, c between pixels. Halfword lanes (SXTAB16): at most 256 taps, so a sum (|x| <= 128) cannot wrap. */
static MCU_NOINLINE void mcu_sum4(const int8_t *src, int down, int h, int w, int c, int32_t *sums)
{
    uint32_t s02 = 0, s13 = 0;
    for (int y = 0; y < h; ++y, src += down) {
        const int8_t *x = src;
        for (int i = 0; i < w; ++i, x += c) {
            const uint32_t v = *(const mcu_uword *)x;
            s02 = __sxtab16(s02, v);
            __asm__("sxtab16 %0, %0, %1, ror #8" : "+r"(s13) : "r"(v));
        }
    }
    sums[0] = (int16_t)s02;
    sums[1] = (int16_t)s13;
    sums[2] = (int16_t)(s02 >> 16);
    sums[3] = (int16_t)(s13 >> 16);
}
#endif

MCU_KERNEL void mcu_average_pool(const mcu_pool_params *p, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    for (int oy = r.y0; oy < r.y0 + r.h; ++oy) {
        for (int ox = r.x0; ox < r.x0 + r.w; ++ox) {
            const int sy = oy * p->sh - p->pad_top, sx = ox * p->sw - p->pad_left;
            int y0 = sy, y1 = sy + p->kh, x0 = sx, x1 = sx + p->kw;
            int count;
            if (p->count_include_pad) {
                const int ey = y1 < p->in_h + p->pad_bottom ? y1 : p->in_h + p->pad_bottom;
                const int ex = x1 < p->in_w + p->pad_right ? x1 : p->in_w + p->pad_right;
                count = (ey - sy) * (ex - sx);
            }
            if (y0 < 0) y0 = 0;
            if (x0 < 0) x0 = 0;
            if (y1 > p->in_h) y1 = p->in_h;
            if (x1 > p->in_w) x1 = p->in_w;
            if (!p->count_include_pad) count = (y1 - y0) * (x1 - x0);
            if (count < 1) count = 1;
            int8_t *o = out + mcu_offset(ob, oy, ox, p->c);
            const int32_t padding = p->zp * (count - (y1 - y0) * (x1 - x0));
            int ch = 0;
#if MCU_USE_DSP
            if ((y1 - y0) * (x1 - x0) <= 256 && y1 > y0 && x1 > x0)
                for (; ch + 4 <= p->c; ch += 4) {
                    int32_t sums[4];
                    mcu_sum4(in + mcu_offset(ib, y0, x0, p->c) + ch, ib.w * p->c, y1 - y0, x1 - x0, p->c, sums);
                    for (int j = 0; j < 4; ++j) {
                        const int32_t sum = padding + sums[j];
                        o[ch + j] = (int8_t)((sum >= 0 ? sum + count / 2 : sum - count / 2) / count);
                    }
                }
#endif
            for (; ch < p->c; ++ch) {
                int32_t sum = padding;
                for (int iy = y0; iy < y1; ++iy)
                    for (int ix = x0; ix < x1; ++ix) sum += in[mcu_offset(ib, iy, ix, p->c) + ch];
                o[ch] = (int8_t)((sum >= 0 ? sum + count / 2 : sum - count / 2) / count);
            }
        }
    }
}

MCU_KERNEL void mcu_max_pool(const mcu_pool_params *p, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    for (int oy = r.y0; oy < r.y0 + r.h; ++oy) {
        for (int ox = r.x0; ox < r.x0 + r.w; ++ox) {
            const int sy = oy * p->sh - p->pad_top, sx = ox * p->sw - p->pad_left;
            int8_t *o = out + mcu_offset(ob, oy, ox, p->c);
            for (int ch = 0; ch < p->c; ++ch) {
                int m = -128;
                for (int ky = 0; ky < p->kh; ++ky) {
                    const int iy = sy + ky * p->dh;
                    if (iy < 0 || iy >= p->in_h) continue;
                    for (int kx = 0; kx < p->kw; ++kx) {
                        const int ix = sx + kx * p->dw;
                        if (ix < 0 || ix >= p->in_w) continue;
                        const int v = in[mcu_offset(ib, iy, ix, p->c) + ch];
                        if (v > m) m = v;
                    }
                }
                o[ch] = (int8_t)m;
            }
        }
    }
}

/* Any element-wise function: y = table[x + 128]. */
MCU_KERNEL void mcu_lookup(const int8_t *table, int c, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    for (int y = r.y0; y < r.y0 + r.h; ++y) {
        const int8_t *x = in + mcu_offset(ib, y, r.x0, c);
        int8_t *o = out + mcu_offset(ob, y, r.x0, c);
        for (int i = 0; i < r.w * c; ++i) o[i] = table[x[i] + 128];
    }
}

MCU_KERNEL void mcu_mul(const mcu_mul_params *p, const int8_t *a, mcu_region ab, const int8_t *b, mcu_region bb,
                    int8_t *out, mcu_region ob, mcu_region r)
{
    const int b_step = p->broadcast_b ? 0 : p->c;
    for (int y = r.y0; y < r.y0 + r.h; ++y) {
        const int8_t *pa = a + mcu_offset(ab, y, r.x0, p->c);
        const int8_t *pb = p->broadcast_b ? b : b + mcu_offset(bb, y, r.x0, p->c);
        int8_t *o = out + mcu_offset(ob, y, r.x0, p->c);
        for (int x = 0; x < r.w; ++x, pa += p->c, pb += b_step, o += p->c)
            for (int k = 0; k < p->c; ++k)
                o[k] = mcu_clamp(mcu_requant((pa[k] - p->zp_a) * (pb[k] - p->zp_b), p->mult, p->shift) + p->out_zp, -128, 127);
    }
}

/* PRelu with per-channel slopes: positive part scaled by in_scale / out_scale, negative part by slope[c] * in_scale / out_scale. */
MCU_KERNEL void mcu_channel_prelu(const mcu_prelu_params *p, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    const int c = p->c;
    for (int y = r.y0; y < r.y0 + r.h; ++y) {
        const int8_t *x = in + mcu_offset(ib, y, r.x0, c);
        int8_t *o = out + mcu_offset(ob, y, r.x0, c);
        for (int px = 0; px < r.w; ++px, x += c, o += c) {
            for (int ch = 0; ch < c; ++ch) {
                const int32_t d = x[ch] - p->in_zp;
                const int32_t v = d >= 0 ? mcu_requant(d, p->mult_pos, p->shift_pos)
                                         : mcu_requant(p->sign_neg[ch] * d, p->mult_neg[ch], p->shift_neg[ch]);
                o[ch] = mcu_clamp(v + p->out_zp, -128, 127);
            }
        }
    }
}

/* Writes one input of a channel concatenation into its channel slice of the output. */
MCU_KERNEL void mcu_concat(const mcu_concat_params *p, const int8_t *in, mcu_region ib, int8_t *out, mcu_region ob, mcu_region r)
{
    for (int y = r.y0; y < r.y0 + r.h; ++y) {
        for (int x = r.x0; x < r.x0 + r.w; ++x) {
            const int8_t *s = in + mcu_offset(ib, y, x, p->in_c);
            int8_t *o = out + mcu_offset(ob, y, x, p->out_c) + p->channel_offset;
            for (int ch = 0; ch < p->in_c; ++ch)
                o[ch] = mcu_clamp(mcu_requant(s[ch] - p->zp, p->mult, p->shift) + p->out_zp, -128, 127);
        }
    }
}

/* Softmax over the c channels of each of `pixels` pixels. */
/* A strided copy over up to 6 axes (Transpose, Reshape, ... that move data): the output is written in order, and
 * index (i_0, ..., i_{n-1}) of dims reads in[sum i_k * strides[k]]. The innermost axis is copied as a run. */
typedef struct {
    int32_t ndims;
    int32_t dims[6];
    int32_t strides[6];
} mcu_relayout_params;

MCU_KERNEL void mcu_relayout(const mcu_relayout_params *p, const int8_t *in, int8_t *out)
{
    const int last = p->ndims - 1;
    const int32_t inner = p->dims[last], step = p->strides[last];
    int32_t idx[6] = {0, 0, 0, 0, 0, 0};
    int32_t total = 1;
    for (int k = 0; k < p->ndims; ++k) total *= p->dims[k];
    int32_t offset = 0;
    for (int32_t o = 0; o < total; o += inner) {
        const int8_t *src = in + offset;
        if (step == 1) {
            memcpy(out + o, src, (size_t)inner);
        } else {
            for (int32_t i = 0; i < inner; ++i) out[o + i] = src[i * step];
        }
        for (int k = last - 1; k >= 0; --k) {
            offset += p->strides[k];
            if (++idx[k] < p->dims[k]) break;
            offset -= p->strides[k] * p->dims[k];
            idx[k] = 0;
        }
    }
}

MCU_KERNEL void mcu_softmax(const int32_t *table, const int8_t *in, int8_t *out, int pixels, int c)
{
    for (int p = 0; p < pixels; ++p, in += c, out += c) {
        int max = -128;
        for (int i = 0; i < c; ++i) if (in[i] > max) max = in[i];
        int64_t sum = 0;
        for (int i = 0; i < c; ++i) sum += table[max - in[i]];
        for (int i = 0; i < c; ++i) {
            const int64_t v = ((int64_t)table[max - in[i]] * 256 + sum / 2) / sum - 128;
            out[i] = (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
        }
    }
}

#ifdef MCU_GENERAL_REGS_ONLY
#pragma GCC pop_options
#endif

#endif /* MCUNET_KERNELS_H */
