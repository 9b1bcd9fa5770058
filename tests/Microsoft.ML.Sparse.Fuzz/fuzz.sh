#!/usr/bin/env bash
# Coverage-guided fuzzing of the ONNX loader: SharpFuzz instruments Microsoft.ML.Sparse.dll, AFL++ drives the harness.
#   tests/Microsoft.ML.Sparse.Fuzz/fuzz.sh [seconds=60] [work folder=$(mktemp -d)]
# Needs afl-fuzz (Debian: apt-get install -y afl++) and the SharpFuzz.CommandLine tool (dotnet tool restore, from
# .config/dotnet-tools.json). Prints AFL's statistics; exits 1 if AFL saved a crash, or a hang that also runs over
# the time limit when replayed alone. Findings stay in <work>/findings/default/{crashes,hangs}; replay one with
#   dotnet <work>/bin/Microsoft.ML.Sparse.Fuzz.dll repro <file>
set -euo pipefail
seconds=${1:-60}
work=${2:-$(mktemp -d -t sparse-fuzz-XXXXXX)}
root="$(cd "$(dirname "$0")/../.." && pwd)"
command -v afl-fuzz >/dev/null || { echo "afl-fuzz not found (Debian: apt-get install -y afl++)" >&2; exit 2; }
mkdir -p "$work"
cd "$root"
dotnet tool restore >/dev/null
rm -rf "$work/bin"
dotnet publish tests/Microsoft.ML.Sparse.Fuzz -c Release -o "$work/bin" -v quiet -nologo
rm -rf "$work/corpus" "$work/afl-bin" && dotnet "$work/bin/Microsoft.ML.Sparse.Fuzz.dll" corpus "$work/corpus"
# An instrumented copy for AFL (instrumented code writes AFL's shared memory, so it only runs under afl-fuzz; the
# corpus and the replays use bin/). Only the library is instrumented: coverage is the loader's.
cp -r "$work/bin" "$work/afl-bin"
dotnet tool run sharpfuzz "$work/afl-bin/Microsoft.ML.Sparse.dll"

# -t: per-input limit in ms (generous: two contended cores); -m none: the .NET runtime maps more than AFL's default.
export AFL_SKIP_BIN_CHECK=1 AFL_NO_UI=1 AFL_I_DONT_CARE_ABOUT_MISSING_CRASHES=1 AFL_SKIP_CPUFREQ=1 AFL_NO_AFFINITY=1
timeout_ms=${FUZZ_TIMEOUT_MS:-5000}
echo "afl-fuzz for ${seconds} s in $work"
afl-fuzz -i "$work/corpus" -o "$work/findings" -t "$timeout_ms" -m none -V "$seconds" -- dotnet "$work/afl-bin/Microsoft.ML.Sparse.Fuzz.dll" > "$work/afl.log" 2>&1 || {
  echo "afl-fuzz failed:" >&2; tail -40 "$work/afl.log" >&2; exit 2; }

stats="$work/findings/default/fuzzer_stats"
for key in run_time execs_done execs_per_sec corpus_count corpus_found bitmap_cvg edges_found total_edges saved_crashes saved_hangs stability; do
  grep -E "^$key +:" "$stats" || true
done
status=0
crashes=$(find "$work/findings/default/crashes" -type f -name 'id:*' | wc -l)
if [ "$crashes" -gt 0 ]; then
  echo "$crashes crash(es):"; dotnet "$work/bin/Microsoft.ML.Sparse.Fuzz.dll" repro "$work/findings/default/crashes" || true; status=1
fi
hangs=$(find "$work/findings/default/hangs" -type f -name 'id:*' | wc -l)
if [ "$hangs" -gt 0 ]; then
  echo "$hangs input(s) over ${timeout_ms} ms under AFL; replayed alone:"
  dotnet "$work/bin/Microsoft.ML.Sparse.Fuzz.dll" repro "$work/findings/default/hangs" --limit-ms "$timeout_ms" || status=1
fi
exit $status
