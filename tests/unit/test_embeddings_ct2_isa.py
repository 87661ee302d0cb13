"""Given a CPU's instruction-set flags and the process environment, When the CTranslate2 embedder
opens its models, Then it asks for CTranslate2's AVX-512 kernels only where the CPU has all of
what they need, and keeps an ISA the user chose; a fresh process really runs on the chosen ISA."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.embeddings import ct2
from docmill.embeddings.ct2 import AVX512_FLAGS, ISA_VARIABLE, CTranslate2Embedder, cpu_flags, select_cpu_isa
from docmill.embeddings.export import packaged_model_dir
from docmill.errors import EmbeddingError

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


class _BuildWithoutDispatch:
    """A test double of the ctranslate2 module as a build without CPU dispatch behaves: it refuses
    any forced ISA when a model opens, and records the ISA each open saw."""

    def __init__(self) -> None:
        self.seen: list[str | None] = []

    def Encoder(self, path: str, **kwargs: object) -> object:  # noqa: N802 - the module's name
        self.seen.append(os.environ.get(ISA_VARIABLE))
        if ISA_VARIABLE in os.environ:
            raise ValueError(f"This CTranslate2 binary was not compiled with {os.environ[ISA_VARIABLE]} support")
        return object()


@pytest.fixture
def no_isa_set(monkeypatch):
    monkeypatch.setenv(ISA_VARIABLE, "placeholder")  # so teardown restores what was there
    monkeypatch.delenv(ISA_VARIABLE)
    monkeypatch.setattr(ct2, "cpu_flags", lambda: AVX512_FLAGS)
    monkeypatch.setattr(ct2, "_REFUSED_ISAS", set())


def _embedder_over(runtime: _BuildWithoutDispatch, tmp_path: Path) -> CTranslate2Embedder:
    embedder = CTranslate2Embedder(tmp_path / "int8", tmp_path / "float32", packaged_model_dir(), threads=1)
    embedder._ct2 = runtime
    return embedder


def test_a_build_that_refuses_avx512_falls_back_to_its_own_choice(no_isa_set, tmp_path):
    # Given an AVX-512 CPU, no ISA chosen, and a CTranslate2 build that cannot force one
    runtime = _BuildWithoutDispatch()
    # When the int8 and float32 models open
    embedder = _embedder_over(runtime, tmp_path)
    embedder._encoder("int8")
    embedder._encoder("float32")
    # Then AVX-512 was asked for once, refused, and every later open ran on the build's own choice
    assert runtime.seen == ["AVX512", None, None]
    assert ISA_VARIABLE not in os.environ


def test_a_missing_model_is_not_taken_for_a_refused_isa(no_isa_set, tmp_path):
    class Missing(_BuildWithoutDispatch):
        def Encoder(self, path: str, **kwargs: object) -> object:  # noqa: N802
            self.seen.append(os.environ.get(ISA_VARIABLE))
            raise RuntimeError(f"Unable to open file 'model.bin' in model '{path}'")

    runtime = Missing()
    with pytest.raises(EmbeddingError, match="model.bin"):
        _embedder_over(runtime, tmp_path)._encoder("int8")
    assert runtime.seen == ["AVX512"]
    assert os.environ[ISA_VARIABLE] == "AVX512" and not ct2._REFUSED_ISAS


def test_a_users_isa_the_build_refuses_is_an_error_not_a_silent_fallback(no_isa_set, tmp_path, monkeypatch):
    monkeypatch.setenv(ISA_VARIABLE, "AVX512")
    runtime = _BuildWithoutDispatch()
    with pytest.raises(EmbeddingError, match="not compiled with AVX512"):
        _embedder_over(runtime, tmp_path)._encoder("int8")
    assert runtime.seen == ["AVX512"]
    assert os.environ[ISA_VARIABLE] == "AVX512"


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
