#!/usr/bin/env node
// hls.mjs BASE_URL MASTER_PATH OUTDIR
//
// Headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core;
// no browser is downloaded) plays BASE_URL + MASTER_PATH with hls.js (from
// node_modules/hls.js, loaded into a same-origin page) through an <audio>
// element: plays until currentTime > 2.5 s, then switches to another rung
// mid-playback (hls.nextLevel: a seamless switch), and plays on until
// fragments of the new rung have played for 3 s.
//
// Every 50 ms the page records (wall clock, currentTime); a gap is any
// interval of more than GAP_MS after the switch request where playback did
// not advance while it was not paused, and every "waiting" event after it
// counts too (hls.js's own start-up is reported as waiting_before_switch).
//
// Prints one JSON summary on stdout:
//   {ok, levels, start_level, switched_to, played_to, waiting_events,
//    longest_stall_ms, level_switches, fragments, hls_errors, media_error,
//    screenshots, failure}
// and saves a screenshot into OUTDIR. Exit status: 0 when playback and the
// switch worked without a gap or error, 1 otherwise, 2 on a usage error.
//
// Environment: CHROMIUM (default /usr/bin/chromium), PLAY_TIMEOUT_MS (per
// wait, default 30000), GAP_MS (default 400).

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';

const [baseArg, masterPath, outDir] = process.argv.slice(2);
if (!baseArg || !masterPath || !outDir) {
  process.stderr.write('usage: node hls.mjs BASE_URL MASTER_PATH OUTDIR\n');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
const waitMs = Number(process.env.PLAY_TIMEOUT_MS || 30000);
const gapMs = Number(process.env.GAP_MS || 400);
const require = createRequire(import.meta.url);
const hlsPath = require.resolve('hls.js/dist/hls.min.js');

const summary = {
  ok: false,
  url: base + masterPath,
  levels: [],
  start_level: null,
  switched_to: null,
  played_to: null,
  waiting_events: 0,
  longest_stall_ms: null,
  level_switches: [],
  fragments: [],
  hls_errors: [],
  media_error: null,
  screenshots: [],
  failure: null,
};

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };

