"""Real TRL + PEFT on the datasets docmill writes: a tiny random Llama, CPU, 2 steps each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from docmill.errors import FinetuneError
from docmill.finetune.jobs import JobStore
from docmill.finetune.service import LocalFinetuner, collection_lookup, open_dataset
from docmill.finetune.train import METRICS_FILE, FinetuneParams, run_training
from docmill.finetune.model import resolve_base
from docmill.storage import open_store
from tests.support.finetune_data import write_collection_chunks, write_docmill_dataset
from tests.support.tiny_lm import build_tiny_llama

REPO = Path(__file__).resolve().parents[2]
FAST = {"max_steps": 2, "batch_size": 2, "eval_samples": 1, "max_new_tokens": 4, "max_length": 128}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "tiny-llama")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Provenance as docmill writes it: context chunk ids; the texts are in the tenant's collection
    return write_docmill_dataset(tmp_path_factory.mktemp("ds"), inline_context=False, tenant="acme")


def _service(root: Path) -> LocalFinetuner:
    home = write_collection_chunks(root / "home", tenant="acme")
    return LocalFinetuner(JobStore(open_store(str(root / "jobs"))), models_root=str(root / "models"),
                          work_root=root / "work", chunks=collection_lookup(None, home))


def _check_metrics(metrics: dict) -> None:
    for which in ("base", "tuned"):
        assert metrics[which]["test_loss"] > 0
        assert metrics[which]["answered"] == 1  # the test question had its context: support is scored
        assert 0.0 <= metrics[which]["support"] <= 1.0


def test_given_preference_data_when_tuned_with_dpo_then_two_steps_train_and_publish(
    tiny: Path, dataset: Path, tmp_path: Path
) -> None:
    # (the sharegpt "dpo" and HH "rlhf" formats map to the same TRL rows: tests/unit/test_finetune_data.py)
    service = _service(tmp_path)
    record = service.start("acme", str(dataset), FinetuneParams(base=str(tiny), format="preference", **FAST))
    assert (record.status, record.params["method"]) == ("completed", "dpo")
    assert record.metrics["train"]["steps"] == 2
    _check_metrics(record.metrics)
    adapter = Path(record.artefacts["adapter"])
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()
    assert not (tmp_path / "work" / "acme" / record.job_id).exists()  # checkpoints gone once complete


def test_given_a_tuned_adapter_when_loaded_with_peft_then_it_differs_from_base(tiny: Path, dataset: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    record = _service(tmp_path).start(
        "acme", str(dataset / "acme-completion"), FinetuneParams(base=str(tiny), learning_rate=0.05, **FAST)
    )
    assert record.dataset["format"] == "completion" and record.params["method"] == "sft"
    _check_metrics(record.metrics)
    assert record.metrics["tuned"]["test_loss"] != record.metrics["base"]["test_loss"]
    base = AutoModelForCausalLM.from_pretrained(tiny)
    ids = torch.tensor([[1, 5, 7, 9]])
    before = base(input_ids=ids).logits
    tuned = PeftModel.from_pretrained(base, record.artefacts["adapter"])
    assert not torch.allclose(before, tuned(input_ids=ids).logits)


def test_given_an_interrupted_run_when_resumed_then_it_continues_from_the_checkpoint(
    tiny: Path, dataset: Path, tmp_path: Path
) -> None:
    data = open_dataset(str(dataset), FinetuneParams(format="sft"))
    base = resolve_base(str(tiny))
    work = tmp_path / "work"
    first = run_training(data, base, FinetuneParams(**{**FAST, "max_steps": 1}), work, show_progress=False)
    state = work / "checkpoints" / "checkpoint-1" / "trainer_state.json"
    assert first.metrics["train"]["steps"] == 1 and state.is_file()
    written = state.stat().st_mtime_ns
    # When the job is resumed with its full length
    second = run_training(data, base, FinetuneParams(**FAST), work, resume=True, show_progress=False)
    # Then it continued after step 1 (checkpoint-1 untouched, step 2 saved), reusing the base evaluation
    assert second.metrics["train"]["steps"] == 2 and (work / "checkpoints" / "checkpoint-2").is_dir()
    assert state.stat().st_mtime_ns == written
    assert second.metrics["base"] == first.metrics["base"]


def test_given_a_failing_run_then_the_job_is_failed_and_nothing_looks_complete(tiny: Path, dataset: Path, tmp_path: Path) -> None:
    def broken(*_args, **_kwargs):
        raise FinetuneError("training failed: out of memory")

    service = _service(tmp_path)
    service.trainer = broken
    with pytest.raises(FinetuneError):
        service.start("acme", str(dataset), FinetuneParams(base=str(tiny), **FAST))
    [record] = service.jobs.list("acme")
    assert record.status == "failed" and "out of memory" in record.error
    assert not Path(record.artefacts["out"], METRICS_FILE).exists()


def _cli(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'layers'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "DOCMILL_HOME": str(home), "DOCMILL_TENANT": "acme"}
    return subprocess.run([sys.executable, "-m", "docmill", *args], capture_output=True, text=True, env=env,
                          cwd=home.parent, timeout=300)


def test_given_the_cli_when_finetune_runs_then_it_prints_the_issue_json_and_jobs_lists_it(
    tiny: Path, dataset: Path, tmp_path: Path
) -> None:
    home = write_collection_chunks(tmp_path / "home", tenant="acme")  # the workspace the dataset came from
    run = _cli("finetune", "--dataset", str(dataset), "--format", "sft", "--base", str(tiny), "--max-steps", "2",
               "--batch-size", "2", "--eval-samples", "1", "--max-length", "128", "--lora-r", "4", "--json", home=home)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert set(result) >= {"job_id", "status", "adapter", "metrics"}
    assert result["status"] == "completed" and result["params"]["lora_r"] == 4
    assert set(result["metrics"]["base"]) >= {"test_loss", "support"} and set(result["metrics"]["tuned"]) >= {"test_loss", "support"}
    # The CLI looks the test questions' contexts up in the workspace's collection
    assert result["metrics"]["tuned"]["answered"] == 1 and result["metrics"]["tuned"]["support"] is not None
    out = Path(result["artefacts"]["metrics"]).parent
    assert out == home / "models" / "acme" / result["job_id"]
    card = (out / "README.md").read_text()
    assert "| tuned |" in card and "loss.png" in card and (out / "loss.png").stat().st_size > 1000
    assert "it/s" in run.stderr or "s/it" in run.stderr  # the progress bar
    listed = _cli("jobs", "--json", home=home)
    assert listed.returncode == 0, listed.stderr
    [job] = json.loads(listed.stdout)["jobs"]
    assert job["job_id"] == result["job_id"] and job["metrics"] == result["metrics"]
    # Another tenant sees nothing; bad input is a clear error (exit 2) and creates no job
    from typer.testing import CliRunner

    from docmill.cli import app

    runner = CliRunner()
    env = {"DOCMILL_HOME": str(home), "DOCMILL_TENANT": "acme"}
    other = runner.invoke(app, ["jobs", "--json", "--tenant", "globex"], env=env)
    assert json.loads(other.stdout) == {"jobs": []}
    bad = runner.invoke(app, ["finetune", "--dataset", str(dataset), "--format", "preference", "--method", "sft", "--json"], env=env)
    assert bad.exit_code == 2 and json.loads(bad.stdout)["error"] == "DatasetInvalid"
    missing = runner.invoke(app, ["finetune", "--dataset", str(dataset), "--base", str(tmp_path / "nope"), "--json"], env=env)
    assert missing.exit_code == 1 and "base model" in json.loads(missing.stdout)["message"]
    assert len(json.loads(runner.invoke(app, ["jobs", "--json"], env=env).stdout)["jobs"]) == 1
