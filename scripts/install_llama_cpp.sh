#!/usr/bin/env bash
# Builds llama-cpp-python (the embedded model's runtime) for a portable CPU target, never for "this CPU".
#
# llama-cpp-python compiles ggml with GGML_NATIVE=ON by default (-march=native). On a VM whose CPU
# advertises AMX but traps on it, the AMX tile kernels then die with SIGILL at the first decode.
# We build for x86-64-v3 (AVX, AVX2, FMA, F16C, BMI2: every x86-64 server CPU since 2013, Intel and AMD),
# with AVX-512 and AMX off; on an older x86-64 without AVX2, for baseline SSE4.2. Other architectures
# keep llama.cpp's defaults minus GGML_NATIVE.
# --no-cache-dir: pip's wheel cache is keyed by the sdist, not by CMAKE_ARGS, so it would hand back a
# wheel built natively earlier.
set -euo pipefail
PY="${1:-python3}"
VERSION="${LLAMA_CPP_VERSION:-0.3.36}"

portable_args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF -DGGML_AVX512=OFF"
case "$(uname -m)" in
  x86_64|amd64)
    if grep -qw avx2 /proc/cpuinfo 2>/dev/null && grep -qw fma /proc/cpuinfo && grep -qw f16c /proc/cpuinfo; then
      portable_args="$portable_args -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON"
    else
      portable_args="$portable_args -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
    fi ;;
esac

if "$PY" - "$VERSION" <<'PY' 2>/dev/null; then
import sys, importlib.metadata as m, pathlib
from llama_cpp import llama_cpp  # noqa: F401  (the library loads)
assert m.version("llama-cpp-python") == sys.argv[1]
stamp = pathlib.Path(m.distribution("llama-cpp-python").locate_file("llama_cpp/PORTABLE_BUILD"))
assert stamp.is_file()
PY
  echo "llama-cpp-python $VERSION: portable build already installed"
  exit 0
fi

echo "building llama-cpp-python $VERSION for a portable CPU target ($portable_args); a few minutes on 2 cores" >&2
CMAKE_ARGS="$portable_args" FORCE_CMAKE=1 "$PY" -m pip install -q --no-cache-dir --force-reinstall --no-deps \
  "llama-cpp-python[server]==$VERSION"
# The extras' own dependencies (the server's), resolved normally.
"$PY" -m pip install -q "llama-cpp-python[server]==$VERSION"
# Mark the build so the check above, `deepsearch doctor` and the tests can tell it from a native one.
"$PY" - "$portable_args" <<'PY'
import sys, importlib.metadata as m, pathlib
p = pathlib.Path(m.distribution("llama-cpp-python").locate_file("llama_cpp/PORTABLE_BUILD"))
p.write_text(sys.argv[1] + "\n")
PY
