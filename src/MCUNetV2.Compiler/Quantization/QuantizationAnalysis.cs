using System.Globalization;
using System.Text;
using System.Text.Json.Serialization;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Quantization;

/// <summary>
/// Quantization error of one layer's output: the dequantized int8 tensor (<see cref="Int8Executor"/>, the exact C
/// arithmetic) against the float tensor (<see cref="FloatExecutor"/>), summed over all samples. The error is end to
/// end: it includes everything the layers before contributed.
/// </summary>
/// <param name="Index">Position of the layer in graph order.</param>
/// <param name="Layer">Layer name.</param>
/// <param name="Op">Operator (<see cref="Graph.Layer.Op"/>).</param>
/// <param name="Tensor">Name of the output tensor.</param>
/// <param name="SqnrDb">10 log10(sum f^2 / sum (f - deq)^2) in dB; +infinity when the error is 0.</param>
/// <param name="MaxAbsError">Largest |f - deq| over all elements and samples.</param>
/// <param name="ClippedPercent">Percentage of float values that the tensor's int8 range clips (beyond its ends by more than half a step).</param>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
public sealed record LayerQuantizationError(int Index, string Layer, string Op, string Tensor, double SqnrDb, double MaxAbsError, double ClippedPercent);

/// <summary>
/// What <see cref="QuantizationAnalysis"/> found: per-layer SQNR in graph order, the output's SQNR, how often int8 and
/// float pick the same class, and the layers with the lowest SQNR. Plain records: serialisable with System.Text.Json
/// (infinite SQNR is written as "Infinity").
/// </summary>
/// <param name="Samples">Number of inputs analysed.</param>
/// <param name="OutputSqnrDb">SQNR of the graph output in dB.</param>
/// <param name="Top1Agreements">Samples whose int8 output has the same argmax (first maximum) as the float output.</param>
/// <param name="Layers">Every layer, in graph order.</param>
/// <param name="Worst">The layers with the lowest SQNR, lowest first.</param>
[JsonNumberHandling(JsonNumberHandling.AllowNamedFloatingPointLiterals)]
public sealed record QuantizationReport(int Samples, double OutputSqnrDb, int Top1Agreements,
    IReadOnlyList<LayerQuantizationError> Layers, IReadOnlyList<LayerQuantizationError> Worst)
{
    /// <summary>Fraction of samples where int8 and float agree on the top-1 class (1 with no samples).</summary>
    public double Top1Agreement => Samples == 0 ? 1 : (double)Top1Agreements / Samples;

    /// <summary>The lowest layer SQNR (+infinity without layers).</summary>
    [JsonIgnore]
    public double WorstLayerSqnrDb => Worst.Count == 0 ? double.PositiveInfinity : Worst[0].SqnrDb;

    /// <summary>A short table: the summary line and the <paramref name="rows"/> layers with the lowest SQNR (all layers with a negative value).</summary>
    public string Describe(int rows = 5)
    {
        var ci = CultureInfo.InvariantCulture;
        var list = (rows < 0 ? Layers : Layers.OrderBy(l => l.SqnrDb).ThenBy(l => l.Index).Take(rows)).ToList();
        var sb = new StringBuilder();
        sb.Append(ci, $"int8 vs float on {Samples} sample(s): output SQNR {QuantizationAnalysis.FormatDb(OutputSqnrDb)} dB, ")
          .Append(ci, $"top-1 agreement {Top1Agreements}/{Samples} ({100 * Top1Agreement:0.#}%)").AppendLine();
        if (list.Count == 0) return sb.ToString().TrimEnd();
        int nameWidth = Math.Clamp(list.Max(l => l.Layer.Length), 5, 48);
        int opWidth = Math.Max(2, list.Max(l => l.Op.Length));
        sb.AppendLine(rows < 0 ? $"  all {Layers.Count} layers:" : $"  lowest SQNR of {Layers.Count} layers:");
        sb.Append(ci, $"  {"#",4}  {"layer".PadRight(nameWidth)}  {"op".PadRight(opWidth)}  {"SQNR dB",8}  {"max |err|",10}  {"clipped",8}").AppendLine();
        foreach (var l in list)
            sb.Append(ci, $"  {l.Index,4}  {Shorten(l.Layer, nameWidth).PadRight(nameWidth)}  {l.Op.PadRight(opWidth)}  {QuantizationAnalysis.FormatDb(l.SqnrDb),8}  {l.MaxAbsError,10:G4}  {l.ClippedPercent,7:0.###}%").AppendLine();
        return sb.ToString().TrimEnd();
    }

    private static string Shorten(string s, int width) => s.Length <= width ? s : "…" + s[^(width - 1)..];
}

/// <summary>
/// Runs the float model and the int8 model on the same float inputs and measures, layer by layer, how far the
/// dequantized int8 tensors are from the float ones (signal-to-quantization-noise ratio), plus the top-1 agreement of
/// the outputs. Samples run in parallel; the result does not depend on the scheduling.
/// </summary>
public static class QuantizationAnalysis
{
    /// <summary>SQNR in dB: 10 log10(signal / noise), +infinity when noise is 0 (also when both are 0).</summary>
    public static double SqnrDb(double signalEnergy, double noiseEnergy) =>
        noiseEnergy <= 0 ? double.PositiveInfinity : 10 * Math.Log10(signalEnergy / noiseEnergy);

    internal static string FormatDb(double db) =>
        double.IsPositiveInfinity(db) ? "+inf" : double.IsNegativeInfinity(db) ? "-inf" : db.ToString("0.0", CultureInfo.InvariantCulture);

    /// <summary>Analyses one int8 model on single-input samples.</summary>
    public static QuantizationReport Analyze(QuantizedModel model, IEnumerable<float[]> inputs, int worst = 5) =>
        Analyze(new[] { model }, inputs.Select(i => (IReadOnlyList<float[]>)new[] { i }), worst)[0];

    /// <summary>Analyses one int8 model on samples (one float NHWC array per graph input).</summary>
    public static QuantizationReport Analyze(QuantizedModel model, IEnumerable<IReadOnlyList<float[]>> samples, int worst = 5) =>
        Analyze(new[] { model }, samples, worst)[0];

    /// <summary>Analyses several int8 models of the same graph (e.g. calibration methods) on single-input samples; the float model runs once per sample.</summary>
    public static IReadOnlyList<QuantizationReport> Analyze(IReadOnlyList<QuantizedModel> models, IEnumerable<float[]> inputs, int worst = 5) =>
        Analyze(models, inputs.Select(i => (IReadOnlyList<float[]>)new[] { i }), worst);

    /// <summary>Analyses several int8 models of the same graph on samples; one report per model, in order.</summary>
    public static IReadOnlyList<QuantizationReport> Analyze(IReadOnlyList<QuantizedModel> models, IEnumerable<IReadOnlyList<float[]>> samples, int worst = 5)
    {
        if (models.Count == 0) return Array.Empty<QuantizationReport>();
        var graph = models[0].Graph;
        if (models.Any(m => m.Graph != graph)) throw new ArgumentException("the models must quantize the same graph", nameof(models));
        int count = 0;
        var layers = graph.Layers;
        var layerOf = new Dictionary<Tensor, int>();
        for (int i = 0; i < layers.Count; i++) layerOf.TryAdd(layers[i].Output, i);

        var totals = models.Select(_ => new Sums(layers.Count)).ToArray();
        var agreements = new int[models.Count];
        OrderedParallel.ForEach(samples, (inputs, s) =>
        {
            if (inputs.Count != graph.Inputs.Count) throw new ArgumentException($"sample {s} has {inputs.Count} inputs, the model takes {graph.Inputs.Count}");
            var int8 = models.Select(m =>
            {
                var tensors = new Dictionary<Tensor, sbyte[]>();
                var q = graph.Inputs.Select((t, i) => inputs[i].Select(m.Activations[t].Quantize).ToArray()).ToList();
                Int8Executor.Run(m, q, (t, v) => tensors[t] = v);
                return tensors;
            }).ToList();
            var sums = models.Select(_ => new Sums(layers.Count)).ToArray();
            var output = FloatExecutor.Run(graph, inputs, (t, f) =>
            {
                if (!layerOf.TryGetValue(t, out int li)) return;
                for (int m = 0; m < models.Count; m++) sums[m].Add(li, f, int8[m][t], models[m].Activations[t]);
            });
            var agree = int8.Select(t => ArgMax(t[graph.Output]) == ArgMax(output)).ToArray();
            return (sums, agree);
        }, (_, r) =>
        {
            count++;
            for (int m = 0; m < models.Count; m++)
            {
                totals[m].Merge(r.sums[m]);
                if (r.agree[m]) agreements[m]++;
            }
        });

        return models.Select((m, k) =>
        {
            var t = totals[k];
            var rows = layers.Select((l, i) => new LayerQuantizationError(i, l.Name, l.Op, l.Output.Name, SqnrDb(t.Signal[i], t.Noise[i]), t.MaxAbs[i],
                t.Count[i] == 0 ? 0 : 100.0 * t.Clipped[i] / t.Count[i])).ToList();
            int outputLayer = layerOf.TryGetValue(graph.Output, out int ol) ? ol : -1;
            double outputSqnr = outputLayer < 0 ? double.PositiveInfinity : rows[outputLayer].SqnrDb;
            var lowest = rows.OrderBy(r => r.SqnrDb).ThenBy(r => r.Index).Take(Math.Max(0, worst)).ToList();
            return new QuantizationReport(count, outputSqnr, agreements[k], rows, lowest);
        }).ToList();
    }

    private static int ArgMax(float[] v) { int b = 0; for (int i = 1; i < v.Length; i++) if (v[i] > v[b]) b = i; return b; }
    private static int ArgMax(sbyte[] v) { int b = 0; for (int i = 1; i < v.Length; i++) if (v[i] > v[b]) b = i; return b; }

    /// <summary>Per-layer energies of one sample or of all of them.</summary>
    private sealed class Sums(int layers)
    {
        public readonly double[] Signal = new double[layers], Noise = new double[layers], MaxAbs = new double[layers];
        public readonly long[] Clipped = new long[layers], Count = new long[layers];

        public void Add(int layer, float[] f, sbyte[] q, QuantParams p)
        {
            // clipped: beyond the int8 grid by more than half a step (not merely rounded to its end)
            double lo = p.Dequantize(-128) - p.Scale / 2, hi = p.Dequantize(127) + p.Scale / 2;
            double signal = 0, noise = 0, maxAbs = MaxAbs[layer];
            long clipped = 0;
            for (int i = 0; i < f.Length; i++)
            {
                double x = f[i], d = x - p.Dequantize(q[i]);
                signal += x * x; noise += d * d;
                if (Math.Abs(d) > maxAbs) maxAbs = Math.Abs(d);
                if (x < lo || x > hi) clipped++;
            }
            Signal[layer] += signal; Noise[layer] += noise; MaxAbs[layer] = maxAbs; Clipped[layer] += clipped; Count[layer] += f.Length;
        }

        public void Merge(Sums o)
        {
            for (int i = 0; i < Signal.Length; i++)
            {
                Signal[i] += o.Signal[i]; Noise[i] += o.Noise[i]; MaxAbs[i] = Math.Max(MaxAbs[i], o.MaxAbs[i]);
                Clipped[i] += o.Clipped[i]; Count[i] += o.Count[i];
            }
        }
    }
}
