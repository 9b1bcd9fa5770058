#!/usr/bin/env bash
# Start-up benchmark: load time, first predictions and resident memory of fresh processes, ML.NET and raw engines side by
# side, plus the Native AOT sample. Usage (from anywhere): tests/Microsoft.ML.Sparse.Benchmarks/run-startup.sh [--runs N] [--model NAME]
# (default 5 runs of each case on MobileNet v1 and v2 pruned to 90%, ~4 min). Writes docs/benchmarks/startup-results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
build/publish-aot.sh
dotnet build -c Release tests/Microsoft.ML.Sparse.Benchmarks
dotnet run -c Release --no-build --project tests/Microsoft.ML.Sparse.Benchmarks -- startup "$@"
