// voiced browser demo. Speaks the protocol in docs/protocol.md over one of
// two transports, chosen with the switch in the top bar:
//
//   WebSocket: microphone -> AudioWorklet "capture" -> PCM16LE binary
//   messages -> /ws, binary replies -> AudioWorklet "playback".
//   WebRTC: an RTCPeerConnection sends the microphone as Opus and receives
//   the bot's voice as a remote track (POST /webrtc/offer carries the SDP);
//   events travel on the "events" data channel.
//
// JSON events -> the panels, the same for both.
//
// Query parameters: ?autostart=1 starts without a click; ?transport=webrtc
// picks WebRTC (default ws); ?ws=URL overrides the WebSocket address
// (default: this host, path /ws); ?offer=URL the WebRTC offer endpoint
// (default: this host, /webrtc/offer).
//
// window.voicedState mirrors what happened, for tests and for curious humans
// with a console open.

const RATES = [8000, 16000, 22050, 24000, 44100, 48000];
const CHUNK_MS = 20;
const MAX_TEXT_BYTES = 4096;
const MAX_SEND_BACKLOG = 512 * 1024; // bytes queued in the socket before we drop mic audio
const MAX_LOG_ROWS = 500;

const CLOSE_MEANINGS = {
  1000: "normal closure",
  1001: "server going away",
  1006: "connection lost",
  1007: "invalid data",
  1008: "policy violation",
  1009: "message too big",
  1011: "server error",
};

const params = new URLSearchParams(location.search);
const wsURL = params.get("ws") || `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}/ws`;
const offerURL = params.get("offer") || `${location.origin}/webrtc/offer`;
// An access token or API key for a server with authentication on
// (docs/security.md): sent as a WebSocket subprotocol and as a Bearer header.
const token = params.get("token") || "";

const state = {
  transport: "ws", // "ws" or "webrtc", for the call in progress or the last one
  connected: false,
  ready: false,
  transcripts: [], // {text, final}
  botTexts: [],
  events: [], // server event types, in order
  audioBytesReceived: 0,
  audioBytesSent: 0,
  playedPeak: 0, // max |sample| rendered (playback worklet, or WebRTC's AnalyserNode), 0..1
  interruptedCount: 0,
  botLevel: 0, // WebRTC: the bot's current output peak (after the barge-in mute), 0..1
  levelAfterInterrupt: null, // WebRTC: the first botLevel measured after the last `interrupted`
  rxLevel: 0, // WebRTC: the current peak of the bot's track as received, before the barge-in mute
  iceServers: [], // WebRTC: the urls of each ICE server the server handed the page
  metrics: [],
  errors: [], // {code, message}
  sessionId: null,
  sampleRate: 0,
  closeCode: null,
  closeReason: "",
};
window.voicedState = state;

const $ = (id) => document.getElementById(id);
const ui = {
  toggle: $("toggle"),
  transport: $("transport"),
  status: $("status"),
  alert: $("alert"),
  hint: $("hint"),
  userSpeaker: $("user-speaker"),
  botSpeaker: $("bot-speaker"),
  userLevel: $("user-level"),
  botLevel: $("bot-level"),
  agentName: $("agent-name"),
  textForm: $("text-form"),
  textInput: $("text-input"),
  textSend: $("text-send"),
  transcript: $("transcript"),
  botText: $("bot-text"),
  metricsBody: document.querySelector("#metrics tbody"),
  log: $("log"),
  sessionInfo: $("session-info"),
};

// The live call, or null. Holds everything teardown must release.
let call = null;

// ---------------------------------------------------------------- display

function setStatus(kind, text) {
  ui.status.dataset.state = kind;
  ui.status.textContent = text;
}

function showAlert(text, kind = "error") {
  ui.alert.textContent = text;
  ui.alert.dataset.kind = kind;
  ui.alert.hidden = false;
}

function hideAlert() {
  ui.alert.hidden = true;
  ui.alert.textContent = "";
}

