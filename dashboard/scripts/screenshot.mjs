#!/usr/bin/env node
// Takes docs/dashboard.png: a gateway and the simulator on a free port, the
// built dashboard in headless Chromium, a screenshot once every panel has data.
// With --phone, docs/dashboard-phone.png: what a 390x844 phone shows first.
// With --debug, docs/dashboard-debug.png: the Debug view of 2 workers on Redis
// (scripts/screenshot-debug.mjs; needs redis-server).
//   npm run build && npm run screenshot [-- [--phone|--debug] out.png]
import { writeFile } from 'node:fs/promises';
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
import { debugScreenshot } from './screenshot-debug.mjs';

const args = process.argv.slice(2);
const phone = args.includes('--phone');
const debug = args.includes('--debug');
/** The whole page on a desktop, or a phone's first screen (device scale 2 for a sharp picture). */
const view = debug
  ? { file: 'dashboard-debug.png' }
  : phone
  ? { file: 'dashboard-phone.png', page: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }, fullPage: false }
  : { file: 'dashboard.png', page: { viewport: { width: 1440, height: 1000 }, deviceScaleFactor: 1 }, fullPage: true };
const out = path.resolve(args.find((a) => !a.startsWith('--')) ?? path.join(REPO, 'docs', view.file));
const missing = missingPrerequisites({ redis: debug });
if (missing) {
  console.error(`screenshot: missing ${missing.join(', ')}`);
  process.exit(1);
}
if (debug) {
  await writeFile(out, await debugScreenshot());
  console.log(`screenshot: wrote ${path.relative(process.cwd(), out)}`);
  process.exit(0);
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
  const page = await browser.newPage(view.page);
  const token = mintToken(secret, 'dashboard', ['read:*']);
  await page.goto(`${gateway.base}/#token=${token}`);
  await page.waitForSelector('[data-testid=connection][data-state=open]', { timeout: 15_000 });
  // Let the story develop until every panel has something to show (bounded).
  // The simulator is paused (SIGSTOP) while the page is checked and taken, so
  // the picture shows what was checked.
  const counts = () =>
    page.evaluate(() => ({
      agents: document.querySelectorAll('[data-testid=agent-card]').length,
      working: [...document.querySelectorAll('[data-testid=agent-card][data-status=busy] [role=progressbar][aria-label$="task progress"]')]
        .filter((b) => Number(b.getAttribute('aria-valuenow')) > 0).length,
      phases: document.querySelectorAll('[data-testid=phase-change]').length,
      running: document.querySelectorAll('[data-testid=workflow][data-state=running]').length,
      finished: document.querySelectorAll('[data-testid=workflow]:not([data-state=running])').length,
      system: document.querySelectorAll('[data-testid=system-item]').length,
      github: document.querySelectorAll('[data-testid=github-item]').length,
    }));
  // A phone's first screen shows the header, the filters and the agents.
  const ready = (c) =>
    c.agents >= 3 && c.working >= 2 &&
    (phone || (c.phases >= 4 && c.running >= 1 && c.finished >= 1 && c.system >= 2 && c.github >= 3));
  const deadline = Date.now() + 60_000;
  let shot;
  for (;;) {
    if (ready(await counts()) || Date.now() > deadline) {
      sim.kill('SIGSTOP');
      await page.waitForTimeout(400); // what was already in flight
      const c = await counts();
      if (ready(c) || Date.now() > deadline) {
        shot = await page.screenshot({ fullPage: view.fullPage });
        console.log(`screenshot: ${JSON.stringify(c)}${ready(c) ? '' : ' (deadline reached)'}`);
        sim.kill('SIGCONT');
        break;
      }
      sim.kill('SIGCONT');
    }
    await page.waitForTimeout(300);
  }
  await writeFile(out, shot);
  console.log(`screenshot: wrote ${path.relative(process.cwd(), out)}`);
} finally {
  await browser?.close();
  await stopProcess(sim);
  await stopProcess(gateway?.proc);
}
