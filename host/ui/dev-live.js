// wasmount dev: reloads this page when its app's next version is live, and shows a failed
// build over the page until a build succeeds. Injected into HTML responses in dev mode only.
(() => {
  "use strict";
  if (window.wasmountLive) return; // the page holds the script twice (a fragment inserted it)
  window.wasmountLive = true;
  const script = document.currentScript;
  const app = script.dataset.app;
  let version = script.dataset.version || null;
  const events = new URL(`events/${encodeURIComponent(app)}`, script.src);
  const OVERLAY_ID = "wasmount-dev-overlay";

  let source = follow();

  function follow() {
    const stream = new EventSource(events);
    stream.addEventListener("state", onState);
    // A refusal (too many pages follow) closes the stream for good: try again later.
    stream.addEventListener("error", () => {
      if (stream.readyState === EventSource.CLOSED) {
        setTimeout(() => { source = follow(); }, 5000);
      }
    });
    return stream;
  }

  function onState(event) {
    const state = JSON.parse(event.data);
    if (state.version && state.version !== version) {
      // A new version is live: show it (a page still building has no version yet).
      source.close();
      location.reload();
      return;
    }
    version = state.version;
    if (state.error) {
      show(state.error);
    } else {
      hide();
    }
  }

  function show(error) {
    hide();
    const host = document.createElement("div");
    host.id = OVERLAY_ID;
    const root = host.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = `
      .panel { position: fixed; inset: 0; z-index: 2147483647; overflow: auto;
               background: rgba(24, 24, 27, 0.94); color: #f4f4f5; padding: 2rem;
               font: 14px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
      h1 { font: 600 1.1rem system-ui, sans-serif; color: #fca5a5; margin: 0 0 0.4rem; }
      p { font: 0.9rem system-ui, sans-serif; color: #d4d4d8; margin: 0 0 1rem; }
      pre { white-space: pre-wrap; word-break: break-word; margin: 0; padding: 1rem;
            background: #09090b; border-left: 3px solid #ef4444; }
      button { position: absolute; top: 1rem; right: 1rem; font-size: 1.2rem; cursor: pointer;
               background: none; border: 1px solid #52525b; color: #f4f4f5; border-radius: 4px; }`;
    const panel = document.createElement("div");
    panel.className = "panel";
    panel.setAttribute("role", "alertdialog");
    const title = document.createElement("h1");
    title.textContent = `${app}: the last build failed`;
    const note = document.createElement("p");
    note.textContent = version
      ? "The previous version is still serving. Save a fix and this page reloads by itself."
      : "Nothing is serving yet. Save a fix and this page reloads by itself.";
    const text = document.createElement("pre");
    text.textContent = error;
    const close = document.createElement("button");
    close.type = "button";
    close.title = "Hide until the next build";
    close.textContent = "×";
    close.addEventListener("click", hide);
    panel.append(title, note, text, close);
    root.append(style, panel);
    document.documentElement.append(host);
  }

  function hide() {
    document.getElementById(OVERLAY_ID)?.remove();
  }
})();
