"""Source connectors: pull documents from where teams keep them into the raw bucket (or a folder).

Why thin connectors on ``requests`` / boto3 / pymongo rather than ``unstructured-ingest``
(checked: v1.12.0 on PyPI, not installed here). Its v1 indexer/downloader classes exist for
local, S3, GitHub, Google Drive, MongoDB, Slack and Elasticsearch/OpenSearch (none for
Wikipedia) and can in principle run download-only into a folder. They do not fit here:

- dependencies: its ``opensearch`` extra pins ``opensearch-py<3`` (the vector store uses
  3.x), ``s3`` pulls s3fs/aiobotocore, which pin botocore against our boto3/moto;
  ``slack`` pulls slack-sdk[optional] (aiohttp), ``google-drive`` google-api-python-client;
- house rules: S3 would go through fsspec/s3fs instead of ``docmill.aws.client`` (no moto
  injection, no shared retry config);
- sync semantics: its indexers yield per-file versions but keep no state across runs, have
  no notion of deletions, and group Slack by its own windows; the incremental state,
  deletion and metadata contract live in docmill anyway (``sync.py``, ``metadata.py``);
- testability: PyGithub uses requests, but google-api-python-client (httplib2),
  slack-sdk (urllib) and elasticsearch 8 (elastic-transport/urllib3) cannot be driven by
  recorded ``responses`` cassettes, so their rate-limit and pagination handling could not be
  tested offline.
Each connector here is one small module over the service's documented REST API (or pymongo
for MongoDB's wire protocol), with one shared HTTP helper (``http.py``) for auth, timeouts
and rate-limit back-off.
"""

from docmill.connectors.base import Connector, ConnectorOptions, SourceDocument
from docmill.connectors.config import SourceConfig, SyncConfig, parse_sync_config, resolve_credentials
from docmill.connectors.metadata import read_source_metadata
from docmill.connectors.registry import SOURCE_TYPES, ConnectorRuntime, build_connector
from docmill.connectors.sync import SyncReport, run_sync, sync_source

__all__ = [
    "Connector", "ConnectorOptions", "SourceDocument", "SourceConfig", "SyncConfig", "parse_sync_config",
    "resolve_credentials", "read_source_metadata", "SOURCE_TYPES", "ConnectorRuntime", "build_connector",
    "SyncReport", "run_sync", "sync_source",
]
