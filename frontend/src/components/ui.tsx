import React from 'react';
import {
  ActivityIndicator,
  Pressable,
  StyleSheet,
  Text,
  TextInput,
  View,
  type TextInputProps,
} from 'react-native';
import { colors } from '../theme';

interface ButtonProps {
  label: string;
  onPress: () => void;
  testID?: string;
  /** What a screen reader says when it differs from the visible label. */
  accessibilityLabel?: string;
  variant?: 'primary' | 'secondary' | 'danger';
  disabled?: boolean;
  busy?: boolean;
}

export function Button({ label, onPress, testID, accessibilityLabel, variant = 'primary', disabled, busy }: ButtonProps) {
  const inactive = disabled || busy;
  return (
    <Pressable
      testID={testID}
      accessibilityRole="button"
      accessibilityLabel={accessibilityLabel ?? label}
      accessibilityState={{ disabled: !!inactive, busy: !!busy }}
      disabled={inactive}
      onPress={onPress}
      style={({ pressed }) => [
        styles.button,
        variant === 'primary' && styles.primary,
        variant === 'secondary' && styles.secondary,
        variant === 'danger' && styles.danger,
        inactive && styles.inactive,
        pressed && styles.pressed,
      ]}
    >
      <Text style={[styles.buttonText, variant !== 'primary' && { color: variant === 'danger' ? colors.danger : colors.primary }]}>
        {busy ? `${label}…` : label}
      </Text>
    </Pressable>
  );
}

interface FieldProps extends TextInputProps {
  label: string;
}

export function Field({ label, style, ...props }: FieldProps) {
  return (
    <View style={styles.field}>
      <Text style={styles.fieldLabel}>{label}</Text>
      <TextInput
        accessibilityLabel={label}
        placeholderTextColor={colors.muted}
        style={[styles.input, props.multiline && styles.multiline, style]}
        {...props}
      />
    </View>
  );
}

export function Loading({ label }: { label: string }) {
  return (
    <View style={styles.center} accessibilityRole="progressbar" accessibilityLabel={label} testID="loading">
      <ActivityIndicator color={colors.primary} />
      <Text style={styles.muted}>{label}</Text>
    </View>
  );
}

export function ErrorState({ message, onRetry }: { message: string; onRetry?: () => void }) {
  return (
    <View style={[styles.center, styles.errorBox]} accessibilityRole="alert" testID="error">
      <Text style={styles.errorText}>{message}</Text>
      {onRetry ? <Button label="Try again" variant="secondary" onPress={onRetry} testID="retry" /> : null}
    </View>
  );
}

export function Empty({ message }: { message: string }) {
  return (
    <View style={styles.center} testID="empty">
      <Text style={styles.muted}>{message}</Text>
    </View>
  );
}

export function ScreenTitle({ children, inRow }: { children: string; inRow?: boolean }) {
  return (
    <Text style={[styles.title, inRow && { marginBottom: 0 }]} accessibilityRole="header" aria-level={1}>
      {children}
    </Text>
  );
}

export const styles = StyleSheet.create({
  button: {
    paddingVertical: 10,
    paddingHorizontal: 16,
    borderRadius: 6,
    alignItems: 'center',
    justifyContent: 'center',
    minHeight: 44,
    minWidth: 44,
  },
  primary: { backgroundColor: colors.primary },
  secondary: { backgroundColor: colors.surface, borderWidth: 1, borderColor: colors.primary },
  danger: { backgroundColor: colors.surface, borderWidth: 1, borderColor: colors.danger },
  inactive: { opacity: 0.6 },
  pressed: { opacity: 0.8 },
  buttonText: { color: colors.primaryText, fontWeight: '600', fontSize: 15 },
  field: { marginBottom: 12 },
  fieldLabel: { color: colors.text, fontWeight: '600', marginBottom: 4 },
  input: {
    borderWidth: 1,
    borderColor: colors.border,
    borderRadius: 6,
    padding: 10,
    backgroundColor: colors.surface,
    color: colors.text,
    fontSize: 15,
  },
  multiline: { minHeight: 90, textAlignVertical: 'top' },
  center: { padding: 24, alignItems: 'center', gap: 12 },
  muted: { color: colors.muted },
  errorBox: { backgroundColor: colors.dangerSurface, borderRadius: 6, margin: 12 },
  errorText: { color: colors.danger, fontWeight: '600', textAlign: 'center' },
  title: { fontSize: 22, fontWeight: '700', color: colors.text, marginBottom: 12 },
  card: {
    backgroundColor: colors.surface,
    borderRadius: 8,
    borderWidth: 1,
    borderColor: colors.border,
    padding: 14,
    marginBottom: 10,
  },
  row: { flexDirection: 'row', alignItems: 'center', gap: 8, flexWrap: 'wrap' },
});
