using System.Text;
using Google.Protobuf;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Onnx.Proto;
using DataType = MCUNetV2.Compiler.Onnx.Proto.TensorProto.Types.DataType;

namespace MCUNetV2.Compiler.Tests;

public sealed partial class ImporterFuzzTests
{
    /// <summary>A real model to mutate: its bytes, its parsed form, and the byte ranges that hold structure rather than weights.</summary>
    private sealed class FuzzModel
    {
        private FuzzModel(string name, string path, byte[] bytes, ModelProto proto, int seed, (int Start, int End)[] hot)
        {
            Name = name; Path = path; Bytes = bytes; Proto = proto; Seed = seed; Hot = hot;
        }
        public string Name { get; }
        public string Path { get; }
        public byte[] Bytes { get; }
        public ModelProto Proto { get; }
        public int Seed { get; }
        /// <summary>Byte ranges with nodes, graph inputs/outputs, opsets and initializer headers (not raw weights).</summary>
        public (int Start, int End)[] Hot { get; }

        public string DescribeOnly(int index) => Generate(this, index, $"{Name}-{index:D4}.onnx").Description;

        public static FuzzModel Load(string name, string path, int seed)
        {
            var bytes = File.ReadAllBytes(path);
            var proto = ModelProto.Parser.ParseFrom(bytes);
            var g = proto.Graph;
            var hot = new List<(int, int)>();
            // Fields are written in field-number order: nodes (1) lead the graph, inputs/outputs/value_info (11-13)
            // and the opset imports (model field 8) trail it; each initializer's dims/type/name precede its raw data.
            int head = 64 + g.Node.Sum(n => n.CalculateSize() + 4);
            hot.Add((0, Math.Min(bytes.Length, head)));
            int tail = 64 + g.Input.Concat(g.Output).Concat(g.ValueInfo).Sum(v => v.CalculateSize() + 4)
                       + proto.OpsetImport.Sum(o => o.CalculateSize() + 2);
            hot.Add((Math.Max(0, bytes.Length - tail), bytes.Length));
            foreach (var init in g.Initializer)
            {
                var at = IndexOf(bytes, Encoding.UTF8.GetBytes(init.Name), Math.Min(head, bytes.Length - 1));
                if (at >= 0) hot.Add((Math.Max(0, at - 48), Math.Min(bytes.Length, at + init.Name.Length + 16)));
            }
            return new FuzzModel(name, path, bytes, proto, seed, hot.ToArray());
        }

        private static int IndexOf(byte[] haystack, byte[] needle, int from)
        {
            if (needle.Length == 0) return -1;
            for (int i = Math.Max(0, from); i <= haystack.Length - needle.Length; i++)
                if (haystack.AsSpan(i, needle.Length).SequenceEqual(needle)) return i;
            return -1;
        }
    }

    /// <summary>Variant <paramref name="index"/> of a model: a description of the mutation and the mutated bytes.</summary>
    private static (string Description, byte[] Bytes) Generate(FuzzModel model, int index, string fileName)
    {
        var rng = new Random(unchecked(model.Seed * 7919 + index));
        var bytes = model.Bytes;
        switch (index)
        {
            case 0: return ("unmodified", bytes);
            case 1: return ($"truncate to 0 of {bytes.Length} bytes", Array.Empty<byte>());
            case 2: return ($"truncate to 1 of {bytes.Length} bytes", bytes[..1]);
            case 3:
            {
                var p = model.Proto.Clone();
                return (Legalize(p) ?? "legalize (no change)", p.ToByteArray());
            }
        }
        int roll = rng.Next(100);
        if (roll < 12) return Truncate(model, bytes, rng);
        if (roll < 27) return Overwrite(model, bytes, rng);
        if (roll < 35) return InsertDelete(model, bytes, rng);

        var proto = model.Proto.Clone();
        var steps = new List<string>();
        // mnist-8 stops at its first MaxPool otherwise; make most variants get past it so later code is exercised too.
        if (rng.Next(10) < 7 && Legalize(proto) is { } legal) steps.Add(legal);
        int count = rng.Next(4) == 0 ? rng.Next(2, 4) : 1;
        for (int s = 0; s < count; s++)
        {
            for (int attempt = 0; attempt < 20; attempt++)
            {
                var mutator = StructuredMutators[rng.Next(StructuredMutators.Length)];
                var what = mutator(proto, rng, fileName);
                if (what != null) { steps.Add(what); break; }
            }
        }
        var result = proto.ToByteArray();
        if (rng.Next(10) == 0)
        {
            var (bd, bb) = rng.Next(2) == 0 ? Overwrite(model, result, rng) : Truncate(model, result, rng);
            steps.Add(bd);
            result = bb;
        }
        return (string.Join("; then ", steps), result);
    }

