using System.Runtime.ExceptionServices;
using MCUNetV2.Compiler.Execution;
using MCUNetV2.Compiler.Graph;

namespace MCUNetV2.Compiler.Quantization;

/// <summary>
/// What calibration observed of every tensor over the calibration samples, and the range chosen for it:
/// <list type="bullet">
/// <item>the observed min/max and the mean of each channel, and of each feature of a fully connected layer's input
/// (first float pass over the samples);</item>
/// <item>with a method other than <see cref="CalibrationMethod.MinMax"/>, a <see cref="ValueHistogram"/> of each
/// activation that needs calibration (second float pass), from which the method picks the range.</item>
/// </list>
/// Graph inputs keep their observed min/max whatever the method. Samples run in parallel; the result does not depend
/// on the scheduling (integer counts, min/max, and means summed in sample order).
/// </summary>
public sealed class CalibrationRanges
{
    private readonly Dictionary<Tensor, (double Min, double Max)> _observed;
    private readonly Dictionary<Tensor, double[]> _means;
    private readonly Dictionary<Tensor, double[]> _featureMeans;
    private readonly Dictionary<Tensor, ValueHistogram>? _histograms;
    private readonly Dictionary<Tensor, (double Min, double Max)> _ranges;

    private CalibrationRanges(int samples, CalibrationOptions options, Dictionary<Tensor, (double, double)> observed, Dictionary<Tensor, double[]> means,
        Dictionary<Tensor, double[]> featureMeans, Dictionary<Tensor, ValueHistogram>? histograms)
    {
        Samples = samples; Options = options; _observed = observed; _means = means; _featureMeans = featureMeans; _histograms = histograms;
        _ranges = new Dictionary<Tensor, (double, double)>(observed);
        if (histograms != null && options.Method != CalibrationMethod.MinMax)
        {
            var list = histograms.ToList();
            var chosen = new (double, double)[list.Count];
            Parallel.For(0, list.Count, i => chosen[i] = list[i].Value.RangeFor(options));
            for (int i = 0; i < list.Count; i++) _ranges[list[i].Key] = chosen[i];
        }
    }

    /// <summary>Number of calibration samples observed.</summary>
    public int Samples { get; }

    /// <summary>The method (and its parameters) that chose the ranges.</summary>
    public CalibrationOptions Options { get; }

    /// <summary>Min/max ranges over single-input samples (<see cref="CalibrationMethod.MinMax"/>).</summary>
    public static CalibrationRanges Observe(ModelGraph graph, IEnumerable<float[]> inputs) => Observe(graph, inputs, CalibrationOptions.MinMax);

    /// <summary>Min/max ranges over samples of a graph with several inputs.</summary>
    public static CalibrationRanges Observe(ModelGraph graph, IEnumerable<IReadOnlyList<float[]>> samples) => Observe(graph, samples, CalibrationOptions.MinMax);

    /// <summary>Ranges chosen by <paramref name="options"/> over single-input samples.</summary>
    public static CalibrationRanges Observe(ModelGraph graph, IEnumerable<float[]> inputs, CalibrationOptions options) =>
        Observe(graph, inputs.Select(i => (IReadOnlyList<float[]>)new[] { i }), options);

    /// <summary>
    /// Ranges chosen by <paramref name="options"/> over samples (one float array per graph input, NHWC): one float pass
    /// for min/max and channel means, and for Percentile/Mse a second pass that fills a histogram of each activation.
    /// </summary>
    public static CalibrationRanges Observe(ModelGraph graph, IEnumerable<IReadOnlyList<float[]>> samples, CalibrationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        // a two-pass method needs the samples twice: keep them; min/max streams them (a chunk at a time)
        var list = options.NeedsHistogram ? samples.ToList() : null;
        int count = 0;
        var tensors = graph.Tensors.Distinct().ToList();
        var index = tensors.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);

        // the inputs of fully connected layers: the mean of every feature (each is a weight's own input)
        var featureTensors = graph.Layers.OfType<FullyConnected>().Select(l => l.Inputs[0]).ToHashSet();

        // pass 1: min/max and per-channel (per-feature) sums of each sample, merged in sample order
        var lo = Enumerable.Repeat(double.MaxValue, tensors.Count).ToArray();
        var hi = Enumerable.Repeat(double.MinValue, tensors.Count).ToArray();
        var seen = new bool[tensors.Count];
        var sums = tensors.Select(t => new double[t.Shape.C]).ToArray();
        var featureSums = tensors.Select(t => featureTensors.Contains(t) ? new double[t.Shape.Elements] : null).ToArray();
        OrderedParallel.ForEach(list ?? samples, (sample, _) =>
        {
            var r = new (double Lo, double Hi, double[]? Sums, float[]? Values)[tensors.Count];
            FloatExecutor.Run(graph, sample, (t, v) =>
            {
                double l = double.MaxValue, h = double.MinValue;
                foreach (var x in v) { if (x < l) l = x; if (x > h) h = x; }
                int c = t.Shape.C;
                var sum = new double[c];
                for (int p = 0; p < v.Length; p += c)
                    for (int k = 0; k < c; k++) sum[k] += v[p + k];
                r[index[t]] = (l, h, sum, featureTensors.Contains(t) ? v : null);
            });
            return r;
        }, (_, r) =>
        {
            count++;
            for (int i = 0; i < r.Length; i++)
            {
                if (r[i].Sums is not { } sum) continue;
                seen[i] = true;
                lo[i] = Math.Min(lo[i], r[i].Lo); hi[i] = Math.Max(hi[i], r[i].Hi);
                for (int k = 0; k < sum.Length; k++) sums[i][k] += sum[k];
                if (r[i].Values is { } v && featureSums[i] is { } fs)
                    for (int k = 0; k < fs.Length; k++) fs[k] += v[k];
            }
        });
        var observed = new Dictionary<Tensor, (double, double)>();
        var means = new Dictionary<Tensor, double[]>();
        var featureMeans = new Dictionary<Tensor, double[]>();
        for (int i = 0; i < tensors.Count; i++)
        {
            if (!seen[i]) continue;
            var t = tensors[i];
            observed[t] = (lo[i], hi[i]);
            double n = (double)count * t.Shape.H * t.Shape.W;
            means[t] = sums[i].Select(v => v / n).ToArray();
            if (featureSums[i] is { } fs) featureMeans[t] = fs.Select(v => v / count).ToArray();
        }

