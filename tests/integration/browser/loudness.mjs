#!/usr/bin/env node
// loudness.mjs BASE_URL OUTDIR desktop|mobile
//
// The web player's loudness features in Debian's headless Chromium
// (playwright-core; no browser is downloaded), at a desktop viewport or as a
// phone (playwright's 'Pixel 5'):
//
//   the playing track's loudness, true peak and BPM as /api/tracks gives
//   them; "Loudness match" -14 then -23 then off: the <audio> element's src
//   becomes the normalized stream (?normalize=) and back, at the position it
//   was (read before and after, within 250 ms), and playback goes on from
//   there; the BPM filter narrows the track list to the tracks in range.
//
// Prints one JSON summary on stdout and saves screenshots in OUTDIR; exit
// status 0 when every step worked, 1 otherwise ("failure").
//
// Environment: CHROMIUM, TRACK_TITLE (the track to play), BPM_MIN, BPM_MAX,
// IN_RANGE (titles the filter keeps, comma-separated), WAIT_MS (20000).
import { Failure, fail, finish, helpers, launch, parseArgs } from './driver.mjs';

const { base, outDir, mode, mobile, waitMs } = parseArgs('loudness.mjs');
const env = process.env;
const TITLE = env.TRACK_TITLE;
const IN_RANGE = (env.IN_RANGE || '').split(',').filter(Boolean);

const summary = {
  ok: false, mode, failure: null, steps: [], analysis: null, switches: [], filter: null,
  page_errors: [], screenshots: [],
};

const audioState = (page) => page.evaluate(() => {
  const a = document.getElementById('audio');
  return { src: a.currentSrc || a.src, t: a.currentTime, paused: a.paused, seeking: a.seeking, ready: a.readyState,
    error: a.error ? `code ${a.error.code} ${a.error.message}` : null,
    source: document.querySelector('[data-testid=source]')?.textContent ?? '' };
});

const { until, shot, step } = helpers({
  summary, outDir, mode, mobile, waitMs, polling: 50,
  detail: async (page) => ` (audio: ${JSON.stringify(await audioState(page).catch(() => null))})`,
});

function row(page, title) {
  return page.locator('[data-testid=tracks] li').filter({ has: page.locator('.t-title', { hasText: title }) });
}

let browser;
let exitCode = 1;
try {
  let page;
  ({ browser, page } = await launch({ base, outDir, mobile, summary }));
  const listed = await (await fetch(`${base}/api/tracks?limit=1000`)).json();
  const track = listed.tracks.find((t) => t.title === TITLE) ?? fail(`no track ${TITLE} in /api/tracks`);

  await step('load', async () => {
    const res = await page.goto(base + '/', { waitUntil: 'load', timeout: waitMs });
    if (!res || !res.ok()) fail(`GET / answered ${res ? res.status() : 'nothing'}`);
    await page.locator('[data-testid=tracks] li').first().waitFor({ timeout: waitMs });
  });

  await step('figures', async () => {
    const b = row(page, TITLE).locator('.track-play');
    if (mobile) await b.tap();
    else await b.click();
    await until(page, () => document.getElementById('audio').currentTime > 0.5, null, 'playback');
    const text = await until(page, () => document.querySelector('[data-testid=analysis]')?.textContent || null, null,
      'the loudness figures');
    const minus = (v, d) => v.toFixed(d).replace('-', '−');
    const want = [`${minus(track.loudness.integrated_lufs, 1)} LUFS`, `TP ${minus(track.loudness.true_peak_dbtp, 1)} dBTP`,
      `${Math.round(track.tempo.bpm)} BPM`];
    summary.analysis = { text, want };
    for (const w of want) if (!text.includes(w)) fail(`"${text}" lacks "${w}"`);
    await shot(page, 'figures');
  });

  // Each switch: paused at a point well inside the track, the menu changed,
  // then the new src must be loaded and sought to where it was.
  for (const [value, expect] of [['-14', 'normalize=-14'], ['-23', 'normalize=-23'], ['off', null]]) {
    await step(`match ${value}`, async () => {
      await until(page, () => document.getElementById('audio').currentTime > 2, null, 'two seconds of playback');
      await page.evaluate(() => document.getElementById('audio').pause());
      const before = await audioState(page);
      await page.getByTestId('match-select').selectOption(value);
      const after = await until(page, ([prev, want]) => {
        const a = document.getElementById('audio');
        const src = a.currentSrc || a.src;
        const right = want ? src.includes(want) : !src.includes('normalize=');
        return src !== prev && right && a.readyState >= 1 && !a.seeking && a.currentTime > 0
          ? { src, t: a.currentTime } : null;
      }, [before.src, expect], `the ${value} stream at the same position`);
      const rec = { value, before: before.t, after: after.t, src: after.src };
      summary.switches.push(rec);
      if (Math.abs(after.t - before.t) > 0.25) fail(`position ${before.t} became ${after.t}`);
      if (expect && !/[?&]profile=/.test(after.src)) fail(`the normalized stream is not a transcode: ${after.src}`);
      await page.evaluate(() => document.getElementById('audio').play());
      await until(page, (t) => document.getElementById('audio').currentTime > t + 0.3, after.t, 'playback going on');
      rec.resumed = (await audioState(page)).t;
      if (value === '-14') await shot(page, 'matched');
    });
  }

  await step('bpm filter', async () => {
    const count = () => page.getByTestId('track-count').textContent();
    const all = await page.locator('[data-testid=tracks] li').count();
    await page.getByTestId('bpm-min').fill(env.BPM_MIN);
    await page.getByTestId('bpm-max').fill(env.BPM_MAX);
    const titles = await until(page, (n) => {
      const rows = [...document.querySelectorAll('[data-testid=tracks] li .t-title')].map((e) => e.textContent);
      return document.querySelector('[data-testid=track-count]')?.textContent?.includes('filtered') && rows.length > 0 &&
        rows.length < n ? rows : null;
    }, IN_RANGE.length ? all : all, 'the filtered list');
    summary.filter = { all, titles, count: await count() };
    if (JSON.stringify([...titles].sort()) !== JSON.stringify([...IN_RANGE].sort()))
      fail(`the filter kept ${titles}, not ${IN_RANGE}`);
    await shot(page, 'filtered');
  });

  summary.ok = summary.page_errors.length === 0;
  if (!summary.ok) summary.failure = `page errors: ${summary.page_errors.join('; ')}`;
  exitCode = summary.ok ? 0 : 1;
} catch (e) {
  summary.failure = e instanceof Failure ? e.message : `${e.name}: ${e.message}`;
} finally {
  await finish(browser, summary, exitCode);
}
