// On AWS: the Cognito hosted UI, authorization code flow with PKCE (expo-auth-session, the
// same on web and phones). The API's JWT authorizer takes the ID token, which carries the
// tenant claim.
import * as AuthSession from 'expo-auth-session';
import * as WebBrowser from 'expo-web-browser';
import React, { useEffect, useMemo, useState } from 'react';
import { Text } from 'react-native';
import type { AuthConfig } from '../config';
import { Button, styles } from '../components/ui';

WebBrowser.maybeCompleteAuthSession();

type Cognito = Extract<AuthConfig, { kind: 'cognito' }>;

export function CognitoSignIn({ auth, onToken }: { auth: Cognito; onToken: (token: string) => void }) {
  const discovery = useMemo(
    () => ({
      authorizationEndpoint: `https://${auth.domain}/oauth2/authorize`,
      tokenEndpoint: `https://${auth.domain}/oauth2/token`,
      revocationEndpoint: `https://${auth.domain}/oauth2/revoke`,
    }),
    [auth.domain],
  );
  const redirectUri = auth.redirectUri ?? AuthSession.makeRedirectUri({ path: 'auth' });
  const [request, response, promptAsync] = AuthSession.useAuthRequest(
    { clientId: auth.clientId, scopes: auth.scopes, redirectUri, usePKCE: true },
    discovery,
  );
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    if (!response) return;
    if (response.type === 'error') setError(response.error?.message ?? 'sign in failed');
    if (response.type !== 'success' || !request?.codeVerifier) return;
    setBusy(true);
    AuthSession.exchangeCodeAsync(
      {
        clientId: auth.clientId,
        code: response.params.code,
        redirectUri,
        extraParams: { code_verifier: request.codeVerifier },
      },
      discovery,
    )
      .then((tokens) => {
        if (!tokens.idToken) throw new Error('the sign-in service returned no ID token');
        onToken(tokens.idToken);
      })
      .catch((e: Error) => setError(e.message))
      .finally(() => setBusy(false));
  }, [response, request, auth.clientId, redirectUri, discovery, onToken]);

  return (
    <>
      <Button
        testID="login-cognito"
        label="Sign in with your organisation"
        onPress={() => {
          setError(null);
          promptAsync();
        }}
        disabled={!request}
        busy={busy}
      />
      {error ? (
        <Text style={styles.errorText} accessibilityRole="alert">
          {error}
        </Text>
      ) : null}
    </>
  );
}
