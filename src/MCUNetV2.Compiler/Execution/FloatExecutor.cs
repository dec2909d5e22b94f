using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Execution;

/// <summary>
/// Float reference of the imported graph (NHWC). It is checked against ONNX Runtime in the tests and drives
/// calibration: <see cref="Run"/> can report every intermediate tensor.
/// </summary>
public static class FloatExecutor
{
    /// <summary>Runs the graph on an NHWC input; <paramref name="observe"/> sees every tensor (input included).</summary>
    public static float[] Run(ModelGraph graph, float[] input, Action<Tensor, float[]>? observe = null) => Run(graph, new[] { input }, observe);

    /// <summary>Runs a graph with any number of inputs (NHWC each, in the order of <see cref="ModelGraph.Inputs"/>).</summary>
    public static float[] Run(ModelGraph graph, IReadOnlyList<float[]> inputs, Action<Tensor, float[]>? observe = null)
    {
        if (inputs.Count != graph.Inputs.Count) throw new ArgumentException($"{inputs.Count} inputs given, the model takes {graph.Inputs.Count}");
        var values = new Dictionary<Tensor, float[]>();
        for (int i = 0; i < inputs.Count; i++)
        {
            if (inputs[i].Length != graph.Inputs[i].Shape.Elements)
                throw new ArgumentException($"input {i} has {inputs[i].Length} values, the model takes {graph.Inputs[i].Shape.Elements}");
            values[graph.Inputs[i]] = inputs[i];
            observe?.Invoke(graph.Inputs[i], inputs[i]);
        }
        var lastUse = graph.LastUse();
        for (int i = 0; i < graph.Layers.Count; i++)
        {
            var layer = graph.Layers[i];
            var ins = layer.Inputs.Select(t => values[t]).ToArray();
            var output = layer switch
            {
                Conv2D c => Conv(c, ins[0]),
                Add a => AddLayer(a, ins[0], ins[1]),
                AveragePool p => Pool(p, ins[0]),
                MaxPool m => MaxPoolOf(m, ins[0]),
                UnaryElementwise u => ins[0].Select(u.Apply).ToArray(),
                ChannelPRelu p => ins[0].Select((v, k) => p.Apply(v, k % p.Slopes.Length)).ToArray(),
                Mul m => Enumerable.Range(0, ins[0].Length).Select(i => ins[0][i] * ins[1][m.BroadcastsB ? i % m.Output.Shape.C : i]).ToArray(),
                Concat c => ConcatOf(c, ins),
                FullyConnected f => Fc(f, ins[0]),
                Softmax => SoftmaxOf(ins[0], layer.Output.Shape.C),
                Relayout r => Array.ConvertAll(r.SourceIndices(), s => ins[0][s]),
                _ => throw new NotSupportedException(layer.Op),
            };
            values[layer.Output] = output;
            observe?.Invoke(layer.Output, output);
            foreach (var t in layer.Inputs) if (lastUse[t] == i && t != graph.Output) values.Remove(t);
        }
        return values[graph.Output];
    }

    /// <summary>NCHW (ONNX layout) to NHWC.</summary>
    public static float[] NchwToNhwc(float[] x, TensorShape s)
    {
        var r = new float[x.Length];
        for (int c = 0; c < s.C; c++)
            for (int y = 0; y < s.H; y++)
                for (int xx = 0; xx < s.W; xx++)
                    r[(y * s.W + xx) * s.C + c] = x[(c * s.H + y) * s.W + xx];
        return r;
    }

    private static float[] Conv(Conv2D l, float[] x)
    {
        var si = l.Inputs[0].Shape; var so = l.Output.Shape; var w = l.Window;
        int cpg = l.InChannelsPerGroup, opg = l.OutChannels / l.Groups;
        var y = new float[so.Elements];
        for (int oy = 0; oy < so.H; oy++)
            for (int ox = 0; ox < so.W; ox++)
                for (int oc = 0; oc < so.C; oc++)
                {
                    int g = oc / opg;
                    double acc = l.Bias[oc];
                    for (int ky = 0; ky < w.KernelH; ky++)
                    {
                        int iy = oy * w.StrideH - w.Pad.Top + ky * w.DilationH;
                        if (iy < 0 || iy >= si.H) continue;
                        for (int kx = 0; kx < w.KernelW; kx++)
                        {
                            int ix = ox * w.StrideW - w.Pad.Left + kx * w.DilationW;
                            if (ix < 0 || ix >= si.W) continue;
                            int xo = (iy * si.W + ix) * si.C + g * cpg;
                            int wo = ((oc * w.KernelH + ky) * w.KernelW + kx) * cpg;
                            for (int ic = 0; ic < cpg; ic++) acc += (double)x[xo + ic] * l.Weights[wo + ic];
                        }
                    }
                    y[(oy * so.W + ox) * so.C + oc] = l.Activation.Apply((float)acc);
                }
        return y;
    }

