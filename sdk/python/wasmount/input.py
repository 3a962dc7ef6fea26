"""The input of a launched instance, as Refinery (django_docker_engine) gives a visualization:
JSON in the ``INPUT_JSON`` environment variable, or a URL to fetch it from in
``INPUT_JSON_URL``.

::

    from wasmount import Input

    @app.get("/")
    def index(request):
        source = Input.load()                       # in the handler: never at module level
        urls = source.file_urls                     # every data file, nested lists flattened
        top = source.parameter("top", int, default=20)

Read it inside a handler: module-level code runs once, at build time, when there is no input.
"""

from __future__ import annotations

import json as _json
import os
from typing import Any, Callable, Mapping

from .fetch import FetchError, fetch

__all__ = ["Input", "InputError", "INPUT_JSON", "INPUT_JSON_URL", "INSTANCE"]

#: The environment variable holding the input itself.
INPUT_JSON = "INPUT_JSON"
#: The environment variable holding the URL of the input.
INPUT_JSON_URL = "INPUT_JSON_URL"
#: The environment variable in which wasmount gives a launched instance its name.
INSTANCE = "WASMOUNT_INSTANCE"

_TRUE = {"true", "1", "yes", "on", "y", "t"}
_FALSE = {"false", "0", "no", "off", "n", "f", ""}

_MISSING: Any = object()


class InputError(Exception):
    """The input could not be read (not JSON, not fetched), or a parameter is not of the
    type asked for; the message says which."""


