"""Routing: path patterns, matching a path to a route, and building a route's URL back.

A :class:`Rule` is one route; a :class:`Router` holds an app's, matches a request's path and
builds the path of an endpoint with values (for ``url_for``).

Free of any WebAssembly binding and of the SDK's other modules (werkzeug's ``routing`` is the
model: a rule's endpoint, by default its view function's name, is what ``url_for`` takes).
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any, Callable, Iterable, Mapping

__all__ = ["Rule", "Router", "BuildError", "Handler", "path_segments"]

#: A route's view function: takes the request and the path parameters, returns a response.
Handler = Callable[..., Any]

_PARAMETER = re.compile(r"^<(?:(?P<kind>[a-z]+):)?(?P<name>[A-Za-z_][A-Za-z0-9_]*)>$")
_KINDS = ("str", "int", "path")
#: What may stay unescaped in a built path segment (RFC 3986 ``pchar``, but ``%`` and ``/``).
_SEGMENT_SAFE = "!$&'()*+,;=:@"


class BuildError(LookupError):
    """``url_for`` cannot build a URL: no route has the endpoint, or a value its route needs
    is missing (the message says which)."""


def path_segments(raw_path: str) -> list[str]:
    """The non-empty segments of a path, each percent-decoded on its own (so ``%2F`` stays in
    its segment)."""
    return [urllib.parse.unquote(part) for part in raw_path.split("/") if part]


class Rule:
    """One route: a path ``pattern``, the ``methods`` it answers, its ``handler`` and the
    ``endpoint`` that names it for ``url_for``.

    A pattern's segments are literals, ``<name>`` (one segment, a ``str``), ``<int:name>``
    (digits, an ``int``) or a last ``<path:name>`` (the rest of the path, ``/`` included).
    """

    __slots__ = ("pattern", "methods", "handler", "endpoint", "json_errors", "segments",
                 "parameters", "trailing_slash")

    def __init__(self, pattern: str, methods: Iterable[str], handler: Handler, *,
                 endpoint: str | None = None, json_errors: bool | None = None) -> None:
        self.pattern = pattern
        self.methods = [method.upper() for method in methods]
        self.handler = handler
        self.endpoint: str = endpoint or getattr(handler, "__name__", "") or repr(handler)
        self.json_errors = json_errors
        self.segments: list[tuple[str, str]] = []  # (kind, literal text or parameter name)
        parts = [part for part in pattern.split("/") if part]
        self.trailing_slash = bool(parts) and pattern.endswith("/")
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
        #: The names of the path parameters, in order.
        self.parameters: list[str] = [name for kind, name in self.segments if kind != "literal"]

    def answers(self, method: str) -> bool:
        """Whether this rule serves ``method`` (``HEAD`` where it serves ``GET``)."""
        method = method.upper()
        return method in self.methods or (method == "HEAD" and "GET" in self.methods)

    def match(self, segments: list[str]) -> dict[str, Any] | None:
        """The parameters if the decoded path ``segments`` match this rule, else ``None``."""
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

    def build(self, values: Mapping[str, Any]) -> str:
        """The path of this rule with its parameters taken from ``values`` (each one there),
        then the other ``values`` as the query string (``None`` left out, a list repeated).

        Raises ``ValueError`` for a value that cannot fill its placeholder (not an ``int`` for
        ``<int:…>``, empty).
        """
        parts = []
        for kind, text in self.segments:
            if kind == "literal":
                parts.append(urllib.parse.quote(text, safe=_SEGMENT_SAFE))
                continue
            value = values[text]
            if kind == "int":
                digits = str(value)
                if isinstance(value, bool) or not (digits.isascii() and digits.isdigit()):
                    raise ValueError(f"route {self.pattern!r}: <int:{text}> takes a whole "
                                     f"number of 0 or more, not {value!r}")
                parts.append(str(int(digits)))
                continue
            value = str(value).strip("/") if kind == "path" else str(value)
            if not value:
                raise ValueError(f"route {self.pattern!r}: <{text}> cannot be empty")
            safe = _SEGMENT_SAFE + ("/" if kind == "path" else "")
            parts.append(urllib.parse.quote(value, safe))
        path = "/" + "/".join(parts) + ("/" if self.trailing_slash else "")
        query = [(name, value) for name, value in values.items()
                 if name not in self.parameters and value is not None]
        return path + ("?" + urllib.parse.urlencode(query, doseq=True) if query else "")

    def __repr__(self) -> str:
        return f"<Rule {'|'.join(self.methods)} {self.pattern} → {self.endpoint}>"


class Router:
    """An app's rules, in the order declared: matches a request's path to one, and builds the
    path of an endpoint back (``url_for``)."""

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self._by_endpoint: dict[str, list[Rule]] = {}

    def add(self, rule: Rule) -> None:
        """Adds ``rule``. An endpoint names one view function: ``ValueError`` if another
        function has the endpoint already (give one of them ``endpoint=...``)."""
        same = self._by_endpoint.get(rule.endpoint, [])
        if same and same[0].handler is not rule.handler:
            raise ValueError(f"route {rule.pattern!r}: the endpoint {rule.endpoint!r} is already "
                             f"the view function of {same[0].pattern!r}; give one of them "
                             "another name, or endpoint=\"...\"")
        self.rules.append(rule)
        # To build, the rule taking the most values comes first (as werkzeug does): with
        # /items and /items/<int:page>, url_for("items", page=2) is /items/2.
        self._by_endpoint[rule.endpoint] = sorted(same + [rule], key=lambda r: -len(r.parameters))

    def match(self, raw_path: str, method: str) -> tuple[Rule, dict[str, Any]] | None:
        """The first rule that serves ``method`` at ``raw_path``, with its parameters; ``None``
        when there is none (see :meth:`allowed_methods` to tell a 404 from a 405)."""
        segments = path_segments(raw_path)
        for rule in self.rules:
            if rule.answers(method):
                params = rule.match(segments)
                if params is not None:
                    return rule, params
        return None

    def allowed_methods(self, raw_path: str) -> list[str]:
        """The methods the rules matching ``raw_path`` serve (``HEAD`` with ``GET``), in the
        order declared; ``[]`` when no rule matches the path."""
        segments = path_segments(raw_path)
        allowed: list[str] = []
        for rule in self.rules:
            if rule.match(segments) is None:
                continue
            for method in rule.methods:
                for name in (method, "HEAD") if method == "GET" else (method,):
                    if name not in allowed:
                        allowed.append(name)
        return allowed

    def endpoints(self) -> list[str]:
        """Every endpoint, in the order first declared."""
        return list(self._by_endpoint)

    def build(self, endpoint: str, values: Mapping[str, Any], method: str | None = None) -> str:
        """The path (and query) of ``endpoint`` with ``values``, inside the app: the first of
        its rules (serving ``method``, if given) whose parameters are all in ``values``.

        Raises :class:`BuildError` for an unknown endpoint or a missing value.
        """
        rules = self._by_endpoint.get(endpoint)
        if not rules:
            known = ", ".join(repr(name) for name in self._by_endpoint) or "none"
            hint = (" (url_for takes an endpoint, the name of a view function, not a path)"
                    if "/" in endpoint else "")
            raise BuildError(f"url_for({endpoint!r}): no route has this endpoint{hint}; "
                             f"the endpoints are {known}")
        if method is not None:
            rules = [rule for rule in rules if rule.answers(method)]
            if not rules:
                raise BuildError(f"url_for({endpoint!r}, _method={method!r}): no route of this "
                                 "endpoint serves that method")
        given = {name: value for name, value in values.items() if value is not None}
        for rule in rules:
            if all(name in given for name in rule.parameters):
                return rule.build(given)
        closest = min(rules, key=lambda r: sum(name not in given for name in r.parameters))
        missing = ", ".join(name for name in closest.parameters if name not in given)
        raise BuildError(f"url_for({endpoint!r}): the route {closest.pattern!r} needs a value "
                         f"for {missing}: url_for({endpoint!r}, {missing.split(', ')[0]}=...)")
