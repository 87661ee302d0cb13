"""Train a LoRA adapter with TRL on a docmill dataset, evaluating before and after.

Everything happens in a work folder (checkpoints, adapter, logs, card); a run that stops is
resumed from its last checkpoint with ``resume=True``. :func:`publish` then copies the result to
its destination with ``metrics.json`` last: a destination without it is not a finished model.
This is the code SageMaker runs too (``docmill.finetune.entry``).
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from docmill.errors import FinetuneError
from docmill.finetune.data import TrainingData
from docmill.finetune.evaluate import Evaluation, evaluate
from docmill.finetune.model import BaseModel, load_base
from docmill.storage import ObjectStore

METRICS_FILE = "metrics.json"  # written last: its presence marks a complete model folder


@dataclass
class FinetuneParams:
    method: str | None = None  # sft | dpo (default: from the format)
    format: str | None = None  # which of the dataset's formats (default: by method)
    base: str = "local"
    epochs: float = 1.0
    lora_r: int = 8
    lora_alpha: int | None = None  # default 2 * r
    lora_dropout: float = 0.05
    learning_rate: float | None = None  # default 2e-4 (sft) / 5e-5 (dpo)
    batch_size: int = 4
    gradient_accumulation: int = 1
    max_length: int = 512
    max_steps: int | None = None  # caps the epochs (smoke runs, tests)
    beta: float = 0.1  # DPO
    eval_samples: int = 16  # test questions the models answer for the support score
    max_new_tokens: int = 96
    seed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> FinetuneParams:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in values.items() if k in known})


@dataclass
class TrainingOutcome:
    metrics: dict[str, Any]
    work_dir: Path
    log_history: list[dict[str, Any]] = field(default_factory=list)


def _steps(n_train: int, params: FinetuneParams) -> int:
    per_epoch = math.ceil(n_train / (params.batch_size * params.gradient_accumulation))
    total = math.ceil(per_epoch * params.epochs)
    return min(total, params.max_steps) if params.max_steps else total


def _last_checkpoint(checkpoints: Path) -> str | None:
    if not checkpoints.is_dir():
        return None
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(checkpoints))


def _build_trainer(model: Any, tokenizer: Any, data: TrainingData, params: FinetuneParams, work_dir: Path, show: bool) -> Any:
    from datasets import Dataset
    from peft import LoraConfig

    method = data.method
    total = _steps(len(data.splits["train"]), params)
    every = max(1, total // 4)
    has_val = bool(data.splits["val"])
    common: dict[str, Any] = {
        "output_dir": str(work_dir / "checkpoints"),
        "num_train_epochs": params.epochs,
        "max_steps": params.max_steps or -1,
        "per_device_train_batch_size": params.batch_size,
        "per_device_eval_batch_size": params.batch_size,
        "gradient_accumulation_steps": params.gradient_accumulation,
        "learning_rate": params.learning_rate or (2e-4 if method == "sft" else 5e-5),
        "max_length": params.max_length,
        "logging_steps": max(1, min(every, 5)),
        "save_strategy": "steps",
        "save_steps": every,
        "save_total_limit": 2,
        "eval_strategy": "steps" if has_val else "no",
        "eval_steps": every if has_val else None,
        "use_cpu": True,
        "bf16": False,
        "fp16": False,
        "report_to": [],
        "seed": params.seed,
        "disable_tqdm": not show,
        "dataloader_num_workers": 0,
    }
    lora = LoraConfig(
        r=params.lora_r,
        lora_alpha=params.lora_alpha or 2 * params.lora_r,
        lora_dropout=params.lora_dropout,
        target_modules="all-linear",
        task_type="CAUSAL_LM",
    )
    train = Dataset.from_list(data.splits["train"])
    val = Dataset.from_list(data.splits["val"]) if has_val else None
    if method == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer(
            model=model,
            args=DPOConfig(beta=params.beta, **common),
            train_dataset=train,
            eval_dataset=val,
            processing_class=tokenizer,
            peft_config=lora,
        )
    from trl import SFTConfig, SFTTrainer

    text_only = data.format == "text"
    return SFTTrainer(
        model=model,
        args=SFTConfig(dataset_text_field="text", completion_only_loss=None if not text_only else False, **common),
        train_dataset=train,
        eval_dataset=val,
        processing_class=tokenizer,
        peft_config=lora,
    )


def run_training(
    data: TrainingData,
    base: BaseModel,
    params: FinetuneParams,
    work_dir: Path,
    *,
    cache_dir: Path | None = None,
    resume: bool = False,
    show_progress: bool = True,
    loader: Callable[..., tuple[Any, Any]] = load_base,
    say: Callable[[str], None] = lambda _msg: None,
) -> TrainingOutcome:
    """Evaluate the base model, train the LoRA adapter, evaluate the tuned one; write it all
    (adapter, card, plot, logs, metrics) into ``work_dir``."""
    import torch

    from docmill.finetune.card import write_card, write_loss_plot

    torch.manual_seed(params.seed)
    work_dir.mkdir(parents=True, exist_ok=True)
    model, tokenizer = loader(base, cache_dir=cache_dir)
    items = data.eval_items[: params.eval_samples]
    base_file = work_dir / "base_eval.json"
    if resume and base_file.is_file():
        base_eval = Evaluation(**json.loads(base_file.read_text(encoding="utf-8")))
    else:
        say(f"evaluating the base model on {len(data.splits['test'])} test records")
        base_eval = evaluate(
            model, tokenizer, data.splits["test"], items, max_length=params.max_length, max_new_tokens=params.max_new_tokens
        )
        base_file.write_text(json.dumps(asdict(base_eval), ensure_ascii=False), encoding="utf-8")

    trainer = _build_trainer(model, tokenizer, data, params, work_dir, show_progress)
    checkpoint = _last_checkpoint(work_dir / "checkpoints") if resume else None
    if checkpoint:
        say(f"resuming from {checkpoint}")
    say(f"training {data.method} LoRA r={params.lora_r} on {len(data.splits['train'])} records")
    try:
        result = trainer.train(resume_from_checkpoint=checkpoint)
    except (ValueError, RuntimeError) as error:
        raise FinetuneError(f"training failed: {error}") from error
    tuned = trainer.model
    say("evaluating the tuned model")
    tuned_eval = evaluate(
        tuned, tokenizer, data.splits["test"], items, max_length=params.max_length, max_new_tokens=params.max_new_tokens
    )

    adapter_dir = work_dir / "adapter"
    shutil.rmtree(adapter_dir, ignore_errors=True)
    tuned.save_pretrained(str(adapter_dir))
    tokenizer.save_pretrained(str(adapter_dir))
    history = [dict(entry) for entry in trainer.state.log_history]
    (work_dir / "trainer_log.json").write_text(json.dumps(history, indent=1), encoding="utf-8")
    with (work_dir / "answers.jsonl").open("w", encoding="utf-8") as fh:
        for b, t in zip(base_eval.answers, tuned_eval.answers, strict=False):
            fh.write(json.dumps({**b, "base_answer": b["answer"], "tuned_answer": t["answer"],
                                 "base_support": b["support"], "tuned_support": t["support"]}, ensure_ascii=False) + "\n")
    metrics: dict[str, Any] = {
        "base": base_eval.metrics(),
        "tuned": tuned_eval.metrics(),
        "train": {
            "steps": int(trainer.state.global_step),
            "epochs": float(trainer.state.epoch or 0.0),
            "train_loss": float(result.training_loss),
            "seconds": float(result.metrics.get("train_runtime", 0.0)),
            "learning_rate": float(trainer.args.learning_rate),
        },
        "dataset": {"location": data.location, "format": data.format, "counts": data.counts},
        "method": data.method,
        "base_model": base.name,
        "params": params.to_dict(),
    }
    write_loss_plot(history, work_dir / "loss.png", base_loss=base_eval.test_loss, tuned_loss=tuned_eval.test_loss)
    write_card(work_dir / "README.md", metrics, tuned_eval.answers, base_eval.answers)
    (work_dir / METRICS_FILE).write_text(json.dumps(metrics, indent=2), encoding="utf-8")
    return TrainingOutcome(metrics=metrics, work_dir=work_dir, log_history=history)


PUBLISHED = ("README.md", "loss.png", "trainer_log.json", "answers.jsonl")


def publish(work_dir: Path, out: ObjectStore) -> dict[str, str]:
    """Copy the adapter and its card to ``out``; ``metrics.json`` goes last (the completion
    marker). On a failure the partial copy is removed. Returns name -> URI."""
    if not (work_dir / METRICS_FILE).is_file():
        raise FinetuneError(f"{work_dir} holds no finished training ({METRICS_FILE} missing)")
    if out.exists(METRICS_FILE):  # an older model here is no longer complete once we start
        out.delete(METRICS_FILE)
    written: list[str] = []

    def put(key: str, data: bytes) -> None:
        out.write_bytes(key, data)
        written.append(key)

    try:
        for path in sorted((work_dir / "adapter").rglob("*")):
            if path.is_file():
                put(f"adapter/{path.relative_to(work_dir / 'adapter').as_posix()}", path.read_bytes())
        for name in PUBLISHED:
            if (work_dir / name).is_file():
                put(name, (work_dir / name).read_bytes())
        put(METRICS_FILE, (work_dir / METRICS_FILE).read_bytes())
    except Exception:
        for key in written:
            out.delete(key)
        raise
    return {
        "adapter": out.uri("adapter"),
        "card": out.uri("README.md"),
        "plot": out.uri("loss.png"),
        "metrics": out.uri(METRICS_FILE),
    }
