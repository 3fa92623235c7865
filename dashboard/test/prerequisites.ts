/**
 * The browser tests need the venv, Chromium and the built dashboard. On a
 * developer's machine a missing one skips them (with the reason); under CI
 * (env CI set, where `.ci/run` installs everything) it fails them instead,
 * as the Python tests do (tests/conftest.py `missing`): a broken setup must
 * not pass as "skipped".
 */
import { missingPrerequisites } from '../scripts/harness.mjs';

export interface BrowserTestPlan {
  /** What is missing, or null when the browser tests can run. */
  missing: string[] | null;
  /** Skip them: something is missing and this is not CI. */
  skip: boolean;
}

export function browserTestPlan(
  env: Record<string, string | undefined> = process.env,
  needs: { redis?: boolean } = {},
): BrowserTestPlan {
  const missing = missingPrerequisites(needs);
  return { missing, skip: missing !== null && !env.CI };
}

/** Call first in the suite's beforeAll: throws (under CI) when something is missing. */
export function requirePrerequisites(plan: BrowserTestPlan): void {
  if (plan.missing !== null) {
    throw new Error(`browser tests cannot run, missing: ${plan.missing.join(', ')} (CI is set, so this fails instead of skipping)`);
  }
}
