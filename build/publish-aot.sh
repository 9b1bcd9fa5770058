#!/usr/bin/env bash
# Publishes samples/SparseMobileNet.Aot as a Native AOT executable to artifacts/aot/ (trim and AOT warnings are errors).
# Needs clang and zlib1g-dev (Debian: apt-get install -y clang zlib1g-dev); the ILCompiler packages come from NuGet.
# Extra arguments go to dotnet publish, e.g. -p:SparseAotInstructionSet=x86-64-v4.
set -euo pipefail
cd "$(dirname "$0")/.."
rid="$(dotnet --info | sed -n 's/^ *RID: *//p' | head -1)"
dotnet publish samples/SparseMobileNet.Aot -c Release -r "$rid" -o artifacts/aot "$@"
