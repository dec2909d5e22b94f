using MCUNetV2.Compiler.Emission;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The convolution and Add multipliers the quantizer picks for the high-word kernels (FixedPointMultiplier.ForHighWord):
/// their shift is at most 32, they are as close to the real multiplier as the note says, and on the VWW sample every
/// convolution and Add can take the one-instruction high-word requantization (none falls back to 64 bits).
/// </summary>
[TestClass]
public sealed class HighWordMultiplierTests
{
    [TestMethod]
    public void ForHighWord_HasAShiftOfAtMost32_AndErrsAtMostTwoToTheMinus33()
    {
        var r = new Random(7);
        for (int i = 0; i < 20000; i++)
        {
            double m = Math.Pow(2, -45 + 47 * r.NextDouble()); // 2^-45 .. 4
            var f = FixedPointMultiplier.ForHighWord(m);
            Assert.IsTrue(f.Shift <= FixedPointMultiplier.HighWordShift, $"m = {m}: shift {f.Shift}");
            Assert.IsTrue(f.Multiplier >= 0, $"m = {m}: multiplier {f.Multiplier}");
            double error = Math.Abs(f.Real - m);
            // below 1/2 the multiplier is round(m 2^32); from 1/2 on the Q31 form keeps 31 significant bits
            double bound = m < 0.5 ? Math.Pow(2, -33) : m * Math.Pow(2, -30);
            Assert.IsTrue(error <= bound * (1 + 1e-9), $"m = {m}: {f} is off by {error}");
            // and the requantization rounds x m to the nearest integer up to that error
            int x = r.Next(-(1 << 24), 1 << 24);
            double exact = x * m;
            Assert.IsTrue(Math.Abs(f.Apply(x) - exact) <= 0.5 + Math.Abs(x) * bound + 1e-9, $"m = {m}, x = {x}: {f.Apply(x)} for {exact}");
        }
        Assert.AreEqual(new FixedPointMultiplier(0, 32), FixedPointMultiplier.ForHighWord(0));
        Assert.AreEqual(new FixedPointMultiplier(0, 32), FixedPointMultiplier.ForHighWord(1e-12));
    }

    [TestMethod]
    public void EveryVwwConvolutionAndAdd_TakesTheHighWordRequantization()
    {
        var g = OnnxImporter.Load(TestData.VwwModel);
        var inputs = TestData.VwwImages.Take(4).Select(i => TestData.VwwInput(i.Path, g.Input.Shape)).ToList();
        var q = Quantizer.Quantize(g, CalibrationRanges.Observe(g, inputs));
        int convs = 0, preShifted = 0, adds = 0;
        foreach (var layer in q.Layers.Values)
        {
            if (layer is QuantizedConv c)
            {
                int flag = HighWordRequantization.Flag(c);
                Assert.AreNotEqual(0, flag, $"{c.Layer.Name} falls back to the 64-bit requantization");
                convs++;
                if ((flag & 2) != 0) preShifted++;
            }
            else if (layer is QuantizedAdd a)
            {
                // mcu_add_prepare's condition for its asm: input shifts 29 to 32, output shift 32
                Assert.IsTrue(a.RequantA.Shift is >= 29 and <= 32 && a.RequantB.Shift is >= 29 and <= 32 && a.RequantOut.Shift == 32,
                    $"{a.Layer.Name}: shifts {a.RequantA.Shift}, {a.RequantB.Shift}, {a.RequantOut.Shift}");
                adds++;
            }
        }
        Console.WriteLine($"VWW: {convs} convolutions on the high word ({preShifted} with a pre-shift), {adds} Adds");
        Assert.IsTrue(convs > 50 && adds == 10, $"{convs} convolutions, {adds} Adds");
    }
}
