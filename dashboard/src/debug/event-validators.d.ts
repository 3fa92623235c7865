/** Built by scripts/event-validators.ts from the repository's schemas (one per event type). */
declare module 'virtual:event-validators' {
  import type { ValidateFunction } from 'ajv';

  export const validators: Readonly<Record<string, ValidateFunction>>;
  /** Type -> fingerprint (src/debug/fingerprint.ts) of the schema its validator was compiled from. */
  export const fingerprints: Readonly<Record<string, string>>;
}
