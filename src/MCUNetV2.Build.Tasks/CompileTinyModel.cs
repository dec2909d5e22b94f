using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Pipeline;
using MCUNetV2.Compiler.Quantization;
using MCUNetV2.Compiler.Toolchain;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

namespace MCUNetV2.Build.Tasks;

/// <summary>
/// Compiles one TinyModel item (an ONNX CNN) into int8 C, a static library, a header and a memory report by calling
/// <see cref="TinyModelBuilder.Build"/>. All the work is in MCUNetV2.Compiler; this task reads item metadata,
/// forwards diagnostics to the build log and hands the produced files back to MSBuild.
/// </summary>
public sealed class CompileTinyModel : Microsoft.Build.Utilities.Task
{
    /// <summary>
    /// The TinyModel item. Its metadata: PatchGrid, Prefix, ChannelOrder, Mean, Scale, ResizeMode, Interpolation, Verify,
    /// VerifyImages, Calibration, CalibrationLimit, InputLayout, CalibrationMethod, CalibrationPercentile, BiasCorrection,
    /// MinLayerSqnr, DequantizeOutput, PointwiseWeights, ExportQdq, MaxSramBytes, MaxFlashBytes.
    /// </summary>
    [Required]
    public ITaskItem Model { get; set; } = null!;

    /// <summary>The calibration files: images, IDX, .npy, .pb (the item's Calibration glob, expanded by the targets).</summary>
    public ITaskItem[] CalibrationFiles { get; set; } = Array.Empty<ITaskItem>();

    /// <summary>The project being built: relative paths are resolved against its folder and metadata errors point at it.</summary>
    public string ProjectFile { get; set; } = "";

    /// <summary>Root output folder; the model's files go to &lt;OutputDirectory&gt;/&lt;prefix&gt;/ (the core adds the prefix).</summary>
    [Required]
    public string OutputDirectory { get; set; } = "";

    public string ToolchainDirectory { get; set; } = "";
    public string ToolPrefix { get; set; } = "";
    public string CpuFlags { get; set; } = "";
    public string OptimizationFlags { get; set; } = "";
    public string QemuPath { get; set; } = "";
    /// <summary>Base of the diagnostics' help links (the README's Diagnostics section); each gets #mcuNNNN. Empty = none.</summary>
    public string HelpLinkBase { get; set; } = "";
    /// <summary>Where the generated C and the objects are kept (diagnostics point here); default beside the outputs.</summary>
    public string IntermediateDirectory { get; set; } = "";

    private ToolTaskLibraryBuilder? _libraryBuilder;

    /// <summary>lib&lt;prefix&gt;.a</summary>
    [Output] public ITaskItem? Library { get; private set; }
    /// <summary>&lt;prefix&gt;.h</summary>
    [Output] public ITaskItem? Header { get; private set; }
    /// <summary>&lt;prefix&gt;.memory.json</summary>
    [Output] public ITaskItem? MemoryReport { get; private set; }
    /// <summary>&lt;prefix&gt;.memory.html, the standalone HTML report (memory and per-layer quantization error).</summary>
    [Output] public ITaskItem? HtmlReport { get; private set; }
    /// <summary>&lt;prefix&gt;.qdq.onnx, the int8 model as QDQ ONNX, when the item asks for it (ExportQdq="true").</summary>
    [Output] public ITaskItem? QdqModel { get; private set; }
    /// <summary>The generated C sources.</summary>
    [Output] public ITaskItem[] GeneratedSources { get; private set; } = Array.Empty<ITaskItem>();
    /// <summary>The prefix used for the C API and the output folder.</summary>
    [Output] public string Prefix { get; private set; } = "";

    /// <summary>Metadata the targets add to say where the TinyModel item was written (its DefiningProjectFullPath).</summary>
    internal const string DefinedInMetadata = "MCUNetV2DefinedIn";

    private string ProjectDirectory =>
        string.IsNullOrEmpty(ProjectFile) ? Directory.GetCurrentDirectory() : Path.GetDirectoryName(Path.GetFullPath(ProjectFile))!;

    public override bool Execute()
    {
        try
        {
            return ExecuteCore();
        }
        catch (CompilerException ex)
        {
            LogCompilerException(ex);
            return false;
        }
        catch (Exception ex)
        {
            LogInternalError(ex);
            return false;
        }
    }

