// AudioWorklet processors for the voiced demo. Both run on the audio
// rendering thread at the AudioContext's sample rate.
//
//   "capture"  microphone Float32 -> PCM16LE chunks posted to the page
//   "playback" PCM16LE from the page -> ring buffer -> speakers
//
// No allocation happens in process() except when a capture chunk is handed
// over (its buffer is transferred to the page, so a new one is needed).

// CaptureProcessor converts its first input channel (the node is created with
// channelCount 1, so the browser down-mixes) to 16-bit little-endian PCM and
// posts one message per chunk: {pcm: ArrayBuffer, peak: 0..1}. The chunk
// length is processorOptions.chunkMs milliseconds (default 20).
class CaptureProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const chunkMs = (options.processorOptions && options.processorOptions.chunkMs) || 20;
    this.chunkSamples = Math.max(1, Math.round((sampleRate * chunkMs) / 1000));
    this.newChunk();
  }

  newChunk() {
    this.buffer = new ArrayBuffer(this.chunkSamples * 2);
    this.view = new DataView(this.buffer);
    this.filled = 0;
    this.peak = 0;
  }

  process(inputs) {
    const channel = inputs[0] && inputs[0][0];
    if (!channel) return true; // input not connected (yet)
    for (let i = 0; i < channel.length; i++) {
      let s = channel[i];
      if (s > 1) s = 1;
      else if (s < -1) s = -1;
      const a = s < 0 ? -s : s;
      if (a > this.peak) this.peak = a;
      this.view.setInt16(this.filled * 2, Math.round(s < 0 ? s * 0x8000 : s * 0x7fff), true);
      this.filled++;
      if (this.filled === this.chunkSamples) {
        this.port.postMessage({ pcm: this.buffer, peak: this.peak }, [this.buffer]);
        this.newChunk();
      }
    }
    return true;
  }
}

// PlaybackProcessor plays PCM16LE mono pushed by the page. Messages in:
//   {type: "pcm", data: ArrayBuffer}  append samples (odd trailing byte ignored)
//   {type: "clear"}                   drop everything queued, at once
//   {type: "report"}                  send a report now
// Messages out, about every 50 ms while audio is queued or was just playing:
//   {peak: 0..1, buffered: samples queued, dropped: samples lost to overflow}
// peak is the largest absolute sample actually rendered since the last report.
class PlaybackProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const seconds = (options.processorOptions && options.processorOptions.bufferSeconds) || 30;
    this.ring = new Float32Array(Math.ceil(sampleRate * seconds));
    this.readPos = 0;
    this.count = 0;
    this.dropped = 0;
    this.peak = 0;
    this.sinceReport = 0;
    this.reportEvery = Math.round(sampleRate / 20);
    this.reportedIdle = true;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(msg) {
    if (msg.type === "clear") {
      this.readPos = 0;
      this.count = 0;
      this.report();
      return;
    }
    if (msg.type === "report") {
      this.report();
      return;
    }
    if (msg.type !== "pcm") return;
    const view = new DataView(msg.data);
    const n = msg.data.byteLength >> 1;
    const cap = this.ring.length;
    for (let i = 0; i < n; i++) {
      if (this.count === cap) {
        this.dropped += n - i;
        break;
      }
      this.ring[(this.readPos + this.count) % cap] = view.getInt16(i * 2, true) / 0x8000;
      this.count++;
    }
    this.reportedIdle = false;
  }

  report() {
    this.port.postMessage({ peak: this.peak, buffered: this.count, dropped: this.dropped });
    this.reportedIdle = this.count === 0 && this.peak === 0;
    this.peak = 0;
    this.sinceReport = 0;
  }

  process(_inputs, outputs) {
    const out = outputs[0] && outputs[0][0];
    if (!out) return true;
    const cap = this.ring.length;
    let i = 0;
    for (; i < out.length && this.count > 0; i++) {
      const s = this.ring[this.readPos];
      out[i] = s;
      const a = s < 0 ? -s : s;
      if (a > this.peak) this.peak = a;
      this.readPos = (this.readPos + 1) % cap;
      this.count--;
    }
    for (; i < out.length; i++) out[i] = 0;
    // Copy to any further channels so stereo outputs play in both ears.
    for (let c = 1; c < outputs[0].length; c++) outputs[0][c].set(out);

    this.sinceReport += out.length;
    if (this.sinceReport >= this.reportEvery && !this.reportedIdle) this.report();
    return true;
  }
}

registerProcessor("capture", CaptureProcessor);
registerProcessor("playback", PlaybackProcessor);
