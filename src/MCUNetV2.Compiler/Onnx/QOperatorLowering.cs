using Google.Protobuf;
using MCUNetV2.Compiler.Onnx.Proto;

namespace MCUNetV2.Compiler.Onnx;

/// <summary>
/// Rewrites a QOperator model into QDQ form before import: each QLinear* node becomes DequantizeLinear of its
/// inputs, the float operator, and QuantizeLinear of its output with the node's own scale and zero point
/// (a QLinearConv's int32 bias is dequantized with x_scale * w_scale). Operators that run unchanged on quantized data
/// (MaxPool, Reshape, Flatten, Transpose, ...) get the same treatment with their input's parameters. The importer then
/// only has to understand QuantizeLinear / DequantizeLinear.
/// </summary>
internal static class QOperatorLowering
{
    /// <summary>Operators of the QOperator format this pass understands, by domain.</summary>
    public static readonly string[] SupportedOperators =
    {
        "QLinearConv", "QLinearMatMul", "com.microsoft.QLinearAdd", "com.microsoft.QLinearMul", "com.microsoft.QLinearGlobalAveragePool",
        "com.microsoft.QLinearAveragePool", "com.microsoft.QLinearSigmoid", "com.microsoft.QLinearLeakyRelu",
        "com.microsoft.QLinearConcat", "com.microsoft.QLinearSoftmax", "com.microsoft.QGemm",
    };

    /// <summary>Operators whose result on quantized data is the quantized result with unchanged parameters.</summary>
    private static readonly HashSet<string> PassThrough = new()
    {
        "MaxPool", "GlobalMaxPool", "Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout",
    };

    /// <summary>Name of a quantized tensor -> the names of its scale and zero point.</summary>
    private sealed record Quantized(string Scale, string? ZeroPoint);

    public static bool IsQOperator(NodeProto n) =>
        n.Domain is "" or "ai.onnx" ? n.OpType is "QLinearConv" or "QLinearMatMul"
        : n.Domain == "com.microsoft" && SupportedOperators.Contains("com.microsoft." + n.OpType);

