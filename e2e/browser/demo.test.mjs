// End-to-end test of the voiced web demo in headless Chromium.
//
// It loads the demo with ?autostart=1 while Chromium's fake microphone plays a
// WAV file of speech, and passes when the page has shown a final transcript
// and has received and actually rendered reply audio. Then it sends a typed
// message and checks the server echoes it as a final transcript.
//
// Usually started by run.sh, which runs the server and makes the WAV:
//
//	node demo.test.mjs --url http://127.0.0.1:PORT/?autostart=1 --wav speech.wav --out ../out
//
// Options: --chromium PATH (default /usr/bin/chromium), --timeout-ms N (wait
// for the spoken turn, default 30000), --loop (the fake microphone repeats
// the WAV; by default it plays it once and then silence, so a slow answer is
// not interrupted by the speech coming round again). Prints one line of
// JSON; exits 1 on failure after printing the page's console log and
// voicedState to stderr.

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
  console.error("usage: node demo.test.mjs --url URL --wav FILE [--out DIR] [--chromium PATH] [--timeout-ms N]");
  process.exit(2);
}
const wav = resolve(opt.wav);
if (!existsSync(wav)) {
  console.error(`demo.test: no such WAV file: ${wav}`);
  process.exit(2);
}
const turnTimeoutMs = Number(opt["timeout-ms"]);
const textTimeoutMs = 10000;
const TYPED = "please say something short";

// Watchdog: whatever hangs (browser launch, a navigation), the test ends.
const hardLimitMs = turnTimeoutMs + textTimeoutMs + 45000;
const watchdog = setTimeout(() => {
  console.error(`demo.test: hard time limit of ${hardLimitMs} ms reached`);
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
    ],
  });
  page = context.pages()[0] || (await context.newPage());
  page.on("console", (m) => consoleLines.push(`[${since()} ms] ${m.type()}: ${m.text()}`));
  page.on("pageerror", (e) => consoleLines.push(`[${since()} ms] pageerror: ${e.message}`));
  page.on("requestfailed", (r) => consoleLines.push(`[${since()} ms] requestfailed: ${r.url()} ${r.failure()?.errorText}`));

  const resp = await page.goto(opt.url, { waitUntil: "load", timeout: 15000 });
  if (!resp || !resp.ok()) await fail(`loading ${opt.url}: HTTP ${resp ? resp.status() : "no response"}`);

  // 1. The spoken turn: a final transcript, and reply audio received and rendered.
  const spoken = await page
    .waitForFunction(
      () => {
        const s = window.voicedState;
        return (
          s &&
          s.transcripts.some((t) => t.final && t.text.trim() !== "") &&
          s.audioBytesReceived > 0 &&
          s.playedPeak > 0.01
        );
      },
      null,
      { timeout: turnTimeoutMs, polling: 100 },
    )
    .then(() => true, () => false);
  if (!spoken) {
    const s = await page.evaluate(() => window.voicedState).catch(() => null);
    const missing = [];
    if (!s) missing.push("window.voicedState");
    else {
      if (!s.transcripts.some((t) => t.final && t.text.trim() !== "")) missing.push("final transcript");
      if (!(s.audioBytesReceived > 0)) missing.push("reply audio received");
      if (!(s.playedPeak > 0.01)) missing.push(`reply audio rendered (playedPeak ${s.playedPeak})`);
    }
    await fail(`spoken turn incomplete after ${turnTimeoutMs} ms`, { missing });
  }
  const spokenMs = since();

  // Best effort: let the turn's metrics arrive so the screenshot shows them.
  await page
    .waitForFunction(() => window.voicedState.metrics.length > 0, null, { timeout: 5000, polling: 100 })
    .catch(() => {});

  // 2. Typed text is echoed as a final transcript.
  await page.fill("#text-input", TYPED, { timeout: 5000 });
  await page.press("#text-input", "Enter", { timeout: 5000 });
  const echoed = await page
    .waitForFunction(
      (text) => window.voicedState.transcripts.some((t) => t.final && t.text === text),
      TYPED,
      { timeout: textTimeoutMs, polling: 100 },
    )
    .then(() => true, () => false);
  if (!echoed) await fail(`typed text was not echoed as a final transcript within ${textTimeoutMs} ms`);

  const errs = consoleLines.filter((l) => / pageerror: /.test(l));
  if (errs.length > 0) await fail("the page threw uncaught errors", { page_errors: errs });

  mkdirSync(opt.out, { recursive: true });
  const shot = join(opt.out, "demo.png");
  await page.screenshot({ path: shot, fullPage: true, timeout: 10000 });

  const s = await page.evaluate(() => window.voicedState);
  console.log(
    JSON.stringify({
      ok: true,
      url: opt.url,
      session_id: s.sessionId,
      sample_rate: s.sampleRate,
      final_transcripts: s.transcripts.filter((t) => t.final).map((t) => t.text),
      bot_texts: s.botTexts,
      audio_bytes_received: s.audioBytesReceived,
      played_peak: Number(s.playedPeak.toFixed(4)),
      interrupted: s.interruptedCount,
      voice_to_voice_ms: s.metrics.map((m) => m.voice_to_voice_ms),
      events: s.events.length,
      spoken_turn_ms: spokenMs,
      elapsed_ms: since(),
      screenshot: shot,
    }),
  );
  await dumpAndExit(0);
} catch (err) {
  await fail(`${err && err.message ? err.message.split("\n")[0] : err}`);
}
