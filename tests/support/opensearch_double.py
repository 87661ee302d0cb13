"""A strict, in-process OpenSearch test double over real HTTP (127.0.0.1, threading http.server).

No OpenSearch server can run on the CI machine, so docmill's OpenSearch adapter is tested
through ``opensearch-py`` against this double. It implements exactly the endpoints docmill
calls and *rejects* what a real OpenSearch 2.x rejects, with the real error JSON shapes:

    HEAD/PUT/DELETE /{index}      GET /{index}/_mapping       POST /_bulk, /{index}/_bulk
    GET|POST /{index}/_search     GET|POST /{index}/_count    POST /{index}/_delete_by_query
    GET|POST /{index}/_refresh
    PUT /_plugins/_security/api/roles/{role}, .../rolesmapping/{role}  (managed domain only)

Search semantics modelled: only *refreshed* documents are searchable (nothing auto-refreshes,
which is stricter than a real node's 1 s interval); ``knn`` is exact (brute force) with the
k-NN plugin's score transforms per space type; ``bool`` / ``term`` / ``terms`` / ``match`` /
``match_all``; BM25 (k1=1.2, b=0.75) over ``text`` fields with a lowercase word tokenizer;
``sort`` + ``search_after``; ``_source`` filtering; ``dynamic: strict`` mappings; auto-creation of
a missing index with dynamic mapping on ``_bulk`` (as a real node does by default).

``serverless=True`` behaves like an OpenSearch Serverless vector collection: a custom ``_id``
on index/create is refused, ``_refresh`` and ``_delete_by_query`` are not available, and writes
are searchable at once. ``basic_auth=(user, pw)`` and ``sigv4_service="es"|"aoss"`` make it
demand those credentials (SigV4: structure, scope and signed headers are checked, not the
signature bytes).

Fault injection for retry tests: ``fail_next(status, times)`` fails whole requests,
``reject_bulk_items(n)`` answers the next n bulk items with 429 like a full write queue.
"""

from __future__ import annotations

import base64
import copy
import json
import math
import re
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

Doc = dict[str, Any]

FIELD_TYPES = {"keyword", "text", "integer", "long", "float", "double", "boolean", "object", "knn_vector", "date"}
KNN_ENGINES = {
    "faiss": {"params": {"ef_construction", "m", "ef_search", "encoder"}, "spaces": {"l2", "innerproduct", "cosinesimil"}},
    "lucene": {"params": {"ef_construction", "m", "encoder"}, "spaces": {"l2", "innerproduct", "cosinesimil"}},
    "nmslib": {"params": {"ef_construction", "m"}, "spaces": {"l2", "innerproduct", "cosinesimil", "l1", "linf"}},
}
INDEX_SETTINGS = {"knn", "knn.algo_param.ef_search", "number_of_shards", "number_of_replicas", "refresh_interval"}
SEARCH_KEYS = {"query", "size", "from", "_source", "sort", "search_after", "track_total_hits", "min_score"}
URL_PARAMS = {
    "create_index": {"wait_for_active_shards", "timeout", "master_timeout", "cluster_manager_timeout"},
    "bulk": {"refresh", "timeout", "pipeline", "routing", "wait_for_active_shards", "require_alias"},
    "search": {"size", "from", "timeout", "track_total_hits", "ignore_unavailable", "allow_no_indices"},
    "count": {"ignore_unavailable", "allow_no_indices"},
    "delete_by_query": {"refresh", "conflicts", "max_docs", "slices", "wait_for_completion", "timeout", "scroll_size"},
    "refresh": {"ignore_unavailable", "allow_no_indices", "expand_wildcards"},
    "none": set(),
}
_TOKEN = re.compile(r"\w+", re.UNICODE)
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')


