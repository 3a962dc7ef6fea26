"""Test an app natively, with plain ``python3``: no component, no server.

::

    import unittest
    from wasmount.testing import Client
    from app import app            # a wasmount.App, or a WSGI app such as Flask's

    class AppTest(unittest.TestCase):
        def test_index(self):
            client = Client(app, prefix="/myapp")
            response = client.get("/")
            self.assertEqual(response.status, 200)
            self.assertIn("hi", response.text)

:class:`Client` serves through the same code as the component (:mod:`wasmount._serve`), with
the headers the wasmount host adds (``x-forwarded-prefix``, ``-proto``, ``-host``, ``-for``).
Paths are as the app sees them: without the mount prefix.
"""

from __future__ import annotations

import io
import json as _json
import urllib.parse
from typing import Any, Iterable, Mapping

from . import _serve
from ._datastructures import Headers
from ._http import decode_text

__all__ = ["Client", "TestResponse"]


class TestResponse:
    """A response as the client received it: ``status``, ``headers`` (case-insensitive),
    ``body`` bytes, :attr:`text`, :meth:`json`."""

    __test__ = False  # not a test case, whatever its name says

    def __init__(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.status = status
        self.headers = Headers(headers)
        self.body = body

    @property
    def text(self) -> str:
        """The body as text (in the charset of ``content-type``, UTF-8 by default)."""
        return decode_text(self.body, self.headers.get("content-type", ""))

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self.body)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def location(self) -> str | None:
        """The ``location`` header of a redirect."""
        return self.headers.get("location")

    def __repr__(self) -> str:
        return f"<TestResponse {self.status} {self.content_type}, {len(self.body)} bytes>"


class Client:
    """Sends requests to ``app`` (a :class:`wasmount.App` or a WSGI application) as the
    wasmount host would, mounted at ``prefix``."""

    def __init__(self, app: Any, prefix: str = "/myapp", *, host: str = "localhost:8080",
                 scheme: str = "http", remote_addr: str = "127.0.0.1") -> None:
        self.app = _serve.check_target(app)
        self.prefix = prefix.rstrip("/")
        self.host = host
        self.scheme = scheme
        self.remote_addr = remote_addr

    def request(self, method: str, path: str = "/", *,
                headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
                data: bytes | str | Mapping[str, Any] | None = None, json: Any = None,
                query: Mapping[str, Any] | None = None) -> TestResponse:
        """Sends ``method path``. ``data`` is the body: bytes or text as they are, a mapping as
        an urlencoded form; ``json`` a value sent as JSON; ``query`` is added to the path's
        query. Errors the app raises after its response started are raised here."""
        method = method.upper()
        pairs: list[tuple[str, str]] = [
            ("host", self.host),
            ("x-forwarded-prefix", self.prefix),
            ("x-forwarded-proto", self.scheme),
            ("x-forwarded-host", self.host),
            ("x-forwarded-for", self.remote_addr),
        ]
        given = list(headers.items()) if isinstance(headers, Mapping) else list(headers or ())
        given_names = {name.lower() for name, _ in given}
        pairs = [(n, v) for n, v in pairs if n not in given_names] + given
        body = b""
        content_type = None
        if json is not None:
            body = _json.dumps(json).encode("utf-8")
            content_type = "application/json"
        elif isinstance(data, Mapping):
            body = urllib.parse.urlencode(data, doseq=True).encode("utf-8")
            content_type = "application/x-www-form-urlencoded"
        elif isinstance(data, str):
            body = data.encode("utf-8")
            content_type = "text/plain; charset=utf-8"
        elif data is not None:
            body = bytes(data)
        if content_type and "content-type" not in given_names:
            pairs.append(("content-type", content_type))
        if (body or method in ("POST", "PUT", "PATCH")) and "content-length" not in given_names:
            pairs.append(("content-length", str(len(body))))
        uri = path if path.startswith("/") else "/" + path
        if query:
            uri += ("&" if "?" in uri else "?") + urllib.parse.urlencode(query, doseq=True)
        # Header values as the host gives them to a component: bytes.
        raw_headers = [(name.lower(), str(value).encode("utf-8")) for name, value in pairs]
        outcome = _serve.serve(self.app, method, uri, raw_headers,
                               io.BufferedReader(io.BytesIO(body)), authority=self.host,
                               url_scheme=self.scheme)
        sent = _serve.headers_to_send(outcome, method)
        chunks: list[bytes] = []
        try:
            if method != "HEAD":
                for chunk in outcome.chunks:
                    chunks.append(chunk)
        finally:
            outcome.close()
        return TestResponse(outcome.status, sent, b"".join(chunks))

    def get(self, path: str = "/", **options: Any) -> TestResponse:
        """``GET path``; see :meth:`request` for the options."""
        return self.request("GET", path, **options)

    def head(self, path: str = "/", **options: Any) -> TestResponse:
        """``HEAD path``."""
        return self.request("HEAD", path, **options)

    def post(self, path: str = "/", **options: Any) -> TestResponse:
        """``POST path``; ``data=`` (form or bytes) or ``json=``."""
        return self.request("POST", path, **options)

    def put(self, path: str = "/", **options: Any) -> TestResponse:
        """``PUT path``."""
        return self.request("PUT", path, **options)

    def patch(self, path: str = "/", **options: Any) -> TestResponse:
        """``PATCH path``."""
        return self.request("PATCH", path, **options)

    def delete(self, path: str = "/", **options: Any) -> TestResponse:
        """``DELETE path``."""
        return self.request("DELETE", path, **options)
