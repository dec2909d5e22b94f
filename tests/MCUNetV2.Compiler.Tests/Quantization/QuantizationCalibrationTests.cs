using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// Calibration methods: the histogram search on synthetic data (percentiles of a Gaussian, MSE clipping of a long
/// tail, post-ReLU data), and the ranges each method gives on mnist-8 with its three data sets.
/// </summary>
[TestClass]
public sealed class QuantizationCalibrationTests
{
    private static readonly CalibrationOptions Percentile = new(CalibrationMethod.Percentile);
    private static readonly CalibrationOptions Mse = new(CalibrationMethod.Mse);

    private static float[] Gaussian(int n, int seed, double sigma = 1)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)(sigma * Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble()))).ToArray();
    }

    /// <summary>Mean squared error of actually quantizing and dequantizing the values with the range's parameters.</summary>
    private static double EmpiricalMse(float[] values, (double Min, double Max) range)
    {
        var p = QuantParams.FromRange(range.Min, range.Max);
        return values.Average(v => { double d = v - p.Dequantize(p.Quantize(v)); return d * d; });
    }

    [TestMethod]
    public void Percentile_OfAGaussian_IsItsQuantile()
    {
        var h = ValueHistogram.Of(Gaussian(200_000, 1));
        var (lo, hi) = h.PercentileRange(99.9);
        Assert.AreEqual(-3.090, lo, 0.06, "0.1 % quantile of N(0, 1)");
        Assert.AreEqual(3.090, hi, 0.06, "99.9 % quantile of N(0, 1)");
        var (lo99, hi99) = h.PercentileRange(99);
        Assert.AreEqual(-2.326, lo99, 0.03);
        Assert.AreEqual(2.326, hi99, 0.03);
        Assert.AreEqual((h.Min, h.Max), h.PercentileRange(100), "Percentile 100 is min/max");
    }

    [TestMethod]
    public void ExpectedSquaredError_OfTheHistogram_PredictsTheRealQuantizationError()
    {
        var values = Gaussian(100_000, 2, sigma: 1.5);
        var h = ValueHistogram.Of(values);
        foreach (var range in new[] { (h.Min, h.Max), (h.Min / 2, h.Max / 2), (h.Min / 5, h.Max / 3), (-1.0, 4.0) })
        {
            double predicted = h.ExpectedSquaredError(range.Item1, range.Item2), actual = EmpiricalMse(values, range);
            Console.WriteLine($"[{range.Item1:F3}, {range.Item2:F3}]: histogram {predicted:E4}, actual {actual:E4}");
            Assert.AreEqual(actual, predicted, 0.05 * actual, $"range [{range.Item1}, {range.Item2}]");
        }
    }

    [TestMethod]
    public void Mse_OnALongTail_ClipsAndQuantizesBetterThanMinMax()
    {
        // Student's t with 3 degrees of freedom: a power-law tail (100,000 values reach about +-40 for a unit bulk).
        // Squared error weighs the tail heavily, so the optimum clips moderately at 8 bits; Percentile 99.99 clips more
        // and is worse on this measure.
        var values = StudentT(100_000, 3, seed: 3);
        var h = ValueHistogram.Of(values);
        var minMax = (h.Min, h.Max);
        var mse = h.MseRange();
        var percentile = h.PercentileRange(99.99);
        double eMinMax = EmpiricalMse(values, minMax), eMse = EmpiricalMse(values, mse), ePercentile = EmpiricalMse(values, percentile);
        Console.WriteLine($"min/max [{h.Min:F2}, {h.Max:F2}] -> error {eMinMax:E3}; mse [{mse.Min:F2}, {mse.Max:F2}] -> {eMse:E3}; " +
                          $"percentile 99.99 [{percentile.Min:F2}, {percentile.Max:F2}] -> {ePercentile:E3}");
        Assert.IsTrue(mse.Min > h.Min && mse.Max < h.Max, "the tails are clipped on both sides");
        Assert.IsTrue(mse.Min < -5 && mse.Max > 5, "the bulk is kept");
        Assert.IsTrue(h.ExpectedSquaredError(mse.Min, mse.Max) < 0.9 * h.ExpectedSquaredError(h.Min, h.Max), "lower expected error on the histogram");
        Assert.IsTrue(eMse < 0.9 * eMinMax, "lower real quantization error");
        Assert.IsTrue(eMse < ePercentile, "MSE beats the fixed percentile on its own measure");
    }

    private static float[] StudentT(int n, int dof, int seed)
    {
        var r = new Random(seed);
        double Z() => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());
        return Enumerable.Range(0, n).Select(_ =>
        {
            double z = Z(), chi2 = 0;
            for (int i = 0; i < dof; i++) { double g = Z(); chi2 += g * g; }
            return (float)(z / Math.Sqrt(chi2 / dof));
        }).ToArray();
    }

    [TestMethod]
    public void Mse_FindsTheBestRangeOfAFineGrid()
    {
        // an asymmetric, skewed distribution: the optimum is not at equal fractions of min and max
        var r = new Random(5);
        var values = Enumerable.Range(0, 50_000).Select(_ => (float)(r.NextDouble() < 0.8 ? -Math.Log(1 - r.NextDouble()) : -0.3 * Math.Log(1 - r.NextDouble()) * -1)).ToArray();
        var h = ValueHistogram.Of(values, bins: 512);
        var (lo, hi) = h.MseRange();
        double found = h.ExpectedSquaredError(lo, hi), best = double.PositiveInfinity;
        for (int i = 1; i <= 100; i++)
            for (int j = 1; j <= 100; j++)
                best = Math.Min(best, h.ExpectedSquaredError(h.Min * i / 100, h.Max * j / 100));
        Console.WriteLine($"[{h.Min:F3}, {h.Max:F3}] -> search [{lo:F3}, {hi:F3}] error {found:E4}; best of a 100x100 grid {best:E4}");
        Assert.IsTrue(found <= best * 1.01, $"search {found} vs grid {best}");
    }

    [TestMethod]
    public void Mse_OfAPostReluTensor_KeepsMinimumZero()
    {
        // half exact zeros (ReLU), the rest a long-tailed positive distribution
        var r = new Random(6);
        var values = Enumerable.Range(0, 60_000).Select(i => i % 2 == 0 ? 0f : (float)(-Math.Log(1 - r.NextDouble()))).ToArray();
        var h = ValueHistogram.Of(values);
        Assert.AreEqual(0, h.Min);
        Assert.AreEqual(30_000, h.Zeros);
        foreach (var (lo, hi) in new[] { h.MseRange(), h.PercentileRange(99.9) })
        {
            Assert.AreEqual(0, lo, "the lower end stays 0");
            Assert.IsTrue(hi > 0 && hi < h.Max, $"the tail is clipped: {hi} of {h.Max}");
            Assert.AreEqual(-128, QuantParams.FromRange(lo, hi).ZeroPoint, "0 is the lowest int8 value");
        }
        Assert.IsTrue(EmpiricalMse(values, h.MseRange()) < EmpiricalMse(values, (h.Min, h.Max)));
    }

    [TestMethod]
    public void Options_AreChecked()
    {
        var g = OnnxImporter.Load(Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx"));
        var inputs = new[] { MnistTests.DataSet(0).Input };
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CalibrationRanges.Observe(g, inputs, new CalibrationOptions(CalibrationMethod.Percentile, 50)));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CalibrationRanges.Observe(g, inputs, new CalibrationOptions(CalibrationMethod.Percentile, 100.5)));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => CalibrationRanges.Observe(g, inputs, new CalibrationOptions(CalibrationMethod.Mse, Bins: 8)));
        var minMax = CalibrationRanges.Observe(g, inputs);
        Assert.ThrowsExactly<InvalidOperationException>(() => minMax.WithOptions(Mse), "no histograms in a min/max observation");
        Assert.ThrowsExactly<ArgumentException>(() => CalibrationRanges.Observe(g, new[] { new float[5] }, Mse), "wrong input size, as before");
    }

    [TestMethod]
    public void Mnist_EveryMethod_GivesRangesWithinMinMax()
    {
        var g = OnnxImporter.Load(Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx"));
        var inputs = Enumerable.Range(0, 3).Select(i => MnistTests.DataSet(i).Input).ToList();
        var legacy = CalibrationRanges.Observe(g, inputs);
        var observed = CalibrationRanges.Observe(g, inputs, Mse);
        Assert.AreEqual(3, observed.Samples);
        var methods = new[]
        {
            CalibrationRanges.Observe(g, inputs, CalibrationOptions.MinMax), observed.WithOptions(CalibrationOptions.MinMax),
            observed.WithOptions(Percentile), observed.WithOptions(Percentile with { Percentile = 99 }), observed, observed.WithOptions(Percentile with { Percentile = 100 }),
        };
        foreach (var t in g.Tensors)
        {
            var (min, max) = legacy[t];
            Assert.AreEqual((min, max), observed.Observed(t), "the first pass is the min/max calibration");
            foreach (var r in methods)
            {
                var (lo, hi) = r[t];
                Assert.IsTrue(min <= lo && lo <= hi && hi <= max, $"{r.Options} on '{t.Name}': [{lo}, {hi}] outside [{min}, {max}]");
                if (min >= 0) Assert.AreEqual(min, lo, $"{r.Options} on '{t.Name}': a non-negative tensor keeps its minimum");
            }
            Assert.AreEqual((min, max), methods[0][t], "MinMax option == the min/max overload");
            Assert.AreEqual((min, max), methods[1][t], "MinMax from the same observation");
            Assert.AreEqual((min, max), methods[^1][t], "Percentile 100 == MinMax");
            if (g.Inputs.Contains(t))
                foreach (var r in methods) Assert.AreEqual((min, max), r[t], "graph inputs keep min/max");
        }
        // the min/max model is unchanged by the new code paths
        var a = Quantizer.Quantize(g, legacy);
        var b = Quantizer.Quantize(g, observed.WithOptions(CalibrationOptions.MinMax));
        foreach (var t in g.Tensors) Assert.AreEqual(a.Activations[t], b.Activations[t]);
        foreach (var l in g.Layers.Where(l => a.Layers[l] is QuantizedConv))
            CollectionAssert.AreEqual(((QuantizedConv)a.Layers[l]).Bias, ((QuantizedConv)b.Layers[l]).Bias);
        // samples run in parallel, yet a second observation is identical to the bit
        var again = CalibrationRanges.Observe(g, inputs, Mse);
        foreach (var t in g.Tensors)
        {
            Assert.AreEqual(observed[t], again[t]);
            CollectionAssert.AreEqual(observed.ChannelMeans(t).ToArray(), again.ChannelMeans(t).ToArray());
        }
        // histograms exist only for the activations whose range the method chooses
        Assert.IsNull(observed.Histogram(g.Input), "graph input: no histogram, min/max");
        foreach (var t in Quantizer.TensorsNeedingCalibration(g).Except(g.Inputs))
            Assert.AreEqual(3L * t.Shape.Elements, observed.Histogram(t)!.Total, $"every value of '{t.Name}' is in its histogram");
    }

    [TestMethod]
    public void ChannelMeans_AreTheMeansOverPositionsAndSamples()
    {
        var g = OnnxImporter.Load(Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx"));
        var inputs = Enumerable.Range(0, 3).Select(i => MnistTests.DataSet(i).Input).ToList();
        var r = CalibrationRanges.Observe(g, inputs);
        var conv = g.Layers[0];
        var sums = new double[conv.Output.Shape.C];
        foreach (var x in inputs)
            FloatExecutor.Run(g, x, (t, v) =>
            {
                if (t != conv.Output) return;
                for (int i = 0; i < v.Length; i++) sums[i % sums.Length] += v[i];
            });
        int n = 3 * conv.Output.Shape.H * conv.Output.Shape.W;
        for (int c = 0; c < sums.Length; c++) Assert.AreEqual(sums[c] / n, r.ChannelMeans(conv.Output)[c], 1e-9 * (1 + Math.Abs(sums[c] / n)));
        Assert.AreEqual(inputs.Average(x => x.Average(v => (double)v)), r.ChannelMeans(g.Input)[0], 1e-9);

        // the fully connected layer's input (4x4x16 after the last pool): one mean per feature
        var fc = g.Layers.OfType<FullyConnected>().Single();
        var features = new double[fc.InFeatures];
        foreach (var x in inputs)
            FloatExecutor.Run(g, x, (t, v) => { if (t == fc.Inputs[0]) for (int i = 0; i < v.Length; i++) features[i] += v[i]; });
        var means = r.FeatureMeans(fc.Inputs[0])!;
        Assert.AreEqual(fc.InFeatures, means.Count);
        for (int i = 0; i < features.Length; i++) Assert.AreEqual(features[i] / 3, means[i], 1e-9 * (1 + Math.Abs(features[i])));
        Assert.IsNull(r.FeatureMeans(conv.Output), "only the inputs of fully connected layers");
    }

    [TestMethod]
    public void ModelGivenParameters_AreNotAffectedByTheMethod()
    {
        // x (4 features) -> fully connected -> y; the model gives y's parameters and the layer's weight scales
        var x = new Tensor("x", new TensorShape(1, 1, 4));
        var y = new Tensor("y", new TensorShape(1, 1, 3));
        var r = new Random(8);
        var fc = new FullyConnected("fc", x, y, Enumerable.Range(0, 12).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray(), new[] { 0.1f, -0.2f, 0.3f });
        var given = new ImportedQuantization();
        given.Activations[y] = (0.05, 3);
        given.WeightScales[fc] = new[] { 0.004, 0.004, 0.004 };
        var g = new ModelGraph(new[] { x }, y, new Layer[] { fc }, new[] { "x" }, "y") { Quantization = given };
        var samples = Enumerable.Range(0, 20).Select(_ => Enumerable.Range(0, 4).Select(_ => (float)(r.NextDouble() * 4 - 1)).ToArray()).ToList();

        foreach (var options in new[] { Percentile, Mse })
        {
            var ranges = CalibrationRanges.Observe(g, samples, options);
            var plain = Quantizer.Quantize(g, ranges);
            var corrected = Quantizer.Quantize(g, ranges, new QuantizerOptions { BiasCorrection = true });
            Assert.AreEqual(new QuantParams(0.05, 3), plain.Activations[y], "the model's parameters win");
            Assert.AreEqual(QuantParams.FromRange(ranges.Observed(x).Min, ranges.Observed(x).Max), plain.Activations[x], "the graph input keeps min/max");
            CollectionAssert.AreEqual(((QuantizedConv)plain.Layers[fc]).Bias, ((QuantizedConv)corrected.Layers[fc]).Bias, "no bias correction with model-given weight scales");
        }
    }
}
