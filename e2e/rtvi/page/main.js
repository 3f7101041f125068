// The test page of e2e/rtvi: Pipecat's own client (client-js with its
// WebSocket transport) talking to voiced, unchanged. The Go test drives it
// through window.rtvi and reads window.rtviState.
import { PipecatClient } from "@pipecat-ai/client-js";
import { WebSocketTransport, WavMediaManager } from "@pipecat-ai/websocket-transport";

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
  botAudioSamples: 0, // bot audio received (samples at the player rate)
  botAudioPeak: 0,
  disconnected: false,
  startError: null,
};
window.rtviState = state;

// Measure the audio the client sends (frames of 512 bytes of PCM).
state.sent = { frames: 0, first: 0, last: 0 };
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  const n = data.byteLength ?? data.length ?? 0;
  if (n > 20) { state.sent.bytes = (state.sent.bytes || 0) + n;
    const now = performance.now();
    if (!state.sent.first) state.sent.first = now;
    state.sent.last = now;
    state.sent.frames++;
  }
  return send.call(this, data);
};

// The client is made when the test starts it, as an app makes it when its
// user clicks "connect": client-js records from the moment its devices
// start and sends that backlog once the bot is ready.
let client = null;

function makeClient() {
// The default media manager loads a script from Daily's CDN; the WAV one
// is bundled. Its recorder defaults to 24 kHz while the transport labels
// the audio with its own recorderSampleRate (16 kHz): give it 16 kHz, in
// the transport's 512-byte chunks. Count the bot's audio on its way to
// the player (24 kHz, the transport's playerSampleRate).
const media = new WavMediaManager(512, 16000);
const buffer = media.bufferBotAudio.bind(media);
media.bufferBotAudio = (data, id) => {
  state.botAudioSamples += data.length;
  for (let i = 0; i < data.length; i++) {
    const v = Math.abs(data[i]) / 32768;
    if (v > state.botAudioPeak) state.botAudioPeak = v;
  }
  return buffer(data, id);
};

const log = (name) => () => state.events.push(name);
return new PipecatClient({
  transport: new WebSocketTransport({ mediaManager: media }),
  enableMic: true,
  enableCam: false,
  callbacks: {
    onConnected: () => { state.connected = true; },
    onDisconnected: () => { state.disconnected = true; state.events.push("disconnected"); },
    onTransportStateChanged: (s) => { state.transport = s; },
    onBotReady: (d) => { state.events.push("botReady"); },
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
}

window.rtvi = {
  // start POSTs the endpoint (Pipecat's /start) and connects; it resolves
  // with bot-ready's data.
  start: async (endpoint, body) => {
    try {
      client = makeClient();
      state.botReady = await client.startBotAndConnect({
        endpoint,
        requestData: { transport: "websocket", body },
      });
    } catch (e) {
      state.startError = String(e && e.message ? e.message : e);
    }
  },
  sendText: (text) => client.sendText(text),
  request: (t, d) => client.sendClientRequest(t, d),
  disconnectBot: () => client.disconnectBot(),
};
