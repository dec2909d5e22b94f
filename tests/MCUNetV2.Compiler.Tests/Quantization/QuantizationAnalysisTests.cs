using System.Text.Json;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The per-layer error analysis on a hand-made int8 model whose errors are known, the int8 executor's observer, bias
/// correction against a brute-force computation, and the analysis of mnist-8 with each calibration method.
/// </summary>
[TestClass]
public sealed class QuantizationAnalysisTests
{
    private static string MnistModel => Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx");

    /// <summary>
    /// y = x through a 2x2 identity fully connected layer, input scale 0.1, output scale 0.5 (both zero point 0): the
    /// int8 output is x rounded to a multiple of 0.5 (via the input rounded to a multiple of 0.1).
    /// </summary>
    private static QuantizedModel IdentityModel()
    {
        var x = new Tensor("x", new TensorShape(1, 1, 2));
        var y = new Tensor("y", new TensorShape(1, 1, 2));
        var fc = new FullyConnected("identity", x, y, new[] { 1f, 0f, 0f, 1f }, new[] { 0f, 0f });
        var g = new ModelGraph(new[] { x }, y, new Layer[] { fc }, new[] { "x" }, "y");
        var requant = FixedPointMultiplier.FromReal(0.1 * (1 / 127.0) / 0.5);
        var q = new QuantizedConv(fc, new sbyte[] { 127, 0, 0, 127 }, new[] { 0, 0 }, new[] { requant, requant }, 0, 0, -128, 127, new[] { 1 / 127.0, 1 / 127.0 });
        return new QuantizedModel(g, new Dictionary<Tensor, QuantParams> { [x] = new(0.1, 0), [y] = new(0.5, 0) }, new Dictionary<Layer, QuantizedLayer> { [fc] = q });
    }

    [TestMethod]
    public void Sqnr_OfAHandMadeModel_IsTheDefinition()
    {
        var model = IdentityModel();
        // x -> int8 input -> int8 output -> dequantized:
        //   (1.0, 0.3)  -> (10, 3) -> (2, 1) -> (1.0, 0.5)
        //   (0.2, 0)    -> (2, 0)  -> (0, 0) -> (0, 0)
        //   (0.3, 0.35) -> (3, 3)  -> (1, 1) -> (0.5, 0.5)   float argmax 1, int8 argmax 0 (first of equals)
        var samples = new[] { new[] { 1f, 0.3f }, new[] { 0.2f, 0f }, new[] { 0.3f, 0.35f } };
        var dequantized = new[] { new[] { 1.0, 0.5 }, new[] { 0.0, 0.0 }, new[] { 0.5, 0.5 } };
        double signal = 0, noise = 0;
        for (int s = 0; s < 3; s++)
            for (int i = 0; i < 2; i++) { signal += (double)samples[s][i] * samples[s][i]; noise += Math.Pow(samples[s][i] - dequantized[s][i], 2); }
        double expected = 10 * Math.Log10(signal / noise);

        var report = QuantizationAnalysis.Analyze(model, samples);
        Console.WriteLine(report.Describe());
        Assert.AreEqual(3, report.Samples);
        Assert.AreEqual(1, report.Layers.Count);
        var layer = report.Layers[0];
        Assert.AreEqual(("identity", "FullyConnected", "y", 0), (layer.Layer, layer.Op, layer.Tensor, layer.Index));
        Assert.AreEqual(expected, layer.SqnrDb, 1e-9);
        Assert.AreEqual(9.741, expected, 0.001, "by hand: 10 log10(1.3425 / 0.1425)");
        Assert.AreEqual(expected, report.OutputSqnrDb, 1e-9, "the only layer is the output");
        Assert.AreEqual(0.5 - 0.3f, layer.MaxAbsError, 1e-7);
        Assert.AreEqual(0, layer.ClippedPercent, "the int8 range [-64, 63.5] holds everything");
        Assert.AreEqual(2, report.Top1Agreements);
        Assert.AreEqual(2.0 / 3, report.Top1Agreement, 1e-12);
        Assert.AreEqual(layer, report.Worst.Single());

        // no error at all: +infinity
        var exact = QuantizationAnalysis.Analyze(model, new[] { new[] { 1f, 0.5f }, new[] { -2f, 0f } });
        Assert.AreEqual(double.PositiveInfinity, exact.OutputSqnrDb);
        Assert.AreEqual(2, exact.Top1Agreements);
        Assert.AreEqual(double.PositiveInfinity, QuantizationAnalysis.SqnrDb(0, 0));
        Assert.AreEqual(20, QuantizationAnalysis.SqnrDb(100, 1), 1e-12);
        StringAssert.Contains(exact.Describe(), "+inf");

        // a float value outside the output's int8 range [-64, 63.5] counts as clipped
        var clipped = QuantizationAnalysis.Analyze(model, new[] { new[] { 100f, 1f } });
        Assert.AreEqual(50, clipped.Layers[0].ClippedPercent);
    }

