using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using static MCUNetV2.Compiler.Tests.OnnxModelBuilder;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// Pre-quantized models: one small network (conv + ReLU, depthwise, 1x1 conv, residual add, max pool, global average
/// pool, fully connected) written twice with the same integers, scales and zero points, once as QDQ and once as
/// QOperator (QLinearConv, QLinearAdd, QLinearGlobalAveragePool from com.microsoft, QLinearMatMul). Both import with the
/// model's own parameters and no calibration, both give the same int8 model, and both agree with ONNX Runtime.
/// </summary>
[TestClass]
public sealed class PrequantizedModelTests
{
    private static string _work = null!;

    [ClassInitialize]
    public static void Setup(TestContext _) => _work = Directory.CreateTempSubdirectory("mcunet-prequantized-").FullName;

    [ClassCleanup]
    public static void Cleanup() { try { Directory.Delete(_work, true); } catch (IOException) { } }

    /// <summary>Parameters of the test network; activations are uint8 as ONNX Runtime's quantizer writes them by default.</summary>
    internal sealed class Network
    {
        public readonly float InScale = 0.02f; public readonly byte InZp = 128;
        public readonly float S1 = 0.05f; public readonly byte Zp1 = 0;      // conv1 + ReLU
        public readonly float S2 = 0.04f; public readonly byte Zp2 = 100;    // depthwise, stride 2
        public readonly float S3 = 0.03f; public readonly byte Zp3 = 120;    // 1x1 conv
        public readonly float S4 = 0.06f; public readonly byte Zp4 = 110;    // residual add
        public readonly float S5 = 0.05f; public readonly byte Zp5 = 90;     // global average pool
        public readonly float S6 = 0.1f; public readonly byte Zp6 = 128;     // fully connected
        public readonly sbyte[] W1, W2, W3, W6;
        public readonly float[] W1Scales; public readonly float W2Scale, W3Scale, W6Scale;
        public readonly int[] B1, B2, B3;

        public Network(int seed = 7)
        {
            var r = new Random(seed);
            // 7-bit weights, as ONNX Runtime's quantizer writes them with reduce_range: its x86 u8s8 kernels add pairs of
            // products in saturating 16-bit lanes (VPMADDUBSW), which full-range weights overflow; 7 bits keep it exact.
            sbyte[] Ints(int n) => Enumerable.Range(0, n).Select(_ => (sbyte)r.Next(-64, 64)).ToArray();
            int[] Bias(int n) => Enumerable.Range(0, n).Select(_ => r.Next(-2000, 2000)).ToArray();
            W1 = Ints(8 * 3 * 3 * 3); W1Scales = Enumerable.Range(0, 8).Select(_ => (float)(0.004 + r.NextDouble() * 0.008)).ToArray(); B1 = Bias(8);
            W2 = Ints(8 * 1 * 3 * 3); W2Scale = 0.02f; B2 = Bias(8);
            W3 = Ints(8 * 8); W3Scale = 0.008f; B3 = Bias(8);
            W6 = Ints(8 * 4); W6Scale = 0.02f;
        }

        private void Parameters(OnnxModelBuilder b)
        {
            b.Scalar("s_in", InScale).UInt8s("zp_in", Array.Empty<long>(), new[] { InZp });
            foreach (var (name, s, zp) in new[] { ("1", S1, Zp1), ("2", S2, Zp2), ("3", S3, Zp3), ("4", S4, Zp4), ("5", S5, Zp5), ("6", S6, Zp6) })
                b.Scalar("s" + name, s).UInt8s("zp" + name, Array.Empty<long>(), new[] { zp });
            b.Int8s("w1", new long[] { 8, 3, 3, 3 }, W1).Floats("w1_s", new long[] { 8 }, W1Scales).Int8s("w1_zp", new long[] { 8 }, new sbyte[8]);
            b.Int32s("b1", new long[] { 8 }, B1);
            b.Int8s("w2", new long[] { 8, 1, 3, 3 }, W2).Scalar("w2_s", W2Scale).Int8s("w2_zp", Array.Empty<long>(), new sbyte[1]).Int32s("b2", new long[] { 8 }, B2);
            b.Int8s("w3", new long[] { 8, 8, 1, 1 }, W3).Scalar("w3_s", W3Scale).Int8s("w3_zp", Array.Empty<long>(), new sbyte[1]).Int32s("b3", new long[] { 8 }, B3);
            b.Int8s("w6", new long[] { 8, 4 }, W6).Scalar("w6_s", W6Scale).Int8s("w6_zp", Array.Empty<long>(), new sbyte[1]);
        }

