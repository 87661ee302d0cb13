import React, { useCallback, useState } from 'react';
import { FlatList, StyleSheet, Text, View } from 'react-native';
import type { UploadFile } from '../api/client';
import { useSession } from '../api/context';
import type { DocumentInfo } from '../api/types';
import { UploadPicker } from '../components/UploadPicker';
import { Button, Empty, ErrorState, Loading, ScreenTitle, styles as ui } from '../components/ui';
import { useLoader } from '../hooks';
import { colors, statusColor } from '../theme';

const POLL_MS = 1500;
const pending = (docs: DocumentInfo[]) => docs.some((d) => d.status === 'queued' || d.status === 'processing');

interface Upload {
  name: string;
  progress: number;
  error: string | null;
}

export function DocumentsScreen({ pollMs = POLL_MS }: { pollMs?: number }) {
  const { client } = useSession();
  const load = useCallback(() => client.listDocuments(), [client]);
  const docs = useLoader(load, pollMs, pending);
  const [upload, setUpload] = useState<Upload | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const start = async (file: UploadFile) => {
    setUpload({ name: file.name, progress: 0, error: null });
    try {
      const created = await client.uploadDocument(file, {
        onProgress: (progress) => setUpload((u) => (u ? { ...u, progress } : u)),
      });
      // Show the new row at once; polling brings its status forward.
      docs.setData((current) => [created, ...(current ?? []).filter((d) => d.id !== created.id)]);
      setUpload(null);
      await docs.reload();
    } catch (e) {
      setUpload({ name: file.name, progress: 0, error: (e as Error).message });
    }
  };

  const remove = async (doc: DocumentInfo) => {
    setActionError(null);
    try {
      await client.deleteDocument(doc.id);
      setConfirmDelete(null);
      docs.setData((current) => (current ?? []).filter((d) => d.id !== doc.id));
    } catch (e) {
      setActionError(`Could not delete ${doc.name}: ${(e as Error).message}`);
    }
  };

  return (
    <View style={styles.screen}>
      <ScreenTitle>Documents</ScreenTitle>
      <View style={[ui.card, styles.upload]}>
        <UploadPicker onPick={start} disabled={!!upload && !upload.error} />
        {upload && !upload.error ? (
          <View
            testID="upload-progress"
            accessibilityRole="progressbar"
            accessibilityLabel={`Uploading ${upload.name}`}
            accessibilityValue={{ min: 0, max: 100, now: Math.round(upload.progress * 100) }}
          >
            <Text style={ui.muted}>
              Uploading {upload.name}: {Math.round(upload.progress * 100)}%
            </Text>
            <View style={styles.track}>
              <View style={[styles.bar, { width: `${Math.round(upload.progress * 100)}%` }]} />
            </View>
          </View>
        ) : null}
        {upload?.error ? (
          <Text style={ui.errorText} accessibilityRole="alert" testID="upload-error">
            {upload.name} was not uploaded: {upload.error}
          </Text>
        ) : null}
      </View>
      {docs.loading ? <Loading label="Loading documents" /> : null}
      {docs.error ? <ErrorState message={docs.error} onRetry={docs.reload} /> : null}
      {actionError ? <ErrorState message={actionError} /> : null}
      {!docs.loading ? (
        <FlatList
          data={docs.data ?? []}
          keyExtractor={(d) => d.id}
          ListEmptyComponent={docs.error ? null : <Empty message="No documents yet. Upload one to make it searchable." />}
          renderItem={({ item }) => (
            <View testID="document-row" style={ui.card} accessibilityLabel={`Document ${item.name}, ${item.status}`}>
              <View style={[ui.row, styles.rowHead]}>
                <Text style={styles.name}>{item.name}</Text>
                <Text testID="document-status" style={[styles.status, { color: statusColor[item.status] ?? colors.muted }]}>
                  {item.status}
                </Text>
              </View>
              {item.status === 'failed' && item.reason ? (
                <Text style={ui.errorText} testID="document-reason">
                  {item.reason}
                </Text>
              ) : null}
              {item.status === 'indexed' && typeof item.chunks === 'number' ? (
                <Text style={ui.muted}>
                  {item.chunks} {item.chunks === 1 ? "chunk" : "chunks"} searchable
                </Text>
              ) : null}
              <View style={[ui.row, styles.actions]}>
                {confirmDelete === item.id ? (
                  <>
                    <Button
                      testID="document-delete-confirm"
                      variant="danger"
                      label="Really delete"
                      accessibilityLabel={`Really delete ${item.name}`}
                      onPress={() => remove(item)}
                    />
                    <Button variant="secondary" label="Keep" accessibilityLabel={`Keep ${item.name}`} onPress={() => setConfirmDelete(null)} />
                  </>
                ) : (
                  <Button
                    testID="document-delete"
                    variant="danger"
                    label="Delete"
                    accessibilityLabel={`Delete ${item.name}`}
                    onPress={() => setConfirmDelete(item.id)}
                  />
                )}
              </View>
            </View>
          )}
        />
      ) : null}
    </View>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, padding: 16 },
  upload: { gap: 8 },
  track: { height: 8, backgroundColor: colors.border, borderRadius: 4, overflow: 'hidden', marginTop: 4 },
  bar: { height: 8, backgroundColor: colors.primary },
  rowHead: { justifyContent: 'space-between' },
  name: { fontSize: 16, fontWeight: '600', color: colors.text, flexShrink: 1 },
  status: { fontWeight: '700', textTransform: 'uppercase', fontSize: 13 },
  actions: { marginTop: 8 },
});
