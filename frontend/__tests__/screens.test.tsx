import { fireEvent, render, screen, waitFor, within } from '@testing-library/react-native';
import React from 'react';
import { ApiClient } from '../src/api/client';
import { SessionProvider } from '../src/api/context';
import { ChatScreen } from '../src/screens/ChatScreen';
import { DocumentsScreen } from '../src/screens/DocumentsScreen';
import { JobsScreen } from '../src/screens/JobsScreen';
import { NoticesScreen } from '../src/screens/NoticesScreen';
import { FakeApi, FakeXhr, signedIn } from './support/fakeApi';

jest.mock('expo-document-picker', () => ({
  getDocumentAsync: jest.fn(async () => ({
    canceled: false,
    assets: [{ uri: 'file:///tmp/policy.pdf', name: 'policy.pdf', size: 1000, mimeType: 'application/pdf' }],
  })),
}));

function mount(ui: React.ReactElement, api: FakeApi, isAdmin = true) {
  const client = new ApiClient({
    baseUrl: 'http://x',
    token: 'key-1',
    fetchImpl: api.fetch,
    xhrFactory: () => new FakeXhr() as unknown as XMLHttpRequest,
  });
  return render(<SessionProvider value={signedIn(client, isAdmin)}>{ui}</SessionProvider>);
}

const docs = [
  { id: 'd1', name: 'handbook.pdf', status: 'indexed', chunks: 12 },
  { id: 'd2', name: 'broken.pdf', status: 'failed', reason: 'encrypted: the PDF needs a password to open' },
];

