using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Quantization;

/// <summary>The int8 model: per-tensor activation parameters and per-layer integer parameters.</summary>
public sealed class QuantizedModel
{
    public QuantizedModel(ModelGraph graph, IReadOnlyDictionary<Tensor, QuantParams> activations, IReadOnlyDictionary<Layer, QuantizedLayer> layers)
    {
        Graph = graph; Activations = activations; Layers = layers;
    }
    public ModelGraph Graph { get; }
    public IReadOnlyDictionary<Tensor, QuantParams> Activations { get; }
    public IReadOnlyDictionary<Layer, QuantizedLayer> Layers { get; }
    public QuantParams InputParams => Activations[Graph.Input];
    public QuantParams OutputParams => Activations[Graph.Output];

    public sbyte[] QuantizeInput(float[] x) => x.Select(InputParams.Quantize).ToArray();
    public float[] DequantizeOutput(sbyte[] q) => q.Select(OutputParams.Dequantize).ToArray();
}

/// <summary>Optional steps of <see cref="Quantizer.Quantize(ModelGraph, CalibrationRanges?, QuantizerOptions)"/>.</summary>
public sealed record QuantizerOptions
{
    public static QuantizerOptions Default { get; } = new();

    /// <summary>
    /// Shift the int32 bias of every Conv2D / FullyConnected so that, for the mean input observed in calibration
    /// (<see cref="CalibrationRanges.ChannelMeans"/>, <see cref="CalibrationRanges.FeatureMeans"/> for a fully connected
    /// layer), the int8 weights give the same expected output as the float weights: b += sum over taps of
    /// (W - dequantized Wq) * E[x] (Nagel et al. 2019, analytic bias correction; a convolution tap that reads zero
    /// padding at some output positions counts E[x] only for the others). Layers with model-given weight scales are
    /// left as the model says; without calibration ranges nothing changes.
    /// </summary>
    public bool BiasCorrection { get; init; }
}

/// <summary>
/// Post-training quantization: per-channel symmetric int8 weights, per-tensor asymmetric int8 activations, int32 bias.
/// A pre-quantized model's own parameters (<see cref="ModelGraph.Quantization"/>) take precedence over calibration.
/// </summary>
public static class Quantizer
{
    /// <summary>The tensors whose parameters must come from calibration (all of them for a float model).</summary>
    public static IReadOnlyList<Tensor> TensorsNeedingCalibration(ModelGraph graph) =>
        graph.Inputs.Concat(graph.Layers.Where(l => l is not (Softmax or PoolLayer or Relayout)).Select(l => l.Output))
            .Where(t => graph.Quantization?.Activations.ContainsKey(t) != true).ToList();

    /// <param name="ranges">Calibrated ranges; may be null when <see cref="TensorsNeedingCalibration"/> is empty.</param>
    public static QuantizedModel Quantize(ModelGraph graph, CalibrationRanges? ranges) => Quantize(graph, ranges, QuantizerOptions.Default);

