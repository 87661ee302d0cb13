"""The shared HTTP client's retry rules, over recorded responses."""

from __future__ import annotations

import pytest
import responses

from docmill.connectors.http import HttpClient
from docmill.errors import ConnectorAuthError, ConnectorError, ConnectorRateLimited

URL = "https://api.example.com/items"


def _client(sleeps: list[float], **kw) -> HttpClient:
    return HttpClient(service="svc", sleep=sleeps.append, clock=lambda: 1000.0, **kw)


@responses.activate
def test_503_then_success_backs_off_exponentially():
    for _ in range(2):
        responses.get(URL, status=503, body="busy")
    responses.get(URL, json={"ok": True})
    sleeps: list[float] = []
    assert _client(sleeps).get_json(URL) == {"ok": True}
    assert sleeps == [1.0, 2.0]


@responses.activate
def test_http_date_retry_after_is_honoured():
    responses.get(URL, status=429, headers={"Retry-After": "Thu, 01 Jan 1970 00:16:50 GMT"})  # epoch 1010
    responses.get(URL, json={})
    sleeps: list[float] = []
    _client(sleeps).get_json(URL)
    assert sleeps == [10.0]


@responses.activate
def test_retries_are_bounded():
    responses.get(URL, status=429, headers={"Retry-After": "1"})
    sleeps: list[float] = []
    with pytest.raises(ConnectorRateLimited, match="after 3 attempts"):
        _client(sleeps, max_retries=2).get_json(URL)
    assert sleeps == [1.0, 1.0]


@responses.activate
def test_plain_403_and_404_are_not_retried():
    responses.get(URL, status=403, json={"message": "Resource not accessible by integration"})
    responses.get(URL + "/x", status=404, json={"message": "Not Found"})
    sleeps: list[float] = []
    with pytest.raises(ConnectorAuthError, match="access denied .403.: Resource not accessible"):
        _client(sleeps).get_json(URL)
    with pytest.raises(ConnectorError, match="failed .404.: Not Found"):
        _client(sleeps).get_json(URL + "/x")
    assert sleeps == []
