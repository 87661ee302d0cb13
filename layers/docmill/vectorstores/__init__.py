from docmill.vectorstores.base import SearchFilter, SearchHit, UpsertResult, VectorStore
from docmill.vectorstores.factory import open_vector_store

__all__ = ["VectorStore", "SearchFilter", "SearchHit", "UpsertResult", "open_vector_store"]
