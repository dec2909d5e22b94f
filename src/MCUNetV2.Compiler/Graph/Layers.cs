namespace MCUNetV2.Compiler.Graph;

/// <summary>A rectangle of rows and columns of a feature map: rows [Y0, Y0+H), columns [X0, X0+W).</summary>
public readonly record struct Region(int Y0, int X0, int H, int W)
{
    public int Y1 => Y0 + H;
    public int X1 => X0 + W;
    public bool IsEmpty => H <= 0 || W <= 0;
    public static Region Full(TensorShape s) => new(0, 0, s.H, s.W);
    public static Region FromBounds(int y0, int x0, int y1, int x1) => new(y0, x0, y1 - y0, x1 - x0);
    public Region Union(Region o) => IsEmpty ? o : o.IsEmpty ? this
        : FromBounds(Math.Min(Y0, o.Y0), Math.Min(X0, o.X0), Math.Max(Y1, o.Y1), Math.Max(X1, o.X1));
    public override string ToString() => $"[{Y0}:{Y1}, {X0}:{X1}]";
}

/// <summary>Zero padding added around the input of a window operator.</summary>
public readonly record struct Padding(int Top, int Left, int Bottom, int Right)
{
    public static readonly Padding Zero = new(0, 0, 0, 0);
    public Padding Add(Padding o) => new(Top + o.Top, Left + o.Left, Bottom + o.Bottom, Right + o.Right);
}

/// <summary>Geometry of a sliding-window operator (convolution or pooling) over H and W.</summary>
public readonly record struct Window(int KernelH, int KernelW, int StrideH, int StrideW, int DilationH, int DilationW, Padding Pad)
{
    /// <summary>Pooling: output size rounds up (ONNX ceil_mode=1); a window must still start inside the input or its leading padding.</summary>
    public bool CeilMode { get; init; }
    /// <summary>Average pooling: padding counts in the divisor (ONNX count_include_pad=1).</summary>
    public bool CountIncludePad { get; init; }

    public int OutputSize(int inSize, bool rows)
    {
        int k = rows ? KernelH : KernelW, s = rows ? StrideH : StrideW, d = rows ? DilationH : DilationW;
        int begin = rows ? Pad.Top : Pad.Left;
        int pad = rows ? Pad.Top + Pad.Bottom : Pad.Left + Pad.Right;
        int span = inSize + pad - d * (k - 1) - 1;
        if (span < 0) return 0;
        if (!CeilMode) return span / s + 1;
        int o = (span + s - 1) / s + 1;
        if ((o - 1) * s >= inSize + begin) o--;
        return o;
    }

    /// <summary>Average pooling divisor for the window starting at (y0, x0) (unclipped, may be negative).</summary>
    public int PoolDivisor(int y0, int x0, TensorShape input)
    {
        if (CountIncludePad)
        {
            int h = Math.Min(y0 + KernelH, input.H + Pad.Bottom) - y0, w = Math.Min(x0 + KernelW, input.W + Pad.Right) - x0;
            return Math.Max(1, h * w);
        }
        int ch = Math.Min(y0 + KernelH, input.H) - Math.Max(y0, 0), cw = Math.Min(x0 + KernelW, input.W) - Math.Max(x0, 0);
        return Math.Max(1, ch * cw);
    }

    /// <summary>Input rows/cols (clipped to the input) that output region <paramref name="o"/> reads.</summary>
    public Region InputRegion(Region o, TensorShape input)
    {
        if (o.IsEmpty) return default;
        int y0 = o.Y0 * StrideH - Pad.Top, y1 = (o.Y1 - 1) * StrideH - Pad.Top + DilationH * (KernelH - 1) + 1;
        int x0 = o.X0 * StrideW - Pad.Left, x1 = (o.X1 - 1) * StrideW - Pad.Left + DilationW * (KernelW - 1) + 1;
        return Region.FromBounds(Math.Max(0, y0), Math.Max(0, x0), Math.Min(input.H, y1), Math.Min(input.W, x1));
    }
}

