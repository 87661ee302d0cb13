import React, { useCallback, useState } from 'react';
import { FlatList, Pressable, StyleSheet, Switch, Text, View } from 'react-native';
import { useSession } from '../api/context';
import type { DocumentInfo, Notice, NoticeInput } from '../api/types';
import { Button, Empty, ErrorState, Field, Loading, ScreenTitle, styles as ui } from '../components/ui';
import { useLoader } from '../hooks';
import { colors } from '../theme';

interface Board {
  notices: Notice[];
  documents: DocumentInfo[];
}

function when(iso?: string | null): string {
  if (!iso) return '';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? '' : date.toLocaleString();
}

export function NoticesScreen({ onOpenDocuments }: { onOpenDocuments?: () => void }) {
  const { client, me } = useSession();
  const load = useCallback(async (): Promise<Board> => {
    const [notices, documents] = await Promise.all([
      client.listNotices(),
      client.listDocuments().catch(() => [] as DocumentInfo[]),
    ]);
    return { notices, documents };
  }, [client]);
  const board = useLoader(load);
  const [editing, setEditing] = useState<Notice | 'new' | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);
  const [confirmDelete, setConfirmDelete] = useState<string | null>(null);

  const save = async (input: NoticeInput) => {
    if (editing === 'new') await client.createNotice(input);
    else if (editing) await client.updateNotice(editing.id, input);
    setEditing(null);
    await board.reload();
  };

  const remove = async (id: string) => {
    setActionError(null);
    try {
      await client.deleteNotice(id);
      setConfirmDelete(null);
      await board.reload();
    } catch (e) {
      setActionError((e as Error).message);
    }
  };

  if (board.loading) return <Loading label="Loading notices" />;
  if (editing) {
    return (
      <NoticeForm
        notice={editing === 'new' ? null : editing}
        documents={board.data?.documents ?? []}
        onSave={save}
        onCancel={() => setEditing(null)}
      />
    );
  }
  const names = new Map((board.data?.documents ?? []).map((d) => [d.id, d.name]));
  return (
    <View style={styles.screen}>
      <View style={[ui.row, styles.header]}>
        <ScreenTitle inRow>Notices</ScreenTitle>
        {me.isAdmin ? (
          <Button testID="notice-new" label="New notice" onPress={() => setEditing('new')} />
        ) : null}
      </View>
      {board.error ? <ErrorState message={board.error} onRetry={board.reload} /> : null}
      {actionError ? <ErrorState message={actionError} /> : null}
      <FlatList
        data={board.data?.notices ?? []}
        keyExtractor={(n) => n.id}
        ListEmptyComponent={board.error ? null : <Empty message="No notices yet." />}
        renderItem={({ item }) => (
          <View
            testID="notice"
            style={[ui.card, item.pinned && styles.pinned]}
            accessibilityLabel={`${item.pinned ? 'Pinned notice' : 'Notice'}: ${item.title}`}
          >
            <View style={ui.row}>
              {item.pinned ? (
                <Text style={styles.badge} testID="notice-pinned">
                  Pinned
                </Text>
              ) : null}
              <Text style={styles.noticeTitle} accessibilityRole="header" aria-level={2}>
                {item.title}
              </Text>
            </View>
            <Text style={styles.meta}>{[item.author, when(item.createdAt)].filter(Boolean).join(' · ')}</Text>
            <Text style={styles.body}>{item.body}</Text>
            {item.documentIds.length > 0 ? (
              <View style={[ui.row, styles.links]}>
                <Text style={ui.muted}>Documents:</Text>
                {item.documentIds.map((id) => (
                  <Pressable
                    key={id}
                    testID="notice-document"
                    accessibilityRole="link"
                    accessibilityLabel={`Linked document ${names.get(id) ?? id}`}
                    onPress={onOpenDocuments}
                    style={styles.chip}
                  >
                    <Text style={styles.chipText}>{names.get(id) ?? 'removed document'}</Text>
                  </Pressable>
                ))}
              </View>
            ) : null}
            {me.isAdmin ? (
              <View style={[ui.row, styles.actions]}>
                <Button
                  testID="notice-edit"
                  variant="secondary"
                  label="Edit"
                  accessibilityLabel={`Edit notice ${item.title}`}
                  onPress={() => setEditing(item)}
                />
                {confirmDelete === item.id ? (
                  <>
                    <Button
                      testID="notice-delete-confirm"
                      variant="danger"
                      label="Really delete"
                      accessibilityLabel={`Really delete notice ${item.title}`}
                      onPress={() => remove(item.id)}
                    />
                    <Button variant="secondary" label="Keep" accessibilityLabel="Keep the notice" onPress={() => setConfirmDelete(null)} />
                  </>
                ) : (
                  <Button
                    testID="notice-delete"
                    variant="danger"
                    label="Delete"
                    accessibilityLabel={`Delete notice ${item.title}`}
                    onPress={() => setConfirmDelete(item.id)}
                  />
                )}
              </View>
            ) : null}
          </View>
        )}
      />
    </View>
  );
}

