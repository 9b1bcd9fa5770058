namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// Optimal Brain Surgeon pruning of one linear layer Y = W X (W: rows = output channels, columns = input channels),
/// minimising ||W X - W' X||^2 = tr((W - W') H (W - W')^T) with H = X X^T, in the column-by-column form of SparseGPT
/// (Frantar and Alistarh, 2023): columns are visited in order; at column j the pruned weights are zeroed and their error,
/// divided by U_jj, is spread over the later columns along row j of U, the upper factor of H^-1 = U^T U. That is the
/// exact OBS update given that the earlier columns are fixed. Masks are chosen per block of columns from the saliency
/// w^2 / U_jj^2 of the weights as updated so far; the updates of later blocks are applied lazily, once per block.
/// </summary>
internal static class ObsReconstruction
{
    /// <summary>Result of <see cref="Prune"/>: the dampening finally used and the predicted reconstruction error
    /// sum (w - w')^2 / U_jj^2 (in units of H, i.e. summed over the calibration samples).</summary>
    public readonly record struct Outcome(double Dampening, double Error);

    /// <summary>
    /// Prunes <paramref name="weights"/> (rows x columns, row-major) in place to <paramref name="target"/> sparsity,
    /// in units of <paramref name="rowBlock"/> consecutive rows at one column. <paramref name="hessian"/> (columns x
    /// columns, X X^T) is consumed. Weights that are zero on entry stay zero and count toward the target.
    /// With <paramref name="fixedMask"/> (true = prune) the mask is taken as given instead of selected.
    /// </summary>
    public static Outcome Prune(double[] weights, int rows, int columns, double[] hessian, double target, int rowBlock,
        int columnBlock, double dampening, bool[]? fixedMask = null, double[]? cross = null, CancellationToken cancellationToken = default)
    {
        if (weights.Length != rows * columns || hessian.Length != columns * columns) throw new ArgumentException("weights and hessian sizes do not match");
        bool[] originalZero = weights.Select(w => w == 0).ToArray();
        var (usedDampening, absolute) = Factor(hessian, columns, dampening);
        double[] u = hessian;
        if (cross is not null) FitDenseTarget(weights, rows, columns, u, cross, absolute);

        bool[] mask = fixedMask ?? new bool[weights.Length];
        int rowBlocks = (rows + rowBlock - 1) / rowBlock;
        long selected = 0;
        double error = 0;
        var blockErrors = new double[rows * columnBlock];
        for (int first = 0; first < columns; first += columnBlock)
        {
            cancellationToken.ThrowIfCancellationRequested();
            int end = Math.Min(columns, first + columnBlock);
            if (fixedMask is null)
                selected += SelectMask(weights, u, rows, columns, first, end, rowBlock, rowBlocks, originalZero, mask,
                    Math.Round(target * rows * end) - selected);
            Array.Clear(blockErrors);
            for (int r = 0; r < rows; r++)
            {
                var row = weights.AsSpan(r * columns, columns);
                for (int j = first; j < end; j++)
                {
                    if (!mask[r * columns + j] && !originalZero[r * columns + j]) continue;
                    double diagonal = u[j * columns + j];
                    double e = row[j] / diagonal;
                    error += e * e;
                    row[j] = 0;
                    blockErrors[r * columnBlock + (j - first)] = e;
                    SymmetricFactorization.Axpy(row[(j + 1)..end], -e, u.AsSpan(j * columns + j + 1, end - j - 1));
                }
                // Lazy batch update: the block's errors reach the columns after it in one pass per row.
                if (end == columns) continue;
                for (int j = first; j < end; j++)
                {
                    double e = blockErrors[r * columnBlock + (j - first)];
                    if (e != 0) SymmetricFactorization.Axpy(row[end..], -e, u.AsSpan(j * columns + end, columns - end));
                }
            }
        }
        return new Outcome(usedDampening, error);
    }

