using System.Text.Json;
using System.Text.Json.Serialization;
using MCUNetV2.Compiler.Graph;

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
    public required IReadOnlyList<LayerInfo> Layers { get; init; }
    public required IReadOnlyList<BufferInfo> Buffers { get; init; }

    public sealed record PeakSram(long PerLayer, long PatchBased, long Planned);
    public sealed record ScheduleInfo(int[] Grid, int SplitLayer, string? SplitTensor, string Description);
    public sealed record MacInfo(long PerLayer, long PatchBased);
    public sealed record FlashInfo(long Total, long Weights, long Code);
    public sealed record VerificationInfo(int Images, bool OutputsIdentical, long ArenaHighWaterBytes, long StackHighWaterBytes);
    public sealed record LayerInfo(int Index, string Name, string Op, int[][] InputShapes, int[] OutputShape, long Macs, bool PerPatch,
        long LiveBytesPerLayer, long LiveBytesPatchBased);
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
            Buffers = chosen.Buffers.Select(b => new BufferInfo(b.Tensor.Name, b.Offset, b.Bytes, b.FirstStep, b.LastStep, b.PerPatch)).ToList(),
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
