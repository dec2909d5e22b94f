using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Pipeline;

namespace MCUNetV2.Compiler.Input;

/// <summary>
/// Raw model inputs (.npy, .pb): a tensor is one sample, or a batch [N, sample...], where a sample is the model input
/// without its batch axis in <see cref="CalibrationTarget.Layout"/>: [C,H,W] (NCHW) or [H,W,C] (NHWC) for an image
/// input, [K] for a vector input. Values are used as they are (no Mean/Scale, no resizing).
/// </summary>
internal static class RawTensors
{
    /// <summary>The dimensions of one sample in the file's layout.</summary>
    public static long[] SampleDims(CalibrationTarget t) =>
        t.OnnxRank <= 2 ? new long[] { t.Shape.Elements }
        : t.Layout == InputLayout.Nchw ? new long[] { t.Shape.C, t.Shape.H, t.Shape.W }
        : new long[] { t.Shape.H, t.Shape.W, t.Shape.C };

    /// <summary>
    /// How many samples a tensor of <paramref name="dims"/> holds (null = one sample without a batch axis);
    /// MCU2004, naming both shapes, when it fits neither way.
    /// </summary>
    public static (long Count, bool Batched) Count(long[] dims, CalibrationTarget t, string path)
    {
        var sample = SampleDims(t);
        if (dims.Length == sample.Length && dims.SequenceEqual(sample)) return (1, false);
        if (dims.Length == sample.Length + 1 && dims.Skip(1).SequenceEqual(sample)) return (dims[0], true);
        throw new CompilerException(ErrorCodes.CalibrationShapeMismatch,
            $"calibration tensor '{path}' has shape {Format(dims)}, which does not fit the model input: it takes {Format(sample)} per sample " +
            $"({Describe(t)}), or a batch [N,{string.Join(",", sample)}]{Hint(dims, t)}", path);
    }

    private static string Describe(CalibrationTarget t) =>
        t.OnnxRank <= 2 ? "a vector of features" : t.Layout == InputLayout.Nchw ? "InputLayout=NCHW: [C,H,W]" : "InputLayout=NHWC: [H,W,C]";

    private static string Hint(long[] dims, CalibrationTarget t)
    {
        if (t.OnnxRank <= 2) return "";
        var s = t.Shape;
        var other = t.Layout == InputLayout.Nchw ? new long[] { s.H, s.W, s.C } : new long[] { s.C, s.H, s.W };
        if (!other.SequenceEqual(SampleDims(t)) &&
            (dims.SequenceEqual(other) || (dims.Length == 4 && dims.Skip(1).SequenceEqual(other))))
            return $"; the tensor is laid out as {(t.Layout == InputLayout.Nchw ? "NHWC" : "NCHW")}: set InputLayout=\"{(t.Layout == InputLayout.Nchw ? "NHWC" : "NCHW")}\"";
        if (s.C == 1 && dims.Length == 3 && dims[1] == s.H && dims[2] == s.W)
            return $"; for {dims[0]} one-channel images add the channel axis: {Format(t.Layout == InputLayout.Nchw ? new[] { dims[0], 1, s.H, s.W } : new[] { dims[0], s.H, s.W, 1 })}";
        return "";
    }

    /// <summary>[a,b,c]</summary>
    public static string Format(IEnumerable<long> dims) => $"[{string.Join(",", dims)}]";

    /// <summary>One sample, its values in file order (the file's layout), as the model's NHWC input.</summary>
    public static float[] ToNhwc(float[] sample, CalibrationTarget t) =>
        t.OnnxRank <= 2 || t.Layout == InputLayout.Nhwc || t.Shape.C == 1 || t.Shape.H * t.Shape.W == 1
            ? sample
            : FloatExecutor.NchwToNhwc(sample, t.Shape);
}
