// End-to-end test of the voiced web demo over WebRTC, in headless Chromium.
//
// It loads the demo with ?autostart=1&transport=webrtc while Chromium's fake
// microphone plays a WAV file of speech. It passes when:
//   1. a final transcript of the speech came back on the "events" data
//      channel, reply audio arrived (RTP bytes received, from getStats) and
//      was rendered (the AnalyserNode on the remote track saw a level);
//   2. a typed request for a long answer starts the bot speaking, and a
//      typed interruption brings `interrupted`, after which the page's
//      output level (measured 30-80 ms later) is silence, and the bot's
//      track as received falls silent within 1 s: barge-in clears playback
//      (the server stops sending; the page mutes what the browser's jitter
//      buffer still holds). The server should delay its answers (run.sh --webrtc
//      sets the scripted model's first_token_delay) so that the answer to
//      the interruption does not fill the silence.
//
// Usually started by run.sh --webrtc, which runs the server and makes the WAV:
//
//	node webrtc.test.mjs --url 'http://127.0.0.1:PORT/?autostart=1&transport=webrtc' --wav speech.wav --out ../out
//
// Options: --chromium PATH (default /usr/bin/chromium), --timeout-ms N (wait
// for the spoken turn, default 30000), --loop (the fake microphone repeats
// the WAV). Prints one line of JSON; exits 1 on
// failure after printing the page's console log and voicedState to stderr.

import { chromium } from "playwright-core";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";

const { values: opt } = parseArgs({
  options: {
    url: { type: "string" },
    wav: { type: "string" },
    out: { type: "string", default: "e2e/out" },
    chromium: { type: "string", default: "/usr/bin/chromium" },
    "timeout-ms": { type: "string", default: "30000" },
    loop: { type: "boolean", default: false },
  },
});
if (!opt.url || !opt.wav) {
  console.error("usage: node webrtc.test.mjs --url URL --wav FILE [--out DIR] [--chromium PATH] [--timeout-ms N]");
  process.exit(2);
}
const wav = resolve(opt.wav);
if (!existsSync(wav)) {
  console.error(`webrtc.test: no such WAV file: ${wav}`);
  process.exit(2);
}
const turnTimeoutMs = Number(opt["timeout-ms"]);
const stepTimeoutMs = 15000;

const hardLimitMs = turnTimeoutMs + 3 * stepTimeoutMs + 45000;
const watchdog = setTimeout(() => {
  console.error(`webrtc.test: hard time limit of ${hardLimitMs} ms reached`);
  dumpAndExit(1);
}, hardLimitMs);

const consoleLines = [];
const started = Date.now();
const since = () => Date.now() - started;
const userDataDir = mkdtempSync(join(tmpdir(), "voiced-e2e-chromium-"));
let context = null;
let page = null;

async function dumpAndExit(code) {
  clearTimeout(watchdog);
  if (code !== 0) {
    console.error("---- page console ----");
    for (const l of consoleLines) console.error(l);
    if (page) {
      const st = await page.evaluate(() => window.voicedState).catch(() => null);
      console.error("---- voicedState ----");
      console.error(JSON.stringify(st));
    }
  }
  if (context) await Promise.race([context.close().catch(() => {}), new Promise((r) => setTimeout(r, 5000))]);
  rmSync(userDataDir, { recursive: true, force: true });
  process.exit(code);
}

function fail(msg, extra = {}) {
  console.log(JSON.stringify({ ok: false, error: msg, elapsed_ms: since(), ...extra }));
  return dumpAndExit(1);
}

const waitState = (fn, arg, timeout) =>
  page.waitForFunction(fn, arg, { timeout, polling: 50 }).then(() => true, () => false);

