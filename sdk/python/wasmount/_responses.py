"""Responses: :class:`Response`, the helpers that make one, and what a handler's value means.

The helpers are :func:`html`, :func:`json`, :func:`text`, :func:`svg` and :func:`redirect`.

Free of any WebAssembly binding (Flask's ``helpers``/``wrappers`` and werkzeug's ``utils.redirect``
are the model).
"""

from __future__ import annotations

import collections.abc
import json as _json
from typing import Any, Iterable, Mapping, Union

from ._http import HeaderList, decode_text

__all__ = [
    "Response", "HandlerResult", "PrefixedURL", "text", "html", "svg", "json", "redirect",
    "make_response", "complete_location",
]

#: What a handler may return (see :meth:`wasmount.App.route`).
HandlerResult = Union["Response", str, bytes, "dict[str, Any]", "list[Any]", "tuple[Any, ...]"]


class PrefixedURL(str):
    """A URL :meth:`~wasmount.Request.url_for` built: the mount prefix is in it already, so
    :func:`redirect` sends it as it is. Any ``str`` operation on it gives a plain ``str``."""

    __slots__ = ()


class Response:
    """A response: ``status``, ``headers`` (a list of ``(name, value)``) and ``body`` bytes."""

    def __init__(self, body: bytes | str = b"", status: int = 200,
                 headers: Iterable[tuple[str, str]] | Mapping[str, str] | None = None,
                 content_type: str | None = None) -> None:
        self.status: int = int(status)
        if isinstance(headers, collections.abc.Mapping):
            headers = list(headers.items())
        self.headers: HeaderList = [(str(n), str(v)) for n, v in (headers or ())]
        self.body: bytes = body.encode("utf-8") if isinstance(body, str) else bytes(body)
        if content_type is not None:
            self.set_header("content-type", content_type)
        # A location for redirect() inside the app, completed with the mount prefix.
        self._app_location: str | None = None

    def header(self, name: str) -> str | None:
        """The first value of header ``name`` (any case); ``None`` when absent."""
        lower = name.lower()
        return next((v for n, v in self.headers if n.lower() == lower), None)

    def set_header(self, name: str, value: str) -> "Response":
        """Sets header ``name`` to ``value``, replacing any value it had; returns the response."""
        lower = name.lower()
        self.headers = [(n, v) for n, v in self.headers if n.lower() != lower]
        self.headers.append((name, str(value)))
        return self

    def add_header(self, name: str, value: str) -> "Response":
        """Adds a value of header ``name`` (``set-cookie``); returns the response."""
        self.headers.append((name, str(value)))
        return self

    @property
    def text(self) -> str:
        """The body as text (in the charset of ``content-type``, UTF-8 by default)."""
        return decode_text(self.body, self.header("content-type") or "")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.body)

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.header('content-type') or ''}, {len(self.body)} bytes>"


def text(body: str, status: int = 200, headers: Iterable[tuple[str, str]] | None = None) -> Response:
    """A ``text/plain; charset=utf-8`` response."""
    return Response(body, status, headers, content_type="text/plain; charset=utf-8")


def html(body: str, status: int = 200, headers: Iterable[tuple[str, str]] | None = None) -> Response:
    """A ``text/html; charset=utf-8`` response."""
    return Response(body, status, headers, content_type="text/html; charset=utf-8")


def svg(body: str, status: int = 200, headers: Iterable[tuple[str, str]] | None = None) -> Response:
    """An ``image/svg+xml`` response."""
    return Response(body, status, headers, content_type="image/svg+xml")


def json(value: Any, status: int = 200, headers: Iterable[tuple[str, str]] | None = None) -> Response:
    """An ``application/json`` response with ``value`` serialized (UTF-8, not ASCII-escaped).

    Raises ``TypeError`` when ``value`` cannot be serialized (the request then gets a 500 and
    the traceback says why).
    """
    data = _json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return Response(data, status, headers, content_type="application/json")


def redirect(location: str, code: int = 302) -> Response:
    """A redirect to ``location``: ``302 Found`` unless ``code`` says otherwise (``303`` after
    a form's ``POST``, ``301``/``308`` for a permanent move), as Flask's ``redirect``.

    What :meth:`~wasmount.Request.url_for` built is sent as it is (its mount prefix is in it):
    ``redirect(request.url_for("item", id=3))``. Another location starting with one ``/`` is a
    path inside the app: the mount prefix is put before it (``redirect("/items")`` under
    ``/viz`` sends ``Location: /viz/items``). Relative locations (``"./"``, ``"items"``) and
    full URLs are sent as they are.
    """
    response = Response(b"", code, [("location", location)])
    if (not isinstance(location, PrefixedURL) and location.startswith("/")
            and not location.startswith("//")):
        response._app_location = location
    return response


def complete_location(response: Response, prefix: str) -> Response:
    """``response``, its ``location`` completed with the mount ``prefix`` when :func:`redirect`
    was given a path inside the app."""
    if response._app_location is not None:
        response.set_header("location", prefix + response._app_location)
        response._app_location = None
    return response


def make_response(value: Any) -> Response:
    """What a handler returned, as a :class:`Response`: a ``Response`` as it is, a ``str`` as
    HTML, ``bytes`` as ``application/octet-stream``, a ``dict`` or ``list`` as JSON, a
    ``(body, status)`` or ``(body, status, headers)`` tuple; ``TypeError`` for anything else."""
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple) and 2 <= len(value) <= 3:
        response = make_response(value[0])
        response.status = int(value[1])
        if len(value) == 3:
            headers = value[2]
            if isinstance(headers, collections.abc.Mapping):
                headers = list(headers.items())
            for name, header_value in headers:
                response.set_header(name, header_value)
        return response
    if isinstance(value, str):
        return html(value)
    if isinstance(value, (bytes, bytearray)):
        return Response(bytes(value), content_type="application/octet-stream")
    if isinstance(value, (dict, list)):
        return json(value)
    raise TypeError(
        f"a handler returned {type(value).__name__}; return a Response (html(), json(), text(), "
        "svg(), redirect(), Response(...)), a str (HTML), bytes, a dict or list (JSON), or a "
        "(body, status[, headers]) tuple")
