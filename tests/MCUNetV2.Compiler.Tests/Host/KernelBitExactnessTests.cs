using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using static MCUNetV2.Compiler.Tests.OnnxModelBuilder;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// Every kernel on random shapes and random data, against the C# int8 reference: small random networks (the first
/// RGB-like conv with im2col, depthwise 3x3/5x5/7x7 at stride 1 and 2, in place or not, pointwise with odd channel
/// counts and pixel counts, the residual Add fused with its pointwise conv, average pooling, global pooling, fully
/// connected), per layer and patch-based, built for the host (portable C, ASan/UBSan) and for Cortex-M7 (DSP
/// intrinsics, QEMU). Channel counts that are not multiples of 4 exercise the kernels' tails.
/// </summary>
[TestClass]
public sealed class KernelBitExactnessTests
{
    private static string Work => TestWork.Folder("mcunet-kernels-random-");

    /// <summary>A random network: conv kxk -> relu -> [depthwise k s -> relu -> pointwise (+ residual)] x 2 -> avgpool -> global pool -> gemm.</summary>
    private static string RandomModel(int seed)
    {
        var r = new Random(seed);
        IEnumerable<float> W(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale));
        int h = r.Next(9, 22), w = r.Next(9, 22), cin = r.Next(1, 5), c = r.Next(3, 14);
        int k0 = new[] { 1, 3, 5 }[r.Next(3)], s0 = r.Next(1, 3);
        var b = new OnnxModelBuilder(13).Input("x", 1, cin, h, w);
        b.Floats("w0", new long[] { c, cin, k0, k0 }, W(c * cin * k0 * k0, 0.6)).Floats("b0", new long[] { c }, W(c, 0.2))
         .Node("Conv", new[] { "x", "w0", "b0" }, "c0", Ints("pads", k0 / 2, k0 / 2, k0 / 2, k0 / 2), Ints("strides", s0, s0)).Node("Relu", new[] { "c0" }, "t0");
        string t = "t0";
        for (int block = 0; block < 2; block++)
        {
            int k = new[] { 3, 5, 7 }[r.Next(3)], s = block == 0 ? r.Next(1, 3) : 1, cout = block == 1 ? c : r.Next(3, 14);
            int hidden = c * r.Next(1, 4);
            string id = $"b{block}";
            string e = t;
            if (hidden != c)
            {
                b.Floats(id + "ew", new long[] { hidden, c, 1, 1 }, W(hidden * c, 0.5)).Node("Conv", new[] { t, id + "ew" }, id + "e").Node("Relu", new[] { id + "e" }, id + "er");
                e = id + "er";
            }
            b.Floats(id + "dw", new long[] { hidden, 1, k, k }, W(hidden * k * k, 0.5)).Floats(id + "db", new long[] { hidden }, W(hidden, 0.2))
             .Node("Conv", new[] { e, id + "dw", id + "db" }, id + "d", Ints("pads", k / 2, k / 2, k / 2, k / 2), Ints("strides", s, s), Int("group", hidden))
             .Node("Relu", new[] { id + "d" }, id + "dr")
             .Floats(id + "pw", new long[] { cout, hidden, 1, 1 }, W(cout * hidden, 0.5)).Node("Conv", new[] { id + "dr", id + "pw" }, id + "p");
            t = id + "p";
            if (s == 1 && cout == c)
            {
                b.Node("Add", new[] { t, block == 0 ? "t0" : "b0out" }, id + "a");
                t = id + "a";
            }
            if (block == 0) { b.Node("Identity", new[] { t }, "b0out"); t = "b0out"; }
            c = cout;
        }
        b.Node("AveragePool", new[] { t }, "ap", Ints("kernel_shape", 2, 2), Ints("strides", 1, 1))
         .Node("GlobalAveragePool", new[] { "ap" }, "g").Node("Flatten", new[] { "g" }, "f")
         .Floats("fc", new long[] { 5, c }, W(5 * c, 0.5)).Node("Gemm", new[] { "f", "fc" }, "y", Int("transB", 1))
         .Output("y", 1, 5);
        return b.Save(Path.Combine(Work, $"random-{seed}.onnx"));
    }

    /// <summary>
    /// Random network <paramref name="seed"/> quantized on two random inputs; the inputs (those two and a random int8
    /// one) and the plans to check (per layer, and the best patch plan when there is one).
    /// </summary>
    private static (ModelGraph Graph, QuantizedModel Int8, List<sbyte[]> Inputs, List<(string, ExecutionPlan)> Plans) Network(int seed)
    {
        var g = OnnxImporter.Load(RandomModel(seed));
        var r = new Random(100 + seed);
        var floats = Enumerable.Range(0, 2).Select(_ => Enumerable.Range(0, g.Input.Shape.Elements).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray()).ToList();
        var q = Quantizer.Quantize(g, CalibrationRanges.Observe(g, floats));
        var inputs = floats.Select(q.QuantizeInput).Append(Enumerable.Range(0, g.Input.Shape.Elements).Select(_ => (sbyte)r.Next(-128, 128)).ToArray()).ToList();
        var plans = new List<(string, ExecutionPlan)> { ("per-layer", PatchPlanner.PerLayer(g)) };
        var patched = PatchSearch.Best(g, 10.0);
        if (patched.IsPatchBased) plans.Add(("patched", patched));
        return (g, q, inputs, plans);
    }

    /// <summary>
    /// The same networks built at -Os, -O3 and -O0 (the optimisation levels a project may pick): GCC allocates the
    /// asm blocks' registers differently at each, and an operand constraint that holds at -O2 by luck need not.
    /// </summary>
    [TestMethod]
    [DataRow("-Os")]
    [DataRow("-O3")]
    [DataRow("-O0")]
    public void RandomNetworks_AtOtherOptimisationLevels_AreBitExactOnCortexM7(string flags)
    {
        for (int seed = 1; seed <= 4; seed++)
        {
            var (_, q, inputs, plans) = Network(seed);
            CortexM7Check.AssertBitExact(q, plans, inputs, Path.Combine(Work, $"{flags.TrimStart('-')}-seed-{seed}"), flags);
        }
    }

    /// <summary>The networks with the pointwise and im2col weights stored as int16 (PointwiseWeights="int16").</summary>
    [TestMethod]
    public void RandomNetworks_WithInt16PointwiseWeights_AreBitExactOnHostAndCortexM7()
    {
        for (int seed = 1; seed <= 4; seed++)
        {
            var (_, q, inputs, plans) = Network(seed);
            var sources = CortexM7Check.AssertBitExactOnHostAndCortexM7(q, plans, inputs, Path.Combine(Work, $"int16-seed-{seed}"), $"int16 seed {seed}", wideWeights: true);
            StringAssert.Contains(sources[0], "#define MCU_POINTWISE_WEIGHTS16 1");
        }
    }

    /// <summary>
    /// Networks whose first conv is 3x3 over 3 channels (an RGB input: the windows inside the image go straight to their
    /// widened words, mcu_rgb3x3_expand): the seeds whose first draws give cin 3 and k0 3, on host and QEMU.
    /// </summary>
    [TestMethod]
    public void RandomNetworks_WithAnRgb3x3FirstConv_AreBitExactOnHostAndCortexM7()
    {
        static bool Rgb3x3(int seed)
        {
            var r = new Random(seed); // RandomModel's first draws: h, w, cin, c, k0
            r.Next(9, 22);
            r.Next(9, 22);
            int cin = r.Next(1, 5);
            r.Next(3, 14);
            return cin == 3 && new[] { 1, 3, 5 }[r.Next(3)] == 3;
        }
        var seeds = Enumerable.Range(100, 400).Where(Rgb3x3).Take(2).ToList();
        Assert.AreEqual(2, seeds.Count, "seeds with an RGB 3x3 first conv");
        foreach (int seed in seeds)
        {
            var (g, q, inputs, plans) = Network(seed);
            Assert.IsTrue(g.Layers[0] is Conv2D { InChannels: 3, Window.KernelH: 3, Window.KernelW: 3 }, $"seed {seed}: {g.Layers[0]}");
            var sources = CortexM7Check.AssertBitExactOnHostAndCortexM7(q, plans, inputs, Path.Combine(Work, $"rgb-seed-{seed}"), $"rgb seed {seed}");
            StringAssert.Contains(sources[0], "mcu_conv_im2col(");
        }
    }

    [TestMethod]
    public void RandomNetworks_OnHostAndCortexM7_AreBitExactWithTheInt8Reference()
    {
        var kernels = new HashSet<string>();
        for (int seed = 1; seed <= 8; seed++)
        {
            var (g, q, inputs, plans) = Network(seed);
            var sources = CortexM7Check.AssertBitExactOnHostAndCortexM7(q, plans, inputs, Path.Combine(Work, $"seed-{seed}"), $"seed {seed}");
            foreach (var src in sources)
            {
                foreach (var kernel in new[] { "mcu_conv_im2col(", "mcu_conv(", "mcu_depthwise(", "mcu_depthwise_inplace(", "mcu_depthwise3x3_inplace(", "mcu_depthwise3x3_compact_inplace(", "mcu_pointwise(", "mcu_pointwise_add(", "mcu_add(", "mcu_average_pool(", "mcu_fully_connected(" })
                    if (src.Contains(kernel)) kernels.Add(kernel);
                // the ring of three rows and the tall ring of the ring kernels (their last argument)
                foreach (Match m in Regex.Matches(src, @"mcu_depthwise3x3_(?:compact_)?inplace\(&\w+, [^;]*, (\d+)\);"))
                    kernels.Add(m.Groups[1].Value == "3" ? "ring of 3 rows" : "tall ring");
            }
            Console.WriteLine($"seed {seed}: {g.Layers.Count} layers, input {g.Input.Shape}; {string.Join(", ", plans.Select(p => p.Item2.Describe()))}");
        }
        Console.WriteLine("kernels exercised: " + string.Join(" ", kernels.OrderBy(k => k)));
        // (the compact rows' kernel is held to the portable one on random shapes by DepthwiseRingKernelTests, and runs in
        // the VWW plans)
        foreach (var k in new[] { "mcu_depthwise_inplace(", "mcu_depthwise3x3_inplace(", "ring of 3 rows", "tall ring", "mcu_pointwise(", "mcu_pointwise_add(", "mcu_average_pool(", "mcu_fully_connected(" })
            Assert.IsTrue(kernels.Contains(k), $"{k} was not exercised");
    }
}
