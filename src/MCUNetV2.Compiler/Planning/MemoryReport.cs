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
    /// <summary>Arena bytes above the lower bound (the chosen schedule's peak of live bytes): what offset assignment loses.</summary>
    public required long ArenaGapBytes { get; init; }
    /// <summary>StreamInput: the arena bytes that receive one patch's input region (included in the patch-based peak); null without streaming.</summary>
    public long? StreamedInputRegionBytes { get; init; }
    /// <summary>Network redistribution analysis of the per-patch stage (null for a per-layer plan).</summary>
    public RedistributionInfo? Redistribution { get; init; }

    /// <param name="PerLayer">Peak SRAM of layer-by-layer inference (the network input streamed, not counted).</param>
    /// <param name="PatchBased">Peak SRAM of the chosen schedule (the same as PerLayer for a per-layer plan), likewise.</param>
    /// <param name="Planned">The arena the allocator sized for the chosen schedule.</param>
    /// <param name="InputFrame">Bytes of the int8 input frame.</param>
    /// <param name="PerLayerWithInputFrame">Peak of layer-by-layer inference if the input frame sat in SRAM too.</param>
    /// <param name="PatchBasedWithInputFrame">Peak of the chosen schedule if the input frame sat in SRAM too (all through the per-patch stage).</param>
    public sealed record PeakSram(long PerLayer, long PatchBased, long Planned, long InputFrame, long PerLayerWithInputFrame, long PatchBasedWithInputFrame);

    /// <summary>Which layers of the per-patch stage cost the halo recomputation, and what to change (MCUNetV2's network redistribution).</summary>
    public sealed record RedistributionInfo(double MacOverhead, IReadOnlyList<RedistributionLayer> Layers, string Advice);

    /// <param name="HaloRows">Input rows the layer's window adds to the receptive field ((kernel - 1) x dilation); 0 for element-wise layers.</param>
    /// <param name="ExtraMacs">MACs it recomputes in overlapping halos (executed over all patches minus its own).</param>
    /// <param name="ShareOfExtraMacs">Its part of all recomputed MACs.</param>
    public sealed record RedistributionLayer(int Index, string Name, string Op, int[] Kernel, int Stride, int HaloRows, long Macs, long ExtraMacs, double ShareOfExtraMacs);
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
        static long Live(ExecutionPlan p, int step) => p.LiveBytesAt(step);
        return new MemoryReport
        {
            Model = model,
            PeakSramBytes = new PeakSram(perLayer.PeakLiveBytes, chosen.PeakLiveBytes, chosen.ArenaBytes, g.Input.Bytes,
                perLayer.PeakLiveBytesWithInput, chosen.PeakLiveBytesWithInput),
            ArenaGapBytes = chosen.ArenaBytes - chosen.PeakLiveBytes,
            Redistribution = Redistribute(chosen),
            StreamedInputRegionBytes = chosen.InputStaging?.Bytes,
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

    /// <summary>The redistribution analysis of a patch-based plan: per layer of the per-patch stage, its halo growth and recomputed MACs.</summary>
    public static RedistributionInfo? Redistribute(ExecutionPlan plan)
    {
        if (!plan.IsPatchBased) return null;
        var g = plan.Graph;
        var executed = plan.PatchStageExecutedMacs;
        long totalExtra = Enumerable.Range(0, plan.PatchLayerCount).Sum(i => executed[i] - g.Layers[i].Macs);
        var layers = Enumerable.Range(0, plan.PatchLayerCount).Select(i =>
        {
            var l = g.Layers[i];
            var w = l switch { Conv2D c => c.Window, PoolLayer p => p.Window, _ => (Window?)null };
            long extra = executed[i] - l.Macs;
            return new RedistributionLayer(i, l.Name, l.Op, w is { } k ? new[] { k.KernelH, k.KernelW } : new[] { 1, 1 }, w?.StrideH ?? 1,
                w is { } h ? (h.KernelH - 1) * h.DilationH : 0, l.Macs, extra, totalExtra == 0 ? 0 : Math.Round((double)extra / totalExtra, 4));
        }).ToList();
        double overhead = g.TotalMacs == 0 ? 0 : (double)(plan.ExecutedMacs - g.TotalMacs) / g.TotalMacs;
        return new RedistributionInfo(Math.Round(overhead, 4), layers, Advise(layers, overhead));
    }

    private static string Advise(IReadOnlyList<RedistributionLayer> layers, double overhead)
    {
        var top = layers.Where(l => l.ExtraMacs > 0).OrderByDescending(l => l.ExtraMacs).Take(3).ToList();
        if (top.Count == 0) return "The per-patch stage recomputes nothing: no overlap between patches.";
        static string Name(RedistributionLayer l) => $"#{l.Index} {l.Op} {l.Kernel[0]}x{l.Kernel[1]}";
        var sb = new System.Text.StringBuilder();
        sb.Append(System.Globalization.CultureInfo.InvariantCulture,
            $"The per-patch stage executes {overhead:P1} more MACs than layer-by-layer inference; {string.Join(", ", top.Select(l => $"{Name(l)} ({l.ShareOfExtraMacs:P0})"))} recompute the most. ");
        var wide = layers.Where(l => l.Kernel[0] > 3 || l.Kernel[1] > 3).ToList();
        if (wide.Count > 0)
            sb.Append($"Kernels larger than 3x3 in the per-patch stage ({string.Join(", ", wide.Select(Name))}) widen every earlier patch's halo: use 3x3 there and put the larger kernels after the split. ");
        var expand = top.FirstOrDefault(l => l.Op == "PointwiseConv2D");
        if (expand != null)
            sb.Append($"{Name(expand)} recomputes a wide hidden layer in the halo: a smaller expansion ratio in the blocks before the split cuts that. ");
        sb.Append("Halos grow with every spatial layer before the split: fewer layers in the per-patch stage (an earlier split), or a coarser grid, trade peak SRAM for fewer MACs (PatchGrid=\"auto\" weighs both within MaxMacOverhead).");
        return sb.ToString();
    }

    private static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);
}