async function waitState(page, pred, msg) {
  const deadline = Date.now() + waitMs;
  let st;
  for (;;) {
    st = await page.evaluate(() => window.__hls_state());
    if (st.media_error) fail(`media error while ${msg}: ${st.media_error}`);
    if (st.fatal) fail(`fatal hls.js error while ${msg}: ${st.fatal}`);
    if (pred(st)) return st;
    if (Date.now() > deadline) fail(`timed out after ${waitMs} ms ${msg} (state: ${JSON.stringify(st).slice(0, 2000)})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

let context;
let exitCode = 1;
try {
  fs.mkdirSync(outDir, { recursive: true });
  if (!fs.existsSync(executablePath)) fail(`${executablePath} not found (apt-get install chromium)`);
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'talas-chromium-'));
  context = await chromium.launchPersistentContext(userDataDir, {
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
      `--explicitly-allowed-ports=${new URL(base).port || 80}`,
    ],
    viewport: { width: 800, height: 360 },
  });
  const page = context.pages()[0] || (await context.newPage());
  // a same-origin document: the page's requests go to Talas without CORS
  const st0 = await page.goto(base + '/api/health');
  if (!st0 || st0.status() !== 200) fail(`GET /api/health: ${st0 && st0.status()}`);
  await page.setContent('<!doctype html><title>Talas HLS test</title><audio id="a" controls></audio>');
  await page.addScriptTag({ path: hlsPath });
  const supported = await page.evaluate(() => window.Hls && window.Hls.isSupported());
  if (!supported) fail('hls.js says MSE is not supported in this Chromium');

  await page.evaluate(({ url, gap }) => {
    const audio = document.getElementById('a');
    const s = {
      levels: [], start_level: null, switches: [], fragments: [], errors: [], fatal: null,
      media_error: null, waiting_at: [], samples: [], parsed: false, from: 0,
    };
    const hls = new window.Hls({ enableWorker: false });
    window.__hls = hls;
    hls.on(window.Hls.Events.MANIFEST_PARSED, (_, d) => {
      s.parsed = true;
      s.levels = d.levels.map((l) => ({ bitrate: l.bitrate, name: l.name, codecs: l.audioCodec || l.codecs || null }));
      audio.play().catch((e) => { s.media_error = `play(): ${e.message}`; });
    });
    hls.on(window.Hls.Events.LEVEL_SWITCHED, (_, d) => { s.switches.push({ level: d.level, at: audio.currentTime }); });
    hls.on(window.Hls.Events.FRAG_LOADED, (_, d) => {
      s.fragments.push({ level: d.frag.level, sn: d.frag.sn, start: d.frag.start, duration: d.frag.duration });
    });
    hls.on(window.Hls.Events.ERROR, (_, d) => {
      s.errors.push(`${d.type}/${d.details}${d.fatal ? ' (fatal)' : ''}`);
      if (d.fatal) s.fatal = `${d.type}/${d.details}`;
    });
    audio.addEventListener('waiting', () => {
      if (audio.currentTime > 0.2) s.waiting_at.push(audio.currentTime);
    });
    audio.addEventListener('error', () => { s.media_error = audio.error ? `code ${audio.error.code}: ${audio.error.message}` : 'error'; });
    setInterval(() => { s.samples.push([performance.now(), audio.currentTime, audio.paused]); }, 50);
    hls.loadSource(url);
    hls.attachMedia(audio);
    // gaps count from here on (the switch); hls.js's own start-up is reported apart
    window.__hls_from = (t) => { s.from = t; };
    window.__hls_state = () => {
      // the longest wall-clock interval in which playback did not advance,
      // once it had started
      let longest = 0, advancedAt = null, last = null;
      for (const [t, ct, paused] of s.samples) {
        if (ct <= Math.max(0.2, s.from) || paused) { advancedAt = null; last = ct; continue; }
        if (advancedAt === null || ct > last) advancedAt = t;
        else longest = Math.max(longest, t - advancedAt);
        last = ct;
      }
      return {
        parsed: s.parsed, levels: s.levels, switches: s.switches, fragments: s.fragments, errors: s.errors,
        fatal: s.fatal, media_error: s.media_error, waiting: s.waiting_at.filter((x) => x >= s.from).length,
        waiting_before: s.waiting_at.filter((x) => x < s.from).length, longest_stall_ms: longest,
        currentTime: audio.currentTime, paused: audio.paused, current_level: hls.currentLevel,
        buffered: Array.from({ length: audio.buffered.length }, (_, i) => [audio.buffered.start(i), audio.buffered.end(i)]),
      };
    };
  }, { url: base + masterPath, gap: gapMs });

  let st = await waitState(page, (s) => s.parsed && s.currentTime > 2.5, 'starting playback');
  summary.levels = st.levels;
  summary.start_level = st.current_level;
  if (st.levels.length < 2) fail(`the master playlist has ${st.levels.length} level(s)`);
  // switch to the rung furthest from the current one
  const target = st.current_level === 0 ? st.levels.length - 1 : 0;
  summary.switched_to = target;
  const switchAt = st.currentTime;
  await page.evaluate(([t, at]) => { window.__hls_from(at); window.__hls.nextLevel = t; }, [target, switchAt]);
  st = await waitState(page, (s) => s.switches.some((w) => w.level === target) &&
    s.fragments.some((f) => f.level === target) && s.currentTime > switchAt + 3 &&
    s.currentTime > Math.max(...s.switches.filter((w) => w.level === target).map((w) => w.at)) + 3,
  'playing on after the switch');
  await page.screenshot({ path: path.join(outDir, 'hls-after-switch.png') });
  summary.screenshots.push(path.join(outDir, 'hls-after-switch.png'));
  st = await page.evaluate(() => window.__hls_state());
  summary.played_to = st.currentTime;
  summary.waiting_events = st.waiting;
  summary.waiting_before_switch = st.waiting_before;
  summary.longest_stall_ms = st.longest_stall_ms;
  summary.level_switches = st.switches;
  summary.fragments = st.fragments;
  summary.hls_errors = st.errors;
  summary.buffered = st.buffered;
  if (st.waiting > 0) fail(`playback waited ${st.waiting} time(s) (a gap)`);
  if (st.longest_stall_ms > gapMs) fail(`playback stood still for ${Math.round(st.longest_stall_ms)} ms`);
  // hls.js aborts the old rung's loads itself when it switches; a stall
  // before the switch (start-up on a loaded machine) is reported, not failed
  const errors = st.errors.filter((e) => !e.endsWith('/aborted') && !e.endsWith('/bufferStalledError'));
  if (errors.length > 0) fail(`hls.js errors: ${errors.join(', ')}`);
  summary.ok = true;
  exitCode = 0;
} catch (e) {
  summary.failure = e instanceof Failure ? e.message : `${e.name}: ${e.message}`;
  process.stderr.write(`hls.mjs: ${summary.failure}\n`);
} finally {
  if (context) await context.close().catch(() => {});
}
process.stdout.write(JSON.stringify(summary) + '\n');
process.exit(exitCode);
