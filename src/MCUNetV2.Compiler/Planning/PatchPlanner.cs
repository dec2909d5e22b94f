using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Planning;

/// <summary>
/// Builds execution plans: which leading layers run patch by patch, with which regions (halos from the receptive
/// field, clipped at the image border where the kernels pad with zeros), and where every buffer sits in the arena.
/// </summary>
public static class PatchPlanner
{
    public static ExecutionPlan PerLayer(ModelGraph graph) => Build(graph, 1, 1, 0);

    /// <summary>Layer counts K for which layers [0, K) can form the per-patch stage on this grid.</summary>
    public static IEnumerable<int> SplitCandidates(ModelGraph graph, int rows, int cols)
    {
        if (graph.Inputs.Count != 1) yield break;
        var lastUse = graph.LastUse();
        var producedAt = new Dictionary<Tensor, int> { [graph.Input] = -1 };
        for (int i = 0; i < graph.Layers.Count; i++) producedAt[graph.Layers[i].Output] = i;
        for (int k = 1; k < graph.Layers.Count; k++)
        {
            var l = graph.Layers[k - 1];
            if (!l.IsSpatiallyLocal) yield break;
            var split = l.Output;
            if (split.Shape.H < rows || split.Shape.W < cols) yield break;
            // the split tensor must be the only value that crosses the boundary
            bool cut = producedAt.Where(p => p.Value < k && p.Key != split).All(p => lastUse[p.Key] < k);
            if (cut) yield return k;
        }
    }

    /// <param name="streamInput">Plan for a streamed input: each patch's input region is read into an arena buffer.</param>
    /// <param name="depthwiseRings">Let in-place 3x3 depthwise layers take the faster ring kernels where they keep the peak.</param>
    /// <param name="pointwiseColumns">Let pointwise layers widen their inputs in the arena where that keeps the peak.</param>
    public static ExecutionPlan Build(ModelGraph graph, int rows, int cols, int patchLayerCount, bool streamInput = false, bool depthwiseRings = true,
        bool pointwiseColumns = true)
    {
        if (rows < 1 || cols < 1) throw new ArgumentOutOfRangeException(nameof(rows), "grid must be at least 1x1");
        if (patchLayerCount == 0) rows = cols = 1;
        var regions = new List<IReadOnlyDictionary<Tensor, Region>>();
        if (patchLayerCount > 0)
        {
            var split = graph.Layers[patchLayerCount - 1].Output;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                {
                    var reg = new Dictionary<Tensor, Region>
                    {
                        [split] = Region.FromBounds(r * split.Shape.H / rows, c * split.Shape.W / cols,
                            (r + 1) * split.Shape.H / rows, (c + 1) * split.Shape.W / cols),
                    };
                    for (int i = patchLayerCount - 1; i >= 0; i--)
                    {
                        var l = graph.Layers[i];
                        var o = reg.GetValueOrDefault(l.Output); // empty when nothing reads it
                        for (int j = 0; j < l.Inputs.Count; j++)
                        {
                            var need = l.InputRegion(j, o);
                            reg[l.Inputs[j]] = reg.TryGetValue(l.Inputs[j], out var have) ? have.Union(need) : need;
                        }
                    }
                    regions.Add(reg);
                }
        }

        return MemoryLayout.Plan(graph, rows, cols, patchLayerCount, regions, streamInput, depthwiseRings, pointwiseColumns);
    }
}
