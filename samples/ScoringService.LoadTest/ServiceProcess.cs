using System.Diagnostics;
using System.Runtime.InteropServices;

namespace ScoringService.LoadTest;

/// <summary>The service in a child process (this program with <c>--serve</c>): started, its address read from its first line, stopped with SIGTERM.</summary>
internal sealed class ServiceProcess : IAsyncDisposable
{
    private const string ListeningLine = "ScoringService listening on ";
    private readonly Process _process;

    private ServiceProcess(Process process, Uri address)
    {
        _process = process;
        Address = address;
    }

    public Uri Address { get; }

    [DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);

    public static async Task<ServiceProcess> StartAsync(string[] serviceArguments)
    {
        var start = new ProcessStartInfo(Environment.ProcessPath!) { RedirectStandardOutput = true, UseShellExecute = false };
        // Under `dotnet LoadTest.dll` the process is the dotnet host: pass the assembly first.
        if (Path.GetFileNameWithoutExtension(Environment.ProcessPath!) == "dotnet") start.ArgumentList.Add(typeof(ServiceProcess).Assembly.Location);
        start.ArgumentList.Add("--serve");
        foreach (string argument in serviceArguments) start.ArgumentList.Add(argument);
        var process = Process.Start(start) ?? throw new InvalidOperationException("Could not start the service.");
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        while (await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            if (line.StartsWith(ListeningLine, StringComparison.Ordinal))
            {
                // Keep draining its output so that the child never blocks on a full pipe.
                _ = Task.Run(async () => { while (await process.StandardOutput.ReadLineAsync() is not null) { } });
                return new ServiceProcess(process, new Uri(line[ListeningLine.Length..]));
            }
            Console.WriteLine($"  service: {line}");
        }
        throw new InvalidOperationException($"The service exited (code {(process.HasExited ? process.ExitCode : -1)}) before listening.");
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            // SIGTERM: the graceful shutdown path.
            _ = Kill(_process.Id, 15);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(40));
            try
            {
                await _process.WaitForExitAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                _process.Kill();
            }
        }
        _process.Dispose();
    }
}
