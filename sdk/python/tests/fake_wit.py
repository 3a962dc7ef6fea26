"""In-memory stand-ins for the ``wit_world`` bindings componentize-py generates (the names
and shapes of componentize-py 0.25.1's wasi:http/proxy bindings), to test the SDK's glue
natively. They check what the host would: at most 4096 bytes per blocking write, children
dropped before their parents, no use after a drop, a body as long as its content-length.

``install()`` puts them in ``sys.modules`` and binds them in the SDK modules as their
guarded imports would; ``uninstall()`` undoes it.
"""

from __future__ import annotations

import sys
import types as pytypes
from dataclasses import dataclass
from typing import Any

MODULES = ["componentize_py_types", "wit_world", "wit_world.exports", "wit_world.imports",
           "wit_world.imports.types", "wit_world.imports.streams", "wit_world.imports.poll",
           "wit_world.imports.outgoing_handler", "wit_world.imports.monotonic_clock"]


# --------------------------------------------------------------------------- componentize_py_types

@dataclass
class Ok:
    value: Any


@dataclass(frozen=True)
class Err(Exception):
    value: Any


# --------------------------------------------------------------------------- resources

class HostTrap(AssertionError):
    """What would trap the component in a real host."""


class Resource:
    def __init__(self) -> None:
        self.dropped = False
        self.children: list[Resource] = []

    def check(self) -> None:
        if self.dropped:
            raise HostTrap(f"{type(self).__name__} used after it was dropped")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.check()
        live = [c for c in self.children if not c.dropped]
        if live:
            raise HostTrap(f"{type(self).__name__} dropped before its children {live}")
        self.dropped = True
        return None


# --------------------------------------------------------------------------- poll / clocks

class Pollable(Resource):
    def __init__(self, ready=lambda: True, tick=lambda: None) -> None:
        super().__init__()
        self._ready = ready
        self.tick = tick  # time passing, for poll()

    def ready(self) -> bool:
        self.check()
        return bool(self._ready())

    def block(self) -> None:
        if not self.ready():
            raise HostTrap("block() on a pollable that never becomes ready")


def poll(in_):
    for _ in range(100):
        ready = [i for i, p in enumerate(in_) if p.ready()]
        if ready:
            return ready
        for pollable in in_:
            pollable.tick()
    raise HostTrap("poll() with nothing that will ever be ready")


class Clock:
    """The timer: ``rings`` says whether a deadline pollable is ready."""
    rings = False
    subscribed: list[int] = []


def subscribe_duration(when: int) -> Pollable:
    Clock.subscribed.append(when)
    return Pollable(lambda: Clock.rings)


def subscribe_instant(when: int) -> Pollable:
    return subscribe_duration(when)


def now() -> int:
    return 0


# --------------------------------------------------------------------------- streams

@dataclass
class StreamError_Closed:
    pass


@dataclass
class StreamError_LastOperationFailed:
    value: Any


class FakeIoError(Resource):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def to_debug_string(self) -> str:
        return self.text


class InputStream(Resource):
    """Gives ``chunks`` one per read; an empty chunk is "nothing yet" (then ready again)."""

    def __init__(self, chunks: list[bytes], fail: Any = None) -> None:
        super().__init__()
        self.chunks = list(chunks)
        self.fail = fail
        self.reads: list[int] = []

    def _next(self, size: int, blocking: bool) -> bytes:
        self.check()
        self.reads.append(size)
        while self.chunks:
            chunk = self.chunks[0]
            if not chunk:
                self.chunks.pop(0)
                if blocking:
                    continue
                return b""
            taken, rest = chunk[:size], chunk[size:]
            if rest:
                self.chunks[0] = rest
            else:
                self.chunks.pop(0)
            return taken
        if self.fail is not None:
            raise Err(StreamError_LastOperationFailed(FakeIoError(self.fail)))
        raise Err(StreamError_Closed())

    def read(self, len: int) -> bytes:
        return self._next(len, blocking=False)

    def blocking_read(self, len: int) -> bytes:
        return self._next(len, blocking=True)

    def subscribe(self) -> Pollable:
        self.check()
        pollable = Pollable(lambda: True)
        self.children.append(pollable)
        return pollable