public abstract class Layer
{
    protected Layer(string name, IReadOnlyList<Tensor> inputs, Tensor output) { Name = name; Inputs = inputs; Output = output; }
    public string Name { get; }
    public IReadOnlyList<Tensor> Inputs { get; }
    public Tensor Output { get; set; }
    public abstract string Op { get; }
    public abstract long Macs { get; }
    /// <summary>True when each output pixel depends on a bounded neighbourhood of input pixels (can run on patches).</summary>
    public abstract bool IsSpatiallyLocal { get; }
    /// <summary>The input region that output region <paramref name="o"/> needs from input <paramref name="index"/>.</summary>
    public virtual Region InputRegion(int index, Region o) => throw new InvalidOperationException($"{Op} is not spatially local");
    public override string ToString() => $"{Op} {Name}: {string.Join(", ", Inputs.Select(i => i.Shape))} -> {Output.Shape}";
}

/// <summary>2-D convolution, grouped or depthwise, with folded batch norm, folded padding and fused activation.</summary>
public sealed class Conv2D : Layer
{
    public Conv2D(string name, Tensor input, Tensor output, Window window, int groups, float[] weights, float[] bias, ActivationRange activation)
        : base(name, new[] { input }, output)
    {
        Window = window; Groups = groups; Weights = weights; Bias = bias; Activation = activation;
    }
    public Window Window { get; }
    public int Groups { get; }
    /// <summary>[Cout][KernelH][KernelW][Cin/Groups].</summary>
    public float[] Weights { get; set; }
    public float[] Bias { get; set; }
    public ActivationRange Activation { get; set; }
    public int InChannels => Inputs[0].Shape.C;
    public int OutChannels => Output.Shape.C;
    public int InChannelsPerGroup => InChannels / Groups;
    public bool IsDepthwise => Groups > 1 && Groups == InChannels && OutChannels == InChannels;
    public bool IsPointwise => Window.KernelH == 1 && Window.KernelW == 1 && Window.StrideH == 1 && Window.StrideW == 1 && Window.Pad == Padding.Zero && Groups == 1;
    public override string Op => IsDepthwise ? "DepthwiseConv2D" : IsPointwise ? "PointwiseConv2D" : "Conv2D";
    public override long Macs => (long)Output.Shape.Elements * Window.KernelH * Window.KernelW * InChannelsPerGroup;
    public override bool IsSpatiallyLocal => true;
    public override Region InputRegion(int index, Region o) => Window.InputRegion(o, Inputs[0].Shape);
}

/// <summary>
/// Element-wise sum of two tensors of equal shape (residual connection), optional fused activation; b may also be a
/// 1x1xC vector added to every pixel (<see cref="BroadcastsB"/>).
/// </summary>
public sealed class Add : Layer
{
    public Add(string name, Tensor a, Tensor b, Tensor output, bool subtract = false) : base(name, new[] { a, b }, output) { Subtract = subtract; }
    /// <summary>a - b instead of a + b (ONNX Sub).</summary>
    public bool Subtract { get; }
    public ActivationRange Activation { get; set; } = ActivationRange.None;
    /// <summary>b is one value per channel, the same for every pixel (e.g. [1,C,1,1] against [1,C,H,W]).</summary>
    public bool BroadcastsB => IsChannelBroadcast(this);
    public override string Op => Subtract ? "Sub" : "Add";
    public override long Macs => Output.Shape.Elements;
    // A per-channel vector computed from the whole map (squeeze-and-excitation) ends the per-patch stage.
    public override bool IsSpatiallyLocal => !BroadcastsB;
    public override Region InputRegion(int index, Region o) => index == 1 && BroadcastsB ? Region.Full(Inputs[1].Shape) : o;

    internal static bool IsChannelBroadcast(Layer l) =>
        l.Inputs[1].Shape.H * l.Inputs[1].Shape.W == 1 && l.Output.Shape.H * l.Output.Shape.W > 1;
}

