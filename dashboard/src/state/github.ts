/** The GitHub slice: pull requests, issues and workflow runs, newest first. */
import type { Envelope } from '@autosdlc/ws-client';

import { clip, num, safeUrl, str, type Obj } from './coerce';
import { LIMITS, type EventReducer, type GithubItem } from './types';

function githubItem(env: Envelope, data: Obj, at: number): GithubItem {
  const kind = env.type === 'github_pr_update' ? 'pr' : env.type === 'github_issue_update' ? 'issue' : 'workflow';
  const item: GithubItem = {
    id: env.id,
    kind,
    repository: str(data.repository) ?? '?',
    title: clip(str(kind === 'workflow' ? data.name : data.title) ?? '', 200),
    action: str(data.action) ?? 'updated',
    url: safeUrl(data.url),
    at,
  };
  const number = num(data.number);
  if (number !== undefined) item.number = number;
  const state = kind === 'workflow' ? (str(data.conclusion) ?? str(data.status)) : str(data.state);
  if (state) item.state = state;
  if (typeof data.merged === 'boolean') item.merged = data.merged;
  const actor = str(data.actor);
  if (actor) item.actor = actor;
  return item;
}

const githubEvent: EventReducer = (state, { env, data, at }) => {
  const item = githubItem(env, data, at);
  return {
    state: { ...state, github: [item, ...state.github].slice(0, LIMITS.github) },
    summary: `${item.repository}${item.number !== undefined ? `#${item.number}` : ''} ${item.action}: ${item.title}`,
  };
};

export const githubReducers: Record<string, EventReducer> = {
  github_issue_update: githubEvent,
  github_pr_update: githubEvent,
  github_workflow_update: githubEvent,
};
