// The SmallWebRTC test page of e2e/rtvi: Pipecat's own client (client-js
// with its SmallWebRTC transport) talking to voiced, unchanged. The Go test
// drives it through window.rtvi and reads window.rtviState.
import { PipecatClient } from "@pipecat-ai/client-js";
import { SmallWebRTCTransport, WavMediaManager } from "@pipecat-ai/small-webrtc-transport";

const state = {
  connected: false,
  botReady: null, // the bot-ready data
  transport: "",
  events: [], // RTVI events in order: "botStartedSpeaking", …
  transcripts: [], // user-transcription data
  botOutputs: [], // bot-output data
  ttsTexts: [],
  serverMessages: [],
  errors: [],
  botTrack: false, // the bot's audio track started (onTrackStarted, remote)
  botLevel: 0, // the bot's audio level now (peak of the last ~20 ms, 0..1)
  botPeak: 0, // the highest level seen
  audibleMs: 0, // how long the bot's audio was audible (> -40 dBFS), in 50 ms steps
  audioBytesReceived: 0, // RTP bytes of bot audio (getStats)
  disconnected: false,
  botDisconnected: false, // peerLeft
  startError: null,
};
window.rtviState = state;

// The default media manager loads a script from Daily's CDN; the WAV one
// is bundled, and it captures the fake microphone.
const media = new WavMediaManager();
const transport = new SmallWebRTCTransport({ mediaManager: media });

// The bot's voice: remote track → muted <audio> (headless Chromium needs
// one before the stream reaches WebAudio) → analyser.
let ctx = null;
let analyser = null;
const buf = new Float32Array(1024);
function listen(track) {
  if (!ctx) ctx = new AudioContext();
  const stream = new MediaStream([track]);
  const el = document.createElement("audio");
  el.muted = true;
  el.autoplay = true;
  el.srcObject = stream;
  el.play().catch(() => {});
  analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
}
setInterval(async () => {
  if (analyser) {
    analyser.getFloatTimeDomainData(buf);
    let peak = 0;
    for (const v of buf) peak = Math.max(peak, Math.abs(v));
    state.botLevel = peak;
    state.botPeak = Math.max(state.botPeak, peak);
    if (peak > 0.01) state.audibleMs += 50;
  }
  // The transport's peer connection, for the bytes received.
  const pc = transport.pc;
  if (!pc) return;
  const stats = await pc.getStats().catch(() => null);
  if (!stats) return;
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") state.audioBytesReceived = s.bytesReceived || 0;
  });
}, 50);

const log = (name) => () => state.events.push(name);
const client = new PipecatClient({
  transport,
  enableMic: true,
  enableCam: false,
  callbacks: {
    onConnected: () => { state.connected = true; },
    onDisconnected: () => { state.disconnected = true; state.events.push("disconnected"); },
    onBotDisconnected: () => { state.botDisconnected = true; state.events.push("botDisconnected"); },
    onTransportStateChanged: (s) => { state.transport = s; },
    onBotReady: () => { state.events.push("botReady"); },
    onTrackStarted: (track, p) => {
      if (track.kind === "audio" && !(p && p.local)) {
        state.botTrack = true;
        listen(track);
      }
    },
    onUserStartedSpeaking: log("userStartedSpeaking"),
    onUserStoppedSpeaking: log("userStoppedSpeaking"),
    onBotStartedSpeaking: log("botStartedSpeaking"),
    onBotStoppedSpeaking: log("botStoppedSpeaking"),
    onUserTranscript: (d) => { state.transcripts.push(d); },
    onBotOutput: (d) => { state.botOutputs.push(d); },
    onBotTtsText: (d) => { state.ttsTexts.push(d.text); },
    onServerMessage: (d) => { state.serverMessages.push(d); },
    onError: (m) => { state.errors.push(m.data); },
  },
});

window.rtvi = {
  // start POSTs the endpoint (Pipecat's /start), offers on
  // /sessions/{sessionId}/api/offer and resolves with bot-ready's data.
  start: async (endpoint, body) => {
    try {
      state.botReady = await client.startBotAndConnect({
        endpoint,
        requestData: { transport: "webrtc", body },
      });
    } catch (e) {
      state.startError = String(e && e.message ? e.message : e);
    }
  },
  sendText: (text) => client.sendText(text),
  request: (t, d) => client.sendClientRequest(t, d),
  disconnectBot: () => client.disconnectBot(),
};
