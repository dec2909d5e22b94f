using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Planning;

namespace MCUNetV2.Compiler.Quantization;

/// <summary>
/// The int8 reference: the exact integer semantics that the generated C reproduces bit for bit. It runs an
/// <see cref="ExecutionPlan"/> region by region exactly as the C code does, so per-layer and patch-based plans can be
/// compared without a toolchain.
/// </summary>
public static class Int8Executor
{
    /// <summary>A buffer holding region <see cref="Region"/> of a tensor with <see cref="C"/> channels, rows contiguous.</summary>
    internal readonly record struct View(sbyte[] Data, Region Region, int C)
    {
        public int At(int y, int x) => ((y - Region.Y0) * Region.W + (x - Region.X0)) * C;
        public static View Full(Tensor t) => new(new sbyte[t.Bytes], Region.Full(t.Shape), t.Shape.C);
    }

    public static sbyte[] Run(QuantizedModel model, sbyte[] input) => Run(model, PatchPlanner.PerLayer(model.Graph), input);

    public static sbyte[] Run(QuantizedModel model, ExecutionPlan plan, sbyte[] input) => Run(model, plan, new[] { input });

    /// <summary>Runs a plan on any number of inputs (int8 NHWC, in the order of <see cref="ModelGraph.Inputs"/>).</summary>
    public static sbyte[] Run(QuantizedModel model, ExecutionPlan plan, IReadOnlyList<sbyte[]> inputs) => Run(model, plan, inputs, null);

    /// <summary>
    /// Runs layer by layer; <paramref name="observe"/> sees every tensor (inputs first, then each layer's output in graph
    /// order) as int8 NHWC. The arrays are the executor's own buffers: read them, do not change them.
    /// </summary>
    public static sbyte[] Run(QuantizedModel model, IReadOnlyList<sbyte[]> inputs, Action<Tensor, sbyte[]> observe) =>
        Run(model, PatchPlanner.PerLayer(model.Graph), inputs, observe);

    /// <summary>
    /// Runs a plan; <paramref name="observe"/>, when given, sees every tensor that the plan computes whole: the inputs,
    /// the split tensor once all patches are done, and each later layer's output (in a per-layer plan: all of them).
    /// Observing changes nothing in the computation.
    /// </summary>
    public static sbyte[] Run(QuantizedModel model, ExecutionPlan plan, IReadOnlyList<sbyte[]> inputs, Action<Tensor, sbyte[]>? observe)
    {
        var g = model.Graph;
        if (inputs.Count != g.Inputs.Count) throw new ArgumentException($"{inputs.Count} inputs given, the model takes {g.Inputs.Count}");
        var views = new Dictionary<Tensor, View>();
        for (int i = 0; i < inputs.Count; i++)
        {
            var t = g.Inputs[i];
            if (inputs[i].Length != t.Bytes) throw new ArgumentException($"input {i} has {inputs[i].Length} bytes, the model takes {t.Bytes}");
            views[t] = new View(inputs[i], Region.Full(t.Shape), t.Shape.C);
            observe?.Invoke(t, inputs[i]);
        }
        if (plan.IsPatchBased)
        {
            var split = plan.SplitTensor!;
            var full = View.Full(split);
            foreach (var regions in plan.PatchRegions)
            {
                var patchViews = new Dictionary<Tensor, View> { [g.Input] = views[g.Input] };
                for (int i = 0; i < plan.PatchLayerCount; i++)
                {
                    var l = g.Layers[i];
                    var region = regions.GetValueOrDefault(l.Output);
                    var outView = l.Output == split ? full : new View(new sbyte[region.H * region.W * l.Output.Shape.C], region, l.Output.Shape.C);
                    Execute(model.Layers[l], l.Inputs.Select(t => patchViews[t]).ToArray(), outView, region);
                    patchViews[l.Output] = outView;
                }
            }
            views[split] = full;
            observe?.Invoke(split, full.Data);
        }
        for (int i = plan.PatchLayerCount; i < g.Layers.Count; i++)
        {
            var l = g.Layers[i];
            var outView = View.Full(l.Output);
            Execute(model.Layers[l], l.Inputs.Select(t => views[t]).ToArray(), outView, outView.Region);
            views[l.Output] = outView;
            observe?.Invoke(l.Output, outView.Data);
        }
        return views[g.Output].Data;
    }

