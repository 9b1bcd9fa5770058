#!/usr/bin/env bash
# Publishes samples/SparseMobileNet.Aot as a Native AOT executable to artifacts/aot/ (trim and AOT warnings are errors).
# Needs clang and zlib1g-dev (Debian: apt-get install -y clang zlib1g-dev); the ILCompiler packages come from NuGet.
# Extra arguments go to dotnet publish, e.g. -p:SparseAotInstructionSet=x86-64-v4.
# Writes artifacts/aot/engine-sources.sha256, the hash of the sources it was built from (build/engine-sources-hash.sh):
# NativeAotAppTests compare it with the working tree's, so a stale binary is never tested as the current engine.
set -euo pipefail
cd "$(dirname "$0")/.."
rid="$(dotnet --info | sed -n 's/^ *RID: *//p' | head -1)"
hash=$(build/engine-sources-hash.sh)
dotnet publish samples/SparseMobileNet.Aot -c Release -r "$rid" -o artifacts/aot "$@"
echo "$hash" > artifacts/aot/engine-sources.sha256
