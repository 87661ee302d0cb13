"""Typed domain errors.

Every error has a stable ``code`` that workflow Retry/Catch rules and per-file reports match on,
and a human-readable message. Per-document errors carry a short ``kind`` that becomes the first
word of the reason shown to users ("encrypted: ...", "corrupt: ...").
"""

from __future__ import annotations


class DocmillError(Exception):
    """Base of every error docmill raises on purpose."""

    code = "DocmillError"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(DocmillError):
    code = "ConfigurationError"


class StorageError(DocmillError):
    code = "StorageError"


class EmbeddingError(DocmillError):
    code = "EmbeddingError"


class VectorStoreError(DocmillError):
    code = "VectorStoreError"


class VectorStoreRequestError(VectorStoreError):
    """The search service refused a request (auth, bad request...): not worth retrying."""

    code = "VectorStoreRequestError"

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class TransientError(DocmillError):
    """Worth retrying: throttling, timeouts, 5xx. Workflow Retry rules match this code."""

    code = "TransientError"


class DocumentError(DocmillError):
    """A single document could not be processed; the rest of the batch goes on."""

    code = "DocumentError"
    kind = "error"

    @property
    def reason(self) -> str:
        return f"{self.kind}: {self.message}"


class UnsupportedFileType(DocumentError):
    code = "UnsupportedFileType"
    kind = "unsupported"


class EncryptedDocument(DocumentError):
    code = "EncryptedDocument"
    kind = "encrypted"


class CorruptDocument(DocumentError):
    code = "CorruptDocument"
    kind = "corrupt"


class EmptyDocument(DocumentError):
    code = "EmptyDocument"
    kind = "empty"


class EncodingProblem(DocumentError):
    code = "EncodingProblem"
    kind = "encoding"


class DocumentTooLarge(DocumentError):
    code = "DocumentTooLarge"
    kind = "too large"


class UnsafeDocument(DocumentError):
    """Built to exhaust resources when parsed: a decompression bomb, XML entity declarations."""

    code = "UnsafeDocument"
    kind = "unsafe"


class FileLimitExceeded(DocumentError):
    """Parsing the file went past the per-file time or memory limit; its worker was stopped."""

    code = "FileLimitExceeded"
    kind = "over limit"


class OcrUnavailable(DocumentError):
    code = "OcrUnavailable"
    kind = "needs OCR"


class PartitionFailed(DocumentError):
    code = "PartitionFailed"
    kind = "partition failed"


class LLMError(DocmillError):
    code = "LLMError"


class LLMThrottled(LLMError, TransientError):
    """The endpoint refused for rate (429 / ThrottlingException). Retried with backoff."""

    code = "LLMThrottled"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        #: seconds the server asked us to wait (HTTP Retry-After), honoured by the retry helper
        self.retry_after = retry_after


class LLMTimeout(LLMError, TransientError):
    code = "LLMTimeout"


class LLMUnavailable(LLMError, TransientError):
    """A transient server-side failure: HTTP 5xx, connection refused/reset, model not ready."""

    code = "LLMUnavailable"


class LLMResponseError(LLMError):
    """The endpoint answered, but not in a shape docmill understands (not retried)."""

    code = "LLMResponseError"


class BudgetExhausted(DocmillError):
    """The run's token budget is spent; what is done so far is written out."""

    code = "BudgetExhausted"


class ConnectorError(DocmillError):
    """A source connector could not list or fetch from its service."""

    code = "ConnectorError"


class ConnectorAuthError(ConnectorError):
    """The service refused the credentials (401, or 403 that is not a rate limit)."""

    code = "ConnectorAuthError"


class ConnectorUrlRefused(ConnectorError):
    """A connector was asked to call a URL outside its configured service (another host, plain
    http, a redirect elsewhere, or a link-local / metadata / private address); never retried."""

    code = "ConnectorUrlRefused"


class ConnectorRateLimited(ConnectorError, TransientError):
    """The service kept answering 429 / rate-limit 403 after every retry we allowed."""

    code = "ConnectorRateLimited"


class EmptyDataset(DocmillError):
    """Generation and curation left no record for any format: nothing a trainer could load."""

    code = "EmptyDataset"


class FinetuneError(DocmillError):
    """A fine-tune cannot start or did not finish (bad dataset, missing base model, ...)."""

    code = "FinetuneError"


class DatasetInvalid(FinetuneError):
    """The dataset folder is not something a trainer can use (no train split, empty, wrong format)."""

    code = "DatasetInvalid"


class JobNotFound(DocmillError):
    """No job with this id for this tenant (another tenant's job is 'not found' too)."""

    code = "JobNotFound"
