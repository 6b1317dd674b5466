// The web app's shell: who is signed in, the navigation, and one view per #/route.
import { request } from "./api.js";
import { el, say } from "./dom.js";
import { dashboardView } from "./dashboard.js";
import { keysView } from "./keys.js";
import { playgroundView } from "./playground.js";
import { signInView } from "./signin.js";
import { transcriptionView } from "./transcription.js";
import { voicesView } from "./voices.js";

const views = {
  dashboard: dashboardView, playground: playgroundView, voices: voicesView,
  transcription: transcriptionView, keys: keysView,
};
export const app = { session: null };

async function loadSession() {
  const response = await fetch("/web/session", { credentials: "same-origin" });
  app.session = response.ok ? await response.json() : null;
}

function showNav() {
  const nav = document.getElementById("nav");
  nav.hidden = !app.session;
  document.getElementById("sign-out").hidden = !app.session || app.session.keyless;
  const current = location.hash.replace(/^#\//, "") || "dashboard";
  for (const link of nav.querySelectorAll("a")) {
    if (link.getAttribute("href") === `#/${current}`) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
}

let renders = 0;  // a view still loading when a later render began must not overwrite it
export async function render() {
  const main = document.getElementById("view");
  const mine = ++renders;
  showNav();
  if (!app.session) { main.replaceChildren(signInView(onSignedIn)); return; }
  const name = location.hash.replace(/^#\//, "") || "dashboard";
  const view = views[name] || dashboardView;
  main.replaceChildren(el("p", { text: "Loading…" }));
  let content;
  try { content = await view(app); }
  catch (error) { content = el("p", { class: "error", text: error.message }); }
  if (mine !== renders) return;
  main.replaceChildren(content);
  main.focus({ preventScroll: true });
}

async function onSignedIn() {
  await loadSession();
  if (!location.hash) location.hash = "#/dashboard";
  await render();
}

async function signOut() {
  try { await request("/web/session", { method: "DELETE" }); } catch { /* already ended */ }
  app.session = null; say("Signed out"); location.hash = ""; await render();
}

// A failed action (a button's request refused...) is said, not left as an uncaught error.
window.addEventListener("unhandledrejection", (event) => {
  event.preventDefault();
  say(event.reason && event.reason.message ? event.reason.message : "Something failed.", true);
});
window.addEventListener("hashchange", render);
// Any 401 (the session expired, was signed out elsewhere or its key revoked): back to sign-in.
window.addEventListener("signed-out", async () => {
  if (!app.session) return;
  await loadSession();
  if (!app.session) { say("Your session has ended: sign in again."); render(); }
});
document.addEventListener("DOMContentLoaded", async () => {
  document.getElementById("sign-out").addEventListener("click", signOut);
  await loadSession();
  await render();
});
