using System.Globalization;
using System.Text.RegularExpressions;
using MCUNetV2.Compiler.Diagnostics;

namespace MCUNetV2.Compiler.Toolchain;

/// <summary>What one harness run on QEMU produced.</summary>
/// <param name="Outputs">SampleCount x OutputBytesPerSample bytes, sample after sample.</param>
/// <param name="SampleCount">Samples run.</param>
/// <param name="InputBytesPerSample">The model's &lt;PREFIX&gt;_INPUT_BYTES.</param>
/// <param name="OutputBytesPerSample">The model's &lt;PREFIX&gt;_OUTPUT_BYTES.</param>
/// <param name="ArenaBytes">The library's declared arena size (&lt;PREFIX&gt;_ARENA_BYTES).</param>
/// <param name="ArenaHighWaterBytes">Highest arena byte offset (+1) any invoke changed (painting method: harness_main.c).</param>
/// <param name="StackHighWaterBytes">Most stack bytes one invoke call used, measured from the stack pointer at the call.</param>
/// <param name="InstructionsPerSample">Guest instructions per invoke (timer0 ticks x 40, resolution 40), per sample; null unless counted.</param>
/// <param name="StandardOutput">QEMU's stdout (the guest's printf output).</param>
/// <param name="StandardError">QEMU's stderr.</param>
/// <param name="ElfPath">The linked harness executable (in the work directory).</param>
/// <param name="Elapsed">Wall-clock time of the QEMU run.</param>
/// <param name="LayerInstructions">
/// Guest instructions per layer of sample 0 (timer0 ticks x 40, so +-40 each), when the library was compiled with
/// -DMCU_PROFILE and instructions were counted; else null.
/// </param>
/// <param name="StreamedReads">
/// For a streamed-input library: how many regions its read callback delivered while every sample also ran through
/// &lt;prefix&gt;_invoke_streamed with bytes identical to &lt;prefix&gt;_invoke (the harness fails otherwise); null when there is none.
/// </param>
public sealed record HarnessRunResult(
    byte[] Outputs,
    int SampleCount,
    int InputBytesPerSample,
    int OutputBytesPerSample,
    long ArenaBytes,
    long ArenaHighWaterBytes,
    long StackHighWaterBytes,
    IReadOnlyList<long>? InstructionsPerSample,
    string StandardOutput,
    string StandardError,
    string ElfPath,
    TimeSpan Elapsed,
    long? StreamedReads = null,
    IReadOnlyList<long>? LayerInstructions = null)
{
    /// <summary>The output of one sample.</summary>
    public ReadOnlySpan<byte> Output(int sample) => Outputs.AsSpan(sample * OutputBytesPerSample, OutputBytesPerSample);
}

/// <summary>
/// Builds the verification harness (Toolchain/Harness/*, embedded as resources) against a generated model library
/// and runs it under <c>qemu-system-arm -machine mps2-an500</c> with semihosting.
/// The harness is configured by -D macros: MODEL_HEADER="&lt;prefix&gt;.h", MODEL_INVOKE=&lt;prefix&gt;_invoke,
/// MODEL_INPUT_BYTES / MODEL_OUTPUT_BYTES / MODEL_ARENA_BYTES = &lt;PREFIX&gt;_INPUT_BYTES / ..., MODEL_ARENA=&lt;prefix&gt;_arena.
/// </summary>
public sealed class QemuHarness
{
    /// <summary>Harness source files, as embedded resources "Harness/&lt;name&gt;".</summary>
    public static readonly IReadOnlyList<string> HarnessFiles = new[] { "startup.c", "harness_main.c", "mps2_an500.ld" };

    /// <summary>CMSDK timer0 runs at 25 MHz; with -icount shift=0 a guest instruction takes 1 ns, so a tick is 40.</summary>
    public const int InstructionsPerTick = 40;

