using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx.Proto;

namespace MCUNetV2.Compiler.Onnx;

public static partial class OnnxImporter
{
    /// <summary>
    /// Operators that move data: Transpose, Reshape, Flatten, Squeeze and Unsqueeze whose element order changes in
    /// our channels-last storage, and Softmax or Concat over an axis other than the channels (the axis is moved to the
    /// channels and back). Each becomes one or two <see cref="Relayout"/> layers (strided copies); what only relabels
    /// stays free.
    ///
    /// Storage of an ONNX tensor of rank r (see <see cref="Builder.StorageOf"/>): rank 4 [1,C,H,W] and rank 3 [C,H,W]
    /// as HxWxC; rank 2 [M,K] as 1xMxK; rank 1 [K] as 1x1xK. A rank-4 tensor whose first dimension is not 1, or a
    /// tensor of rank 5 or 6 (the [N, groups, C/groups, H, W] of a channel shuffle), is stored 1x1xN in ONNX order and
    /// may only be moved on (reshaped or transposed).
    /// </summary>
    private sealed partial class Builder
    {
        /// <summary>The ONNX dims of a value and the storage stride of each axis (the value must not be flattened or padded).</summary>
        private static (long[] Dims, long[] Strides) Layout(Value v)
        {
            var s = v.Tensor.Shape;
            if (v.Dims != null) return (v.Dims, RowMajorStrides(v.Dims));
            return v.Rank switch
            {
                4 => (new long[] { 1, s.C, s.H, s.W }, new long[] { s.Elements, 1, (long)s.W * s.C, s.C }),
                3 => (new long[] { s.C, s.H, s.W }, new long[] { 1, (long)s.W * s.C, s.C }),
                2 => (new long[] { (long)s.H * s.W, s.C }, new long[] { s.C, 1 }),
                _ => (new long[] { s.Elements }, new long[] { 1 }),
            };
        }

        /// <summary>
        /// The storage shape of an ONNX tensor with these dims, and its axes in storage order (outermost first). Dims no
        /// map can hold (rank 5 or more, a rank-4 batch other than 1) are stored 1x1xN in ONNX order: <paramref name="general"/>.
        /// </summary>
        private (TensorShape Shape, int[] Order) StorageOf(NodeProto n, long[] dims, out bool general)
        {
            if (dims.Length == 0 || dims.Any(d => d <= 0) || dims.Aggregate(1L, (a, d) => a * Math.Min(d, 1L << 27)) > 1 << 26)
                throw Error(ErrorCodes.UnsupportedModel, $"{NodeLabel(n)} gives a tensor of shape [{string.Join(",", dims)}]");
            general = dims.Length > 4 || (dims.Length == 4 && dims[0] != 1);
            if (general) return (new TensorShape(1, 1, (int)dims.Aggregate(1L, (a, d) => a * d)), Enumerable.Range(0, dims.Length).ToArray());
            return dims.Length switch
            {
                4 => (new TensorShape((int)dims[2], (int)dims[3], (int)dims[1]), new[] { 0, 2, 3, 1 }),
                3 => (new TensorShape((int)dims[1], (int)dims[2], (int)dims[0]), new[] { 1, 2, 0 }),
                2 => (new TensorShape(1, (int)dims[0], (int)dims[1]), new[] { 0, 1 }),
                _ => (new TensorShape(1, 1, (int)dims[0]), new[] { 0 }),
            };
        }

        private static long[] RowMajorStrides(IReadOnlyList<long> dims)
        {
            var s = new long[dims.Count];
            long step = 1;
            for (int k = dims.Count - 1; k >= 0; k--) { s[k] = step; step *= dims[k]; }
            return s;
        }

