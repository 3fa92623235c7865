#!/usr/bin/env node
// Takes docs/dashboard.png: a gateway and the simulator on a free port, the
// built dashboard in headless Chromium, a screenshot once every panel has data.
//   npm run build && npm run screenshot [-- out.png]
import path from 'node:path';

import {
  freePort,
  launchBrowser,
  missingPrerequisites,
  mintToken,
  newSecret,
  REPO,
  startGateway,
  startSimulator,
  stopProcess,
} from './harness.mjs';

const out = path.resolve(process.argv[2] ?? path.join(REPO, 'docs', 'dashboard.png'));
const missing = missingPrerequisites();
if (missing) {
  console.error(`screenshot: missing ${missing.join(', ')}`);
  process.exit(1);
}

const secret = newSecret();
const port = await freePort();
let gateway;
let sim;
let browser;
try {
  gateway = await startGateway({ port, secret });
  sim = startSimulator({ base: gateway.base, token: mintToken(secret, 'simulator', ['publish:*']), rate: 5, seed: 7 });
  browser = await launchBrowser();
  const page = await browser.newPage({ viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 });
  const token = mintToken(secret, 'dashboard', ['read:*']);
  await page.goto(`${gateway.base}/#token=${token}`);
  await page.waitForSelector('[data-testid=connection][data-state=open]', { timeout: 15_000 });
  // Let the story develop until every panel has something to show (bounded).
  const deadline = Date.now() + 45_000;
  for (;;) {
    const counts = await page.evaluate(() => ({
      agents: document.querySelectorAll('[data-testid=agent-card]').length,
      busy: document.querySelectorAll('[data-testid=agent-card][data-status=busy]').length,
      phases: document.querySelectorAll('[data-testid=phase-change]').length,
      running: document.querySelectorAll('[data-testid=workflow][data-state=running]').length,
      finished: document.querySelectorAll('[data-testid=workflow]:not([data-state=running])').length,
      system: document.querySelectorAll('[data-testid=system-item]').length,
      github: document.querySelectorAll('[data-testid=github-item]').length,
    }));
    const ready =
      counts.agents >= 3 && counts.busy >= 2 && counts.phases >= 4 && counts.running >= 1 && counts.finished >= 1 &&
      counts.system >= 2 && counts.github >= 3;
    if (ready || Date.now() > deadline) {
      console.log(`screenshot: ${JSON.stringify(counts)}${ready ? '' : ' (deadline reached)'}`);
      break;
    }
    await page.waitForTimeout(500);
  }
  await page.screenshot({ path: out, fullPage: true });
  console.log(`screenshot: wrote ${path.relative(process.cwd(), out)}`);
} finally {
  await browser?.close();
  await stopProcess(sim);
  await stopProcess(gateway?.proc);
}
