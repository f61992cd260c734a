#!/usr/bin/env node
// feedback.mjs BASE_URL OUTDIR desktop|mobile
//
// Drives the web player's feedback panel in Debian's headless Chromium
// (playwright-core; no browser is downloaded), at a desktop viewport or as
// a phone ('Pixel 5'). The page is opened with #token=USER_TOKEN (a user's
// token, so that it may post). Steps:
//
//   play "V1_TITLE" and seek to AT_S seconds; focus the comment box (which
//   pins the time), type a comment, post it; its marker appears on the seek
//   bar at AT_S; seek elsewhere, click the marker: the audio is back at
//   AT_S; post a hostile body (HTML that would run script if it were
//   parsed): it shows exactly as typed, as text, and no script ran; a body
//   with NUL is refused as documented (the error shows, nothing is listed);
//   while the track plays, another user comments through the API (the
//   test asks for it, see below): the marker and the text appear without a
//   reload, rendered inert, then the edit and the deletion show; our own
//   comment is listed once; switch to the other version with the version
//   menu: the position is kept, and a comment on that version arrives live.
//
// Asking the test: the driver writes one line "ASK {json}" on stderr and
// reads the answer, one JSON line, on stdin (the test posts, edits or
// deletes as the other user, with urllib and that user's token).
//
// Prints one JSON summary on stdout and saves screenshots in OUTDIR; exit
// status 0 when every step worked, 1 otherwise ("failure").
//
// Environment: CHROMIUM, USER_TOKEN, V1_TITLE, V2_TITLE, AT_S (5), HOSTILE,
// LIVE_AT_S (13), WAIT_MS (20000).
import readline from 'node:readline';
import { fail, finish, helpers, launch, parseArgs } from './driver.mjs';

const { base, outDir, mode, mobile, waitMs } = parseArgs('feedback.mjs');
const env = process.env;
const V1 = env.V1_TITLE || 'Take v1';
const V2 = env.V2_TITLE || 'Take v2';
const AT = Number(env.AT_S || 5);
const HOSTILE = env.HOSTILE || '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>';
const LIVE_AT = Number(env.LIVE_AT_S || 13);

// the test's answers, one JSON line each, in order
const answers = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function ask(what) {
  process.stderr.write(`ASK ${JSON.stringify(what)}\n`);
  const { value, done } = await answers.next();
  if (done) fail(`no answer from the test to ${JSON.stringify(what)}`);
  return JSON.parse(value);
}

const summary = {
  ok: false, mode, failure: null, steps: [], posted: null, marker: null, marker_seek: null,
  hostile: null, nul: null, live: null, own_listed: null, switched: null, live_after_switch: null, page_errors: [], console_errors: [],
  screenshots: [],
};

const { until, shot, tapOrClick, step, failed } = helpers({ summary, outDir, mode, mobile, waitMs });

const audioTime = (page) => page.evaluate(() => document.getElementById('audio').currentTime);

async function post(page, text) {
  const box = page.getByTestId('comment-body');
  await box.focus();
  await box.fill(text);
  const n = await page.getByTestId('comment').count();
  await tapOrClick(page.getByTestId('comment-post'));
  await until(page, (k) => document.querySelectorAll('[data-testid=comment]').length > k, n, 'the comment listed');
}