    public const string InputFile = "input.bin", OutputFile = "output.bin", StatsFile = "stats.txt";

    private static readonly Regex Identifier = new("^[A-Za-z_][A-Za-z0-9_]*$", RegexOptions.CultureInvariant);

    private readonly ArmToolchain _toolchain;
    private readonly string _qemuPath;

    public QemuHarness(ArmToolchain tc, string qemuPath)
    {
        _toolchain = tc ?? throw new ArgumentNullException(nameof(tc));
        _qemuPath = string.IsNullOrWhiteSpace(qemuPath) ? "qemu-system-arm" : qemuPath;
    }

    /// <summary>Default limit for one QEMU run.</summary>
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromMinutes(2);

    /// <summary>Full path of qemu-system-arm; throws <see cref="ErrorCodes.QemuMissing"/> when absent.</summary>
    public string LocateQemu() =>
        ProcessRunner.FindExecutable(_qemuPath)
        ?? throw new CompilerException(ErrorCodes.QemuMissing,
            $"{_qemuPath} not found{(_qemuPath.IndexOfAny(new[] { '/', '\\' }) >= 0 ? "" : " on PATH")}; " +
            "install with `sudo apt-get install qemu-system-arm` or set the QEMU path in the toolchain options");

    /// <summary>Writes the embedded harness sources into <paramref name="directory"/> and returns their paths.</summary>
    public static IReadOnlyList<string> ExtractHarnessSources(string directory)
    {
        Directory.CreateDirectory(directory);
        var assembly = typeof(QemuHarness).Assembly;
        var paths = new List<string>();
        foreach (var file in HarnessFiles)
        {
            using var stream = assembly.GetManifestResourceStream("Harness/" + file)
                               ?? throw new CompilerException(ErrorCodes.InternalError,
                                   $"embedded resource Harness/{file} is missing from {assembly.GetName().Name}");
            var path = Path.Combine(directory, file);
            using (var target = File.Create(path)) stream.CopyTo(target);
            paths.Add(path);
        }
        return paths;
    }

