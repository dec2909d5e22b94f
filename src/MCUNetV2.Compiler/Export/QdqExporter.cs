using System.Globalization;
using System.Reflection;
using Google.Protobuf;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx.Proto;
using MCUNetV2.Compiler.Quantization;
using DataType = MCUNetV2.Compiler.Onnx.Proto.TensorProto.Types.DataType;

namespace MCUNetV2.Compiler.Export;

/// <summary>
/// Writes the int8 model the compiler built as a standard QDQ ONNX model (ai.onnx opset 13, 14 when HardSwish is
/// used), so that the quantization can be checked in ONNX Runtime or any other tool that reads ONNX.
/// </summary>
/// <remarks>
/// <para>Layout: the exported graph is NCHW with the original model's input and output names and ranks; our NHWC
/// tensors are transposed only in the weights. Every activation tensor T of the graph becomes
/// <c>QuantizeLinear(T, scale, zero_point int8) -&gt; DequantizeLinear</c> with the compiler's parameters; Conv and
/// Gemm read int8 weight initializers (the compiler's exact values, ONNX layout) through a per-output-channel
/// DequantizeLinear (axis 0, zero point 0) and an int32 bias through a DequantizeLinear with scale
/// float32(input scale * weight scale[o]). A fused activation becomes Relu or Clip between the operator and its
/// output QuantizeLinear.</para>
/// <para>A fully connected layer that reads a feature map (the importer's NCHW flatten) reads it here as a Reshape of
/// the int8 NCHW map to [1, C*H*W]; its weight columns are put back in NCHW feature order.</para>
/// <para>The integer arithmetic of the compiler (fixed-point requantization, lookup tables, integer pooling) is
/// defined by <see cref="Int8Executor"/>; a QDQ runtime computes the same layers in float between the quantization
/// points, so results agree to within a few quantization steps, not bit for bit.</para>
/// </remarks>
public static class QdqExporter
{
    public const string ProducerName = "MCUNetV2.Build";
    public const long IrVersion = 8;
    public const long Opset = 13;

    /// <summary>Writes the QDQ model to <paramref name="path"/>.</summary>
    /// <param name="sourceModelPath">The model the graph came from; the file of diagnostics.</param>
    /// <exception cref="CompilerException">MCU6001 when a layer cannot be expressed in ONNX.</exception>
    public static void Write(QuantizedModel model, string path, string? sourceModelPath = null)
    {
        var bytes = ToBytes(model, sourceModelPath);
        var dir = Path.GetDirectoryName(Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(dir)) Directory.CreateDirectory(dir);
        File.WriteAllBytes(path, bytes);
    }

    /// <summary>The serialized QDQ model.</summary>
    public static byte[] ToBytes(QuantizedModel model, string? sourceModelPath = null) =>
        Build(model, sourceModelPath).ToByteArray();

    internal static ModelProto Build(QuantizedModel model, string? sourceModelPath = null) =>
        new Builder(model, sourceModelPath).Build();

    private sealed class Builder
    {
        private readonly QuantizedModel _m;
        private readonly ModelGraph _g;
        private readonly string? _source;
        private readonly GraphProto _graph = new() { Name = "mcunetv2_int8" };
        private readonly HashSet<string> _names = new(StringComparer.Ordinal);
        /// <summary>
        /// Export rank of each tensor where its producer leaves it: 4 [1,C,H,W] or 3 [C,H,W] (as the graph input, for the
        /// element-wise layers after it), 2 [1,K] or 1 [K] (only for 1x1xK). All of them hold the elements in NCHW order, so
        /// one form becomes another with a Reshape.
        /// </summary>
        private readonly Dictionary<Tensor, int> _rank = new();
        /// <summary>The int8 value of each tensor, in its export rank.</summary>
        private readonly Dictionary<Tensor, string> _int8 = new();
        private readonly Dictionary<(Tensor, int), string> _int8InRank = new();
        private readonly Dictionary<Tensor, (string Scale, string ZeroPoint)> _params = new();
        private long _opset = Opset;

