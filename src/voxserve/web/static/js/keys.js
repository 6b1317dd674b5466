import { getJson, request } from "./api.js";
import { copy, el, field, say } from "./dom.js";

export async function keysView(app) {
  const root = el("div", {}, el("h1", { text: "Keys" }));
  const secretBox = el("div", { "aria-live": "polite" });
  const name = el("input", { type: "text", required: true, maxlength: 200 });
  const form = el("form", { class: "card" }, el("h2", { text: "New key" }), ...field("Name", name),
    el("button", { type: "submit", text: "Create key" }), secretBox);
  const list = el("tbody");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = await (await request("/v1/keys", { method: "POST", json: { name: name.value } })).json();
    name.value = "";
    secretBox.replaceChildren(el("p", { text: "Copy the key now: it is shown once." }),
      el("p", { class: "secret", text: key.secret }),
      el("button", { type: "button", class: "secondary", text: "Copy key", onclick: () => copy(key.secret) }));
    await refresh();
  });
  async function refresh() {
    const keys = (await getJson("/v1/keys")).data;
    list.replaceChildren(...keys.map((k) => el("tr", {},
      el("td", { text: k.name }), el("td", { text: `${k.prefix}…` }), el("td", { text: k.owner_id }),
      el("td", { text: k.revoked_at ? `revoked ${k.revoked_at.slice(0, 10)}` : "active" }),
      el("td", {}, k.revoked_at ? "" : el("button", { type: "button", class: "secondary", text: "Revoke",
        "aria-label": `Revoke ${k.name}`, onclick: async () => {
          if (!confirm(`Revoke the key "${k.name}"? Clients using it stop working.`)) return;
          await request(`/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
          say(`Revoked ${k.name}`); await refresh();
        } })))));
  }
  await refresh();
  root.append(form, el("section", {}, el("h2", { text: "Your keys" }), el("div", { class: "table-wrap" },
    el("table", {}, el("thead", {}, el("tr", {}, ...["Name", "Prefix", "Owner", "State", ""].map((h) => el("th", { text: h })))), list))));
  if (app.session.admin) root.append(await ownersSection(refresh));
  return root;
}

async function ownersSection(refreshKeys) {
  const section = el("section", {}, el("h2", { text: "Owners" }));
  const body = el("tbody");
  const ownerName = el("input", { type: "text", required: true, maxlength: 200 });
  const ownerCredits = el("input", { type: "number", min: 0, placeholder: "unlimited" });
  const form = el("form", {}, el("div", { class: "row" },
    el("div", {}, ...field("Owner name", ownerName)), el("div", {}, ...field("Starting credits", ownerCredits))),
    el("button", { type: "submit", text: "Create owner" }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const credits = ownerCredits.value === "" ? null : Number(ownerCredits.value);
    await request("/v1/owners", { method: "POST", json: { name: ownerName.value, credits } });
    ownerName.value = ""; ownerCredits.value = ""; await refresh();
  });
  async function refresh() {
    const owners = (await getJson("/v1/owners")).data;
    body.replaceChildren(...owners.map((o) => {
      const amount = el("input", { type: "number", "aria-label": `Credits to add for ${o.name}`, value: 1000 });
      return el("tr", {}, el("td", { text: o.name }), el("td", { text: o.id }),
        el("td", { text: o.credits === null ? "unlimited" : o.credits }),
        el("td", {}, amount, el("button", { type: "button", class: "secondary", text: "Add credits", onclick: async () => {
          await request(`/v1/owners/${encodeURIComponent(o.id)}/credits`, { method: "POST", json: { amount: Number(amount.value) } });
          await refresh();
        } }), el("button", { type: "button", class: "secondary", text: "New key", onclick: async () => {
          const key = await (await request("/v1/keys", { method: "POST", json: { name: `${o.name} key`, owner_id: o.id } })).json();
          alert(`Key for ${o.name} (shown once):\n${key.secret}`); await refreshKeys();
        } })));
    }));
  }
  await refresh();
  section.append(form, el("div", { class: "table-wrap" }, el("table", {},
    el("thead", {}, el("tr", {}, ...["Name", "Id", "Credits", ""].map((h) => el("th", { text: h })))), body)));
  return section;
}
