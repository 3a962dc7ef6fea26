"""A bar chart from a table, in Python, on the wasmount SDK (a standard wasi:http/proxy component).

Paste a TSV or CSV (a header row, then a label and numbers per row): the page shows the first
numeric column as an SVG bar chart and the table under it. Every link is relative, so the app
works under any mount prefix. Also: GET hello (a plain greeting, for benchmarks) and GET count
(requests this instance has served: 1 with a fresh instance per request, growing with reuse).

Build (see README.md), in this folder:
componentize-py -d ../../wit -w wasi:http/proxy componentize app -p . -p ../../sdk/python -o python-chart.wasm
"""

from html import escape

from wasmount import App, html, text

MAX_BODY = 1 << 20
EXAMPLE = "gene\tcontrol\ttreated\nTP53\t4.5\t9.1\nBRCA1\t7.2\t3.3\nMYC\t2.8\t8.4\nEGFR\t6.1\t5.9\n"
# Methods /hello and /count answer (HEAD too, through GET): any method a client may send.
ANY = ("GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

served = 0  # a global: grows only when the host reuses this instance


class CountingApp(App):
    """An App that counts every request this instance serves, whatever its route (404s too)."""

    def handle(self, request):
        global served
        served += 1
        return super().handle(request)


app = CountingApp()


@app.get("/")
def index(request):
    return html(page("Chart a table", form(EXAMPLE)))


@app.post("/chart")
def chart(request):
    source = ""
    try:
        if len(request.body) > MAX_BODY:
            raise ValueError("the table is larger than 1 MiB")
        source = request.form.get("data", "")
        return html(chart_page(parse(source)))
    except ValueError as problem:
        return html(page("Cannot chart this table",
                         f'<p class="error">{escape(str(problem))}</p>' + form(source)), 400)


@app.route("/hello", methods=ANY)
def hello(request):
    return text("hello from Python\n")


@app.route("/count", methods=ANY)
def count(request):
    return text(f"{served}\n")


def parse(source):
    """A header row, then rows of a label and numbers; tab- or comma-separated."""
    lines = [line for line in source.replace("\r", "").split("\n") if line.strip()]
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
            f'<text x="110" y="{y + bar * 0.7:.0f}" text-anchor="end">{escape(label)}</text>'
            f'<rect x="120" y="{y}" width="{length:.1f}" height="{bar}" fill="#3b7dd8"><title>'
            f'{escape(label)}: {values[0]:g}</title></rect>'
            f'<text x="{126 + length:.1f}" y="{y + bar * 0.7:.0f}">{values[0]:g}</text>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="13">{"".join(bars)}</svg>')
    head = "".join(f"<th>{escape(c)}</th>" for c in columns)
    body = "".join(
        f"<tr><th>{escape(label)}</th>" + "".join(f"<td>{v:g}</td>" for v in values) + "</tr>"
        for label, values in rows)
    title = escape(columns[0] if columns else "values")
    return page(f"Bar chart of {title}",
                f"<figure>{svg}</figure><table><tr><th></th>{head}</tr>{body}</table>"
                '<p><a href="./">Chart another table</a></p>')


def form(source):
    return ('<form method="post" action="chart"><p><textarea name="data" rows="10" cols="60">'
            f"{escape(source)}</textarea></p><p><button>Chart</button></p></form>")


def page(title, body):
    return ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title></head><body><h1>{escape(title)}</h1>"
            f"{body}<p><small>Python on wasmount</small></p></body></html>\n")


IncomingHandler = app.handler()  # what componentize-py serves
