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
def test_503_then_success_backs_off_exponentially_with_jitter():
    # Given a service unavailable twice, then answering
    for _ in range(3):
        responses.get(URL, status=503, body="busy")
    responses.get(URL, json={"ok": True})
    sleeps: list[float] = []
    # When fetched
    client = _client(sleeps)
    # Then the waits are the retry policy's: within [ceiling / 2, ceiling], the ceiling doubling
    assert client.get_json(URL) == {"ok": True}
    assert len(sleeps) == 3
    for retry, wait in enumerate(sleeps):
        assert 2.0**retry / 2 <= wait <= 2.0**retry
    assert client.waits == sleeps


@responses.activate
def test_connection_errors_are_retried_then_reported():
    import requests

    responses.get(URL, body=requests.ConnectionError("refused"))
    sleeps: list[float] = []
    with pytest.raises(ConnectorError, match="cannot reach"):
        _client(sleeps, max_retries=2).get_json(URL)
    assert len(sleeps) == 2


@responses.activate
def test_a_deadline_bounds_the_retries_before_max_retries():
    responses.get(URL, status=429, headers={"Retry-After": "10"})
    now = [1000.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    client = HttpClient(service="svc", sleep=sleep, clock=lambda: now[0], max_retries=50, deadline=35.0)
    with pytest.raises(ConnectorRateLimited, match="after 4 attempts"):
        client.get_json(URL)
    assert sleeps == [10.0, 10.0, 10.0]


@responses.activate
def test_a_reset_further_than_max_wait_fails_at_once():
    responses.get(URL, status=403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": "4600"})
    sleeps: list[float] = []
    with pytest.raises(ConnectorRateLimited, match="after 1 attempts; next try allowed in 3601s"):
        _client(sleeps).get_json(URL)
    assert sleeps == []


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
    # Retry-After is a floor: never sooner than the server asked
    assert len(sleeps) == 2 and all(wait >= 1.0 for wait in sleeps)


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


@responses.activate
def test_a_200_the_service_marks_as_throttled_is_retried_then_rate_limited():
    # Given a MediaWiki-style answer: 200 with a maxlag error body and a Retry-After
    responses.get(URL, headers={"Retry-After": "5"}, json={"error": {"code": "maxlag", "info": "5 s lagged"}})
    sleeps: list[float] = []

    def maxlag(resp) -> bool:
        return resp.json().get("error", {}).get("code") == "maxlag"

    # When requested with that rule, Then it waits at least as asked and gives up typed
    with pytest.raises(ConnectorRateLimited, match="rate limited after 3 attempts.*5 s lagged"):
        _client(sleeps, max_retries=2).request("GET", URL, throttled=maxlag)
    assert len(sleeps) == 2 and all(wait >= 5.0 for wait in sleeps)
