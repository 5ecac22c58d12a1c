"""Is the embedded llama.cpp build safe on this CPU? Shared by `deepsearch doctor` and tests/test_embedded_build.py.

llama-cpp-python's default build (GGML_NATIVE) compiles for the build machine's CPU; on a VM that advertises AMX
but traps on it, the first decode dies with SIGILL. scripts/install_llama_cpp.sh builds for x86-64-v3 instead and
leaves a PORTABLE_BUILD marker. Four views of a build: the marker, the features llama.cpp says it uses, the
instructions actually in its CPU library, and a decode in a child process (so a SIGILL kills the child, not us).
"""

from __future__ import annotations

import importlib.metadata
import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from pydantic import BaseModel

DISTRIBUTION = "llama-cpp-python"
MARKER = "llama_cpp/PORTABLE_BUILD"
FIX = "rebuild it portable: `make clean && make install` (by hand: scripts/install_llama_cpp.sh .venv/bin/python)"
# Features llama.cpp may report that not every x86-64 the project meets can execute.
UNSAFE_FEATURE_PREFIXES = ("AMX", "AVX512")
HOST_FLAGS = ("avx", "avx2", "fma", "f16c", "bmi2", "avx512f", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16")
# AMX tile instructions, and what only EVEX (AVX-512) encodes: zmm registers, xmm/ymm 16-31, opmask registers.
AMX_INSNS = r"\b(ldtilecfg|sttilecfg|tilerelease|tilezero|tileloaddt?1?|tilestored|tdpb[su][su]d|tdp(bf|f)16ps)\b"
AVX512_REGS = r"%zmm[0-9]+|%[xy]mm(1[6-9]|2[0-9]|3[01])\b|\{%k[1-7]\}"


def installed_version() -> str | None:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed_path(relative: str) -> Path | None:
    try:
        return Path(importlib.metadata.distribution(DISTRIBUTION).locate_file(relative))
    except importlib.metadata.PackageNotFoundError:
        return None


def portable_marker() -> str | None:
    """The CMake args scripts/install_llama_cpp.sh built with, or None for any other build."""
    path = _installed_path(MARKER)
    return path.read_text().strip() if path and path.is_file() else None


def cpu_libraries() -> list[Path]:
    """ggml's CPU backend(s) in the installed package: libggml-cpu.so, or one per variant in a multi-variant build."""
    lib = _installed_path("llama_cpp/lib")
    return sorted(p for p in lib.glob("libggml-cpu*.so") if p.is_file()) if lib and lib.is_dir() else []


def parse_system_info(text: str) -> dict[str, int]:
    """`llama_print_system_info()` ("CPU : SSE3 = 1 | AVX2 = 1 | …") as {feature: value}, in its order."""
    return {name: int(value) for name, value in re.findall(r"([A-Z][A-Z0-9_]*) = (\d+)", text)}


def unsafe_features(features: dict[str, int]) -> list[str]:
    return [name for name, on in features.items() if on and name.startswith(UNSAFE_FEATURE_PREFIXES)]


def host_cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> dict[str, bool] | None:
    """The relevant flags this CPU advertises (Linux); None where /proc/cpuinfo has none."""
    try:
        line = next((x for x in cpuinfo.read_text().splitlines() if x.startswith("flags")), "")
    except OSError:
        return None
    flags = set(line.partition(":")[2].split())
    return {f: f in flags for f in HOST_FLAGS} if flags else None


class InstructionScan(BaseModel):
    amx: int  # AMX tile instructions
    avx512: int  # zmm / EVEX-only registers
    sample: list[str]


def scan_instructions(library: Path, timeout_s: float = 120) -> InstructionScan:
    """Count AMX and AVX-512 code in `library` by disassembly (objdump | grep: the listing never enters Python).

    Raises FileNotFoundError without binutils' objdump.
    """
    objdump = subprocess.Popen(
        ["objdump", "-d", "--no-show-raw-insn", str(library)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        grep = subprocess.run(
            ["grep", "-oE", f"{AMX_INSNS}|{AVX512_REGS}"],
            stdin=objdump.stdout,
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    finally:
        objdump.stdout.close()
        objdump.kill()
        objdump.wait()
    hits = grep.stdout.split()
    amx = [h for h in hits if not h.startswith(("%", "{"))]
    return InstructionScan(amx=len(amx), avx512=len(hits) - len(amx), sample=sorted(set(hits))[:8])


# Runs in a child: llama.cpp's system info first (flushed, so it survives a crash in the decode), then a decode.
_CHILD = r"""
import json, resource, sys, time
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crash here is expected and reported; no core file
import llama_cpp
print(json.dumps({"system_info": llama_cpp.llama_print_system_info().decode(errors="replace")}), flush=True)
started = time.perf_counter()
llm = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, verbose=False)
out = llm.create_completion("The capital of France is", max_tokens=8, temperature=0.0)
print(json.dumps({"tokens": out["usage"]["completion_tokens"], "seconds": time.perf_counter() - started}), flush=True)
"""


class DecodeCheck(BaseModel):
    ok: bool
    detail: str
    system_info: str | None = None  # what the child's llama.cpp reported before decoding


def decode_in_child(model_path: Path, *, timeout_s: float = 120, python: str = sys.executable) -> DecodeCheck:
    """Load the model and decode a few tokens in a child process; a signal that kills it is a failed check."""
    started = time.perf_counter()
    try:
        out = subprocess.run(
            [python, "-c", _CHILD, str(model_path)], capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired:
        return DecodeCheck(ok=False, detail=f"no answer from a {timeout_s:.0f}s decode in a child process")
    reports: dict = {}
    for line in out.stdout.splitlines():
        if line.startswith("{"):
            reports.update(json.loads(line))
    info = reports.get("system_info")
    if out.returncode < 0:
        sig = signal.Signals(-out.returncode)
        what = f"killed by {sig.name} ({signal.strsignal(sig) or 'signal'})"
        cause = ": this llama.cpp build uses instructions this CPU lacks" if sig == signal.SIGILL else ""
        return DecodeCheck(ok=False, detail=f"decode {what}{cause}; {FIX}", system_info=info)
    if out.returncode != 0 or "tokens" not in reports:
        last = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        return DecodeCheck(ok=False, detail=f"decode failed in a child process: {last[:200]}", system_info=info)
    detail = f"{reports['tokens']} tokens, child process done in {time.perf_counter() - started:.1f}s"
    return DecodeCheck(ok=True, detail=detail, system_info=info)