/// <summary>A pooling window over each channel; global when one window covers the whole input.</summary>
public abstract class PoolLayer : Layer
{
    protected PoolLayer(string name, Tensor input, Tensor output, Window window) : base(name, new[] { input }, output) { Window = window; }
    public Window Window { get; }
    public bool IsGlobal => Output.Shape.H == 1 && Output.Shape.W == 1 && Window.KernelH >= Inputs[0].Shape.H && Window.KernelW >= Inputs[0].Shape.W;
    public override long Macs => (long)Output.Shape.Elements * Window.KernelH * Window.KernelW;
    public override bool IsSpatiallyLocal => !IsGlobal;
    public override Region InputRegion(int index, Region o) => Window.InputRegion(o, Inputs[0].Shape);
}

/// <summary>Average pooling (padding counted in the divisor only with <see cref="Window.CountIncludePad"/>).</summary>
public sealed class AveragePool : PoolLayer
{
    public AveragePool(string name, Tensor input, Tensor output, Window window) : base(name, input, output, window) { }
    public override string Op => IsGlobal ? "GlobalAveragePool" : "AveragePool";
}

/// <summary>Fully connected layer y = W x + b over a (1, 1, K) input, optional fused activation.</summary>
public sealed class FullyConnected : Layer
{
    public FullyConnected(string name, Tensor input, Tensor output, float[] weights, float[] bias) : base(name, new[] { input }, output)
    {
        Weights = weights; Bias = bias;
    }
    /// <summary>[Out][In], In in NHWC order of the input tensor.</summary>
    public float[] Weights { get; set; }
    public float[] Bias { get; set; }
    public ActivationRange Activation { get; set; } = ActivationRange.None;
    public int InFeatures => Inputs[0].Shape.Elements;
    public int OutFeatures => Output.Shape.Elements;
    public override string Op => "FullyConnected";
    public override long Macs => (long)InFeatures * OutFeatures;
    public override bool IsSpatiallyLocal => false;
}

/// <summary>Softmax over the channels of each pixel.</summary>
public sealed class Softmax : Layer
{
    public Softmax(string name, Tensor input, Tensor output) : base(name, new[] { input }, output) { }
    public override string Op => "Softmax";
    public override long Macs => Output.Shape.Elements;
    public override bool IsSpatiallyLocal => false;
}

/// <summary>Max pooling (padding never wins), or global max pooling.</summary>
public sealed class MaxPool : PoolLayer
{
    public MaxPool(string name, Tensor input, Tensor output, Window window) : base(name, input, output, window) { }
    public override string Op => IsGlobal ? "GlobalMaxPool" : "MaxPool";
}

/// <summary>
/// An element-wise function of one tensor (Relu, Clip, LeakyRelu, Sigmoid, HardSigmoid, HardSwish, PRelu with one
/// slope...). In int8 it becomes a 256-entry lookup table.
/// </summary>
public sealed class UnaryElementwise : Layer
{
    public UnaryElementwise(string name, Tensor input, Tensor output, string function, Func<float, float> apply)
        : base(name, new[] { input }, output) { Function = function; Apply = apply; }
    /// <summary>The ONNX operator and parameters, for reports (e.g. "LeakyRelu(alpha=0.1)").</summary>
    public string Function { get; }
    public Func<float, float> Apply { get; }
    public override string Op => Function;
    public override long Macs => Output.Shape.Elements;
    public override bool IsSpatiallyLocal => true;
    public override Region InputRegion(int index, Region o) => o;
}

/// <summary>
/// PRelu with one slope per channel: y = x &gt;= 0 ? x : Slopes[c] * x (ONNX PRelu whose slope broadcasts along the
/// channels, e.g. PyTorch nn.PReLU(num_parameters=C)). One shared slope is a <see cref="UnaryElementwise"/> instead.
/// </summary>
public sealed class ChannelPRelu : Layer
{
    public ChannelPRelu(string name, Tensor input, Tensor output, float[] slopes) : base(name, new[] { input }, output)
    {
        if (slopes.Length != input.Shape.C) throw new ArgumentException($"{slopes.Length} slopes for {input.Shape.C} channels", nameof(slopes));
        Slopes = slopes;
    }
    /// <summary>One slope per channel (applied where x &lt; 0).</summary>
    public float[] Slopes { get; }
    public float Apply(float x, int channel) => x >= 0 ? x : Slopes[channel] * x;
    public override string Op => "ChannelPRelu";
    public override long Macs => Output.Shape.Elements;
    public override bool IsSpatiallyLocal => true;
    public override Region InputRegion(int index, Region o) => o;
}

