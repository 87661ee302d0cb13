"""docmill: documents in, a RAG-ready vector index and LLM fine-tuning datasets out."""

__version__ = "0.1.0"
