import { readEvents, request } from "./api.js";
import { base64ToBytes, PcmPlayer } from "./audio.js";
import { download, el, field, say } from "./dom.js";
import { Mp3StreamPlayer, streamable } from "./mp3stream.js";
import { allVoices } from "./voicepick.js";

const LIMIT = 5000;
const TAGS = ["[emotion=happy]", "[emotion=sad]", "[emotion=angry]", "[pace=slow]", "[pace=fast]"];
const EMOTIONS = ["", "neutral", "happy", "sad", "angry", "excited", "curious"];

export async function playgroundView() {
  const voices = await allVoices();
  const text = el("textarea", { maxlength: LIMIT * 2, required: true });
  text.value = "Hello! This is voxserve speaking.";
  const counter = el("p", { class: "counter", "aria-live": "polite" });
  const count = () => {
    counter.textContent = `${text.value.length} / ${LIMIT} characters`;
    counter.classList.toggle("over", text.value.length > LIMIT);
  };
  text.addEventListener("input", count); count();
  const voice = el("select", {}, voices.map((v) => el("option", { value: v.id, text: `${v.name} (${v.type})` })));
  const params = new URLSearchParams(location.hash.split("?")[1] || "");
  if (params.get("voice")) voice.value = params.get("voice");
  const emotion = el("select", {}, EMOTIONS.map((e) => el("option", { value: e, text: e || "(none)" })));
  const speed = el("input", { type: "number", min: 0.25, max: 4, step: 0.05, value: 1 });
  const format = el("select", {}, ["wav", "mp3", "flac", "opus"].map((f) => el("option", { value: f, text: f })));
  const audio = el("audio", { controls: true });
  const snippet = el("pre", { "aria-label": "Code for this request" });
  const downloadButton = el("button", { type: "button", class: "secondary", text: "Download", disabled: true });
  let lastBlob = null;
  downloadButton.addEventListener("click", () => lastBlob && download(lastBlob, `speech.${lastBlob.type === "audio/wav" ? "wav" : format.value}`));
  const tags = el("div", { class: "chips", role: "group", "aria-label": "Insert a tag" },
    TAGS.map((tag) => el("button", { type: "button", class: "secondary", text: tag, onclick: () => {
      const at = text.selectionStart ?? text.value.length;
      text.value = `${text.value.slice(0, at)}${tag} ${text.value.slice(at)}`; count(); text.focus();
    } })));
  const generate = el("button", { type: "submit", text: "Generate" });
  const form = el("form", { class: "card" }, ...field("Text", text), counter, tags,
    el("div", { class: "row" }, el("div", {}, ...field("Voice", voice)), el("div", {}, ...field("Emotion", emotion)),
      el("div", {}, ...field("Speed", speed)), el("div", {}, ...field("Format", format))),
    generate, downloadButton, audio);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (text.value.length > LIMIT) { say(`The text is over ${LIMIT} characters.`, true); return; }
    const input = emotion.value ? `[emotion=${emotion.value}] ${text.value}` : text.value;
    const body = { input, voice_id: voice.value, speed: Number(speed.value), stream: true,
      response_format: format.value === "wav" ? "pcm" : format.value };
    generate.disabled = true; downloadButton.disabled = true;
    const live = format.value === "mp3" && streamable(); // plays from the stream itself
    try { lastBlob = await speak(body, format.value, audio); if (!live) audio.src = URL.createObjectURL(lastBlob); downloadButton.disabled = false; say("Done"); }
    catch (e) { say(e.message, true); }
    finally { generate.disabled = false; }
    snippet.textContent = snippets({ ...body, response_format: format.value, stream: false });
  });
  return el("div", {}, el("h1", { text: "Playground" }), form,
    el("section", {}, el("h2", { text: "The same request in code" }), snippet));
}

// Streams speech: PCM and MP3 play as they arrive; other formats are gathered, then played.
async function speak(body, chosen, audio) {
  const response = await request("/v1/audio/speech", { method: "POST", json: body, headers: { "X-Voxserve-Shape": "mistral" } });
  const player = body.response_format === "pcm" ? new PcmPlayer(24000) : null;
  const mp3 = chosen === "mp3" && streamable() ? new Mp3StreamPlayer(audio) : null;
  const parts = [];
  await readEvents(response, (name, data) => {
    if (name.includes("error")) throw new Error((data.error && data.error.message) || data.message || "Speech failed.");
    if (!data.audio_data) return;
    const bytes = base64ToBytes(data.audio_data);
    if (player) player.push(bytes); else if (mp3) mp3.push(bytes); else parts.push(bytes);
  });
  if (player) return player.wav();
  if (mp3) return mp3.end();
  const types = { mp3: "audio/mpeg", flac: "audio/flac", opus: "audio/ogg" };
  return new Blob(parts, { type: types[chosen] || "application/octet-stream" });
}

function snippets(body) {
  const json = JSON.stringify(body, null, 2);
  const origin = location.origin;
  return `curl -X POST ${origin}/v1/audio/speech \\\n  -H "Authorization: Bearer $VOXSERVE_API_KEY" \\\n  -H "Content-Type: application/json" \\\n  -d '${json.replace(/'/g, "'\\''")}'\n\n# Python (mistralai)\nimport base64, os\nfrom mistralai import Mistral\nclient = Mistral(api_key=os.environ["VOXSERVE_API_KEY"], server_url="${origin}")\nspeech = client.audio.speech.complete(model="voxtral-mini-tts-latest", input=${JSON.stringify(body.input)}, voice_id=${JSON.stringify(body.voice_id)}, response_format=${JSON.stringify(body.response_format)})\nopen("speech.${body.response_format}", "wb").write(base64.b64decode(speech.audio_data))\n`;
}