async function typeText(text) {
  await page.fill("#text-input", text, { timeout: 5000 });
  await page.press("#text-input", "Enter", { timeout: 5000 });
}

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: opt.chromium,
    headless: true,
    timeout: 30000,
    viewport: { width: 1280, height: 900 },
    permissions: ["microphone"],
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--use-fake-ui-for-media-stream",
      "--use-fake-device-for-media-stream",
      `--use-file-for-fake-audio-capture=${wav}${opt.loop ? "" : "%noloop"}`,
      "--autoplay-policy=no-user-gesture-required",
      // A local pion server: allow loopback candidates and show real IPs.
      "--allow-loopback-in-peer-connection",
      "--disable-features=WebRtcHideLocalIpsWithMdns",
    ],
  });
  page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => consoleLines.push(`[${since()} ms] ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`[${since()} ms] pageerror: ${e.message}`));

  const resp = await page.goto(opt.url, { waitUntil: "load", timeout: 15000 });
  if (!resp || !resp.ok()) await fail(`loading ${opt.url}: HTTP ${resp ? resp.status() : "no response"}`);

  // 1. The spoken turn.
  const spoken = await waitState(
    () => {
      const s = window.voicedState;
      return (
        s &&
        s.transport === "webrtc" &&
        s.transcripts.some((t) => t.final && t.text.trim() !== "") &&
        s.audioBytesReceived > 0 &&
        s.playedPeak > 0.01
      );
    },
    null,
    turnTimeoutMs,
  );
  if (!spoken) {
    const s = await page.evaluate(() => window.voicedState).catch(() => null);
    const missing = [];
    if (!s) missing.push("window.voicedState");
    else {
      if (s.transport !== "webrtc") missing.push(`transport webrtc (is ${s.transport})`);
      if (!s.transcripts.some((t) => t.final && t.text.trim() !== "")) missing.push("final transcript");
      if (!(s.audioBytesReceived > 0)) missing.push("reply audio received");
      if (!(s.playedPeak > 0.01)) missing.push(`reply audio rendered (playedPeak ${s.playedPeak})`);
    }
    await fail(`spoken turn incomplete after ${turnTimeoutMs} ms`, { missing });
  }
  const spokenMs = since();
  await waitState(() => window.voicedState.metrics.length > 0, null, 5000);

  // 2. Barge-in: once the first answer is over, a long answer, then a
  // typed interruption.
  const idle = await waitState(
    () => {
      const n = (type) => window.voicedState.events.filter((t) => t === type).length;
      return n("bot_stopped_speaking") >= n("bot_started_speaking");
    },
    null,
    stepTimeoutMs,
  );
  if (!idle) await fail("the first answer did not end");
  const before = await page.evaluate(() => ({
    started: window.voicedState.events.filter((t) => t === "bot_started_speaking").length,
  }));
  await typeText("tell me a story");
  const storyStarted = await waitState(
    (n) => window.voicedState.events.filter((t) => t === "bot_started_speaking").length > n && window.voicedState.botLevel > 0.01,
    before.started,
    stepTimeoutMs,
  );
  if (!storyStarted) await fail("the long answer did not start playing");
  await page.waitForTimeout(1000);
  // Interrupt while a word is audible, not in a pause between two.
  await waitState(() => window.voicedState.botLevel > 0.05, null, 3000);
  const { levelBefore, interruptions } = await page.evaluate(() => ({
    levelBefore: window.voicedState.botLevel,
    interruptions: window.voicedState.interruptedCount,
  }));
  if (!(levelBefore > 0.01)) await fail(`the long answer was not playing before the interruption (level ${levelBefore})`);
  await typeText("stop");
  const interrupted = await waitState((n) => window.voicedState.interruptedCount > n, interruptions, stepTimeoutMs);
  if (!interrupted) await fail("no interrupted event after the typed interruption");
  const tInterrupted = since();
  // What the browser receives falls silent too: the server stopped sending
  // (run.sh --webrtc delays answers, so the next one cannot fill the gap).
  const rxSilent = await waitState(() => window.voicedState.rxLevel < 0.001, null, 1000);
  if (!rxSilent) await fail("the bot's track was still audible 1 s after `interrupted`");
  const rxSilentMs = since() - tInterrupted;
  const measured = await waitState(() => window.voicedState.levelAfterInterrupt !== null, null, 2000);
  if (!measured) await fail("no output level was measured after `interrupted`");
  const levelAfter = await page.evaluate(() => window.voicedState.levelAfterInterrupt);
  if (!(levelAfter < 0.001)) await fail(`the bot's audio kept playing after \`interrupted\` (level ${levelAfter})`);

  const errs = consoleLines.filter((l) => / pageerror: /.test(l));
  if (errs.length > 0) await fail("the page threw uncaught errors", { page_errors: errs });

  mkdirSync(opt.out, { recursive: true });
  const shot = join(opt.out, "demo-webrtc.png");
  await page.screenshot({ path: shot, fullPage: true, timeout: 10000 });

  const s = await page.evaluate(() => window.voicedState);
  console.log(
    JSON.stringify({
      ok: true,
      url: opt.url,
      transport: s.transport,
      session_id: s.sessionId,
      final_transcripts: s.transcripts.filter((t) => t.final).map((t) => t.text),
      bot_texts: s.botTexts,
      audio_bytes_received: s.audioBytesReceived,
      audio_bytes_sent: s.audioBytesSent,
      played_peak: Number(s.playedPeak.toFixed(4)),
      level_before_interrupt: Number(levelBefore.toFixed(4)),
      level_after_interrupt: levelAfter,
      received_silent_after_interrupt_ms: rxSilentMs,
      interrupted: s.interruptedCount,
      voice_to_voice_ms: s.metrics.map((m) => m.voice_to_voice_ms),
      spoken_turn_ms: spokenMs,
      elapsed_ms: since(),
      screenshot: shot,
    }),
  );
  await dumpAndExit(0);
} catch (err) {
  await fail(`${err && err.message ? err.message.split("\n")[0] : err}`);
}
