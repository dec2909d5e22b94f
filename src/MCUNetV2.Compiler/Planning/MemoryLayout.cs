using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Planning;

/// <summary>
/// The memory side of a plan, with the accounting of the MCUNetV2 paper: int8 activations, one buffer per tensor
/// for as long as it is read, the network input in the caller's memory (streamed, not counted) and the output written
/// straight into the caller's buffer, and three ways to need less:
/// <list type="bullet">
/// <item>A pointwise convolution whose only reader is the residual Add right after it is computed inside that Add, pixel
/// by pixel (three pixels of scratch): its output is never stored.</item>
/// <item>A layer runs in place, its output over an input that dies there: depthwise convolutions (four channels at a time,
/// holding back a few output rows in scratch, <see cref="DepthwiseInPlace"/>), Add, Mul and element-wise layers (pixel
/// by pixel).</item>
/// <item>Buffers whose lifetimes do not overlap share arena bytes (<see cref="ArenaAllocator"/>).</item>
/// </list>
/// Peak SRAM is the largest sum of the buffers live at one layer, scratch included.
/// </summary>
internal static class MemoryLayout
{
    /// <param name="streamInput">Add the buffer that receives each patch's input region from a read callback (patch-based plans only).</param>
    /// <param name="depthwiseRings">Let in-place 3x3 depthwise layers take the faster ring kernel where it keeps the peak (false: held-back rows everywhere).</param>
    /// <param name="pointwiseColumns">Let pointwise layers widen their inputs in the arena where that keeps the peak (false: on the stack).</param>
    public static ExecutionPlan Plan(ModelGraph graph, int rows, int cols, int k, IReadOnlyList<IReadOnlyDictionary<Tensor, Region>> regions, bool streamInput = false,
        bool depthwiseRings = true, bool pointwiseColumns = true)
    {
        var layers = graph.Layers;
        int n = layers.Count;
        var producedAt = new Dictionary<Tensor, int>();
        for (int i = 0; i < n; i++) producedAt[layers[i].Output] = i;
        var readers = new Dictionary<Tensor, int>();
        foreach (var l in layers)
            foreach (var t in l.Inputs.Distinct()) readers[t] = readers.GetValueOrDefault(t) + 1;
        var split = k > 0 ? layers[k - 1].Output : null;
        bool PerPatch(Tensor t) => producedAt.TryGetValue(t, out var i) && i < k - 1;
        // a per-patch buffer holds the largest region any patch needs
        int RegionBytes(Tensor t) => regions.Max(p => p.GetValueOrDefault(t).H * p.GetValueOrDefault(t).W) * t.Shape.C;
        int Bytes(Tensor t) => PerPatch(t) ? RegionBytes(t) : t.Bytes;

        // 1. a pointwise convolution read only by the residual Add right after it runs inside the Add
        var kernels = new Dictionary<int, KernelPlan>();
        var step = Enumerable.Range(0, n).ToArray(); // when each layer's work happens
        for (int i = 0; i + 1 < n; i++)
        {
            if (layers[i] is not Conv2D { IsPointwise: true } conv || layers[i + 1] is not Add { BroadcastsB: false } add) continue;
            if (!add.Inputs.Contains(conv.Output) || add.Inputs[0] == add.Inputs[1] || readers.GetValueOrDefault(conv.Output) != 1) continue;
            if (conv.Output == graph.Output || i == k - 1) continue;
            kernels[i] = new KernelPlan { FusedIntoAdd = i + 1 };
            kernels[i + 1] = new KernelPlan { FusedConv = i };
            step[i + 1] = i;
        }
        bool Stored(Tensor t) => producedAt.TryGetValue(t, out var i) && t != graph.Output && kernels.GetValueOrDefault(i)?.FusedIntoAdd == null;

        var first = new Dictionary<Tensor, int>();
        var last = new Dictionary<Tensor, int>();
        for (int i = 0; i < n; i++)
        {
            var t = layers[i].Output;
            first[t] = t == split ? 0 : step[i];
            last[t] = step[i];
        }
        for (int i = 0; i < n; i++)
            foreach (var t in layers[i].Inputs)
                if (last.ContainsKey(t)) last[t] = Math.Max(last[t], step[i]);

        // 2. in place: the output takes the buffer of an input that dies at this layer
        var slotOf = new Dictionary<Tensor, Tensor>(); // union-find: tensor -> a tensor of the same slot
        Tensor Root(Tensor t) { while (slotOf.TryGetValue(t, out var p) && p != t) t = p; return t; }
        for (int i = 0; i < n; i++)
        {
            var l = layers[i];
            var t = l.Output;
            if (!Stored(t) || t == split) continue;
            IEnumerable<Tensor> candidates = l switch
            {
                Conv2D c when c.IsDepthwise && c.Window.KernelH * c.Window.KernelW <= DepthwiseInPlace.MaxTaps => new[] { c.Inputs[0] },
                Add a when a.BroadcastsB => new[] { a.Inputs[0] },
                Mul m when m.BroadcastsB => new[] { m.Inputs[0] },
                Add or Mul => l.Inputs,
                UnaryElementwise or ChannelPRelu => new[] { l.Inputs[0] },
                _ => Array.Empty<Tensor>(),
            };
            foreach (var u in candidates)
            {
                if (!Stored(u) || last[u] != step[i]) continue; // it must die here (earlier readers are done)
                if (u.Shape.C != t.Shape.C || PerPatch(u) != PerPatch(t)) continue;
                if (l is not Conv2D && u.Shape != t.Shape) continue;
                slotOf[t] = Root(u);
                kernels[i] = (kernels.GetValueOrDefault(i) ?? new KernelPlan()) with { InPlaceOver = u };
                break;
            }
        }

        var buffers = new List<PlannedBuffer>();
        foreach (var group in producedAt.Keys.Where(Stored).GroupBy(Root))
        {
            var ts = group.OrderBy(t => producedAt[t]).ToList();
            buffers.Add(new PlannedBuffer(ts, ts.Max(Bytes), ts.Min(t => first[t]), ts.Max(t => last[t]), PerPatch(ts[0])));
        }

        // 3. scratch: three pixels of a fused convolution; the held-back rows of an in-place depthwise convolution, or
        //    the ring of its faster 3x3 kernel where that does not raise the peak
        var depthwise = new List<(int Layer, KernelPlan Plan, Conv2D Conv, List<(Region In, Region Out)> Runs)>();
        foreach (var (i, kp) in kernels.ToList())
        {
            var l = layers[i];
            if (kp.FusedConv is { } c)
            {
                var conv = (Conv2D)layers[c];
                // three output pixels of the convolution (mcu_pointwise_add works on pixel triples)
                var scratch = new PlannedBuffer(Array.Empty<Tensor>(), 3 * conv.OutChannels, step[i], step[i], false, conv.Name);
                buffers.Add(scratch);
                kernels[i] = kp with { Scratch = scratch };
            }
            else if (kp.InPlaceOver != null && l is Conv2D { IsDepthwise: true } dw)
            {
                var runs = PerPatch(dw.Output)
                    ? regions.Select(p => (In: p.GetValueOrDefault(dw.Inputs[0]), Out: p.GetValueOrDefault(dw.Output)))
                    : new[] { (In: Region.Full(dw.Inputs[0].Shape), Out: Region.Full(dw.Output.Shape)) };
                depthwise.Add((i, kp, dw, runs.Where(r => !r.Out.IsEmpty).ToList())); // none: a layer nothing reads
            }
        }
        var staging = streamInput && k > 0
            ? new PlannedBuffer(Array.Empty<Tensor>(), RegionBytes(graph.Input), 0, k - 1, true, name: "streamed input region")
            : null;
        var heldRows = depthwise.Select(d => DepthwiseInPlace.HeldRowsScratch(d.Conv, d.Runs)).ToList();
        // at each step: the buffers so far, the streamed input region and the held-back rows of every depthwise layer
        long[] live = new long[n];
        for (int s = 0; s < n; s++)
            live[s] = buffers.Where(b => b.LiveAt(s)).Sum(b => (long)b.Bytes) + (staging != null && staging.LiveAt(s) ? staging.Bytes : 0);
        for (int d = 0; d < depthwise.Count; d++) live[step[depthwise[d].Layer]] += heldRows[d].Bytes;
        long peak = live.DefaultIfEmpty(0).Max();
        // 4. a pointwise convolution's widened inputs (its kernel's columns, see PointwiseColumnBytes) in the arena where
        //    they keep the step within the peak; else the kernel puts them on the stack
        var pointwise = new List<(int Layer, int Step, int Bytes)>();
        for (int i = 0; i < n; i++)
            if (layers[i] is Conv2D { IsPointwise: true } pc)
                pointwise.Add((i, kernels.GetValueOrDefault(i)?.FusedIntoAdd is { } add ? step[add] : step[i], PointwiseColumnBytes(pc.InChannels)));
        // the buffers and kernel plans with the rings and the columns or without, each laid out once; only their arena
        // sizes are compared (a placement leaves the shared buffers' offsets alone), and the chosen one's offsets are set
        (List<PlannedBuffer> Buffers, Dictionary<int, KernelPlan> Kernels) Layout(bool rings, bool columns)
        {
            var all = new List<PlannedBuffer>(buffers);
            var planned = new Dictionary<int, KernelPlan>(kernels);
            for (int d = 0; d < depthwise.Count; d++)
            {
                var (i, kp, dw, runs) = depthwise[d];
                int s = step[i];
                var kernel = rings ? DepthwiseInPlace.FastestWithin(dw, runs, peak - live[s] + heldRows[d].Bytes) : null;
                var chosen = kernel ?? heldRows[d];
                var scratch = new PlannedBuffer(Array.Empty<Tensor>(), chosen.Bytes, s, s, false, dw.Name);
                all.Add(scratch);
                planned[i] = kp with { Scratch = scratch, ScratchRows = chosen.HeldRows, DepthwiseRingSlots = chosen.RingSlots, DepthwiseCompact = chosen.Compact };
            }
            foreach (var (i, s, bytes) in pointwise)
                if (columns && live[s] + bytes <= peak)
                {
                    var buffer = new PlannedBuffer(Array.Empty<Tensor>(), bytes, s, s, false, layers[i].Name, name: $"columns of {layers[i].Name}");
                    all.Add(buffer);
                    planned[i] = (planned.GetValueOrDefault(i) ?? new KernelPlan()) with { Columns = buffer };
                }
            if (staging != null) all.Add(staging);
            return (all, planned);
        }
        var layouts = new Dictionary<(bool, bool), (List<PlannedBuffer> Buffers, Dictionary<int, KernelPlan> Kernels, IReadOnlyList<(PlannedBuffer, int)> Placement)>();
        (List<PlannedBuffer> Buffers, Dictionary<int, KernelPlan> Kernels, IReadOnlyList<(PlannedBuffer, int)> Placement) Laid(bool rings, bool columns)
        {
            if (layouts.TryGetValue((rings, columns), out var l)) return l;
            var (b, kp) = Layout(rings, columns);
            return layouts[(rings, columns)] = (b, kp, ArenaAllocator.Place(b));
        }
        int Arena(bool rings, bool columns) => ArenaAllocator.Size(Laid(rings, columns).Placement);
        // the rings fit within the peak step by step; an arena at that peak is as small as the held-back rows' can be
        // (their peak is its lower bound), else it is compared with theirs and the smaller kept
        bool Rings(bool columns)
        {
            if (!depthwiseRings) return false;
            int ringed = Arena(rings: true, columns);
            return ringed <= peak || ringed <= Arena(rings: false, columns);
        }
        // the columns too fit within the peak step by step; kept when the arena does not grow
        bool Columns()
        {
            if (!pointwiseColumns) return false;
            int with = Arena(Rings(columns: true), columns: true);
            return with <= peak || with <= Arena(Rings(columns: false), columns: false);
        }
        bool useColumns = Columns();
        var chosen = Laid(Rings(useColumns), useColumns);
        ArenaAllocator.Assign(chosen.Placement);
        return new ExecutionPlan(graph, rows, cols, k, regions, chosen.Buffers, chosen.Kernels, staging);
    }

