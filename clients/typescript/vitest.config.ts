import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'test/**/*.test.tsx'],
    environment: 'node',
    // Fake-socket tests are fast; a slow one is a hang, not a slow machine.
    testTimeout: Number(process.env.AUTOSDLC_TEST_TIMEOUT_MS ?? 10_000),
    restoreMocks: true,
    unstubGlobals: true,
  },
});
