import React, { useState } from 'react';
import { ScrollView, StyleSheet, Text, View } from 'react-native';
import type { AppConfig } from '../config';
import { CognitoSignIn } from '../auth/CognitoSignIn';
import { Button, Field, styles as ui } from '../components/ui';
import { colors } from '../theme';

interface Props {
  config: AppConfig;
  /** Checks the credential against the API; rejects with a message a person can act on. */
  onSignIn: (token: string, kind: 'apikey' | 'cognito') => Promise<void>;
  notice?: string | null;
}

export function SignInScreen({ config, onSignIn, notice }: Props) {
  const [key, setKey] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async (token: string, kind: 'apikey' | 'cognito') => {
    setBusy(true);
    setError(null);
    try {
      await onSignIn(token, kind);
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <ScrollView contentContainerStyle={styles.page} role="main">
      <View style={styles.panel} role="form" aria-label="Sign in">
        <Text style={ui.title} accessibilityRole="header" aria-level={1}>
          docmill notice board
        </Text>
        <Text style={[ui.muted, styles.intro]}>
          Notices, documents and answers with citations for your organisation.
        </Text>
        {notice ? (
          <Text style={styles.notice} accessibilityRole="alert" testID="signin-notice">
            {notice}
          </Text>
        ) : null}
        {config.auth.kind === 'cognito' ? (
          <CognitoSignIn auth={config.auth} onToken={(token) => submit(token, 'cognito')} />
        ) : (
          <>
            <Field
              label="API key"
              testID="login-key"
              value={key}
              onChangeText={setKey}
              secureTextEntry
              autoCapitalize="none"
              autoCorrect={false}
              autoComplete="off"
              placeholder="from: docmill tenants create NAME"
              onSubmitEditing={() => key.trim() && submit(key.trim(), 'apikey')}
            />
            <Button
              testID="login-submit"
              label="Sign in"
              onPress={() => submit(key.trim(), 'apikey')}
              disabled={!key.trim()}
              busy={busy}
            />
          </>
        )}
        {error ? (
          <Text style={[ui.errorText, styles.error]} accessibilityRole="alert" testID="login-error">
            {error}
          </Text>
        ) : null}
      </View>
    </ScrollView>
  );
}

const styles = StyleSheet.create({
  page: { flexGrow: 1, justifyContent: 'center', alignItems: 'center', padding: 16, backgroundColor: colors.background },
  panel: { width: '100%', maxWidth: 420, backgroundColor: colors.surface, padding: 24, borderRadius: 10, borderWidth: 1, borderColor: colors.border },
  intro: { marginBottom: 16 },
  notice: { color: colors.warning, fontWeight: '600', marginBottom: 12 },
  error: { marginTop: 12 },
});
