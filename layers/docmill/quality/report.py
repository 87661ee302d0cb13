"""The quality report of a generated dataset: metrics, a table, and plots.

Computed from ``provenance.jsonl`` (one line per kept record, with its ``quality`` signals),
so it works on any dataset folder or S3 prefix docmill wrote, after the fact
(``docmill evaluate``) or at the end of ``generate`` (then the table and the plots go into
the dataset card). Metrics:

- ``records`` / ``pairs``: kept records and preference pairs;
- ``hit_at_k`` / ``mrr``: retrieval verification of the questions (source chunk in the top k
  context / mean reciprocal rank of the source chunk in the verification search);
- ``support``: chosen answers' support by their context (mean, p10, p50), and of rejected;
- ``pair_support_gap``: mean chosen - rejected support over the pairs;
- ``degenerate``: kept records whose chosen answer, or pair whose rejected answer, loops;
- ``source_share``: mean share of chosen answers' content words found in the source chunk;
- ``relevance``, ``question_sources``, ``question_types``, ``answer_modes``, answer lengths.
"""

from __future__ import annotations

import io
import statistics
from collections import Counter
from collections.abc import Sequence
from typing import Any

from docmill.errors import ConfigurationError
from docmill.quality.signals import percentile, reciprocal_rank
from docmill.storage import ObjectStore

PLOTS = ("support", "retrieval_rank", "answer_lengths", "question_types")


