"""All HTTP policy for provider APIs, in one place.

* one ``requests.Session`` per (provider, token), and a timeout on every call;
* idempotent calls (GET, DELETE) retry connection errors, 429 and 5xx with
  exponential backoff and full jitter, a bounded number of times;
* writes (POST) are re-sent only when the request provably never reached the
  server (a 429, or a failure to connect); any other failure is *ambiguous*
  and the caller must look before trying again;
* a 429 waits for ``Retry-After``, else ``RateLimit-Reset``, else backoff,
  and pauses every job sharing the token;
* a per-token limiter keeps concurrent jobs under the provider's budget and
  spaces requests out as ``RateLimit-Remaining`` runs low.
"""

from __future__ import annotations

import collections
import email.utils
import hashlib
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from snapshotd import __version__
from snapshotd.clock import Clock
from snapshotd.config.model import PROVIDER_LABELS, RateLimit
from snapshotd.errors import ProviderError
from snapshotd.redact import Redactor

USER_AGENT = f"snapshotd/{__version__}"
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})
BUCKET_PROVIDERS = frozenset({"hetzner"})  # documented as a refilling bucket


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests shrink these; production keeps the defaults."""

    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_tries: int = 5
    backoff_base: float = 1.0
    backoff_cap: float = 30.0
    max_rate_limit_wait: float = 900.0


def backoff_delay(attempt: int, policy: RetryPolicy, rng: random.Random) -> float:
    """Full jitter: a uniform delay up to ``base * 2**attempt``, capped."""
    return rng.uniform(0, min(policy.backoff_cap, policy.backoff_base * (2**attempt)))


class RateLimiter:
    """A per-token request budget shared by every job that uses the token.

    ``window`` mode (DigitalOcean) allows at most ``requests`` in any sliding
    ``period``. ``bucket`` mode (Hetzner) models a bucket of ``requests``
    tokens refilled evenly over ``period``, as Hetzner documents its limit.
    """

    def __init__(self, limits: Sequence[RateLimit], clock: Clock, mode: str = "window") -> None:
        self._limits = tuple(limits)
        self._mode = mode
        self._windows = [collections.deque[float]() for _ in self._limits]
        self._tokens = [float(limit.requests) for limit in self._limits]
        self._clock = clock
        self._lock = threading.Lock()
        self._updated = clock.monotonic()
        self._not_before = 0.0
        self._spacing = max((lim.period / lim.requests for lim in self._limits), default=0.0)
        self._next_spaced = 0.0
        self._spaced = False

    def acquire(self) -> None:
        """Block until one more request fits the budget, then count it."""
        while True:
            with self._lock:
                now = self._clock.monotonic()
                wait = max(self._not_before, self._next_spaced if self._spaced else 0.0) - now
                wait = max(wait, self._budget_wait(now))
                if wait <= 0:
                    self._take(now)
                    if self._spaced:
                        self._next_spaced = now + self._spacing
                    return
            self._clock.sleep(min(wait, 1.0))

    def _budget_wait(self, now: float) -> float:
        wait = 0.0
        if self._mode == "bucket":
            for index, limit in enumerate(self._limits):
                rate = limit.requests / limit.period
                tokens = min(limit.requests, self._tokens[index] + (now - self._updated) * rate)
                self._tokens[index] = tokens
                if tokens < 1:
                    wait = max(wait, (1 - tokens) / rate)
            self._updated = now
            return wait
        for limit, window in zip(self._limits, self._windows, strict=True):
            while window and window[0] <= now - limit.period:
                window.popleft()
            if len(window) >= limit.requests:
                wait = max(wait, window[0] + limit.period - now)
        return wait

    def _take(self, now: float) -> None:
        if self._mode == "bucket":
            self._tokens = [tokens - 1 for tokens in self._tokens]
        else:
            for window in self._windows:
                window.append(now)

    def pause(self, seconds: float) -> None:
        """Hold every user of this token back (after a 429)."""
        with self._lock:
            self._not_before = max(self._not_before, self._clock.monotonic() + seconds)

    def observe(self, headers: Mapping[str, str]) -> None:
        """Slow to the refill rate while the provider says the budget is nearly spent.

        This matters when other clients (a CLI, Terraform) share the token and
        spend budget this process does not see.
        """
        remaining = _int_header(headers, "RateLimit-Remaining")
        limit = _int_header(headers, "RateLimit-Limit")
        if remaining is None or limit is None:
            return
        with self._lock:
            self._spaced = remaining <= max(2, limit // 10)
            if self._mode == "bucket":  # never believe in more tokens than the provider has
                self._tokens = [min(tokens, float(remaining)) for tokens in self._tokens]


class HttpContext:
    """Sessions and limiters shared across jobs, keyed by (provider, token)."""

    def __init__(
        self,
        rate_limits: Mapping[str, Sequence[RateLimit]],
        clock: Clock,
        redactor: Redactor,
        *,
        session_factory: Callable[[], requests.Session] = requests.Session,
        policy: RetryPolicy | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.rate_limits = dict(rate_limits)
        self.clock = clock
        self.redactor = redactor
        self.policy = policy or RetryPolicy()
        self.rng = rng or random.Random()
        self._session_factory = session_factory
        self._sessions: dict[tuple[str, str], requests.Session] = {}
        self._limiters: dict[tuple[str, str], RateLimiter] = {}
        self._lock = threading.Lock()

    def client(self, provider: str, base_url: str, token: str) -> ApiClient:
        key = (provider, hashlib.sha256(token.encode()).hexdigest())
        with self._lock:
            if key not in self._sessions:
                session = self._session_factory()
                session.headers["User-Agent"] = USER_AGENT
                self._sessions[key] = session
                self._limiters[key] = RateLimiter(
                    self.rate_limits.get(provider, ()),
                    self.clock,
                    mode="bucket" if provider in BUCKET_PROVIDERS else "window",
                )
            session, limiter = self._sessions[key], self._limiters[key]
        return ApiClient(provider, base_url, token, session, limiter, self)

    def close(self) -> None:
        with self._lock:
            for session in self._sessions.values():
                session.close()
            self._sessions.clear()


class ApiClient:
    """One job's view of one provider API: counts its requests, maps its errors."""

    def __init__(
        self,
        provider: str,
        base_url: str,
        token: str,
        session: requests.Session,
        limiter: RateLimiter,
        context: HttpContext,
    ) -> None:
        self.provider = provider
        self.label = PROVIDER_LABELS.get(provider, provider)
        self.base_url = base_url.rstrip("/") + "/"
        self._token = token
        self._session = session
        self._limiter = limiter
        self._context = context
        self.requests_made = 0
        self.rate_limited = 0

    # -- public verbs ----------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self._json(self._send("GET", path, params=params, idempotent=True))

    def delete(self, path: str) -> None:
        self._send("DELETE", path, idempotent=True)

    def post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return self._json(self._send("POST", path, json=dict(body), idempotent=False))

    def same_origin(self, url: str) -> bool:
        """Whether ``url`` points at our API (pagination links must, or the token would leak)."""
        ours, theirs = urlsplit(self.base_url), urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    # -- the one request loop -------------------------------------------

    def _send(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        idempotent: bool,
    ) -> requests.Response:
        url = (
            path
            if path.startswith(("http://", "https://"))
            else urljoin(self.base_url, path.lstrip("/"))
        )
        policy = self._context.policy
        clock = self._context.clock
        attempt = 0
        waited_for_rate_limit = 0.0
        while True:
            self._limiter.acquire()
            self.requests_made += 1
            try:
                response = self._session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers={"Authorization": f"Bearer {self._token}"},
                    timeout=(policy.connect_timeout, policy.read_timeout),
                )
            except requests.RequestException as exc:
                never_sent = _never_reached_server(exc)
                error = self._transport_error(method, url, exc, ambiguous=not never_sent)
                if (idempotent or never_sent) and attempt + 1 < policy.max_tries:
                    clock.sleep(backoff_delay(attempt, policy, self._context.rng))
                    attempt += 1
                    continue
                raise error from None
            self._limiter.observe(response.headers)
            if response.status_code == 429:
                self.rate_limited += 1
                wait = _rate_limit_wait(response.headers)
                if wait is None:
                    wait = backoff_delay(attempt, policy, self._context.rng) + 1.0
                if waited_for_rate_limit + wait > policy.max_rate_limit_wait:
                    raise self._error(
                        response,
                        f"rate limited by {self.label}: asked to wait {wait:.0f}s more after "
                        f"{waited_for_rate_limit:.0f}s, beyond the "
                        f"{policy.max_rate_limit_wait:.0f}s cap",
                    )
                self._limiter.pause(wait)
                waited_for_rate_limit += wait
                continue
            if response.status_code >= 500 or (response.ok and not _has_json(response)):
                retry = idempotent and attempt + 1 < policy.max_tries
                if response.ok:
                    error = self._malformed(method, url, response)
                else:
                    error = self._error(response, ambiguous=not idempotent)
                if retry:
                    clock.sleep(backoff_delay(attempt, policy, self._context.rng))
                    attempt += 1
                    continue
                raise error
            if not response.ok:
                raise self._error(response)
            return response

    # -- error mapping ---------------------------------------------------

    def _json(self, response: requests.Response) -> dict[str, Any]:
        try:
            data = response.json()
        except ValueError:
            raise self._malformed(response.request.method or "", response.url, response) from None
        if not isinstance(data, dict):
            raise self._malformed(response.request.method or "", response.url, response)
        return data

    def _malformed(self, method: str, url: str, response: requests.Response) -> ProviderError:
        return ProviderError(
            self.provider,
            self._redact(
                f"{self.label} sent a malformed response to {method} {_path(url)} "
                f"(HTTP {response.status_code}, not a JSON object)"
            ),
            status=response.status_code,
            code="malformed_response",
            retryable=True,
            ambiguous=method == "POST",
        )

    def _transport_error(
        self, method: str, url: str, exc: requests.RequestException, *, ambiguous: bool
    ) -> ProviderError:
        kind = "timed out" if isinstance(exc, requests.Timeout) else "failed"
        return ProviderError(
            self.provider,
            self._redact(f"{method} {_path(url)} to {self.label} {kind}: {type(exc).__name__}"),
            code="timeout" if isinstance(exc, requests.Timeout) else "connection_error",
            retryable=True,
            ambiguous=ambiguous and method == "POST",
        )

    def _error(
        self, response: requests.Response, message: str | None = None, *, ambiguous: bool = False
    ) -> ProviderError:
        code, detail = _provider_error_fields(response)
        status = response.status_code
        if message is None:
            if status == 401:
                message = f"API token rejected by {self.label} ({code or 'unauthorized'})"
            elif status == 403:
                message = (
                    f"API token lacks permission at {self.label} ({code or 'forbidden'}): {detail}"
                )
            else:
                method = response.request.method if response.request else ""
                message = (
                    f"{self.label} answered HTTP {status} to {method} {_path(response.url)}"
                    f" ({code or 'no error code'}): {detail or response.reason}"
                )
        return ProviderError(
            self.provider,
            self._redact(message),
            status=status,
            code=code,
            retryable=status in RETRYABLE_STATUS,
            ambiguous=ambiguous,
        )

    def _redact(self, text: str) -> str:
        return self._context.redactor.redact(text.replace(self._token, "***"))


