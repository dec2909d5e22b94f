namespace MCUNetV2.Compiler.Graph;

/// <summary>Shape of an activation, batch 1, channels last (NHWC). A vector of K features is (1, 1, K).</summary>
public readonly record struct TensorShape(int H, int W, int C)
{
    public int Elements => H * W * C;
    public override string ToString() => $"{H}x{W}x{C}";
}

/// <summary>An activation tensor of the graph (weights live inside the layers).</summary>
public sealed class Tensor
{
    public Tensor(string name, TensorShape shape) { Name = name; Shape = shape; }
    public string Name { get; set; }
    public TensorShape Shape { get; }
    /// <summary>Bytes as int8.</summary>
    public int Bytes => Shape.Elements;
    public override string ToString() => $"{Name} [{Shape}]";
}

/// <summary>Clamp applied to a layer's float output (ReLU = [0, inf), ReLU6 = [0, 6]).</summary>
public readonly record struct ActivationRange(float Min, float Max)
{
    public static readonly ActivationRange None = new(float.NegativeInfinity, float.PositiveInfinity);
    public bool IsNone => float.IsNegativeInfinity(Min) && float.IsPositiveInfinity(Max);
    public ActivationRange Intersect(ActivationRange o) => new(Math.Max(Min, o.Min), Math.Min(Max, o.Max));
    /// <summary>min(max(v, Min), Max), as ONNX Clip defines it (all Max when Min &gt; Max).</summary>
    public float Apply(float v) => Math.Min(Math.Max(v, Min), Max);
}

/// <summary>The model after import and rewrites: a topologically ordered list of layers from one input to one output.</summary>
public sealed class ModelGraph
{
    public ModelGraph(IReadOnlyList<Tensor> inputs, Tensor output, IReadOnlyList<Layer> layers, IReadOnlyList<string> inputNames, string outputName,
        IReadOnlyList<int>? inputRanks = null, int outputRank = 0)
    {
        Inputs = inputs; Output = output; Layers = layers; OnnxInputNames = inputNames; OnnxOutputName = outputName;
        OnnxInputRanks = inputRanks ?? inputs.Select(t => t.Shape.H * t.Shape.W == 1 ? 2 : 4).ToList();
        OnnxOutputRank = outputRank > 0 ? outputRank : output.Shape.H * output.Shape.W == 1 ? 2 : 4;
    }
    /// <summary>The graph inputs. The device code takes exactly one; the reference executors take any number.</summary>
    public IReadOnlyList<Tensor> Inputs { get; }
    /// <summary>The (first) input.</summary>
    public Tensor Input => Inputs[0];
    public Tensor Output { get; }
    public IReadOnlyList<Layer> Layers { get; }
    public IReadOnlyList<string> OnnxInputNames { get; }
    public string OnnxInputName => OnnxInputNames[0];
    public string OnnxOutputName { get; }
    /// <summary>ONNX rank of each input: 4 [1,C,H,W], 3 [C,H,W], 2 [1,K], 1 [K].</summary>
    public IReadOnlyList<int> OnnxInputRanks { get; }
    /// <summary>ONNX rank of the output, read like <see cref="OnnxInputRanks"/>.</summary>
    public int OnnxOutputRank { get; }

    /// <summary>
    /// The output's ONNX dims when no map can hold it (rank 5 or more, or a rank-4 tensor whose first axis is not 1):
    /// then the output is a 1x1xN vector in ONNX (row-major) order. Null for outputs described by <see cref="OnnxOutputRank"/>.
    /// </summary>
    public long[]? OnnxOutputDims { get; init; }

    /// <summary>The .onnx file the graph was read from (for diagnostics), if any.</summary>
    public string? SourcePath { get; init; }

    /// <summary>Scales and zero points the model itself carries (QDQ / QOperator models); null for a float model.</summary>
    public ImportedQuantization? Quantization { get; init; }

    public IEnumerable<Tensor> Tensors => Inputs.Concat(Layers.Select(l => l.Output));

    public long TotalMacs => Layers.Sum(l => l.Macs);

    /// <summary>Index of the last layer that reads each tensor (-1 if none).</summary>
    public Dictionary<Tensor, int> LastUse()
    {
        var last = Tensors.ToDictionary(t => t, _ => -1);
        for (int i = 0; i < Layers.Count; i++)
            foreach (var t in Layers[i].Inputs) last[t] = i;
        return last;
    }
}