    /// <param name="ranges">Calibrated ranges; may be null when <see cref="TensorsNeedingCalibration"/> is empty.</param>
    /// <param name="options">Optional steps (bias correction).</param>
    public static QuantizedModel Quantize(ModelGraph graph, CalibrationRanges? ranges, QuantizerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var given = graph.Quantization;
        // the mean of each input channel, for bias correction; never for a layer with the model's own weight scales
        // (a fully connected layer: the mean of each input feature)
        IReadOnlyList<double>? MeansFor(Layer l) =>
            !options.BiasCorrection || ranges == null || given?.WeightScales.ContainsKey(l) == true || !ranges.Contains(l.Inputs[0]) ? null
            : l is FullyConnected ? ranges.FeatureMeans(l.Inputs[0]) : ranges.ChannelMeans(l.Inputs[0]);
        QuantParams Calibrated(Tensor t, Func<(double, double), (double, double)>? clip = null)
        {
            if (given != null && given.Activations.TryGetValue(t, out var p)) return new QuantParams(p.Scale, p.ZeroPoint);
            if (ranges == null) throw new InvalidOperationException($"tensor '{t.Name}' has neither model-given quantization nor calibration ranges");
            return FromRange(clip == null ? ranges[t] : clip(ranges[t]));
        }
        var act = graph.Inputs.ToDictionary(t => t, t => Calibrated(t));
        foreach (var l in graph.Layers)
        {
            act[l.Output] = l switch
            {
                Softmax => new QuantParams(1.0 / 256, -128), // exact in float32
                PoolLayer => act[l.Inputs[0]], // pooling never leaves the input range
                Relayout => act[l.Inputs[0]], // the same values, moved
                Conv2D c => Calibrated(l.Output, r => Clip(r, c.Activation)),
                FullyConnected f => Calibrated(l.Output, r => Clip(r, f.Activation)),
                Add a => Calibrated(l.Output, r => Clip(r, a.Activation)),
                _ => Calibrated(l.Output),
            };
        }
        var layers = new Dictionary<Layer, QuantizedLayer>();
        foreach (var l in graph.Layers)
        {
            var qi = act[l.Inputs[0]]; var qo = act[l.Output];
            try
            {
                layers[l] = l switch
                {
                    Conv2D c => QuantizeWeights(l, c.Weights, c.Bias, c.OutChannels, qi, qo, c.Activation, given?.WeightScales.GetValueOrDefault(l), MeansFor(l)),
                    FullyConnected f => QuantizeWeights(l, f.Weights, f.Bias, f.OutFeatures, qi, qo, f.Activation, given?.WeightScales.GetValueOrDefault(l), MeansFor(l)),
                    Add a => QuantizeAdd(a, act[a.Inputs[0]], act[a.Inputs[1]], qo),
                    AveragePool => new QuantizedAveragePool(l, qi.ZeroPoint),
                    MaxPool => new QuantizedMaxPool(l),
                    Relayout r => new QuantizedRelayout(l, r.SourceIndices()),
                    UnaryElementwise u => new QuantizedLookup(l, Enumerable.Range(-128, 256).Select(q => qo.Quantize(u.Apply(qi.Dequantize((sbyte)q)))).ToArray()),
                    ChannelPRelu p => new QuantizedChannelPRelu(l, qi.ZeroPoint, FixedPointMultiplier.FromReal(qi.Scale / qo.Scale),
                        p.Slopes.Select(slope => FixedPointMultiplier.FromReal(Math.Abs((double)slope) * qi.Scale / qo.Scale)).ToArray(),
                        p.Slopes.Select(slope => slope < 0 ? -1 : 1).ToArray(), qo.ZeroPoint),
                    Mul => new QuantizedMul(l, act[l.Inputs[0]].ZeroPoint, act[l.Inputs[1]].ZeroPoint,
                        FixedPointMultiplier.FromReal(act[l.Inputs[0]].Scale * act[l.Inputs[1]].Scale / qo.Scale), qo.ZeroPoint),
                    Concat => new QuantizedConcat(l, l.Inputs.Select(t => act[t].ZeroPoint).ToArray(),
                        l.Inputs.Select(t => FixedPointMultiplier.FromReal(act[t].Scale / qo.Scale)).ToArray(), qo.ZeroPoint),
                    Softmax => new QuantizedSoftmax(l, Enumerable.Range(0, 256)
                        .Select(d => (int)Math.Round(Math.Exp(-d * qi.Scale) * (1 << QuantizedSoftmax.TableBits), MidpointRounding.AwayFromZero)).ToArray()),
                    _ => throw new NotSupportedException(l.Op),
                };
            }
            catch (ArgumentOutOfRangeException e) when (e.ParamName == "m")
            {
                throw new CompilerException(ErrorCodes.UnsupportedModel,
                    $"layer '{l.Name}' ({l.Op}) needs a requantization factor of {e.ActualValue:G3}, which int8 arithmetic cannot apply; " +
                    (given != null ? "the model's own quantization scales are implausible, re-quantize the model" : "its weights or activation ranges are implausible"),
                    graph.SourcePath);
            }
        }
        return new QuantizedModel(graph, act, layers);
    }

    private static QuantParams FromRange((double Min, double Max) r) => QuantParams.FromRange(r.Min, r.Max);

    private static (double, double) Clip((double Min, double Max) r, ActivationRange a) =>
        (Math.Max(r.Min, a.Min), Math.Min(r.Max, a.Max));