function clock() {
  const d = new Date();
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

// log adds a row to the event log. source is "server" or "client".
function log(source, type, detail = "", tMs = null) {
  const row = document.createElement("li");
  row.className = `log-row ${source} type-${type}`;
  const time = document.createElement("time");
  time.textContent = clock();
  const server = document.createElement("span");
  server.className = "t";
  server.textContent = tMs == null ? "" : `+${tMs} ms`;
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.textContent = type;
  const text = document.createElement("span");
  text.className = "detail";
  text.textContent = detail;
  row.append(time, server, badge, text);

  // Mirrored to the console so a test harness (or a developer) sees it.
  console.info(`[voiced] ${source} ${type}${tMs == null ? "" : ` +${tMs}ms`} ${detail}`);

  const atBottom = ui.log.scrollHeight - ui.log.scrollTop - ui.log.clientHeight < 24;
  ui.log.append(row);
  while (ui.log.childElementCount > MAX_LOG_ROWS) ui.log.firstElementChild.remove();
  if (atBottom) ui.log.scrollTop = ui.log.scrollHeight;
}

// appendLine adds a line to a transcript-like panel and keeps it scrolled.
function appendLine(panel, text, className) {
  const line = document.createElement("p");
  line.className = className;
  line.textContent = text;
  panel.append(line);
  panel.scrollTop = panel.scrollHeight;
  return line;
}

function setSpeaking(el, on) {
  el.classList.toggle("speaking", on);
}

function setLevel(el, peak) {
  // A rough loudness meter: peak in dBFS mapped from -60..0 to 0..100 %.
  const db = peak > 0 ? 20 * Math.log10(peak) : -100;
  const pct = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
  el.style.width = `${pct.toFixed(0)}%`;
}

function setControls(phase) {
  const live = phase === "live";
  ui.toggle.textContent = phase === "idle" ? "Start" : "Stop";
  ui.toggle.classList.toggle("danger", phase !== "idle");
  ui.toggle.disabled = phase === "stopping";
  ui.transport.disabled = phase !== "idle";
  ui.textInput.disabled = !live;
  ui.textSend.disabled = !live;
  ui.textInput.placeholder = live
    ? "Type a message and press Enter…"
    : "Start a conversation to type a message…";
  ui.hint.innerHTML = live
    ? "Listening. Speak naturally, or type below. Talk over the agent to interrupt it."
    : "Press <strong>Start</strong> and allow the microphone, then speak. The agent answers out loud; " +
      "talk over it to interrupt. Headphones give the best results.";
}

// ---------------------------------------------------------------- events

let interimLine = null;
const botLines = []; // {el, turn}: the agent's sentences, newest last

// markCut labels the newest sentence of an interrupted answer. An
// interruption starts generation ev.turn, so the cut answer is the newest
// sentence from an older generation (a server may already have sent the
// first sentence of the next answer).
function markCut(ev) {
  for (let i = botLines.length - 1; i >= 0; i--) {
    const line = botLines[i];
    if (typeof ev.turn === "number" && typeof line.turn === "number" && line.turn >= ev.turn) continue;
    line.el.classList.add("cut");
    return;
  }
}

function onTranscript(ev) {
  const text = String(ev.text || "");
  const final = Boolean(ev.final);
  state.transcripts.push({ text, final });
  if (final) {
    if (interimLine) {
      interimLine.remove();
      interimLine = null;
    }
    if (text.trim() !== "") appendLine(ui.transcript, text, "final");
  } else if (text.trim() !== "") {
    if (!interimLine) interimLine = appendLine(ui.transcript, text, "interim");
    else interimLine.textContent = text;
    ui.transcript.scrollTop = ui.transcript.scrollHeight;
  }
}

function fmtMs(v) {
  return typeof v === "number" && Number.isFinite(v) ? String(Math.round(v)) : "—";
}

function onMetrics(ev) {
  state.metrics.push(ev);
  const empty = ui.metricsBody.querySelector(".empty");
  if (empty) empty.remove();

  const row = document.createElement("tr");
  const cells = [
    ev.turn,
    ev.voice_to_voice_ms,
    ev.endpointing_ms,
    ev.stt_final_ms,
    ev.llm_first_token_ms,
    ev.first_sentence_ms,
    ev.tts_first_audio_ms,
    ev.audio_out_ms,
  ];
  cells.forEach((v, i) => {
    const td = document.createElement("td");
    if (i === 0) {
      // Number answered turns 1, 2, 3…; the protocol's turn is a generation
      // that only moves on interruptions, so it goes in the tooltip.
      td.textContent = String(state.metrics.length);
      if (v != null) td.title = `generation ${v}`;
    } else if (i === 1) {
      td.className = "v2v";
      const ms = Number(v);
      const bar = document.createElement("span");
      bar.className = "bar";
      bar.dataset.grade = !(ms >= 0) ? "none" : ms < 800 ? "good" : ms < 1500 ? "ok" : "slow";
      bar.style.width = `${Math.min(100, (ms / 2500) * 100) || 0}%`;
      const label = document.createElement("span");
      label.textContent = fmtMs(v);
      td.append(bar, label);
    } else {
      td.textContent = fmtMs(v);
    }
    row.append(td);
  });
  ui.metricsBody.append(row);
  row.scrollIntoView({ block: "nearest" });
}

// detailOf summarizes an event's fields other than type/turn/t_ms.
function detailOf(ev) {
  const parts = [];
  for (const [k, v] of Object.entries(ev)) {
    if (k === "type" || k === "t_ms") continue;
    parts.push(`${k}=${typeof v === "string" ? JSON.stringify(v) : v}`);
  }
  return parts.join("  ");
}

function onEvent(ev) {
  state.events.push(ev.type);
  log("server", ev.type, detailOf(ev), ev.t_ms);

  switch (ev.type) {
    case "ready":
      state.ready = true;
      state.sessionId = ev.session_id || null;
      setStatus("live", "Listening");
      ui.sessionInfo.textContent = `session ${ev.session_id || "?"} · ${ev.sample_rate} Hz in · ${ev.output_sample_rate} Hz out`;
      break;
    case "user_started_speaking":
      setSpeaking(ui.userSpeaker, true);
      break;
    case "user_stopped_speaking":
      setSpeaking(ui.userSpeaker, false);
      break;
    case "transcript":
      onTranscript(ev);
      break;
    case "bot_text":
      state.botTexts.push(String(ev.text || ""));
      botLines.push({ el: appendLine(ui.botText, String(ev.text || ""), "final"), turn: ev.turn });
      if (botLines.length > MAX_LOG_ROWS) botLines.shift();
      break;
    case "bot_started_speaking":
      if (call && call.gain) call.gain.gain.value = 1;
      setSpeaking(ui.botSpeaker, true);
      setStatus("live", "Agent speaking");
      break;
    case "bot_stopped_speaking":
      setSpeaking(ui.botSpeaker, false);
      setStatus("live", "Listening");
      if (ev.interrupted) markCut(ev);
      break;
    case "interrupted":
      state.interruptedCount++;
      if (call && call.playback) call.playback.port.postMessage({ type: "clear" });
      // WebRTC cannot flush the browser's jitter buffer: mute what is left
      // of the old answer until the next one starts.
      if (call && call.gain) {
        call.gain.gain.value = 0;
        call.interruptAt = performance.now();
        state.levelAfterInterrupt = null;
      }
      setSpeaking(ui.botSpeaker, false);
      setLevel(ui.botLevel, 0);
      markCut(ev);
      break;
    case "handoff":
      ui.agentName.textContent = ev.to ? `· ${ev.to}` : "";
      break;
    case "metrics":
      onMetrics(ev);
      break;
    case "error":
      state.errors.push({ code: ev.code, message: ev.message });
      showAlert(`Server error${ev.code ? ` (${ev.code})` : ""}: ${ev.message || "no message"}`);
      break;
    default:
      // Unknown events are logged above and otherwise ignored, so newer
      // servers keep working with this page.
      break;
  }
}

// ---------------------------------------------------------------- the call

// newAudioContext returns an AudioContext whose rate the protocol allows.
function newAudioContext() {
  let ctx = new AudioContext({ latencyHint: "interactive" });
  if (!RATES.includes(ctx.sampleRate)) {
    ctx.close();
    ctx = new AudioContext({ latencyHint: "interactive", sampleRate: 48000 });
  }
  return ctx;
}

async function start() {
  if (call) return;
  hideAlert();
  state.connected = false;
  state.ready = false;
  state.closeCode = null;
  state.closeReason = "";
  setControls("connecting");
  setStatus("busy", "Starting…");

  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    fail("This page needs microphone access, which browsers only allow over HTTPS or on localhost.");
    return;
  }
  if (typeof AudioWorkletNode === "undefined") {
    fail("This browser does not support AudioWorklet.");
    return;
  }

  // Create the context before any await so a click counts as the user gesture.
  const mode = ui.transport.value === "webrtc" ? "webrtc" : "ws";
  state.transport = mode;
  const c = {
    mode, ctx: newAudioContext(), stream: null, ws: null, capture: null, playback: null, opened: false, closing: false,
    pc: null, dc: null, audioEl: null, gain: null, timers: [],
  };
  call = c;

  try {
    setStatus("busy", "Opening microphone…");
    c.stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    });
    if (call !== c) return cleanupMedia(c);
    await c.ctx.audioWorklet.addModule("worklets.js");
    if (call !== c) return cleanupMedia(c);
  } catch (err) {
    if (call === c) fail(micError(err));
    return;
  }

  const rate = c.ctx.sampleRate;
  state.sampleRate = rate;
  log("client", "audio", `microphone open, AudioContext at ${rate} Hz`);
  if (c.mode === "webrtc") {
    resumeContext(c);
    connectRTC(c);
    return;
  }

  // Playback: binary messages -> ring buffer -> speakers.
  c.playback = new AudioWorkletNode(c.ctx, "playback", {
    numberOfInputs: 0,
    numberOfOutputs: 1,
    outputChannelCount: [1],
    processorOptions: { bufferSeconds: 30 },
  });
  c.playback.port.onmessage = (e) => {
    const { peak } = e.data;
    if (peak > state.playedPeak) state.playedPeak = peak;
    setLevel(ui.botLevel, peak);
  };
  c.playback.connect(c.ctx.destination);

  // Capture: microphone -> PCM16LE chunks -> socket. The capture node feeds a
  // silent gain so the graph pulls it without echoing the mic to the speakers.
  const source = c.ctx.createMediaStreamSource(c.stream);
  c.capture = new AudioWorkletNode(c.ctx, "capture", {
    numberOfInputs: 1,
    numberOfOutputs: 1,
    channelCount: 1,
    channelCountMode: "explicit",
    channelInterpretation: "speakers",
    processorOptions: { chunkMs: CHUNK_MS },
  });
  const mute = c.ctx.createGain();
  mute.gain.value = 0;
  source.connect(c.capture).connect(mute).connect(c.ctx.destination);
  c.capture.port.onmessage = (e) => {
    if (c.closing) return;
    const { pcm, peak } = e.data;
    setLevel(ui.userLevel, peak);
    const ws = c.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_SEND_BACKLOG) return; // network stalled: drop rather than lag
    ws.send(pcm);
    state.audioBytesSent += pcm.byteLength;
  };

  resumeContext(c);
  connect(c, rate);
}

