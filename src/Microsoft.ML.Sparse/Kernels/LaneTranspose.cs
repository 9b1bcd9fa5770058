using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Microsoft.ML.Sparse.Kernels;

/// <summary>
/// 16 x 16 float transposes under AVX-512, for kernels that move 16 channels between CHW planes and vector lanes
/// (<see cref="DepthwiseLanesKernel"/>): 64 in-register shuffles per block, against 256 scalar loads and stores.
/// </summary>
internal static class LaneTranspose
{
    /// <summary>
    /// Transposes the 16 x 16 matrix whose rows are <paramref name="r0"/>..<paramref name="r15"/>, in place. Inlined
    /// into a caller whose rows are locals, all of it stays in registers (through memory, the loads and stores cost as
    /// much as the shuffles).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Transpose16x16(
        ref Vector512<float> r0, ref Vector512<float> r1, ref Vector512<float> r2, ref Vector512<float> r3,
        ref Vector512<float> r4, ref Vector512<float> r5, ref Vector512<float> r6, ref Vector512<float> r7,
        ref Vector512<float> r8, ref Vector512<float> r9, ref Vector512<float> r10, ref Vector512<float> r11,
        ref Vector512<float> r12, ref Vector512<float> r13, ref Vector512<float> r14, ref Vector512<float> r15)
    {
        // Interleave row pairs (32-bit), then row quads (64-bit): in each 128-bit lane, q[4g + k] holds column k
        // (of that lane's four columns) of rows 4g..4g+3.
        Quads(Avx512F.UnpackLow(r0, r1), Avx512F.UnpackHigh(r0, r1), Avx512F.UnpackLow(r2, r3), Avx512F.UnpackHigh(r2, r3),
            out Vector512<float> q0, out Vector512<float> q1, out Vector512<float> q2, out Vector512<float> q3);
        Quads(Avx512F.UnpackLow(r4, r5), Avx512F.UnpackHigh(r4, r5), Avx512F.UnpackLow(r6, r7), Avx512F.UnpackHigh(r6, r7),
            out Vector512<float> q4, out Vector512<float> q5, out Vector512<float> q6, out Vector512<float> q7);
        Quads(Avx512F.UnpackLow(r8, r9), Avx512F.UnpackHigh(r8, r9), Avx512F.UnpackLow(r10, r11), Avx512F.UnpackHigh(r10, r11),
            out Vector512<float> q8, out Vector512<float> q9, out Vector512<float> q10, out Vector512<float> q11);
        Quads(Avx512F.UnpackLow(r12, r13), Avx512F.UnpackHigh(r12, r13), Avx512F.UnpackLow(r14, r15), Avx512F.UnpackHigh(r14, r15),
            out Vector512<float> q12, out Vector512<float> q13, out Vector512<float> q14, out Vector512<float> q15);
        // Column k + 4l gathers 128-bit lane l of q[k], q[4 + k], q[8 + k], q[12 + k].
        Lanes(q0, q4, q8, q12, out r0, out r4, out r8, out r12);
        Lanes(q1, q5, q9, q13, out r1, out r5, out r9, out r13);
        Lanes(q2, q6, q10, q14, out r2, out r6, out r10, out r14);
        Lanes(q3, q7, q11, q15, out r3, out r7, out r11, out r15);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Quads(Vector512<float> low01, Vector512<float> high01, Vector512<float> low23, Vector512<float> high23,
        out Vector512<float> k0, out Vector512<float> k1, out Vector512<float> k2, out Vector512<float> k3)
    {
        k0 = Avx512F.UnpackLow(low01.AsDouble(), low23.AsDouble()).AsSingle();
        k1 = Avx512F.UnpackHigh(low01.AsDouble(), low23.AsDouble()).AsSingle();
        k2 = Avx512F.UnpackLow(high01.AsDouble(), high23.AsDouble()).AsSingle();
        k3 = Avx512F.UnpackHigh(high01.AsDouble(), high23.AsDouble()).AsSingle();
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Lanes(Vector512<float> rows0, Vector512<float> rows4, Vector512<float> rows8, Vector512<float> rows12,
        out Vector512<float> column0, out Vector512<float> column4, out Vector512<float> column8, out Vector512<float> column12)
    {
        // 0x44: lanes 0, 1 of each source; 0xEE: lanes 2, 3; then 0x88: lanes 0, 2 of each; 0xDD: lanes 1, 3.
        Vector512<float> a01 = Avx512F.Shuffle4x128(rows0, rows4, 0x44), a23 = Avx512F.Shuffle4x128(rows0, rows4, 0xEE);
        Vector512<float> b01 = Avx512F.Shuffle4x128(rows8, rows12, 0x44), b23 = Avx512F.Shuffle4x128(rows8, rows12, 0xEE);
        column0 = Avx512F.Shuffle4x128(a01, b01, 0x88);
        column4 = Avx512F.Shuffle4x128(a01, b01, 0xDD);
        column8 = Avx512F.Shuffle4x128(a23, b23, 0x88);
        column12 = Avx512F.Shuffle4x128(a23, b23, 0xDD);
    }
}
