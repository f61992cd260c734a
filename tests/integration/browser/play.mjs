#!/usr/bin/env node
// play.mjs BASE_URL TRACK_ID OUTDIR
//
// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// no browser is downloaded) plays BASE_URL/stream/TRACK_ID through a
// same-origin <audio> element: play() until currentTime > 1 s (paused there
// for the first screenshot), seek to ~70% of the duration, play on past the
// seek point, pause (second screenshot).
// Every request the page makes to /stream/TRACK_ID is recorded with its
// Range header and the answer's status and Content-Range.
//
// Prints one JSON summary on stdout:
//   {ok, played, duration, played_to, seeked_to, currentTime_after, errors,
//    console_errors, requests, ranges_seen, screenshots, failure}
// and saves screenshots into OUTDIR. Exit status: 0 when playback and the
// seek worked with no media error, 1 otherwise (the reason is in "failure"
// and on stderr), 2 on a usage error.
//
// Environment: CHROMIUM (default /usr/bin/chromium), PLAY_TIMEOUT_MS (per
// wait, default 20000), SEEK_FRACTION (default 0.7).

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const [baseArg, trackId, outDir] = process.argv.slice(2);
if (!baseArg || !trackId || !outDir) {
  process.stderr.write('usage: node play.mjs BASE_URL TRACK_ID OUTDIR\n');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const waitMs = Number(process.env.PLAY_TIMEOUT_MS || 20000);
const seekFraction = Number(process.env.SEEK_FRACTION || 0.7);
const streamPath = `/stream/${encodeURIComponent(trackId)}`;
const safeId = String(trackId).replace(/[^A-Za-z0-9_.-]/g, '_');

const summary = {
  ok: false,
  url: base + streamPath,
  played: false,
  duration: null,
  played_to: null,
  seeked_to: null,
  currentTime_after: null,
  errors: [],
  console_errors: [],
  requests: [],
  ranges_seen: [],
  screenshots: [],
  failure: null,
};

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };

function isStream(u) {
  try {
    const url = new URL(u);
    return url.origin === new URL(base).origin && url.pathname === streamPath;
  } catch {
    return false;
  }
}

async function shot(page, name) {
  const file = path.join(outDir, `${safeId}-${name}.png`);
  try {
    await page.screenshot({ path: file });
    summary.screenshots.push(file);
  } catch (e) {
    summary.errors.push(`screenshot ${name}: ${e.message}`);
  }
}

