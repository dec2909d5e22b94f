namespace MCUNetV2.Compiler.Quantization;

/// <summary>
/// Counts of a tensor's values in <see cref="Bins"/> equal bins over [<see cref="Min"/>, <see cref="Max"/>] (the range
/// observed in the first calibration pass). Values that are exactly 0 (the bulk of a post-ReLU tensor) are counted
/// apart in <see cref="Zeros"/>: int8 represents 0 exactly, so they never contribute quantization error. Within a bin
/// the values are taken as uniformly spread.
/// </summary>
public sealed class ValueHistogram
{
    private readonly long[] _counts;

    public ValueHistogram(double min, double max, int bins)
    {
        if (!(min <= max) || double.IsInfinity(min) || double.IsInfinity(max)) throw new ArgumentException($"bad histogram range [{min}, {max}]");
        if (bins < 1) throw new ArgumentOutOfRangeException(nameof(bins));
        Min = min; Max = max; _counts = new long[bins];
    }

    /// <summary>A histogram over the values' own [min, max].</summary>
    public static ValueHistogram Of(IReadOnlyCollection<float> values, int bins = 2048)
    {
        if (values.Count == 0) throw new ArgumentException("no values", nameof(values));
        var h = new ValueHistogram(values.Min(), values.Max(), bins);
        foreach (var v in values) h.Add(v);
        return h;
    }

    public double Min { get; }
    public double Max { get; }
    public int Bins => _counts.Length;
    public double BinWidth => (Max - Min) / Bins;
    /// <summary>Values in bin b (exact zeros excluded).</summary>
    public IReadOnlyList<long> Counts => _counts;
    /// <summary>Values exactly 0.</summary>
    public long Zeros { get; private set; }
    public long Total { get; private set; }

    public void Add(float x)
    {
        if (float.IsNaN(x)) return;
        _occupied = null;
        Total++;
        if (x == 0) { Zeros++; return; }
        _counts[BinOf(x)]++;
    }

    public void Add(ReadOnlySpan<float> values) { foreach (var v in values) Add(v); }

