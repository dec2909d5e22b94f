using System.Globalization;
using System.Text;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// Calibration methods and bias correction on the real VWW model with its 15 images: one observation (min/max, channel
/// means, histograms) serves every method; each analysis runs the float and the int8 model on all 15 images.
/// </summary>
[TestClass]
public sealed class QuantizationVwwTests
{
    private const string BiasCorrected = "MinMax + bias correction";
    private static ModelGraph _graph = null!;
    private static List<float[]> _inputs = null!;
    private static CalibrationRanges _observed = null!;
    private static readonly Dictionary<string, QuantizedModel> Models = new();
    private static readonly Dictionary<string, QuantizationReport> Reports = new();

    private static readonly Dictionary<CalibrationMethod, CalibrationOptions> Methods = new()
    {
        [CalibrationMethod.MinMax] = CalibrationOptions.MinMax,
        [CalibrationMethod.Percentile] = new(CalibrationMethod.Percentile),
        [CalibrationMethod.Mse] = new(CalibrationMethod.Mse),
    };

    [ClassInitialize]
    public static void Load(TestContext _)
    {
        _graph = OnnxImporter.Load(TestData.VwwModel);
        _inputs = TestData.VwwImages.Select(i => TestData.VwwInput(i.Path, _graph.Input.Shape)).ToList();
        _observed = CalibrationRanges.Observe(_graph, _inputs, Methods[CalibrationMethod.Mse]);
        foreach (var (method, options) in Methods) Models[options.ToString()] = Quantizer.Quantize(_graph, _observed.WithOptions(options));
        Models[BiasCorrected] = Quantizer.Quantize(_graph, _observed.WithOptions(CalibrationOptions.MinMax), new QuantizerOptions { BiasCorrection = true });
    }

    /// <summary>The analyses of the named models on the 15 images, each computed once (the missing ones together, sharing the float runs).</summary>
    private static IReadOnlyList<QuantizationReport> Analyses(params string[] names)
    {
        lock (Reports)
        {
            var missing = names.Where(n => !Reports.ContainsKey(n)).Distinct().ToList();
            if (missing.Count > 0)
            {
                var computed = QuantizationAnalysis.Analyze(missing.Select(n => Models[n]).ToList(), _inputs);
                for (int i = 0; i < missing.Count; i++) Reports[missing[i]] = computed[i];
            }
            return names.Select(n => Reports[n]).ToList();
        }
    }

    /// <summary>method | output SQNR | worst layer | top-1 agreement.</summary>
    internal static string Table(IReadOnlyList<string> names, IReadOnlyList<QuantizationReport> reports)
    {
        var ci = CultureInfo.InvariantCulture;
        int w = Math.Max(6, names.Max(n => n.Length));
        var sb = new StringBuilder();
        sb.Append(ci, $"{"method".PadRight(w)}  {"output SQNR dB",14}  {"worst layer SQNR dB",19}  {"worst layer",-30}  top-1 agreement").AppendLine();
        for (int i = 0; i < names.Count; i++)
        {
            var r = reports[i];
            var worst = r.Worst.FirstOrDefault();
            string layer = worst == null ? "-" : $"#{worst.Index} {string.Join('/', worst.Layer.Split('/').TakeLast(2))}";
            sb.Append(ci, $"{names[i].PadRight(w)}  {Db(r.OutputSqnrDb),14}  {(worst == null ? "-" : Db(worst.SqnrDb)),19}  {layer,-30}  {r.Top1Agreements}/{r.Samples}").AppendLine();
        }
        return sb.ToString().TrimEnd();
    }

    private static string Db(double v) => double.IsPositiveInfinity(v) ? "+inf" : v.ToString("0.00", CultureInfo.InvariantCulture);

