using MCUNetV2.Compiler.Diagnostics;

namespace MCUNetV2.Compiler.Pipeline;

/// <summary>Runs the whole pipeline for one model: import, quantize, plan, emit C, cross-compile, verify.</summary>
public static class TinyModelBuilder
{
    public static TinyModelResult Build(TinyModelOptions options, IDiagnosticSink sink)
    {
        throw new NotImplementedException("pipeline not wired yet");
    }
}
