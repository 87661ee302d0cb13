"""Imported once by the ingest workers' fork server (``docmill.ingest.workers``): what every
partition needs, so each worker forked from it starts with Unstructured already loaded."""

import contextlib

from docmill.documents.unstructured_setup import configure_unstructured

configure_unstructured()

import unstructured.partition.auto  # noqa: E402, F401 - the import is the point

import docmill.ingest.pipeline  # noqa: E402, F401 - where the worker functions live
# Workers embed too (docmill.ingest.pipeline._embed_worker); an install may lack the runtime.
# Imports only: an encoder or session (and its thread pool) is opened in each worker, after the fork.
with contextlib.suppress(ImportError):
    import ctranslate2  # noqa: F401
with contextlib.suppress(ImportError):
    import onnxruntime  # noqa: F401

import gc  # noqa: E402

# Workers are forked from this process: frozen objects are skipped by their collector, so its
# passes do not write to (and copy) the pages they share with the fork server.
gc.freeze()
