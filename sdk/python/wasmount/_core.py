"""The SDK's core, free of any WebAssembly binding: requests, responses, errors and the router.

Everything here runs the same natively (unit tests, :mod:`wasmount.testing`) and inside the
component. Every module it needs is imported here, at the top: inside the component only
modules imported at build time exist (see the package's README).
"""

from __future__ import annotations

import collections.abc
import encodings.idna  # noqa: F401  (urllib and Flask need the codec; it must exist at build time)
import encodings.latin_1  # noqa: F401
import encodings.utf_8  # noqa: F401
import json as _json
import re
import sys
import traceback
import urllib.parse
from typing import Any, Callable, Iterable, Iterator, Mapping, Union

__all__ = [
    "App", "Request", "Response", "HTTPError", "Headers", "FormData",
    "html", "json", "svg", "text", "redirect", "wants_json", "report_exception",
]

#: A header list as the SDK keeps it: ``(name, value)`` pairs, names in any case.
HeaderList = list[tuple[str, str]]
#: What a handler may return (see :meth:`App.route`).
HandlerResult = Union["Response", str, bytes, "dict[str, Any]", "list[Any]", "tuple[Any, ...]"]
Handler = Callable[..., HandlerResult]

#: The request header in which the host gives the app its mount prefix (WSGI's SCRIPT_NAME).
PREFIX_HEADER = "x-forwarded-prefix"


# --------------------------------------------------------------------------- headers


class Headers(collections.abc.Mapping[str, str]):
    """HTTP headers: a read-only, case-insensitive mapping of name to its first value.

    ``headers["Content-Type"]`` and ``headers["content-type"]`` are the same; every value of a
    repeated header is in :meth:`get_all`; :meth:`pairs` gives them all, in order.
    """

    __slots__ = ("_pairs", "_index")

    def __init__(self, pairs: Iterable[tuple[str, str]] | Mapping[str, str] = ()) -> None:
        if isinstance(pairs, collections.abc.Mapping):
            pairs = list(pairs.items())
        self._pairs: list[tuple[str, str]] = [(str(n), str(v)) for n, v in pairs]
        self._index: dict[str, list[str]] = {}
        for name, value in self._pairs:
            self._index.setdefault(name.lower(), []).append(value)

    def __getitem__(self, name: str) -> str:
        return self._index[name.lower()][0]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def get_all(self, name: str) -> list[str]:
        """Every value of header ``name``, in order; ``[]`` when absent."""
        return list(self._index.get(name.lower(), ()))

    def pairs(self) -> list[tuple[str, str]]:
        """Every ``(name, value)``, repeated headers included, in the order received."""
        return list(self._pairs)

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"


def _media_essence(media_type: str) -> str:
    """The lowercase ``type/subtype`` of a media type or range, without parameters."""
    return media_type.split(";", 1)[0].strip().lower()


def _is_json_type(media_type: str) -> bool:
    essence = _media_essence(media_type)
    return essence == "application/json" or essence.endswith("+json")


def wants_json(headers: Mapping[str, str]) -> bool:
    """Whether errors for a request with ``headers`` should be JSON: its body is JSON, or it
    accepts JSON and not HTML (a script's ``fetch``, not a browser loading a page)."""
    accepted = [_media_essence(item) for item in headers.get("accept", "").split(",")]
    accepts_json = any(_is_json_type(item) for item in accepted if item)
    accepts_html = "text/html" in accepted
    return _is_json_type(headers.get("content-type", "")) or (accepts_json and not accepts_html)


def _charset(content_type: str, default: str = "utf-8") -> str:
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return default


def decode_text(data: bytes, content_type: str = "") -> str:
    """``data`` as text in the charset of ``content_type`` (UTF-8 if none); invalid bytes and
    unknown charsets fall back to replacement characters rather than failing."""
    try:
        return data.decode(_charset(content_type), "replace")
    except LookupError:  # an unknown charset; its codec may not even be in the component
        return data.decode("utf-8", "replace")


