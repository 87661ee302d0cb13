// Web: the credential lives in sessionStorage (gone when the tab closes, never sent anywhere
// but the API's Authorization header).
export interface StoredSession {
  token: string;
  kind: 'apikey' | 'cognito';
}

const KEY = 'docmill.session';

export const sessionStore = {
  async load(): Promise<StoredSession | null> {
    try {
      const raw = globalThis.sessionStorage?.getItem(KEY);
      return raw ? (JSON.parse(raw) as StoredSession) : null;
    } catch {
      return null;
    }
  },
  async save(session: StoredSession): Promise<void> {
    globalThis.sessionStorage?.setItem(KEY, JSON.stringify(session));
  },
  async clear(): Promise<void> {
    globalThis.sessionStorage?.removeItem(KEY);
  },
};
