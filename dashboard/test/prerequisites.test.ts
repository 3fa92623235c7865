import { describe, expect, it } from 'vitest';

import { browserTestPlan, requirePrerequisites } from './prerequisites';

describe('browser test prerequisites', () => {
  it('never skips under CI; skips outside CI only when something is missing', () => {
    expect(browserTestPlan({ CI: 'true' }).skip).toBe(false);
    const local = browserTestPlan({});
    expect(local.skip).toBe(local.missing !== null);
  });

  it('fails a suite that cannot run, naming what is missing', () => {
    expect(() => requirePrerequisites({ missing: ['/usr/bin/chromium (apt-get install -y chromium)'], skip: false })).toThrow(
      /missing: \/usr\/bin\/chromium .*CI is set/,
    );
    expect(() => requirePrerequisites({ missing: null, skip: false })).not.toThrow();
  });
});
