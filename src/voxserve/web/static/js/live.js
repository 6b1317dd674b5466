// Live microphone transcription (#11): microphone -> AudioWorklet -> 16-bit PCM -> Mistral's
// realtime socket, with the text shown as it arrives. The socket is opened with a short-lived
// browser token that the public API mints for the signed-in session (POST /v1/client/sessions,
// cookie-authenticated); the API key is never in the page.
import { request } from "./api.js";
import { bytesToBase64 } from "./audio.js";
import { el, say } from "./dom.js";

export const REALTIME_MODEL = "voxtral-mini-transcribe-realtime-2602";
const PATH = "/v1/audio/transcriptions/realtime";

export async function browserToken(model) {
  const response = await request("/v1/client/sessions", { method: "POST", json: { model, ttl_seconds: 300 } });
  return (await response.json()).client_secret.value;
}

// One live session: start() opens the microphone and the socket; stop() ends the audio and
// resolves with the final transcript (the transcription.done event).
export class LiveTranscriber {
  constructor({ model, language, onText, onSegment }) {
    this.model = model; this.language = language; this.onText = onText; this.onSegment = onSegment;
    this.done = new Promise((resolve, reject) => { this.finish = resolve; this.fail = reject; });
    this.done.catch(() => {});
  }

  async start() {
    const token = await browserToken(this.model);
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
    this.context = new AudioContext();
    await this.context.audioWorklet.addModule("/web/static/js/pcm-worklet.js");
    await this.open(token);
    const format = { encoding: "pcm_s16le", sample_rate: this.context.sampleRate };
    this.send({ type: "session.update", session: { audio_format: format, ...(this.language ? { language: this.language } : {}) } });
    this.node = new AudioWorkletNode(this.context, "pcm16-capture", { numberOfOutputs: 0 });
    this.node.port.onmessage = (event) => this.send({ type: "input_audio.append", audio: bytesToBase64(event.data) });
    this.context.createMediaStreamSource(this.stream).connect(this.node);
  }

  open(token) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const url = `${scheme}://${location.host}${PATH}?model=${encodeURIComponent(this.model)}`;
    this.socket = new WebSocket(url, ["realtime", token]);
    return new Promise((resolve, reject) => {
      this.socket.onmessage = (message) => {
        const event = JSON.parse(message.data);
        if (event.type === "session.created") resolve();
        this.handle(event);
      };
      this.socket.onerror = () => reject(new Error("The live transcription socket was refused."));
      this.socket.onclose = () => { reject(new Error("The live transcription socket closed.")); this.fail(new Error("The live transcription ended early.")); };
    });
  }

  handle(event) {
    if (event.type === "transcription.text.delta") this.onText(event.text);
    else if (event.type === "transcription.segment") this.onSegment(event);
    else if (event.type === "transcription.done") this.finish(event);
    else if (event.type === "error") say(event.error?.message || "Live transcription failed.", true);
  }

  send(message) {
    if (this.socket && this.socket.readyState === WebSocket.OPEN) this.socket.send(JSON.stringify(message));
  }

  async stop() {
    this.stream?.getTracks().forEach((t) => t.stop());
    const opened = this.socket && this.socket.readyState === WebSocket.OPEN;
    if (this.node) { this.node.port.postMessage("flush"); await new Promise((r) => setTimeout(r, 50)); this.node.disconnect(); }
    await this.context?.close();
    if (!opened) { this.socket?.close(); return null; }
    this.send({ type: "input_audio.end" });
    try { return await this.done; } finally { this.socket.close(); }
  }
}

// The "Live" card of the transcription page: a toggle and the text as it arrives.
export function liveSection(modelSelect, languageInput) {
  const button = el("button", { type: "button", text: "Live" });
  const text = el("p", { class: "live-text", "aria-live": "polite", "data-testid": "live-text" });
  const state = el("p", { class: "muted", text: "Transcribe the microphone as you speak." });
  let session = null;
  button.addEventListener("click", async () => {
    if (session) {
      button.disabled = true; state.textContent = "Finishing…";
      try { const done = await session.stop(); if (done) text.textContent = done.text; state.textContent = "Done."; }
      catch (e) { say(e.message, true); state.textContent = ""; }
      finally { session = null; button.disabled = false; button.textContent = "Live"; }
      return;
    }
    text.textContent = "";
    session = new LiveTranscriber({
      model: modelSelect.value || REALTIME_MODEL,
      language: languageInput.value.trim(),
      onText: (delta) => { text.textContent += delta; },
      onSegment: () => {},
    });
    button.disabled = true;
    try { await session.start(); button.textContent = "Stop live"; state.textContent = "Listening…"; }
    catch (e) { session.stop().catch(() => {}); session = null; say(`Live transcription: ${e.message}`, true); }
    finally { button.disabled = false; }
  });
  return el("section", { class: "card", "aria-label": "Live transcription" },
    el("h2", { text: "Live" }), state, button, text);
}