describe('NoticesScreen', () => {
  it('given notices, when shown, then pinned come first with their linked documents', async () => {
    const api = new FakeApi()
      .on('GET', '/documents', { json: { documents: docs } })
      .on('GET', '/notices', {
        json: [
          { id: 'n1', title: 'Canteen closed Friday', body: 'b', created_at: '2026-12-01T10:00:00Z', document_ids: [] },
          { id: 'n2', title: 'New leave policy', body: 'see doc', pinned: true, created_at: '2026-11-01T10:00:00Z', document_ids: ['d1'] },
        ],
      });
    mount(<NoticesScreen />, api);
    const notices = await screen.findAllByTestId('notice');
    expect(within(notices[0]).getByText('New leave policy')).toBeTruthy();
    expect(within(notices[0]).getByText('Pinned')).toBeTruthy();
    expect(within(notices[0]).getByLabelText('Linked document handbook.pdf')).toBeTruthy();
    expect(within(notices[1]).getByText('Canteen closed Friday')).toBeTruthy();
  });

  it('given an admin, when creating, editing and deleting a notice, then the API gets each change', async () => {
    let notices = [{ id: 'n1', title: 'Old title', body: 'x', document_ids: [] as string[] }];
    const api = new FakeApi()
      .on('GET', '/documents', { json: docs })
      .on('GET', '/notices', () => ({ json: notices }))
      .on('POST', '/notices', (call) => {
        notices = [...notices, { id: 'n2', ...(call.body as { title: string; body: string; document_ids: string[] }) }];
        return { status: 201, json: notices[1] };
      })
      .on('PUT', '/notices/n1', (call) => ({ json: { id: 'n1', ...(call.body as object) } }))
      .on('DELETE', '/notices/n1', () => {
        notices = notices.filter((n) => n.id !== 'n1');
        return { status: 204 };
      });
    mount(<NoticesScreen />, api);
    fireEvent.press(await screen.findByTestId('notice-new'));
    fireEvent.changeText(screen.getByTestId('notice-title'), 'Fire drill');
    fireEvent.changeText(screen.getByTestId('notice-body'), 'Tuesday 10:00');
    fireEvent(screen.getByTestId('notice-pinned-switch'), 'valueChange', true);
    fireEvent.press(screen.getByLabelText('Link handbook.pdf'));
    fireEvent.press(screen.getByTestId('notice-save'));
    await waitFor(() => expect(screen.getAllByTestId('notice')).toHaveLength(2));
    expect(api.callsTo('POST', '/notices')[0].body).toEqual({
      title: 'Fire drill',
      body: 'Tuesday 10:00',
      pinned: true,
      document_ids: ['d1'],
    });

    fireEvent.press(screen.getByLabelText('Edit notice Old title'));
    fireEvent.changeText(screen.getByTestId('notice-title'), 'New title');
    fireEvent.press(screen.getByTestId('notice-save'));
    await waitFor(() => expect(api.callsTo('PUT', '/notices/n1')).toHaveLength(1));
    expect(api.callsTo('PUT', '/notices/n1')[0].body).toMatchObject({ title: 'New title' });

    fireEvent.press(await screen.findByLabelText('Delete notice Old title'));
    expect(api.callsTo('DELETE', '/notices/n1')).toHaveLength(0); // asks first
    fireEvent.press(screen.getByTestId('notice-delete-confirm'));
    await waitFor(() => expect(api.callsTo('GET', '/notices').length).toBeGreaterThan(3));
    await waitFor(() => expect(screen.getAllByTestId('notice')).toHaveLength(1));
    expect(api.callsTo('DELETE', '/notices/n1')).toHaveLength(1);
  });

  it('given a reader who is not an admin, when shown, then no editing controls appear', async () => {
    const api = new FakeApi().on('GET', '/documents', { json: [] }).on('GET', '/notices', { json: [{ id: 'n1', title: 't', body: 'b' }] });
    mount(<NoticesScreen />, api, false);
    await screen.findByTestId('notice');
    expect(screen.queryByTestId('notice-new')).toBeNull();
    expect(screen.queryByTestId('notice-edit')).toBeNull();
  });

  it('given no notices, then the empty state shows; given a failure, then the error and a retry', async () => {
    const empty = new FakeApi().on('GET', '/documents', { json: [] }).on('GET', '/notices', { json: [] });
    mount(<NoticesScreen />, empty);
    expect(await screen.findByText('No notices yet.')).toBeTruthy();

    let fail = true;
    const flaky = new FakeApi()
      .on('GET', '/documents', { json: [] })
      .on('GET', '/notices', () => (fail ? { status: 500, json: { error: { code: 'internal', message: 'store unavailable' } } } : { json: [] }));
    screen.unmount();
    mount(<NoticesScreen />, flaky);
    expect(await screen.findByText('store unavailable')).toBeTruthy();
    fail = false;
    fireEvent.press(screen.getByTestId('retry'));
    expect(await screen.findByText('No notices yet.')).toBeTruthy();
  });

  it('given a server refusing the notice, when saving, then the form stays with the reason', async () => {
    const api = new FakeApi()
      .on('GET', '/documents', { json: [] })
      .on('GET', '/notices', { json: [] })
      .on('POST', '/notices', { status: 403, json: { error: { code: 'forbidden', message: 'only tenant admins post notices' } } });
    mount(<NoticesScreen />, api);
    fireEvent.press(await screen.findByTestId('notice-new'));
    fireEvent.changeText(screen.getByTestId('notice-title'), 'x');
    fireEvent.press(screen.getByTestId('notice-save'));
    expect(await screen.findByText('only tenant admins post notices')).toBeTruthy();
    expect(screen.getByTestId('notice-title')).toBeTruthy();
  });
});

