import { getJson } from "./api.js";
import { el } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// A bar chart of one measure per day (last 30 days), drawn as SVG.
function chart(periods, measure, title) {
  const width = 600, height = 160, pad = 24;
  const max = Math.max(1, ...periods.map((p) => p[measure]));
  const root = svg("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title });
  const step = (width - pad) / Math.max(periods.length, 1);
  periods.forEach((p, i) => {
    const h = ((height - pad) * p[measure]) / max;
    const bar = svg("rect", { class: "bar", x: pad + i * step + 1, y: height - pad - h, width: Math.max(step - 2, 1), height: h });
    bar.append(svg("title", {}, `${p.start.slice(0, 10)}: ${p[measure]}`));
    root.append(bar);
    if (i === 0 || i === periods.length - 1) root.append(svg("text", { x: pad + i * step, y: height - 6 }, p.start.slice(5, 10)));
  });
  root.append(svg("text", { x: 0, y: 12 }, String(max)));
  return el("figure", {}, el("figcaption", { text: title }), root);
}

export async function dashboardView(app) {
  const since = new Date(Date.now() - 30 * 86400e3).toISOString();
  const usage = await getJson(`/v1/usage?period=day&limit=20&since=${encodeURIComponent(since)}`);
  const balance = usage.balance === null || usage.balance === undefined ? "unlimited" : usage.balance;
  const stat = (label, value) => el("div", { class: "stat card" }, el("b", { text: value }), label);
  const rows = usage.records.map((r) => el("tr", {},
    el("td", { text: r.created_at.replace("T", " ").slice(0, 19) }), el("td", { text: r.endpoint }),
    el("td", { text: r.engine || "" }), el("td", { text: r.status }), el("td", { text: r.credits })));
  return el("div", {},
    el("h1", { text: "Dashboard" }),
    el("p", { class: "muted", text: `Signed in as ${app.session.owner_name}${app.session.admin ? " (admin)" : ""}` }),
    el("div", { class: "stats" },
      stat("Credits", balance), stat("Requests (30 days)", usage.totals.requests),
      stat("Characters", usage.totals.characters), stat("Audio seconds", usage.totals.audio_seconds.toFixed(1))),
    el("section", {}, el("h2", { text: "Usage per day" }),
      usage.periods.length ? [chart(usage.periods, "characters", "Characters per day"),
        chart(usage.periods, "audio_seconds", "Audio seconds per day"),
        chart(usage.periods, "requests", "Requests per day")] : el("p", { class: "muted", text: "No usage yet." })),
    el("section", {}, el("h2", { text: "Recent requests" }),
      el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ...["When (UTC)", "Endpoint", "Engine", "Status", "Credits"].map((h) => el("th", { text: h })))),
        el("tbody", {}, rows)))));
}