    private static float[] AddLayer(Add l, float[] a, float[] b)
    {
        var y = new float[a.Length];
        int c = l.Output.Shape.C;
        for (int i = 0; i < y.Length; i++)
        {
            float bv = b[l.BroadcastsB ? i % c : i];
            y[i] = l.Activation.Apply(l.Subtract ? a[i] - bv : a[i] + bv);
        }
        return y;
    }

    private static float[] Pool(AveragePool l, float[] x)
    {
        var si = l.Inputs[0].Shape; var so = l.Output.Shape; var w = l.Window;
        var y = new float[so.Elements];
        for (int oy = 0; oy < so.H; oy++)
            for (int ox = 0; ox < so.W; ox++)
            {
                int y0 = oy * w.StrideH - w.Pad.Top, x0 = ox * w.StrideW - w.Pad.Left;
                int divisor = w.PoolDivisor(y0, x0, si);
                for (int c = 0; c < so.C; c++)
                {
                    double sum = 0;
                    for (int iy = Math.Max(0, y0); iy < Math.Min(si.H, y0 + w.KernelH); iy++)
                        for (int ix = Math.Max(0, x0); ix < Math.Min(si.W, x0 + w.KernelW); ix++)
                            sum += x[(iy * si.W + ix) * si.C + c];
                    y[(oy * so.W + ox) * so.C + c] = (float)(sum / divisor);
                }
            }
        return y;
    }

    private static float[] MaxPoolOf(MaxPool l, float[] x)
    {
        var si = l.Inputs[0].Shape; var so = l.Output.Shape; var w = l.Window;
        var y = new float[so.Elements];
        for (int oy = 0; oy < so.H; oy++)
            for (int ox = 0; ox < so.W; ox++)
                for (int c = 0; c < so.C; c++)
                {
                    float m = float.NegativeInfinity;
                    for (int ky = 0; ky < w.KernelH; ky++)
                    {
                        int iy = oy * w.StrideH - w.Pad.Top + ky * w.DilationH;
                        if (iy < 0 || iy >= si.H) continue;
                        for (int kx = 0; kx < w.KernelW; kx++)
                        {
                            int ix = ox * w.StrideW - w.Pad.Left + kx * w.DilationW;
                            if (ix < 0 || ix >= si.W) continue;
                            m = Math.Max(m, x[(iy * si.W + ix) * si.C + c]);
                        }
                    }
                    y[(oy * so.W + ox) * so.C + c] = m;
                }
        return y;
    }

    private static float[] ConcatOf(Concat l, float[][] xs)
    {
        var so = l.Output.Shape;
        var y = new float[so.Elements];
        int offset = 0;
        for (int i = 0; i < xs.Length; i++)
        {
            int c = l.Inputs[i].Shape.C;
            for (int p = 0; p < so.H * so.W; p++)
                Array.Copy(xs[i], p * c, y, p * so.C + offset, c);
            offset += c;
        }
        return y;
    }

    private static float[] Fc(FullyConnected l, float[] x)
    {
        int k = l.InFeatures, n = l.OutFeatures;
        var y = new float[n];
        for (int o = 0; o < n; o++)
        {
            double acc = l.Bias[o];
            for (int i = 0; i < k; i++) acc += (double)x[i] * l.Weights[o * k + i];
            y[o] = l.Activation.Apply((float)acc);
        }
        return y;
    }

    /// <summary>Softmax over the channels of every pixel.</summary>
    private static float[] SoftmaxOf(float[] x, int c)
    {
        var y = new float[x.Length];
        for (int p = 0; p < x.Length; p += c)
        {
            float max = float.NegativeInfinity;
            for (int i = 0; i < c; i++) max = Math.Max(max, x[p + i]);
            double sum = 0;
            for (int i = 0; i < c; i++) sum += Math.Exp(x[p + i] - max);
            for (int i = 0; i < c; i++) y[p + i] = (float)(Math.Exp(x[p + i] - max) / sum);
        }
        return y;
    }
}
