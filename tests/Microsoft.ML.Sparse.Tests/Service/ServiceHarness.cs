using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using ScoringService;

namespace Microsoft.ML.Sparse.Tests.Service;

/// <summary>
/// Runs samples/ScoringService on a real Kestrel at 127.0.0.1:0 (the test host would not apply Kestrel's body-rate and
/// size limits, which the hostile-input tests need) on a generated MobileNet v1, and talks to it over HTTP and raw
/// sockets.
/// </summary>
internal static class ServiceHarness
{
    private static readonly Lazy<string> s_modelFile = new(() => WriteModel("small", new SyntheticMobileNetOptions
    {
        WidthMultiplier = 0.5f, Resolution = 64, Classes = 10, PointwiseSparsity = 0.8f, Seed = 3,
    }));

    private static readonly Lazy<string> s_slowModelFile = new(() => WriteModel("slow", new SyntheticMobileNetOptions
    {
        Resolution = 224, Classes = 100, Seed = 4,
    }));

    /// <summary>MobileNet v1 width 0.5, 64x64, 10 classes, 80% sparse 1x1 weights (milliseconds per image).</summary>
    public static string ModelFile => s_modelFile.Value;

    /// <summary>A dense MobileNet v1 1.0/224 (tens of milliseconds per image on one thread): requests overlap.</summary>
    public static string SlowModelFile => s_slowModelFile.Value;

    public static async Task<ScoringApp> StartAsync(Action<ScoringServiceOptions>? configure = null)
    {
        var options = new ScoringServiceOptions
        {
            Model = ModelFile, Sparsity = 0, Port = 0, Workers = 2, JsonLogs = false, LogLevel = LogLevel.Warning, Labels = null,
        };
        configure?.Invoke(options);
        var app = ScoringApp.Create(options);
        await app.StartAsync(TestContext.Current.CancellationToken);
        return app;
    }

    public static HttpClient Client(ScoringApp app) => new() { BaseAddress = app.Address, Timeout = TimeSpan.FromSeconds(60) };

    public static async Task<HttpResponseMessage> PostAsync(HttpClient client, byte[] body, string? contentType)
    {
        var content = new ByteArrayContent(body);
        if (contentType is not null) content.Headers.ContentType = MediaTypeHeaderValue.Parse(contentType);
        return await client.PostAsync("/classify", content, TestContext.Current.CancellationToken);
    }

    /// <summary>
    /// POSTs <paramref name="body"/> over a raw socket in chunks of <paramref name="chunk"/> bytes, calling
    /// <paramref name="between"/> before each chunk after the first; returns the status (0 if the server closed the
    /// connection without an answer) and the response body.
    /// </summary>
    public static async Task<(int Status, string Body)> PostRawAsync(Uri address, byte[] body, string contentType, int chunk, Func<int, Task> between)
    {
        var cancel = TestContext.Current.CancellationToken;
        using var tcp = new TcpClient();
        await tcp.ConnectAsync(address.Host, address.Port, cancel);
        var stream = tcp.GetStream();
        string headers = $"POST /classify HTTP/1.1\r\nHost: {address.Authority}\r\nContent-Type: {contentType}\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n";
        try
        {
            await stream.WriteAsync(Encoding.ASCII.GetBytes(headers), cancel);
            for (int offset = 0, index = 0; offset < body.Length; offset += chunk, index++)
            {
                if (index > 0) await between(index);
                await stream.WriteAsync(body.AsMemory(offset, Math.Min(chunk, body.Length - offset)), cancel);
            }
        }
        catch (IOException)
        {
            // The server may stop reading and answer before the body is complete (a 408, say): read what it said.
        }
        var response = new MemoryStream();
        try
        {
            await stream.CopyToAsync(response, cancel);
        }
        catch (IOException)
        {
            // Reset after its answer.
        }
        string text = Encoding.UTF8.GetString(response.ToArray());
        if (!text.StartsWith("HTTP/1.1 ", StringComparison.Ordinal)) return (0, text);
        int status = int.Parse(text.AsSpan(9, 3), provider: System.Globalization.CultureInfo.InvariantCulture);
        int bodyStart = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
        return (status, bodyStart < 0 ? "" : text[(bodyStart + 4)..]);
    }

    private static string WriteModel(string name, SyntheticMobileNetOptions options)
    {
        string path = Path.Combine(Path.GetTempPath(), $"scoring-service-tests-{name}-{Environment.ProcessId}.onnx");
        File.WriteAllBytes(path, SyntheticMobileNet.Create(options));
        return path;
    }
}
