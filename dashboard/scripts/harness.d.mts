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
export const CHROMIUM_ARGS: string[];
export function missingPrerequisites(): string[] | null;
export function freePort(): Promise<number>;
export function newSecret(): string;
export function mintToken(secret: string, sub: string, permissions: string[], ttlS?: number): string;
export function startGateway(opts: {
  port: number;
  secret: string;
  env?: Record<string, string>;
  timeoutMs?: number;
}): Promise<{ proc: LoggedProcess; port: number; base: string }>;
export function startSimulator(opts: {
  base: string;
  token: string;
  rate?: number;
  seed?: number;
  agents?: number;
}): LoggedProcess;
export function stopProcess(proc: ChildProcess | null | undefined, graceMs?: number): Promise<void>;
export function launchBrowser(): Promise<Browser>;