def header_text(value: bytes | str) -> str:
    """A header value received as bytes, as text: UTF-8 when it is, else Latin-1."""
    if isinstance(value, str):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return value.decode("latin-1")


# --------------------------------------------------------------------------- forms


class FormData(collections.abc.Mapping[str, str]):
    """Decoded ``application/x-www-form-urlencoded`` fields: ``form["name"]`` is the first
    value of a field, :meth:`getlist` all of them (checkboxes, multiple selects)."""

    __slots__ = ("_lists",)

    def __init__(self, lists: Mapping[str, list[str]] | None = None) -> None:
        self._lists: dict[str, list[str]] = {k: list(v) for k, v in (lists or {}).items()}

    @classmethod
    def parse(cls, text: str) -> "FormData":
        """Fields of urlencoded ``text``; blank values are kept (an empty input is ``""``)."""
        return cls(urllib.parse.parse_qs(text, keep_blank_values=True))

    def __getitem__(self, name: str) -> str:
        return self._lists[name][0]

    def __iter__(self) -> Iterator[str]:
        return iter(self._lists)

    def __len__(self) -> int:
        return len(self._lists)

    def getlist(self, name: str) -> list[str]:
        """Every value of field ``name``; ``[]`` when absent."""
        return list(self._lists.get(name, ()))

    def lists(self) -> dict[str, list[str]]:
        """All fields, each with every value."""
        return {k: list(v) for k, v in self._lists.items()}

    def __repr__(self) -> str:
        return f"FormData({self._lists!r})"


# --------------------------------------------------------------------------- errors


class HTTPError(Exception):
    """Raise in a handler to answer with ``status`` and ``message``.

    The response is JSON, ``{"error": message, "status": status}``, when the request sent JSON
    or accepts JSON and not HTML, when the route was declared with ``json_errors=True``, or when
    ``json=True`` here; otherwise ``message`` as ``text/plain``. ``headers`` are added to it
    (``[("Allow", "GET")]``, ``[("Retry-After", "5")]``).
    """

    def __init__(self, status: int, message: str = "", *, json: bool | None = None,
                 headers: Iterable[tuple[str, str]] = ()) -> None:
        self.status = int(status)
        self.message = message or _reason(self.status)
        self.json = json
        self.headers: HeaderList = list(headers)
        super().__init__(self.status, self.message)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def to_response(self, as_json: bool = False) -> "Response":
        """The response for this error; JSON if ``as_json`` (unless ``json=False`` was given)."""
        use_json = as_json if self.json is None else self.json
        if use_json:
            response = json({"error": self.message, "status": self.status}, status=self.status)
        else:
            response = text(self.message + "\n", status=self.status)
        response.headers.extend(self.headers)
        return response


_REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 303: "See Other", 304: "Not Modified", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Gone",
    413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def _reason(status: int) -> str:
    return _REASONS.get(status, "Error").lower()


#: componentize-py mounts each folder given with ``-p`` (the project first) at ``/0``, ``/1``, …
_MOUNTED_FILE = re.compile(r'File "/\d+/')


def guest_paths_as_project_paths(text: str) -> str:
    """Tracebacks inside the component name files as componentize-py mounted them
    (``/0/app.py`` for the project folder's ``app.py``); this names them relative to the
    folder they came from (``app.py``, ``wasmount/_core.py``), as the developer knows them."""
    return _MOUNTED_FILE.sub('File "', text)


