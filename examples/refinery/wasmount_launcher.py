"""A launcher for wasmount with the shape of django_docker_engine's: launch a visualization
app for one input and get its URL back, list, delete, and upload apps.

Standard library only (urllib), so it drops into a Django project such as Refinery without
new dependencies. Every refusal raises WasmountError with the server's status and message.

    launcher = Launcher("http://127.0.0.1:8080", token=os.environ["WASMOUNT_ADMIN_TOKEN"])
    launcher.upload("heatmap", "heatmap.wasm", manifest="heatmap.toml")
    url = launcher.launch("heatmap", {"file_relationships": ["http://data/a.tsv"]})
"""

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid

__all__ = ["Launcher", "WasmountError"]


class WasmountError(Exception):
    """The server refused a call (or could not be reached: status 0)."""

    def __init__(self, status, message):
        super().__init__(f"wasmount answered {status}: {message}")
        self.status = status
        self.message = message


class Launcher:
    """Talks to one wasmount server's admin API."""

    def __init__(self, server_url, token, timeout=30.0):
        self.server_url = server_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def launch(self, app, input=None, input_url=None, name=None):
        """Starts an instance of `app` bound to `input` (any JSON value: the app gets it as
        INPUT_JSON) or `input_url` (it gets INPUT_JSON_URL) and returns its URL, which
        answers at once. `name` picks the URL segment; by default the server makes one."""
        if (input is None) == (input_url is None):
            raise ValueError("give exactly one of input and input_url")
        body = {"app": app}
        if input is not None:
            body["input"] = input
        else:
            body["input_url"] = input_url
        if name is not None:
            body["name"] = name
        reply = self._call("POST", "/_wasmount/instances", json.dumps(body).encode(),
                           "application/json")
        return reply["url"]

    def list(self):
        """The instances: dicts with name, url, app, created, last_used, input_bytes."""
        return self._call("GET", "/_wasmount/instances")["instances"]

    def get(self, name):
        """One instance, with its input."""
        return self._call("GET", "/_wasmount/instances/" + _segment(name))

    def delete(self, name):
        """Removes an instance; its URL answers 404 from then on."""
        self._call("DELETE", "/_wasmount/instances/" + _segment(name))

    def upload(self, name, path, manifest=None):
        """Adds or replaces app `name` with the component at `path` (and its settings, the
        NAME.toml text at `manifest`, going live together). Returns the server's report."""
        with open(path, "rb") as file:
            component = file.read()
        if manifest is None:
            return self._call("PUT", "/_wasmount/apps/" + _segment(name), component,
                              "application/wasm")
        with open(manifest, "rb") as file:
            settings = file.read()
        boundary = "wasmount-" + uuid.uuid4().hex
        parts = []
        for part, data, kind in (("component", component, "application/wasm"),
                                 ("manifest", settings, "application/toml")):
            parts.append(
                f"--{boundary}\r\ncontent-disposition: form-data; name=\"{part}\"\r\n"
                f"content-type: {kind}\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        return self._call("PUT", "/_wasmount/apps/" + _segment(name), body,
                          "multipart/form-data; boundary=" + boundary)

    def apps(self):
        """The mounted apps."""
        return self._call("GET", "/_wasmount/apps")["apps"]

    def _call(self, method, path, body=None, content_type=None):
        request = urllib.request.Request(self.server_url + path, data=body, method=method)
        request.add_header("Authorization", "Bearer " + self.token)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                text = response.read()
        except urllib.error.HTTPError as refused:
            raise WasmountError(refused.code, _message(refused.read())) from None
        except urllib.error.URLError as unreachable:
            raise WasmountError(0, f"cannot reach {self.server_url}: {unreachable.reason}") \
                from None
        return json.loads(text) if text else None


def _segment(name):
    return urllib.parse.quote(name, safe="")


def _message(body):
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip()
