// The wasmount dashboard: a client of the admin API, the metrics page and health, with the
// admin token kept in sessionStorage and sent as a bearer header (no cookies).
"use strict";

const TOKEN_KEY = "wasmount-admin-token";
const POLL_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;
const MAX_LOG_LINES = 500;
const api = (path) => new URL("../" + path, location.href).toString();
const $ = (id) => document.getElementById(id);
const COMPILED = { fresh: "optimized", cache: "optimized (cache)", baseline: "baseline" };

let samples = []; // {t, apps: Map(app -> AppCounters)}, oldest first, the last WINDOW_MS
let pollTimer = null;
let session = 0; // bumped at each log-in and log-out: late answers of an old one are dropped
let refreshing = null; // the refresh in flight; another waits for it
let serverStart = null; // process_start_time_seconds: a change means the counters restarted
let followAbort = null;
let chosenComponent = null;
let nameChosen = false; // typed, or set by Replace: a chosen file then keeps it

// ---- requests ---------------------------------------------------------------------------

function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

async function call(path, options = {}) {
  const headers = Object.assign({ Authorization: "Bearer " + token() }, options.headers || {});
  const response = await fetch(api(path), Object.assign({}, options, { headers }));
  if (response.status === 401 && token()) {
    logOut("The server refused the token: " + (await errorOf(response)));
    throw new Error("logged out");
  }
  return response;
}

async function errorOf(response) {
  const text = await response.text();
  try {
    return JSON.parse(text).error || text;
  } catch (_) {
    return text || response.statusText;
  }
}

async function callJson(path, options) {
  const response = await call(path, options);
  if (!response.ok) {
    throw new Error(`${response.status}: ${await errorOf(response)}`);
  }
  return response.json();
}

// ---- login ------------------------------------------------------------------------------

async function logIn(event) {
  event.preventDefault();
  const given = $("token").value.trim();
  const message = $("login-message");
  message.textContent = "";
  let response;
  try {
    response = await fetch(api("instances"), { headers: { Authorization: "Bearer " + given } });
  } catch (error) {
    message.textContent = "the server could not be reached: " + error.message;
    return;
  }
  if (!response.ok) {
    message.textContent = await errorOf(response);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, given);
  $("token").value = "";
  showMain();
}

function logOut(why) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopFollowing();
  clearTimeout(pollTimer);
  pollTimer = null;
  session++;
  samples = [];
  serverStart = null;
  $("main").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("summary").textContent = "";
  $("login-message").textContent = typeof why === "string" ? why : "";
}

function showMain() {
  $("login").hidden = true;
  $("main").hidden = false;
  $("logout").hidden = false;
  session++;
  poll(session);
}

// Refreshes every POLL_MS, one refresh at a time, for as long as this session lasts.
async function poll(mine) {
  await refresh();
  if (mine === session) pollTimer = setTimeout(() => poll(mine), POLL_MS);
}

// ---- the metrics page -------------------------------------------------------------------

