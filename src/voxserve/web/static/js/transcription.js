import { getJson, readEvents, request } from "./api.js";
import { Recorder } from "./audio.js";
import { download, el, field, say } from "./dom.js";
import { liveSection } from "./live.js";

const stamp = (s, sep = ".") => {
  const ms = Math.round(s * 1000), h = Math.floor(ms / 3600000), m = Math.floor(ms / 60000) % 60;
  const sec = Math.floor(ms / 1000) % 60, rest = ms % 1000;
  return `${String(h).padStart(2, "0")}:${String(m).padStart(2, "0")}:${String(sec).padStart(2, "0")}${sep}${String(rest).padStart(3, "0")}`;
};

export const formats = {
  txt: (r) => r.text,
  json: (r) => JSON.stringify(r, null, 2),
  srt: (r) => r.segments.map((s, i) => `${i + 1}\n${stamp(s.start, ",")} --> ${stamp(s.end, ",")}\n${s.text.trim()}\n`).join("\n"),
  vtt: (r) => `WEBVTT\n\n${r.segments.map((s) => `${stamp(s.start)} --> ${stamp(s.end)}\n${s.text.trim()}\n`).join("\n")}`,
};

// Diarized segments carry speaker_id: each speaker gets one of eight colours (in order of first
// appearance) on a lane down the segment's left edge, and a name tag. Classes, not inline
// styles: the page's CSP allows no style attributes.
function speakerClass(speakers, id) {
  if (!id) return {};
  if (!speakers.has(id)) speakers.set(id, speakers.size);
  return { class: `segment speaker speaker-${speakers.get(id) % 8}`, "data-speaker": id };
}

function showTranscript(box, result, audio) {
  const speakers = new Map();
  box.replaceChildren(...result.segments.map((segment) => el("p", { class: "segment", ...speakerClass(speakers, segment.speaker_id) },
    ...(segment.speaker_id ? [el("b", { class: "speaker-name", text: segment.speaker_id }), " "] : []),
    el("time", { text: `${stamp(segment.start).slice(3, 8)}–${stamp(segment.end).slice(3, 8)}` }), " ",
    ...(segment.words && segment.words.length ? segment.words.map((w) => [el("span", { class: "word", tabindex: 0, role: "button",
      title: `${w.start.toFixed(2)} s`, "data-start": w.start, text: w.word.trim(),
      onclick: () => { audio.currentTime = w.start; audio.play().catch(() => {}); },
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); e.target.click(); } } }), " "])
      : [el("span", { text: segment.text })]))));
}

export async function transcriptionView() {
  const models = (await getJson("/v1/models")).data.filter((m) => /transcri|whisper|stt|sphinx|voxtral-mini-(latest|2507|transcribe)/i.test(m.id));
  const upload = el("input", { type: "file", accept: "audio/*,video/*" });
  const model = el("select", {}, el("option", { value: "", text: "(default)" }), models.map((m) => el("option", { value: m.id, text: m.id })));
  const language = el("input", { type: "text", placeholder: "auto" });
  const diarize = el("input", { type: "checkbox", title: "Label who speaks (needs the diarize extra)" });
  const record = el("button", { type: "button", class: "secondary", text: "Record" });
  const audio = el("audio", { controls: true });
  const live = el("p", { class: "muted", "aria-live": "polite" });
  const box = el("div", { class: "transcript" });
  const downloads = el("div", { hidden: true }, Object.keys(formats).map((f) =>
    el("button", { type: "button", class: "secondary", text: `Download ${f}`, onclick: () => download(new Blob([formats[f](last)], { type: "text/plain" }), `transcript.${f}`) })));
  let recording = null, recorder = null, last = null;
  upload.addEventListener("change", () => { if (upload.files[0]) { recording = null; audio.src = URL.createObjectURL(upload.files[0]); } });
  record.addEventListener("click", async () => {
    if (!recorder) {
      recorder = new Recorder();
      try { await recorder.start({ onLevel: () => {}, onSeconds: (s) => { live.textContent = `Recording ${s.toFixed(1)} s`; } }); }
      catch (e) { recorder = null; say(`No microphone: ${e.message}`, true); return; }
      record.textContent = "Stop"; return;
    }
    recording = (await recorder.stop()).blob; recorder = null; record.textContent = "Record";
    audio.src = URL.createObjectURL(recording); live.textContent = "Recorded.";
  });
  const go = el("button", { type: "submit", text: "Transcribe" });
  const form = el("form", { class: "card" }, ...field("Upload", upload), record,
    el("div", { class: "row" }, el("div", {}, ...field("Model", model)), el("div", {}, ...field("Language", language)), el("div", {}, ...field("Speakers", diarize))), go);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = upload.files[0] || recording;
    if (!file) { say("Upload or record audio first.", true); return; }
    const body = new FormData();
    body.append("file", file, upload.files[0]?.name || "recording.wav");
    body.append("model", model.value || "voxtral-mini-latest");
    if (language.value) body.append("language", language.value);
    if (diarize.checked) body.append("diarize", "true");
    body.append("stream", "true");
    body.append("timestamp_granularities", "segment"); body.append("timestamp_granularities", "word");
    go.disabled = true; live.textContent = ""; box.replaceChildren(); downloads.hidden = true;
    const segments = [];
    try {
      const response = await request("/v1/audio/transcriptions", { method: "POST", form: body, headers: { "X-Voxserve-Shape": "mistral" } });
      await readEvents(response, (name, data) => {
        if (name.includes("error")) throw new Error((data.error && data.error.message) || data.message || "Transcription failed.");
        if (name === "transcription.text.delta") live.textContent += data.text;
        if (name === "transcription.segment") { segments.push(data); showTranscript(box, { segments }, audio); }
        if (name === "transcription.done") last = data;
      });
      last = last || { text: live.textContent, segments };
      last.segments = last.segments && last.segments.length ? last.segments : segments;
      live.textContent = last.text; showTranscript(box, last, audio); downloads.hidden = false;
    } catch (e) { say(e.message, true); }
    finally { go.disabled = false; }
  });
  return el("div", {}, el("h1", { text: "Transcription" }), form, liveSection(model, language),
    el("section", {}, el("h2", { text: "Transcript" }), audio, live, box, downloads));
}
