using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx.Proto;
using DataType = MCUNetV2.Compiler.Onnx.Proto.TensorProto.Types.DataType;

namespace MCUNetV2.Compiler.Onnx;

public static partial class OnnxImporter
{
    /// <summary>
    /// Pre-quantized models. QDQ: QuantizeLinear on an activation records its scale and zero point for the tensor
    /// (the pair QuantizeLinear -> DequantizeLinear is otherwise the identity); DequantizeLinear of an integer initializer
    /// becomes a float constant whose per-channel scales are kept for the layer that reads it, so the quantizer
    /// reproduces the model's integers. QOperator models arrive here already lowered to QDQ (<see cref="QOperatorLowering"/>).
    /// uint8 is carried as int8: q - 128 with zero point - 128, the same real values.
    /// </summary>
    private sealed partial class Builder
    {
        /// <summary>Operators whose output only relabels their first input (same values, possibly another layout name).</summary>
        private static readonly HashSet<string> RelabelOps = new()
        {
            "Identity", "Dropout", "QuantizeLinear", "DequantizeLinear", "Transpose", "Squeeze", "Unsqueeze", "Flatten", "Reshape",
        };

        /// <summary>A QuantizeLinear output: the activation it quantizes and the parameters (int8 zero point).</summary>
        private sealed record QuantizedName(Value Value, double Scale, int ZeroPoint);

        /// <summary>Scales of a dequantized integer initializer with zero point 0 (symmetric): one, or one per index of Axis.</summary>
        private sealed record WeightOrigin(double[] Scales, int Axis);

        private readonly Dictionary<string, QuantizedName> _quantized = new();
        private readonly Dictionary<string, WeightOrigin> _weightOrigins = new();
        private readonly ImportedQuantization _imported = new();

        private string Root(string name) => _aliasOf.TryGetValue(name, out var r) ? r : name;

        /// <summary>
        /// Counts the readers of every activation before import. A relabelling node (Identity, Q/DQ, Reshape, ...) is not a
        /// reader: its readers count for the name it relabels, so a fusion never misses a reader behind an alias.
        /// Constants and shape arithmetic are not readers either.
        /// </summary>
        private void CountConsumers(IReadOnlyList<NodeProto> nodes)
        {
            var statics = new HashSet<string>(_constants.Keys);
            void Count(string name) { var r = Root(name); _consumers[r] = _consumers.GetValueOrDefault(r) + 1; }
            foreach (var n in nodes)
            {
                var inputs = n.Input.Where(i => i.Length > 0).ToList();
                if (n.OpType is "Constant" or "Shape" || (inputs.Count > 0 && inputs.All(statics.Contains)))
                {
                    statics.UnionWith(n.Output);
                    continue;
                }
                bool relabel = RelabelOps.Contains(n.OpType) && n.Input.Count > 0 && n.Input[0].Length > 0 && !statics.Contains(n.Input[0])
                    && n.Output.Count > 0 && n.Output[0].Length > 0;
                if (relabel) _aliasOf[n.Output[0]] = Root(n.Input[0]);
                foreach (var i in relabel ? inputs.Skip(1) : inputs)
                    if (!statics.Contains(i)) Count(i);
            }
            _graphOutputRoots = _graphOutputs.Select(Root).ToHashSet();
        }

        /// <summary>Scale(s), zero point(s) and element type of a QuantizeLinear / DequantizeLinear node.</summary>
        private (float[] Scales, long[] ZeroPoints, DataType Type) QuantizationOf(NodeProto n, DataType inputType)
        {
            var scales = Const(n, 1)!.AsFloats();
            if (scales.Length == 0 || scales.Any(s => !float.IsFinite(s) || s <= 0))
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has a scale that is not a positive finite number");
            var zp = Const(n, 2, required: false);
            var type = n.OpType == "DequantizeLinear" ? inputType
                : zp?.ElementType is { } t && t != DataType.Undefined ? t
                : (DataType)AttrInt(n, "output_dtype", (long)DataType.Uint8) is var o && o != DataType.Undefined ? o : DataType.Uint8;
            if (AttrInt(n, "block_size", 0) != 0)
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} uses blocked quantization, which is not supported (per-tensor and per-axis are)");
            var zeroPoints = zp?.AsInts() ?? new long[] { 0 };
            if (zeroPoints.Length != 1 && zeroPoints.Length != scales.Length)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has {scales.Length} scales but {zeroPoints.Length} zero points");
            return (scales, zeroPoints, type);
        }

        /// <summary>The int8 zero point that stands for <paramref name="zeroPoint"/> of this type (uint8 shifts by 128).</summary>
        private int Int8ZeroPoint(NodeProto n, DataType type, long zeroPoint) => type switch
        {
            DataType.Int8 => (int)zeroPoint,
            DataType.Uint8 => (int)zeroPoint - 128,
            _ => throw Error(ErrorCodes.UnsupportedOperator,
                $"{NodeLabel(n)} quantizes to {type}; 8-bit activations (int8 or uint8) are supported"),
        };

