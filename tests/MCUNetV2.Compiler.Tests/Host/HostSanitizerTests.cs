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
            var dir = Path.Combine(Work, name);
            var src = CEmitter.Emit(int8, plan, "vww", Path.Combine(dir, "src"));
            var exe = Path.Combine(dir, "host");
            var main = Path.Combine(TestData.RepoRoot, "tests", "MCUNetV2.Compiler.Tests", "Host", "host_main.c");
            Run("gcc", $"-std=c99 -O1 -g -Wall -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer " +
                       $"-I{Path.GetDirectoryName(src.HeaderPath)} -DMODEL_HEADER=\\\"vww.h\\\" -DMODEL_INVOKE=vww_invoke " +
                       $"-DMODEL_INPUT_BYTES=VWW_INPUT_BYTES -DMODEL_OUTPUT_BYTES=VWW_OUTPUT_BYTES {main} {src.ModelSourcePath} -o {exe}", dir);
            File.WriteAllBytes(Path.Combine(dir, "input.bin"), inputs.SelectMany(q => q.Select(b => (byte)b)).ToArray());
            var (stdout, stderr) = Run(exe, "input.bin output.bin", dir);
            Assert.IsFalse(stderr.Contains("Sanitizer") || stderr.Contains("runtime error"), $"{name}: {stderr}");
            var outputs = File.ReadAllBytes(Path.Combine(dir, "output.bin"));
            int n = graph.Output.Bytes;
            for (int i = 0; i < inputs.Count; i++)
                CollectionAssert.AreEqual(Int8Executor.Run(int8, plan, inputs[i]).Select(b => (byte)b).ToArray(),
                    outputs.Skip(i * n).Take(n).ToArray(), $"{name}: image {i}");
            Console.WriteLine($"{name}: {stdout.Trim()}, no sanitizer report");
        }
    }

    private static (string Stdout, string Stderr) Run(string file, string arguments, string dir)
    {
        var psi = new ProcessStartInfo(file, arguments) { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true };
        psi.Environment["ASAN_OPTIONS"] = "detect_leaks=1:abort_on_error=0";
        using var p = Process.Start(psi)!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        Assert.AreEqual(0, p.ExitCode, $"{file} {arguments}\n{stderr}");
        return (stdout.Result, stderr);
    }
}