        // pass 2: a histogram over [min, max] of each activation whose range the method chooses
        Dictionary<Tensor, ValueHistogram>? histograms = null;
        if (list != null)
        {
            // (a tensor with non-finite values keeps its min/max)
            var targets = Quantizer.TensorsNeedingCalibration(graph)
                .Where(t => !graph.Inputs.Contains(t) && observed.TryGetValue(t, out var r) && double.IsFinite(r.Item1) && double.IsFinite(r.Item2) && r.Item1 <= r.Item2)
                .Distinct().ToList();
            var targetIndex = targets.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => p.i);
            ValueHistogram[] New() => targets.Select(t => new ValueHistogram(observed[t].Item1, observed[t].Item2, options.Bins)).ToArray();
            var total = New();
            var gate = new object();
            OrderedParallel.ForLocal(list.Count, New, (s, local) =>
            {
                FloatExecutor.Run(graph, list[s], (t, v) => { if (targetIndex.TryGetValue(t, out int i)) local[i].Add(v); });
            }, local => { lock (gate) for (int i = 0; i < local.Length; i++) local[i].AddTo(total[i]); });
            histograms = targets.Select((t, i) => (t, i)).ToDictionary(p => p.t, p => total[p.i]);
        }
        return new CalibrationRanges(count, options, observed, means, featureMeans, histograms);
    }

    /// <summary>
    /// The same observations with the ranges chosen by another method (e.g. to compare methods without running the
    /// samples again). Percentile and Mse need the histograms, i.e. an observation made with one of them.
    /// <see cref="CalibrationOptions.Bins"/> of <paramref name="options"/> is ignored: the histograms are the observed ones.
    /// </summary>
    public CalibrationRanges WithOptions(CalibrationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (options.NeedsHistogram && _histograms == null)
            throw new InvalidOperationException($"{options} needs the histograms of a second calibration pass; observe with a method other than MinMax");
        return new CalibrationRanges(Samples, options, _observed, _means, _featureMeans, _histograms);
    }

    /// <summary>The range chosen for the tensor (its observed min/max for graph inputs and for tensors without a histogram).</summary>
    public (double Min, double Max) this[Tensor t] => _ranges[t];

    /// <summary>The observed min/max of the tensor.</summary>
    public (double Min, double Max) Observed(Tensor t) => _observed[t];

    /// <summary>Mean of each channel of the tensor over all positions and samples.</summary>
    public IReadOnlyList<double> ChannelMeans(Tensor t) => _means[t];

    /// <summary>
    /// Mean of every element (NHWC) of the tensor over the samples; recorded for the inputs of fully connected layers
    /// (whose weights each see one element), null for other tensors.
    /// </summary>
    public IReadOnlyList<double>? FeatureMeans(Tensor t) => _featureMeans.GetValueOrDefault(t);

    public bool Contains(Tensor t) => _observed.ContainsKey(t);

    /// <summary>The tensor's histogram, or null (MinMax observation, graph inputs, tensors the quantizer does not calibrate).</summary>
    public ValueHistogram? Histogram(Tensor t) => _histograms?.GetValueOrDefault(t);
}

/// <summary>Per-sample parallel loops whose results do not depend on the scheduling.</summary>
internal static class OrderedParallel
{
    private const int Chunk = 32;

    /// <summary>
    /// Computes <paramref name="compute"/>(item, index) in parallel, a chunk of items at a time (so a lazy sequence is
    /// never held whole), and hands the results to <paramref name="merge"/> in the order of the items.
    /// </summary>
    public static void ForEach<TIn, T>(IEnumerable<TIn> items, Func<TIn, int, T> compute, Action<int, T> merge)
    {
        var chunk = new List<TIn>(Chunk);
        var results = new T[Chunk];
        int start = 0;
        void Flush()
        {
            Run(() => Parallel.For(0, chunk.Count, i => results[i] = compute(chunk[i], start + i)));
            for (int i = 0; i < chunk.Count; i++) { merge(start + i, results[i]); results[i] = default!; }
            start += chunk.Count;
            chunk.Clear();
        }
        foreach (var item in items)
        {
            chunk.Add(item);
            if (chunk.Count == Chunk) Flush();
        }
        if (chunk.Count > 0) Flush();
    }

    /// <summary>Parallel loop with a thread-local state (for order-independent accumulations such as integer counts).</summary>
    public static void ForLocal<TLocal>(int count, Func<TLocal> init, Action<int, TLocal> body, Action<TLocal> final) =>
        Run(() => Parallel.For(0, count, init, (i, _, local) => { body(i, local); return local; }, final));

    private static void Run(Action loop)
    {
        try { loop(); }
        catch (AggregateException e) when (e.InnerExceptions.Count > 0)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }
}