        /// <summary>
        /// The tensor with ONNX dims <paramref name="dims"/> whose element at index j is the element of
        /// <paramref name="x"/>'s storage at sum j_k * viewStrides[k]: a relabel when that is already the storage,
        /// else a <see cref="Relayout"/> layer. <paramref name="name"/> null: the node's output.
        /// </summary>
        private Value Gather(NodeProto n, Value x, long[] dims, long[] viewStrides, string function, string? name = null)
        {
            var (shape, order) = StorageOf(n, dims, out bool general);
            var (d, s) = Simplify(order.Select(a => dims[a]).ToArray(), order.Select(a => viewStrides[a]).ToArray());
            var v = AddRelayout(n, x, shape, dims.Length, d, s, function, name);
            return general ? v with { Dims = dims } : v;
        }

        /// <summary>Drops axes of size 1 and merges an axis into the next when they step through the input together.</summary>
        private static (long[] Dims, long[] Strides) Simplify(long[] dims, long[] strides)
        {
            var d = new List<long>(); var s = new List<long>();
            for (int k = 0; k < dims.Length; k++)
            {
                if (dims[k] == 1) continue;
                if (d.Count > 0 && s[^1] == strides[k] * dims[k]) { d[^1] *= dims[k]; s[^1] = strides[k]; continue; }
                d.Add(dims[k]); s.Add(strides[k]);
            }
            if (d.Count == 0) { d.Add(1); s.Add(1); }
            return (d.ToArray(), s.ToArray());
        }

        private Value AddRelayout(NodeProto n, Value x, TensorShape shape, int rank, long[] dims, long[] strides, string function, string? name, bool force = false)
        {
            bool identity = dims.Length == 1 && strides[0] == 1;
            if (identity && shape == x.Tensor.Shape && !force) return new Value(x.Tensor, rank);
            if (dims.Length > Relayout.MaxDims)
                throw Error(ErrorCodes.UnsupportedOperator, $"{NodeLabel(n)} ({function}) moves data along more than {Relayout.MaxDims} axes");
            var output = new Tensor(name ?? n.Output[0], shape);
            Append(new Relayout(name ?? (n.Name.Length > 0 ? n.Name : n.Output[0]), x.Tensor, output,
                dims.Select(v => (int)v).ToArray(), strides.Select(v => (int)v).ToArray(), function));
            return new Value(output, rank);
        }

        /// <summary>A flattened value (<see cref="Value.FlattenedFromNchw"/>) with its elements moved into ONNX order; other values as they are.</summary>
        private Value Materialize(NodeProto n, Value x, string? name = null)
        {
            x = Unpadded(n, x);
            if (x.FlattenedFromNchw is not { } f) return x;
            // stored HxWxC, read in ONNX order [C, H, W]
            var (d, s) = Simplify(new long[] { f.C, f.H, f.W }, new long[] { 1, (long)f.W * f.C, f.C });
            return AddRelayout(n, x, new TensorShape(1, 1, f.Elements), 2, d, s, "Flatten", name ?? n.Output[0] + "/flatten");
        }

        /// <summary>Transpose that moves data.</summary>
        private void TransposeData(NodeProto n, Value x, long[] perm)
        {
            x = Materialize(n, x);
            var (dims, strides) = Layout(x);
            if (perm.Length != dims.Length || perm.Any(p => p < 0 || p >= dims.Length) || perm.Distinct().Count() != perm.Length)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} has perm [{string.Join(",", perm)}] for a rank-{dims.Length} tensor");
            Define(n, Gather(n, x, perm.Select(p => dims[p]).ToArray(), perm.Select(p => strides[p]).ToArray(),
                $"Transpose(perm=[{string.Join(",", perm)}])"));
        }

