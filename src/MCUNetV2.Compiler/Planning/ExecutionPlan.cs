using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Planning;

/// <summary>Where a tensor lives: the caller's input/output memory, or a slice of the static arena.</summary>
public sealed class PlannedBuffer
{
    public PlannedBuffer(Tensor tensor, int bytes, int firstStep, int lastStep, bool perPatch)
    {
        Tensor = tensor; Bytes = bytes; FirstStep = firstStep; LastStep = lastStep; PerPatch = perPatch;
    }
    public Tensor Tensor { get; }
    public int Bytes { get; }
    /// <summary>Layer index that first writes the buffer.</summary>
    public int FirstStep { get; }
    /// <summary>Layer index that last reads it.</summary>
    public int LastStep { get; }
    /// <summary>Holds one patch's region of the tensor (reused by every patch) rather than the whole tensor.</summary>
    public bool PerPatch { get; }
    public int Offset { get; internal set; } = -1;
    public bool LiveAt(int step) => step >= FirstStep && step <= LastStep;
    public bool Overlaps(PlannedBuffer o) => FirstStep <= o.LastStep && o.FirstStep <= LastStep;
}

/// <summary>
/// The schedule: layers [0, PatchLayerCount) run patch by patch on a GridRows x GridCols grid of the split tensor
/// (the output of layer PatchLayerCount-1); the rest run layer by layer. PatchLayerCount = 0 is per-layer inference.
/// </summary>
public sealed class ExecutionPlan
{
    internal ExecutionPlan(ModelGraph graph, int gridRows, int gridCols, int patchLayerCount,
        IReadOnlyList<IReadOnlyDictionary<Tensor, Region>> patchRegions, IReadOnlyList<PlannedBuffer> buffers)
    {
        Graph = graph; GridRows = gridRows; GridCols = gridCols; PatchLayerCount = patchLayerCount;
        PatchRegions = patchRegions; Buffers = buffers;
        BufferOf = buffers.ToDictionary(b => b.Tensor);
        ArenaAllocator.Assign(buffers);
        ArenaBytes = buffers.Count == 0 ? 0 : buffers.Max(b => b.Offset + b.Bytes);
        PeakLiveBytes = Enumerable.Range(0, graph.Layers.Count)
            .Select(s => buffers.Where(b => b.LiveAt(s)).Sum(b => (long)b.Bytes)).DefaultIfEmpty(0).Max();
    }

    public ModelGraph Graph { get; }
    public int GridRows { get; }
    public int GridCols { get; }
    public int PatchLayerCount { get; }
    public bool IsPatchBased => PatchLayerCount > 0;
    public Tensor? SplitTensor => IsPatchBased ? Graph.Layers[PatchLayerCount - 1].Output : null;
    /// <summary>Per patch (row-major over the grid), the region of every tensor of the per-patch stage.</summary>
    public IReadOnlyList<IReadOnlyDictionary<Tensor, Region>> PatchRegions { get; }
    /// <summary>Arena buffers (the network input and output live in the caller's memory and are not listed).</summary>
    public IReadOnlyList<PlannedBuffer> Buffers { get; }
    public IReadOnlyDictionary<Tensor, PlannedBuffer> BufferOf { get; }
    /// <summary>Size of the static arena after offset assignment.</summary>
    public long ArenaBytes { get; }
    /// <summary>Largest sum of simultaneously live buffers: the lower bound of any arena for this schedule.</summary>
    public long PeakLiveBytes { get; }

    /// <summary>MACs actually executed, including the halo recomputation of the per-patch stage.</summary>
    public long ExecutedMacs
    {
        get
        {
            long macs = 0;
            for (int i = 0; i < Graph.Layers.Count; i++)
            {
                var l = Graph.Layers[i];
                if (i < PatchLayerCount)
                {
                    long perPixel = l.Macs / (l.Output.Shape.H * l.Output.Shape.W);
                    macs += PatchRegions.Sum(p => (long)p.GetValueOrDefault(l.Output).H * p.GetValueOrDefault(l.Output).W * perPixel);
                }
                else macs += l.Macs;
            }
            return macs;
        }
    }

    public string Describe() => IsPatchBased
        ? $"{GridRows}x{GridCols} patches over layers 1-{PatchLayerCount} (split at '{SplitTensor!.Name}' {SplitTensor.Shape}), then layer by layer"
        : "layer by layer";
}
