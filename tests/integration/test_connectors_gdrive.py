"""Google Drive connector over HTTP with recorded Drive v3 responses (real shapes)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from urllib.parse import parse_qs

import responses
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from responses import matchers

from docmill.connectors import metadata as md
from docmill.connectors.config import parse_sync_config
from docmill.connectors.registry import ConnectorRuntime
from docmill.connectors.sync import run_sync
from docmill.storage import LocalStore

FILES = "https://www.googleapis.com/drive/v3/files"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _file(fid: str, name: str, mime: str, version: str, **extra) -> dict:
    return {"id": fid, "name": name, "mimeType": mime, "version": version, "modifiedTime": "2024-03-04T05:06:07.890Z",
            "webViewLink": f"https://docs.google.com/document/d/{fid}/edit",
            "owners": [{"displayName": "Ada Lovelace", "emailAddress": "ada@example.com", "kind": "drive#user"}],
            "lastModifyingUser": {"displayName": "Grace Hopper", "emailAddress": "grace@example.com"}, **extra}


def _q(folder: str, token: str | None = None):
    def match(request):
        params = parse_qs(request.url.split("?", 1)[1])
        ok = params.get("q") == [f"'{folder}' in parents and trashed = false"] and params.get("pageToken") == ([token] if token else None)
        return ok, "" if ok else "other folder/page"
    return match


def _cfg(tmp_path: Path, credentials: str) -> tuple:
    dest = tmp_path / "dest"
    cfg = parse_sync_config(
        f"source: {{type: gdrive, name: drive, folder_id: F1, credentials: {credentials}}}\ndestination: {{path: '{dest}'}}\n")
    return cfg, dest


def _listing(rsps, *, doc_version: str, with_pdf: bool) -> None:
    rsps.get(FILES, match=[_q("F1")], json={"kind": "drive#fileList", "nextPageToken": "tok-2", "incompleteSearch": False,
             "files": [_file("D1", "Design doc", "application/vnd.google-apps.document", doc_version),
                       _file("FOLD", "Specs", "application/vnd.google-apps.folder", "3"),
                       _file("FORM", "Survey", "application/vnd.google-apps.form", "9")]})
    rsps.get(FILES, match=[_q("F1", "tok-2")], json={"kind": "drive#fileList", "files": [
        _file("P1", "Budget.pdf", "application/pdf", "12", size="1234", md5Checksum="d41d8cd98f00b204e9800998ecf8427e")]
        if with_pdf else []})
    rsps.get(FILES, match=[_q("FOLD")], json={"kind": "drive#fileList", "files": [
        _file("S1", "Plan", "application/vnd.google-apps.spreadsheet", "4")]})


def test_pages_are_followed_google_files_exported_and_changes_synced(tmp_path):
    cfg, dest = _cfg(tmp_path, "{env: {access_token: GDRIVE_TOKEN}}")
    sleeps: list[float] = []
    runtime = ConnectorRuntime(sleep=sleeps.append)
    with responses.RequestsMock() as rsps:
        # Given a folder listed over two pages with a sub-folder, a Doc, a Sheet, a PDF and a
        # Form, and one export first refused with Drive's per-user rate limit
        _listing(rsps, doc_version="7", with_pdf=True)
        rsps.get(f"{FILES}/D1/export", status=403, json={"error": {"code": 403, "message": "User Rate Limit Exceeded",
                 "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded", "message": "User Rate Limit Exceeded"}]}})
        rsps.get(f"{FILES}/D1/export", match=[matchers.query_param_matcher({"mimeType": DOCX})], body=b"PK-docx-bytes")
        rsps.get(f"{FILES}/S1/export", match=[matchers.query_param_matcher({"mimeType": XLSX})], body=b"PK-xlsx-bytes")
        rsps.get(f"{FILES}/P1", match=[matchers.query_param_matcher({"alt": "media", "supportsAllDrives": "true"})],
                 body=b"%PDF-1.7 bytes", headers={"Content-Type": "application/pdf"})
        # When synced
        report = run_sync(cfg, environ={"GDRIVE_TOKEN": "ya29.token"}, runtime=runtime)
        assert all(c.request.headers["Authorization"] == "Bearer ya29.token" for c in rsps.calls)
    # Then three documents landed with office extensions, the form was skipped, the limit
    # was backed off once, and the owner is the author
    src = report.sources[0]
    assert src.error is None and src.added == 3 and len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0
    assert (dest / "Design doc.docx").read_bytes() == b"PK-docx-bytes"
    assert (dest / "Specs" / "Plan.xlsx").read_bytes() == b"PK-xlsx-bytes"
    assert (dest / "Budget.pdf").read_bytes() == b"%PDF-1.7 bytes"
    meta = md.read_source_metadata(LocalStore(dest).head("Design doc.docx"))
    assert meta == {**meta, "source_type": "gdrive", "source_id": "D1", "title": "Design doc", "author": "Ada Lovelace",
                    "modified": "2024-03-04T05:06:07Z", "source_version": "7"}

    with responses.RequestsMock() as rsps:
        # Given the Doc edited (version 8) and the PDF trashed
        _listing(rsps, doc_version="8", with_pdf=False)
        rsps.get(f"{FILES}/D1/export", body=b"PK-docx-bytes-v8")
        # When synced again
        report = run_sync(cfg, environ={"GDRIVE_TOKEN": "ya29.token"}, runtime=runtime)
    # Then only the Doc is exported again and the PDF is deleted
    assert {d.key: d.status for d in report.sources[0].documents} == {
        "Design doc.docx": "updated", "Specs/Plan.xlsx": "unchanged", "Budget.pdf": "deleted"}


def test_service_account_key_is_exchanged_for_a_token(tmp_path):
    # Given a service account key (a freshly generated RSA key, as in a real key file)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    key = {"type": "service_account", "project_id": "p", "private_key_id": "k1", "private_key": pem,
           "client_email": "sync@p.iam.gserviceaccount.com", "token_uri": "https://oauth2.googleapis.com/token"}
    cfg, dest = _cfg(tmp_path, "{env: {service_account_json: SA_KEY}}")
    seen: dict = {}

    def token_endpoint(request):
        form = parse_qs(request.body)
        header, claims, signature = form["assertion"][0].split(".")
        pad = lambda s: s + "=" * (-len(s) % 4)  # noqa: E731
        # the assertion verifies with the key's public half: it was really signed with RS256
        private.public_key().verify(base64.urlsafe_b64decode(pad(signature)), f"{header}.{claims}".encode(),
                                    padding.PKCS1v15(), hashes.SHA256())
        seen.update(json.loads(base64.urlsafe_b64decode(pad(claims))), grant=form["grant_type"][0])
        return 200, {}, json.dumps({"access_token": "ya29.sa", "expires_in": 3599, "token_type": "Bearer"})

    with responses.RequestsMock() as rsps:
        rsps.add_callback(responses.POST, key["token_uri"], callback=token_endpoint)
        rsps.get(FILES, json={"kind": "drive#fileList", "files": []},
                 match=[matchers.header_matcher({"Authorization": "Bearer ya29.sa"})])
        # When synced
        report = run_sync(cfg, environ={"SA_KEY": json.dumps(key)}, runtime=ConnectorRuntime(clock=lambda: 1_700_000_000))
    # Then the JWT grant carried the right claims and the token was used
    assert report.sources[0].error is None
    assert seen["grant"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert seen["iss"] == key["client_email"] and seen["aud"] == key["token_uri"]
    assert seen["scope"] == "https://www.googleapis.com/auth/drive.readonly" and seen["exp"] - seen["iat"] == 3600


def test_expired_token_is_reported_as_an_auth_error(tmp_path):
    cfg, _ = _cfg(tmp_path, "{env: {access_token: GDRIVE_TOKEN}}")
    with responses.RequestsMock() as rsps:
        rsps.get(FILES, status=401, json={"error": {"code": 401, "status": "UNAUTHENTICATED",
                 "message": "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                 "errors": [{"message": "Invalid Credentials", "domain": "global", "reason": "authError",
                             "location": "Authorization", "locationType": "header"}]}})
        report = run_sync(cfg, environ={"GDRIVE_TOKEN": "expired"}, runtime=ConnectorRuntime(sleep=lambda s: None))
    assert report.sources[0].error.startswith("ConnectorAuthError: gdrive: authentication failed (401): Request had invalid")