// Polls the page until pred(state) holds; fails with msg after waitMs.
async function waitState(page, pred, msg) {
  const deadline = Date.now() + waitMs;
  let st;
  for (;;) {
    st = await page.evaluate(() => window.__talas.state());
    if (st.error) fail(`media error while ${msg}: ${st.error}`);
    if (pred(st)) return st;
    if (Date.now() > deadline) fail(`timed out after ${waitMs} ms ${msg} (state: ${JSON.stringify(st)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let browser;
let userDataDir;
let exitCode = 1;
try {
  fs.mkdirSync(outDir, { recursive: true });
  if (!fs.existsSync(executablePath)) fail(`${executablePath} not found (apt-get install chromium)`);
  userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'talas-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--mute-audio',
      // the harness picks free ports; never let Chromium's unsafe-port list refuse one
      `--explicitly-allowed-ports=${new URL(base).port || 80}`,
    ],
    viewport: { width: 800, height: 360 },
  });
  browser = context;
  const page = context.pages()[0] || (await context.newPage());

  // Network events: every request to the stream, its Range header, and the
  // status and Content-Range of the answer.
  const byRequest = new Map();
  page.on('request', (req) => {
    if (!isStream(req.url())) return;
    const rec = {
      method: req.method(),
      url: req.url(),
      range: req.headers()['range'] ?? null,
      resource_type: req.resourceType(),
      status: null,
      content_range: null,
      content_type: null,
    };
    byRequest.set(req, rec);
    summary.requests.push(rec);
  });
  page.on('response', async (res) => {
    const rec = byRequest.get(res.request());
    if (!rec) return;
    rec.status = res.status();
    try {
      const rh = await res.request().allHeaders();
      if (rh['range'] !== undefined) rec.range = rh['range'];
      const h = await res.allHeaders();
      rec.content_range = h['content-range'] ?? null;
      rec.content_type = h['content-type'] ?? null;
    } catch (e) {
      // the request may be gone already (cancelled by a seek)
      const h = res.headers();
      rec.content_range = h['content-range'] ?? null;
      rec.content_type = h['content-type'] ?? null;
    }
  });
  page.on('requestfailed', (req) => {
    const rec = byRequest.get(req);
    if (rec) rec.failed = req.failure()?.errorText ?? 'failed';
  });
  page.on('pageerror', (e) => summary.errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const where = m.location()?.url || '';
    if (/\/favicon\.ico$/.test(where)) return;
    summary.console_errors.push(`${m.text()}${where ? ' (' + where + ')' : ''}`);
  });

  // A same-origin page: load a small JSON answer of the server, then replace
  // the document with the player.
  const health = await page.goto(`${base}/api/health`, { waitUntil: 'load', timeout: waitMs });
  if (!health || !health.ok()) fail(`GET ${base}/api/health answered ${health ? health.status() : 'nothing'}`);
  await page.evaluate(({ src, id }) => {
    document.documentElement.innerHTML = `
      <head><title>Talas browser test</title>
      <style>
        body { font: 14px sans-serif; margin: 16px; background: #fafafa; }
        audio { width: 100%; margin: 12px 0; }
        #state { font-family: monospace; white-space: pre; }
      </style></head>
      <body>
        <h3>Talas: track ${id.replace(/[<>&]/g, '')}</h3>
        <audio id="player" controls preload="auto"></audio>
        <div id="state"></div>
      </body>`;
    const a = document.getElementById('player');
    const events = [];
    let error = null;
    const show = () => {
      document.getElementById('state').textContent =
        `src: ${src}\ncurrentTime: ${a.currentTime.toFixed(2)} / ${(a.duration || 0).toFixed(2)} s\n` +
        `paused: ${a.paused}  readyState: ${a.readyState}  networkState: ${a.networkState}\n` +
        `error: ${error || 'none'}\nevents: ${events.slice(-8).join(' ')}`;
    };
    for (const ev of ['loadstart', 'loadedmetadata', 'canplay', 'playing', 'waiting',
      'seeking', 'seeked', 'pause', 'ended', 'stalled', 'error']) {
      a.addEventListener(ev, () => {
        events.push(ev);
        if (ev === 'error') {
          const e = a.error;
          error = e ? `code ${e.code}${e.message ? ': ' + e.message : ''}` : 'unknown';
        }
        show();
      });
    }
    // Pause as soon as playback passes pauseAfter (from the event itself, so a
    // slow test driver cannot let a short track run on before the seek).
    let pauseAfter = null;
    let pausedAt = null;
    a.addEventListener('timeupdate', () => {
      if (pauseAfter !== null && a.currentTime > pauseAfter) {
        pauseAfter = null;
        a.pause();
        pausedAt = a.currentTime;
      }
      show();
    });
    window.__talas = {
      pauseAfter: (t) => { pauseAfter = t; pausedAt = null; },
      state: () => ({
        currentTime: a.currentTime,
        duration: a.duration,
        paused: a.paused,
        readyState: a.readyState,
        networkState: a.networkState,
        error,
        pausedAt,
        events: events.slice(),
      }),
    };
    a.src = src;
    show();
  }, { src: streamPath, id: String(trackId) });

  await waitState(page, (s) => s.readyState >= 1 && Number.isFinite(s.duration) && s.duration > 0,
    'loading the metadata');
  const play = async () => {
    const err = await page.evaluate(() =>
      document.getElementById('player').play().then(() => null, (e) => `${e.name}: ${e.message}`));
    if (err) fail(`play() was rejected: ${err}`);
  };
  await page.evaluate(() => window.__talas.pauseAfter(1));
  await play();

  let st = await waitState(page, (s) => s.pausedAt !== null, 'waiting for currentTime > 1 s');
  summary.played = true;
  summary.duration = st.duration;
  summary.played_to = st.pausedAt;
  await shot(page, 'playing');

  const target = Math.floor(st.duration * seekFraction * 10) / 10;
  if (!(target > st.currentTime + 0.3)) {
    fail(`track too short to seek forward (duration ${st.duration} s, at ${st.currentTime} s)`);
  }
  // Short tracks: "past the seek point" is half-way to the end, at most 0.5 s.
  const beyond = target + Math.min(0.5, (st.duration - target) / 2);
  summary.seeked_to = target;
  await page.evaluate((t) => { document.getElementById('player').currentTime = t; }, target);
  await play();
  st = await waitState(page, (s) => s.events.includes('seeked') && s.currentTime > beyond,
    `waiting for playback past the seek point ${target} s (to ${beyond.toFixed(2)} s)`);
  await page.evaluate(() => document.getElementById('player').pause());
  st = await page.evaluate(() => window.__talas.state());
  summary.currentTime_after = st.currentTime;
  await shot(page, 'seeked');
  if (st.error) fail(`media error: ${st.error}`);
  // Let the network events of a cancelled loader settle.
  await new Promise((r) => setTimeout(r, 300));
  summary.ok = true;
  exitCode = 0;
} catch (e) {
  summary.failure = e instanceof Failure ? e.message : `${e.name}: ${e.message}`;
  summary.errors.push(summary.failure);
  process.stderr.write(`play.mjs: FAIL: ${summary.failure}\n`);
} finally {
  summary.ranges_seen = summary.requests
    .filter((r) => r.range)
    .map((r) => ({ range: r.range, status: r.status, content_range: r.content_range }));
  if (browser) await browser.close().catch(() => {});
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
}
process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
process.exit(exitCode);
