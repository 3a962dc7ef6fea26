// {{name}}: a wasmount app in JavaScript, a standard wasi:http/proxy component (componentize-js).
//
// Routes, as the app sees them (the host strips the mount prefix, /{{name}}): GET / a page,
// GET /api/hello JSON, POST /greet a form, GET /static/style.css. Every link is relative, so
// the app works under any prefix. Launched as an instance, the page also shows the input
// (INPUT_JSON, or fetched from INPUT_JSON_URL).
//
// componentize-js runs this module once at build time: top-level code must not depend on the
// request or the environment. Read the environment inside a request, as below.

// The environment comes from WASI: the WIT world this is built against must import
// wasi:cli/environment (the plain wasi:http/proxy world does not).
import { getEnvironment } from "wasi:cli/environment@0.2.10";

const APP = "{{name}}";
const MAX_BODY = 1 << 20; // the largest form accepted, in characters
const ROUTES = ["/", "/api/hello", "/greet", "/static/style.css"];

// The style sheet, served at static/style.css.
const STYLE = `body { margin: 0; font: 16px/1.5 system-ui, sans-serif; color: #222; background: #f7f7f5; }
main { max-width: 40rem; margin: 2rem auto; padding: 0 1rem; }
h1 { color: #2f4fb5; }
form { display: flex; flex-wrap: wrap; gap: .5rem; align-items: center; margin: 1rem 0; }
input, button { padding: .3rem .6rem; font: inherit; }
code { padding: 0 .25rem; background: #eceae4; border-radius: 3px; }
.error { color: #b00020; }
footer { margin-top: 2rem; color: #777; font-size: .9em; }
`;

addEventListener("fetch", (event) => event.respondWith(handle(event.request)));

async function handle(request) {
  const path = new URL(request.url).pathname;
  const isGet = request.method === "GET" || request.method === "HEAD";
  if (path === "/" && isGet) {
    return respond(200, "text/html; charset=utf-8", await indexPage(request));
  }
  if (path === "/api/hello" && isGet) {
    const instance = env().WASMOUNT_INSTANCE ?? null;
    const hello = { app: APP, message: "hello from JavaScript", instance };
    return respond(200, "application/json", JSON.stringify(hello));
  }
  if (path === "/greet" && request.method === "POST") {
    const body = await request.text();
    if (body.length > MAX_BODY) {
      return respond(413, "text/plain; charset=utf-8", "the form is larger than 1 MiB\n");
    }
    const name = (new URLSearchParams(body).get("name") ?? "").trim() || "stranger";
    return respond(200, "text/html; charset=utf-8",
      page("Hello", `<p>Hello, ${escape(name)}!</p><p><a href="./">Back</a></p>`));
  }
  if (path === "/static/style.css" && isGet) return respond(200, "text/css; charset=utf-8", STYLE);
  if (ROUTES.includes(path)) return respond(405, "text/plain; charset=utf-8", "method not allowed\n");
  return respond(404, "text/plain; charset=utf-8", "not found\n");
}

// GET /: the form, and the input when the app was launched as an instance.
async function indexPage(request) {
  const prefix = (request.headers.get("x-forwarded-prefix") ?? "").replace(/\/+$/, "");
  return page(APP,
    `<p>This app is mounted at <code>${escape(prefix)}/</code>; its links are relative, ` +
    `so it works under any prefix.</p><form method="post" action="greet"><label>Your name ` +
    `<input name="name" required></label> <button>Greet me</button></form>` +
    `<p>JSON: <a href="api/hello">api/hello</a></p>` + await inputSection());
}

// The launched instance's input: its data file URLs and parameters; "" when not launched.
async function inputSection() {
  let input;
  try {
    input = await readInput();
  } catch (problem) {
    return `<p class="error">Cannot read the input: ${escape(problem.message)}</p>`;
  }
  if (input === null) return ""; // not launched as an instance
  const files = fileUrls(input.file_relationships).map(escape);
  const params = parameters(input.parameters).map(([name, value]) =>
    `<code>${escape(name)}</code> = ${escape(typeof value === "string" ? value : JSON.stringify(value))}`);
  return `<h2>Input</h2><h3>Files</h3>${bullets(files)}<h3>Parameters</h3>${bullets(params)}`;
}

// INPUT_JSON, else the JSON at INPUT_JSON_URL (its host must be in allowed_outbound_hosts), else null.
async function readInput() {
  const { INPUT_JSON: text, INPUT_JSON_URL: url } = env();
  let input = null;
  if (text !== undefined) {
    input = JSON.parse(text);
  } else if (url !== undefined) {
    const response = await fetch(url);
    if (!response.ok) throw new Error(`fetching ${url}: status ${response.status}`);
    input = await response.json();
  }
  if (input !== null && (typeof input !== "object" || Array.isArray(input))) {
    throw new Error("not a JSON object");
  }
  return input;
}

// Every URL in file_relationships: strings, possibly nested in lists.
function fileUrls(value) {
  if (typeof value === "string") return [value];
  return Array.isArray(value) ? value.flatMap(fileUrls) : [];
}

// [name, value] pairs: Refinery sends a list of {"name", "value"}, other launchers an object.
function parameters(value) {
  if (Array.isArray(value)) {
    return value.filter((p) => p && typeof p === "object").map((p) => [p.name ?? "", p.value]);
  }
  return value && typeof value === "object" ? Object.entries(value) : [];
}

// The environment at run time (at build time it is empty).
function env() {
  return Object.fromEntries(getEnvironment());
}

function bullets(items) {
  return items.length ? `<ul>${items.map((item) => `<li>${item}</li>`).join("")}</ul>` : "<p>none</p>";
}

function page(title, body) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    `<title>${escape(title)}</title><link rel="stylesheet" href="static/style.css"></head>` +
    `<body><main><h1>${escape(title)}</h1>${body}` +
    `<footer>${escape(APP)}, JavaScript on wasmount</footer></main></body></html>\n`;
}

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function respond(status, contentType, body) {
  return new Response(body, { status, headers: { "content-type": contentType } });
}
