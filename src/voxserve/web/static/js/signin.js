import { ApiError, request } from "./api.js";
import { el, field } from "./dom.js";

export function signInView(onSignedIn) {
  const key = el("input", { type: "password", autocomplete: "current-password", required: true });
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", { class: "card" },
    el("h1", { text: "Sign in" }),
    el("p", { class: "muted", text: "Sign in with an API key (voxserve keys create)." }),
    ...field("API key", key), error, el("button", { type: "submit", text: "Sign in" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault(); error.textContent = "";
    try {
      await request("/web/session", { method: "POST", json: { api_key: key.value } });
      key.value = ""; await onSignedIn();
    } catch (e) { error.textContent = e instanceof ApiError ? e.message : "Sign-in failed."; }
  });
  return form;
}
