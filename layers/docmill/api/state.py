"""Where the API keeps its records (documents, conversations, messages, datasets, notices).

Every record belongs to one tenant, and every method takes the tenant: there is no way to
read or change a record without naming its tenant, so one tenant can never reach another's
records by id. Records are JSON objects addressed by ``(tenant, kind, id)``; ids are
time-ordered (``docmill.api.ids``), so listing in id order is listing in creation order.

Two implementations of one interface:

* ``SqliteState``: a local file (``<home>/api/state.db``), used by ``docmill serve``;
* ``DynamoState``: one DynamoDB table (partition key ``pk`` = tenant, sort key ``sk`` =
  ``kind#id``), used on AWS, where the route and process functions write document status too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from abc import ABC, abstractmethod
from docmill.clock import utc_now
from pathlib import Path
from typing import Any


def now_iso() -> str:
    return utc_now().isoformat(timespec="milliseconds")


class StateStore(ABC):
    @abstractmethod
    def put(self, tenant: str, kind: str, record_id: str, data: dict[str, Any]) -> None: ...

    @abstractmethod
    def get(self, tenant: str, kind: str, record_id: str) -> dict[str, Any] | None: ...

    @abstractmethod
    def list(self, tenant: str, kind: str, *, limit: int | None = None, newest_first: bool = False) -> list[dict[str, Any]]: ...

    @abstractmethod
    def delete(self, tenant: str, kind: str, record_id: str) -> bool: ...

    def update(self, tenant: str, kind: str, record_id: str, **fields: Any) -> dict[str, Any] | None:
        """Merge ``fields`` into a record that exists (None when it does not: never recreates
        a record deleted meanwhile)."""
        record = self.get(tenant, kind, record_id)
        if record is None:
            return None
        record.update(fields)
        self.put(tenant, kind, record_id, record)
        return record

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class SqliteState(StateStore):
    def __init__(self, path: Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the server's threads, serialised by a lock: the writes are
        # tiny, and WAL keeps a reader in another process (a second server) from blocking.
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS records (tenant TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL,"
            " data TEXT NOT NULL, PRIMARY KEY (tenant, kind, id))"
        )
        self._lock = threading.Lock()

    def put(self, tenant: str, kind: str, record_id: str, data: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?)",
                             (tenant, kind, record_id, json.dumps(data, ensure_ascii=False)))

    def get(self, tenant: str, kind: str, record_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT data FROM records WHERE tenant = ? AND kind = ? AND id = ?",
                                   (tenant, kind, record_id)).fetchone()
        return json.loads(row[0]) if row else None

    def list(self, tenant: str, kind: str, *, limit: int | None = None, newest_first: bool = False) -> list[dict[str, Any]]:
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT data FROM records WHERE tenant = ? AND kind = ? ORDER BY id {order}"  # noqa: S608 - order is ASC or DESC
        args: tuple[Any, ...] = (tenant, kind)
        if limit is not None:
            sql += " LIMIT ?"
            args += (limit,)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def delete(self, tenant: str, kind: str, record_id: str) -> bool:
        with self._lock:
            cur = self._db.execute("DELETE FROM records WHERE tenant = ? AND kind = ? AND id = ?",
                                   (tenant, kind, record_id))
        return cur.rowcount > 0

    def update(self, tenant: str, kind: str, record_id: str, **fields: Any) -> dict[str, Any] | None:
        with self._lock:  # read-modify-write under the one lock: no lost update between threads
            row = self._db.execute("SELECT data FROM records WHERE tenant = ? AND kind = ? AND id = ?",
                                   (tenant, kind, record_id)).fetchone()
            if row is None:
                return None
            record = json.loads(row[0])
            record.update(fields)
            self._db.execute("UPDATE records SET data = ? WHERE tenant = ? AND kind = ? AND id = ?",
                             (json.dumps(record, ensure_ascii=False), tenant, kind, record_id))
        return record

    def close(self) -> None:
        with self._lock:
            self._db.close()


class DynamoState(StateStore):
    """Single-table layout: ``pk`` = tenant, ``sk`` = ``<kind>#<id>``, ``data`` = the JSON record.

    ``update`` is a conditional write (``attribute_exists(pk)``): a status written by the
    pipeline after the user deleted the document does not bring the record back.
    """

    def __init__(self, table_name: str, *, client: Any) -> None:
        self.table = table_name
        self.client = client

    @staticmethod
    def _key(tenant: str, kind: str, record_id: str) -> dict[str, Any]:
        return {"pk": {"S": tenant}, "sk": {"S": f"{kind}#{record_id}"}}

    def put(self, tenant: str, kind: str, record_id: str, data: dict[str, Any]) -> None:
        item = self._key(tenant, kind, record_id) | {"data": {"S": json.dumps(data, ensure_ascii=False)}}
        self.client.put_item(TableName=self.table, Item=item)

    def get(self, tenant: str, kind: str, record_id: str) -> dict[str, Any] | None:
        out = self.client.get_item(TableName=self.table, Key=self._key(tenant, kind, record_id), ConsistentRead=True)
        item = out.get("Item")
        return json.loads(item["data"]["S"]) if item else None

    def list(self, tenant: str, kind: str, *, limit: int | None = None, newest_first: bool = False) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        args: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :kind)",
            "ExpressionAttributeValues": {":pk": {"S": tenant}, ":kind": {"S": f"{kind}#"}},
            "ScanIndexForward": not newest_first,
        }
        while True:
            out = self.client.query(**args)
            records.extend(json.loads(item["data"]["S"]) for item in out.get("Items", []))
            if (limit is not None and len(records) >= limit) or "LastEvaluatedKey" not in out:
                break
            args["ExclusiveStartKey"] = out["LastEvaluatedKey"]
        return records[:limit] if limit is not None else records

    def delete(self, tenant: str, kind: str, record_id: str) -> bool:
        out = self.client.delete_item(TableName=self.table, Key=self._key(tenant, kind, record_id), ReturnValues="ALL_OLD")
        return bool(out.get("Attributes"))

    def update(self, tenant: str, kind: str, record_id: str, **fields: Any) -> dict[str, Any] | None:
        for _ in range(5):  # optimistic: retry when another writer changed the record meanwhile
            record = self.get(tenant, kind, record_id)
            if record is None:
                return None
            before = json.dumps(record, ensure_ascii=False)
            record.update(fields)
            try:
                self.client.put_item(
                    TableName=self.table,
                    Item=self._key(tenant, kind, record_id) | {"data": {"S": json.dumps(record, ensure_ascii=False)}},
                    ConditionExpression="#d = :before",
                    ExpressionAttributeNames={"#d": "data"},
                    ExpressionAttributeValues={":before": {"S": before}},
                )
                return record
            except self.client.exceptions.ConditionalCheckFailedException:
                continue
        return None