    /// <summary>
    /// Compiles the harness against <paramref name="headerPath"/>, links it with <paramref name="libraryPath"/>,
    /// runs <paramref name="sampleCount"/> samples (concatenated in <paramref name="inputs"/>) under QEMU in
    /// <paramref name="workDirectory"/> and returns outputs and measurements.
    /// Throws <see cref="CompilerException"/>: <see cref="ErrorCodes.ToolchainMissing"/>/<see cref="ErrorCodes.CompileFailed"/>
    /// from the build, <see cref="ErrorCodes.QemuMissing"/>, or <see cref="ErrorCodes.QemuFailed"/> (non-zero exit —
    /// e.g. invoke returned non-zero, a fault — or timeout, with the tail of QEMU's output).
    /// </summary>
    public HarnessRunResult Run(string libraryPath, string headerPath, string prefix, byte[] inputs, int sampleCount,
        string workDirectory, bool countInstructions = false, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        if (string.IsNullOrEmpty(prefix) || !Identifier.IsMatch(prefix))
            throw new ArgumentException($"prefix '{prefix}' is not a C identifier", nameof(prefix));
        if (sampleCount <= 0) throw new ArgumentOutOfRangeException(nameof(sampleCount), "at least one sample is needed");
        if (inputs.Length == 0 || inputs.Length % sampleCount != 0)
            throw new ArgumentException($"{inputs.Length} input bytes do not split into {sampleCount} equal samples", nameof(inputs));
        var library = Path.GetFullPath(libraryPath);
        var header = Path.GetFullPath(headerPath);
        if (!File.Exists(library)) throw new CompilerException(ErrorCodes.CompileFailed, $"model library '{library}' does not exist", library);
        if (!File.Exists(header)) throw new CompilerException(ErrorCodes.CompileFailed, $"model header '{header}' does not exist", header);

        var qemu = LocateQemu();
        _toolchain.Locate();

        var work = Path.GetFullPath(workDirectory);
        Directory.CreateDirectory(work);
        ExtractHarnessSources(work);
        var (elf, inputBytes) = Build(library, header, prefix, work);
        if (inputs.Length != (long)sampleCount * inputBytes)
            throw new ArgumentException(
                $"{inputs.Length} input bytes are not {sampleCount} samples of the model's {inputBytes}-byte input " +
                $"({prefix.ToUpperInvariant()}_INPUT_BYTES)", nameof(inputs));

        // Fresh files for this run.
        foreach (var f in new[] { OutputFile, StatsFile }) File.Delete(Path.Combine(work, f));
        File.WriteAllBytes(Path.Combine(work, InputFile), inputs);

        var args = new List<string>
        {
            "-machine", "mps2-an500", "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native",
        };
        if (countInstructions) args.AddRange(new[] { "-icount", "shift=0" });
        args.AddRange(new[] { "-kernel", elf });

        var limit = timeout ?? DefaultTimeout;
        ProcessResult run;
        try
        {
            run = ProcessRunner.Run(qemu, args, work, limit);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new CompilerException(ErrorCodes.QemuMissing,
                $"cannot run '{qemu}': {e.Message}; install with `sudo apt-get install qemu-system-arm`", inner: e);
        }
        if (run.TimedOut)
            throw new CompilerException(ErrorCodes.QemuFailed,
                $"QEMU did not finish within {limit.TotalSeconds:0.#} s running the model harness (killed); output tail:\n{run.OutputTail()}",
                elf, inner: new ToolOutputException(Array.Empty<CompilerDiagnostic>(), run));
        if (run.ExitCode != 0)
            throw new CompilerException(ErrorCodes.QemuFailed,
                $"the model harness failed under QEMU (exit code {run.ExitCode}); output tail:\n{run.OutputTail()}",
                elf, inner: new ToolOutputException(Array.Empty<CompilerDiagnostic>(), run));

        return Collect(work, elf, inputs.Length, sampleCount, countInstructions, run);
    }

    /// <summary>Compiles and links the harness; returns the ELF and the model's input size.</summary>
    private (string Elf, long InputBytes) Build(string library, string header, string prefix, string work)
    {
        var upper = prefix.ToUpperInvariant();
        var defines = new[]
        {
            $"-DMODEL_HEADER=\"{Path.GetFileName(header)}\"",
            $"-DMODEL_INVOKE={prefix}_invoke",
            $"-DMODEL_INPUT_BYTES={upper}_INPUT_BYTES",
            $"-DMODEL_OUTPUT_BYTES={upper}_OUTPUT_BYTES",
            $"-DMODEL_ARENA_BYTES={upper}_ARENA_BYTES",
            $"-DMODEL_ARENA={prefix}_arena",
        };
        var headerText = File.ReadAllText(header);
        // per-layer profile of a library built with -DMCU_PROFILE (the array is weak in the harness: absent otherwise)
        if (headerText.Contains($"#define {upper}_LAYER_COUNT ", StringComparison.Ordinal))
            defines = defines.Concat(new[] { $"-DMODEL_PROFILE={prefix}_profile", $"-DMODEL_LAYER_COUNT={upper}_LAYER_COUNT" }).ToArray();
        // a streamed-input library (StreamInput) is also run through <prefix>_invoke_streamed and must give the same bytes
        if (headerText.Contains($"{prefix}_invoke_streamed(", StringComparison.Ordinal))
            defines = defines.Concat(new[] { $"-DMODEL_INVOKE_STREAMED={prefix}_invoke_streamed", $"-DMODEL_INPUT_WIDTH={upper}_INPUT_WIDTH", $"-DMODEL_INPUT_CHANNELS={upper}_INPUT_CHANNELS" }).ToArray();
        var includeDirs = new[] { Path.GetDirectoryName(header)! };
        var startupObj = Path.Combine(work, "startup.o");
        var mainObj = Path.Combine(work, "harness_main.o");
        _toolchain.CompileObject(Path.Combine(work, "startup.c"), startupObj, Array.Empty<string>(), Array.Empty<string>());
        _toolchain.CompileObject(Path.Combine(work, "harness_main.c"), mainObj, includeDirs, defines);
        // harness_input is int8_t[MODEL_INPUT_BYTES]: its symbol size is the model's input size.
        var inputBytes = ElfSizes.SymbolSize(mainObj, "harness_input")
                         ?? throw new CompilerException(ErrorCodes.InternalError, "harness_main.o lacks the harness_input symbol", mainObj);

        var elf = Path.Combine(work, "harness.elf");
        _toolchain.LinkExecutable(new[] { startupObj, mainObj, library }, elf,
            Path.Combine(work, "mps2_an500.ld"),
            "--specs=rdimon.specs -nostartfiles -Wl,--gc-sections",
            Path.Combine(work, "harness.map"));
        return (elf, inputBytes);
    }