    [TestMethod]
    public void Ranges_OfEveryMethod_LieWithinTheObservedMinMax()
    {
        var percentile100 = _observed.WithOptions(new CalibrationOptions(CalibrationMethod.Percentile, 100));
        var ranges = Methods.Values.Select(_observed.WithOptions).ToList();
        var lines = new List<string>();
        foreach (var t in _graph.Tensors)
        {
            var (min, max) = _observed.Observed(t);
            foreach (var r in ranges)
            {
                var (lo, hi) = r[t];
                Assert.IsTrue(min <= lo && lo <= hi && hi <= max, $"{r.Options} on '{t.Name}': [{lo}, {hi}] outside [{min}, {max}]");
                if (min >= 0) Assert.AreEqual(min, lo, $"{r.Options} on '{t.Name}': post-ReLU tensors keep their minimum");
                if (_graph.Inputs.Contains(t)) Assert.AreEqual((min, max), (lo, hi), "the graph input keeps min/max");
            }
            Assert.AreEqual((min, max), ranges[0][t], "MinMax");
            Assert.AreEqual((min, max), percentile100[t], "Percentile 100 == MinMax");
            var p = ranges[1][t];
            var m = _observed[t];
            lines.Add(string.Create(CultureInfo.InvariantCulture, $"{t.Name,-70} min/max [{min,7:F3}, {max,7:F3}]  percentile [{p.Min,7:F3}, {p.Max,7:F3}]  mse [{m.Min,7:F3}, {m.Max,7:F3}]"));
        }
        Console.WriteLine(string.Join("\n", lines));
        Assert.IsTrue(_graph.Tensors.Count(t => _observed[t] != _observed.Observed(t)) > _graph.Layers.Count / 2, "Mse clips most activations");
    }

    [TestMethod]
    [DataRow(CalibrationMethod.MinMax)]
    [DataRow(CalibrationMethod.Percentile)]
    [DataRow(CalibrationMethod.Mse)]
    public void EachMethod_PerLayerSqnr_AndAgreementOnThe15Images(CalibrationMethod method)
    {
        var name = Methods[method].ToString();
        var report = Analyses(name)[0];
        Console.WriteLine($"{name}: {report.Describe()}");
        Assert.AreEqual(15, report.Samples);
        Assert.AreEqual(_graph.Layers.Count, report.Layers.Count);
        CollectionAssert.AreEqual(_graph.Layers.Select(l => l.Name).ToList(), report.Layers.Select(l => l.Layer).ToList(), "graph order");
        foreach (var l in report.Layers) Assert.IsTrue(double.IsFinite(l.SqnrDb), $"{name}: layer {l.Index} '{l.Layer}' SQNR {l.SqnrDb}");
        Assert.IsTrue(double.IsFinite(report.OutputSqnrDb) && report.OutputSqnrDb > 10, $"{name}: output SQNR {report.OutputSqnrDb}");
        if (method == CalibrationMethod.MinMax)
            Assert.AreEqual(15, report.Top1Agreements, "min/max int8 picks the float class on every image");
        else if (report.Top1Agreements < 15)
            Console.WriteLine($"NOTE: {name} int8 disagrees with float on {15 - report.Top1Agreements} of 15 images");

        // the table of the methods analysed so far (all three once the last row has run)
        string[] done;
        lock (Reports) done = Methods.Values.Select(o => o.ToString()).Where(Reports.ContainsKey).ToArray();
        Console.WriteLine();
        Console.WriteLine(Table(done, Analyses(done)));
    }

    [TestMethod]
    public void BiasCorrection_DoesNotLowerTheOutputSqnr()
    {
        var reports = Analyses(Methods[CalibrationMethod.MinMax].ToString(), BiasCorrected);
        Console.WriteLine(Table(new[] { "MinMax", BiasCorrected }, reports));
        Console.WriteLine(reports[1].Describe());
        Assert.AreEqual(15, reports[1].Top1Agreements, "bias-corrected int8 picks the float class on every image");
        Assert.IsTrue(reports[1].OutputSqnrDb >= reports[0].OutputSqnrDb - 0.5,
            $"bias correction lowers the output SQNR from {reports[0].OutputSqnrDb:F2} to {reports[1].OutputSqnrDb:F2} dB");
        var plain = Models["MinMax"]; var corrected = Models[BiasCorrected];
        int changed = _graph.Layers.Count(l => plain.Layers[l] is QuantizedConv a && !a.Bias.SequenceEqual(((QuantizedConv)corrected.Layers[l]).Bias));
        Console.WriteLine($"bias changed in {changed} of {_graph.Layers.Count(l => l is Conv2D or FullyConnected)} Conv2D/FullyConnected layers");
        Assert.IsTrue(changed > 0);
    }
}
