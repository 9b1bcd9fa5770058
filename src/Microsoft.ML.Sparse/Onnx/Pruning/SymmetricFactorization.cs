using System.Numerics;

namespace Microsoft.ML.Sparse.Onnx.Pruning;

/// <summary>
/// The small dense linear algebra the calibrated pruner needs, on row-major n x n double matrices: a Cholesky
/// factorization and the upper factor U of H^-1 = U^T U that drives the column-by-column OBS sweep. Written here
/// (a few vectorized loops, tested against plain references) rather than taken from a package: n is at most a
/// layer's input channel count (1280 in the MobileNets), where these loops take well under a second.
/// </summary>
internal static class SymmetricFactorization
{
    /// <summary>Replaces the lower triangle of the symmetric positive definite <paramref name="a"/> with L, A = L L^T
    /// (the strict upper triangle is zeroed). Returns false, leaving <paramref name="a"/> partly overwritten, when A is
    /// not positive definite to working precision.</summary>
    public static bool CholeskyLower(Span<double> a, int n)
    {
        if (a.Length != n * n) throw new ArgumentException($"expected {n}x{n} values, got {a.Length}", nameof(a));
        for (int i = 0; i < n; i++)
        {
            var rowI = a.Slice(i * n, n);
            for (int j = 0; j <= i; j++)
            {
                var rowJ = a.Slice(j * n, j);
                double s = rowI[j] - Dot(rowI[..j], rowJ);
                if (i == j)
                {
                    if (!(s > 0) || !double.IsFinite(s)) return false;
                    rowI[i] = Math.Sqrt(s);
                }
                else
                {
                    rowI[j] = s / a[j * n + j];
                }
            }
            rowI[(i + 1)..].Clear();
        }
        return true;
    }

    /// <summary>Replaces the lower triangular <paramref name="l"/> (positive diagonal) with its inverse, in place.</summary>
    public static void InvertLower(Span<double> l, int n)
    {
        // L M = I gives row i of M = (e_i - sum_{k<i} L_ik M_k) / L_ii, rows top-down. Row k of M is zero past column k,
        // so each term is an axpy over k + 1 contiguous values; it overwrites L_ik only after reading it.
        for (int i = 0; i < n; i++)
        {
            var rowI = l.Slice(i * n, n);
            for (int k = 0; k < i; k++)
            {
                double factor = rowI[k];
                rowI[k] = 0;
                Axpy(rowI[..(k + 1)], -factor, l.Slice(k * n, k + 1));
            }
            double inverse = 1.0 / rowI[i];
            for (int k = 0; k < i; k++) rowI[k] *= inverse;
            rowI[i] = inverse;
        }
    }

    /// <summary>
    /// For the symmetric positive definite <paramref name="h"/>, the upper triangular U with positive diagonal and
    /// U^T U = H^-1, written over <paramref name="h"/>. Factoring the index-reversed matrix, P H P = L L^T, gives H = R R^T
    /// with R = P L P upper triangular, so H^-1 = (R^-1)^T R^-1 and U = R^-1 = P L^-1 P: one Cholesky and one triangular
    /// inverse, no explicit H^-1. Row j of U, divided by U_jj, is the OBS update of the columns after j once columns
    /// before j are fixed. Returns false when H is not positive definite.
    /// </summary>
    public static bool UpperFactorOfInverse(Span<double> h, int n)
    {
        Reverse(h, n);
        if (!CholeskyLower(h, n)) return false;
        InvertLower(h, n);
        Reverse(h, n);
        return true;
    }

    /// <summary>A[i, j] = A[n-1-i, n-1-j]: reversing the flat array reverses rows and columns together.</summary>
    private static void Reverse(Span<double> a, int n) => a[..(n * n)].Reverse();

    internal static double Dot(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        int i = 0;
        double sum = 0;
        if (Vector.IsHardwareAccelerated && x.Length >= Vector<double>.Count)
        {
            var acc = Vector<double>.Zero;
            for (; i <= x.Length - Vector<double>.Count; i += Vector<double>.Count)
                acc += new Vector<double>(x[i..]) * new Vector<double>(y[i..]);
            sum = Vector.Sum(acc);
        }
        for (; i < x.Length; i++) sum += x[i] * y[i];
        return sum;
    }

    /// <summary>y += a x.</summary>
    internal static void Axpy(Span<double> y, double a, ReadOnlySpan<double> x)
    {
        int length = x.Length;
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var va = new Vector<double>(a);
            for (; i <= length - Vector<double>.Count; i += Vector<double>.Count)
                (new Vector<double>(y[i..]) + va * new Vector<double>(x[i..])).CopyTo(y[i..]);
        }
        for (; i < length; i++) y[i] += a * x[i];
    }
}
