#!/usr/bin/env node
// webplayer.mjs BASE_URL OUTDIR desktop|mobile
//
// Drives the Talas web player (web/, served at BASE_URL/ from http.www_root)
// in Debian's headless Chromium (/usr/bin/chromium through playwright-core;
// no browser is downloaded), as a listener would: at a desktop viewport, or
// emulating a phone (playwright's 'Pixel 5': touch, 393 px wide).
//
//   load the page, wait for the track list and the realtime connection;
//   search; play the long track (time to the first timeupdate); seek on the
//   seek bar to ~70%; keyboard (desktop): arrow right, space twice; pause;
//   see ourselves in "listening now" and events injected with
//   POST /api/events (BACKEND_KEY) arrive in the live panel; play a 30 s
//   preview; continuous play from a short track into the next one, next and
//   previous buttons; switch to the adaptive quality and play HLS through
//   hls.js; make the master playlist fail and see the player fall back to
//   the progressive stream; optionally (MASTER_PID) reload the server and see the realtime
//   connection come back by itself.
//
// Checks the page never scrolls sideways and (mobile) that controls are at
// least 44 px. Prints one JSON summary on stdout and saves screenshots in
// OUTDIR; exit status 0 when every step worked, 1 otherwise ("failure").
//
// Environment: CHROMIUM, BACKEND_KEY, MASTER_PID, LONG_TITLE, HLS_TITLE,
// SHORT_TITLES (comma-separated, in list order), SEARCH, WAIT_MS (20000).
import path from 'node:path';
import { Failure, fail, helpers, launch, parseArgs } from './driver.mjs';

const { base, outDir, mode, mobile, waitMs } = parseArgs('webplayer.mjs');
const env = process.env;
const LONG = env.LONG_TITLE || 'Long Drive';
const HLS = env.HLS_TITLE || 'Ladder Song';
const SHORTS = (env.SHORT_TITLES || 'Alpha One,Beta Two,Gamma Three').split(',');
const SEARCH = env.SEARCH || 'short band';

const summary = {
  ok: false, mode, failure: null, steps: [],
  tracks_listed: 0, search: null, ws_connected: false,
  first_play_ms: null, played: null, waveform: null, seek: null, keyboard: null, paused: null,
  live: null, preview: null, continuous: null, adaptive: null, fallback: null, quality_change_paused: null,
  reconnect: null,
  horizontal_overflow: [], small_targets: [], requests: [], page_errors: [], console_errors: [],
  screenshots: [],
};

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const audioState = (page) => page.evaluate(() => {
  const a = document.getElementById('audio');
  return {
    src: a.currentSrc, t: a.currentTime, d: a.duration, paused: a.paused, ended: a.ended,
    error: a.error ? `code ${a.error.code} ${a.error.message}` : null,
    now: document.querySelector('[data-testid=now-playing]')?.textContent ?? '',
    source: document.querySelector('[data-testid=source]')?.textContent ?? '',
    rung: document.querySelector('[data-testid=rung]')?.textContent ?? null,
    fallback: document.querySelector('[data-testid=fallback]')?.textContent ?? null,
    media_error: document.querySelector('[data-testid=media-error]')?.textContent ?? null,
  };
});

const { until, shot, tapOrClick, step } = helpers({
  summary, outDir, mode, mobile, waitMs,
  detail: async (page) => ` (audio: ${JSON.stringify(await audioState(page).catch(() => null))})`,
});

async function noSidewaysScroll(page, where) {
  const m = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth, client: document.documentElement.clientWidth,
    body: document.body.scrollWidth,
  }));
  if (m.scroll > m.client || m.body > m.client) summary.horizontal_overflow.push({ where, ...m });
}

function row(page, title) {
  return page.locator('[data-testid=tracks] li').filter({ has: page.locator('.t-title', { hasText: title }) });
}