def report_exception(error: BaseException, context: str = "", skip_frames: int = 0) -> None:
    """Prints ``error``'s traceback to stderr as one block (one write), which the host keeps
    and shows as the app's error. ``context`` (``"GET /items/3"``) is said on the line before;
    ``skip_frames`` leaves out the first frames (the SDK's own dispatching), so the traceback
    starts in the developer's code."""
    tb = error.__traceback__
    for _ in range(skip_frames):
        if tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
    lines = traceback.format_exception(type(error), error, tb)
    block = (f"wasmount: {context} failed:\n" if context else "") + "".join(lines)
    if sys.platform == "wasi":
        block = guest_paths_as_project_paths(block)
    if not block.endswith("\n"):
        block += "\n"
    try:
        sys.stderr.write(block)
        sys.stderr.flush()
    except Exception:  # stderr itself failing must not turn a 500 into a trap
        pass


# --------------------------------------------------------------------------- requests


class Request:
    """One request, as a handler sees it.

    ``path`` is the path inside the app: the host has removed the mount prefix, which is in
    :attr:`prefix`. The body is read from the host the first time :attr:`body` (or
    :attr:`text`, :meth:`form`, :meth:`json`) is used, then kept.
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
        self._body: bytes | None = None
        self._reader: Any = None
        if isinstance(body, (bytes, bytearray)):
            self._body = bytes(body)
        else:
            self._reader = body

    # -- URL

    @property
    def query(self) -> dict[str, list[str]]:
        """The query's parameters, each with every value: ``?a=1&a=2`` → ``{"a": ["1", "2"]}``."""
        return urllib.parse.parse_qs(self.query_string, keep_blank_values=True)

    @property
    def args(self) -> dict[str, str]:
        """The query's parameters, each with its first value: ``?a=1&a=2`` → ``{"a": "1"}``."""
        return {name: values[0] for name, values in self.query.items()}

    @property
    def prefix(self) -> str:
        """The prefix the app is mounted under (``/viz``, no trailing ``/``); ``""`` if none."""
        return self.headers.get(PREFIX_HEADER, "").rstrip("/")

    def url_for(self, path: str, **query: Any) -> str:
        """An absolute path to ``path`` inside this app (the mount prefix, then ``path``), with
        ``query`` appended: ``url_for("/items", page=2)`` → ``/viz/items?page=2``. Relative links
        (``href="items"``) work under any prefix without it."""
        url = f"{self.prefix}/{path.lstrip('/')}"
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        return url

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

    def form(self) -> FormData:
        """The fields of an urlencoded body (an HTML form posted without ``enctype``); the
        query's fields are not included (they are in :attr:`query`).

        Raises :class:`HTTPError` 415 for ``multipart/form-data``, which is not supported.
        """
        if _media_essence(self.content_type) == "multipart/form-data":
            raise HTTPError(415, "multipart/form-data bodies are not supported; post the form "
                                 "urlencoded (no enctype) or send JSON")
        return FormData.parse(self.body.decode("utf-8", "replace"))

    def json(self) -> Any:
        """The body parsed as JSON.

        Raises :class:`HTTPError`, answered in JSON: 415 when ``content-type`` is present and not
        JSON, 400 when the body is empty or not valid JSON (saying where).
        """
        if self.content_type and not _is_json_type(self.content_type):
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


# --------------------------------------------------------------------------- responses


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


def redirect(location: str, status: int = 303) -> Response:
    """A redirect (``303 See Other`` unless ``status`` says otherwise) to ``location``.

    A location starting with one ``/`` is inside the app: the mount prefix is put before it
    (``redirect("/items")`` under ``/viz`` sends ``Location: /viz/items``). Relative locations
    (``"./"``, ``"items"``) and full URLs are sent as they are.
    """
    response = Response(b"", status, [("location", location)])
    if location.startswith("/") and not location.startswith("//"):
        response._app_location = location
    return response


def _to_response(value: Any) -> Response:
    """What a handler returned, as a :class:`Response`."""
    if isinstance(value, Response):
        return value
    if isinstance(value, tuple) and 2 <= len(value) <= 3:
        response = _to_response(value[0])
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


# --------------------------------------------------------------------------- routing

