namespace MCUNetV2.Compiler.Graph;

/// <summary>
/// Quantization that a pre-quantized model (QDQ or QOperator) brings with it: the scale and int8 zero point of the
/// activations it quantizes and the per-output-channel scales of the weights it stores as integers. The quantizer uses
/// these instead of calibrating. uint8 parameters are already shifted to int8 (zero point - 128).
/// </summary>
public sealed class ImportedQuantization
{
    /// <summary>real = Scale * (q - ZeroPoint), q in int8.</summary>
    public Dictionary<Tensor, (double Scale, int ZeroPoint)> Activations { get; } = new();

    /// <summary>Scale of each output channel of a Conv2D / FullyConnected whose weights the model stores as int8 with zero point 0.</summary>
    public Dictionary<Layer, double[]> WeightScales { get; } = new();

    /// <summary>What the importer could not keep exactly as the model says (each line names the tensor or node).</summary>
    public List<string> Notes { get; } = new();

    public bool IsEmpty => Activations.Count == 0 && WeightScales.Count == 0;
}
