using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Emission;

/// <summary>
/// The one stream of 32-bit words a pointwise convolution's kernel walks (mcu_pointwise in mcunet_kernels.h): per
/// pair of output channels a, b: bias_a, bias_b (zero point folded), per 4 input channels a word of a's weights and
/// one of b's (little-endian bytes, in_c padded with zeros), mult_a, mult_b, k_a, k_b, and s_a | s_b &lt;&lt; 16; an odd
/// last channel alone: bias, its weight words, mult, k, s. k = (2 out_zp + 1) &lt;&lt; (s - 33) when every shift allows
/// the high-word requantization (<see cref="HighWord"/>), else 0.
/// </summary>
public static class PointwiseStream
{
    /// <summary>Every shift lies in [33, 54]: requantization from the high word of acc * mult (mcu_requant_high).</summary>
    public static bool HighWord(QuantizedConv q) => q.Requant.All(r => r.Shift is >= 33 and <= 54);

    public static int[] Words(QuantizedConv q, int inC, int outC, bool highWord)
    {
        int chunks = (inC + 3) / 4;
        var bias = CEmitter.FoldZeroPoint(q);
        var words = new List<int>(outC * (chunks + 4) + 8);
        int K(int o) => highWord ? (2 * q.OutputZeroPoint + 1) << (q.Requant[o].Shift - 33) : 0;
        int Weights(int o, int chunk)
        {
            int v = 0;
            for (int i = 0; i < 4; i++)
            {
                int c = chunk * 4 + i;
                if (c < inC) v |= (byte)q.Weights[o * inC + c] << (8 * i);
            }
            return v;
        }
        int o = 0;
        for (; o + 2 <= outC; o += 2)
        {
            words.Add(bias[o]);
            words.Add(bias[o + 1]);
            for (int c = 0; c < chunks; c++)
            {
                words.Add(Weights(o, c));
                words.Add(Weights(o + 1, c));
            }
            words.Add(q.Requant[o].Multiplier);
            words.Add(q.Requant[o + 1].Multiplier);
            words.Add(K(o));
            words.Add(K(o + 1));
            words.Add((q.Requant[o].Shift & 0xffff) | (q.Requant[o + 1].Shift << 16));
        }
        if (o < outC)
        {
            words.Add(bias[o]);
            for (int c = 0; c < chunks; c++) words.Add(Weights(o, c));
            words.Add(q.Requant[o].Multiplier);
            words.Add(K(o));
            words.Add(q.Requant[o].Shift);
        }
        return words.ToArray();
    }
}