    private bool ExecuteCore()
    {
        var options = ReadOptions();
        if (options is null)
            return false;

        Prefix = options.Prefix;
        Log.LogMessage(MessageImportance.Normal,
            "{0}: compiling {1} (patch grid {2}x{3}, {4} calibration file(s)) into {5}",
            options.Prefix, options.ModelPath, options.PatchRows, options.PatchCols, options.CalibrationFiles.Count, ModelDirectory(options));

        bool succeeded = false;
        try
        {
            // A missing toolchain or QEMU is one coded error before any work, not a failure minutes later.
            var toolchain = new ArmToolchain(options.Toolchain);
            toolchain.Locate();
            if (options.Verify)
                new QemuHarness(toolchain, options.Toolchain.QemuPath).LocateQemu();
            succeeded = Compile(options);
            return succeeded;
        }
        finally
        {
            if (!succeeded)
                RemoveStaleLibrary(options);
        }
    }

    private bool Compile(TinyModelOptions options)
    {
        var sink = new LoggingSink(this);
        TinyModelResult result;
        try
        {
            result = TinyModelBuilder.Build(options, sink);
        }
        catch (CompilerException ex)
        {
            LogCompilerException(ex, sink);
            return false;
        }

        foreach (var diagnostic in result.Diagnostics)
            sink.Report(diagnostic); // diagnostics already reported through the sink are not logged twice

        if (!result.Succeeded)
        {
            if (!Log.HasLoggedErrors && _libraryBuilder?.LoggedErrors != true)
            {
                var at = Locate(null);
                Log.LogError(null, ErrorCodes.InternalError, null, HelpLinks.For(HelpLinkBase, ErrorCodes.InternalError), ErrorFile, at.Line, at.Column, 0, 0,
                    $"{options.Prefix}: the compiler reported failure without an error message.");
            }
            return false;
        }

        Library = ToItem(result.LibraryPath, options.Prefix, "Library");
        Header = ToItem(result.HeaderPath, options.Prefix, "Header");
        MemoryReport = ToItem(result.MemoryReportPath, options.Prefix, "MemoryReport");
        HtmlReport = ToItem(result.HtmlReportPath, options.Prefix, "HtmlReport");
        QdqModel = ToItem(result.QdqModelPath, options.Prefix, "QdqModel");
        GeneratedSources = result.GeneratedSources
            .Select(s => ToItem(s, options.Prefix, "Source")!)
            .ToArray();

        if (result.Memory is not null)
        {
            foreach (var line in MemorySummaryFormatter.Format(options.Prefix, options.AutoPatchGrid ? "auto" : $"{options.PatchRows}x{options.PatchCols}", result.Memory))
                Log.LogMessage(MessageImportance.High, line);
        }
        if (Library is not null)
            Log.LogMessage(MessageImportance.High, "{0} -> {1}", options.Prefix, Library.ItemSpec);

        NoteIfNotWhereTargetsExpect(options, result);
        return !Log.HasLoggedErrors;
    }

