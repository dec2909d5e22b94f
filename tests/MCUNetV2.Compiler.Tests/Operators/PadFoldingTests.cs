using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static MCUNetV2.Compiler.Tests.OnnxModelBuilder;

namespace MCUNetV2.Compiler.Tests;

/// <summary>A zero Pad in front of an average pool folds into the pool as counted padding; elsewhere it is a padding depthwise convolution.</summary>
[TestClass]
public sealed class PadFoldingTests
{
    private static string Model(string pool, params Onnx.Proto.AttributeProto[] poolAttributes)
    {
        var path = Path.Combine(Path.GetTempPath(), $"mcunet-padpool-{pool}-{poolAttributes.Length}-{Environment.ProcessId}.onnx");
        return new OnnxModelBuilder(13).Input("x", 1, 3, 5, 6).Output("y", 1, 3, 6, 6)
            .Int64s("pads", new long[] { 8 }, new long[] { 0, 0, 1, 2, 0, 0, 1, 0 })
            .Node("Pad", new[] { "x", "pads" }, "p")
            .Node(pool, new[] { "p" }, "y", new[] { Ints("kernel_shape", 2, 3) }.Concat(poolAttributes).ToArray())
            .Save(path);
    }

    [TestMethod]
    public void PadThenAveragePool_FoldsIntoCountedPadding_AndMatchesOnnxRuntime()
    {
        var path = Model("AveragePool");
        var graph = OnnxImporter.Load(path);
        var pool = graph.Layers.OfType<AveragePool>().Single();
        Assert.IsTrue(pool.Window.CountIncludePad);
        var r = new Random(2);
        var x = Enumerable.Range(0, 90).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
        using var session = new InferenceSession(path);
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, new[] { 1, 3, 5, 6 })) });
        var ort = FloatExecutor.NchwToNhwc(results.First().AsEnumerable<float>().ToArray(), new TensorShape(6, 6, 3));
        var ours = FloatExecutor.Run(graph, FloatExecutor.NchwToNhwc(x, new TensorShape(5, 6, 3)));
        Assert.AreEqual(ort.Length, ours.Length);
        for (int i = 0; i < ours.Length; i++) Assert.AreEqual(ort[i], ours[i], 1e-5, $"element {i}");
        File.Delete(path);
    }

    /// <summary>
    /// A Pad that cannot fold (in front of a max pool, of a pool with uncounted pads of its own, of an element-wise
    /// operator, at the graph output, or with a value other than zero) becomes a 1x1 depthwise convolution that pads.
    /// </summary>
    [TestMethod]
    public void PadThatCannotFold_IsADepthwisePadding_AndMatchesOnnxRuntime()
    {
        var models = new[]
        {
            Model("MaxPool"),
            Model("AveragePool", Ints("pads", 1, 0, 0, 0)),
            new OnnxModelBuilder(13).Input("x", 1, 3, 5, 6).Output("y", 1, 3, 7, 8)
                .Int64s("pads", new long[] { 8 }, new long[] { 0, 0, 1, 2, 0, 0, 1, 0 }).Scalar("v", 0.5f)
                .Node("Pad", new[] { "x", "pads", "v" }, "p").Node("Relu", new[] { "p" }, "y")
                .Save(Path.Combine(Path.GetTempPath(), $"mcunet-padvalue-{Environment.ProcessId}.onnx")),
            new OnnxModelBuilder(13).Input("x", 1, 3, 5, 6).Output("y", 1, 3, 7, 8)
                .Int64s("pads", new long[] { 8 }, new long[] { 0, 0, 1, 2, 0, 0, 1, 0 })
                .Node("Pad", new[] { "x", "pads" }, "y")
                .Save(Path.Combine(Path.GetTempPath(), $"mcunet-padout-{Environment.ProcessId}.onnx")),
        };
        var r = new Random(7);
        foreach (var path in models)
        {
            var graph = OnnxImporter.Load(path);
            Assert.IsTrue(graph.Layers.OfType<Conv2D>().Any(c => c.IsDepthwise || c.Window.Pad != Padding.Zero), path);
            var x = Enumerable.Range(0, 90).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
            // unoptimized: ONNX Runtime's Pad fusion moves a zero Pad into MaxPool's own (-inf) padding, which changes the result
            using var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
            using var session = new InferenceSession(path, options);
            using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, new[] { 1, 3, 5, 6 })) });
            var ortTensor = results.First().AsTensor<float>();
            var d = ortTensor.Dimensions.ToArray();
            var ort = FloatExecutor.NchwToNhwc(ortTensor.ToArray(), new TensorShape(d[2], d[3], d[1]));
            var ours = FloatExecutor.Run(graph, FloatExecutor.NchwToNhwc(x, new TensorShape(5, 6, 3)));
            Assert.AreEqual(ort.Length, ours.Length, path);
            for (int i = 0; i < ours.Length; i++) Assert.AreEqual(ort[i], ours[i], 1e-5, $"{Path.GetFileName(path)} element {i}");
            File.Delete(path);
        }
    }

    [TestMethod]
    public void PadOfOtherAxesOrModes_IsRefusedWithMcu1003()
    {
        var path = new OnnxModelBuilder(13).Input("x", 1, 3, 5, 6).Output("y", 1, 4, 5, 6)
            .Int64s("pads", new long[] { 8 }, new long[] { 0, 1, 0, 0, 0, 0, 0, 0 })
            .Node("Pad", new[] { "x", "pads" }, "y")
            .Save(Path.Combine(Path.GetTempPath(), $"mcunet-padchannels-{Environment.ProcessId}.onnx"));
        var e = Assert.ThrowsExactly<CompilerException>(() => OnnxImporter.Load(path));
        Assert.AreEqual(ErrorCodes.UnsupportedOperator, e.Diagnostic.Code);
        StringAssert.Contains(e.Diagnostic.Message, "height and width");
        File.Delete(path);
    }
}
