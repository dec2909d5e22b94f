using Google.Protobuf;
using MCUNetV2.Compiler.Onnx.Proto;
using DataType = MCUNetV2.Compiler.Onnx.Proto.TensorProto.Types.DataType;

namespace MCUNetV2.Compiler.Tests;

/// <summary>Writes small ONNX models for tests: initializers, nodes, one float input and one float output.</summary>
internal sealed class OnnxModelBuilder
{
    private readonly GraphProto _graph = new() { Name = "test" };
    private readonly Dictionary<string, long> _opsets = new() { [""] = 13 };

    public OnnxModelBuilder(int opset = 13) => _opsets[""] = opset;

    public OnnxModelBuilder Input(string name, params long[] dims) { _graph.Input.Add(Info(name, dims, DataType.Float)); return this; }
    public OnnxModelBuilder Output(string name, params long[] dims) { _graph.Output.Add(Info(name, dims, DataType.Float)); return this; }

    public OnnxModelBuilder Floats(string name, long[] dims, IEnumerable<float> values)
    {
        var t = Tensor(name, dims, DataType.Float);
        t.FloatData.AddRange(values);
        return Add(t);
    }

    public OnnxModelBuilder Int8s(string name, long[] dims, IEnumerable<sbyte> values) =>
        Add(Raw(name, dims, DataType.Int8, values.Select(v => (byte)v).ToArray()));

    public OnnxModelBuilder UInt8s(string name, long[] dims, IEnumerable<byte> values) => Add(Raw(name, dims, DataType.Uint8, values.ToArray()));

    public OnnxModelBuilder Int32s(string name, long[] dims, IEnumerable<int> values)
    {
        var t = Tensor(name, dims, DataType.Int32);
        t.Int32Data.AddRange(values);
        return Add(t);
    }

    public OnnxModelBuilder Int64s(string name, long[] dims, IEnumerable<long> values)
    {
        var t = Tensor(name, dims, DataType.Int64);
        t.Int64Data.AddRange(values);
        return Add(t);
    }

    /// <summary>A scalar float initializer.</summary>
    public OnnxModelBuilder Scalar(string name, float value) => Floats(name, Array.Empty<long>(), new[] { value });

    public OnnxModelBuilder Node(string op, string[] inputs, string output, params AttributeProto[] attributes) =>
        DomainNode("", op, inputs, output, attributes);

    public OnnxModelBuilder DomainNode(string domain, string op, string[] inputs, string output, params AttributeProto[] attributes)
    {
        var n = new NodeProto { OpType = op, Name = $"{op}_{_graph.Node.Count}", Domain = domain };
        n.Input.AddRange(inputs);
        n.Output.Add(output);
        n.Attribute.AddRange(attributes);
        _graph.Node.Add(n);
        if (domain.Length > 0 && !_opsets.ContainsKey(domain)) _opsets[domain] = 1;
        return this;
    }

    public static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };
    public static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    public static AttributeProto Ints(string name, params long[] values)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(values);
        return a;
    }

    public byte[] ToBytes()
    {
        var m = new ModelProto { IrVersion = 8, ProducerName = "MCUNetV2.Compiler.Tests", Graph = _graph };
        foreach (var (domain, version) in _opsets) m.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        return m.ToByteArray();
    }

    public string Save(string path)
    {
        File.WriteAllBytes(path, ToBytes());
        return path;
    }

    private OnnxModelBuilder Add(TensorProto t) { _graph.Initializer.Add(t); return this; }

    private static TensorProto Tensor(string name, long[] dims, DataType type)
    {
        var t = new TensorProto { Name = name, DataType = (int)type };
        t.Dims.AddRange(dims);
        return t;
    }

    private static TensorProto Raw(string name, long[] dims, DataType type, byte[] bytes)
    {
        var t = Tensor(name, dims, type);
        t.RawData = ByteString.CopyFrom(bytes);
        return t;
    }

    private static ValueInfoProto Info(string name, long[] dims, DataType type)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } },
        };
    }
}
