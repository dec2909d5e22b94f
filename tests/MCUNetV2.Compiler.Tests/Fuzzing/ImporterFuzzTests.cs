using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using Google.Protobuf;
using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Onnx;
using MCUNetV2.Compiler.Onnx.Proto;
using MCUNetV2.Compiler.Planning;

namespace MCUNetV2.Compiler.Tests;

/// <summary>
/// Robustness of the ONNX importer: mutated and truncated copies of the two real models (VWW MobileNetV2 and the ONNX
/// model zoo's mnist-8) must each end in a graph (which then plans without crashing) or in a
/// <see cref="CompilerException"/> with a documented code (MCUdddd) naming the model file — never in any other
/// exception, a hang, or a runaway allocation.
/// </summary>
/// <remarks>
/// Deterministic: variant <c>i</c> of a model is generated from <c>new Random(seed * 7919 + i)</c> alone, so a failing
/// variant is reproduced by <see cref="Generate"/> with the model and index printed in the summary. Set
/// MCUNET_FUZZ_KEEP to a directory to keep the failing variants' files there, and MCUNET_FUZZ_VARIANTS to run more
/// variants per model than the default 2,000 (about 20 s on two cores).
/// </remarks>
[TestClass]
public sealed partial class ImporterFuzzTests
{
    /// <summary>Variants per model; MCUNET_FUZZ_VARIANTS overrides it for a deeper (slower) run.</summary>
    private static int VariantsPerModel =>
        int.TryParse(Environment.GetEnvironmentVariable("MCUNET_FUZZ_VARIANTS"), out var n) && n > 0 ? n : 2000;
    /// <summary>A variant slower than this is a finding (it still counts its outcome).</summary>
    private static readonly TimeSpan SlowVariant = TimeSpan.FromSeconds(5);
    /// <summary>A variant still running after this is abandoned and reported as a hang.</summary>
    private static readonly TimeSpan HungVariant = TimeSpan.FromSeconds(20);
    /// <summary>Whole-run budget; variants not started by then are reported as not run.</summary>
    private static readonly TimeSpan Budget = TimeSpan.FromSeconds(150);
    /// <summary>Managed bytes one variant may allocate on its thread (the VWW baseline needs a few tens of MB).</summary>
    private const long HugeAllocation = 1L << 30;

    [GeneratedRegex(@"^MCU\d{4}$")]
    private static partial Regex CodePattern();

    public TestContext TestContext { get; set; } = null!;

    private static string MnistModel => Path.Combine(TestData.RepoRoot, "tests", "data", "models", "mnist-8", "model.onnx");

    // ------------------------------------------------------------------------------------------------ the test

