"""One client for the France Travail partner APIs ("Marché du travail", "Offres d'emploi").

Both APIs sit behind the same OAuth2 client-credentials flow: a token is requested from
the `/partenaire` realm of `entreprise.francetravail.fr` with the scopes of the API, then
sent as `Authorization: Bearer`. Tokens live about 25 minutes, so the client caches one
until shortly before its expiry and asks for a new one once when the API answers 401
(a token can be revoked before its announced end).

The APIs rate-limit (429 with `Retry-After`) and have bad minutes (5xx, cut connections):
those are retried with backoff. Anything else is a `FranceTravailApiError` that names the
source, the method and the URL and never carries a credential: the client id and secret
travel only in the token request body, the token only in a request header, and every
message built here is scrubbed of all three before it is raised or logged.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import tempfile
import time
import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import requests

from assets.ingest.http import USER_AGENT, FetchError, redact, retry_after_seconds
from assets.ingest.landing import LandedFile, land_file
from assets.ingest.raw import ParseError

logger = logging.getLogger(__name__)

CLIENT_ID_ENV = "FRANCE_TRAVAIL_CLIENT_ID"
CLIENT_SECRET_ENV = "FRANCE_TRAVAIL_CLIENT_SECRET"
REQUIRED_ENV = (CLIENT_ID_ENV, CLIENT_SECRET_ENV)

# Token endpoint of the OpenAPI specs (`securitySchemes.authentification_partenaire`);
# the realm is a query parameter, the credentials a form body.
TOKEN_URL = "https://entreprise.francetravail.fr/connexion/oauth2/access_token"
TOKEN_REALM = "/partenaire"
API_HOST = "api.francetravail.io"
TOKEN_HOST = "entreprise.francetravail.fr"
# What every France Travail API source declares alike in its SourceSpec: the mirror holds
# generated answers (synthetic), the hosts and credentials, and no cheap release probe.
API_SOURCE_FIELDS = {
    "mirror_patterns": ("*.json*",),
    "notes": "Credentialed API (OAuth2 client credentials). The embedded mirror is generated "
    "deterministically in the exact response shape: every row is synthetic.",
    "synthetic": True,
    "extra_hosts": (API_HOST, TOKEN_HOST),
    "requires_env": REQUIRED_ENV,
    "release_probe": "none",
}

# Scopes each API requires (both marked "Obligatoire" in its spec).
SCOPES_MARCHE_TRAVAIL = ("api_stats-offres-demandes-emploiv1", "offresetdemandesemploi")
SCOPES_OFFRES = ("api_offresdemploiv2", "o2dsoffre")

# Renew a cached token this long before its announced expiry.
TOKEN_MARGIN_S = 60.0
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# Response headers kept with a landed response (no cookie, nothing credential-like).
SYNTHETIC_PREFIX = "synthetic__"
GZIP_MAGIC = b"\x1f\x8b"
KEPT_RESPONSE_HEADERS = ("content-type", "content-range", "content-length", "etag", "last-modified")


class FranceTravailApiError(FetchError):
    """An API call failed for good; the message is safe to log (no credential in it)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Credentials:
    """Client id and secret; their repr never shows them."""

    client_id: str = field(repr=False)
    client_secret: str = field(repr=False)

    @classmethod
    def from_env(cls, slug: str, environ: Mapping[str, str] | None = None) -> Credentials:
        env = os.environ if environ is None else environ
        missing = [name for name in REQUIRED_ENV if not env.get(name)]
        if missing:
            raise FranceTravailApiError(
                f"{slug}: the France Travail API needs {' and '.join(missing)} in the "
                "environment (credentials of a francetravail.io application)"
            )
        return cls(env[CLIENT_ID_ENV], env[CLIENT_SECRET_ENV])


@dataclass(frozen=True)
class ApiResponse:
    """One answer, as landed: exact body bytes, status, the request that produced it."""

    method: str
    url: str  # full request URL with its query string; never holds a credential
    status: int
    headers: dict[str, str]  # KEPT_RESPONSE_HEADERS only, lower-cased
    body: bytes
    request_json: dict | None = None

    def json(self):
        return json.loads(self.body) if self.body else None


