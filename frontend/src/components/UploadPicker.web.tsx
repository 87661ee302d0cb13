// Web: a real <input type="file"> (labelled, keyboard-reachable), so browsers, screen readers
// and test drivers all handle it the ordinary way.
import React, { useRef } from 'react';
import { StyleSheet, Text, View } from 'react-native';
import type { UploadFile } from '../api/client';
import { colors } from '../theme';

export function UploadPicker({ onPick, disabled }: { onPick: (file: UploadFile) => void; disabled?: boolean }) {
  const input = useRef<HTMLInputElement | null>(null);
  return (
    <View style={styles.wrap}>
      <Text style={styles.label} nativeID="upload-label">
        Upload a document
      </Text>
      {React.createElement('input', {
        ref: input,
        type: 'file',
        'data-testid': 'upload-input',
        'aria-labelledby': 'upload-label',
        disabled,
        style: { fontSize: 15, color: colors.text },
        onChange: (event: { target: HTMLInputElement }) => {
          const file = event.target.files?.[0];
          if (file) onPick({ name: file.name, size: file.size, mimeType: file.type || undefined, blob: file });
          // the same file can be chosen again after a failure
          if (input.current) input.current.value = '';
        },
      })}
    </View>
  );
}

const styles = StyleSheet.create({
  wrap: { gap: 4 },
  label: { fontWeight: '600', color: colors.text },
});
