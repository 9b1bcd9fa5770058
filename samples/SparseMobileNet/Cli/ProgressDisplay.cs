using System.Diagnostics;
using System.Globalization;

namespace SparseMobileNet;

/// <summary>
/// One self-redrawing line on standard error: "label [#####-----] 12/40 item 3.1 s", or "label 3.1 s" when the number of
/// steps is unknown. Drawn only on a terminal: redirected output gets no carriage returns or bars, only the results.
/// </summary>
internal sealed class ProgressDisplay : IDisposable
{
    private const int BarWidth = 24;
    private static readonly long RedrawTicks = Stopwatch.Frequency / 8;

    private readonly TextWriter _writer;
    private readonly bool _enabled;
    private readonly string _label;
    private readonly int _total;
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly Timer? _timer;
    private readonly Lock _gate = new();
    private int _done, _width;
    private string _item = "";
    private long _drawn;
    private bool _closed;

    public ProgressDisplay(TextWriter writer, bool enabled, string label, int total)
    {
        _writer = writer;
        _enabled = enabled;
        _label = label;
        _total = total;
        if (!enabled) return;
        Draw(force: true);
        // The elapsed time moves even while a step takes long (pruning a large model is one step).
        _timer = new Timer(_ => Draw(force: true), null, 250, 250);
    }

    /// <summary>Whether this process's standard error is a terminal that can show progress.</summary>
    public static bool ConsoleShowsProgress() =>
        !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") != "dumb";

    /// <summary>One more step done; <paramref name="item"/> names the next one (or the one just done).</summary>
    public void Advance(string? item = null)
    {
        lock (_gate)
        {
            _done++;
            if (item is not null) _item = item;
        }
        Draw(force: false);
    }

    private void Draw(bool force)
    {
        if (!_enabled) return;
        lock (_gate)
        {
            long now = Stopwatch.GetTimestamp();
            if (_closed || (!force && now - _drawn < RedrawTicks)) return;
            _drawn = now;
            string seconds = Stopwatch.GetElapsedTime(_start).TotalSeconds.ToString("0.0", CultureInfo.InvariantCulture) + " s";
            string line = _total <= 0
                ? $"{_label} {_item} {seconds}"
                : $"{_label} [{new string('#', BarWidth * _done / _total).PadRight(BarWidth, '-')}] {_done}/{_total} {_item} {seconds}";
            _width = Math.Max(_width, line.Length);
            _writer.Write("\r" + line.PadRight(_width));
            _writer.Flush();
        }
    }

    /// <summary>Erases the line, so that what follows starts clean.</summary>
    public void Dispose()
    {
        _timer?.Dispose();
        lock (_gate)
        {
            if (_closed) return;
            _closed = true;
            if (!_enabled) return;
            _writer.Write("\r" + new string(' ', _width) + "\r");
            _writer.Flush();
        }
    }
}
