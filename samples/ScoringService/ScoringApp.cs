using System.Diagnostics;
using System.Net;
using System.Threading.RateLimiting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace ScoringService;

/// <summary>
/// The service: Kestrel on 127.0.0.1 with request limits, the model behind a bounded queue of workers, and three
/// endpoints (POST /classify, GET /healthz, GET /model). <see cref="StartAsync"/> serves until <see cref="StopAsync"/>,
/// which lets in-flight requests finish (up to <see cref="ScoringServiceOptions.ShutdownTimeout"/>).
/// </summary>
public sealed partial class ScoringApp : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly ServedModel _served;
    private readonly ModelScorer _scorer;
    private readonly ImageValidator _validator;
    private readonly ConcurrencyLimiter _workers;
    private readonly ScoringServiceOptions _options;
    private readonly ILogger _logger;
    private long _served200, _rejected, _inFlight, _receiving;

    private ScoringApp(ScoringServiceOptions options, string[] args)
    {
        _options = options;
        _served = ServedModel.Prepare(options);
        try
        {
            _scorer = new ModelScorer(_served, options);
        }
        catch
        {
            _served.Dispose();
            throw;
        }
        var builder = WebApplication.CreateSlimBuilder(args);
        builder.Logging.ClearProviders().SetMinimumLevel(options.LogLevel);
        // Kestrel and routing log every request at Information: keep the service's own request lines only.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        if (options.JsonLogs) builder.Logging.AddJsonConsole(json => json.TimestampFormat = "O");
        else builder.Logging.AddSimpleConsole(console => console.SingleLine = true);
        builder.Services.Configure<HostOptions>(host => host.ShutdownTimeout = options.ShutdownTimeout);
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            // Loopback only: this is a sample, not an internet-facing server.
            kestrel.Listen(IPAddress.Loopback, options.Port);
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            kestrel.Limits.MinRequestBodyDataRate = new MinDataRate(options.MinBodyBytesPerSecond, options.MinBodyRateGracePeriod);
            kestrel.Limits.RequestHeadersTimeout = options.HeadersTimeout;
            kestrel.Limits.MaxConcurrentConnections = options.MaxConnections;
            kestrel.Limits.MaxRequestHeadersTotalSize = 16 << 10;
        });
        _app = builder.Build();
        _logger = _app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("ScoringService");
        _validator = new ImageValidator(options);
        _workers = new ConcurrencyLimiter(new ConcurrencyLimiterOptions
        {
            PermitLimit = Math.Max(1, options.Workers), QueueLimit = Math.Max(0, options.QueueLimit), QueueProcessingOrder = QueueProcessingOrder.OldestFirst,
        });

        _app.MapPost("/classify", (Delegate)ClassifyAsync);
        _app.MapGet("/healthz", () => Results.Json(Health()));
        _app.MapGet("/model", () => Results.Json(ModelDescription()));
    }

    /// <summary>Prepares the model (pruning it, when asked) and builds the host; call <see cref="StartAsync"/> to serve.</summary>
    public static ScoringApp Create(ScoringServiceOptions options, string[]? args = null) => new(options, args ?? []);

    /// <summary>The address Kestrel listens on (known after <see cref="StartAsync"/>; with port 0, the port chosen).</summary>
    public Uri Address => new(_app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First());

    /// <summary>Requests that have been read and are waiting for, or holding, a worker.</summary>
    public long InFlight => Interlocked.Read(ref _inFlight);

    /// <summary>Classify requests whose body is being read (their handler has started).</summary>
    public long Receiving => Interlocked.Read(ref _receiving);

    /// <summary>Triggered when a shutdown starts (Ctrl+C, SIGTERM or <see cref="StopAsync"/>).</summary>
    public CancellationToken Stopping => _app.Lifetime.ApplicationStopping;

    public async Task StartAsync(CancellationToken cancellationToken = default)
    {
        await _app.StartAsync(cancellationToken);
        LogStarted(_logger, Address, _options.Scorer, _served.Source, _served.Pruning?.PrunedLayersSparsity ?? 0, _options.Workers, _options.QueueLimit);
    }

    /// <summary>Stops accepting connections and waits for in-flight requests to finish.</summary>
    public Task StopAsync(CancellationToken cancellationToken = default) => _app.StopAsync(cancellationToken);

    /// <summary>Serves until Ctrl+C or SIGTERM, then shuts down gracefully.</summary>
    public Task WaitForShutdownAsync() => _app.WaitForShutdownAsync();

    public async ValueTask DisposeAsync()
    {
        await _app.DisposeAsync();
        _workers.Dispose();
        _scorer.Dispose();
        _served.Dispose();
    }

    private async Task<IResult> ClassifyAsync(HttpContext context)
    {
        long start = Stopwatch.GetTimestamp();
        var request = context.Request;
        if (ImageValidator.CheckContentType(request.ContentType) is { } wrongType) return Reject(wrongType);
        if (request.ContentLength > _options.MaxBodyBytes)
            return Reject(new Rejection(StatusCodes.Status413PayloadTooLarge, $"The body declares {request.ContentLength:N0} bytes; the limit is {_options.MaxBodyBytes:N0}."));

        // Read the body before taking a worker, so that a slow upload holds a connection, never a scorer.
        byte[] body;
        Interlocked.Increment(ref _receiving);
        try
        {
            body = await ReadBodyAsync(request, context.RequestAborted);
        }
        catch (Microsoft.AspNetCore.Http.BadHttpRequestException e)
        {
            // Kestrel's own limits: 413 over MaxRequestBodySize, 408 under MinRequestBodyDataRate.
            return Reject(new Rejection(e.StatusCode, e.StatusCode == StatusCodes.Status408RequestTimeout
                ? $"The body arrived slower than {_options.MinBodyBytesPerSecond} bytes/s." : e.Message));
        }
        catch (Exception e) when (e is IOException or OperationCanceledException && context.RequestAborted.IsCancellationRequested)
        {
            // The client went away mid-upload: nobody to answer.
            LogAbandoned(_logger, e.GetType().Name);
            return Results.Empty;
        }
        finally
        {
            Interlocked.Decrement(ref _receiving);
        }

        Interlocked.Increment(ref _inFlight);
        try
        {
            long queued = Stopwatch.GetTimestamp();
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
            timeout.CancelAfter(_options.QueueTimeout);
            RateLimitLease lease;
            try
            {
                lease = await _workers.AcquireAsync(1, timeout.Token);
            }
            catch (OperationCanceledException) when (!context.RequestAborted.IsCancellationRequested)
            {
                context.Response.Headers.RetryAfter = "1";
                return Reject(new Rejection(StatusCodes.Status503ServiceUnavailable, $"No scorer became free within {_options.QueueTimeout.TotalSeconds:0.###} s; retry later."));
            }
            using (lease)
            {
                if (!lease.IsAcquired)
                {
                    context.Response.Headers.RetryAfter = "1";
                    return Reject(new Rejection(StatusCodes.Status429TooManyRequests, $"{_options.QueueLimit} requests are already waiting for the {_options.Workers} scorers; retry later."));
                }
                double queueMs = Stopwatch.GetElapsedTime(queued).TotalMilliseconds;
                long decodeStart = Stopwatch.GetTimestamp();
                var (bitmap, invalid) = _validator.Decode(body);
                if (invalid is not null) return Reject(invalid);
                using (bitmap)
                {
                    double decodeMs = Stopwatch.GetElapsedTime(decodeStart).TotalMilliseconds;
                    long scoreStart = Stopwatch.GetTimestamp();
                    float[] scores = _scorer.Score(bitmap!);
                    double scoreMs = Stopwatch.GetElapsedTime(scoreStart).TotalMilliseconds;
                    var top = TopK(scores, _options.TopK);
                    double totalMs = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                    Interlocked.Increment(ref _served200);
                    LogClassified(_logger, body.Length, bitmap!.Width, bitmap.Height, top[0].Label, top[0].Score, totalMs, queueMs, scoreMs);
                    return Results.Json(new ClassifyResponse(_scorer.Kind.ToString(), top, new Latency(totalMs, queueMs, decodeMs, scoreMs)));
                }
            }
        }
        finally
        {
            Interlocked.Decrement(ref _inFlight);
        }
    }

    /// <summary>The whole body into one array sized from Content-Length when given (bounded by MaxRequestBodySize either way).</summary>
    private static async Task<byte[]> ReadBodyAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        using var buffer = new MemoryStream(request.ContentLength is long length ? (int)length : 64 << 10);
        await request.Body.CopyToAsync(buffer, cancellationToken);
        return buffer.Length == buffer.Capacity ? buffer.GetBuffer() : buffer.ToArray();
    }

    private IResult Reject(Rejection rejection)
    {
        Interlocked.Increment(ref _rejected);
        LogRejected(_logger, rejection.StatusCode, rejection.Message);
        return Results.Json(new ErrorResponse(rejection.StatusCode, rejection.Message), statusCode: rejection.StatusCode);
    }

    private TopClass[] TopK(float[] scores, int k) =>
        scores.Select((score, index) => (score, index)).OrderByDescending(p => p.score).Take(Math.Max(1, k))
            .Select(p => new TopClass(p.index, _served.Labels[p.index], p.score)).ToArray();

    private HealthResponse Health()
    {
        using var process = Process.GetCurrentProcess();
        return new HealthResponse(_app.Lifetime.ApplicationStopping.IsCancellationRequested ? "stopping" : "ok", _scorer.Kind.ToString(),
            Interlocked.Read(ref _served200), Interlocked.Read(ref _rejected), InFlight,
            GC.GetGCMemoryInfo().HeapSizeBytes, process.WorkingSet64, GC.CollectionCount(0), GC.CollectionCount(2));
    }

    private ModelResponse ModelDescription()
    {
        var model = _scorer.Model;
        var pruning = _served.Pruning;
        return new ModelResponse(_served.Source, _served.Generated, _scorer.Kind.ToString(), model.InputName, model.InputShape, model.OutputName, model.OutputShape,
            pruning is null ? null : new PruningSummary(pruning.PrunedLayersSparsity, pruning.OverallSparsityAfter),
            model.Describe().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Listening on {Address}: {Scorer} scorer, model {Model} (pruned layers {Sparsity:P1} sparse), {Workers} workers, queue {QueueLimit}")]
    private static partial void LogStarted(ILogger logger, Uri address, ScorerKind scorer, string model, double sparsity, int workers, int queueLimit);

    [LoggerMessage(Level = LogLevel.Information, Message = "Classified {Bytes} bytes ({Width}x{Height}) as {Label} ({Score:0.000}) in {TotalMs:0.00} ms (queue {QueueMs:0.00} ms, score {ScoreMs:0.00} ms)")]
    private static partial void LogClassified(ILogger logger, int bytes, int width, int height, string label, float score, double totalMs, double queueMs, double scoreMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "The client closed the connection during its upload ({Exception})")]
    private static partial void LogAbandoned(ILogger logger, string exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rejected with {StatusCode}: {Reason}")]
    private static partial void LogRejected(ILogger logger, int statusCode, string reason);
}

/// <summary>A class of /classify's answer: its index in the model's output, its name and its score.</summary>
public sealed record TopClass(int Index, string Label, float Score);

/// <summary>Where a request's time went, in milliseconds: total (from the first byte read), waiting for a worker, decoding, scoring.</summary>
public sealed record Latency(double TotalMs, double QueueMs, double DecodeMs, double ScoreMs);

public sealed record ClassifyResponse(string Scorer, TopClass[] Top, Latency Latency);

public sealed record ErrorResponse(int Status, string Error);

/// <summary>/healthz: counters, and the memory the load generator samples (managed heap at the last GC, resident set).</summary>
public sealed record HealthResponse(string Status, string Scorer, long Classified, long Rejected, long InFlight, long GcHeapBytes, long RssBytes, int Gen0Collections, int Gen2Collections);

public sealed record PruningSummary(double PrunedLayersSparsity, double OverallSparsity);

/// <summary>/model: what the SparseMobileNet sample's <c>inspect</c> prints (SparseModel.Describe()), one line per entry.</summary>
public sealed record ModelResponse(string Source, bool Generated, string Scorer, string InputName, IReadOnlyList<int> InputShape, string OutputName,
    IReadOnlyList<int> OutputShape, PruningSummary? Pruning, string[] Plan);
