"""Serve a WSGI application (Flask, Bottle, Django's WSGI handler, …) as the component.

::

    from flask import Flask
    from wasmount.wsgi import handler

    app = Flask(__name__)

    @app.get("/")
    def index():
        return "<h1>hello</h1>"

    IncomingHandler = handler(app)

Each request becomes a PEP 3333 environ (see :func:`build_environ`): ``SCRIPT_NAME`` is the
mount prefix (from ``x-forwarded-prefix``) and ``PATH_INFO`` the rest, so ``url_for`` builds
links under the prefix; ``wsgi.input`` streams the request body from the host. The response's
status and headers go out when the application yields its first non-empty chunk, and each
chunk is written as it comes; ``close()`` of the returned iterable is always called.
"""

from __future__ import annotations

import encodings.idna  # noqa: F401  (Flask/werkzeug need the idna codec at run time)

from ._bundle import bundle_files
from ._guest import handler
from ._wsgi import BodyReader, StartResponse, WSGIResult, build_environ, run

__all__ = ["handler", "bundle_files", "build_environ", "run", "StartResponse", "WSGIResult", "BodyReader"]
