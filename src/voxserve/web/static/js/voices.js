import { getJson, request } from "./api.js";
import { bytesToBase64, Recorder } from "./audio.js";
import { copy, el, field, say } from "./dom.js";
import { allVoices } from "./voicepick.js";

const MIN_S = 5, MAX_S = 30;

async function blobToBase64(blob) { return bytesToBase64(new Uint8Array(await blob.arrayBuffer())); }

async function preview(voice, audio) {
  const url = voice.type === "custom" ? `/v1/audio/voices/${encodeURIComponent(voice.id)}/sample` : null;
  if (url) { audio.src = URL.createObjectURL(await (await request(url)).blob()); }
  else {
    const answer = await getJson("/v1/audio/speech", { method: "POST", headers: { "X-Voxserve-Shape": "mistral" },
      json: { input: `Hello, I am ${voice.name}.`, voice_id: voice.id, response_format: "wav" } });
    audio.src = `data:audio/wav;base64,${answer.audio_data}`;
  }
  await audio.play().catch(() => {});
}

function card(voice, refresh) {
  const audio = el("audio", { controls: true, hidden: true });
  const actions = [
    el("button", { type: "button", class: "secondary", text: "Play", "aria-label": `Play ${voice.name}`,
      onclick: () => { audio.hidden = false; preview(voice, audio).catch((e) => say(e.message, true)); } }),
    el("button", { type: "button", class: "secondary", text: "Copy ID", "aria-label": `Copy the id of ${voice.name}`, onclick: () => copy(voice.id) }),
  ];
  if (voice.type === "custom") actions.push(
    el("button", { type: "button", class: "secondary", text: "Edit", onclick: () => editForm(voice, refresh) }),
    el("button", { type: "button", class: "secondary", text: "Delete", "aria-label": `Delete ${voice.name}`, onclick: async () => {
      if (!confirm(`Delete the voice "${voice.name}"?`)) return;
      await request(`/v1/audio/voices/${encodeURIComponent(voice.id)}`, { method: "DELETE" }); say("Deleted"); refresh();
    } }));
  return el("article", { class: "card voice" }, el("h3", { text: voice.name }),
    el("p", { class: "muted", text: [voice.type, voice.gender, (voice.languages || []).join(", ")].filter(Boolean).join(" · ") }),
    voice.description ? el("p", { text: voice.description }) : null,
    el("code", { text: voice.id }),
    (voice.emotions || []).length ? el("div", { class: "chips", "aria-label": "Emotional variants" },
      voice.emotions.map((e) => el("span", { class: "chip", text: e }))) : null,
    el("div", {}, actions), audio);
}

function editForm(voice, refresh) {
  const dialog = el("dialog", { "aria-label": `Edit ${voice.name}` });
  const name = el("input", { type: "text", value: voice.name, maxlength: 200 });
  const description = el("input", { type: "text", value: voice.description || "", maxlength: 500 });
  const emotion = el("input", { type: "text", placeholder: "happy" });
  const sample = el("input", { type: "file", accept: "audio/*" });
  const form = el("form", { method: "dialog" }, el("h2", { text: "Edit voice" }), ...field("Name", name),
    ...field("Description", description), ...field("Emotion of a new sample", emotion), ...field("Emotion sample", sample),
    el("button", { type: "submit", text: "Save" }), el("button", { type: "button", class: "secondary", text: "Cancel", onclick: () => dialog.close() }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const changes = { name: name.value, description: description.value || null };
    if (emotion.value && sample.files[0]) changes.emotion_samples = { [emotion.value]: await blobToBase64(sample.files[0]) };
    try { await request(`/v1/audio/voices/${encodeURIComponent(voice.id)}`, { method: "PATCH", json: changes }); dialog.close(); refresh(); }
    catch (e) { say(e.message, true); }
  });
  dialog.append(form); document.body.append(dialog); dialog.addEventListener("close", () => dialog.remove()); dialog.showModal();
}