    /// <param name="givenScales">The model's own per-channel weight scales (pre-quantized models), or null to derive them.</param>
    /// <param name="inputMeans">For bias correction, the mean of each input channel (of each input feature for a fully connected layer), or null for none.</param>
    private static QuantizedConv QuantizeWeights(Layer l, float[] w, float[] bias, int outChannels, QuantParams qi, QuantParams qo, ActivationRange a,
        double[]? givenScales, IReadOnlyList<double>? inputMeans = null)
    {
        int per = w.Length / outChannels;
        var qw = new sbyte[w.Length];
        var qb = new int[outChannels];
        var rq = new FixedPointMultiplier[outChannels];
        var scales = new double[outChannels];
        // E[x] seen by each weight of an output channel (per [kh][kw][Cin/groups] tap); per group for grouped convolutions
        var expectedInput = inputMeans == null ? null : ExpectedInputPerTap(l, inputMeans);
        for (int o = 0; o < outChannels; o++)
        {
            double maxAbs = 0;
            for (int i = 0; i < per; i++) maxAbs = Math.Max(maxAbs, Math.Abs(w[o * per + i]));
            double ws = givenScales?[o] ?? (maxAbs > 0 ? (float)(maxAbs / 127.0) : 1.0); // float32, as ONNX stores scales
            int lowest = givenScales != null ? -128 : -127; // the model's integers are kept as they are
            scales[o] = ws;
            for (int i = 0; i < per; i++)
                qw[o * per + i] = (sbyte)Math.Clamp(Math.Round(w[o * per + i] / ws, MidpointRounding.AwayFromZero), lowest, 127);
            double b = bias[o];
            if (expectedInput != null)
            {
                // Bias correction (Nagel et al. 2019): the expected output of the int8 weights equals that of the float
                // weights, b += sum over taps (W - dequantized Wq) * E[x]
                var ex = expectedInput(o);
                double shift = 0;
                for (int i = 0; i < per; i++) shift += ((double)w[o * per + i] - qw[o * per + i] * ws) * ex[i];
                b += shift;
            }
            double accScale = qi.Scale * ws;
            qb[o] = (int)Math.Clamp(Math.Round(b / accScale, MidpointRounding.AwayFromZero), int.MinValue / 2, int.MaxValue / 2);
            rq[o] = FixedPointMultiplier.ForHighWord(accScale / qo.Scale);
        }
        int hi = qo.Bound(a.Max), lo = Math.Min(qo.Bound(a.Min), hi); // min > max clips everything to max
        return new QuantizedConv(l, qw, qb, rq, qi.ZeroPoint, qo.ZeroPoint, lo, hi, scales);
    }

    /// <summary>
    /// For output channel o, the expected input value under each weight: for a convolution ([kh][kw][Cin/groups]) the
    /// channel mean times the fraction of output positions at which the tap reads inside the input (zero padding reads
    /// 0); for a fully connected layer ([In]) the mean of each input feature.
    /// </summary>
    private static Func<int, double[]> ExpectedInputPerTap(Layer l, IReadOnlyList<double> means)
    {
        if (l is FullyConnected f)
        {
            if (means.Count != f.InFeatures) throw new ArgumentException($"{means.Count} feature means for {f.InFeatures} inputs of '{l.Name}'", nameof(means));
            var m = means.ToArray();
            return _ => m;
        }
        var c = (Conv2D)l;
        var win = c.Window; var si = c.Inputs[0].Shape; var so = c.Output.Shape;
        static double[] Inside(int kernel, int outSize, int stride, int pad, int dilation, int inSize) =>
            Enumerable.Range(0, kernel).Select(k => outSize == 0 ? 0.0 :
                (double)Enumerable.Range(0, outSize).Count(o => o * stride - pad + k * dilation is var i && i >= 0 && i < inSize) / outSize).ToArray();
        var fy = Inside(win.KernelH, so.H, win.StrideH, win.Pad.Top, win.DilationH, si.H);
        var fx = Inside(win.KernelW, so.W, win.StrideW, win.Pad.Left, win.DilationW, si.W);
        int cpg = c.InChannelsPerGroup, opg = c.OutChannels / c.Groups;
        var perGroup = new double[c.Groups][];
        for (int g = 0; g < c.Groups; g++)
        {
            var e = perGroup[g] = new double[win.KernelH * win.KernelW * cpg];
            for (int ky = 0; ky < win.KernelH; ky++)
                for (int kx = 0; kx < win.KernelW; kx++)
                    for (int ic = 0; ic < cpg; ic++)
                        e[(ky * win.KernelW + kx) * cpg + ic] = fy[ky] * fx[kx] * means[g * cpg + ic];
        }
        return o => perGroup[o / opg];
    }

    private static QuantizedAdd QuantizeAdd(Add l, QuantParams qa, QuantParams qb, QuantParams qo)
    {
        double twiceMax = 2 * Math.Max(qa.Scale, qb.Scale);
        return new QuantizedAdd(l, l.Subtract ? -1 : 1, qa.ZeroPoint, qb.ZeroPoint,
            FixedPointMultiplier.ForHighWord(qa.Scale / twiceMax),
            FixedPointMultiplier.ForHighWord(qb.Scale / twiceMax),
            FixedPointMultiplier.ForHighWord(twiceMax / ((1 << QuantizedAdd.LeftShift) * qo.Scale)),
            qo.ZeroPoint, Math.Min(qo.Bound(l.Activation.Min), qo.Bound(l.Activation.Max)), qo.Bound(l.Activation.Max));
    }
}
