using MCUNetV2.Compiler.Diagnostics;
using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Planning;

/// <summary>
/// Joint search of the patch grid and the split (MCUNetV2 chooses both with the model instead of fixing them by
/// hand): every grid of 1 to <see cref="MaxGridDimension"/> rows and columns, square or not, and every split that the
/// grid allows. The winner has the smallest peak SRAM among the plans whose extra MACs (halo recomputation) stay within
/// the budget; ties go to fewer executed MACs, then to fewer patches. Layer-by-layer inference is always a candidate,
/// so the result is never worse than it.
/// </summary>
public static class PatchSearch
{
    public const int MaxGridDimension = 8;

    /// <summary>The default MaxMacOverhead: patch-based inference may execute up to 30% more MACs than layer by layer.</summary>
    public const double DefaultMaxMacOverhead = 0.30;

    /// <summary>The best plan over all grids up to <paramref name="maxGridDimension"/> and all splits (or only <paramref name="forcedSplit"/>).</summary>
    /// <param name="maxMacOverhead">Largest accepted (executed MACs / layer-by-layer MACs) - 1.</param>
    /// <param name="streamInput">Plans with a streamed input (its staging buffer counts in every patch-based plan).</param>
    public static ExecutionPlan Best(ModelGraph graph, double maxMacOverhead, int? forcedSplit = null, int maxGridDimension = MaxGridDimension, bool streamInput = false)
    {
        var best = PatchPlanner.PerLayer(graph);
        long budget = (long)Math.Floor(graph.TotalMacs * (1 + maxMacOverhead));
        for (int rows = 1; rows <= maxGridDimension; rows++)
            for (int cols = 1; cols <= maxGridDimension; cols++)
            {
                if (rows * cols == 1) continue;
                foreach (var k in PatchPlanner.SplitCandidates(graph, rows, cols))
                {
                    if (forcedSplit is { } f && k != f) continue;
                    var p = PatchPlanner.Build(graph, rows, cols, k, streamInput);
                    if (p.ExecutedMacs <= budget && Better(p, best)) best = p;
                }
            }
        return best;
    }

    /// <summary>The best split for one grid (the plan with the smallest peak; ties: fewer MACs), or only <paramref name="forcedSplit"/>; null when no split fits the grid.</summary>
    public static ExecutionPlan? BestForGrid(ModelGraph graph, int rows, int cols, int? forcedSplit = null, bool streamInput = false)
    {
        ExecutionPlan? best = null;
        foreach (var k in PatchPlanner.SplitCandidates(graph, rows, cols))
        {
            if (forcedSplit is { } f && k != f) continue;
            var p = PatchPlanner.Build(graph, rows, cols, k, streamInput);
            if (best == null || Better(p, best)) best = p;
        }
        return best;
    }

    /// <summary>Smaller peak; then fewer executed MACs; then fewer patches.</summary>
    public static bool Better(ExecutionPlan a, ExecutionPlan b) =>
        a.PeakLiveBytes != b.PeakLiveBytes ? a.PeakLiveBytes < b.PeakLiveBytes
        : a.ExecutedMacs != b.ExecutedMacs ? a.ExecutedMacs < b.ExecutedMacs
        : a.GridRows * a.GridCols < b.GridRows * b.GridCols;

    /// <summary>
    /// The number of per-patch layers that <paramref name="split"/> names: a count of leading layers ("13"), or the name
    /// of the layer (or of its output tensor) that ends the per-patch stage.
    /// </summary>
    public static int ResolveSplit(ModelGraph graph, string split, string? modelPath)
    {
        if (int.TryParse(split, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int k))
        {
            if (k < 1 || k >= graph.Layers.Count)
                throw new CompilerException(ErrorCodes.BadPatchGrid, $"PatchSplit {k} is out of range: the per-patch stage takes 1 to {graph.Layers.Count - 1} leading layers of the {graph.Layers.Count}", modelPath);
            return k;
        }
        for (int i = 0; i < graph.Layers.Count; i++)
            if (graph.Layers[i].Name == split || graph.Layers[i].Output.Name == split) return i + 1;
        throw new CompilerException(ErrorCodes.BadPatchGrid,
            $"PatchSplit '{split}' is neither a layer count nor the name of a layer or tensor of the model (e.g. '{graph.Layers[0].Output.Name}')", modelPath);
    }

    /// <summary>The names of the tensors where this grid may split, for messages.</summary>
    public static string DescribeCandidates(ModelGraph graph, int rows, int cols)
    {
        var ks = PatchPlanner.SplitCandidates(graph, rows, cols).ToList();
        return ks.Count == 0 ? "none"
            : string.Join(", ", ks.Take(12).Select(k => $"{k} ('{graph.Layers[k - 1].Output.Name}' {graph.Layers[k - 1].Output.Shape})")) + (ks.Count > 12 ? ", ..." : "");
    }
}