    /// <summary>Bytes of a pointwise convolution's columns: the inputs of three pixels widened to halfwords
    /// (mcu_pointwise_expand3: 6 words per group of 4 input channels), which also holds the pair kernel's 4.</summary>
    public static int PointwiseColumnBytes(int inChannels) => 24 * ((inChannels + 3) / 4);
}

/// <summary>
/// A depthwise convolution that writes its output over its input (channels last, both buffers starting at the same
/// byte, each holding its own region of its tensor). Output element (pixel p, channel c) lands on input element
/// (pixel p, channel c), so computing a block of channels at a time only ever overwrites that block. Within a
/// channel, an output row is held back in a ring of scratch rows until no later output row reads the input rows it
/// lands on; the C kernel <c>mcu_depthwise_inplace</c> flushes with the same rule.
/// </summary>
public static class DepthwiseInPlace
{
    /// <summary>Channels computed together (MCU_DW_BLOCK in the kernels): the scratch ring holds rows of this many channels.</summary>
    public const int ChannelBlock = 4;

    /// <summary>Largest window (kh x kw, MCU_DW_MAX_TAPS in the kernels) the in-place kernel gathers at the border.</summary>
    public const int MaxTaps = 64;

    /// <summary>
    /// The last output row (relative to <paramref name="output"/>) that may still read the input row held at
    /// <paramref name="inputRow"/> of <paramref name="input"/> (conservatively: every row whose window starts at or above it).
    /// </summary>
    public static int LastReader(Window w, Region input, Region output, int inputRow)
    {
        int r = input.Y0 + inputRow;
        int y = (r + w.Pad.Top) / w.StrideH;
        return Math.Min(y, output.Y1 - 1) - output.Y0;
    }