class Input:
    """A visualization's input: ``file_relationships`` (the data files), ``parameters``,
    ``extra_options`` and whatever else the launcher sent (in :attr:`data`)."""

    def __init__(self, data: Mapping[str, Any] | None = None, *, launched: bool = True) -> None:
        if data is not None and not isinstance(data, Mapping):
            raise InputError(f"the input must be a JSON object, not {type(data).__name__}")
        #: The whole input, as parsed.
        self.data: dict[str, Any] = dict(data or {})
        #: ``False`` when the app was not launched with an input (neither variable set).
        self.launched = launched

    # -- loading

    @classmethod
    def parse(cls, text: str | bytes) -> "Input":
        """Input from JSON text; :class:`InputError` when it is not a JSON object."""
        try:
            data = _json.loads(text)
        except ValueError as error:
            raise InputError(f"the input is not valid JSON: {error}") from None
        return cls(data)

    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None,
             fetcher: Callable[..., Any] | None = None, timeout: float = 30.0) -> "Input":
        """The input of this instance: ``INPUT_JSON``, else fetched from ``INPUT_JSON_URL``
        (with :func:`wasmount.fetch.fetch`; the app's manifest must allow that host). When
        neither is set (the app was not launched as an instance) an empty input, whose
        :attr:`launched` is ``False``.

        Call it in a handler, not at module level (that runs at build time). It reads (and
        fetches) anew each time; keep the result for the request rather than calling it often.

        Raises :class:`InputError` when the input is not a JSON object or cannot be fetched.
        """
        env = os.environ if environ is None else environ
        text = env.get(INPUT_JSON)
        if text:
            return cls.parse(text)
        url = env.get(INPUT_JSON_URL)
        if not url:
            return cls({}, launched=False)
        get = fetcher or fetch
        try:
            response = get(url, timeout=timeout)
        except FetchError as error:
            raise InputError(f"the input could not be fetched: {error}") from None
        status = getattr(response, "status", 200)
        if not 200 <= status < 300:
            raise InputError(f"the input could not be fetched: {url} answered {status}")
        body = response.body
        return cls.parse(body)

    # -- what it holds

    @property
    def instance_name(self) -> str | None:
        """The name of this launched instance (its URL is ``/NAME/``), from
        ``WASMOUNT_INSTANCE``; ``None`` when the app was not launched as an instance."""
        return os.environ.get(INSTANCE) or None

    @property
    def file_relationships(self) -> Any:
        """``file_relationships`` as sent: nested lists of URLs, or a flat list."""
        return self.data.get("file_relationships", [])

    @property
    def file_urls(self) -> list[str]:
        """Every data file URL in ``file_relationships``, in order, nested lists flattened
        (``[["a"], ["b", "c"]]`` and ``["a", "b", "c"]`` both give ``["a", "b", "c"]``)."""
        urls: list[str] = []

        def collect(value: Any) -> None:
            if isinstance(value, str):
                if value:
                    urls.append(value)
            elif isinstance(value, (list, tuple)):
                for item in value:
                    collect(item)

        collect(self.file_relationships)
        return urls

    @property
    def parameters(self) -> Any:
        """``parameters`` as sent: a list of ``{"name", "value", …}`` objects (Refinery) or an
        object of name → value."""
        return self.data.get("parameters", [])

    @property
    def extra_options(self) -> dict[str, Any]:
        """``extra_options`` (``{}`` when absent)."""
        value = self.data.get("extra_options")
        return dict(value) if isinstance(value, Mapping) else {}

    @property
    def api_prefix(self) -> str | None:
        """``api_prefix``, the platform's API base URL, if given."""
        value = self.data.get("api_prefix")
        return value if isinstance(value, str) and value else None

    @property
    def node_info(self) -> dict[str, Any]:
        """``node_info``, metadata of the data files by node (``{}`` when absent)."""
        value = self.data.get("node_info")
        return dict(value) if isinstance(value, Mapping) else {}

    def raw_parameter(self, name: str, default: Any = None) -> Any:
        """Parameter ``name``'s value as sent (from either layout), else ``default``."""
        value = self._lookup(name)
        return default if value is _MISSING else value

    def parameter(self, name: str, type: Callable[[Any], Any] = str, default: Any = None) -> Any:
        """Parameter ``name`` as ``type`` (``str``, ``int``, ``float``, ``bool``, or any callable
        converting the value), from either layout of ``parameters``; ``default`` when it is
        absent or null.

        Values sent as text are converted: ``"5"`` is an ``int``, ``"0.5"`` a ``float``,
        ``"true"``/``"false"`` (also ``yes``/``no``, ``on``/``off``, ``1``/``0``) a ``bool``.
        Raises :class:`InputError` naming the parameter when the value is not such a value.
        """
        value = self._lookup(name)
        if value is _MISSING or value is None:
            return default
        try:
            return _convert(value, type)
        except (TypeError, ValueError) as error:
            kind = getattr(type, "__name__", str(type))
            raise InputError(f"parameter {name!r} is not a valid {kind}: {value!r} ({error})") \
                from None

    def _lookup(self, name: str) -> Any:
        parameters = self.parameters
        if isinstance(parameters, Mapping):
            return parameters.get(name, _MISSING)
        if isinstance(parameters, list):
            for item in parameters:
                if isinstance(item, Mapping) and item.get("name") == name:
                    return item.get("value")
        return _MISSING

    def __repr__(self) -> str:
        return f"Input(files={len(self.file_urls)}, launched={self.launched})"


def _convert(value: Any, kind: Callable[[Any], Any]) -> Any:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, (int, float)) and value in (0, 1):
            return bool(value)
        if isinstance(value, str):
            lowered = value.strip().lower()
            if lowered in _TRUE:
                return True
            if lowered in _FALSE:
                return False
        raise ValueError("expected true or false")
    if kind is int:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        if isinstance(value, int):
            return value
        if isinstance(value, float):
            if value.is_integer():
                return int(value)
            raise ValueError("not a whole number")
        if isinstance(value, str):
            text = value.strip()
            try:
                return int(text)
            except ValueError:
                number = float(text)
                if number.is_integer():
                    return int(number)
                raise ValueError("not a whole number") from None
        raise ValueError("expected a number")
    if kind is float:
        if isinstance(value, bool):
            raise ValueError("a boolean is not a number")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            return float(value.strip())
        raise ValueError("expected a number")
    if kind is str:
        if isinstance(value, str):
            return value
        if isinstance(value, bool) or value is None or isinstance(value, (list, dict)):
            return _json.dumps(value)
        return str(value)
    if isinstance(kind, type) and isinstance(value, kind):
        return value
    return kind(value)
