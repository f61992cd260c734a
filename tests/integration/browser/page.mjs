// page.mjs BASE_URL OUTDIR - the web player served at / plays a track.
//
// Opens BASE_URL/ in Debian's headless Chromium (never a downloaded browser),
// waits for the track list that the page builds from /api/tracks, clicks the
// first track, and waits until its <audio> element plays (currentTime > 1 s)
// from /stream/ID with no error event. Prints a JSON summary
// {ok, tracks, clicked, src, currentTime, errors, requests} and saves a
// screenshot in OUTDIR. Exits 1 on failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const [base, outdir] = process.argv.slice(2);
if (!base || !outdir) {
  console.error('usage: node page.mjs BASE_URL OUTDIR');
  process.exit(2);
}
const summary = { ok: false, tracks: 0, clicked: null, src: null, currentTime: 0, errors: [], requests: [] };
const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'talas-page-'));
let context;
try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport: { width: 390, height: 760 },
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      `--explicitly-allowed-ports=${new URL(base).port || 80}`],
  });
  const page = context.pages()[0] || await context.newPage();
  page.on('pageerror', e => summary.errors.push(String(e)));
  page.on('response', r => {
    if (r.url().includes('/stream/'))
      summary.requests.push({ status: r.status(), range: r.request().headers()['range'] || null });
  });
  await page.goto(base + '/', { timeout: 15000 });
  await page.waitForSelector('[data-testid=tracks] li', { timeout: 15000 });
  summary.tracks = await page.locator('[data-testid=tracks] li').count();
  const first = page.locator('[data-testid=tracks] li .track-play').first();
  summary.clicked = (await first.innerText()).split('\n')[0];
  await first.click();
  await page.waitForFunction(() => {
    const a = document.getElementById('audio');
    return a.error !== null || a.currentTime > 1;
  }, null, { timeout: 20000 });
  const state = await page.evaluate(() => {
    const a = document.getElementById('audio');
    return { src: a.currentSrc, t: a.currentTime, err: a.error && a.error.message };
  });
  summary.src = state.src;
  summary.currentTime = state.t;
  if (state.err) summary.errors.push('media error: ' + state.err);
  fs.mkdirSync(outdir, { recursive: true });
  await page.screenshot({ path: path.join(outdir, 'page.png') });
  summary.ok = summary.errors.length === 0 && summary.currentTime > 1;
} catch (e) {
  summary.errors.push(String(e));
} finally {
  if (context) await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(JSON.stringify(summary));
process.exit(summary.ok ? 0 : 1);
