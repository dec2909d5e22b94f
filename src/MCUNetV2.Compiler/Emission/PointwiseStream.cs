using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Emission;

/// <summary>
/// The one stream of 32-bit words a pointwise convolution's kernel walks (mcu_pointwise in mcunet_kernels.h; also
/// mcu_conv_im2col, a 1x1 convolution of its gathered windows, depth kh * kw * in_c): per
/// pair of output channels a, b: bias_a, bias_b (zero point folded), per 4 input channels a word of a's weights and
/// one of b's (little-endian bytes, in_c padded with zeros), mult_a, mult_b, k_a, k_b, and h_a | h_b &lt;&lt; 16; an odd
/// last channel alone: bias, its weight words, mult, k, h. When every channel allows the high-word requantization
/// (<see cref="HighWordRequantization.Allowed"/>) k = (2 out_zp + 1) &lt;&lt; (rs - 1), or 1 &lt;&lt; (rs - 1) when out_zp comes after the
/// shift (<see cref="HighWordRequantization.ZeroPointAfterShift"/>), and h = rs | e &lt;&lt; 8 (<see cref="HighWordRequantization.Shift"/>); otherwise k = 0 and h = shift.
/// </summary>
public static class PointwiseStream
{
    public static int[] Words(QuantizedConv q, int depth, int outC, bool highWord)
    {
        int chunks = (depth + 3) / 4;
        var bias = CEmitter.FoldZeroPoint(q);
        var words = new List<int>(outC * (chunks + 4) + 8);
        bool zeroPointAfter = HighWordRequantization.ZeroPointAfterShift(q);
        int K(int o) => !highWord ? 0 : (zeroPointAfter ? 1 : 2 * q.OutputZeroPoint + 1) << (HighWordRequantization.Shift(q.Requant[o].Shift).Rs - 1);
        int H(int o)
        {
            if (!highWord) return q.Requant[o].Shift;
            var (rs, e) = HighWordRequantization.Shift(q.Requant[o].Shift);
            return rs | e << 8;
        }
        int Weights(int o, int chunk)
        {
            int v = 0;
            for (int i = 0; i < 4; i++)
            {
                int c = chunk * 4 + i;
                if (c < depth) v |= (byte)q.Weights[o * depth + c] << (8 * i);
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
            words.Add((H(o) & 0xffff) | (H(o + 1) << 16));
        }
        if (o < outC)
        {
            words.Add(bias[o]);
            for (int c = 0; c < chunks; c++) words.Add(Weights(o, c));
            words.Add(q.Requant[o].Multiplier);
            words.Add(K(o));
            words.Add(H(o));
        }
        return words.ToArray();
    }
}
