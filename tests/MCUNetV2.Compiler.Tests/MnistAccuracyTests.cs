using System.Diagnostics;
using System.Text.Json;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Input;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// mnist-8 on the 10,000 committed MNIST digits (tests/data/mnist, IDX, gzip), read through the calibration loader:
/// float and int8 top-1, and the whole build (calibration on an IDX file, QEMU verification on 24 digits).
/// The figures are in docs/results.md ("mnist-8 on 10,000 digits").
/// </summary>
[TestClass]
public sealed class MnistAccuracyTests
{
    public static string MnistDir => Path.Combine(TestData.RepoRoot, "tests", "data", "mnist");
    public static string DigitsFile => Path.Combine(MnistDir, "digits-images-idx3-ubyte.gz");
    public static string LabelsFile => Path.Combine(MnistDir, "digits-labels-idx1-ubyte.gz");
    public static string Model => Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx");

    /// <summary>mnist-8 takes the raw pixels 0..255 of a gray digit: Mean 0, Scale 1.</summary>
    public static Preprocessing RawPixels { get; } = new() { Channels = ChannelOrder.Gray, Mean = new[] { 0f }, Scale = new[] { 1f } };

    /// <summary>The ONNX Runtime 1.31.1 float figure on these digits (the shared material's README): 9,933 of 10,000.</summary>
    private const int ReferenceFloatCorrect = 9933;

    /// <summary>Digits used for calibration (the first ones; the classes are interleaved, so every class is there 50 times).</summary>
    private const int CalibrationDigits = 500;

    [TestMethod]
    public void FloatAndInt8Top1_OnAll10000Digits_CalibratedOnTheFirst500()
    {
        var clock = Stopwatch.StartNew();
        var g = OnnxImporter.Load(Model);
        Assert.AreEqual("Input3", g.OnnxInputName);
        Assert.AreEqual(4, g.OnnxInputRanks[0]); // [1,1,28,28]
        Assert.AreEqual(new TensorShape(28, 28, 1), g.Input.Shape);

        var digits = CalibrationData.Load(new[] { DigitsFile }, RawPixels, g.Input.Shape);
        var labels = IdxLoader.Read(LabelsFile);
        Assert.AreEqual(10_000, digits.Count);
        CollectionAssert.AreEqual(new[] { 10_000 }, labels.Dims);
        Assert.AreEqual(0f, digits.Min(d => d.Min()));
        Assert.AreEqual(255f, digits.Max(d => d.Max()));
        var load = clock.Elapsed;

        var ranges = CalibrationRanges.Observe(g, digits.Take(CalibrationDigits));
        var int8 = Quantizer.Quantize(g, ranges);
        var calibrate = clock.Elapsed - load;

        var floatClass = new int[digits.Count];
        var int8Class = new int[digits.Count];
        Parallel.For(0, digits.Count, i =>
        {
            floatClass[i] = TestData.ArgMax(FloatExecutor.Run(g, digits[i]));
            int8Class[i] = TestData.ArgMax(Int8Executor.Run(int8, int8.QuantizeInput(digits[i])));
        });
        int floatCorrect = Enumerable.Range(0, digits.Count).Count(i => floatClass[i] == labels.Data[i]);
        int int8Correct = Enumerable.Range(0, digits.Count).Count(i => int8Class[i] == labels.Data[i]);
        int agree = Enumerable.Range(0, digits.Count).Count(i => floatClass[i] == int8Class[i]);
        int calibrationCorrect = Enumerable.Range(0, CalibrationDigits).Count(i => int8Class[i] == labels.Data[i]);
        int heldOutCorrect = int8Correct - calibrationCorrect;

        Console.WriteLine($"mnist-8 on {digits.Count:N0} digits: float top-1 {Percent(floatCorrect, digits.Count)} ({floatCorrect:N0}), " +
                          $"int8 top-1 {Percent(int8Correct, digits.Count)} ({int8Correct:N0}), int8 class = float class on {agree:N0}");
        Console.WriteLine($"int8 on the {CalibrationDigits} calibration digits {Percent(calibrationCorrect, CalibrationDigits)}, " +
                          $"on the other {digits.Count - CalibrationDigits:N0} {Percent(heldOutCorrect, digits.Count - CalibrationDigits)}");
        Console.WriteLine($"calibration: min/max over the first {CalibrationDigits} digits; input scale {int8.InputParams.Scale}, zero point {int8.InputParams.ZeroPoint}");
        Console.WriteLine($"time: load {load.TotalSeconds:0.0} s, calibrate {calibrate.TotalSeconds:0.0} s, run {(clock.Elapsed - load - calibrate).TotalSeconds:0.0} s");

        Assert.AreEqual(ReferenceFloatCorrect, floatCorrect, "float top-1 differs from ONNX Runtime's 9,933 / 10,000");
        Assert.IsTrue(Math.Abs(int8Correct - floatCorrect) <= 30,
            $"int8 top-1 {Percent(int8Correct, digits.Count)} is more than 0.3 points from float {Percent(floatCorrect, digits.Count)}");
    }

