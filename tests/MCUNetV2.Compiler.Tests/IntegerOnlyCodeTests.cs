using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Emission;
using MCUNetV2.Compiler.Graph;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Planning;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Toolchain;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// The generated inference code is integer-only: compiled for Cortex-M7 with the hardware FPU enabled
/// (-mfloat-abi=hard -mfpu=fpv5-d16, so the compiler could use it freely), the object code holds no FPU instruction
/// (every Cortex-M7 FPU instruction is a V* mnemonic: VADD.F32, VCVT, VMOV, VLDR, VPUSH...) and calls no software
/// floating-point or libm routine.
/// </summary>
[TestClass]
public sealed class IntegerOnlyCodeTests
{
    private static readonly Regex FloatHelper = new(@"__aeabi_[fd]|__aeabi_[il]2[fd]|\b(expf?|logf?|powf?|sqrtf?|roundf?|floorf?)\b");

    private static IEnumerable<(string Name, QuantizedModel Model, ExecutionPlan Plan)> Models()
    {
        var vww = OnnxImporter.Load(TestData.VwwModel);
        var vwwInt8 = Quantizer.Quantize(vww, CalibrationRanges.Observe(vww, TestData.VwwImages.Take(4).Select(i => TestData.VwwInput(i.Path, vww.Input.Shape))));
        yield return ("vww-per-layer", vwwInt8, PatchPlanner.PerLayer(vww));
        yield return ("vww-2x2", vwwInt8, PatchPlanner.BestForGrid(vww, 2, 2)!);
        var mnist = OnnxImporter.Load(Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx"));
        var mnistInt8 = Quantizer.Quantize(mnist, CalibrationRanges.Observe(mnist, Enumerable.Range(0, 3).Select(i => MnistTests.DataSet(i).Input)));
        yield return ("mnist-8", mnistInt8, PatchPlanner.PerLayer(mnist));
    }

    [TestMethod]
    public void GeneratedInferenceCode_HasNoFloatingPointInstruction()
    {
        var work = Directory.CreateTempSubdirectory("mcunet-intonly-").FullName;
        try
        {
            var tc = new ArmToolchain(new ToolchainOptions());
            var objdump = tc.FindTool("objdump") ?? throw new AssertInconclusiveException("arm-none-eabi-objdump not found");
            // The check itself finds floating point: a control file with a float multiply and expf.
            var control = Path.Combine(work, "control.c");
            File.WriteAllText(control, "#include <math.h>\nfloat f(float a, float b) { return expf(a * b); }\n");
            tc.CompileObject(control, Path.Combine(work, "control.o"), Array.Empty<string>());
            var (_, controlFpu, controlHelpers) = Inspect(objdump, Path.Combine(work, "control.o"));
            Assert.IsTrue(controlFpu.Count > 0 && controlHelpers.Count > 0, "the control file's float code was not detected");

            foreach (var (name, model, plan) in Models())
            {
                var dir = Path.Combine(work, name);
                var src = CEmitter.Emit(model, plan, "m", Path.Combine(dir, "src"));
                var obj = Path.Combine(dir, "m.o");
                tc.CompileObject(src.ModelSourcePath, obj, new[] { Path.GetDirectoryName(src.HeaderPath)! });
                var (instructions, fpu, helpers) = Inspect(objdump, obj);
                Console.WriteLine($"{name}: {instructions} instructions, FPU instructions: {fpu.Count}, float helper calls: {helpers.Count}");
                Assert.IsTrue(instructions > 200, $"{name}: objdump listed only {instructions} instructions");
                Assert.AreEqual(0, fpu.Count, $"{name}: FPU instructions in the inference code: {string.Join(", ", fpu)}");
                Assert.AreEqual(0, helpers.Count, $"{name}: floating-point helper calls: {string.Join("; ", helpers)}");
            }
        }
        finally { try { Directory.Delete(work, true); } catch (IOException) { } }
    }

    /// <summary>Instruction count, distinct FPU mnemonics and relocations to float helpers in an object file.</summary>
    private static (int Instructions, List<string> Fpu, List<string> Helpers) Inspect(string objdump, string obj)
    {
        var run = ProcessRunner.Run(objdump, new[] { "-d", "-r", "--no-show-raw-insn", obj }, timeout: TimeSpan.FromMinutes(1));
        Assert.AreEqual(0, run.ExitCode, run.StandardError);
        var lines = run.StandardOutput.Split('\n');
        // "   1a4:	vadd.f32	s0, s0, s1" -> the mnemonic is the second tab-separated field
        var instructions = lines.Select(l => l.Split('\t')).Where(f => f.Length >= 2 && Regex.IsMatch(f[0], @"^\s*[0-9a-f]+:$")).Select(f => f[1].Trim()).ToList();
        var fpu = instructions.Where(m => m.StartsWith('v')).Distinct().ToList();
        var helpers = lines.Where(l => l.Contains("R_ARM_") && FloatHelper.IsMatch(l)).Select(l => l.Trim()).Distinct().ToList();
        return (instructions.Count, fpu, helpers);
    }
}