// resumeContext deals with a context the browser holds suspended: without a
// user gesture (autostart) resume() stays pending until the user interacts.
function resumeContext(c) {
  if (c.ctx.state === "suspended") {
    showAlert("The browser is holding audio until you interact with the page: click anywhere to enable it.", "info");
    c.ctx.resume().then(() => {
      if (ui.alert.dataset.kind === "info") hideAlert();
    }, () => {});
    const resume = () => c.ctx.state === "suspended" && c.ctx.resume().catch(() => {});
    document.addEventListener("pointerdown", resume, { once: true });
    document.addEventListener("keydown", resume, { once: true });
  }
}

// peakOf returns the largest absolute sample an AnalyserNode holds now.
function peakOf(analyser, buf) {
  analyser.getFloatTimeDomainData(buf);
  let peak = 0;
  for (let i = 0; i < buf.length; i++) {
    const a = Math.abs(buf[i]);
    if (a > peak) peak = a;
  }
  return peak;
}

// authHeaders adds the access token, if any, to a request's headers.
function authHeaders(h) {
  return token ? { ...h, Authorization: `Bearer ${token}` } : h;
}

// iceServers asks the server which STUN and TURN servers to use
// (GET /webrtc/ice-servers, beside the offer endpoint); none if it cannot.
async function iceServers() {
  try {
    const resp = await fetch(new URL("ice-servers", offerURL), { headers: authHeaders({}) });
    if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
    const body = await resp.json();
    return Array.isArray(body.iceServers) ? body.iceServers : [];
  } catch (err) {
    log("client", "ice-servers", `no ICE servers from the server (${err && err.message ? err.message : err})`);
    return [];
  }
}

