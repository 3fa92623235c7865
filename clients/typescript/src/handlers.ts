/**
 * Who gets which frame: handlers registered by exact type, by prefix glob
 * (`agent_*`) or for every event (`*`). One broken handler must not starve
 * the others, so errors go to a callback instead of propagating.
 */
import { AutoSDLCError } from './errors.js';
import { globMatches, isGlob } from './glob.js';
import { isEventType, type Envelope, type Unsubscribe } from './types.js';

type Handler = (envelope: any) => void;

export class HandlerRegistry {
  private readonly exact = new Map<string, Set<Handler>>();
  private readonly globs = new Set<{ pattern: string; handler: Handler }>();

  constructor(private readonly onHandlerError: (error: AutoSDLCError) => void) {}

  add(pattern: string, handler: Handler): Unsubscribe {
    if (isGlob(pattern)) {
      const reg = { pattern, handler };
      this.globs.add(reg);
      return () => {
        this.globs.delete(reg);
      };
    }
    let set = this.exact.get(pattern);
    if (!set) {
      set = new Set();
      this.exact.set(pattern, set);
    }
    set.add(handler);
    return () => {
      const current = this.exact.get(pattern);
      if (!current) return;
      current.delete(handler);
      if (current.size === 0) this.exact.delete(pattern);
    };
  }

  /** Exact-type handlers first, then the globs that match (event types only). */
  dispatch(env: Envelope): void {
    const exact = this.exact.get(env.type);
    if (exact) for (const handler of [...exact]) this.call(handler, env);
    if (this.globs.size > 0 && isEventType(env.type)) {
      for (const reg of [...this.globs]) {
        if (globMatches(reg.pattern, env.type)) this.call(reg.handler, env);
      }
    }
  }

  private call(handler: Handler, env: Envelope): void {
    try {
      handler(env);
    } catch (err) {
      this.onHandlerError(new AutoSDLCError('handler_error', `handler for ${env.type} threw`, { cause: err }));
    }
  }
}
