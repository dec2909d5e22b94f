using System.Diagnostics;
using MCUNetV2.Compiler.Emission;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The generated C of the VWW sample built for the host (x86-64 gcc, the portable kernels without Arm DSP intrinsics)
/// with -fsanitize=address,undefined: per layer and patch-based (4x4, in-place and fused kernels, border patches),
/// on all 15 images, with no sanitizer report and bytes identical to the C# int8 reference.
/// </summary>
[TestClass]
public sealed class HostSanitizerTests
{
    private static string Work => TestWork.Folder("mcunet-host-");

    [TestMethod]
    public void GeneratedCode_UnderAddressAndUndefinedBehaviourSanitizers_MatchesTheInt8Reference()
    {
        var graph = Onnx.OnnxImporter.Load(TestData.VwwModel);
        var floats = TestData.VwwImages.Select(i => TestData.VwwInput(i.Path, graph.Input.Shape)).ToList();
        var int8 = Quantizer.Quantize(graph, CalibrationRanges.Observe(graph, floats));
        var inputs = floats.Select(int8.QuantizeInput).ToList();
        var plans = new[] { ("per-layer", PatchPlanner.PerLayer(graph)), ("4x4", PatchSearch.BestForGrid(graph, 4, 4)!) };
        foreach (var (name, plan) in plans)
        {
            var outputs = HostBuild.Run(int8, plan, inputs, Path.Combine(Work, name));
            for (int i = 0; i < inputs.Count; i++)
                CollectionAssert.AreEqual(Int8Executor.Run(int8, plan, inputs[i]).Select(b => (byte)b).ToArray(), outputs[i], $"{name}: image {i}");
            Console.WriteLine($"{name}: {inputs.Count} images, no sanitizer report");
        }
    }
}

/// <summary>Builds a model's generated C for the host (portable kernels) with ASan and UBSan and runs it on int8 inputs.</summary>
internal static class HostBuild
{
    private static string Here => Path.Combine(TestData.RepoRoot, "tests", "MCUNetV2.Compiler.Tests", "Host");

    /// <returns>The output bytes of each input; fails the test on a sanitizer report or a non-zero exit.</returns>
    public static List<byte[]> Run(QuantizedModel q, ExecutionPlan plan, IReadOnlyList<sbyte[]> inputs, string dir, bool wideWeights = false)
    {
        var src = CEmitter.Emit(q, plan, "m", Path.Combine(dir, "src"), wideWeights: wideWeights);
        var all = BuildAndRun("m", src.ModelSourcePath, new[] { Path.GetDirectoryName(src.HeaderPath)! },
            inputs.SelectMany(x => x.Select(b => (byte)b)).ToArray(), dir);
        int n = q.Graph.Output.Bytes;
        return Enumerable.Range(0, inputs.Count).Select(i => all.Skip(i * n).Take(n).ToArray()).ToList();
    }

    /// <summary>
    /// A hand-written C "model" (<paramref name="prefix"/>.h/.c in this folder, with the kernel header) built with
    /// host_main.c under the sanitizers; returns its output bytes for the concatenated samples in <paramref name="inputs"/>.
    /// </summary>
    public static byte[] RunCheck(string prefix, byte[] inputs, string dir) =>
        BuildAndRun(prefix, Path.Combine(Here, prefix + ".c"),
            new[] { Here, Path.Combine(TestData.RepoRoot, "src", "MCUNetV2.Compiler", "Emission", "Runtime") }, inputs, dir);

    /// <summary>
    /// <paramref name="source"/> (a model with the API of <paramref name="prefix"/>.h) and host_main.c built under ASan
    /// and UBSan, run on the concatenated samples; its output bytes, or a failed test on a sanitizer report.
    /// </summary>
    private static byte[] BuildAndRun(string prefix, string source, IEnumerable<string> includeDirs, byte[] inputs, string dir)
    {
        Directory.CreateDirectory(dir);
        var exe = Path.Combine(dir, "host");
        var upper = prefix.ToUpperInvariant();
        Exec("gcc", $"-std=c99 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer " +
                    string.Concat(includeDirs.Select(d => $"-I{d} ")) +
                    $"-DMODEL_HEADER=\\\"{prefix}.h\\\" -DMODEL_INVOKE={prefix}_invoke " +
                    $"-DMODEL_INPUT_BYTES={upper}_INPUT_BYTES -DMODEL_OUTPUT_BYTES={upper}_OUTPUT_BYTES " +
                    $"{Path.Combine(Here, "host_main.c")} {source} -o {exe}", dir);
        File.WriteAllBytes(Path.Combine(dir, "input.bin"), inputs);
        var stderr = Exec(exe, "input.bin output.bin", dir);
        Assert.IsFalse(stderr.Contains("Sanitizer") || stderr.Contains("runtime error"), stderr);
        return File.ReadAllBytes(Path.Combine(dir, "output.bin"));
    }

    private static string Exec(string file, string arguments, string dir)
    {
        var psi = new ProcessStartInfo(file, arguments) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0";
        using var p = Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.AreEqual(0, p.ExitCode, $"{file} {arguments}\n{stderr}");
        return stderr;
    }
}
