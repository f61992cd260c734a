#!/usr/bin/env node
// lbplayer.mjs BASE_URL OUTDIR TITLE
//
// The web player in cluster mode, behind a load balancer (BASE_URL is the
// balancer, test_cluster_sessions.py): in Debian's headless Chromium
// (/usr/bin/chromium through playwright-core; no browser is downloaded)
// load the page, wait for the track list and the realtime connection,
// choose the adaptive quality, play TITLE through hls.js, and wait until
// the player has made its streaming session and a metrics report of it was
// answered 200.
//
// Prints one JSON summary on stdout (session_id, played_s, source, rung,
// segments, the requests seen) and saves a screenshot in OUTDIR; exit
// status 0 when it all worked, 1 otherwise ("failure").
//
// Environment: CHROMIUM, WAIT_MS (30000).
import path from 'node:path';
import { Failure, fail, finish, helpers, launch } from './driver.mjs';

const [baseArg, outDir, title] = process.argv.slice(2);
if (!baseArg || !outDir || !title) {
  process.stderr.write('usage: node lbplayer.mjs BASE_URL OUTDIR TITLE\n');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
const waitMs = Number(process.env.WAIT_MS || 30000);
const summary = { ok: false, failure: null, session_id: null, played_s: 0, source: null, rung: null,
  segments: 0, requests: [], page_errors: [] };

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const { until } = helpers({ summary, waitMs });

let browser;
let exitCode = 1;
try {
  let page;
  ({ browser, page } = await launch({ base, outDir, mobile: false, summary }));
  page.on('request', (req) => {
    const u = new URL(req.url());
    if (!/^\/(stream|hls|api)\//.test(u.pathname)) return;
    const rec = { method: req.method(), origin: u.origin, path: u.pathname, status: null };
    summary.requests.push(rec);
    req.response().then((res) => { if (res) rec.status = res.status(); }).catch(() => {});
  });

  const res = await page.goto(base + '/', { waitUntil: 'load', timeout: waitMs });
  if (!res || !res.ok()) fail(`GET / answered ${res ? res.status() : 'nothing'}`);
  await page.locator('[data-testid=tracks] li').first().waitFor({ timeout: waitMs });
  await until(page, () => document.querySelector('[data-testid=ws-state]')?.dataset.state === 'connected',
    null, 'the realtime connection');

  await page.getByLabel('Quality').selectOption('adaptive');
  const row = page.locator('[data-testid=tracks] li').filter({ has: page.locator('.t-title', { hasText: title }) });
  await row.locator('.track-play').click();
  await until(page, () => { const a = document.getElementById('audio');
    return a.error || (a.currentTime > 1.5 && !a.paused); }, null, 'HLS playback past 1.5 s');
  const st = await page.evaluate(() => {
    const a = document.getElementById('audio');
    return { t: a.currentTime, error: a.error ? `code ${a.error.code} ${a.error.message}` : null,
      source: document.querySelector('[data-testid=source]')?.textContent ?? '',
      rung: document.querySelector('[data-testid=rung]')?.textContent ?? null,
      fallback: document.querySelector('[data-testid=fallback]')?.textContent ?? null };
  });
  if (st.error) fail(`media error in HLS: ${st.error}`);
  if (st.fallback) fail(`HLS fell back: ${st.fallback}`);
  summary.played_s = st.t;
  summary.source = st.source;
  summary.rung = st.rung;

  // the player reports to its session while it plays
  const metricsPath = /^\/api\/streaming\/session\/([^/]+)\/metrics$/;
  const reported = () => summary.requests.find((q) => q.method === 'POST' && q.status === 200 &&
    metricsPath.test(q.path));
  for (const deadline = Date.now() + waitMs; !reported(); await sleep(100)) {
    if (Date.now() > deadline) fail('no metrics report reached the streaming session');
  }
  summary.session_id = metricsPath.exec(reported().path)[1];
  summary.segments = summary.requests.filter((q) => q.path.startsWith('/hls/') && q.path.endsWith('.m4s')).length;
  if (summary.requests.some((q) => q.origin !== new URL(base).origin)) fail('a request went around the balancer');
  await page.screenshot({ path: path.join(outDir, 'lbplayer.png') });
  summary.ok = true;
  exitCode = 0;
} catch (e) {
  summary.failure = e instanceof Failure ? e.message : `${e.name}: ${e.message}`;
} finally {
  await finish(browser, summary, exitCode);
}
