/**
 * Every real-time wait in the TypeScript and dashboard tests is multiplied
 * by AUTOSDLC_WS_TEST_TIMEOUT_FACTOR (default 1), as in the Python tests
 * (tests/conftest.py): a slow or shared machine is handled by one variable,
 * not by editing numbers. This module is the only reader of it; the
 * dashboard's tests import it from here.
 */

function parseFactor(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return 1;
  const factor = Number(raw);
  if (!Number.isFinite(factor) || factor <= 0) {
    throw new Error(`AUTOSDLC_WS_TEST_TIMEOUT_FACTOR must be a positive number, not ${JSON.stringify(raw)}`);
  }
  return factor;
}

export const TIMEOUT_FACTOR = parseFactor(process.env.AUTOSDLC_WS_TEST_TIMEOUT_FACTOR);

/** `ms` scaled by the factor (whole milliseconds, never shorter than given). */
export function scaled(ms: number): number {
  return Math.ceil(ms * Math.max(1, TIMEOUT_FACTOR));
}