// connectRTC starts a WebRTC call: the microphone goes out as a track, the
// bot's voice comes back as a remote track, events on the "events" data
// channel. The offer carries every ICE candidate gathered (through the
// server's STUN and TURN servers), so gathering finishes before it is sent;
// the answer's Location names the session, which teardown DELETEs.
async function connectRTC(c) {
  setStatus("busy", "Connecting…");
  const servers = await iceServers();
  state.iceServers = servers.map((s) => s.urls);
  if (call !== c) return;
  const pc = new RTCPeerConnection({ iceServers: servers });
  c.pc = pc;
  for (const track of c.stream.getAudioTracks()) pc.addTrack(track, c.stream);
  const dc = pc.createDataChannel("events");
  c.dc = dc;

  // The microphone level, for the meter.
  const micAnalyser = c.ctx.createAnalyser();
  micAnalyser.fftSize = 1024;
  c.ctx.createMediaStreamSource(c.stream).connect(micAnalyser);
  const micBuf = new Float32Array(micAnalyser.fftSize);

  // The bot's voice: remote track -> (muted <audio>, which headless
  // Chromium needs before the stream reaches WebAudio) -> gain (muted on
  // `interrupted`) -> analyser -> speakers.
  const botAnalyser = c.ctx.createAnalyser();
  botAnalyser.fftSize = 1024;
  const botBuf = new Float32Array(botAnalyser.fftSize);
  const rxAnalyser = c.ctx.createAnalyser();
  rxAnalyser.fftSize = 1024;
  c.gain = c.ctx.createGain();
  c.gain.connect(botAnalyser).connect(c.ctx.destination);
  pc.ontrack = (e) => {
    if (e.track.kind !== "audio" || c.audioEl) return;
    const stream = e.streams[0] || new MediaStream([e.track]);
    c.audioEl = document.createElement("audio");
    c.audioEl.muted = true;
    c.audioEl.autoplay = true;
    c.audioEl.srcObject = stream;
    c.audioEl.play().catch(() => {});
    const src = c.ctx.createMediaStreamSource(stream);
    src.connect(c.gain);
    src.connect(rxAnalyser);
    log("client", "track", "bot audio track received");
  };

  c.timers.push(setInterval(() => {
    if (c.closing) return;
    setLevel(ui.userLevel, peakOf(micAnalyser, micBuf));
    const peak = peakOf(botAnalyser, botBuf);
    state.botLevel = peak;
    state.rxLevel = peakOf(rxAnalyser, botBuf);
    // The analyser holds the last ~21 ms, so 30 ms after the mute it
    // shows what the mute left.
    if (c.interruptAt && performance.now() - c.interruptAt >= 30) {
      state.levelAfterInterrupt = peak;
      c.interruptAt = 0;
    }
    if (peak > state.playedPeak) state.playedPeak = peak;
    setLevel(ui.botLevel, peak);
  }, 50));
  c.timers.push(setInterval(async () => {
    if (c.closing) return;
    const stats = await pc.getStats().catch(() => null);
    if (!stats) return;
    stats.forEach((s) => {
      if (s.type === "inbound-rtp" && s.kind === "audio") state.audioBytesReceived = s.bytesReceived || 0;
      if (s.type === "outbound-rtp" && s.kind === "audio") state.audioBytesSent = s.bytesSent || 0;
    });
  }, 250));

  dc.onopen = () => {
    c.opened = true;
    state.connected = true;
    setControls("live");
    setStatus("busy", "Waiting for the agent…");
    log("client", "open", `WebRTC events channel (${offerURL})`);
  };
  dc.onmessage = (e) => {
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch {
      log("client", "bad-event", String(e.data).slice(0, 200));
      return;
    }
    if (ev && typeof ev.type === "string") onEvent(ev);
  };
  dc.onclose = () => {
    state.connected = false;
    state.ready = false;
    log("client", "close", "WebRTC events channel closed");
    if (call !== c) return;
    if (state.errors.length > 0) setStatus("error", "Disconnected");
    else setStatus("idle", "Ended");
    teardown({ drain: false });
  };
  pc.onconnectionstatechange = () => {
    log("client", "webrtc", `connection ${pc.connectionState}`);
    if (pc.connectionState === "failed" && call === c) fail("The WebRTC connection failed.");
  };

  try {
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === "complete") return resolve();
      const t = setTimeout(resolve, 3000);
      pc.addEventListener("icegatheringstatechange", () => {
        if (pc.iceGatheringState === "complete") {
          clearTimeout(t);
          resolve();
        }
      });
    });
    if (call !== c) return;
    const resp = await fetch(offerURL, {
      method: "POST",
      headers: authHeaders({ "Content-Type": "application/sdp" }),
      body: pc.localDescription.sdp,
    });
    const body = await resp.text();
    if (!resp.ok) throw new Error(`offer refused: HTTP ${resp.status} ${body.trim()}`);
    const where = resp.headers.get("Location");
    if (where) c.resource = new URL(where, offerURL);
    if (call !== c) return;
    await pc.setRemoteDescription({ type: "answer", sdp: body });
  } catch (err) {
    if (call === c) fail(`Could not connect over WebRTC: ${err && err.message ? err.message : err}`);
  }
}