    [TestMethod]
    public void Importer_MutatedAndTruncatedModels_EndInSuccessOrCodedError()
    {
        var work = Directory.CreateTempSubdirectory("mcunet-fuzz-").FullName;
        // Pre-quantized forms of one small network (PrequantizedModelTests) exercise the QDQ and QOperator paths.
        var network = new PrequantizedModelTests.Network();
        var models = new[]
        {
            FuzzModel.Load("vww", TestData.VwwModel, seed: 20_251),
            FuzzModel.Load("mnist-8", MnistModel, seed: 80_008),
            FuzzModel.Load("qdq", network.SaveQdq(Path.Combine(work, "network.qdq.onnx")), seed: 13_013),
            FuzzModel.Load("qoperator", network.SaveQOperator(Path.Combine(work, "network.qop.onnx")), seed: 31_031),
        };
        var keep = Environment.GetEnvironmentVariable("MCUNET_FUZZ_KEEP");
        try
        {
            var jobs = models.SelectMany(m => Enumerable.Range(0, VariantsPerModel).Select(i => (Model: m, Index: i))).ToList();
            var outcomes = RunAll(jobs, work, keep);
            Report(models, jobs.Count, outcomes);
        }
        finally
        {
            try { Directory.Delete(work, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }

    private sealed record Outcome(string Model, int Index, string Description, string Result, string? Finding,
        string? Detail, TimeSpan Elapsed, long Allocated);

    /// <summary>Runs the variants on a few dedicated threads with a watchdog for hangs and an overall budget.</summary>
    private static List<Outcome> RunAll(List<(FuzzModel Model, int Index)> jobs, string work, string? keep)
    {
        int workers = Math.Clamp(Environment.ProcessorCount, 2, 8);
        var outcomes = new List<Outcome>();
        var running = new List<(Task<Outcome> Task, FuzzModel Model, int Index, Stopwatch Clock)>();
        var total = Stopwatch.StartNew();
        int next = 0, notRun = 0;
        while (next < jobs.Count || running.Count > 0)
        {
            while (running.Count < workers && next < jobs.Count)
            {
                if (total.Elapsed > Budget) { notRun = jobs.Count - next; next = jobs.Count; break; }
                var (model, index) = jobs[next++];
                var task = Task.Factory.StartNew(() => RunOne(model, index, work, keep), CancellationToken.None,
                    TaskCreationOptions.LongRunning, TaskScheduler.Default);
                running.Add((task, model, index, Stopwatch.StartNew()));
            }
            if (running.Count == 0) break;
            Task.WaitAny(running.Select(r => (Task)r.Task).ToArray(), TimeSpan.FromMilliseconds(200));
            for (int i = running.Count - 1; i >= 0; i--)
            {
                var r = running[i];
                if (r.Task.IsCompleted)
                {
                    outcomes.Add(r.Task.IsFaulted
                        ? throw new InvalidOperationException($"fuzz harness failed on {r.Model.Name} #{r.Index}", r.Task.Exception)
                        : r.Task.Result);
                    running.RemoveAt(i);
                }
                else if (r.Clock.Elapsed > HungVariant)
                {
                    // Abandon the thread (it is a background thread and cannot be stopped safely) and carry on.
                    outcomes.Add(new Outcome(r.Model.Name, r.Index, r.Model.DescribeOnly(r.Index), "hang",
                        $"hang: no result after {HungVariant.TotalSeconds:0} s", null, r.Clock.Elapsed, 0));
                    running.RemoveAt(i);
                }
            }
        }
        if (notRun > 0)
            outcomes.Add(new Outcome("-", -1, $"{notRun} variants not run", "not run",
                $"budget: the run exceeded {Budget.TotalSeconds:0} s; {notRun} of {jobs.Count} variants were not run", null, total.Elapsed, 0));
        return outcomes;
    }

    private static Outcome RunOne(FuzzModel model, int index, string work, string? keep)
    {
        var fileName = $"{model.Name}-{index:D4}.onnx";
        var path = Path.Combine(work, fileName);
        var (description, bytes) = Generate(model, index, fileName);
        File.WriteAllBytes(path, bytes);
        long allocBefore = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        string result;
        string? finding = null, detail = null;
        string stage = "import";
        try
        {
            var graph = OnnxImporter.Load(path);
            stage = "plan";
            PatchSearch.BestForGrid(graph, 2, 2);
            PatchPlanner.PerLayer(graph);
            if (graph.Quantization != null && Quantization.Quantizer.TensorsNeedingCalibration(graph).Count == 0)
            {
                stage = "quantize with the model's parameters";
                Quantization.Quantizer.Quantize(graph, ranges: null);
            }
            result = "success";
        }
        catch (CompilerException e)
        {
            var d = e.Diagnostic;
            result = d.Code;
            if (!CodePattern().IsMatch(d.Code ?? "") || d.File != path)
            {
                var where = Frames(e);
                finding = $"CompilerException with a bad diagnostic (code '{d.Code}', file {(d.File == path ? "= model path" : $"'{d.File}' != model path")}) during {stage} at {where.Project}";
                detail = $"{e.Message}\n      thrown at {where.Thrower}";
            }
        }
        catch (Exception e)
        {
            var where = Frames(e);
            result = e.GetType().Name;
            finding = $"{e.GetType().FullName} during {stage} at {where.Project}";
            detail = $"{FirstLine(e.Message)}\n      thrown at {where.Thrower}";
        }
        clock.Stop();
        long allocated = GC.GetAllocatedBytesForCurrentThread() - allocBefore;
        if (finding == null && clock.Elapsed > SlowVariant)
            finding = $"slow: a variant took more than {SlowVariant.TotalSeconds:0} s ({result})";
        if (finding == null && allocated > HugeAllocation)
            finding = $"huge allocation: a variant allocated more than {HugeAllocation >> 20} MiB ({result})";
        if (finding != null && !string.IsNullOrEmpty(keep))
        {
            Directory.CreateDirectory(keep);
            File.Copy(path, Path.Combine(keep, fileName), overwrite: true);
        }
        try { File.Delete(path); } catch (IOException) { }
        return new Outcome(model.Name, index, description, result, finding, detail, clock.Elapsed, allocated);
    }

    private void Report(FuzzModel[] models, int planned, List<Outcome> outcomes)
    {
        var text = new StringBuilder();
        text.AppendLine($"Importer fuzzing: {outcomes.Count(o => o.Index >= 0)} of {planned} variants run " +
                        $"({string.Join(", ", models.Select(m => $"{m.Name}: {m.Bytes.Length} bytes"))}).");
        foreach (var m in models)
        {
            var mine = outcomes.Where(o => o.Model == m.Name).ToList();
            var counts = mine.GroupBy(o => o.Result).OrderByDescending(g => g.Key == "success").ThenBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => $"{g.Key} {g.Count()}");
            var slowest = mine.MaxBy(o => o.Elapsed);
            var baseline = string.Join(", ", mine.Where(o => o.Index is 0 or 3).OrderBy(o => o.Index).Select(o => $"#{o.Index} {o.Result}"));
            text.AppendLine($"  {m.Name}: {mine.Count} variants -> {string.Join(", ", counts)}; baselines (#0 unmodified, #3 legalized): {baseline}; " +
                            $"slowest {slowest?.Elapsed.TotalMilliseconds:0} ms (#{slowest?.Index}), " +
                            $"most allocated {mine.Max(o => o.Allocated) >> 20} MiB");
        }
        var failures = outcomes.Where(o => o.Finding != null).ToList();
        var groups = failures.GroupBy(o => o.Finding!).OrderByDescending(g => g.Count()).ThenBy(g => g.Key, StringComparer.Ordinal).ToList();
        if (groups.Count > 0)
        {
            text.AppendLine();
            text.AppendLine($"{failures.Count} variants failed, in {groups.Count} groups (exception type + first frame in src/):");
            int n = 0;
            foreach (var g in groups)
            {
                var example = g.OrderBy(o => o.Description.Length).ThenBy(o => o.Model, StringComparer.Ordinal).ThenBy(o => o.Index).First();
                text.AppendLine($"{++n}. [{g.Count()}x] {g.Key}");
                if (example.Detail != null) text.AppendLine($"      {example.Detail}");
                text.AppendLine($"      e.g. {example.Model} #{example.Index}: {example.Description}");
            }
        }
        var summary = text.ToString();
        TestContext.WriteLine(summary);
        Assert.IsTrue(planned >= 1000, $"only {planned} variants planned");
        Assert.AreEqual(0, failures.Count, "\n" + summary);
    }

    private static string FirstLine(string s) { var i = s.IndexOf('\n'); return i < 0 ? s : s[..i].TrimEnd(); }

    /// <summary>The innermost frame, and the innermost frame in the compiler's own sources (file:line under src/).</summary>
    private static (string Thrower, string Project) Frames(Exception e)
    {
        var frames = new StackTrace(e, fNeedFileInfo: true).GetFrames();
        static string Format(StackFrame f)
        {
            var m = f.GetMethod();
            var file = f.GetFileName();
            var type = m?.DeclaringType;
            // Show lambdas and local functions under their enclosing type.
            while (type is { DeclaringType: not null } && type.Name.StartsWith('<')) type = type.DeclaringType;
            var where = file == null ? "" : $" ({RelativeToRepo(file)}:{f.GetFileLineNumber()})";
            return $"{type?.Name}.{m?.Name}{where}";
        }
        var thrower = frames.Length > 0 ? Format(frames[0]) : "(no stack)";
        var project = frames.FirstOrDefault(f => f.GetFileName() is { } file
            && file.Replace('\\', '/').Contains("/src/MCUNetV2.Compiler/", StringComparison.Ordinal)
            && !file.Replace('\\', '/').Contains("/obj/", StringComparison.Ordinal));
        return (thrower, project != null ? Format(project) : thrower);
    }

    private static string RelativeToRepo(string file) =>
        Path.GetRelativePath(TestData.RepoRoot, file).Replace('\\', '/');
}
