export {
  AutoSDLCWebSocketClient,
  DEFAULTS,
  type ClientConfig,
  type ReconnectOptions,
  type ResetInfo,
  type StateListener,
  type SubscribeConfig,
  type SubscriptionHandle,
  type SubscriptionInfo,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client.js';
export type { SubscriptionConfig, WebSocketOptions } from './config.js';
export * from './errors.js';
export * from './types.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { CloseCode, closeAction, type CloseAction } from './close-codes.js';
export { globMatches } from './glob.js';
export { isSnapshotEvent } from './session.js';
export {
  ClientRegistry,
  ClientStore,
  defaultRegistry,
  type ClientSnapshot,
  type ConnectionSnapshot,
  type SharedClient,
} from './store.js';
export type { SubscriptionSnapshot, SubscriptionState } from './subscriptions.js';
export {
  SubscriptionObserver,
  statusResult,
  type ObservedSubscription,
  type SubscriptionStatusResult,
} from './subscription-observer.js';
