using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using static MCUNetV2.Compiler.Tests.OnnxModelBuilder;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The kernels' requantization variants (mcu_conv_params.high_word): the high-word form, its pre-shift for shifts
/// below 32, and the 64-bit fallback, each forced by the weights of
/// a pointwise and a depthwise convolution and checked bit-exact against the C# int8 reference on the host (portable
/// C, ASan/UBSan) and under QEMU (the asm paths).
/// </summary>
[TestClass]
public sealed class RequantizationPathTests
{
    private static string Work => TestWork.Folder("mcunet-requant-");

    /// <summary>
    /// x (1 channel) -> 1x1 conv to 4 channels, two of them equal -> relu6 -> pointwise to 4 channels -> depthwise 3x3.
    /// The pointwise outputs are all tiny, so channel 0, which nearly cancels with weights near 1, gets a shift below 32,
    /// and channel 1, with weights of 1e-9 and a bias, a multiplier of a few units at shift 32. With
    /// <paramref name="cancel"/> every output is 0 or nearly so: channel 0's shift is then so small that only the 64-bit
    /// path is exact.
    /// </summary>
    private static string Model(bool cancel, string name)
    {
        var b = new OnnxModelBuilder(13).Input("x", 1, 1, 9, 11)
            .Floats("w0", new long[] { 4, 1, 1, 1 }, new[] { 1f, 1f, 0.3f, -0.2f })
            .Node("Conv", new[] { "x", "w0" }, "c0").Node("Clip", new[] { "c0", "lo", "hi" }, "r0")
            .Scalar("lo", 0f).Scalar("hi", 6f)
            .Floats("w1", new long[] { 4, 4, 1, 1 }, cancel
                ? new[] { 1f, -1f, 0f, 0f, 1e-9f, 1e-9f, 0f, 0f, -1e-9f, 0f, 1e-9f, 0f, 0f, 0f, 0f, 1e-9f }
                : new[] { 1f, -0.999f, 0.001f, 0f, 1e-9f, 1e-9f, 1e-9f, 1e-9f, 0.001f, 0.001f, 0.001f, 0.001f, -0.001f, 0.002f, 0f, 0f })
            .Floats("b1", new long[] { 4 }, cancel ? new[] { 0f, 0f, 0f, 0f } : new[] { 0f, 0.004f, 0.001f, -0.001f })
            .Node("Conv", new[] { "r0", "w1", "b1" }, "c1")
            .Floats("w2", new long[] { 4, 1, 3, 3 }, Enumerable.Range(0, 36).Select(i => i < 9 ? (i == 4 ? 1f : i % 2 == 0 ? -0.125f : -0.12f) : i < 18 ? 1e-7f : (float)Math.Sin(i)))
            .Floats("b2", new long[] { 4 }, new[] { 0f, 0.04f, 0.1f, 0f })
            .Node("Conv", new[] { "c1", "w2", "b2" }, "y", Ints("pads", 1, 1, 1, 1), Int("group", 4))
            .Output("y", 1, 4, 9, 11);
        return b.Save(Path.Combine(Work, name + ".onnx"));
    }

    [TestMethod]
    public void EveryRequantizationVariant_IsBitExactOnHostAndCortexM7()
    {
        var flags = new HashSet<int>();
        foreach (bool cancel in new[] { false, true })
        {
            var g = OnnxImporter.Load(Model(cancel, cancel ? "cancel" : "near"));
            var r = new Random(cancel ? 2 : 1);
            var floats = Enumerable.Range(0, 3).Select(_ => Enumerable.Range(0, g.Input.Shape.Elements).Select(_ => (float)(r.NextDouble() * 6 - 1)).ToArray()).ToList();
            var q = Quantizer.Quantize(g, CalibrationRanges.Observe(g, floats));
            var inputs = floats.Select(q.QuantizeInput).Append(Enumerable.Range(0, g.Input.Shape.Elements).Select(_ => (sbyte)r.Next(-128, 128)).ToArray()).ToList();
            var plans = new List<(string, ExecutionPlan)> { ("per-layer", PatchPlanner.PerLayer(g)) };
            foreach (var src in CortexM7Check.AssertBitExactOnHostAndCortexM7(q, plans, inputs, Path.Combine(Work, $"cancel-{cancel}"), $"cancel={cancel}"))
                foreach (Match m in Regex.Matches(src, @"static const mcu_conv_params m_l\d+ = \{[^}]*, (\d), (?:NULL|\(uint32_t \*\)\([^)]*\)) \};"))
                    flags.Add(int.Parse(m.Groups[1].Value));
            var shifts = g.Layers.Where(l => q.Layers[l] is QuantizedConv).SelectMany(l => ((QuantizedConv)q.Layers[l]).Requant.Select(x => x.Shift));
            Console.WriteLine($"cancel={cancel}: shifts {string.Join(" ", shifts)}");
        }
        Console.WriteLine("high_word values: " + string.Join(" ", flags.OrderBy(f => f)));
        Assert.IsTrue(flags.Contains(0), "the 64-bit requantization was not exercised");
        Assert.IsTrue(flags.Any(f => (f & 2) != 0), "the pre-shift (shift below 32) was not exercised");
        Assert.IsTrue(flags.Contains(1), "the plain high-word requantization was not exercised");
    }
}