        private void ImportQuantizeLinear(NodeProto n)
        {
            if (n.Input.Count < 2) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} needs an input and a scale");
            var (scales, zeroPoints, type) = QuantizationOf(n, DataType.Undefined);
            if (_constants.TryGetValue(n.Input[0], out var c))
            {
                // A float weight quantized in the graph (fake-quantization exports): the integers become the constant.
                var (lo, hi) = type switch
                {
                    DataType.Int8 => (-128L, 127L), DataType.Uint8 => (0L, 255L), DataType.Int32 => (int.MinValue, (long)int.MaxValue),
                    _ => throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} quantizes a constant to {type}; int8, uint8 and int32 are supported"),
                };
                var x = c.AsFloats();
                var axisIndex = AxisIndexer(n, c.Dims, scales.Length);
                var q = new long[x.Length];
                for (int i = 0; i < x.Length; i++)
                {
                    int a = axisIndex(i);
                    q[i] = Math.Clamp((long)Math.Round(x[i] / scales[a], MidpointRounding.ToEven) + zeroPoints[zeroPoints.Length == 1 ? 0 : a], lo, hi);
                }
                _constants[n.Output[0]] = new ConstantTensor(n.Output[0], c.Dims, null, q) { ElementType = type };
                return;
            }
            var v = Act(n, 0);
            if (scales.Length != 1)
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} quantizes an activation per axis; activations are quantized per tensor");
            int zp = Int8ZeroPoint(n, type, zeroPoints[0]);
            _quantized[n.Output[0]] = new QuantizedName(v, scales[0], zp);
            // A padded tensor (Pad waiting to fold into the next Conv or AveragePool) is its source plus zeros: the
            // source keeps its own parameters if it has them.
            if (v.PendingPad != default) _imported.Activations.TryAdd(v.Tensor, (scales[0], zp));
            // Otherwise the last quantization of a tensor wins: a fused Relu/Clip changed its values after an earlier one.
            else _imported.Activations[v.Tensor] = (scales[0], zp);
        }

        private void ImportDequantizeLinear(NodeProto n)
        {
            if (n.Input.Count < 2) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} needs an input and a scale");
            if (_quantized.TryGetValue(n.Input[0], out var q))
            {
                Define(n, q.Value);
                return;
            }
            if (!_constants.TryGetValue(n.Input[0], out var c))
            {
                Act(n, 0); // the coded error for a missing or non-constant input
                throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} dequantizes '{n.Input[0]}', which no QuantizeLinear produced; integer graph inputs are not supported (give the model a float input)");
            }
            var type = c.ElementType == DataType.Undefined ? DataType.Int32 : c.ElementType;
            var (scales, zeroPoints, _) = QuantizationOf(n, type);
            var axisIndex = AxisIndexer(n, c.Dims, scales.Length);
            var ints = c.AsInts();
            var real = new float[ints.Length];
            for (int i = 0; i < ints.Length; i++)
            {
                int a = axisIndex(i);
                real[i] = (float)(ints[i] - zeroPoints[zeroPoints.Length == 1 ? 0 : a]) * scales[a];
            }
            _constants[n.Output[0]] = new ConstantTensor(n.Output[0], c.Dims, real, null);
            if (type is not (DataType.Int8 or DataType.Uint8)) return; // int32 biases are re-derived from the scales
            long shift = type == DataType.Uint8 ? 128 : 0;
            if (zeroPoints.All(z => z - shift == 0))
                _weightOrigins[n.Output[0]] = new WeightOrigin(scales.Select(s => (double)s).ToArray(), Axis(n, c.Dims.Length));
            else
                _imported.Notes.Add($"'{n.Input[0]}' is quantized with a zero point other than 0 ({NodeLabel(n)}); the compiler's kernels take symmetric weights, so these are re-quantized symmetrically per output channel");
        }

        private int Axis(NodeProto n, int rank)
        {
            long axis = AttrInt(n, "axis", 1);
            return (int)(axis < 0 ? axis + rank : axis);
        }

        /// <summary>Maps a flat element index to the index of its scale (0 for per-tensor).</summary>
        private Func<int, int> AxisIndexer(NodeProto n, long[] dims, int scaleCount)
        {
            if (scaleCount == 1) return _ => 0;
            int axis = Axis(n, dims.Length);
            if (axis < 0 || axis >= dims.Length || dims[axis] != scaleCount)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has {scaleCount} scales, which do not match axis {axis} of a {string.Join("x", dims)} tensor");
            long inner = 1;
            for (int d = axis + 1; d < dims.Length; d++) inner *= dims[d];
            return i => (int)(i / inner % scaleCount);
        }

        /// <summary>
        /// Keeps the model's weight scales for <paramref name="layer"/> when its weights came from a symmetric
        /// DequantizeLinear, per tensor or per output channel.
        /// </summary>
        private void KeepWeightScales(NodeProto n, Layer layer, string weightName, int outputAxis, int outputs)
        {
            if (!_weightOrigins.TryGetValue(weightName, out var o)) return;
            if (o.Scales.Length == 1) _imported.WeightScales[layer] = Enumerable.Repeat(o.Scales[0], outputs).ToArray();
            else if (o.Axis == outputAxis && o.Scales.Length == outputs) _imported.WeightScales[layer] = o.Scales;
            else _imported.Notes.Add($"the weights of {NodeLabel(n)} are quantized along axis {o.Axis}, not per output channel; they are re-quantized per output channel");
        }
    }
}
