"""wasmount: write web apps in Python that run as WebAssembly components on wasmount.

An app is a :class:`App` with routes, or any WSGI application (Flask, …); either is served by
the class componentize-py needs, ``IncomingHandler``::

    from wasmount import App, html

    app = App()

    @app.get("/")
    def index(request):
        return html("<h1>hi</h1>")

    IncomingHandler = app.handler()

Modules:

- :mod:`wasmount` — :class:`App`, :class:`Request`, :class:`Response`, :class:`HTTPError`,
  :class:`BuildError`, :class:`Headers`, :class:`MultiDict` (``FormData``), the response
  helpers :func:`html`, :func:`json`, :func:`text`, :func:`svg`, :func:`redirect`,
  :func:`handler`, and :class:`Input`.
- :mod:`wasmount.input` — the input of a launched instance (``INPUT_JSON``/``INPUT_JSON_URL``).
- :mod:`wasmount.fetch` — outgoing HTTP over wasi:http (a component has no sockets).
- :mod:`wasmount.wsgi` — serve a WSGI application.
- :mod:`wasmount.testing` — test an app natively, without building a component.

Every module the SDK uses at run time is imported here, at build time: inside the component a
module first imported while serving a request does not exist (see the README).
"""

from __future__ import annotations

# The order matters only in that every module is imported now, at build time. The private
# modules import one another as a DAG, _app at the top:
#   _http, _datastructures, _routing, _wsgi: none of the SDK's
#   _responses → _http;  _errors → _responses, _http
#   _request → _datastructures, _errors, _http, _responses, _routing
#   _serve → _wsgi, _datastructures, _errors, _http, _request, _responses
#   _guest → _serve, _wsgi, _errors;  _app → _guest, _serve, _request, _responses, _routing, …
from . import _http, _datastructures, _routing, _responses, _errors, _request  # noqa: F401
from . import _wsgi, _serve, _guest, _app  # noqa: F401
from . import fetch as _fetch_module  # noqa: F401  (wasmount.fetch stays the module)
from . import input as _input_module  # noqa: F401
from . import wsgi as _wsgi_module  # noqa: F401
from ._app import App
from ._datastructures import FormData, Headers, MultiDict
from ._errors import HTTPError
from ._guest import handler
from ._request import Request
from ._responses import Response, html, json, redirect, svg, text
from ._routing import BuildError
from .fetch import FetchError, FetchResponse
from .input import Input, InputError

__version__ = "0.1.0"

__all__ = [
    "App", "Request", "Response", "HTTPError", "BuildError", "Headers", "MultiDict", "FormData",
    "html", "json", "text", "svg", "redirect", "handler",
    "Input", "InputError", "FetchError", "FetchResponse",
]