    /// <summary>
    /// Dampens H (adds <paramref name="dampening"/> x its mean diagonal, or 1 for an all-zero H; tenfold more while
    /// the factorization fails) and replaces it with U, U^T U = H^-1. Returns the relative dampening used.
    /// </summary>
    private static (double Relative, double Absolute) Factor(double[] hessian, int n, double dampening)
    {
        double meanDiagonal = 0;
        for (int i = 0; i < n; i++) meanDiagonal += hessian[i * n + i];
        meanDiagonal /= n;
        if (!(meanDiagonal > 0) || !double.IsFinite(meanDiagonal)) meanDiagonal = 1;
        double[] original = (double[])hessian.Clone();
        for (double relative = dampening; ; relative *= 10)
        {
            for (int i = 0; i < n; i++) hessian[i * n + i] += relative * meanDiagonal;
            if (SymmetricFactorization.UpperFactorOfInverse(hessian, n)) return (relative, relative * meanDiagonal);
            if (relative > 1e6) throw new InvalidOperationException("the layer's input statistics are not finite");
            original.CopyTo(hessian, 0);
        }
    }

    /// <summary>
    /// Replaces W by the dense least-squares fit of the dense network's output from the pruned network's input:
    /// argmin ||W D - W* P||^2 = W (D P^T) (P P^T)^-1, dampened on both sides, W (C + lambda I) U^T U, so that W* = W when
    /// P = D. Pruning W* against P P^T then minimises the error against the dense output, including the drift of the
    /// layers pruned before.
    /// </summary>
    private static void FitDenseTarget(double[] weights, int rows, int n, double[] u, double[] cross, double dampening)
    {
        var product = new double[n];
        var folded = new double[n];
        for (int r = 0; r < rows; r++)
        {
            var row = weights.AsSpan(r * n, n);
            // product = w (C + lambda I)
            Array.Clear(product);
            for (int i = 0; i < n; i++) if (row[i] != 0) SymmetricFactorization.Axpy(product, row[i], cross.AsSpan(i * n, n));
            SymmetricFactorization.Axpy(product, dampening, row);
            // row = product U^T U: first t_i = sum_{k>=i} product_k U_ik, then row = sum_i t_i U_i.
            for (int i = 0; i < n; i++) folded[i] = SymmetricFactorization.Dot(product.AsSpan(i, n - i), u.AsSpan(i * n + i, n - i));
            row.Clear();
            for (int i = 0; i < n; i++) SymmetricFactorization.Axpy(row[i..], folded[i], u.AsSpan(i * n + i, n - i));
        }
    }

    /// <summary>Marks the least salient units of columns [first, end) pruned, nearest <paramref name="goal"/> weights; returns how many weights it marked.</summary>
    private static long SelectMask(double[] weights, double[] u, int rows, int columns, int first, int end, int rowBlock, int rowBlocks,
        bool[] originalZero, bool[] mask, double goal)
    {
        int width = end - first;
        var scores = new double[rowBlocks * width];
        for (int b = 0; b < rowBlocks; b++)
        {
            int rowStart = b * rowBlock, rowEnd = Math.Min(rows, rowStart + rowBlock);
            for (int j = first; j < end; j++)
            {
                double diagonal = u[j * columns + j], sum = 0;
                bool allZero = true;
                for (int r = rowStart; r < rowEnd; r++)
                {
                    double w = weights[r * columns + j];
                    sum += w * w;
                    allZero &= originalZero[r * columns + j];
                }
                // Weights that were zero on entry go first (their current value may hold earlier columns' updates).
                scores[b * width + (j - first)] = allZero ? -1 : sum / (diagonal * diagonal) / (rowEnd - rowStart);
            }
        }
        int[] order = Enumerable.Range(0, scores.Length).ToArray();
        // Equal scores in unit order: the mask is a function of the inputs alone.
        Array.Sort(order, (a, b) => scores[a] != scores[b] ? scores[a].CompareTo(scores[b]) : a.CompareTo(b));
        long marked = 0;
        foreach (int unit in order)
        {
            int b = unit / width, j = first + unit % width;
            int rowStart = b * rowBlock, size = Math.Min(rows, rowStart + rowBlock) - rowStart;
            if (marked + size > goal + size / 2.0) break;
            for (int r = rowStart; r < rowStart + size; r++) mask[r * columns + j] = true;
            marked += size;
        }
        return marked;
    }
}