class OutputStream(Resource):
    def __init__(self, sink: bytearray, closed: bool = False) -> None:
        super().__init__()
        self.sink = sink
        self.writes: list[int] = []
        self.closed = closed

    def blocking_write_and_flush(self, contents: bytes) -> None:
        self.check()
        if len(contents) > 4096:
            raise HostTrap(f"blocking_write_and_flush of {len(contents)} bytes (> 4096)")
        if self.closed:
            raise Err(StreamError_Closed())
        self.writes.append(len(contents))
        self.sink += contents


# --------------------------------------------------------------------------- http types

def _variants(prefix: str, names: list[str], module: dict) -> None:
    for name in names:
        module[f"{prefix}_{name}"] = dataclass(type(f"{prefix}_{name}", (), {}))


@dataclass
class Method_Other:
    value: str


@dataclass
class Scheme_Other:
    value: str


@dataclass
class ErrorCode_InternalError:
    value: Any


@dataclass
class ErrorCode_DnsError:
    value: Any


@dataclass
class DnsErrorPayload:
    rcode: Any
    info_code: Any


@dataclass
class HeaderError_Forbidden:
    pass


@dataclass
class HeaderError_InvalidSyntax:
    pass


FORBIDDEN = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization",
             "proxy-connection", "transfer-encoding", "upgrade", "host", "http2-settings"}


class Fields(Resource):
    def __init__(self) -> None:
        super().__init__()
        self._entries: list[tuple[str, bytes]] = []
        self.immutable = False

    @classmethod
    def from_list(cls, entries):
        fields = cls()
        for name, value in entries:
            if name.lower() in FORBIDDEN:
                raise Err(HeaderError_Forbidden())
            if not isinstance(value, bytes) or "\n" in name:
                raise Err(HeaderError_InvalidSyntax())
            fields._entries.append((name, value))
        return fields

    def append(self, name: str, value: bytes) -> None:
        self.check()
        if self.immutable:
            raise HostTrap("append to immutable fields")
        if name.lower() in FORBIDDEN:
            raise Err(HeaderError_Forbidden())
        self._entries.append((name, value))

    def get(self, name: str):
        return [v for n, v in self._entries if n.lower() == name.lower()]

    def entries(self):
        self.check()
        return list(self._entries)


class IncomingBody(Resource):
    def __init__(self, stream: InputStream) -> None:
        super().__init__()
        self._stream = stream
        self.taken = False

    def stream(self) -> InputStream:
        self.check()
        if self.taken:
            raise Err(None)
        self.taken = True
        self.children.append(self._stream)
        return self._stream


class IncomingRequest(Resource):
    def __init__(self, method, path_with_query, headers, body_chunks, authority="localhost",
                 scheme=None) -> None:
        super().__init__()
        self._method = method
        self._path = path_with_query
        self._headers = headers
        self._body = IncomingBody(InputStream(body_chunks))
        self._authority = authority
        self._scheme = scheme

    def method(self):
        return self._method

    def path_with_query(self):
        return self._path

    def authority(self):
        return self._authority

    def scheme(self):
        return self._scheme

    def headers(self) -> Fields:
        self.check()
        fields = Fields()  # the host's own fields: nothing is forbidden in them
        fields._entries = [(n, v) for n, v in self._headers]
        fields.immutable = True
        self.children.append(fields)
        return fields

    def consume(self) -> IncomingBody:
        self.check()
        self.children.append(self._body)
        return self._body


class OutgoingBody(Resource):
    def __init__(self, expected_length: int | None) -> None:
        super().__init__()
        self.data = bytearray()
        self.stream: OutputStream | None = None
        self.finished = False
        self.expected_length = expected_length
        self.closed_stream = False

    def write(self) -> OutputStream:
        self.check()
        if self.stream is not None:
            raise Err(None)
        self.stream = OutputStream(self.data, closed=self.closed_stream)
        self.children.append(self.stream)
        return self.stream

    @classmethod
    def finish(cls, this: "OutgoingBody", trailers) -> None:
        this.check()
        if this.stream is not None and not this.stream.dropped:
            raise HostTrap("finish() with the output stream still alive")
        this.dropped = True
        this.finished = True
        if this.expected_length is not None and this.expected_length != len(this.data):
            raise Err(ErrorCode_HttpResponseBodySize(len(this.data)))


@dataclass
class ErrorCode_HttpResponseBodySize:
    value: Any


@dataclass
class ErrorCode_HttpRequestBodySize:
    value: Any


def _content_length(fields: Fields) -> int | None:
    values = fields.get("content-length")
    return int(values[0]) if values else None


