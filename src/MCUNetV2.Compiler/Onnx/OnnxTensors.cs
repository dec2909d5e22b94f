using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Onnx.Proto;

namespace MCUNetV2.Compiler.Onnx;

/// <summary>A constant tensor of the ONNX graph (initializer or Constant node) decoded to floats or integers.</summary>
internal sealed class ConstantTensor
{
    public ConstantTensor(string name, long[] dims, float[]? floats, long[]? ints)
    {
        Name = name; Dims = dims; Floats = floats; Ints = ints;
    }
    public string Name { get; }
    public long[] Dims { get; }
    public float[]? Floats { get; }
    public long[]? Ints { get; }
    public long Count => Floats?.Length ?? Ints!.Length;
    /// <summary>The element type in the file (Undefined for constants the compiler computed).</summary>
    public TensorProto.Types.DataType ElementType { get; init; }

    public float[] AsFloats() => Floats ?? Ints!.Select(v => (float)v).ToArray();
    public long[] AsInts() => Ints ?? Floats!.Select(v => (long)v).ToArray();

    /// <summary>Decodes a TensorProto; external data is read relative to <paramref name="modelDirectory"/>.</summary>
    public static ConstantTensor Decode(TensorProto t, string modelPath)
    {
        var decoded = DecodeValues(t, modelPath);
        return new ConstantTensor(decoded.Name, decoded.Dims, decoded.Floats, decoded.Ints) { ElementType = (TensorProto.Types.DataType)t.DataType };
    }

    private static ConstantTensor DecodeValues(TensorProto t, string modelPath)
    {
        var dims = t.Dims.ToArray();
        long count = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new CompilerException(ErrorCodes.ModelCorrupt, $"initializer '{t.Name}' has a negative dimension", modelPath);
            if (d > 0 && count > (int.MaxValue / 8) / d)
                throw new CompilerException(ErrorCodes.ModelCorrupt, $"initializer '{t.Name}' is implausibly large (dimensions {string.Join("x", dims)})", modelPath);
            count *= d;
        }
        if (count > int.MaxValue / 8) throw new CompilerException(ErrorCodes.ModelCorrupt, $"initializer '{t.Name}' is implausibly large ({count} elements)", modelPath);
        int n = (int)count;
        byte[] raw = t.RawData.ToByteArray();
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            raw = ReadExternal(t, modelPath);
        var type = (TensorProto.Types.DataType)t.DataType;
        bool useRaw = raw.Length > 0;
        void CheckRaw(int elementSize)
        {
            if (useRaw && raw.Length != (long)n * elementSize)
                throw new CompilerException(ErrorCodes.ModelCorrupt, $"initializer '{t.Name}' holds {raw.Length} bytes of data, expected {(long)n * elementSize} for {n} elements", modelPath);
        }
        void CheckCount(int have)
        {
            if (have != n)
                throw new CompilerException(ErrorCodes.ModelCorrupt, $"initializer '{t.Name}' holds {have} values, expected {n}", modelPath);
        }
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
                CheckRaw(4);
                if (useRaw) { var f = new float[n]; Buffer.BlockCopy(raw, 0, f, 0, raw.Length); return new(t.Name, dims, f, null); }
                CheckCount(t.FloatData.Count);
                return new(t.Name, dims, t.FloatData.ToArray(), null);
            case TensorProto.Types.DataType.Double:
                CheckRaw(8);
                if (useRaw) return new(t.Name, dims, Enumerable.Range(0, n).Select(i => (float)BitConverter.ToDouble(raw, i * 8)).ToArray(), null);
                CheckCount(t.DoubleData.Count);
                return new(t.Name, dims, t.DoubleData.Select(v => (float)v).ToArray(), null);
            case TensorProto.Types.DataType.Int64:
                CheckRaw(8);
                if (useRaw) return new(t.Name, dims, null, Enumerable.Range(0, n).Select(i => BitConverter.ToInt64(raw, i * 8)).ToArray());
                CheckCount(t.Int64Data.Count);
                return new(t.Name, dims, null, t.Int64Data.ToArray());
            case TensorProto.Types.DataType.Int32:
                CheckRaw(4);
                if (useRaw) return new(t.Name, dims, null, Enumerable.Range(0, n).Select(i => (long)BitConverter.ToInt32(raw, i * 4)).ToArray());
                CheckCount(t.Int32Data.Count);
                return new(t.Name, dims, null, t.Int32Data.Select(v => (long)v).ToArray());
            case TensorProto.Types.DataType.Int8:
                CheckRaw(1);
                if (useRaw) return new(t.Name, dims, null, raw.Select(b => (long)(sbyte)b).ToArray());
                CheckCount(t.Int32Data.Count);
                return new(t.Name, dims, null, t.Int32Data.Select(v => (long)(sbyte)v).ToArray());
            case TensorProto.Types.DataType.Uint8:
                CheckRaw(1);
                if (useRaw) return new(t.Name, dims, null, raw.Select(b => (long)b).ToArray());
                CheckCount(t.Int32Data.Count);
                return new(t.Name, dims, null, t.Int32Data.Select(v => (long)(byte)v).ToArray());
            default:
                throw new CompilerException(ErrorCodes.UnsupportedModel,
                    $"initializer '{t.Name}' has element type {type}; supported are float, double, int64, int32, int8 and uint8", modelPath);
        }
    }

    private static byte[] ReadExternal(TensorProto t, string modelPath)
    {
        var kv = t.ExternalData.ToDictionary(e => e.Key, e => e.Value);
        if (!kv.TryGetValue("location", out var location) || string.IsNullOrEmpty(location))
            throw new CompilerException(ErrorCodes.ModelCorrupt, $"initializer '{t.Name}' is stored externally but names no location", modelPath);
        var dir = Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".";
        string file;
        try
        {
            if (Path.IsPathRooted(location) || location.Split('/', '\\').Contains(".."))
                throw new ArgumentException("the location must be a path relative to the model's folder, inside it");
            file = Path.GetFullPath(Path.Combine(dir, location));
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException or PathTooLongException)
        {
            throw new CompilerException(ErrorCodes.ModelCorrupt, $"initializer '{t.Name}' names an invalid external data location '{location}': {e.Message}", modelPath);
        }
        if (!File.Exists(file))
            throw new CompilerException(ErrorCodes.MissingInitializer, $"external data file '{location}' of initializer '{t.Name}' not found next to the model (looked for {file})", modelPath);
        long offset = 0, length = -1;
        if ((kv.TryGetValue("offset", out var o) && !long.TryParse(o, out offset)) || (kv.TryGetValue("length", out var l) && !long.TryParse(l, out length)))
            throw new CompilerException(ErrorCodes.ModelCorrupt, $"initializer '{t.Name}' has an invalid external data offset or length", modelPath);
        using var fs = File.OpenRead(file);
        if (length < 0) length = fs.Length - offset;
        if (offset < 0 || offset > fs.Length || length < 0 || length > fs.Length - offset || length > int.MaxValue / 2)
            throw new CompilerException(ErrorCodes.ModelCorrupt, $"external data of initializer '{t.Name}' lies outside '{location}'", modelPath);
        var buf = new byte[length];
        fs.Seek(offset, SeekOrigin.Begin);
        fs.ReadExactly(buf);
        return buf;
    }
}