_PARAMETER = re.compile(r"^<(?:(?P<kind>[a-z]+):)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)>$")
_KINDS = ("str", "int", "path")


class _Route:
    __slots__ = ("pattern", "methods", "handler", "segments", "json_errors")

    def __init__(self, pattern: str, methods: Iterable[str], handler: Handler,
                 json_errors: bool | None) -> None:
        self.pattern = pattern
        self.methods = [method.upper() for method in methods]
        self.handler = handler
        self.json_errors = json_errors
        self.segments: list[tuple[str, str]] = []  # (kind, literal text or parameter name)
        parts = [part for part in pattern.split("/") if part]
        for position, part in enumerate(parts):
            found = _PARAMETER.match(part)
            if found is None:
                if "<" in part or ">" in part:
                    raise ValueError(f"route {pattern!r}: cannot read the segment {part!r}; write "
                                     "a parameter as <name>, <int:name> or <path:name>")
                self.segments.append(("literal", part))
                continue
            kind = found.group("kind") or "str"
            if kind not in _KINDS:
                raise ValueError(f"route {pattern!r}: unknown parameter kind {kind!r} "
                                 f"(use one of {', '.join(_KINDS)})")
            if kind == "path" and position != len(parts) - 1:
                raise ValueError(f"route {pattern!r}: <path:{found.group('name')}> must be the "
                                 "last segment")
            self.segments.append((kind, found.group("name")))

    def match(self, segments: list[str]) -> dict[str, Any] | None:
        """The parameters if the decoded path ``segments`` match this route, else ``None``."""
        params: dict[str, Any] = {}
        for position, (kind, value) in enumerate(self.segments):
            if kind == "path":
                rest = segments[position:]
                if not rest:
                    return None
                params[value] = "/".join(rest)
                return params
            if position >= len(segments):
                return None
            segment = segments[position]
            if kind == "literal":
                if segment != value:
                    return None
            elif kind == "int":
                if not (segment.isascii() and segment.isdigit()):
                    return None
                params[value] = int(segment)
            else:
                params[value] = segment
        return params if len(segments) == len(self.segments) else None


def _path_segments(raw_path: str) -> list[str]:
    """The non-empty segments of a path, each percent-decoded on its own (so ``%2F`` stays in
    its segment)."""
    return [urllib.parse.unquote(part) for part in raw_path.split("/") if part]


