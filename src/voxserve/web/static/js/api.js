// The public API, called with the session cookie (same origin; no key in the page).
export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

function messageOf(body, status) {
  if (!body || typeof body !== "object") return `Request failed (${status})`;
  if (typeof body.message === "string") return body.message;
  if (body.error && typeof body.error.message === "string") return body.error.message;
  if (typeof body.detail === "string") return body.detail;
  return `Request failed (${status})`;
}

export async function request(path, { method = "GET", json, form, headers = {} } = {}) {
  const init = { method, credentials: "same-origin", headers: { ...headers } };
  if (json !== undefined) { init.body = JSON.stringify(json); init.headers["Content-Type"] = "application/json"; }
  if (form !== undefined) init.body = form;
  const response = await fetch(path, init);
  if (!response.ok) {
    let body = null;
    try { body = await response.json(); } catch { /* not JSON */ }
    if (response.status === 401) window.dispatchEvent(new CustomEvent("signed-out"));
    throw new ApiError(response.status, messageOf(body, response.status));
  }
  return response;
}

export async function getJson(path, options) { return (await request(path, options)).json(); }

// Server-sent events from a fetch response: calls onEvent(name, data) for each event.
export async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
      let name = "message"; const lines = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) lines.push(line.slice(5).trimStart());
      }
      if (!lines.length) continue;
      const text = lines.join("\n");
      if (text === "[DONE]") continue;
      let data; try { data = JSON.parse(text); } catch { data = text; }
      onEvent(data && data.type ? data.type : name, data);
    }
  }
}