def _never_reached_server(exc: requests.RequestException) -> bool:
    """A failure to connect means the request was never sent, so re-sending is safe."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        text = repr(exc)
        return "NewConnectionError" in text or "Failed to establish" in text
    return False


def _has_json(response: requests.Response) -> bool:
    if response.status_code == 204 or not response.content:
        return response.request is not None and response.request.method == "DELETE"
    try:
        return isinstance(response.json(), dict)
    except ValueError:
        return False


def _provider_error_fields(response: requests.Response) -> tuple[str | None, str]:
    """(code, message) from DigitalOcean ``{id, message}`` or Hetzner ``{error: {…}}``."""
    try:
        body = response.json()
    except ValueError:
        return None, ""
    if not isinstance(body, dict):
        return None, ""
    inner = body.get("error")
    if isinstance(inner, dict):
        return _str_or_none(inner.get("code")), str(inner.get("message") or "")[:300]
    return _str_or_none(body.get("id")), str(body.get("message") or "")[:300]


def _str_or_none(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, int)) and str(value) else None


def _rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    retry_after = headers.get("Retry-After")
    if retry_after:
        try:
            return max(0.0, float(retry_after))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(retry_after)
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    reset = _int_header(headers, "RateLimit-Reset")
    if reset is not None:
        return max(0.0, reset - time.time())
    return None


def _int_header(headers: Mapping[str, str], name: str) -> int | None:
    value = headers.get(name)
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def _path(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")