class ApiError(Exception):
    """An error response: ``body`` is exactly what OpenSearch sends."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(json.dumps(body)[:300])
        self.status = status
        self.body = body


def error(status: int, etype: str, reason: str, **extra: Any) -> ApiError:
    cause = {"type": etype, "reason": reason, **extra}
    return ApiError(status, {"error": {"root_cause": [cause], **cause}, "status": status})


def index_not_found(name: str) -> ApiError:
    return error(
        404,
        "index_not_found_exception",
        f"no such index [{name}]",
        index=name,
        **{"resource.id": name, "resource.type": "index_or_alias", "index_uuid": "_na_"},
    )


def shard_failure(index: str, etype: str, reason: str) -> ApiError:
    """A query that parsed but failed on the shard: OpenSearch wraps it like this."""
    cause = {"type": etype, "reason": reason}
    return ApiError(
        400,
        {
            "error": {
                "root_cause": [cause],
                "type": "search_phase_execution_exception",
                "reason": "all shards failed",
                "phase": "query",
                "grouped": True,
                "failed_shards": [{"shard": 0, "index": index, "node": "double", "reason": cause}],
                "caused_by": cause,
            },
            "status": 400,
        },
    )


def _token_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, (int, float)):
        return "VALUE_NUMBER"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_STRING"


def tokens(text: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(text or "")]


@dataclass
class Index:
    name: str
    mapping: dict[str, Any]
    settings: dict[str, Any]
    uuid: str = field(default_factory=lambda: uuid.uuid4().hex[:22])
    docs: dict[str, Doc] = field(default_factory=dict)  # latest writes
    versions: dict[str, int] = field(default_factory=dict)
    searchable: dict[str, Doc] = field(default_factory=dict)  # state as of the last refresh
    seq_no: int = 0

    @property
    def properties(self) -> dict[str, Any]:
        return self.mapping.setdefault("properties", {})

    def refresh(self) -> None:
        self.searchable = dict(self.docs)


class OpenSearchDouble:
    def __init__(
        self,
        *,
        serverless: bool = False,
        basic_auth: tuple[str, str] | None = None,
        sigv4_service: str | None = None,
        sigv4_region: str | None = None,
    ) -> None:
        self.serverless = serverless
        self.basic_auth = basic_auth
        self.sigv4_service = sigv4_service
        self.sigv4_region = sigv4_region
        self.indices: dict[str, Index] = {}
        # the security plugin's roles and role mappings (name -> body), as the REST API stores them
        self.security: dict[str, dict[str, Any]] = {"roles": {}, "rolesmapping": {}}
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.RLock()
        self._faults: list[dict[str, Any]] = []
        self._item_rejections = 0
        self._item_rejection_status = 429
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------
    def start(self) -> str:
        double = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

            def setup(self) -> None:
                super().setup()
                # headers and body go out in two writes: without this, Nagle + delayed ACK
                # add ~40 ms to every request
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = double.handle(self.command, self.path, dict(self.headers.items()), body)
                data = b"" if payload is None else json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle  # noqa: N815 - http.server's names

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="opensearch-double", daemon=True)
        self._thread.start()
        return self.url

    @property
    def url(self) -> str:
        assert self._server is not None, "double not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> OpenSearchDouble:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- fault injection and inspection ---------------------------------------------------
    def fail_next(self, status: int, times: int = 1, path_contains: str | None = None) -> None:
        with self._lock:
            self._faults.append({"status": status, "times": times, "path": path_contains})

    def reject_bulk_items(self, count: int, status: int = 429) -> None:
        with self._lock:
            self._item_rejections = count
            self._item_rejection_status = status

    def documents(self, index: str) -> dict[str, Doc]:
        with self._lock:
            return copy.deepcopy(self.indices[index].docs)

    # -- dispatch -----------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        path = unquote(parts.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        lower_headers = {k.lower(): v for k, v in headers.items()}
        with self._lock:
            self.requests.append(
                {"method": method, "path": path, "params": params, "headers": lower_headers, "body": body}
            )
            try:
                self._authorise(lower_headers)
                self._inject_fault(path)
                return self._route(method, path, params, body)
            except ApiError as exc:
                return exc.status, (None if method == "HEAD" else exc.body)

    def _authorise(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if self.basic_auth is not None:
            expected = "Basic " + base64.b64encode(":".join(self.basic_auth).encode()).decode()
            if auth != expected:
                raise error(
                    401,
                    "security_exception",
                    "Authentication finally failed" if auth else "Missing authentication information for REST request",
                )
        if self.sigv4_service is not None:
            scope = re.match(r"AWS4-HMAC-SHA256 Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request, "
                             r"SignedHeaders=([^,]+), Signature=[0-9a-f]{64}$", auth)
            if not scope or "x-amz-date" not in headers:
                raise ApiError(403, {"message": "Authorization header requires SigV4 signing"})
            region, service, signed = scope.groups()
            if service != self.sigv4_service or (self.sigv4_region and region != self.sigv4_region):
                raise ApiError(403, {"message": f"Credential should be scoped to a valid region/service, not {region}/{service}"})
            if "host" not in signed.split(";"):
                raise ApiError(403, {"message": "host must be a signed header"})
            if service == "aoss" and "x-amz-content-sha256" not in headers:
                raise ApiError(403, {"message": "x-amz-content-sha256 header is required for aoss"})

    def _inject_fault(self, path: str) -> None:
        for fault in self._faults:
            if fault["times"] > 0 and (fault["path"] is None or fault["path"] in path):
                fault["times"] -= 1
                status = fault["status"]
                if status == 429:
                    raise error(429, "rejected_execution_exception", "rejected execution of coordinating operation")
                raise error(status, "status_exception", f"injected failure {status}")

    def _route(self, method: str, path: str, params: dict[str, str], body: bytes) -> tuple[int, Any]:
        segments = [s for s in path.split("/") if s]
        if segments[:3] == ["_plugins", "_security", "api"] and len(segments) == 5 and method == "PUT":
            if self.serverless:  # Serverless has no security plugin: access is the data-access policy
                raise ApiError(404, {"message": "Not Found"})
            self._check_params("none", path, params)
            return self._put_security(segments[3], segments[4], self._json(body, allow_empty=False))
        if segments == ["_bulk"] and method in ("POST", "PUT"):
            self._check_params("bulk", path, params)
            return 200, self._bulk(None, body, params)
        if len(segments) == 1 and not segments[0].startswith("_"):
            name = segments[0]
            if method == "HEAD":
                self._check_params("none", path, params)
                return (200 if name in self.indices else 404), None
            if method == "PUT":
                self._check_params("create_index", path, params)
                return 200, self._create_index(name, self._json(body, allow_empty=True) or {})
            if method == "DELETE":
                self._check_params("none", path, params)
                self._index(name)
                del self.indices[name]
                return 200, {"acknowledged": True}
        if len(segments) == 2 and not segments[0].startswith("_"):
            name, op = segments
            if op == "_mapping" and method == "GET":
                self._check_params("none", path, params)
                idx = self._index(name)
                return 200, {name: {"mappings": copy.deepcopy(idx.mapping)}}
            if op == "_bulk" and method in ("POST", "PUT"):
                self._check_params("bulk", path, params)
                return 200, self._bulk(name, body, params)
            if op == "_search" and method in ("GET", "POST"):
                self._check_params("search", path, params)
                return 200, self._search(name, self._json(body, allow_empty=True) or {}, params)
            if op == "_count" and method in ("GET", "POST"):
                self._check_params("count", path, params)
                return 200, self._count(name, self._json(body, allow_empty=True) or {})
            if op == "_delete_by_query" and method == "POST" and not self.serverless:
                self._check_params("delete_by_query", path, params)
                return 200, self._delete_by_query(name, self._json(body, allow_empty=False), params)
            if op == "_refresh" and method in ("GET", "POST") and not self.serverless:
                self._check_params("refresh", path, params)
                self._index(name).refresh()
                return 200, {"_shards": {"total": 2, "successful": 1, "failed": 0}}
        # What a real node answers for a path/method it has no handler for.
        raise ApiError(400, {"error": f"no handler found for uri [{path}] and method [{method}]"})

    _SECURITY_KEYS = {
        "roles": {"cluster_permissions", "index_permissions", "tenant_permissions", "description"},
        "rolesmapping": {"backend_roles", "hosts", "users", "and_backend_roles", "description"},
    }
    _INDEX_PERMISSION_KEYS = {"index_patterns", "allowed_actions", "dls", "fls", "masked_fields"}

    def _put_security(self, kind: str, name: str, body: Any) -> tuple[int, Any]:
        """The security REST API's create-or-replace, with its validation and answer shapes."""
        if kind not in self._SECURITY_KEYS:
            raise ApiError(400, {"error": f"no handler found for uri [/_plugins/_security/api/{kind}/{name}] and method [PUT]"})

        def invalid(keys: set[str]) -> ApiError:
            return ApiError(400, {"status": "error", "reason": "Invalid configuration",
                                  "invalid_keys": {"keys": ",".join(sorted(keys))}})

        if not isinstance(body, dict):
            raise ApiError(400, {"status": "error", "reason": "Wrong content type"})
        unknown = set(body) - self._SECURITY_KEYS[kind]
        if unknown:
            raise invalid(unknown)
        for key, value in body.items():
            if key in ("description", "index_permissions"):
                continue
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ApiError(400, {"status": "error", "reason": f"Wrong datatype for [{key}]: expected an array of strings"})
        for permission in body.get("index_permissions", []):
            if not isinstance(permission, dict):
                raise ApiError(400, {"status": "error", "reason": "Wrong datatype for [index_permissions]"})
            unknown = set(permission) - self._INDEX_PERMISSION_KEYS
            if unknown:
                raise invalid(unknown)
        if kind == "rolesmapping" and name not in self.security["roles"]:
            raise ApiError(404, {"status": "NOT_FOUND", "message": f"Role '{name}' is not available for role-mapping."})
        existed = name in self.security[kind]
        self.security[kind][name] = copy.deepcopy(body)
        if existed:
            return 200, {"status": "OK", "message": f"'{name}' updated."}
        return 201, {"status": "CREATED", "message": f"'{name}' created."}

    @staticmethod
    def _check_params(kind: str, path: str, params: dict[str, str]) -> None:
        unknown = sorted(set(params) - URL_PARAMS[kind] - {"pretty", "error_trace", "filter_path", "human"})
        if unknown:
            raise error(
                400,
                "illegal_argument_exception",
                f"request [{path}] contains unrecognized parameter{'s' if len(unknown) > 1 else ''}: "
                + ", ".join(f"[{u}]" for u in unknown),
            )

    @staticmethod
    def _json(body: bytes, *, allow_empty: bool) -> Any:
        if not body.strip():
            if allow_empty:
                return None
            raise error(400, "parse_exception", "request body is required")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise error(400, "parse_exception", f"Failed to parse content to map: {exc}") from exc

    def _index(self, name: str) -> Index:
        idx = self.indices.get(name)
        if idx is None:
            raise index_not_found(name)
        return idx

    # -- index creation -----------------------------------------------------------------
    @staticmethod
    def _validate_name(name: str) -> None:
        if name != name.lower() or name[0] in "_-+" or any(c in _BAD_INDEX_CHARS for c in name) or len(name) > 255:
            raise error(
                400, "invalid_index_name_exception", f"Invalid index name [{name}], must be lowercase and valid",
                index=name, index_uuid="_na_",
            )

    @staticmethod
    def _flatten_settings(settings: dict[str, Any]) -> dict[str, Any]:
        flat: dict[str, Any] = {}

        def walk(prefix: str, value: Any) -> None:
            if isinstance(value, dict):
                for k, v in value.items():
                    walk(f"{prefix}.{k}" if prefix else k, v)
            else:
                flat[prefix] = value

        walk("", settings)
        return {(k[len("index."):] if k.startswith("index.") else k): v for k, v in flat.items()}

    def _create_index(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        self._validate_name(name)
        if not isinstance(body, dict):
            raise error(400, "parse_exception", "request body must be an object")
        for key in body:
            if key not in ("settings", "mappings", "aliases"):
                raise error(400, "parse_exception", f"unknown key [{key}] for create index")
        if name in self.indices:
            idx = self.indices[name]
            raise error(
                400, "resource_already_exists_exception", f"index [{name}/{idx.uuid}] already exists",
                index=name, index_uuid=idx.uuid,
            )
        settings = self._flatten_settings(body.get("settings") or {})
        for key in settings:
            if key not in INDEX_SETTINGS:
                raise error(
                    400, "illegal_argument_exception",
                    f"unknown setting [index.{key}] please check that any required plugins are installed, "
                    "or check the breaking changes documentation for removed settings",
                )
        knn_enabled = str(settings.get("knn", "false")).lower() == "true"
        mapping = copy.deepcopy(body.get("mappings") or {})
        for key in mapping:
            if key not in ("properties", "dynamic", "_source"):
                raise error(400, "mapper_parsing_exception", f"Root mapping definition has unsupported parameters:  [{key} : {json.dumps(mapping[key])}]")
        if "dynamic" in mapping and str(mapping["dynamic"]).lower() not in ("true", "false", "strict"):
            raise error(400, "mapper_parsing_exception", "Could not convert [dynamic.dynamic] to boolean")
        for fname, spec in (mapping.get("properties") or {}).items():
            self._validate_field(fname, spec, knn_enabled)
        self.indices[name] = Index(name=name, mapping=mapping, settings=settings)
        if self.serverless:
            self.indices[name].searchable = self.indices[name].docs  # no refresh, always current
        return {"acknowledged": True, "shards_acknowledged": True, "index": name}

    @staticmethod
    def _validate_field(fname: str, spec: Any, knn_enabled: bool) -> None:
        if not isinstance(spec, dict):
            raise error(400, "mapper_parsing_exception", f"Expected map for property [fields] on field [{fname}] but got a class java.lang.String")
        ftype = spec.get("type", "object")
        if ftype not in FIELD_TYPES:
            raise error(400, "mapper_parsing_exception", f"No handler for type [{ftype}] declared on field [{fname}]")
        if ftype != "knn_vector":
            return
        dim = spec.get("dimension")
        if not isinstance(dim, int) or isinstance(dim, bool) or not 1 <= dim <= 16000:
            raise error(400, "mapper_parsing_exception", f"Dimension value must be between 1 and 16000 for field [{fname}]")
        method = spec.get("method")
        if method is None:
            return
        unknown = set(method) - {"name", "engine", "space_type", "parameters"}
        if unknown:
            raise error(400, "mapper_parsing_exception", f"Invalid parameter for method: {sorted(unknown)[0]}")
        engine = method.get("engine", "faiss")
        if engine not in KNN_ENGINES:
            raise error(400, "mapper_parsing_exception", f"Invalid engine: {engine}")
        if method.get("name") != "hnsw":
            raise error(400, "mapper_parsing_exception", f"Invalid method name: {method.get('name')}")
        space = method.get("space_type", "l2")
        if space not in KNN_ENGINES[engine]["spaces"]:
            raise error(400, "mapper_parsing_exception", f"Validation Failed: 1: \"{engine}\" with \"hnsw\" configuration does not support space type: \"{space}\".;")
        for param in method.get("parameters") or {}:
            if param not in KNN_ENGINES[engine]["params"]:
                raise error(400, "mapper_parsing_exception", f"Invalid parameter for method: {param}")
        if engine in ("faiss", "nmslib") and not knn_enabled:
            raise error(400, "mapper_parsing_exception", f"Cannot create index with knn_vector field [{fname}] using engine [{engine}] unless index.knn is true")

    # -- documents ----------------------------------------------------------------------
    def _dynamic_type(self, value: Any) -> dict[str, Any]:
        if isinstance(value, bool):
            return {"type": "boolean"}
        if isinstance(value, int):
            return {"type": "long"}
        if isinstance(value, float):
            return {"type": "float"}
        if isinstance(value, dict):
            return {"type": "object"}
        return {"type": "text"}

    def _validate_doc(self, idx: Index, doc: Any) -> None:
        if not isinstance(doc, dict):
            raise error(400, "mapper_parsing_exception", "failed to parse, document is empty")
        dynamic = str(idx.mapping.get("dynamic", "true")).lower()
        for fname, value in doc.items():
            spec = idx.properties.get(fname)
            if spec is None:
                if dynamic == "strict":
                    raise error(400, "strict_dynamic_mapping_exception", f"mapping set to strict, dynamic introduction of [{fname}] within [_doc] is not allowed")
                if dynamic == "true" and value is not None:
                    first = value[0] if isinstance(value, list) and value else value
                    idx.properties[fname] = self._dynamic_type(first)
                continue
            if value is None:
                continue
            ftype = spec.get("type", "object")
            if ftype == "knn_vector":
                if not isinstance(value, list) or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value):
                    raise error(400, "mapper_parsing_exception", f"failed to parse field [{fname}] of type [knn_vector] in document")
                if len(value) != spec["dimension"]:
                    raise error(400, "mapper_parsing_exception", f"Vector dimension mismatch. Expected: {spec['dimension']}, Given: {len(value)}")
                space = (spec.get("method") or {}).get("space_type", "l2")
                if space == "cosinesimil" and not any(value):
                    raise error(400, "mapper_parsing_exception", "zero vector is not supported when space type is [cosinesimil]")
                continue
            if ftype == "object":
                if spec.get("enabled", True) is not False and not isinstance(value, dict):
                    raise error(400, "mapper_parsing_exception", f"object mapping for [{fname}] tried to parse field [{fname}] as object, but found a concrete value")
                continue
            values = value if isinstance(value, list) else [value]
            for v in values:
                ok = {
                    "keyword": isinstance(v, (str, int, float)) and not isinstance(v, bool) or isinstance(v, bool),
                    "text": isinstance(v, (str, int, float)),
                    "integer": isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
                    "long": isinstance(v, int) and not isinstance(v, bool),
                    "float": isinstance(v, (int, float)) and not isinstance(v, bool),
                    "double": isinstance(v, (int, float)) and not isinstance(v, bool),
                    "boolean": isinstance(v, bool),
                    "date": isinstance(v, (str, int)),
                }.get(ftype, True)
                if not ok:
                    raise error(400, "mapper_parsing_exception", f"failed to parse field [{fname}] of type [{ftype}] in document")

    def _auto_create(self, name: str) -> Index:
        self._validate_name(name)
        idx = Index(name=name, mapping={"properties": {}}, settings={})
        if self.serverless:
            idx.searchable = idx.docs
        self.indices[name] = idx
        return idx

    def _bulk(self, path_index: str | None, body: bytes, params: dict[str, str]) -> dict[str, Any]:
        text = body.decode("utf-8")
        if not text:
            raise error(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        if not text.endswith("\n"):
            raise error(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
        lines = text.split("\n")[:-1]
        ops: list[tuple[str, dict[str, Any], Any]] = []
        i = 0
        while i < len(lines):
            line_no = i + 1
            if not lines[i].strip():
                i += 1
                continue
            try:
                action = json.loads(lines[i])
            except ValueError as exc:
                raise error(400, "json_parse_exception", f"Unrecognized token in action line [{line_no}]: {exc}") from exc
            if not isinstance(action, dict) or len(action) != 1:
                raise error(400, "illegal_argument_exception", f"Malformed action/metadata line [{line_no}], expected START_OBJECT or END_OBJECT but found [{_token_kind(action)}]")
            op, meta = next(iter(action.items()))
            if op not in ("index", "create", "update", "delete"):
                raise error(400, "illegal_argument_exception", f"Malformed action/metadata line [{line_no}], expected field [create], [delete], [index] or [update] but found [{op}]")
            if not isinstance(meta, dict):
                raise error(400, "illegal_argument_exception", f"Malformed action/metadata line [{line_no}], expected START_OBJECT but found [{_token_kind(meta)}]")
            for key in meta:
                if key not in ("_index", "_id", "routing", "pipeline", "require_alias", "if_seq_no", "if_primary_term", "version", "version_type"):
                    raise error(400, "illegal_argument_exception", f"Action/metadata line [{line_no}] contains an unknown parameter [{key}]")
            source = None
            if op != "delete":
                i += 1
                if i >= len(lines):
                    raise error(400, "illegal_argument_exception", "The bulk request must be terminated by a newline [\\n]")
                try:
                    source = json.loads(lines[i])
                except ValueError as exc:
                    raise error(400, "mapper_parsing_exception", f"failed to parse: {exc}") from exc
            ops.append((op, meta, source))
            i += 1
        if not ops:
            raise error(400, "action_request_validation_exception", "Validation Failed: 1: no requests added;")
        missing = [n for n, (_, meta, _) in enumerate(ops, 1) if not (meta.get("_index") or path_index)]
        if missing:
            raise error(400, "action_request_validation_exception", "Validation Failed: " + "".join(f"{n}: index is missing;" for n in missing))
        items = []
        touched: set[str] = set()
        for op, meta, source in ops:
            items.append({op: self._bulk_item(op, meta, source, path_index)})
            touched.add(meta.get("_index") or path_index or "")
        if params.get("refresh") in ("", "true", "wait_for"):
            for name in touched:
                if name in self.indices:
                    self.indices[name].refresh()
        return {"took": 1, "errors": any("error" in next(iter(it.values())) for it in items), "items": items}

    def _bulk_item(self, op: str, meta: dict[str, Any], source: Any, path_index: str | None) -> dict[str, Any]:
        name = meta.get("_index") or path_index or ""
        doc_id = meta.get("_id")
        base: dict[str, Any] = {"_index": name, "_id": doc_id}
        if self._item_rejections > 0:
            self._item_rejections -= 1
            return {**base, "status": self._item_rejection_status, "error": {
                "type": "rejected_execution_exception" if self._item_rejection_status == 429 else "status_exception",
                "reason": "rejected execution of primary operation [coordinating_and_primary_bytes=0]",
            }}
        try:
            if op == "update":
                raise error(400, "illegal_argument_exception", "the double does not implement bulk update")
            if op == "delete":
                idx = self._index(name)
                if doc_id is None:
                    raise error(400, "action_request_validation_exception", "Validation Failed: 1: id is missing;")
                if doc_id in idx.docs:
                    del idx.docs[doc_id]
                    idx.seq_no += 1
                    idx.versions[doc_id] = idx.versions.get(doc_id, 0) + 1
                    return {**base, "_version": idx.versions[doc_id], "result": "deleted", "status": 200}
                return {**base, "_version": 1, "result": "not_found", "status": 404}
            if self.serverless and doc_id is not None:
                raise error(400, "illegal_argument_exception", "Document ID is not supported in create/index operation request")
            if doc_id is not None and len(str(doc_id).encode()) > 512:
                raise error(400, "illegal_argument_exception", "id [...] is too long, must be no longer than 512 bytes")
            idx = self.indices.get(name) or self._auto_create(name)
            self._validate_doc(idx, source)
            if doc_id is None:
                doc_id = base64.urlsafe_b64encode(uuid.uuid4().bytes[:15]).decode()
                base["_id"] = doc_id
            exists = doc_id in idx.docs
            if op == "create" and exists:
                raise error(409, "version_conflict_engine_exception", f"[{doc_id}]: version conflict, document already exists")
            idx.docs[doc_id] = copy.deepcopy(source)
            idx.versions[doc_id] = idx.versions.get(doc_id, 0) + 1
            idx.seq_no += 1
            return {
                **base,
                "_version": idx.versions[doc_id],
                "result": "updated" if exists else "created",
                "_shards": {"total": 2, "successful": 1, "failed": 0},
                "_seq_no": idx.seq_no,
                "_primary_term": 1,
                "status": 200 if exists else 201,
            }
        except ApiError as exc:
            cause = exc.body["error"] if isinstance(exc.body.get("error"), dict) else {"type": "exception", "reason": str(exc)}
            cause = {k: v for k, v in cause.items() if k != "root_cause"}
            return {**base, "status": exc.status, "error": cause}

    # -- queries ------------------------------------------------------------------------
    def _search(self, name: str, body: dict[str, Any], params: dict[str, str]) -> dict[str, Any]:
        idx = self._index(name)
        if not isinstance(body, dict):
            raise error(400, "parsing_exception", "Expected [START_OBJECT] but found [START_ARRAY]")
        for key, value in body.items():
            if key not in SEARCH_KEYS:
                raise error(400, "parsing_exception", f"Unknown key for a {_token_kind(value)} in [{key}].", line=1, col=1)
        size = int(params.get("size", body.get("size", 10)))
        start = int(params.get("from", body.get("from", 0)))
        if size < 0 or start < 0:
            raise error(400, "illegal_argument_exception", "[size] parameter cannot be negative")
        if size + start > 10000:
            raise error(400, "illegal_argument_exception", f"Result window is too large, from + size must be less than or equal to: [10000] but was [{size + start}].")
        matcher = self._compile(idx, body.get("query", {"match_all": {}}), top_level=True)
        scored = [(doc_id, doc, s) for doc_id, doc in idx.searchable.items() if (s := matcher(doc_id, doc)) is not None]
        if "min_score" in body:
            scored = [t for t in scored if t[2] >= float(body["min_score"])]
        total = len(scored)
        sort = self._parse_sort(idx, body.get("sort"))
        if sort:
            def key(t: tuple[str, Doc, float]) -> tuple:
                return tuple(self._sort_value(t, f, order) for f, order in sort)
            scored.sort(key=key)
            if "search_after" in body:
                after = body["search_after"]
                if not isinstance(after, list) or len(after) != len(sort):
                    raise error(400, "illegal_argument_exception", f"search_after has {len(after) if isinstance(after, list) else 1} value(s) but sort has {len(sort)}.")
                after_key = tuple(self._wrap(v, order) for v, (_, order) in zip(after, sort, strict=True))
                scored = [t for t in scored if key(t) > after_key]
        else:
            if "search_after" in body:
                raise error(400, "illegal_argument_exception", "Sort must contain at least one field.")
            scored.sort(key=lambda t: -t[2])  # stable: ties keep indexing order
        page = scored[start : start + size]
        hits = []
        for doc_id, doc, score in page:
            hit: dict[str, Any] = {"_index": name, "_id": doc_id, "_score": None if sort else score}
            source = self._filter_source(doc, body.get("_source", True))
            if source is not None:
                hit["_source"] = source
            if sort:
                hit["sort"] = [self._raw_sort_value((doc_id, doc, score), f) for f, _ in sort]
            hits.append(hit)
        return {
            "took": 1,
            "timed_out": False,
            "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
            "hits": {
                "total": {"value": total, "relation": "eq"},
                "max_score": None if sort or not page else max(h["_score"] for h in hits),
                "hits": hits,
            },
        }

    def _parse_sort(self, idx: Index, sort: Any) -> list[tuple[str, str]]:
        if sort is None:
            return []
        specs = sort if isinstance(sort, list) else [sort]
        out: list[tuple[str, str]] = []
        for spec in specs:
            if isinstance(spec, str):
                fname, order = spec, "desc" if spec == "_score" else "asc"
            elif isinstance(spec, dict) and len(spec) == 1:
                fname, value = next(iter(spec.items()))
                order = value if isinstance(value, str) else (value or {}).get("order", "asc")
            else:
                raise error(400, "parsing_exception", "malformed sort format, within the sort array, an object, or an actual string are allowed")
            if order not in ("asc", "desc"):
                raise error(400, "illegal_argument_exception", f"No sort order for value [{order}]")
            if fname not in ("_score", "_id"):
                spec_type = idx.properties.get(fname, {}).get("type")
                if spec_type is None:
                    raise shard_failure(idx.name, "query_shard_exception", f"No mapping found for [{fname}] in order to sort on")
                if spec_type in ("text", "knn_vector", "object"):
                    raise shard_failure(idx.name, "illegal_argument_exception", f"Text fields are not optimised for operations that require per-document field data like aggregations and sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, set fielddata=true on [{fname}] in order to load field data by uninverting the inverted index.")
            out.append((fname, order))
        return out

    @staticmethod
    def _raw_sort_value(t: tuple[str, Doc, float], fname: str) -> Any:
        doc_id, doc, score = t
        if fname == "_score":
            return score
        if fname == "_id":
            return doc_id
        value = doc.get(fname)
        if isinstance(value, list):
            value = min(value) if value else None
        return value

    @staticmethod
    def _wrap(value: Any, order: str) -> tuple:
        # missing values sort last in both orders (OpenSearch's default "_last")
        if value is None:
            return (1, 0)
        if order == "desc":
            return (0, _Desc(value))
        return (0, value)

    def _sort_value(self, t: tuple[str, Doc, float], fname: str, order: str) -> tuple:
        return self._wrap(self._raw_sort_value(t, fname), order)

    @staticmethod
    def _filter_source(doc: Doc, spec: Any) -> Doc | None:
        if spec is False:
            return None
        if spec is True or spec is None:
            return copy.deepcopy(doc)
        includes: list[str] = []
        excludes: list[str] = []
        if isinstance(spec, str):
            includes = [spec]
        elif isinstance(spec, list):
            includes = spec
        elif isinstance(spec, dict):
            unknown = set(spec) - {"includes", "excludes", "include", "exclude"}
            if unknown:
                raise error(400, "parsing_exception", f"Unknown key for a VALUE_STRING in [{sorted(unknown)[0]}].")
            includes = list(spec.get("includes", spec.get("include", [])) or [])
            excludes = list(spec.get("excludes", spec.get("exclude", [])) or [])
        return {k: copy.deepcopy(v) for k, v in doc.items() if (not includes or k in includes) and k not in excludes}

    def _count(self, name: str, body: dict[str, Any]) -> dict[str, Any]:
        idx = self._index(name)
        for key in body:
            if key != "query":
                raise error(400, "parsing_exception", f"request does not support [{key}]")
        matcher = self._compile(idx, body.get("query", {"match_all": {}}), top_level=True)
        n = sum(1 for doc_id, doc in idx.searchable.items() if matcher(doc_id, doc) is not None)
        return {"count": n, "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0}}

    def _delete_by_query(self, name: str, body: Any, params: dict[str, str]) -> dict[str, Any]:
        idx = self._index(name)
        if not isinstance(body, dict) or "query" not in body:
            raise error(400, "action_request_validation_exception", "Validation Failed: 1: query is missing;")
        for key, value in body.items():
            if key not in ("query", "max_docs"):
                raise error(400, "parsing_exception", f"Unknown key for a {_token_kind(value)} in [{key}].")
        if params.get("conflicts", "abort") not in ("abort", "proceed"):
            raise error(400, "illegal_argument_exception", f"conflicts may only be \"proceed\" or \"abort\" but was [{params['conflicts']}]")
        matcher = self._compile(idx, body["query"], top_level=True)
        # Like the real thing: it scrolls the *searchable* snapshot, so unrefreshed writes survive.
        victims = [doc_id for doc_id, doc in idx.searchable.items() if matcher(doc_id, doc) is not None]
        deleted = 0
        for doc_id in victims:
            if doc_id in idx.docs:
                del idx.docs[doc_id]
                deleted += 1
        if params.get("refresh") in ("", "true"):
            idx.refresh()
        return {
            "took": 1, "timed_out": False, "total": len(victims), "deleted": deleted, "batches": 1,
            "version_conflicts": len(victims) - deleted, "noops": 0, "retries": {"bulk": 0, "search": 0},
            "throttled_millis": 0, "requests_per_second": -1.0, "throttled_until_millis": 0, "failures": [],
        }

    # query compilation: each query becomes fn(doc_id, doc) -> score | None (no match)
    Matcher = Callable[[str, Doc], "float | None"]

    def _compile(self, idx: Index, query: Any, *, top_level: bool = False) -> Matcher:
        if not isinstance(query, dict) or len(query) != 1:
            if isinstance(query, dict) and len(query) > 1:
                raise error(400, "parsing_exception", f"[{list(query)[0]}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
            raise error(400, "parsing_exception", "query malformed, must start with start_object")
        qtype, spec = next(iter(query.items()))
        if qtype == "match_all":
            return lambda _i, _d: 1.0
        if qtype == "bool":
            return self._compile_bool(idx, spec)
        if qtype in ("term", "terms"):
            return self._compile_term(idx, qtype, spec)
        if qtype == "match":
            return self._compile_match(idx, spec)
        if qtype == "knn":
            return self._compile_knn(idx, spec)
        raise error(400, "parsing_exception", f"unknown query [{qtype}]", line=1, col=1)

    def _compile_bool(self, idx: Index, spec: Any) -> Matcher:
        if not isinstance(spec, dict):
            raise error(400, "parsing_exception", "[bool] query malformed, no start_object after query name")
        clauses: dict[str, list] = {}
        for key, value in spec.items():
            if key in ("must", "filter", "should", "must_not"):
                items = value if isinstance(value, list) else [value]
                clauses[key] = [self._compile(idx, q) for q in items]
            elif key in ("minimum_should_match", "boost"):
                continue
            else:
                raise error(400, "parsing_exception", f"[bool] query does not support [{key}]")
        must, flt, should, must_not = (clauses.get(k, []) for k in ("must", "filter", "should", "must_not"))
        min_should = spec.get("minimum_should_match")
        if min_should is None:
            min_should = 1 if should and not must and not flt else 0
        min_should = int(min_should)

        def match(doc_id: str, doc: Doc) -> float | None:
            score = 0.0
            for m in must:
                s = m(doc_id, doc)
                if s is None:
                    return None
                score += s
            for f in flt:
                if f(doc_id, doc) is None:
                    return None
            for n in must_not:
                if n(doc_id, doc) is not None:
                    return None
            matched = 0
            for s_ in should:
                s = s_(doc_id, doc)
                if s is not None:
                    matched += 1
                    score += s
            if matched < min_should:
                return None
            return score

        return match

    def _field_type(self, idx: Index, fname: str) -> str | None:
        if fname == "_id":
            return "keyword"
        return idx.properties.get(fname, {}).get("type")

    def _compile_term(self, idx: Index, qtype: str, spec: Any) -> Matcher:
        if not isinstance(spec, dict) or not spec:
            raise error(400, "parsing_exception", f"[{qtype}] query malformed, no start_object after query name")
        fields = [k for k in spec if k != "boost"]
        if len(fields) != 1:
            raise error(400, "parsing_exception", f"[{qtype}] query does not support multiple fields")
        fname = fields[0]
        raw = spec[fname]
        if qtype == "term":
            if isinstance(raw, dict):
                if "value" not in raw:
                    raise error(400, "parsing_exception", "[term] query does not support [field]")
                raw = raw["value"]
            if isinstance(raw, (list, dict)):
                raise error(400, "parsing_exception", "[term] query does not support array of values")
            wanted = [raw]
        else:
            if not isinstance(raw, list):
                raise error(400, "parsing_exception", f"[terms] query does not support [{fname}]")
            wanted = raw
        ftype = self._field_type(idx, fname)
        if ftype == "knn_vector":
            raise shard_failure(idx.name, "query_shard_exception", f"Field [{fname}] of type [knn_vector] does not support term queries")
        wanted_set = {str(w) if ftype in ("keyword", "text", None) else w for w in wanted}

        def match(doc_id: str, doc: Doc) -> float | None:
            if fname == "_id":
                return 1.0 if doc_id in wanted_set else None
            value = doc.get(fname)
            if value is None:
                return None
            values = value if isinstance(value, list) else [value]
            if ftype == "text":
                toks = {t for v in values for t in tokens(str(v))}
                return 1.0 if toks & wanted_set else None
            if ftype in ("keyword", None):
                values = [str(v) for v in values]
            return 1.0 if any(v in wanted_set for v in values) else None

        return match

    def _compile_match(self, idx: Index, spec: Any) -> Matcher:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise error(400, "parsing_exception", f"[match] query doesn't support multiple fields, found [{list(spec or {})}]")
        fname, raw = next(iter(spec.items()))
        operator = "or"
        if isinstance(raw, dict):
            unknown = set(raw) - {"query", "operator", "boost", "analyzer", "minimum_should_match"}
            if unknown:
                raise error(400, "parsing_exception", f"[match] query does not support [{sorted(unknown)[0]}]")
            operator = str(raw.get("operator", "or")).lower()
            raw = raw.get("query")
        if raw is None:
            raise error(400, "parsing_exception", "No text specified for text query")
        ftype = self._field_type(idx, fname)
        if ftype != "text":
            wanted = str(raw)
            return lambda _i, d: 1.0 if wanted in ([str(v) for v in d.get(fname)] if isinstance(d.get(fname), list) else [str(d.get(fname))]) else None
        terms = tokens(str(raw))
        docs = idx.searchable
        n_docs = len(docs)
        doc_tokens = {i: tokens(str(d.get(fname) or "")) for i, d in docs.items() if d.get(fname) is not None}
        avg_len = (sum(len(t) for t in doc_tokens.values()) / len(doc_tokens)) if doc_tokens else 1.0
        df = {t: sum(1 for toks in doc_tokens.values() if t in toks) for t in set(terms)}
        k1, b = 1.2, 0.75

        def match(doc_id: str, doc: Doc) -> float | None:
            toks = doc_tokens.get(doc_id)
            if not toks or not terms:
                return None
            present = [t for t in terms if t in toks]
            if not present or (operator == "and" and len(set(present)) < len(set(terms))):
                return None
            score = 0.0
            length = len(toks)
            for t in terms:
                tf = toks.count(t)
                if tf == 0:
                    continue
                idf = math.log(1 + (n_docs - df[t] + 0.5) / (df[t] + 0.5))
                score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * length / avg_len))
            return score

        return match

    def _compile_knn(self, idx: Index, spec: Any) -> Matcher:
        if not isinstance(spec, dict) or len(spec) != 1:
            raise error(400, "parsing_exception", "[knn] query malformed, expected exactly one field")
        fname, body = next(iter(spec.items()))
        if not isinstance(body, dict):
            raise error(400, "parsing_exception", "[knn] query malformed, no start_object after field name")
        for key in body:
            if key not in ("vector", "k", "filter", "boost", "min_score", "max_distance", "method_parameters", "rescore"):
                raise error(400, "parsing_exception", f"[knn] unknown token [{key}] after [{key}]")
        fspec = idx.properties.get(fname)
        if fspec is None or fspec.get("type") != "knn_vector":
            raise shard_failure(idx.name, "illegal_argument_exception", f"Field '{fname}' is not knn_vector type.")
        vector = body.get("vector")
        if not isinstance(vector, list) or not vector or not all(isinstance(x, (int, float)) for x in vector):
            raise error(400, "parsing_exception", "[knn] field 'vector' requires to be non-null and non-empty")
        k = body.get("k")
        if not isinstance(k, int) or isinstance(k, bool) or not 0 < k <= 10000:
            raise error(400, "illegal_argument_exception", "[knn] requires k to be in the range (0, 10000]")
        if len(vector) != fspec["dimension"]:
            raise shard_failure(idx.name, "illegal_argument_exception", f"Query vector has invalid dimension: {len(vector)}. Dimension should be: {fspec['dimension']}")
        method = fspec.get("method") or {}
        engine = method.get("engine", "faiss")
        space = method.get("space_type", "l2")
        filt = None
        if "filter" in body:
            if engine == "nmslib":
                raise error(400, "illegal_argument_exception", "Engine [NMSLIB] does not support filters")
            filt = self._compile(idx, body["filter"])
        q = [float(x) for x in vector]
        candidates = []
        for doc_id, doc in idx.searchable.items():
            v = doc.get(fname)
            if v is None or (filt is not None and filt(doc_id, doc) is None):
                continue
            candidates.append((doc_id, _knn_score(q, v, space)))
        candidates.sort(key=lambda t: -t[1])
        top = dict(candidates[:k])
        return lambda doc_id, _doc: top.get(doc_id)


class _Desc:
    """Reverses ordering for descending sort keys."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _Desc) -> bool:
        return self.value > other.value

    def __gt__(self, other: _Desc) -> bool:
        return self.value < other.value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.value == other.value


def _knn_score(q: list[float], v: list[float], space: str) -> float:
    """The k-NN plugin's score for each space type."""
    if space == "innerproduct":
        dot = sum(a * b for a, b in zip(q, v, strict=True))
        return 1.0 + dot if dot >= 0 else 1.0 / (1.0 - dot)
    if space == "cosinesimil":
        dot = sum(a * b for a, b in zip(q, v, strict=True))
        nq = math.sqrt(sum(a * a for a in q))
        nv = math.sqrt(sum(b * b for b in v))
        cos = dot / (nq * nv) if nq and nv else 0.0
        return (1.0 + cos) / 2.0
    if space == "l2":
        d2 = sum((a - b) ** 2 for a, b in zip(q, v, strict=True))
        return 1.0 / (1.0 + d2)
    if space == "l1":
        return 1.0 / (1.0 + sum(abs(a - b) for a, b in zip(q, v, strict=True)))
    return 1.0 / (1.0 + max(abs(a - b) for a, b in zip(q, v, strict=True)))
