"""Serving one request with an :class:`~wasmount.App` or a WSGI application, free of any
WebAssembly binding: what the component's glue (:mod:`wasmount._guest`) and the native test
client (:mod:`wasmount.testing`) share.

It does not import the ``App`` (whose ``handler()`` needs :mod:`wasmount._guest`, which needs
this module): it serves any :class:`Application`, which ``App`` is.
"""

from __future__ import annotations

import abc
from typing import Any, BinaryIO, Callable, Iterable, Iterator

from . import _wsgi
from ._datastructures import Headers
from ._errors import HTTPError, report_exception
from ._http import header_text, wants_json
from ._request import Request
from ._responses import Response

__all__ = ["Application", "Outcome", "serve", "check_target", "headers_to_send"]

#: Headers a component may not send (wasmtime refuses them; hop-by-hop, or the host's job).
FORBIDDEN_RESPONSE_HEADERS = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
    "proxy-connection", "transfer-encoding", "upgrade", "host", "http2-settings", "te", "trailer",
})


class Application(abc.ABC):
    """What :func:`serve` answers directly, without WSGI: an application that turns a
    :class:`Request` into a :class:`Response`. :class:`wasmount.App` is one; any other target
    is served as a WSGI application."""

    @abc.abstractmethod
    def handle(self, request: Request) -> Response:
        """The response to ``request``; never raises (a failure is a 500)."""


class Outcome:
    """A response on its way out: ``status``, ``headers``, the body as ``chunks`` (produced as
    the app makes them), and ``close`` to call when done, whatever happened."""

    __slots__ = ("status", "headers", "chunks", "close")

    def __init__(self, status: int, headers: list[tuple[str, str]], chunks: Iterator[bytes],
                 close: Callable[[], None] | None = None) -> None:
        self.status = status
        self.headers = headers
        self.chunks = chunks
        self.close = close or (lambda: None)


def check_target(target: Any) -> Any:
    """``target`` if it is an :class:`Application` (a :class:`wasmount.App`) or a WSGI
    application; ``TypeError`` otherwise."""
    if isinstance(target, Application) or callable(target):
        return target
    raise TypeError("expected a wasmount.App or a WSGI application (a callable taking environ "
                    f"and start_response, such as a Flask app), got {type(target).__name__}")


def serve(target: Any, method: str, uri: str, headers: Iterable[tuple[str, bytes | str]],
          body: BinaryIO, *, authority: str | None = None,
          url_scheme: str | None = None) -> Outcome:
    """Serves one request with ``target``: an :class:`Application`, or else a WSGI application.

    ``uri`` is the path with its query, as the app sees it; ``body`` a readable binary stream.
    Never raises for the application's failures: they are a 500 with the traceback on stderr.
    """
    header_list = list(headers)
    if isinstance(target, Application):
        request = Request(method, uri, header_list, body)
        response = target.handle(request)
        response_headers = list(response.headers)
        if not any(name.lower() == "content-length" for name, _ in response_headers):
            response_headers.append(("content-length", str(len(response.body))))
        return Outcome(response.status, response_headers, iter((response.body,)))
    environ = _wsgi.build_environ(method, uri, header_list, body, authority=authority,
                                  url_scheme=url_scheme)
    try:
        result = _wsgi.run(target, environ)
    except Exception as error:
        report_exception(error, f"{method.upper()} {uri.partition('?')[0]}", skip_frames=2)
        plain = Headers((name, header_text(value)) for name, value in header_list)
        response = HTTPError(500, "internal server error").to_response(wants_json(plain))
        return Outcome(response.status, response.headers, iter((response.body,)))
    return Outcome(result.status, result.headers, result.chunks, result.close)


def headers_to_send(outcome: Outcome, method: str) -> list[tuple[str, str]]:
    """The headers to give the host: without those it refuses (``connection``, ``host``, …),
    and, for ``HEAD``, without ``content-length`` (no body is written, and wasmtime checks
    that a body is as long as its ``content-length`` says)."""
    head = method.upper() == "HEAD"
    kept = []
    for name, value in outcome.headers:
        lower = name.lower()
        if lower in FORBIDDEN_RESPONSE_HEADERS or (head and lower == "content-length"):
            continue
        kept.append((name, value))
    return kept
