import { useCallback, useEffect, useRef, useState } from 'react';

/**
 * Calls `load` now and then every `intervalMs` while `enabled` and the
 * browser tab is visible (a hidden tab polls nobody), one call at a time: a
 * slow answer is never overtaken by the next poll. `refresh()` polls at once
 * (after a disconnect, say).
 */
export function usePolling<T>(load: () => Promise<T>, intervalMs: number, enabled: boolean): { value: T | null; refresh: () => void } {
  const [value, setValue] = useState<T | null>(null);
  const loadRef = useRef(load);
  loadRef.current = load;
  const inFlight = useRef(false);
  const again = useRef(false);
  const alive = useRef(true);

  const poll = useCallback(() => {
    if (inFlight.current) {
      again.current = true; // a refresh during a poll: one more right after it
      return;
    }
    inFlight.current = true;
    void loadRef.current().then(
      (v) => {
        inFlight.current = false;
        if (!alive.current) return;
        setValue(v);
        if (again.current) {
          again.current = false;
          poll();
        }
      },
      () => {
        inFlight.current = false;
      },
    );
  }, []);

  useEffect(() => {
    alive.current = true;
    if (!enabled) return;
    let timer: ReturnType<typeof setInterval> | null = null;
    const start = () => {
      if (timer !== null || document.visibilityState === 'hidden') return;
      poll();
      timer = setInterval(poll, intervalMs);
    };
    const stop = () => {
      if (timer !== null) clearInterval(timer);
      timer = null;
    };
    const onVisibility = () => (document.visibilityState === 'hidden' ? stop() : start());
    start();
    document.addEventListener('visibilitychange', onVisibility);
    return () => {
      alive.current = false;
      stop();
      document.removeEventListener('visibilitychange', onVisibility);
    };
  }, [enabled, intervalMs, poll]);

  return { value, refresh: poll };
}
