from docmill.vectorstores.base import SearchFilter, SearchHit, UpsertResult, VectorStore

__all__ = ["VectorStore", "SearchFilter", "SearchHit", "UpsertResult"]