    [TestMethod]
    public void Report_IsPlainJson()
    {
        var model = IdentityModel();
        var report = QuantizationAnalysis.Analyze(model, new[] { new[] { 1f, 0.5f } });
        var json = JsonSerializer.Serialize(report);
        Console.WriteLine(json);
        StringAssert.Contains(json, "\"SqnrDb\":\"Infinity\"");
        var back = JsonSerializer.Deserialize<QuantizationReport>(json)!;
        Assert.AreEqual(report.Samples, back.Samples);
        Assert.AreEqual(report.OutputSqnrDb, back.OutputSqnrDb);
        Assert.AreEqual(report.Layers[0], back.Layers[0]);
    }

    [TestMethod]
    public void Int8Executor_Observer_SeesEveryTensor_AndChangesNothing()
    {
        var g = OnnxImporter.Load(MnistModel);
        var inputs = Enumerable.Range(0, 3).Select(i => MnistTests.DataSet(i).Input).ToList();
        var int8 = Quantizer.Quantize(g, CalibrationRanges.Observe(g, inputs));
        var q = int8.QuantizeInput(inputs[1]);
        var seen = new List<(Tensor T, sbyte[] V)>();
        var output = Int8Executor.Run(int8, new[] { q }, (t, v) => seen.Add((t, (sbyte[])v.Clone())));
        CollectionAssert.AreEqual(Int8Executor.Run(int8, q), output);
        CollectionAssert.AreEqual(g.Tensors.ToList(), seen.Select(s => s.T).ToList(), "the input, then every layer output in graph order");
        CollectionAssert.AreEqual(output, seen[^1].V);

        var plan = PatchPlanner.Build(g, 2, 2, 3);
        var patched = new List<(Tensor T, sbyte[] V)>();
        CollectionAssert.AreEqual(output, Int8Executor.Run(int8, plan, new[] { q }, (t, v) => patched.Add((t, v))));
        CollectionAssert.AreEqual(new[] { g.Input }.Concat(g.Layers.Skip(2).Select(l => l.Output)).ToList(), patched.Select(s => s.T).ToList(),
            "a patch-based plan shows the input, the split tensor and the layers after it");
        foreach (var (t, v) in patched) CollectionAssert.AreEqual(seen.Single(s => s.T == t).V, v, t.Name);
    }

    [TestMethod]
    public void BiasCorrection_ShiftsTheBiasByTheExpectedWeightError()
    {
        // a 3x3 convolution with zero padding 1 and stride 2 on a 5x5 input whose every position holds the same
        // values: E[x] per channel is then that value, and the expected output of every position is known exactly
        var r = new Random(9);
        int cin = 3, cout = 4;
        var x = new Tensor("x", new TensorShape(5, 5, cin));
        var y = new Tensor("y", new TensorShape(3, 3, cout));
        var window = new Window(3, 3, 2, 2, 1, 1, new Padding(1, 1, 1, 1));
        var weights = Enumerable.Range(0, cout * 9 * cin).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var bias = Enumerable.Range(0, cout).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var conv = new Conv2D("conv", x, y, window, 1, weights, bias, ActivationRange.None);
        var g = new ModelGraph(new[] { x }, y, new Layer[] { conv }, new[] { "x" }, "y");
        var pixel = new[] { 0.8f, -0.3f, 1.7f };
        var samples = new[] { Enumerable.Range(0, 25).SelectMany(_ => pixel).ToArray(), Enumerable.Range(0, 25).SelectMany(_ => pixel.Select(v => v * 0.5f)).ToArray() };
        var ranges = CalibrationRanges.Observe(g, samples);
        var plain = (QuantizedConv)Quantizer.Quantize(g, ranges).Layers[conv];
        var corrected = Quantizer.Quantize(g, ranges, new QuantizerOptions { BiasCorrection = true });
        var qc = (QuantizedConv)corrected.Layers[conv];
        CollectionAssert.AreEqual(plain.Weights, qc.Weights, "only the bias changes");
        double inScale = corrected.Activations[x].Scale;
        for (int o = 0; o < cout; o++)
        {
            // brute force: the mean over output positions of sum over taps inside the input of (W - Wq) * E[x]
            double shift = 0;
            for (int oy = 0; oy < 3; oy++)
                for (int ox = 0; ox < 3; ox++)
                    for (int ky = 0; ky < 3; ky++)
                        for (int kx = 0; kx < 3; kx++)
                        {
                            int iy = oy * 2 - 1 + ky, ix = ox * 2 - 1 + kx;
                            if (iy < 0 || iy >= 5 || ix < 0 || ix >= 5) continue;
                            for (int c = 0; c < cin; c++)
                            {
                                int k = ((o * 3 + ky) * 3 + kx) * cin + c;
                                shift += (weights[k] - qc.Weights[k] * qc.WeightScales[o]) * pixel[c] * 0.75; // mean of x and x/2
                            }
                        }
            shift /= 9;
            double accScale = inScale * qc.WeightScales[o];
            Assert.AreEqual((int)Math.Round((bias[o] + shift) / accScale, MidpointRounding.AwayFromZero), qc.Bias[o], $"channel {o}");
            Assert.AreEqual((int)Math.Round(bias[o] / accScale, MidpointRounding.AwayFromZero), plain.Bias[o], $"channel {o} without correction");
        }
        Assert.IsTrue(Enumerable.Range(0, cout).Any(o => qc.Bias[o] != plain.Bias[o]), "the correction is visible in int32");
    }

