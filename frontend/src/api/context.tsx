import React, { createContext, useContext } from 'react';
import type { ApiClient } from './client';
import type { Me } from './types';

export interface Session {
  client: ApiClient;
  me: Me;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const session = useContext(SessionContext);
  if (!session) throw new Error('useSession outside a signed-in app');
  return session;
}

export function SessionProvider({ value, children }: { value: Session; children: React.ReactNode }) {
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}
