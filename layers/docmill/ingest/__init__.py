"""Ingestion: discover sources, process them in parallel, embed, write outputs with lineage, index."""

from docmill.ingest.pipeline import Ingestor, IngestProgress
from docmill.ingest.sources import SourceRef, discover_sources

__all__ = ["Ingestor", "IngestProgress", "SourceRef", "discover_sources"]