    // ------------------------------------------------------------------------------------------------ byte level

    private static int PickPosition(FuzzModel model, int length, Random rng)
    {
        if (length <= 1) return 0;
        if (rng.Next(3) == 0) return rng.Next(length);
        var (start, end) = model.Hot[rng.Next(model.Hot.Length)];
        int pos = start + rng.Next(Math.Max(1, end - start));
        return Math.Clamp(pos, 0, length - 1);
    }

    private static (string, byte[]) Truncate(FuzzModel model, byte[] bytes, Random rng)
    {
        int len = bytes.Length;
        int cut = rng.Next(5) switch
        {
            0 => rng.Next(Math.Min(len, 64)),
            1 => Math.Max(0, len - 1 - rng.Next(Math.Min(len, 64))),
            2 => PickPosition(model, len, rng),
            _ => rng.Next(len),
        };
        return ($"truncate to {cut} of {len} bytes", bytes[..cut]);
    }

    private static (string, byte[]) Overwrite(FuzzModel model, byte[] source, Random rng)
    {
        if (source.Length == 0) return ("overwrite nothing (empty file)", source);
        var bytes = (byte[])source.Clone();
        int n = rng.Next(1, 17);
        var parts = new List<string>();
        for (int k = 0; k < n; k++)
        {
            int pos = PickPosition(model, bytes.Length, rng);
            byte old = bytes[pos];
            bytes[pos] = rng.Next(4) switch
            {
                0 => (byte)(old ^ (1 << rng.Next(8))),
                1 => new byte[] { 0x00, 0xFF, 0x7F, 0x80, 0x01 }[rng.Next(5)],
                _ => (byte)rng.Next(256),
            };
            parts.Add($"@{pos} {old:X2}->{bytes[pos]:X2}");
        }
        return ($"overwrite {n} byte(s): {string.Join(" ", parts)}", bytes);
    }

    private static (string, byte[]) InsertDelete(FuzzModel model, byte[] source, Random rng)
    {
        var bytes = new List<byte>(source);
        int n = rng.Next(1, 17);
        var parts = new List<string>();
        for (int k = 0; k < n; k++)
        {
            int pos = PickPosition(model, bytes.Count, rng);
            int run = rng.Next(4) == 0 ? rng.Next(1, 17) : 1;
            if (rng.Next(2) == 0 || bytes.Count == 0)
            {
                var ins = new byte[run];
                rng.NextBytes(ins);
                bytes.InsertRange(pos, ins);
                parts.Add($"+{run}@{pos}");
            }
            else
            {
                run = Math.Min(run, bytes.Count - pos);
                bytes.RemoveRange(pos, run);
                parts.Add($"-{run}@{pos}");
            }
        }
        return ($"insert/delete: {string.Join(" ", parts)}", bytes.ToArray());
    }

    // ------------------------------------------------------------------------------------------------ structured

    private delegate string? Mutator(ModelProto m, Random rng, string fileName);

    private static readonly Mutator[] StructuredMutators =
    {
        RenameOpUnsupported, SwapOpSupported, DropInitializer, DropNode, RemoveNodeInput, RewireNodeInput,
        ChangeNodeOutputs, SymbolicInputDim, HugeInputDim, ChangeInputType, ChangeOpset, AttributeInts,
        AttributeOther, InitializerDataType, TruncateInitializerData, InitializerDims, ReplaceInitializerValues,
        ChangeGraphOutputs, ChangeGraphInputs, ExternalData, NodeDomain, DuplicateOrSwapNodes, InsertConstantNode,
        InsertNode, InsertNode, GraphWide,
    };

    private static T Pick<T>(IReadOnlyList<T> list, Random rng) => list[rng.Next(list.Count)];

    private static readonly long[] NastyInts =
    {
        0, -1, -2, 1, 2, 3, 65_536, 1L << 20, int.MaxValue, (long)int.MaxValue + 1, 1L << 40, long.MaxValue,
        int.MinValue, long.MinValue, 4_294_967_296L + 2,
    };

