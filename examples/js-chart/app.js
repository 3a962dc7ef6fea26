// A scatter plot from a CSV, in JavaScript, as a standard wasi:http/proxy component.
//
// Paste a CSV or TSV (a header row, then a label and at least two numbers per row): the page
// shows the first two numeric columns as an SVG scatter plot and the table under it. Every link
// is relative, so the app works under any mount prefix. Also: GET hello (a plain greeting, for
// benchmarks) and GET count (requests this instance has served: 1 with a fresh instance per
// request, growing with reuse).
//
// Build (see README.md): npm ci && npm run build

const EXAMPLE = "sample,expression,coverage\nS1,4.5,31\nS2,7.2,18\nS3,2.8,44\nS4,6.1,27\nS5,5.0,36\n";
const MAX_BODY = 1 << 20;

let served = 0; // a global: grows only when the host reuses this instance

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  served += 1;
  const path = new URL(request.url).pathname;
  if (path === "/" && (request.method === "GET" || request.method === "HEAD")) {
    return html(200, page("Plot a table", form(EXAMPLE)));
  }
  if (path === "/plot" && request.method === "POST") {
    const body = await request.text();
    if (body.length > MAX_BODY) {
      return html(413, page("Too large", "<p>The table is larger than 1 MiB.</p>"));
    }
    const text = new URLSearchParams(body).get("data") ?? "";
    try {
      return html(200, plotPage(parse(text)));
    } catch (problem) {
      return html(400, page("Cannot plot this table", `<p class="error">${escape(problem.message)}</p>${form(text)}`));
    }
  }
  if (path === "/hello") return text(200, "hello from JavaScript\n");
  if (path === "/count") return text(200, `${served}\n`);
  if (path === "/" || path === "/plot") return text(405, "method not allowed\n");
  return text(404, "not found\n");
}

function parse(input) {
  const lines = input.replace(/\r/g, "").split("\n").filter((line) => line.trim() !== "");
  if (lines.length < 2) throw new Error("paste a header row and at least one data row");
  const separator = lines[0].includes("\t") ? "\t" : ",";
  const header = lines[0].split(separator).map((cell) => cell.trim());
  const rows = lines.slice(1).map((line, index) => {
    const cells = line.split(separator).map((cell) => cell.trim());
    const values = cells.slice(1).map(Number);
    if (values.length < 2 || values.some(Number.isNaN)) {
      throw new Error(`line ${index + 2} needs a label and at least two numbers`);
    }
    return { label: cells[0], values };
  });
  const columns = header.length === rows[0].values.length + 1 ? header.slice(1) : header;
  return { columns, rows };
}

function plotPage({ columns, rows }) {
  const [width, height, margin] = [480, 320, 40];
  const xs = rows.map((row) => row.values[0]);
  const ys = rows.map((row) => row.values[1]);
  const scale = (values, from, to) => {
    const [low, high] = [Math.min(...values), Math.max(...values)];
    const span = high - low || 1;
    return (value) => from + ((value - low) / span) * (to - from);
  };
  const x = scale(xs, margin, width - margin);
  const y = scale(ys, height - margin, margin);
  const points = rows
    .map((row) => `<circle cx="${x(row.values[0]).toFixed(1)}" cy="${y(row.values[1]).toFixed(1)}" r="5" fill="#d8553b"><title>${escape(row.label)}: ${row.values[0]}, ${row.values[1]}</title></circle>`)
    .join("");
  const axes = `<line x1="${margin}" y1="${height - margin}" x2="${width - margin}" y2="${height - margin}" stroke="#444"/>` +
    `<line x1="${margin}" y1="${margin}" x2="${margin}" y2="${height - margin}" stroke="#444"/>` +
    `<text x="${width / 2}" y="${height - 8}" text-anchor="middle">${escape(columns[0] ?? "x")}</text>` +
    `<text x="12" y="${height / 2}" transform="rotate(-90 12 ${height / 2})" text-anchor="middle">${escape(columns[1] ?? "y")}</text>`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif" font-size="13">${axes}${points}</svg>`;
  const head = columns.map((column) => `<th>${escape(column)}</th>`).join("");
  const body = rows
    .map((row) => `<tr><th>${escape(row.label)}</th>${row.values.map((v) => `<td>${v}</td>`).join("")}</tr>`)
    .join("");
  return page(`${escape(columns[1] ?? "y")} against ${escape(columns[0] ?? "x")}`,
    `<figure>${svg}</figure><table><tr><th></th>${head}</tr>${body}</table><p><a href="./">Plot another table</a></p>`);
}

function form(data) {
  return `<form method="post" action="plot"><p><textarea name="data" rows="10" cols="60">${escape(data)}</textarea></p><p><button>Plot</button></p></form>`;
}

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title}</title></head><body><h1>${title}</h1>${body}<p><small>JavaScript on wasmount</small></p></body></html>\n`;
}

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function html(status, body) {
  return new Response(body, { status, headers: { "content-type": "text/html; charset=utf-8" } });
}

function text(status, body) {
  return new Response(body, { status, headers: { "content-type": "text/plain; charset=utf-8" } });
}
