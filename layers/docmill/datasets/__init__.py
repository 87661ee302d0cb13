"""Dataset formats, splits by source document, and writers (JSONL, HF DatasetDict tarballs,
dataset_info.json, card). Heavy imports (``datasets``) happen only when writing."""

from docmill.datasets.formats import ALL_FORMATS, PREFERENCE_FORMATS, SPLITS, DatasetFormat, Example, convert
from docmill.datasets.splits import assign_splits

__all__ = ["ALL_FORMATS", "PREFERENCE_FORMATS", "SPLITS", "DatasetFormat", "Example", "convert", "assign_splits"]