let browser;
let page;
let exitCode = 1;
try {
  ({ browser, page } = await launch({ base, outDir, mobile, summary }));
  // listings of comments fetched: live arrival must not need one
  let listings = 0;
  page.on('request', (r) => { if (r.method() === 'GET' && /\/api\/tracks\/[^/]+\/comments/.test(r.url())) listings++; });

  await step('load and play', async () => {
    const res = await page.goto(`${base}/#token=${encodeURIComponent(env.USER_TOKEN || '')}`, { waitUntil: 'load', timeout: waitMs });
    if (!res || !res.ok()) fail(`GET / answered ${res ? res.status() : 'nothing'}`);
    const row = page.locator('[data-testid=tracks] li').filter({ has: page.locator('.t-title', { hasText: V1 }) });
    await row.first().waitFor({ timeout: waitMs });
    await tapOrClick(row.first().locator('.track-play'));
    await until(page, () => { const a = document.getElementById('audio'); return a.currentTime > 0.5 && !a.paused; },
      null, 'the track to play');
    await page.getByTestId('feedback').waitFor({ timeout: waitMs });
    await page.evaluate((t) => { document.getElementById('audio').currentTime = t; }, AT);
    await until(page, (t) => Math.abs(document.getElementById('audio').currentTime - t) < 0.5, AT, `the seek to ${AT} s`);
    await page.evaluate(() => document.getElementById('audio').pause());
  });

  await step('comment at a time', async () => {
    const text = `the snare is late here (${mode})`;
    await post(page, text);
    const c = page.getByTestId('comment').filter({ hasText: text });
    const at = Number(await c.first().getAttribute('data-at-ms'));
    if (Math.abs(at - AT * 1000) > 600) fail(`the comment is at ${at} ms, not near ${AT * 1000}`);
    summary.posted = { at_ms: at, comment_id: await c.first().getAttribute('data-comment-id') };
    await shot(page, 'commented');
  });

  await step('marker seeks', async () => {
    // this comment's marker (a run before this one may have left its own)
    const m = page.locator(`[data-testid=marker][data-at-ms="${summary.posted.at_ms}"]`);
    await m.waitFor({ timeout: waitMs });
    const at = Number(await m.getAttribute('data-at-ms'));
    const box = await m.boundingBox();
    const bar = await page.getByTestId('seek').boundingBox();
    summary.marker = { at_ms: at, x: box.x + box.width / 2, bar_x: bar.x, bar_w: bar.width };
    await page.evaluate(() => { document.getElementById('audio').currentTime = 1; });
    await until(page, () => document.getElementById('audio').currentTime < 1.5, null, 'the seek to 1 s');
    await tapOrClick(m);
    await until(page, (t) => Math.abs(document.getElementById('audio').currentTime - t) < 0.3, at / 1000,
      'the marker to seek to its time');
    summary.marker_seek = await audioTime(page);
  });

  await step('hostile body as text', async () => {
    await post(page, HOSTILE);
    const shown = await until(page, (h) => {
      const el = [...document.querySelectorAll('[data-testid=comment-text]')].find((e) => e.textContent === h);
      return el ? { text: el.textContent, children: el.children.length } : false;
    }, HOSTILE, 'the hostile body shown as typed');
    const pwned = await page.evaluate(() => window.__pwned ?? null);
    const imgs = await page.locator('[data-testid=comments] img, [data-testid=comments] script').count();
    summary.hostile = { ...shown, pwned, injected_elements: imgs };
    if (shown.children !== 0 || pwned !== null || imgs !== 0) fail(`the body was parsed as HTML: ${JSON.stringify(summary.hostile)}`);
    await shot(page, 'hostile');
  });

  await step('NUL refused as documented', async () => {
    const n = await page.getByTestId('comment').count();
    const box = page.getByTestId('comment-body');
    await box.focus();
    await box.fill('a\u0000b');
    const typed = await box.inputValue();
    await tapOrClick(page.getByTestId('comment-post'));
    const error = await until(page, () => document.querySelector('[data-testid=comment-error]')?.textContent ?? false,
      null, 'the refusal shown');
    summary.nul = { typed_has_nul: typed.includes('\u0000'), error, listed: await page.getByTestId('comment').count() - n };
    if (summary.nul.listed !== 0) fail(`a body with NUL was listed: ${JSON.stringify(summary.nul)}`);
    await box.fill('');
  });

  await step('live comments of another user', async () => {
    // from the start: the track must not end (and the next one load) here
    await page.evaluate(() => { const a = document.getElementById('audio'); a.currentTime = 1; return a.play(); });
    await until(page, () => !document.getElementById('audio').paused, null, 'the track to play again');
    const listingsBefore = listings;
    const posted = await ask({ action: 'post', at_ms: LIVE_AT * 1000 });
    const id = posted.comment_id;
    const shown = await until(page, ([cid, body]) => {
      const c = document.querySelector(`[data-testid=comment][data-comment-id="${cid}"]`);
      const t = c?.querySelector('[data-testid=comment-text]');
      const m = document.querySelector(`[data-testid=marker][data-at-ms="${c?.getAttribute('data-at-ms')}"]`);
      return t && m && t.textContent === body
        ? { text: t.textContent, children: t.children.length, at_ms: Number(c.getAttribute('data-at-ms')),
          user: c.querySelector('.c-user')?.textContent ?? null }
        : false;
    }, [id, posted.body], 'the other user\'s comment and its marker, live');
    const playing = await page.evaluate(() => !document.getElementById('audio').paused);
    const fetched = listings - listingsBefore;
    if (fetched !== 0) fail(`the comment came with a listing fetched again (${fetched}), not live`);
    const pwned = await page.evaluate(() => window.__pwned ?? null);
    const injected = await page.locator('[data-testid=comments] img, [data-testid=comments] script').count();
    await page.evaluate((cid) => document.querySelector(`[data-testid=comment][data-comment-id="${cid}"]`).scrollIntoView({ block: "center" }), id);
    await shot(page, 'live');
    const edited = await ask({ action: 'edit', comment_id: id });
    await until(page, ([cid, body]) => document.querySelector(
      `[data-testid=comment][data-comment-id="${cid}"] [data-testid=comment-text]`)?.textContent === body,
    [id, edited.body], 'the edit, live');
    await ask({ action: 'delete', comment_id: id });
    await until(page, ([cid, at]) => !document.querySelector(`[data-testid=comment][data-comment-id="${cid}"]`) &&
      !document.querySelector(`[data-testid=marker][data-at-ms="${at}"]`), [id, shown.at_ms], 'the deletion, live');
    summary.live = { ...shown, comment_id: id, playing, pwned, injected_elements: injected, edited: edited.body, deleted: true,
      listings_fetched: listings - listingsBefore };
    if (summary.live.listings_fetched !== 0) fail(`the page fetched the listing again: ${JSON.stringify(summary.live)}`);
    if (shown.children !== 0 || pwned !== null || injected !== 0) fail(`the live body was parsed as HTML: ${JSON.stringify(summary.live)}`);
    // our own comment: the POST answered it and its event came too; once
    summary.own_listed = await page.locator(`[data-testid=comment][data-comment-id="${summary.posted.comment_id}"]`).count();
    if (summary.own_listed !== 1) fail(`our own comment is listed ${summary.own_listed} times`);
    await page.evaluate(() => document.getElementById('audio').pause());
  });

  await step('switch version keeps the position', async () => {
    await page.evaluate(() => { document.getElementById('audio').currentTime = 7; });
    await until(page, () => Math.abs(document.getElementById('audio').currentTime - 7) < 0.3, null, 'the seek to 7 s');
    const sel = page.getByTestId('version-select');
    await sel.waitFor({ timeout: waitMs });
    const value = await sel.locator('option').evaluateAll((os) => os.map((o) => o.value));
    const current = await sel.inputValue();
    const other = value.find((v) => v !== current);
    if (!other) fail(`the version menu has no other version: ${JSON.stringify(value)}`);
    await sel.selectOption(other);
    await until(page, (v2) => (document.querySelector('[data-testid=now-playing]')?.textContent ?? '').includes(v2), V2,
      'the other version playing');
    await until(page, () => { const a = document.getElementById('audio'); return a.readyState >= 1 && Math.abs(a.currentTime - 7) < 1; },
      null, 'the position kept');
    summary.switched = { to: other, time: await audioTime(page) };
    await shot(page, 'switched');
  });

  await step('live comments follow the switch', async () => {
    // the page now plays the other version: a comment on it arrives live
    const listingsBefore = listings;
    const posted = await ask({ action: 'post', at_ms: (LIVE_AT + 2) * 1000, on: 'v2' });
    const id = posted.comment_id;
    await until(page, (cid) => {
      const c = document.querySelector(`[data-testid=comment][data-comment-id="${cid}"]`);
      return !!c && !!document.querySelector(`[data-testid=marker][data-at-ms="${c.getAttribute('data-at-ms')}"]`);
    }, id, 'a comment on the version now playing, live');
    const fetched = listings - listingsBefore;
    if (fetched !== 0) fail(`the comment came with a listing fetched again (${fetched}), not live`);
    await ask({ action: 'delete', comment_id: id });
    await until(page, (cid) => !document.querySelector(`[data-testid=comment][data-comment-id="${cid}"]`), id,
      'its deletion, live');
    summary.live_after_switch = { comment_id: id, track_id: posted.track_id };
  });

  summary.ok = true;
  exitCode = 0;
} catch (e) {
  await failed(e, page);
} finally {
  await finish(browser, summary, exitCode);
}
