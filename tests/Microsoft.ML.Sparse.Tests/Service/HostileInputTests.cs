using System.Net.Http.Json;
using ScoringService;
using static Microsoft.ML.Sparse.Tests.Service.ServiceHarness;

namespace Microsoft.ML.Sparse.Tests.Service;

/// <summary>Hostile uploads get a 4xx with a clear message, never a 500, a crash or unbounded memory; the service then still serves.</summary>
public sealed class HostileInputTests
{
    public static TheoryData<string> Cases => new(HostileInputs.All.Keys);

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task AHostileBody_GetsA4xxWithAClearMessage(string name)
    {
        var hostile = HostileInputs.All[name];
        await using var app = await StartAsync();
        using var client = Client(app);
        using var response = await PostAsync(client, hostile.Body, hostile.ContentType);
        string text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.True(hostile.Status == (int)response.StatusCode, $"{name}: {(int)response.StatusCode} {text}");
        var error = await response.Content.ReadFromJsonAsync<ErrorResponse>(TestContext.Current.CancellationToken);
        Assert.Equal(hostile.Status, error!.Status);
        Assert.Contains(hostile.MessagePart, error.Error, StringComparison.OrdinalIgnoreCase);
        TestContext.Current.TestOutputHelper?.WriteLine($"| {name} | {error.Status} | {error.Error} |");

        // Still serving, and answering the next good request.
        using var good = await PostAsync(client, GeneratedImage.Png(64, 64, seed: 1), "image/png");
        Assert.Equal(200, (int)good.StatusCode);
    }

    [Fact]
    public async Task DecodeBombs_AllocateNoPixels()
    {
        await using var app = await StartAsync();
        using var client = Client(app);
        var cancel = TestContext.Current.CancellationToken;
        byte[] bomb = HostileInputs.PngDeclaring(100_000, 100_000);
        using (var first = await PostAsync(client, bomb, "image/png")) Assert.Equal(422, (int)first.StatusCode);
        var before = await client.GetFromJsonAsync<HealthResponse>("/healthz", cancel);
        for (int i = 0; i < 200; i++)
        {
            using var response = await PostAsync(client, bomb, "image/png");
            Assert.Equal(422, (int)response.StatusCode);
        }
        var after = await client.GetFromJsonAsync<HealthResponse>("/healthz", cancel);
        // Decoding one would need 40 GB; 200 refusals must not move the resident set by more than noise.
        Assert.True(after!.RssBytes - before!.RssBytes < 64 << 20, $"RSS grew from {before.RssBytes:N0} to {after.RssBytes:N0} bytes");
    }

    [Fact]
    public async Task ABodyOverTheLimit_Gets413_WithOrWithoutContentLength()
    {
        await using var app = await StartAsync(o => o.MaxBodyBytes = 100_000);
        using var client = Client(app);
        var cancel = TestContext.Current.CancellationToken;
        byte[] large = new byte[300_000];
        // Declared: refused before the body is read (a raw socket, since HttpClient fails on the write the server stopped reading).
        var declared = await PostRawAsync(app.Address, large, "image/png", chunk: 10_000, _ => Task.CompletedTask);
        Assert.Equal(413, declared.Status);
        Assert.Contains("limit is 100,000", declared.Body);
        // Chunked (no Content-Length): Kestrel's MaxRequestBodySize stops the read.
        var chunked = new StreamContent(new MemoryStream(large));
        chunked.Headers.ContentType = new("image/png");
        var request = new HttpRequestMessage(HttpMethod.Post, "/classify") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        using var response = await client.SendAsync(request, cancel);
        Assert.Equal(413, (int)response.StatusCode);
    }

    [Fact]
    public async Task ASlowBodyWithinTheRate_IsServed_AndOneBelowIt_Gets408()
    {
        await using var app = await StartAsync(o =>
        {
            o.MinBodyBytesPerSecond = 2000;
            o.MinBodyRateGracePeriod = TimeSpan.FromSeconds(2);
        });
        var cancel = TestContext.Current.CancellationToken;
        byte[] image = GeneratedImage.Png(120, 120, seed: 5);

        // ~20 KB/s, well above the 2000 bytes/s minimum, for about a second.
        var (status, body) = await PostRawAsync(app.Address, image, "image/png", chunk: 1000, _ => Task.Delay(50, cancel));
        Assert.True(status == 200, $"{status} {body}");

        // 100 bytes/s: cut off once the grace period is over.
        var slow = await PostRawAsync(app.Address, image, "image/png", chunk: 20, index => index > 100 ? throw new IOException("gave up") : Task.Delay(200, cancel));
        Assert.True(slow.Status == 408, $"{slow.Status} {slow.Body}");
        Assert.Contains("slower than", slow.Body);
    }
}
