using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Tests;

/// <summary>How far the int8 model is from the float model, in steps of the output's quantization.</summary>
internal static class Int8Agreement
{
    /// <summary>The largest |float - dequantized int8| over all outputs of all inputs (NHWC), divided by the output scale.</summary>
    public static double WorstOutputSteps(ModelGraph graph, QuantizedModel q, IEnumerable<float[]> inputs)
    {
        double worst = 0;
        foreach (var x in inputs)
        {
            var f = FloatExecutor.Run(graph, x);
            var i8 = q.DequantizeOutput(Int8Executor.Run(q, q.QuantizeInput(x)));
            worst = Math.Max(worst, f.Zip(i8, (a, b) => Math.Abs(a - b)).Max());
        }
        return worst / q.OutputParams.Scale;
    }
}
