/**
 * The client's listeners (state changes, resets, errors) and the last error
 * reported. A listener that throws is reported, never allowed to break the
 * client or the other listeners.
 */
import type { ResetInfo, StateListener } from './config.js';
import { AutoSDLCError } from './errors.js';
import type { ConnectionState, ResetData, Unsubscribe } from './types.js';

export class ClientNotifier {
  private readonly stateListeners = new Set<StateListener>();
  private readonly resetListeners = new Set<(info: ResetInfo) => void>();
  private readonly errorListeners = new Set<(error: AutoSDLCError) => void>();
  /** The error that last stopped the client or was reported. */
  lastError: AutoSDLCError | null = null;

  onStateChange(listener: StateListener): Unsubscribe {
    return addTo(this.stateListeners, listener);
  }

  onReset(listener: (info: ResetInfo) => void): Unsubscribe {
    return addTo(this.resetListeners, listener);
  }

  onError(listener: (error: AutoSDLCError) => void): Unsubscribe {
    return addTo(this.errorListeners, listener);
  }

  /** To onError listeners; without any, only handler errors are logged (they are bugs in the app). */
  report(error: AutoSDLCError): void {
    this.lastError = error;
    if (this.errorListeners.size === 0) {
      if (error.code === 'handler_error') console.error(error, error.cause);
      return;
    }
    for (const listener of [...this.errorListeners]) {
      try {
        listener(error);
      } catch (err) {
        console.error(err);
      }
    }
  }

  stateChanged(state: ConnectionState, previous: ConnectionState): void {
    for (const listener of [...this.stateListeners]) {
      try {
        listener(state, previous);
      } catch (err) {
        this.report(new AutoSDLCError('handler_error', 'onStateChange listener threw', { cause: err }));
      }
    }
  }

  reset(data: ResetData): void {
    for (const listener of [...this.resetListeners]) {
      try {
        listener({ ...data });
      } catch (err) {
        this.report(new AutoSDLCError('handler_error', 'onReset listener threw', { cause: err }));
      }
    }
  }
}

function addTo<L>(set: Set<L>, listener: L): Unsubscribe {
  set.add(listener);
  return () => {
    set.delete(listener);
  };
}
