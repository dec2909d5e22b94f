using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Planning;

/// <summary>
/// One slice of the static arena: the buffer of one tensor, of several tensors that share it (a layer that runs in
/// place writes its output over an input that dies there), or a kernel's scratch (no tensors).
/// </summary>
public sealed class PlannedBuffer
{
    public PlannedBuffer(IReadOnlyList<Tensor> tensors, int bytes, int firstStep, int lastStep, bool perPatch, string? scratchOf = null, string? name = null)
    {
        Tensors = tensors; Bytes = bytes; FirstStep = firstStep; LastStep = lastStep; PerPatch = perPatch; ScratchOf = scratchOf; _name = name;
    }
    private readonly string? _name;
    /// <summary>The tensors held here, in the order they are written (empty for scratch).</summary>
    public IReadOnlyList<Tensor> Tensors { get; }
    /// <summary>For a kernel's scratch: the layer that uses it; else null.</summary>
    public string? ScratchOf { get; }
    public bool IsScratch => ScratchOf != null;
    /// <summary>What the buffer holds, for reports.</summary>
    public string Name => _name ?? (IsScratch ? $"scratch of {ScratchOf}" : string.Join(" = ", Tensors.Select(t => t.Name)));
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

/// <summary>How one layer's kernel runs beyond its plain form (see <see cref="ExecutionPlan.Kernels"/>).</summary>
public sealed record KernelPlan
{
    /// <summary>The output is written over this input (its buffer), which dies at this layer.</summary>
    public Tensor? InPlaceOver { get; init; }
    /// <summary>A pointwise convolution computed pixel by pixel inside the Add at this index (its output is never stored).</summary>
    public int? FusedIntoAdd { get; init; }
    /// <summary>For an Add: the index of the pointwise convolution it computes itself, pixel by pixel.</summary>
    public int? FusedConv { get; init; }
    /// <summary>Working memory of the kernel (the rows an in-place depthwise convolution holds back, or three pixels of a fused convolution).</summary>
    public PlannedBuffer? Scratch { get; init; }
    /// <summary>In-place depthwise: output rows the scratch holds (a ring).</summary>
    public int ScratchRows { get; init; }
    /// <summary>In-place 3x3 depthwise by a ring kernel: the input rows its scratch holds (3, or more for the tall ring,
    /// <see cref="DepthwiseInPlace.FastestWithin"/>); 0 for held-back output rows.</summary>
    public int DepthwiseRingSlots { get; init; }
    /// <summary>The ring holds compact rows (<c>mcu_depthwise3x3_compact_inplace</c>), not planar ones (<c>mcu_depthwise3x3_inplace</c>).</summary>
    public bool DepthwiseCompact { get; init; }
    /// <summary>A pointwise convolution's widened inputs in the arena (<see cref="MemoryLayout.PointwiseColumnBytes"/>);
    /// null: on the stack.</summary>
    public PlannedBuffer? Columns { get; init; }
}

/// <summary>
/// The schedule: layers [0, PatchLayerCount) run patch by patch on a GridRows x GridCols grid of the split tensor
/// (the output of layer PatchLayerCount-1); the rest run layer by layer. PatchLayerCount = 0 is per-layer inference.
/// </summary>
public sealed class ExecutionPlan
{
    /// <param name="buffers">The arena buffers, their offsets set (<see cref="ArenaAllocator.Assign"/>).</param>
    internal ExecutionPlan(ModelGraph graph, int gridRows, int gridCols, int patchLayerCount,
        IReadOnlyList<IReadOnlyDictionary<Tensor, Region>> patchRegions, IReadOnlyList<PlannedBuffer> buffers, IReadOnlyDictionary<int, KernelPlan> kernels,
        PlannedBuffer? inputStaging = null)
    {
        Graph = graph; GridRows = gridRows; GridCols = gridCols; PatchLayerCount = patchLayerCount;
        PatchRegions = patchRegions; Buffers = buffers; Kernels = kernels; InputStaging = inputStaging;
        BufferOf = buffers.SelectMany(b => b.Tensors.Select(t => (t, b))).ToDictionary(x => x.t, x => x.b);
        ArenaBytes = buffers.Count == 0 ? 0 : buffers.Max(b => b.Offset + b.Bytes);
        PeakLiveBytes = Enumerable.Range(0, graph.Layers.Count).Select(LiveBytesAt).DefaultIfEmpty(0).Max();
        PatchStageExecutedMacs = Enumerable.Range(0, patchLayerCount).Select(i =>
        {
            var l = graph.Layers[i];
            long perPixel = l.Macs / (l.Output.Shape.H * l.Output.Shape.W);
            return patchRegions.Sum(p => (long)p.GetValueOrDefault(l.Output).H * p.GetValueOrDefault(l.Output).W * perPixel);
        }).ToList();
        ExecutedMacs = PatchStageExecutedMacs.Sum() + graph.Layers.Skip(patchLayerCount).Sum(l => l.Macs);
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
    /// <summary>Layers (by index) whose kernel runs in place, fused or with scratch; the others run plainly.</summary>
    public IReadOnlyDictionary<int, KernelPlan> Kernels { get; }
    public KernelPlan KernelOf(int layer) => Kernels.TryGetValue(layer, out var k) ? k : Plain;
    /// <summary>
    /// With a streamed input (StreamInput): the arena buffer that receives one patch's input region from the caller's
    /// read callback, live through the per-patch stage; null otherwise (the caller passes the whole frame).
    /// </summary>
    public PlannedBuffer? InputStaging { get; }
    private static readonly KernelPlan Plain = new();
    /// <summary>Size of the static arena after offset assignment.</summary>
    public long ArenaBytes { get; }
    /// <summary>Largest sum of simultaneously live buffers: the lower bound of any arena for this schedule.</summary>
    public long PeakLiveBytes { get; }

    /// <summary>Sum of the buffers live at a layer (scratch included).</summary>
    public long LiveBytesAt(int step) => Buffers.Where(b => b.LiveAt(step)).Sum(b => (long)b.Bytes);

    /// <summary>
    /// Peak SRAM if the whole input frame had to sit in SRAM as well, for as long as it is read (through the whole
    /// per-patch stage of a patch-based plan). <see cref="PeakLiveBytes"/> counts it as the caller's (streamed) memory.
    /// </summary>
    public long PeakLiveBytesWithInput
    {
        get
        {
            int inputLast = Math.Max(Graph.LastUse()[Graph.Input], PatchLayerCount - 1);
            return Enumerable.Range(0, Graph.Layers.Count).Select(s => LiveBytesAt(s) + (s <= inputLast ? Graph.Input.Bytes : 0)).DefaultIfEmpty(0).Max();
        }
    }

    /// <summary>
    /// Per layer of the per-patch stage, the MACs it executes over all patches (its own MACs plus the halo it
    /// recomputes); empty for a per-layer plan.
    /// </summary>
    public IReadOnlyList<long> PatchStageExecutedMacs { get; }

    /// <summary>MACs actually executed, including the halo recomputation of the per-patch stage.</summary>
    public long ExecutedMacs { get; }

    public string Describe() => IsPatchBased
        ? $"{GridRows}x{GridCols} patches over layers 1-{PatchLayerCount} (split at '{SplitTensor!.Name}' {SplitTensor.Shape}), then layer by layer"
        : "layer by layer";
}