    /// <summary>The output row (relative) after whose computation row <paramref name="row"/> may be written.</summary>
    public static int SafeAfter(Window w, Region input, Region output, int row)
    {
        int lastPixel = (row + 1) * output.W - 1;
        int inputRow = Math.Min(lastPixel / input.W, input.H - 1);
        return LastReader(w, input, output, inputRow);
    }

    /// <summary>Input rows the ring of <c>mcu_depthwise3x3_inplace</c> holds (MCU_DW3_SLOTS).</summary>
    public const int RingSlots = 3;

    /// <summary>
    /// Whether <c>mcu_depthwise3x3_inplace</c> can compute this window: 3x3, stride 1 or 2, dilation 1. Per block of channels
    /// it copies the input rows the windows read into a ring (stride 1: planar q15 rows; stride 2: compact rows of the
    /// block's four channels as halfwords per column), in_zp around the input, so no window needs a border variant, and writes
    /// each output row over the buffer as soon as it is computed.
    /// </summary>
    public static bool UsesRing(Window w) =>
        w.KernelH == 3 && w.KernelW == 3 && w.DilationH == 1 && w.DilationW == 1 && w.StrideH == w.StrideW && w.StrideH is 1 or 2;

    /// <summary>
    /// Whether every output row, written right after its computation, lands only on input rows the ring already
    /// holds (or that no window reads any more): the rows up to the last one its window reads.
    /// </summary>
    public static bool RingSafe(Window w, Region input, Region output, int inputHeight)
    {
        for (int y = 0; y < output.H; y++)
        {
            int lands = Math.Min(((y + 1) * output.W - 1) / input.W, input.H - 1);
            int lastRead = (output.Y0 + y) * w.StrideH - w.Pad.Top + (w.KernelH - 1) * w.DilationH;
            if (lands > Math.Min(lastRead, inputHeight - 1) - input.Y0) return false;
        }
        return true;
    }