        /// <summary>Reshape, Flatten, Squeeze or Unsqueeze to <paramref name="target"/>: the elements keep their ONNX (row-major) order.</summary>
        private void ReshapeData(NodeProto n, Value x, long[] target)
        {
            x = Materialize(n, x);
            var (dims, strides) = Layout(x);
            if (target.Aggregate(1L, (a, d) => a * d) != x.Tensor.Shape.Elements)
                throw Error(ErrorCodes.ModelCorrupt, $"{NodeLabel(n)} reshapes [{string.Join(",", dims)}] to [{string.Join(",", target)}], which holds another number of elements");
            var function = $"{n.OpType}([{string.Join(",", dims)}] -> [{string.Join(",", target)}])";
            // only axes of size 1 come or go: each remaining axis keeps its stride
            var from = Enumerable.Range(0, dims.Length).Where(a => dims[a] != 1).ToArray();
            var to = Enumerable.Range(0, target.Length).Where(a => target[a] != 1).ToArray();
            if (from.Select(a => dims[a]).SequenceEqual(to.Select(a => target[a])))
            {
                var view = new long[target.Length];
                for (int k = 0; k < to.Length; k++) view[to[k]] = strides[from[k]];
                Define(n, Gather(n, x, target, view, function));
                return;
            }
            var (d, s) = Simplify(dims, strides);
            if (!(d.Length == 1 && s[0] == 1))
                x = AddRelayout(n, x, new TensorShape(1, 1, x.Tensor.Shape.Elements), 1, d, s, function, n.Output[0] + "/onnx_order");
            Define(n, Gather(n, x, target, RowMajorStrides(target), function));
        }

        /// <summary>
        /// The elements of <paramref name="x"/> with the axes <paramref name="inner"/> innermost: row-major over the other
        /// axes, then the inner ones, as a 1 x (other elements) x (inner elements) map.
        /// </summary>
        private Tensor MoveInnermost(NodeProto n, Value x, int[] inner, string function, string name)
        {
            var (dims, strides) = Layout(x);
            var order = Enumerable.Range(0, dims.Length).Where(a => !inner.Contains(a)).Concat(inner).ToArray();
            long innerCount = inner.Aggregate(1L, (a, k) => a * dims[k]);
            var (d, s) = Simplify(order.Select(a => dims[a]).ToArray(), order.Select(a => strides[a]).ToArray());
            return AddRelayout(n, x, new TensorShape(1, (int)(x.Tensor.Shape.Elements / innerCount), (int)innerCount), 2, d, s, function, name).Tensor;
        }

        /// <summary>
        /// Defines the node's output, of ONNX dims <paramref name="outDims"/>, from <paramref name="moved"/>, which holds it
        /// row-major over the axes <paramref name="order"/> (the axes not listed have size 1).
        /// </summary>
        private void MoveBack(NodeProto n, Tensor moved, long[] outDims, int[] order, string function)
        {
            var strides = RowMajorStrides(order.Select(a => outDims[a]).ToArray());
            var view = new long[outDims.Length];
            for (int k = 0; k < order.Length; k++) view[order[k]] = strides[k];
            Define(n, Gather(n, new Value(moved, 2), outDims, view, function));
        }

        /// <summary>
        /// Runs <paramref name="channelOp"/> with the axes <paramref name="axes"/> (a tail of the dims, or one axis) as the
        /// channels: the inputs are moved so that those axes are innermost, the operator runs, and its output is moved back.
        /// <paramref name="outAxisSizes"/> gives the output's size along the moved axes (their product is its channels).
        /// </summary>
        private void OverAxes(NodeProto n, IReadOnlyList<Value> xs, int[] axes, long[] outAxisSizes, Func<IReadOnlyList<Tensor>, Tensor, Layer> channelOp, string function)
        {
            var values = xs.Select((x, i) => Materialize(n, x, n.Output[0] + $"/flatten{i}")).ToList();
            var moved = values.Select((x, i) => MoveInnermost(n, x, axes, function, n.Output[0] + $"/moved{i}")).ToList();
            var outDims = Layout(values[0]).Dims.ToArray();
            for (int k = 0; k < axes.Length; k++) outDims[axes[k]] = outAxisSizes[k];
            var inner = new Tensor(n.Output[0] + "/channels", new TensorShape(1, moved[0].Shape.W, (int)outAxisSizes.Aggregate(1L, (a, v) => a * v)));
            Append(channelOp(moved, inner));
            MoveBack(n, inner, outDims, Enumerable.Range(0, outDims.Length).Where(a => !axes.Contains(a)).Concat(axes).ToArray(), function);
        }
    }
}