// sendJSON sends a client message over the call's transport; false if it
// is not open.
function sendJSON(c, msg) {
  const data = JSON.stringify(msg);
  if (c.ws && c.ws.readyState === WebSocket.OPEN) {
    c.ws.send(data);
    return true;
  }
  if (c.dc && c.dc.readyState === "open") {
    c.dc.send(data);
    return true;
  }
  return false;
}

function connect(c, rate) {
  setStatus("busy", "Connecting…");
  let ws;
  try {
    ws = token ? new WebSocket(wsURL, ["voiced", `bearer.${token}`]) : new WebSocket(wsURL);
  } catch (err) {
    fail(`Bad WebSocket URL ${wsURL}: ${err.message}`);
    return;
  }
  ws.binaryType = "arraybuffer";
  c.ws = ws;

  ws.onopen = () => {
    c.opened = true;
    state.connected = true;
    setControls("live");
    setStatus("busy", "Waiting for the agent…");
    log("client", "open", wsURL);
    const startMsg = { type: "start", sample_rate: rate, output_sample_rate: rate };
    ws.send(JSON.stringify(startMsg));
    log("client", "start", `sample_rate=${rate}  output_sample_rate=${rate}`);
  };

  ws.onmessage = (e) => {
    if (typeof e.data !== "string") {
      const buf = e.data;
      state.audioBytesReceived += buf.byteLength;
      if (c.playback && !c.closing) c.playback.port.postMessage({ type: "pcm", data: buf }, [buf]);
      return;
    }
    let ev;
    try {
      ev = JSON.parse(e.data);
    } catch {
      log("client", "bad-event", e.data.slice(0, 200));
      return;
    }
    if (ev && typeof ev.type === "string") onEvent(ev);
  };

  ws.onclose = (e) => {
    state.connected = false;
    state.ready = false;
    state.closeCode = e.code;
    state.closeReason = e.reason;
    const meaning = CLOSE_MEANINGS[e.code] || "closed";
    log("client", "close", `${e.code} ${meaning}${e.reason ? `: ${e.reason}` : ""}`);
    if (call !== c) return; // we hung up ourselves; already cleaned up

    if (e.code === 1000) {
      setStatus("idle", `Ended${e.reason ? ` (${e.reason})` : ""}`);
    } else if (!c.opened) {
      setStatus("error", "Disconnected");
      showAlert(`Could not connect to ${wsURL} (close ${e.code}). Is the server running?`);
    } else {
      setStatus("error", "Disconnected");
      const prior = ui.alert.hidden ? "" : `${ui.alert.textContent} — `;
      showAlert(`${prior}Connection closed: ${e.code} ${meaning}${e.reason ? ` (“${e.reason}”)` : ""}`);
    }
    // Let queued speech play out (a server "end" closes after sending it all).
    teardown({ drain: true });
  };
}