    [TestMethod]
    public void BiasCorrection_OfAFullyConnectedLayer_UsesTheMeanOfEachFeature()
    {
        // a 2x2x3 map flattened into a fully connected layer: every weight sees its own feature
        var r = new Random(10);
        var x = new Tensor("x", new TensorShape(2, 2, 3));
        var y = new Tensor("y", new TensorShape(1, 1, 5));
        var weights = Enumerable.Range(0, 5 * 12).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var bias = Enumerable.Range(0, 5).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var fc = new FullyConnected("fc", x, y, weights, bias);
        var g = new ModelGraph(new[] { x }, y, new Layer[] { fc }, new[] { "x" }, "y");
        var samples = Enumerable.Range(0, 7).Select(_ => Enumerable.Range(0, 12).Select(i => (float)(i * 0.3 - 1 + r.NextDouble())).ToArray()).ToList();
        var ranges = CalibrationRanges.Observe(g, samples);
        var model = Quantizer.Quantize(g, ranges, new QuantizerOptions { BiasCorrection = true });
        var q = (QuantizedConv)model.Layers[fc];
        for (int o = 0; o < 5; o++)
        {
            double shift = 0;
            for (int i = 0; i < 12; i++) shift += (weights[o * 12 + i] - q.Weights[o * 12 + i] * q.WeightScales[o]) * samples.Average(s => (double)s[i]);
            double accScale = model.Activations[x].Scale * q.WeightScales[o];
            Assert.AreEqual((int)Math.Round((bias[o] + shift) / accScale, MidpointRounding.AwayFromZero), q.Bias[o], $"output {o}");
        }
    }

    [TestMethod]
    public void Mnist_EachMethod_Analysis()
    {
        var g = OnnxImporter.Load(MnistModel);
        var sets = Enumerable.Range(0, 3).Select(MnistTests.DataSet).ToList();
        var inputs = sets.Select(s => s.Input).ToList();
        var observed = CalibrationRanges.Observe(g, inputs, new CalibrationOptions(CalibrationMethod.Mse));
        var options = new[] { CalibrationOptions.MinMax, new CalibrationOptions(CalibrationMethod.Percentile), new CalibrationOptions(CalibrationMethod.Mse) };
        var models = options.Select(o => Quantizer.Quantize(g, observed.WithOptions(o)))
            .Append(Quantizer.Quantize(g, observed.WithOptions(CalibrationOptions.MinMax), new QuantizerOptions { BiasCorrection = true })).ToList();
        var reports = QuantizationAnalysis.Analyze(models, inputs);
        var names = options.Select(o => o.ToString()).Append("MinMax + bias correction").ToList();
        Console.WriteLine(QuantizationVwwTests.Table(names, reports));
        for (int m = 0; m < reports.Count; m++)
        {
            Assert.AreEqual(g.Layers.Count, reports[m].Layers.Count);
            foreach (var l in reports[m].Layers) Assert.IsTrue(double.IsFinite(l.SqnrDb) && l.SqnrDb > 0, $"{names[m]} {l.Layer}: {l.SqnrDb}");
            Console.WriteLine($"{names[m]}: {reports[m].Describe(3)}");
        }
        Assert.AreEqual(3, reports[0].Top1Agreements, "min/max int8 agrees with float on the three data sets");
        // the int8 model's class on each data set against the model zoo's expected output
        for (int m = 0; m < models.Count; m++)
            Console.WriteLine($"{names[m]}: int8 classes " + string.Join(", ", sets.Select(s => $"{TestData.ArgMax(Int8Executor.Run(models[m], models[m].QuantizeInput(s.Input)))} (expected {TestData.ArgMax(s.Output)})")));
    }
}