    /// <summary>int16 entries of a planar ring row (mcu_dw3_pitch, stride 1): what the pairs of outputs read, 2 per pair, and two more.</summary>
    public static int RingPitch(int outputWidth) => 2 * ((outputWidth + 1) / 2) + 2;

    /// <summary>Ring rows of the tall ring (mcu_dw3_tall_slots): every input row a block's windows read.</summary>
    public static int TallSlots(Window w, Region output) => (output.H - 1) * w.StrideH + 3;

    /// <summary>Bytes of a compact ring row (mcu_dw3c_row_bytes): a block's four channels as halfwords per column the windows read.</summary>
    public static int CompactRowBytes(int outputWidth, int strideW) => 2 * ChannelBlock * ((outputWidth - 1) * strideW + 3);

    /// <summary>Widest output rows (every run's) for which stride 1 takes the compact rows: beyond, the planar rows'
    /// paired multiplies win over their per-row set-up (measured: 6 about even, 8 planar ahead).</summary>
    public const int CompactMaxWidth = 6;

    /// <summary>Whether a layer's runs take the compact rows (<c>mcu_depthwise3x3_compact_inplace</c>): stride 2, or narrow rows.</summary>
    public static bool Compact(Window w, IReadOnlyList<(Region In, Region Out)> runs) =>
        w.StrideW == 2 || runs.Max(r => r.Out.W) <= CompactMaxWidth;

