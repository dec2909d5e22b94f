using MCUNetV2.Compiler.Export;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Onnx.Proto;
using MCUNetV2.Compiler.Quantization;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The int8 model exported as QDQ ONNX runs in ONNX Runtime and agrees with the C# int8 reference (VWW on its 15 images,
/// mnist-8 on its three test data sets, small synthetic models with every other layer type on random inputs); the file
/// holds the compiler's exact integers and reads back as the same int8 model; ORT turns it into QOperator form.
/// </summary>
[TestClass]
public sealed class QdqExportTests
{
    /// <param name="Reference">Per input: our int8 input and the C# int8 reference output.</param>
    internal sealed record Case(string Name, string ModelPath, ModelGraph Graph, QuantizedModel Int8, IReadOnlyList<float[]> Inputs, string QdqPath,
        IReadOnlyList<(sbyte[] Input, sbyte[] Output)> Reference);

    private static string? _work;
    private static string Work => _work ??= Directory.CreateTempSubdirectory("mcunet-qdq-").FullName;
    private static readonly Dictionary<string, Case> Cases = new();
    private static readonly object Gate = new();

    [ClassCleanup]
    public static void Cleanup()
    {
        lock (Gate)
        {
            try { if (_work != null) Directory.Delete(_work, true); } catch (IOException) { }
            _work = null;
            Cases.Clear();
        }
    }

    private static string MnistModel => Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx");