    internal static void Execute(QuantizedLayer q, View[] inputs, View output, Region region)
    {
        switch (q)
        {
            case QuantizedConv c when c.Layer is Conv2D conv: Conv(c, conv, inputs[0], output, region); break;
            case QuantizedConv c when c.Layer is FullyConnected fc: FullyConnected(c, fc, inputs[0], output); break;
            case QuantizedAdd a: Add(a, inputs[0], inputs[1], output, region); break;
            case QuantizedAveragePool p: AveragePool((AveragePool)p.Layer, p.ZeroPoint, inputs[0], output, region); break;
            case QuantizedMaxPool p: MaxPool((MaxPool)p.Layer, inputs[0], output, region); break;
            case QuantizedLookup t: Lookup(t, inputs[0], output, region); break;
            case QuantizedMul m: Mul(m, inputs[0], inputs[1], output, region); break;
            case QuantizedChannelPRelu p: ChannelPRelu(p, inputs[0], output, region); break;
            case QuantizedConcat c: Concat(c, inputs, output, region); break;
            case QuantizedSoftmax s: Softmax(s, inputs[0], output, s.Layer.Output.Shape.C); break;
            case QuantizedRelayout r: for (int o = 0; o < r.SourceIndices.Length; o++) output.Data[o] = inputs[0].Data[r.SourceIndices[o]]; break;
            default: throw new NotSupportedException(q.Layer.Op);
        }
    }

    private static sbyte Clamp(int v, int lo, int hi) => (sbyte)(v < lo ? lo : v > hi ? hi : v);

    private static void Conv(QuantizedConv q, Conv2D l, View x, View y, Region region)
    {
        var w = l.Window; var si = l.Inputs[0].Shape;
        int cpg = l.InChannelsPerGroup, opg = l.OutChannels / l.Groups, cout = l.OutChannels;
        sbyte[] xd = x.Data, wd = q.Weights; int zp = q.InputZeroPoint; // locals: fewer calls per MAC when not optimised
        for (int oy = region.Y0; oy < region.Y1; oy++)
            for (int ox = region.X0; ox < region.X1; ox++)
            {
                int yo = y.At(oy, ox);
                for (int oc = 0; oc < cout; oc++)
                {
                    int g = oc / opg;
                    int acc = q.Bias[oc];
                    for (int ky = 0; ky < w.KernelH; ky++)
                    {
                        int iy = oy * w.StrideH - w.Pad.Top + ky * w.DilationH;
                        if (iy < 0 || iy >= si.H) continue;
                        for (int kx = 0; kx < w.KernelW; kx++)
                        {
                            int ix = ox * w.StrideW - w.Pad.Left + kx * w.DilationW;
                            if (ix < 0 || ix >= si.W) continue;
                            int xo = x.At(iy, ix) + g * cpg;
                            int wo = ((oc * w.KernelH + ky) * w.KernelW + kx) * cpg;
                            for (int ic = 0; ic < cpg; ic++) acc += (xd[xo + ic] - zp) * wd[wo + ic];
                        }
                    }
                    y.Data[yo + oc] = Clamp(q.Requant[oc].Apply(acc) + q.OutputZeroPoint, q.ActMin, q.ActMax);
                }
            }
    }

    private static void FullyConnected(QuantizedConv q, FullyConnected l, View x, View y)
    {
        int k = l.InFeatures;
        sbyte[] xd = x.Data, wd = q.Weights; int zp = q.InputZeroPoint;
        for (int o = 0; o < l.OutFeatures; o++)
        {
            int acc = q.Bias[o];
            for (int i = 0; i < k; i++) acc += (xd[i] - zp) * wd[o * k + i];
            y.Data[o] = Clamp(q.Requant[o].Apply(acc) + q.OutputZeroPoint, q.ActMin, q.ActMax);
        }
    }

    private static void Add(QuantizedAdd q, View a, View b, View y, Region region)
    {
        for (int yy = region.Y0; yy < region.Y1; yy++)
            for (int xx = region.X0; xx < region.X1; xx++)
            {
                int ao = a.At(yy, xx), bo = ((Add)q.Layer).BroadcastsB ? 0 : b.At(yy, xx), yo = y.At(yy, xx);
                for (int c = 0; c < y.C; c++)
                {
                    int va = q.RequantA.Apply((a.Data[ao + c] - q.ZeroPointA) << QuantizedAdd.LeftShift);
                    int vb = q.SignB * q.RequantB.Apply((b.Data[bo + c] - q.ZeroPointB) << QuantizedAdd.LeftShift);
                    y.Data[yo + c] = Clamp(q.RequantOut.Apply(va + vb) + q.OutputZeroPoint, q.ActMin, q.ActMax);
                }
            }
    }

