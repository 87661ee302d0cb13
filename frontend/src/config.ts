// Where the API is and how people sign in. Locally `docmill serve` serves this web build and
// the API from one origin, so the defaults need no file. On AWS the CDK stack deploys a
// config.json next to the build (API URL, Cognito domain and client id).
import Constants from 'expo-constants';
import { Platform } from 'react-native';

export type AuthConfig =
  | { kind: 'apikey' }
  | { kind: 'cognito'; domain: string; clientId: string; scopes: string[]; redirectUri?: string };

export interface AppConfig {
  apiUrl: string;
  auth: AuthConfig;
}

function defaultApiUrl(): string {
  const extra = (Constants.expoConfig?.extra ?? {}) as Record<string, unknown>;
  if (typeof extra.apiUrl === 'string' && extra.apiUrl) return extra.apiUrl;
  if (Platform.OS === 'web' && typeof window !== 'undefined' && window.location) return window.location.origin;
  return 'http://127.0.0.1:8000';
}

export function parseConfig(raw: unknown, fallbackApiUrl: string): AppConfig {
  const r = (raw ?? {}) as Record<string, unknown>;
  const apiUrl = typeof r.apiUrl === 'string' && r.apiUrl ? r.apiUrl : fallbackApiUrl;
  const auth = (r.auth ?? {}) as Record<string, unknown>;
  if (auth.kind === 'cognito' && typeof auth.domain === 'string' && typeof auth.clientId === 'string') {
    return {
      apiUrl,
      auth: {
        kind: 'cognito',
        domain: auth.domain.replace(/^https?:\/\//, '').replace(/\/+$/, ''),
        clientId: auth.clientId,
        scopes: Array.isArray(auth.scopes) ? auth.scopes.map(String) : ['openid', 'email', 'profile'],
        redirectUri: typeof auth.redirectUri === 'string' ? auth.redirectUri : undefined,
      },
    };
  }
  return { apiUrl, auth: { kind: 'apikey' } };
}

export async function loadConfig(fetchImpl: typeof fetch = fetch): Promise<AppConfig> {
  const fallback = defaultApiUrl();
  if (Platform.OS !== 'web') return parseConfig(Constants.expoConfig?.extra, fallback);
  try {
    const response = await fetchImpl('/config.json', { headers: { Accept: 'application/json' } });
    const type = response.headers.get('Content-Type') ?? '';
    if (response.ok && type.includes('json')) return parseConfig(await response.json(), fallback);
  } catch {
    // no config.json: local defaults
  }
  return parseConfig(null, fallback);
}
