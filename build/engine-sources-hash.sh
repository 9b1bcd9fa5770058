#!/usr/bin/env bash
# SHA-256 over the engine's and the AOT sample's sources (C# files and project files, outside bin/ and obj/), each
# listed as "<sha256>  <path from the repository root>" in ordinal path order; NativeAotAppTests computes the same.
set -euo pipefail
cd "$(dirname "$0")/.."
find src/Microsoft.ML.Sparse samples/SparseMobileNet.Aot -type f \( -name '*.cs' -o -name '*.csproj' -o -name '*.proto' \) \
  -not -path '*/bin/*' -not -path '*/obj/*' | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
