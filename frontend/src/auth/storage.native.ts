// iOS/Android: the credential lives in the Keychain / Keystore.
import * as SecureStore from 'expo-secure-store';
import type { StoredSession } from './storage';

export type { StoredSession } from './storage';

const KEY = 'docmill.session';

export const sessionStore = {
  async load(): Promise<StoredSession | null> {
    const raw = await SecureStore.getItemAsync(KEY);
    return raw ? (JSON.parse(raw) as StoredSession) : null;
  },
  async save(session: StoredSession): Promise<void> {
    await SecureStore.setItemAsync(KEY, JSON.stringify(session));
  },
  async clear(): Promise<void> {
    await SecureStore.deleteItemAsync(KEY);
  },
};