    /// <param name="constants">Initializers; computed bias scales are added to it.</param>
    /// <param name="fail">Builds the error for a node that cannot be lowered.</param>
    public static List<NodeProto> Lower(IEnumerable<NodeProto> nodes, Dictionary<string, ConstantTensor> constants, Func<NodeProto, string, Exception> fail)
    {
        var result = new List<NodeProto>();
        var quantized = new Dictionary<string, Quantized>();
        int serial = 0;
        string Fresh(string baseName, string what) => $"{baseName}::{what}{serial++}";

        string Dq(string x, string scale, string? zp, long? axis = null)
        {
            var node = new NodeProto { OpType = "DequantizeLinear", Name = Fresh(x, "dequantize") };
            node.Input.Add(x); node.Input.Add(scale); if (zp != null) node.Input.Add(zp);
            if (axis is { } a) node.Attribute.Add(new AttributeProto { Name = "axis", Type = AttributeProto.Types.AttributeType.Int, I = a });
            node.Output.Add(Fresh(x, "float"));
            result.Add(node);
            return node.Output[0];
        }
        void Q(string x, string output, string scale, string? zp)
        {
            var node = new NodeProto { OpType = "QuantizeLinear", Name = Fresh(output, "quantize") };
            node.Input.Add(x); node.Input.Add(scale); if (zp != null && zp.Length > 0) node.Input.Add(zp);
            node.Output.Add(output);
            result.Add(node);
            quantized[output] = new Quantized(scale, zp is { Length: > 0 } ? zp : null);
        }
        string Opt(NodeProto n, int i) => i < n.Input.Count && n.Input[i].Length > 0 ? n.Input[i] : null!;
        string Req(NodeProto n, int i) => i < n.Input.Count && n.Input[i].Length > 0 ? n.Input[i] : throw fail(n, $"lacks input {i}");
        NodeProto FloatNode(NodeProto n, string opType, IEnumerable<string> inputs, params string[] dropAttributes)
        {
            var f = new NodeProto { OpType = opType, Name = n.Name.Length > 0 ? n.Name : n.Output[0] };
            f.Input.AddRange(inputs);
            f.Attribute.AddRange(n.Attribute.Where(a => !dropAttributes.Contains(a.Name)));
            f.Output.Add(Fresh(n.Output[0], "real"));
            result.Add(f);
            return f;
        }
        /// <summary>Per-output-channel (or scalar) product of two scale constants, as a new constant.</summary>
        string ProductScale(NodeProto n, string a, string b)
        {
            if (!constants.TryGetValue(a, out var ca) || !constants.TryGetValue(b, out var cb))
                throw fail(n, "has scales that are not constants; the bias scale (input scale x weight scale) must be known at compile time");
            var va = ca.AsFloats(); var vb = cb.AsFloats();
            if (va.Length != 1) throw fail(n, $"has an input scale of {va.Length} values; one is expected");
            var name = Fresh(n.Output[0], "bias_scale");
            constants[name] = new ConstantTensor(name, vb.Length == 1 ? Array.Empty<long>() : new long[] { vb.Length },
                vb.Select(v => va[0] * v).ToArray(), null);
            return name;
        }

        foreach (var n in nodes)
        {
            if (n.Output.Count == 0 || n.Output[0].Length == 0 || !IsQOperator(n))
            {
                if (n.Input.Count > 0 && quantized.TryGetValue(n.Input[0], out var q) && PassThrough.Contains(n.OpType)
                    && n.Domain is "" or "ai.onnx" && n.Output.Count > 0 && n.Output[0].Length > 0)
                {
                    var f = FloatNode(n, n.OpType, new[] { Dq(n.Input[0], q.Scale, q.ZeroPoint) }.Concat(n.Input.Skip(1)));
                    Q(f.Output[0], n.Output[0], q.Scale, q.ZeroPoint);
                    continue;
                }
                if (n.OpType == "QuantizeLinear" && n.Domain is "" or "ai.onnx" && n.Input.Count > 1 && n.Output.Count > 0)
                    quantized[n.Output[0]] = new Quantized(n.Input[1], Opt(n, 2));
                result.Add(n);
                continue;
            }
            switch (n.OpType)
            {
                case "QLinearConv":
                {
                    var x = Dq(Req(n, 0), Req(n, 1), Opt(n, 2));
                    var w = Dq(Req(n, 3), Req(n, 4), Opt(n, 5), axis: 0);
                    var inputs = new List<string> { x, w };
                    if (Opt(n, 8) is { } bias) inputs.Add(Dq(bias, ProductScale(n, Req(n, 1), Req(n, 4)), null, axis: 0));
                    Q(FloatNode(n, "Conv", inputs).Output[0], n.Output[0], Req(n, 6), Opt(n, 7));
                    break;
                }
                case "QLinearMatMul":
                {
                    var a = Dq(Req(n, 0), Req(n, 1), Opt(n, 2));
                    var b = Dq(Req(n, 3), Req(n, 4), Opt(n, 5), axis: 1);
                    Q(FloatNode(n, "MatMul", new[] { a, b }).Output[0], n.Output[0], Req(n, 6), Opt(n, 7));
                    break;
                }
                case "QGemm":
                {
                    bool transB = n.Attribute.FirstOrDefault(at => at.Name == "transB")?.I == 1;
                    var a = Dq(Req(n, 0), Req(n, 1), Opt(n, 2));
                    var b = Dq(Req(n, 3), Req(n, 4), Opt(n, 5), axis: transB ? 0 : 1);
                    var inputs = new List<string> { a, b };
                    if (Opt(n, 6) is { } c) inputs.Add(Dq(c, ProductScale(n, Req(n, 1), Req(n, 4)), null, axis: 0));
                    var f = FloatNode(n, "Gemm", inputs);
                    if (Opt(n, 7) is { } yScale) Q(f.Output[0], n.Output[0], yScale, Opt(n, 8));
                    else f.Output[0] = n.Output[0]; // float output
                    break;
                }
                case "QLinearAdd": case "QLinearMul":
                {
                    var a = Dq(Req(n, 0), Req(n, 1), Opt(n, 2));
                    var b = Dq(Req(n, 3), Req(n, 4), Opt(n, 5));
                    Q(FloatNode(n, n.OpType == "QLinearAdd" ? "Add" : "Mul", new[] { a, b }).Output[0], n.Output[0], Req(n, 6), Opt(n, 7));
                    break;
                }
                case "QLinearGlobalAveragePool": case "QLinearAveragePool": case "QLinearSigmoid": case "QLinearLeakyRelu": case "QLinearSoftmax":
                {
                    if (n.Attribute.FirstOrDefault(at => at.Name == "channels_last")?.I == 1)
                        throw fail(n, "works on channels-last (NHWC) data; re-export the model with NCHW layout");
                    var x = Dq(Req(n, 0), Req(n, 1), Opt(n, 2));
                    var op = n.OpType["QLinear".Length..];
                    Q(FloatNode(n, op, new[] { x }, "channels_last", "opset").Output[0], n.Output[0], Req(n, 3), Opt(n, 4));
                    break;
                }
                case "QLinearConcat":
                {
                    // Y_scale, Y_zero_point, then (X, X_scale, X_zero_point) per input
                    if (n.Input.Count < 5 || (n.Input.Count - 2) % 3 != 0) throw fail(n, "has the wrong number of inputs");
                    var xs = new List<string>();
                    for (int i = 2; i < n.Input.Count; i += 3) xs.Add(Dq(Req(n, i), Req(n, i + 1), Opt(n, i + 2)));
                    Q(FloatNode(n, "Concat", xs).Output[0], n.Output[0], Req(n, 0), Opt(n, 1));
                    break;
                }
                default: throw fail(n, "is not supported");
            }
        }
        return result;
    }
}
