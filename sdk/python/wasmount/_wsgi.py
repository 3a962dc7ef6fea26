"""The WSGI bridge's core (PEP 3333), free of any WebAssembly binding: the environ of a request
and running a WSGI application up to its status line and first body chunk.

:mod:`wasmount.wsgi` is the public face; :mod:`wasmount._guest` and :mod:`wasmount.testing`
both serve through this module, so the tests exercise what the component runs.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401  (werkzeug/Flask encode hosts with it; see the README)
import encodings.latin_1  # noqa: F401
import io
import sys
import urllib.parse
from typing import Any, BinaryIO, Callable, Iterable, Iterator

__all__ = ["build_environ", "run", "WSGIResult", "StartResponse"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_DEFAULT_PORTS = {"http": "80", "https": "443"}


def _latin1(value: bytes | str) -> str:
    """A header value as a WSGI "native string": its bytes read as Latin-1 (PEP 3333)."""
    if isinstance(value, str):
        return value
    return value.decode("latin-1")


def _split_host(host: str, scheme: str) -> tuple[str, str]:
    """``example.org:8080`` → ``("example.org", "8080")``; the scheme's port when none."""
    if host.startswith("["):  # an IPv6 literal: [::1]:8080
        end = host.find("]")
        name, rest = host[: end + 1], host[end + 1:]
        port = rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = host.partition(":")
    return name, port or _DEFAULT_PORTS.get(scheme, "80")


def build_environ(method: str, target: str, headers: Iterable[tuple[str, bytes | str]],
                  body: BinaryIO, *, authority: str | None = None,
                  url_scheme: str | None = None) -> dict[str, Any]:
    """The WSGI environ for one request the host handed over.

    ``target`` is the path with query as the app sees it (mount prefix removed by the host),
    ``headers`` the request's headers, ``body`` a readable binary stream of its body.

    - ``SCRIPT_NAME`` is the mount prefix from ``x-forwarded-prefix`` (no trailing ``/``),
      ``PATH_INFO`` the rest, both percent-decoded and as Latin-1 native strings (PEP 3333).
    - ``HTTP_HOST``, ``SERVER_NAME`` and ``SERVER_PORT`` come from ``x-forwarded-host`` (the
      host the client addressed, which the wasmount host sets), else ``host``;
      ``wsgi.url_scheme`` from ``x-forwarded-proto``; ``REMOTE_ADDR`` from the first address
      of ``x-forwarded-for``. The wasmount host removes these headers from untrusted clients,
      so they can be believed here (no ``ProxyFix`` needed).
    - Headers whose names contain ``_`` are left out (they would be indistinguishable from
      ``-`` in ``HTTP_*`` keys, a way to spoof the forwarding headers).
    """
    pairs = [(str(name).lower(), _latin1(value)) for name, value in headers]

    def first(name: str) -> str:
        return next((value for key, value in pairs if key == name), "")

    raw_path, _, query = (target or "/").partition("?")
    prefix = first("x-forwarded-prefix").rstrip("/")
    scheme = (first("x-forwarded-proto") or url_scheme or "http").split(",")[0].strip().lower()
    host = (first("x-forwarded-host").split(",")[0].strip() or first("host") or authority
            or "localhost")
    server_name, server_port = _split_host(host, scheme)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": method.upper(),
        "SCRIPT_NAME": urllib.parse.unquote_to_bytes(prefix).decode("latin-1"),
        "PATH_INFO": urllib.parse.unquote_to_bytes(raw_path or "/").decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": server_name,
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": "HTTP/1.1",
        "SERVER_SOFTWARE": "wasmount",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scheme,
        "wsgi.input": body,
        "wsgi.input_terminated": True,  # read to the end: no content-length needed (werkzeug)
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    remote = first("x-forwarded-for").split(",")[0].strip()
    if remote:
        environ["REMOTE_ADDR"] = remote
    for name, value in pairs:
        if "_" in name:
            continue
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
            continue
        if name == "content-length":
            environ["CONTENT_LENGTH"] = value
            continue
        key = "HTTP_" + name.upper().replace("-", "_")
        if key in environ:
            environ[key] += ("; " if name == "cookie" else ", ") + value
        else:
            environ[key] = value
    environ["HTTP_HOST"] = host
    return environ