    private static string Percent(int correct, int total) => $"{100.0 * correct / total:0.00}%";

    /// <summary>
    /// The whole pipeline calibrated on the IDX file (CalibrationLimit 500): it builds, and its QEMU verification runs the
    /// Cortex-M7 library on the first 24 digits, byte-identical to the C# int8 reference.
    /// </summary>
    [TestMethod]
    public void Build_CalibratedOnTheIdxFile_VerifiesUnderQemuOn24Digits()
    {
        var work = Directory.CreateTempSubdirectory("mcunet-mnist-idx-").FullName;
        try
        {
            var options = new TinyModelOptions
            {
                ModelPath = Model,
                OutputDirectory = work,
                Prefix = "mnist",
                CalibrationFiles = new[] { DigitsFile },
                CalibrationLimit = CalibrationDigits,
                Preprocessing = RawPixels,
                Verify = true,
                VerifyImages = 24,
            };
            var sink = new RecordingSink();
            var result = TinyModelBuilder.Build(options, sink);
            Assert.IsTrue(result.Succeeded, string.Join("\n", sink.Diagnostics));
            Assert.IsTrue(File.Exists(result.LibraryPath));
            StringAssert.StartsWith(result.Memory!.Verification, "24 image(s) under QEMU Cortex-M7 byte-identical");
            using (var report = JsonDocument.Parse(File.ReadAllText(result.MemoryReportPath!)))
            {
                var verification = report.RootElement.GetProperty("verification");
                Assert.AreEqual(24, verification.GetProperty("images").GetInt32());
                Assert.IsTrue(verification.GetProperty("outputsIdentical").GetBoolean());
            }
            Assert.IsTrue(sink.Messages.Any(m => m.Contains("calibration data: 500 sample(s) from 1 of 1 file(s) (CalibrationLimit 500)")), string.Join("\n", sink.Messages));

            // the calibration samples are the first 500 digits, in file order
            var compiled = TinyModelBuilder.Compile(options, sink);
            Assert.AreEqual(CalibrationDigits, compiled.CalibrationSamples.Count);
            Assert.AreEqual("digits-images-idx3-ubyte.gz[0]", compiled.CalibrationSamples[0].Name);
            Assert.AreEqual("digits-images-idx3-ubyte.gz[499]", compiled.CalibrationSamples[^1].Name);
            var digits = CalibrationData.Load(new[] { DigitsFile }, RawPixels, compiled.Graph.Input.Shape, limit: CalibrationDigits);
            for (int i = 0; i < CalibrationDigits; i++)
                CollectionAssert.AreEqual(digits[i], compiled.CalibrationInputs[i]);
        }
        finally { Directory.Delete(work, true); }
    }
}
