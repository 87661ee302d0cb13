"""The model card (README.md) and the training/evaluation loss plot of a fine-tune."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_loss_plot(
    history: Sequence[dict[str, Any]], target: Path, *, base_loss: float | None, tuned_loss: float | None
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [(h["step"], h["loss"]) for h in history if "loss" in h and "step" in h]
    val = [(h["step"], h["eval_loss"]) for h in history if "eval_loss" in h and "step" in h]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    if train:
        ax.plot(*zip(*train, strict=True), marker=".", label="training loss")
    if val:
        ax.plot(*zip(*val, strict=True), marker="o", label="validation loss")
    if base_loss is not None:
        ax.axhline(base_loss, color="grey", linestyle="--", label=f"test NLL, base {base_loss:.3f}")
    if tuned_loss is not None:
        ax.axhline(tuned_loss, color="green", linestyle=":", label=f"test NLL, tuned {tuned_loss:.3f}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target)
    plt.close(fig)


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else ("-" if value is None else str(value))


def write_card(
    target: Path, metrics: dict[str, Any], tuned_answers: Sequence[dict[str, Any]], base_answers: Sequence[dict[str, Any]]
) -> None:
    base, tuned, train, data, params = (
        metrics["base"], metrics["tuned"], metrics["train"], metrics["dataset"], metrics["params"],
    )
    counts = data["counts"]
    lines = [
        "---",
        "library_name: peft",
        f"base_model: {metrics['base_model']!r}",
        f"tags: [docmill, trl, lora, {metrics['method']}]",
        "---",
        "",
        f"# LoRA adapter ({metrics['method'].upper()}) trained by docmill",
        "",
        f"Base model: {metrics['base_model']}. Dataset: `{data['location']}` ({data['format']}; "
        f"train {counts.get('train', 0)}, val {counts.get('val', 0)}, test {counts.get('test', 0)} records). "
        "docmill splits by source document, so the test records come from documents the training never saw.",
        "",
        "## Evaluation on the test split",
        "",
        "| | test loss (NLL/token) | perplexity | support of own answers |",
        "|---|---|---|---|",
        f"| base | {_fmt(base['test_loss'])} | {_fmt(base['perplexity'])} | {_fmt(base['support'])} |",
        f"| tuned | {_fmt(tuned['test_loss'])} | {_fmt(tuned['perplexity'])} | {_fmt(tuned['support'])} |",
        "",
        "Test loss: mean negative log-likelihood of the dataset's answers given their questions. Support: "
        f"how much of the model's own greedy answers ({tuned['answered']} test questions) the source context "
        "the question was generated from backs, sentence by sentence (content words and word pairs found in "
        "the context; the dataset-quality signal generation curates by).",
        "",
        "![training and evaluation loss](loss.png)",
        "",
        "## Training",
        "",
        f"{train['steps']} steps, {train['epochs']:.2f} epochs, final training loss {_fmt(train['train_loss'])}, "
        f"{train['seconds']:.0f} s. LoRA r={params['lora_r']}, alpha={params['lora_alpha'] or 2 * params['lora_r']}, "
        f"dropout={params['lora_dropout']}, all linear layers; batch {params['batch_size']} x "
        f"{params['gradient_accumulation']}, max length {params['max_length']}, seed {params['seed']}.",
        "",
        "## Use",
        "",
        "```python",
        "from peft import AutoPeftModelForCausalLM",
        "model = AutoPeftModelForCausalLM.from_pretrained('adapter')  # this folder's adapter/",
        "```",
        "",
        "Or `docmill serve` and `POST /api/v1/chat` with `\"model\": \"<job_id>\"`.",
    ]
    if tuned_answers:
        lines += ["", "## Sample answers (test questions)", ""]
        for b, t in list(zip(base_answers, tuned_answers, strict=False))[:3]:
            lines += [
                f"**Q:** {t['question']}",
                "",
                f"- base ({_fmt(b['support'])}): {b['answer'][:300]}",
                f"- tuned ({_fmt(t['support'])}): {t['answer'][:300]}",
                f"- reference: {t['reference'][:300]}",
                "",
            ]
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
