"""{{name}}: a wasmount app in Python, a standard wasi:http/proxy component (componentize-py).

Routes, as the app sees them (the host strips the mount prefix, /{{name}}): GET / a page,
GET /api/hello JSON, POST /greet a form, GET /static/style.css. Every link is relative, so the
app works under any prefix. Launched as an instance, the page also shows the input (INPUT_JSON).

Two rules of componentize-py: import every module here at the top (a module imported first
inside a function is not in the component and fails at run time), and remember that
module-level code runs once, at build time: read os.environ inside a request, never up here.
"""

import html
import json
import os
import urllib.parse

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields, IncomingRequest, Method_Get, Method_Head, Method_Post, OutgoingBody,
    OutgoingResponse, ResponseOutparam,
)

APP = "{{name}}"
HTML = "text/html; charset=utf-8"
TEXT = "text/plain; charset=utf-8"
MAX_BODY = 1 << 20   # the largest form accepted, in bytes
WRITE_CHUNK = 4096   # the most one blocking-write-and-flush may take

# The style sheet, served at static/style.css (a Rust app would embed a file instead).
STYLE = """\
body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #222; background: #f7f7f5; }
main { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
h1 { color: #2f4fb5; }
form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: 1rem 0; }
input, button { padding: .3rem .6rem; font: inherit; }
code { padding: 0 .25rem; background: #eceae4; border-radius: 3px; }
.error { color: #b00020; }
footer { margin-top: 2rem; color: #777; font-size: .9em; }
"""


class IncomingHandler(exports.IncomingHandler):
    """componentize-py calls handle() once per request."""

    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        method = request.method()
        is_get = isinstance(method, (Method_Get, Method_Head))
        path = (request.path_with_query() or "/").split("?", 1)[0]
        if path == "/" and is_get:
            respond(response_out, 200, HTML, index_page(request))
        elif path == "/api/hello" and is_get:
            hello = {"app": APP, "message": "hello from Python",
                     "instance": os.environ.get("WASMOUNT_INSTANCE")}
            respond(response_out, 200, "application/json", json.dumps(hello))
        elif path == "/greet" and isinstance(method, Method_Post):
            try:
                fields = urllib.parse.parse_qs(read_body(request).decode("utf-8", "replace"))
            except ValueError as problem:
                respond(response_out, 413, TEXT, f"{problem}\n")
                return
            name = fields.get("name", [""])[0].strip() or "stranger"
            body = f'<p>Hello, {html.escape(name)}!</p><p><a href="./">Back</a></p>'
            respond(response_out, 200, HTML, page("Hello", body))
        elif path == "/static/style.css" and is_get:
            respond(response_out, 200, "text/css; charset=utf-8", STYLE)
        elif path in ("/", "/api/hello", "/greet", "/static/style.css"):
            respond(response_out, 405, TEXT, "method not allowed\n")
        else:
            respond(response_out, 404, TEXT, "not found\n")


def index_page(request):
    """GET /: the form, and the input when the app was launched as an instance."""
    with request.headers() as headers:  # a child resource: dropped before the request is
        values = headers.get("x-forwarded-prefix")
    prefix = values[0].decode("utf-8", "replace").rstrip("/") if values else ""
    return page(APP, f"<p>This app is mounted at <code>{html.escape(prefix)}/</code>; its links "
                     "are relative, so it works under any prefix.</p>"
                     '<form method="post" action="greet"><label>Your name '
                     '<input name="name" required></label> <button>Greet me</button></form>'
                     '<p>JSON: <a href="api/hello">api/hello</a></p>' + input_section())


def input_section():
    """The launched instance's input: its data file URLs and parameters; "" when not launched."""
    text, url = os.environ.get("INPUT_JSON"), os.environ.get("INPUT_JSON_URL")
    if text is None and url is None:
        return ""  # not launched as an instance
    if text is None:
        # Fetching it needs wasi:http/outgoing-handler and the host in allowed_outbound_hosts.
        return f"<h2>Input</h2><p>At <code>{html.escape(url)}</code> (not fetched).</p>"
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
    except ValueError as problem:
        return f'<p class="error">The input is not valid: {html.escape(str(problem))}</p>'
    files = [html.escape(u) for u in file_urls(data.get("file_relationships"))]
    params = [f"<code>{html.escape(str(k))}</code> = {html.escape(show(v))}"
              for k, v in parameters(data.get("parameters"))]
    return f"<h2>Input</h2><h3>Files</h3>{bullets(files)}<h3>Parameters</h3>{bullets(params)}"


def file_urls(value):
    """Every URL in file_relationships: strings, possibly nested in lists."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [url for item in value for url in file_urls(item)]
    return []


def parameters(value):
    """(name, value) pairs: Refinery sends a list of {"name", "value"}, others an object."""
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        return [(p.get("name", ""), p.get("value")) for p in value if isinstance(p, dict)]
    return []


def show(value):
    """A JSON value as text: strings without their quotes."""
    return value if isinstance(value, str) else json.dumps(value)


def bullets(items):
    """An HTML list of `items` (already escaped), or "none"."""
    if not items:
        return "<p>none</p>"
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def page(title, body):
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)}</title><link rel="stylesheet" href="static/style.css">'
            f"</head><body><main><h1>{html.escape(title)}</h1>{body}"
            f"<footer>{html.escape(APP)}, Python on wasmount</footer></main></body></html>\n")


def read_body(request):
    """The whole request body; ValueError past MAX_BODY."""
    body = request.consume()
    stream = body.stream()
    data = bytearray()
    try:
        while len(data) <= MAX_BODY:
            try:
                data += stream.blocking_read(65536)
            except Err as error:
                if isinstance(error.value, StreamError_Closed):
                    break
                raise
    finally:
        stream.__exit__(None, None, None)
    if len(data) > MAX_BODY:
        raise ValueError("the form is larger than 1 MiB")
    return bytes(data)


def respond(response_out, status, content_type, text):
    response = OutgoingResponse(Fields.from_list([("content-type", content_type.encode())]))
    response.set_status_code(status)
    body = response.body()
    ResponseOutparam.set(response_out, Ok(response))
    stream = body.write()
    data = text.encode()
    for start in range(0, len(data), WRITE_CHUNK):
        stream.blocking_write_and_flush(data[start:start + WRITE_CHUNK])
    stream.__exit__(None, None, None)
    OutgoingBody.finish(body, None)
