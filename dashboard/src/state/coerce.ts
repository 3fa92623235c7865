/**
 * Event payloads are untrusted input: every field is read through these
 * coercing helpers, and all text ends up in React text nodes (never as HTML).
 */
import type { AgentStatus, Coverage, Severity, TddPhase, TestCounts } from './types';

export type Obj = Record<string, unknown>;

export function obj(v: unknown): Obj | undefined {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : undefined;
}

export function str(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

export function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

export function pct(v: unknown): number | undefined {
  const n = num(v);
  return n === undefined ? undefined : Math.max(0, Math.min(100, n));
}

export function phase(v: unknown): TddPhase | undefined {
  return v === 'red' || v === 'green' || v === 'refactor' ? v : undefined;
}

export function agentStatus(v: unknown): AgentStatus {
  return v === 'idle' || v === 'busy' || v === 'error' || v === 'offline' ? v : 'unknown';
}

export function severity(v: unknown): Severity {
  return v === 'critical' || v === 'error' || v === 'warning' ? v : 'info';
}

/** An absolute http(s) URL, or null: `javascript:` and friends never become links. */
export function safeUrl(v: unknown): string | null {
  if (typeof v !== 'string' || v.length > 2048) return null;
  try {
    const u = new URL(v);
    return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
  } catch {
    return null;
  }
}

export function counts(v: unknown): TestCounts | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const total = num(o.total);
  const passing = num(o.passing);
  const failing = num(o.failing);
  if (total === undefined || passing === undefined || failing === undefined) return undefined;
  const skipped = num(o.skipped);
  return skipped === undefined ? { total, passing, failing } : { total, passing, failing, skipped };
}

export function coverage(v: unknown): Coverage | undefined {
  const o = obj(v);
  if (!o) return undefined;
  const out: Coverage = {};
  const lines = pct(o.lines);
  const branches = pct(o.branches);
  const functions = pct(o.functions);
  if (lines !== undefined) out.lines = lines;
  if (branches !== undefined) out.branches = branches;
  if (functions !== undefined) out.functions = functions;
  return Object.keys(out).length ? out : undefined;
}

export function clip(s: string, max = 300): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}