class StartResponse:
    """The ``start_response`` callable of one request, with PEP 3333's rules: called once, or
    again only with ``exc_info``, which is re-raised once the headers are sent."""

    def __init__(self) -> None:
        self.status: str | None = None
        self.headers: list[tuple[str, str]] = []
        self.headers_sent = False
        self._written: list[bytes] = []

    def __call__(self, status: str, headers: list[tuple[str, str]],
                 exc_info: Any = None) -> Callable[[bytes], None]:
        if exc_info is not None:
            try:
                if self.headers_sent:
                    raise exc_info[1].with_traceback(exc_info[2])
            finally:
                exc_info = None  # no reference cycle through the traceback
        elif self.status is not None:
            raise AssertionError("start_response was called a second time without exc_info")
        if not isinstance(status, str) or len(status) < 3 or not status[:3].isdigit():
            raise ValueError(f"start_response: the status must be a string like '200 OK', "
                             f"got {status!r}")
        checked: list[tuple[str, str]] = []
        for item in headers:
            if not (isinstance(item, tuple) and len(item) == 2
                    and isinstance(item[0], str) and isinstance(item[1], str)):
                raise TypeError(f"start_response: each header must be a (str, str) tuple, "
                                f"got {item!r}")
            checked.append(item)
        self.status = status
        self.headers = checked
        return self.write

    def write(self, data: bytes) -> None:
        """The legacy ``write`` callable: the data is sent before the returned iterable's."""
        if self.status is None:
            raise AssertionError("write() was called before start_response")
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError(f"write() takes bytes, not {type(data).__name__}")
        if data:
            self.headers_sent = True
            self._written.append(bytes(data))

    def take_written(self) -> list[bytes]:
        written, self._written = self._written, []
        return written

    @property
    def status_code(self) -> int:
        assert self.status is not None
        return int(self.status[:3])


class WSGIResult:
    """A WSGI application's answer: its status and headers are final; :attr:`chunks` yields
    the body as the application produces it; :meth:`close` must be called at the end."""

    def __init__(self, status: int, headers: list[tuple[str, str]], chunks: Iterator[bytes],
                 close: Callable[[], None]) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks
        self.close = close


def _checked(chunk: Any) -> bytes:
    if not isinstance(chunk, (bytes, bytearray)):
        raise TypeError(f"a WSGI application must yield bytes, not {type(chunk).__name__}")
    return bytes(chunk)


def run(app: WSGIApp, environ: dict[str, Any]) -> WSGIResult:
    """Calls ``app`` and iterates its response up to the first non-empty chunk (or its end),
    when the status and headers are final (PEP 3333: they are "sent" then).

    Raises what the application raised before that point, after closing its iterable.
    """
    start = StartResponse()
    result = app(environ, start)
    closed = False

    def close() -> None:
        nonlocal closed
        if not closed:
            closed = True
            closer = getattr(result, "close", None)
            if closer is not None:
                closer()

    try:
        iterator = iter(result)
        first: list[bytes] = []
        if not start._written:
            for chunk in iterator:
                chunk = _checked(chunk)
                if chunk:
                    first.append(chunk)
                    break
        if start.status is None:
            raise RuntimeError("the WSGI application returned without calling start_response")
        start.headers_sent = True
    except BaseException:
        close()
        raise

    def chunks() -> Iterator[bytes]:
        yield from start.take_written()
        yield from first
        for chunk in iterator:
            yield from start.take_written()
            chunk = _checked(chunk)
            if chunk:
                yield chunk
        yield from start.take_written()

    return WSGIResult(start.status_code, list(start.headers), chunks(), close)


class BodyReader(io.RawIOBase):
    """A raw binary stream over ``read_chunk(n)`` (which returns up to ``n`` bytes, ``b""`` at
    the end); wrap it in :class:`io.BufferedReader` for ``readline`` and friends."""

    def __init__(self, read_chunk: Callable[[int], bytes]) -> None:
        super().__init__()
        self._read_chunk = read_chunk
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if not view:
            return 0
        data, self._pending = self._pending, b""
        if not data and not self._done:
            data = bytes(self._read_chunk(len(view)))
            if not data:
                self._done = True
        if len(data) > len(view):
            data, self._pending = data[: len(view)], data[len(view):]
        view[: len(data)] = data
        return len(data)
