using System.Text;
using MCUNetV2.Compiler.Diagnostics;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace MCUNetV2.Build.Tasks.Tests;

/// <summary>ExportQdq (the int8 model as QDQ ONNX beside the library) and the MaxSramBytes / MaxFlashBytes budgets.</summary>
[TestClass]
public sealed class ExportAndBudgetTests
{
    /// <summary>The task for the VWW model with two calibration images, without QEMU verification.</summary>
    private static TaskSetup NewTask(params (string Name, string Value)[] metadata) =>
        TaskSetup.Create("budget", Repo.VwwModel, "vww.onnx",
            new[] { $"<TinyModel Include=\"vww.onnx\" Verify=\"false\"{string.Join("", metadata.Select(m => $" {m.Name}=\"{m.Value}\""))} />" },
            new[] { ("Verify", "false") }.Concat(metadata), TaskSetup.TwoImages());

    /// <summary>No model folder and no staging folder: nothing a later build could take for a fresh output.</summary>
    private static void AssertNothingLeftBehind(TaskSetup s)
    {
        Assert.IsFalse(Directory.Exists(Path.Combine(s.Out, "vww")), s.Engine.Transcript());
        var leftovers = Directory.Exists(s.Out) ? Directory.GetFileSystemEntries(s.Out) : Array.Empty<string>();
        Assert.AreEqual(0, leftovers.Length, string.Join(", ", leftovers));
    }

    [TestMethod]
    public void ExportQdq_WritesTheQdqModelBesideTheLibrary_WithinBudgetsThatFit()
    {
        var s = NewTask(("ExportQdq", "true"), ("MaxSramBytes", "256KiB"), ("MaxFlashBytes", "1M"));

        Assert.IsTrue(s.Task.Execute(), s.Engine.Transcript());

        var qdq = Path.Combine(Path.Combine(s.Out, "vww"), "vww.qdq.onnx");
        Assert.IsTrue(File.Exists(qdq), s.Engine.Transcript());
        Assert.AreEqual(qdq, s.Task.QdqModel?.ItemSpec);
        Assert.AreEqual("vww", s.Task.QdqModel!.GetMetadata("Prefix"));
        Assert.AreEqual("QdqModel", s.Task.QdqModel.GetMetadata("Kind"));
        Assert.IsTrue(File.Exists(Path.Combine(Path.Combine(s.Out, "vww"), "libvww.a")));
        // an ONNX model written by us: the producer name is in the file, and it holds the int8 weights (~170 KB for VWW)
        var bytes = File.ReadAllBytes(qdq);
        Assert.IsTrue(bytes.Length > 150_000, $"{bytes.Length} bytes");
        StringAssert.Contains(Encoding.ASCII.GetString(bytes, 0, 64), "MCUNetV2.Build");
        Assert.AreEqual(0, s.Engine.Errors.Count, s.Engine.Transcript());
        Assert.AreEqual(1, Directory.GetDirectories(s.Out).Length, "only the model folder, no staging folder");
    }

    [TestMethod]
    public void WithoutExportQdq_ThereIsNoQdqModel()
    {
        var s = NewTask(("MaxSramBytes", "1000000"));
        var options = s.Task.ReadOptions();
        Assert.IsNotNull(options, s.Engine.Transcript());
        Assert.IsFalse(options.ExportQdq);
        Assert.AreEqual(1_000_000L, options.MaxSramBytes);
        Assert.IsNull(options.MaxFlashBytes);
    }

    [TestMethod]
    public void TooSmallSramBudget_IsMCU3003_AtTheModel_AndLeavesNoOutputFolder()
    {
        var s = NewTask(("MaxSramBytes", "64K"));

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single();
        Assert.AreEqual(ErrorCodes.SramBudgetExceeded, error.Code, s.Engine.Transcript());
        Console.WriteLine(error.Message);
        Assert.AreEqual(Path.Combine(s.Dir, "vww.onnx"), error.File);
        // the figures and what to do
        StringAssert.Contains(error.Message, "MaxSramBytes = 65,536 bytes");
        StringAssert.Contains(error.Message, "Per-layer peak");
        StringAssert.Contains(error.Message, "best patch-based peak");
        StringAssert.Contains(error.Message, "PatchGrid");
        StringAssert.Contains(error.Message, "input resolution");
        StringAssert.Contains(error.Message, "width multiplier");
        AssertNothingLeftBehind(s);
        Assert.IsFalse(Directory.Exists(Path.Combine(s.Dir, "obj", "vww", "src")), "checked before any C is generated");
    }

    [TestMethod]
    public void SramBudgetThatOnlyAPatchGridMeets_SaysWhichGrid()
    {
        // VWW needs ~240 KiB layer by layer and ~83 KiB with 2x2 patches
        var s = NewTask(("MaxSramBytes", "128K"));

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single();
        Assert.AreEqual(ErrorCodes.SramBudgetExceeded, error.Code, s.Engine.Transcript());
        Console.WriteLine(error.Message);
        StringAssert.Contains(error.Message, "set PatchGrid=\"2x2\"", "the coarsest grid that fits");
        AssertNothingLeftBehind(s);
    }

    [TestMethod]
    public void SramBudgetNoGridMeets_SaysToShrinkTheModel()
    {
        var s = NewTask(("MaxSramBytes", "16K"), ("PatchGrid", "2x2"));

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single(e => e.Code == ErrorCodes.SramBudgetExceeded);
        Console.WriteLine(error.Message);
        StringAssert.Contains(error.Message, "of SRAM (2x2 patches");
        StringAssert.Contains(error.Message, "PatchGrid=\"auto\"");
        StringAssert.Contains(error.Message, "smaller input resolution or a smaller width multiplier");
        AssertNothingLeftBehind(s);
    }

    [TestMethod]
    public void TooSmallFlashBudget_IsMCU5007_AndLeavesNoOutputFolder()
    {
        var s = NewTask(("MaxFlashBytes", "100KiB"), ("ExportQdq", "true"));

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single();
        Assert.AreEqual(ErrorCodes.FlashBudgetExceeded, error.Code, s.Engine.Transcript());
        Console.WriteLine(error.Message);
        Assert.AreEqual(Path.Combine(s.Dir, "vww.onnx"), error.File);
        StringAssert.Contains(error.Message, "MaxFlashBytes = 102,400 bytes");
        StringAssert.Contains(error.Message, "weights");
        StringAssert.Contains(error.Message, "code");
        AssertNothingLeftBehind(s);
        Assert.IsNull(s.Task.Library);
        Assert.IsNull(s.Task.QdqModel);
    }

    [TestMethod]
    public void BadBudget_IsMCU4001_AtTheAttribute()
    {
        var s = NewTask(("MaxFlashBytes", "lots"));

        Assert.IsFalse(s.Task.Execute());

        var error = s.Engine.Errors.Single();
        Assert.AreEqual(ErrorCodes.BadMetadata, error.Code);
        Assert.AreEqual(s.Project, error.File);
        Assert.AreEqual(3, error.LineNumber);
        StringAssert.Contains(error.Message, "MaxFlashBytes 'lots'");
    }

    [TestMethod]
    [DataRow("262144", 262144L)]
    [DataRow("256K", 262144L)]
    [DataRow("256k", 262144L)]
    [DataRow("256KB", 262144L)]
    [DataRow(" 256 KiB ", 262144L)]
    [DataRow("2M", 2097152L)]
    [DataRow("1.5MiB", 1572864L)]
    [DataRow("100B", 100L)]
    public void ByteSize_Valid(string text, long bytes)
    {
        Assert.AreEqual(bytes, TinyModelMetadata.ParseByteSize("MaxSramBytes", text));
    }

    [TestMethod]
    [DataRow("")]
    [DataRow("  ")]
    [DataRow(null)]
    public void ByteSize_Empty_IsNoLimit(string? text)
    {
        Assert.IsNull(TinyModelMetadata.ParseByteSize("MaxSramBytes", text));
    }

    [TestMethod]
    [DataRow("0")]
    [DataRow("-5")]
    [DataRow("256 GB")]
    [DataRow("1.5")]
    [DataRow("0.1K")]
    [DataRow("256K bytes")]
    [DataRow("1,024")]
    public void ByteSize_Invalid(string text)
    {
        var ex = Assert.ThrowsExactly<MetadataException>(() => TinyModelMetadata.ParseByteSize("MaxSramBytes", text));
        Assert.AreEqual("MaxSramBytes", ex.MetadataName);
        StringAssert.Contains(ex.Message, text);
    }
}
