// @vitest-environment jsdom
import { StrictMode, useState } from 'react';
import { act, cleanup, render, screen } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { AutoSDLCWebSocketClient } from '../src/client.js';
import {
  AutoSDLCProvider,
  ClientRegistry,
  useEvent,
  useSubscription,
  useWebSocket,
  type UseWebSocketOptions,
} from '../src/react.js';
import type { Envelope } from '../src/types.js';
import { FakeWebSocket } from './helpers/fake-websocket.js';
import { acceptSubscribe, event, handshake, reply } from './helpers/frames.js';

const URL = 'ws://gateway.test/ws';
let registry: ClientRegistry;

beforeEach(() => {
  FakeWebSocket.reset();
  registry = new ClientRegistry();
  vi.useFakeTimers();
});
afterEach(() => {
  cleanup();
  vi.useRealTimers();
  FakeWebSocket.reset();
});

function options(extra: Partial<UseWebSocketOptions> = {}): UseWebSocketOptions {
  return { token: 'jwt', WebSocket: FakeWebSocket, registry, ...extra };
}

function Status({ name, opts }: { name: string; opts?: UseWebSocketOptions }) {
  const { isConnected, state, lastMessage } = useWebSocket(URL, opts ?? options());
  return (
    <div data-testid={name}>
      {state}|{String(isConnected)}|{lastMessage?.id ?? '-'}
    </div>
  );
}

