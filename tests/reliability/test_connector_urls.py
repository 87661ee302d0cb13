"""Connectors call only their configured service: real sockets on loopback, one server that
redirects to a second host (which must never see a request, let alone the token), and
configurations pointing at the instance metadata address or plain http."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from docmill.connectors.config import SourceConfig
from docmill.connectors.registry import ConnectorRuntime, build_connector
from docmill.connectors.urlpolicy import UrlPolicy
from docmill.errors import ConnectorUrlRefused

TOKEN = "ghp_sentinel_never_leaves_the_service_000000"
LOOPBACK = ConnectorRuntime(sleep=lambda s: None, max_retries=0, timeout=5,
                            url_policy=UrlPolicy(allow_loopback=True))


@dataclass
class Server:
    base: str
    routes: dict[str, tuple[int, dict[str, str], Any]]
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)


@pytest.fixture
def servers() -> Iterator[dict[str, Server]]:
    """Two HTTP servers on two different loopback hosts: 127.0.0.1 (the service) and 127.0.0.2."""
    started: dict[str, Server] = {}
    handles = []
    for name, host in (("service", "127.0.0.1"), ("elsewhere", "127.0.0.2")):
        srv = Server(base="", routes={})

        class Handler(BaseHTTPRequestHandler):
            server_state = srv

            def _answer(self) -> None:
                state = self.server_state
                state.seen.append((self.command, self.path, dict(self.headers)))
                status, headers, body = state.routes.get(self.path.split("?", 1)[0], (404, {}, {"message": "nope"}))
                payload = json.dumps(body).encode()
                self.send_response(status)
                for k, v in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_DELETE = _answer  # noqa: N815 - BaseHTTPRequestHandler dispatch names

            def log_message(self, *args: Any) -> None:
                pass

        httpd = ThreadingHTTPServer((host, 0), Handler)
        srv.base = f"http://{host}:{httpd.server_address[1]}"
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        handles.append(httpd)
        started[name] = srv
    yield started
    for httpd in handles:
        httpd.shutdown()
        httpd.server_close()


def _github(api_url: str, runtime: ConnectorRuntime = LOOPBACK):
    source = SourceConfig.model_validate({"type": "github", "name": "h", "options": {"repo": "acme/x", "api_url": api_url}})
    return build_connector(source, {"token": TOKEN}, runtime)


def _serve_repo(srv: Server, prefix: str = "") -> None:
    srv.routes[f"{prefix}/repos/acme/x"] = (200, {}, {"default_branch": "main", "html_url": "https://github.com/acme/x"})
    srv.routes[f"{prefix}/repos/acme/x/git/trees/main"] = (
        200, {}, {"sha": "t", "truncated": False, "tree": [{"path": "a.md", "type": "blob", "mode": "100644",
                                                              "sha": "b1", "size": 3}]})


def test_a_redirect_within_the_service_is_followed(servers):
    # Given the service moving its API under /v2 with a same-origin redirect
    service = servers["service"]
    _serve_repo(service, "/v2")
    service.routes["/repos/acme/x"] = (301, {"Location": "/v2/repos/acme/x"}, {})
    service.routes["/repos/acme/x/git/trees/main"] = (307, {"Location": "/v2/repos/acme/x/git/trees/main?recursive=1"}, {})
    # When the connector lists the repository
    docs = list(_github(service.base).list_documents())
    # Then the redirects were followed on the same host
    assert [d.id for d in docs] == ["a.md"]
    assert [p for _, p, _ in service.seen][:2] == ["/repos/acme/x", "/v2/repos/acme/x"]


def test_a_redirect_to_another_host_is_refused_and_the_token_never_leaves(servers):
    # Given the configured service answering with a redirect to a second host
    service, elsewhere = servers["service"], servers["elsewhere"]
    _serve_repo(elsewhere)
    service.routes["/repos/acme/x"] = (302, {"Location": f"{elsewhere.base}/repos/acme/x"}, {})
    connector = _github(service.base)
    # When the connector lists the repository
    with pytest.raises(ConnectorUrlRefused, match="redirected to another host"):
        list(connector.list_documents())
    # Then the service saw the token (it is the service) and the other host saw nothing at all
    assert service.seen and service.seen[0][2]["Authorization"] == f"Bearer {TOKEN}"
    assert elsewhere.seen == []


def test_a_redirect_to_another_port_on_the_same_host_is_another_service(servers):
    service = servers["service"]
    other_port = f"http://127.0.0.1:{int(service.base.rsplit(':', 1)[1]) + 1}"
    service.routes["/repos/acme/x"] = (302, {"Location": f"{other_port}/repos/acme/x"}, {})
    with pytest.raises(ConnectorUrlRefused, match="another host"):
        list(_github(service.base).list_documents())


@pytest.mark.parametrize("api_url", [
    "https://169.254.169.254/latest/meta-data",
    "https://[fd00:ec2::254]/latest",
    "https://10.0.0.5",
    "https://192.168.1.1:8443",
    "https://[::ffff:169.254.169.254]",
])
def test_configured_internal_addresses_are_refused_before_connecting(api_url):
    # Given an api_url on a metadata or private address (no server there: nothing may be dialled)
    runtime = ConnectorRuntime(sleep=lambda s: None, max_retries=0, timeout=2)
    # When the connector is built, Then the configuration is refused outright
    with pytest.raises(ConnectorUrlRefused, match="refused"):
        _github(api_url, runtime)


def test_a_name_that_resolves_to_the_metadata_address_is_refused_after_resolution():
    # Given a public-looking name whose DNS answer is the metadata service
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["169.254.169.254"]

    runtime = ConnectorRuntime(sleep=lambda s: None, max_retries=0, timeout=2, url_policy=UrlPolicy(resolver=resolver))
    connector = _github("https://api.github.example", runtime)
    # When it lists, Then the connection is refused on the resolved address
    with pytest.raises(ConnectorUrlRefused, match="169.254.169.254"):
        list(connector.list_documents())
    assert lookups == ["api.github.example"]


def test_a_name_resolving_to_loopback_is_refused_unless_loopback_is_allowed(servers):
    service = servers["service"]
    _serve_repo(service)
    url = service.base.replace("127.0.0.1", "localhost")
    strict = ConnectorRuntime(sleep=lambda s: None, max_retries=0, timeout=2,
                              url_policy=UrlPolicy(resolver=lambda h, p: ["127.0.0.1"]))
    # https to a name resolving to 127.0.0.1: refused by the default policy at connection time
    with pytest.raises(ConnectorUrlRefused, match="loopback"):
        list(_github(url.replace("http://", "https://"), strict).list_documents())
    assert service.seen == []


@pytest.mark.parametrize("api_url", ["http://api.github.com", "http://127.0.0.1:9", "ftp://api.github.com"])
def test_plain_http_is_refused_by_default(api_url):
    with pytest.raises(ConnectorUrlRefused, match="https"):
        list(_github(api_url, ConnectorRuntime(sleep=lambda s: None, max_retries=0)).list_documents())


def test_plain_http_to_a_non_loopback_host_is_refused_even_with_loopback_allowed():
    with pytest.raises(ConnectorUrlRefused, match="https"):
        list(_github("http://203.0.113.7", LOOPBACK).list_documents())


def test_an_allowed_network_opens_a_vpc_service_but_never_the_metadata_address():
    policy = UrlPolicy(allowed_networks=("10.0.0.0/8", "169.254.0.0/16"))
    assert str(policy.check_address("10.1.2.3")) == "10.1.2.3"
    with pytest.raises(ConnectorUrlRefused, match="metadata"):
        policy.check_address("169.254.169.254")


def test_elasticsearch_scroll_stays_on_its_configured_host(servers):
    # Given an Elasticsearch whose scroll answer redirects to another host
    service, elsewhere = servers["service"], servers["elsewhere"]
    service.routes["/kb/_search"] = (200, {}, {"_scroll_id": "s1", "_shards": {"failed": 0},
                                               "hits": {"hits": [{"_index": "kb", "_id": "1", "_source": {"text": "x"}}]}})
    service.routes["/_search/scroll"] = (307, {"Location": f"{elsewhere.base}/_search/scroll"}, {})
    source = SourceConfig.model_validate({"type": "elasticsearch", "name": "kb", "options": {
        "url": service.base, "index": "kb", "auth": "basic", "text_fields": ["text"]}})
    connector = build_connector(source, {"username": "u", "password": "sentinel-es-pass"}, LOOPBACK)
    # When it reads the index, Then the second page is refused and the other host saw nothing
    with pytest.raises(ConnectorUrlRefused, match="another host"):
        list(connector.list_documents())
    assert elsewhere.seen == []
    assert any(method == "DELETE" for method, _, _ in service.seen)  # scroll freed on the service


def test_drive_refuses_a_service_account_key_whose_token_uri_is_elsewhere(servers):
    # Given a service account key whose token_uri points at another host
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    pem = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    elsewhere = servers["elsewhere"]
    key = {"type": "service_account", "client_email": "x@p.iam.gserviceaccount.com", "private_key": pem,
           "private_key_id": "k1", "token_uri": f"{elsewhere.base}/token"}
    source = SourceConfig.model_validate({"type": "gdrive", "name": "d", "options": {
        "folder_id": "root", "api_url": servers["service"].base, "token_uri": f"{servers['service'].base}/token"}})
    # When the connector is built, Then the exchange is refused and the assertion never sent
    with pytest.raises(ConnectorUrlRefused, match="outside the configured service"):
        build_connector(source, {"service_account_json": json.dumps(key)}, LOOPBACK)
    assert elsewhere.seen == []
