#!/usr/bin/env node
// rooms.mjs BASE_URL OUTDIR
//
// Two users in one listening room, each in a page of Debian's headless
// Chromium (playwright-core; no browser is downloaded): the host at a
// desktop viewport, the guest as a phone ('Pixel 5'), each opened with
// its own token (#token=). Everything goes through the Rooms panel's UI
// (clicks and typing), never through the WebSocket directly:
//
//   the host opens the panel, types the room's name (ROOM_NAME, hostile
//   HTML), picks host mode, creates the room, reads the invite link and
//   copies it with the panel's button (the clipboard then holds it), plays
//   TRACK_TITLE from the track list (in a room, that plays it in the room);
//   after LATE_MS the guest opens the invite link: its panel opens and
//   joins, and its audio starts at the room's position: the time from the
//   join to a position within CONVERGED_MS of the host's (three samples in
//   a row) is the late joiner's convergence; the guest's room controls and
//   its player bar's play/pause are disabled (host mode); screenshots of the panel on both pages;
//   then every 500 ms for 20 s, each page's audio position is sampled with
//   its own clock (the guest's set CLOCK_SKEW_MS off) mapped to the server's (Date.now() + the offset the page
//   measured with TimeSync, which the panel shows in data-clock-offset),
//   while the host seeks (+10 s) at 5.75 s, pauses at 11.75 s and plays at
//   15.75 s (between two samples):
//   the two positions, brought to one server instant, are compared; last,
//   the host page reads the room with GET api/rooms/ID (server_room);
//   then the guest's media requests are held while the host plays
//   STALL_TITLE: the host's page shows the guest buffering, the host plays
//   on for STALL_MS, and once the requests go through the guest catches up
//   (stall.catch_up_ms: from the release to within 50 ms of the host);
//   last the shared queue: the host adds the playing track and ARTIST's
//   ARTIST_TRACKS tracks, moves the last entry up and removes it; the guest
//   sees the same queue, may not remove, and adds its playing track.
//
// Prints one JSON summary on stdout (the samples, the differences, the
// convergence) and saves screenshots in OUTDIR; exit status 0 when every
// step worked, 1 otherwise ("failure"). The test judges the figures.
//
// Environment: CHROMIUM, HOST_TOKEN, GUEST_TOKEN, ROOM_NAME, TRACK_TITLE, STALL_TITLE, ARTIST, ARTIST_TRACKS,
// LATE_MS (3000), CLOCK_SKEW_MS (0: how far the guest page's Date.now() is
// set off the machine's clock), WAIT_MS (20000).
import { devices } from 'playwright-core';
import { fail, finish, helpers, launch, parseArgs } from './driver.mjs';

const { base, outDir, waitMs } = parseArgs('rooms.mjs');
const env = process.env;
const ROOM_NAME = env.ROOM_NAME || 'Room';
const TITLE = env.TRACK_TITLE || 'Sync Song';
const LATE_MS = Number(env.LATE_MS || 3000);
const SKEW_MS = Number(env.CLOCK_SKEW_MS || 0);
const STALL_TITLE = env.STALL_TITLE || 'Stall Song';
const STALL_MS = 3000;
const ARTIST = env.ARTIST || 'Room Band';
const ARTIST_TRACKS = Number(env.ARTIST_TRACKS || 2);
const CONVERGED_MS = 50;
const SAMPLE_MS = 500;
const SAMPLES_FOR_MS = 20000;

const summary = {
  ok: false, failure: null, steps: [], room_id: null, invite: null, copied: null, name_shown: null, pwned: null,
  guest_controls_disabled: null, clock: {}, convergence_ms: null, convergence_trace: [], samples: [],
  actions: [], members: null, server_room: null, stall: null, queue: null, page_errors: [], console_errors: [], screenshots: [],
};

const desk = helpers({ summary, outDir, mode: 'desktop', mobile: false, waitMs });
const phone = helpers({ summary, outDir, mode: 'mobile', mobile: true, waitMs });
const { step, failed } = desk;

/** One sample of a page: its audio position (ms) and the server's clock
 * as the page reads it (ms), taken in one go inside the page. */
function sample(page) {
  return page.evaluate(() => {
    const a = document.getElementById('audio');
    const off = Number(document.querySelector('[data-testid=rooms]')?.getAttribute('data-clock-offset') || NaN);
    const t = Date.now();
    return { pos: a.currentTime * 1000, server: t + off, paused: a.paused, rate: a.playbackRate, ready: a.readyState };
  });
}

