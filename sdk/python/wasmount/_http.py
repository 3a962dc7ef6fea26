"""HTTP's small vocabulary as the SDK speaks it: media types, charsets, header text, reasons.

Free of any WebAssembly binding and of the SDK's other modules (werkzeug's ``http`` module is
the model). The text codecs are imported here, at the top: inside the component only modules
imported at build time exist (see the package's README).
"""

from __future__ import annotations

import encodings.idna  # noqa: F401  (urllib and Flask need the codec; it must exist at build time)
import encodings.latin_1  # noqa: F401
import encodings.utf_8  # noqa: F401
from typing import Mapping

__all__ = [
    "PREFIX_HEADER", "HeaderList", "media_essence", "is_json_type", "wants_json", "decode_text",
    "header_text", "reason", "status_line",
]

#: The request header in which the host gives the app its mount prefix (WSGI's SCRIPT_NAME).
PREFIX_HEADER = "x-forwarded-prefix"

#: A header list as the SDK keeps it: ``(name, value)`` pairs, names in any case.
HeaderList = list[tuple[str, str]]

_REASONS = {
    200: "OK", 201: "Created", 202: "Accepted", 204: "No Content", 301: "Moved Permanently",
    302: "Found", 303: "See Other", 304: "Not Modified", 307: "Temporary Redirect",
    308: "Permanent Redirect", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Gone",
    413: "Content Too Large", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
    502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout",
}


def reason(status: int) -> str:
    """The lowercase reason phrase of ``status`` (``"not found"``), the default message of an
    :class:`~wasmount.HTTPError`; ``"error"`` for a status without one here."""
    return _REASONS.get(status, "Error").lower()


def status_line(status: int) -> str:
    """``"404 Not Found"``: a WSGI status line."""
    return f"{status} {_REASONS.get(status, 'Unknown')}"


def media_essence(media_type: str) -> str:
    """The lowercase ``type/subtype`` of a media type or range, without parameters."""
    return media_type.split(";", 1)[0].strip().lower()


def is_json_type(media_type: str) -> bool:
    """Whether ``media_type`` is JSON: ``application/json`` or any ``…+json``."""
    essence = media_essence(media_type)
    return essence == "application/json" or essence.endswith("+json")


def wants_json(headers: Mapping[str, str]) -> bool:
    """Whether errors for a request with ``headers`` should be JSON: its body is JSON, or it
    accepts JSON and not HTML (a script's ``fetch``, not a browser loading a page)."""
    accepted = [media_essence(item) for item in headers.get("accept", "").split(",")]
    accepts_json = any(is_json_type(item) for item in accepted if item)
    accepts_html = "text/html" in accepted
    return is_json_type(headers.get("content-type", "")) or (accepts_json and not accepts_html)


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
