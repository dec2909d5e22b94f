using MCUNetV2.Compiler.Onnx.Proto;

namespace MCUNetV2.Compiler.Onnx;

/// <summary>
/// Evaluates at compile time the shape arithmetic exporters emit (Shape -> Gather -> Unsqueeze -> Concat -> Reshape,
/// Cast, simple arithmetic) and operators whose inputs are all constants.
/// </summary>
internal static class ConstantFolding
{
    private static readonly HashSet<string> Foldable = new()
    {
        "Identity", "Cast", "Reshape", "Unsqueeze", "Squeeze", "Gather", "Concat", "Add", "Sub", "Mul", "Div", "Flatten", "Neg",
    };

    private const long MaxElements = 1 << 24;

    /// <summary>
    /// True when the node was evaluated: <paramref name="result"/> is its output, or <paramref name="problem"/> says
    /// why the constant expression is invalid.
    /// </summary>
    public static bool TryFold(NodeProto n, IReadOnlyDictionary<string, ConstantTensor> constants,
        Func<string, long[]?> activationShape, long opset, out ConstantTensor? result, out string? problem)
    {
        result = null; problem = null;
        try
        {
            if (n.OpType == "Shape" && n.Input.Count == 1)
            {
                var shape = activationShape(n.Input[0]) ?? (constants.TryGetValue(n.Input[0], out var c) ? c.Dims : null);
                if (shape == null) return false;
                long start = Attr(n, "start")?.I ?? 0, end = Attr(n, "end")?.I ?? shape.Length;
                start = Math.Clamp(start < 0 ? start + shape.Length : start, 0, shape.Length);
                end = Math.Clamp(end < 0 ? end + shape.Length : end, 0, shape.Length);
                var slice = shape.Skip((int)start).Take((int)Math.Max(0, end - start)).ToArray();
                result = new ConstantTensor(n.Output[0], new long[] { slice.Length }, null, slice);
                return true;
            }
            if (!Foldable.Contains(n.OpType)) return false;
            var inputs = n.Input.Where(i => i.Length > 0).ToList();
            if (inputs.Count == 0 || !inputs.All(constants.ContainsKey)) return false;
            var x = constants[n.Input[0]];
            result = n.OpType switch
            {
                "Identity" => Rename(x, n.Output[0]),
                "Cast" => Cast(x, n),
                "Reshape" => Reshape(x, constants[n.Input[1]].AsInts(), n.Output[0], Attr(n, "allowzero")?.I == 1),
                "Flatten" => Flatten(x, Attr(n, "axis")?.I ?? 1, n.Output[0]),
                "Unsqueeze" => Unsqueeze(x, opset >= 13 && n.Input.Count > 1 ? constants[n.Input[1]].AsInts() : Attr(n, "axes")?.Ints.ToArray() ?? Array.Empty<long>(), n.Output[0]),
                "Squeeze" => Squeeze(x, opset >= 13 && n.Input.Count > 1 ? constants[n.Input[1]].AsInts() : Attr(n, "axes")?.Ints.ToArray(), n.Output[0]),
                "Gather" => Gather(x, constants[n.Input[1]], Attr(n, "axis")?.I ?? 0, n.Output[0]),
                "Concat" => ConcatAll(inputs.Select(i => constants[i]).ToList(), Attr(n, "axis")?.I ?? 0, n.Output[0]),
                "Neg" => Map(x, n.Output[0], v => -v, v => -v),
                _ => Binary(n.OpType, x, constants[n.Input[1]], n.Output[0]),
            };
            return true;
        }
        catch (FoldException e)
        {
            problem = e.Message;
            return true;
        }
        catch (Exception e) when (e is OverflowException or IndexOutOfRangeException or ArgumentException or InvalidOperationException or KeyNotFoundException)
        {
            problem = $"its constant inputs cannot be evaluated ({e.Message})";
            return true;
        }
    }

    private sealed class FoldException : Exception { public FoldException(string m) : base(m) { } }

    private static AttributeProto? Attr(NodeProto n, string name) => n.Attribute.FirstOrDefault(a => a.Name == name);

    private static long Count(long[] dims)
    {
        long c = 1;
        foreach (var d in dims)
        {
            if (d < 0) throw new FoldException($"negative dimension {d}");
            c = checked(c * d);
            if (c > MaxElements) throw new FoldException("constant too large to evaluate");
        }
        return c;
    }

