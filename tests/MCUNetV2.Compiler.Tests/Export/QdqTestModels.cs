using static MCUNetV2.Compiler.Tests.OnnxModelBuilder;

namespace MCUNetV2.Compiler.Tests;

/// <summary>Small float ONNX models that together use every layer type and element-wise function the QDQ exporter writes.</summary>
internal static class QdqTestModels
{
    public static string Write(string name, string path)
    {
        var r = new Random(name.Length * 7919 + name[0]);
        IEnumerable<float> W(int n, double scale) => Enumerable.Range(0, n).Select(_ => (float)((r.NextDouble() - 0.5) * scale));
        var b = name switch
        {
            // Conv, LeakyRelu, Sigmoid, Mul of two maps, HardSigmoid, Concat, AveragePool (pads, ceil_mode, count_include_pad),
            // stand-alone Clip, MaxPool, depthwise Conv + Relu6, Sub, HardSwish, Mul by a constant, PRelu (shared and per
            // channel), GlobalAveragePool, squeeze-and-excitation Mul by a per-channel vector, Flatten of a 4x4 map into Gemm,
            // Softmax over the classes
            "operators" => new OnnxModelBuilder(14).Input("x", 1, 3, 8, 8).Output("y", 1, 5)
                .Floats("w0", new long[] { 8, 3, 3, 3 }, W(216, 1.0)).Floats("b0", new long[] { 8 }, W(8, 0.2))
                .Floats("wd", new long[] { 16, 1, 3, 3 }, W(144, 1.0)).Floats("bd", new long[] { 16 }, W(16, 0.2))
                .Floats("w1", new long[] { 16, 16, 1, 1 }, W(256, 1.0)).Floats("b1", new long[] { 16 }, W(16, 0.2))
                .Floats("fc", new long[] { 5, 256 }, W(1280, 0.5)).Floats("fcb", new long[] { 5 }, W(5, 0.2))
                .Scalar("half", 0.5f).Scalar("lo", -0.5f).Scalar("hi", 0.5f).Scalar("zero", 0f).Scalar("six", 6f)
                .Floats("slope", new long[] { 1 }, new[] { 0.25f })
                .Floats("slopes", new long[] { 16, 1, 1 }, W(16, 1.0))
                .Node("Conv", new[] { "x", "w0", "b0" }, "c0", Ints("pads", 1, 1, 1, 1))
                .Node("LeakyRelu", new[] { "c0" }, "lr", Float("alpha", 0.1f))
                .Node("Sigmoid", new[] { "c0" }, "sg")
                .Node("Mul", new[] { "lr", "sg" }, "m")
                .Node("HardSigmoid", new[] { "m" }, "hsg", Float("alpha", 0.3f), Float("beta", 0.4f))
                .Node("Concat", new[] { "hsg", "lr" }, "cat", Int("axis", 1))
                .Node("AveragePool", new[] { "cat" }, "ap", Ints("kernel_shape", 3, 3), Ints("strides", 2, 2), Ints("pads", 1, 1, 1, 1),
                    Int("ceil_mode", 1), Int("count_include_pad", 1))
                .Node("Clip", new[] { "ap", "lo", "hi" }, "cl")
                .Node("MaxPool", new[] { "cl" }, "mp", Ints("kernel_shape", 2, 2), Ints("strides", 1, 1))
                .Node("Conv", new[] { "mp", "wd", "bd" }, "d", Int("group", 16), Ints("pads", 1, 1, 1, 1))
                .Node("Clip", new[] { "d", "zero", "six" }, "d6")
                .Node("Sub", new[] { "d6", "mp" }, "sb")
                .Node("HardSwish", new[] { "sb" }, "hw")
                .Node("Mul", new[] { "hw", "half" }, "mu")
                .Node("PRelu", new[] { "mu", "slope" }, "pr")
                .Node("PRelu", new[] { "pr", "slopes" }, "pc")
                .Node("GlobalAveragePool", new[] { "pc" }, "g")
                .Node("Conv", new[] { "g", "w1", "b1" }, "e")
                .Node("Sigmoid", new[] { "e" }, "es")
                .Node("Mul", new[] { "pc", "es" }, "se")
                .Node("Flatten", new[] { "se" }, "f")
                .Node("Gemm", new[] { "f", "fc", "fcb" }, "gm", Int("transB", 1))
                .Node("Softmax", new[] { "gm" }, "y", Int("axis", 1)),
            // a rank-4 output with H, W > 1: softmax over the channels of each pixel, output in NCHW order
            "pixel-softmax" => new OnnxModelBuilder(13).Input("x", 1, 4, 3, 3).Output("y", 1, 4, 3, 3)
                .Floats("w", new long[] { 4, 4, 1, 1 }, W(16, 2.0)).Floats("b", new long[] { 4 }, W(4, 0.5))
                .Node("Conv", new[] { "x", "w", "b" }, "c")
                .Node("Softmax", new[] { "c" }, "y", Int("axis", 1)),
            // a rank-2 input: two fully connected layers, the first with a fused Relu
            "vector-input" => new OnnxModelBuilder(13).Input("x", 1, 6).Output("y", 1, 3)
                .Floats("w0", new long[] { 4, 6 }, W(24, 1.0)).Floats("b0", new long[] { 4 }, W(4, 0.5))
                .Floats("w1", new long[] { 4, 3 }, W(12, 1.0))
                .Node("Gemm", new[] { "x", "w0", "b0" }, "h", Int("transB", 1))
                .Node("Relu", new[] { "h" }, "r")
                .Node("MatMul", new[] { "r", "w1" }, "y"),
            // a rank-3 input and output ([C, H, W], no batch): channels on axis 0
            "rank3" => new OnnxModelBuilder(13).Input("x", 3, 4, 4).Output("y", 6, 4, 4)
                .Floats("slopes", new long[] { 6, 1, 1 }, W(6, 1.0))
                .Node("Sigmoid", new[] { "x" }, "s")
                .Node("Concat", new[] { "s", "x" }, "cat", Int("axis", 0))
                .Node("PRelu", new[] { "cat", "slopes" }, "p")
                .Node("Softmax", new[] { "p" }, "y", Int("axis", 0)),
            // a rank-1 input and output ([K])
            "rank1" => new OnnxModelBuilder(13).Input("x", 6).Output("y", 6)
                .Node("HardSigmoid", new[] { "x" }, "h", Float("alpha", 0.5f))
                .Node("Softmax", new[] { "h" }, "y", Int("axis", 0)),
            _ => throw new ArgumentException(name),
        };
        return b.Save(path);
    }

    /// <summary>Random inputs in [-1, 1] (NHWC, as the executors take them).</summary>
    public static List<float[]> Inputs(int elements, int count)
    {
        var r = new Random(17);
        return Enumerable.Range(0, count).Select(_ => Enumerable.Range(0, elements).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray()).ToList();
    }
}