describe('DocumentsScreen', () => {
  it('given documents, when shown, then each row has its status and a failed one its reason', async () => {
    const api = new FakeApi().on('GET', '/documents', { json: docs });
    mount(<DocumentsScreen pollMs={0} />, api);
    const rows = await screen.findAllByTestId('document-row');
    expect(rows).toHaveLength(2);
    expect(within(rows[0]).getByTestId('document-status')).toHaveTextContent('indexed');
    expect(within(rows[0]).getByText('12 chunks searchable')).toBeTruthy();
    expect(within(rows[1]).getByTestId('document-status')).toHaveTextContent('failed');
    expect(within(rows[1]).getByText('encrypted: the PDF needs a password to open')).toBeTruthy();
  });

  it('given an upload, when it progresses and is indexed, then progress shows and the status follows the server', async () => {
    let status = 'queued';
    const api = new FakeApi().on('GET', '/documents', () => ({
      json: status === 'none' ? [] : [{ id: 'd9', name: 'policy.pdf', status }],
    }));
    status = 'none';
    mount(<DocumentsScreen pollMs={20} />, api);
    expect(await screen.findByText(/No documents yet/)).toBeTruthy();
    fireEvent.press(screen.getByTestId('upload-input'));
    await waitFor(() => expect(FakeXhr.last?.sent).toBeTruthy());
    FakeXhr.last!.progress(30, 100);
    expect(await screen.findByText('Uploading policy.pdf: 30%')).toBeTruthy();
    status = 'queued';
    FakeXhr.last!.respond(202, { id: 'd9', status: 'queued' });
    expect(await screen.findByTestId('document-status')).toHaveTextContent('queued');
    status = 'processing';
    await waitFor(() => expect(screen.getByTestId('document-status')).toHaveTextContent('processing'));
    status = 'indexed';
    await waitFor(() => expect(screen.getByTestId('document-status')).toHaveTextContent('indexed'));
  });

  it('given an unsupported file, when the upload is refused, then the reason shows and the list is untouched', async () => {
    const api = new FakeApi().on('GET', '/documents', { json: [docs[0]] });
    mount(<DocumentsScreen pollMs={0} />, api);
    await screen.findByTestId('document-row');
    fireEvent.press(screen.getByTestId('upload-input'));
    await waitFor(() => expect(FakeXhr.last?.sent).toBeTruthy());
    FakeXhr.last!.respond(415, { error: { code: 'unsupported_type', message: 'archives are not supported' } });
    expect(await screen.findByTestId('upload-error')).toHaveTextContent('policy.pdf was not uploaded: archives are not supported');
    expect(screen.getAllByTestId('document-row')).toHaveLength(1);
  });

  it('given a document, when deleted after confirming, then it leaves the list', async () => {
    const api = new FakeApi().on('GET', '/documents', { json: [docs[0]] }).on('DELETE', '/documents/d1', { status: 204 });
    mount(<DocumentsScreen pollMs={0} />, api);
    fireEvent.press(await screen.findByLabelText('Delete handbook.pdf'));
    fireEvent.press(screen.getByTestId('document-delete-confirm'));
    await waitFor(() => expect(api.calls.map((c) => c.method + ' ' + c.path)).toContain('DELETE /documents/d1'));
    await waitFor(() => expect(screen.queryByTestId('document-row')).toBeNull());
    expect(api.callsTo('DELETE', '/documents/d1')).toHaveLength(1);
  });
});

const sse = (conversation: string) => [
  'event: token\ndata: {"token": "Staff get "}\n\n',
  'event: token\ndata: {"token": "25 days of leave."}\n\n',
  `event: citations\ndata: ${JSON.stringify({
    conversation_id: conversation,
    citations: [{ document_id: 'd1', source: 'handbook.pdf', pages: [4, 5], chunk_id: 'c7', snippet: 'Every employee is entitled to 25 days.', score: 0.71 }],
  })}\n\n`,
  'event: done\ndata: {}\n\n',
];

