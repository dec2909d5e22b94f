using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Quantization;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>The task run directly against a fake build engine.</summary>
[TestClass]
public sealed class CompileTinyModelTests
{
    /// <summary>A project file whose 4th line is <paramref name="itemXml"/>, and the task with the matching item.</summary>
    private static TaskSetup NewTask(string itemXml, params (string Name, string Value)[] metadata) =>
        TaskSetup.Create("task", Repo.VwwModel, "vww.onnx", new[] { "<None Include=\"vww.onnx\" PatchGrid=\"nothing to do with it\" />", itemXml }, metadata);

    private static ITaskItem[] TwoImages() => TaskSetup.TwoImages().Select(f => (ITaskItem)new TaskItem(f)).ToArray();

    [TestMethod]
    public void BadPatchGrid_GivesMCU4001_AtTheAttribute()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" PatchGrid=\"2by2\" />", ("PatchGrid", "2by2"));

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single();
        Assert.AreEqual(ErrorCodes.BadMetadata, error.Code, s.Engine.Transcript());
        Assert.AreEqual(s.Project, error.File);
        Assert.AreEqual(4, error.LineNumber);
        Assert.AreEqual(35, error.ColumnNumber); // the PatchGrid attribute
        StringAssert.Contains(error.Message, "'2by2'");
        StringAssert.Contains(error.Message, "RxC");
    }

    [TestMethod]
    public void MetadataAsChildElement_IsLocated()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\"><ChannelOrder>YUV</ChannelOrder></TinyModel>", ("ChannelOrder", "YUV"));

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single();
        Assert.AreEqual(ErrorCodes.BadMetadata, error.Code);
        Assert.AreEqual(4, error.LineNumber);
        Assert.AreEqual(36, error.ColumnNumber); // <ChannelOrder>
    }

    [TestMethod]
    public void WrongNumberOfMeans_GivesMCU4001()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" Mean=\"1;2\" />", ("Mean", "1;2"));
        Assert.IsFalse(s.Task.Execute());
        Assert.AreEqual(ErrorCodes.BadMetadata, s.Engine.Errors.Single().Code);
        StringAssert.Contains(s.Engine.Errors[0].Message, "one per channel (3)");
    }

    [TestMethod]
    public void InvalidExplicitPrefix_GivesMCU4001()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" Prefix=\"my-model\" />", ("Prefix", "my-model"));
        Assert.IsFalse(s.Task.Execute());
        Assert.AreEqual(ErrorCodes.BadMetadata, s.Engine.Errors.Single().Code);
        StringAssert.Contains(s.Engine.Errors[0].Message, "C identifier");
    }

    [TestMethod]
    public void BracesInValues_AreNotFormatStrings()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" PatchGrid=\"{0}x{1}\" />", ("PatchGrid", "{0}x{1}"));
        Assert.IsFalse(s.Task.Execute());
        StringAssert.Contains(s.Engine.Errors.Single().Message, "'{0}x{1}'");
    }

    [TestMethod]
    public void CalibrationGlobMatchingNothing_GivesMCU2001()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" Calibration=\"nothing/**/*.png\" />", ("Calibration", "nothing/**/*.png"));
        Assert.IsFalse(s.Task.Execute());
        var error = s.Engine.Errors.Single();
        Assert.AreEqual(ErrorCodes.CalibrationMissing, error.Code);
        Assert.AreEqual(4, error.LineNumber);
        StringAssert.Contains(error.Message, "nothing/**/*.png");
    }

    [TestMethod]
    public void Metadata_BecomesOptions()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" />",
            ("PatchGrid", "2x3"), ("ChannelOrder", "BGR"), ("Mean", "1;2;3"), ("Scale", "0.5"),
            ("Verify", "false"), ("VerifyImages", "7"), ("Prefix", ""),
            ("ResizeMode", "CenterCrop"), ("Interpolation", "Nearest"), ("InputLayout", "NHWC"), ("CalibrationLimit", "500"),
            ("CalibrationMethod", "Percentile"), ("CalibrationPercentile", "99.9"), ("BiasCorrection", "true"), ("MinLayerSqnr", "12.5"),
            ("DequantizeOutput", "yes"), ("PointwiseWeights", "INT16"));
        s.Task.CalibrationFiles = TwoImages();
        s.Task.ToolchainDirectory = "/opt/arm";
        s.Task.CpuFlags = "-mcpu=cortex-m4";

        var options = s.Task.ReadOptions();

        Assert.IsNotNull(options, s.Engine.Transcript());
        Assert.AreEqual(Path.Combine(s.Dir, "vww.onnx"), options.ModelPath);
        Assert.AreEqual("vww", options.Prefix);
        Assert.AreEqual(Path.Combine(s.Dir, "out"), options.OutputDirectory);
        Assert.AreEqual(Path.Combine(s.Dir, "out", "vww"), CompileTinyModel.ModelDirectory(options));
        Assert.AreEqual((2, 3), (options.PatchRows, options.PatchCols));
        Assert.AreEqual(ChannelOrder.Bgr, options.Preprocessing.Channels);
        CollectionAssert.AreEqual(new[] { 1f, 2f, 3f }, options.Preprocessing.Mean);
        CollectionAssert.AreEqual(new[] { 0.5f }, options.Preprocessing.Scale);
        Assert.AreEqual(ResizeMode.CenterCrop, options.Preprocessing.Resize);
        Assert.AreEqual(Interpolation.Nearest, options.Preprocessing.Interpolation);
        Assert.AreEqual(InputLayout.Nhwc, options.InputLayout);
        Assert.AreEqual(500, options.CalibrationLimit);
        Assert.AreEqual(new CalibrationOptions(CalibrationMethod.Percentile, 99.9), options.Calibration);
        Assert.IsTrue(options.BiasCorrection);
        Assert.AreEqual(12.5, options.MinLayerSqnrDb);
        Assert.IsTrue(options.DequantizeOutput);
        Assert.IsTrue(options.WidePointwiseWeights);
        Assert.IsFalse(options.Verify);
        Assert.AreEqual(7, options.VerifyImages);
        Assert.AreEqual(2, options.CalibrationFiles.Count);
        Assert.IsTrue(options.CalibrationFiles.All(Path.IsPathRooted));
        Assert.AreEqual("/opt/arm", options.Toolchain.ToolchainDirectory);
        Assert.AreEqual("-mcpu=cortex-m4", options.Toolchain.CpuFlags);
        // Unset task parameters fall back to the core's defaults.
        var defaults = new ToolchainOptions();
        Assert.AreEqual(defaults.ToolPrefix, options.Toolchain.ToolPrefix);
        Assert.AreEqual(defaults.OptimizationFlags, options.Toolchain.OptimizationFlags);
        Assert.AreEqual(defaults.QemuPath, options.Toolchain.QemuPath);
    }

    [TestMethod]
    public void EmptyMetadata_GivesTheDocumentedDefaults()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" />");
        var options = s.Task.ReadOptions();
        Assert.IsNotNull(options, s.Engine.Transcript());
        Assert.AreEqual((1, 1), (options.PatchRows, options.PatchCols));
        Assert.AreEqual(ChannelOrder.Rgb, options.Preprocessing.Channels);
        CollectionAssert.AreEqual(new[] { 127.5f }, options.Preprocessing.Mean);
        Assert.AreEqual(1f / 127.5f, options.Preprocessing.Scale.Single(), 1e-9f);
        Assert.IsTrue(options.Verify);
        Assert.AreEqual(4, options.VerifyImages);
        Assert.AreEqual(0, options.CalibrationFiles.Count);
        Assert.IsNull(options.CalibrationLimit);
        Assert.AreEqual(InputLayout.Nchw, options.InputLayout);
        Assert.AreEqual(ResizeMode.Stretch, options.Preprocessing.Resize);
        Assert.AreEqual(Interpolation.Bilinear, options.Preprocessing.Interpolation);
        Assert.AreEqual(CalibrationOptions.MinMax, options.Calibration);
        Assert.IsFalse(options.BiasCorrection);
        Assert.IsNull(options.MinLayerSqnrDb, "empty MinLayerSqnr = no check (the props give 10)");
        Assert.IsFalse(options.DequantizeOutput);
        Assert.IsFalse(options.WidePointwiseWeights, "int8 weights unless PointwiseWeights says int16");
    }

    [TestMethod]
    [DataRow("auto", "30%", "13", true, 0.3)]
    [DataRow("AUTO", "0.15", "", true, 0.15)]
    [DataRow("2x2", "", "LAYER_32", false, 0.3)]
    public void PatchSearchMetadata_BecomesOptions(string grid, string overhead, string split, bool auto, double expectedOverhead)
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" />", ("PatchGrid", grid), ("MaxMacOverhead", overhead), ("PatchSplit", split), ("StreamInput", auto ? "true" : ""));
        s.Task.CalibrationFiles = TwoImages();

        var options = s.Task.ReadOptions();

        Assert.IsNotNull(options, s.Engine.Transcript());
        Assert.AreEqual(auto, options.AutoPatchGrid);
        Assert.AreEqual(expectedOverhead, options.MaxMacOverhead, 1e-12);
        Assert.AreEqual(split.Length == 0 ? null : split, options.PatchSplit);
        Assert.AreEqual(auto, options.StreamInput);
    }

    [TestMethod]
    [DataRow("ResizeMode", "Fill", 35)]
    [DataRow("MaxMacOverhead", "lots", 35)]
    [DataRow("PatchGrid", "automatic", 35)]
    [DataRow("StreamInput", "sometimes", 35)]
    [DataRow("Interpolation", "Bicubic", 35)]
    [DataRow("InputLayout", "CHW", 35)]
    [DataRow("CalibrationLimit", "0", 35)]
    [DataRow("CalibrationMethod", "KL", 35)]
    [DataRow("CalibrationPercentile", "50", 35)]
    [DataRow("BiasCorrection", "maybe", 35)]
    [DataRow("MinLayerSqnr", "high", 35)]
    [DataRow("DequantizeOutput", "float", 35)]
    [DataRow("PointwiseWeights", "int4", 35)]
    public void BadCalibrationMetadata_GivesMCU4001_AtTheAttribute(string name, string value, int column)
    {
        var s = NewTask($"<TinyModel Include=\"vww.onnx\" {name}=\"{value}\" />", (name, value));

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single();
        Assert.AreEqual(ErrorCodes.BadMetadata, error.Code, s.Engine.Transcript());
        Assert.AreEqual(4, error.LineNumber);
        Assert.AreEqual(column, error.ColumnNumber);
        StringAssert.Contains(error.Message, $"{name} '{value}'");
    }

    /// <summary>The task with an IDX calibration file of the committed MNIST digits, for the mnist-8 model: it builds.</summary>
    [TestMethod]
    public void IdxCalibration_BuildsMnist8()
    {
        const string itemXml = "<TinyModel Include=\"mnist.onnx\" Calibration=\"digits/*.gz\" CalibrationLimit=\"100\" ChannelOrder=\"Gray\" Mean=\"0\" Scale=\"1\" Verify=\"false\" />";
        var s = TaskSetup.Create("idx-task", Repo.Mnist8Model, "mnist.onnx", new[] { itemXml },
            new[] { ("Calibration", "digits/*.gz"), ("CalibrationLimit", "100"), ("ChannelOrder", "Gray"), ("Mean", "0"), ("Scale", "1"), ("Verify", "false") },
            new[] { Repo.MnistDigits });
        var (task, engine, dir) = (s.Task, s.Engine, s.Dir);

        Assert.IsTrue(task.Execute(), engine.Transcript());

        Assert.IsTrue(File.Exists(Path.Combine(dir, "out", "mnist", "libmnist.a")), engine.Transcript());
        StringAssert.Contains(engine.Transcript(), "calibration data: 100 sample(s) from 1 of 1 file(s) (CalibrationLimit 100)");
    }

    /// <summary>
    /// Whatever the core does with this input (today it is a stub that throws; later it compiles or fails on the
    /// missing toolchain prefix), the log never carries a stack trace in an error and every error has an MCU code.
    /// </summary>
    [TestMethod]
    public void CoreFailures_AreCodedErrorsWithoutStackTraces()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" Verify=\"false\" />", ("Verify", "false"));
        s.Task.CalibrationFiles = TwoImages();
        s.Task.ToolPrefix = "no-such-toolchain-" + Guid.NewGuid().ToString("N") + "-";

        bool ok = s.Task.Execute();

        Assert.IsFalse(ok, s.Engine.Transcript());
        Assert.IsTrue(s.Engine.Errors.Count > 0);
        foreach (var error in s.Engine.Errors)
        {
            Assert.IsTrue(Regex.IsMatch(error.Code ?? "", @"^MCU\d{4}$"), s.Engine.Transcript());
            Assert.IsFalse(Regex.IsMatch(error.Message ?? "", @"^\s+at \S+\(", RegexOptions.Multiline), s.Engine.Transcript());
            Assert.IsFalse(string.IsNullOrEmpty(error.File), s.Engine.Transcript());
        }
        if (s.Engine.Errors.Any(e => e.Code == ErrorCodes.InternalError))
        {
            // The stack trace is there for whoever asks for a detailed log, and only there.
            Assert.IsTrue(s.Engine.Messages.Any(m => m.Importance == MessageImportance.Low && (m.Message ?? "").Contains("   at ")),
                s.Engine.Transcript());
        }
        Assert.IsFalse(File.Exists(Path.Combine(s.Dir, "out", "vww", "libvww.a")));
    }

    [TestMethod]
    public void FailedBuild_RemovesAStaleLibrary()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" Verify=\"false\" />", ("Verify", "false"));
        s.Task.CalibrationFiles = TwoImages();
        s.Task.ToolPrefix = "no-such-toolchain-" + Guid.NewGuid().ToString("N") + "-";
        var stale = Path.Combine(s.Dir, "out", "vww", "libvww.a");
        Directory.CreateDirectory(Path.GetDirectoryName(stale)!);
        File.WriteAllText(stale, "old");

        Assert.IsFalse(s.Task.Execute());

        Assert.IsFalse(File.Exists(stale), s.Engine.Transcript());
    }

    /// <summary>
    /// VWW calibrated on all 15 test images: memory.json gets the quantization section (output SQNR over 20 dB, every
    /// layer), the HTML report is written beside it and handed back, the log has the quantization line, and a
    /// MinLayerSqnr of 100 dB gives one MCU2005 warning per layer (at the model, naming the layer and the remedies).
    /// </summary>
    [TestMethod]
    public void QuantizationReport_InJsonAndHtml_AndMinLayerSqnrWarns()
    {
        var images = Directory.GetFiles(Path.GetDirectoryName(Repo.PersonImages)!, "*.*", SearchOption.AllDirectories);
        var s = TaskSetup.Create("quant-report", Repo.VwwModel, "vww.onnx",
            new[] { "<TinyModel Include=\"vww.onnx\" Verify=\"false\" MinLayerSqnr=\"100\" CalibrationMethod=\"mse\" />" },
            new[] { ("Verify", "false"), ("MinLayerSqnr", "100"), ("CalibrationMethod", "mse") }, images);

        Assert.IsTrue(s.Task.Execute(), s.Engine.Transcript());

        var json = System.Text.Json.JsonDocument.Parse(File.ReadAllText(s.Task.MemoryReport!.ItemSpec)).RootElement;
        var q = json.GetProperty("quantization");
        Assert.IsTrue(q.GetProperty("analyzed").GetBoolean());
        Assert.AreEqual("Mse", q.GetProperty("method").GetString());
        Assert.IsFalse(q.GetProperty("biasCorrection").GetBoolean());
        Assert.AreEqual(images.Length, q.GetProperty("samples").GetInt32());
        double output = q.GetProperty("outputSqnrDb").GetDouble();
        Console.WriteLine($"VWW, MSE, {images.Length} images: output SQNR {output:0.00} dB, top-1 {q.GetProperty("top1Agreements").GetInt32()}/{images.Length}");
        Assert.IsTrue(output > 20, $"output SQNR {output} dB");
        var layers = q.GetProperty("layers").EnumerateArray().ToList();
        Assert.AreEqual(json.GetProperty("layers").GetArrayLength(), layers.Count);
        foreach (var name in new[] { "name", "op", "tensor", "sqnrDb", "maxAbsError", "clippedPercent" })
            Assert.IsTrue(layers[0].TryGetProperty(name, out _), name);

        var html = s.Task.HtmlReport!.ItemSpec;
        Assert.AreEqual(Path.Combine(s.Out, "vww", "vww.memory.html"), html);
        var page = File.ReadAllText(html);
        StringAssert.Contains(page, "<svg");
        StringAssert.Contains(page, "class=\"worst\"");
        Assert.IsFalse(page.Contains("<script", StringComparison.OrdinalIgnoreCase), "no script");
        Assert.IsFalse(Regex.IsMatch(page, "(src|href)=\"(https?:)?//"), "standalone: nothing loaded from the network");

        Assert.IsTrue(s.Engine.Messages.Any(m => (m.Message ?? "").Contains("quantization          : Mse, output SQNR ")), s.Engine.Transcript());
        var warnings = s.Engine.Warnings.Where(w => w.Code == ErrorCodes.LowLayerSqnr).ToList();
        Assert.AreEqual(layers.Count(l => l.GetProperty("sqnrDb").ValueKind == System.Text.Json.JsonValueKind.Number), warnings.Count, s.Engine.Transcript());
        StringAssert.Contains(warnings[0].Message, "under MinLayerSqnr = 100 dB");
        StringAssert.Contains(warnings[0].Message, "CalibrationMethod=\"Percentile\"");
        StringAssert.Contains(warnings[0].Message, "BiasCorrection=\"true\"");
        StringAssert.EndsWith(warnings[0].File, "vww.onnx");
    }

    /// <summary>
    /// The default threshold (10 dB, from the props) stays quiet on VWW; the report says which method ran; with
    /// DequantizeOutput the library (float helpers included) links and verifies under QEMU.
    /// </summary>
    [TestMethod]
    public void DefaultMinLayerSqnr_DoesNotWarnOnVww_WithBiasCorrection_AndDequantizeOutput()
    {
        var s = NewTask("<TinyModel Include=\"vww.onnx\" />", ("MinLayerSqnr", "10"), ("BiasCorrection", "true"), ("DequantizeOutput", "true"), ("VerifyImages", "1"));
        s.Task.CalibrationFiles = TwoImages();
        s.Task.IntermediateDirectory = Path.Combine(s.Dir, "obj");

        Assert.IsTrue(s.Task.Execute(), s.Engine.Transcript());

        Assert.AreEqual(0, s.Engine.Warnings.Count, s.Engine.Transcript());
        var q = System.Text.Json.JsonDocument.Parse(File.ReadAllText(s.Task.MemoryReport!.ItemSpec)).RootElement.GetProperty("quantization");
        Assert.IsTrue(q.GetProperty("biasCorrection").GetBoolean());
        Assert.AreEqual(2, q.GetProperty("samples").GetInt32());
        StringAssert.Contains(File.ReadAllText(s.Task.Header!.ItemSpec), "int vww_invoke_float(const int8_t *input, float *output);");
        StringAssert.Contains(s.Engine.Transcript(), "byte-identical to the C# int8 reference");
    }
}
