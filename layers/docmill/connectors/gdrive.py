"""Google Drive source over the Drive v3 REST API.

``files.list`` walks a folder (recursively, ``pageToken`` pagination, shared drives
included), and each file's ``version`` (a number Drive increases on every change) is its
sync version. Google Docs / Sheets / Slides are exported (``files.export``) to
docx / xlsx / pptx (or pdf); other files are downloaded as they are (``alt=media``);
Google types that cannot be exported as documents (forms, shortcuts, sites, maps) are skipped.

Auth: an OAuth access token (``access_token``) or a service account key
(``service_account_json``: the key file's JSON), for which docmill signs the RS256 JWT
assertion itself and exchanges it at the key's ``token_uri`` for an access token, so neither
google-auth nor google-api-python-client (whose httplib2 transport cannot be driven by
recorded HTTP responses) is needed.
"""

from __future__ import annotations

import base64
import json
import mimetypes
from collections.abc import Iterator, Mapping
from typing import Any, Literal

from pydantic import Field

from docmill.connectors.base import Connector, ConnectorOptions, SourceDocument, iso_utc, safe_segment
from docmill.connectors.http import HttpClient
from docmill.connectors.registry import ConnectorRuntime
from docmill.errors import ConfigurationError, ConnectorAuthError

FOLDER = "application/vnd.google-apps.folder"
GOOGLE_PREFIX = "application/vnd.google-apps."
_EXPORTS: dict[str, dict[str, tuple[str, str]]] = {
    "docx": {
        "document": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx"),
        "spreadsheet": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
        "presentation": ("application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx"),
        "drawing": ("application/pdf", ".pdf"),
    },
    "pdf": {
        "document": ("application/pdf", ".pdf"),
        "spreadsheet": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx"),
        "presentation": ("application/pdf", ".pdf"),
        "drawing": ("application/pdf", ".pdf"),
    },
}
_FIELDS = (
    "nextPageToken,files(id,name,mimeType,modifiedTime,version,md5Checksum,size,webViewLink,"
    "owners(displayName,emailAddress),lastModifyingUser(displayName,emailAddress))"
)
SCOPE = "https://www.googleapis.com/auth/drive.readonly"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a public endpoint, not a secret


