using Microsoft.ML.Sparse.Onnx.Pruning;
using Microsoft.ML.Sparse.Onnx.Synthetic;

namespace Microsoft.ML.Sparse.Tests.Onnx;

/// <summary>
/// PruningMethod.Reconstruction: the linear algebra against textbook references, the OBS sweep against least squares
/// solved by brute force over masks, and the whole pruner on generated models (determinism, memory bound, output error
/// against magnitude pruning, ONNX Runtime parity of its output, cancellation, progress, options).
/// </summary>
public class ReconstructionPruningTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    // ---- linear algebra -------------------------------------------------------------------------------------------

    /// <summary>A random symmetric positive definite n x n matrix, X X^T + n I / 10 with X n x (n + 3), row-major.</summary>
    private static double[] RandomSpd(int n, int seed)
    {
        var random = new Random(seed);
        int samples = n + 3;
        var x = new double[n * samples];
        for (int i = 0; i < x.Length; i++) x[i] = random.NextDouble() * 2 - 1;
        var a = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = i == j ? n / 10.0 : 0;
                for (int k = 0; k < samples; k++) sum += x[i * samples + k] * x[j * samples + k];
                a[i * n + j] = sum;
            }
        return a;
    }

    /// <summary>Textbook Cholesky-Banachiewicz, element by element.</summary>
    private static double[] ReferenceCholesky(double[] a, int n)
    {
        var l = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j <= i; j++)
            {
                double sum = a[i * n + j];
                for (int k = 0; k < j; k++) sum -= l[i * n + k] * l[j * n + k];
                l[i * n + j] = i == j ? Math.Sqrt(sum) : sum / l[j * n + j];
            }
        return l;
    }

    private static double[] Multiply(double[] a, double[] b, int n, bool transposeA = false)
    {
        var c = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int k = 0; k < n; k++) sum += (transposeA ? a[k * n + i] : a[i * n + k]) * b[k * n + j];
                c[i * n + j] = sum;
            }
        return c;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(7)]
    [InlineData(17)]
    [InlineData(64)]
    [InlineData(131)]
    public void CholeskyMatchesTheTextbookFactorAndInvertsToTheIdentity(int n)
    {
        double[] a = RandomSpd(n, seed: n);
        double[] l = (double[])a.Clone();
        Assert.True(SymmetricFactorization.CholeskyLower(l, n));
        double[] reference = ReferenceCholesky(a, n);
        double scale = a.Max(Math.Abs);
        for (int i = 0; i < n * n; i++) Assert.True(Math.Abs(l[i] - reference[i]) <= 1e-10 * Math.Sqrt(scale), $"L[{i / n},{i % n}] {l[i]} vs {reference[i]}");

        // The inverse of L times L is the identity.
        double[] inverse = (double[])l.Clone();
        SymmetricFactorization.InvertLower(inverse, n);
        AssertIdentity(Multiply(inverse, l, n), n, "L^-1 L");

        // U upper with positive diagonal and U^T U = A^-1, so U^T U A = I.
        double[] u = (double[])a.Clone();
        Assert.True(SymmetricFactorization.UpperFactorOfInverse(u, n));
        for (int i = 0; i < n; i++)
        {
            Assert.True(u[i * n + i] > 0);
            for (int j = 0; j < i; j++) Assert.Equal(0.0, u[i * n + j]);
        }
        AssertIdentity(Multiply(Multiply(u, u, n, transposeA: true), a, n), n, "U^T U A");
    }

    [Fact]
    public void CholeskyRejectsMatricesThatAreNotPositiveDefinite()
    {
        double[] indefinite = [1, 2, 2, 1];
        Assert.False(SymmetricFactorization.CholeskyLower(indefinite, 2));
        double[] singular = [1, 1, 1, 1];
        Assert.False(SymmetricFactorization.UpperFactorOfInverse(singular, 2));
        double[] notFinite = [double.NaN, 0, 0, 1];
        Assert.False(SymmetricFactorization.CholeskyLower(notFinite, 2));
    }

    private static void AssertIdentity(double[] m, int n, string what)
    {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                Assert.True(Math.Abs(m[i * n + j] - (i == j ? 1 : 0)) < 1e-8, $"{what}[{i},{j}] = {m[i * n + j]}");
    }

    // ---- the OBS sweep --------------------------------------------------------------------------------------------

    /// <summary>H = X X^T of random correlated inputs (columns share a common factor), n x n.</summary>
    private static double[] CorrelatedHessian(int n, int samples, Random random)
    {
        var x = new double[n * samples];
        for (int s = 0; s < samples; s++)
        {
            double common = random.NextDouble() * 2 - 1;
            for (int i = 0; i < n; i++) x[i * samples + s] = common * (0.5 + i * 0.3) + (random.NextDouble() * 2 - 1) * 0.7;
        }
        return OuterSum(x, x, n, samples);
    }

    private static double Dampen(double[] h, int n, double relative)
    {
        double mean = Enumerable.Range(0, n).Average(i => h[i * n + i]);
        for (int i = 0; i < n; i++) h[i * n + i] += relative * mean;
        return relative * mean;
    }

    /// <summary>(w - v) H (w - v)^T for one row.</summary>
    private static double Error(double[] w, double[] v, double[] h, int n)
    {
        double sum = 0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) sum += (w[i] - v[i]) * h[i * n + j] * (w[j] - v[j]);
        return sum;
    }

    /// <summary>The least-squares optimum with the weights in <paramref name="pruned"/> at zero: v_K = w H_{:,K} H_KK^-1
    /// (or w C_{:,K} H_KK^-1 with a target matrix C), solved by Gaussian elimination with partial pivoting.</summary>
    private static double[] LeastSquares(double[] w, double[] h, int n, bool[] pruned, double[]? target = null)
    {
        target ??= h;
        int[] kept = Enumerable.Range(0, n).Where(i => !pruned[i]).ToArray();
        int m = kept.Length;
        var system = new double[m, m + 1];
        for (int a = 0; a < m; a++)
        {
            for (int b = 0; b < m; b++) system[a, b] = h[kept[b] * n + kept[a]];
            for (int i = 0; i < n; i++) system[a, m] += w[i] * target[i * n + kept[a]];
        }
        for (int col = 0; col < m; col++)
        {
            int pivot = Enumerable.Range(col, m - col).MaxBy(r => Math.Abs(system[r, col]));
            for (int c = 0; c <= m; c++) (system[col, c], system[pivot, c]) = (system[pivot, c], system[col, c]);
            for (int r = 0; r < m; r++)
            {
                if (r == col) continue;
                double factor = system[r, col] / system[col, col];
                for (int c = col; c <= m; c++) system[r, c] -= factor * system[col, c];
            }
        }
        var v = new double[n];
        for (int a = 0; a < m; a++) v[kept[a]] = system[a, m] / system[a, a];
        return v;
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(3, 1)]
    [InlineData(3, 2)]
    [InlineData(4, 1)]
    [InlineData(4, 2)]
    [InlineData(4, 3)]
    public void ObsUpdateIsTheLeastSquaresOptimumForEveryMask(int n, int prunedCount)
    {
        // With the pruned columns first (the sweep's order fixes only later columns), the sweep's update is the
        // exact least-squares optimum of the kept weights: checked for every mask of the size, by brute force.
        var random = new Random(n * 10 + prunedCount);
        for (int trial = 0; trial < 5; trial++)
        {
            double[] h = CorrelatedHessian(n, samples: 12, random);
            double[] w = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            foreach (int[] subset in Subsets(n, prunedCount))
            {
                int[] order = subset.Concat(Enumerable.Range(0, n).Except(subset)).ToArray();
                double[] permutedH = new double[n * n];
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < n; j++) permutedH[i * n + j] = h[order[i] * n + order[j]];
                double[] permutedW = order.Select(i => w[i]).ToArray();
                bool[] mask = Enumerable.Range(0, n).Select(i => i < prunedCount).ToArray();

                double[] dampened = (double[])permutedH.Clone();
                Dampen(dampened, n, 0.01);
                double[] expected = LeastSquares(permutedW, dampened, n, mask);

                double[] result = (double[])permutedW.Clone();
                ObsReconstruction.Prune(result, 1, n, (double[])permutedH.Clone(), prunedCount / (double)n, 1, columnBlock: 2, dampening: 0.01, fixedMask: mask, cancellationToken: Ct);
                for (int i = 0; i < n; i++) Assert.True(Math.Abs(result[i] - expected[i]) < 1e-9, $"mask [{string.Join(",", subset)}] weight {i}: {result[i]} vs {expected[i]}");
            }
        }
    }

    /// <summary>Rows of a (rows x samples) matrix times the rows of another: A B^T.</summary>
    private static double[] OuterSum(double[] a, double[] b, int n, int samples)
    {
        var c = new double[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                for (int s = 0; s < samples; s++) c[i * n + j] += a[i * samples + s] * b[j * samples + s];
        return c;
    }

    [Theory]
    [InlineData(3, 0)]
    [InlineData(3, 1)]
    [InlineData(4, 2)]
    [InlineData(5, 3)]
    public void AsymmetricUpdateFitsTheDenseOutputFromThePrunedInputs(int n, int prunedCount)
    {
        // The layer's inputs P come from the pruned network, its target is the dense output w D. The sweep with the
        // cross moment C = D P^T must give argmin ||w D - v P||^2 + lambda ||w - v||^2 over v with the first
        // prunedCount weights at zero, i.e. v_K = [w (C + lambda I)]_K [(P P^T + lambda I)_KK]^-1, checked against
        // Gaussian elimination (prunedCount 0: the dense fit w (C + lambda I)(H + lambda I)^-1).
        var random = new Random(100 + n * 10 + prunedCount);
        const int Samples = 20;
        for (int trial = 0; trial < 5; trial++)
        {
            var d = new double[n * Samples];
            for (int s = 0; s < Samples; s++)
            {
                double common = random.NextDouble() * 2 - 1;
                for (int i = 0; i < n; i++) d[i * Samples + s] = common * (0.4 + 0.2 * i) + random.NextDouble() - 0.5;
            }
            // The pruned network's inputs: the dense ones, rescaled and perturbed per channel.
            double[] p = d.Select((value, k) => value * (0.8 + 0.1 * (k / Samples)) + (random.NextDouble() - 0.5) * 0.3).ToArray();
            double[] h = OuterSum(p, p, n, Samples), cross = OuterSum(d, p, n, Samples);
            double[] w = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            bool[] mask = Enumerable.Range(0, n).Select(i => i < prunedCount).ToArray();

            double[] dampenedH = (double[])h.Clone(), dampenedCross = (double[])cross.Clone();
            double lambda = Dampen(dampenedH, n, 0.01);
            for (int i = 0; i < n; i++) dampenedCross[i * n + i] += lambda;
            double[] expected = LeastSquares(w, dampenedH, n, mask, dampenedCross);

            double[] result = (double[])w.Clone();
            ObsReconstruction.Prune(result, 1, n, (double[])h.Clone(), prunedCount / (double)n, 1, columnBlock: 2, dampening: 0.01,
                fixedMask: mask, cross: cross, cancellationToken: Ct);
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(result[i] - expected[i]) < 1e-9, $"trial {trial} weight {i}: {result[i]} vs {expected[i]}");

            // Against the plain (symmetric) fit with the same mask, the asymmetric one has the lower dense-target objective.
            double[] symmetric = (double[])w.Clone();
            ObsReconstruction.Prune(symmetric, 1, n, (double[])h.Clone(), prunedCount / (double)n, 1, columnBlock: 2, dampening: 0.01, fixedMask: mask, cancellationToken: Ct);
            double DenseError(double[] v) => Enumerable.Range(0, Samples).Sum(s =>
            {
                double e = 0;
                for (int i = 0; i < n; i++) e += w[i] * d[i * Samples + s] - v[i] * p[i * Samples + s];
                return e * e;
            }) + lambda * Enumerable.Range(0, n).Sum(i => (w[i] - v[i]) * (w[i] - v[i]));
            Assert.True(DenseError(result) <= DenseError(symmetric) + 1e-9, $"trial {trial}: asymmetric {DenseError(result)} vs symmetric {DenseError(symmetric)}");
        }
    }

    [Theory]
    [InlineData(4, 2)]
    [InlineData(4, 1)]
    [InlineData(3, 2)]
    public void UncorrelatedInputsSelectTheBruteForceBestMask(int n, int prunedCount)
    {
        // With a diagonal H the saliency w^2 H_jj is exact: the chosen mask and values are the brute-force optimum.
        var random = new Random(n + prunedCount);
        for (int trial = 0; trial < 10; trial++)
        {
            double[] h = new double[n * n];
            for (int i = 0; i < n; i++) h[i * n + i] = 0.1 + random.NextDouble() * 3;
            double[] w = Enumerable.Range(0, n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
            double[] dampened = (double[])h.Clone();
            Dampen(dampened, n, 0.01);
            var best = Subsets(n, prunedCount).Select(subset =>
            {
                bool[] mask = Enumerable.Range(0, n).Select(subset.Contains).ToArray();
                double[] v = LeastSquares(w, dampened, n, mask);
                return (V: v, Error: Error(w, v, dampened, n));
            }).MinBy(candidate => candidate.Error);

            double[] result = (double[])w.Clone();
            ObsReconstruction.Prune(result, 1, n, h, prunedCount / (double)n, 1, columnBlock: n, dampening: 0.01, cancellationToken: Ct);
            Assert.Equal(prunedCount, result.Count(v => v == 0));
            for (int i = 0; i < n; i++) Assert.True(Math.Abs(result[i] - best.V[i]) < 1e-12, $"weight {i}: {result[i]} vs {best.V[i]}");
        }
    }

    [Fact]
    public void ObsLosesLessThanMagnitudePruningOnCorrelatedLayersAndKeepsZeros()
    {
        var random = new Random(5);
        const int rows = 6, n = 24;
        for (int trial = 0; trial < 20; trial++)
        {
            double[] h = CorrelatedHessian(n, samples: 60, random);
            double[] w = Enumerable.Range(0, rows * n).Select(i => i % 7 == 3 ? 0 : random.NextDouble() * 2 - 1).ToArray();
            double[] dampened = (double[])h.Clone();
            Dampen(dampened, n, 0.01);

            double[] obs = (double[])w.Clone();
            ObsReconstruction.Prune(obs, rows, n, (double[])h.Clone(), 0.5, 1, columnBlock: 8, dampening: 0.01, cancellationToken: Ct);
            // Magnitude: the same count of the smallest weights of each column block zeroed, nothing updated.
            double[] magnitude = (double[])w.Clone();
            foreach (int i in Enumerable.Range(0, rows * n).OrderBy(i => Math.Abs(w[i])).ThenBy(i => i).Take(obs.Count(v => v == 0))) magnitude[i] = 0;

            double obsError = 0, magnitudeError = 0;
            for (int r = 0; r < rows; r++)
            {
                obsError += Error(w[(r * n)..((r + 1) * n)], obs[(r * n)..((r + 1) * n)], dampened, n);
                magnitudeError += Error(w[(r * n)..((r + 1) * n)], magnitude[(r * n)..((r + 1) * n)], dampened, n);
            }
            Assert.True(obsError < magnitudeError, $"trial {trial}: OBS error {obsError} vs magnitude {magnitudeError}");
            Assert.InRange(obs.Count(v => v == 0), rows * n / 2 - 1, rows * n / 2 + 1);
            for (int i = 0; i < w.Length; i++) if (w[i] == 0) Assert.Equal(0.0, obs[i]);
        }
    }

    [Fact]
    public void RowBlocksPruneWholeBlocksOfOutputChannels()
    {
        var random = new Random(9);
        const int rows = 10, n = 16;
        double[] h = CorrelatedHessian(n, samples: 40, random);
        double[] w = Enumerable.Range(0, rows * n).Select(_ => random.NextDouble() * 2 - 1).ToArray();
        ObsReconstruction.Prune(w, rows, n, h, 0.5, rowBlock: 4, columnBlock: 5, dampening: 0.01, cancellationToken: Ct);
        for (int j = 0; j < n; j++)
            for (int block = 0; block < rows; block += 4)
            {
                var values = Enumerable.Range(block, Math.Min(4, rows - block)).Select(r => w[r * n + j]).ToArray();
                Assert.True(values.All(v => v == 0) || values.All(v => v != 0), $"column {j}, block {block}: [{string.Join(",", values)}]");
            }
        Assert.InRange(w.Count(v => v == 0) / (double)w.Length, 0.4, 0.6);
    }

    // ---- the whole pruner ------------------------------------------------------------------------------------------

    private static readonly SyntheticMobileNetOptions GeneratedV1 = GeneratedVariants.Get("v1_w025_r64");
    private static readonly byte[] DenseGeneratedV1 = SyntheticMobileNet.Create(GeneratedV1);

    /// <summary>Eight random images in the generated model's input layout, the same on every call.</summary>
    private static IEnumerable<float[]> GeneratedInputs()
    {
        for (int i = 0; i < 8; i++) yield return GeneratedVariants.RandomImages(GeneratedV1, 1, seed: 100 + i);
    }

    private static PruningOptions Calibrated(float target, Func<IEnumerable<float[]>> inputs, long cacheBytes = 64L << 20,
        IProgress<PruningProgress>? progress = null, int block = 1) => new()
    {
        Method = PruningMethod.Reconstruction,
        TargetSparsity = target,
        BlockSize = block,
        Progress = progress,
        Calibration = new CalibrationOptions { Inputs = inputs, MaxCachedInputBytes = cacheBytes },
    };

    /// <summary>Collects reports synchronously (Progress&lt;T&gt; would post them to the thread pool).</summary>
    private sealed class ProgressLog(Action<PruningProgress>? onReport = null) : IProgress<PruningProgress>
    {
        public List<PruningProgress> Reports { get; } = [];

        public void Report(PruningProgress value)
        {
            Reports.Add(value);
            onReport?.Invoke(value);
        }
    }

    [Theory]
    [InlineData(0.5f, 1)]
    [InlineData(0.7f, 2)]
    [InlineData(0.9f, 4)]
    public void ReconstructedModelIsDeterministicHitsTheTargetAndScoresInTheEngineAsInOnnxRuntime(float target, int block)
    {
        var log = new ProgressLog();
        var report = OnnxPruner.Prune(DenseGeneratedV1, out byte[] pruned, Calibrated(target, GeneratedInputs, progress: log, block: block), cancellationToken: Ct);
        OnnxPruner.Prune(DenseGeneratedV1, out byte[] again, Calibrated(target, GeneratedInputs, block: block), cancellationToken: Ct);
        Assert.Equal(pruned, again);

        // Every 1x1 and the classifier reconstructed to the target (within a block), each reported once as pruned.
        var reconstructed = report.Layers.Where(l => l.Kind is WeightLayerKind.Pointwise or WeightLayerKind.Classifier).ToList();
        Assert.NotEmpty(reconstructed);
        Assert.All(reconstructed, layer =>
        {
            Assert.True(layer.Pruned, layer.Name);
            double slack = (double)block / layer.Elements + 1e-9;
            Assert.InRange(layer.SparsityAfter, target - slack, target + slack);
        });
        var prunedSteps = log.Reports.Where(r => r.Step == "pruned").ToList();
        Assert.Equal(reconstructed.Select(l => l.Name).Order(), prunedSteps.Select(r => r.LayerName).Order());
        Assert.All(log.Reports, r => Assert.Equal(reconstructed.Count, r.Layers));
        Assert.Equal(Enumerable.Range(0, reconstructed.Count), prunedSteps.Select(r => r.Layer));

        float[] image = GeneratedVariants.RandomImages(GeneratedV1, 1, seed: 7);
        float[] expected = GeneratedVariants.ScoreWithOnnxRuntime(pruned, image, GeneratedVariants.InputShape(GeneratedV1, 1));
        using var model = SparseModel.Load(pruned, cancellationToken: Ct);
        Assert.Contains(model.Network.Layers, layer => layer.Kind == "Pointwise" && layer.Sparsity >= target - 0.05f);
        var actual = new float[model.OutputLength];
        model.Run(image, actual, model.CreateWorkspace());
        AssertParity(expected, actual);
    }

    [Fact]
    public void StreamingTheInputsGivesTheSameModelAsCachingThem()
    {
        int calls = 0;
        IEnumerable<float[]> Counted() { calls++; return GeneratedInputs(); }
        int imageBytes = GeneratedV1.Resolution * GeneratedV1.Resolution * 3 * sizeof(float);

        OnnxPruner.Prune(DenseGeneratedV1, out byte[] cached, Calibrated(0.7f, Counted), cancellationToken: Ct);
        Assert.Equal(1, calls); // the whole set fits: decoded once, then held

        foreach (long budget in new long[] { 0, 3L * imageBytes })
        {
            calls = 0;
            var log = new ProgressLog();
            OnnxPruner.Prune(DenseGeneratedV1, out byte[] streamed, Calibrated(0.7f, Counted, budget, log), cancellationToken: Ct);
            Assert.Equal(cached, streamed);
            // Over budget the inputs are produced again for every calibration pass rather than held.
            Assert.Equal(log.Reports.Count(r => r.Step == "calibration pass"), calls);
            Assert.True(calls > 1, $"{calls} passes");
        }
    }

    [Fact]
    public void CancellingDuringReconstructionStopsItAndWritesNothing()
    {
        string input = Path.GetTempFileName(), output = input + ".pruned.onnx";
        try
        {
            File.WriteAllBytes(input, DenseGeneratedV1);
            using var cancel = new CancellationTokenSource();
            var log = new ProgressLog(r => { if (r.Step == "pruned" && r.Layer == 2) cancel.Cancel(); });
            Assert.ThrowsAny<OperationCanceledException>(() => OnnxPruner.Prune(input, output, Calibrated(0.7f, GeneratedInputs, progress: log), cancel.Token));
            Assert.False(File.Exists(output));
            Assert.Equal(3, log.Reports.Count(r => r.Step == "pruned"));
        }
        finally
        {
            File.Delete(input);
            File.Delete(output);
        }
    }

    [Fact]
    public void CalibrationOptionsAreValidated()
    {
        Assert.Throws<ArgumentException>(() => OnnxPruner.Prune(DenseGeneratedV1, out _, new PruningOptions { Method = PruningMethod.Reconstruction }, cancellationToken: Ct));
        var wrongSize = Calibrated(0.5f, () => [new float[10]]);
        var error = Assert.Throws<ArgumentException>(() => OnnxPruner.Prune(DenseGeneratedV1, out _, wrongSize, cancellationToken: Ct));
        Assert.Contains("10 floats", error.Message);
        Assert.Throws<ArgumentException>(() => OnnxPruner.Prune(DenseGeneratedV1, out _, Calibrated(0.5f, () => []), cancellationToken: Ct));
        var both = Calibrated(0.5f, GeneratedInputs);
        both.Calibration!.ImageFolder = SharedData.RepositoryRoot;
        Assert.Throws<ArgumentException>(() => OnnxPruner.Prune(DenseGeneratedV1, out _, both, cancellationToken: Ct));
    }

    /// <summary>Real MobileNets pruned by reconstruction, calibrated on two shared photos (centre crops only, to keep the
    /// test short): ONNX Runtime reads the files, and the engine scores them as ONNX Runtime does.</summary>
    [Theory]
    [InlineData("mobilenet_v1_1.0_224.onnx", 0.7f)]
    [InlineData("mobilenet_v2_1.0_224.onnx", 0.5f)]
    public void ReconstructedRealModelScoresInTheSparseEngineAsInOnnxRuntime(string modelFile, float target)
    {
        string path = SharedData.Require("models/" + modelFile);
        string[] photos = [SharedData.Require("images/cat.bmp"), SharedData.Require("images/sunflower.bmp")];
        var options = new PruningOptions
        {
            Method = PruningMethod.Reconstruction,
            TargetSparsity = target,
            Calibration = new CalibrationOptions { ImagePaths = photos, Mirror = false, CornerCrops = false },
        };
        var report = OnnxPruner.Prune(File.ReadAllBytes(path), out byte[] pruned, options, cancellationToken: Ct);
        Assert.InRange(report.PrunedLayersSparsity, target - 0.02, target + 0.05);

        var random = new Random(8);
        float[] image = Enumerable.Range(0, 3 * 224 * 224).Select(_ => (float)(random.NextDouble() * 2 - 1)).ToArray();
        float[] expected = GeneratedVariants.ScoreWithOnnxRuntime(pruned, image, [1, 3, 224, 224]);
        using var model = SparseModel.Load(pruned, new SparseModelOptions { Threads = 2 }, Ct);
        var actual = new float[model.OutputLength];
        model.Run(image, actual, model.CreateWorkspace());
        AssertParity(expected, actual);
    }

    private static void AssertParity(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        Assert.All(expected, value => Assert.True(float.IsFinite(value)));
        double largest = expected.Max(Math.Abs);
        double error = expected.Zip(actual).Max(pair => Math.Abs(pair.First - pair.Second));
        Assert.True(error <= 1e-4 * largest, $"max |ours - ORT| = {error:G3}, {error / largest:G3} of max |ORT|");
        Assert.Equal(Array.IndexOf(expected, expected.Max()), Array.IndexOf(actual, actual.Max()));
    }

    private static IEnumerable<int[]> Subsets(int n, int k)
    {
        for (int bits = 0; bits < 1 << n; bits++)
            if (System.Numerics.BitOperations.PopCount((uint)bits) == k)
                yield return Enumerable.Range(0, n).Where(i => (bits >> i & 1) != 0).ToArray();
    }
}
