#!/usr/bin/env bash
# The arm64 leg: the Kernels and Engine tests as linux-arm64 code (the NEON Vector128 path) under qemu user-mode
# emulation. Installs what it needs non-interactively on Debian 12: qemu-user-static 10 from bookworm-backports
# (bookworm's own qemu 7.2 segfaults inside ONNX Runtime's arm64 library) and the arm64 C/C++ runtime libraries.
# NativeAotAppTests are left out: they check the x64 Native AOT binary, which this leg does not build for arm64.
# Every step is time-bounded; test timeouts are scaled (MLSPARSE_TEST_TIMEOUT_SCALE), not dropped.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo -n"

echo "== arm64 leg: installing qemu-user-static (bookworm-backports) and arm64 libraries"
if [ ! -f /etc/apt/sources.list.d/bookworm-backports.sources ]; then
  $sudo tee /etc/apt/sources.list.d/bookworm-backports.sources > /dev/null <<'SOURCES'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
fi
$sudo dpkg --add-architecture arm64
timeout 600 $sudo apt-get update -qq
apt-cache policy qemu-user-static | sed -n 1,3p
timeout 900 $sudo apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-user-static > /dev/null
timeout 900 $sudo apt-get install -y -qq --no-install-recommends libc6:arm64 libgcc-s1:arm64 libstdc++6:arm64 zlib1g:arm64 libicu72:arm64 libssl3:arm64 > /dev/null
qemu-aarch64-static --version | head -1

echo "== arm64 leg: self-contained linux-arm64 publish of the test executable"
# Published inside the repository, so the tests find MLSparse.sln above them and ../shared beside it.
bin="$PWD/artifacts/arm64-tests"
rm -rf "$bin"
timeout 900 dotnet publish tests/Microsoft.ML.Sparse.Tests -c Release -r linux-arm64 --self-contained -o "$bin" -v quiet -nologo

echo "== arm64 leg: Kernels and Engine tests under qemu"
start=$(date +%s)
# W^X double-maps JIT code, which qemu user mode does not support. Emulation is 10-30x slower: timeouts scale by 30.
set +e
(cd "$bin" && DOTNET_EnableWriteXorExecute=0 MLSPARSE_TEST_TIMEOUT_SCALE=30 timeout "${ARM64_TEST_TIMEOUT:-1200}" \
  qemu-aarch64-static ./Microsoft.ML.Sparse.Tests -namespace Microsoft.ML.Sparse.Tests.Kernels -namespace Microsoft.ML.Sparse.Tests.Engine \
  -noclass Microsoft.ML.Sparse.Tests.Engine.NativeAotAppTests \
  -noColor -xml "$work/results.xml") > "$work/run.log" 2>&1
code=$?
set -e
grep -E 'FAIL|Total:|\[FATAL\]' "$work/run.log" || true
[ -f "$work/results.xml" ] || { tail -50 "$work/run.log"; echo "arm64 leg: no results (exit code $code; 124 = timed out)"; exit 1; }
count() { grep -o '<test [^>]*>' "$work/results.xml" | grep "type=\"Microsoft.ML.Sparse.Tests.$1\." | grep -c "result=\"$2\"" || true; }
for area in Kernels Engine; do
  echo "  arm64 $area: $(count "$area" Pass) passed, $(count "$area" Fail) failed, $(count "$area" Skip) skipped"
done
passed=$(grep -o '<test [^>]*>' "$work/results.xml" | grep -c 'result="Pass"' || true)
failed=$(grep -o '<test [^>]*>' "$work/results.xml" | grep -c 'result="Fail"' || true)
echo "  arm64 leg took $(( $(date +%s) - start )) s under qemu"
echo "arm64: $passed passed, $failed failed"
[ "$code" = 0 ] && [ "$failed" = 0 ] && [ "$passed" -gt 0 ]
