#!/usr/bin/env bash
# Package test: packs the library and the mlsparse tool from a clean clone of HEAD, checks what the packages hold,
# then runs tests/PackageConsumer, restored from the folder feed, under each end of the supported ML.NET range, and
# the tool installed from the feed. Usage: .ci/package-test.sh [ML.NET versions...] (default: 5.0.1 6.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
versions=("${@:-5.0.1}")
[ $# -gt 0 ] || versions=(5.0.1 6.0.0)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
fail() { echo "package test: $*" >&2; exit 1; }

# A clone, as a user would pack it. Source Link maps the pdb to the commit on the origin remote; a clone of a local
# folder has no hosted origin, so the check gives the clone a placeholder GitHub remote (a real clone has its own).
git clone --quiet --no-local "$repo" "$work/src"
origin=$(git -C "$repo" remote get-url origin 2>/dev/null || true)
case "$origin" in
  https://github.com/*) git -C "$work/src" remote set-url origin "$origin" ;;
  *) git -C "$work/src" remote set-url origin https://github.com/placeholder/Microsoft.ML.Sparse ;;
esac
commit=$(git -C "$work/src" rev-parse HEAD)

echo "== dotnet pack (library and tool)"
for project in src/Microsoft.ML.Sparse samples/SparseMobileNet; do
  dotnet pack "$work/src/$project" -c Release -o "$work/feed" --artifacts-path "$work/artifacts" -v quiet -nologo
done
library=$(ls "$work"/feed/Microsoft.ML.Sparse.[0-9]*.nupkg)
version=$(basename "$library" .nupkg); version=${version#Microsoft.ML.Sparse.}
[ -f "$work/feed/Microsoft.ML.Sparse.$version.snupkg" ] || fail "no symbol package"
[ -f "$work/feed/Microsoft.ML.Sparse.Tool.$version.nupkg" ] || fail "no tool package"
ls -l "$work/feed" | tail -n +2

echo "== Microsoft.ML.Sparse $version: contents"
mkdir "$work/nupkg" && (cd "$work/nupkg" && unzip -q "$library")
nuspec=$(cat "$work/nupkg/Microsoft.ML.Sparse.nuspec")
files=$(cd "$work/nupkg" && find . -type f ! -name '*.nuspec' ! -name '*.psmdcp' ! -name '*.rels' ! -name '[[]Content_Types[]].xml' | sort | tr '\n' ' ')
echo "  files: $files"
[ "$files" = "./LICENSE ./README.md ./lib/net10.0/Microsoft.ML.Sparse.dll ./lib/net10.0/Microsoft.ML.Sparse.xml " ] || fail "unexpected package files: $files"
for expected in '<license type="expression">MIT</license>' '<readme>README.md</readme>' "commit=\"$commit\"" \
    '<dependency id="Microsoft.ML" version="[5.0.1, 7.0.0)"' '<dependency id="Microsoft.ML.ImageAnalytics" version="[5.0.1, 7.0.0)"' \
    '<dependency id="Microsoft.ML.OnnxTransformer" version="[5.0.1, 7.0.0)"' '<dependency id="Google.Protobuf"'; do
  grep -qF "$expected" <<<"$nuspec" || fail "nuspec lacks $expected"
done
dependencies=$(grep -o '<dependency id="[^"]*"' <<<"$nuspec" | cut -d'"' -f2 | sort | tr '\n' ' ')
echo "  dependencies: $dependencies"
[ "$dependencies" = "Google.Protobuf Microsoft.ML Microsoft.ML.ImageAnalytics Microsoft.ML.OnnxTransformer " ] || fail "unexpected dependencies: $dependencies"
# Nothing of the build-time publicizer: no Publicizer or Mono.Cecil dependency, and the shipped dll references the real ML.NET.
if grep -qiE 'Publicizer|Mono.Cecil|Grpc' <<<"$nuspec"; then fail "build-time tooling leaks into the nuspec"; fi
unzip -p "$work/feed/Microsoft.ML.Sparse.$version.snupkg" lib/net10.0/Microsoft.ML.Sparse.pdb > "$work/Microsoft.ML.Sparse.pdb"
sourcelink=$(grep -aoE '\{"documents":\{[^}]*\}\}' "$work/Microsoft.ML.Sparse.pdb" | head -1 || true)
[[ "$sourcelink" == *"raw.githubusercontent.com"*"$commit"* ]] || fail "no Source Link to the commit in the pdb: '$sourcelink'"
echo "  symbols: Microsoft.ML.Sparse.pdb in the snupkg; Source Link: $sourcelink"

# The feed's package may have been cached by an earlier run under the same version: restore this one.
rm -rf "$(dotnet nuget locals global-packages --list | sed 's/^global-packages: //')"/microsoft.ml.sparse{,.tool}/"$version"
cat > "$work/nuget.config" <<XML
<configuration>
  <packageSources>
    <add key="local-feed" value="$work/feed" />
  </packageSources>
</configuration>
XML

for mlnet in "${versions[@]}"; do
  echo "== consumer app on ML.NET $mlnet (package from the folder feed)"
  app="$work/consumer-$mlnet"
  cp -r tests/PackageConsumer "$app"
  cp "$work/nuget.config" "$app/"
  dotnet build "$app" -c Release -p:MLNetVersion="$mlnet" -p:SparseVersion="$version" -v quiet -nologo > "$work/build-$mlnet.log" 2>&1 \
    || { cat "$work/build-$mlnet.log"; fail "consumer build on ML.NET $mlnet"; }
  resolved=$(grep -oE '"(Microsoft\.ML|Microsoft\.ML\.Sparse)/[^"]+"' "$app/obj/project.assets.json" | sort -u | tr '\n' ' ')
  echo "  resolved: $resolved"
  [[ "$resolved" == *"\"Microsoft.ML/$mlnet\""* && "$resolved" == *"\"Microsoft.ML.Sparse/$version\""* ]] || fail "restore did not resolve ML.NET $mlnet and the feed's package"
  dotnet run --project "$app" -c Release --no-build -p:MLNetVersion="$mlnet" -- "$mlnet" "$work/run-$mlnet"
done

echo "== mlsparse installed from the folder feed"
dotnet tool install Microsoft.ML.Sparse.Tool --version "$version" --tool-path "$work/tools" --add-source "$work/feed" > /dev/null
mlsparse="$work/tools/mlsparse"
"$mlsparse" --help | grep -q 'prune <input> <output>' || fail "mlsparse --help"
model="$work/run-${versions[-1]}/mobilenet.onnx"
"$mlsparse" prune "$model" "$work/pruned.onnx" --sparsity 0.9 | tail -1
"$mlsparse" inspect "$work/pruned.onnx" --threads 1 | tail -1
set +e; "$mlsparse" prune "$model" "$work/x.onnx" --sparsity 2 2> "$work/err.txt"; code=$?; set -e
[ "$code" = 2 ] && grep -q 'fraction in \[0, 1)' "$work/err.txt" || fail "a bad --sparsity gave exit code $code: $(cat "$work/err.txt")"
echo "  mlsparse: help, prune, inspect and a bad argument (exit code 2) work"
echo "package test: ${#versions[@]} ML.NET versions (${versions[*]}) and the tool passed"