class App:
    """A web app: routes from method and path pattern to handler functions.

    ::

        app = App()

        @app.get("/items/<int:id>")
        def item(request, id):
            return json({"id": id})

        IncomingHandler = app.handler()   # what componentize-py serves

    A pattern's segments are literals, ``<name>`` (one segment, a ``str``), ``<int:name>`` (digits,
    an ``int``) or a last ``<path:name>`` (the rest of the path, ``/`` included). Handlers take
    the :class:`Request` and the parameters as keyword arguments. A path no route matches gets
    404; one that routes match only with other methods gets 405 with ``Allow``; ``HEAD`` is served
    by ``GET`` routes. Both are JSON or text as :class:`HTTPError` says.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        self._routes: list[_Route] = []

    # -- declaring routes

    def route(self, path: str, methods: Iterable[str] = ("GET",), *,
              json_errors: bool | None = None) -> Callable[[Handler], Handler]:
        """Decorator: ``handler`` serves ``methods`` at ``path``.

        A handler returns a :class:`Response` (see :func:`html`, :func:`json`, :func:`text`,
        :func:`svg`, :func:`redirect`), or a ``str`` (HTML), ``bytes``, a ``dict``/``list`` (JSON),
        or a ``(body, status)`` / ``(body, status, headers)`` tuple. ``json_errors=True``
        answers this route's errors in JSON whatever the request prefers (an API route).
        """
        if isinstance(methods, str):
            methods = (methods,)

        def register(handler: Handler) -> Handler:
            self._routes.append(_Route(path, methods, handler, json_errors))
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator for a ``GET`` (and ``HEAD``) route."""
        return self.route(path, ("GET",), **options)

    def post(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator for a ``POST`` route."""
        return self.route(path, ("POST",), **options)

    def put(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator for a ``PUT`` route."""
        return self.route(path, ("PUT",), **options)

    def patch(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator for a ``PATCH`` route."""
        return self.route(path, ("PATCH",), **options)

    def delete(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator for a ``DELETE`` route."""
        return self.route(path, ("DELETE",), **options)

    # -- serving

    def handle(self, request: Request) -> Response:
        """The response to ``request``. Never raises: :class:`HTTPError` becomes its response,
        any other exception a 500 whose traceback goes to stderr."""
        segments = _path_segments(request.raw_path)
        wanted = "GET" if request.method == "HEAD" else request.method
        allowed: list[str] = []
        chosen: tuple[_Route, dict[str, Any]] | None = None
        for route in self._routes:
            params = route.match(segments)
            if params is None:
                continue
            if request.method in route.methods or wanted in route.methods:
                chosen = (route, params)
                break
            for method in route.methods:
                for name in (method, "HEAD") if method == "GET" else (method,):
                    if name not in allowed:
                        allowed.append(name)
        if chosen is None:
            if allowed:
                error = HTTPError(405, "method not allowed", headers=[("allow", ", ".join(allowed))])
            else:
                error = HTTPError(404, "not found")
            return error.to_response(request.wants_json)
        route, params = chosen
        request.params = params
        try:
            response = _to_response(route.handler(request, **params))
        except HTTPError as error:
            as_json = route.json_errors if route.json_errors is not None else request.wants_json
            response = error.to_response(as_json)
        except Exception as error:
            report_exception(error, f"{request.method} {request.raw_path}", skip_frames=1)
            as_json = route.json_errors if route.json_errors is not None else request.wants_json
            response = HTTPError(500, "internal server error").to_response(as_json)
        if response._app_location is not None:
            response.set_header("location", request.prefix + response._app_location)
            response._app_location = None
        return response

    def handler(self) -> type:
        """The class to assign to ``IncomingHandler`` in ``app.py``: componentize-py calls its
        ``handle`` for each request. Natively (no component bindings) the class exists, so
        ``app.py`` imports, but calling it raises ``RuntimeError``."""
        # Not a lazy import in effect: wasmount/__init__.py imports _guest at build time, so
        # this only looks it up in sys.modules (_guest imports this module: no cycle at load).
        from . import _guest
        return _guest.handler(self)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """A WSGI application too, to run the app natively under any WSGI server
        (``wsgiref.simple_server.make_server("", 8000, app).serve_forever()``)."""
        headers: list[tuple[str, str]] = []
        for key, value in environ.items():
            if key.startswith("HTTP_"):
                headers.append((key[5:].replace("_", "-").lower(), value))
        for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if environ.get(key):
                headers.append((key.replace("_", "-").lower(), environ[key]))
        if PREFIX_HEADER not in {name for name, _ in headers}:
            headers.append((PREFIX_HEADER, environ.get("SCRIPT_NAME", "")))
        path = urllib.parse.quote(environ.get("PATH_INFO", "").encode("latin-1")) or "/"
        query = environ.get("QUERY_STRING", "")
        request = Request(environ.get("REQUEST_METHOD", "GET"), path + (f"?{query}" if query else ""),
                          headers, environ.get("wsgi.input") or b"")
        response = self.handle(request)
        status_line = f"{response.status} {_REASONS.get(response.status, 'Unknown')}"
        start_response(status_line, [(n, v) for n, v in response.headers])
        return [response.body] if request.method != "HEAD" else []

    def __repr__(self) -> str:
        routes = ", ".join(f"{'|'.join(r.methods)} {r.pattern}" for r in self._routes)
        return f"<App {self.name or ''} [{routes}]>"

