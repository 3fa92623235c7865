/**
 * End to end in headless Chromium (playwright-core driving Debian's chromium):
 * the real gateway and simulator, the built dashboard served at `/`.
 *
 * Steps run in order on one page; each has its own bounded wait.
 */
import type { Browser, Page, WebSocket as PwWebSocket } from 'playwright-core';
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

interface FeedRow {
  seq: number;
  type: string;
  agent: string;
}

describe.skipIf(plan.skip)('dashboard in Chromium against the real gateway', { timeout: scaled(90_000) }, () => {
  let secret: string;
  let port: number;
  let base: string;
  let gateway: LoggedProcess | null = null;
  let sim: LoggedProcess | null = null;
  let browser: Browser;
  let page: Page;
  const requestUrls: string[] = [];
  const framesSent: string[] = [];
  const wsUrls: string[] = [];
  const pageErrors: string[] = [];

  const dumpLogs = (): string => [...(gateway?.output ?? []), ...(sim?.output ?? [])].slice(-40).join('\n');

  async function feedRows(): Promise<FeedRow[]> {
    return page.$$eval('[data-testid=feed-item]', (els) =>
      els.map((e) => ({
        seq: Number(e.getAttribute('data-seq')),
        type: e.getAttribute('data-type') ?? '',
        agent: e.getAttribute('data-agent') ?? '',
      })),
    );
  }

  async function latestMarker(text: string): Promise<number> {
    const marker = page.locator('[data-testid=feed-marker][data-kind=marker]', { hasText: text }).first();
    await marker.waitFor({ timeout: WAIT });
    return Number(await marker.getAttribute('data-seq'));
  }

  async function total(): Promise<number> {
    return Number(await page.locator('[data-testid=event-total]').textContent());
  }

  beforeAll(async () => {
    requirePrerequisites(plan);
    secret = newSecret();
    port = await freePort();
    const gw = await startGateway({ port, secret, timeoutMs: scaled(20_000) });
    gateway = gw.proc;
    base = gw.base;
    sim = startSimulator({ base, token: mintToken(secret, 'simulator', ['publish:*']), rate: 5, seed: 1 });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(WAIT);
    page.on('request', (r) => requestUrls.push(r.url()));
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('websocket', (ws: PwWebSocket) => {
      wsUrls.push(ws.url());
      ws.on('framesent', (f) => framesSent.push(String(f.payload)));
    });
  }, scaled(60_000));

  afterAll(async () => {
    await browser?.close();
    await stopProcess(sim);
    await stopProcess(gateway);
  }, scaled(60_000));

  it('serves the dashboard at / with a login form and a strict CSP', async () => {
    const res = await page.goto(`${base}/`);
    expect(res?.status()).toBe(200);
    expect(res?.headers()['content-security-policy']).toContain("script-src 'self'");
    await expect(page.locator('form[aria-label="Sign in"] textarea').isVisible()).resolves.toBe(true);
  });

  it('logs in with a pasted token, sent in-band and never in a URL', async () => {
    const token = mintToken(secret, 'e2e-viewer', ['read:*']);
    await page.fill('form[aria-label="Sign in"] textarea', token);
    await page.click('form[aria-label="Sign in"] button[type=submit]');
    await page.waitForSelector('[data-testid=connection][data-state=open]');
    await expect(page.locator('.who strong').textContent()).resolves.toBe('e2e-viewer');
    expect(wsUrls.length).toBeGreaterThan(0);
    for (const url of [...requestUrls, ...wsUrls]) expect(url).not.toContain(token);
    const auth = framesSent.map((f) => JSON.parse(f)).find((m) => m.type === 'auth_request');
    expect(auth?.data?.token).toBe(token);
    // every category subscribed
    await page.waitForSelector('[data-testid=sub-status][data-category=github][data-status=active]');
    expect(await page.locator('[data-testid=sub-status][data-status=active]').count()).toBe(4);
  });

  it('shows the agents and a task progress bar that moves', async () => {
    for (const id of ['coder-001', 'tester-001', 'reviewer-001']) {
      await page.waitForSelector(`[data-testid=agent-card][data-agent=${id}]`);
    }
    // Watch the progress bars until one moves forward within the same task.
    const read = () =>
      page.$$eval('[data-testid=agent-card]', (cards) =>
        Object.fromEntries(
          cards.map((c) => {
            const task = c.querySelector('.agent-task .task-id')?.textContent ?? '';
            const bar = c.querySelector('[role=progressbar][aria-label$="task progress"]');
            return [`${c.getAttribute('data-agent')}/${task}`, Number(bar?.getAttribute('aria-valuenow') ?? 0)];
          }),
        ),
      );
    const seen: Record<string, number> = await read();
    const deadline = Date.now() + WAIT;
    let moved: string | null = null;
    while (moved === null && Date.now() < deadline) {
      await page.waitForTimeout(150);
      for (const [key, value] of Object.entries(await read())) {
        if (seen[key] !== undefined && value > seen[key]!) moved = `${key}: ${seen[key]}% -> ${value}%`;
        seen[key] = Math.max(seen[key] ?? 0, value);
      }
    }
    expect(moved, `no progress bar moved: ${JSON.stringify(seen)}`).not.toBeNull();
    // CPU and memory figures are filled in (by the agent's first metric, which may
    // come after the progress moved: a bounded wait, not a single look)
    const cpu = page.locator('[data-testid=agent-card][data-agent=coder-001] .metric-value').first();
    await expect.poll(() => cpu.textContent(), { timeout: WAIT, interval: 150 }).toMatch(/%$/);
  });

  it('shows a TDD phase change arriving', async () => {
    await page.waitForSelector('[data-testid=phase-change]');
    const before = await page.locator('[data-testid=phase-change]').first().getAttribute('data-phase');
    const firstText = await page.locator('[data-testid=phase-change]').first().textContent();
    // A new one arrives at the top of the list.
    await page.waitForFunction(
      (text) => document.querySelector('[data-testid=phase-change]')?.textContent !== text,
      firstText,
      { timeout: WAIT },
    );
    const after = await page.locator('[data-testid=phase-change]').first().getAttribute('data-phase');
    expect(['red', 'green', 'refactor']).toContain(after);
    expect(before).not.toBeNull();
    await expect(page.locator('[data-testid=tdd-card][data-agent=coder-001]').getAttribute('data-phase')).resolves.toMatch(
      /^(red|green|refactor)$/,
    );
  });

  it('an agent filter changes the subscription, and the feed shows only that agent', async () => {
    const sentBefore = framesSent.length;
    await page.click('[data-testid=agent-filter] button[data-agent=coder-001]');
    const markerSeq = await latestMarker('agent coder-001');
    // The filter went to the gateway: unsubscribe, then subscribe with agentId.
    const sent = framesSent.slice(sentBefore).map((f) => JSON.parse(f));
    expect(sent.some((m) => m.type === 'unsubscribe')).toBe(true);
    const sub = sent.find((m) => m.type === 'subscribe');
    expect(sub?.data?.filters).toEqual({ agentId: ['coder-001'] });
    await page.waitForSelector('[data-testid=sub-status][data-category=workflows][data-status=off]');

    // Events after the marker: only coder-001's.
    await page.waitForFunction(
      (seq) =>
        [...document.querySelectorAll('[data-testid=feed-item]')].filter((e) => Number(e.getAttribute('data-seq')) > seq)
          .length >= 8,
      markerSeq,
      { timeout: WAIT },
    );
    const after = (await feedRows()).filter((r) => r.seq > markerSeq);
    expect(after.length).toBeGreaterThanOrEqual(8);
    expect(after.filter((r) => r.agent !== 'coder-001')).toEqual([]);
    // Before the filter the feed had other agents and non-agent events too.
    const before = (await feedRows()).filter((r) => r.seq < markerSeq);
    expect(new Set(before.map((r) => r.agent)).size).toBeGreaterThan(1);

    // Back to everything.
    await page.click('[data-testid=agent-filter] button:has-text("all")');
    const allSeq = await latestMarker('all agents');
    await page.waitForSelector('[data-testid=sub-status][data-category=workflows][data-status=active]');
    await page.waitForFunction(
      (seq) =>
        new Set(
          [...document.querySelectorAll('[data-testid=feed-item]')]
            .filter((e) => Number(e.getAttribute('data-seq')) > seq)
            .map((e) => e.getAttribute('data-agent')),
        ).size > 1,
      allSeq,
      { timeout: WAIT },
    );
  });

  it('reconnects after a gateway restart and catches up without a reload', async () => {
    await page.evaluate(() => {
      (window as unknown as { __sameDocument: boolean }).__sameDocument = true;
    });
    // SIGTERM: the gateway sends `disconnect` and closes 1001; the page retries.
    await stopProcess(gateway);
    await page.waitForSelector('[data-testid=connection][data-state=reconnecting]', { timeout: WAIT });
    await page.waitForSelector('[data-testid=connection] .conn-detail:has-text("next attempt in")', { timeout: WAIT });
    const totalDown = await total();

    const gw = await startGateway({ port, secret, timeoutMs: scaled(20_000) });
    gateway = gw.proc;
    await page.waitForSelector('[data-testid=connection][data-state=open]', { timeout: scaled(20_000) });
    // The new process does not know the session: the client re-subscribes and reports a gap.
    await page.waitForSelector('[data-testid=feed-marker][data-kind=gap]', { timeout: WAIT });
    // New events keep arriving (the simulator retries its publishes).
    await page.waitForFunction((n) => Number(document.querySelector('[data-testid=event-total]')?.textContent) >= n + 20, totalDown, {
      timeout: scaled(20_000),
    });
    expect(await page.locator('[data-testid=sub-status][data-status=active]').count()).toBe(4);
    const same = await page.evaluate(() => (window as unknown as { __sameDocument?: boolean }).__sameDocument === true);
    expect(same, 'the page was reloaded').toBe(true);
  });

  it('shows forbidden subscriptions as such (token from the #token= fragment)', async () => {
    const limited = mintToken(secret, 'e2e-limited', ['read:agent:coder-001']);
    const p2 = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    try {
      const urls: string[] = [];
      p2.on('request', (r) => urls.push(r.url()));
      await p2.goto(`${base}/#token=${limited}`);
      await p2.waitForSelector('[data-testid=connection][data-state=open]', { timeout: WAIT });
      // the fragment is gone from the address bar, and never reached the server
      expect(new URL(p2.url()).hash).toBe('');
      for (const url of urls) expect(url).not.toContain(limited);
      // agents: scoped to what the token may read; the rest refused
      await p2.waitForSelector('[data-testid=sub-status][data-category=agents][data-status=active]', { timeout: WAIT });
      for (const c of ['workflows', 'system', 'github']) {
        const el = p2.locator(`[data-testid=sub-status][data-category=${c}]`);
        await el.and(p2.locator('[data-status=error]')).waitFor({ timeout: WAIT });
        await expect(el.textContent()).resolves.toContain('forbidden');
      }
      await expect(p2.locator('[data-testid=panel-workflows] [data-testid=forbidden]').textContent()).resolves.toContain(
        'forbidden',
      );
      await p2.waitForSelector('[data-testid=agent-card][data-agent=coder-001]', { timeout: WAIT });
      expect(await p2.locator('[data-testid=agent-card]').count()).toBe(1);
    } finally {
      await p2.close();
    }
  });

  it('a bad token goes back to the login form with the reason; a #token= link then signs in', async () => {
    const p3 = await browser.newPage();
    try {
      await p3.goto(`${base}/`);
      await p3.fill('form[aria-label="Sign in"] textarea', mintToken('not-the-secret', 'mallory', ['read:*']));
      await p3.click('form[aria-label="Sign in"] button[type=submit]');
      await p3.waitForSelector('.login-error', { timeout: WAIT });
      await expect(p3.locator('.login-error').textContent()).resolves.toMatch(/Sign-in failed/);
      // A `#token=` link opened on the loaded page is only a hash change: it signs in too.
      await p3.goto(`${base}/#token=${mintToken(secret, 'e2e-link', ['read:*'])}`);
      await p3.waitForSelector('[data-testid=connection][data-state=open]', { timeout: WAIT });
      await expect(p3.locator('.who strong').textContent()).resolves.toBe('e2e-link');
      expect(new URL(p3.url()).hash).toBe('');
    } finally {
      await p3.close();
    }
    expect(pageErrors, dumpLogs()).toEqual([]);
  });
});

if (plan.skip) {
  it.skip(`dashboard e2e: missing ${plan.missing!.join(', ')} (fails instead under CI)`, () => undefined);
}
