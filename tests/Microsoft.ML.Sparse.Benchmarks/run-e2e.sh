#!/usr/bin/env bash
# End-to-end benchmark: ONNX Runtime vs the sparse engine on the real MobileNets and pruned copies.
# Usage (from anywhere): tests/Microsoft.ML.Sparse.Benchmarks/run-e2e.sh [--quick | --targets] [--model NAME]
# (--quick: 0% and 90%, 1 thread, ~1.5 min; --targets: 70% and 90%, 1 and 2 threads, the rows the targets name;
#  --model NAME: that model's rows only; NAME is mobilenet_v1_1.0_224, mobilenet_v2_1.0_224, torchvision_mobilenet_v3_small,
#  torchvision_mobilenet_v3_large, torchvision_efficientnet_b0 or torchvision_mnasnet1_0)
# Writes docs/benchmarks/e2e-results.md, e2e-results.csv and latency-vs-sparsity.png.
set -euo pipefail
cd "$(dirname "$0")/../.."
dotnet run -c Release --project tests/Microsoft.ML.Sparse.Benchmarks -- e2e "$@"
dotnet run -c Release --project tests/Microsoft.ML.Sparse.Benchmarks.Charts -- docs/benchmarks/e2e-results.csv docs/benchmarks/latency-vs-sparsity.png