interface FormProps {
  notice: Notice | null;
  documents: DocumentInfo[];
  onSave: (input: NoticeInput) => Promise<void>;
  onCancel: () => void;
}

export function NoticeForm({ notice, documents, onSave, onCancel }: FormProps) {
  const [title, setTitle] = useState(notice?.title ?? '');
  const [body, setBody] = useState(notice?.body ?? '');
  const [pinned, setPinned] = useState(notice?.pinned ?? false);
  const [linked, setLinked] = useState<string[]>(notice?.documentIds ?? []);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const submit = async () => {
    if (!title.trim()) {
      setError('A notice needs a title.');
      return;
    }
    setBusy(true);
    setError(null);
    try {
      await onSave({ title: title.trim(), body, pinned, document_ids: linked });
    } catch (e) {
      setError((e as Error).message);
      setBusy(false);
    }
  };

  return (
    <View style={styles.screen} role="form" aria-label={notice ? 'Edit notice' : 'New notice'}>
      <ScreenTitle>{notice ? 'Edit notice' : 'New notice'}</ScreenTitle>
      <Field label="Title" testID="notice-title" value={title} onChangeText={setTitle} />
      <Field label="Text" testID="notice-body" value={body} onChangeText={setBody} multiline />
      <View style={[ui.row, styles.switchRow]}>
        <Switch
          testID="notice-pinned-switch"
          accessibilityLabel="Pin this notice to the top"
          value={pinned}
          onValueChange={setPinned}
        />
        <Text style={styles.body}>Pin to the top</Text>
      </View>
      <Text style={styles.sectionLabel}>Linked documents</Text>
      {documents.length === 0 ? <Text style={ui.muted}>No documents uploaded yet.</Text> : null}
      {documents.map((doc) => {
        const on = linked.includes(doc.id);
        return (
          <Pressable
            key={doc.id}
            testID="notice-link-document"
            role="checkbox"
            aria-checked={on}
            accessibilityLabel={`Link ${doc.name}`}
            accessibilityState={{ checked: on }}
            onPress={() => setLinked(on ? linked.filter((id) => id !== doc.id) : [...linked, doc.id])}
            style={[ui.row, styles.checkRow]}
          >
            <Text style={styles.check}>{on ? '☑' : '☐'}</Text>
            <Text style={styles.body}>{doc.name}</Text>
          </Pressable>
        );
      })}
      {error ? (
        <Text style={ui.errorText} accessibilityRole="alert" testID="notice-error">
          {error}
        </Text>
      ) : null}
      <View style={[ui.row, styles.actions]}>
        <Button testID="notice-save" label={notice ? 'Save changes' : 'Post notice'} onPress={submit} busy={busy} />
        <Button testID="notice-cancel" variant="secondary" label="Cancel" onPress={onCancel} disabled={busy} />
      </View>
    </View>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, padding: 16 },
  header: { justifyContent: 'space-between', marginBottom: 12 },
  pinned: { backgroundColor: colors.pinnedSurface, borderColor: colors.pinned },
  badge: {
    color: colors.pinned,
    fontWeight: '700',
    borderWidth: 1,
    borderColor: colors.pinned,
    borderRadius: 4,
    paddingHorizontal: 6,
  },
  noticeTitle: { fontSize: 17, fontWeight: '700', color: colors.text },
  meta: { color: colors.muted, fontSize: 12, marginVertical: 4 },
  body: { color: colors.text, fontSize: 15 },
  links: { marginTop: 8 },
  chip: { borderWidth: 1, borderColor: colors.primary, borderRadius: 12, paddingHorizontal: 10, paddingVertical: 4 },
  chipText: { color: colors.primary },
  actions: { marginTop: 10 },
  switchRow: { marginBottom: 12 },
  sectionLabel: { fontWeight: '600', color: colors.text, marginBottom: 6 },
  checkRow: { paddingVertical: 6 },
  check: { fontSize: 18, color: colors.text },
});