/** The guest's position minus the host's, both at the guest's instant
 * (the host's advanced by the gap between the two samples if it plays). */
function difference(h, g) {
  const hostAt = h.paused ? h.pos : h.pos + (g.server - h.server);
  return g.pos - hostAt;
}

async function pair(host, guest) {
  const h = await sample(host);
  const g = await sample(guest);
  return { h, g, diff: difference(h, g) };
}

let browser;
let host;
let guest;
let exitCode = 1;
try {
  ({ browser, page: host } = await launch({ base, outDir, mobile: false, summary }));
  const ctx = await browser.newContext({ ...devices['Pixel 5'] });
  // the phone's clock is off by CLOCK_SKEW_MS: its TimeSync offset must
  // make up for it (both pages run on one machine, one clock otherwise)
  await ctx.addInitScript((skew) => {
    const now = Date.now.bind(Date);
    Date.now = () => now() + skew;
  }, SKEW_MS);
  guest = await ctx.newPage();
  guest.on('pageerror', (e) => summary.page_errors.push(`guest: ${String(e)}`));
  guest.on('console', (m) => { if (m.type() === 'error') summary.console_errors.push(`guest: ${m.text()}`); });

  await step('the host creates a room', async () => {
    const res = await host.goto(`${base}/#token=${encodeURIComponent(env.HOST_TOKEN || '')}`, { waitUntil: 'load', timeout: waitMs });
    if (!res || !res.ok()) fail(`GET / answered ${res ? res.status() : 'nothing'}`);
    await host.getByTestId('ws-state').and(host.locator('[data-state=connected]')).waitFor({ timeout: waitMs });
    await desk.tapOrClick(host.getByTestId('rooms-toggle'));
    await host.getByTestId('room-name-input').fill(ROOM_NAME);
    await host.getByTestId('room-mode').selectOption('host');
    await desk.tapOrClick(host.getByTestId('room-create'));
    await host.getByTestId('room-name').waitFor({ timeout: waitMs });
    summary.name_shown = await host.getByTestId('room-name').textContent();
    summary.room_id = await host.getByTestId('rooms').getAttribute('data-room-id');
    summary.invite = await host.getByTestId('room-invite-link').inputValue();
    if (!summary.invite.includes(`room=${summary.room_id}`)) fail(`the invite link ${summary.invite} names another room`);
    // the copy button puts the link on the clipboard
    await host.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    await desk.tapOrClick(host.getByTestId('room-copy'));
    await host.getByText('Copied').waitFor({ timeout: waitMs });
    summary.copied = await host.evaluate(() => navigator.clipboard.readText());
    await desk.until(host, () => document.querySelector('[data-testid=rooms]').getAttribute('data-clock-offset') !== '',
      null, 'the host page to measure its clock');
  });

  await step('the host plays a track in the room', async () => {
    const row = host.locator('[data-testid=tracks] li').filter({ has: host.locator('.t-title', { hasText: TITLE }) });
    await row.first().waitFor({ timeout: waitMs });
    await desk.tapOrClick(row.first().locator('.track-play'));
    await desk.until(host, () => { const a = document.getElementById('audio'); return a.currentTime > 0.5 && !a.paused; },
      null, 'the host to play');
    await host.getByTestId('room-queue').locator('li[data-entry-id]').first().waitFor({ timeout: waitMs });
  });

  await host.waitForTimeout(LATE_MS);

  await step('a late guest joins from the invite link', async () => {
    const url = new URL(summary.invite);
    url.hash = `token=${encodeURIComponent(env.GUEST_TOKEN || '')}`;
    const res = await guest.goto(url.href, { waitUntil: 'load', timeout: waitMs });
    if (!res || !res.ok()) fail(`GET ${url.pathname}${url.search} answered ${res ? res.status() : 'nothing'}`);
    await guest.getByTestId('room-name').waitFor({ timeout: waitMs });
    const joined = Date.now();
    // converged: three samples in a row within CONVERGED_MS of the host
    let inRow = 0;
    while (Date.now() - joined < 15000) {
      const p = await pair(host, guest);
      const ok = !p.g.paused && Number.isFinite(p.diff) && Math.abs(p.diff) < CONVERGED_MS;
      summary.convergence_trace.push({ t: Date.now() - joined, diff: Number.isFinite(p.diff) ? Math.round(p.diff) : null, paused: p.g.paused });
      inRow = ok ? inRow + 1 : 0;
      if (inRow === 3) {
        // the first of the three
        summary.convergence_ms = summary.convergence_trace[summary.convergence_trace.length - 3].t;
        break;
      }
      await guest.waitForTimeout(100);
    }
    if (summary.convergence_ms === null) fail('the guest never came within 50 ms of the host in 15 s');
    summary.name_shown_guest = await guest.getByTestId('room-name').textContent();
    summary.guest_controls_disabled = await guest.getByTestId('room-toggle').isDisabled()
      && await guest.getByTestId('room-forward').isDisabled() && await guest.getByTestId('room-skip').isDisabled()
      && await guest.getByTestId('toggle').isDisabled();
    summary.pwned = await host.evaluate(() => window.__pwned ?? null) ?? await guest.evaluate(() => window.__pwned ?? null);
    await desk.until(host, () => document.querySelectorAll('[data-testid=room-members] li').length === 2, null, 'two members on the host page');
    await phone.until(guest, () => document.querySelectorAll('[data-testid=room-members] li').length === 2, null, 'two members on the guest page');
    summary.clock = {
      host: { offset: Number(await host.getByTestId('rooms').getAttribute('data-clock-offset')), rtt: Number(await host.getByTestId('rooms').getAttribute('data-clock-rtt')) },
      guest: { offset: Number(await guest.getByTestId('rooms').getAttribute('data-clock-offset')), rtt: Number(await guest.getByTestId('rooms').getAttribute('data-clock-rtt')) },
    };
    // the panel's top under the sticky top bar
    for (const p of [host, guest])
      await p.evaluate(() => window.scrollTo(0, document.querySelector('[data-testid=rooms]').getBoundingClientRect().top + window.scrollY - 72));
    await desk.shot(host, 'room');
    await phone.shot(guest, 'room');
  });

  await step('20 s of sampling while the host seeks and pauses', async () => {
    // the host's clicks fall midway between two samples: a pair of samples
    // taken while the room's event is on its way to the two pages would
    // compare a page that has it with one that has not yet
    const plan = [
      { at: 5750, name: 'seek +10 s', testid: 'room-forward' },
      { at: 11750, name: 'pause', testid: 'room-toggle' },
      { at: 15750, name: 'play', testid: 'room-toggle' },
    ];
    const t0 = Date.now();
    let next = 0;
    for (let i = 0; i * SAMPLE_MS < SAMPLES_FOR_MS; i++) {
      const due = t0 + i * SAMPLE_MS;
      while (next < plan.length && t0 + plan[next].at < due) {
        const a = plan[next++];
        if (Date.now() < t0 + a.at) await host.waitForTimeout(t0 + a.at - Date.now());
        const before = await sample(host);
        await desk.tapOrClick(host.getByTestId(a.testid));
        summary.actions.push({ t: Date.now() - t0, name: a.name, host_pos_before: Math.round(before.pos) });
      }
      if (Date.now() < due) await host.waitForTimeout(due - Date.now());
      const p = await pair(host, guest);
      summary.samples.push({
        t: Date.now() - t0, diff: Number.isFinite(p.diff) ? p.diff : null,
        host: { pos: Math.round(p.h.pos), paused: p.h.paused, rate: p.h.rate }, guest: { pos: Math.round(p.g.pos), paused: p.g.paused, rate: p.g.rate },
      });
    }
    if (summary.samples.some((s) => s.diff === null)) fail('a sample had no position or no clock');
    const last = summary.samples[summary.samples.length - 1];
    if (last.host.paused || last.guest.paused) fail('the room is not playing again after the host\'s play');
    summary.members = await host.evaluate(() => Array.from(document.querySelectorAll('[data-testid=room-members] li'),
      (li) => ({ user: li.getAttribute('data-user'), sync: li.getAttribute('data-sync') })));
    // what the server holds, read by the host page with its token while
    // both pages are still in the room (a closed page leaves it)
    summary.server_room = await host.evaluate(async ([id, token]) => {
      const r = await fetch(`api/rooms/${id}`, { headers: { Authorization: `Bearer ${token}` } });
      return { status: r.status, body: await r.json() };
    }, [summary.room_id, env.HOST_TOKEN || '']);
    await desk.shot(host, 'room-after');
    await phone.shot(guest, 'room-after');
  });

  await step('a stalled guest buffers, the host plays on, the guest catches up', async () => {
    // the guest's media requests are held while the host starts another
    // track: the guest waits for data (buffering), the host does not
    let release;
    const held = new Promise((r) => { release = r; });
    await guest.route(/\/stream\//, async (route) => { await held; await route.continue(); });
    const row = host.locator('[data-testid=tracks] li').filter({ has: host.locator('.t-title', { hasText: STALL_TITLE }) });
    await desk.tapOrClick(row.first().locator('.track-play'));
    const id = await row.first().getAttribute('data-track-id');
    await desk.until(host, (tid) => { const a = document.getElementById('audio');
      return a.currentSrc.includes(`/stream/${tid}`) && a.currentTime > 0.5 && !a.paused; }, id, 'the host to play the other track');
    // the server hears of the guest's buffering and tells the room
    await desk.until(host, () => document.querySelector('[data-testid=room-members] li[data-user=room-guest]')?.getAttribute('data-sync') === 'buffering',
      null, 'the host page to show the guest buffering');
    const before = await sample(host);
    await host.waitForTimeout(STALL_MS);
    const after = await sample(host);
    summary.stall = {
      host_played_ms: Math.round(after.pos - before.pos), host_paused: after.paused,
      guest_buffering_shown: true,
    };
    release();
    const released = Date.now();
    let inRow = 0;
    const trace = [];
    while (Date.now() - released < 15000) {
      const p = await pair(host, guest);
      const ok = !p.g.paused && Number.isFinite(p.diff) && Math.abs(p.diff) < CONVERGED_MS;
      trace.push({ t: Date.now() - released, diff: Number.isFinite(p.diff) ? Math.round(p.diff) : null });
      inRow = ok ? inRow + 1 : 0;
      if (inRow === 3) {
        summary.stall.catch_up_ms = trace[trace.length - 3].t;
        break;
      }
      await guest.waitForTimeout(100);
    }
    summary.stall.trace = trace;
    await guest.unroute(/\/stream\//);
    if (summary.stall.catch_up_ms === undefined) fail('the guest never caught up with the host in 15 s after its data came');
  });

  await step('the shared queue', async () => {
    const entries = (page) => page.evaluate(() => Array.from(document.querySelectorAll('[data-testid=room-queue] li[data-entry-id]'),
      (li) => li.getAttribute('data-entry-id')));
    const count = (page, n, what) => (page === host ? desk : phone).until(page,
      (k) => document.querySelectorAll('[data-testid=room-queue] li[data-entry-id]').length === k, n, what);
    const q = { start: await entries(host) };
    const n0 = q.start.length;
    await desk.tapOrClick(host.getByTestId('room-add-current'));
    await count(host, n0 + 1, 'the playing track added');
    await host.getByTestId('room-add-artist-input').fill(ARTIST);
    await desk.tapOrClick(host.getByTestId('room-add-artist'));
    await count(host, n0 + 1 + ARTIST_TRACKS, "the artist's tracks added");
    q.added = await entries(host);
    const last = q.added[q.added.length - 1];
    await desk.tapOrClick(host.locator(`[data-testid=room-queue] li[data-entry-id="${last}"] button[aria-label^="Move"][aria-label$=" up"]`));
    await desk.until(host, (id) => { const l = Array.from(document.querySelectorAll('[data-testid=room-queue] li[data-entry-id]'));
      return l.length > 1 && l[l.length - 2].getAttribute('data-entry-id') === id; }, last, 'the last entry moved up');
    q.moved = await entries(host);
    await desk.tapOrClick(host.locator(`[data-testid=room-queue] li[data-entry-id="${last}"] button[aria-label^="Remove"]`));
    await count(host, q.added.length - 1, 'the entry removed');
    q.removed = await entries(host);
    // the guest sees the same queue; in host mode it may add, not reorder or remove
    await count(guest, q.removed.length, 'the guest to see the queue');
    q.guest = await entries(guest);
    q.guest_move_disabled = await guest.locator('[data-testid=room-queue] li[data-entry-id] button[aria-label^="Remove"]').first().isDisabled();
    await phone.tapOrClick(guest.getByTestId('room-add-current'));
    await count(host, q.removed.length + 1, "the guest's track added, on the host's page");
    q.after_guest_add = await entries(host);
    summary.queue = q;
  });

  summary.ok = true;
  exitCode = 0;
} catch (e) {
  await failed(e, host);
  if (guest) await phone.shot(guest, 'failure').catch(() => {});
}
await finish(browser, summary, exitCode);
