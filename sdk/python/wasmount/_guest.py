"""The glue between wasi:http (componentize-py's ``wit_world`` bindings) and :mod:`wasmount._serve`.

:func:`handler` makes the ``IncomingHandler`` class componentize-py serves: for each request it
reads the method, path, headers and (lazily, as a stream) the body, serves them with an
:class:`~wasmount.App` or a WSGI application, and writes the response: status and headers
first, then the body as the app produces it, in writes of at most 4096 bytes (the most one
``blocking-write-and-flush`` takes).

The bindings are imported here, at the top, so that componentize-py snapshots them at build
time; natively they do not exist, and the package still imports (the class made then says so
when called).
"""

from __future__ import annotations

import io
import sys
import traceback
from typing import Any

from . import _serve
from ._wsgi import BodyReader
from ._errors import report_exception

try:
    from componentize_py_types import Err, Ok
    from wit_world import exports as _exports
    from wit_world.imports import streams as _streams
    from wit_world.imports import types as _types
    _bindings = True
except ImportError:
    if sys.platform == "wasi":  # building the component: the bindings must be there
        raise
    _bindings = False

__all__ = ["handler", "WRITE_CHUNK", "READ_CHUNK"]

#: The most bytes one ``blocking-write-and-flush`` may take.
WRITE_CHUNK = 4096
#: The most bytes asked of the host per read of a request body.
READ_CHUNK = 65536


def handler(target: Any) -> type:
    """The ``IncomingHandler`` class for ``target``: a :class:`wasmount.App`, or any WSGI
    application (a Flask app, …). Assign it in ``app.py``: ``IncomingHandler = handler(app)``.

    Natively (no component bindings) the class exists, so ``app.py`` can be imported by tests,
    but calling its ``handle`` raises ``RuntimeError``: test with :mod:`wasmount.testing`.
    """
    target = _serve.check_target(target)
    if not _bindings:
        class NativeIncomingHandler:
            """Stands for the component's handler outside a component."""

            def handle(self, request: Any, response_out: Any) -> None:
                raise RuntimeError("IncomingHandler only runs inside a component built by "
                                   "componentize-py; natively, test with wasmount.testing.Client")

        NativeIncomingHandler.target = target  # type: ignore[attr-defined]
        return NativeIncomingHandler

    class IncomingHandler(_exports.IncomingHandler):  # type: ignore[misc]
        """Serves each wasi:http request with the app given to :func:`wasmount.handler`."""

        def handle(self, request: Any, response_out: Any) -> None:
            handle_request(target, request, response_out)

    IncomingHandler.target = target
    return IncomingHandler


def _method_name(method: Any) -> str:
    """A binding's ``Method_Get()`` as ``"GET"``; ``Method_Other("PURGE")`` as ``"PURGE"``."""
    name = type(method).__name__
    if name == "Method_Other":
        return str(method.value).upper()
    return name.partition("_")[2].upper()


def _scheme_name(scheme: Any) -> str | None:
    if scheme is None:
        return None
    name = type(scheme).__name__
    if name == "Scheme_Other":
        return str(scheme.value).lower()
    return name.partition("_")[2].lower()


def _drop(resource: Any) -> None:
    """Releases a resource now (componentize-py drops it in ``__exit__``); children before
    their parents, or the host traps."""
    if resource is not None:
        resource.__exit__(None, None, None)


