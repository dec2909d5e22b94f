using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// Features flattened from an NCHW map reach a fully connected layer in NCHW order, while the compiler keeps NHWC:
/// the FC's weights are permuted. An element-wise operator between Flatten and the FC must not lose that.
/// </summary>
[TestClass]
public sealed class FlattenOrderTests
{
    [TestMethod]
    [DataRow("Sigmoid")]
    [DataRow("Relu")]
    public void ElementwiseBetweenFlattenAndGemm_KeepsTheFeatureOrder(string op)
    {
        var r = new Random(3);
        var path = Path.Combine(Path.GetTempPath(), $"mcunet-flatten-{op}-{Environment.ProcessId}.onnx");
        new OnnxModelBuilder(13).Input("x", 1, 3, 4, 4).Output("y", 1, 5)
            .Floats("w", new long[] { 4, 3, 3, 3 }, Enumerable.Range(0, 108).Select(_ => (float)(r.NextDouble() - 0.5)))
            .Floats("fc", new long[] { 5, 64 }, Enumerable.Range(0, 320).Select(_ => (float)(r.NextDouble() - 0.5)))
            .Node("Conv", new[] { "x", "w" }, "c", OnnxModelBuilder.Ints("pads", 1, 1, 1, 1))
            .Node("Flatten", new[] { "c" }, "f")
            .Node(op, new[] { "f" }, "a")
            .Node("Gemm", new[] { "a", "fc" }, "y", OnnxModelBuilder.Int("transB", 1))
            .Save(path);
        try
        {
            var graph = OnnxImporter.Load(path);
            var x = Enumerable.Range(0, 48).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();
            var ours = FloatExecutor.Run(graph, FloatExecutor.NchwToNhwc(x, new TensorShape(4, 4, 3)));
            using var session = new InferenceSession(path);
            using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(x, new[] { 1, 3, 4, 4 })) });
            var ort = results.First().AsEnumerable<float>().ToArray();
            for (int i = 0; i < 5; i++) Assert.AreEqual(ort[i], ours[i], 1e-4, $"output {i}");
        }
        finally { File.Delete(path); }
    }
}
