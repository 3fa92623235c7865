/** The system slice: alerts (resolved in place), notifications and deployments, and its derived views. */
import type { Envelope } from '@autosdlc/ws-client';

import { clip, severity, str, type Obj } from './coerce';
import { LIMITS, type EventReducer, type Severity, type SystemItem } from './types';

function systemItem(env: Envelope, data: Obj, at: number): SystemItem {
  if (env.type === 'system_alert') {
    const alertId = str(data.alertId);
    return {
      key: alertId ? `alert:${alertId}` : `alert:${env.id}`,
      kind: 'alert',
      severity: severity(data.severity),
      title: str(data.title),
      message: clip(str(data.message) ?? ''),
      source: str(data.source),
      resolved: data.resolved === true,
      at,
    };
  }
  if (env.type === 'deployment_status') {
    const status = str(data.status) ?? '';
    const bad = status === 'failure' || status === 'error';
    return {
      key: `deploy:${str(data.environment) ?? ''}:${str(data.repository) ?? ''}`,
      kind: 'deployment',
      severity: bad ? 'error' : 'info',
      title: `Deployment to ${str(data.environment) ?? '?'}`,
      message: clip(`${status}${str(data.description) ? `: ${str(data.description)}` : ''}`),
      source: str(data.repository),
      resolved: status === 'success' || status === 'inactive',
      at,
    };
  }
  return {
    key: `note:${env.id}`,
    kind: 'notification',
    severity: data.level === 'warning' ? 'warning' : 'info',
    title: str(data.title),
    message: clip(str(data.message) ?? ''),
    resolved: false,
    at,
  };
}

/** One item per key (a later event about the same alert or deployment replaces it), newest first. */
const systemEvent: EventReducer = (state, { env, data, at }) => {
  const item = systemItem(env, data, at);
  const others = state.system.filter((s) => s.key !== item.key);
  return {
    state: { ...state, system: [item, ...others].slice(0, LIMITS.system) },
    summary: `${item.title ? `${item.title}: ` : ''}${item.message}`,
    severity: item.resolved ? 'info' : item.severity,
  };
};

export const systemReducers: Record<string, EventReducer> = {
  system_notification: systemEvent,
  system_alert: systemEvent,
  deployment_status: systemEvent,
};

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, error: 1, warning: 2, info: 3 };

/** Unresolved alerts first, by severity then recency; then everything else by recency. */
export function sortSystem(items: SystemItem[]): SystemItem[] {
  return [...items].sort((a, b) => {
    const activeA = a.kind === 'alert' && !a.resolved ? 0 : 1;
    const activeB = b.kind === 'alert' && !b.resolved ? 0 : 1;
    if (activeA !== activeB) return activeA - activeB;
    if (activeA === 0 && a.severity !== b.severity) return SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity];
    return b.at - a.at;
  });
}

export function severityCounts(items: SystemItem[]): Record<Severity, number> {
  const out: Record<Severity, number> = { critical: 0, error: 0, warning: 0, info: 0 };
  for (const i of items) if (!i.resolved) out[i.severity] += 1;
  return out;
}