function createForm(refresh) {
  const name = el("input", { type: "text", required: true, maxlength: 200 });
  const upload = el("input", { type: "file", accept: "audio/*" });
  const language = el("input", { type: "text", placeholder: "en" });
  const gender = el("select", {}, ["", "female", "male", "neutral"].map((g) => el("option", { value: g, text: g || "(unsaid)" })));
  const meter = el("div", { class: "meter", role: "meter", "aria-label": "Microphone level", "aria-valuemin": 0, "aria-valuemax": 100 }, el("div"));
  const guide = el("p", { class: "muted", text: `Record ${MIN_S} to ${MAX_S} seconds of clear speech.` });
  const record = el("button", { type: "button", class: "secondary", text: "Record" });
  const recorded = el("audio", { controls: true, hidden: true });
  let recording = null; let recorder = null;
  record.addEventListener("click", async () => {
    if (!recorder) {
      recorder = new Recorder();
      try {
        await recorder.start({
          onLevel: (level) => { meter.firstChild.style.width = `${Math.round(level * 100)}%`; meter.setAttribute("aria-valuenow", Math.round(level * 100)); },
          onSeconds: (s) => { guide.textContent = `${s.toFixed(1)} s of ${MAX_S} (at least ${MIN_S})`; if (s >= MAX_S) record.click(); },
        });
      } catch (e) { recorder = null; say(`No microphone: ${e.message}`, true); return; }
      record.textContent = "Stop"; return;
    }
    const result = await recorder.stop(); recorder = null; record.textContent = "Record";
    recording = result.blob; recorded.hidden = false; recorded.src = URL.createObjectURL(recording);
    guide.textContent = result.seconds < MIN_S ? `Only ${result.seconds.toFixed(1)} s: record at least ${MIN_S} s.` : `Recorded ${result.seconds.toFixed(1)} s.`;
  });
  const form = el("form", { class: "card" }, el("h2", { text: "New voice" }), ...field("Name", name),
    el("div", { class: "row" }, el("div", {}, ...field("Language", language)), el("div", {}, ...field("Gender", gender))),
    ...field("Upload", upload), el("p", { class: "muted", text: "or record in the browser:" }), record, meter, guide, recorded,
    el("div", {}, el("button", { type: "submit", text: "Create voice" })));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const sample = upload.files[0] || recording;
    if (!sample) { say("Upload a file or record a sample first.", true); return; }
    const body = { name: name.value, sample_audio: await blobToBase64(sample), sample_filename: upload.files[0]?.name || "recording.wav" };
    if (language.value) body.languages = [language.value];
    if (gender.value) body.gender = gender.value;
    try { await request("/v1/audio/voices", { method: "POST", json: body }); say(`Created ${name.value}`); form.reset(); recording = null; recorded.hidden = true; refresh(); }
    catch (e) { say(e.message, true); }
  });
  return form;
}

// The gateway's named presets (Paul, Jane...): one stable id per emotional variant.
async function namedPresets() {
  const answer = await getJson("/api/tts/voices/presets");
  const families = answer.data.voices.filter((v) => v.variant_ids);
  return el("section", {}, el("h2", { text: "Named presets" }),
    el("p", { class: "muted", text: "Click a variant to copy its voice ID." }),
    el("div", { class: "voices" }, families.map((f) => el("article", { class: "card voice" },
      el("h3", { text: f.name }),
      el("p", { class: "muted", text: `${f.language} · ${f.gender} · ${f.variants.length} variants${f.maps_to ? ` · served by ${f.maps_to}` : ""}` }),
      el("div", { class: "chips", role: "group", "aria-label": `Variants of ${f.name}` },
        f.variants.map((v) => el("button", { type: "button", class: "secondary", text: v,
          "aria-label": `Copy the id of ${f.name} ${v}`, onclick: () => copy(f.variant_ids[v]) })))))));
}

export async function voicesView() {
  const grid = el("div", { class: "voices", "aria-live": "polite" });
  const text = el("input", { type: "search" });
  const language = el("input", { type: "text", placeholder: "en" });
  const gender = el("select", {}, ["", "female", "male", "neutral"].map((g) => el("option", { value: g, text: g || "any" })));
  const type = el("select", {}, ["all", "preset", "custom"].map((t) => el("option", { value: t, text: t })));
  async function refresh() {
    let params = `&type=${type.value}`;
    if (text.value) params += `&query=${encodeURIComponent(text.value)}`;
    if (language.value) params += `&language=${encodeURIComponent(language.value)}`;
    if (gender.value) params += `&gender=${gender.value}`;
    const voices = await allVoices(params);
    grid.replaceChildren(...(voices.length ? voices.map((v) => card(v, refresh)) : [el("p", { class: "muted", text: "No voice matches." })]));
  }
  for (const control of [text, language, gender, type]) control.addEventListener("change", refresh);
  text.addEventListener("input", refresh);
  await refresh();
  return el("div", {}, el("h1", { text: "Voices" }), createForm(refresh),
    el("section", {}, el("h2", { text: "Library" }), el("div", { class: "row" },
      el("div", {}, ...field("Search", text)), el("div", {}, ...field("Filter language", language)),
      el("div", {}, ...field("Filter gender", gender)), el("div", {}, ...field("Type", type))), grid),
    await namedPresets());
}