    private static HarnessRunResult Collect(string work, string elf, int inputLength, int sampleCount,
        bool countInstructions, ProcessResult run)
    {
        var statsPath = Path.Combine(work, StatsFile);
        if (!File.Exists(statsPath))
            throw Failed($"the harness wrote no {StatsFile}", elf, run);
        var stats = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var line in File.ReadAllLines(statsPath))
        {
            int eq = line.IndexOf('=');
            if (eq > 0 && long.TryParse(line.AsSpan(eq + 1).Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                stats[line[..eq].Trim()] = v;
        }
        long Get(string key) => stats.TryGetValue(key, out var v) ? v : throw Failed($"{StatsFile} lacks '{key}'", elf, run);
        if (Get("done") != 1) throw Failed($"{StatsFile} is incomplete", elf, run);

        int samples = (int)Get("samples");
        int inBytes = (int)Get("input_bytes");
        int outBytes = (int)Get("output_bytes");
        if (inBytes <= 0 || inputLength != (long)sampleCount * inBytes)
            throw new ArgumentException(
                $"{inputLength} input bytes are not {sampleCount} samples of the model's {inBytes}-byte input");
        if (samples != sampleCount) throw Failed($"the harness ran {samples} samples, expected {sampleCount}", elf, run);

        var outputs = File.Exists(Path.Combine(work, OutputFile)) ? File.ReadAllBytes(Path.Combine(work, OutputFile)) : Array.Empty<byte>();
        if (outputs.Length != (long)sampleCount * outBytes)
            throw Failed($"{OutputFile} holds {outputs.Length} bytes, expected {sampleCount} x {outBytes}", elf, run);

        List<long>? instructions = null;
        if (countInstructions)
        {
            instructions = new List<long>(sampleCount);
            for (int i = 0; i < sampleCount; i++) instructions.Add(Get($"ticks.{i}") * InstructionsPerTick);
        }

        return new HarnessRunResult(outputs, sampleCount, inBytes, outBytes, Get("arena_bytes"),
            Get("arena_high_water"), Get("stack_high_water"), instructions,
            run.StandardOutput, run.StandardError, elf, run.Elapsed, stats.TryGetValue("streamed_reads", out var reads) ? reads : null,
            countInstructions && stats.ContainsKey("layer.0")
                ? Enumerable.Range(0, stats.Keys.Count(k => k.StartsWith("layer.", StringComparison.Ordinal))).Select(i => Get($"layer.{i}") * InstructionsPerTick).ToList()
                : null);
    }

    private static CompilerException Failed(string what, string elf, ProcessResult run) =>
        new(ErrorCodes.QemuFailed, $"{what}; QEMU output tail:\n{run.OutputTail()}", elf,
            inner: new ToolOutputException(Array.Empty<CompilerDiagnostic>(), run));
}
