// An AudioWorklet processor: the microphone's first channel as little-endian 16-bit PCM, posted
// to the page in pieces of about 100 ms (the realtime socket's input_audio.append chunks).
class Pcm16Capture extends AudioWorkletProcessor {
  constructor() {
    super();
    this.piece = new Int16Array(Math.round(sampleRate / 10));
    this.filled = 0;
    this.port.onmessage = (event) => { if (event.data === "flush") this.flush(); };
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true;
    for (let i = 0; i < channel.length; i++) {
      const s = Math.max(-1, Math.min(1, channel[i]));
      this.piece[this.filled++] = s < 0 ? s * 0x8000 : s * 0x7fff;
      if (this.filled === this.piece.length) this.flush();
    }
    return true;
  }

  flush() {
    if (!this.filled) return;
    const bytes = new Uint8Array(this.piece.buffer.slice(0, this.filled * 2));
    this.port.postMessage(bytes, [bytes.buffer]);
    this.filled = 0;
  }
}

registerProcessor("pcm16-capture", Pcm16Capture);