    private static ConstantTensor Rename(ConstantTensor x, string name) => new(name, x.Dims, x.Floats, x.Ints);

    private static ConstantTensor Map(ConstantTensor x, string name, Func<float, float> f, Func<long, long> i) =>
        new(name, x.Dims, x.Floats?.Select(f).ToArray(), x.Ints?.Select(i).ToArray());

    private static ConstantTensor Cast(ConstantTensor x, NodeProto n)
    {
        var to = (TensorProto.Types.DataType)(Attr(n, "to")?.I ?? 1);
        return to is TensorProto.Types.DataType.Float or TensorProto.Types.DataType.Double or TensorProto.Types.DataType.Float16
            ? new ConstantTensor(n.Output[0], x.Dims, x.AsFloats(), null)
            : new ConstantTensor(n.Output[0], x.Dims, null, x.Ints ?? x.Floats!.Select(v => (long)v).ToArray());
    }

    private static ConstantTensor WithDims(ConstantTensor x, long[] dims, string name)
    {
        if (Count(dims) != x.Count) throw new FoldException($"cannot reshape {x.Count} values to [{string.Join(",", dims)}]");
        return new ConstantTensor(name, dims, x.Floats, x.Ints);
    }

    private static ConstantTensor Reshape(ConstantTensor x, long[] shape, string name, bool allowZero)
    {
        var dims = shape.Select((d, i) => d == 0 && !allowZero ? (i < x.Dims.Length ? x.Dims[i] : throw new FoldException("0 in shape beyond the input's rank")) : d).ToArray();
        int unknown = Array.IndexOf(dims, -1L);
        if (dims.Count(d => d == -1) > 1 || dims.Any(d => d < -1)) throw new FoldException($"invalid shape [{string.Join(",", shape)}]");
        if (unknown >= 0)
        {
            long known = Count(dims.Where(d => d != -1).ToArray());
            if (known == 0 || x.Count % known != 0) throw new FoldException($"cannot infer -1 in [{string.Join(",", shape)}] for {x.Count} values");
            dims[unknown] = x.Count / known;
        }
        return WithDims(x, dims, name);
    }

    private static ConstantTensor Flatten(ConstantTensor x, long axis, string name)
    {
        if (axis < 0) axis += x.Dims.Length;
        if (axis < 0 || axis > x.Dims.Length) throw new FoldException($"Flatten axis {axis} out of range");
        long a = Count(x.Dims.Take((int)axis).ToArray()), b = Count(x.Dims.Skip((int)axis).ToArray());
        return WithDims(x, new[] { a, b }, name);
    }

    private static ConstantTensor Unsqueeze(ConstantTensor x, long[] axes, string name)
    {
        int rank = x.Dims.Length + axes.Length;
        var norm = axes.Select(a => a < 0 ? a + rank : a).ToHashSet();
        if (norm.Count != axes.Length || norm.Any(a => a < 0 || a >= rank)) throw new FoldException("invalid Unsqueeze axes");
        var dims = new List<long>();
        int src = 0;
        for (int i = 0; i < rank; i++) dims.Add(norm.Contains(i) ? 1 : x.Dims[src++]);
        return WithDims(x, dims.ToArray(), name);
    }

    private static ConstantTensor Squeeze(ConstantTensor x, long[]? axes, string name)
    {
        int rank = x.Dims.Length;
        var norm = (axes ?? Enumerable.Range(0, rank).Where(i => x.Dims[i] == 1).Select(i => (long)i).ToArray())
            .Select(a => a < 0 ? a + rank : a).ToHashSet();
        if (norm.Any(a => a < 0 || a >= rank || x.Dims[a] != 1)) throw new FoldException("Squeeze of a dimension that is not 1");
        return WithDims(x, x.Dims.Where((_, i) => !norm.Contains(i)).ToArray(), name);
    }

