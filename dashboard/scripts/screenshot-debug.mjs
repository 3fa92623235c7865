// docs/dashboard-debug.png: the Debug view of a small deployment, as an
// operator sees it: two workers sharing a private redis-server, the
// simulator publishing, a few viewers connected (spread over both workers),
// one malformed frame counted as an error, an event picked in the inspector.
// Called by scripts/screenshot.mjs --debug.
import {
  freePort,
  launchBrowser,
  mintToken,
  newSecret,
  startGateway,
  startRedis,
  startSimulator,
  stopProcess,
} from './harness.mjs';

const VIEWERS = ['alice', 'bob', 'ci-bot', 'dana', 'erin', 'frank'];
const REPOS = ['octo/app', 'octo/api', 'octo/app', 'octo/docs', 'octo/api', 'octo/app'];

export async function debugScreenshot() {
  const secret = newSecret();
  let redis;
  let gateway;
  let sim;
  let browser;
  try {
    redis = await startRedis({ port: await freePort() });
    gateway = await startGateway({ port: await freePort(), secret, args: ['--workers', '2', '--broker', redis.url], timeoutMs: 30_000 });
    const ws = gateway.base.replace(/^http/, 'ws') + '/ws';
    sim = startSimulator({ base: gateway.base, token: mintToken(secret, 'simulator', ['publish:*']), rate: 5, seed: 7 });
    browser = await launchBrowser();
    // Viewers: raw sockets from a blank page (no CSP there), each watching one repository.
    const viewers = await browser.newPage();
    for (const [i, sub] of VIEWERS.entries()) {
      await viewers.evaluate(
        ({ url, repo, last }) =>
          new Promise((resolve) => {
            const s = new WebSocket(url);
            s.onmessage = (m) => {
              if (JSON.parse(String(m.data)).type !== 'connect') return;
              s.send(JSON.stringify({ id: 's', type: 'subscribe', timestamp: Date.now(), data: { events: ['github_*'], filters: { repository: [repo] } } }));
              if (last) s.send('{not json'); // one error group to show
              resolve(null);
            };
          }),
        { url: `${ws}?token=${mintToken(secret, sub, ['read:*'])}`, repo: REPOS[i], last: i === VIEWERS.length - 1 },
      );
    }
    const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
    await page.goto(`${gateway.base}/#token=${mintToken(secret, 'operator', ['read:*', 'admin:*'])}`);
    await page.waitForSelector('[data-testid=connection][data-state=open]', { timeout: 15_000 });
    await page.waitForSelector('[data-testid=feed-item][data-type=agent_status]', { timeout: 30_000 });
    await page.locator('[data-testid=feed-item][data-type=agent_status]').first().click();
    await page.waitForSelector('[data-testid=debug-view] [data-testid=envelope-json]');
    await page.waitForFunction(
      (n) =>
        document.querySelectorAll('[data-testid=node-row][data-health=ok]').length === 2 &&
        document.querySelectorAll('[data-testid=connection-row]').length >= n &&
        document.querySelectorAll('[data-testid=error-group]').length >= 1 &&
        document.querySelector('[data-testid=publish-schema][data-status=ready]') !== null,
      VIEWERS.length + 1,
      { timeout: 30_000 },
    );
    // Pause the inspector so the picture shows what was picked among steady lines.
    await page.click('[data-testid=inspector-pause]');
    sim.kill('SIGSTOP');
    await page.waitForTimeout(2500); // one more poll, then the picture
    await page.evaluate(() => window.scrollTo(0, 0)); // the sticky header at the top, not where the click scrolled to
    const shot = await page.screenshot({ fullPage: true });
    sim.kill('SIGCONT');
    return shot;
  } finally {
    await browser?.close();
    await stopProcess(sim);
    await stopProcess(gateway?.proc);
    await stopProcess(redis?.proc);
  }
}
