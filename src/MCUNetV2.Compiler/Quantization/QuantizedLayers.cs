using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Quantization;

/// <summary>The integer parameters of one layer. The C kernels and <see cref="Int8Executor"/> both read exactly these.</summary>
public abstract record QuantizedLayer(Layer Layer);

/// <summary>
/// Convolution / fully connected: acc = Bias[o] + sum (x - InputZeroPoint) * W; y = clamp(Requant[o](acc) + OutputZeroPoint, ActMin, ActMax).
/// Weights in the IR layout ([Cout][kh][kw][Cin/groups], or [Out][In]); per-output-channel symmetric scales.
/// </summary>
public sealed record QuantizedConv(Layer Layer, sbyte[] Weights, int[] Bias, FixedPointMultiplier[] Requant,
    int InputZeroPoint, int OutputZeroPoint, int ActMin, int ActMax, double[] WeightScales) : QuantizedLayer(Layer);

/// <summary>
/// Residual add (or subtract, SignB = -1): a' = RequantA((a - ZeroPointA) &lt;&lt; LeftShift), b' likewise,
/// y = clamp(RequantOut(a' + SignB * b') + OutputZeroPoint).
/// </summary>
public sealed record QuantizedAdd(Layer Layer, int SignB, int ZeroPointA, int ZeroPointB, FixedPointMultiplier RequantA, FixedPointMultiplier RequantB,
    FixedPointMultiplier RequantOut, int OutputZeroPoint, int ActMin, int ActMax) : QuantizedLayer(Layer)
{
    public const int LeftShift = 20;
}

/// <summary>Average pool with identical input and output quantization: y = round-half-away(sum / divisor), divisor from <see cref="Window.PoolDivisor"/>.</summary>
/// <remarks>Padding that counts in the divisor (count_include_pad) stands for real zeros, i.e. ZeroPoint, in the sum.</remarks>
public sealed record QuantizedAveragePool(Layer Layer, int ZeroPoint) : QuantizedLayer(Layer);

/// <summary>
/// Softmax with output scale 1/256, zero point -128: e = ExpTable[max - x]; y = clamp((e * 256 + sum/2) / sum - 128).
/// ExpTable[d] = round(2^20 * exp(-d * inputScale)).
/// </summary>
public sealed record QuantizedSoftmax(Layer Layer, int[] ExpTable) : QuantizedLayer(Layer)
{
    public const int TableBits = 20;
}

/// <summary>Max pooling with identical input and output quantization (max commutes with the affine map).</summary>
public sealed record QuantizedMaxPool(Layer Layer) : QuantizedLayer(Layer);

/// <summary>A data move with identical input and output quantization: output element o is input element SourceIndices[o].</summary>
public sealed record QuantizedRelayout(Layer Layer, int[] SourceIndices) : QuantizedLayer(Layer);

/// <summary>Any element-wise function as a table: y = Table[x + 128].</summary>
public sealed record QuantizedLookup(Layer Layer, sbyte[] Table) : QuantizedLayer(Layer);

/// <summary>Element-wise product: y = clamp(Requant((a - ZeroPointA) * (b - ZeroPointB)) + OutputZeroPoint).</summary>
public sealed record QuantizedMul(Layer Layer, int ZeroPointA, int ZeroPointB, FixedPointMultiplier Requant, int OutputZeroPoint) : QuantizedLayer(Layer);

/// <summary>
/// PRelu with one slope per channel c. With d = x - InputZeroPoint:
/// <code>
/// y = clamp(d &gt;= 0 ? Positive.Apply(d) + OutputZeroPoint
///                   : Negative[c].Apply(NegativeSign[c] * d) + OutputZeroPoint, -128, 127)
/// </code>
/// Positive = FixedPointMultiplier.FromReal(scale_in / scale_out); Negative[c] = FromReal(|slope[c]| * scale_in / scale_out)
/// and NegativeSign[c] = -1 when slope[c] &lt; 0, else +1. The sign multiplies d before the requantization, so both
/// branches round the exact real product d * m to nearest with ties toward +infinity (<see cref="FixedPointMultiplier.Apply"/>).
/// A zero slope has Negative[c] = (0, 1) and gives OutputZeroPoint.
/// </summary>
public sealed record QuantizedChannelPRelu(Layer Layer, int InputZeroPoint, FixedPointMultiplier Positive, FixedPointMultiplier[] Negative,
    int[] NegativeSign, int OutputZeroPoint) : QuantizedLayer(Layer);

/// <summary>Channel concatenation: input i's values become clamp(Requant[i](x - ZeroPoints[i]) + OutputZeroPoint).</summary>
public sealed record QuantizedConcat(Layer Layer, int[] ZeroPoints, FixedPointMultiplier[] Requant, int OutputZeroPoint) : QuantizedLayer(Layer);
