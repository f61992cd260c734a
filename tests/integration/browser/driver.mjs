// driver.mjs - what the browser drivers (share, feedback, webplayer, lbplayer,
// loudness) share: their arguments, Debian's headless Chromium through
// playwright-core (no browser is downloaded) at a desktop viewport or as a
// phone ('Pixel 5'), page-error and console-error capture, and the helpers
// of their steps: step, until, shot, tapOrClick. Not a driver itself.
import { chromium, devices } from 'playwright-core';
import fs from 'node:fs';
import path from 'node:path';

export class Failure extends Error {}
export const fail = (msg) => { throw new Failure(msg); };

// argv: [BASE_URL, ...names, OUTDIR, desktop|mobile]; exits 2 with a usage line
// when one is missing. Returns { base, mode, mobile, outDir, waitMs, args }.
export function parseArgs(script, names = []) {
  const argv = process.argv.slice(2);
  const [baseArg] = argv;
  const args = argv.slice(1, 1 + names.length);
  const [outDir, mode = 'desktop'] = argv.slice(1 + names.length);
  if (!baseArg || args.length < names.length || args.some((a) => !a) || !outDir
      || !['desktop', 'mobile'].includes(mode)) {
    const usage = ['BASE_URL', ...names, 'OUTDIR', 'desktop|mobile'].join(' ');
    process.stderr.write(`usage: node ${script} ${usage}\n`);
    process.exit(2);
  }
  return {
    base: baseArg.replace(/\/+$/, ''), args, outDir, mode, mobile: mode === 'mobile',
    waitMs: Number(process.env.WAIT_MS || 20000),
  };
}

// The helpers of one run, writing into summary (steps, screenshots).
// detail(page): more words for a timeout (e.g. the <audio> element's state).
export function helpers({ summary, outDir, mode, mobile, waitMs, fullPage = false, polling = 100, detail = null }) {
  async function until(page, fn, arg, what, ms = waitMs) {
    try {
      const h = await page.waitForFunction(fn, arg, { timeout: ms, polling });
      return await h.jsonValue();
    } catch {
      const more = detail ? await detail(page) : '';
      fail(`timed out after ${ms} ms waiting for ${what}${more}`);
    }
  }

  async function shot(page, name) {
    const file = path.join(outDir, `${mode}-${name}.png`);
    await page.screenshot({ path: file, fullPage });
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

  // a run's failure: its message in summary.failure, a screenshot of PAGE
  async function failed(e, page) {
    summary.failure = e instanceof Error ? e.message : String(e);
    if (page) await shot(page, 'failure').catch(() => {});
  }

  return { until, shot, tapOrClick, step, failed };
}

// The end of a run: closes BROWSER, prints SUMMARY as one JSON line, exits.
export async function finish(browser, summary, exitCode) {
  if (browser) await browser.close().catch(() => {});
  process.stdout.write(JSON.stringify(summary) + '\n');
  process.exit(exitCode);
}

// Makes OUTDIR, launches Chromium (CHROMIUM, else /usr/bin/chromium) and opens
// one page, desktop 1280x800 or 'Pixel 5'; page errors go to
// summary.page_errors, console errors to summary.console_errors when the
// summary has that list. Returns { browser, page }.
export async function launch({ base, outDir, mobile, summary }) {
  fs.mkdirSync(outDir, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required', '--mute-audio',
      `--explicitly-allowed-ports=${new URL(base).port || 80}`],
  });
  const context = await browser.newContext(mobile ? { ...devices['Pixel 5'] } : { viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on('pageerror', (e) => summary.page_errors.push(String(e)));
  if (Array.isArray(summary.console_errors))
    page.on('console', (m) => { if (m.type() === 'error') summary.console_errors.push(m.text()); });
  return { browser, page };
}