    private static string Label(GraphProto g, NodeProto n) =>
        $"node #{g.Node.IndexOf(n)} ({n.OpType} '{(n.Name.Length > 0 ? n.Name : n.Output.FirstOrDefault() ?? "")}')";

    private static string Short(string name) => name.Length <= 48 ? name : "…" + name[^47..];

    private static ValueInfoProto? ImageInput(GraphProto g)
    {
        var inits = g.Initializer.Select(i => i.Name).ToHashSet();
        return g.Input.FirstOrDefault(i => !inits.Contains(i.Name));
    }

    /// <summary>
    /// Rewrites what the importer legitimately does not support in mnist-8 (MaxPool, a Reshape of a constant) so
    /// that mutations reach the later stages. Null when nothing changed (VWW).
    /// </summary>
    private static string? Legalize(ModelProto m)
    {
        var g = m.Graph;
        var done = new List<string>();
        foreach (var n in g.Node.Where(n => n.OpType == "MaxPool"))
        {
            n.OpType = "AveragePool";
            done.Add("MaxPool->AveragePool");
        }
        var inits = g.Initializer.ToDictionary(i => i.Name);
        foreach (var n in g.Node.Where(n => n.OpType == "Reshape" && n.Input.Count == 2 && inits.ContainsKey(n.Input[0]) && inits.ContainsKey(n.Input[1])).ToList())
        {
            var data = inits[n.Input[0]];
            var shape = inits[n.Input[1]];
            var target = shape.Int64Data.Count > 0 ? shape.Int64Data.ToArray()
                : Enumerable.Range(0, shape.RawData.Length / 8).Select(i => BitConverter.ToInt64(shape.RawData.Span.Slice(i * 8, 8))).ToArray();
            long count = data.Dims.Aggregate(1L, (a, b) => a * b);
            long known = target.Where(d => d > 0).Aggregate(1L, (a, b) => a * b);
            var folded = data.Clone();
            folded.Name = n.Output[0];
            folded.Dims.Clear();
            folded.Dims.AddRange(target.Select(d => d == -1 ? count / Math.Max(1, known) : d));
            g.Initializer.Add(folded);
            g.Node.Remove(n);
            done.Add($"fold Reshape of constant '{data.Name}'");
        }
        return done.Count == 0 ? null : "legalize (" + string.Join(", ", done.Distinct()) + ")";
    }