/// <summary>
/// Element-wise product of two tensors of equal shape, or of a map and a 1x1xC vector (<see cref="BroadcastsB"/>:
/// the channel attention of squeeze-and-excitation blocks).
/// </summary>
public sealed class Mul : Layer
{
    public Mul(string name, Tensor a, Tensor b, Tensor output) : base(name, new[] { a, b }, output) { }
    public bool BroadcastsB => Add.IsChannelBroadcast(this);
    public override string Op => "Mul";
    public override long Macs => Output.Shape.Elements;
    public override bool IsSpatiallyLocal => !BroadcastsB;
    public override Region InputRegion(int index, Region o) => index == 1 && BroadcastsB ? Region.Full(Inputs[1].Shape) : o;
}

/// <summary>Concatenation along channels.</summary>
public sealed class Concat : Layer
{
    public Concat(string name, IReadOnlyList<Tensor> inputs, Tensor output) : base(name, inputs, output) { }
    public override string Op => "Concat";
    public override long Macs => 0;
    public override bool IsSpatiallyLocal => true;
    public override Region InputRegion(int index, Region o) => o;
}

/// <summary>
/// Moves data without changing it (ONNX Transpose, Reshape, Flatten, Squeeze, Unsqueeze where the element order
/// changes, and the axis moves around Softmax or Concat over a non-channel axis): a strided copy. The output, in its
/// storage order, enumerates the index space <see cref="Dims"/> row-major, and the element at index (i0, i1, ...) is
/// input element sum(i_k * <see cref="InputStrides"/>[k]) (storage order of the input). Any permutation of axes,
/// including the NCHW/NHWC conversions around a reshape, is one such copy; a zero stride repeats the input along an
/// axis (an ONNX broadcast, expanded).
/// </summary>
public sealed class Relayout : Layer
{
    public const int MaxDims = 6;

    public Relayout(string name, Tensor input, Tensor output, int[] dims, int[] inputStrides, string function)
        : base(name, new[] { input }, output)
    {
        if (dims.Length != inputStrides.Length || dims.Length is < 1 or > MaxDims)
            throw new ArgumentException($"{dims.Length} dims and {inputStrides.Length} strides (1 to {MaxDims} of each)");
        if (dims.Aggregate(1L, (a, d) => a * d) != output.Shape.Elements || inputStrides.Any(s => s < 0)
            || dims.Select((d, k) => (long)(d - 1) * inputStrides[k]).Sum() >= input.Shape.Elements)
            throw new ArgumentException($"index space [{string.Join(",", dims)}] with strides [{string.Join(",", inputStrides)}] does not map {input.Shape} to {output.Shape}");
        Dims = dims; InputStrides = inputStrides; Function = function;
    }
    /// <summary>The index space, outermost first; its row-major order is the output's storage order.</summary>
    public int[] Dims { get; }
    /// <summary>Step in the input's storage for one step along each of <see cref="Dims"/>.</summary>
    public int[] InputStrides { get; }
    /// <summary>The ONNX operator it implements, for reports (e.g. "Transpose(perm=[0,2,1])").</summary>
    public string Function { get; }
    public override string Op => "Relayout";
    public override long Macs => 0;
    public override bool IsSpatiallyLocal => false;

    /// <summary>For each output element (storage order), the input element it copies.</summary>
    public int[] SourceIndices()
    {
        var src = new int[Output.Shape.Elements];
        var idx = new int[Dims.Length];
        int offset = 0;
        for (int o = 0; o < src.Length; o++)
        {
            src[o] = offset;
            for (int k = Dims.Length - 1; k >= 0; k--)
            {
                offset += InputStrides[k];
                if (++idx[k] < Dims[k]) break;
                offset -= InputStrides[k] * Dims[k];
                idx[k] = 0;
            }
        }
        return src;
    }
}
