import { fireEvent, render, screen, waitFor } from '@testing-library/react-native';
import React from 'react';
import App from '../src/App';
import type { StoredSession } from '../src/auth/storage';
import { FakeApi } from './support/fakeApi';

// The hosted UI itself needs a browser; what is tested is the app's side of the code flow.
const mockAuth = { response: null as null | { type: string; params: Record<string, string> }, prompt: jest.fn() };
jest.mock('expo-web-browser', () => ({ maybeCompleteAuthSession: jest.fn() }));
jest.mock('expo-auth-session', () => ({
  makeRedirectUri: () => 'docmill://auth',
  useAuthRequest: (config: { clientId: string; usePKCE: boolean }, discovery: { authorizationEndpoint: string }) => [
    { codeVerifier: 'verifier', config, discovery },
    mockAuth.response,
    mockAuth.prompt,
  ],
  exchangeCodeAsync: jest.fn(async (request: { code: string; extraParams: { code_verifier: string } }) => ({
    idToken: request.code === 'code-1' && request.extraParams.code_verifier === 'verifier' ? 'good-key' : 'bad',
  })),
}));

function memoryStore(initial: StoredSession | null = null) {
  let value = initial;
  return {
    load: jest.fn(async () => value),
    save: jest.fn(async (s: StoredSession) => {
      value = s;
    }),
    clear: jest.fn(async () => {
      value = null;
    }),
    get current() {
      return value;
    },
  };
}

const config = { apiUrl: 'http://api.test', auth: { kind: 'apikey' as const } };

function api() {
  return new FakeApi('good-key')
    .on('GET', '/me', { json: { tenant: 'acme', user: null, admin: true } })
    .on('GET', '/documents', { json: { documents: [] } })
    .on('GET', '/notices', { json: { notices: [{ id: 'ntc_1', title: 'Welcome', body: 'hello', created: '2026-12-01T00:00:00Z' }] } });
}

describe('App', () => {
  it('given a wrong key, when signing in, then it says so; given the right key, then the notice board opens', async () => {
    const store = memoryStore();
    const server = api();
    render(<App config={config} store={store} fetchImpl={server.fetch} />);
    fireEvent.changeText(await screen.findByTestId('login-key'), 'wrong');
    fireEvent.press(screen.getByTestId('login-submit'));
    expect(await screen.findByTestId('login-error')).toHaveTextContent('That API key was not accepted.');
    expect(store.save).not.toHaveBeenCalled();

    fireEvent.changeText(screen.getByTestId('login-key'), 'good-key');
    fireEvent.press(screen.getByTestId('login-submit'));
    expect(await screen.findByTestId('notice')).toBeTruthy();
    expect(screen.getByText('docmill · acme')).toBeTruthy();
    expect(store.current).toEqual({ token: 'good-key', kind: 'apikey' });
  });

  it('given a session whose key is revoked, when the API answers 401, then the app returns to sign in', async () => {
    const store = memoryStore({ token: 'good-key', kind: 'apikey' });
    const server = api();
    render(<App config={config} store={store} fetchImpl={server.fetch} />);
    expect(await screen.findByTestId('notice')).toBeTruthy();
    server.on('GET', '/documents', { status: 401, json: { error: { code: 'unauthorized', message: 'revoked' } } });
    fireEvent.press(screen.getByTestId('tab-documents'));
    expect(await screen.findByTestId('signin-notice')).toHaveTextContent('Your session has ended. Sign in again.');
    expect(screen.getByTestId('login-key')).toBeTruthy();
    await waitFor(() => expect(store.current).toBeNull());
  });

  it('given Cognito in the config, when signing in, then the hosted UI button replaces the key field', async () => {
    const cognito = { apiUrl: 'https://api.test', auth: { kind: 'cognito' as const, domain: 'acme.auth.eu-west-1.amazoncognito.com', clientId: 'abc', scopes: ['openid'] } };
    const view = render(<App config={cognito} store={memoryStore()} fetchImpl={api().fetch} />);
    fireEvent.press(await screen.findByTestId('login-cognito'));
    expect(mockAuth.prompt).toHaveBeenCalled();
    expect(screen.queryByTestId('login-key')).toBeNull();

    // When the hosted UI redirects back with a code, the ID token it is exchanged for signs in.
    mockAuth.response = { type: 'success', params: { code: 'code-1' } };
    view.rerender(<App config={cognito} store={memoryStore()} fetchImpl={api().fetch} />);
    expect(await screen.findByTestId('notice')).toBeTruthy();
  });
});