class GoogleDriveOptions(ConnectorOptions):
    folder_id: str = Field(..., description="folder to sync ('root' for My Drive)")
    drive_id: str | None = Field(None, description="shared drive id when the folder lives in one")
    recursive: bool = True
    export_format: Literal["docx", "pdf"] = "docx"
    api_url: str = "https://www.googleapis.com"
    token_uri: str = Field(GOOGLE_TOKEN_URI, description="where a service account key is exchanged; the key's "
                           "token_uri must be on this origin (a key cannot send its assertion elsewhere)")
    page_size: int = Field(1000, ge=1, le=1000)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def service_account_assertion(key: Mapping[str, Any], *, now: float, scope: str = SCOPE) -> str:
    """The signed JWT a service account exchanges for an access token (RFC 7523, RS256)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    header = {"alg": "RS256", "typ": "JWT", "kid": key.get("private_key_id")}
    claims = {"iss": key["client_email"], "scope": scope, "aud": key["token_uri"],
              "iat": int(now), "exp": int(now) + 3600}
    signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
    private_key = serialization.load_pem_private_key(key["private_key"].encode(), password=None)
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ConnectorAuthError("gdrive: the service account key is not an RSA key (RS256 needs one)")
    signature = private_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64url(signature)}"


class GoogleDriveConnector(Connector):
    type = "gdrive"
    options_model = GoogleDriveOptions

    def __init__(self, options: GoogleDriveOptions, credentials: Mapping[str, str], runtime: ConnectorRuntime) -> None:
        self.options = options
        self.runtime = runtime
        self.api = options.api_url.rstrip("/")
        self.http = HttpClient(service="gdrive", sleep=runtime.sleep, clock=runtime.clock,
                               max_retries=runtime.max_retries, max_wait=runtime.max_wait, timeout=runtime.timeout,
                               base_urls=[options.api_url, options.token_uri], url_policy=runtime.url_policy)
        token = credentials.get("access_token") or credentials.get("token")
        if not token and credentials.get("service_account_json"):
            token = self._service_account_token(credentials["service_account_json"])
        if not token:
            raise ConfigurationError("gdrive source needs 'access_token' or 'service_account_json' credentials")
        self.http.session.headers["Authorization"] = f"Bearer {token}"

    def _service_account_token(self, key_json: str) -> str:
        try:
            key = json.loads(key_json)
            assertion = service_account_assertion(key, now=self.runtime.clock())
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"gdrive: service_account_json is not a service account key: {exc}") from exc
        resp = self.http.request(
            "POST", key["token_uri"],
            data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
        ).json()
        if "access_token" not in resp:
            raise ConnectorAuthError(f"gdrive: token exchange gave no access_token: {resp}")
        return resp["access_token"]

    def _list_folder(self, folder_id: str) -> Iterator[dict]:
        params: dict[str, Any] = {
            "q": f"'{folder_id}' in parents and trashed = false",
            "fields": _FIELDS,
            "pageSize": str(self.options.page_size),
            "supportsAllDrives": "true",
            "includeItemsFromAllDrives": "true",
            "orderBy": "folder,name",
        }
        if self.options.drive_id:
            params.update({"corpora": "drive", "driveId": self.options.drive_id})
        token: str | None = None
        while True:
            if token:
                params["pageToken"] = token
            page = self.http.get_json(f"{self.api}/drive/v3/files", params=params)
            yield from page.get("files", [])
            token = page.get("nextPageToken")
            if not token:
                return

    def _walk(self, folder_id: str, prefix: str, visited: set[str]) -> Iterator[tuple[str, dict]]:
        visited.add(folder_id)
        for item in self._list_folder(folder_id):
            if item.get("mimeType") == FOLDER:
                if self.options.recursive and item["id"] not in visited:
                    yield from self._walk(item["id"], f"{prefix}{safe_segment(item['name'])}/", visited)
            else:
                yield prefix, item

    def list_documents(self) -> Iterator[SourceDocument]:
        exports = _EXPORTS[self.options.export_format]
        for prefix, item in self._walk(self.options.folder_id, "", set()):
            mime = item.get("mimeType", "")
            name = safe_segment(item["name"])
            export = None
            if mime.startswith(GOOGLE_PREFIX):
                export = exports.get(mime[len(GOOGLE_PREFIX):])
                if export is None:
                    continue  # forms, shortcuts, sites, maps: nothing to partition
                if not name.lower().endswith(export[1]):
                    name += export[1]
            owners = item.get("owners") or []
            author = (owners[0].get("displayName") or owners[0].get("emailAddress")) if owners else None
            version = item.get("version") or item.get("md5Checksum") or item.get("modifiedTime")
            yield SourceDocument(
                id=item["id"],
                key=f"{prefix}{name}",
                version=str(version) if version is not None else None,
                title=item["name"],
                author=author,
                url=item.get("webViewLink") or f"https://drive.google.com/file/d/{item['id']}/view",
                modified=iso_utc(item.get("modifiedTime")),
                content_type=export[0] if export else (mime or mimetypes.guess_type(name)[0]),
                size=int(item["size"]) if item.get("size") else None,
                extra={"export_mime": export[0] if export else None},
            )

    def fetch(self, doc: SourceDocument) -> bytes:
        export_mime = doc.extra.get("export_mime")
        if export_mime:
            resp = self.http.request("GET", f"{self.api}/drive/v3/files/{doc.id}/export",
                                     params={"mimeType": export_mime})
        else:
            resp = self.http.request("GET", f"{self.api}/drive/v3/files/{doc.id}",
                                     params={"alt": "media", "supportsAllDrives": "true"})
        return resp.content

    def close(self) -> None:
        self.http.close()