class _InputStreamReader:
    """Reads an ``input-stream`` as ``read_chunk(n)``: blocking reads, ``b""`` once closed."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.closed = False

    def __call__(self, size: int) -> bytes:
        if self.closed:
            return b""
        while True:
            try:
                data = self.stream.blocking_read(min(max(size, 1), READ_CHUNK))
            except Err as error:
                if isinstance(error.value, _streams.StreamError_Closed):
                    self.closed = True
                    return b""
                raise OSError(f"reading the request body failed: {_stream_error(error.value)}")
            if data:
                return bytes(data)


def _stream_error(value: Any) -> str:
    failed = getattr(value, "value", None)
    if failed is not None and hasattr(failed, "to_debug_string"):
        return str(failed.to_debug_string())
    return type(value).__name__


def _fields(headers: list[tuple[str, str]]) -> Any:
    """A ``fields`` resource of ``headers``; one the host refuses is left out (and said)."""
    entries = [(name.lower(), _header_bytes(value)) for name, value in headers]
    try:
        return _types.Fields.from_list(entries)
    except Err:
        pass
    fields = _types.Fields()
    for name, value in entries:
        try:
            fields.append(name, value)
        except Err as error:
            sys.stderr.write(f"wasmount: response header {name!r} left out: the host refuses "
                             f"it ({type(error.value).__name__})\n")
    return fields


def _header_bytes(value: str) -> bytes:
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        return value.encode("utf-8")


def _plain_response(response_out: Any, status: int, message: str) -> None:
    response = _types.OutgoingResponse(_fields([("content-type", "text/plain; charset=utf-8")]))
    response.set_status_code(status)
    body = response.body()
    _types.ResponseOutparam.set(response_out, Ok(response))
    stream = body.write()
    data = message.encode("utf-8")
    for start in range(0, len(data), WRITE_CHUNK):
        stream.blocking_write_and_flush(data[start:start + WRITE_CHUNK])
    _drop(stream)
    _types.OutgoingBody.finish(body, None)


def handle_request(target: Any, request: Any, response_out: Any) -> None:
    """Serves one wasi:http ``incoming-request`` with ``target`` into ``response_out``."""
    method = _method_name(request.method())
    uri = request.path_with_query() or "/"
    with request.headers() as fields:  # a child of the request: dropped before it
        headers = fields.entries()
    authority = request.authority()
    url_scheme = _scheme_name(request.scheme())
    incoming_body = request.consume()
    stream = incoming_body.stream()
    reader = _InputStreamReader(stream)
    body = io.BufferedReader(BodyReader(reader), READ_CHUNK)
    try:
        try:
            outcome = _serve.serve(target, method, uri, headers, body, authority=authority,
                                   url_scheme=url_scheme)
        except Exception as error:  # the SDK's own failure: the app's are a 500 already
            report_exception(error, f"{method} {uri.partition('?')[0]}")
            _plain_response(response_out, 500, "internal server error\n")
            return
        _send(outcome, method, response_out)
    finally:
        _drop(stream)
        _drop(incoming_body)


def _send(outcome: _serve.Outcome, method: str, response_out: Any) -> None:
    """Writes ``outcome``: status and headers, then each chunk as the app yields it. A failure
    after the headers went out aborts the body (the client sees an incomplete response)."""
    try:
        response = _types.OutgoingResponse(_fields(_serve.headers_to_send(outcome, method)))
        try:
            response.set_status_code(outcome.status)
        except Err:
            sys.stderr.write(f"wasmount: the app answered status {outcome.status}, which is not "
                             "valid; sending 500\n")
            response.set_status_code(500)
        body = response.body()
    except Exception as error:
        report_exception(error, f"{method} (response headers)")
        outcome.close()
        _plain_response(response_out, 500, "internal server error\n")
        return
    _types.ResponseOutparam.set(response_out, Ok(response))
    stream = body.write()
    try:
        if method != "HEAD":
            for chunk in outcome.chunks:
                for start in range(0, len(chunk), WRITE_CHUNK):
                    stream.blocking_write_and_flush(chunk[start:start + WRITE_CHUNK])
        outcome.close()
    except BaseException as error:
        # The status is sent: all that is left is to say why and cut the body short.
        report_exception(error, f"{method} (response body)")
        try:
            outcome.close()
        except Exception:
            traceback.print_exc()
        _drop(stream)
        _drop(body)  # dropped without finish: the host treats the body as failed
        return
    _drop(stream)
    try:
        _types.OutgoingBody.finish(body, None)
    except Err as error:
        sys.stderr.write(f"wasmount: the response body could not be finished: "
                         f"{type(error.value).__name__} {getattr(error.value, 'value', '')} "
                         "(does content-length match the body?)\n")
