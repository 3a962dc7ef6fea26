"""Outgoing HTTP requests from inside the component, over wasi:http ``outgoing-handler``.

A component has no sockets, so ``urllib.request`` (and ``requests``) cannot fetch anything in
it; :func:`fetch` asks the host instead. The host sends only requests to hosts the app's
manifest allows (``allowed_outbound_hosts``); others fail with :class:`FetchError`.

::

    from wasmount.fetch import fetch

    response = fetch("https://data.example.org/table.csv", timeout=10)
    response.raise_for_status()
    rows = response.text().splitlines()

Natively (tests, a local WSGI server) there are no component bindings and :func:`fetch` uses
``urllib.request`` instead, with the same behaviour (no redirects followed).
"""

from __future__ import annotations

import base64
import encodings.idna  # noqa: F401  (urllib.parse may need it for international host names)
import json as _json
import re
import sys
import urllib.parse
from typing import Any, Iterable, Mapping

from ._datastructures import Headers
from ._http import decode_text, header_text

try:
    from componentize_py_types import Err
    from wit_world.imports import monotonic_clock as _clock
    from wit_world.imports import outgoing_handler as _outgoing
    from wit_world.imports import poll as _poll
    from wit_world.imports import streams as _streams
    from wit_world.imports import types as _types
    _bindings = True
except ImportError:
    if sys.platform == "wasi":  # building the component: the bindings must be there
        raise
    _bindings = False

__all__ = ["fetch", "FetchResponse", "FetchError", "DEFAULT_TIMEOUT"]

#: Seconds a fetch may take, response body included, unless ``timeout`` says otherwise.
DEFAULT_TIMEOUT = 30.0
_WRITE_CHUNK = 4096
_READ_CHUNK = 65536
_STANDARD_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE",
                     "PATCH")
#: Request headers the host sets itself or refuses from a component.
_REFUSED_HEADERS = frozenset({"host", "connection", "keep-alive", "proxy-connection",
                              "transfer-encoding", "upgrade", "http2-settings",
                              "proxy-authorization", "proxy-authenticate"})


