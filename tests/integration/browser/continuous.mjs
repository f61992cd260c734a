#!/usr/bin/env node
// continuous.mjs BASE_URL OUTDIR desktop|mobile
//
// The web player's continuous mode in Debian's headless Chromium
// (playwright-core; no browser is downloaded): play TRACK_TITLE from the
// list, then "Play all of ARTIST": the player loads
// /hls/queue/artist/ARTIST/master.m3u8 through hls.js and plays the
// artist's tracks as one stream; the audio is followed past the end of
// the first track (FIRST_S seconds) without the element ending or
// stalling there. Then the typed form plays the same artist again.
//
// Prints one JSON summary on stdout (the queue requests and their
// statuses, the element's duration, the positions seen) and saves
// screenshots in OUTDIR; exit status 0 when every step worked, 1 otherwise.
//
// Environment: CHROMIUM, TRACK_TITLE, ARTIST, FIRST_S (4), WAIT_MS (20000).
import { fail, finish, helpers, launch, parseArgs } from './driver.mjs';

const { base, outDir, mode, mobile, waitMs } = parseArgs('continuous.mjs');
const env = process.env;
const TITLE = env.TRACK_TITLE || 'Queue One';
const ARTIST = env.ARTIST || 'Queue Band';
const FIRST_S = Number(env.FIRST_S || 4);

const summary = {
  ok: false, mode, failure: null, steps: [], queue_requests: [], source: null, duration: null, passed_boundary_at: null,
  ended_early: false, typed_master: null, page_errors: [], screenshots: [],
};
const { until, shot, tapOrClick, step, failed } = helpers({ summary, outDir, mode, mobile, waitMs });

let browser;
let page;
let exitCode = 1;
try {
  ({ browser, page } = await launch({ base, outDir, mobile, summary }));
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/hls/queue/')) summary.queue_requests.push({ path: decodeURIComponent(u.pathname), status: r.status() });
  });

  await step('play a track of the artist', async () => {
    const res = await page.goto(`${base}/`, { waitUntil: 'load', timeout: waitMs });
    if (!res || !res.ok()) fail(`GET / answered ${res ? res.status() : 'nothing'}`);
    const row = page.locator('[data-testid=tracks] li').filter({ has: page.locator('.t-title', { hasText: TITLE }) });
    await row.first().waitFor({ timeout: waitMs });
    await tapOrClick(row.first().locator('.track-play'));
    await until(page, () => { const a = document.getElementById('audio'); return a.currentTime > 0.3 && !a.paused; }, null, 'the track to play');
  });

  await step('play all of the artist, continuously', async () => {
    await tapOrClick(page.getByTestId('play-artist-current'));
    await until(page, () => /Continuous/.test(document.querySelector('[data-testid=source]')?.textContent || ''), null, 'the continuous source');
    await until(page, () => { const a = document.getElementById('audio'); return a.currentTime > 0.5 && !a.paused; }, null, 'the queue to play');
    summary.source = await page.getByTestId('source').textContent();
    summary.duration = await page.evaluate(() => document.getElementById('audio').duration);
    await page.evaluate(() => {
      const a = document.getElementById('audio');
      window.__ended = false;
      a.addEventListener('ended', () => { window.__ended = true; });
    });
    await until(page, (s) => document.getElementById('audio').currentTime > s + 1, FIRST_S, 'the stream to pass the first track\'s end', waitMs + FIRST_S * 1000);
    summary.passed_boundary_at = await page.evaluate(() => document.getElementById('audio').currentTime);
    summary.ended_early = await page.evaluate(() => window.__ended);
    await shot(page, 'continuous');
  });

  await step('play a typed artist', async () => {
    const n = summary.queue_requests.length;
    await page.getByTestId('play-artist-input').fill(ARTIST);
    await tapOrClick(page.getByTestId('play-artist'));
    await until(page, () => { const a = document.getElementById('audio'); return a.currentTime > 0.3 && a.currentTime < 3 && !a.paused; }, null, 'the queue to play again from its start');
    summary.typed_master = summary.queue_requests.slice(n).find((r) => r.path.endsWith('/master.m3u8')) ?? null;
  });

  summary.ok = true;
  exitCode = 0;
} catch (e) {
  await failed(e, page);
}
await finish(browser, summary, exitCode);