describe('useWebSocket', () => {
  it('shares one client between components and closes it when the last unmounts', async () => {
    const view = render(
      <>
        <Status name="a" />
        <Status name="b" />
      </>,
    );
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(registry.size).toBe(1);
    expect(screen.getByTestId('a').textContent).toBe('connecting|false|-');

    const ws = FakeWebSocket.last;
    await act(async () => {
      handshake({}, ws);
    });
    expect(screen.getByTestId('a').textContent).toBe('open|true|-');
    expect(screen.getByTestId('b').textContent).toBe('open|true|-');

    act(() => ws.push(event('agent_status', 'evt-1')));
    expect(screen.getByTestId('a').textContent).toBe('open|true|evt-1');
    expect(screen.getByTestId('b').textContent).toBe('open|true|evt-1');

    // One user leaves: the socket stays.
    view.rerender(<Status name="a" />);
    expect(ws.closedWith).toBeNull();
    expect(vi.getTimerCount()).toBeGreaterThan(0); // heartbeat, watchdog

    view.unmount();
    expect(ws.closedWith).toEqual({ code: 1000, reason: '' });
    expect(registry.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('uses separate clients for different credentials', () => {
    render(
      <>
        <Status name="a" opts={options({ token: 'one' })} />
        <Status name="b" opts={options({ token: 'two' })} />
      </>,
    );
    expect(FakeWebSocket.instances).toHaveLength(2);
  });

  it('sendMessage queues until connected, subscribe is undone on unmount', async () => {
    let api!: ReturnType<typeof useWebSocket>;
    function User() {
      api = useWebSocket(URL, options());
      return null;
    }
    const view = render(<User />);
    const queued = api.sendMessage({ id: 'queued-1', type: 'agent_log', data: { agentId: 'a' } });
    await expect(queued).resolves.toBeUndefined();
    const ws = FakeWebSocket.last;
    await act(async () => {
      handshake({}, ws);
    });
    expect(ws.lastOf('agent_log').id).toBe('queued-1');

    let id = '';
    await act(async () => {
      const p = api.subscribe({ events: ['agent_*'] });
      acceptSubscribe(ws, 'sub-1');
      id = await p;
    });
    expect(id).toBe('sub-1');
    expect(api.client).toBeInstanceOf(AutoSDLCWebSocketClient);

    view.unmount();
    expect(ws.lastOf('unsubscribe').data).toEqual({ subscriptionId: 'sub-1' });
    expect(ws.closedWith?.code).toBe(1000);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('works under StrictMode (effects run twice) and cleans up', async () => {
    const view = render(
      <StrictMode>
        <Status name="a" />
        <Status name="b" />
      </StrictMode>,
    );
    const live = FakeWebSocket.instances.filter((ws) => ws.closedWith === null);
    expect(live).toHaveLength(1);
    await act(async () => {
      handshake({}, live[0]!);
    });
    expect(screen.getByTestId('b').textContent).toBe('open|true|-');
    view.unmount();
    expect(FakeWebSocket.instances.every((ws) => ws.closedWith !== null)).toBe(true);
    expect(registry.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not connect while enabled is false', () => {
    render(<Status name="a" opts={options({ enabled: false })} />);
    expect(FakeWebSocket.instances).toHaveLength(0);
    expect(screen.getByTestId('a').textContent).toBe('idle|false|-');
  });

  it('shows a failed first connect as closed with the error', async () => {
    let api!: ReturnType<typeof useWebSocket>;
    function User() {
      api = useWebSocket(URL, options());
      return null;
    }
    render(<User />);
    await act(async () => {
      FakeWebSocket.last.failBeforeOpen('Unexpected server response: 401');
    });
    expect(api.state).toBe('closed');
    expect(api.error).toMatchObject({ code: 'unauthorized', statusCode: 401 });
    expect(vi.getTimerCount()).toBe(0);
  });

  it('asks the mounted getToken for the token', async () => {
    const getToken = vi.fn(() => 'fresh-token');
    render(<Status name="a" opts={options({ token: undefined, getToken })} />);
    const ws = FakeWebSocket.last;
    ws.open();
    expect(getToken).toHaveBeenCalledTimes(1);
    expect(ws.frames[0]!.data).toEqual({ token: 'fresh-token' });
  });
});

describe('useWebSocket re-renders', () => {
  it('a consumer that does not read lastMessage does not re-render on events; one that reads it does', async () => {
    const renders = { state: 0, message: 0 };
    function StateOnly() {
      const { state } = useWebSocket(URL, options());
      renders.state += 1;
      return <div data-testid="state">{state}</div>;
    }
    function LastMessage() {
      const { lastMessage } = useWebSocket(URL, options());
      renders.message += 1;
      return <div data-testid="last">{lastMessage?.id ?? '-'}</div>;
    }
    render(
      <>
        <StateOnly />
        <LastMessage />
      </>,
    );
    const ws = FakeWebSocket.last;
    await act(async () => {
      handshake({}, ws);
    });
    expect(screen.getByTestId('state').textContent).toBe('open');
    const before = { ...renders };
    for (let i = 0; i < 20; i += 1) act(() => ws.push(event('agent_status', `evt-${i}`)));
    expect(screen.getByTestId('last').textContent).toBe('evt-19');
    expect(renders.state).toBe(before.state);
    expect(renders.message - before.message).toBeGreaterThanOrEqual(20);
    // A connection change still reaches the consumer that ignores events.
    act(() => ws.serverClose(1006));
    expect(screen.getByTestId('state').textContent).toBe('reconnecting');
    expect(renders.state).toBe(before.state + 1);
  });
});

describe('useSubscription and useEvent', () => {
  function Feed({ agentId }: { agentId: string }) {
    const sub = useSubscription({ events: ['agent_*'], filters: { agentId } });
    const [seen, setSeen] = useState<string[]>([]);
    useEvent('agent_status', (e) => setSeen((s) => [...s, `${agentId}:${e.data.status}`]));
    return (
      <div data-testid="feed">
        {sub.status}|{sub.subscriptionId ?? '-'}|{seen.join(',')}
      </div>
    );
  }

  async function setup(agentId = 'coder-001') {
    const client = new AutoSDLCWebSocketClient({ url: URL, token: 'jwt', WebSocket: FakeWebSocket });
    const connected = client.connect();
    const ws = handshake();
    await connected;
    const view = render(
      <AutoSDLCProvider client={client}>
        <Feed agentId={agentId} />
      </AutoSDLCProvider>,
    );
    return { client, ws, view };
  }

  it('passes snapshot through, and a change of it subscribes again', async () => {
    const client = new AutoSDLCWebSocketClient({ url: URL, token: 'jwt', WebSocket: FakeWebSocket });
    const connected = client.connect();
    const ws = handshake();
    await connected;
    function Snap({ snapshot }: { snapshot: boolean }) {
      const sub = useSubscription({ client, events: ['agent_status'], snapshot });
      return <div data-testid="snap">{sub.status}</div>;
    }
    const view = render(<Snap snapshot />);
    expect(ws.lastOf('subscribe').data).toEqual({ events: ['agent_status'], snapshot: true });
    await act(async () => {
      acceptSubscribe(ws, 'sub-s');
    });
    expect(screen.getByTestId('snap').textContent).toBe('active');
    view.rerender(<Snap snapshot={false} />);
    expect(ws.lastOf('unsubscribe').data).toEqual({ subscriptionId: 'sub-s' });
    expect(ws.lastOf('subscribe').data).toEqual({ events: ['agent_status'] });
    view.unmount();
    client.close();
  });

  it('subscribes on mount, reports status, receives events, unsubscribes on unmount', async () => {
    const { client, ws, view } = await setup();
    expect(screen.getByTestId('feed').textContent).toBe('pending|-|');
    expect(ws.lastOf('subscribe').data).toEqual({ events: ['agent_*'], filters: { agentId: 'coder-001' } });
    await act(async () => {
      acceptSubscribe(ws, 'sub-1');
    });
    expect(screen.getByTestId('feed').textContent).toBe('active|sub-1|');

    act(() => ws.push(event('agent_status', 'e1', { agentId: 'coder-001', status: 'busy' })));
    expect(screen.getByTestId('feed').textContent).toBe('active|sub-1|coder-001:busy');

    view.unmount();
    expect(ws.lastOf('unsubscribe').data).toEqual({ subscriptionId: 'sub-1' });
    // No handler left behind.
    ws.push(event('agent_status', 'e2', { agentId: 'coder-001', status: 'idle' }));
    client.close();
    expect(vi.getTimerCount()).toBe(0);
  });

  it('re-subscribes when filters change, and keeps the handler registration when the handler changes', async () => {
    const { client, ws, view } = await setup('a');
    await act(async () => {
      acceptSubscribe(ws, 'sub-a');
    });
    const onSpy = vi.spyOn(client, 'on');
    view.rerender(
      <AutoSDLCProvider client={client}>
        <Feed agentId="b" />
      </AutoSDLCProvider>,
    );
    expect(ws.lastOf('unsubscribe').data).toEqual({ subscriptionId: 'sub-a' });
    expect(ws.lastOf('subscribe').data).toEqual({ events: ['agent_*'], filters: { agentId: 'b' } });
    // A new handler closure every render, but no new registration.
    expect(onSpy).not.toHaveBeenCalled();
    await act(async () => {
      acceptSubscribe(ws, 'sub-b');
    });
    act(() => ws.push(event('agent_status', 'e1', { agentId: 'b', status: 'busy' })));
    // The latest handler (agentId "b") ran.
    expect(screen.getByTestId('feed').textContent).toBe('active|sub-b|b:busy');
    view.unmount();
    client.close();
  });

  it('reports a refused subscription', async () => {
    const { client, ws } = await setup();
    await act(async () => {
      ws.push(reply(ws.lastOf('subscribe'), 'error', { code: 'forbidden', message: 'no' }));
    });
    expect(screen.getByTestId('feed').textContent).toBe('error|-|');
    client.close();
  });

  it('useEvent passes the whole envelope', async () => {
    const client = new AutoSDLCWebSocketClient({ url: URL, token: 'jwt', WebSocket: FakeWebSocket });
    const connected = client.connect();
    const ws = handshake();
    await connected;
    const got: Envelope[] = [];
    function Listener() {
      useEvent('*', (e) => got.push(e), client);
      return null;
    }
    const view = render(<Listener />);
    ws.push(event('workflow_started', 'w1', { workflowId: 'wf-1' }));
    expect(got).toEqual([event('workflow_started', 'w1', { workflowId: 'wf-1' })]);
    view.unmount();
    ws.push(event('workflow_started', 'w2', { workflowId: 'wf-1' }));
    expect(got).toHaveLength(1);
    client.close();
  });

  it('follows the core status: pending while re-subscribing after a lost session, active again, error when refused', async () => {
    const { client, ws } = await setup();
    await act(async () => {
      acceptSubscribe(ws, 'sub-1');
    });
    expect(screen.getByTestId('feed').textContent).toBe('active|sub-1|');
    act(() => ws.serverClose(1006));
    // Still known to the core (the server may resume it).
    expect(screen.getByTestId('feed').textContent).toBe('active|sub-1|');
    await act(async () => {
      await vi.advanceTimersByTimeAsync(1000);
    });
    const ws2 = FakeWebSocket.last;
    await act(async () => {
      handshake({ sessionId: 'sess-2', resumed: false }, ws2);
    });
    expect(screen.getByTestId('feed').textContent).toBe('pending|sub-1|');
    await act(async () => {
      ws2.push(reply(ws2.lastOf('subscribe'), 'error', { code: 'forbidden', message: 'revoked' }));
    });
    expect(screen.getByTestId('feed').textContent).toBe('error|-|');
    client.close();
  });

  it('under StrictMode (effects run twice) leaves exactly one subscription at the server', async () => {
    const client = new AutoSDLCWebSocketClient({ url: URL, token: 'jwt', WebSocket: FakeWebSocket });
    const connected = client.connect();
    const ws = handshake();
    await connected;
    const view = render(
      <StrictMode>
        <AutoSDLCProvider client={client}>
          <Feed agentId="a" />
        </AutoSDLCProvider>
      </StrictMode>,
    );
    const [first, second] = ws.framesOf('subscribe');
    expect(second).toBeDefined();
    await act(async () => {
      acceptSubscribe(ws, 'sub-first', first);
      acceptSubscribe(ws, 'sub-second', second);
    });
    // The first effect's subscription was ended before the server confirmed it: undone.
    expect(ws.framesOf('unsubscribe').map((f) => f.data)).toEqual([{ subscriptionId: 'sub-first' }]);
    expect(screen.getByTestId('feed').textContent).toBe('active|sub-second|');
    expect(client.subscriptions.map((s) => s.id)).toEqual(['sub-second']);
    view.unmount();
    client.close();
  });
});