    private static string? RenameOpUnsupported(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Node.Count == 0) return null;
        var n = Pick(g.Node, rng);
        var label = Label(g, n);
        string[] names = { "MaxPool", "LSTM", "Resize", "conv", "", "Conv ", "Loop", "NonMaxSuppression", "Einsum" };
        n.OpType = rng.Next(5) == 0 ? new string(Enumerable.Range(0, rng.Next(1, 12)).Select(_ => (char)rng.Next(33, 127)).ToArray()) : Pick(names, rng);
        return $"{label} op_type -> '{n.OpType}'";
    }

    private static string? SwapOpSupported(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Node.Count == 0) return null;
        var n = Pick(g.Node, rng);
        var label = Label(g, n);
        n.OpType = Pick(OnnxImporter.SupportedOperators, rng);
        return $"{label} op_type -> {n.OpType}";
    }

    private static string? DropInitializer(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Initializer.Count == 0) return null;
        int i = rng.Next(g.Initializer.Count);
        var name = g.Initializer[i].Name;
        g.Initializer.RemoveAt(i);
        // Half the time also drop it from the graph inputs (older exporters list initializers there too).
        if (rng.Next(2) == 0) foreach (var vi in g.Input.Where(v => v.Name == name).ToList()) g.Input.Remove(vi);
        return $"drop initializer '{Short(name)}'";
    }

    private static string? DropNode(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Node.Count == 0) return null;
        var n = Pick(g.Node, rng);
        var label = Label(g, n);
        g.Node.Remove(n);
        return $"drop {label}";
    }

    private static string? RemoveNodeInput(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        var candidates = g?.Node.Where(n => n.Input.Count > 0).ToList();
        if (candidates == null || candidates.Count == 0) return null;
        var n = Pick(candidates, rng);
        var label = Label(g!, n);
        switch (rng.Next(3))
        {
            case 0: n.Input.Clear(); return $"{label}: remove all inputs";
            case 1: { int i = rng.Next(n.Input.Count); n.Input.RemoveAt(i); return $"{label}: remove input {i}"; }
            default: { int i = rng.Next(n.Input.Count); n.Input[i] = ""; return $"{label}: input {i} -> ''"; }
        }
    }

    private static string? RewireNodeInput(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        var candidates = g?.Node.Where(n => n.Input.Count > 0).ToList();
        if (candidates == null || candidates.Count == 0) return null;
        var n = Pick(candidates, rng);
        var label = Label(g!, n);
        int i = rng.Next(n.Input.Count);
        var names = g!.Node.SelectMany(x => x.Output).Concat(g.Input.Select(x => x.Name)).Concat(g.Initializer.Select(x => x.Name))
            .Concat(g.Output.Select(x => x.Name)).Append("does_not_exist").ToList();
        n.Input[i] = Pick(names, rng);
        return $"{label}: input {i} -> '{Short(n.Input[i])}'";
    }

    private static string? ChangeNodeOutputs(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Node.Count == 0) return null;
        var n = Pick(g.Node, rng);
        var label = Label(g, n);
        switch (rng.Next(4))
        {
            case 0: n.Output.Clear(); return $"{label}: remove outputs";
            case 1: if (n.Output.Count == 0) return null; n.Output[0] = "renamed_output"; return $"{label}: output -> 'renamed_output'";
            case 2: n.Output.Add(""); n.Output.Add("extra_output"); return $"{label}: add outputs '' and 'extra_output'";
            default:
                if (n.Output.Count == 0) return null;
                var other = ImageInput(g)?.Name ?? "x";
                n.Output[0] = rng.Next(2) == 0 ? other : Pick(g.Node, rng).Output.FirstOrDefault() ?? other;
                return $"{label}: output -> '{Short(n.Output[0])}' (an existing name)";
        }
    }

    private static string? SymbolicInputDim(ModelProto m, Random rng, string fileName)
    {
        var input = m.Graph == null ? null : ImageInput(m.Graph);
        var dims = input?.Type?.TensorType?.Shape?.Dim;
        if (dims == null || dims.Count == 0) return null;
        int i = rng.Next(5) < 3 && dims.Count > 2 ? 2 : rng.Next(dims.Count);
        dims[i].DimParam = rng.Next(4) == 0 ? "" : "h";
        return $"input '{input!.Name}' dim {i} -> dim_param '{dims[i].DimParam}'";
    }

    private static string? HugeInputDim(ModelProto m, Random rng, string fileName)
    {
        var input = m.Graph == null ? null : ImageInput(m.Graph);
        var dims = input?.Type?.TensorType?.Shape?.Dim;
        if (dims == null || dims.Count == 0) return null;
        int i = rng.Next(dims.Count);
        dims[i].DimValue = Pick(NastyInts, rng);
        return $"input '{input!.Name}' dim {i} -> {dims[i].DimValue}";
    }

    private static string? ChangeInputType(ModelProto m, Random rng, string fileName)
    {
        var input = m.Graph == null ? null : ImageInput(m.Graph);
        if (input == null) return null;
        var tt = input.Type?.TensorType;
        switch (rng.Next(6))
        {
            case 0: input.Type = null; return $"input '{input.Name}': remove type";
            case 1: if (tt == null) return null; tt.Shape = null; return $"input '{input.Name}': remove shape";
            case 2: if (tt == null) return null; tt.ElemType = rng.Next(-1, 17); return $"input '{input.Name}': elem_type -> {tt.ElemType}";
            case 3:
                if (tt?.Shape == null || tt.Shape.Dim.Count == 0) return null;
                tt.Shape.Dim.RemoveAt(rng.Next(tt.Shape.Dim.Count));
                return $"input '{input.Name}': drop a dim (rank {tt.Shape.Dim.Count})";
            case 4:
                if (tt?.Shape == null) return null;
                tt.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = 1 });
                return $"input '{input.Name}': add a dim (rank {tt.Shape.Dim.Count})";
            default:
                if (tt?.Shape == null) return null;
                tt.Shape.Dim.Clear();
                return $"input '{input.Name}': rank 0";
        }
    }

    private static string? ChangeOpset(ModelProto m, Random rng, string fileName)
    {
        switch (rng.Next(5))
        {
            case 0: m.OpsetImport.Clear(); return "remove all opset imports";
            case 1:
                m.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = 99 });
                return "add a second ai.onnx opset 99";
            case 2:
                foreach (var o in m.OpsetImport.Where(o => o.Domain is "" or "ai.onnx")) o.Domain = "com.microsoft";
                return "ai.onnx opset import -> domain com.microsoft";
            default:
            {
                long v = Pick(new long[] { 1, 99, 0, 6, 7, 10, 11, 12, 13, 23, 24, -1, long.MaxValue, long.MinValue }, rng);
                var main = m.OpsetImport.FirstOrDefault(o => o.Domain is "" or "ai.onnx");
                if (main == null) m.OpsetImport.Add(main = new OperatorSetIdProto());
                main.Version = v;
                return $"opset -> {v}";
            }
        }
    }

    private static string? AttributeInts(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        var candidates = g?.Node.Where(n => n.Attribute.Count > 0).ToList();
        if (candidates == null || candidates.Count == 0) return null;
        var n = Pick(candidates, rng);
        var a = Pick(n.Attribute, rng);
        if (rng.Next(3) == 0)
        {
            a.I = Pick(NastyInts, rng);
            return $"{Label(g!, n)} attribute {a.Name}.i -> {a.I}";
        }
        int len = rng.Next(10) < 7 && a.Ints.Count > 0 ? a.Ints.Count : rng.Next(0, 7);
        var values = Enumerable.Range(0, len).Select(_ => rng.Next(3) == 0 ? Pick(NastyInts, rng) : rng.Next(-3, 5)).ToArray();
        a.Ints.Clear();
        a.Ints.AddRange(values);
        return $"{Label(g!, n)} attribute {a.Name}.ints -> [{string.Join(",", values)}]";
    }

    private static string? AttributeOther(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Node.Count == 0) return null;
        var n = Pick(g.Node, rng);
        var label = Label(g, n);
        switch (rng.Next(5))
        {
            case 0:
                if (n.Attribute.Count == 0) return null;
                var removed = Pick(n.Attribute, rng);
                n.Attribute.Remove(removed);
                return $"{label}: remove attribute {removed.Name}";
            case 1:
            {
                var v = Pick(new[] { "SAME_UPPER", "SAME_LOWER", "VALID", "NOTSET", "garbage", "" }, rng);
                n.Attribute.Add(new AttributeProto { Name = "auto_pad", S = ByteString.CopyFromUtf8(v), Type = AttributeProto.Types.AttributeType.String });
                return $"{label}: add auto_pad '{v}'";
            }
            case 2:
            {
                var name = Pick(new[] { "group", "axis", "transA", "transB", "ceil_mode", "count_include_pad" }, rng);
                var v = Pick(NastyInts, rng);
                n.Attribute.Add(new AttributeProto { Name = name, I = v, Type = AttributeProto.Types.AttributeType.Int });
                return $"{label}: add {name}={v}";
            }
            case 3:
            {
                var name = Pick(new[] { "kernel_shape", "strides", "pads", "dilations" }, rng);
                var values = Enumerable.Range(0, rng.Next(0, 6)).Select(_ => Pick(NastyInts, rng)).ToArray();
                var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
                a.Ints.AddRange(values);
                n.Attribute.Insert(0, a);
                return $"{label}: add {name}=[{string.Join(",", values)}]";
            }
            default:
            {
                var name = Pick(new[] { "epsilon", "alpha", "beta", "min", "max", "value" }, rng);
                var v = Pick(new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity, -1f, 0f, 1e30f }, rng);
                n.Attribute.Insert(0, new AttributeProto { Name = name, F = v, Type = AttributeProto.Types.AttributeType.Float });
                return $"{label}: add {name}={v}";
            }
        }
    }

    private static string? InitializerDataType(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Initializer.Count == 0) return null;
        var t = Pick(g.Initializer, rng);
        int old = t.DataType;
        t.DataType = rng.Next(4) == 0 ? Pick(new[] { -1, 100, int.MaxValue }, rng) : rng.Next(0, 17);
        return $"initializer '{Short(t.Name)}' data_type {old} -> {t.DataType}";
    }

    private static string? TruncateInitializerData(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        var candidates = g?.Initializer.Where(t => t.RawData.Length > 0 || t.FloatData.Count > 0 || t.Int64Data.Count > 0).ToList();
        if (candidates == null || candidates.Count == 0) return null;
        var t = Pick(candidates, rng);
        if (t.RawData.Length > 0)
        {
            int len = t.RawData.Length;
            int keep = rng.Next(4) switch { 0 => 0, 1 => len - 1, 2 => len / 2, _ => rng.Next(len) };
            if (rng.Next(5) == 0) { t.RawData = ByteString.CopyFrom(t.RawData.Concat(new byte[rng.Next(1, 9)]).ToArray()); return $"initializer '{Short(t.Name)}' raw_data grown from {len} bytes to {t.RawData.Length}"; }
            t.RawData = ByteString.CopyFrom(t.RawData.Span[..keep]);
            return $"initializer '{Short(t.Name)}' raw_data truncated from {len} to {keep} bytes";
        }
        if (t.FloatData.Count > 0)
        {
            int len = t.FloatData.Count, keep = rng.Next(len);
            var kept = t.FloatData.Take(keep).ToArray();
            t.FloatData.Clear(); t.FloatData.AddRange(kept);
            return $"initializer '{Short(t.Name)}' float_data truncated from {len} to {keep} values";
        }
        {
            int len = t.Int64Data.Count, keep = rng.Next(len);
            var kept = t.Int64Data.Take(keep).ToArray();
            t.Int64Data.Clear(); t.Int64Data.AddRange(kept);
            return $"initializer '{Short(t.Name)}' int64_data truncated from {len} to {keep} values";
        }
    }

    private static string? InitializerDims(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Initializer.Count == 0) return null;
        var t = Pick(g.Initializer, rng);
        var old = string.Join(",", t.Dims);
        switch (rng.Next(4))
        {
            case 0:
                if (t.Dims.Count == 0) return null;
                t.Dims[rng.Next(t.Dims.Count)] = Pick(NastyInts, rng);
                break;
            case 1:
                if (t.Dims.Count == 0) return null;
                t.Dims.RemoveAt(rng.Next(t.Dims.Count));
                break;
            case 2: t.Dims.Insert(rng.Next(t.Dims.Count + 1), 1); break;
            default: t.Dims.Clear(); break;
        }
        return $"initializer '{Short(t.Name)}' dims [{old}] -> [{string.Join(",", t.Dims)}]";
    }

    private static string? ReplaceInitializerValues(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Initializer.Count == 0) return null;
        var t = Pick(g.Initializer, rng);
        int count = rng.Next(0, 6);
        t.RawData = ByteString.Empty;
        t.FloatData.Clear(); t.Int64Data.Clear(); t.Int32Data.Clear(); t.DoubleData.Clear();
        t.Dims.Clear();
        if (rng.Next(3) > 0) t.Dims.Add(count);
        else if (count != 1) return null;
        bool ints = rng.Next(2) == 0;
        var values = Enumerable.Range(0, count).Select(_ => ints ? Pick(NastyInts, rng) : rng.Next(-4, 9)).ToArray();
        if (ints) { t.DataType = (int)DataType.Int64; t.Int64Data.AddRange(values); }
        else { t.DataType = (int)DataType.Float; t.FloatData.AddRange(values.Select(v => (float)v)); }
        return $"initializer '{Short(t.Name)}' -> {(ints ? "int64" : "float")} [{string.Join(",", t.Dims)}] {{{string.Join(",", values)}}}";
    }

    private static string? ChangeGraphOutputs(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null) return null;
        switch (rng.Next(4))
        {
            case 0: g.Output.Clear(); return "remove the graph outputs";
            case 1: g.Output.Add(new ValueInfoProto { Name = g.Node.Count > 0 ? Pick(g.Node, rng).Output.FirstOrDefault() ?? "y2" : "y2" }); return "add a second graph output";
            case 2: if (g.Output.Count == 0) return null; g.Output[0].Name = "not_produced"; return "graph output -> 'not_produced'";
            default:
            {
                if (g.Output.Count == 0 || g.Node.Count == 0) return null;
                var n = Pick(g.Node, rng);
                if (n.Output.Count == 0) return null;
                g.Output[0].Name = n.Output[0];
                return $"graph output -> output of {Label(g, n)}";
            }
        }
    }

    private static string? ChangeGraphInputs(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        var input = g == null ? null : ImageInput(g);
        if (input == null) return null;
        switch (rng.Next(4))
        {
            case 0:
            {
                var second = input.Clone();
                second.Name = "second_input";
                g!.Input.Insert(rng.Next(g.Input.Count + 1), second);
                return "add a second graph input";
            }
            case 1: g!.Input.Clear(); return "remove the graph inputs";
            case 2: g!.Input.Add(input.Clone()); return "duplicate the graph input";
            default:
                input.Name = rng.Next(2) == 0 && g!.Initializer.Count > 0 ? Pick(g.Initializer, rng).Name : "renamed_input";
                return $"graph input renamed to '{Short(input.Name)}'";
        }
    }

    private static string? ExternalData(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Initializer.Count == 0) return null;
        var t = Pick(g.Initializer, rng);
        t.DataLocation = TensorProto.Types.DataLocation.External;
        if (rng.Next(4) > 0) t.RawData = ByteString.Empty;
        t.ExternalData.Clear();
        var location = Pick(new[] { "missing.bin", fileName, fileName, "", "a\0b", ".", "sub/dir/x.bin", "/" }, rng);
        if (rng.Next(8) > 0) t.ExternalData.Add(new StringStringEntryProto { Key = "location", Value = location });
        var offset = Pick(new[] { null, "0", "12", "-5", "abc", "99999999999999999999", "9223372036854775807" }, rng);
        var length = Pick(new[] { null, "4", "-1", "x", "1000000000000", "9223372036854775807", "0" }, rng);
        if (offset != null) t.ExternalData.Add(new StringStringEntryProto { Key = "offset", Value = offset });
        if (length != null) t.ExternalData.Add(new StringStringEntryProto { Key = "length", Value = length });
        return $"initializer '{Short(t.Name)}' external: location '{location.Replace("\0", "\\0")}' offset {offset ?? "-"} length {length ?? "-"}";
    }

    private static string? NodeDomain(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Node.Count == 0) return null;
        var n = Pick(g.Node, rng);
        n.Domain = Pick(new[] { "com.microsoft", "ai.onnx", "ai.onnx.ml", "" }, rng);
        return $"{Label(g, n)} domain -> '{n.Domain}'";
    }

    private static string? DuplicateOrSwapNodes(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Node.Count < 2) return null;
        int i = rng.Next(g.Node.Count), j = rng.Next(g.Node.Count);
        if (rng.Next(2) == 0)
        {
            g.Node.Insert(j, g.Node[i].Clone());
            return $"duplicate node #{i} ({g.Node[j].OpType}) at #{j}";
        }
        (g.Node[i], g.Node[j]) = (g.Node[j], g.Node[i]);
        return $"swap nodes #{i} and #{j}";
    }

    private static string? InsertConstantNode(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null) return null;
        var names = g.Initializer.Select(x => x.Name).Concat(g.Node.SelectMany(x => x.Input)).ToList();
        string output = names.Count > 0 && rng.Next(3) > 0 ? Pick(names, rng) : "new_constant";
        var n = new NodeProto { OpType = "Constant", Name = "fuzz_constant" };
        if (rng.Next(6) > 0) n.Output.Add(output);
        string what;
        switch (rng.Next(6))
        {
            case 0:
            {
                var t = g.Initializer.Count > 0 ? Pick(g.Initializer, rng).Clone() : new TensorProto { DataType = 1 };
                if (rng.Next(2) == 0 && t.Dims.Count > 0) t.Dims[0] = Pick(NastyInts, rng);
                n.Attribute.Add(new AttributeProto { Name = "value", T = t, Type = AttributeProto.Types.AttributeType.Tensor });
                what = $"value tensor [{string.Join(",", t.Dims)}]";
                break;
            }
            case 1:
                n.Attribute.Add(new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor });
                what = "value attribute without a tensor";
                break;
            case 2:
            {
                var a = new AttributeProto { Name = "value_floats", Type = AttributeProto.Types.AttributeType.Floats };
                a.Floats.AddRange(Enumerable.Range(0, rng.Next(0, 4)).Select(_ => (float)rng.Next(-2, 3)));
                n.Attribute.Add(a);
                what = $"value_floats of {a.Floats.Count}";
                break;
            }
            case 3:
            {
                var a = new AttributeProto { Name = "value_ints", Type = AttributeProto.Types.AttributeType.Ints };
                a.Ints.AddRange(Enumerable.Range(0, rng.Next(0, 4)).Select(_ => Pick(NastyInts, rng)));
                n.Attribute.Add(a);
                what = $"value_ints [{string.Join(",", a.Ints)}]";
                break;
            }
            case 4:
                n.Attribute.Add(new AttributeProto { Name = "value_float", F = 6, Type = AttributeProto.Types.AttributeType.Float });
                what = "value_float 6";
                break;
            default:
                what = "no value";
                break;
        }
        int at = rng.Next(g.Node.Count + 1);
        g.Node.Insert(at, n);
        return $"insert Constant ({what}) -> '{(n.Output.Count > 0 ? Short(output) : "(no output)")}' at #{at}";
    }

    /// <summary>
    /// A new node of a random (mostly supported or constant-foldable) operator reading random constants and/or
    /// activations with random attributes; half the time an existing node's input is rewired to read its output.
    /// </summary>
    private static string? InsertNode(ModelProto m, Random rng, string fileName)
    {
        var g = m.Graph;
        if (g == null || g.Node.Count == 0) return null;
        string[] extra = { "Identity", "Cast", "Reshape", "Unsqueeze", "Squeeze", "Gather", "Concat", "Add", "Sub", "Mul", "Div", "Flatten", "Neg", "Shape", "Transpose" };
        var op = rng.Next(2) == 0 ? Pick(extra, rng) : Pick(OnnxImporter.SupportedOperators, rng);
        var constants = g.Initializer.Select(t => t.Name).ToList();
        var activations = g.Node.SelectMany(x => x.Output).Concat(ImageInput(g) is { } i ? new[] { i.Name } : Array.Empty<string>()).ToList();
        var n = new NodeProto { OpType = op, Name = "fuzz_node" };
        int inputs = rng.Next(0, 4);
        for (int k = 0; k < inputs; k++)
            n.Input.Add(rng.Next(10) < 6 && constants.Count > 0 ? Pick(constants, rng) : activations.Count > 0 ? Pick(activations, rng) : "");
        n.Output.Add("fuzz_out");
        foreach (var name in new[] { "axis", "axes", "to", "allowzero", "start", "end", "perm", "keepdims", "alpha" })
        {
            if (rng.Next(4) != 0) continue;
            var a = new AttributeProto { Name = name };
            if (name is "axes" or "perm")
            {
                a.Type = AttributeProto.Types.AttributeType.Ints;
                a.Ints.AddRange(Enumerable.Range(0, rng.Next(0, 5)).Select(_ => rng.Next(3) == 0 ? Pick(NastyInts, rng) : rng.Next(-5, 5)));
            }
            else
            {
                a.Type = AttributeProto.Types.AttributeType.Int;
                a.I = rng.Next(3) == 0 ? Pick(NastyInts, rng) : rng.Next(-5, 17);
                a.F = rng.Next(-2, 3);
            }
            n.Attribute.Add(a);
        }
        var attrs = string.Join(",", n.Attribute.Select(a => a.Ints.Count > 0 ? $"{a.Name}=[{string.Join(" ", a.Ints)}]" : $"{a.Name}={a.I}"));
        var desc = $"insert {op}({string.Join(", ", n.Input.Select(Short))}){(attrs.Length > 0 ? " {" + attrs + "}" : "")}";
        var readers = g.Node.Where(x => x.Input.Count > 0).ToList();
        if (rng.Next(2) == 0 && readers.Count > 0)
        {
            var reader = Pick(readers, rng);
            int slot = rng.Next(reader.Input.Count);
            var label = Label(g, reader);
            reader.Input[slot] = "fuzz_out";
            g.Node.Insert(g.Node.IndexOf(reader), n);
            return $"{desc} read by {label} input {slot}";
        }
        int at = rng.Next(g.Node.Count + 1);
        g.Node.Insert(at, n);
        return $"{desc} at #{at}";
    }

    private static string? GraphWide(ModelProto m, Random rng, string fileName)
    {
        switch (rng.Next(5))
        {
            case 0: m.Graph = null; return "remove the graph";
            case 1: if (m.Graph == null) return null; m.Graph.Node.Clear(); return "remove all nodes";
            case 2: if (m.Graph == null) return null; m.Graph.Initializer.Clear(); return "remove all initializers";
            case 3:
            {
                if (m.Graph == null || m.Graph.Node.Count == 0) return null;
                var keep = rng.Next(m.Graph.Node.Count);
                while (m.Graph.Node.Count > keep) m.Graph.Node.RemoveAt(m.Graph.Node.Count - 1);
                return $"keep only the first {keep} nodes";
            }
            default:
                if (m.Graph == null) return null;
                foreach (var t in m.Graph.Initializer.Where(t => t.RawData.Length > 0 && t.DataType == (int)DataType.Float))
                {
                    // The same values as float_data instead of raw_data: a legal encoding the importer must read.
                    var f = new float[t.RawData.Length / 4];
                    Buffer.BlockCopy(t.RawData.ToByteArray(), 0, f, 0, f.Length * 4);
                    t.RawData = ByteString.Empty;
                    t.FloatData.AddRange(f);
                }
                return "float raw_data -> float_data";
        }
    }
}
