import React, { useEffect, useRef, useState } from 'react';
import { Pressable, ScrollView, StyleSheet, Text, View } from 'react-native';
import { ApiError } from '../api/client';
import { useSession } from '../api/context';
import type { Citation, DocumentInfo } from '../api/types';
import { Button, ErrorState, Field, Loading, ScreenTitle, styles as ui } from '../components/ui';
import { colors } from '../theme';

interface Message {
  id: number;
  role: 'user' | 'assistant';
  text: string;
  citations: Citation[];
  streaming?: boolean;
  error?: string;
}

export function pagesLabel(pages: number[]): string {
  if (pages.length === 0) return '';
  const sorted = [...new Set(pages)].sort((a, b) => a - b);
  const first = sorted[0];
  const last = sorted[sorted.length - 1];
  const contiguous = last - first === sorted.length - 1;
  if (sorted.length === 1) return `p. ${first}`;
  return contiguous ? `pp. ${first}–${last}` : `pp. ${sorted.join(', ')}`;
}

export function ChatScreen() {
  const { client } = useSession();
  const [messages, setMessages] = useState<Message[]>([]);
  const [draft, setDraft] = useState('');
  const [conversationId, setConversationId] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [info, setInfo] = useState<string | null>(null);
  const [source, setSource] = useState<Citation | null>(null);
  const nextId = useRef(1);

  const patchLast = (patch: (m: Message) => Message) =>
    setMessages((all) => all.map((m, i) => (i === all.length - 1 ? patch(m) : m)));

  const ask = async (question: string, conversation: string | null): Promise<void> => {
    try {
      const reply = await client.chat(question, {
        conversationId: conversation,
        onToken: (token) => patchLast((m) => ({ ...m, text: m.text + token })),
      });
      setConversationId(reply.conversation_id || conversation);
      patchLast((m) => ({ ...m, text: reply.answer || m.text, citations: reply.citations, streaming: false }));
    } catch (e) {
      if (e instanceof ApiError && e.status === 404 && conversation) {
        // The server no longer knows this conversation: start a new one with the same question.
        setConversationId(null);
        setInfo('The earlier conversation has expired; this question starts a new one.');
        patchLast((m) => ({ ...m, text: '' }));
        return ask(question, null);
      }
      patchLast((m) => ({ ...m, streaming: false, error: (e as Error).message }));
    }
  };

  const send = async () => {
    const question = draft.trim();
    if (!question || busy) return;
    setDraft('');
    setInfo(null);
    setBusy(true);
    setMessages((all) => [
      ...all,
      { id: nextId.current++, role: 'user', text: question, citations: [] },
      { id: nextId.current++, role: 'assistant', text: '', citations: [], streaming: true },
    ]);
    await ask(question, conversationId);
    setBusy(false);
  };

  if (source) return <SourceView citation={source} onBack={() => setSource(null)} />;

  return (
    <View style={styles.screen}>
      <View style={[ui.row, styles.header]}>
        <ScreenTitle inRow>Ask your documents</ScreenTitle>
        <Button
          testID="chat-new"
          variant="secondary"
          label="New conversation"
          disabled={busy || messages.length === 0}
          onPress={() => {
            setMessages([]);
            setConversationId(null);
            setInfo(null);
          }}
        />
      </View>
      {info ? (
        <Text style={styles.info} accessibilityRole="alert" testID="chat-info">
          {info}
        </Text>
      ) : null}
      <ScrollView style={styles.log} contentContainerStyle={styles.logContent} accessibilityLabel="Conversation">
        {messages.length === 0 ? (
          <Text style={ui.muted}>Ask a question; answers come from your organisation's documents, with citations.</Text>
        ) : null}
        {messages.map((m) =>
          m.role === 'user' ? (
            <View key={m.id} style={[styles.bubble, styles.user]} testID="chat-question">
              <Text style={styles.userText}>{m.text}</Text>
            </View>
          ) : (
            <View key={m.id} style={[styles.bubble, styles.assistant]}>
              {m.streaming && !m.text ? <Loading label="Finding the answer" /> : null}
              {m.text ? (
                <Text testID="chat-answer" style={styles.answer} aria-live={m.streaming ? 'polite' : undefined}>
                  {m.text}
                </Text>
              ) : null}
              {m.error ? <ErrorState message={m.error} /> : null}
              {m.citations.length > 0 ? (
                <View style={styles.citations}>
                  <Text style={styles.citationsTitle}>Sources</Text>
                  {m.citations.map((c, i) => (
                    <Pressable
                      key={`${c.chunk_id}-${i}`}
                      testID="citation"
                      accessibilityRole="link"
                      accessibilityLabel={`Source ${i + 1}: ${c.source} ${pagesLabel(c.pages)}`.trim()}
                      onPress={() => setSource(c)}
                      style={styles.citation}
                    >
                      <Text style={styles.citationSource}>
                        [{i + 1}] {c.source}
                        {c.pages.length ? ` · ${pagesLabel(c.pages)}` : ''}
                      </Text>
                      <Text style={styles.snippet} numberOfLines={3}>
                        {c.snippet}
                      </Text>
                    </Pressable>
                  ))}
                </View>
              ) : null}
            </View>
          ),
        )}
      </ScrollView>
      <View style={[ui.row, styles.composer]}>
        <View style={styles.inputWrap}>
          <Field
            label="Your question"
            testID="chat-input"
            value={draft}
            onChangeText={setDraft}
            onSubmitEditing={send}
            editable={!busy}
            returnKeyType="send"
          />
        </View>
        <Button testID="chat-send" label="Send" onPress={send} disabled={!draft.trim()} busy={busy} />
      </View>
    </View>
  );
}