    /// <summary>
    /// A failed build must not leave a library newer than its inputs behind (a QEMU verification failure comes after
    /// the archive is written): the next build would then skip the model. The header and report stay for inspection.
    /// </summary>
    private void RemoveStaleLibrary(TinyModelOptions options)
    {
        var library = Path.Combine(ModelDirectory(options), $"lib{options.Prefix}.a");
        try
        {
            if (File.Exists(library))
            {
                File.Delete(library);
                Log.LogMessage(MessageImportance.Low, "{0}: removed {1} after the failed build.", options.Prefix, library);
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            Log.LogMessage(MessageImportance.Low, "{0}: could not remove {1}: {2}", options.Prefix, library, ex.Message);
        }
    }

    /// <summary>Item metadata and task parameters to options; null (after logging MCU4001) when metadata is bad.</summary>
    internal TinyModelOptions? ReadOptions()
    {
        var modelPath = Path.GetFullPath(Path.Combine(ProjectDirectory, Model.ItemSpec));
        try
        {
            var (rows, cols) = TinyModelMetadata.ParsePatchGrid(Model.GetMetadata(TinyModelMetadata.PatchGrid));
            bool autoGrid = TinyModelMetadata.IsAutoPatchGrid(Model.GetMetadata(TinyModelMetadata.PatchGrid));
            double maxMacOverhead = TinyModelMetadata.ParseMaxMacOverhead(Model.GetMetadata(TinyModelMetadata.MaxMacOverhead));
            var patchSplit = Model.GetMetadata(TinyModelMetadata.PatchSplit);
            bool streamInput = TinyModelMetadata.ParseBool(TinyModelMetadata.StreamInput, Model.GetMetadata(TinyModelMetadata.StreamInput), false);
            var prefix = TinyModelMetadata.ResolvePrefix(Model.GetMetadata(TinyModelMetadata.Prefix), modelPath);
            var channels = TinyModelMetadata.ParseChannelOrder(Model.GetMetadata(TinyModelMetadata.ChannelOrder));
            int channelCount = TinyModelMetadata.ChannelCount(channels);
            var mean = TinyModelMetadata.ParseFloats(TinyModelMetadata.Mean, Model.GetMetadata(TinyModelMetadata.Mean),
                TinyModelMetadata.DefaultMean, channelCount, nonZero: false);
            var scale = TinyModelMetadata.ParseFloats(TinyModelMetadata.Scale, Model.GetMetadata(TinyModelMetadata.Scale),
                TinyModelMetadata.DefaultScale, channelCount, nonZero: true);
            bool verify = TinyModelMetadata.ParseBool(TinyModelMetadata.Verify, Model.GetMetadata(TinyModelMetadata.Verify), true);
            int verifyImages = TinyModelMetadata.ParseNonNegativeInt(TinyModelMetadata.VerifyImages,
                Model.GetMetadata(TinyModelMetadata.VerifyImages), 4);
            bool exportQdq = TinyModelMetadata.ParseBool(TinyModelMetadata.ExportQdq, Model.GetMetadata(TinyModelMetadata.ExportQdq), false);
            var maxSram = TinyModelMetadata.ParseByteSize(TinyModelMetadata.MaxSramBytes, Model.GetMetadata(TinyModelMetadata.MaxSramBytes));
            var maxFlash = TinyModelMetadata.ParseByteSize(TinyModelMetadata.MaxFlashBytes, Model.GetMetadata(TinyModelMetadata.MaxFlashBytes));
            var resize = TinyModelMetadata.ParseResizeMode(Model.GetMetadata(TinyModelMetadata.ResizeMode));
            var interpolation = TinyModelMetadata.ParseInterpolation(Model.GetMetadata(TinyModelMetadata.Interpolation));
            var layout = TinyModelMetadata.ParseInputLayout(Model.GetMetadata(TinyModelMetadata.InputLayout));
            var limit = TinyModelMetadata.ParseCalibrationLimit(Model.GetMetadata(TinyModelMetadata.CalibrationLimit));
            var method = TinyModelMetadata.ParseCalibrationMethod(Model.GetMetadata(TinyModelMetadata.CalibrationMethod));
            var percentile = TinyModelMetadata.ParseCalibrationPercentile(Model.GetMetadata(TinyModelMetadata.CalibrationPercentile));
            bool biasCorrection = TinyModelMetadata.ParseBool(TinyModelMetadata.BiasCorrection, Model.GetMetadata(TinyModelMetadata.BiasCorrection), false);
            var minLayerSqnr = TinyModelMetadata.ParseMinLayerSqnr(Model.GetMetadata(TinyModelMetadata.MinLayerSqnr));
            bool dequantizeOutput = TinyModelMetadata.ParseBool(TinyModelMetadata.DequantizeOutput, Model.GetMetadata(TinyModelMetadata.DequantizeOutput), false);
            bool widePointwiseWeights = TinyModelMetadata.ParsePointwiseWeights(Model.GetMetadata(TinyModelMetadata.PointwiseWeights));

            var calibration = CalibrationFiles
                .Select(f => Path.GetFullPath(Path.Combine(ProjectDirectory, f.ItemSpec)))
                .Distinct(StringComparer.Ordinal)
                .OrderBy(f => f, StringComparer.Ordinal)
                .ToArray();
            var glob = Model.GetMetadata(TinyModelMetadata.Calibration);
            if (calibration.Length == 0 && !string.IsNullOrWhiteSpace(glob))
            {
                var at = Locate(TinyModelMetadata.Calibration);
                Log.LogError(null, ErrorCodes.CalibrationMissing, null, HelpLinks.For(HelpLinkBase, ErrorCodes.CalibrationMissing), ErrorFile, at.Line, at.Column, 0, 0,
                    $"Calibration '{glob}' of TinyModel '{Model.ItemSpec}' matches no file (the pattern is relative to {ProjectDirectory}).");
                return null;
            }

            var outputRoot = string.IsNullOrEmpty(OutputDirectory)
                ? Path.Combine(ProjectDirectory, "bin", "tinymodels")
                : Path.GetFullPath(Path.Combine(ProjectDirectory, OutputDirectory));

            var defaults = new ToolchainOptions();
            var toolchain = new ToolchainOptions
            {
                ToolchainDirectory = OrDefault(ToolchainDirectory, defaults.ToolchainDirectory),
                ToolPrefix = OrDefault(ToolPrefix, defaults.ToolPrefix),
                CpuFlags = OrDefault(CpuFlags, defaults.CpuFlags),
                OptimizationFlags = OrDefault(OptimizationFlags, defaults.OptimizationFlags),
                QemuPath = OrDefault(QemuPath, defaults.QemuPath),
            };
            return new TinyModelOptions
            {
                ModelPath = modelPath,
                // The core writes <OutputDirectory>/<prefix>/ (through a staging folder beside it).
                OutputDirectory = outputRoot,
                Prefix = prefix,
                PatchRows = rows,
                PatchCols = cols,
                AutoPatchGrid = autoGrid,
                StreamInput = streamInput,
                MaxMacOverhead = maxMacOverhead,
                PatchSplit = string.IsNullOrWhiteSpace(patchSplit) ? null : patchSplit.Trim(),
                CalibrationFiles = calibration,
                CalibrationLimit = limit,
                InputLayout = layout,
                Calibration = new CalibrationOptions(method, percentile),
                BiasCorrection = biasCorrection,
                MinLayerSqnrDb = minLayerSqnr,
                DequantizeOutput = dequantizeOutput,
                WidePointwiseWeights = widePointwiseWeights,
                Preprocessing = new Preprocessing { Channels = channels, Mean = mean, Scale = scale, Resize = resize, Interpolation = interpolation },
                Toolchain = toolchain,
                // gcc and ar run as MSBuild ToolTasks: their errors reach the log with file and line as they happen
                LibraryBuilder = _libraryBuilder = new ToolTaskLibraryBuilder(this, toolchain, HelpLinkBase),
                IntermediateDirectory = string.IsNullOrEmpty(IntermediateDirectory) ? null : Path.GetFullPath(IntermediateDirectory),
                Verify = verify,
                VerifyImages = verifyImages,
                ExportQdq = exportQdq,
                MaxSramBytes = maxSram,
                MaxFlashBytes = maxFlash,
            };
        }
        catch (MetadataException ex)
        {
            var at = Locate(ex.MetadataName);
            Log.LogError(null, ErrorCodes.BadMetadata, null, HelpLinks.For(HelpLinkBase, ErrorCodes.BadMetadata), ErrorFile, at.Line, at.Column, 0, 0,
                $"TinyModel '{Model.ItemSpec}': {ex.Message}");
            return null;
        }
    }

    /// <summary>Where the core puts one model's files.</summary>
    internal static string ModelDirectory(TinyModelOptions options) => Path.Combine(options.OutputDirectory, options.Prefix);

    private static string OrDefault(string? value, string fallback) =>
        string.IsNullOrWhiteSpace(value) ? fallback : value.Trim();

    /// <summary>The file a metadata error is about: where the item was written, else the project.</summary>
    private string ErrorFile
    {
        get
        {
            var definedIn = Model?.GetMetadata(DefinedInMetadata);
            if (!string.IsNullOrEmpty(definedIn))
                return definedIn;
            var defining = Model?.GetMetadata("DefiningProjectFullPath");
            if (!string.IsNullOrEmpty(defining) && !IsTargetsFile(defining))
                return defining;
            return string.IsNullOrEmpty(ProjectFile) ? (BuildEngine?.ProjectFileOfTaskNode ?? "") : ProjectFile;
        }
    }

    private static bool IsTargetsFile(string path) =>
        path.EndsWith(".targets", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".props", StringComparison.OrdinalIgnoreCase);

    private ItemLocator.Location Locate(string? metadataName) =>
        ItemLocator.Find(ErrorFile, "TinyModel", Model.ItemSpec, metadataName, Model.GetMetadata);

    private ITaskItem? ToItem(string? path, string prefix, string kind)
    {
        if (string.IsNullOrEmpty(path))
            return null;
        var item = new TaskItem(Path.GetFullPath(path));
        item.SetMetadata("TinyModel", Model.ItemSpec);
        item.SetMetadata("Prefix", prefix);
        item.SetMetadata("Kind", kind);
        return item;
    }

    /// <summary>
    /// The targets predict &lt;out&gt;/&lt;prefix&gt;/lib&lt;prefix&gt;.a etc. for incremental builds. If the compiler
    /// names its files otherwise every build redoes the work: say so in the detailed log.
    /// </summary>
    private void NoteIfNotWhereTargetsExpect(TinyModelOptions options, TinyModelResult result)
    {
        void Check(string? actual, string expectedName)
        {
            var expected = Path.Combine(ModelDirectory(options), expectedName);
            if (actual is not null && !string.Equals(Path.GetFullPath(actual), expected, StringComparison.Ordinal))
                Log.LogMessage(MessageImportance.Normal,
                    "{0}: produced {1} where the incremental-build check expects {2}; the model will be rebuilt every time.",
                    options.Prefix, actual, expected);
        }
        Check(result.LibraryPath, $"lib{options.Prefix}.a");
        Check(result.HeaderPath, $"{options.Prefix}.h");
        Check(result.MemoryReportPath, $"{options.Prefix}.memory.json");
        Check(result.HtmlReportPath, $"{options.Prefix}.memory.html");
        Check(result.QdqModelPath, $"{options.Prefix}.qdq.onnx");
    }

    private void LogDiagnostic(CompilerDiagnostic d)
    {
        // A diagnostic about no particular file is about the TinyModel item: point at it in the project.
        var file = d.File;
        int line = d.Line, column = d.Column;
        if (string.IsNullOrEmpty(file))
        {
            file = ErrorFile;
            (line, column) = Locate(null);
        }
        var message = d.Code == ErrorCodes.QemuMissing
            ? d.Message + " (MSBuild: the MCUNetV2QemuPath property; Verify=\"false\" skips the check)"
            : d.Message;
        switch (d.Severity)
        {
            case DiagnosticSeverity.Error:
                Log.LogError(null, d.Code, null, HelpLinks.For(HelpLinkBase, d.Code), file, line, column, 0, 0, message);
                break;
            case DiagnosticSeverity.Warning:
                Log.LogWarning(null, d.Code, null, HelpLinks.For(HelpLinkBase, d.Code), file, line, column, 0, 0, d.Message);
                break;
            default:
                Log.LogMessage(null, d.Code, null, file, line, column, 0, 0, MessageImportance.Normal, d.Message);
                break;
        }
    }

    private void LogInternalError(Exception ex)
    {
        var inner = ex is AggregateException { InnerExceptions.Count: 1 } agg ? agg.InnerExceptions[0] : ex;
        if (inner is CompilerException ce)
        {
            LogCompilerException(ce);
            return;
        }
        var name = Model is null ? "TinyModel" : $"TinyModel '{Model.ItemSpec}'";
        var at = Model is null ? default : Locate(null);
        Log.LogError(null, ErrorCodes.InternalError, null, HelpLinks.For(HelpLinkBase, ErrorCodes.InternalError), ErrorFile, at.Line, at.Column, 0, 0,
            $"{name}: internal compiler error: {inner.GetType().Name}: {inner.Message}");
        LogStackTrace(inner);
    }

    /// <summary>
    /// A refusal of the compiler: its coded diagnostic, unless something (a tool run) already logged the failure in
    /// detail, and never without at least one error in the log.
    /// </summary>
    private void LogCompilerException(CompilerException ex, LoggingSink? sink = null)
    {
        if (!ex.AlreadyReported || !Log.HasLoggedErrors)
        {
            if (sink is not null)
                sink.Report(ex.Diagnostic);
            else
                LogDiagnostic(ex.Diagnostic);
        }
        LogStackTrace(ex);
    }

    private void LogStackTrace(Exception ex) =>
        Log.LogMessage(MessageImportance.Low, ex.ToString());

    /// <summary>Forwards the core's diagnostics to the build log; thread-safe, and each diagnostic once.</summary>
    private sealed class LoggingSink : IDiagnosticSink
    {
        private readonly CompileTinyModel _task;
        private readonly HashSet<CompilerDiagnostic> _seen = new();
        private readonly object _gate = new();

        public LoggingSink(CompileTinyModel task) => _task = task;

        public void Report(CompilerDiagnostic diagnostic)
        {
            lock (_gate)
            {
                if (_seen.Add(diagnostic))
                    _task.LogDiagnostic(diagnostic);
            }
        }

        public void Info(string message)
        {
            lock (_gate)
                _task.Log.LogMessage(MessageImportance.Normal, message);
        }
    }
}
