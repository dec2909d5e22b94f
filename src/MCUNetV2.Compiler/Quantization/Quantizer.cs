using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Quantization;

/// <summary>Observed float range of every tensor over the calibration inputs (min/max).</summary>
public sealed class CalibrationRanges
{
    private readonly Dictionary<Tensor, (double Min, double Max)> _ranges = new();
    public int Samples { get; private set; }

    public static CalibrationRanges Observe(ModelGraph graph, IEnumerable<float[]> inputs) =>
        Observe(graph, inputs.Select(i => (IReadOnlyList<float[]>)new[] { i }));

    /// <summary>Ranges over samples of a graph with several inputs.</summary>
    public static CalibrationRanges Observe(ModelGraph graph, IEnumerable<IReadOnlyList<float[]>> samples)
    {
        var r = new CalibrationRanges();
        foreach (var input in samples)
        {
            FloatExecutor.Run(graph, input, (t, v) =>
            {
                double lo = double.MaxValue, hi = double.MinValue;
                foreach (var x in v) { if (x < lo) lo = x; if (x > hi) hi = x; }
                r._ranges[t] = r._ranges.TryGetValue(t, out var old) ? (Math.Min(old.Min, lo), Math.Max(old.Max, hi)) : (lo, hi);
            });
            r.Samples++;
        }
        return r;
    }

    public (double Min, double Max) this[Tensor t] => _ranges[t];
}

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

/// <summary>
/// Post-training quantization: per-channel symmetric int8 weights, per-tensor asymmetric int8 activations, int32 bias.
/// A pre-quantized model's own parameters (<see cref="ModelGraph.Quantization"/>) take precedence over calibration.
/// </summary>
public static class Quantizer
{
    /// <summary>The tensors whose parameters must come from calibration (all of them for a float model).</summary>
    public static IReadOnlyList<Tensor> TensorsNeedingCalibration(ModelGraph graph) =>
        graph.Inputs.Concat(graph.Layers.Where(l => l is not (Softmax or PoolLayer)).Select(l => l.Output))
            .Where(t => graph.Quantization?.Activations.ContainsKey(t) != true).ToList();

    /// <param name="ranges">Calibrated ranges; may be null when <see cref="TensorsNeedingCalibration"/> is empty.</param>
    public static QuantizedModel Quantize(ModelGraph graph, CalibrationRanges? ranges)
    {
        var given = graph.Quantization;
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
                    Conv2D c => QuantizeWeights(l, c.Weights, c.Bias, c.OutChannels, qi, qo, c.Activation, given?.WeightScales.GetValueOrDefault(l)),
                    FullyConnected f => QuantizeWeights(l, f.Weights, f.Bias, f.OutFeatures, qi, qo, f.Activation, given?.WeightScales.GetValueOrDefault(l)),
                    Add a => QuantizeAdd(a, act[a.Inputs[0]], act[a.Inputs[1]], qo),
                    AveragePool => new QuantizedAveragePool(l, qi.ZeroPoint),
                    MaxPool => new QuantizedMaxPool(l),
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
    private static QuantizedConv QuantizeWeights(Layer l, float[] w, float[] bias, int outChannels, QuantParams qi, QuantParams qo, ActivationRange a,
        double[]? givenScales)
    {
        int per = w.Length / outChannels;
        var qw = new sbyte[w.Length];
        var qb = new int[outChannels];
        var rq = new FixedPointMultiplier[outChannels];
        var scales = new double[outChannels];
        for (int o = 0; o < outChannels; o++)
        {
            double maxAbs = 0;
            for (int i = 0; i < per; i++) maxAbs = Math.Max(maxAbs, Math.Abs(w[o * per + i]));
            double ws = givenScales?[o] ?? (maxAbs > 0 ? (float)(maxAbs / 127.0) : 1.0); // float32, as ONNX stores scales
            int lowest = givenScales != null ? -128 : -127; // the model's integers are kept as they are
            scales[o] = ws;
            for (int i = 0; i < per; i++)
                qw[o * per + i] = (sbyte)Math.Clamp(Math.Round(w[o * per + i] / ws, MidpointRounding.AwayFromZero), lowest, 127);
            double accScale = qi.Scale * ws;
            qb[o] = (int)Math.Clamp(Math.Round(bias[o] / accScale, MidpointRounding.AwayFromZero), int.MinValue / 2, int.MaxValue / 2);
            rq[o] = FixedPointMultiplier.FromReal(accScale / qo.Scale);
        }
        int hi = qo.Bound(a.Max), lo = Math.Min(qo.Bound(a.Min), hi); // min > max clips everything to max
        return new QuantizedConv(l, qw, qb, rq, qi.ZeroPoint, qo.ZeroPoint, lo, hi, scales);
    }

    private static QuantizedAdd QuantizeAdd(Add l, QuantParams qa, QuantParams qb, QuantParams qo)
    {
        double twiceMax = 2 * Math.Max(qa.Scale, qb.Scale);
        return new QuantizedAdd(l, l.Subtract ? -1 : 1, qa.ZeroPoint, qb.ZeroPoint,
            FixedPointMultiplier.FromReal(qa.Scale / twiceMax),
            FixedPointMultiplier.FromReal(qb.Scale / twiceMax),
            FixedPointMultiplier.FromReal(twiceMax / ((1 << QuantizedAdd.LeftShift) * qo.Scale)),
            qo.ZeroPoint, Math.Min(qo.Bound(l.Activation.Min), qo.Bound(l.Activation.Max)), qo.Bound(l.Activation.Max));
    }
}
