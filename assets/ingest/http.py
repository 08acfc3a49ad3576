"""The one way tremplin downloads a published file.

Publishers' servers fail in ordinary ways: they rate-limit, answer 5xx for a while, cut a
connection mid-file, or serve a friendly HTML error page with status 200 where a CSV was
promised. `download` absorbs the transient failures (bounded retries with backoff) and
turns every other surprise into a `FetchError` that names the source, the URL and what was
expected, so a bad upstream day never lands a wrong file.

The body is streamed to a temporary file next to its destination (never held in memory)
and hashed on the way, so callers can land it without reading it again. A failed attempt
never leaves a partial file behind.

Credentials (an `Authorization` header, a session's auth, a token in the URL) are never
logged nor copied into error messages, and are not forwarded when a redirect leaves the
original host.
"""

from __future__ import annotations

import email.utils
import hashlib
import http.client
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests

logger = logging.getLogger(__name__)

USER_AGENT = "tremplin/0.1 (open-data warehouse of labour-market indicators)"
MAX_REDIRECTS = 10
CHUNK_SIZE = 64 * 1024
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
# Formats whose bytes can never legitimately be an HTML page.
FILE_FORMATS = frozenset({"csv", "json", "xlsx", "xls", "zip"})
ZIP_MAGIC = b"PK\x03\x04"
OLE_MAGIC = bytes.fromhex("D0CF11E0A1B11AE1")
UTF8_BOM = b"\xef\xbb\xbf"
# Bytes inspected for HTML / magic numbers before the rest of the body is read.
HEAD_BYTES = 1024
# Response headers that must never be kept (they carry session secrets).
DROPPED_HEADERS = frozenset({"set-cookie", "set-cookie2"})

_SECRET_QUERY = re.compile(
    r"(?i)((?:access_?token|token|api_?key|key|secret|password|passwd|pwd|signature|sig|"
    r"client_secret|auth)=)[^&\s'\"#]+"
)
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/@\s'\"]+@")


class FetchError(RuntimeError):
    """A file could not be fetched or is not what its source promised."""


@dataclass(frozen=True)
class HttpResult:
    url: str
    final_url: str
    status: int
    headers: dict[str, str]
    body_path: Path | None  # temp file holding the body (None when 304 Not Modified)
    sha256: str | None
    size: int | None
    not_modified: bool


