using Google.Protobuf;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx.Proto;

namespace MCUNetV2.Compiler.Onnx;

/// <summary>
/// Reads an .onnx file into a <see cref="ModelGraph"/>: NCHW becomes NHWC, and the exporter's patterns are rewritten
/// on the fly (BatchNormalization and Pad fold into the convolution, Clip/Relu fuse into the producer,
/// MatMul + Add become one fully connected layer, Reshape/Flatten/Identity/Dropout are relabels).
/// </summary>
public static partial class OnnxImporter
{
    public static readonly string[] SupportedOperators =
    {
        "Conv", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Concat", "Relu", "Clip", "LeakyRelu", "PRelu", "HardSwish",
        "HardSigmoid", "Sigmoid", "Softmax", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean",
        "Pad", "Flatten", "Reshape", "Transpose", "Squeeze", "Unsqueeze", "Identity", "Dropout", "BatchNormalization",
        "Constant", "Shape", "Gather", "Cast", "QuantizeLinear", "DequantizeLinear",
    };

    public static ModelGraph Load(string path)
    {
        if (!File.Exists(path))
            throw new CompilerException(ErrorCodes.ModelNotFound, $"model file not found: {path}", path);
        ModelProto model;
        try
        {
            model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path));
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidOperationException or ArgumentException)
        {
            throw new CompilerException(ErrorCodes.ModelCorrupt,
                $"'{Path.GetFileName(path)}' is not a readable ONNX model (protobuf decoding failed: {e.Message}). Re-export the model or check the file was not truncated.", path);
        }
        return new Builder(model, path).Build();
    }

    private sealed partial class Builder
    {
        private readonly ModelProto _model;
        private readonly string _path;
        private readonly Dictionary<string, ConstantTensor> _constants = new();
        private readonly Dictionary<string, Value> _values = new();
        /// <summary>Readers of each tensor, counted at its alias root (see <see cref="Root"/>).</summary>
        private readonly Dictionary<string, int> _consumers = new();
        /// <summary>Name -> the name it merely relabels (Identity, Q/DQ pairs, Reshape, ...), resolved to the first name.</summary>
        private readonly Dictionary<string, string> _aliasOf = new();
        private HashSet<string> _graphOutputRoots = new();
        private readonly Dictionary<Tensor, Layer> _producer = new();
        private readonly List<Layer> _layers = new();
        private readonly HashSet<string> _graphOutputs;
        private long _opset;

        /// <summary>
        /// An activation as seen by ONNX names: an IR tensor, the ONNX rank under this name (4 [1,C,H,W], 3 [C,H,W],
        /// 2 [1,K], 1 [K]), plus pending padding or an NCHW flatten.
        /// </summary>
        /// <remarks>
        /// <see cref="Dims"/>: a tensor no layer can hold as a map (rank 5 or more, or a rank-4 tensor whose first axis is
        /// not 1), kept between data-moving operators as a 1x1xN vector in ONNX (row-major) order; only Reshape,
        /// Transpose, Squeeze, Unsqueeze, Flatten and Identity read it.
        /// </remarks>
        private sealed record Value(Tensor Tensor, int Rank, Padding PendingPad = default, TensorShape? FlattenedFromNchw = null, long[]? Dims = null);

        public Builder(ModelProto model, string path)
        {
            _model = model; _path = path;
            _graphOutputs = model.Graph?.Output.Select(o => o.Name).ToHashSet() ?? new();
        }

        private CompilerException Error(string code, string message) => new(code, message, _path);

        public ModelGraph Build()
        {
            var g = _model.Graph ?? throw Error(ErrorCodes.ModelCorrupt, "the model has no graph");
            _opset = _model.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(0).Max();
            if (_opset < 1 || _opset > 25)
                throw Error(ErrorCodes.UnsupportedModel, $"opset {_opset} is not supported (supported: ai.onnx opsets 1 to 25; re-export the model with one of them)");
            foreach (var init in g.Initializer) _constants[init.Name] = ConstantTensor.Decode(init, _path);
            var nodes = QOperatorLowering.Lower(g.Node, _constants, (n, problem) => Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} {problem}"));
            CountConsumers(nodes);

            var inputs = g.Input.Where(i => !_constants.ContainsKey(i.Name)).ToList();
            if (inputs.Count == 0)
                throw Error(ErrorCodes.UnsupportedModel, "the model has no input (every graph input is an initializer)");
            var inputTensors = new List<Tensor>();
            var inputRanks = new List<int>();
            foreach (var vi in inputs)
            {
                if (_values.ContainsKey(vi.Name)) throw Error(ErrorCodes.ModelCorrupt, $"input '{vi.Name}' is declared twice");
                var (t, rank) = ImportInput(vi);
                _values[vi.Name] = new Value(t, rank);
                inputTensors.Add(t);
                inputRanks.Add(rank);
            }
            foreach (var node in nodes) ImportNode(node);

            if (g.Output.Count != 1)
                throw Error(ErrorCodes.UnsupportedModel, $"the model has {g.Output.Count} outputs; exactly one is supported");
            var outName = g.Output[0].Name;
            if (_quantized.ContainsKey(outName))
                throw Error(ErrorCodes.UnsupportedModel, $"graph output '{outName}' is a quantized (integer) tensor; end the model with DequantizeLinear so it returns real values");
            if (!_values.TryGetValue(outName, out var outValue))
                throw Error(ErrorCodes.ModelCorrupt, $"graph output '{outName}' is not produced by any node");
            outValue = OutputValue(g.Output[0], outValue);
            if (outValue.Tensor != _layers[^1].Output)
                throw Error(ErrorCodes.UnsupportedModel, $"graph output '{outName}' is not produced by the last node");
            return new ModelGraph(inputTensors, outValue.Tensor, _layers, inputs.Select(i => i.Name).ToList(), outName, inputRanks, outValue.Rank)
            {
                Quantization = _imported.IsEmpty && _imported.Notes.Count == 0 ? null : _imported,
                OnnxOutputDims = outValue.Dims,
                SourcePath = _path,
            };
        }

        /// <summary>
        /// The graph output as a tensor of its own in ONNX element order: a flattened map is moved into NCHW order, and a
        /// graph whose output only relabels its input (or an earlier tensor) gets a copy, so that the output is the last
        /// layer's.
        /// </summary>
        private Value OutputValue(ValueInfoProto output, Value v)
        {
            var node = new NodeProto { Name = output.Name, OpType = "Identity" };
            node.Output.Add(output.Name);
            v = Unpadded(node, v);
            if (v.FlattenedFromNchw != null) v = Materialize(node, v, output.Name);
            if (_layers.Count > 0 && v.Tensor == _layers[^1].Output) return v;
            if (_producer.ContainsKey(v.Tensor)) return v; // an earlier layer's output: refused by the caller (dead layers)
            var s = v.Tensor.Shape;
            var copy = AddRelayout(node, v, s, v.Rank, new long[] { s.Elements }, new long[] { 1 }, "Identity", v.Tensor.Name == output.Name ? output.Name + "/copy" : output.Name, force: true);
            return copy;
        }

        /// <summary>
        /// A graph input as an NHWC tensor: rank 4 is [1, C, H, W]; rank 3 is [C, H, W] (batch 1 implied); rank 2 is
        /// [1, K] and rank 1 is [K] (features as channels).
        /// </summary>
        private (Tensor, int) ImportInput(ValueInfoProto vi)
        {
            var tt = vi.Type?.TensorType ?? throw Error(ErrorCodes.UnsupportedModel, $"input '{vi.Name}' is not a tensor");
            if (tt.ElemType != (int)TensorProto.Types.DataType.Float)
                throw Error(ErrorCodes.UnsupportedModel, $"input '{vi.Name}' has element type {(TensorProto.Types.DataType)tt.ElemType}; a float input is expected");
            var dims = tt.Shape?.Dim.ToList() ?? throw Error(ErrorCodes.DynamicShape, $"input '{vi.Name}' has no shape; export the model with a fixed input shape");
            if (dims.Count is < 1 or > 4)
                throw Error(ErrorCodes.UnsupportedModel, $"input '{vi.Name}' has rank {dims.Count}; NCHW images (rank 4, or 3 without batch) or feature vectors (rank 2 or 1) are supported");
            var sizes = new int[dims.Count];
            for (int i = 0; i < dims.Count; i++)
            {
                if (dims[i].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && dims[i].DimValue > 0)
                    sizes[i] = dims[i].DimValue <= 1 << 16 ? (int)dims[i].DimValue
                        : throw Error(ErrorCodes.UnsupportedModel, $"input '{vi.Name}' dimension {i} is {dims[i].DimValue}, far beyond what a microcontroller can hold");
                else if (i == 0 && dims.Count is 2 or 4)
                    sizes[i] = 1; // symbolic batch: compiled for batch 1
                else
                    throw Error(ErrorCodes.DynamicShape,
                        $"input '{vi.Name}' dimension {i} is dynamic ('{dims[i].DimParam}'); only the batch dimension may be symbolic. Export the model with a fixed input size.");
            }
            if (dims.Count is 2 or 4 && sizes[0] != 1) throw Error(ErrorCodes.UnsupportedModel, $"input '{vi.Name}' has batch {sizes[0]}; batch 1 is compiled");
            var shape = dims.Count switch
            {
                4 => new TensorShape(sizes[2], sizes[3], sizes[1]),
                3 => new TensorShape(sizes[1], sizes[2], sizes[0]),
                2 => new TensorShape(1, 1, sizes[1]),
                _ => new TensorShape(1, 1, sizes[0]),
            };
            if ((long)shape.H * shape.W * shape.C > 1 << 26) throw Error(ErrorCodes.UnsupportedModel, $"input '{vi.Name}' is far too large for a microcontroller");
            return (new Tensor(vi.Name, shape), dims.Count);
        }

        /// <summary>The channel axis of an ONNX tensor of this rank (see <see cref="ImportInput"/>).</summary>
        private static int ChannelAxis(int rank) => rank switch { 4 => 1, 3 => 0, 2 => 1, _ => 0 };

        private int RankOf(string name) => _values[name].Rank;

        // ---------------------------------------------------------------- helpers

        private string NodeLabel(NodeProto n) => $"node '{(n.Name.Length > 0 ? n.Name : n.Output.FirstOrDefault())}' ({n.OpType}, domain '{(n.Domain.Length > 0 ? n.Domain : "ai.onnx")}', opset {_opset})";

        private Value Act(NodeProto n, int index)
        {
            if (index >= n.Input.Count || n.Input[index].Length == 0)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} lacks input {index}");
            var name = n.Input[index];
            if (_values.TryGetValue(name, out var v))
            {
                if (v.Dims != null && n.OpType is not ("Reshape" or "Transpose" or "Squeeze" or "Unsqueeze" or "Flatten" or "Identity" or "Dropout"))
                    throw Error(ErrorCodes.UnsupportedOperator,
                        $"{NodeLabel(n)} reads '{name}' of shape [{string.Join(",", v.Dims)}]; tensors of rank 5 or more, or with a batch other than 1, may only be reshaped or transposed (into rank 1 to 4 with batch 1)");
                return v;
            }
            if (_quantized.ContainsKey(name))
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} reads the quantized tensor '{name}' directly; only DequantizeLinear, QLinear operators and data-moving operators (MaxPool, Reshape, ...) may");
            if (_constants.ContainsKey(name))
                throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} takes the constant '{name}' as its data input; only activations are supported there");
            throw Error(ErrorCodes.MissingInitializer, $"{NodeLabel(n)} reads '{name}', which is neither an initializer nor produced by an earlier node");
        }

        private Tensor Plain(NodeProto n, int index)
        {
            return Unpadded(n, Act(n, index)).Tensor;
        }

        private ConstantTensor? Const(NodeProto n, int index, bool required = true)
        {
            if (index >= n.Input.Count || n.Input[index].Length == 0)
            {
                if (required) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} lacks input {index}");
                return null;
            }
            if (_constants.TryGetValue(n.Input[index], out var c)) return c;
            if (_values.ContainsKey(n.Input[index]))
                throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} input {index} ('{n.Input[index]}') must be a constant (initializer)");
            throw Error(ErrorCodes.MissingInitializer, $"{NodeLabel(n)} input {index} ('{n.Input[index]}') is not an initializer nor produced by an earlier node");
        }

        private float Scalar(NodeProto n, ConstantTensor c) => c.Count == 1 ? c.AsFloats()[0]
            : throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)}: '{c.Name}' should hold one value, it holds {c.Count}");

        private static AttributeProto? Attr(NodeProto n, string name) => n.Attribute.FirstOrDefault(a => a.Name == name);
        private static long AttrInt(NodeProto n, string name, long dflt) => Attr(n, name) is { } a ? a.I : dflt;
        private static float AttrFloat(NodeProto n, string name, float dflt) => Attr(n, name) is { } a ? a.F : dflt;
        private static string AttrString(NodeProto n, string name, string dflt) => Attr(n, name) is { } a ? a.S.ToStringUtf8() : dflt;
        private static long[]? AttrInts(NodeProto n, string name) => Attr(n, name)?.Ints.ToArray();

        private void Define(NodeProto n, Value v)
        {
            if (n.Output.Count == 0) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has no output");
            _values[n.Output[0]] = v;
        }

        private Tensor NewTensor(NodeProto n, TensorShape shape)
        {
            if (shape.H <= 0 || shape.W <= 0 || shape.C <= 0)
                throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} produces an empty tensor ({shape})");
            return new Tensor(n.Output[0], shape);
        }

        /// <summary>The rank of the node's first activation input (its output keeps it unless the operator says otherwise).</summary>
        private int InputRank(NodeProto n) => n.Input.Where(_values.ContainsKey).Select(RankOf).DefaultIfEmpty(4).First();

        /// <summary>Appends a layer to the graph; returns its output.</summary>
        private Tensor Append(Layer layer)
        {
            _layers.Add(layer);
            _producer[layer.Output] = layer;
            return layer.Output;
        }

        private void AddLayer(NodeProto n, Layer layer, int? rank = null)
        {
            Append(layer);
            // An element-wise layer keeps the element order of its input: still NCHW-flattened if the input was.
            var flattened = layer is UnaryElementwise or ChannelPRelu ? Act(n, 0).FlattenedFromNchw : null;
            Define(n, new Value(layer.Output, rank ?? (layer is FullyConnected ? 2 : InputRank(n)), FlattenedFromNchw: flattened));
        }

        /// <summary>
        /// The layer that produced input <paramref name="index"/> of this node, when this node is its only reader and reads
        /// the layer's output as it is (no pending pad, no flatten): the producer can then absorb the node.
        /// </summary>
        private Layer? SoleProducer(NodeProto n, int index = 0)
        {
            var v = Act(n, index);
            var root = Root(n.Input[index]);
            if (_consumers.GetValueOrDefault(root) != 1 || _graphOutputRoots.Contains(root)) return null;
            if (v.PendingPad != default || v.FlattenedFromNchw != null) return null;
            return _producer.GetValueOrDefault(v.Tensor);
        }

        /// <summary>
        /// <see cref="SoleProducer"/> when it is a Conv or FullyConnected without activation (a linear map) whose output
        /// the model does not quantize (a quantized output is stored as it is, so nothing may be folded into it).
        /// </summary>
        private Layer? LinearProducer(NodeProto n, int index) => SoleProducer(n, index) switch
        {
            Conv2D c when c.Activation.IsNone && !_imported.Activations.ContainsKey(c.Output) => c,
            FullyConnected f when f.Activation.IsNone && !_imported.Activations.ContainsKey(f.Output) => f,
            _ => null,
        };

        /// <summary>The node was absorbed by the layer producing <paramref name="t"/>: its output name now means that tensor.</summary>
        private void Rename(NodeProto n, Tensor t)
        {
            t.Name = n.Output[0];
            Define(n, new Value(t, InputRank(n)));
        }

        // ---------------------------------------------------------------- operators

        private void ImportNode(NodeProto n)
        {
            if (n.Domain is not ("" or "ai.onnx"))
                throw Unsupported(n);
            if (n.Output.Count == 0 || n.Output[0].Length == 0)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has no output");
            if (n.OpType == "QuantizeLinear") { ImportQuantizeLinear(n); return; }
            if (n.OpType == "DequantizeLinear") { ImportDequantizeLinear(n); return; }
            if (ConstantFolding.TryFold(n, _constants, OnnxShape, _opset, out var folded, out var problem))
            {
                if (problem != null) throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)}: {problem}");
                _constants[n.Output[0]] = folded!;
                return;
            }
            switch (n.OpType)
            {
                case "Constant": ImportConstant(n); break;
                case "Identity": case "Dropout": Define(n, Act(n, 0)); break;
                case "Conv": ImportConv(n); break;
                case "BatchNormalization": ImportBatchNorm(n); break;
                case "Clip": ImportClip(n); break;
                case "Relu": FuseActivation(n, new ActivationRange(0, float.PositiveInfinity), "Relu"); break;
                case "LeakyRelu":
                {
                    float alpha = AttrFloat(n, "alpha", 0.01f);
                    Unary(n, $"LeakyRelu(alpha={alpha})", v => v >= 0 ? v : alpha * v);
                    break;
                }
                case "PRelu":
                {
                    var slopeTensor = Const(n, 1)!;
                    var slope = slopeTensor.AsFloats();
                    if (slope.Length == 1 || (slope.Length > 1 && slope.Distinct().Count() == 1))
                    {
                        float a = slope[0];
                        Unary(n, $"PRelu(slope={a})", v => v >= 0 ? v : a * v);
                        break;
                    }
                    // One slope per channel: ONNX shape [C,1,1] or [1,C,1,1] over [1,C,H,W] / [C,H,W]; [C] or [1,C] over [1,C] / [C].
                    var x = Plain(n, 0);
                    int rank = RankOf(n.Input[0]), axis = ChannelAxis(rank);
                    var dims = slopeTensor.Dims.SkipWhile(d => d == 1).ToArray();
                    bool perChannel = slope.Length == x.Shape.C && OnnxShape(n.Input[0])![axis] == x.Shape.C
                        && slopeTensor.Dims.Length <= rank && dims.Length == rank - axis && dims[0] == x.Shape.C && dims.Skip(1).All(d => d == 1);
                    if (slope.Any(v => !float.IsFinite(v))) throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} has a non-finite slope");
                    string name = n.Name.Length > 0 ? n.Name : n.Output[0];
                    if (!perChannel)
                    {
                        // slopes along other axes: those axes become the channels of a moved copy, and move back after
                        var shape = OnnxShape(n.Input[0])!;
                        var axes = VaryingAxes(n, shape, slopeTensor.Dims, "PRelu slope");
                        OverAxes(n, new[] { Act(n, 0) }, axes, axes.Select(a => shape[a]).ToArray(),
                            (ins, o) => new ChannelPRelu(name, ins[0], o, slope), "PRelu");
                        break;
                    }
                    AddLayer(n, new ChannelPRelu(name, x, NewTensor(n, x.Shape), slope));
                    break;
                }
                case "Sigmoid": Unary(n, "Sigmoid", v => 1f / (1f + MathF.Exp(-v))); break;
                case "HardSigmoid":
                {
                    float alpha = AttrFloat(n, "alpha", 0.2f), beta = AttrFloat(n, "beta", 0.5f);
                    Unary(n, $"HardSigmoid(alpha={alpha},beta={beta})", v => Math.Clamp(alpha * v + beta, 0f, 1f));
                    break;
                }
                case "HardSwish": Unary(n, "HardSwish", v => v * Math.Clamp(v / 6f + 0.5f, 0f, 1f)); break;
                case "Pad": ImportPad(n); break;
                case "Add": ImportAddOrSub(n, subtract: false); break;
                case "Sub": ImportAddOrSub(n, subtract: true); break;
                case "Mul": ImportMul(n, divide: false); break;
                case "Div": ImportMul(n, divide: true); break;
                case "Concat": ImportConcat(n); break;
                case "AveragePool": ImportPool(n, global: false, max: false); break;
                case "GlobalAveragePool": ImportPool(n, global: true, max: false); break;
                case "MaxPool": ImportPool(n, global: false, max: true); break;
                case "GlobalMaxPool": ImportPool(n, global: true, max: true); break;
                case "ReduceMean": ImportReduceMean(n); break;
                case "Reshape": ImportReshape(n, Const(n, 1)!.AsInts()); break;
                case "Flatten": ImportFlatten(n); break;
                case "Transpose": case "Squeeze": case "Unsqueeze": ImportRelabel(n); break;
                case "MatMul": ImportMatMul(n); break;
                case "Gemm": ImportGemm(n); break;
                case "Softmax": ImportSoftmax(n); break;
                default: throw Unsupported(n);
            }
        }

        /// <summary>The ONNX shape of an activation, as the model's operators see it.</summary>
        private long[]? OnnxShape(string name)
        {
            if (!_values.TryGetValue(name, out var v)) return null;
            if (v.Dims != null) return v.Dims;
            var s = v.Tensor.Shape;
            long h = s.H + v.PendingPad.Top + v.PendingPad.Bottom, w = s.W + v.PendingPad.Left + v.PendingPad.Right;
            return v.Rank switch
            {
                2 => v.FlattenedFromNchw != null ? new long[] { 1, s.Elements } : new long[] { (long)s.H * s.W, s.C },
                1 => new long[] { s.Elements },
                3 => new long[] { s.C, h, w },
                _ => new long[] { 1, s.C, h, w },
            };
        }

        private CompilerException Unsupported(NodeProto n) => Error(ErrorCodes.UnsupportedOperator,
            $"{NodeLabel(n)} is not supported. Supported operators (domain ai.onnx): {string.Join(", ", SupportedOperators)}; " +
            $"pre-quantized (QOperator): {string.Join(", ", QOperatorLowering.SupportedOperators)}.");

        private void ImportConstant(NodeProto n)
        {
            var t = Attr(n, "value")?.T;
            if (t != null) { _constants[n.Output[0]] = ConstantTensor.Decode(t, _path); return; }
            if (Attr(n, "value_float") is { } f) { _constants[n.Output[0]] = new(n.Output[0], Array.Empty<long>(), new[] { f.F }, null); return; }
            if (Attr(n, "value_floats") is { } fs) { _constants[n.Output[0]] = new(n.Output[0], new long[] { fs.Floats.Count }, fs.Floats.ToArray(), null); return; }
            if (Attr(n, "value_int") is { } i) { _constants[n.Output[0]] = new(n.Output[0], Array.Empty<long>(), null, new[] { i.I }); return; }
            if (Attr(n, "value_ints") is { } iss) { _constants[n.Output[0]] = new(n.Output[0], new long[] { iss.Ints.Count }, null, iss.Ints.ToArray()); return; }
            throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} has no value attribute of a supported kind");
        }

        private Window ReadWindow(NodeProto n, TensorShape input, int kh, int kw, Padding extraPad)
        {
            var strides = AttrInts(n, "strides") ?? new long[] { 1, 1 };
            var dil = AttrInts(n, "dilations") ?? new long[] { 1, 1 };
            var pads = AttrInts(n, "pads") ?? new long[] { 0, 0, 0, 0 };
            if (strides.Length != 2 || dil.Length != 2 || pads.Length != 4)
                throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} is not a 2-D operator (strides/dilations/pads of the wrong length)");
            int sh = (int)strides[0], sw = (int)strides[1], dh = (int)dil[0], dw = (int)dil[1];
            if (sh < 1 || sw < 1 || dh < 1 || dw < 1 || pads.Any(p => p < 0))
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has invalid strides, dilations or pads");
            var pad = new Padding((int)pads[0], (int)pads[1], (int)pads[2], (int)pads[3]);
            var autoPad = AttrString(n, "auto_pad", "NOTSET");
            if (autoPad is "SAME_UPPER" or "SAME_LOWER")
            {
                int Total(int size, int k, int s, int d) => Math.Max(0, ((size + s - 1) / s - 1) * s + (k - 1) * d + 1 - size);
                int th = Total(input.H, kh, sh, dh), tw = Total(input.W, kw, sw, dw);
                pad = autoPad == "SAME_UPPER"
                    ? new Padding(th / 2, tw / 2, th - th / 2, tw - tw / 2)
                    : new Padding(th - th / 2, tw - tw / 2, th / 2, tw / 2);
            }
            else if (autoPad == "VALID") pad = Padding.Zero;
            else if (autoPad != "NOTSET") throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} has auto_pad '{autoPad}'");
            return new Window(kh, kw, sh, sw, dh, dw, pad.Add(extraPad));
        }

        private TensorShape WindowOutput(NodeProto n, Window w, TensorShape input, int channels)
        {
            var shape = new TensorShape(w.OutputSize(input.H, true), w.OutputSize(input.W, false), channels);
            if (shape.H <= 0 || shape.W <= 0)
                throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)}: the kernel does not fit the {input.H}x{input.W} input");
            return shape;
        }

        private void ImportConv(NodeProto n)
        {
            var x = Act(n, 0);
            var w = Const(n, 1)!;
            var b = Const(n, 2, required: false);
            var input = x.Tensor.Shape;
            if (w.Dims.Length != 4) throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} is not a 2-D convolution (weights of rank {w.Dims.Length})");
            int cout = (int)w.Dims[0], cinPerGroup = (int)w.Dims[1], kh = (int)w.Dims[2], kw = (int)w.Dims[3];
            int groups = (int)AttrInt(n, "group", 1);
            if (groups < 1 || input.C != cinPerGroup * groups || cout % groups != 0)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)}: weights {string.Join("x", w.Dims)} with group {groups} do not fit an input of {input.C} channels");
            var window = ReadWindow(n, input, kh, kw, x.PendingPad);
            var shape = WindowOutput(n, window, input, cout);
            // ONNX [Cout][Cin/g][kh][kw] -> [Cout][kh][kw][Cin/g]
            var src = w.AsFloats();
            var dst = new float[src.Length];
            for (int o = 0; o < cout; o++)
                for (int i = 0; i < cinPerGroup; i++)
                    for (int y = 0; y < kh; y++)
                        for (int xx = 0; xx < kw; xx++)
                            dst[((o * kh + y) * kw + xx) * cinPerGroup + i] = src[((o * cinPerGroup + i) * kh + y) * kw + xx];
            var bias = b?.AsFloats() ?? new float[cout];
            if (bias.Length != cout) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has {bias.Length} biases for {cout} output channels");
            var conv = new Conv2D(n.Name.Length > 0 ? n.Name : n.Output[0], x.Tensor, NewTensor(n, shape), window, groups, dst, bias, ActivationRange.None);
            AddLayer(n, conv);
            KeepWeightScales(n, conv, n.Input[1], outputAxis: 0, cout);
        }

        private void ImportBatchNorm(NodeProto n)
        {
            var scale = Const(n, 1)!.AsFloats(); var shift = Const(n, 2)!.AsFloats();
            var mean = Const(n, 3)!.AsFloats(); var variance = Const(n, 4)!.AsFloats();
            float eps = AttrFloat(n, "epsilon", 1e-5f);
            if (AttrInt(n, "spatial", 1) != 1 || (n.Output.Count > 1 && n.Output.Skip(1).Any(o => o.Length > 0)))
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} is in training form (spatial=0 or running statistics outputs); export the model for inference");
            var x = Unpadded(n, Act(n, 0));
            int c = x.Tensor.Shape.C;
            if (new[] { scale, shift, mean, variance }.Any(a => a.Length != c))
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} parameters do not have {c} channels");
            if (LinearProducer(n, 0) is Conv2D conv)
            {
                _imported.WeightScales.Remove(conv);
                int per = conv.Weights.Length / c;
                for (int o = 0; o < c; o++)
                {
                    double k = scale[o] / Math.Sqrt(variance[o] + (double)eps);
                    for (int i = 0; i < per; i++) conv.Weights[o * per + i] = (float)(conv.Weights[o * per + i] * k);
                    conv.Bias[o] = (float)((conv.Bias[o] - mean[o]) * k + shift[o]);
                }
                Rename(n, conv.Output);
                return;
            }
            // A batch norm on its own is a per-channel affine map: a 1x1 depthwise convolution.
            var w = new float[c]; var b = new float[c];
            for (int o = 0; o < c; o++)
            {
                double k = scale[o] / Math.Sqrt(variance[o] + (double)eps);
                w[o] = (float)k; b[o] = (float)(shift[o] - mean[o] * k);
            }
            var t = Plain(n, 0);
            if (c == 1) throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)}: a stand-alone batch norm on one channel is not supported");
            AddLayer(n, new Conv2D(n.Name.Length > 0 ? n.Name : n.Output[0], t, NewTensor(n, t.Shape),
                new Window(1, 1, 1, 1, 1, 1, Padding.Zero), c, w, b, ActivationRange.None));
        }

        private void ImportClip(NodeProto n)
        {
            float min = float.NegativeInfinity, max = float.PositiveInfinity;
            if (_opset is > 0 and < 11)
            {
                min = AttrFloat(n, "min", float.NegativeInfinity); max = AttrFloat(n, "max", float.PositiveInfinity);
            }
            else
            {
                if (Const(n, 1, required: false) is { } lo) min = Scalar(n, lo);
                if (Const(n, 2, required: false) is { } hi) max = Scalar(n, hi);
            }
            FuseActivation(n, new ActivationRange(min, max), $"Clip({min},{max})");
        }

        private void FuseActivation(NodeProto n, ActivationRange range, string function)
        {
            switch (SoleProducer(n))
            {
                case Conv2D conv: conv.Activation = conv.Activation.Intersect(range); Rename(n, conv.Output); return;
                case Add add: add.Activation = add.Activation.Intersect(range); Rename(n, add.Output); return;
                case FullyConnected fc: fc.Activation = fc.Activation.Intersect(range); Rename(n, fc.Output); return;
            }
            Unary(n, function, range.Apply);
        }

        private void Unary(NodeProto n, string function, Func<float, float> f)
        {
            var x = Plain(n, 0);
            AddLayer(n, new UnaryElementwise(n.Name.Length > 0 ? n.Name : n.Output[0], x, NewTensor(n, x.Shape), function, f));
        }

        /// <summary>
        /// The value with its pending zero padding applied: a 1x1 depthwise convolution with weight 1 and the padding, so it
        /// stays exact in float and spatially local (it can run patch by patch). A value without padding as it is.
        /// </summary>
        private Value Unpadded(NodeProto n, Value v)
        {
            if (v.PendingPad == default) return v;
            return new Value(DepthwiseIdentity(n, v.Tensor, v.PendingPad, 0, (n.Output.FirstOrDefault() ?? n.Name) + "/padded"), v.Rank);
        }

        /// <summary>y = x + offset on a 1x1 depthwise convolution with the given zero padding (padded pixels become offset).</summary>
        private Tensor DepthwiseIdentity(NodeProto n, Tensor x, Padding pad, float offset, string name)
        {
            var s = x.Shape;
            var shape = new TensorShape(s.H + pad.Top + pad.Bottom, s.W + pad.Left + pad.Right, s.C);
            return Append(new Conv2D(name, x, new Tensor(name, shape), new Window(1, 1, 1, 1, 1, 1, pad), s.C,
                Enumerable.Repeat(1f, s.C).ToArray(), Enumerable.Repeat(offset, s.C).ToArray(), ActivationRange.None));
        }

        private void ImportPad(NodeProto n)
        {
            var mode = AttrString(n, "mode", "constant");
            long[] pads;
            float value = 0;
            if (_opset is > 0 and < 11)
            {
                pads = AttrInts(n, "pads") ?? AttrInts(n, "paddings") ?? throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has no pads");
                value = AttrFloat(n, "value", 0);
            }
            else
            {
                pads = Const(n, 1)!.AsInts();
                if (Const(n, 2, required: false) is { } v) value = Scalar(n, v);
                if (Const(n, 3, required: false) is { } axesInput)
                {
                    // pads for the listed axes only: widen to [begin of every axis..., end of every axis...]
                    int rank = RankOf(n.Input[0]);
                    var axes = axesInput.AsInts().Select(a => a < 0 ? a + rank : a).ToArray();
                    if (axes.Any(a => a < 0 || a >= rank) || axes.Distinct().Count() != axes.Length || pads.Length != 2 * axes.Length)
                        throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has axes [{string.Join(",", axesInput.AsInts())}] and {pads.Length} pads for a rank-{rank} tensor");
                    var full = new long[2 * rank];
                    for (int k = 0; k < axes.Length; k++) { full[axes[k]] = pads[k]; full[rank + axes[k]] = pads[axes.Length + k]; }
                    pads = full;
                }
            }
            var x = Act(n, 0);
            if (mode != "constant" || pads.Length != 8 || pads[0] != 0 || pads[1] != 0 || pads[4] != 0 || pads[5] != 0 || pads.Any(p => p < 0) || x.Rank != 4)
                throw Error(ErrorCodes.UnsupportedOperator,
                    $"{NodeLabel(n)}: only constant padding of height and width of an NCHW map is supported (mode '{mode}', pads [{string.Join(",", pads)}])");
            var pad = new Padding((int)pads[2], (int)pads[3], (int)pads[6], (int)pads[7]);
            if (value == 0) { Define(n, x with { PendingPad = x.PendingPad.Add(pad) }); return; }
            // pad(x - v) + v: the zeros of the padding become v
            x = Unpadded(n, x);
            var shifted = DepthwiseIdentity(n, x.Tensor, Padding.Zero, -value, n.Output[0] + "/shifted");
            Define(n, new Value(DepthwiseIdentity(n, shifted, pad, value, n.Output[0]), x.Rank));
        }

        /// <summary>
        /// A constant that broadcasts per channel over an activation: one value, or ONNX shape [C,1,1] / [1,C,1,1] for a
        /// feature map, [C] / [1,C] for a vector. Null when it broadcasts otherwise.
        /// </summary>
        private float[]? PerChannel(ConstantTensor c, Tensor t)
        {
            var v = c.AsFloats();
            int ch = t.Shape.C;
            if (v.Length == 1) return Enumerable.Repeat(v[0], ch).ToArray();
            if (v.Length != ch) return null;
            var dims = c.Dims.SkipWhile(d => d == 1).ToArray();
            bool vector = t.Shape.H * t.Shape.W == 1;
            bool ok = dims.Length == 0 || (dims[0] == ch && dims.Skip(1).All(d => d == 1) && (vector || dims.Length == 3));
            return ok ? v : null;
        }

        /// <summary>
        /// The axes of a tensor of dims <paramref name="shape"/> along which a constant of dims <paramref name="constant"/>
        /// (ONNX broadcasting: aligned to the right) varies; MCU1003 when it does not broadcast.
        /// </summary>
        private int[] VaryingAxes(NodeProto n, long[] shape, long[] constant, string what)
        {
            int off = shape.Length - constant.Length;
            if (off < 0 || constant.Select((d, k) => d == 1 || d == shape[k + off]).Any(ok => !ok))
                throw Error(ErrorCodes.UnsupportedOperator,
                    $"{NodeLabel(n)}: {what} of shape [{string.Join(",", constant)}] does not broadcast over [{string.Join(",", shape)}]");
            return Enumerable.Range(0, constant.Length).Where(k => constant[k] != 1).Select(k => k + off).ToArray();
        }

        /// <summary>
        /// An activation and a constant that varies along other axes than the channels (a bias along the last axis of a
        /// channels-last map, say): those axes are moved to the channels of a copy, a 1x1 depthwise convolution applies
        /// y = scale * x + shift per element of the constant, and the result moves back.
        /// </summary>
        private void AffineAlongAxes(NodeProto n, int actIndex, ConstantTensor c, Func<float, (float Scale, float Shift)> affine)
        {
            var x = Materialize(n, Act(n, actIndex));
            var shape = Layout(x).Dims;
            var axes = VaryingAxes(n, shape, c.Dims, $"{n.OpType} constant");
            var parts = c.AsFloats().Select(affine).ToArray();
            string name = n.Name.Length > 0 ? n.Name : n.Output[0];
            OverAxes(n, new[] { x }, axes, axes.Select(a => shape[a]).ToArray(),
                (ins, o) => new Conv2D(name, ins[0], o, new Window(1, 1, 1, 1, 1, 1, Padding.Zero), parts.Length,
                    parts.Select(p => p.Scale).ToArray(), parts.Select(p => p.Shift).ToArray(), ActivationRange.None),
                $"{n.OpType} by a constant along axes [{string.Join(",", axes)}]");
        }

        /// <summary>y = scale[c] * x + shift[c]: a 1x1 depthwise convolution.</summary>
        private void Affine(NodeProto n, Tensor x, float[] scale, float[] shift)
        {
            int c = x.Shape.C;
            AddLayer(n, new Conv2D(n.Name.Length > 0 ? n.Name : n.Output[0], x, NewTensor(n, x.Shape),
                new Window(1, 1, 1, 1, 1, 1, Padding.Zero), c, scale, shift, ActivationRange.None));
        }

        private static (float[] W, float[] B, int PerChannel) WeightsOf(Layer l) => l switch
        {
            Conv2D c => (c.Weights, c.Bias, c.Weights.Length / c.OutChannels),
            FullyConnected f => (f.Weights, f.Bias, f.InFeatures),
            _ => throw new InvalidOperationException(),
        };

        private void ImportAddOrSub(NodeProto n, bool subtract)
        {
            if (n.Input.Count < 2) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} needs two inputs");
            bool c0 = _constants.ContainsKey(n.Input[0]), c1 = _constants.ContainsKey(n.Input[1]);
            if (c0 || c1)
            {
                int actIndex = c0 ? 1 : 0;
                var x = Plain(n, actIndex);
                // y = sx * x + k * sk
                float sx = subtract && c0 ? -1 : 1, sk = subtract && c1 ? -1 : 1;
                var k = PerChannel(Const(n, c0 ? 0 : 1)!, x);
                if (k == null)
                {
                    AffineAlongAxes(n, actIndex, Const(n, c0 ? 0 : 1)!, v => (sx, sk * v));
                    return;
                }
                if (LinearProducer(n, actIndex) is { } p)
                {
                    var (w, b, per) = WeightsOf(p);
                    if (sx != 1) _imported.WeightScales.Remove(p);
                    for (int o = 0; o < b.Length; o++)
                    {
                        for (int i = 0; i < per; i++) w[o * per + i] *= sx;
                        b[o] = sx * b[o] + sk * k[o];
                    }
                    Rename(n, p.Output);
                    return;
                }
                Affine(n, x, Enumerable.Repeat(sx, x.Shape.C).ToArray(), k.Select(v => sk * v).ToArray());
                return;
            }
            var (a, bb, rank) = ActivationPair(n, "combines", mayReorder: !subtract);
            AddLayer(n, new Add(n.Name.Length > 0 ? n.Name : n.Output[0], a, bb, NewTensor(n, a.Shape), subtract), rank);
        }

        /// <summary>
        /// The two activations of an element-wise binary operator, and the rank of its result: equal shapes, a map and a
        /// per-channel [1,C,1,1] vector (read per pixel, no copy), or else any ONNX (numpy) broadcast, where the smaller
        /// operand is expanded to the result's shape by a <see cref="Relayout"/> with zero strides.
        /// </summary>
        private (Tensor A, Tensor B, int Rank) ActivationPair(NodeProto n, string verb, bool mayReorder)
        {
            var a = Plain(n, 0); var b = Plain(n, 1);
            int ra = RankOf(n.Input[0]), rb = RankOf(n.Input[1]);
            if (ra == rb && a.Shape == b.Shape) return (a, b, ra);
            bool Vector(Tensor t, int rank) => t.Shape.H * t.Shape.W == 1 && rank >= 3;
            if (ra == rb && a.Shape.C == b.Shape.C)
            {
                if (Vector(b, rb)) return (a, b, ra);
                if (Vector(a, ra) && mayReorder) return (b, a, ra);
            }
            var sa = OnnxShape(n.Input[0])!; var sb = OnnxShape(n.Input[1])!;
            int rank = Math.Max(sa.Length, sb.Length);
            var result = new long[rank];
            for (int k = 0; k < rank; k++)
            {
                long da = k < rank - sa.Length ? 1 : sa[k - (rank - sa.Length)], db = k < rank - sb.Length ? 1 : sb[k - (rank - sb.Length)];
                result[k] = da == db || db == 1 ? da : da == 1 ? db
                    : throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} {verb} tensors of shapes [{string.Join(",", sa)}] and [{string.Join(",", sb)}], which do not broadcast");
            }
            Tensor Expanded(int index, long[] shape)
            {
                var v = Materialize(n, Act(n, index), n.Output[0] + $"/flatten{index}");
                var strides = Layout(v).Strides;
                var view = new long[rank];
                for (int k = rank - shape.Length; k < rank; k++)
                    view[k] = shape[k - (rank - shape.Length)] == 1 ? 0 : strides[k - (rank - shape.Length)];
                return Gather(n, v, result, view, $"Expand([{string.Join(",", shape)}] -> [{string.Join(",", result)}])", n.Output[0] + $"/expanded{index}").Tensor;
            }
            return (Expanded(0, sa), Expanded(1, sb), rank);
        }

        private void ImportMul(NodeProto n, bool divide)
        {
            if (n.Input.Count < 2) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} needs two inputs");
            bool c0 = _constants.ContainsKey(n.Input[0]), c1 = _constants.ContainsKey(n.Input[1]);
            if (c0 && divide) throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} divides a constant by an activation");
            if (c0 || c1)
            {
                int actIndex = c0 ? 1 : 0;
                var x = Plain(n, actIndex);
                var k = PerChannel(Const(n, c0 ? 0 : 1)!, x);
                if (k == null)
                {
                    var c = Const(n, c0 ? 0 : 1)!;
                    if (c.AsFloats().Any(v => !float.IsFinite(v) || (divide && v == 0))) throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} scales by a non-finite value");
                    AffineAlongAxes(n, actIndex, c, v => (divide ? 1 / v : v, 0f));
                    return;
                }
                if (divide) k = k.Select(v => 1 / v).ToArray();
                if (k.Any(v => !float.IsFinite(v))) throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} scales by a non-finite value");
                if (LinearProducer(n, actIndex) is { } p)
                {
                    var (w, b, per) = WeightsOf(p);
                    _imported.WeightScales.Remove(p);
                    for (int o = 0; o < b.Length; o++)
                    {
                        for (int i = 0; i < per; i++) w[o * per + i] *= k[o];
                        b[o] *= k[o];
                    }
                    Rename(n, p.Output);
                    return;
                }
                if (k.Distinct().Count() == 1)
                {
                    float s = k[0];
                    Unary(n, $"Mul({s})", v => v * s);
                }
                else Affine(n, x, k, new float[x.Shape.C]);
                return;
            }
            if (divide) throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} divides two activations, which is not supported");
            var (a, bb, rank) = ActivationPair(n, "multiplies", mayReorder: true);
            AddLayer(n, new Mul(n.Name.Length > 0 ? n.Name : n.Output[0], a, bb, NewTensor(n, a.Shape)), rank);
        }

        private void ImportConcat(NodeProto n)
        {
            if (n.Input.Count == 0) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has no inputs");
            var xs = Enumerable.Range(0, n.Input.Count).Select(i => Plain(n, i)).ToList();
            int rank = RankOf(n.Input[0]);
            long axis = AttrInt(n, "axis", 1);
            if (axis < 0) axis += rank;
            if (axis < 0 || axis >= rank) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has axis {axis} for rank-{rank} inputs");
            var shapes = Enumerable.Range(0, n.Input.Count).Select(i => OnnxShape(n.Input[i])!).ToList();
            if (shapes.Any(d => d.Length != rank || Enumerable.Range(0, rank).Any(k => k != axis && d[k] != shapes[0][k])))
                throw Error(ErrorCodes.UnsupportedOperator,
                    $"{NodeLabel(n)} concatenates [{string.Join("], [", shapes.Select(d => string.Join(",", d)))}] along axis {axis}; the inputs must have one rank and equal sizes except along the axis");
            if (axis != ChannelAxis(rank) || xs.Any(x => x.Shape.H != xs[0].Shape.H || x.Shape.W != xs[0].Shape.W))
            {
                // along another axis: that axis becomes the channels of moved copies, which are concatenated and moved back
                string name = n.Name.Length > 0 ? n.Name : n.Output[0];
                OverAxes(n, Enumerable.Range(0, n.Input.Count).Select(i => Act(n, i)).ToList(), new[] { (int)axis },
                    new[] { shapes.Sum(d => d[axis]) }, (ins, o) => new Concat(name, ins, o), $"Concat(axis={axis})");
                return;
            }
            AddLayer(n, new Concat(n.Name.Length > 0 ? n.Name : n.Output[0], xs,
                NewTensor(n, new TensorShape(xs[0].Shape.H, xs[0].Shape.W, xs.Sum(x => x.Shape.C)))));
        }

        private void ImportPool(NodeProto n, bool global, bool max)
        {
            var x = Act(n, 0);
            var input = x.Tensor.Shape;
            // Zeros padded in front of an average pool are its counted padding (count_include_pad); a max pool would
            // see them as values, and a pool with its own uncounted pads would mix both kinds.
            bool countedPad = !max && !global && (AttrInt(n, "count_include_pad", 0) != 0 || (AttrInts(n, "pads") ?? Array.Empty<long>()).All(p => p == 0));
            if (x.PendingPad != default && !countedPad)
            {
                x = Unpadded(n, x); // the padded values take part (max pooling) or count only where the pool does not pad itself
                input = x.Tensor.Shape;
            }
            if (x.Rank < 3) throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} pools a tensor that is not NCHW");
            Window window;
            if (global) window = new Window(input.H, input.W, 1, 1, 1, 1, Padding.Zero);
            else
            {
                var k = AttrInts(n, "kernel_shape") ?? throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has no kernel_shape");
                if (k.Length != 2) throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} is not a 2-D pool");
                if (k.Any(v => v < 1 || v > 4096)) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has an invalid kernel_shape");
                window = ReadWindow(n, input, (int)k[0], (int)k[1], x.PendingPad) with
                {
                    CeilMode = AttrInt(n, "ceil_mode", 0) != 0,
                    CountIncludePad = !max && (AttrInt(n, "count_include_pad", 0) != 0 || x.PendingPad != default),
                };
                if (!max && (window.DilationH != 1 || window.DilationW != 1))
                    throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} uses dilations, which are not supported for average pooling");
                if (max && n.Output.Count > 1 && n.Output[1].Length > 0)
                    throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} asks for the Indices output, which is not supported");
            }
            var shape = WindowOutput(n, window, input, input.C);
            var name = n.Name.Length > 0 ? n.Name : n.Output[0];
            AddLayer(n, max ? new MaxPool(name, x.Tensor, NewTensor(n, shape), window) : new AveragePool(name, x.Tensor, NewTensor(n, shape), window));
        }

        private void ImportReduceMean(NodeProto n)
        {
            var v = Materialize(n, Act(n, 0));
            int rank = v.Rank;
            var given = _opset >= 18 ? Const(n, 1, required: false)?.AsInts() : AttrInts(n, "axes");
            bool keep = AttrInt(n, "keepdims", 1) != 0;
            if ((given == null || given.Length == 0) && _opset >= 18 && AttrInt(n, "noop_with_empty_axes", 0) != 0)
            {
                Define(n, v); // no axes: the identity
                return;
            }
            var axes = (given == null || given.Length == 0 ? Enumerable.Range(0, rank).Select(a => (long)a) : given.Select(a => a < 0 ? a + rank : a))
                .Distinct().OrderBy(a => a).ToArray();
            if (axes.Any(a => a < 0 || a >= rank))
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} reduces axes [{string.Join(",", given!)}] of a rank-{rank} tensor");
            string name = n.Name.Length > 0 ? n.Name : n.Output[0];
            if (rank == 4 && axes.SequenceEqual(new long[] { 2, 3 }))
            {
                // over H and W: a global average pool, no data moved
                var x = v.Tensor;
                AddLayer(n, new AveragePool(name, x, NewTensor(n, new TensorShape(1, 1, x.Shape.C)),
                    new Window(x.Shape.H, x.Shape.W, 1, 1, 1, 1, Padding.Zero)), rank: keep ? 4 : 2);
                return;
            }
            // any other axes: the reduced axes become the width of a moved copy (kept axes as channels), a global
            // average pool over that row, and the kept values move to the output's shape
            var dims = Layout(v).Dims;
            var kept = Enumerable.Range(0, rank).Where(a => !axes.Contains(a)).ToArray();
            var moved = MoveInnermost(n, v, kept, "ReduceMean", n.Output[0] + "/moved");
            var pooled = Append(new AveragePool(name, moved, new Tensor(n.Output[0] + "/mean", new TensorShape(1, 1, moved.Shape.C)),
                new Window(1, moved.Shape.W, 1, 1, 1, 1, Padding.Zero)));
            // the pooled vector is row-major over the kept axes
            if (keep) MoveBack(n, pooled, dims.Select((x, a) => axes.Contains(a) ? 1L : x).ToArray(), kept, "ReduceMean");
            else MoveBack(n, pooled, kept.Length == 0 ? new long[] { 1 } : kept.Select(a => dims[a]).ToArray(), Enumerable.Range(0, kept.Length).ToArray(), "ReduceMean");
        }

        /// <summary>Transpose, Squeeze and Unsqueeze: free where they only relabel, else a <see cref="Relayout"/>.</summary>
        private void ImportRelabel(NodeProto n)
        {
            var x = Act(n, 0);
            var shape = OnnxShape(n.Input[0])!;
            if (n.OpType == "Transpose")
            {
                var perm = AttrInts(n, "perm") ?? Enumerable.Range(0, shape.Length).Reverse().Select(i => (long)i).ToArray();
                if (perm.Length == shape.Length && perm.Select((p, i) => p == i).All(b => b)) Define(n, x);
                else TransposeData(n, x, perm);
                return;
            }
            var axes = AttrInts(n, "axes") ?? Const(n, 1, required: false)?.AsInts();
            ReshapeData(n, x, SqueezedShape(n, shape, axes));
        }

        /// <summary>The dims after Squeeze (the given axes, or every axis of size 1) or Unsqueeze (size-1 axes inserted at the given output positions).</summary>
        private long[] SqueezedShape(NodeProto n, long[] shape, long[]? axes)
        {
            if (n.OpType == "Squeeze")
            {
                if (axes == null) return shape.Where(d => d != 1).ToArray();
                var drop = axes.Select(a => a < 0 ? a + shape.Length : a).ToHashSet();
                if (drop.Any(a => a < 0 || a >= shape.Length || shape[a] != 1))
                    throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} squeezes axes [{string.Join(",", axes)}] of a [{string.Join(",", shape)}] tensor; only axes of size 1 can be squeezed");
                return shape.Where((_, i) => !drop.Contains(i)).ToArray();
            }
            if (axes == null) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has no axes");
            int rank = shape.Length + axes.Length;
            var insert = axes.Select(a => a < 0 ? a + rank : a).ToHashSet();
            if (insert.Count != axes.Length || insert.Any(a => a < 0 || a >= rank))
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has axes [{string.Join(",", axes)}] for a rank-{rank} output");
            var result = new long[rank];
            for (int i = 0, j = 0; i < rank; i++) result[i] = insert.Contains(i) ? 1 : shape[j++];
            return result;
        }

        /// <summary>ONNX Reshape's target with 0 (copy the input's dim, unless allowzero) and -1 (inferred) resolved.</summary>
        private long[] ReshapeTarget(NodeProto n, long[] input, long[] target)
        {
            bool allowZero = AttrInt(n, "allowzero", 0) != 0;
            var dims = target.ToArray();
            for (int i = 0; i < dims.Length; i++)
                if (dims[i] == 0 && !allowZero)
                    dims[i] = i < input.Length ? input[i] : throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} copies dimension {i}, which the input lacks");
            long total = input.Aggregate(1L, (a, d) => a * d);
            int inferred = Array.IndexOf(dims, -1L);
            if (inferred >= 0)
            {
                long known = dims.Where((d, i) => i != inferred).Aggregate(1L, (a, d) => a * d);
                if (known <= 0 || total % known != 0)
                    throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} cannot reshape [{string.Join(",", input)}] to [{string.Join(",", target)}]");
                dims[inferred] = total / known;
            }
            if (dims.Any(d => d <= 0) || dims.Aggregate(1L, (a, d) => a * d) != total)
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} reshapes [{string.Join(",", input)}] to [{string.Join(",", target)}], which is not a tensor of the same size");
            return dims;
        }

        private void ImportReshape(NodeProto n, long[] target)
        {
            var x = Unpadded(n, Act(n, 0));
            var s = x.Tensor.Shape;
            // Only [N, features] (flatten) is a relabel in channels-last layout.
            var dims = target.Select((d, i) => d == 0 ? (i == 0 ? 1 : -2) : d).ToArray();
            bool flatten = dims.Length == 2 && (dims[0] == 1 || dims[0] == -1) && (dims[1] == s.Elements || dims[1] == -1);
            if (flatten && x.Rank is 2 or 4) { Flatten(n, x); return; }
            ReshapeData(n, x, ReshapeTarget(n, OnnxShape(n.Input[0])!, target));
        }

        private void ImportFlatten(NodeProto n)
        {
            var x = Unpadded(n, Act(n, 0));
            int rank = x.Rank;
            long axis = AttrInt(n, "axis", 1);
            if (axis < 0) axis += rank;
            if (axis < 0 || axis > rank)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} flattens a rank-{rank} tensor at axis {axis}");
            if (axis == 1 && rank is 4 or 2) { Flatten(n, x); return; }
            var shape = OnnxShape(n.Input[0])!;
            ReshapeData(n, x, new[] { shape.Take((int)axis).Aggregate(1L, (a, d) => a * d), shape.Skip((int)axis).Aggregate(1L, (a, d) => a * d) });
        }

        private void Flatten(NodeProto n, Value x)
        {
            var s = x.Tensor.Shape;
            // NCHW flatten order differs from our NHWC order; the consuming fully connected layer permutes its weights.
            Define(n, x with { Rank = 2, FlattenedFromNchw = s.H * s.W == 1 ? x.FlattenedFromNchw : x.FlattenedFromNchw ?? s });
        }

        private float[] FcWeightsFromKxN(float[] w, int k, int nOut, TensorShape? nchw)
        {
            var result = new float[nOut * k];
            for (int o = 0; o < nOut; o++)
                for (int i = 0; i < k; i++)
                    result[o * k + NhwcIndex(i, nchw)] = w[i * nOut + o];
            return result;
        }

        /// <summary>Position in NHWC order of feature i of an NCHW-flattened tensor.</summary>
        private static int NhwcIndex(int i, TensorShape? nchw)
        {
            if (nchw is not { } s) return i;
            int c = i / (s.H * s.W), rem = i % (s.H * s.W);
            return rem * s.C + c;
        }

        private void ImportMatMul(NodeProto n)
        {
            var x = Unpadded(n, Act(n, 0));
            var w = Const(n, 1)!;
            int k = x.Tensor.Shape.Elements;
            if (w.Dims.Length == 2 && x.Tensor.Shape.H * x.Tensor.Shape.W != 1 && x.FlattenedFromNchw == null && x.Dims == null)
            {
                MatMulAlongLastAxis(n, x, w);
                return;
            }
            if (w.Dims.Length != 2 || w.Dims[0] != k || (x.Tensor.Shape.H * x.Tensor.Shape.W != 1 && x.FlattenedFromNchw == null))
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)}: only a constant [K, N] right side is supported (here [{string.Join(",", w.Dims)}] for an input of {k} values)");
            int nOut = (int)w.Dims[1];
            var fc = new FullyConnected(n.Name.Length > 0 ? n.Name : n.Output[0], x.Tensor, NewTensor(n, new TensorShape(1, 1, nOut)),
                FcWeightsFromKxN(w.AsFloats(), k, nOut, x.FlattenedFromNchw), new float[nOut]);
            AddLayer(n, fc);
            KeepWeightScales(n, fc, n.Input[1], outputAxis: 1, nOut);
        }

        /// <summary>
        /// [..., M, K] x [K, N] (e.g. a Keras Dense layer on a channels-last map): the last axis becomes the channels of a
        /// moved copy, a 1x1 convolution maps K to N on every row, and the result moves back to [..., M, N].
        /// </summary>
        private void MatMulAlongLastAxis(NodeProto n, Value x, ConstantTensor w)
        {
            var (dims, _) = Layout(x);
            int last = dims.Length - 1;
            int kIn = (int)w.Dims[0], nOut = (int)w.Dims[1];
            if (dims[last] != kIn)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} multiplies [{string.Join(",", dims)}] by [{string.Join(",", w.Dims)}]: the inner dimensions differ");
            var kxn = w.AsFloats();
            var weights = new float[nOut * kIn]; // Conv2D [Cout][1][1][Cin]
            for (int o = 0; o < nOut; o++)
                for (int i = 0; i < kIn; i++) weights[o * kIn + i] = kxn[i * nOut + o];
            Conv2D? conv = null;
            string name = n.Name.Length > 0 ? n.Name : n.Output[0];
            OverAxes(n, new[] { x }, new[] { last }, new long[] { nOut },
                (ins, o) => conv = new Conv2D(name, ins[0], o, new Window(1, 1, 1, 1, 1, 1, Padding.Zero), 1, weights, new float[nOut], ActivationRange.None),
                "MatMul");
            KeepWeightScales(n, conv!, n.Input[1], outputAxis: 1, nOut);
        }

        private void ImportGemm(NodeProto n)
        {
            var x = Unpadded(n, Act(n, 0));
            var w = Const(n, 1)!;
            var c = Const(n, 2, required: false);
            float alpha = AttrFloat(n, "alpha", 1), beta = AttrFloat(n, "beta", 1);
            if (AttrInt(n, "transA", 0) != 0) throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} uses transA=1");
            if (x.Tensor.Shape.H * x.Tensor.Shape.W != 1 && x.FlattenedFromNchw == null)
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)}: only a [1, K] input is supported (one row)");
            bool transB = AttrInt(n, "transB", 0) != 0;
            int k = x.Tensor.Shape.Elements;
            if (w.Dims.Length != 2 || w.Dims[transB ? 1 : 0] != k)
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)}: weights {string.Join("x", w.Dims)} do not fit {k} input features");
            int nOut = (int)w.Dims[transB ? 0 : 1];
            var src = w.AsFloats();
            var kxn = transB ? Enumerable.Range(0, k * nOut).Select(j => src[(j % nOut) * k + j / nOut]).ToArray() : src;
            var weights = FcWeightsFromKxN(kxn, k, nOut, x.FlattenedFromNchw).Select(v => v * alpha).ToArray();
            var bias = new float[nOut];
            if (c != null)
            {
                var cv = c.AsFloats();
                if (cv.Length != nOut && cv.Length != 1) throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} bias of {cv.Length} values for {nOut} outputs");
                for (int o = 0; o < nOut; o++) bias[o] = beta * cv[cv.Length == 1 ? 0 : o];
            }
            var fc = new FullyConnected(n.Name.Length > 0 ? n.Name : n.Output[0], x.Tensor, NewTensor(n, new TensorShape(1, 1, nOut)), weights, bias);
            AddLayer(n, fc);
            if (alpha == 1) KeepWeightScales(n, fc, n.Input[1], outputAxis: transB ? 0 : 1, nOut);
        }

        private void ImportSoftmax(NodeProto n)
        {
            var x = Materialize(n, Act(n, 0));
            var t = x.Tensor;
            int rank = x.Rank;
            long axis = AttrInt(n, "axis", _opset is > 0 and < 13 ? 1 : -1);
            if (axis < 0) axis += rank;
            if (axis < 0 || axis >= rank) throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has axis {axis} for a rank-{rank} tensor");
            // before opset 13 the axis flattens everything after it: the same when only the channels follow
            bool channels = axis == ChannelAxis(rank) && (rank <= 2 || _opset >= 13 || t.Shape.H * t.Shape.W == 1)
                || (rank <= 2 && axis == rank - 1) || (t.Shape.H * t.Shape.W == 1 && axis == rank - 1);
            string name = n.Name.Length > 0 ? n.Name : n.Output[0];
            if (!channels)
            {
                // the softmax axes become the channels of a moved copy, and move back after
                var axes = Enumerable.Range((int)axis, _opset >= 13 ? 1 : rank - (int)axis).ToArray();
                var dims = Layout(x).Dims;
                OverAxes(n, new[] { x }, axes, axes.Select(a => dims[a]).ToArray(), (ins, o) => new Softmax(name, ins[0], o), $"Softmax(axis={axis})");
                return;
            }
            AddLayer(n, new Softmax(name, t, NewTensor(n, t.Shape)));
        }
    }
}
