using Google.Protobuf;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Emission;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Onnx.Proto;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Toolchain;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// ONNX PRelu with one slope per channel (PyTorch nn.PReLU(num_parameters=C)): import, float vs ONNX Runtime, int8 vs
/// float within a bound from the scales, and the Cortex-M7 kernel bit-exact with the C# int8 reference under QEMU.
/// </summary>
[TestClass]
public sealed class ChannelPReluTests
{
    /// <summary>A positive slope, a negative one, zero and one above 1.</summary>
    private static readonly float[] Slopes = { 0.25f, -0.5f, 0f, 1.75f };

    private static string _work = null!;

    [ClassInitialize]
    public static void Setup(TestContext _) => _work = Directory.CreateTempSubdirectory("mcunet-prelu-").FullName;

    [ClassCleanup]
    public static void Cleanup() { try { Directory.Delete(_work, true); } catch (IOException) { } }

    // ------------------------------------------------------------------ models

    private static TensorProto Floats(string name, long[] dims, float[] values)
    {
        var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        t.Dims.AddRange(dims);
        t.FloatData.AddRange(values);
        return t;
    }

    private static ValueInfoProto Info(string name, long[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    private static NodeProto Node(string op, string name, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = name };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attributes);
        return n;
    }

    private static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    private static byte[] Model(long[] inputDims, long[] outputDims, IEnumerable<NodeProto> nodes, IEnumerable<TensorProto> initializers)
    {
        var g = new GraphProto { Name = "prelu_test" };
        g.Node.AddRange(nodes);
        g.Initializer.AddRange(initializers);
        g.Input.Add(Info("x", inputDims));
        g.Output.Add(Info("y", outputDims));
        var m = new ModelProto { IrVersion = 8, ProducerName = "ChannelPReluTests", Graph = g };
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 13 });
        return m.ToByteArray();
    }

    private static float[] Random(Random rng, int n, double lo, double hi) =>
        Enumerable.Range(0, n).Select(_ => (float)(lo + (hi - lo) * rng.NextDouble())).ToArray();

    /// <summary>x [1,4,6,6] -> Conv 3x3 pad 1 (4 -> 4) -> PRelu (slope of shape <paramref name="slopeDims"/>) -> GlobalAveragePool -> [1,4,1,1].</summary>
    private static byte[] ConvPReluPool(long[] slopeDims)
    {
        var rng = new Random(7);
        return Model(new long[] { 1, 4, 6, 6 }, new long[] { 1, 4, 1, 1 },
            new[]
            {
                Node("Conv", "conv", new[] { "x", "w", "b" }, "c", Ints("kernel_shape", 3, 3), Ints("pads", 1, 1, 1, 1)),
                Node("PRelu", "prelu", new[] { "c", "slope" }, "p"),
                Node("GlobalAveragePool", "pool", new[] { "p" }, "y"),
            },
            new[]
            {
                Floats("w", new long[] { 4, 4, 3, 3 }, Random(rng, 4 * 4 * 9, -0.4, 0.4)),
                Floats("b", new long[] { 4 }, Random(rng, 4, -0.3, 0.3)),
                Floats("slope", slopeDims, Slopes),
            });
    }

    /// <summary>A model that is one PRelu node.</summary>
    private static byte[] PReluOnly(long[] inputDims, long[] slopeDims, float[] slopes) =>
        Model(inputDims, inputDims, new[] { Node("PRelu", "prelu", new[] { "x", "slope" }, "y") }, new[] { Floats("slope", slopeDims, slopes) });

    private static string Save(byte[] model, string name)
    {
        var path = Path.Combine(_work, name + ".onnx");
        File.WriteAllBytes(path, model);
        return path;
    }

    /// <summary>ONNX layout (rank 4 [1,C,H,W], 3 [C,H,W], 2 [1,K], 1 [K]) to NHWC.</summary>
    private static float[] ToNhwc(float[] x, long[] dims) => dims.Length switch
    {
        4 => FloatExecutor.NchwToNhwc(x, new TensorShape((int)dims[2], (int)dims[3], (int)dims[1])),
        3 => FloatExecutor.NchwToNhwc(x, new TensorShape((int)dims[1], (int)dims[2], (int)dims[0])),
        _ => x,
    };

    private static float[] RunOnnxRuntime(byte[] model, float[] onnxLayout, long[] dims)
    {
        using var session = new InferenceSession(model);
        var tensor = new DenseTensor<float>(onnxLayout, dims.Select(d => (int)d).ToArray());
        using var results = session.Run(new[] { NamedOnnxValue.CreateFromTensor("x", tensor) });
        var r = results.First();
        return ToNhwc(r.AsEnumerable<float>().ToArray(), r.AsTensor<float>().Dimensions.ToArray().Select(d => (long)d).ToArray());
    }

    /// <summary>Inputs in ONNX layout, spread over negative and positive values.</summary>
    private static List<float[]> Inputs(long[] dims, int count, int seed)
    {
        var rng = new Random(seed);
        int n = (int)dims.Aggregate(1L, (a, b) => a * b);
        return Enumerable.Range(0, count).Select(_ => Random(rng, n, -2, 2)).ToList();
    }

    // ------------------------------------------------------------------ import

    [TestMethod]
    public void PRelu_PerChannelSlopes_BecomeOneChannelPReluLayer()
    {
        foreach (var dims in new[] { new long[] { 4, 1, 1 }, new long[] { 1, 4, 1, 1 } })
        {
            var g = OnnxImporter.Load(Save(ConvPReluPool(dims), "import-" + string.Join("x", dims)));
            CollectionAssert.AreEqual(new[] { "Conv2D", "ChannelPRelu", "GlobalAveragePool" }, g.Layers.Select(l => l.Op).ToArray(), string.Join("x", dims));
            CollectionAssert.AreEqual(Slopes, ((ChannelPRelu)g.Layers[1]).Slopes);
        }
        foreach (var (input, slope) in new[] { (new long[] { 1, 4 }, new long[] { 4 }), (new long[] { 1, 4 }, new long[] { 1, 4 }), (new long[] { 4, 6, 6 }, new long[] { 4, 1, 1 }) })
        {
            var g = OnnxImporter.Load(Save(PReluOnly(input, slope, Slopes), $"import-{string.Join("x", input)}-{string.Join("x", slope)}"));
            Assert.IsInstanceOfType<ChannelPRelu>(g.Layers.Single());
        }
    }

    [TestMethod]
    public void PRelu_SharedSlope_StaysALookupTable()
    {
        foreach (var (dims, slopes) in new[] { (new long[] { 1 }, new[] { 0.2f }), (new long[] { 4, 1, 1 }, new[] { 0.2f, 0.2f, 0.2f, 0.2f }) })
        {
            var g = OnnxImporter.Load(Save(PReluOnly(new long[] { 1, 4, 6, 6 }, dims, slopes), "shared-" + string.Join("x", dims)));
            var u = (UnaryElementwise)g.Layers.Single();
            Assert.AreEqual("PRelu(slope=0.2)", u.Function);
            var q = Quantizer.Quantize(g, CalibrationRanges.Observe(g, new[] { Enumerable.Range(0, 144).Select(i => i / 36f - 2).ToArray() }));
            Assert.IsInstanceOfType<QuantizedLookup>(q.Layers[u]);
        }
    }

    /// <summary>Slopes that vary along H, W or every element: those axes are moved to the channels around a ChannelPRelu.</summary>
    [TestMethod]
    public void PRelu_SlopesAlongOtherAxes_MoveToTheChannels_AndMatchOnnxRuntime()
    {
        var x = new long[] { 1, 4, 6, 6 };
        var six = new[] { 0.1f, -0.2f, 0.3f, 0f, 0.5f, 2f };
        foreach (var (dims, slopes) in new[]
                 {
                     (new long[] { 6 }, six),                                             // along W
                     (new long[] { 1, 1, 6 }, six),                                       // along W
                     (new long[] { 6, 1 }, six),                                          // along H
                     (new long[] { 4, 6, 6 }, Enumerable.Range(0, 144).Select(i => i / 100f - 0.5f).ToArray()), // one per element
                 })
        {
            var name = string.Join("x", dims);
            var model = PReluOnly(x, dims, slopes);
            var g = OnnxImporter.Load(Save(model, "axes-" + name));
            Assert.IsTrue(g.Layers.Any(l => l is ChannelPRelu) && g.Layers.Any(l => l is Relayout), name);
            foreach (var input in Inputs(x, 3, 17))
            {
                var expected = RunOnnxRuntime(model, input, x);
                var actual = FloatExecutor.Run(g, ToNhwc(input, x));
                for (int k = 0; k < expected.Length; k++)
                    Assert.AreEqual(expected[k], actual[k], 1e-5 * Math.Max(1, Math.Abs(expected[k])), $"{name}: value {k}");
            }
        }
        // 4 values along H, which has 6 rows: no broadcast
        var e = Assert.ThrowsExactly<CompilerException>(() => OnnxImporter.Load(Save(PReluOnly(x, new long[] { 4, 1 }, Slopes), "refused-4x1")));
        Assert.AreEqual(ErrorCodes.UnsupportedOperator, e.Diagnostic.Code, e.Diagnostic.Message);
        StringAssert.Contains(e.Diagnostic.Message, "does not broadcast");
    }

    // ------------------------------------------------------------------ float

    [TestMethod]
    public void PRelu_FloatExecutor_MatchesOnnxRuntime()
    {
        var cases = new List<(string Name, byte[] Model, long[] InputDims)>
        {
            ("conv-prelu-pool [4,1,1]", ConvPReluPool(new long[] { 4, 1, 1 }), new long[] { 1, 4, 6, 6 }),
            ("conv-prelu-pool [1,4,1,1]", ConvPReluPool(new long[] { 1, 4, 1, 1 }), new long[] { 1, 4, 6, 6 }),
            ("prelu [1,4,6,6] x [4,1,1]", PReluOnly(new long[] { 1, 4, 6, 6 }, new long[] { 4, 1, 1 }, Slopes), new long[] { 1, 4, 6, 6 }),
            ("prelu [4,6,6] x [4,1,1]", PReluOnly(new long[] { 4, 6, 6 }, new long[] { 4, 1, 1 }, Slopes), new long[] { 4, 6, 6 }),
            ("prelu [1,4] x [4]", PReluOnly(new long[] { 1, 4 }, new long[] { 4 }, Slopes), new long[] { 1, 4 }),
            ("prelu [1,4] x [1,4]", PReluOnly(new long[] { 1, 4 }, new long[] { 1, 4 }, Slopes), new long[] { 1, 4 }),
        };
        foreach (var (name, model, dims) in cases)
        {
            var g = OnnxImporter.Load(Save(model, "float-" + cases.FindIndex(c => c.Name == name)));
            Assert.IsTrue(g.Layers.Any(l => l is ChannelPRelu), name);
            foreach (var x in Inputs(dims, 5, 11))
            {
                var expected = RunOnnxRuntime(model, x, dims);
                var actual = FloatExecutor.Run(g, ToNhwc(x, dims));
                Assert.AreEqual(expected.Length, actual.Length, name);
                for (int k = 0; k < expected.Length; k++)
                    Assert.IsTrue(Math.Abs(expected[k] - actual[k]) <= 1e-5 * Math.Max(1, Math.Abs(expected[k])),
                        $"{name}: value {k} is {actual[k]}, ONNX Runtime gives {expected[k]}");
            }
        }
    }

    // ------------------------------------------------------------------ int8

    private static (ModelGraph Graph, QuantizedModel Int8, List<float[]> Inputs) Quantized(byte[] model, string name, long[] dims, int count)
    {
        var g = OnnxImporter.Load(Save(model, name));
        var inputs = Inputs(dims, count, 23).Select(x => ToNhwc(x, dims)).ToList();
        return (g, Quantizer.Quantize(g, CalibrationRanges.Observe(g, inputs)), inputs);
    }

    private static double MaxError(QuantizedModel q, float[] x) =>
        FloatExecutor.Run(q.Graph, x).Zip(q.DequantizeOutput(Int8Executor.Run(q, q.QuantizeInput(x))), (e, a) => Math.Abs(e - a)).Max();

    /// <summary>
    /// The one-layer bound of the conformance test: half an output step for the final rounding plus one for the
    /// requantization, plus half an input step times the Lipschitz constant max(1, |slope|) (per channel here).
    /// </summary>
    [TestMethod]
    public void PRelu_Int8_IsWithinTheScaleBoundOfTheFloatPath()
    {
        var dims = new long[] { 1, 4, 6, 6 };
        var (g, q, inputs) = Quantized(PReluOnly(dims, new long[] { 4, 1, 1 }, Slopes), "int8-one-layer", dims, 6);
        var l = (ChannelPRelu)g.Layers.Single();
        var qp = (QuantizedChannelPRelu)q.Layers[l];
        CollectionAssert.AreEqual(new[] { 1, -1, 1, 1 }, qp.NegativeSign);
        Assert.AreEqual(0, qp.Negative[2].Multiplier, "zero slope");
        double si = q.InputParams.Scale, so = q.OutputParams.Scale;
        double worst = 0, worstBound = 0;
        foreach (var x in inputs)
        {
            var expected = FloatExecutor.Run(g, x);
            var actual = q.DequantizeOutput(Int8Executor.Run(q, q.QuantizeInput(x)));
            for (int k = 0; k < expected.Length; k++)
            {
                int c = k % 4;
                double bound = 1.5 * so + Math.Max(1, Math.Abs(l.Slopes[c])) * si / 2, err = Math.Abs(expected[k] - actual[k]);
                Assert.IsTrue(err <= bound + 1e-6, $"value {k} (channel {c}, slope {l.Slopes[c]}): error {err}, bound {bound}");
                worst = Math.Max(worst, err);
                worstBound = Math.Max(worstBound, bound);
            }
        }
        Console.WriteLine($"one-layer PRelu: max int8 error {worst:G4}, bound {worstBound:G4} (input scale {si:G4}, output scale {so:G4})");
    }

    /// <summary>
    /// Conv -> PRelu -> GlobalAveragePool: the one-layer bounds chained. Conv: 1.5 output steps plus input and weight
    /// quantization (as in the conformance test); PRelu: 1.5 output steps plus max(1, |slope|) times the Conv error;
    /// pool: half a step plus the PRelu error (the mean of errors is at most their maximum).
    /// </summary>
    [TestMethod]
    public void ConvPReluPool_Int8_IsWithinTheChainedScaleBound()
    {
        var dims = new long[] { 1, 4, 6, 6 };
        var (g, q, inputs) = Quantized(ConvPReluPool(new long[] { 4, 1, 1 }), "int8-chain", dims, 8);
        var conv = (Conv2D)g.Layers[0]; var prelu = (ChannelPRelu)g.Layers[1];
        var qc = (QuantizedConv)q.Layers[conv];
        double si = q.InputParams.Scale, sc = q.Activations[conv.Output].Scale, sp = q.Activations[prelu.Output].Scale;
        double maxIn = inputs.Max(x => x.Max(Math.Abs));
        int per = conv.Weights.Length / conv.OutChannels;
        double worstBound = 0, worst = 0;
        foreach (var x in inputs)
        {
            var expected = FloatExecutor.Run(g, x);
            var actual = q.DequantizeOutput(Int8Executor.Run(q, q.QuantizeInput(x)));
            for (int c = 0; c < conv.OutChannels; c++)
            {
                double sumAbs = 0;
                for (int k = 0; k < per; k++) sumAbs += Math.Abs(conv.Weights[c * per + k]);
                double convError = 1.5 * sc + sumAbs * si / 2 + per * maxIn * qc.WeightScales[c] / 2 + si * qc.WeightScales[c] / 2;
                double preluError = 1.5 * sp + Math.Max(1, Math.Abs(prelu.Slopes[c])) * convError;
                double bound = 0.5 * sp + preluError, err = Math.Abs(expected[c] - actual[c]);
                Assert.IsTrue(err <= bound + 1e-6, $"channel {c}: error {err}, bound {bound}");
                worst = Math.Max(worst, err);
                worstBound = Math.Max(worstBound, bound);
            }
        }
        Console.WriteLine($"Conv-PRelu-GAP: max int8 error {worst:G4}, bound {worstBound:G4}");
    }

    // ------------------------------------------------------------------ Cortex-M7

    /// <summary>The C of Conv -> PRelu -> GlobalAveragePool, per layer and 2x2 patches (Conv and PRelu per patch), under QEMU.</summary>
    [TestMethod]
    public void ConvPReluPool_OnCortexM7_IsBitExactWithTheInt8Reference()
    {
        var dims = new long[] { 1, 4, 6, 6 };
        var (g, q, inputs) = Quantized(ConvPReluPool(new long[] { 4, 1, 1 }), "qemu", dims, 8);
        var plans = new[] { ("per-layer", PatchPlanner.PerLayer(g)), ("2x2", PatchPlanner.Build(g, 2, 2, 2)) };
        foreach (var source in CortexM7Check.AssertBitExact(q, plans, inputs.Select(q.QuantizeInput).ToList(), _work))
            StringAssert.Contains(source, "mcu_channel_prelu(");
    }

    /// <summary>The PRelu layer alone (its output is the model output), every int8 input value on each channel, under QEMU.</summary>
    [TestMethod]
    public void PRelu_OnCortexM7_IsBitExactOnEveryInt8Value()
    {
        var dims = new long[] { 1, 4, 8, 8 };
        var (g, q, _) = Quantized(PReluOnly(dims, new long[] { 4, 1, 1 }, Slopes), "qemu-all-values", dims, 4);
        // 64 pixels x 4 channels an input; pixel p of input s holds s * 64 + p - 128 on every channel: all 256 values on each channel.
        var int8Inputs = Enumerable.Range(0, 4).Select(s => Enumerable.Range(0, 64 * 4).Select(k => (sbyte)(s * 64 + k / 4 - 128)).ToArray()).ToList();
        var bytes = int8Inputs.SelectMany(x => x.Select(b => (byte)b)).ToArray();
        var dir = Path.Combine(_work, "qemu-all-values");
        var plan = PatchPlanner.PerLayer(g);
        var src = CEmitter.Emit(q, plan, "m", Path.Combine(dir, "src"));
        var tc = new ArmToolchain(new ToolchainOptions());
        tc.CompileObject(src.ModelSourcePath, Path.Combine(dir, "m.o"), new[] { Path.GetDirectoryName(src.HeaderPath)! });
        tc.Archive(new[] { Path.Combine(dir, "m.o") }, Path.Combine(dir, "libm.a"));
        var run = new QemuHarness(tc, "qemu-system-arm").Run(Path.Combine(dir, "libm.a"), src.HeaderPath, "m", bytes, int8Inputs.Count, Path.Combine(dir, "run"));
        for (int i = 0; i < int8Inputs.Count; i++)
            CollectionAssert.AreEqual(Int8Executor.Run(q, plan, int8Inputs[i]).Select(b => (byte)b).ToArray(), run.Output(i).ToArray(), $"input {i}");
    }
}