// One Prometheus text sample: `name{a="x",b="y"} value`.
function parseSample(line) {
  const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
  if (!match) return null;
  const labels = {};
  const labelPattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  let label;
  while ((label = labelPattern.exec(match[3] || "")) !== null) {
    labels[label[1]] = label[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
  }
  return { name: match[1], labels, value: Number(match[4]) };
}

function emptyCounters() {
  return { requests: 0, errors: 0, failures: {}, buckets: new Map(), sum: 0, count: 0, inFlight: 0 };
}

// Per-app counters and the server's own figures from the metrics page.
function readMetrics(text) {
  const apps = new Map();
  const server = { pool: {} };
  const of = (app) => {
    if (!apps.has(app)) apps.set(app, emptyCounters());
    return apps.get(app);
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const s = parseSample(line);
    if (!s) continue;
    const app = s.labels.app;
    switch (s.name) {
      case "wasmount_requests_total":
        of(app).requests += s.value;
        if (s.labels.status.startsWith("5")) of(app).errors += s.value;
        break;
      case "wasmount_request_duration_seconds_bucket":
        of(app).buckets.set(s.labels.le, s.value);
        break;
      case "wasmount_request_duration_seconds_sum": of(app).sum = s.value; break;
      case "wasmount_request_duration_seconds_count": of(app).count = s.value; break;
      case "wasmount_requests_in_flight": of(app).inFlight = s.value; break;
      case "wasmount_guest_failures_total": of(app).failures[s.labels.kind] = s.value; break;
      case "wasmount_pool": server.pool[s.labels.name] = s.value; break;
      case "wasmount_build_info": server.version = s.labels.version; break;
      case "process_resident_memory_bytes": server.rss = s.value; break;
      case "process_start_time_seconds": server.started = s.value; break;
      case "process_open_fds": server.fds = s.value; break;
      case "wasmount_launches": server.launched = s.value; break;
    }
  }
  return { apps, server };
}

// Counters only grow, unless the server restarted: then the newer value is the delta.
function delta(newer, older) {
  return newer >= older ? newer - older : newer;
}

// The q-quantile from bucket deltas, interpolated within a bucket as Prometheus does.
function quantile(q, newer, older) {
  const bounds = [...newer.buckets.keys()].filter((le) => le !== "+Inf").map(Number).sort((a, b) => a - b);
  const countAt = (le) => delta(newer.buckets.get(le) || 0, older ? older.buckets.get(le) || 0 : 0);
  const keyOf = (bound) => [...newer.buckets.keys()].find((le) => Number(le) === bound);
  const total = countAt("+Inf");
  if (!total) return null;
  const rank = q * total;
  let previousBound = 0;
  let previousCount = 0;
  for (const bound of bounds) {
    const count = countAt(keyOf(bound));
    if (count >= rank) {
      const inBucket = count - previousCount;
      return previousBound + (bound - previousBound) * (inBucket ? (rank - previousCount) / inBucket : 1);
    }
    previousBound = bound;
    previousCount = count;
  }
  return previousBound; // above the last finite bucket
}

// What the table shows for one app: rates over the window and the sparkline series.
function statsOf(app) {
  if (samples.length < 2) return null;
  const newest = samples[samples.length - 1];
  const oldest = samples[0];
  const now = newest.apps.get(app);
  if (!now) return null;
  const then = oldest.apps.get(app) || emptyCounters();
  const seconds = (newest.t - oldest.t) / 1000;
  const requests = delta(now.requests, then.requests);
  const recent = samples[Math.max(0, samples.length - 6)];
  const recentCounters = recent.apps.get(app) || emptyCounters();
  const failures = Object.entries(now.failures)
    .map(([kind, n]) => [kind, delta(n, then.failures[kind] || 0)])
    .filter(([, n]) => n > 0);
  return {
    rate: delta(now.requests, recentCounters.requests) / ((newest.t - recent.t) / 1000 || 1),
    errorShare: requests ? delta(now.errors, then.errors) / requests : null,
    p50: quantile(0.5, now, then),
    p99: quantile(0.99, now, then),
    failures,
    requests,
    seconds,
    rates: series(app, (a, b, dt) => delta(a.requests, b.requests) / dt),
    latencies: series(app, (a, b) => {
      const n = delta(a.count, b.count);
      return n ? delta(a.sum, b.sum) / n : 0;
    }),
  };
}

function series(app, value) {
  const points = [];
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i].apps.get(app) || emptyCounters();
    const b = samples[i - 1].apps.get(app) || emptyCounters();
    points.push(value(a, b, (samples[i].t - samples[i - 1].t) / 1000 || 1));
  }
  return points;
}

// ---- formatting -------------------------------------------------------------------------

function bytes(n) {
  if (n == null) return "";
  const units = ["B", "KiB", "MiB", "GiB"];
  let unit = 0;
  while (n >= 1024 && unit < units.length - 1) {
    n /= 1024;
    unit++;
  }
  return `${n.toFixed(unit ? 1 : 0)} ${units[unit]}`;
}

function millis(seconds) {
  if (seconds == null) return "–";
  const ms = seconds * 1000;
  return ms < 10 ? `${ms.toFixed(2)} ms` : ms < 1000 ? `${ms.toFixed(0)} ms` : `${seconds.toFixed(1)} s`;
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  return duration(seconds) + " ago";
}

