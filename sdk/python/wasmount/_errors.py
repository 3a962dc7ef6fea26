"""Errors: :class:`HTTPError` and its response, and the one-block traceback report on stderr.

Free of any WebAssembly binding (werkzeug's ``exceptions`` is the model). Every module it
needs is imported here, at the top: inside the component only modules imported at build
time exist (see the package's README).
"""

from __future__ import annotations

import re
import sys
import traceback
from typing import Iterable

from ._http import HeaderList, reason
from ._responses import Response, json, text

__all__ = ["HTTPError", "report_exception", "guest_paths_as_project_paths"]


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
        self.message = message or reason(self.status)
        self.json = json
        self.headers: HeaderList = list(headers)
        super().__init__(self.status, self.message)

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def to_response(self, as_json: bool = False) -> Response:
        """The response for this error; JSON if ``as_json`` (unless ``json=False`` was given)."""
        use_json = as_json if self.json is None else self.json
        if use_json:
            response = json({"error": self.message, "status": self.status}, status=self.status)
        else:
            response = text(self.message + "\n", status=self.status)
        response.headers.extend(self.headers)
        return response


#: componentize-py mounts each folder given with ``-p`` (the project first) at ``/0``, ``/1``, …
_MOUNTED_FILE = re.compile(r'File "/\d+/')


def guest_paths_as_project_paths(text: str) -> str:
    """Tracebacks inside the component name files as componentize-py mounted them
    (``/0/app.py`` for the project folder's ``app.py``); this names them relative to the
    folder they came from (``app.py``, ``wasmount/_app.py``), as the developer knows them."""
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
