"""A bar chart from a table, in Python, as a standard wasi:http/proxy component.

Paste a TSV or CSV (a header row, then a label and numbers per row): the page shows the first
numeric column as an SVG bar chart and the table under it. Every link is relative, so the app
works under any mount prefix. Also: GET hello (a plain greeting, for benchmarks) and GET count
(requests this instance has served: 1 with a fresh instance per request, growing with reuse).

Build (see README.md): componentize-py -d ../../wit -w wasi:http/proxy componentize app -o python-chart.wasm
"""

import html
import urllib.parse

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.streams import StreamError_Closed
from wit_world.imports.types import (
    Fields, IncomingRequest, Method_Get, Method_Head, Method_Post, OutgoingBody,
    OutgoingResponse, ResponseOutparam,
)

MAX_BODY = 1 << 20
WRITE_CHUNK = 4096  # the most one blocking-write-and-flush may take
EXAMPLE = "gene\tcontrol\ttreated\nTP53\t4.5\t9.1\nBRCA1\t7.2\t3.3\nMYC\t2.8\t8.4\nEGFR\t6.1\t5.9\n"

served = 0  # a global: grows only when the host reuses this instance


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        global served
        served += 1
        method = request.method()
        path = (request.path_with_query() or "/").split("?", 1)[0]
        if path == "/" and isinstance(method, (Method_Get, Method_Head)):
            respond(response_out, 200, "text/html; charset=utf-8", page("Chart a table", form(EXAMPLE)))
        elif path == "/chart" and isinstance(method, Method_Post):
            text = ""
            try:
                fields = urllib.parse.parse_qs(read_body(request).decode("utf-8", "replace"))
                text = fields.get("data", [""])[0]
                status, body = 200, chart_page(parse(text))
            except ValueError as problem:
                status, body = 400, page("Cannot chart this table",
                                         f'<p class="error">{html.escape(str(problem))}</p>' + form(text))
            respond(response_out, status, "text/html; charset=utf-8", body)
        elif path == "/hello":
            respond(response_out, 200, "text/plain; charset=utf-8", "hello from Python\n")
        elif path == "/count":
            respond(response_out, 200, "text/plain; charset=utf-8", f"{served}\n")
        elif path in ("/", "/chart"):
            respond(response_out, 405, "text/plain; charset=utf-8", "method not allowed\n")
        else:
            respond(response_out, 404, "text/plain; charset=utf-8", "not found\n")


def parse(text):
    """A header row, then rows of a label and numbers; tab- or comma-separated."""
    lines = [line for line in text.replace("\r", "").split("\n") if line.strip()]
    if len(lines) < 2:
        raise ValueError("paste a header row and at least one data row")
    separator = "\t" if "\t" in lines[0] else ","
    header = [cell.strip() for cell in lines[0].split(separator)]
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        cells = [cell.strip() for cell in line.split(separator)]
        if len(cells) < 2:
            raise ValueError(f"line {number} has no numbers")
        try:
            values = [float(cell) for cell in cells[1:]]
        except ValueError:
            raise ValueError(f"line {number}: not all of {cells[1:]} are numbers") from None
        rows.append((cells[0], values))
    columns = header[1:] if len(header) == len(rows[0][1]) + 1 else header
    return columns, rows


def chart_page(table):
    columns, rows = table
    top = max((abs(values[0]) for _, values in rows), default=1.0) or 1.0
    bar, gap, width = 28, 8, 480
    height = len(rows) * (bar + gap) + gap
    bars = []
    for index, (label, values) in enumerate(rows):
        y = gap + index * (bar + gap)
        length = abs(values[0]) / top * (width - 160)
        bars.append(
            f'<text x="110" y="{y + bar * 0.7:.0f}" text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="120" y="{y}" width="{length:.1f}" height="{bar}" fill="#3b7dd8"><title>'
            f'{html.escape(label)}: {values[0]:g}</title></rect>'
            f'<text x="{126 + length:.1f}" y="{y + bar * 0.7:.0f}">{values[0]:g}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="13">{"".join(bars)}</svg>')
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><th>{html.escape(label)}</th>" + "".join(f"<td>{v:g}</td>" for v in values) + "</tr>"
        for label, values in rows)
    title = html.escape(columns[0] if columns else "values")
    return page(f"Bar chart of {title}",
                f"<figure>{svg}</figure><table><tr><th></th>{head}</tr>{body}</table>"
                '<p><a href="./">Chart another table</a></p>')


def form(text):
    return ('<form method="post" action="chart"><p><textarea name="data" rows="10" cols="60">'
            f"{html.escape(text)}</textarea></p><p><button>Chart</button></p></form>")


def page(title, body):
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
            f"{body}<p><small>Python on wasmount</small></p></body></html>\n")


def read_body(request):
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
        raise ValueError("the table is larger than 1 MiB")
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
