namespace MCUNetV2.Compiler.Quantization;

/// <summary>How the int8 range of an activation tensor is chosen from the calibration samples.</summary>
public enum CalibrationMethod
{
    /// <summary>The observed minimum and maximum (nothing is clipped). One float pass over the samples.</summary>
    MinMax,
    /// <summary>
    /// The two-sided <see cref="CalibrationOptions.Percentile"/> of the observed values: the lowest and highest
    /// (100 - Percentile) % of the values are clipped. Two float passes (min/max, then a histogram).
    /// </summary>
    Percentile,
    /// <summary>
    /// The range whose int8 grid gives the smallest expected squared error (rounding inside the range plus clipping
    /// outside it), searched on the histogram of each tensor. Two float passes (min/max, then a histogram).
    /// </summary>
    Mse,
}

/// <summary>
/// Options of <see cref="CalibrationRanges.Observe(Graph.ModelGraph, IEnumerable{IReadOnlyList{float[]}}, CalibrationOptions)"/>.
/// The method applies to the activations computed by layers; graph inputs always keep their observed min/max (their
/// range is set by preprocessing), and tensors with model-given parameters keep those (the quantizer prefers them).
/// </summary>
/// <param name="Method">How each tensor's range is chosen.</param>
/// <param name="Percentile">For <see cref="CalibrationMethod.Percentile"/>: the two-sided percentile in (50, 100]; 100 = min/max.</param>
/// <param name="Bins">Histogram bins per tensor over its observed [min, max] (methods other than MinMax), at least 16.</param>
public sealed record CalibrationOptions(CalibrationMethod Method = CalibrationMethod.MinMax, double Percentile = 99.99, int Bins = 2048)
{
    /// <summary>Min/max, as <see cref="CalibrationRanges.Observe(Graph.ModelGraph, IEnumerable{float[]})"/> calibrates.</summary>
    public static CalibrationOptions MinMax { get; } = new();

    /// <summary>True when the method needs the histogram pass.</summary>
    public bool NeedsHistogram => Method != CalibrationMethod.MinMax;

    internal void Validate()
    {
        if (!Enum.IsDefined(Method)) throw new ArgumentOutOfRangeException(nameof(Method), Method, "unknown calibration method");
        if (Method == CalibrationMethod.Percentile && !(Percentile > 50 && Percentile <= 100))
            throw new ArgumentOutOfRangeException(nameof(Percentile), Percentile, "the percentile must be in (50, 100]");
        if (Bins < 16) throw new ArgumentOutOfRangeException(nameof(Bins), Bins, "at least 16 histogram bins");
    }

    public override string ToString() => Method switch
    {
        CalibrationMethod.Percentile => $"Percentile({Percentile:0.####})",
        _ => Method.ToString(),
    };
}
