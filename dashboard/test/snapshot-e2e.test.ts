/**
 * The dashboard opened on a system that is already running, in headless
 * Chromium against the real gateway (same harness and skip-or-fail rule as
 * e2e.test.ts), with NO simulator: the agents, a workflow and a TDD phase
 * reported over HTTP before the page was opened, and nothing is published
 * afterwards. Everything the page shows can only come from the snapshot the
 * dashboard asks for when it subscribes (protocol 1.1).
 */
import type { Browser, Page, WebSocket as PwWebSocket } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { freePort, launchBrowser, mintToken, newSecret, startGateway, stopProcess, type LoggedProcess } from '../scripts/harness.mjs';
import { scaled } from '../../clients/typescript/test/helpers/timeouts';
import { browserTestPlan, requirePrerequisites } from './prerequisites';

const plan = browserTestPlan();
const WAIT = scaled(15_000);

/** What the agents and the workflow engine reported before the dashboard was opened. */
const REPORTED = [
  {
    type: 'agent_status',
    data: { agentId: 'coder-001', agentType: 'coder', status: 'busy', currentTask: { id: 'task-789', type: 'implement_feature', progress: 65 } },
  },
  { type: 'agent_status', data: { agentId: 'reviewer-001', agentType: 'reviewer', status: 'idle' } },
  { type: 'workflow_started', data: { workflowId: 'wf-snap-1', name: 'Release 1.4', steps: ['build', 'test', 'deploy'] } },
  {
    type: 'tdd_phase_change',
    data: {
      agentId: 'coder-001',
      taskId: 'task-789',
      previousPhase: 'red',
      currentPhase: 'green',
      testResults: { total: 45, passing: 45, failing: 0 },
    },
  },
];

describe.skipIf(plan.skip)('dashboard opened on a running system (snapshot on subscribe)', { timeout: scaled(90_000) }, () => {
  let secret: string;
  let base: string;
  let gateway: LoggedProcess | null = null;
  let browser: Browser;
  let page: Page;
  const framesSent: string[] = [];
  const wsUrls: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    requirePrerequisites(plan);
    secret = newSecret();
    const gw = await startGateway({ port: await freePort(), secret, timeoutMs: scaled(20_000) });
    gateway = gw.proc;
    base = gw.base;
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => pageErrors.push(String(e)));
    page.on('websocket', (ws: PwWebSocket) => {
      wsUrls.push(ws.url());
      ws.on('framesent', (f) => framesSent.push(String(f.payload)));
    });
  }, scaled(60_000));

  afterAll(async () => {
    await browser?.close();
    await stopProcess(gateway);
  }, scaled(60_000));

  it('shows every agent, the running workflow and the latest TDD phase at once, before any new event', async () => {
    const publisher = mintToken(secret, 'reporter', ['publish:*']);
    for (const event of REPORTED) {
      // One by one, so "oldest first" has an order to keep.
      const res = await fetch(`${base}/api/v1/events`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${publisher}` },
        body: JSON.stringify(event),
      });
      expect(res.status, await res.text()).toBe(202);
    }

    await page.goto(`${base}/#token=${mintToken(secret, 'late-viewer', ['read:*'])}`);
    await page.waitForSelector('[data-testid=connection][data-state=open]');

    const coder = page.locator('[data-testid=agent-card][data-agent=coder-001]');
    await expect(coder.getAttribute('data-status')).resolves.toBe('busy');
    await expect(coder.locator('[role=progressbar][aria-label$="task progress"]').getAttribute('aria-valuenow')).resolves.toBe('65');
    await expect(page.locator('[data-testid=agent-card][data-agent=reviewer-001]').getAttribute('data-status')).resolves.toBe('idle');
    const workflow = page.locator('[data-testid=workflow][data-state=running]', { hasText: 'Release 1.4' });
    await workflow.waitFor();
    await expect(page.locator('[data-testid=tdd-card][data-agent=coder-001]').getAttribute('data-phase')).resolves.toBe('green');
    await expect(page.locator('[data-testid=phase-change][data-agent=coder-001]').first().getAttribute('data-phase')).resolves.toBe('green');

    // Nothing new was published: every feed line is marked as the state, and the
    // reported events are there once each (beside the gateway's own deployment_status).
    await page.waitForSelector('[data-testid=sub-status][data-category=workflows][data-status=active]');
    const feed = await page.$$eval('[data-testid=feed-item]', (els) =>
      els.map((e) => [e.getAttribute('data-type'), e.getAttribute('data-agent'), e.getAttribute('data-snapshot')]),
    );
    expect(feed.filter(([, , snapshot]) => snapshot !== 'true')).toEqual([]);
    const reportedTypes = new Set(REPORTED.map((e) => e.type));
    const arrived = feed.reverse().filter(([type]) => reportedTypes.has(type!));
    expect([...arrived].sort()).toEqual([
      ['agent_status', 'coder-001', 'true'],
      ['agent_status', 'reviewer-001', 'true'],
      ['tdd_phase_change', 'coder-001', 'true'],
      ['workflow_started', '', 'true'],
    ]);
    // Each subscription's snapshot comes oldest first (the workflows' has its own place among them).
    const agentCategory = arrived.filter(([type]) => type !== 'workflow_started');
    expect(agentCategory.map(([type, agent]) => `${type}/${agent}`)).toEqual([
      'agent_status/coder-001',
      'agent_status/reviewer-001',
      'tdd_phase_change/coder-001',
    ]);
    await expect(page.locator('[data-testid=event-total]').textContent()).resolves.toBe(String(feed.length));
    expect(await page.locator('[data-testid=agent-card]').count()).toBe(2);

    // The dashboard asked for it (every category), and opted into batched frames.
    const subscribes = framesSent.map((f) => JSON.parse(f)).filter((m) => m.type === 'subscribe');
    expect(subscribes.length).toBeGreaterThanOrEqual(4);
    for (const s of subscribes) expect(s.data.snapshot).toBe(true);
    expect(new URL(wsUrls[0]!).searchParams.get('batch')).toBe('1');
    expect(pageErrors).toEqual([]);
  });
});

if (plan.skip) {
  it.skip(`dashboard snapshot e2e: missing ${plan.missing!.join(', ')} (fails instead under CI)`, () => undefined);
}
