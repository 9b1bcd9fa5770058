using System.Net.Http.Json;
using ScoringService;
using static Microsoft.ML.Sparse.Tests.Service.ServiceHarness;

namespace Microsoft.ML.Sparse.Tests.Service;

/// <summary>
/// Saturation is a matter of timing: these tests run alone, not beside CPU-heavy test classes that would delay the
/// burst's clients on the shared thread pool until the requests no longer overlap (as happened in CI).
/// </summary>
[CollectionDefinition(nameof(SaturationCollection), DisableParallelization = true)]
public sealed class SaturationCollection;

/// <summary>A saturated service refuses with 429 (queue full) or 503 (waited too long), never 500; a shutdown finishes what is in flight.</summary>
[Collection(nameof(SaturationCollection))]
public sealed class SaturationAndShutdownTests
{
    [Fact]
    public async Task AFullQueue_Gets429_AndTheRestAreServed()
    {
        await using var app = await StartAsync(o =>
        {
            o.Model = SlowModelFile;
            o.Workers = 1;
            o.QueueLimit = 1;
            o.QueueTimeout = TimeSpan.FromMinutes(2);
        });
        var statuses = await Burst(app, requests: 16);
        Assert.All(statuses, s => Assert.True(s is 200 or 429, $"status {s}"));
        Assert.Contains(429, statuses);
        Assert.True(statuses.Count(s => s == 200) >= 2, string.Join(",", statuses));
    }

    [Fact]
    public async Task AQueueWaitOverTheTimeout_Gets503()
    {
        await using var app = await StartAsync(o =>
        {
            o.Model = SlowModelFile;
            o.Workers = 1;
            o.QueueLimit = 100;
            o.QueueTimeout = TimeSpan.FromMilliseconds(1);
        });
        var statuses = await Burst(app, requests: 12);
        Assert.All(statuses, s => Assert.True(s is 200 or 503, $"status {s}"));
        Assert.Contains(503, statuses);
        Assert.Contains(200, statuses);
    }

    [Fact]
    public async Task Shutdown_FinishesTheRequestInFlight_ThenRefusesConnections()
    {
        var cancel = TestContext.Current.CancellationToken;
        var app = await StartAsync();
        await using var _ = app;
        var address = app.Address;
        byte[] image = GeneratedImage.Png(96, 96, seed: 9);
        Task? stop = null;
        // Half the body, then the shutdown starts, then the rest of the body: the request must still be answered.
        var (status, body) = await PostRawAsync(address, image, "image/png", chunk: image.Length / 2 + 1, async _ =>
        {
            // Until Kestrel has parsed the headers and started the handler, the connection counts as idle and a
            // shutdown may close it: start stopping only once the request is being read (on a loaded machine, later).
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (app.Receiving == 0)
            {
                Assert.True(waited.Elapsed < TimeSpan.FromSeconds(30), "the server never started reading the request");
                await Task.Delay(10, cancel);
            }
            stop = app.StopAsync(cancel);
            await Task.Delay(500, cancel);
            Assert.True(app.Stopping.IsCancellationRequested);
            Assert.False(stop.IsCompleted, "the shutdown did not wait for the request being read");
        });
        Assert.True(status == 200, $"{status} {body}");
        await stop!.WaitAsync(TimeSpan.FromSeconds(30), cancel);
        using var client = new HttpClient { BaseAddress = address };
        await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/healthz", cancel));
    }

    [Fact]
    public async Task ConcurrentClients_GetTheSameScoresAsOneAtATime()
    {
        await using var app = await StartAsync(o => o.Workers = 2);
        using var client = Client(app);
        var cancel = TestContext.Current.CancellationToken;
        byte[][] images = Enumerable.Range(0, 4).Select(i => GeneratedImage.Png(80 + 10 * i, 64, seed: 20 + i)).ToArray();
        var alone = new List<TopClass[]>();
        foreach (var image in images)
        {
            using var response = await PostAsync(client, image, "image/png");
            alone.Add((await response.Content.ReadFromJsonAsync<ClassifyResponse>(cancel))!.Top);
        }
        var together = await Task.WhenAll(Enumerable.Range(0, 64).Select(async i =>
        {
            using var response = await PostAsync(client, images[i % images.Length], "image/png");
            Assert.Equal(200, (int)response.StatusCode);
            return (i, (await response.Content.ReadFromJsonAsync<ClassifyResponse>(cancel))!.Top);
        }));
        foreach (var (i, top) in together) Assert.Equal(alone[i % images.Length], top);
    }

    /// <summary><paramref name="requests"/> requests at once, each on its own connection; their statuses.</summary>
    /// <summary>
    /// Sends <paramref name="requests"/> uploads that reach the server's queue together: each sends all but the last byte
    /// of its body, and the last bytes go out once the server is reading every one of them. (Clients started on the
    /// thread pool of a loaded 2-core machine otherwise trickle in one by one, and never find the queue busy.)
    /// </summary>
    private static async Task<int[]> Burst(ScoringApp app, int requests)
    {
        byte[] image = GeneratedImage.Png(224, 224, seed: 8);
        var cancel = TestContext.Current.CancellationToken;
        var allReading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = Task.Run(async () =>
        {
            var waited = System.Diagnostics.Stopwatch.StartNew();
            while (app.Receiving < requests)
            {
                if (waited.Elapsed > TimeSpan.FromSeconds(60))
                {
                    allReading.TrySetException(new TimeoutException($"only {app.Receiving} of {requests} requests reached the server"));
                    return;
                }
                await Task.Delay(5, cancel);
            }
            allReading.TrySetResult();
        }, cancel);
        var burst = Enumerable.Range(0, requests).Select(async _ =>
        {
            var (status, _) = await PostRawAsync(app.Address, image, "image/png", chunk: image.Length - 1, _ => allReading.Task.WaitAsync(cancel));
            return status;
        }).ToArray();
        return await Task.WhenAll(burst);
    }
}
