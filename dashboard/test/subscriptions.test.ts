import { AutoSDLCError } from '@autosdlc/ws-client';
import { describe, expect, it } from 'vitest';

import { categorySubscription, specKey, type SubscriptionSpec } from '../src/subscriptions';

const spec: SubscriptionSpec = { active: true, events: ['agent_status'], filters: { agentId: ['a'] } };

describe('categorySubscription (the library status as a category status)', () => {
  it('is off with the reason for an inactive spec, or before sign-in', () => {
    expect(categorySubscription({ active: false, reason: 'paused by the agent filter' }, true, { subscriptionId: null, status: 'idle', error: null })).toEqual({
      key: null,
      status: 'off',
      reason: 'paused by the agent filter',
    });
    expect(categorySubscription(spec, false, { subscriptionId: null, status: 'idle', error: null })).toMatchObject({
      status: 'off',
      reason: 'waiting for sign-in',
    });
  });

  it('tags the status with the spec it belongs to', () => {
    const key = specKey(spec);
    expect(key).toBe(JSON.stringify([['agent_status'], { agentId: ['a'] }]));
    expect(categorySubscription(spec, true, { subscriptionId: 's1', status: 'active', error: null })).toEqual({
      key,
      status: 'active',
      subscriptionId: 's1',
    });
    const error = new AutoSDLCError('forbidden', 'no');
    expect(categorySubscription(spec, true, { subscriptionId: null, status: 'error', error })).toEqual({ key, status: 'error', error });
    expect(categorySubscription(spec, true, { subscriptionId: null, status: 'pending', error: null })).toEqual({ key, status: 'pending' });
    expect(categorySubscription(spec, true, { subscriptionId: null, status: 'idle', error: null })).toEqual({
      key,
      status: 'off',
      reason: 'removed by the gateway',
    });
  });
});