class OutgoingResponse(Resource):
    def __init__(self, headers: Fields) -> None:
        super().__init__()
        headers.check()
        headers.dropped = True  # moved into the response
        self.fields = headers
        self.status = 200
        self._body: OutgoingBody | None = None

    def set_status_code(self, status_code: int) -> None:
        if not 100 <= status_code <= 999:
            raise Err(None)
        self.status = status_code

    def body(self) -> OutgoingBody:
        if self._body is not None:
            raise Err(None)
        self._body = OutgoingBody(_content_length(self.fields))
        return self._body


class ResponseOutparam(Resource):
    def __init__(self) -> None:
        super().__init__()
        self.response: Any = None

    @classmethod
    def set(cls, param: "ResponseOutparam", response) -> None:
        param.check()
        if param.response is not None:
            raise HostTrap("response-outparam set twice")
        param.response = response
        param.dropped = True


class OutgoingRequest(Resource):
    def __init__(self, headers: Fields) -> None:
        super().__init__()
        headers.dropped = True
        self.fields = headers
        self.method_ = Method_Get()
        self.scheme_ = None
        self.authority_ = None
        self.path_ = None
        self._body: OutgoingBody | None = None

    def body(self) -> OutgoingBody:
        if self._body is not None:
            raise Err(None)
        self._body = OutgoingBody(_content_length(self.fields))
        return self._body

    def set_method(self, method) -> None:
        self.method_ = method

    def set_scheme(self, scheme) -> None:
        self.scheme_ = scheme

    def set_authority(self, authority) -> None:
        if authority is not None and " " in authority:
            raise Err(None)
        self.authority_ = authority

    def set_path_with_query(self, path) -> None:
        self.path_ = path


class RequestOptions(Resource):
    def __init__(self) -> None:
        super().__init__()
        self.timeouts: dict[str, int] = {}

    def set_connect_timeout(self, duration):
        self.timeouts["connect"] = duration

    def set_first_byte_timeout(self, duration):
        self.timeouts["first_byte"] = duration

    def set_between_bytes_timeout(self, duration):
        raise Err(None)  # "not supported": the SDK must shrug


class IncomingResponse(Resource):
    def __init__(self, status: int, headers: list[tuple[str, bytes]], chunks: list[bytes],
                 fail: str | None = None) -> None:
        super().__init__()
        self._status = status
        self._headers = headers
        self._body = IncomingBody(InputStream(chunks, fail))

    def status(self) -> int:
        return self._status

    def headers(self) -> Fields:
        fields = Fields()
        fields._entries = list(self._headers)
        fields.immutable = True
        self.children.append(fields)
        return fields

    def consume(self) -> IncomingBody:
        self.children.append(self._body)
        return self._body


class FutureIncomingResponse(Resource):
    def __init__(self, outcome: Any, ready_after: int = 0) -> None:
        super().__init__()
        self.outcome = outcome  # IncomingResponse, or an ErrorCode value
        self.ready_after = ready_after
        self.taken = False

    def subscribe(self) -> Pollable:
        def tick():
            self.ready_after -= 1
        pollable = Pollable(lambda: self.outcome is not None and self.ready_after <= 0, tick)
        self.children.append(pollable)
        return pollable

    def get(self):
        if self.outcome is None or self.ready_after > 0:
            return None
        if self.taken:
            return Err(None)
        self.taken = True
        if isinstance(self.outcome, IncomingResponse):
            return Ok(Ok(self.outcome))
        return Ok(Err(self.outcome))


def http_error_code(err):
    return None


class Outgoing:
    """What outgoing_handler.handle does: ``answer(request) -> FutureIncomingResponse``, or
    raises. ``requests`` keeps every request sent (with its body)."""
    answer: Any = None
    requests: list[OutgoingRequest] = []
    options: list[RequestOptions] = []


def handle(request: OutgoingRequest, options):
    request.check()
    request.dropped = True
    Outgoing.requests.append(request)
    Outgoing.options.append(options)
    if options is not None:
        options.dropped = True
    return Outgoing.answer(request)


class IncomingHandlerBase:
    def handle(self, request, response_out):
        raise NotImplementedError


# --------------------------------------------------------------------------- installing

def _module(name: str, **members: Any) -> pytypes.ModuleType:
    module = pytypes.ModuleType(name)
    module.__dict__.update(members)
    return module