    /// <summary>
    /// The model imported, calibrated as VwwModelTests / MnistTests do (the synthetic models on random inputs), exported,
    /// and our int8 reference run on every input (once per test run).
    /// </summary>
    internal static Case Load(string name)
    {
        lock (Gate)
        {
            if (Cases.TryGetValue(name, out var c)) return c;
            var path = name switch
            {
                "vww" => TestData.VwwModel,
                "mnist" => MnistModel,
                _ => QdqTestModels.Write(name, Path.Combine(Work, $"{name}.onnx")),
            };
            var graph = OnnxImporter.Load(path);
            var inputs = name switch
            {
                "vww" => TestData.VwwImages.Select(i => TestData.VwwInput(i.Path, graph.Input.Shape)).ToList(),
                "mnist" => Enumerable.Range(0, 3).Select(i => MnistTests.DataSet(i).Input).ToList(),
                _ => QdqTestModels.Inputs(graph.Input.Shape.Elements, 8),
            };
            var watch = System.Diagnostics.Stopwatch.StartNew();
            var int8 = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, inputs));
            var calibrated = watch.Elapsed;
            var qdq = Path.Combine(Work, $"{name}.qdq.onnx");
            QdqExporter.Write(int8, qdq, path);
            var exported = watch.Elapsed;
            var reference = inputs.AsParallel().AsOrdered().Select(i => int8.QuantizeInput(i)).Select(q => (q, Int8Executor.Run(int8, q))).ToList();
            Console.WriteLine($"{name}: {string.Join(", ", graph.Layers.Select(l => l.Op))}; calibrated in {calibrated.TotalSeconds:F1} s, " +
                              $"exported in {(exported - calibrated).TotalSeconds:F2} s, int8 reference on {inputs.Count} inputs in {(watch.Elapsed - exported).TotalSeconds:F1} s");
            return Cases[name] = new Case(name, path, graph, int8, inputs, qdq, reference);
        }
    }

    /// <summary>
    /// Converts a QDQ model into QOperator form (QLinearConv, QLinearAdd, QGemm, ...) with ONNX Runtime's own graph
    /// transformers (extended level; no layout or hardware-specific rewrites of the all level) and saves it.
    /// </summary>
    public static void ConvertToQOperator(string qdqPath, string outPath)
    {
        using var options = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            OptimizedModelFilePath = outPath,
        };
        // Keep int8 activations as they are. Otherwise ORT on x64 turns each int8 QuantizeLinear -> DequantizeLinear pair
        // into uint8 where the QuantizeLinear has one reader, and cannot fuse the nodes around a tensor read by several
        // (the residual adds of VWW and the convolutions next to them stay float).
        options.AddSessionConfigEntry("session.qdqisint8allowed", "1");
        using var session = new InferenceSession(qdqPath, options);
    }

    /// <summary>ONNX dims of a tensor of our shape exported with this ONNX rank (as the exporter writes them).</summary>
    private static int[] OnnxDims(TensorShape s, int rank) => rank switch
    {
        4 => new[] { 1, s.C, s.H, s.W },
        3 => new[] { s.C, s.H, s.W },
        2 => new[] { 1, s.Elements },
        _ => new[] { s.Elements },
    };

    /// <summary>NHWC (ours) to the ONNX element order (NCHW; a flattened map in NCHW order).</summary>
    private static T[] ToOnnxOrder<T>(T[] nhwc, TensorShape s)
    {
        var r = new T[nhwc.Length];
        for (int y = 0; y < s.H; y++)
            for (int x = 0; x < s.W; x++)
                for (int c = 0; c < s.C; c++)
                    r[(c * s.H + y) * s.W + x] = nhwc[(y * s.W + x) * s.C + c];
        return r;
    }

    private static float[] Run(InferenceSession session, Case c, float[] nhwcInput)
    {
        var g = c.Graph;
        var tensor = new DenseTensor<float>(ToOnnxOrder(nhwcInput, g.Input.Shape), OnnxDims(g.Input.Shape, g.OnnxInputRanks[0]));
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor(g.OnnxInputName, tensor) });
        var output = results.Single();
        Assert.AreEqual(g.OnnxOutputName, output.Name);
        var t = output.AsTensor<float>();
        CollectionAssert.AreEqual(OnnxDims(g.Output.Shape, g.OnnxOutputRank), t.Dimensions.ToArray(), "output shape");
        return t.ToArray();
    }

    /// <summary>
    /// Default optimizations, but with ORT's non-saturating int8 products on x64: without VNNI, ORT's default u8s8 kernels
    /// add pairs of products in saturating 16-bit lanes (ORT's session option documentation says so), which moves
    /// full-range int8 weights like ours by many steps; "session.x64quantprecision" selects exact u8u8 products.
    /// </summary>
    private static SessionOptions PreciseOptions()
    {
        var options = new SessionOptions();
        options.AddSessionConfigEntry("session.x64quantprecision", "1");
        return options;
    }

    /// <summary>
    /// ORT's output in output quantization steps from our int8 reference (dequantized), per input, and the classes.
    /// ORT is fed the dequantized int8 input, so its QuantizeLinear reproduces our int8 input exactly: the figure measures
    /// the graph, not the input rounding (ONNX rounds ties to even, QuantParams.Quantize away from zero).
    /// </summary>
    private static List<(int Steps, int OrtClass, int OurClass)> Compare(Case c, SessionOptions? options = null)
    {
        using var session = options == null ? new InferenceSession(c.QdqPath) : new InferenceSession(c.QdqPath, options);
        var outScale = c.Int8.OutputParams.Scale;
        var result = new List<(int, int, int)>();
        foreach (var (q, output) in c.Reference)
        {
            var dequantizedInput = q.Select(c.Int8.InputParams.Dequantize).ToArray();
            var ort = Run(session, c, dequantizedInput);
            var ours = ToOnnxOrder(c.Int8.DequantizeOutput(output), c.Graph.Output.Shape);
            int steps = Enumerable.Range(0, ours.Length).Max(k => (int)Math.Round(Math.Abs(ort[k] - ours[k]) / outScale));
            result.Add((steps, TestData.ArgMax(ort), TestData.ArgMax(ours)));
        }
        return result;
    }

    /// <summary>
    /// Measured with ONNX Runtime 1.31.1 on x64 (AVX2, no VNNI), as the test log shows: with all optimizations (QDQ fused
    /// into QLinearConv, QLinearAdd, QLinearSoftmax, ...) and exact int8 products, VWW is at most 1 output step from the
    /// C# int8 reference and mnist-8 0 steps; without optimizations (float math between the Q/DQ pairs) VWW at most 1,
    /// mnist-8 0; the synthetic models at most 1 ("operators") and 0 (the others). The bound is 2 steps: ORT requantizes in float and rounds ties to even where we use a Q31
    /// fixed-point multiplier with ties upward, and computes softmax and pooling in float or with its own tables, so a
    /// layer's output may be one step off and such a step may carry into the next layer; a wrong scale, zero point,
    /// weight layout or bias would move the output by many steps. (ORT's default x64 precision is not bounded: its
    /// saturating 16-bit sums give up to 17 steps on VWW and 33 on mnist-8 here; it is logged, not asserted.)
    /// </summary>
    private const int MaxOutputSteps = 2;

    /// <summary>The real models, whose outputs are classes (the synthetic ones are held to the step bound only).</summary>
    private static bool IsClassifier(string name) => name is "vww" or "mnist";

    [TestMethod]
    [DataRow("vww")]
    [DataRow("mnist")]
    [DataRow("operators")]
    [DataRow("pixel-softmax")]
    [DataRow("vector-input")]
    [DataRow("rank3")]
    [DataRow("rank1")]
    public void Export_RunsInOnnxRuntime_AndAgreesWithTheInt8Reference(string name)
    {
        var c = Load(name);
        var saturating = Compare(c);
        using var precise = PreciseOptions();
        var optimized = Compare(c, precise);
        using var plain = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_DISABLE_ALL };
        var floatMath = Compare(c, plain);
        using var int8Allowed = new SessionOptions();
        int8Allowed.AddSessionConfigEntry("session.qdqisint8allowed", "1");
        var s8 = Compare(c, int8Allowed);
        Console.WriteLine($"{name}: {c.Inputs.Count} inputs, output scale {c.Int8.OutputParams.Scale}; ORT vs C# int8 in output steps, max [per input]:\n" +
                          $"  all optimizations (QDQ fused), x64quantprecision=1: {optimized.Max(r => r.Steps)} [{string.Join(",", optimized.Select(r => r.Steps))}]\n" +
                          $"  all optimizations, default precision           : {saturating.Max(r => r.Steps)} [{string.Join(",", saturating.Select(r => r.Steps))}] classes equal: {saturating.All(r => r.OrtClass == r.OurClass)}\n" +
                          $"  all optimizations, qdqisint8allowed=1          : {s8.Max(r => r.Steps)} [{string.Join(",", s8.Select(r => r.Steps))}]\n" +
                          $"  no optimizations (float math between Q/DQ)     : {floatMath.Max(r => r.Steps)} [{string.Join(",", floatMath.Select(r => r.Steps))}]");
        foreach (var (set, label) in new[] { (optimized, "optimized"), (s8, "int8 kernels"), (floatMath, "unoptimized") })
            for (int i = 0; i < set.Count; i++)
            {
                if (IsClassifier(name)) Assert.AreEqual(set[i].OurClass, set[i].OrtClass, $"{label} ORT class of input {i}");
                Assert.IsTrue(set[i].Steps <= MaxOutputSteps, $"{label} ORT output of input {i} is {set[i].Steps} steps from the C# int8 reference");
            }
    }

    [TestMethod]
    [DataRow("vww")]
    [DataRow("mnist")]
    [DataRow("operators")]
    public void Export_HoldsTheCompilersExactIntegersAndScales(string name)
    {
        var c = Load(name);
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(c.QdqPath));
        Assert.AreEqual("MCUNetV2.Build", model.ProducerName);
        Assert.AreEqual(8, model.IrVersion);
        Assert.IsTrue(model.OpsetImport.Single(o => o.Domain == "").Version >= 13);
        CollectionAssert.AreEqual(c.Graph.OnnxInputNames.ToArray(), model.Graph.Input.Select(i => i.Name).ToArray());
        Assert.AreEqual(c.Graph.OnnxOutputName, model.Graph.Output.Single().Name);

        var init = model.Graph.Initializer.ToDictionary(t => t.Name);
        var producer = model.Graph.Node.SelectMany(n => n.Output.Select(o => (o, n))).ToDictionary(p => p.o, p => p.n);
        byte[] Raw(string name) => init[name].RawData.ToByteArray();
        sbyte[] Int8s(string name) { Assert.AreEqual((int)TensorProto.Types.DataType.Int8, init[name].DataType); return Raw(name).Select(b => (sbyte)b).ToArray(); }
        int[] Int32s(string name) { Assert.AreEqual((int)TensorProto.Types.DataType.Int32, init[name].DataType); var r = Raw(name); return Enumerable.Range(0, r.Length / 4).Select(i => BitConverter.ToInt32(r, 4 * i)).ToArray(); }
        float[] Floats(string name) { Assert.AreEqual((int)TensorProto.Types.DataType.Float, init[name].DataType); var r = Raw(name); return Enumerable.Range(0, r.Length / 4).Select(i => BitConverter.ToSingle(r, 4 * i)).ToArray(); }
        NodeProto Dq(string value) { var n = producer[value]; Assert.AreEqual("DequantizeLinear", n.OpType); return n; }

        var layers = c.Graph.Layers.Where(l => l is Conv2D or FullyConnected).ToList();
        var nodes = model.Graph.Node.Where(n => n.OpType is "Conv" or "Gemm").ToList();
        Assert.AreEqual(layers.Count, nodes.Count, "one Conv or Gemm per convolution / fully connected layer");
        int weights = 0;
        for (int k = 0; k < layers.Count; k++)
        {
            var l = layers[k]; var n = nodes[k];
            var q = (QuantizedConv)c.Int8.Layers[l];
            var input = c.Int8.Activations[l.Inputs[0]];
            var expected = new sbyte[q.Weights.Length];
            if (l is Conv2D conv)
            {
                Assert.AreEqual("Conv", n.OpType);
                int cout = conv.OutChannels, cpg = conv.InChannelsPerGroup, kh = conv.Window.KernelH, kw = conv.Window.KernelW;
                for (int o = 0; o < cout; o++)
                    for (int y = 0; y < kh; y++)
                        for (int x = 0; x < kw; x++)
                            for (int i = 0; i < cpg; i++)
                                expected[((o * cpg + i) * kh + y) * kw + x] = q.Weights[((o * kh + y) * kw + x) * cpg + i];
                CollectionAssert.AreEqual(new long[] { cout, cpg, kh, kw }, init[Dq(n.Input[1]).Input[0]].Dims.ToArray());
            }
            else
            {
                Assert.AreEqual("Gemm", n.OpType);
                var s = l.Inputs[0].Shape; int kIn = s.Elements;
                for (int o = 0; o < q.Bias.Length; o++)
                    for (int y = 0; y < s.H; y++)
                        for (int x = 0; x < s.W; x++)
                            for (int ch = 0; ch < s.C; ch++)
                                expected[o * kIn + (ch * s.H + y) * s.W + x] = q.Weights[o * kIn + (y * s.W + x) * s.C + ch];
            }
            var wDq = Dq(n.Input[1]);
            CollectionAssert.AreEqual(expected, Int8s(wDq.Input[0]), $"int8 weights of {l.Name}");
            CollectionAssert.AreEqual(q.WeightScales.Select(v => (float)v).ToArray(), Floats(wDq.Input[1]), $"weight scales of {l.Name}");
            CollectionAssert.AreEqual(new sbyte[q.Bias.Length], Int8s(wDq.Input[2]), "symmetric weights");
            Assert.AreEqual(0, wDq.Attribute.Single(a => a.Name == "axis").I);
            var bDq = Dq(n.Input[2]);
            CollectionAssert.AreEqual(q.Bias, Int32s(bDq.Input[0]), $"int32 bias of {l.Name}");
            CollectionAssert.AreEqual(q.WeightScales.Select(v => (float)(input.Scale * v)).ToArray(), Floats(bDq.Input[1]), $"bias scales of {l.Name}");
            // the data input is the layer input's int8 tensor with our parameters
            var xDq = Dq(n.Input[0]);
            Assert.AreEqual((float)input.Scale, Floats(xDq.Input[1]).Single());
            Assert.AreEqual((sbyte)input.ZeroPoint, Int8s(xDq.Input[2]).Single());
            weights += expected.Length;
        }
        // every QuantizeLinear uses the parameters of one of our tensors
        var ours = c.Int8.Activations.Values.Select(p => ((float)p.Scale, (sbyte)p.ZeroPoint)).ToHashSet();
        var qs = model.Graph.Node.Where(n => n.OpType == "QuantizeLinear").ToList();
        Assert.AreEqual(c.Graph.Tensors.Count(), qs.Count, "one QuantizeLinear per tensor");
        foreach (var qn in qs)
            Assert.IsTrue(ours.Contains((Floats(qn.Input[1]).Single(), Int8s(qn.Input[2]).Single())), $"parameters of {qn.Name}");
        Console.WriteLine($"{name}: {layers.Count} Conv/Gemm with {weights:N0} int8 weights identical to the compiler's; {qs.Count} QuantizeLinear; " +
                          $"ops: {string.Join(", ", model.Graph.Node.GroupBy(n => n.OpType).Select(g => $"{g.Key} x{g.Count()}"))}");
    }

    /// <summary>
    /// The compiler reads its own export back as a pre-quantized model and gets the same int8 model: byte-identical
    /// outputs of the int8 reference on every input (so every scale, zero point, weight and bias survived).
    /// </summary>
    [TestMethod]
    [DataRow("vww")]
    [DataRow("mnist")]
    [DataRow("operators")]
    [DataRow("pixel-softmax")]
    [DataRow("vector-input")]
    [DataRow("rank3")]
    [DataRow("rank1")]
    public void Export_ImportsBackAsTheSameInt8Model(string name)
    {
        var c = Load(name);
        var graph = OnnxImporter.Load(c.QdqPath);
        Assert.IsNotNull(graph.Quantization, "read as a pre-quantized model");
        Assert.AreEqual(0, Quantizer.TensorsNeedingCalibration(graph).Count, "every tensor carries its parameters");
        CollectionAssert.AreEqual(c.Graph.Layers.Select(l => l.Op).ToArray(), graph.Layers.Select(l => l.Op).ToArray());
        var again = Quantizer.Quantize(graph, null);
        foreach (var (input, output) in c.Reference)
            CollectionAssert.AreEqual(output, Int8Executor.Run(again, input));
    }

    [TestMethod]
    [DataRow("vww")]
    [DataRow("mnist")]
    [DataRow("operators")]
    public void OnnxRuntime_ConvertsTheExportToQOperatorForm(string name)
    {
        var c = Load(name);
        var output = Path.Combine(Work, $"{name}.qoperator.onnx");
        ConvertToQOperator(c.QdqPath, output);
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(output));
        var ops = model.Graph.Node.GroupBy(n => (n.Domain.Length > 0 ? n.Domain + ":" : "") + n.OpType)
            .Select(g => $"{g.Key} x{g.Count()}").ToList();
        Console.WriteLine($"{name} QOperator form ({output}): {string.Join(", ", ops)}");
        var convs = model.Graph.Node.Count(n => n.OpType == "QLinearConv");
        Assert.AreEqual(c.Graph.Layers.Count(l => l is Conv2D), convs, "every convolution became a QLinearConv");
        Assert.IsFalse(model.Graph.Node.Any(n => n.OpType == "Conv"), "no float convolution is left");

        // the converted model still computes our int8 results (int8 activations: ORT's s8s8 kernels do not saturate)
        var r = Compare(c with { QdqPath = output });
        Console.WriteLine($"  QOperator form in ORT vs C# int8: max {r.Max(x => x.Steps)} output step(s) [{string.Join(",", r.Select(x => x.Steps))}]");
        if (IsClassifier(name)) Assert.IsTrue(r.All(x => x.OrtClass == x.OurClass), "classes");
        Assert.IsTrue(r.Max(x => x.Steps) <= MaxOutputSteps, "output steps");

        // ONNX Runtime's QOperator model compiles back to the very same int8 model: identical output bytes. (In the
        // "operators" model ORT leaves some element-wise operators in float and drops the quantization between
        // two of them, so that tensor would need calibration: the real models are checked.)
        if (name == "operators") return;
        var graph = OnnxImporter.Load(output);
        Assert.AreEqual(0, Quantizer.TensorsNeedingCalibration(graph).Count, "every tensor carries its parameters");
        var again = Quantizer.Quantize(graph, null);
        foreach (var (input, expected) in c.Reference)
            CollectionAssert.AreEqual(expected, Int8Executor.Run(again, input));
    }

    /// <summary>A graph of one element-wise layer, quantized on random inputs.</summary>
    private static QuantizedModel OneFunction(string function, Func<float, float> apply)
    {
        var x = new Graph.Tensor("x", new TensorShape(2, 2, 3));
        var y = new Graph.Tensor("y", x.Shape);
        var graph = new ModelGraph(new[] { x }, y, new Layer[] { new UnaryElementwise("f", x, y, function, apply) }, new[] { "x" }, "y");
        return Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, QdqTestModels.Inputs(12, 4)));
    }

    [TestMethod]
    [DataRow("Tanh")] // no mapping
    [DataRow("LeakyRelu(alpha=0.2)")] // the name does not say what the layer computes
    [DataRow("Clip(0,1")]
    public void AFunctionWithoutAVerifiedOnnxOperator_IsMCU6001(string function)
    {
        var q = OneFunction(function, v => MathF.Tanh(v));
        var e = Assert.ThrowsExactly<Diagnostics.CompilerException>(() => QdqExporter.ToBytes(q, "model.onnx"));
        Assert.AreEqual(Diagnostics.ErrorCodes.ExportUnsupported, e.Diagnostic.Code);
        Assert.AreEqual("model.onnx", e.Diagnostic.File);
        StringAssert.Contains(e.Message, function);
    }

    [TestMethod]
    public void FunctionParameters_AreReadInAnyCulture()
    {
        // the importer formats parameters with the current culture: a decimal comma must not break the export
        var previous = System.Globalization.CultureInfo.CurrentCulture;
        try
        {
            System.Globalization.CultureInfo.CurrentCulture = System.Globalization.CultureInfo.GetCultureInfo("de-DE");
            float lo = -0.25f, hi = 1.5f;
            var q = OneFunction($"Clip({lo},{hi})", v => Math.Min(Math.Max(v, lo), hi));
            var model = ModelProto.Parser.ParseFrom(QdqExporter.ToBytes(q));
            var clip = model.Graph.Node.Single(n => n.OpType == "Clip");
            var init = model.Graph.Initializer.ToDictionary(t => t.Name);
            Assert.AreEqual(lo, BitConverter.ToSingle(init[clip.Input[1]].RawData.ToByteArray()));
            Assert.AreEqual(hi, BitConverter.ToSingle(init[clip.Input[2]].RawData.ToByteArray()));
        }
        finally { System.Globalization.CultureInfo.CurrentCulture = previous; }
    }
}
