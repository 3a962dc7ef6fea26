"""{{name}}: a wasmount app in Python, on the wasmount SDK (package `wasmount`).

Routes, as the app sees them (the host strips the mount prefix, /{{name}}): GET / a page,
GET /api/hello JSON, POST /greet a form's answer, GET /static/style.css. Every link is
relative, so the app works under any prefix. Launched as an instance, the page also shows the
instance's input: its data file URLs and its parameters.

Build time and run time: `wasmount build` (componentize-py) runs this module once, at build
time, and snapshots the interpreter; every request then starts from that snapshot and only
calls a handler. So import everything at the top (a module first imported inside a handler is
not in the component), and read the environment (INPUT_JSON, WASMOUNT_INSTANCE, your
manifest's `environment`) inside handlers only: up here it is the build machine's.
"""

import os
from html import escape

from wasmount import App, Input, InputError, Response, html, json

APP = "{{name}}"

# The style sheet, served at static/style.css. Built once, at build time: free at run time.
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

# Refinery declares each parameter's type; Input.parameter() converts the value to it.
TYPES = {"INTEGER": int, "FLOAT": float, "BOOLEAN": bool}

app = App()


@app.get("/")
def index(request):
    """The form, and the input when the app was launched as an instance."""
    body = (f"<p>This app is mounted at <code>{escape(request.prefix)}/</code>; its links are "
            "relative, so it works under any prefix.</p>"
            '<form method="post" action="greet"><label>Your name <input name="name" required>'
            "</label> <button>Greet me</button></form>"
            '<p>JSON: <a href="api/hello">api/hello</a></p>')
    return html(page(APP, body + input_section()))


@app.get("/api/hello", json_errors=True)  # an API: an HTTPError raised here answers JSON
def hello(request):
    return json({"app": APP, "message": "hello from Python",
                 "instance": os.environ.get("WASMOUNT_INSTANCE")})  # null unless launched


@app.post("/greet")
def greet(request):
    name = request.form.get("name", "").strip() or "stranger"
    return html(page("Hello", f'<p>Hello, {escape(name)}!</p><p><a href="./">Back</a></p>'))


@app.get("/static/style.css")
def style(request):
    return Response(STYLE, content_type="text/css; charset=utf-8")


def input_section():
    """The launched instance's input: its data file URLs and typed parameters; "" if none."""
    try:
        # INPUT_JSON, or fetched from INPUT_JSON_URL (its host must be in
        # allowed_outbound_hosts in wasmount.toml).
        source = Input.load()
        if not source.launched:
            return ""  # not launched as an instance
        files = [escape(url) for url in source.file_urls]
        params = [f"<code>{escape(str(name))}</code> = {escape(repr(value))} "
                  f"({type(value).__name__})" for name, value in typed_parameters(source)]
    except InputError as problem:  # not JSON, not fetched, or a value not of its type
        return f'<p class="error">Cannot read the input: {escape(str(problem))}</p>'
    return f"<h2>Input</h2><h3>Files</h3>{bullets(files)}<h3>Parameters</h3>{bullets(params)}"


def typed_parameters(source):
    """(name, value) of each parameter. Refinery sends a list of {"name", "value",
    "value_type"}; other launchers an object of name → value, taken as sent."""
    sent = source.parameters
    if isinstance(sent, dict):
        return list(sent.items())
    pairs = []
    for item in sent if isinstance(sent, list) else []:
        if isinstance(item, dict) and "name" in item:
            kind = TYPES.get(item.get("value_type"))
            # parameter() converts what was sent ("20" → 20, "true" → True), or raises
            # InputError; your own code asks for the type it needs: parameter("top", int).
            value = source.parameter(item["name"], kind) if kind else item.get("value")
            pairs.append((item["name"], value))
    return pairs


def bullets(items):
    """An HTML list of `items` (already escaped), or "none"."""
    if not items:
        return "<p>none</p>"
    return "<ul>" + "".join(f"<li>{item}</li>" for item in items) + "</ul>"


def page(title, body):
    """A whole page; the style sheet's link is relative, like every other link."""
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{escape(title)}</title><link rel="stylesheet" href="static/style.css">'
            f"</head><body><main><h1>{escape(title)}</h1>{body}"
            f"<footer>{escape(APP)}, Python on wasmount</footer></main></body></html>\n")


IncomingHandler = app.handler()  # the class componentize-py serves: one call per request
