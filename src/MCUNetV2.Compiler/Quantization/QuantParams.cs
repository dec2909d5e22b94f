namespace MCUNetV2.Compiler.Quantization;

/// <summary>Per-tensor asymmetric int8 quantization: real = Scale * (q - ZeroPoint).</summary>
/// <remarks>Scales are float32 values (as ONNX stores them), so a model exported with them and imported again is the same model.</remarks>
public readonly record struct QuantParams(double Scale, int ZeroPoint)
{
    /// <summary>Parameters that represent [min, max] (widened to include 0) on int8.</summary>
    public static QuantParams FromRange(double min, double max)
    {
        min = Math.Min(min, 0); max = Math.Max(max, 0);
        if (max - min < 1e-12) return new QuantParams((float)(1.0 / 255), -128);
        double scale = (float)((max - min) / 255.0);
        int zp = (int)Math.Round(-128 - min / scale, MidpointRounding.AwayFromZero);
        return new QuantParams(scale, Math.Clamp(zp, -128, 127));
    }

    public sbyte Quantize(float x) =>
        (sbyte)Math.Clamp(Math.Round(x / Scale, MidpointRounding.AwayFromZero) + ZeroPoint, -128, 127);

    public float Dequantize(sbyte q) => (float)(Scale * (q - ZeroPoint));

    /// <summary>Quantized value of a real bound, clamped to int8 (used for fused activations).</summary>
    public int Bound(double real) =>
        double.IsNegativeInfinity(real) ? -128 : double.IsPositiveInfinity(real) ? 127
        : (int)Math.Clamp(Math.Round(real / Scale, MidpointRounding.AwayFromZero) + ZeroPoint, -128, 127);
}

/// <summary>
/// A real multiplier m as an integer pair: m ~ Multiplier * 2^-Shift, Multiplier in [2^30, 2^31) (Q31), Shift in [1, 62].
/// The device computes <see cref="Apply"/> with one 32x32->64 multiply, an add and a shift; no floating point.
/// </summary>
public readonly record struct FixedPointMultiplier(int Multiplier, int Shift)
{
    public static FixedPointMultiplier FromReal(double m)
    {
        if (m < 0 || double.IsNaN(m) || double.IsInfinity(m)) throw new ArgumentOutOfRangeException(nameof(m), m, "multiplier must be finite and non-negative");
        if (m == 0) return new FixedPointMultiplier(0, 1);
        int exp = 0;
        double frac = m;
        while (frac >= 1) { frac /= 2; exp++; }
        while (frac < 0.5) { frac *= 2; exp--; }
        long q = (long)Math.Round(frac * (1L << 31), MidpointRounding.AwayFromZero);
        if (q == 1L << 31) { q /= 2; exp++; }
        int shift = 31 - exp;
        if (shift > 62) return new FixedPointMultiplier(0, 1);
        if (shift < 1) throw new ArgumentOutOfRangeException(nameof(m), m, "multiplier too large for int8 requantization");
        return new FixedPointMultiplier((int)q, shift);
    }

    /// <summary>The largest shift of <see cref="ForHighWord"/>: the high word of a 32 x 32-bit product.</summary>
    public const int HighWordShift = 32;

    /// <summary>
    /// A convolution's multiplier with a shift of at most 32, so the device takes acc * Multiplier from the high word
    /// of one 32 x 32-bit product (SMMLAR) and needs no shift after it: m below 1/2 is held as round(m 2^32) with
    /// shift 32, which keeps fewer significant bits for a small m but errs by at most |acc| 2^-33 before rounding
    /// (far below an output step for any accumulator an int8 layer reaches); m of 1/2 and above keeps its Q31 form
    /// (shift 31 and below, the device shifts acc left instead).
    /// </summary>
    public static FixedPointMultiplier ForHighWord(double m)
    {
        var full = FromReal(m);
        if (full.Multiplier != 0 && full.Shift <= HighWordShift) return full;
        long q = (long)Math.Round(m * 4294967296.0, MidpointRounding.AwayFromZero);
        return q >= 1L << 31 ? new FixedPointMultiplier(1 << 30, 31) : new FixedPointMultiplier((int)q, HighWordShift);
    }

    /// <summary>round(x * Multiplier / 2^Shift), ties toward +infinity: exactly what the C kernels compute.</summary>
    public int Apply(int x) => (int)(((long)x * Multiplier + (1L << (Shift - 1))) >> Shift);

    public double Real => Multiplier / Math.Pow(2, Shift);
}
