import { defineConfig } from 'vitest/config';

import { scaled } from './test/helpers/timeouts.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    environment: 'node',
    // Fake-socket tests are fast; a slow one is a hang, not a slow machine
    // (scaled by AUTOSDLC_WS_TEST_TIMEOUT_FACTOR all the same).
    testTimeout: Number(process.env.AUTOSDLC_TEST_TIMEOUT_MS ?? scaled(10_000)),
    restoreMocks: true,
    unstubGlobals: true,
  },
});
