"""Split: kept records -> train/val/test by source document (``docmill.datasets.splits``), so no
document contributes to two splits."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from docmill.datasets.splits import assign_splits
from docmill.generation.models import GeneratedRecord, GenerationConfig


def split_by_source(records: Sequence[GeneratedRecord], cfg: GenerationConfig) -> tuple[dict[str, str], Counter[str]]:
    """(split of each source_uri, kept records per source)."""
    per_source = Counter(r.source.source_uri for r in records)
    return assign_splits(per_source, cfg.split.model_dump(), seed=cfg.seed), per_source
