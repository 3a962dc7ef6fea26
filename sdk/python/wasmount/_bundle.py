"""Files a Flask app reads at run time, read at build time instead.

A component has no files: componentize-py runs the app's module once while building and keeps
what it loaded in memory, but the project folder is not there when requests come. So the
templates and static files of a Flask app are read now (this runs at build time, from the
entry module ``wasmount build`` generates) and served from memory: templates through a Jinja
loader, static files through the app's own ``static`` endpoint.
"""

from __future__ import annotations

import logging
import mimetypes
import os
import re
from typing import Any

__all__ = ["bundle_files"]


def _read_tree(folder: str) -> dict[str, bytes]:
    """Every file under ``folder``, by its path relative to it (with ``/``)."""
    files: dict[str, bytes] = {}
    if not os.path.isdir(folder):
        return files
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        for name in names:
            if _is_editor_file(name):
                continue
            path = os.path.join(parent, name)
            relative = os.path.relpath(path, folder).replace(os.sep, "/")
            with open(path, "rb") as file:
                files[relative] = file.read()
    return files


def _is_editor_file(name: str) -> bool:
    """Hidden files and editors' backups and swap files: never served nor compiled."""
    return name.startswith(".") or name.endswith(("~", ".swp", ".swo", ".tmp"))


def bundle_files(app: Any) -> Any:
    """Reads a Flask app's ``templates/`` and ``static/`` into memory and serves them from
    there; any other WSGI application is returned as it is."""
    root = getattr(app, "root_path", None)
    if root is None or not hasattr(app, "send_static_file"):
        return app
    # Flask's own dependencies, already loaded; imported here, at build time, because a module
    # first imported while serving does not exist (jinja2.debug renders template errors).
    import jinja2
    import jinja2.debug  # noqa: F401

    template_folder = os.path.join(root, app.template_folder or "templates")
    templates = {}
    for name, data in _read_tree(template_folder).items():
        try:
            templates[name] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # not a template (an image beside them): Jinja could not load it either
    if templates:
        app.jinja_loader = jinja2.DictLoader(templates)
        # Compiled now: compiling needs the Python compiler's helpers at hand, and saves the
        # first request the work.
        for name in templates:
            app.jinja_env.get_template(name)
    static_folder = app.static_folder
    static = _read_tree(static_folder) if static_folder else {}
    if static:
        app.send_static_file = _static_sender(app, static)
    _log_source_paths(app)
    return app


#: componentize-py mounts each folder of the Python path as ``/0``, ``/1``, …: a traceback's
#: ``File "/0/app.py"`` is the developer's ``app.py``.
_MOUNTED = re.compile(r'File "/\d+/')


class _SourcePaths(logging.Formatter):
    """Flask's log format, with tracebacks naming files as the developer knows them."""

    def formatException(self, ei: Any) -> str:  # noqa: N802 (logging's name)
        return _MOUNTED.sub('File "', super().formatException(ei))


def _log_source_paths(app: Any) -> None:
    """Makes the app's logger (where Flask reports an exception) print readable paths."""
    formatter = _SourcePaths("[%(asctime)s] %(levelname)s in %(module)s: %(message)s")
    for handler in getattr(app, "logger", logging.getLogger()).handlers:
        handler.setFormatter(formatter)


def _static_sender(app: Any, files: dict[str, bytes]) -> Any:
    """A ``send_static_file`` that answers from ``files``."""

    def send_static_file(filename: str) -> Any:
        data = files.get(filename)
        if data is None:
            return app.response_class("not found\n", status=404, mimetype="text/plain")
        kind = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return app.response_class(data, mimetype=kind)

    return send_static_file
