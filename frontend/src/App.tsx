import { StatusBar } from 'expo-status-bar';
import React, { useCallback, useEffect, useMemo, useState } from 'react';
import { Pressable, StyleSheet, Text, View } from 'react-native';
import { initialWindowMetrics, SafeAreaProvider, SafeAreaView } from 'react-native-safe-area-context';
import { ApiClient, ApiError } from './api/client';
import { SessionProvider, type Session } from './api/context';
import { sessionStore as defaultStore, type StoredSession } from './auth/storage';
import { Loading } from './components/ui';
import { loadConfig, type AppConfig } from './config';
import { streamFetch } from './platform/streamFetch';
import { ChatScreen } from './screens/ChatScreen';
import { DocumentsScreen } from './screens/DocumentsScreen';
import { JobsScreen } from './screens/JobsScreen';
import { NoticesScreen } from './screens/NoticesScreen';
import { SignInScreen } from './screens/SignInScreen';
import { colors } from './theme';

type Tab = 'notices' | 'documents' | 'chat' | 'jobs';
const TABS: { key: Tab; label: string }[] = [
  { key: 'notices', label: 'Notices' },
  { key: 'documents', label: 'Documents' },
  { key: 'chat', label: 'Chat' },
  { key: 'jobs', label: 'Jobs' },
];

const NO_INSETS = { frame: { x: 0, y: 0, width: 0, height: 0 }, insets: { top: 0, left: 0, right: 0, bottom: 0 } };

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface AppProps {
  /** Tests pass these; the running app loads config.json and uses the platform's fetch. */
  config?: AppConfig;
  store?: typeof defaultStore;
  fetchImpl?: FetchLike;
  xhrFactory?: () => XMLHttpRequest;
  pollMs?: number;
}

export default function App({ config: given, store = defaultStore, fetchImpl, xhrFactory, pollMs }: AppProps) {
  const [config, setConfig] = useState<AppConfig | null>(given ?? null);
  const [session, setSession] = useState<Session | null>(null);
  const [restoring, setRestoring] = useState(true);
  const [signInNotice, setSignInNotice] = useState<string | null>(null);
  const [tab, setTab] = useState<Tab>('notices');

  useEffect(() => {
    if (!given) loadConfig().then(setConfig);
  }, [given]);

  const signOut = useCallback(
    async (notice: string | null) => {
      await store.clear();
      setSession(null);
      setSignInNotice(notice);
    },
    [store],
  );

  const open = useCallback(
    async (stored: StoredSession, cfg: AppConfig): Promise<Session> => {
      const client = new ApiClient({
        baseUrl: cfg.apiUrl,
        token: stored.token,
        fetchImpl,
        streamFetchImpl: fetchImpl ?? streamFetch,
        xhrFactory,
        onUnauthorized: () => {
          signOut('Your session has ended. Sign in again.');
        },
      });
      // Checks the credential (401 for a wrong key) before anything is shown.
      await client.listDocuments();
      const me = await client.me();
      return { client, me };
    },
    [fetchImpl, xhrFactory, signOut],
  );

  useEffect(() => {
    if (!config) return;
    let live = true;
    store
      .load()
      .then(async (stored) => {
        if (!stored) return;
        const restored = await open(stored, config).catch(() => null);
        if (live && restored) setSession(restored);
      })
      .finally(() => live && setRestoring(false));
    return () => {
      live = false;
    };
  }, [config, store, open]);

  const signIn = useCallback(
    async (token: string, kind: 'apikey' | 'cognito') => {
      if (!config) return;
      const stored = { token, kind };
      try {
        const opened = await open(stored, config);
        await store.save(stored);
        setSignInNotice(null);
        setTab('notices');
        setSession(opened);
      } catch (e) {
        if (e instanceof ApiError && e.status === 401)
          throw new Error(kind === 'apikey' ? 'That API key was not accepted.' : 'Your sign-in was not accepted.');
        throw e;
      }
    },
    [config, open, store],
  );

  const screen = useMemo(() => {
    switch (tab) {
      case 'notices':
        return <NoticesScreen onOpenDocuments={() => setTab('documents')} />;
      case 'documents':
        return <DocumentsScreen pollMs={pollMs} />;
      case 'chat':
        return <ChatScreen />;
      case 'jobs':
        return <JobsScreen pollMs={pollMs} />;
    }
  }, [tab, pollMs]);

  let body: React.ReactNode;
  if (!config || restoring) body = <Loading label="Starting" />;
  else if (!session) body = <SignInScreen config={config} onSignIn={signIn} notice={signInNotice} />;
  else
    body = (
      <SessionProvider value={session}>
        <View style={styles.nav} role="navigation">
          <Text style={styles.brand} accessibilityRole="header" aria-level={2}>
            docmill{session.me.tenant ? ` · ${session.me.tenant}` : ''}
          </Text>
          <View style={styles.tabs} accessibilityRole="tablist" aria-label="Sections">
          {TABS.map((t) => (
            <Pressable
              key={t.key}
              testID={`tab-${t.key}`}
              accessibilityRole="tab"
              accessibilityLabel={t.label}
              accessibilityState={{ selected: tab === t.key }}
              onPress={() => setTab(t.key)}
              style={[styles.tab, tab === t.key && styles.tabActive]}
            >
              <Text style={[styles.tabText, tab === t.key && styles.tabTextActive]}>{t.label}</Text>
            </Pressable>
          ))}
          </View>
          <Pressable
            testID="sign-out"
            accessibilityRole="button"
            accessibilityLabel="Sign out"
            onPress={() => signOut(null)}
            style={styles.tab}
          >
            <Text style={styles.tabText}>Sign out</Text>
          </Pressable>
        </View>
        <View style={styles.main} role="main">
          {screen}
        </View>
      </SessionProvider>
    );

  return (
    // Known metrics render the first frame at once instead of after a layout pass.
    <SafeAreaProvider initialMetrics={initialWindowMetrics ?? NO_INSETS}>
      <SafeAreaView style={styles.app}>
        <StatusBar style="dark" />
        {body}
      </SafeAreaView>
    </SafeAreaProvider>
  );
}

const styles = StyleSheet.create({
  app: { flex: 1, backgroundColor: colors.background },
  nav: {
    flexDirection: 'row',
    flexWrap: 'wrap',
    alignItems: 'center',
    gap: 4,
    paddingHorizontal: 12,
    paddingVertical: 6,
    backgroundColor: colors.surface,
    borderBottomWidth: 1,
    borderBottomColor: colors.border,
  },
  tabs: { flexDirection: 'row', flexWrap: 'wrap', gap: 4 },
  brand: { fontWeight: '800', color: colors.text, marginRight: 12, fontSize: 16 },
  tab: { paddingVertical: 10, paddingHorizontal: 12, borderRadius: 6, minHeight: 44, justifyContent: 'center' },
  tabActive: { backgroundColor: colors.primary },
  tabText: { color: colors.primary, fontWeight: '600' },
  tabTextActive: { color: colors.primaryText },
  main: { flex: 1, width: '100%', maxWidth: 960, alignSelf: 'center' },
});