    /// <summary>
    /// Scratch of the ring kernels for one run. Compact (<c>mcu_depthwise3x3_compact_inplace</c>): <paramref
    /// name="slots"/> compact rows (the outputs go straight over the buffer). Planar (<c>mcu_depthwise3x3_inplace</c>
    /// at stride 1): the ring of <paramref name="slots"/> planar q15 rows per channel of a block, then the row buffer
    /// (<paramref name="bufferedRows"/> rows of an even number of pixels).
    /// </summary>
    public static int RingScratchBytes(int slots, int bufferedRows, Region output, int strideW, int channels, bool compact) =>
        compact
            ? slots * CompactRowBytes(output.W, strideW)
            : 2 * slots * Math.Min(channels, ChannelBlock) * RingPitch(output.W) + bufferedRows * 2 * ChannelBlock * ((output.W + 1) / 2);

    /// <summary>The scratch of a kernel for a layer's runs: <paramref name="RingSlots"/> 0 is the held-back rows of
    /// <c>mcu_depthwise_inplace</c>, 3 the ring of a ring kernel, more its tall ring; <paramref name="Compact"/> the
    /// compact rows' kernel.</summary>
    public sealed record Scratch(int Bytes, int HeldRows, int RingSlots, bool Compact = false);

    /// <summary>The held-back output rows of <c>mcu_depthwise_inplace</c> (the kernel for every window).</summary>
    public static Scratch HeldRowsScratch(Conv2D dw, IReadOnlyList<(Region In, Region Out)> runs)
    {
        int ring = runs.Select(r => HeldRows(dw.Window, r.In, r.Out)).DefaultIfEmpty(1).Max();
        int width = runs.Select(r => r.Out.W).DefaultIfEmpty(0).Max();
        return new Scratch(ring * width * ChannelBlock, ring, 0);
    }

    /// <summary>
    /// The fastest ring kernel whose scratch fits in <paramref name="budget"/> bytes: the tall ring (one pass per
    /// block, no per-row copies and calls), else the ring of three rows (when <see cref="RingSafe"/> for every run; at
    /// stride 2 only for rows of 16 outputs or more); null when neither applies.
    /// </summary>
    public static Scratch? FastestWithin(Conv2D dw, IReadOnlyList<(Region In, Region Out)> runs, long budget)
    {
        var w = dw.Window;
        if (!UsesRing(w) || runs.Count == 0) return null;
        bool compact = Compact(w, runs);
        int tallSlots = runs.Max(r => TallSlots(w, r.Out));
        int tall = runs.Max(r => RingScratchBytes(TallSlots(w, r.Out), r.Out.H, r.Out, w.StrideW, dw.OutChannels, compact));
        if (tall <= budget) return new Scratch(tall, 0, tallSlots, compact);
        // the ring of three copies rows and calls the row kernel per output row: at stride 2 (few windows per input
        // value) measured slower than the held-back rows below 16 outputs a row
        if (w.StrideH != 1 && runs.Min(r => r.Out.W) < 16) return null;
        int ring = runs.Max(r => RingScratchBytes(RingSlots, 1, r.Out, w.StrideW, dw.OutChannels, compact));
        int inputHeight = dw.Inputs[0].Shape.H;
        if (ring <= budget && runs.All(r => RingSafe(w, r.In, r.Out, inputHeight))) return new Scratch(ring, 0, RingSlots, compact);
        return null;
    }

    /// <summary>The most output rows held back at once: the scratch ring needs this many rows of <c>output.W</c> x <see cref="ChannelBlock"/> bytes.</summary>
    public static int HeldRows(Window w, Region input, Region output)
    {
        int head = 0, most = 0;
        for (int y = 0; y < output.H; y++)
        {
            most = Math.Max(most, y - head + 1);
            while (head <= y && SafeAfter(w, input, output, head) <= y) head++;
        }
        return Math.Max(most, 1);
    }
}
