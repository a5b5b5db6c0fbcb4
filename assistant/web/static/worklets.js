// AudioWorklet processors of the QuickTurn page (no build step).

// Microphone capture: float blocks → Int16 frames of `frameMs` at the context rate,
// posted (transferred) to the main thread, which sends them on the websocket.
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const frameMs = (options.processorOptions && options.processorOptions.frameMs) || 20;
    this.frame = Math.round(sampleRate * frameMs / 1000);
    this.buf = new Int16Array(this.frame);
    this.n = 0;
  }
  process(inputs) {
    const ch = inputs[0] && inputs[0][0];
    if (ch) {
      for (let i = 0; i < ch.length; i++) {
        const s = Math.max(-1, Math.min(1, ch[i]));
        this.buf[this.n++] = s < 0 ? s * 32768 : s * 32767;
        if (this.n === this.frame) {
          this.port.postMessage(this.buf.buffer, [this.buf.buffer]);
          this.buf = new Int16Array(this.frame);
          this.n = 0;
        }
      }
    }
    return true;
  }
}

// Playback meter: passes reply audio through and measures what was really rendered.
// - every ~100 ms: total rendered non-silent milliseconds;
// - after {arm: true}: the render time at which the output became silent for good
//   (the start of a run of >= 20 silent blocks, ~53 ms at 48 kHz): that is when
//   playback really stopped, as opposed to when stop() was called.
class MeterProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.soundSamples = 0;
    this.lastPost = 0;
    this.armed = false;
    this.silentRun = 0;
    this.runStart = 0;
    this.port.onmessage = (e) => {
      if (e.data && e.data.arm) { this.armed = true; this.silentRun = 0; }
    };
  }
  process(inputs, outputs) {
    const input = inputs[0];
    const output = outputs[0];
    let peak = 0;
    for (let c = 0; c < output.length; c++) {
      const src = input && input[c];
      if (src) {
        output[c].set(src);
        for (let i = 0; i < src.length; i++) { const a = Math.abs(src[i]); if (a > peak) peak = a; }
      }
    }
    const frames = output[0] ? output[0].length : 128;
    if (peak > 1e-5) {
      this.soundSamples += frames;
      this.silentRun = 0;
    } else {
      if (this.silentRun === 0) this.runStart = currentTime;
      this.silentRun++;
      if (this.armed && this.silentRun >= 20) {
        this.armed = false;
        this.port.postMessage({ type: 'silent', t: this.runStart });
      }
    }
    if (currentTime - this.lastPost >= 0.1) {
      this.lastPost = currentTime;
      this.port.postMessage({ type: 'level', sound_ms: 1000 * this.soundSamples / sampleRate, t: currentTime });
    }
    return true;
  }
}

registerProcessor('qt-capture', CaptureProcessor);
registerProcessor('qt-meter', MeterProcessor);
