using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Emission;

/// <summary>
/// When the kernels may requantize from the high word of a 32 x 32-bit product (SMMLA, ASR, SSAT; see
/// mcunet_kernels.h) with the same result as the 64-bit requant(acc, m, s) = (acc * m + 2^(s-1)) &gt;&gt; s:
/// with e = max(0, 33 - s) the accumulator is shifted left by e (it must still fit in 32 bits) and the shift becomes
/// s' = s + e; the output zero point rides in the rounding constant up to s' = 54 and is added after the shift up to
/// s' = 62. mcu_conv_params.high_word tells the kernels which variant a layer needs.
/// </summary>
public static class HighWordRequantization
{
    /// <summary>The largest shift with the output zero point in the rounding constant.</summary>
    public const int MaxShiftZeroPointInConstant = 54;

    /// <summary>The largest shift with the output zero point added after the shift.</summary>
    public const int MaxShift = 62;

    /// <summary>
    /// Every channel allows the high-word requantization: shift + e at most 62 and the accumulator shifted left by e
    /// fits in 32 bits, i.e. (|folded bias| + 128 * sum |w|) * 2^e &lt; 2^31 (see <see cref="AccumulatorBounds"/>).
    /// </summary>
    public static bool Allowed(QuantizedConv q)
    {
        var bound = AccumulatorBounds(q);
        for (int o = 0; o < bound.Length; o++)
        {
            var (rs, e) = Shift(q.Requant[o].Shift);
            if (rs + 32 > MaxShift || bound[o] << e >= 1L << 31) return false;
        }
        return true;
    }

    /// <summary>The output zero point goes after the shift: some shift above 54, where (2 zp + 1) &lt;&lt; (rs - 1) would overflow.</summary>
    public static bool ZeroPointAfterShift(QuantizedConv q) => q.Requant.Any(r => r.Shift > MaxShiftZeroPointInConstant);

    /// <summary>
    /// mcu_conv_params.high_word: 0 (the 64-bit mcu_requant), else 1 | 2 when some channel is pre-shifted (e &gt; 0) |
    /// 4 when the output zero point comes after the shift.
    /// </summary>
    public static int Flag(QuantizedConv q) =>
        !Allowed(q) ? 0 : 1 | (q.Requant.Any(r => Shift(r.Shift).E > 0) ? 2 : 0) | (ZeroPointAfterShift(q) ? 4 : 0);

    /// <summary>rs = max(shift, 33) - 32, the shift applied to the high word, and e = max(0, 33 - shift), the pre-shift.</summary>
    public static (int Rs, int E) Shift(int shift) => (Math.Max(shift, 33) - 32, Math.Max(0, 33 - shift));

    /// <summary>
    /// The requantization the C code uses: the model's, except that a channel with a shift above 54 whose result
    /// before the zero point is provably 0 (|acc * mult| &lt; 2^(shift - 1) for every reachable accumulator) gets
    /// multiplier 0 and shift 33, which gives the same 0 and keeps the layer on the cheaper variants.
    /// </summary>
    public static QuantizedConv Emitted(QuantizedConv q)
    {
        if (q.Requant.All(r => r.Shift <= MaxShiftZeroPointInConstant)) return q;
        var bound = AccumulatorBounds(q);
        var requant = q.Requant.ToArray();
        for (int o = 0; o < requant.Length; o++)
            if (requant[o].Shift > MaxShiftZeroPointInConstant
                && (System.Numerics.BigInteger)bound[o] * requant[o].Multiplier < System.Numerics.BigInteger.One << (requant[o].Shift - 1))
                requant[o] = new FixedPointMultiplier(0, 33);
        return q with { Requant = requant };
    }

    /// <summary>
    /// Per output channel, a bound on |accumulator| in every kernel form: the bias folded with x in [-128, 127], or
    /// the model's bias with x - in_zp in [-255, 255].
    /// </summary>
    private static long[] AccumulatorBounds(QuantizedConv q)
    {
        var folded = CEmitter.FoldZeroPoint(q);
        int per = q.Weights.Length / folded.Length;
        var r = new long[folded.Length];
        for (int o = 0; o < r.Length; o++)
        {
            long sum = 0;
            for (int i = 0; i < per; i++) sum += Math.Abs((int)q.Weights[o * per + i]);
            r[o] = Math.Max(Math.Abs((long)folded[o]) + 128 * sum, Math.Abs((long)q.Bias[o]) + 255 * sum);
        }
        return r;
    }
}
