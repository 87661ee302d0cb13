import React, { useCallback, useRef, useState } from 'react';
import { FlatList, StyleSheet, Text, View } from 'react-native';
import { useSession } from '../api/context';
import type { Job } from '../api/types';
import { Button, Empty, ErrorState, Field, Loading, ScreenTitle, styles as ui } from '../components/ui';
import { useLoader } from '../hooks';
import { colors, statusColor } from '../theme';

const FINISHED = new Set(['succeeded', 'completed', 'done', 'failed', 'cancelled', 'stopped']);
const DONE_OK = new Set(['succeeded', 'completed', 'done']);

function metricText(value: unknown): string {
  if (typeof value === 'number') return Number.isInteger(value) ? String(value) : value.toFixed(4);
  if (typeof value === 'string' || typeof value === 'boolean') return String(value);
  return JSON.stringify(value);
}

export function JobsScreen({ pollMs = 3000 }: { pollMs?: number }) {
  const { client } = useSession();
  // Jobs started from this screen, refreshed by id even where the server has no list route.
  const started = useRef(new Map<string, Job>());
  const load = useCallback(async () => {
    const listed = await client.listJobs();
    const seen = new Set(listed.map((j) => `${j.kind}:${j.id}`));
    const mine = await Promise.all(
      [...started.current.values()]
        .filter((j) => !seen.has(`${j.kind}:${j.id}`))
        .map((j) => (FINISHED.has(j.status) ? j : client.getJob(j.kind, j.id).catch(() => j))),
    );
    mine.forEach((j) => started.current.set(`${j.kind}:${j.id}`, j));
    return [...mine, ...listed];
  }, [client]);
  const jobs = useLoader(load, pollMs, (all) => all.some((j) => !FINISHED.has(j.status)));
  const [collection, setCollection] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const run = async (start: () => Promise<Job>) => {
    setBusy(true);
    setError(null);
    try {
      const job = await start();
      started.current.set(`${job.kind}:${job.id}`, job);
      await jobs.reload();
    } catch (e) {
      setError((e as Error).message);
    } finally {
      setBusy(false);
    }
  };

  return (
    <View style={styles.screen}>
      <ScreenTitle>Jobs</ScreenTitle>
      <View style={ui.card}>
        <Field
          label="Collection for a new dataset (optional)"
          testID="job-collection"
          value={collection}
          onChangeText={setCollection}
          autoCapitalize="none"
        />
        <Button
          testID="job-dataset-new"
          label="Generate a dataset"
          busy={busy}
          onPress={() => run(() => client.startDataset(collection.trim() || undefined))}
        />
        {error ? (
          <Text style={[ui.errorText, styles.gap]} accessibilityRole="alert" testID="job-error">
            {error}
          </Text>
        ) : null}
      </View>
      {jobs.loading ? <Loading label="Loading jobs" /> : null}
      {jobs.error ? <ErrorState message={jobs.error} onRetry={jobs.reload} /> : null}
      {!jobs.loading ? (
        <FlatList
          data={jobs.data ?? []}
          keyExtractor={(j) => `${j.kind}:${j.id}`}
          ListEmptyComponent={jobs.error ? null : <Empty message="No dataset generations or fine-tunes yet." />}
          renderItem={({ item }) => (
            <View testID="job-row" style={ui.card} accessibilityLabel={`${item.kind} ${item.name ?? item.id}, ${item.status}`}>
              <View style={[ui.row, styles.head]}>
                <Text style={styles.name}>
                  {item.kind === 'dataset' ? 'Dataset' : 'Fine-tune'} {item.name ?? item.id}
                </Text>
                <Text testID="job-status" style={[styles.status, { color: statusColor[item.status] ?? colors.muted }]}>
                  {item.status}
                </Text>
              </View>
              {item.reason ? <Text style={ui.errorText}>{item.reason}</Text> : null}
              {Object.keys(item.metrics).length > 0 ? (
                <View style={styles.metrics} testID="job-metrics">
                  {Object.entries(item.metrics).map(([key, value]) => (
                    <Text key={key} style={styles.metric}>
                      {key}: {metricText(value)}
                    </Text>
                  ))}
                </View>
              ) : null}
              {item.kind === 'dataset' && DONE_OK.has(item.status) ? (
                <View style={styles.gap}>
                  <Button
                    testID="job-fine-tune"
                    variant="secondary"
                    label="Fine-tune on this dataset"
                    accessibilityLabel={`Fine-tune on dataset ${item.name ?? item.id}`}
                    busy={busy}
                    onPress={() => run(() => client.startFineTune(item.id))}
                  />
                </View>
              ) : null}
            </View>
          )}
        />
      ) : null}
    </View>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, padding: 16 },
  head: { justifyContent: 'space-between' },
  name: { fontSize: 16, fontWeight: '600', color: colors.text, flexShrink: 1 },
  status: { fontWeight: '700', textTransform: 'uppercase', fontSize: 13 },
  metrics: { marginTop: 6, flexDirection: 'row', flexWrap: 'wrap', gap: 12 },
  metric: { color: colors.muted, fontSize: 13 },
  gap: { marginTop: 8 },
});
