namespace ScoringService;

/// <summary>Which scorer serves the model: the sparse engine, or ONNX Runtime on the same (pruned) file.</summary>
public enum ScorerKind
{
    /// <summary><c>ScoreSparseMobileNet</c>.</summary>
    Sparse,

    /// <summary><c>ApplyOnnxModel</c> (ONNX Runtime), for comparison.</summary>
    OnnxRuntime,
}

/// <summary>
/// Everything the service can be told (configuration section <c>Scoring</c>, or the command-line switches in
/// <see cref="Program"/>). The limits bound memory: at most <see cref="MaxConnections"/> bodies of
/// <see cref="MaxBodyBytes"/> are buffered, and at most <see cref="Workers"/> images of <see cref="MaxImagePixels"/> are
/// decoded at once.
/// </summary>
public sealed class ScoringServiceOptions
{
    /// <summary>The ONNX model; null: ../shared/models/mobilenet_v1_1.0_224.onnx beside the repository, else a generated MobileNet v1.</summary>
    public string? Model { get; set; }

    /// <summary>Class names (JSON array or one per line, or a folder holding the ../shared label files); null: ../shared/labels for the default model, else "class i".</summary>
    public string? Labels { get; set; }

    /// <summary>The model is pruned to this sparsity by OnnxPruner at start-up (0: served as it is).</summary>
    public float Sparsity { get; set; } = 0.9f;

    public ScorerKind Scorer { get; set; } = ScorerKind.Sparse;

    /// <summary>TCP port on 127.0.0.1 (0: any free port; the chosen one is printed and in <see cref="ScoringApp.Address"/>).</summary>
    public int Port { get; set; } = 5117;

    /// <summary>Images scored at once, each on one thread (one pooled PredictionEngine each).</summary>
    public int Workers { get; set; } = Environment.ProcessorCount;

    /// <summary>Requests waiting for a worker beyond which new ones get 429.</summary>
    public int QueueLimit { get; set; } = 64;

    /// <summary>A request that waited this long for a worker gets 503.</summary>
    public TimeSpan QueueTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest request body (Kestrel's MaxRequestBodySize: 413 beyond it).</summary>
    public long MaxBodyBytes { get; set; } = 4 << 20;

    /// <summary>Largest width or height an image may declare in its header (422 beyond it, before decoding).</summary>
    public int MaxImageSide { get; set; } = 4096;

    /// <summary>Largest width x height an image may declare (422 beyond it, before decoding): 16 MPixel, 64 MiB decoded.</summary>
    public long MaxImagePixels { get; set; } = 4096L * 4096;

    /// <summary>Kestrel's MinRequestBodyDataRate: a body slower than this after the grace period is cut off with 408.</summary>
    public double MinBodyBytesPerSecond { get; set; } = 1024;

    public TimeSpan MinBodyRateGracePeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Kestrel's RequestHeadersTimeout (slow headers: the connection is closed).</summary>
    public TimeSpan HeadersTimeout { get; set; } = TimeSpan.FromSeconds(10);

    public int MaxConnections { get; set; } = 256;

    /// <summary>How long a shutdown waits for in-flight requests.</summary>
    public TimeSpan ShutdownTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Classes returned by /classify.</summary>
    public int TopK { get; set; } = 5;

    /// <summary>Logs one JSON object per line (else the plain console format).</summary>
    public bool JsonLogs { get; set; } = true;

    /// <summary>Least level logged (Warning under load tests: a log line per request costs throughput).</summary>
    public LogLevel LogLevel { get; set; } = LogLevel.Information;
}
