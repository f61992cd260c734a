#!/usr/bin/env node
// share.mjs BASE_URL SHARE_ID OUTDIR desktop|mobile
//
// Opens the share page of a private link (/s/SHARE_ID) in Debian's
// headless Chromium (playwright-core; no browser is downloaded), at a
// desktop viewport or as a phone ('Pixel 5'), with no token of its own.
// Steps:
//
//   the password form (PASSWORD), a wrong password first, then the right
//   one; the page shows the link's title and its waveform; play: the audio
//   plays; the download button is there (it is granted); post a comment at
//   the current time: it is listed.
//
// Every request the page makes is recorded with the token it carried
// (?token= or Authorization: Bearer), so that the test can check that it
// sent the link's share token and nothing else. Prints one JSON summary on
// stdout and saves screenshots in OUTDIR; exit status 0 when every step
// worked, 1 otherwise ("failure").
//
// Environment: CHROMIUM, PASSWORD, TITLE, COMMENT, WAIT_MS (20000).
import { chromium, devices } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

const [baseArg, shareId, outDir, mode = 'desktop'] = process.argv.slice(2);
if (!baseArg || !shareId || !outDir || !['desktop', 'mobile'].includes(mode)) {
  process.stderr.write('usage: node share.mjs BASE_URL SHARE_ID OUTDIR desktop|mobile\n');
  process.exit(2);
}
const base = baseArg.replace(/\/+$/, '');
const env = process.env;
const waitMs = Number(env.WAIT_MS || 20000);
const mobile = mode === 'mobile';

const summary = {
  ok: false, mode, failure: null, steps: [], requests: [], title: null, played: null,
  download_href: null, commented: null, wrong_password_shown: false, page_errors: [], screenshots: [],
};

class Failure extends Error {}
const fail = (msg) => { throw new Failure(msg); };

async function until(page, fn, arg, what, ms = waitMs) {
  try {
    const h = await page.waitForFunction(fn, arg, { timeout: ms, polling: 100 });
    return await h.jsonValue();
  } catch {
    fail(`timed out after ${ms} ms waiting for ${what}`);
  }
}

async function shot(page, name) {
  const file = path.join(outDir, `${mode}-${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  summary.screenshots.push(file);
}

async function tapOrClick(locator) {
  if (mobile) await locator.tap();
  else await locator.click();
}

async function step(name, fn) {
  const t0 = Date.now();
  try {
    await fn();
    summary.steps.push({ name, ms: Date.now() - t0, ok: true });
  } catch (e) {
    summary.steps.push({ name, ms: Date.now() - t0, ok: false });
    if (e instanceof Failure) throw new Failure(`${name}: ${e.message}`);
    throw new Failure(`${name}: ${e.name}: ${e.message}`);
  }
}

function tokenOf(request) {
  const u = new URL(request.url());
  const q = u.searchParams.get('token');
  const h = request.headers().authorization;
  const b = h && /^Bearer\s+(.+)$/i.exec(h);
  return { path: u.pathname, query: q, bearer: b ? b[1] : null };
}

let browser;
let page;
let exitCode = 1;
try {
  fs.mkdirSync(outDir, { recursive: true });
  browser = await chromium.launch({
    executablePath: env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      `--explicitly-allowed-ports=${new URL(base).port || 80}`],
  });
  const context = await browser.newContext(mobile ? { ...devices['Pixel 5'] } : { viewport: { width: 1280, height: 800 } });
  page = await context.newPage();
  page.on('pageerror', (e) => summary.page_errors.push(String(e)));
  page.on('request', (r) => { if (new URL(r.url()).origin === new URL(base).origin) summary.requests.push(tokenOf(r)); });

  await step('open the link', async () => {
    const res = await page.goto(`${base}/s/${shareId}`, { waitUntil: 'load', timeout: waitMs });
    if (!res || !res.ok()) fail(`GET /s/${shareId} answered ${res ? res.status() : 'nothing'}`);
  });

  if (env.PASSWORD) {
    await step('password', async () => {
      const input = page.getByTestId('share-password-input');
      await input.waitFor({ timeout: waitMs });
      await input.fill('not the password');
      await tapOrClick(page.locator('[data-testid=share-password] button[type=submit]'));
      await page.getByText('Wrong password.').waitFor({ timeout: waitMs });
      summary.wrong_password_shown = true;
      await shot(page, 'password');
      await input.fill(env.PASSWORD);
      await tapOrClick(page.locator('[data-testid=share-password] button[type=submit]'));
    });
  }

  await step('the link and its waveform', async () => {
    const title = page.getByTestId('share-title');
    await title.waitFor({ timeout: waitMs });
    summary.title = await title.textContent();
    if (env.TITLE && !summary.title.includes(env.TITLE)) fail(`the title is ${summary.title}, not ${env.TITLE}`);
    await page.locator('[data-testid=share-wave][data-ready=yes]').waitFor({ timeout: waitMs });
  });

  await step('play', async () => {
    await tapOrClick(page.getByTestId('share-play'));
    await until(page, () => { const a = document.getElementById('share-audio'); return a && a.currentTime > 0.5 && !a.paused; },
      null, 'the track to play');
    summary.played = await page.evaluate(() => document.getElementById('share-audio').currentTime);
    await shot(page, 'playing');
  });

  await step('download button', async () => {
    const a = page.getByTestId('share-download');
    await a.waitFor({ timeout: waitMs });
    summary.download_href = await a.getAttribute('href');
  });

  if (env.COMMENT) {
    await step('comment', async () => {
      const box = page.getByTestId('share-comment-body');
      await box.fill(env.COMMENT);
      await tapOrClick(page.getByTestId('share-comment-post'));
      await page.getByTestId('share-comment').filter({ hasText: env.COMMENT }).first().waitFor({ timeout: waitMs });
      summary.commented = env.COMMENT;
      await page.evaluate(() => document.getElementById('share-audio').pause());
      await shot(page, 'commented');
    });
  }

  summary.ok = true;
  exitCode = 0;
} catch (e) {
  summary.failure = e instanceof Error ? e.message : String(e);
  if (page) await shot(page, 'failure').catch(() => {});
} finally {
  if (browser) await browser.close().catch(() => {});
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(exitCode);
}
