import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { repoRoot } from './processes.js';

/** Debian's chromium (installed by .ci/run), or SPARSIFY_CHROMIUM. */
export const CHROMIUM = process.env.SPARSIFY_CHROMIUM ?? '/usr/bin/chromium';

/** Where browser tests leave their screenshots (kept by CI as artifacts). */
export const ARTIFACTS = join(repoRoot, 'test-artifacts');

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: apt-get install -y chromium (as .ci/run does), or set SPARSIFY_CHROMIUM`);
  mkdirSync(ARTIFACTS, { recursive: true });
  return chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--allow-file-access-from-files'] });
}

/** A page that records console errors and uncaught exceptions. */
export async function watchedPage(browser: Browser): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1300, height: 1000 } });
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  return { page, errors };
}

/** Go to `url` (with a hash route) and wait until the app has rendered that route. */
export async function openRoute(page: Page, url: string): Promise<void> {
  const hash = new URL(url).hash || '#/';
  await page.goto(url);
  await page.waitForSelector(`#app[data-ready="${hash}"]`, { timeout: 15_000 });
}
