"""The installed llama.cpp build is the portable one: a native build with AMX (or AVX-512) code fails here.

Such a build dies with SIGILL on a VM that advertises AMX but traps on it (issue 13); the marker, llama.cpp's own
feature report and a disassembly of its CPU library each catch it, and `doctor` turns the crash into a failed check.
"""

import json
import shutil
import subprocess
import sys

import pytest
from deepsearch.agent.llm import llamacpp_build as build
from deepsearch.agent.llm.llamacpp_backend import packaged_model_path

llama_cpp = pytest.importorskip("llama_cpp")  # the [embedded] extra; `make install` always builds it


def test_the_installed_build_is_the_portable_one():
    marker = build.portable_marker()
    assert marker is not None, f"no {build.MARKER}: llama-cpp-python was not built by scripts/install_llama_cpp.sh"
    args = set(marker.split())
    assert "-DGGML_NATIVE=OFF" in args and "-DGGML_AVX512=OFF" in args
    assert {"-DGGML_AMX_TILE=OFF", "-DGGML_AMX_INT8=OFF", "-DGGML_AMX_BF16=OFF"} <= args


def test_llama_cpp_reports_no_amx_or_avx512():
    features = build.parse_system_info(llama_cpp.llama_print_system_info().decode())
    assert features.get("SSE3") == 1, features  # the report was read at all
    assert build.unsafe_features(features) == [], features


def test_a_native_amx_report_is_caught():
    native = "CPU : SSE3 = 1 | AVX2 = 1 | AVX_VNNI = 1 | AVX512 = 1 | AVX512_BF16 = 1 | AMX_INT8 = 1 | REPACK = 1 |"
    assert build.unsafe_features(build.parse_system_info(native)) == ["AVX512", "AVX512_BF16", "AMX_INT8"]


def test_the_cpu_library_holds_no_amx_or_avx512_code():
    assert shutil.which("objdump"), "objdump (binutils, needed to build llama.cpp anyway) is missing"
    libraries = build.cpu_libraries()
    assert libraries, "no libggml-cpu*.so in the installed llama_cpp/lib"
    for library in libraries:
        scan = build.scan_instructions(library)
        assert (scan.amx, scan.avx512) == (0, 0), f"{library.name}: {scan}"


def test_the_scan_sees_amx_and_avx512_code(tmp_path):
    """What a native build on an AMX machine contains, assembled by hand: the scan must find it."""
    source = tmp_path / "native.s"
    source.write_text(
        ".text\n tilezero %tmm0\n ldtilecfg (%rax)\n tdpbssd %tmm2, %tmm1, %tmm0\n tileloadd (%rax,%rcx,1), %tmm1\n"
        " vpaddd %zmm1, %zmm2, %zmm3\n vpaddd %ymm17, %ymm18, %ymm19\n vmovdqu32 %ymm0, %ymm1{%k1}\n"
    )
    subprocess.run(["as", str(source), "-o", str(tmp_path / "native.o")], check=True)
    scan = build.scan_instructions(tmp_path / "native.o")
    assert scan.amx == 4 and scan.avx512 >= 5, scan


@pytest.mark.slow
@pytest.mark.skipif(packaged_model_path() is None, reason="embedded model not installed")
def test_doctor_shows_the_build_and_decodes_in_a_child(cli_env):
    out = subprocess.run(
        [sys.executable, "-m", "deepsearch.agent", "doctor", "--json"],
        env=cli_env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    assert out.returncode == 0, out.stdout + out.stderr
    assert "-DGGML_NATIVE=OFF" in checks["embedded build"]["detail"]
    assert "AVX2=1" in checks["CPU features (build)"]["detail"] and "AMX=0" in checks["CPU features (build)"]["detail"]
    assert "avx512f" in checks["CPU flags (host)"]["detail"]
    assert checks["decode (child process)"]["ok"] and checks["guided JSON"]["ok"]


@pytest.mark.skipif(packaged_model_path() is None, reason="embedded model not installed")
def test_a_decode_killed_by_sigill_is_one_failed_check(cli_env, tmp_path):
    """A llama_cpp that dies like a native build on an AMX VM (SIGILL) fails doctor's check; doctor itself lives."""
    shim = tmp_path / "shim" / "llama_cpp"
    shim.mkdir(parents=True)
    (shim / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    env = {**cli_env, "PYTHONPATH": str(shim.parent)}
    out = subprocess.run(
        [sys.executable, "-m", "deepsearch.agent", "doctor", "--json"], env=env, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 1, out.stdout + out.stderr  # not -4: doctor survived
    assert "Traceback" not in out.stdout + out.stderr
    checks = {c["name"]: c for c in json.loads(out.stdout)}
    decode = checks["decode (child process)"]
    assert not decode["ok"] and "\n" not in decode["detail"]
    assert "SIGILL" in decode["detail"] and "make clean && make install" in decode["detail"]
    assert "model loads" not in checks  # the crashing build is never loaded in doctor's own process
