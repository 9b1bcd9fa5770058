namespace Microsoft.ML.Sparse.Tests.Infrastructure;

/// <summary>
/// Timeouts in tests, scaled by MLSPARSE_TEST_TIMEOUT_SCALE (default 1): .ci/arm64-test.sh sets it for the run as arm64
/// code under qemu, where everything takes many times longer, so that a timeout still catches a hang there.
/// </summary>
internal static class TestTimeouts
{
    public static double Scale { get; } =
        double.TryParse(Environment.GetEnvironmentVariable("MLSPARSE_TEST_TIMEOUT_SCALE"), System.Globalization.CultureInfo.InvariantCulture, out double scale) && scale >= 1 ? scale : 1;

    public static TimeSpan Scaled(TimeSpan timeout) => timeout * Scale;
}