    internal void AddTo(ValueHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) other._counts[i] += _counts[i];
        other.Zeros += Zeros; other.Total += Total;
        other._occupied = null;
    }

    /// <summary>The non-empty bins as (lower edge, upper edge, count), built on first use.</summary>
    private (double A, double E, long N)[]? _occupied;
    private (double A, double E, long N)[] Occupied => _occupied ??=
        Enumerable.Range(0, _counts.Length).Where(b => _counts[b] > 0).Select(b => (Edge(b), Edge(b + 1), _counts[b])).ToArray();

    /// <summary>The same values in bins <paramref name="factor"/> times as wide (Bins must be a multiple of it).</summary>
    private ValueHistogram Coarsened(int factor)
    {
        var h = new ValueHistogram(Min, Max, _counts.Length / factor) { Zeros = Zeros, Total = Total };
        for (int b = 0; b < _counts.Length; b++) h._counts[b / factor] += _counts[b];
        return h;
    }

    private int BinOf(double x)
    {
        double w = BinWidth;
        if (!(w > 0)) return 0;
        int b = (int)Math.Floor((x - Min) / w);
        return Math.Clamp(b, 0, _counts.Length - 1);
    }

    private double Edge(int b) => b >= _counts.Length ? Max : Min + b * BinWidth;

    /// <summary>
    /// The range that clips the lowest and the highest (100 - <paramref name="percentile"/>) % of the values (linear
    /// interpolation inside a bin), within [Min, Max]. A side that does not cross 0 is not clipped (0 stays in the int8
    /// range anyway, see <see cref="QuantParams.FromRange"/>), so a post-ReLU tensor keeps its minimum 0. 100 gives [Min, Max].
    /// </summary>
    public (double Min, double Max) PercentileRange(double percentile)
    {
        if (!(percentile > 50 && percentile <= 100)) throw new ArgumentOutOfRangeException(nameof(percentile), percentile, "in (50, 100]");
        if (percentile >= 100 || Total == 0 || !(Max > Min)) return (Min, Max);
        var counts = (long[])_counts.Clone();
        if (Zeros > 0) counts[BinOf(0)] += Zeros;
        double tail = (100 - percentile) / 100 * Total;
        double lo = Min, hi = Max, w = BinWidth;
        long cum = 0;
        for (int b = 0; b < counts.Length; b++)
        {
            if (counts[b] > 0 && cum + counts[b] >= tail) { lo = Min + (b + (tail - cum) / counts[b]) * w; break; }
            cum += counts[b];
        }
        cum = 0;
        for (int b = counts.Length - 1; b >= 0; b--)
        {
            if (counts[b] > 0 && cum + counts[b] >= tail) { hi = Max - (counts.Length - 1 - b + (tail - cum) / counts[b]) * w; break; }
            cum += counts[b];
        }
        return KeepZeroSide(lo, hi);
    }

    /// <summary>Clamps a clipped range into [Min, Max] and leaves a side that does not cross 0 unclipped.</summary>
    private (double Min, double Max) KeepZeroSide(double lo, double hi)
    {
        lo = Min < 0 ? Math.Clamp(Math.Min(lo, 0), Min, 0) : Min;
        hi = Max > 0 ? Math.Clamp(Math.Max(hi, 0), 0, Max) : Max;
        return (lo, Math.Max(lo, hi));
    }

    /// <summary>
    /// Mean squared error per value when the histogram's values are quantized to int8 with <paramref name="p"/>
    /// (rounding to the nearest grid point inside the grid, clipping to its ends outside), values uniform within a bin.
    /// </summary>
    public double ExpectedSquaredError(QuantParams p)
    {
        if (Total == 0) return 0;
        double s = p.Scale, gridLo = s * (-128 - p.ZeroPoint), gridHi = s * (127 - p.ZeroPoint);
        double sum = 0;
        if (!(Max > Min))
        {
            double d = Min - p.Dequantize(p.Quantize((float)Min));
            sum += (Total - Zeros) * d * d;
        }
        else
            foreach (var (a, e, n) in Occupied) sum += n * IntegratedSquaredError(a, e, s, gridLo, gridHi) / (e - a);
        // exact zeros: 0 is a grid point whenever the zero point is in int8, which FromRange guarantees
        if (Zeros > 0 && (p.ZeroPoint < -128 || p.ZeroPoint > 127)) sum += Zeros * Math.Pow(Math.Min(Math.Abs(gridLo), Math.Abs(gridHi)), 2);
        return sum / Total;
    }

    /// <summary><see cref="ExpectedSquaredError(QuantParams)"/> of the parameters <see cref="QuantParams.FromRange"/> gives for [min, max].</summary>
    public double ExpectedSquaredError(double min, double max) => ExpectedSquaredError(QuantParams.FromRange(min, max));

    /// <summary>Integral over [a, e] of (x - q(x))^2 for the grid gridLo + k s, k = 0..255, clipping outside [gridLo, gridHi].</summary>
    private static double IntegratedSquaredError(double a, double e, double s, double gridLo, double gridHi)
    {
        static double Cube(double v) => v * v * v;
        double sum = 0;
        if (a < gridLo) { double u = Math.Min(e, gridLo); sum += (Cube(u - gridLo) - Cube(a - gridLo)) / 3; }
        if (e > gridHi) { double u = Math.Max(a, gridHi); sum += (Cube(e - gridHi) - Cube(u - gridHi)) / 3; }
        double lo = Math.Max(a, gridLo), hi = Math.Min(e, gridHi);
        if (lo < hi)
        {
            int k = Math.Clamp((int)Math.Floor((lo - gridLo) / s + 0.5), 0, 255);
            while (lo < hi)
            {
                double g = gridLo + k * s;
                double end = k >= 255 ? hi : Math.Min(hi, g + 0.5 * s);
                if (end > lo) sum += (Cube(end - g) - Cube(lo - g)) / 3;
                lo = Math.Max(lo, end);
                k++;
            }
        }
        return sum;
    }

    /// <summary>
    /// The range in [Min, Max] whose int8 grid (<see cref="QuantParams.FromRange"/>) minimises
    /// <see cref="ExpectedSquaredError(QuantParams)"/>: a grid search over the fractions of Min and of Max that each end
    /// keeps, first on both ends together over a 4x coarser histogram, then refined one end at a time on this one. A
    /// side that does not cross 0 is not searched (0 stays representable, so a post-ReLU tensor keeps its minimum 0).
    /// Never worse on this measure than [Min, Max], which is the starting point and wins ties.
    /// </summary>
    public (double Min, double Max) MseRange()
    {
        if (Total == 0 || !(Max > Min)) return (Min, Max);
        bool searchLo = Min < 0, searchHi = Max > 0;
        (double Lo, double Hi) Range(double fLo, double fHi) => (searchLo ? Min * fLo : Min, searchHi ? Max * fHi : Max);

        var coarse = Bins >= 1024 && Bins % 4 == 0 ? Coarsened(4) : this;
        double bestLo = 1, bestHi = 1, best = double.PositiveInfinity;
        void Try(ValueHistogram h, double fLo, double fHi)
        {
            if (fLo <= 0 || fHi <= 0 || fLo > 1 || fHi > 1) return;
            var (lo, hi) = Range(fLo, fHi);
            double c = h.ExpectedSquaredError(lo, hi);
            if (c < best) { best = c; bestLo = fLo; bestHi = fHi; }
        }

        // coarse: fractions k/K of each end, from the full range down (ties keep the wider range)
        int steps = searchLo && searchHi ? 24 : 128;
        double[] Fractions(bool searched) => searched ? Enumerable.Range(0, steps).Select(k => (double)(steps - k) / steps).ToArray() : new[] { 1.0 };
        var loFractions = Fractions(searchLo);
        var hiFractions = Fractions(searchHi);
        foreach (var fl in loFractions) foreach (var fh in hiFractions) Try(coarse, fl, fh);

        // refine each searched end within one coarse step, at 1/8 of it, on the full histogram
        const int Fine = 8;
        double step = 1.0 / steps;
        var (coarseLo, coarseHi) = (bestLo, bestHi);
        (bestLo, bestHi, best) = (1, 1, ExpectedSquaredError(Min, Max));
        Try(this, coarseLo, coarseHi);
        for (int round = 0; round < 2; round++)
        {
            if (searchHi) { double c = bestHi; for (int k = Fine; k >= -Fine; k--) Try(this, bestLo, c + k * step / Fine); }
            if (searchLo) { double c = bestLo; for (int k = Fine; k >= -Fine; k--) Try(this, c + k * step / Fine, bestHi); }
        }
        var (rlo, rhi) = Range(bestLo, bestHi);
        return KeepZeroSide(rlo, rhi);
    }

    /// <summary>The range a calibration method picks from this histogram.</summary>
    public (double Min, double Max) RangeFor(CalibrationOptions options) => options.Method switch
    {
        CalibrationMethod.MinMax => (Min, Max),
        CalibrationMethod.Percentile => PercentileRange(options.Percentile),
        CalibrationMethod.Mse => MseRange(),
        _ => throw new ArgumentOutOfRangeException(nameof(options)),
    };
}
