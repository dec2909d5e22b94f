using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Pipeline;
using static MCUNetV2.Compiler.Tests.OnnxModelBuilder;

namespace MCUNetV2.Compiler.Tests;

/// <summary>MaxSramBytes is checked right after planning, also for a model no patch grid can help.</summary>
[TestClass]
public sealed class SramBudgetTests
{

    [TestMethod]
    public void ModelNoPatchGridHelps_ExceedingTheBudget_IsMCU3003_WithoutGridAdvice()
    {
        var dir = Directory.CreateTempSubdirectory("mcunet-budget-").FullName;
        try
        {
            // a 4x4 image, one 4x4 convolution to 1x1x8, a fully connected layer: nothing to split into patches
            var r = new Random(1);
            var model = new OnnxModelBuilder(13).Input("x", 1, 3, 4, 4).Output("y", 1, 2)
                .Floats("w", new long[] { 8, 3, 4, 4 }, Enumerable.Range(0, 384).Select(_ => (float)(r.NextDouble() - 0.5)))
                .Floats("fc", new long[] { 2, 8 }, Enumerable.Range(0, 16).Select(_ => (float)(r.NextDouble() - 0.5)))
                .Node("Conv", new[] { "x", "w" }, "c")
                .Node("Relu", new[] { "c" }, "h")
                .Node("Flatten", new[] { "h" }, "f")
                .Node("Gemm", new[] { "f", "fc" }, "y", Int("transB", 1))
                .Save(Path.Combine(dir, "tiny.onnx"));
            var options = new TinyModelOptions
            {
                ModelPath = model,
                OutputDirectory = Path.Combine(dir, "out"),
                Prefix = "tiny",
                CalibrationFiles = new[] { TestData.VwwImages[0].Path },
                MaxSramBytes = 4,
            };
            var sink = new RecordingSink();

            var result = TinyModelBuilder.Build(options, sink);

            Assert.IsFalse(result.Succeeded);
            var error = result.Diagnostics.Single(d => d.Severity == DiagnosticSeverity.Error);
            Assert.AreEqual(ErrorCodes.SramBudgetExceeded, error.Code);
            Assert.AreEqual(model, error.File);
            StringAssert.Contains(error.Message, "the planned arena needs 8 bytes");
            StringAssert.Contains(error.Message, "MaxSramBytes = 4 bytes");
            StringAssert.Contains(error.Message, "no patch grid up to 4x4 lowers the peak");
            StringAssert.Contains(error.Message, "smaller input resolution");
            Assert.IsFalse(Directory.Exists(options.OutputDirectory), "nothing written");

            // a budget that fits passes the check (Compile stops before code generation)
            var compiled = TinyModelBuilder.Compile(new TinyModelOptions
            {
                ModelPath = model, OutputDirectory = options.OutputDirectory, Prefix = "tiny",
                CalibrationFiles = options.CalibrationFiles, MaxSramBytes = 8,
            }, sink);
            Assert.AreEqual(8, compiled.Plan.ArenaBytes);
        }
        finally { Directory.Delete(dir, true); }
    }
}
