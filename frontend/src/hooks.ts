import { useCallback, useEffect, useRef, useState } from 'react';

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => Promise<void>;
  setData: (update: (current: T | null) => T | null) => void;
}

/**
 * Loads once, and again every `pollMs` while `shouldPoll(data)` holds (documents being
 * indexed, jobs running). A failed poll keeps the last data and shows the error.
 */
export function useLoader<T>(load: () => Promise<T>, pollMs = 0, shouldPoll?: (data: T) => boolean): Loaded<T> {
  const [data, setDataState] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const loadRef = useRef(load);
  loadRef.current = load;
  const mounted = useRef(true);

  const reload = useCallback(async () => {
    try {
      const next = await loadRef.current();
      if (!mounted.current) return;
      setDataState(next);
      setError(null);
    } catch (e) {
      if (mounted.current) setError((e as Error).message);
    } finally {
      if (mounted.current) setLoading(false);
    }
  }, []);

  useEffect(() => {
    mounted.current = true;
    reload();
    return () => {
      mounted.current = false;
    };
  }, [reload]);

  const polling = pollMs > 0 && data !== null && (shouldPoll ? shouldPoll(data) : true);
  useEffect(() => {
    if (!polling) return;
    const timer = setInterval(reload, pollMs);
    return () => clearInterval(timer);
  }, [polling, pollMs, reload]);

  const setData = useCallback((update: (current: T | null) => T | null) => setDataState(update), []);
  return { data, error, loading, reload, setData };
}
