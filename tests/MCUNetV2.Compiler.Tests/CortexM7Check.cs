using MCUNetV2.Compiler.Emission;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Compiler.Tests;

/// <summary>Compiles a quantized model for Cortex-M7 per plan, runs it under QEMU and compares every output byte with the C# int8 reference.</summary>
internal static class CortexM7Check
{
    /// <summary>
    /// Every plan built for the host (portable kernels, ASan/UBSan) and for Cortex-M7 under QEMU (DSP kernels) gives
    /// the C# int8 reference's bytes on every input.
    /// </summary>
    /// <returns>The generated C source of each plan (see <see cref="AssertBitExact"/>).</returns>
    public static List<string> AssertBitExactOnHostAndCortexM7(QuantizedModel q, IReadOnlyList<(string Name, ExecutionPlan Plan)> plans, IReadOnlyList<sbyte[]> inputs, string work, string label,
        bool wideWeights = false)
    {
        foreach (var (name, plan) in plans)
        {
            var host = HostBuild.Run(q, plan, inputs, Path.Combine(work, "host-" + name), wideWeights);
            for (int i = 0; i < inputs.Count; i++)
                CollectionAssert.AreEqual(Int8Executor.Run(q, plan, inputs[i]).Select(b => (byte)b).ToArray(), host[i], $"{label} {name}: host, input {i}");
        }
        return AssertBitExact(q, plans, inputs, Path.Combine(work, "m7"), wideWeights: wideWeights);
    }

    /// <returns>The generated C source of each plan (for assertions about which kernels were used).</returns>
    /// <param name="optimizationFlags">The library's optimisation flags (the harness as always).</param>
    /// <param name="wideWeights">Emit the pointwise weights as int16 (PointwiseWeights="int16").</param>
    public static List<string> AssertBitExact(QuantizedModel q, IEnumerable<(string Name, ExecutionPlan Plan)> plans, IReadOnlyList<sbyte[]> inputs, string work,
        string optimizationFlags = "-O2", bool wideWeights = false)
    {
        var bytes = inputs.SelectMany(x => x.Select(b => (byte)b)).ToArray();
        var tc = new ArmToolchain(new ToolchainOptions { OptimizationFlags = optimizationFlags });
        var harness = new QemuHarness(tc, "qemu-system-arm");
        var sources = new List<string>();
        foreach (var (name, plan) in plans)
        {
            var dir = Path.Combine(work, "qemu-" + name);
            var src = CEmitter.Emit(q, plan, "m", Path.Combine(dir, "src"), wideWeights: wideWeights);
            sources.Add(File.ReadAllText(src.ModelSourcePath));
            // the generated code compiles without a warning even with -Wextra (users may build it with their flags)
            tc.CompileObject(src.ModelSourcePath, Path.Combine(dir, "m.o"), new[] { Path.GetDirectoryName(src.HeaderPath)! }, "-Wextra -Werror");
            tc.Archive(new[] { Path.Combine(dir, "m.o") }, Path.Combine(dir, "libm.a"));
            var run = harness.Run(Path.Combine(dir, "libm.a"), src.HeaderPath, "m", bytes, inputs.Count, Path.Combine(dir, "run"));
            for (int i = 0; i < inputs.Count; i++)
            {
                var reference = Int8Executor.Run(q, plan, inputs[i]).Select(b => (byte)b).ToArray();
                CollectionAssert.AreEqual(Int8Executor.Run(q, inputs[i]).Select(b => (byte)b).ToArray(), reference, $"{name}: C# plan vs per-layer, input {i}");
                CollectionAssert.AreEqual(reference, run.Output(i).ToArray(), $"{name}: QEMU vs C# int8 reference, input {i}");
            }
        }
        return sources;
    }
}