function duration(seconds) {
  if (seconds < 60) return `${Math.floor(seconds)} s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)} min`;
  if (seconds < 86400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86400).toFixed(1)} d`;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text == null ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function button(label, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.className = className;
  b.addEventListener("click", onClick);
  return b;
}

function sparkline(points, kind) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("class", "spark " + kind);
  svg.setAttribute("viewBox", "0 0 60 20");
  svg.setAttribute("preserveAspectRatio", "none");
  const title = document.createElementNS(ns, "title");
  title.textContent = kind === "rate" ? "requests per second" : "mean latency";
  svg.appendChild(title);
  const last = points.slice(-45);
  const top = Math.max(...last, 1e-9);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute(
    "points",
    last.map((v, i) => `${(i * 60) / Math.max(last.length - 1, 1)},${19 - (v / top) * 18}`).join(" "),
  );
  svg.appendChild(line);
  return svg;
}

// ---- refreshing -------------------------------------------------------------------------

// One refresh at a time: a caller during one waits for it, then starts the next.
async function refresh() {
  while (refreshing) await refreshing;
  refreshing = refreshOnce().finally(() => {
    refreshing = null;
  });
  return refreshing;
}

async function refreshOnce() {
  const mine = session;
  try {
    const t = Date.now();
    const [apps, instances, metrics, health] = await Promise.all([
      callJson("apps"),
      callJson("instances"),
      call("metrics").then((r) => (r.ok ? r.text() : null)),
      fetch(api("health")).then((r) => r.json()).catch(() => null),
    ]);
    if (mine !== session) return;
    const read = readMetrics(metrics || "");
    if (metrics !== null) keepSample(t, read);
    drawApps(apps.apps);
    drawInstances(instances.instances);
    drawServer(read.server, health, apps.apps.length, instances.instances.length);
    fillAppChoices(apps.apps);
  } catch (error) {
    if (mine === session && token()) $("summary").textContent = "refresh failed: " + error.message;
  }
}

// Adds one scrape to the window; a restarted server starts the window again.
function keepSample(t, read) {
  if (read.server.started !== serverStart) {
    samples = [];
    serverStart = read.server.started;
  }
  samples.push({ t, apps: read.apps });
  while (samples.length > 2 && t - samples[0].t > WINDOW_MS) samples.shift();
}

function drawServer(server, health, appCount, instanceCount) {
  const uptime = server.started ? Math.max(0, Date.now() / 1000 - server.started) : null;
  const facts = [
    ["Version", server.version || "?"],
    ["Uptime", uptime === null ? "?" : duration(uptime)],
    ["Resident memory", bytes(server.rss)],
    ["Open files", server.fds],
    ["Apps", appCount],
    ["Launched instances", instanceCount],
    ["Pool instances", server.pool.instances],
    ["Pool memories", server.pool.memories],
    ["Warm unused slots", server.pool.unused_warm_memories],
    ["Kept resident", bytes(server.pool.unused_bytes_resident)],
  ];
  const store = health && health.store;
  if (store) {
    facts.push(["Store", store.store]);
    facts.push(["Sync", (store.in_sync ? "in sync" : "behind: " + (store.error || "?")) + ", version " + store.version]);
  } else {
    facts.push(["Store", "apps folder (one node)"]);
  }
  const list = $("server-facts");
  list.replaceChildren(
    ...facts.map(([term, value]) => {
      const div = document.createElement("div");
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = term;
      dd.textContent = value == null ? "?" : String(value);
      div.append(dt, dd);
      return div;
    }),
  );
  const status = health ? health.status : "unreachable";
  $("summary").textContent = `${status} · ${appCount} apps · ${instanceCount} instances · ${bytes(server.rss)} resident`;
}

// The emptied body of table `id`, or null after writing `emptyText` across it.
function tableBody(id, rows, emptyText) {
  const body = $(id).tBodies[0];
  body.replaceChildren();
  if (rows.length) return body;
  cell(body.insertRow(), emptyText, "empty").colSpan = $(id).tHead.rows[0].cells.length;
  return null;
}

function link(href, text, newTab) {
  const a = document.createElement("a");
  a.href = href;
  a.textContent = text;
  if (newTab) {
    a.target = "_blank";
    a.rel = "noopener";
  }
  return a;
}

function drawApps(apps) {
  const body = tableBody("apps-table", apps, "no apps yet: deploy one below");
  if (!body) return;
  for (const app of apps) {
    const row = body.insertRow();
    row.dataset.app = app.name;
    const stats = statsOf(app.name);
    cell(row, app.name);
    row.insertCell().appendChild(link(app.route, app.route, true));
    cell(row, app.state, "state state-" + app.state);
    cell(row, COMPILED[app.compiled] || app.compiled || "");
    cell(row, bytes(app.size), "num");
    cell(row, app.sha256 ? app.sha256.slice(0, 8) : "").title = app.sha256 || "";
    cell(row, ago(app.loaded_at)).title = app.loaded_at || "";
    cell(row, stats ? stats.rate.toFixed(1) : "–", "num");
    const errors = stats && stats.errorShare != null ? (stats.errorShare * 100).toFixed(1) + " %" : "–";
    cell(row, errors, "num").title = stats
      ? stats.failures.map(([kind, n]) => `${n} ${kind}`).join(", ") || "no guest failures"
      : "";
    cell(row, millis(stats && stats.p50), "num");
    cell(row, millis(stats && stats.p99), "num");
    const traffic = row.insertCell();
    if (stats) traffic.append(sparkline(stats.rates, "rate"), sparkline(stats.latencies, "latency"));
    const lastError = app.error
      ? `${app.error} (${ago(app.failed_at)})`
      : stats && stats.failures.length
        ? stats.failures.map(([kind, n]) => `${n} ${kind}`).join(", ")
        : "";
    cell(row, lastError, "error");
    const actions = cell(row, "", "actions");
    actions.append(
      button("Manifest", "small manifest", () => showManifest(app.name)),
      button("Replace", "small replace", () => replaceApp(app.name)),
      button("Delete", "small danger", () => deleteApp(app.name)),
    );
  }
}

function drawInstances(instances) {
  const body = tableBody("instances-table", instances, "none launched");
  if (!body) return;
  for (const instance of instances) {
    const row = body.insertRow();
    row.dataset.instance = instance.name;
    cell(row, instance.name);
    cell(row, instance.app);
    cell(row, ago(instance.created)).title = instance.created;
    cell(row, ago(instance.last_used)).title = instance.last_used;
    row.insertCell().appendChild(link(instance.url, "open", true));
    row.insertCell().appendChild(button("Delete", "small danger", () => deleteInstance(instance.name)));
  }
}

// Keeps the app pickers in step with the apps that serve, keeping what was chosen.
function fillAppChoices(apps) {
  const names = apps.filter((a) => a.state === "serving").map((a) => a.name);
  for (const id of ["launch-app", "log-app"]) {
    const select = $(id);
    const chosen = select.value;
    const current = [...select.options].map((o) => o.value);
    if (current.join() === names.join()) continue;
    select.replaceChildren(...names.map((name) => new Option(name, name)));
    if (names.includes(chosen)) select.value = chosen;
  }
}

// ---- apps -------------------------------------------------------------------------------

function appNameFrom(fileName) {
  return fileName
    .replace(/\.wasm$/i, "")
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^-+|-+$/g, "");
}

function chooseComponent(file) {
  chosenComponent = file;
  if (!nameChosen) $("deploy-name").value = appNameFrom(file.name);
  $("deploy-result").textContent = `${file.name}: ${bytes(file.size)}, ready to deploy`;
  $("deploy-result").className = "";
}

function deploy(event) {
  event.preventDefault();
  const name = $("deploy-name").value.trim();
  const component = chosenComponent || $("deploy-file").files[0];
  const result = $("deploy-result");
  if (!component) {
    result.textContent = "choose a component (.wasm) first";
    result.className = "failed";
    return;
  }
  const form = new FormData();
  form.append("component", component, component.name);
  const manifest = $("deploy-manifest").files[0];
  if (manifest) form.append("manifest", manifest, manifest.name);
  const request = new XMLHttpRequest();
  const progress = $("deploy-progress");
  request.open("PUT", api("apps/" + encodeURIComponent(name)));
  request.setRequestHeader("Authorization", "Bearer " + token());
  request.upload.onprogress = (e) => {
    if (e.lengthComputable) progress.value = e.loaded / e.total;
  };
  request.upload.onload = () => {
    result.textContent = "uploaded; compiling…";
  };
  request.onload = () => {
    progress.hidden = true;
    $("deploy-button").disabled = false;
    let answer = request.responseText;
    try {
      const parsed = JSON.parse(answer);
      answer = parsed.error || JSON.stringify(parsed, null, 2);
    } catch (_) {}
    const separator = request.status < 300 ? "\n" : ": ";
    result.textContent = `${request.status} ${request.statusText}${separator}${answer}`;
    result.className = request.status < 300 ? "" : "failed";
    if (request.status === 401) logOut("The server refused the token.");
    if (request.status < 300) {
      chosenComponent = null;
      nameChosen = false;
      $("deploy-name").value = "";
      $("deploy-file").value = "";
      $("deploy-manifest").value = "";
      refresh();
    }
  };
  request.onerror = () => {
    progress.hidden = true;
    $("deploy-button").disabled = false;
    result.textContent = "the upload failed: the server could not be reached";
    result.className = "failed";
  };
  progress.value = 0;
  progress.hidden = false;
  $("deploy-button").disabled = true;
  result.textContent = "uploading…";
  result.className = "";
  request.send(form);
}

function replaceApp(name) {
  $("deploy-name").value = name;
  nameChosen = true;
  $("deploy-form").scrollIntoView({ behavior: "smooth" });
  $("deploy-file").click();
}

async function showManifest(name) {
  $("manifest-title").textContent = `Manifest of ${name}`;
  try {
    const app = await callJson("apps/" + encodeURIComponent(name));
    $("manifest-text").textContent = app.manifest
      ? JSON.stringify(app.manifest, null, 2)
      : `no settings to show: the app is ${app.state}`;
  } catch (error) {
    $("manifest-text").textContent = error.message;
  }
  $("manifest").showModal();
}

function confirmDelete(text) {
  return new Promise((resolve) => {
    const dialog = $("confirm");
    $("confirm-text").textContent = text;
    dialog.returnValue = "";
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "yes"), { once: true });
    dialog.showModal();
  });
}

// The dialogs close from their buttons (no form submission: the page allows none).
function wireDialogs() {
  $("confirm-yes").addEventListener("click", () => $("confirm").close("yes"));
  $("confirm-no").addEventListener("click", () => $("confirm").close("no"));
  $("manifest-close").addEventListener("click", () => $("manifest").close());
}

async function deleteApp(name) {
  const count = [...$("instances-table").tBodies[0].rows].filter((r) => r.cells[1] && r.cells[1].textContent === name).length;
  const also = count ? ` and its ${count} launched instance${count > 1 ? "s" : ""}` : "";
  if (!(await confirmDelete(`Delete the app ${name}${also}?`))) return;
  await removeThing("apps/" + encodeURIComponent(name), $("deploy-result"));
}

async function deleteInstance(name) {
  if (!(await confirmDelete(`Delete the launched instance ${name}?`))) return;
  await removeThing("instances/" + encodeURIComponent(name), $("launch-result"));
}

async function removeThing(path, result) {
  try {
    const response = await call(path, { method: "DELETE" });
    result.textContent = response.ok ? `deleted ${path}` : `${response.status}: ${await errorOf(response)}`;
    result.className = response.ok ? "" : "failed";
  } catch (error) {
    result.textContent = error.message;
    result.className = "failed";
  }
  refresh();
}

// ---- instances --------------------------------------------------------------------------

async function launch(event) {
  event.preventDefault();
  const result = $("launch-result");
  let input;
  try {
    input = JSON.parse($("launch-input").value);
  } catch (error) {
    result.textContent = "the input is not JSON: " + error.message;
    result.className = "failed";
    return;
  }
  const request = { app: $("launch-app").value, input };
  const name = $("launch-name").value.trim();
  if (name) request.name = name;
  try {
    const response = await call("instances", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request),
    });
    if (!response.ok) {
      result.textContent = `${response.status}: ${await errorOf(response)}`;
      result.className = "failed";
      return;
    }
    const launched = await response.json();
    result.replaceChildren(`launched ${launched.name}: `);
    const opened = link(launched.url, launched.url, true);
    opened.id = "launched-link";
    result.appendChild(opened);
    result.className = "";
    refresh();
  } catch (error) {
    result.textContent = error.message;
    result.className = "failed";
  }
}

async function loadInputFile() {
  const file = $("launch-file").files[0];
  if (file) $("launch-input").value = await file.text();
}

// ---- guest output -----------------------------------------------------------------------

function stopFollowing() {
  if (followAbort) followAbort.abort();
  followAbort = null;
  $("log-button").textContent = "Follow";
  $("log-state").textContent = "";
}

async function toggleFollow(event) {
  event.preventDefault();
  if (followAbort) {
    stopFollowing();
    return;
  }
  const app = $("log-app").value;
  if (!app) return;
  followAbort = new AbortController();
  const signal = followAbort.signal;
  $("log-button").textContent = "Stop";
  $("log-state").textContent = `following ${app}…`;
  $("log-lines").replaceChildren();
  try {
    const response = await call(`apps/${encodeURIComponent(app)}/log`, { signal });
    if (!response.ok) throw new Error(`${response.status}: ${await errorOf(response)}`);
    $("log-state").textContent = `following ${app} live`;
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    try {
      await readEvents(reader);
    } finally {
      reader.cancel().catch(() => {});
    }
    if (followAbort && followAbort.signal === signal) $("log-state").textContent = "the server ended the stream";
  } catch (error) {
    if (!signal.aborted) $("log-state").textContent = error.message;
  }
  if (followAbort && followAbort.signal === signal) {
    followAbort = null;
    $("log-button").textContent = "Follow";
  }
}

// Shows each event of the stream, events being separated by a blank line.
async function readEvents(reader) {
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffered += value;
    let end;
    while ((end = buffered.indexOf("\n\n")) >= 0) {
      showEvent(buffered.slice(0, end));
      buffered = buffered.slice(end + 2);
    }
  }
}

// One server-sent event: `data:` a guest line as JSON, or `event: lagged`.
function showEvent(block) {
  let kind = "message";
  let data = "";
  for (const line of block.split("\n")) {
    if (line.startsWith("event:")) kind = line.slice(6).trim();
    else if (line.startsWith("data:")) data += line.slice(5).trim();
  }
  if (!data) return;
  const view = $("log-lines");
  const entry = document.createElement("div");
  if (kind === "lagged") {
    entry.textContent = `… ${data} lines skipped (too fast to follow)`;
  } else {
    let line;
    try {
      line = JSON.parse(data);
    } catch (_) {
      line = { line: data, stream: "stdout" };
    }
    const time = new Date().toLocaleTimeString();
    entry.textContent = `${time} ${line.request_id || "-"} ${line.line}`;
    entry.className = line.stream;
  }
  const atBottom = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
  view.appendChild(entry);
  while (view.childElementCount > MAX_LOG_LINES) view.firstElementChild.remove();
  if (atBottom) view.scrollTop = view.scrollHeight;
}

// ---- start ------------------------------------------------------------------------------

function acceptDrops() {
  let depth = 0;
  document.addEventListener("dragenter", (e) => {
    e.preventDefault();
    if (token() && depth++ === 0) document.body.classList.add("dragging");
  });
  document.addEventListener("dragleave", () => {
    if (--depth <= 0) {
      depth = 0;
      document.body.classList.remove("dragging");
    }
  });
  document.addEventListener("dragover", (e) => e.preventDefault());
  document.addEventListener("drop", (e) => {
    e.preventDefault();
    depth = 0;
    document.body.classList.remove("dragging");
    if (!token()) return;
    for (const file of e.dataTransfer.files) {
      if (/\.toml$/i.test(file.name)) {
        const list = new DataTransfer();
        list.items.add(file);
        $("deploy-manifest").files = list.files;
      } else {
        chooseComponent(file);
      }
    }
  });
}

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", logIn);
  $("logout").addEventListener("click", () => logOut());
  $("deploy-form").addEventListener("submit", deploy);
  $("deploy-name").addEventListener("input", () => {
    nameChosen = $("deploy-name").value !== "";
  });
  $("deploy-file").addEventListener("change", () => {
    const file = $("deploy-file").files[0];
    if (file) chooseComponent(file);
  });
  $("launch-form").addEventListener("submit", launch);
  $("launch-file").addEventListener("change", loadInputFile);
  $("log-form").addEventListener("submit", toggleFollow);
  acceptDrops();
  wireDialogs();
  if (token()) showMain();
});