describe('ChatScreen', () => {
  it('given a question, when sent, then the streamed answer and its citation show, and the citation opens the source', async () => {
    const api = new FakeApi().on('POST', '/chat', { sse: sse('conv-1') }).on('GET', '/documents/d1', { json: docs[0] });
    mount(<ChatScreen />, api);
    fireEvent.changeText(screen.getByTestId('chat-input'), 'How much leave do I get?');
    fireEvent.press(screen.getByTestId('chat-send'));
    expect(await screen.findByTestId('chat-answer')).toHaveTextContent('Staff get 25 days of leave.');
    const citation = await screen.findByTestId('citation');
    expect(citation).toHaveTextContent(/handbook\.pdf · pp\. 4–5/);
    expect(citation).toHaveTextContent(/Every employee is entitled/);

    fireEvent.press(citation);
    expect(await screen.findByTestId('citation-source')).toBeTruthy();
    expect(await screen.findByText(/status: indexed/)).toBeTruthy();
    expect(screen.getByTestId('citation-snippet')).toHaveTextContent('Every employee is entitled to 25 days.');
    fireEvent.press(screen.getByTestId('citation-back'));
    expect(screen.getByTestId('chat-answer')).toBeTruthy();
  });

  it('given a follow-up, when sent, then it carries the conversation id; an expired one starts a new conversation', async () => {
    const api = new FakeApi().on('POST', '/chat', (call) => {
      const body = call.body as { conversation_id?: string };
      if (body.conversation_id === 'conv-1')
        return { status: 404, json: { error: { code: 'not_found', message: 'conversation not found' } } };
      return { sse: sse(body.conversation_id ? 'x' : 'conv-1') };
    });
    mount(<ChatScreen />, api);
    fireEvent.changeText(screen.getByTestId('chat-input'), 'first');
    fireEvent.press(screen.getByTestId('chat-send'));
    await screen.findByTestId('citation');
    fireEvent.changeText(screen.getByTestId('chat-input'), 'and after that?');
    fireEvent.press(screen.getByTestId('chat-send'));
    expect(await screen.findByTestId('chat-info')).toHaveTextContent(/expired/);
    await waitFor(() => expect(screen.getAllByTestId('chat-answer')).toHaveLength(2));
    const bodies = api.callsTo('POST', '/chat').map((c) => c.body);
    expect(bodies).toEqual([
      { message: 'first', stream: true },
      { message: 'and after that?', stream: true, conversation_id: 'conv-1' },
      { message: 'and after that?', stream: true },
    ]);
  });

  it('given the model failing, when asked, then the error shows in the conversation', async () => {
    const api = new FakeApi().on('POST', '/chat', { status: 503, json: { error: { code: 'llm_unavailable', message: 'the model is not reachable' } } });
    mount(<ChatScreen />, api);
    fireEvent.changeText(screen.getByTestId('chat-input'), 'q');
    fireEvent.press(screen.getByTestId('chat-send'));
    expect(await screen.findByText('the model is not reachable')).toBeTruthy();
    expect(screen.getByTestId('chat-send')).toBeTruthy();
  });
});

describe('JobsScreen', () => {
  it('given jobs, when shown, then each has its status and metrics; a dataset can be started', async () => {
    const api = new FakeApi()
      .on('GET', '/datasets', { json: { datasets: [{ id: 'ds1', status: 'succeeded', collection: 'hr', counts: { sft: 120, dpo: 40 } }] } })
      .on('GET', '/fine-tunes', { json: [{ id: 'ft1', status: 'running', model: 'llama-3-8b', metrics: { train_loss: 1.2345678 } }] })
      .on('POST', '/datasets', { status: 202, json: { id: 'ds2', status: 'queued' } });
    mount(<JobsScreen pollMs={0} />, api);
    const rows = await screen.findAllByTestId('job-row');
    expect(rows).toHaveLength(2);
    expect(within(rows[0]).getByTestId('job-status')).toHaveTextContent('succeeded');
    expect(within(rows[0]).getByText('sft: 120')).toBeTruthy();
    expect(within(rows[1]).getByText('train_loss: 1.2346')).toBeTruthy();
    fireEvent.changeText(screen.getByTestId('job-collection'), 'hr');
    fireEvent.press(screen.getByTestId('job-dataset-new'));
    await waitFor(() => expect(api.callsTo('POST', '/datasets')).toHaveLength(1));
    expect(api.callsTo('POST', '/datasets')[0].body).toEqual({ collection: 'hr' });
  });

  it('given a server without list routes, when shown, then the empty state (not an error) shows', async () => {
    mount(<JobsScreen pollMs={0} />, new FakeApi());
    expect(await screen.findByText('No dataset generations or fine-tunes yet.')).toBeTruthy();
  });
});