class _Retry(Exception):
    def __init__(self, message: str, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


class FranceTravailClient:
    """Authenticated, rate-limit-aware calls to one France Travail API.

    `allowed_hosts` restricts every request (token included) to the official hosts; tests
    pass the loopback address. `sleep` and `clock` are injectable so retry waits and
    token expiry are testable without waiting.
    """

    def __init__(
        self,
        credentials: Credentials,
        scopes: Iterable[str],
        *,
        slug: str,
        token_url: str = TOKEN_URL,
        allowed_hosts: Iterable[str] = (API_HOST, TOKEN_HOST),
        session: requests.Session | None = None,
        connect_timeout: float = 10.0,
        read_timeout: float = 60.0,
        retries: int = 4,
        backoff_s: float = 1.0,
        max_retry_after_s: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._credentials = credentials
        self.scopes = tuple(scopes)
        self.slug = slug
        self.token_url = token_url
        self.allowed_hosts = frozenset(allowed_hosts)
        self._session = session or requests.Session()
        self._own_session = session is None
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff_s = backoff_s
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep
        self._clock = clock
        self._token: str | None = None
        self._token_expires_at = 0.0
        self.token_requests = 0  # how many tokens were fetched (observability, tests)
        self._check_host(token_url)

    def __repr__(self) -> str:
        return f"FranceTravailClient(slug={self.slug!r}, scopes={self.scopes!r})"

    def close(self) -> None:
        if self._own_session:
            self._session.close()

    def __enter__(self) -> FranceTravailClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------------- safety
    def scrub(self, text: str) -> str:
        """`text` without the client id, the secret or the current token."""
        for secret in (
            self._credentials.client_secret,
            self._credentials.client_id,
            self._token,
        ):
            if secret:
                text = text.replace(secret, "***")
        return redact(text)

    def _error(self, message: str, status: int | None = None) -> FranceTravailApiError:
        return FranceTravailApiError(self.scrub(f"{self.slug}: {message}"), status)

    def _check_host(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise self._error(f"refusing {url}: only http(s) URLs are supported")
        if parts.hostname not in self.allowed_hosts:
            raise self._error(
                f"refusing to contact {parts.hostname!r} ({url}): not among the allowed "
                f"hosts {sorted(self.allowed_hosts)}"
            )

    # -------------------------------------------------------------------------- token
    def token(self) -> str:
        """A valid access token, from the cache while it has more than a minute left."""
        if self._token is None or self._clock() >= self._token_expires_at - TOKEN_MARGIN_S:
            self._fetch_token()
        assert self._token is not None
        return self._token

    def invalidate_token(self) -> None:
        self._token = None
        self._token_expires_at = 0.0

    def _fetch_token(self) -> None:
        url = f"{self.token_url}?{urlencode({'realm': TOKEN_REALM})}"
        form = {
            "grant_type": "client_credentials",
            "client_id": self._credentials.client_id,
            "client_secret": self._credentials.client_secret,
            "scope": " ".join(self.scopes),
        }

        def send() -> requests.Response:
            return self._session.post(
                url,
                data=form,
                headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                timeout=self.timeout,
                allow_redirects=False,
            )

        response = self._with_retries("POST", url, send)
        with response:
            if response.status_code != 200:
                raise self._error(
                    f"token request to {url} failed: HTTP {response.status_code}"
                    f"{_oauth_error(response)}",
                    response.status_code,
                )
            try:
                payload = response.json()
                token = payload["access_token"]
                expires_in = float(payload.get("expires_in", 0) or 0)
            except (ValueError, KeyError, TypeError):
                raise self._error(
                    f"token response from {url} is not a JSON object with an access_token"
                ) from None
        if not isinstance(token, str) or not token:
            raise self._error(f"token response from {url} has an empty access_token")
        self._token = token
        self._token_expires_at = self._clock() + max(expires_in, 0.0)
        self.token_requests += 1
        logger.debug("%s: new API token, valid %.0f s", self.slug, expires_in)

    # ----------------------------------------------------------------------- requests
    def get(self, url: str, params: Mapping[str, object] | None = None) -> ApiResponse:
        return self.request("GET", url, params=params)

    def post(self, url: str, json_body: dict) -> ApiResponse:
        return self.request("POST", url, json_body=json_body)

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, object] | None = None,
        json_body: dict | None = None,
        ok: Iterable[int] = (200, 204, 206),
    ) -> ApiResponse:
        """Call the API; retries transient failures, refreshes the token once on 401."""
        full_url = url
        if params:
            query = urlencode({k: _param(v) for k, v in params.items() if v is not None})
            full_url = f"{url}{'&' if '?' in url else '?'}{query}"
        self._check_host(full_url)
        ok = frozenset(ok)
        refreshed = False
        while True:
            token = self.token()

            def send(token: str = token) -> requests.Response:
                headers = {
                    "User-Agent": USER_AGENT,
                    "Accept": "application/json",
                    "Authorization": f"Bearer {token}",
                }
                return self._session.request(
                    method,
                    full_url,
                    json=json_body,
                    headers=headers,
                    timeout=self.timeout,
                    allow_redirects=False,
                )

            response = self._with_retries(method, full_url, send)
            with response:
                status = response.status_code
                if status == 401 and not refreshed:
                    logger.info(
                        "%s: %s %s answered 401; renewing the token once",
                        self.slug,
                        method,
                        self.scrub(full_url),
                    )
                    self.invalidate_token()
                    refreshed = True
                    continue
                if status not in ok:
                    detail = " (still unauthorised after a new token)" if status == 401 else ""
                    raise self._error(
                        f"{method} {full_url}: HTTP {status} {response.reason or ''}".rstrip()
                        + detail
                        + _short_body(response),
                        status,
                    )
                try:
                    body = response.content
                except requests.RequestException as exc:
                    raise self._error(
                        f"{method} {full_url}: reading the body failed: {type(exc).__name__}"
                    ) from None
                headers = {
                    k.lower(): v
                    for k, v in response.headers.items()
                    if k.lower() in KEPT_RESPONSE_HEADERS
                }
                return ApiResponse(method, self.scrub(full_url), status, headers, body, json_body)

    def _with_retries(
        self, method: str, url: str, send: Callable[[], requests.Response]
    ) -> requests.Response:
        """Run `send` until it gives a non-transient answer or the retries run out."""
        for attempt in range(self.retries + 1):
            try:
                try:
                    response = send()
                except (
                    requests.ConnectionError,
                    requests.Timeout,
                    requests.exceptions.ChunkedEncodingError,
                ) as exc:
                    raise _Retry(f"{type(exc).__name__}") from None
                except requests.RequestException as exc:
                    raise self._error(
                        f"{method} {url}: request failed: {type(exc).__name__}"
                    ) from None
                if response.status_code in RETRY_STATUSES:
                    wait = retry_after_seconds(response.headers.get("Retry-After"))
                    response.close()
                    if wait is not None:
                        wait = min(wait, self.max_retry_after_s)
                    raise _Retry(f"HTTP {response.status_code}", wait)
                if 300 <= response.status_code < 400:
                    response.close()
                    raise self._error(
                        f"{method} {url}: unexpected redirect HTTP {response.status_code} "
                        "(the API does not redirect; refusing to follow)",
                        response.status_code,
                    )
                return response
            except _Retry as exc:
                if attempt == self.retries:
                    raise self._error(
                        f"giving up on {method} {url} after {attempt + 1} attempt(s): {exc}"
                    ) from None
                wait = exc.wait if exc.wait is not None else self.backoff_s * 2**attempt
                logger.warning(
                    "%s: %s %s failed (%s); retry %d/%d in %.1f s",
                    self.slug,
                    method,
                    self.scrub(url),
                    exc,
                    attempt + 1,
                    self.retries,
                    wait,
                )
                self._sleep(wait)
        raise AssertionError("unreachable")  # pragma: no cover


def _param(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _oauth_error(response: requests.Response) -> str:
    """The OAuth `error` code of a refused token request, never the raw body."""
    try:
        payload = response.json()
    except ValueError:
        return ""
    if isinstance(payload, dict) and isinstance(payload.get("error"), str):
        return f" ({payload['error'][:60]})"
    return ""


def _short_body(response: requests.Response) -> str:
    try:
        text = response.text.strip()
    except requests.RequestException:
        return ""
    return f": {text[:200]!r}" if text else ""


def parse_content_range(value: str | None) -> tuple[int, int, int] | None:
    """`offres 0-149/3421` -> (0, 149, 3421); `*/0` -> (0, -1, 0); None when absent."""
    if not value:
        return None
    text = value.strip()
    if " " in text:
        text = text.split(" ", 1)[1].strip()
    span, _, total = text.partition("/")
    try:
        count = int(total)
    except ValueError:
        return None
    if span.strip() == "*":
        return 0, -1, count
    first, _, last = span.partition("-")
    try:
        return int(first), int(last), count
    except ValueError:
        return None


__all__ = [
    "API_HOST",
    "API_SOURCE_FIELDS",
    "ApiResponse",
    "Credentials",
    "FranceTravailApiError",
    "FranceTravailClient",
    "REQUIRED_ENV",
    "SCOPES_MARCHE_TRAVAIL",
    "SCOPES_OFFRES",
    "TOKEN_HOST",
    "TOKEN_URL",
    "is_synthetic_file",
    "land_response",
    "parse_content_range",
    "read_json",
]


# ------------------------------------------------------------------ landing and reading


def land_response(
    landing_dir: Path,
    slug: str,
    file_name: str,
    response: ApiResponse,
    *,
    fetched_at: datetime,
) -> LandedFile:
    """Land the exact bytes of one API answer under `file_name`, with its request URL.

    The sidecar keeps the request URL (no credential ever goes in a URL here) and the
    harmless response headers `land_file` retains; the Authorization header is a request
    header and is never passed on.
    """
    slug_dir = Path(landing_dir) / slug
    slug_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".api-", suffix=".part", dir=slug_dir)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(response.body)
        return land_file(
            landing_dir,
            slug,
            file_name,
            tmp,
            url=response.url,
            upstream_url=response.url,
            mode="live",
            status=response.status,
            headers=response.headers,
            fetched_at=fetched_at,
        )
    finally:
        tmp.unlink(missing_ok=True)


def read_json(landed: LandedFile, *, slug: str):
    """The JSON document of a landed response; gzip-compressed mirror files are accepted."""
    data = landed.path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:
            raise ParseError(f"{slug}: {landed.file_name} is a broken gzip file: {exc}") from None
    try:
        return json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ParseError(
            f"{slug}: {landed.file_name} is not a JSON document (expected an API response): {exc}"
        ) from None


def is_synthetic_file(file_name: str) -> bool:
    """Generated mirror files carry the `synthetic__` prefix (see synthetic_francetravail)."""
    return file_name.startswith(SYNTHETIC_PREFIX)