/** The cited passage in its document: name, status, pages and the retrieved text. */
export function SourceView({ citation, onBack }: { citation: Citation; onBack: () => void }) {
  const { client } = useSession();
  const [doc, setDoc] = useState<DocumentInfo | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  useEffect(() => {
    let live = true;
    client
      .getDocument(citation.document_id)
      .then((d) => live && setDoc(d))
      .catch((e: Error) => live && setError(e instanceof ApiError && e.status === 404 ? 'This document has since been deleted.' : e.message))
      .finally(() => live && setLoading(false));
    return () => {
      live = false;
    };
  }, [client, citation.document_id]);
  return (
    <ScrollView style={styles.screen} testID="citation-source">
      <Button testID="citation-back" variant="secondary" label="Back to the conversation" onPress={onBack} />
      <View style={{ height: 12 }} />
      <ScreenTitle>{doc?.name ?? citation.source}</ScreenTitle>
      {loading ? <Loading label="Loading the document" /> : null}
      {error ? <ErrorState message={error} /> : null}
      <View style={ui.card}>
        <Text style={ui.muted}>
          {[citation.source, pagesLabel(citation.pages), doc ? `status: ${doc.status}` : null, doc?.chunks != null ? `${doc.chunks} chunks` : null]
            .filter(Boolean)
            .join(' · ')}
        </Text>
        <Text style={styles.passage} testID="citation-snippet">
          {citation.snippet}
        </Text>
        {citation.score != null ? <Text style={ui.muted}>relevance {citation.score.toFixed(3)}</Text> : null}
      </View>
    </ScrollView>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, padding: 16 },
  header: { justifyContent: 'space-between', marginBottom: 12 },
  info: { color: colors.warning, fontWeight: '600', marginBottom: 8 },
  log: { flex: 1 },
  logContent: { gap: 10, paddingBottom: 12 },
  bubble: { borderRadius: 10, padding: 12, maxWidth: 760 },
  user: { backgroundColor: colors.primary, alignSelf: 'flex-end' },
  userText: { color: colors.primaryText, fontSize: 15 },
  assistant: { backgroundColor: colors.surface, borderWidth: 1, borderColor: colors.border, alignSelf: 'flex-start' },
  answer: { color: colors.text, fontSize: 15, lineHeight: 22 },
  citations: { marginTop: 10, gap: 6 },
  citationsTitle: { fontWeight: '700', color: colors.text },
  citation: { borderLeftWidth: 3, borderLeftColor: colors.primary, paddingLeft: 8, paddingVertical: 4 },
  citationSource: { color: colors.primary, fontWeight: '600' },
  snippet: { color: colors.muted, fontSize: 13 },
  passage: { color: colors.text, fontSize: 15, lineHeight: 22, marginVertical: 10 },
  composer: { alignItems: 'flex-end', flexWrap: 'nowrap' },
  inputWrap: { flex: 1 },
});
