/**
 * The dashboard on a phone and as an installable app, in headless Chromium
 * against the real gateway and simulator (as test/e2e.test.ts):
 * - at 390×844 (and 360, 430 px) nothing runs off the side, the header's
 *   controls stay on screen and are touch-sized, the panels stack;
 * - the web app manifest is served and valid, its icons load;
 * - the service worker registers, controls the page, keeps the shell for
 *   offline use, and after events flowed its cache holds only the shell:
 *   no /api, /ws, /schemas entry, no credential; the sign-in form fits too;
 * - at 1280 px the desktop layout is as before (two columns, one header row).
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  freePort,
  launchBrowser,
  mintToken,
  newSecret,
  startGateway,
  startSimulator,
  stopProcess,
  type LoggedProcess,
} from '../scripts/harness.mjs';
import { scaled } from '../../clients/typescript/test/helpers/timeouts';
import { browserTestPlan, requirePrerequisites } from './prerequisites';

const plan = browserTestPlan();
const WAIT = scaled(15_000);
const PHONE = { width: 390, height: 844 };
/** An admin-only API the phone's reader token asks for (403): a credential-bearing request. */
const ADMIN_PROBE = '/api/v1/connections';

interface Box {
  what: string;
  left: number;
  right: number;
  top: number;
  bottom: number;
  width: number;
  height: number;
}

/** The boxes of the elements matching `selector`, labelled for failure messages. */
function boxes(page: Page, selector: string): Promise<Box[]> {
  return page.$$eval(selector, (els) =>
    els.map((el) => {
      const r = el.getBoundingClientRect();
      const what = `${el.tagName.toLowerCase()}.${el.className} "${(el.textContent ?? '').trim().slice(0, 24)}"`;
      return { what, left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, height: r.height };
    }),
  );
}

/** The interactive controls of the header and the filter bar. */
const CONTROLS = '.topbar button, .filterbar button, .filterbar summary';

/** Width and height from a PNG's IHDR chunk. */
function pngSize(bytes: Buffer): { width: number; height: number } {
  expect(bytes.subarray(1, 4).toString('latin1')).toBe('PNG');
  return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
}

