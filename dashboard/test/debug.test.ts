/**
 * The Debug view end to end, in headless Chromium, against the deployment it
 * is for: `serve --workers 2` sharing a private redis-server, the simulator
 * publishing, and several raw WebSocket clients spread over both workers.
 *
 * Steps run in order on one admin page; each has its own bounded wait.
 */
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  freePort,
  launchBrowser,
  mintToken,
  newSecret,
  startGateway,
  startRedis,
  startSimulator,
  stopProcess,
  type LoggedProcess,
} from '../scripts/harness.mjs';
import { scaled } from '../../clients/typescript/test/helpers/timeouts';
import { browserTestPlan, requirePrerequisites } from './prerequisites';

const plan = browserTestPlan(process.env, { redis: true });
const WAIT = scaled(15_000);
/** Raw clients opened until each worker holds at least this many. */
const PER_NODE = 2;
const MAX_CLIENTS = 16;

interface RawClient {
  subject: string;
  connectionId: string;
}

describe.skipIf(plan.skip)('Debug view in Chromium against 2 workers on Redis', { timeout: scaled(120_000) }, () => {
  let secret: string;
  let base: string;
  let redis: LoggedProcess | null = null;
  let gateway: LoggedProcess | null = null;
  let sim: LoggedProcess | null = null;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let clientsPage: Page;
  let clients: RawClient[] = [];
  const pageErrors: string[] = [];

  const dumpLogs = (): string => [...(gateway?.output ?? []), ...(sim?.output ?? []), ...(redis?.output ?? [])].slice(-40).join('\n');

  async function adminGet(path: string): Promise<Record<string, unknown>> {
    const res = await fetch(`${base}${path}`, { headers: { Authorization: `Bearer ${mintToken(secret, 'test-admin', ['admin:system'])}` } });
    expect(res.status, path).toBe(200);
    return (await res.json()) as Record<string, unknown>;
  }

  /** Opens one raw WebSocket client (subject `debug-client-<i>`, subscribed to one repository) in the clients page. */
  async function openClient(i: number): Promise<RawClient> {
    const subject = `debug-client-${String(i).padStart(2, '0')}`;
    const token = mintToken(secret, subject, ['read:*']);
    const connectionId = await clientsPage.evaluate(
      ({ url, token, subject, repo }) =>
        new Promise<string>((resolve, reject) => {
          const w = window as unknown as { sockets?: Record<string, WebSocket>; closes?: Record<string, { code: number; reason: string }> };
          w.sockets ??= {};
          w.closes ??= {};
          const ws = new WebSocket(`${url}?token=${token}`);
          ws.onmessage = (m) => {
            const msg = JSON.parse(String(m.data)) as { type: string; data: { connectionId?: string } };
            if (msg.type === 'connect') {
              w.sockets![subject] = ws;
              ws.send(JSON.stringify({ id: `sub-${subject}`, type: 'subscribe', timestamp: Date.now(), data: { events: ['github_*'], filters: { repository: [repo] } } }));
              resolve(msg.data.connectionId!);
            }
          };
          ws.onclose = (e) => {
            w.closes![subject] = { code: e.code, reason: e.reason };
            reject(new Error(`closed ${e.code}`));
          };
        }),
      { url: base.replace(/^http/, 'ws') + '/ws', token, subject, repo: `octo/${subject}` },
    );
    return { subject, connectionId };
  }

  beforeAll(async () => {
    requirePrerequisites(plan);
    secret = newSecret();
    const r = await startRedis({ port: await freePort(), timeoutMs: scaled(10_000) });
    redis = r.proc;
    const port = await freePort();
    const gw = await startGateway({ port, secret, args: ['--workers', '2', '--broker', r.url], timeoutMs: scaled(30_000) });
    gateway = gw.proc;
    base = gw.base;
    // Both workers registered before the page looks.
    const deadline = Date.now() + WAIT;
    while (Date.now() < deadline && ((await adminGet('/api/v1/nodes')).count as number) < 2) await new Promise((res) => setTimeout(res, 200));
    sim = startSimulator({ base, token: mintToken(secret, 'simulator', ['publish:*']), rate: 4, seed: 5 });
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    clientsPage = await browser.newPage(); // about:blank: no CSP in the way of raw sockets
  }, scaled(90_000));

  afterAll(async () => {
    await browser?.close();
    await stopProcess(sim);
    await stopProcess(gateway);
    await stopProcess(redis);
  }, scaled(60_000));

  it('a credential without admin sees no Debug tab and never calls the admin API', async () => {
    const reader = await browser.newPage();
    try {
      const apiCalls: string[] = [];
      reader.on('request', (r) => {
        if (new URL(r.url()).pathname.startsWith('/api/')) apiCalls.push(r.url());
      });
      await reader.goto(`${base}/#token=${mintToken(secret, 'reader', ['read:*', 'publish:*'])}`);
      await reader.waitForSelector('[data-testid=connection][data-state=open]', { timeout: WAIT });
      await reader.waitForSelector('[data-testid=feed-item]', { timeout: WAIT });
      expect(await reader.locator('[data-testid=tab-debug]').count()).toBe(0);
      expect(await reader.locator('[data-testid=feed-item][role=button]').count()).toBe(0);
      expect(apiCalls).toEqual([]);
    } finally {
      await reader.close();
    }
  });

  it('an admin opens the Debug view: both nodes, healthy', async () => {
    await page.goto(`${base}/#token=${mintToken(secret, 'e2e-admin', ['read:*', 'admin:*'])}`);
    await page.waitForSelector('[data-testid=connection][data-state=open]');
    await page.click('[data-testid=tab-debug]');
    await page.waitForSelector('[data-testid=debug-view]');
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=node-row][data-health=ok]').length === 2, null, { timeout: WAIT });
    const nodes = (await adminGet('/api/v1/nodes')).nodes as { nodeId: string }[];
    for (const n of nodes) await page.waitForSelector(`[data-testid=node-row][data-node="${n.nodeId}"]`);
  });

  it('lists every connection of both workers', async () => {
    // Raw clients until each worker holds PER_NODE of them (the kernel spreads them, SO_REUSEPORT).
    const byNode = new Map<string, number>();
    for (let i = 0; i < MAX_CLIENTS; i++) {
      clients.push(await openClient(i));
      const listed = (await adminGet('/api/v1/connections')).connections as { connectionId: string; nodeId: string }[];
      byNode.clear();
      for (const c of listed.filter((c) => clients.some((k) => k.connectionId === c.connectionId))) byNode.set(c.nodeId, (byNode.get(c.nodeId) ?? 0) + 1);
      if (clients.length >= 4 && byNode.size === 2 && [...byNode.values()].every((n) => n >= PER_NODE)) break;
    }
    expect(byNode.size, `clients per node: ${JSON.stringify([...byNode])}`).toBe(2);

    // Every connection of the deployment is a row: the clients, this page, the simulator's none (HTTP).
    for (const c of clients) await page.waitForSelector(`[data-testid=connection-row][data-connection="${c.connectionId}"]`);
    const listed = (await adminGet('/api/v1/connections')).connections as { connectionId: string }[];
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=connection-row]').length === n, listed.length, { timeout: WAIT });
    const rowNodes = await page.$$eval('[data-testid=connection-row]', (rows) => [...new Set(rows.map((r) => r.getAttribute('data-node')))]);
    expect(rowNodes.length).toBe(2);
    await expect(page.locator('[data-testid=connection-row]', { hasText: 'this tab' }).count()).resolves.toBe(1);
  });

  it('filters the table by subject and by resource, and sorts it', async () => {
    const one = clients[1]!;
    await page.fill('[data-testid=filter-subject]', one.subject);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=connection-row]').length === 1);
    await expect(page.locator('[data-testid=connection-row]').getAttribute('data-connection')).resolves.toBe(one.connectionId);
    await page.fill('[data-testid=filter-subject]', '');
    await page.fill('[data-testid=filter-resource]', `repo:octo/${clients[2]!.subject}`);
    await page.waitForFunction(() => document.querySelectorAll('[data-testid=connection-row]').length === 1);
    await expect(page.locator('[data-testid=connection-row]').getAttribute('data-connection')).resolves.toBe(clients[2]!.connectionId);
    await page.fill('[data-testid=filter-resource]', 'debug-client');
    await page.waitForFunction((n) => document.querySelectorAll('[data-testid=connection-row]').length === n, clients.length);

    const subjects = () => page.$$eval('[data-testid=connection-row]', (rows) => rows.map((r) => r.getAttribute('data-subject') ?? ''));
    await page.click('[data-sort=subject]');
    await expect(page.locator('th:has([data-sort=subject])').getAttribute('aria-sort')).resolves.toBe('ascending');
    expect(await subjects()).toEqual(clients.map((c) => c.subject).sort());
    await page.click('[data-sort=subject]');
    await expect(page.locator('th:has([data-sort=subject])').getAttribute('aria-sort')).resolves.toBe('descending');
    expect(await subjects()).toEqual(clients.map((c) => c.subject).sort().reverse());
    await page.fill('[data-testid=filter-resource]', '');
  });

  it('disconnects a connection after a confirmation; it is closed with 1008 and leaves the table', async () => {
    // One held by whichever worker: the DELETE reaches its owner across the control channel.
    const victim = clients[0]!;
    const row = page.locator(`[data-testid=connection-row][data-connection="${victim.connectionId}"]`);
    await row.locator('[data-testid=disconnect]').click();
    await row.locator('[data-testid=confirm-disconnect]').waitFor();
    // Nothing happens before the confirmation.
    await page.waitForTimeout(300);
    expect(await clientsPage.evaluate((s) => (window as unknown as { closes: Record<string, unknown> }).closes[s] ?? null, victim.subject)).toBeNull();
    await row.locator('[data-testid=confirm-yes]').click();
    await row.waitFor({ state: 'detached', timeout: WAIT });
    const close = await clientsPage.waitForFunction((s) => (window as unknown as { closes: Record<string, unknown> }).closes[s], victim.subject, { timeout: WAIT });
    const { code, reason } = (await close.jsonValue()) as { code: number; reason: string };
    expect(code).toBe(1008);
    expect(reason).toContain('e2e-admin');
    clients = clients.slice(1);
    for (const c of clients) await page.waitForSelector(`[data-testid=connection-row][data-connection="${c.connectionId}"]`);
  });

  it('a feed entry clicked in the Live view shows its whole envelope, which copies', async () => {
    await page.click('[data-testid=tab-live]');
    const item = page.locator('[data-testid=feed-item][data-type=agent_status]').first();
    await item.waitFor();
    const type = await item.getAttribute('data-type');
    await item.click();
    await page.waitForSelector('[data-testid=debug-view] [data-testid=envelope-json]');
    const json = (await page.locator('[data-testid=envelope-json]').textContent()) ?? '';
    const env = JSON.parse(json) as { id: string; type: string; timestamp: number; data: Record<string, unknown>; metadata?: unknown };
    expect(env.type).toBe(type);
    expect(typeof env.id).toBe('string');
    expect(typeof env.data.agentId).toBe('string');
    expect(json).toBe(JSON.stringify(env, null, 2));
    await page.click('[data-testid=copy-envelope]');
    await page.waitForSelector('[data-testid=copy-status]:has-text("Copied")');
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(json);
  });

  it('the inspector pauses and resumes, and filters by type, resource and text', async () => {
    const seqs = () => page.$$eval('[data-testid=inspector-feed] [data-testid=feed-item]', (els) => els.map((e) => Number(e.getAttribute('data-seq'))));
    await page.click('[data-testid=inspector-pause]');
    const frozen = await seqs();
    // events keep arriving (the button counts them), the lines stay put
    await page.waitForSelector('[data-testid=inspector-pause]:has-text("new")', { timeout: WAIT });
    expect(await seqs()).toEqual(frozen);
    await page.click('[data-testid=inspector-pause]');
    await page.waitForFunction((top) => Number(document.querySelector('[data-testid=inspector-feed] [data-testid=feed-item]')?.getAttribute('data-seq')) > top, frozen[0] ?? 0, { timeout: WAIT });

    await page.selectOption('[data-testid=inspector-type]', 'agent_status');
    await page.waitForFunction(() => {
      const types = [...document.querySelectorAll('[data-testid=inspector-feed] [data-testid=feed-item]')].map((e) => e.getAttribute('data-type'));
      return types.length > 0 && types.every((t) => t === 'agent_status');
    });
    await page.fill('[data-testid=inspector-resource]', 'agent:coder-001');
    await page.waitForFunction(() => {
      const agents = [...document.querySelectorAll('[data-testid=inspector-feed] [data-testid=feed-item]')].map((e) => e.getAttribute('data-agent'));
      return agents.length > 0 && agents.every((a) => a === 'coder-001');
    });
    await page.selectOption('[data-testid=inspector-type]', '');
    await page.fill('[data-testid=inspector-resource]', '');
    await page.fill('[data-testid=inspector-text]', 'no-such-text-anywhere');
    await page.waitForSelector('[data-testid=inspector-feed] .empty:has-text("No event matches")');
    await page.fill('[data-testid=inspector-text]', '');
  });

  it('publishes a valid event (accepted, and it arrives), and shows problems with their path before and after sending', async () => {
    await page.selectOption('[data-testid=publish-type]', 'system_notification');
    await page.waitForSelector('[data-testid=publish-schema][data-status=ready]');
    const marker = `debug-e2e-${Date.now()}`;
    await page.fill('[data-testid=publish-data]', JSON.stringify({ title: 'From the Debug view', message: marker, level: 'info' }));
    await expect(page.locator('[data-testid=publish-problems]').count()).resolves.toBe(0);
    await page.click('[data-testid=publish-send]');
    await page.waitForSelector('[data-testid=publish-result][data-outcome=accepted]');
    const id = ((await page.locator('[data-testid=publish-result] code').textContent()) ?? '').trim();
    expect(id).not.toBe('');
    // The event went through the gateway and came back on the page's subscription.
    await page.fill('[data-testid=inspector-text]', marker);
    await page.waitForSelector(`[data-testid=inspector-feed] [data-testid=feed-item][data-type=system_notification]`);
    await page.fill('[data-testid=inspector-text]', '');

    // Invalid: checked here first, with the path; sending is held back.
    await page.selectOption('[data-testid=publish-type]', 'agent_status');
    await page.waitForSelector('[data-testid=publish-schema][data-status=ready]');
    await page.fill('[data-testid=publish-data]', JSON.stringify({ agentId: 'coder-001', status: 42 }));
    await page.waitForSelector('[data-testid=publish-problem][data-path="data.status"]');
    await expect(page.locator('[data-testid=publish-send]').isDisabled()).resolves.toBe(true);
    // Sent anyway: the gateway answers 422 naming the same field.
    await page.check('[data-testid=publish-skip-check]');
    await page.click('[data-testid=publish-send]');
    const rejected = page.locator('[data-testid=publish-result][data-outcome=rejected]');
    await rejected.waitFor();
    await expect(rejected.getAttribute('data-path')).resolves.toBe('data.status');
    await expect(rejected.locator('[data-testid=api-error]').getAttribute('data-status')).resolves.toBe('422');
    await expect(rejected.textContent()).resolves.toContain('data.status');
    await page.uncheck('[data-testid=publish-skip-check]');
  });

  it("shows error groups (a client's malformed frame is one) and subscription counts", async () => {
    await clientsPage.evaluate((s) => (window as unknown as { sockets: Record<string, WebSocket> }).sockets[s]!.send('{not json'), clients[0]!.subject);
    const group = page.locator('[data-testid=error-group][data-code=invalid_json]');
    await group.waitFor({ timeout: WAIT });
    await expect(group.locator('td.num').first().textContent()).resolves.toMatch(/^[1-9]\d*$/);
    await expect(group.textContent()).resolves.toMatch(/ago/);
    const counts = await adminGet('/api/v1/subscriptions');
    const resources = counts.resources as { resource: string; subscribers: number }[];
    const repo = resources.find((r) => r.resource === `repo:octo/${clients[0]!.subject}`);
    expect(repo?.subscribers).toBe(1);
    await page.waitForSelector(`[data-testid=sub-resource][data-name="repo:octo/${clients[0]!.subject}"][data-count="1"]`);
    await page.waitForSelector('[data-testid=sub-type][data-name=agent_status]');
  });

  it('shows a partial answer as such, naming the missing node, and a late heartbeat as late', async () => {
    // The gateway's own partial answers are tested on the Python side (a node that does
    // not answer in time); here the page's side: the real answer, marked as a gateway
    // marks it when a node is missing, with one node's heartbeat 7 s old.
    await page.route('**/api/v1/nodes', async (route) => {
      const res = await route.fetch();
      const body = (await res.json()) as { nodes: { lastSeen: number }[] };
      body.nodes[0]!.lastSeen -= 7000;
      await route.fulfill({ response: res, json: { ...body, partial: true, missingNodes: ['far-host:4242:gone'] } });
    });
    try {
      const notice = page.locator('[data-testid=panel-debug-nodes] [data-testid=partial]');
      await notice.waitFor({ timeout: WAIT });
      await expect(notice.textContent()).resolves.toContain('far-host:4242:gone');
      await page.waitForSelector('[data-testid=node-row][data-health=late]');
    } finally {
      await page.unroute('**/api/v1/nodes');
    }
    await page.locator('[data-testid=panel-debug-nodes] [data-testid=partial]').waitFor({ state: 'detached', timeout: WAIT });
    expect(await page.locator('[data-testid=node-row][data-health=ok]').count()).toBe(2);
  });

  it('fits a phone: no sideways scroll at 390 px, the wide tables scroll inside their panels', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.waitForTimeout(300);
      expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
      const tabs = await page.$$eval('.view-tab', (els) => els.map((e) => e.getBoundingClientRect().height));
      for (const h of tabs) expect(h).toBeGreaterThanOrEqual(44);
      const wrap = await page.$eval('[data-testid=connections-table]', (t) => {
        const box = t.parentElement!.getBoundingClientRect();
        return { right: box.right, scrolls: t.parentElement!.scrollWidth > t.parentElement!.clientWidth };
      });
      expect(wrap.right).toBeLessThanOrEqual(390);
      expect(wrap.scrolls).toBe(true);
    } finally {
      await page.setViewportSize({ width: 1400, height: 1000 });
    }
    expect(pageErrors, dumpLogs()).toEqual([]);
  });
});

if (plan.skip) {
  it.skip(`dashboard Debug view e2e: missing ${plan.missing!.join(', ')} (fails instead under CI)`, () => undefined);
}
