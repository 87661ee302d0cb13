"""Object storage behind one small interface: a local folder or any S3 API location."""

from docmill.storage.base import ObjectInfo, ObjectStore, is_s3_uri, parse_s3_uri
from docmill.storage.local import LocalStore
from docmill.storage.s3 import S3Store, open_store

__all__ = ["ObjectInfo", "ObjectStore", "LocalStore", "S3Store", "open_store", "is_s3_uri", "parse_s3_uri"]