    private static void AveragePool(AveragePool l, int zeroPoint, View x, View y, Region region)
    {
        var w = l.Window; var si = l.Inputs[0].Shape;
        for (int oy = region.Y0; oy < region.Y1; oy++)
            for (int ox = region.X0; ox < region.X1; ox++)
            {
                int sy = oy * w.StrideH - w.Pad.Top, sx = ox * w.StrideW - w.Pad.Left;
                int y0 = Math.Max(0, sy), y1 = Math.Min(si.H, sy + w.KernelH), x0 = Math.Max(0, sx), x1 = Math.Min(si.W, sx + w.KernelW);
                int count = w.PoolDivisor(sy, sx, si);
                int yo = y.At(oy, ox);
                for (int c = 0; c < y.C; c++)
                {
                    int sum = zeroPoint * (count - (y1 - y0) * (x1 - x0)); // counted padding is real zero
                    for (int iy = y0; iy < y1; iy++)
                        for (int ix = x0; ix < x1; ix++) sum += x.Data[x.At(iy, ix) + c];
                    y.Data[yo + c] = (sbyte)((sum >= 0 ? sum + count / 2 : sum - count / 2) / count);
                }
            }
    }

    private static void MaxPool(MaxPool l, View x, View y, Region region)
    {
        var w = l.Window; var si = l.Inputs[0].Shape;
        for (int oy = region.Y0; oy < region.Y1; oy++)
            for (int ox = region.X0; ox < region.X1; ox++)
            {
                int yo = y.At(oy, ox);
                for (int c = 0; c < y.C; c++)
                {
                    int m = -128;
                    for (int ky = 0; ky < w.KernelH; ky++)
                    {
                        int iy = oy * w.StrideH - w.Pad.Top + ky * w.DilationH;
                        if (iy < 0 || iy >= si.H) continue;
                        for (int kx = 0; kx < w.KernelW; kx++)
                        {
                            int ix = ox * w.StrideW - w.Pad.Left + kx * w.DilationW;
                            if (ix < 0 || ix >= si.W) continue;
                            m = Math.Max(m, x.Data[x.At(iy, ix) + c]);
                        }
                    }
                    y.Data[yo + c] = (sbyte)m;
                }
            }
    }

    private static void Lookup(QuantizedLookup q, View x, View y, Region region)
    {
        for (int yy = region.Y0; yy < region.Y1; yy++)
            for (int xx = region.X0; xx < region.X1; xx++)
            {
                int xo = x.At(yy, xx), yo = y.At(yy, xx);
                for (int c = 0; c < y.C; c++) y.Data[yo + c] = q.Table[x.Data[xo + c] + 128];
            }
    }

    private static void ChannelPRelu(QuantizedChannelPRelu q, View x, View y, Region region)
    {
        for (int yy = region.Y0; yy < region.Y1; yy++)
            for (int xx = region.X0; xx < region.X1; xx++)
            {
                int xo = x.At(yy, xx), yo = y.At(yy, xx);
                for (int c = 0; c < y.C; c++)
                {
                    int d = x.Data[xo + c] - q.InputZeroPoint;
                    int v = d >= 0 ? q.Positive.Apply(d) : q.Negative[c].Apply(q.NegativeSign[c] * d);
                    y.Data[yo + c] = Clamp(v + q.OutputZeroPoint, -128, 127);
                }
            }
    }

    private static void Mul(QuantizedMul q, View a, View b, View y, Region region)
    {
        for (int yy = region.Y0; yy < region.Y1; yy++)
            for (int xx = region.X0; xx < region.X1; xx++)
            {
                int ao = a.At(yy, xx), bo = ((Mul)q.Layer).BroadcastsB ? 0 : b.At(yy, xx), yo = y.At(yy, xx);
                for (int c = 0; c < y.C; c++)
                    y.Data[yo + c] = Clamp(q.Requant.Apply((a.Data[ao + c] - q.ZeroPointA) * (b.Data[bo + c] - q.ZeroPointB)) + q.OutputZeroPoint, -128, 127);
            }
    }

    private static void Concat(QuantizedConcat q, View[] xs, View y, Region region)
    {
        for (int yy = region.Y0; yy < region.Y1; yy++)
            for (int xx = region.X0; xx < region.X1; xx++)
            {
                int yo = y.At(yy, xx);
                for (int i = 0; i < xs.Length; i++)
                {
                    int xo = xs[i].At(yy, xx);
                    for (int c = 0; c < xs[i].C; c++)
                        y.Data[yo + c] = Clamp(q.Requant[i].Apply(xs[i].Data[xo + c] - q.ZeroPoints[i]) + q.OutputZeroPoint, -128, 127);
                    yo += xs[i].C;
                }
            }
    }

    private static void Softmax(QuantizedSoftmax q, View x, View y, int c)
    {
        for (int p = 0; p < y.Data.Length; p += c)
        {
            int max = -128;
            for (int i = 0; i < c; i++) max = Math.Max(max, x.Data[p + i]);
            long sum = 0;
            for (int i = 0; i < c; i++) sum += q.ExpTable[max - x.Data[p + i]];
            for (int i = 0; i < c; i++)
            {
                long v = ((long)q.ExpTable[max - x.Data[p + i]] * 256 + sum / 2) / sum - 128;
                y.Data[p + i] = (sbyte)Math.Clamp(v, -128, 127);
            }
        }
    }
}
