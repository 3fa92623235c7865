export {
  AutoSDLCWebSocketClient,
  DEFAULTS,
  type ClientConfig,
  type ReconnectOptions,
  type ResetInfo,
  type StateListener,
  type SubscribeConfig,
  type SubscriptionInfo,
  type WebSocketConstructor,
  type WebSocketLike,
} from './client.js';
export * from './errors.js';
export * from './types.js';
export { backoffDelay, type BackoffOptions } from './backoff.js';
export { CloseCode, closeAction, type CloseAction } from './close-codes.js';
export { globMatches } from './glob.js';
export {
  ClientRegistry,
  ClientStore,
  defaultRegistry,
  type ClientSnapshot,
  type SharedClient,
} from './store.js';
