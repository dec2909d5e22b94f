using System.Text.Json;
using System.Text.Json.Serialization;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Planning;

/// <summary>The &lt;prefix&gt;.memory.json report: what the schedule costs in SRAM, flash and MACs, layer by layer.</summary>
public sealed class MemoryReport
{
    public required string Model { get; init; }
    public required PeakSram PeakSramBytes { get; init; }
    public required ScheduleInfo Schedule { get; init; }
    public required MacInfo Macs { get; init; }
    public required long ArenaBytes { get; init; }
    public required FlashInfo FlashBytes { get; init; }
    public required long RamBytes { get; init; }
    public VerificationInfo? Verification { get; set; }
    /// <summary>How far the int8 model is from the float model on the calibration samples (or why that was not measured).</summary>
    public QuantizationInfo? Quantization { get; set; }
    public required IReadOnlyList<LayerInfo> Layers { get; init; }
    public required IReadOnlyList<BufferInfo> Buffers { get; init; }

    public sealed record PeakSram(long PerLayer, long PatchBased, long Planned);
    public sealed record ScheduleInfo(int[] Grid, int SplitLayer, string? SplitTensor, string Description);
    public sealed record MacInfo(long PerLayer, long PatchBased);
    public sealed record FlashInfo(long Total, long Weights, long Code);
    public sealed record VerificationInfo(int Images, bool OutputsIdentical, long ArenaHighWaterBytes, long StackHighWaterBytes);
    public sealed record LayerInfo(int Index, string Name, string Op, int[][] InputShapes, int[] OutputShape, long Macs, bool PerPatch,
        long LiveBytesPerLayer, long LiveBytesPatchBased);
    /// <summary>
    /// The quantization section. <paramref name="Analyzed"/> false (with <paramref name="Note"/> saying why) when there
    /// were no calibration samples to compare on. SQNR values are dB; null means no error at all (infinite SQNR).
    /// </summary>
    public sealed record QuantizationInfo(bool Analyzed, string Method, double? Percentile, bool BiasCorrection, int Samples,
        double? OutputSqnrDb, int? Top1Agreements, double? Top1Agreement, QuantizationLayer? WorstLayer, string? Note,
        IReadOnlyList<QuantizationLayer>? Layers)
    {
        public static QuantizationInfo From(CalibrationOptions calibration, bool biasCorrection, QuantizationReport report, string? note = null)
        {
            var layers = report.Layers.Select(QuantizationLayer.From).ToList();
            return new QuantizationInfo(true, calibration.Method.ToString(), Percent(calibration), biasCorrection, report.Samples,
                Db(report.OutputSqnrDb), report.Top1Agreements, report.Top1Agreement,
                report.Worst.Count == 0 ? null : QuantizationLayer.From(report.Worst[0]), note, layers);
        }

        public static QuantizationInfo Skipped(CalibrationOptions calibration, bool biasCorrection, string note) =>
            new(false, calibration.Method.ToString(), Percent(calibration), biasCorrection, 0, null, null, null, null, note, null);

        private static double? Percent(CalibrationOptions c) => c.Method == CalibrationMethod.Percentile ? c.Percentile : null;

        /// <summary>Rounded dB; null for +infinity (no error), -999 for -infinity (an all-zero float tensor with an error).</summary>
        internal static double? Db(double db) => double.IsPositiveInfinity(db) ? null : double.IsNegativeInfinity(db) ? -999 : Math.Round(db, 3);
    }

    /// <summary>One layer's quantization error: SQNR in dB (null = exact), largest absolute error, clipped share of its values.</summary>
    public sealed record QuantizationLayer(int Index, string Name, string Op, string Tensor, double? SqnrDb, double MaxAbsError, double ClippedPercent)
    {
        public static QuantizationLayer From(LayerQuantizationError e) =>
            new(e.Index, e.Layer, e.Op, e.Tensor, QuantizationInfo.Db(e.SqnrDb), Math.Round(e.MaxAbsError, 6), Math.Round(e.ClippedPercent, 4));
    }

    public sealed record BufferInfo(string Tensor, int Offset, int Bytes, int FirstLayer, int LastLayer, bool PerPatch);

    public static MemoryReport Create(string model, ExecutionPlan perLayer, ExecutionPlan chosen, long flashTotal, long weightBytes, long ramBytes)
    {
        var g = chosen.Graph;
        static int[] Shape(Tensor t) => new[] { t.Shape.H, t.Shape.W, t.Shape.C };
        static long Live(ExecutionPlan p, int step) => p.Buffers.Where(b => b.LiveAt(step)).Sum(b => (long)b.Bytes);
        return new MemoryReport
        {
            Model = model,
            PeakSramBytes = new PeakSram(perLayer.PeakLiveBytes, chosen.PeakLiveBytes, chosen.ArenaBytes),
            Schedule = new ScheduleInfo(new[] { chosen.GridRows, chosen.GridCols }, chosen.PatchLayerCount, chosen.SplitTensor?.Name, chosen.Describe()),
            Macs = new MacInfo(perLayer.ExecutedMacs, chosen.ExecutedMacs),
            ArenaBytes = chosen.ArenaBytes,
            FlashBytes = new FlashInfo(flashTotal, weightBytes, Math.Max(0, flashTotal - weightBytes)),
            RamBytes = ramBytes,
            Layers = g.Layers.Select((l, i) => new LayerInfo(i, l.Name, l.Op, l.Inputs.Select(Shape).ToArray(), Shape(l.Output), l.Macs,
                i < chosen.PatchLayerCount, Live(perLayer, i), Live(chosen, i))).ToList(),
            Buffers = chosen.Buffers.Select(b => new BufferInfo(b.Name, b.Offset, b.Bytes, b.FirstStep, b.LastStep, b.PerPatch)).ToList(),
        };
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}
