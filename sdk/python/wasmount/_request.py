"""Requests: :class:`Request`, one request as a handler sees it, and its ``url_for``.

Its URL, headers and body, the ``args``, ``form`` and ``json`` it carries, and ``url_for`` to
link to a route inside the app.

Free of any WebAssembly binding (werkzeug's ``wrappers/request.py`` is the model: what is
parsed from the request is a property, parsed on first use and then kept).
"""

from __future__ import annotations

import collections.abc
import functools
import json as _json
import urllib.parse
from typing import Any, Iterable, Mapping

from ._datastructures import Headers, MultiDict
from ._errors import HTTPError
from ._http import PREFIX_HEADER, decode_text, header_text, is_json_type, media_essence, wants_json
from ._responses import PrefixedURL
from ._routing import Router

__all__ = ["Request"]


class Request:
    """One request, as a handler sees it.

    ``path`` is the path inside the app: the host has removed the mount prefix, which is in
    :attr:`prefix`. The body is read from the host the first time :attr:`body` (or
    :attr:`text`, :attr:`form`, :attr:`json`) is used, then kept; :attr:`args`, :attr:`form`
    and :attr:`json` are parsed on first use, then kept.
    """

    def __init__(self, method: str = "GET", target: str = "/",
                 headers: Iterable[tuple[str, bytes | str]] | Mapping[str, str] = (),
                 body: bytes | Any = b"", params: Mapping[str, Any] | None = None) -> None:
        """``target`` is the path with its query (``/items/3?full=1``); ``body`` the bytes, or
        a readable binary file-like object to read them from on first use."""
        self.method: str = method.upper()
        raw_path, _, query_string = (target or "/").partition("?")
        #: The path as sent, percent-escapes kept.
        self.raw_path: str = raw_path if raw_path.startswith("/") else "/" + raw_path
        #: The path inside the app, percent-decoded (``/items/a b``).
        self.path: str = urllib.parse.unquote(self.raw_path)
        #: The query string as sent, without ``?``.
        self.query_string: str = query_string
        if isinstance(headers, collections.abc.Mapping):
            headers = list(headers.items())
        #: Request headers, case-insensitive.
        self.headers: Headers = Headers((name, header_text(value)) for name, value in headers)
        #: Path parameters of the matched route (``<id>`` → ``params["id"]``).
        self.params: dict[str, Any] = dict(params or {})
        #: The endpoint of the matched route (its view function's name, unless it was given
        #: ``endpoint=``); ``None`` until an :class:`~wasmount.App` routes the request.
        self.endpoint: str | None = None
        #: The routes :meth:`url_for` builds from: the app's, once it routes the request.
        self.url_map: Router | None = None
        self._body: bytes | None = None
        self._reader: Any = None
        if isinstance(body, (bytes, bytearray)):
            self._body = bytes(body)
        else:
            self._reader = body

    # -- URL

    @functools.cached_property
    def args(self) -> MultiDict:
        """The query's parameters: ``?a=1&a=2&b=`` → ``args["a"] == "1"``,
        ``args.getlist("a") == ["1", "2"]``, ``args["b"] == ""``."""
        return MultiDict.parse(self.query_string)

    @property
    def query(self) -> dict[str, list[str]]:
        """The query's parameters, each with every value: ``?a=1&a=2`` → ``{"a": ["1", "2"]}``
        (a new ``dict``; :attr:`args` is the same, read-only)."""
        return self.args.lists()

    @property
    def prefix(self) -> str:
        """The prefix the app is mounted under (``/viz``, no trailing ``/``); ``""`` if none."""
        return self.headers.get(PREFIX_HEADER, "").rstrip("/")

    def url_for(self, endpoint: str, /, *, _anchor: str | None = None,
                _method: str | None = None, _external: bool = False, **values: Any) -> str:
        """The URL of the route named ``endpoint`` (its view function's name, unless the route
        was given ``endpoint=``), under the mount prefix, as Flask's ``url_for``.

        ``values`` fill the route's parameters; the others become the query string (``None``
        left out, a list repeated): with ``@app.get("/items/<int:id>") def item(...)`` mounted
        at ``/viz``, ``request.url_for("item", id=3, full=1)`` is ``/viz/items/3?full=1``.
        ``_anchor`` adds a ``#fragment``, ``_method`` picks the endpoint's route serving that
        method, ``_external=True`` gives the whole URL (``https://host/viz/items/3``).
        :func:`~wasmount.redirect` sends the result as it is.

        Raises :class:`~wasmount.BuildError` when no route has the endpoint or a value it needs
        is missing, ``ValueError`` for a value that cannot fill its parameter.
        """
        if self.url_map is None:
            raise RuntimeError("request.url_for() needs the app's routes: it works on a request "
                               "an App is serving (App.handle sets request.url_map)")
        url = self.prefix + self.url_map.build(endpoint, values, _method)
        if _anchor is not None:
            url += "#" + urllib.parse.quote(_anchor, safe="!$&'()*+,;=:@/?")
        if _external:
            url = f"{self.scheme}://{self.host}{url}"
        return PrefixedURL(url)

    @property
    def scheme(self) -> str:
        """``http`` or ``https``, as the client connected (``x-forwarded-proto``)."""
        return self.headers.get("x-forwarded-proto", "http").split(",")[0].strip() or "http"

    @property
    def host(self) -> str:
        """The host (and port) the client addressed (``x-forwarded-host``, else ``host``)."""
        value = self.headers.get("x-forwarded-host") or self.headers.get("host", "")
        return value.split(",")[0].strip()

    @property
    def remote_addr(self) -> str | None:
        """The client's address (the first of ``x-forwarded-for``), if known."""
        value = self.headers.get("x-forwarded-for", "").split(",")[0].strip()
        return value or None

    # -- body

    @property
    def body(self) -> bytes:
        """The whole request body (read once, then kept)."""
        if self._body is None:
            reader, self._reader = self._reader, None
            self._body = bytes(reader.read()) if reader is not None else b""
        return self._body

    @property
    def content_type(self) -> str:
        """The ``content-type`` header; ``""`` when absent."""
        return self.headers.get("content-type", "")

    @property
    def text(self) -> str:
        """The body as text, in the charset of ``content-type`` (UTF-8 by default)."""
        return decode_text(self.body, self.content_type)

    @functools.cached_property
    def form(self) -> MultiDict:
        """The fields of an urlencoded body (an HTML form posted without ``enctype``):
        ``form["name"]``, ``form.get("name", "")``, ``form.getlist("tag")``. The query's fields
        are not in it (they are in :attr:`args`).

        Raises :class:`~wasmount.HTTPError` 415 for ``multipart/form-data``, which is not
        supported.
        """
        if media_essence(self.content_type) == "multipart/form-data":
            raise HTTPError(415, "multipart/form-data bodies are not supported; post the form "
                                 "urlencoded (no enctype) or send JSON")
        return MultiDict.parse(self.body.decode("utf-8", "replace"))

    @functools.cached_property
    def json(self) -> Any:
        """The body parsed as JSON (also without a ``content-type``).

        Raises :class:`~wasmount.HTTPError`, answered in JSON: 415 when ``content-type`` is
        present and not JSON, 400 when the body is empty or not valid JSON (saying where).
        """
        if self.content_type and not is_json_type(self.content_type):
            raise HTTPError(415, "expected a JSON body (content-type application/json), got "
                                 f"{self.content_type!r}", json=True)
        body = self.body
        if not body.strip():
            raise HTTPError(400, "the request body is empty; expected JSON", json=True)
        try:
            return _json.loads(body)
        except ValueError as error:
            raise HTTPError(400, f"the request body is not valid JSON: {error}", json=True) from None

    @property
    def wants_json(self) -> bool:
        """Whether the request sent JSON, or accepts JSON and not HTML."""
        return wants_json(self.headers)

    def __repr__(self) -> str:
        query = f"?{self.query_string}" if self.query_string else ""
        return f"<Request {self.method} {self.raw_path}{query}>"