def _mean(values: Sequence[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def _q(row: dict[str, Any]) -> dict[str, Any]:
    return row.get("quality") or {}


def _is_pair(row: dict[str, Any]) -> bool:
    if "pair" in row:
        return bool(row["pair"])
    return any(f in ("dpo", "rlhf", "preference") for f in row.get("formats", []))


def quality_metrics(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Metrics over provenance rows (see the module docstring for the keys)."""
    measured = [r for r in rows if _q(r)]
    pairs = [r for r in rows if _is_pair(r)]
    measured_pairs = [r for r in pairs if _q(r)]
    support_c = [float(_q(r)["support_chosen"]) for r in measured]
    support_r = [float(_q(r)["support_rejected"]) for r in measured]
    ranks = [r.get("source_rank") for r in rows]
    top_k = [bool(r.get("source_in_top_k")) for r in rows]
    degenerate = sum(1 for r in measured if _q(r).get("degenerate_chosen")) + sum(
        1 for r in measured_pairs if _q(r).get("degenerate_rejected")
    )
    k = max((len(r.get("context_chunk_ids") or []) for r in rows), default=0)
    return {
        "records": len(rows),
        "pairs": len(pairs),
        "measured": len(measured),
        "hit_at_k": round(sum(top_k) / len(top_k), 4) if top_k else None,
        "k": k,
        "mrr": round(statistics.fmean(reciprocal_rank(r) for r in ranks), 4) if ranks else None,
        "support": {"mean": _mean(support_c), "p10": percentile(support_c, 0.1), "p50": percentile(support_c, 0.5)},
        "support_rejected": {"mean": _mean(support_r), "p90": percentile(support_r, 0.9)},
        "pair_support_gap": _mean([float(_q(r)["support_gap"]) for r in measured_pairs]),
        "degenerate": degenerate,
        "source_share": _mean([float(_q(r).get("source_share", 0.0)) for r in measured]),
        "relevance": _mean([float(_q(r).get("relevance", 0.0)) for r in measured]),
        "answer_chars": {
            "chosen_mean": _mean([float(_q(r).get("answer_chars", 0)) for r in measured]),
            "rejected_mean": _mean([float(_q(r).get("rejected_chars", 0)) for r in measured]),
        },
        "question_types": dict(sorted(Counter(r.get("question_type", "?") for r in rows).items())),
        "question_sources": dict(sorted(Counter(_q(r).get("question_source", "model") for r in measured).items())),
        "answer_modes": dict(sorted(Counter(_q(r).get("answer_mode", "generative") for r in measured).items())),
        "judged": sum(1 for r in rows if (r.get("judge") or {}).get("chosen")),
    }


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    if isinstance(value, dict):
        return ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()) or "-"
    return str(value)


def table_rows(m: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(metric, value, what it means) rows shared by the terminal and the card."""
    return [
        ("records", _fmt(m["records"]), "kept records (sft, completion, text)"),
        ("pairs", _fmt(m["pairs"]), "preference pairs (dpo, rlhf, preference)"),
        (f"hit@{m.get('k') or 'k'}", _fmt(m["hit_at_k"]), "questions whose search finds their source chunk in the context"),
        ("MRR", _fmt(m["mrr"]), "mean reciprocal rank of the source chunk"),
        ("support mean", _fmt(m["support"]["mean"]), "chosen answers backed by their context (0-1)"),
        ("support p10", _fmt(m["support"]["p10"]), "the weakest tenth of chosen answers"),
        ("rejected support", _fmt(m["support_rejected"]["mean"]), "rejected answers backed by the same context"),
        ("pair support gap", _fmt(m["pair_support_gap"]), "chosen - rejected support over the pairs"),
        ("source share", _fmt(m["source_share"]), "chosen content words found in the source chunk"),
        ("relevance", _fmt(m["relevance"]), "chosen answers about what the question asks (0-1)"),
        ("degenerate", _fmt(m["degenerate"]), "looping answers kept (should be 0)"),
        ("question sources", _fmt(m["question_sources"]), "model-written or template questions"),
        ("answer modes", _fmt(m["answer_modes"]), "generative (model) or extractive (context sentences)"),
        ("judged", _fmt(m["judged"]), "records the LLM judge scored"),
    ]


def render_table(m: dict[str, Any]) -> str:
    rows = table_rows(m)
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"{'metric':<{w0}}  {'value':>{w1}}  meaning", f"{'-' * w0}  {'-' * w1}  {'-' * 7}"]
    lines += [f"{a:<{w0}}  {b:>{w1}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def markdown_section(m: dict[str, Any], plots: Sequence[str] = ()) -> str:
    """The card's quality section: the table and the plots (paths relative to the card)."""
    lines = [
        "## Quality (measured without an LLM)",
        "",
        (
            "Computed by `docmill evaluate` from `provenance.jsonl`: retrieval verification of each question, "
            "sentence-level support of each answer by its context (embedding similarity and lexical overlap), "
            "relevance, and looping text. See each record's `quality` in provenance."
        ),
        "",
        "| metric | value | meaning |",
        "|---|---:|---|",
        *[f"| {a} | {b} | {c} |" for a, b, c in table_rows(m)],
        "",
    ]
    for path in plots:
        name = path.rsplit("/", 1)[-1].removesuffix(".png").replace("_", " ")
        lines += [f"![{name}]({path})", ""]
    return "\n".join(lines)


def render_plots(rows: Sequence[dict[str, Any]], out: ObjectStore, prefix: str = "quality") -> list[str]:
    """PNG plots (support, retrieval rank, answer lengths, question types) -> ``out``; returns
    their keys. Matplotlib's Agg backend: no display needed."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    from matplotlib.figure import Figure

    measured = [r for r in rows if _q(r)]
    keys: list[str] = []

    def save(fig: Figure, name: str) -> None:
        buf = io.BytesIO()
        fig.tight_layout()
        fig.savefig(buf, format="png", dpi=80)
        key = f"{prefix}/{name}.png"
        out.write_bytes(key, buf.getvalue(), content_type="image/png")
        keys.append(key)

    bins = [i / 10 for i in range(11)]
    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot()
    ax.hist([[_q(r)["support_chosen"] for r in measured], [_q(r)["support_rejected"] for r in measured]],
            bins=bins, label=["chosen", "rejected"], color=["#2a7", "#c44"])
    ax.set_xlabel("support by context (0-1)")
    ax.set_ylabel("records")
    ax.legend()
    save(fig, "support")

    depth = max([r.get("source_rank") or 0 for r in rows] + [len(r.get("context_chunk_ids") or []) for r in rows] + [1])
    counts = Counter(r.get("source_rank") for r in rows)
    labels = [str(i) for i in range(1, depth + 1)] + ["miss"]
    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot()
    ax.bar(labels, [counts.get(i, 0) for i in range(1, depth + 1)] + [counts.get(None, 0)], color="#37a")
    ax.set_xlabel("rank of the source chunk when the question is searched")
    ax.set_ylabel("questions")
    save(fig, "retrieval_rank")

    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot()
    ax.hist([[_q(r).get("answer_chars", 0) for r in measured], [_q(r).get("rejected_chars", 0) for r in measured]],
            bins=12, label=["chosen", "rejected"], color=["#2a7", "#c44"])
    ax.set_xlabel("answer length (characters)")
    ax.set_ylabel("records")
    ax.legend()
    save(fig, "answer_lengths")

    types = sorted({r.get("question_type", "?") for r in rows})
    fig = Figure(figsize=(5, 3))
    ax = fig.add_subplot()
    bottom = [0] * len(types)
    for source, color in (("model", "#37a"), ("template", "#aa3")):
        vals = [sum(1 for r in rows if r.get("question_type") == t and _q(r).get("question_source", "model") == source) for t in types]
        ax.bar(types, vals, bottom=bottom, label=f"{source} questions", color=color)
        bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
    ax.set_ylabel("records")
    ax.legend()
    save(fig, "question_types")
    return keys


def read_provenance(store: ObjectStore) -> list[dict[str, Any]]:
    if not store.exists("provenance.jsonl"):
        raise ConfigurationError(f"no provenance.jsonl at {store.uri()}: not a docmill dataset folder")
    return store.read_jsonl("provenance.jsonl")


def evaluate(store: ObjectStore, *, plots: bool = False) -> dict[str, Any]:
    """Metrics of the dataset in ``store`` (and, with ``plots``, its PNG plots written there)."""
    rows = read_provenance(store)
    metrics = quality_metrics(rows)
    if plots:
        metrics["plots"] = [store.uri(k) for k in render_plots(rows, store)]
    return metrics


__all__ = ["PLOTS", "evaluate", "markdown_section", "quality_metrics", "read_provenance", "render_plots", "render_table"]