function micError(err) {
  switch (err && err.name) {
    case "NotAllowedError":
      return "Microphone permission was denied. Allow it in the address bar and press Start again.";
    case "NotFoundError":
      return "No microphone was found.";
    case "NotReadableError":
      return "The microphone is in use by another application.";
    default:
      return `Could not start audio: ${err && err.message ? err.message : err}`;
  }
}

function fail(message) {
  showAlert(message);
  log("client", "error", message);
  teardown({ drain: false });
  setStatus("error", "Error");
}

function cleanupMedia(c) {
  if (c.stream) c.stream.getTracks().forEach((t) => t.stop());
  if (c.ctx && c.ctx.state !== "closed") c.ctx.close().catch(() => {});
}

// teardown ends the call: the mic stops at once; with drain the speakers
// finish what is queued (bounded) before the audio context closes.
function teardown({ drain }) {
  const c = call;
  if (!c) return;
  call = null;
  c.closing = true;
  if (c.stream) c.stream.getTracks().forEach((t) => t.stop());
  if (c.capture) c.capture.disconnect();
  if (c.ws && c.ws.readyState <= WebSocket.OPEN) c.ws.close(1000, "client stop");
  for (const t of c.timers) clearInterval(t);
  if (c.pc) {
    // Give an "end" sent just before a moment to leave.
    const pc = c.pc;
    setTimeout(() => pc.close(), 200);
  }
  if (c.resource) {
    // WHIP: end the session's resource too (the server also notices the
    // peer connection closing).
    const res = c.resource;
    setTimeout(() => fetch(res, { method: "DELETE", headers: authHeaders({}), keepalive: true }).catch(() => {}), 200);
  }
  if (c.audioEl) c.audioEl.srcObject = null;
  setSpeaking(ui.userSpeaker, false);
  setLevel(ui.userLevel, 0);
  setControls("idle");

  const finish = () => {
    if (!call) {
      // No newer call owns the indicators.
      setSpeaking(ui.botSpeaker, false);
      setLevel(ui.botLevel, 0);
    }
    if (c.ctx.state !== "closed") c.ctx.close().catch(() => {});
  };
  if (!drain || !c.playback) {
    if (c.playback) c.playback.port.postMessage({ type: "clear" });
    finish();
    return;
  }
  const deadline = performance.now() + 30000;
  c.playback.port.onmessage = (e) => {
    const { peak, buffered } = e.data;
    if (peak > state.playedPeak) state.playedPeak = peak;
    setLevel(ui.botLevel, peak);
    if (buffered === 0 || performance.now() > deadline) finish();
  };
  // An idle worklet sends no reports, so ask for one.
  c.playback.port.postMessage({ type: "report" });
  setTimeout(() => { if (c.ctx.state !== "closed") finish(); }, 30000);
}

function stop() {
  const c = call;
  if (!c) return;
  log("client", "stop", "hung up");
  sendJSON(c, { type: "end" });
  teardown({ drain: false });
  setStatus("idle", "Stopped");
}

// ---------------------------------------------------------------- wiring

ui.toggle.addEventListener("click", () => {
  if (call) stop();
  else start();
});

ui.textForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = ui.textInput.value.trim();
  if (!text || !call) return;
  if (new TextEncoder().encode(text).length > MAX_TEXT_BYTES) {
    showAlert(`That message is too long (the limit is ${MAX_TEXT_BYTES} bytes).`, "info");
    return;
  }
  if (!sendJSON(call, { type: "text", text })) return;
  log("client", "text", JSON.stringify(text));
  ui.textInput.value = "";
});

window.addEventListener("pagehide", () => {
  if (call && call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.close(1000, "page closed");
  if (call && call.pc) call.pc.close();
});

if (params.get("transport") === "webrtc") ui.transport.value = "webrtc";
setControls("idle");
if (params.get("autostart") === "1") start();