        public Builder(QuantizedModel model, string? source)
        {
            _m = model; _g = model.Graph; _source = source;
            // the graph's own names are taken first, so no internal value can shadow them
            foreach (var n in _g.OnnxInputNames) _names.Add(n);
            _names.Add(_g.OnnxOutputName);
        }

        private CompilerException Unsupported(Layer l, string why) => new(ErrorCodes.ExportUnsupported,
            $"layer '{l.Name}' ({l.Op}) cannot be written as QDQ ONNX: {why}", _source);

        public ModelProto Build()
        {
            for (int i = 0; i < _g.Inputs.Count; i++) ExportInput(_g.Inputs[i], _g.OnnxInputNames[i], _g.OnnxInputRanks[i]);
            foreach (var l in _g.Layers) Export(l);
            ExportOutput();

            var model = new ModelProto
            {
                IrVersion = IrVersion,
                ProducerName = ProducerName,
                ProducerVersion = typeof(QdqExporter).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "",
                DocString = "int8 model as compiled by MCUNetV2.Build, in QDQ form: per-tensor asymmetric int8 activations, " +
                            "per-output-channel symmetric int8 weights, int32 biases. The compiler's integer arithmetic is defined by its C# int8 reference.",
                Graph = _graph,
            };
            model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = _opset });
            return model;
        }

        // ------------------------------------------------------------------ graph input and output

        private void ExportInput(Tensor t, string name, int rank)
        {
            var s = t.Shape;
            _graph.Input.Add(ValueInfo(name, OnnxDims(s, rank)));
            _rank[t] = rank;
            _int8[t] = Node("QuantizeLinear", new[] { name, Params(t).Scale, Params(t).ZeroPoint }, name + "_quantized");
        }

        private void ExportOutput()
        {
            var t = _g.Output;
            int rank = _g.OnnxOutputRank;
            var s = t.Shape;
            // a [M, K] matrix is stored 1xMxK: its rows are the pixels
            bool matrix = rank == 2 && s.H * s.W > 1;
            var dims = _g.OnnxOutputDims ?? (matrix ? new long[] { s.H * s.W, s.C } : OnnxDims(t.Shape, rank));
            var q = _g.OnnxOutputDims != null ? Reshape(Int8InRank(t, 2), dims, t.Name + "_shaped")
                : matrix
                ? Reshape(Node("Transpose", new[] { Int8InRank(t, 3) }, t.Name + "_rows", AttrInts("perm", 1, 2, 0)), new long[] { s.H * s.W, s.C }, t.Name + "_matrix")
                : Int8InRank(t, rank);
            var (scale, zp) = Params(t);
            _graph.Node.Add(NewNode("DequantizeLinear", new[] { q, scale, zp }, _g.OnnxOutputName));
            _graph.Output.Add(ValueInfo(_g.OnnxOutputName, dims));
        }

        /// <summary>ONNX dims of a tensor exported with this rank; rank 2 and 1 flatten an NCHW map in NCHW order.</summary>
        /// <remarks>The channel axis is 1 in ranks 4 and 2, 0 in ranks 3 and 1 (<see cref="ChannelAxis"/>).</remarks>
        private static long[] OnnxDims(TensorShape s, int rank) => rank switch
        {
            4 => new long[] { 1, s.C, s.H, s.W },
            3 => new long[] { s.C, s.H, s.W },
            2 => new long[] { 1, s.Elements },
            _ => new long[] { s.Elements },
        };

        private static int ChannelAxis(int rank) => rank is 4 or 2 ? 1 : 0;

        /// <summary>The rank a layer that keeps the layout works in: that of its first input (the map, when the second is a per-channel vector).</summary>
        private int RankOf(Layer l) => _rank[l.Inputs[0]];

        // ------------------------------------------------------------------ per-tensor quantization

        private (string Scale, string ZeroPoint) Params(Tensor t)
        {
            if (_params.TryGetValue(t, out var p)) return p;
            var q = _m.Activations[t];
            var scale = Initializer(Float(t.Name + "_scale", Array.Empty<long>(), new[] { (float)q.Scale }));
            var zp = Initializer(Int8(t.Name + "_zero_point", Array.Empty<long>(), new[] { (sbyte)q.ZeroPoint }));
            return _params[t] = (scale, zp);
        }

        /// <summary>The int8 value of <paramref name="t"/> in the given rank (<see cref="OnnxDims"/>; a Reshape when its own rank differs).</summary>
        private string Int8InRank(Tensor t, int rank)
        {
            if (_rank[t] == rank) return _int8[t];
            if (_int8InRank.TryGetValue((t, rank), out var v)) return v;
            return _int8InRank[(t, rank)] = Reshape(_int8[t], OnnxDims(t.Shape, rank), t.Name + "_quantized");
        }

        /// <summary>
        /// The float value a consumer reads: a DequantizeLinear of the int8 tensor of its own (one per reader, the form
        /// quantization tools write, so each operator and its Q/DQ nodes form a unit a runtime can fuse).
        /// </summary>
        private string Input(Tensor t, int rank)
        {
            var (scale, zp) = Params(t);
            return Node("DequantizeLinear", new[] { Int8InRank(t, rank), scale, zp }, t.Name + "_dequantized");
        }

        /// <summary>Records the float result of the layer producing <paramref name="t"/> and quantizes it.</summary>
        private void Output(Tensor t, string value, int rank)
        {
            var (scale, zp) = Params(t);
            _rank[t] = rank;
            _int8[t] = Node("QuantizeLinear", new[] { value, scale, zp }, t.Name + "_quantized");
        }

        // ------------------------------------------------------------------ layers

        private void Export(Layer l)
        {
            switch (l)
            {
                case Conv2D c: ExportConv(c); break;
                case FullyConnected f: ExportFullyConnected(f); break;
                case Add a:
                {
                    int rank = RankOf(a);
                    var y = Node(a.Subtract ? "Sub" : "Add", new[] { Input(a.Inputs[0], rank), Input(a.Inputs[1], rank) }, a.Output.Name);
                    Output(a.Output, Activation(y, a.Activation, a.Output.Name), rank);
                    break;
                }
                case AveragePool p: ExportPool(p, "AveragePool"); break;
                case MaxPool p: ExportPool(p, "MaxPool"); break;
                case UnaryElementwise u:
                {
                    int rank = RankOf(u);
                    Output(u.Output, ExportUnary(u, Input(u.Inputs[0], rank)), rank);
                    break;
                }
                case ChannelPRelu p:
                {
                    int rank = RankOf(p);
                    var slope = Initializer(Float(p.Output.Name + "_slope", rank >= 3 ? new long[] { p.Slopes.Length, 1, 1 } : new long[] { p.Slopes.Length }, p.Slopes));
                    Output(p.Output, Node("PRelu", new[] { Input(p.Inputs[0], rank), slope }, p.Output.Name), rank);
                    break;
                }
                case Mul m:
                {
                    int rank = RankOf(m);
                    Output(m.Output, Node("Mul", new[] { Input(m.Inputs[0], rank), Input(m.Inputs[1], rank) }, m.Output.Name), rank);
                    break;
                }
                case Concat c:
                {
                    int rank = RankOf(c);
                    Output(c.Output, Node("Concat", c.Inputs.Select(t => Input(t, rank)).ToArray(), c.Output.Name, AttrInt("axis", ChannelAxis(rank))), rank);
                    break;
                }
                case Softmax s:
                {
                    // over the channels of each pixel (opset 13 softmax is over one axis), or over the features of a vector
                    int rank = RankOf(s);
                    Output(s.Output, Node("Softmax", new[] { Input(s.Inputs[0], rank) }, s.Output.Name, AttrInt("axis", ChannelAxis(rank))), rank);
                    break;
                }
                case Relayout r: ExportRelayout(r); break;
                default:
                    throw Unsupported(l, "the QDQ exporter does not know this layer type");
            }
        }

        /// <summary>
        /// A data move on the int8 values (same parameters in and out): the input flattened in its export order, a Gather
        /// of the elements in the output's export order (rank 3 [C,H,W] for a map, 2 [1,K] for a vector), reshaped.
        /// </summary>
        private void ExportRelayout(Relayout r)
        {
            var input = r.Inputs[0]; var output = r.Output;
            int outRank = output.Shape.H * output.Shape.W > 1 ? 3 : 2;
            var source = r.SourceIndices();
            var indices = new long[source.Length];
            var so = output.Shape;
            for (int c = 0, p = 0; c < so.C; c++)
                for (int y = 0; y < so.H; y++)
                    for (int x = 0; x < so.W; x++, p++)
                        indices[p] = NchwPosition(source[(y * so.W + x) * so.C + c], input.Shape);
            var flat = Reshape(_int8[input], new long[] { input.Shape.Elements }, input.Name + "_flat");
            var idx = Initializer(Int64(output.Name + "_indices", new long[] { indices.Length }, indices));
            var gathered = Node("Gather", new[] { flat, idx }, output.Name + "_gathered", AttrInt("axis", 0));
            Params(output);
            _rank[output] = outRank;
            _int8[output] = Reshape(gathered, OnnxDims(so, outRank), output.Name + "_quantized");
        }

        /// <summary>Position in NCHW order of the element at NHWC storage index <paramref name="i"/>.</summary>
        private static long NchwPosition(int i, TensorShape s)
        {
            int c = i % s.C, pixel = i / s.C;
            return (long)c * s.H * s.W + pixel;
        }

        private void ExportConv(Conv2D c)
        {
            var q = (QuantizedConv)_m.Layers[c];
            var w = c.Window;
            int cout = c.OutChannels, cpg = c.InChannelsPerGroup, kh = w.KernelH, kw = w.KernelW;
            // IR [Cout][kh][kw][Cin/g] -> ONNX [Cout][Cin/g][kh][kw]
            var weights = new sbyte[q.Weights.Length];
            for (int o = 0; o < cout; o++)
                for (int y = 0; y < kh; y++)
                    for (int x = 0; x < kw; x++)
                        for (int i = 0; i < cpg; i++)
                            weights[((o * cpg + i) * kh + y) * kw + x] = q.Weights[((o * kh + y) * kw + x) * cpg + i];
            var (wq, bq) = WeightsAndBias(c, q, weights, new long[] { cout, cpg, kh, kw });
            var y0 = Node("Conv", new[] { Input(c.Inputs[0], 4), wq, bq }, c.Output.Name,
                AttrInt("group", c.Groups),
                AttrInts("kernel_shape", kh, kw),
                AttrInts("strides", w.StrideH, w.StrideW),
                AttrInts("dilations", w.DilationH, w.DilationW),
                AttrInts("pads", w.Pad.Top, w.Pad.Left, w.Pad.Bottom, w.Pad.Right));
            Output(c.Output, Activation(y0, c.Activation, c.Output.Name), 4);
        }

        private void ExportFullyConnected(FullyConnected f)
        {
            var q = (QuantizedConv)_m.Layers[f];
            var input = f.Inputs[0];
            var s = input.Shape;
            int k = f.InFeatures, n = f.OutFeatures;
            // Our columns are in NHWC order of the input; the exported input is the NCHW map flattened (the same for 1x1xC).
            var weights = new sbyte[q.Weights.Length];
            for (int o = 0; o < n; o++)
                for (int y = 0; y < s.H; y++)
                    for (int x = 0; x < s.W; x++)
                        for (int c = 0; c < s.C; c++)
                            weights[o * k + (c * s.H + y) * s.W + x] = q.Weights[o * k + (y * s.W + x) * s.C + c];
            var (wq, bq) = WeightsAndBias(f, q, weights, new long[] { n, k });
            var y0 = Node("Gemm", new[] { Input(input, 2), wq, bq }, f.Output.Name, AttrInt("transB", 1));
            Output(f.Output, Activation(y0, f.Activation, f.Output.Name), 2);
        }

        /// <summary>DequantizeLinear of the int8 weights (per output channel, axis 0) and of the int32 bias.</summary>
        private (string Weights, string Bias) WeightsAndBias(Layer l, QuantizedConv q, sbyte[] onnxWeights, long[] dims)
        {
            int n = q.Bias.Length;
            var name = l.Output.Name;
            var inScale = _m.Activations[l.Inputs[0]].Scale;
            var wScales = q.WeightScales.Select(s => (float)s).ToArray();
            // float32(input scale * weight scale): both are float32 values, so the double product rounded once is the float32 product
            var bScales = q.WeightScales.Select(s => (float)(inScale * s)).ToArray();
            if (bScales.Any(v => !(v > 0) || !float.IsFinite(v)))
                throw Unsupported(l, "a bias scale (input scale x weight scale) is not a positive float32");
            var w = Initializer(Int8(name + "_weight_quantized", dims, onnxWeights));
            var wScale = Initializer(Float(name + "_weight_scale", new long[] { n }, wScales));
            var wZp = Initializer(Int8(name + "_weight_zero_point", new long[] { n }, new sbyte[n]));
            var b = Initializer(Int32(name + "_bias_quantized", new long[] { n }, q.Bias));
            var bScale = Initializer(Float(name + "_bias_scale", new long[] { n }, bScales));
            var bZp = Initializer(Int32(name + "_bias_zero_point", new long[] { n }, new int[n]));
            return (Node("DequantizeLinear", new[] { w, wScale, wZp }, name + "_weight", AttrInt("axis", 0)),
                    Node("DequantizeLinear", new[] { b, bScale, bZp }, name + "_bias", AttrInt("axis", 0)));
        }

        /// <summary>The fused activation as Relu or Clip after <paramref name="value"/> (nothing when there is none).</summary>
        private string Activation(string value, ActivationRange a, string name)
        {
            if (a.IsNone) return value;
            if (a.Min == 0 && float.IsPositiveInfinity(a.Max)) return Node("Relu", new[] { value }, name + "_relu");
            return Clip(value, a.Min, a.Max, name + "_clip");
        }

        private string Clip(string value, float min, float max, string name) =>
            Node("Clip", new[]
            {
                value,
                float.IsNegativeInfinity(min) ? "" : Initializer(Float(name + "_min", Array.Empty<long>(), new[] { min })),
                float.IsPositiveInfinity(max) ? "" : Initializer(Float(name + "_max", Array.Empty<long>(), new[] { max })),
            }, name);

        private void ExportPool(PoolLayer p, string op)
        {
            var w = p.Window;
            var s = p.Inputs[0].Shape;
            var x = Input(p.Inputs[0], 4);
            string y;
            if (w.KernelH == s.H && w.KernelW == s.W && w.Pad == Padding.Zero && p.Output.Shape.H == 1 && p.Output.Shape.W == 1)
                y = Node("Global" + op, new[] { x }, p.Output.Name);
            else
            {
                var attrs = new List<AttributeProto>
                {
                    AttrInts("kernel_shape", w.KernelH, w.KernelW),
                    AttrInts("strides", w.StrideH, w.StrideW),
                    AttrInts("pads", w.Pad.Top, w.Pad.Left, w.Pad.Bottom, w.Pad.Right),
                    AttrInt("ceil_mode", w.CeilMode ? 1 : 0),
                };
                if (p is AveragePool)
                {
                    if (w.DilationH != 1 || w.DilationW != 1) throw Unsupported(p, "average pooling with dilations needs opset 19");
                    attrs.Add(AttrInt("count_include_pad", w.CountIncludePad ? 1 : 0));
                }
                else attrs.Add(AttrInts("dilations", w.DilationH, w.DilationW));
                y = Node(op, new[] { x }, p.Output.Name, attrs.ToArray());
            }
            Output(p.Output, y, 4);
        }

        // ------------------------------------------------------------------ element-wise functions

        /// <summary>
        /// The ONNX operator of an element-wise function. <see cref="UnaryElementwise.Function"/> names it
        /// (e.g. "LeakyRelu(alpha=0.1)", "Clip(0,6)", "Mul(0.5)"); the parameters read from the name are accepted
        /// only when the operator they define gives the layer's own function on every input value the int8 tensor
        /// can take, so a misread number is an error, not a wrong model.
        /// </summary>
        private string ExportUnary(UnaryElementwise u, string x)
        {
            var f = u.Function.Trim();
            int open = f.IndexOf('(');
            var op = open < 0 ? f : f[..open].Trim();
            var args = open < 0 ? "" : f[(open + 1)..].TrimEnd().TrimEnd(')');
            var name = u.Output.Name;
            var qi = _m.Activations[u.Inputs[0]];
            var probes = Enumerable.Range(-128, 256).Select(q => qi.Dequantize((sbyte)q))
                .Concat(new[] { 0f, 1f, -1f, 3f, -3f, 6f, -6f, 0.5f, -0.5f }).ToArray();
            bool Matches(Func<float, float> g) => probes.All(v =>
            {
                float want = u.Apply(v), got = g(v);
                return want == got || (float.IsFinite(want) && Math.Abs(want - got) <= 1e-5f * (1 + Math.Abs(want)));
            });
            T? First<T>(IEnumerable<T> candidates, Func<T, Func<float, float>> function) where T : class =>
                candidates.FirstOrDefault(c => Matches(function(c)));

            switch (op)
            {
                case "Relu" when Matches(v => Math.Max(v, 0f)):
                    return Node("Relu", new[] { x }, name);
                case "Sigmoid" when Matches(v => 1f / (1f + MathF.Exp(-v))):
                    return Node("Sigmoid", new[] { x }, name);
                case "HardSwish" when Matches(v => v * Math.Clamp(v / 6f + 0.5f, 0f, 1f)):
                    _opset = Math.Max(_opset, 14);
                    return Node("HardSwish", new[] { x }, name);
                case "LeakyRelu":
                    if (First(Numbers(After(args, "alpha=")).Select(a => new[] { a }), a => v => v >= 0 ? v : a[0] * v) is { } alpha)
                        return Node("LeakyRelu", new[] { x }, name, AttrFloat("alpha", alpha[0]));
                    break;
                case "PRelu":
                    if (First(Numbers(After(args, "slope=")).Select(a => new[] { a }), a => v => v >= 0 ? v : a[0] * v) is { } slope)
                        return Node("PRelu", new[] { x, Initializer(Float(name + "_slope", new long[] { 1 }, slope)) }, name);
                    break;
                case "Mul":
                    if (First(Numbers(args).Select(a => new[] { a }), a => v => v * a[0]) is { } factor)
                        return Node("Mul", new[] { x, Initializer(Float(name + "_factor", Array.Empty<long>(), factor)) }, name);
                    break;
                case "HardSigmoid":
                {
                    int beta = args.IndexOf("beta=", StringComparison.Ordinal);
                    if (beta < 0) break;
                    var alphaText = After(args[..beta].TrimEnd().TrimEnd(','), "alpha=");
                    var candidates = Numbers(alphaText).SelectMany(a => Numbers(args[(beta + 5)..]).Select(b => new[] { a, b }));
                    if (First(candidates, p => v => Math.Clamp(p[0] * v + p[1], 0f, 1f)) is { } ab)
                        return Node("HardSigmoid", new[] { x }, name, AttrFloat("alpha", ab[0]), AttrFloat("beta", ab[1]));
                    break;
                }
                case "Clip":
                {
                    // "Clip(min,max)"; in a culture with a decimal comma every comma is a candidate separator
                    var parts = args.Split(',');
                    var candidates = Enumerable.Range(1, Math.Max(0, parts.Length - 1)).SelectMany(k =>
                        Numbers(string.Join(",", parts[..k])).SelectMany(lo => Numbers(string.Join(",", parts[k..])).Select(hi => new[] { lo, hi })));
                    if (First(candidates, p => v => Math.Min(Math.Max(v, p[0]), p[1])) is { } range)
                        return range[0] == 0 && float.IsPositiveInfinity(range[1]) ? Node("Relu", new[] { x }, name) : Clip(x, range[0], range[1], name);
                    break;
                }
            }
            throw Unsupported(u, $"the element-wise function '{u.Function}' has no ONNX operator the exporter can verify against it " +
                                 "(supported: Relu, Clip, LeakyRelu, PRelu, Sigmoid, HardSigmoid, HardSwish, Mul by a constant)");
        }

        private static string After(string text, string key)
        {
            int i = text.IndexOf(key, StringComparison.Ordinal);
            return i < 0 ? text : text[(i + key.Length)..];
        }

        /// <summary>The values a number written by float.ToString() may stand for (invariant or current culture, ∞ or Infinity).</summary>
        private static IEnumerable<float> Numbers(string text)
        {
            var t = text.Trim();
            var seen = new HashSet<float>();
            if (t is "∞" or "+∞" or "Infinity" or "+Infinity" or "inf" or "+inf") { yield return float.PositiveInfinity; yield break; }
            if (t is "-∞" or "-Infinity" or "-inf") { yield return float.NegativeInfinity; yield break; }
            foreach (var culture in new[] { CultureInfo.InvariantCulture, CultureInfo.CurrentCulture })
                if (float.TryParse(t, NumberStyles.Float, culture, out var v) && seen.Add(v))
                    yield return v;
        }

        // ------------------------------------------------------------------ protobuf helpers

        private string Unique(string name)
        {
            if (string.IsNullOrEmpty(name)) name = "value";
            if (_names.Add(name)) return name;
            for (int i = 1; ; i++)
                if (_names.Add($"{name}_{i}")) return $"{name}_{i}";
        }

        private NodeProto NewNode(string op, IEnumerable<string> inputs, string output, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = Unique(output + "/" + op) };
            var list = inputs.ToList();
            while (list.Count > 0 && list[^1].Length == 0) list.RemoveAt(list.Count - 1); // trailing optional inputs left out
            node.Input.AddRange(list);
            node.Output.Add(output);
            node.Attribute.AddRange(attributes);
            return node;
        }

        /// <summary>Adds a node with one output, named after <paramref name="outputBase"/>; returns the output.</summary>
        private string Node(string op, IEnumerable<string> inputs, string outputBase, params AttributeProto[] attributes)
        {
            var output = Unique(outputBase);
            _graph.Node.Add(NewNode(op, inputs, output, attributes));
            return output;
        }

        private string Reshape(string value, long[] dims, string outputBase)
        {
            var shape = Initializer(Int64(outputBase + "_shape", new long[] { dims.Length }, dims));
            return Node("Reshape", new[] { value, shape }, outputBase);
        }

        private string Initializer(TensorProto t)
        {
            t.Name = Unique(t.Name);
            _graph.Initializer.Add(t);
            return t.Name;
        }

        private static TensorProto Tensor(string name, DataType type, long[] dims, byte[] raw)
        {
            var t = new TensorProto { Name = name, DataType = (int)type, RawData = ByteString.CopyFrom(raw) };
            t.Dims.AddRange(dims);
            return t;
        }

        private static byte[] Raw<T>(T[] values) where T : struct
        {
            var bytes = new byte[Buffer.ByteLength(values)];
            Buffer.BlockCopy(values, 0, bytes, 0, bytes.Length);
            if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw data is little-endian");
            return bytes;
        }

        private static TensorProto Float(string name, long[] dims, float[] v) => Tensor(name, DataType.Float, dims, Raw(v));
        private static TensorProto Int8(string name, long[] dims, sbyte[] v) => Tensor(name, DataType.Int8, dims, Raw(v));
        private static TensorProto Int32(string name, long[] dims, int[] v) => Tensor(name, DataType.Int32, dims, Raw(v));
        private static TensorProto Int64(string name, long[] dims, long[] v) => Tensor(name, DataType.Int64, dims, Raw(v));

        private static ValueInfoProto ValueInfo(string name, long[] dims)
        {
            var shape = new TensorShapeProto();
            foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
            return new ValueInfoProto
            {
                Name = name,
                Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)DataType.Float, Shape = shape } },
            };
        }

        private static AttributeProto AttrInt(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
        private static AttributeProto AttrFloat(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

        private static AttributeProto AttrInts(string name, params long[] v)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(v);
            return a;
        }
    }
}
