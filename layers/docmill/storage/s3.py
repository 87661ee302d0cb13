from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from docmill import aws
from docmill.errors import StorageError
from docmill.storage.base import ObjectInfo, ObjectStore, is_s3_uri, parse_s3_uri
from docmill.storage.local import LocalStore


class S3Store(ObjectStore):
    """An S3 prefix on AWS or any S3 API endpoint (MinIO, LocalStack, moto)."""

    def __init__(self, bucket: str, prefix: str = "", *, client: Any | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self._client = client

    @property
    def client(self) -> Any:
        return self._client or aws.client("s3")

    def _key(self, key: str) -> str:
        key = key.lstrip("/")
        return f"{self.prefix}/{key}" if self.prefix and key else (self.prefix or key)

    def _rel(self, full_key: str) -> str:
        return full_key[len(self.prefix) + 1 :] if self.prefix else full_key

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except ClientError as exc:
            raise StorageError(f"cannot read {self.uri(key)}: {exc}") from exc

    def write_bytes(
        self, key: str, data: bytes, *, content_type: str | None = None, metadata: dict[str, str] | None = None
    ) -> None:
        extra: dict[str, Any] = {}
        if content_type:
            extra["ContentType"] = content_type
        if metadata:
            extra["Metadata"] = {k: str(v) for k, v in metadata.items()}
        try:
            # A single PutObject is atomic: readers never see a partial object.
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        except ClientError as exc:
            raise StorageError(f"cannot write {self.uri(key)}: {exc}") from exc

    def head(self, key: str) -> ObjectInfo | None:
        try:
            resp = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise StorageError(f"cannot stat {self.uri(key)}: {exc}") from exc
        return ObjectInfo(
            key=key,
            uri=self.uri(key),
            size=resp["ContentLength"],
            etag=resp.get("ETag"),
            version_id=resp.get("VersionId"),
            last_modified=resp["LastModified"].timestamp() if resp.get("LastModified") else None,
            metadata=resp.get("Metadata") or None,
        )

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        full = self._key(prefix)
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    if obj["Key"].endswith("/"):
                        continue  # folder marker
                    yield ObjectInfo(
                        key=self._rel(obj["Key"]),
                        uri=f"s3://{self.bucket}/{obj['Key']}",
                        size=obj["Size"],
                        etag=obj.get("ETag"),
                        last_modified=obj["LastModified"].timestamp() if obj.get("LastModified") else None,
                    )
        except ClientError as exc:
            raise StorageError(f"cannot list {self.uri(prefix)}: {exc}") from exc

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except ClientError as exc:
            raise StorageError(f"cannot delete {self.uri(key)}: {exc}") from exc

    def child(self, prefix: str) -> S3Store:
        return S3Store(self.bucket, self._key(prefix), client=self._client)


def open_store(location: str, *, s3_client: Any | None = None) -> ObjectStore:
    """A store for a local folder path or an ``s3://bucket/prefix`` URI."""
    if is_s3_uri(location):
        bucket, prefix = parse_s3_uri(location)
        return S3Store(bucket, prefix, client=s3_client)
    return LocalStore(location)
