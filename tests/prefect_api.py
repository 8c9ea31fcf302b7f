"""A test's calls to a Prefect server's REST API, retried the way Prefect's own client retries them.

Under load (two pytest workers on two cores) a Prefect server on SQLite sometimes answers 503 for a
moment; mossforge talks to it through Prefect's client, which retries that, and so do the tests."""

from __future__ import annotations

import time

import httpx

RETRIED = {429, 502, 503, 504}  # the statuses Prefect's client retries


def request(method: str, url: str, *, attempts: int = 6, timeout: float = 30, **kwargs) -> httpx.Response:
    """The server's answer; a retried status only when every attempt got one (1, 2, 4, 8 … s apart)."""
    for attempt in range(attempts):
        response = httpx.request(method, url, timeout=timeout, **kwargs)
        if response.status_code not in RETRIED or attempt == attempts - 1:
            return response
        time.sleep(min(2 ** attempt, 8))
    raise AssertionError("unreachable")


def get(url: str, **kwargs) -> httpx.Response:
    return request("GET", url, **kwargs)


def post(url: str, **kwargs) -> httpx.Response:
    return request("POST", url, **kwargs)
