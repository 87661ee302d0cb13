// iOS/Android: the system document picker.
import * as DocumentPicker from 'expo-document-picker';
import React from 'react';
import type { UploadFile } from '../api/client';
import { Button } from './ui';

export function UploadPicker({ onPick, disabled }: { onPick: (file: UploadFile) => void; disabled?: boolean }) {
  const pick = async () => {
    const result = await DocumentPicker.getDocumentAsync({ copyToCacheDirectory: true, multiple: false });
    if (result.canceled || !result.assets?.length) return;
    const asset = result.assets[0];
    onPick({ name: asset.name, size: asset.size ?? undefined, mimeType: asset.mimeType ?? undefined, uri: asset.uri });
  };
  return <Button testID="upload-input" label="Upload a document" onPress={pick} disabled={disabled} />;
}
