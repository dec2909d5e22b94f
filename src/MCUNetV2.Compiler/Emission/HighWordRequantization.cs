using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Emission;

/// <summary>
/// When the kernels may requantize from the high word of a 32 x 32-bit product (SMMLAR, SSAT; see mcunet_kernels.h)
/// with the same result as the 64-bit requant(acc, m, s) = (acc * m + 2^(s-1)) &gt;&gt; s: every channel's shift s is
/// at most 32 (<see cref="FixedPointMultiplier.ForHighWord"/> gives the convolutions such multipliers), the
/// accumulator shifted left by e = 32 - s still fits in 32 bits, and then requant(acc, m, s) + out_zp is
/// ((acc &lt;&lt; e) * m + 2^31) &gt;&gt; 32 + out_zp, one SMMLAR with out_zp as its addend. mcu_conv_params.high_word tells
/// the kernels whether a layer may, and whether some channel needs the pre-shift.
/// </summary>
public static class HighWordRequantization
{
    /// <summary>
    /// Every channel allows the high-word requantization: shift at most 32 and the accumulator shifted left by e fits
    /// in 32 bits, i.e. (|folded bias| + 128 * sum |w|) * 2^e &lt; 2^31 (see <see cref="AccumulatorBounds"/>).
    /// </summary>
    public static bool Allowed(QuantizedConv q)
    {
        var bound = AccumulatorBounds(q);
        for (int o = 0; o < bound.Length; o++)
        {
            int shift = q.Requant[o].Shift;
            if (shift > FixedPointMultiplier.HighWordShift || bound[o] << PreShift(shift) >= 1L << 31) return false;
        }
        return true;
    }

    /// <summary>mcu_conv_params.high_word: 0 (the 64-bit mcu_requant), else 1 | 2 when some channel is pre-shifted (e &gt; 0).</summary>
    public static int Flag(QuantizedConv q) => !Allowed(q) ? 0 : 1 | (q.Requant.Any(r => PreShift(r.Shift) > 0) ? 2 : 0);

    /// <summary>e = 32 - shift: the left shift of the accumulator that makes the shift 32.</summary>
    public static int PreShift(int shift) => FixedPointMultiplier.HighWordShift - shift;

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