class _Transient(Exception):
    """A failure worth another attempt; `retry_after` is the server's requested wait."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def redact(text: str) -> str:
    """Strip credentials (URL user info, token-like query values) before text is shown."""
    text = _USERINFO.sub(r"\1***@", text)
    return _SECRET_QUERY.sub(r"\1***", text)


def describe_format(expected_format: str) -> str:
    """Human name of a format for error messages ("a CSV file", "an XLSX workbook")."""
    names = {
        "csv": "a CSV file",
        "json": "a JSON document",
        "xlsx": "an XLSX workbook",
        "xls": "an XLS workbook",
        "zip": "a ZIP archive",
    }
    return names.get(expected_format, f"a {expected_format} file")


def check_content(head: bytes, expected_format: str, content_type: str | None = None) -> None:
    """Raise ValueError when the first bytes cannot be `expected_format`.

    Shared with mirror landing so that a mirror file gets the same scrutiny as a
    download. Only cheap, unambiguous signals are used: an HTML page, or a missing magic
    number for the binary formats and JSON.
    """
    fmt = expected_format.lower()
    if fmt not in FILE_FORMATS:
        return
    what = describe_format(fmt)
    if not head:
        raise ValueError(f"empty body where {what} was expected")
    mime = (content_type or "").split(";", 1)[0].strip().lower()
    text_start = head.removeprefix(UTF8_BOM).lstrip().lower()
    if mime == "text/html" or text_start.startswith((b"<!doctype html", b"<html")):
        detail = f" (Content-Type {mime})" if mime == "text/html" else ""
        raise ValueError(f"served an HTML page instead of {what}{detail}")
    if fmt in ("xlsx", "zip") and not head.startswith(ZIP_MAGIC):
        raise ValueError(
            f"expected {what} starting with the ZIP signature PK\\x03\\x04, got {head[:8]!r}"
        )
    if fmt == "xls" and not head.startswith(OLE_MAGIC):
        raise ValueError(
            f"expected {what} starting with the OLE signature D0CF11E0, got {head[:8]!r}"
        )
    if fmt == "json" and text_start[:1] not in (b"{", b"["):
        raise ValueError(f"expected {what} starting with '{{' or '[', got {head[:16]!r}")


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _drop_authorization(request: requests.PreparedRequest) -> requests.PreparedRequest:
    """Auth hook for hops off the original host: forward no credential there."""
    request.headers.pop("Authorization", None)
    request.headers.pop("Cookie", None)
    return request


def _host(url: str) -> str | None:
    return urlsplit(url).hostname


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


def _strip_fragment(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, parts.query, ""))


def _exc_text(exc: BaseException) -> str:
    return redact(f"{type(exc).__name__}: {exc}")


def download(
    url: str,
    dest_dir: Path,
    *,
    slug: str,
    expected_format: str,
    allowed_hosts: frozenset[str] | None = None,
    etag: str | None = None,
    last_modified: str | None = None,
    connect_timeout: float = 10,
    read_timeout: float = 60,
    max_bytes: int = 512 * 2**20,
    retries: int = 4,
    backoff_s: float = 1.0,
    max_retry_after_s: float = 120,
    session: requests.Session | None = None,
    headers: dict | None = None,
    progress: Callable[[int, int | None], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> HttpResult:
    """Download `url` into a new temporary file of `dest_dir`; the caller owns that file.

    Transient failures (connection errors, timeouts, a connection cut mid-body, a
    truncated body, 429, 5xx) are retried `retries` times with exponential backoff
    (`backoff_s`, doubled each time; a `Retry-After` header wins, capped at
    `max_retry_after_s`). Everything else raises `FetchError` at once. With `etag` /
    `last_modified` the request is conditional and a 304 returns `not_modified=True` with
    no body.
    """
    if retries < 0:
        raise ValueError(f"{slug}: retries must be >= 0, got {retries}")
    safe_url = redact(url)
    if urlsplit(url).scheme not in ("http", "https"):
        raise FetchError(f"{slug}: cannot download {safe_url}: only http(s) URLs are supported")
    if allowed_hosts is not None and _host(url) not in allowed_hosts:
        raise FetchError(
            f"{slug}: refusing to contact {_host(url)!r} for {safe_url}: "
            f"not among the source's allowed hosts {sorted(allowed_hosts)}"
        )
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)

    request_headers: dict[str, str] = {"User-Agent": USER_AGENT}
    request_headers.update(headers or {})
    if etag:
        request_headers["If-None-Match"] = etag
    if last_modified:
        request_headers["If-Modified-Since"] = last_modified

    own_session = session is None
    client = requests.Session() if session is None else session
    attempt = _Attempt(
        url=url,
        dest_dir=dest_dir,
        slug=slug,
        expected_format=expected_format.lower(),
        allowed_hosts=allowed_hosts,
        conditional=bool(etag or last_modified),
        timeout=(connect_timeout, read_timeout),
        max_bytes=max_bytes,
        session=client,
        headers=request_headers,
        progress=progress,
        max_retry_after_s=max_retry_after_s,
    )
    try:
        for number in range(retries + 1):
            try:
                return attempt.run()
            except _Transient as exc:
                if number == retries:
                    raise FetchError(
                        f"{slug}: giving up on {safe_url} after {retries + 1} attempt(s): {exc}"
                    ) from None
                delay = exc.retry_after
                if delay is None:
                    delay = backoff_s * 2**number
                logger.warning(
                    "%s: attempt %d/%d for %s failed (%s); retrying in %.1f s",
                    slug,
                    number + 1,
                    retries + 1,
                    safe_url,
                    exc,
                    delay,
                )
                sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
    finally:
        if own_session:
            client.close()


@dataclass
class _Attempt:
    """One try at the download: follows redirects, checks, streams to a temp file."""

    url: str
    dest_dir: Path
    slug: str
    expected_format: str
    allowed_hosts: frozenset[str] | None
    conditional: bool
    timeout: tuple[float, float]
    max_bytes: int
    session: requests.Session
    headers: dict[str, str]
    progress: Callable[[int, int | None], None] | None
    max_retry_after_s: float

    def fail(self, url: str, message: str) -> FetchError:
        return FetchError(f"{self.slug}: {redact(url)}: {message}")

    def run(self) -> HttpResult:
        response, final_url = self._follow_redirects()
        with response:
            status = response.status_code
            kept = {
                k.lower(): v
                for k, v in response.headers.items()
                if k.lower() not in DROPPED_HEADERS
            }
            if status == 304:
                if not self.conditional:
                    raise self.fail(final_url, "304 Not Modified to an unconditional request")
                return HttpResult(self.url, final_url, 304, kept, None, None, None, True)
            self._check_status(response, final_url)
            return self._stream(response, final_url, kept)

    def _follow_redirects(self) -> tuple[requests.Response, str]:
        origin = _origin(self.url)
        current = self.url
        for _hop in range(MAX_REDIRECTS + 1):
            off_origin = _origin(current) != origin
            try:
                response = self.session.get(
                    current,
                    headers=self.headers,
                    timeout=self.timeout,
                    stream=True,
                    allow_redirects=False,
                    auth=_drop_authorization if off_origin else None,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                raise _Transient(f"{_exc_text(exc)}") from None
            except requests.RequestException as exc:
                raise self.fail(current, f"request failed: {_exc_text(exc)}") from None
            if response.status_code not in REDIRECT_STATUSES:
                return response, current
            location = response.headers.get("Location")
            response.close()
            if not location:
                raise self.fail(current, f"redirect {response.status_code} without a Location")
            target = _strip_fragment(urljoin(current, location))
            if urlsplit(target).scheme not in ("http", "https"):
                raise self.fail(current, f"redirect to a non-HTTP URL {redact(target)}")
            host = _host(target)
            if self.allowed_hosts is not None and host not in self.allowed_hosts:
                raise self.fail(
                    current,
                    f"redirect to host {host!r} refused: allowed hosts are "
                    f"{sorted(self.allowed_hosts)}",
                )
            current = target
        raise self.fail(self.url, f"too many redirects (more than {MAX_REDIRECTS}), last {current}")

    def _check_status(self, response: requests.Response, url: str) -> None:
        status = response.status_code
        if status == 429 or status >= 500:
            wait = retry_after_seconds(response.headers.get("Retry-After"))
            if wait is not None:
                wait = min(wait, self.max_retry_after_s)
            raise _Transient(f"HTTP {status} {response.reason or ''}".strip(), wait)
        if status >= 400:
            raise self.fail(url, f"HTTP {status} {response.reason or ''}".strip())
        if status != 200 and status != 203:
            raise self.fail(url, f"unexpected HTTP {status} where 200 with the file was expected")

    def _stream(self, response: requests.Response, url: str, kept: dict[str, str]) -> HttpResult:
        what = describe_format(self.expected_format)
        content_type = response.headers.get("Content-Type")
        total = _content_length(response)
        if total is not None and total > self.max_bytes:
            raise self.fail(
                url,
                f"Content-Length {total} bytes exceeds the {self.max_bytes}-byte download cap",
            )
        # Transfer compression changes what Content-Length counts; only compare it to the
        # body we write when the body is sent as is.
        identity = response.headers.get("Content-Encoding", "identity").lower() in ("", "identity")
        fd, name = tempfile.mkstemp(prefix=".download-", suffix=".part", dir=self.dest_dir)
        path = Path(name)
        digest = hashlib.sha256()
        size = 0
        head = b""
        checked = False
        try:
            with os.fdopen(fd, "wb") as out:
                try:
                    for chunk in response.iter_content(CHUNK_SIZE):
                        if not chunk:
                            continue
                        size += len(chunk)
                        if size > self.max_bytes:
                            raise self.fail(
                                url,
                                f"body exceeds the {self.max_bytes}-byte download cap "
                                f"(aborted after {size} bytes)",
                            )
                        if not checked:
                            head += chunk[: HEAD_BYTES - len(head)]
                            if len(head) >= HEAD_BYTES:
                                self._check_head(head, content_type, url)
                                checked = True
                        digest.update(chunk)
                        out.write(chunk)
                        if self.progress is not None:
                            self.progress(size, total)
                except (requests.exceptions.ChunkedEncodingError, requests.ConnectionError) as exc:
                    expected = f" of {total}" if total is not None else ""
                    if _is_incomplete_read(exc):
                        raise _Transient(
                            f"truncated body: received {size}{expected} bytes, then the server "
                            f"closed the connection"
                        ) from None
                    raise _Transient(
                        f"connection broken after {size}{expected} bytes of the body "
                        f"({_exc_text(exc)})"
                    ) from None
                except requests.RequestException as exc:
                    raise self.fail(url, f"reading the body failed: {_exc_text(exc)}") from None
            if total is not None and identity and size != total:
                raise _Transient(f"truncated body: received {size} of {total} bytes")
            if not checked:
                self._check_head(head, content_type, url)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        logger.debug("%s: downloaded %d bytes as %s from %s", self.slug, size, what, redact(url))
        return HttpResult(
            url=self.url,
            final_url=url,
            status=response.status_code,
            headers=kept,
            body_path=path,
            sha256=digest.hexdigest(),
            size=size,
            not_modified=False,
        )

    def _check_head(self, head: bytes, content_type: str | None, url: str) -> None:
        try:
            check_content(head, self.expected_format, content_type)
        except ValueError as exc:
            raise self.fail(url, str(exc)) from None


def _is_incomplete_read(exc: BaseException) -> bool:
    """Whether a requests error wraps a body shorter than its Content-Length."""
    pending: list[object] = [exc]
    while pending:
        item = pending.pop()
        if isinstance(item, http.client.IncompleteRead):
            return True
        if isinstance(item, BaseException):
            pending.extend(item.args)
    return False


def _content_length(response: requests.Response) -> int | None:
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        length = int(value.strip())
    except ValueError:
        return None
    return length if length >= 0 else None
