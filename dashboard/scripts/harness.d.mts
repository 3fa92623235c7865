import type { ChildProcess } from 'node:child_process';
import type { Browser } from 'playwright-core';

export interface LoggedProcess extends ChildProcess {
  output: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export const REPO: string;
export const STATIC_INDEX: string;
export const PYTHON: string;
export const CHROMIUM: string;
export const REDIS_SERVER: string;
export const CHROMIUM_ARGS: string[];
export function missingPrerequisites(opts?: { redis?: boolean }): string[] | null;
export function freePort(): Promise<number>;
export function newSecret(): string;
export function mintToken(secret: string, sub: string, permissions: string[], ttlS?: number): string;
export function startGateway(opts: {
  port: number;
  secret: string;
  args?: string[];
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<{ proc: LoggedProcess; port: number; base: string }>;
export function startRedis(opts: { port: number; timeoutMs?: number }): Promise<{ proc: LoggedProcess; url: string }>;
export function startSimulator(opts: {
  base: string;
  token: string;
  rate?: number;
  seed?: number;
  agents?: number;
}): LoggedProcess;
export function stopProcess(proc: ChildProcess | null | undefined, graceMs?: number): Promise<void>;
export function launchBrowser(): Promise<Browser>;