describe.skipIf(plan.skip)('dashboard on a phone, installable', () => {
  let secret: string;
  let base: string;
  let gateway: LoggedProcess | null = null;
  let sim: LoggedProcess | null = null;
  let browser: Browser;
  let phone: BrowserContext;
  let page: Page;
  let token: string;
  const problems: string[] = [];

  const watch = (p: Page) => {
    p.on('pageerror', (e) => problems.push(`pageerror: ${String(e)}`));
    // A CSP that blocked the manifest or the worker would show up here.
    p.on('console', (m) => {
      // The one expected failure: the reader's own probe of the admin API below.
      if (m.location().url.endsWith(ADMIN_PROBE)) return;
      if (m.type() === 'error' || /service worker|Content Security Policy/i.test(m.text())) problems.push(`console: ${m.text()}`);
    });
  };

  const eventTotal = async (): Promise<number> => Number(await page.locator('[data-testid=event-total]').textContent());

  beforeAll(async () => {
    requirePrerequisites(plan);
    secret = newSecret();
    const gw = await startGateway({ port: await freePort(), secret, timeoutMs: scaled(20_000) });
    gateway = gw.proc;
    base = gw.base;
    // A gentle rate: a phone page rendered at device scale 3 is costly on a busy machine.
    sim = startSimulator({ base, token: mintToken(secret, 'simulator', ['publish:*']), rate: 2, seed: 3 });
    browser = await launchBrowser();
    phone = await browser.newContext({ viewport: PHONE, deviceScaleFactor: 3, isMobile: true, hasTouch: true });
    page = await phone.newPage();
    page.setDefaultTimeout(WAIT);
    watch(page);
    token = mintToken(secret, 'phone-viewer', ['read:*']);
    await page.goto(`${base}/#token=${token}`);
    await page.waitForSelector('[data-testid=connection][data-state=open]');
    for (const id of ['coder-001', 'tester-001', 'reviewer-001']) await page.waitForSelector(`[data-testid=agent-card][data-agent=${id}]`);
    await page.waitForSelector('[data-testid=sub-status][data-category=github][data-status=active]');
  });

  afterAll(async () => {
    await browser?.close();
    await stopProcess(sim);
    await stopProcess(gateway);
  });

  it('fits 390 px: no sideways scroll, header controls on screen and touch-sized, panels stacked', async () => {
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    const header = await boxes(page, `.topbar > *, ${CONTROLS}`);
    expect(header.length).toBeGreaterThanOrEqual(8);
    for (const b of header) {
      expect(b.left, b.what).toBeGreaterThanOrEqual(0);
      expect(b.right, b.what).toBeLessThanOrEqual(PHONE.width);
    }
    for (const b of await boxes(page, CONTROLS)) expect(b.height, b.what).toBeGreaterThanOrEqual(44);
    // The sign-out button shares the first row with the brand.
    const [brand] = await boxes(page, '.topbar .brand');
    const [signOut] = await boxes(page, '.topbar > button');
    expect(signOut!.top).toBeLessThan(brand!.bottom);

    // One column: every panel starts at the same x and none sits beside another.
    const panels = await boxes(page, '.panel');
    expect(panels.length).toBe(6);
    for (const p of panels) expect(Math.abs(p.left - panels[0]!.left), p.what).toBeLessThan(1);
    const sorted = [...panels].sort((a, b) => a.top - b.top);
    for (let i = 1; i < sorted.length; i++) expect(sorted[i]!.top).toBeGreaterThanOrEqual(sorted[i - 1]!.bottom);
  });

  it('the event-type menu opens inside the viewport with touch-sized options', async () => {
    await page.tap('[data-testid=type-filter] summary');
    await page.waitForSelector('.types-menu', { state: 'visible' });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
    const options = await boxes(page, '.types-menu label, .types-menu button');
    expect(options.length).toBeGreaterThan(10);
    for (const b of [...(await boxes(page, '.types-menu')), ...options]) {
      expect(b.left, b.what).toBeGreaterThanOrEqual(0);
      expect(b.right, b.what).toBeLessThanOrEqual(PHONE.width);
    }
    for (const b of options) expect(b.height, b.what).toBeGreaterThanOrEqual(44);
    await page.tap('[data-testid=type-filter] summary');
    await page.waitForSelector('.types-menu', { state: 'hidden' });
  });

  it('fits the narrowest and widest phones too (360 and 430 px)', async () => {
    try {
      for (const width of [360, 430]) {
        await page.setViewportSize({ width, height: PHONE.height });
        await page.waitForFunction((w) => window.innerWidth === w, width);
        expect(await page.evaluate(() => document.documentElement.scrollWidth), `at ${width} px`).toBeLessThanOrEqual(width);
        for (const b of await boxes(page, `.topbar > *, ${CONTROLS}`)) expect(b.right, `${b.what} at ${width} px`).toBeLessThanOrEqual(width);
      }
    } finally {
      await page.setViewportSize(PHONE);
    }
  });

  it('serves a valid web app manifest whose icons load', async () => {
    const href = await page.locator('link[rel=manifest]').getAttribute('href');
    expect(href).toBeTruthy();
    const res = await page.request.get(new URL(href!, base).href);
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toMatch(/^application\/(manifest\+)?json/);
    const manifest = (await res.json()) as {
      name?: string;
      short_name?: string;
      start_url?: string;
      display?: string;
      theme_color?: string;
      background_color?: string;
      icons?: { src: string; sizes: string; type: string }[];
    };
    expect(manifest.name).toMatch(/AutoSDLC/);
    expect(manifest.short_name).toBeTruthy();
    expect(new URL(manifest.start_url!, res.url()).href).toBe(`${base}/`);
    expect(manifest.display).toBe('standalone');
    expect(manifest.background_color).toMatch(/^#[0-9a-f]{6}$/i);
    expect(await page.locator('meta[name=theme-color]').getAttribute('content')).toBe(manifest.theme_color);
    const icons = manifest.icons ?? [];
    for (const size of [192, 512]) {
      const icon = icons.find((i) => i.sizes === `${size}x${size}` && i.type === 'image/png');
      expect(icon, `a ${size}px PNG icon`).toBeDefined();
    }
    const touchIcon = await page.locator('link[rel=apple-touch-icon]').getAttribute('href');
    for (const src of [...icons.map((i) => i.src), touchIcon!]) {
      const img = await page.request.get(new URL(src, res.url()).href);
      expect(img.status(), src).toBe(200);
      expect(img.headers()['content-type'], src).toBe('image/png');
      const { width, height } = pngSize(await img.body());
      const declared = icons.find((i) => i.src === src)?.sizes;
      if (declared) expect(`${width}x${height}`, src).toBe(declared);
      else expect(width, src).toBe(height);
    }
  });

  it('registers a service worker that controls the page and caches the shell only', async () => {
    const scriptURL = await page.evaluate(async () => (await navigator.serviceWorker.ready).active?.scriptURL);
    expect(scriptURL).toBe(`${base}/sw.js`);
    // clients.claim(): this page is controlled without a reload.
    await page.waitForFunction(() => navigator.serviceWorker.controller !== null);
    const sw = await page.request.get(`${base}/sw.js`);
    expect(sw.headers()['content-type']).toMatch(/^text\/javascript/);
    expect(sw.headers()['cache-control']).toBe('no-cache');

    // Events flow through the controlled page; and what could carry data or a
    // credential goes through the worker too.
    const before = await eventTotal();
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=event-total]')?.textContent) >= n + 10, before);
    const statuses = await page.evaluate(
      async ({ bearer, probe, wait }) => {
        const hit = async (url: string, init?: RequestInit) => {
          try {
            return (await fetch(url, { ...init, signal: AbortSignal.timeout(wait) })).status;
          } catch (err) {
            return `${url}: ${String(err)}`;
          }
        };
        return [
          await hit(probe, { headers: { Authorization: `Bearer ${bearer}` } }),
          await hit('/schemas/agent_status.json'),
          await hit('/healthz'),
          await hit(`/?token=${bearer}`),
          await hit('/', { headers: { Authorization: `Bearer ${bearer}` } }),
        ];
      },
      { bearer: token, probe: ADMIN_PROBE, wait: WAIT / 3 },
    );
    // Answered by the gateway (a reader may not list connections), not by a cache.
    expect(statuses).toEqual([403, 200, 200, 200, 200]);

    const cached = await page.evaluate(async () => {
      const urls: string[] = [];
      for (const name of await caches.keys()) {
        const cache = await caches.open(name);
        for (const req of await cache.keys()) urls.push(`${name} ${req.url}`);
      }
      return urls;
    });
    const paths = cached.map((line) => new URL(line.split(' ')[1]!).pathname);
    expect(paths).toContain('/');
    expect(paths.some((p) => /^\/assets\/index-.+\.js$/.test(p))).toBe(true);
    expect(paths).toContain('/assets/manifest.webmanifest');
    for (const line of cached) {
      const url = new URL(line.split(' ')[1]!);
      expect(url.origin, line).toBe(base);
      expect(url.pathname === '/' || url.pathname.startsWith('/assets/'), line).toBe(true);
      expect(url.search + url.hash, line).toBe('');
      expect(line).not.toContain(token);
    }
  });

  it('opens from the cache when the network is gone', async () => {
    const offline = await phone.newPage();
    offline.setDefaultTimeout(WAIT);
    watch(offline);
    try {
      await phone.setOffline(true);
      const res = await offline.goto(`${base}/`);
      expect(res?.fromServiceWorker()).toBe(true);
      // The shell renders (the credential is per tab, so a new tab asks to sign in),
      // and the sign-in form fits the phone with touch-sized choices.
      await offline.waitForSelector('form[aria-label="Sign in"]');
      expect(await offline.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(PHONE.width);
      const choices = await boxes(offline, '.login-kind label, .login-remember, .login-card button');
      expect(choices.length).toBe(5);
      for (const b of choices) {
        expect(b.height, b.what).toBeGreaterThanOrEqual(44);
        expect(b.right, b.what).toBeLessThanOrEqual(PHONE.width);
      }
    } finally {
      await phone.setOffline(false);
      await offline.close();
    }
  });

  it('keeps the desktop layout at 1280 px', async () => {
    const desk = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    desk.setDefaultTimeout(WAIT);
    watch(desk);
    try {
      await desk.goto(`${base}/#token=${mintToken(secret, 'desk-viewer', ['read:*'])}`);
      await desk.waitForSelector('[data-testid=connection][data-state=open]');
      await desk.waitForSelector('[data-testid=agent-card]');
      // One header row, sticky, with the sign-out button at the right edge.
      const header = await boxes(desk, '.topbar > :not(.spacer)');
      const mid = (b: Box) => (b.top + b.bottom) / 2;
      for (const b of header) expect(Math.abs(mid(b) - mid(header[0]!)), b.what).toBeLessThan(6);
      expect(await desk.$eval('.topbar', (e) => getComputedStyle(e).position)).toBe('sticky');
      // Two columns side by side.
      const [main] = await boxes(desk, '.col-main');
      const [side] = await boxes(desk, '.col-side');
      expect(side!.left).toBeGreaterThanOrEqual(main!.right);
      expect(Math.abs(side!.top - main!.top)).toBeLessThan(1);
      // Agent cards several to a row, the type menu floating over the page.
      const cards = await boxes(desk, '[data-testid=agent-card]');
      expect(new Set(cards.map((c) => Math.round(c.top))).size).toBeLessThan(cards.length);
      expect(await desk.$eval('.types-menu', (e) => getComputedStyle(e).position)).toBe('absolute');
      for (const b of await boxes(desk, '.topbar button, .filterbar .chip')) expect(b.height, b.what).toBeLessThan(44);
    } finally {
      await desk.close();
    }
    expect(problems).toEqual([]);
  });
});

if (plan.skip) {
  it.skip(`dashboard mobile e2e: missing ${plan.missing!.join(', ')} (fails instead under CI)`, () => undefined);
}