class FetchError(Exception):
    """A fetch that got no response (refused by the host, DNS, connection, timeout, …), or,
    from :meth:`FetchResponse.raise_for_status`, one whose status is not a success.

    ``code`` is the wasi:http error code's name (``"HttpRequestDenied"``) when the host gave
    one; ``status`` the HTTP status for :meth:`~FetchResponse.raise_for_status`.
    """

    def __init__(self, message: str, *, url: str | None = None, code: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.code = code
        self.status = status


class FetchResponse:
    """A response: ``status``, ``headers`` (case-insensitive), the whole ``body`` as bytes."""

    def __init__(self, url: str, status: int, headers: Iterable[tuple[str, str]] | Headers,
                 body: bytes) -> None:
        self.url = url
        self.status = int(status)
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self.body = bytes(body)

    @property
    def ok(self) -> bool:
        """Whether the status is a success (2xx)."""
        return 200 <= self.status < 300

    def text(self, encoding: str | None = None) -> str:
        """The body as text: in ``encoding``, else the charset of ``content-type``, else UTF-8."""
        if encoding:
            return self.body.decode(encoding, "replace")
        return decode_text(self.body, self.headers.get("content-type", ""))

    def json(self) -> Any:
        """The body parsed as JSON (``ValueError`` if it is not)."""
        return _json.loads(self.body)

    def raise_for_status(self) -> "FetchResponse":
        """Raises :class:`FetchError` unless the status is a success; returns the response."""
        if not self.ok:
            raise FetchError(f"fetching {self.url}: the server answered {self.status}",
                             url=self.url, status=self.status)
        return self

    def __repr__(self) -> str:
        return f"<FetchResponse {self.status} {self.url}, {len(self.body)} bytes>"


def fetch(url: str, method: str = "GET",
          headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
          body: bytes | str | None = None, timeout: float | None = DEFAULT_TIMEOUT) -> FetchResponse:
    """Sends a request and returns the whole response. Redirects are not followed (a 3xx is
    returned as it is). ``timeout`` (seconds, ``None`` for none) bounds the whole exchange,
    response body included. A ``str`` body is sent as UTF-8; ``content-length`` is set.

    Raises :class:`FetchError` when no response arrives: the host refused the request (its
    host is not in the app manifest's ``allowed_outbound_hosts``), the name did not resolve,
    the connection failed, the time ran out. An error status is not an exception: check
    :attr:`FetchResponse.ok` or call :meth:`FetchResponse.raise_for_status`.
    """
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchError(f"cannot fetch {url!r}: only http and https URLs can be fetched", url=url)
    if not parts.hostname:
        raise FetchError(f"cannot fetch {url!r}: the URL has no host", url=url)
    method = method.upper()
    pairs = _header_pairs(headers)
    if parts.username is not None and not any(n.lower() == "authorization" for n, _ in pairs):
        credentials = f"{urllib.parse.unquote(parts.username)}:" \
                      f"{urllib.parse.unquote(parts.password or '')}"
        pairs.append(("authorization",
                      "Basic " + base64.b64encode(credentials.encode("utf-8")).decode("ascii")))
    data = body.encode("utf-8") if isinstance(body, str) else body
    if data is not None and not any(n.lower() == "content-length" for n, _ in pairs):
        pairs.append(("content-length", str(len(data))))
    authority = parts.netloc.rpartition("@")[2]
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if not _bindings:
        return _fetch_natively(url, method, pairs, data, timeout)
    return _fetch_in_component(url, method, scheme, authority, target, pairs, data, timeout)


def _header_pairs(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = headers.items() if isinstance(headers, Mapping) else headers
    pairs = []
    for name, value in items:
        if str(name).lower() in _REFUSED_HEADERS:
            continue  # the host sets these (host from the URL) or refuses them
        pairs.append((str(name), str(value)))
    return pairs


# --------------------------------------------------------------------------- in the component


def _drop(resource: Any) -> None:
    if resource is not None:
        resource.__exit__(None, None, None)


def _words(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()


def describe_error_code(code: Any, url: str) -> tuple[str, str]:
    """A wasi:http ``error-code`` as ``(name, message)``: ``("HttpRequestDenied", "…")``."""
    name = type(code).__name__.partition("_")[2] or type(code).__name__
    host = urllib.parse.urlsplit(url).netloc.rpartition("@")[2]
    payload = getattr(code, "value", None)
    messages = {
        "HttpRequestDenied": f"the host refused the request: {host} is not allowed by the app's "
                             "manifest (add its origin to allowed_outbound_hosts)",
        "DnsTimeout": f"looking up {host} timed out",
        "DnsError": f"{host} could not be resolved (DNS)",
        "DestinationNotFound": f"{host} was not found",
        "DestinationUnavailable": f"{host} is unavailable",
        "DestinationIpProhibited": f"connecting to {host} is prohibited (its address is not allowed)",
        "DestinationIpUnroutable": f"{host} is unroutable",
        "ConnectionRefused": f"{host} refused the connection",
        "ConnectionTerminated": f"{host} closed the connection",
        "ConnectionTimeout": f"connecting to {host} timed out",
        "ConnectionReadTimeout": f"reading from {host} timed out",
        "ConnectionWriteTimeout": f"writing to {host} timed out",
        "HttpResponseTimeout": f"{host} did not answer in time",
        "TlsCertificateError": f"the TLS certificate of {host} was not accepted",
        "TlsProtocolError": f"the TLS handshake with {host} failed",
        "HttpRequestUriInvalid": "the URL is not valid",
        "HttpRequestMethodInvalid": "the method is not valid",
        "HttpProtocolError": "HTTP protocol error (is the scheme right?)",
    }
    message = messages.get(name, _words(name))
    detail = _payload_text(payload)
    if detail and name != "HttpRequestDenied":
        message += f" ({detail})"
    return name, message


def _payload_text(payload: Any) -> str:
    """An error code's payload (a string, a number, a record of optional fields) as text."""
    if payload is None:
        return ""
    if isinstance(payload, (str, int)):
        return str(payload)
    if hasattr(payload, "__dict__"):
        return ", ".join(f"{key}={value}" for key, value in vars(payload).items()
                         if value is not None)
    return repr(payload)


def _fail(url: str, code: Any) -> FetchError:
    name, message = describe_error_code(code, url)
    return FetchError(f"fetching {url}: {message}", url=url, code=name)


def _timed_out(url: str, timeout: float | None) -> FetchError:
    return FetchError(f"fetching {url}: no complete response within {timeout:g} s", url=url,
                      code="Timeout")


def _method(method: str) -> Any:
    if method in _STANDARD_METHODS:
        return getattr(_types, "Method_" + method.capitalize())()
    return _types.Method_Other(method)


def _wait(pollable: Any, timer: Any) -> bool:
    """Blocks until ``pollable`` is ready (``True``) or the ``timer`` rings first (``False``)."""
    if timer is None:
        pollable.block()
        return True
    return 0 in _poll.poll([pollable, timer])


def _fetch_in_component(url: str, method: str, scheme: str, authority: str, target: str,
                        pairs: list[tuple[str, str]], data: bytes | None,
                        timeout: float | None) -> FetchResponse:
    try:
        fields = _types.Fields.from_list([(n.lower(), _latin1_or_utf8(v)) for n, v in pairs])
    except Err as error:
        raise FetchError(f"fetching {url}: a request header is not valid "
                         f"({type(error.value).__name__})", url=url) from None
    request = _types.OutgoingRequest(fields)
    try:
        request.set_method(_method(method))
        request.set_scheme(_types.Scheme_Https() if scheme == "https" else _types.Scheme_Http())
        request.set_authority(authority)
        request.set_path_with_query(target)
    except Err:
        _drop(request)
        raise FetchError(f"cannot fetch {url!r}: the method or URL is not valid", url=url) from None
    options = _types.RequestOptions()
    if timeout is not None:
        nanoseconds = max(1, int(timeout * 1e9))
        for setter in (options.set_connect_timeout, options.set_first_byte_timeout,
                       options.set_between_bytes_timeout):
            try:
                setter(nanoseconds)
            except Err:
                pass  # this host does not support that timeout; the deadline below still holds
    outgoing_body = request.body() if data is not None else None
    timer = None
    if timeout is not None:
        timer = _clock.subscribe_duration(max(0, int(timeout * 1e9)))
    try:
        try:
            future = _outgoing.handle(request, options)
        except Err as error:
            raise _fail(url, error.value) from None
        try:
            write_failed = None
            if outgoing_body is not None and data is not None:
                write_failed = _write_body(outgoing_body, data)
            outgoing_body = None
            response = _await_response(future, timer, url, timeout)
            if write_failed is not None:
                _drop(response)
                raise FetchError(f"fetching {url}: sending the request body failed: "
                                 f"{write_failed}", url=url)
            try:
                return _read_response(response, timer, url, timeout)
            finally:
                _drop(response)
        finally:
            _drop(future)
    finally:
        _drop(outgoing_body)
        _drop(timer)


def _latin1_or_utf8(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _write_body(outgoing_body: Any, data: bytes) -> str | None:
    """Writes and finishes the request body; says why if that failed (the response, or the
    error the host gives for the request, usually says more)."""
    stream = outgoing_body.write()
    try:
        for start in range(0, len(data), _WRITE_CHUNK):
            stream.blocking_write_and_flush(data[start:start + _WRITE_CHUNK])
    except Err as error:
        _drop(stream)
        _drop(outgoing_body)
        return type(error.value).__name__
    _drop(stream)
    try:
        _types.OutgoingBody.finish(outgoing_body, None)
    except Err as error:
        return type(error.value).__name__
    return None


def _await_response(future: Any, timer: Any, url: str, timeout: float | None) -> Any:
    with future.subscribe() as pollable:
        while True:
            result = future.get()
            if result is not None:
                break
            if not _wait(pollable, timer):
                raise _timed_out(url, timeout)
    if isinstance(result, Err):  # the response was already taken: cannot happen here
        raise FetchError(f"fetching {url}: the response was already taken", url=url)
    inner = result.value
    if isinstance(inner, Err):
        raise _fail(url, inner.value)
    return inner.value


def _read_response(response: Any, timer: Any, url: str, timeout: float | None) -> FetchResponse:
    status = response.status()
    with response.headers() as fields:
        headers = [(name, header_text(value)) for name, value in fields.entries()]
    incoming_body = response.consume()
    stream = incoming_body.stream()
    data = bytearray()
    try:
        while True:
            try:
                chunk = stream.read(_READ_CHUNK)
            except Err as error:
                if isinstance(error.value, _streams.StreamError_Closed):
                    break
                failed = getattr(error.value, "value", None)
                code = _types.http_error_code(failed) if failed is not None else None
                if code is not None:
                    raise _fail(url, code) from None
                detail = failed.to_debug_string() if failed is not None else "stream error"
                raise FetchError(f"fetching {url}: reading the response body failed: {detail}",
                                 url=url) from None
            if chunk:
                data += chunk
                continue
            with stream.subscribe() as pollable:
                if not _wait(pollable, timer):
                    raise _timed_out(url, timeout)
    finally:
        _drop(stream)
        _drop(incoming_body)
    return FetchResponse(url, status, headers, bytes(data))


# --------------------------------------------------------------------------- natively


def _fetch_natively(url: str, method: str, pairs: list[tuple[str, str]], data: bytes | None,
                    timeout: float | None) -> FetchResponse:
    """The same with ``urllib.request``, outside a component (tests, a local server). The
    import is here on purpose: this never runs inside a component, which has no sockets."""
    import urllib.error
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    opener = urllib.request.build_opener(NoRedirects)
    request = urllib.request.Request(url, data=data, method=method, headers=dict(pairs))
    try:
        with opener.open(request, timeout=timeout) as answer:
            return FetchResponse(url, answer.status, list(answer.headers.items()), answer.read())
    except urllib.error.HTTPError as answer:  # an error or redirect status: still a response
        return FetchResponse(url, answer.code, list(answer.headers.items()), answer.read())
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise FetchError(f"fetching {url}: {reason}", url=url) from None
