namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// MobileNetV2 (Sandler et al. 2018) as an ONNX model with random weights, for memory tests: 3x3 stem conv (stride
/// 2) + ReLU6, the 17 inverted-residual blocks (expansion t, channels c, repeats n, first stride s) (1,16,1,1),
/// (6,24,2,2), (6,32,3,2), (6,64,4,2), (6,96,3,1), (6,160,3,2), (6,320,1,1), a 1x1 conv to 1280 + ReLU6, global average
/// pooling and a 1000-way classifier. Channels are the width multiple rounded to 8 (torchvision's _make_divisible).
/// Block numbers in the tests count from 1 (block 1 is the t=1 block).
/// </summary>
internal static class MobileNetV2Model
{
    private static readonly (int T, int C, int N, int S)[] Settings =
        { (1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1) };

    public static int Divisible(double v, int divisor = 8)
    {
        int n = Math.Max(divisor, (int)(v + divisor / 2.0) / divisor * divisor);
        return n < 0.9 * v ? n + divisor : n;
    }

    /// <summary>Writes the model to <paramref name="path"/> (if not there yet) and returns the path.</summary>
    /// <param name="blocks">Only the first this many inverted-residual blocks, then pooling and the classifier (for small test models); null = all 17.</param>
    public static string Save(string path, double width, int resolution, int seed = 1, int? blocks = null)
    {
        if (File.Exists(path)) return path;
        var r = new Random(seed);
        var b = new OnnxModelBuilder(13).Input("x", 1, 3, resolution, resolution);
        int id = 0;
        string Conv(string x, int cin, int cout, int k, int stride, int groups, bool relu6)
        {
            string name = $"c{id++}";
            int fanIn = cin / groups * k * k;
            double scale = Math.Sqrt(3.0 / fanIn); // keeps activations of order 1 through the random network
            b.Floats(name + "_w", new long[] { cout, cin / groups, k, k }, Enumerable.Range(0, cout * fanIn).Select(_ => (float)((r.NextDouble() * 2 - 1) * scale)));
            b.Floats(name + "_b", new long[] { cout }, Enumerable.Range(0, cout).Select(_ => (float)(r.NextDouble() * 0.2 - 0.1)));
            b.Node("Conv", new[] { x, name + "_w", name + "_b" }, name,
                OnnxModelBuilder.Ints("kernel_shape", k, k), OnnxModelBuilder.Ints("strides", stride, stride),
                OnnxModelBuilder.Ints("pads", k / 2, k / 2, k / 2, k / 2), OnnxModelBuilder.Int("group", groups));
            if (!relu6) return name;
            b.Node("Clip", new[] { name, "zero", "six" }, name + "_relu6");
            return name + "_relu6";
        }
        b.Scalar("zero", 0).Scalar("six", 6);
        int channels = Divisible(32 * width);
        string t = Conv("x", 3, channels, 3, 2, 1, relu6: true);
        int done = 0;
        foreach (var (expand, c, n, s) in Settings)
        {
            int cout = Divisible(c * width);
            for (int i = 0; i < n && (blocks == null || done < blocks); i++, done++)
            {
                int stride = i == 0 ? s : 1, hidden = channels * expand;
                string h = expand == 1 ? t : Conv(t, channels, hidden, 1, 1, 1, relu6: true);
                h = Conv(h, hidden, hidden, 3, stride, hidden, relu6: true);
                string y = Conv(h, hidden, cout, 1, 1, 1, relu6: false);
                if (stride == 1 && channels == cout)
                {
                    b.Node("Add", new[] { t, y }, $"add{id}");
                    y = $"add{id}";
                }
                t = y;
                channels = cout;
            }
        }
        // the 1x1 conv to 1280 channels (left out of a truncated model, where it would dwarf the blocks it follows)
        int last = channels;
        if (blocks == null)
        {
            last = width > 1 ? Divisible(1280 * width) : 1280;
            t = Conv(t, channels, last, 1, 1, 1, relu6: true);
        }
        b.Node("GlobalAveragePool", new[] { t }, "pool").Node("Flatten", new[] { "pool" }, "features");
        b.Floats("fc_w", new long[] { 1000, last }, Enumerable.Range(0, 1000 * last).Select(_ => (float)((r.NextDouble() * 2 - 1) * Math.Sqrt(3.0 / last))));
        b.Floats("fc_b", new long[] { 1000 }, new float[1000]);
        b.Node("Gemm", new[] { "features", "fc_w", "fc_b" }, "y", OnnxModelBuilder.Int("transB", 1));
        b.Output("y", 1, 1000);
        return b.Save(path);
    }
}
