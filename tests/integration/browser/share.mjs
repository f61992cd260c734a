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
import { fail, finish, helpers, launch, parseArgs } from './driver.mjs';

const { base, args: [shareId], outDir, mode, mobile, waitMs } = parseArgs('share.mjs', ['SHARE_ID']);
const env = process.env;

const summary = {
  ok: false, mode, failure: null, steps: [], requests: [], title: null, played: null,
  download_href: null, commented: null, wrong_password_shown: false, page_errors: [], screenshots: [],
};

const { until, shot, tapOrClick, step, failed } = helpers({ summary, outDir, mode, mobile, waitMs, fullPage: true });

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
  ({ browser, page } = await launch({ base, outDir, mobile, summary }));
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
  await failed(e, page);
} finally {
  await finish(browser, summary, exitCode);
}
