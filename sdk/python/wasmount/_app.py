"""The app: :class:`App`, its routes declared with decorators, and serving requests with them.

It serves as the component's handler (:meth:`App.handler`) or as a WSGI application.

Flask's ``app`` module is the model. This module is the top of the SDK's core: it imports the
others, :mod:`wasmount._guest` included (for :meth:`App.handler`), and none of them imports it.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, Callable, Iterable

from . import _guest
from ._errors import HTTPError, report_exception
from ._http import PREFIX_HEADER, status_line
from ._request import Request
from ._responses import Response, complete_location, make_response
from ._routing import Handler, Router, Rule
from ._serve import Application

__all__ = ["App"]


def _errors_in_json(rule: Rule, request: Request) -> bool:
    """Whether an error of ``rule``'s handler is answered in JSON: as the route says, else as
    the request prefers."""
    return request.wants_json if rule.json_errors is None else rule.json_errors


class App(Application):
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

    Each route has an endpoint, its handler's name unless given (``endpoint="..."``), which
    :meth:`Request.url_for` links to: ``request.url_for("item", id=3)``.
    """

    def __init__(self, name: str | None = None) -> None:
        self.name = name
        #: The routes, in the order declared.
        self.url_map: Router = Router()

    # -- declaring routes

    def route(self, path: str, methods: Iterable[str] = ("GET",), *, endpoint: str | None = None,
              json_errors: bool | None = None) -> Callable[[Handler], Handler]:
        """Decorator: ``handler`` serves ``methods`` at ``path``.

        A handler returns a :class:`Response` (see :func:`html`, :func:`json`, :func:`text`,
        :func:`svg`, :func:`redirect`), or a ``str`` (HTML), ``bytes``, a ``dict``/``list`` (JSON),
        or a ``(body, status)`` / ``(body, status, headers)`` tuple. ``endpoint`` names the
        route for :meth:`Request.url_for` (the handler's name by default; a handler may serve
        several routes, but one endpoint names one handler). ``json_errors=True`` answers this
        route's errors in JSON whatever the request prefers (an API route).
        """
        if isinstance(methods, str):
            methods = (methods,)

        def register(handler: Handler) -> Handler:
            self.url_map.add(Rule(path, methods, handler, endpoint=endpoint,
                                  json_errors=json_errors))
            return handler

        return register

    def get(self, path: str, **options: Any) -> Callable[[Handler], Handler]:
        """Decorator for a ``GET`` (and ``HEAD``) route; ``options`` as for :meth:`route`."""
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
        request.url_map = self.url_map
        matched = self.url_map.match(request.raw_path, request.method)
        if matched is None:
            allowed = self.url_map.allowed_methods(request.raw_path)
            if allowed:
                error = HTTPError(405, "method not allowed", headers=[("allow", ", ".join(allowed))])
            else:
                error = HTTPError(404, "not found")
            return error.to_response(request.wants_json)
        rule, params = matched
        request.params = params
        request.endpoint = rule.endpoint
        try:
            response = make_response(rule.handler(request, **params))
        except HTTPError as error:
            response = error.to_response(_errors_in_json(rule, request))
        except Exception as error:
            report_exception(error, f"{request.method} {request.raw_path}", skip_frames=1)
            failed = HTTPError(500, "internal server error")
            response = failed.to_response(_errors_in_json(rule, request))
        return complete_location(response, request.prefix)

    def handler(self) -> type:
        """The class to assign to ``IncomingHandler`` in ``app.py``: componentize-py calls its
        ``handle`` for each request. Natively (no component bindings) the class exists, so
        ``app.py`` imports, but calling it raises ``RuntimeError``."""
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
        start_response(status_line(response.status), [(n, v) for n, v in response.headers])
        return [response.body] if request.method != "HEAD" else []

    def __repr__(self) -> str:
        routes = ", ".join(f"{'|'.join(r.methods)} {r.pattern}" for r in self.url_map.rules)
        return f"<App {self.name or ''} [{routes}]>"
