// Plays an MP3 byte stream while it arrives (#11: audio plays while it streams), through Media
// Source Extensions: each piece is appended to a SourceBuffer, in order, as the previous append
// finishes. Where the browser has no MSE for audio/mpeg, streamable() is false and the caller
// gathers the pieces and plays the whole file at the end.
const TYPE = "audio/mpeg";

export function streamable() {
  return typeof MediaSource !== "undefined" && MediaSource.isTypeSupported(TYPE);
}

export class Mp3StreamPlayer {
  constructor(audio) {
    this.parts = []; this.queue = []; this.ended = false;
    this.source = new MediaSource();
    audio.src = URL.createObjectURL(this.source);
    this.ready = new Promise((resolve) => this.source.addEventListener("sourceopen", () => {
      this.buffer = this.source.addSourceBuffer(TYPE);
      this.buffer.addEventListener("updateend", () => this.pump());
      resolve();
    }, { once: true }));
    audio.play().catch(() => {}); // starts once the first frames are buffered
  }

  push(bytes) { this.parts.push(bytes); this.queue.push(bytes); this.ready.then(() => this.pump()); }

  pump() {
    if (!this.buffer || this.buffer.updating) return;
    if (this.queue.length) { this.buffer.appendBuffer(this.queue.shift()); return; }
    if (this.ended && this.source.readyState === "open") this.source.endOfStream();
  }

  async end() { this.ended = true; await this.ready; this.pump(); return new Blob(this.parts, { type: TYPE }); }
}
