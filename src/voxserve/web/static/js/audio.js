// Audio helpers: play float32 PCM as it arrives, wrap PCM in WAV, record the microphone as WAV.

export function base64ToBytes(b64) {
  const raw = atob(b64); const bytes = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
  return bytes;
}

export function bytesToBase64(bytes) {
  let raw = "";
  for (let i = 0; i < bytes.length; i += 0x8000) raw += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(raw);
}

// Plays chunks of little-endian float32 mono PCM, each scheduled right after the last.
export class PcmPlayer {
  constructor(rate) {
    this.rate = rate; this.context = new AudioContext({ sampleRate: rate });
    this.at = 0; this.samples = []; this.pending = new Uint8Array(0);
  }
  push(bytes) {
    const joined = new Uint8Array(this.pending.length + bytes.length);
    joined.set(this.pending); joined.set(bytes, this.pending.length);
    const usable = joined.length - (joined.length % 4);
    this.pending = joined.slice(usable);
    if (!usable) return;
    const floats = new Float32Array(joined.slice(0, usable).buffer);
    this.samples.push(floats);
    const buffer = this.context.createBuffer(1, floats.length, this.rate);
    buffer.copyToChannel(floats, 0);
    const source = this.context.createBufferSource();
    source.buffer = buffer; source.connect(this.context.destination);
    this.at = Math.max(this.at, this.context.currentTime + 0.05);
    source.start(this.at); this.at += buffer.duration;
  }
  wav() { return encodeWav(this.samples, this.rate); }
}

export function encodeWav(chunks, rate) {
  const total = chunks.reduce((n, c) => n + c.length, 0);
  const view = new DataView(new ArrayBuffer(44 + total * 2));
  const text = (at, s) => { for (let i = 0; i < s.length; i++) view.setUint8(at + i, s.charCodeAt(i)); };
  text(0, "RIFF"); view.setUint32(4, 36 + total * 2, true); text(8, "WAVE"); text(12, "fmt ");
  view.setUint32(16, 16, true); view.setUint16(20, 1, true); view.setUint16(22, 1, true);
  view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true); view.setUint16(32, 2, true);
  view.setUint16(34, 16, true); text(36, "data"); view.setUint32(40, total * 2, true);
  let at = 44;
  for (const chunk of chunks) for (const s of chunk) { view.setInt16(at, Math.max(-1, Math.min(1, s)) * 0x7fff, true); at += 2; }
  return new Blob([view.buffer], { type: "audio/wav" });
}

// Records the microphone; onLevel(0..1) and onSeconds(s) drive the level meter and length guide.
export class Recorder {
  async start({ onLevel, onSeconds }) {
    this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    this.context = new AudioContext();
    const source = this.context.createMediaStreamSource(this.stream);
    this.processor = this.context.createScriptProcessor(4096, 1, 1);
    this.chunks = []; this.count = 0;
    this.processor.onaudioprocess = (event) => {
      const input = event.inputBuffer.getChannelData(0);
      this.chunks.push(new Float32Array(input)); this.count += input.length;
      let peak = 0; for (const s of input) peak = Math.max(peak, Math.abs(s));
      onLevel(peak); onSeconds(this.count / this.context.sampleRate);
    };
    source.connect(this.processor); this.processor.connect(this.context.destination);
  }
  async stop() {
    this.processor.disconnect(); this.stream.getTracks().forEach((t) => t.stop());
    const rate = this.context.sampleRate; await this.context.close();
    return { blob: encodeWav(this.chunks, rate), seconds: this.count / rate };
  }
}