async function postEvent(event) {
  const r = await fetch(`${base}/api/events`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${env.BACKEND_KEY}` },
    body: JSON.stringify({ event }),
  });
  if (r.status !== 200) fail(`POST /api/events answered ${r.status}: ${await r.text()}`);
}

let browser;
let page;
let exitCode = 1;
try {
  ({ browser, page } = await launch({ base, outDir, mobile, summary }));
  const started = Date.now();
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (u.origin !== new URL(base).origin) return;
    if (!/^\/(stream|preview|hls|api)\//.test(u.pathname)) return;
    const rec = { method: req.method(), path: u.pathname, query: u.search, range: req.headers().range ?? null,
      status: null, at_ms: Date.now() - started };
    summary.requests.push(rec);
    req.response().then((res) => { if (res) rec.status = res.status(); }).catch(() => {});
  });

  await step('load', async () => {
    const res = await page.goto(base + '/', { waitUntil: 'load', timeout: waitMs });
    if (!res || !res.ok()) fail(`GET / answered ${res ? res.status() : 'nothing'}`);
    await page.locator('[data-testid=tracks] li').first().waitFor({ timeout: waitMs });
    await until(page, () => document.querySelector('[data-testid=ws-state]')?.dataset.state === 'connected',
      null, 'the realtime connection');
    summary.ws_connected = true;
    summary.tracks_listed = await page.locator('[data-testid=tracks] li').count();
    await noSidewaysScroll(page, 'list');
    await shot(page, 'list');
  });

  await step('search', async () => {
    const box = page.getByLabel('Search');
    await box.fill(SEARCH);
    const titles = await until(page, (q) => {
      const rows = [...document.querySelectorAll('[data-testid=tracks] li')];
      const words = q.toLowerCase().split(/\s+/);
      const text = rows.map((r) => r.textContent.toLowerCase());
      if (!rows.length || !text.every((t) => t.includes(words.join(' ')))) return false;
      return rows.map((r) => r.querySelector('.t-title').textContent);
    }, SEARCH, `the list filtered by "${SEARCH}"`);
    summary.search = { q: SEARCH, titles, count_text: await page.getByTestId('track-count').textContent() };
    await shot(page, 'search');
    await box.fill('');
    await until(page, (n) => document.querySelectorAll('[data-testid=tracks] li').length === n,
      summary.tracks_listed, 'the whole list back');
  });

  await step('play', async () => {
    await page.evaluate(() => {
      const w = window;
      w.__t0 = null; w.__t1 = null;
      document.addEventListener('click', () => { w.__t0 ??= performance.now(); }, { capture: true, once: true });
      document.addEventListener('touchstart', () => { w.__t0 ??= performance.now(); }, { capture: true, once: true });
      const a = document.getElementById('audio');
      const tu = () => { if (a.currentTime > 0) { w.__t1 ??= performance.now(); a.removeEventListener('timeupdate', tu); } };
      a.addEventListener('timeupdate', tu);
    });
    await tapOrClick(row(page, LONG).locator('.track-play'));
    await until(page, () => { const a = document.getElementById('audio'); return a.error || (a.currentTime > 1.5 && !a.paused); },
      null, 'the long track to play past 1.5 s');
    const st = await audioState(page);
    if (st.error || st.media_error) fail(`media error: ${st.error || st.media_error}`);
    const t = await page.evaluate(() => ({ t0: window.__t0, t1: window.__t1 }));
    summary.first_play_ms = t.t0 !== null && t.t1 !== null ? Math.round(t.t1 - t.t0) : null;
    summary.played = { ...st, elapsed_text: await page.getByTestId('elapsed').textContent(),
      total_text: await page.getByTestId('total').textContent() };
    await shot(page, 'playing');
  });

  await step('waveform', async () => {
    // the seek bar draws the playing track's peaks (GET /api/tracks/ID/peaks)
    const drawn = await until(page, () => {
      const svg = document.querySelector('[data-testid=seek] [data-testid=waveform]');
      const paths = svg ? [...svg.querySelectorAll('path')] : [];
      if (paths.length < 3) return false;
      const d = paths[0].getAttribute('d') || '';
      const r = svg.getBoundingClientRect();
      return { points: Number(svg.dataset.points), path_commands: (d.match(/[LH]/g) || []).length,
        played_clip: document.querySelector('#wave-played rect')?.getAttribute('width'),
        width: Math.round(r.width), height: Math.round(r.height) };
    }, null, 'the waveform drawn in the seek bar');
    const req = summary.requests.filter((q) => /^\/api\/tracks\/[^/]+\/peaks$/.test(q.path));
    summary.waveform = { ...drawn, requests: req.map((q) => ({ query: q.query, status: q.status })) };
    await shot(page, 'waveform');
  });

  await step('seek', async () => {
    const before = await audioState(page);
    const bar = page.getByTestId('seek');
    const box = await bar.boundingBox();
    const x = box.x + box.width * 0.7;
    const y = box.y + box.height / 2;
    if (mobile) await page.touchscreen.tap(x, y);
    else await page.mouse.click(x, y);
    const target = before.d * 0.65;
    await until(page, (tt) => { const a = document.getElementById('audio'); return a.error || (a.currentTime > tt + 1 && !a.paused); },
      target, 'playback past the seek point');
    const st = await audioState(page);
    if (st.error) fail(`media error after the seek: ${st.error}`);
    const buffered = await page.getByTestId('buffered').count();
    summary.seek = { duration: before.d, from: before.t, to: st.t, buffered_ranges_drawn: buffered,
      slider_value: await bar.getAttribute('aria-valuenow') };
  });

  if (!mobile) {
    await step('keyboard', async () => {
      await page.locator('body').click({ position: { x: 5, y: 5 } }).catch(() => {});
      await page.evaluate(() => document.activeElement?.blur());
      const t0 = await page.evaluate(() => document.getElementById('audio').currentTime);
      await page.keyboard.press('ArrowRight');
      const t1 = await page.evaluate(() => document.getElementById('audio').currentTime);
      await page.keyboard.press('Space');
      await until(page, () => document.getElementById('audio').paused, null, 'space to pause');
      await page.keyboard.press('Space');
      await until(page, () => !document.getElementById('audio').paused, null, 'space to play again');
      await page.keyboard.press('ArrowLeft');
      const t2 = await page.evaluate(() => document.getElementById('audio').currentTime);
      summary.keyboard = { before: t0, after_right: t1, after_left: t2, space_toggles: true };
    });
  }

  await step('pause', async () => {
    await tapOrClick(page.getByRole('button', { name: 'Pause' }));
    await until(page, () => document.getElementById('audio').paused, null, 'the pause');
    const t = await page.evaluate(() => document.getElementById('audio').currentTime);
    await sleep(500);
    const t2 = await page.evaluate(() => document.getElementById('audio').currentTime);
    if (t2 !== t) fail(`time went on while paused: ${t} -> ${t2}`);
    summary.paused = { at: t, button: await page.getByTestId('toggle').getAttribute('aria-label') };
    await shot(page, 'paused');
  });

  await step('live', async () => {
    if (mobile) await page.getByRole('complementary', { name: 'Live' }).scrollIntoViewIfNeeded();
    // our own Play went through the server and came back as PlaybackStarted
    await until(page, () => [...document.querySelectorAll('[data-testid=live-events] li')]
      .some((li) => li.dataset.event === 'PlaybackStarted'), null, 'our own PlaybackStarted event');
    const listeners = await page.getByTestId('listeners').textContent();
    const msg = `Hello from the ${mode} test ${Date.now()}`;
    if (env.BACKEND_KEY) {
      await postEvent({ event: 'ServerMessage', message: msg, level: 'Info' });
      await postEvent({ event: 'TrackLiked', track_id: await row(page, LONG).getAttribute('data-track-id'),
        user_id: 'fan-1', total_likes: 3 });
      await until(page, (m) => [...document.querySelectorAll('[data-testid=live-events] li')]
        .some((li) => li.dataset.event === 'ServerMessage' && li.textContent.includes(m)), msg, 'the ServerMessage');
      await until(page, () => [...document.querySelectorAll('[data-testid=live-events] li')]
        .some((li) => li.dataset.event === 'TrackLiked' && li.textContent.includes('fan-1')), null, 'the TrackLiked event');
    }
    const events = await page.locator('[data-testid=live-events] li').evaluateAll(
      (els) => els.map((e) => ({ event: e.dataset.event, text: e.textContent })));
    summary.live = { listeners, message: msg, events };
    await noSidewaysScroll(page, 'live');
    if (mobile) await page.getByRole('complementary', { name: 'Live' }).screenshot({ path: path.join(outDir, `${mode}-live-panel.png`) });
    await shot(page, 'live');
  });

  await step('preview', async () => {
    const r = row(page, LONG);
    await r.scrollIntoViewIfNeeded();
    await tapOrClick(r.locator('.track-preview'));
    await until(page, () => { const a = document.getElementById('audio');
      return a.error || (a.currentSrc.includes('/preview/') && a.currentTime > 0.5 && !a.paused); },
    null, 'the preview to play');
    const st = await audioState(page);
    if (st.error) fail(`media error in the preview: ${st.error}`);
    summary.preview = st;
    await tapOrClick(page.getByRole('button', { name: 'Pause' }));
  });

  await step('continuous', async () => {
    const first = row(page, SHORTS[0]);
    await first.scrollIntoViewIfNeeded();
    await tapOrClick(first.locator('.track-play'));
    await until(page, (t) => document.querySelector('[data-testid=now-playing]').textContent.includes(t) &&
      !document.getElementById('audio').paused, SHORTS[0], 'the first short track to play');
    // it ends after a few seconds, and the next one of the list plays
    await until(page, (t) => document.querySelector('[data-testid=now-playing]').textContent.includes(t) &&
      document.getElementById('audio').currentTime > 0.3, SHORTS[1], 'the next track to follow on its own', 30000);
    const auto = await audioState(page);
    await tapOrClick(page.getByRole('button', { name: 'Next track' }));
    await until(page, (t) => document.querySelector('[data-testid=now-playing]').textContent.includes(t),
      SHORTS[2], 'the Next button');
    await until(page, () => document.getElementById('audio').currentTime > 0.2, null, 'the next track to play');
    // Previous restarts a track that played over 3 s, else goes back one
    await tapOrClick(page.getByRole('button', { name: 'Previous track' }));
    await until(page, (t) => document.querySelector('[data-testid=now-playing]').textContent.includes(t),
      SHORTS[1], 'the Previous button');
    summary.continuous = { followed_by: SHORTS[1], auto, next: SHORTS[2], previous: SHORTS[1] };
    await tapOrClick(page.getByRole('button', { name: 'Pause' })).catch(() => {});
  });

  await step('adaptive', async () => {
    await page.getByLabel('Quality').selectOption('adaptive');
    const r = row(page, HLS);
    await r.scrollIntoViewIfNeeded();
    await tapOrClick(r.locator('.track-play'));
    await until(page, () => { const a = document.getElementById('audio');
      return a.error || (a.currentTime > 1.5 && !a.paused); }, null, 'HLS playback past 1.5 s', 30000);
    await until(page, () => /kbit\/s/.test(document.querySelector('[data-testid=rung]')?.textContent ?? ''),
      null, 'the current rung to show');
    const st = await audioState(page);
    if (st.error) fail(`media error in HLS: ${st.error}`);
    if (st.fallback) fail(`HLS fell back: ${st.fallback}`);
    // the player reports to its streaming session while it plays
    const reported = () => summary.requests.some((q) => q.method === 'POST' && q.status === 200 &&
      /^\/api\/streaming\/session\/[^/]+\/metrics$/.test(q.path));
    for (const deadline = Date.now() + 10000; !reported(); await sleep(100)) {
      if (Date.now() > deadline) fail('no metrics report reached the streaming session');
    }
    const segs = summary.requests.filter((q) => q.path.startsWith('/hls/') && q.path.endsWith('.m4s'));
    if (!segs.length) fail('no HLS segment was requested');
    summary.adaptive = { ...st, segments: segs.length,
      master: summary.requests.some((q) => q.path.endsWith('/master.m3u8')),
      session: summary.requests.some((q) => q.path === '/api/streaming/session' && q.method === 'POST'),
      metrics_reported: reported() };
    await shot(page, 'adaptive');
    await tapOrClick(page.getByRole('button', { name: 'Pause' }));
  });

  await step('fallback', async () => {
    // HLS that cannot load: the player goes on with the progressive stream
    const master = /\/hls\/[^/]+\/master\.m3u8/;
    await page.route(master, (r) => r.abort('connectionrefused'));
    await tapOrClick(row(page, HLS).locator('.track-play'));
    await until(page, () => { const a = document.getElementById('audio');
      return a.error || (a.currentSrc.includes('/stream/') && a.currentTime > 1 && !a.paused &&
        document.querySelector('[data-testid=fallback]') !== null); },
    null, 'the fallback to the progressive stream', 30000);
    summary.fallback = await audioState(page);
    if (summary.fallback.error) fail(`media error after the fallback: ${summary.fallback.error}`);
    await page.unroute(master);
    await tapOrClick(page.getByRole('button', { name: 'Pause' }));
    // a new quality while paused stays paused, at the same place
    const t = await page.evaluate(() => document.getElementById('audio').currentTime);
    await page.getByLabel('Quality').selectOption('original');
    await until(page, () => document.querySelector('[data-testid=source]').textContent.startsWith('Original'),
      null, 'the original quality');
    await sleep(500);
    const st = await audioState(page);
    summary.quality_change_paused = { paused: st.paused, before: t, after: st.t };
    if (!st.paused) fail('changing the quality while paused started playback');
  });

  if (env.MASTER_PID) {
    await step('reconnect', async () => {
      const pid = Number(env.MASTER_PID);
      process.kill(pid, 'SIGHUP');     // a reload closes realtime connections with 1001
      const seen = await until(page, () => {
        const s = document.querySelector('[data-testid=ws-state]').dataset.state;
        window.__states ??= [];
        if (window.__states.at(-1) !== s) window.__states.push(s);
        return window.__states.includes('reconnecting') && s === 'connected' ? window.__states : false;
      }, null, 'the realtime connection to drop and come back', 30000);
      summary.reconnect = { states: seen };
    });
  }

  // Touch targets: every button, the select, the seek bar and the search box.
  summary.small_targets = await page.evaluate(() => {
    const out = [];
    for (const el of document.querySelectorAll('button, select, input, [role=slider]')) {
      const r = el.getBoundingClientRect();
      if (r.width === 0 && r.height === 0) continue;
      if (r.height < 44 || r.width < 44) out.push({ label: el.getAttribute('aria-label') || el.textContent.trim(), w: r.width, h: r.height });
    }
    return out;
  });
  await noSidewaysScroll(page, 'end');
  await shot(page, 'end');
  if (summary.page_errors.length) fail(`page errors: ${summary.page_errors.join('; ')}`);
  summary.ok = true;
  exitCode = 0;
} catch (e) {
  summary.failure = e instanceof Failure ? e.message : `${e.name}: ${e.message}`;
  process.stderr.write(`webplayer.mjs: FAIL: ${summary.failure}\n`);
  if (page) await shot(page, 'failure').catch(() => {});
} finally {
  if (browser) await browser.close().catch(() => {});
}
process.stdout.write(JSON.stringify(summary, null, 2) + '\n');
process.exit(exitCode);
