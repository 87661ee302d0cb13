"""Datasets docmill writes, opened unchanged by the code of the places people train.

Hugging Face ``load_dataset(<folder>, <format>)``, TRL's DPOTrainer preparation (under two hash
seeds) and SFTTrainer, the brief's S3 loader (moto: fetch ``<name>.tar.gz``, extract,
``load_from_disk``) and LLaMA-Factory's own ``get_dataset``. The model is a tiny random Llama
built in the test (tests/support/tiny_lm.py): no download, seconds on a CPU.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import boto3
import pytest
import yaml
from moto import mock_aws

from docmill.datasets.formats import ALL_FORMATS
from docmill.generation import GenerationConfig, run_generation
from docmill_devtools.scripted import ScriptedLLM
from docmill.storage import LocalStore, S3Store
from tests.support.generation_doubles import FakeModel, HashingEmbedder, MemoryVectorStore, make_chunks

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "You answer questions about the handbook."


def _generate(out, formats=ALL_FORMATS, **kw):
    embedder = HashingEmbedder()
    chunks = make_chunks(4, 3, embedder=embedder)
    store = MemoryVectorStore()
    store.upsert(chunks)
    cfg = GenerationConfig(
        collection="handbook", dataset="hb", tenant="default", questions_per_chunk=1, formats=list(formats),
        system_prompt=SYSTEM, **kw,
    )
    return run_generation(chunks, cfg, llm=ScriptedLLM(FakeModel()), store=store, embedder=embedder, out=out).assembled


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ds")
    return folder, _generate(LocalStore(folder), license="cc-by-4.0")


def _start_consumer(*args: str, hash_seed: str = "0") -> subprocess.Popen:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": f"{REPO / 'layers'}{os.pathsep}{REPO}",
           "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    return subprocess.Popen([sys.executable, "-m", "tests.support.consumer_checks", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _result(proc: subprocess.Popen) -> dict:
    try:
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


def test_load_dataset_opens_every_format_by_its_config_with_the_splits_of_the_archives(dataset):
    from datasets import load_dataset, load_from_disk

    folder, a = dataset
    for fmt in ALL_FORMATS:
        # When a user loads the folder by config name
        dd = load_dataset(str(folder), fmt)
        # Then the splits are those of the archive (train/val/test, no "validation"), same rows
        assert {s: dd[s].num_rows for s in dd} == {s: n for s, n in a["counts"][fmt].items() if n}
        with tarfile.open(folder / f"hb-{fmt}.tar.gz") as tar:
            tar.extractall(folder / ".x", filter="data")
        archived = load_from_disk(str(folder / ".x" / f"hb-{fmt}"))
        assert set(dd) <= set(archived) and dd["train"].column_names == archived["train"].column_names


def test_the_card_header_has_license_language_size_and_one_config_per_format(dataset):
    folder, a = dataset
    card = (folder / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(card.split("---")[1])
    assert header["license"] == "cc-by-4.0" and header["language"] == ["en"]
    assert header["size_categories"] == ["n<1K"] and "question-answering" in header["task_categories"]
    assert [c["config_name"] for c in header["configs"]] == list(ALL_FORMATS)
    assert {f["split"] for f in header["configs"][0]["data_files"]} == {"train", "val", "test"}
    for fmt in ALL_FORMATS:
        assert f"`hb-{fmt}.tar.gz`" in card


def test_trl_dpo_prepares_the_preference_format_under_any_hash_seed(dataset):
    folder, a = dataset
    # TRL decides "conversational or not" from a key popped from a set: seed 0 checks
    # "rejected", seed 1 "prompt" (a string prompt failed one way or the other). Both at once.
    procs = [_start_consumer("dpo", str(folder), hash_seed=seed) for seed in ("0", "1")]
    for result in [_result(p) for p in procs]:
        assert result["rows"] == a["counts"]["preference"]["train"]
        # The chat template was applied: system and user turns in the prompt, the answer in chosen
        assert result["prompt"].startswith(f"<|system|>{SYSTEM}<|end|><|user|>")
        assert result["prompt"].endswith("<|assistant|>")
        assert result["chosen"].endswith("<|end|>") and "<|user|>" not in result["chosen"]


@pytest.mark.parametrize("fmt", ["completion", "text"])
def test_trl_sft_trainer_takes_two_steps_on_completion_and_text(dataset, fmt, tmp_path):
    from datasets import load_dataset
    from trl import SFTConfig, SFTTrainer

    from tests.support.tiny_lm import tiny_llama, tiny_tokenizer

    folder, _ = dataset
    train = load_dataset(str(folder), fmt, split="train")
    tok = tiny_tokenizer(v for r in train for k, v in r.items() if k != "id")
    args = SFTConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=4, report_to=[],
                     use_cpu=True, save_strategy="no", logging_steps=1, max_length=256)
    trainer = SFTTrainer(model=tiny_llama(tok), args=args, train_dataset=train, processing_class=tok)
    out = trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert out.global_step == 2 and len(losses) == 2 and all(0 < x < 20 for x in losses)


def _brief_loader(s3, name: str, workdir: Path):
    """The brief's loader, as it is specified: a dataset named ``<bucket>/<name>`` is the object
    ``<name>.tar.gz`` of that bucket, extracted into DIR and opened as ``DIR/<name>``."""
    from datasets import load_from_disk

    bucket, _, key_name = name.partition("/")
    workdir.mkdir(parents=True, exist_ok=True)
    archive = workdir / "download.tar.gz"
    s3.download_file(bucket, f"{key_name}.tar.gz", str(archive))
    target = workdir / "DIR"
    with tarfile.open(archive) as tar:
        tar.extractall(target, filter="data")
    return load_from_disk(str(target / key_name))


@pytest.mark.parametrize("prefix", ["", "research/v2"])
def test_the_briefs_s3_loader_opens_every_archive_by_the_printed_name(monkeypatch, tmp_path, prefix):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="datasets")
        # Given datasets written to s3://datasets/[prefix/]
        a = _generate(S3Store("datasets", prefix, client=s3), formats=("sft", "completion", "preference"))
        card = s3.get_object(Bucket="datasets", Key=f"{prefix}/README.md".lstrip("/"))["Body"].read().decode()
        for fmt in ("sft", "completion", "preference"):
            name = a["archives"][fmt]["loader_name"]
            # Then the name printed (summary and card) is bucket/[prefix/]<dataset>-<format> ...
            assert name == "/".join(p for p in ("datasets", prefix, f"hb-{fmt}") if p)
            assert f"`{name}`" in card
            # ... and the brief's loader opens it with every split
            dd = _brief_loader(s3, name, tmp_path / fmt)
            assert {s: dd[s].num_rows for s in dd} == a["counts"][fmt]


def test_llama_factory_loads_every_registered_entry_with_its_own_loader(dataset):
    if importlib.util.find_spec("llamafactory") is None:
        pytest.skip("llamafactory not installed (requirements/no-deps.txt: pip install --no-deps llamafactory)")
    folder, a = dataset
    info = json.loads((folder / "dataset_info.json").read_text())
    # Every trainable non-empty split is registered, nothing else
    assert set(info) == {f"hb-{f}{s}" for f in ("sft", "completion", "text", "dpo") for s in ("", "-val", "-test")}
    try:
        result = _result(_start_consumer("llamafactory", str(folder), "hb"))
    except AssertionError as exc:
        if "ModuleNotFoundError" in str(exc) or "ImportError" in str(exc):
            pytest.skip(f"llamafactory cannot import here: {str(exc).strip().splitlines()[-1]}")
        raise
    split_of = {"": "train", "-val": "val", "-test": "test"}
    for name, rows in result["loaded"].items():
        fmt, _, suffix = name.removeprefix("hb-").partition("-")
        assert rows == a["counts"][fmt][split_of[f"-{suffix}" if suffix else ""]], name
    # The system prompt reaches the model input for sft (columns.system) and dpo (system turn)
    assert SYSTEM in result["first"]["hb-sft"] and SYSTEM in result["first"]["hb-dpo"]
