"""Given a CPU's instruction-set flags and the process environment, When the CTranslate2 embedder
opens its models, Then it asks for CTranslate2's AVX-512 kernels only where the CPU has all of
what they need, and keeps an ISA the user chose; a fresh process really runs on the chosen ISA."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.embeddings.ct2 import AVX512_FLAGS, ISA_VARIABLE, cpu_flags, select_cpu_isa

ZEN4 = "fpu vme sse4_2 avx avx2 fma avx512f avx512dq avx512ifma avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni"
ZEN3 = "fpu vme sse4_2 avx avx2 fma bmi2 sha_ni"


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(
        f"processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n"
    )
    return path


def test_flags_are_read_from_the_kernels_cpuinfo(tmp_path):
    flags = cpu_flags(_cpuinfo(tmp_path, ZEN4))
    assert flags >= AVX512_FLAGS
    assert "avx2" in flags and "vendor_id" not in flags


def test_no_cpuinfo_means_no_flags(tmp_path):
    assert cpu_flags(tmp_path / "missing") == frozenset()
    (tmp_path / "empty").write_text("processor\t: 0\n")
    assert cpu_flags(tmp_path / "empty") == frozenset()


def test_avx512_is_asked_for_where_the_cpu_has_it(tmp_path):
    environ: dict[str, str] = {}
    assert select_cpu_isa(environ, cpu_flags(_cpuinfo(tmp_path, ZEN4))) == "AVX512"
    assert environ == {ISA_VARIABLE: "AVX512"}


def test_nothing_is_asked_for_on_a_cpu_without_avx512(tmp_path):
    environ: dict[str, str] = {}
    assert select_cpu_isa(environ, cpu_flags(_cpuinfo(tmp_path, ZEN3))) is None
    assert environ == {}


@pytest.mark.parametrize("missing", sorted(AVX512_FLAGS))
def test_a_partial_avx512_set_is_not_enough(missing):
    environ: dict[str, str] = {}
    assert select_cpu_isa(environ, AVX512_FLAGS - {missing} | {"avx2"}) is None
    assert environ == {}


def test_the_users_choice_wins():
    environ = {ISA_VARIABLE: "AVX2"}
    assert select_cpu_isa(environ, AVX512_FLAGS) == "AVX2"
    assert environ == {ISA_VARIABLE: "AVX2"}


# CTranslate2 logs the ISA it selected when its first model opens (CT2_VERBOSE=1).
PROBE = r"""
import sys
from docmill.config import Settings
from docmill.embeddings import get_embedder
embedder = get_embedder("minilm", runtime="ctranslate2-int8", cache_dir=Settings().model_cache, threads=1)
vector = embedder.embed_documents([sys.argv[1]])[0]
print(",".join(f"{x:.6f}" for x in vector))
"""
TEXT = "Staff may book the large meeting room for up to four hours; longer bookings need approval from facilities."


def _probe(isa: str | None) -> tuple[str, list[float]]:
    env = {k: v for k, v in os.environ.items() if k != ISA_VARIABLE}
    env["CT2_VERBOSE"] = "1"
    if isa:
        env[ISA_VARIABLE] = isa
    done = subprocess.run(
        [sys.executable, "-c", PROBE, TEXT], env=env, capture_output=True, text=True, timeout=300, check=True
    )
    selected = [line.rsplit(":", 1)[1].strip() for line in done.stderr.splitlines() if "Selected ISA" in line]
    return selected[0], [float(x) for x in done.stdout.strip().splitlines()[-1].split(",")]


@pytest.mark.slow
@pytest.mark.skipif(not cpu_flags() >= AVX512_FLAGS, reason="this CPU lacks AVX-512")
def test_a_fresh_process_runs_ctranslate2_on_avx512_with_the_same_vectors():
    # Given an AVX-512 CPU and no ISA in the environment
    default_isa, default_vector = _probe(None)
    # When the user pins AVX2 instead
    pinned_isa, pinned_vector = _probe("AVX2")
    # Then docmill's default ran CTranslate2's AVX-512 kernels, the pin held, and the vectors agree
    assert default_isa == "AVX512"
    assert pinned_isa == "AVX2"
    assert sum(a * b for a, b in zip(default_vector, pinned_vector, strict=True)) > 0.999