        private static readonly AttributeProtoSet Conv1Attrs = new(Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1));
        private static readonly AttributeProtoSet Conv2Attrs = new(Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1), Ints("strides", 2, 2), Int("group", 8));

        public string SaveQdq(string path)
        {
            var b = new OnnxModelBuilder(13).Input("x", 1, 3, 8, 8).Output("y", 1, 4);
            Parameters(b);
            b.Floats("b1_s", new long[] { 8 }, W1Scales.Select(s => InScale * s))
             .Floats("b2_s", new long[] { 8 }, Enumerable.Repeat(S1 * W2Scale, 8)).Floats("b3_s", new long[] { 8 }, Enumerable.Repeat(S2 * W3Scale, 8));
            void QDQ(string x, string s, string zp, string outName) =>
                b.Node("QuantizeLinear", new[] { x, s, zp }, outName + "_q").Node("DequantizeLinear", new[] { outName + "_q", s, zp }, outName);
            void Weights(string w, int axis) => b.Node("DequantizeLinear", new[] { w, w + "_s", w + "_zp" }, w + "_f", Int("axis", axis));
            void Bias(string bias) => b.Node("DequantizeLinear", new[] { bias, bias + "_s" }, bias + "_f", Int("axis", 0));
            QDQ("x", "s_in", "zp_in", "x_d");
            Weights("w1", 0); Bias("b1");
            b.Node("Conv", new[] { "x_d", "w1_f", "b1_f" }, "c1", Conv1Attrs.Items).Node("Relu", new[] { "c1" }, "r1");
            QDQ("r1", "s1", "zp1", "r1_d");
            Weights("w2", 0); Bias("b2");
            b.Node("Conv", new[] { "r1_d", "w2_f", "b2_f" }, "c2", Conv2Attrs.Items);
            QDQ("c2", "s2", "zp2", "c2_d");
            Weights("w3", 0); Bias("b3");
            b.Node("Conv", new[] { "c2_d", "w3_f", "b3_f" }, "c3");
            QDQ("c3", "s3", "zp3", "c3_d");
            b.Node("Add", new[] { "c2_d", "c3_d" }, "a4");
            QDQ("a4", "s4", "zp4", "a4_d");
            b.Node("MaxPool", new[] { "a4_d" }, "m5", Ints("kernel_shape", 2, 2), Ints("strides", 2, 2));
            QDQ("m5", "s4", "zp4", "m5_d");
            b.Node("GlobalAveragePool", new[] { "m5_d" }, "g5");
            QDQ("g5", "s5", "zp5", "g5_d");
            b.Node("Flatten", new[] { "g5_d" }, "f5");
            Weights("w6", 1);
            b.Node("MatMul", new[] { "f5", "w6_f" }, "fc6");
            b.Node("QuantizeLinear", new[] { "fc6", "s6", "zp6" }, "fc6_q").Node("DequantizeLinear", new[] { "fc6_q", "s6", "zp6" }, "y");
            return b.Save(path);
        }

        public string SaveQOperator(string path)
        {
            var b = new OnnxModelBuilder(13).Input("x", 1, 3, 8, 8).Output("y", 1, 4);
            Parameters(b);
            b.Node("QuantizeLinear", new[] { "x", "s_in", "zp_in" }, "xq")
             .Node("QLinearConv", new[] { "xq", "s_in", "zp_in", "w1", "w1_s", "w1_zp", "s1", "zp1", "b1" }, "q1", Conv1Attrs.Items)
             .Node("QLinearConv", new[] { "q1", "s1", "zp1", "w2", "w2_s", "w2_zp", "s2", "zp2", "b2" }, "q2", Conv2Attrs.Items)
             .Node("QLinearConv", new[] { "q2", "s2", "zp2", "w3", "w3_s", "w3_zp", "s3", "zp3", "b3" }, "q3")
             .DomainNode("com.microsoft", "QLinearAdd", new[] { "q2", "s2", "zp2", "q3", "s3", "zp3", "s4", "zp4" }, "q4")
             .Node("MaxPool", new[] { "q4" }, "q5", Ints("kernel_shape", 2, 2), Ints("strides", 2, 2))
             .DomainNode("com.microsoft", "QLinearGlobalAveragePool", new[] { "q5", "s4", "zp4", "s5", "zp5" }, "q6", Int("channels_last", 0))
             .Node("Flatten", new[] { "q6" }, "q7")
             .Node("QLinearMatMul", new[] { "q7", "s5", "zp5", "w6", "w6_s", "w6_zp", "s6", "zp6" }, "q8")
             .Node("DequantizeLinear", new[] { "q8", "s6", "zp6" }, "y");
            return b.Save(path);
        }
    }

    /// <summary>A fixed list of attributes shared by the two forms of the network.</summary>
    private sealed record AttributeProtoSet(params Onnx.Proto.AttributeProto[] Items);

    private static IReadOnlyList<float[]> Inputs(int count = 6)
    {
        var r = new Random(11);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, 3 * 8 * 8).Select(_ => (float)(r.NextDouble() * 5 - 2.5)).ToArray()).ToList();
    }

    private static float[] RunOrt(string model, float[] nchw)
    {
        using var session = new InferenceSession(model);
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", new DenseTensor<float>(nchw, new[] { 1, 3, 8, 8 })) });
        return results.First().AsEnumerable<float>().ToArray();
    }

    private static QuantizedModel Import(string path)
    {
        var graph = OnnxImporter.Load(path);
        Assert.IsNotNull(graph.Quantization, "the model's quantization is kept");
        Assert.AreEqual(0, Quantizer.TensorsNeedingCalibration(graph).Count, "every tensor has the model's parameters: nothing to calibrate");
        return Quantizer.Quantize(graph, ranges: null);
    }

    [TestMethod]
    public void QdqAndQOperatorForms_ImportToTheSameInt8Model_WithTheModelsOwnParameters()
    {
        var net = new Network();
        var qdq = Import(net.SaveQdq(Path.Combine(_work, "net.qdq.onnx")));
        var qop = Import(net.SaveQOperator(Path.Combine(_work, "net.qop.onnx")));

        // uint8 (scale, zp) is carried as int8 (scale, zp - 128)
        Assert.AreEqual(new QuantParams(net.InScale, 0), qdq.InputParams);
        Assert.AreEqual(new QuantParams(net.S6, 0), qdq.OutputParams);
        var convs = qdq.Layers.Values.OfType<QuantizedConv>().ToList();
        Assert.AreEqual(4, convs.Count, "three convolutions and one fully connected layer");
        // conv1's integers are the model's, moved from [Cout][Cin][kh][kw] to [Cout][kh][kw][Cin]
        var w1 = convs[0].Weights;
        for (int o = 0; o < 8; o++)
            for (int i = 0; i < 3; i++)
                for (int y = 0; y < 3; y++)
                    for (int x = 0; x < 3; x++)
                        Assert.AreEqual(net.W1[((o * 3 + i) * 3 + y) * 3 + x], w1[((o * 3 + y) * 3 + x) * 3 + i]);
        CollectionAssert.AreEqual(net.B1, convs[0].Bias, "int32 biases are the model's");
        CollectionAssert.AreEqual(net.W1Scales.Select(s => (double)s).ToArray(), convs[0].WeightScales);
        Assert.AreEqual(-128, convs[0].ActMin, "uint8 zero point 0 after conv1 clamps at real 0 (its ReLU)");

        // The two forms are the same int8 model: identical integer parameters and identical outputs.
        Assert.AreEqual(qdq.Layers.Count, qop.Layers.Count);
        foreach (var (a, b) in qdq.Graph.Layers.Zip(qop.Graph.Layers))
        {
            Assert.AreEqual(qdq.Activations[a.Output], qop.Activations[b.Output], $"parameters of {a.Name}");
            if (qdq.Layers[a] is QuantizedConv ca && qop.Layers[b] is QuantizedConv cb)
            {
                CollectionAssert.AreEqual(ca.Weights, cb.Weights, a.Name);
                CollectionAssert.AreEqual(ca.Bias, cb.Bias, a.Name);
                CollectionAssert.AreEqual(ca.Requant, cb.Requant, a.Name);
            }
        }
        foreach (var input in Inputs())
            CollectionAssert.AreEqual(Int8Executor.Run(qdq, PatchPlanner.PerLayer(qdq.Graph), qdq.QuantizeInput(ToNhwc(input))),
                Int8Executor.Run(qop, PatchPlanner.PerLayer(qop.Graph), qop.QuantizeInput(ToNhwc(input))));
    }

    [TestMethod]
    public void BothForms_AgreeWithOnnxRuntime_WithinAFewOutputSteps()
    {
        var net = new Network();
        foreach (var path in new[] { net.SaveQdq(Path.Combine(_work, "ort.qdq.onnx")), net.SaveQOperator(Path.Combine(_work, "ort.qop.onnx")) })
        {
            var int8 = Import(path);
            int worst = 0;
            foreach (var input in Inputs())
            {
                var ours = Int8Executor.Run(int8, PatchPlanner.PerLayer(int8.Graph), int8.QuantizeInput(ToNhwc(input)));
                var ort = RunOrt(path, input);
                for (int i = 0; i < 4; i++)
                    worst = Math.Max(worst, (int)Math.Round(Math.Abs(int8.OutputParams.Dequantize(ours[i]) - ort[i]) / net.S6));
            }
            Console.WriteLine($"{Path.GetFileName(path)}: largest difference from ONNX Runtime {worst} output step(s) of {net.S6}");
            // ONNX Runtime rounds half to even in float, we round half up in fixed point, and it keeps the global
            // average pool's own output scale where we keep the input's; measured: 1 step.
            Assert.IsTrue(worst <= 2, $"{Path.GetFileName(path)} differs from ONNX Runtime by {worst} output steps");
        }
    }

    [TestMethod]
    public void AsymmetricWeights_AreRequantizedWithAWarningNote()
    {
        // conv1's weights as uint8 with zero point 120: real values (q - 120) * s, not symmetric
        var b = new OnnxModelBuilder(13).Input("x", 1, 3, 4, 4).Output("y", 1, 2, 4, 4)
            .Scalar("s_in", 0.02f).UInt8s("zp_in", Array.Empty<long>(), new byte[] { 128 })
            .Scalar("s1", 0.05f).UInt8s("zp1", Array.Empty<long>(), new byte[] { 128 })
            .UInt8s("w", new long[] { 2, 3, 1, 1 }, new byte[] { 100, 130, 255, 0, 120, 121 }).Scalar("w_s", 0.01f).UInt8s("w_zp", Array.Empty<long>(), new byte[] { 120 })
            .Node("QuantizeLinear", new[] { "x", "s_in", "zp_in" }, "xq").Node("DequantizeLinear", new[] { "xq", "s_in", "zp_in" }, "xd")
            .Node("DequantizeLinear", new[] { "w", "w_s", "w_zp" }, "wf")
            .Node("Conv", new[] { "xd", "wf" }, "c").Node("QuantizeLinear", new[] { "c", "s1", "zp1" }, "cq").Node("DequantizeLinear", new[] { "cq", "s1", "zp1" }, "y");
        var graph = OnnxImporter.Load(b.Save(Path.Combine(_work, "asym.onnx")));
        Assert.AreEqual(1, graph.Quantization!.Notes.Count);
        StringAssert.Contains(graph.Quantization.Notes[0], "zero point other than 0");
        Assert.AreEqual(0, graph.Quantization.WeightScales.Count, "the weights are re-quantized by the compiler");
        Assert.AreEqual(0, Quantizer.TensorsNeedingCalibration(graph).Count, "activations keep the model's parameters");
        var conv = (QuantizedConv)Quantizer.Quantize(graph, null).Layers.Values.Single();
        Assert.AreEqual(127, conv.Weights.Max(v => Math.Abs((int)v)), "symmetric per channel over the real weights");
    }

    [TestMethod]
    public void UnsupportedQuantizedForms_AreCodedErrors()
    {
        (string Code, string Message) Fail(OnnxModelBuilder b, string name)
        {
            var e = Assert.ThrowsExactly<CompilerException>(() => OnnxImporter.Load(b.Save(Path.Combine(_work, name))));
            return (e.Diagnostic.Code, e.Diagnostic.Message);
        }
        OnnxModelBuilder Base() => new OnnxModelBuilder(13).Input("x", 1, 2, 4, 4).Output("y", 1, 2, 4, 4).Scalar("s", 0.1f);

        // the model returns integers
        var (code, message) = Fail(Base().UInt8s("zp", Array.Empty<long>(), new byte[] { 128 })
            .Node("Relu", new[] { "x" }, "r").Node("QuantizeLinear", new[] { "r", "s", "zp" }, "y"), "int-output.onnx");
        Assert.AreEqual(ErrorCodes.UnsupportedModel, code);
        StringAssert.Contains(message, "DequantizeLinear");
        // 16-bit activations
        (code, message) = Fail(Base().Int32s("zp16", Array.Empty<long>(), new[] { 0 })
            .Node("QuantizeLinear", new[] { "x", "s", "zp16" }, "q").Node("DequantizeLinear", new[] { "q", "s", "zp16" }, "d").Node("Relu", new[] { "d" }, "y"), "int32-act.onnx");
        Assert.AreEqual(ErrorCodes.UnsupportedOperator, code);
        StringAssert.Contains(message, "8-bit");
        // per-axis quantization of an activation
        (code, message) = Fail(Base().Floats("s2", new long[] { 2 }, new[] { 0.1f, 0.2f }).UInt8s("zp2", new long[] { 2 }, new byte[] { 128, 128 })
            .Node("QuantizeLinear", new[] { "x", "s2", "zp2" }, "q", Int("axis", 1)).Node("DequantizeLinear", new[] { "q", "s2", "zp2" }, "d", Int("axis", 1))
            .Node("Relu", new[] { "d" }, "y"), "per-axis-act.onnx");
        Assert.AreEqual(ErrorCodes.UnsupportedOperator, code);
        StringAssert.Contains(message, "per tensor");
        // a non-positive scale
        (code, _) = Fail(Base().Scalar("bad", -1f).Node("QuantizeLinear", new[] { "x", "bad" }, "q").Node("DequantizeLinear", new[] { "q", "bad" }, "d")
            .Node("Relu", new[] { "d" }, "y"), "neg-scale.onnx");
        Assert.AreEqual(ErrorCodes.ModelCorrupt, code);
        // an unknown contrib operator names itself and the QOperator list
        (code, message) = Fail(Base().DomainNode("com.microsoft", "QLinearWhere", new[] { "x" }, "y"), "contrib.onnx");
        Assert.AreEqual(ErrorCodes.UnsupportedOperator, code);
        StringAssert.Contains(message, "QLinearWhere");
        StringAssert.Contains(message, "QLinearConv");
    }


    [TestMethod]
    public void PrequantizedModel_BuildsWithoutCalibration_AndIsBitExactUnderQemu()
    {
        var net = new Network();
        foreach (var (form, path) in new[] { ("qdq", net.SaveQdq(Path.Combine(_work, "lib.qdq.onnx"))), ("qop", net.SaveQOperator(Path.Combine(_work, "lib.qop.onnx"))) })
        {
            var options = new Pipeline.TinyModelOptions
            {
                ModelPath = path,
                OutputDirectory = Path.Combine(_work, "out-" + form),
                Prefix = "net",
                PatchRows = 2,
                PatchCols = 2,
                Verify = true, // no images: the library is checked on fixed pseudo-random inputs
            };
            var sink = new RecordingSink();
            var result = Pipeline.TinyModelBuilder.Build(options, sink);
            Assert.IsTrue(result.Succeeded, string.Join("\n", sink.Diagnostics));
            Assert.IsTrue(sink.Messages.Any(m => m.Contains("pre-quantized model") && m.Contains("no calibration")), string.Join("\n", sink.Messages));
            Assert.IsTrue(sink.Messages.Any(m => m.StartsWith("verified under QEMU")), string.Join("\n", sink.Messages));
            Assert.IsTrue(File.Exists(result.LibraryPath));
            // the quantization report says the analysis was skipped, and why
            var q = System.Text.Json.JsonDocument.Parse(File.ReadAllText(result.MemoryReportPath!)).RootElement.GetProperty("quantization");
            Assert.IsFalse(q.GetProperty("analyzed").GetBoolean());
            StringAssert.Contains(q.GetProperty("note").GetString(), "no calibration samples");
            Assert.IsFalse(q.TryGetProperty("layers", out _));
            StringAssert.Contains(result.Memory!.Quantization, "not analysed");
            Assert.IsTrue(File.Exists(result.HtmlReportPath));
            StringAssert.Contains(File.ReadAllText(result.HtmlReportPath!), "no calibration samples");
        }
    }

    [TestMethod]
    public void FloatModelWithoutCalibration_IsStillRefused()
    {
        var b = new OnnxModelBuilder(13).Input("x", 1, 2, 4, 4).Output("y", 1, 2, 4, 4).Node("Relu", new[] { "x" }, "y");
        var options = new Pipeline.TinyModelOptions { ModelPath = b.Save(Path.Combine(_work, "float.onnx")), OutputDirectory = Path.Combine(_work, "out-float"), Prefix = "f" };
        var sink = new RecordingSink();
        Assert.IsFalse(Pipeline.TinyModelBuilder.Build(options, sink).Succeeded);
        Assert.AreEqual(ErrorCodes.CalibrationMissing, sink.Diagnostics.Single().Code);
    }

    private static float[] ToNhwc(float[] nchw) => Execution.FloatExecutor.NchwToNhwc(nchw, new TensorShape(8, 8, 3));
}