    private static ConstantTensor Gather(ConstantTensor x, ConstantTensor indices, long axis, string name)
    {
        int rank = x.Dims.Length;
        if (rank == 0) throw new FoldException("Gather on a scalar");
        if (axis < 0) axis += rank;
        if (axis < 0 || axis >= rank) throw new FoldException($"Gather axis {axis} out of range");
        long outer = Count(x.Dims.Take((int)axis).ToArray()), inner = Count(x.Dims.Skip((int)axis + 1).ToArray()), size = x.Dims[axis];
        var idx = indices.AsInts().Select(i => i < 0 ? i + size : i).ToArray();
        if (idx.Any(i => i < 0 || i >= size)) throw new FoldException("Gather index out of range");
        var dims = x.Dims.Take((int)axis).Concat(indices.Dims).Concat(x.Dims.Skip((int)axis + 1)).ToArray();
        Count(dims);
        var order = new List<long>();
        for (long o = 0; o < outer; o++)
            foreach (var i in idx)
                for (long k = 0; k < inner; k++) order.Add((o * size + i) * inner + k);
        return new ConstantTensor(name, dims, x.Floats == null ? null : order.Select(j => x.Floats[j]).ToArray(),
            x.Ints == null ? null : order.Select(j => x.Ints[j]).ToArray());
    }

    private static ConstantTensor ConcatAll(IReadOnlyList<ConstantTensor> xs, long axis, string name)
    {
        int rank = xs[0].Dims.Length;
        if (rank == 0) throw new FoldException("Concat of scalars");
        if (axis < 0) axis += rank;
        if (axis < 0 || axis >= rank || xs.Any(t => t.Dims.Length != rank)) throw new FoldException("Concat inputs of different ranks or bad axis");
        for (int d = 0; d < rank; d++)
            if (d != axis && xs.Any(t => t.Dims[d] != xs[0].Dims[d])) throw new FoldException("Concat inputs differ outside the axis");
        long outer = Count(xs[0].Dims.Take((int)axis).ToArray());
        bool floats = xs.Any(t => t.Floats != null);
        var f = new List<float>(); var l = new List<long>();
        for (long o = 0; o < outer; o++)
            foreach (var t in xs)
            {
                long chunk = Count(t.Dims.Skip((int)axis).ToArray());
                if (floats) f.AddRange(t.AsFloats().Skip((int)(o * chunk)).Take((int)chunk));
                else l.AddRange(t.Ints!.Skip((int)(o * chunk)).Take((int)chunk));
            }
        var dims = xs[0].Dims.ToArray();
        dims[axis] = xs.Sum(t => t.Dims[axis]);
        return new ConstantTensor(name, dims, floats ? f.ToArray() : null, floats ? null : l.ToArray());
    }

    private static ConstantTensor Binary(string op, ConstantTensor a, ConstantTensor b, string name)
    {
        int rank = Math.Max(a.Dims.Length, b.Dims.Length);
        long[] Pad(long[] d) => Enumerable.Repeat(1L, rank - d.Length).Concat(d).ToArray();
        var da = Pad(a.Dims); var db = Pad(b.Dims);
        var dims = new long[rank];
        for (int i = 0; i < rank; i++)
        {
            if (da[i] != db[i] && da[i] != 1 && db[i] != 1) throw new FoldException($"shapes [{string.Join(",", a.Dims)}] and [{string.Join(",", b.Dims)}] do not broadcast");
            dims[i] = Math.Max(da[i], db[i]);
        }
        long n = Count(dims);
        long Index(long flat, long[] d)
        {
            long idx = 0, stride = 1;
            for (int i = rank - 1; i >= 0; i--)
            {
                long coord = flat % dims[i]; flat /= dims[i];
                if (d[i] != 1) idx += coord * stride;
                stride *= d[i];
            }
            return idx;
        }
        if (a.Floats == null && b.Floats == null)
        {
            var r = new long[n];
            for (long i = 0; i < n; i++)
            {
                long x = a.Ints![Index(i, da)], y = b.Ints![Index(i, db)];
                r[i] = op switch
                {
                    "Add" => x + y, "Sub" => x - y, "Mul" => x * y,
                    _ => y == 0 ? throw new FoldException("integer division by zero") : x / y,
                };
            }
            return new ConstantTensor(name, dims, null, r);
        }
        var fa = a.AsFloats(); var fb = b.AsFloats();
        var rf = new float[n];
        for (long i = 0; i < n; i++)
        {
            float x = fa[Index(i, da)], y = fb[Index(i, db)];
            rf[i] = op switch { "Add" => x + y, "Sub" => x - y, "Mul" => x * y, _ => x / y };
        }
        return new ConstantTensor(name, dims, rf, null);
    }
}