def build_modules() -> dict[str, pytypes.ModuleType]:
    types_members: dict[str, Any] = {}
    _variants("Method", ["Get", "Head", "Post", "Put", "Delete", "Connect", "Options", "Trace",
                         "Patch"], types_members)
    _variants("Scheme", ["Http", "Https"], types_members)
    _variants("ErrorCode", ["HttpRequestDenied", "ConnectionRefused", "DnsTimeout",
                            "HttpResponseTimeout"], types_members)
    types_members.update(
        Method_Other=Method_Other, Scheme_Other=Scheme_Other,
        ErrorCode_InternalError=ErrorCode_InternalError, ErrorCode_DnsError=ErrorCode_DnsError,
        ErrorCode_HttpResponseBodySize=ErrorCode_HttpResponseBodySize,
        ErrorCode_HttpRequestBodySize=ErrorCode_HttpRequestBodySize,
        DnsErrorPayload=DnsErrorPayload, Fields=Fields, IncomingRequest=IncomingRequest,
        IncomingBody=IncomingBody, OutgoingBody=OutgoingBody, OutgoingResponse=OutgoingResponse,
        ResponseOutparam=ResponseOutparam, OutgoingRequest=OutgoingRequest,
        RequestOptions=RequestOptions, IncomingResponse=IncomingResponse,
        FutureIncomingResponse=FutureIncomingResponse, http_error_code=http_error_code,
        HeaderError_Forbidden=HeaderError_Forbidden,
    )
    global Method_Get
    Method_Get = types_members["Method_Get"]
    wit_types = _module("wit_world.imports.types", **types_members)
    streams = _module("wit_world.imports.streams", StreamError_Closed=StreamError_Closed,
                      StreamError_LastOperationFailed=StreamError_LastOperationFailed,
                      InputStream=InputStream, OutputStream=OutputStream)
    poll_module = _module("wit_world.imports.poll", Pollable=Pollable, poll=poll)
    clock = _module("wit_world.imports.monotonic_clock", now=now,
                    subscribe_duration=subscribe_duration, subscribe_instant=subscribe_instant)
    outgoing = _module("wit_world.imports.outgoing_handler", handle=handle)
    exports = _module("wit_world.exports", IncomingHandler=IncomingHandlerBase)
    imports = _module("wit_world.imports", types=wit_types, streams=streams, poll=poll_module,
                      monotonic_clock=clock, outgoing_handler=outgoing)
    imports.__path__ = []  # a package
    world = _module("wit_world", exports=exports, imports=imports)
    world.__path__ = []
    return {
        "componentize_py_types": _module("componentize_py_types", Ok=Ok, Err=Err),
        "wit_world": world, "wit_world.exports": exports, "wit_world.imports": imports,
        "wit_world.imports.types": wit_types, "wit_world.imports.streams": streams,
        "wit_world.imports.poll": poll_module, "wit_world.imports.outgoing_handler": outgoing,
        "wit_world.imports.monotonic_clock": clock,
    }


Method_Get: Any = None
_SAVED: dict[tuple[str, str], Any] = {}
_ABSENT = object()


def _bind(modules: dict[str, pytypes.ModuleType]) -> dict[str, dict[str, Any]]:
    """What the SDK modules' guarded imports bind when the bindings exist."""
    imports = modules["wit_world.imports"]
    common = {"Err": modules["componentize_py_types"].Err, "_types": imports.types,
              "_streams": imports.streams, "_bindings": True}
    return {
        "wasmount._guest": {**common, "Ok": modules["componentize_py_types"].Ok,
                            "_exports": modules["wit_world.exports"]},
        "wasmount.fetch": {**common, "_clock": imports.monotonic_clock,
                           "_outgoing": imports.outgoing_handler, "_poll": imports.poll},
    }


def install() -> dict[str, pytypes.ModuleType]:
    """Puts the fakes in ``sys.modules`` and binds them in the SDK modules as their guarded
    imports would have (no reload, so the SDK's classes stay the same objects)."""
    modules = build_modules()
    sys.modules.update(modules)
    import wasmount  # noqa: F401
    for module_name, names in _bind(modules).items():
        module = sys.modules[module_name]
        for name, value in names.items():
            _SAVED.setdefault((module_name, name), module.__dict__.get(name, _ABSENT))
            setattr(module, name, value)
    return modules


def uninstall() -> None:
    for name in MODULES:
        sys.modules.pop(name, None)
    for (module_name, name), value in _SAVED.items():
        module = sys.modules[module_name]
        if value is _ABSENT:
            module.__dict__.pop(name, None)
        else:
            setattr(module, name, value)
    _SAVED.clear()
