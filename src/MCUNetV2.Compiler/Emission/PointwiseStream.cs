using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Emission;

/// <summary>
/// The one stream of 32-bit words a pointwise convolution's kernel walks (mcu_pointwise in mcunet_kernels.h; also
/// mcu_conv_im2col, a 1x1 convolution of its gathered windows, depth kh * kw * in_c): per
/// pair of output channels a, b: bias_a, bias_b (zero point folded), per 4 input channels a word of a's weights and
/// one of b's (little-endian bytes, in_c padded with zeros; two words each with int16 weights, below), mult_a, mult_b
/// and h_a | h_b &lt;&lt; 16; an odd last channel alone: bias, its weight words, mult, h. When every channel allows the
/// high-word requantization (<see cref="HighWordRequantization.Allowed"/>) h = e &lt;&lt; 8 (<see
/// cref="HighWordRequantization.PreShift"/>; out_zp, the same for every channel, is the kernels' addend); otherwise
/// h = shift.
/// </summary>
public static class PointwiseStream
{
    /// <param name="wideWeights">
    /// Weights as int16 (PointwiseWeights="int16", MCU_POINTWISE_WEIGHTS16 in the kernels): per 4 input channels two
    /// words per channel, [w0 w2] and [w1 w3] as halfwords (what SXTB16 makes of the int8 word), so the kernel loads
    /// them instead of widening them; twice the weights' flash.
    /// </param>
    public static int[] Words(QuantizedConv q, int depth, int outC, bool highWord, bool wideWeights = false)
    {
        int chunks = (depth + 3) / 4;
        var bias = CEmitter.FoldZeroPoint(q);
        var words = new List<int>(outC * (chunks + 3) + 8);
        int H(int o) => highWord ? HighWordRequantization.PreShift(q.Requant[o].Shift) << 8 : q.Requant[o].Shift;
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
        int Weight(int o, int c) => c < depth ? q.Weights[o * depth + c] : 0;
        int Halves(int lo, int hi) => (ushort)(short)lo | (hi << 16);
        void AddWeights(int o, int chunk)
        {
            if (!wideWeights) { words.Add(Weights(o, chunk)); return; }
            int c = chunk * 4;
            words.Add(Halves(Weight(o, c), Weight(o, c + 2)));
            words.Add(Halves(Weight(o, c + 1), Weight(o, c + 3)));
        }
        int o = 0;
        for (; o + 2 <= outC; o += 2)
        {
            words.Add(bias[o]);
            words.Add(bias[o + 1]);
            for (int c = 0; c < chunks; c++)
            {
                AddWeights(o, c);
                AddWeights(o + 1, c);
            }
            words.Add(q.Requant[o].Multiplier);
            words.Add(q.Requant[o + 1].Multiplier);
            words.Add((H(o) & 0xffff) | (H(o + 1) << 16));
        }
        if (o < outC)
        {
            words.Add(bias[o]);
            for (int c = 0; c < chunks; c++) AddWeights(o, c);
            words.Add(q.Requant[o].Multiplier);
            words.Add(H(o));
        }
        return words.ToArray();
    }
}
