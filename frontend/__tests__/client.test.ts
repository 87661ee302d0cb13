import { ApiClient, ApiError, sortNotices, toNotice } from '../src/api/client';
import { SseParser } from '../src/api/sse';
import { FakeApi, FakeXhr } from './support/fakeApi';

const citation = { document_id: 'd1', source: 'handbook.pdf', pages: [2, 3], chunk_id: 'c1', snippet: 'Leave is 25 days.', score: 0.8 };

describe('SseParser', () => {
  it('given events split across arbitrary pieces, when fed, then yields each complete event once', () => {
    const parser = new SseParser();
    const stream = 'event: token\ndata: {"token":"Hel"}\n\nevent: token\r\ndata: {"token":"lo"}\r\n\n: keep-alive\n\ndata: a\ndata: b\n\n';
    const events = [];
    for (let i = 0; i < stream.length; i += 5) events.push(...parser.feed(stream.slice(i, i + 5)));
    events.push(...parser.end());
    expect(events).toEqual([
      { event: 'token', data: '{"token":"Hel"}' },
      { event: 'token', data: '{"token":"lo"}' },
      { event: 'message', data: 'a\nb' },
    ]);
  });

  it('given a stream ending without its blank line, when ended, then the last event still counts', () => {
    const parser = new SseParser();
    expect(parser.feed('event: done\ndata: {}')).toEqual([]);
    expect(parser.end()).toEqual([{ event: 'done', data: '{}' }]);
  });
});

describe('ApiClient', () => {
  it('given a streamed chat, when asked, then tokens arrive in order and the citations come last', async () => {
    const api = new FakeApi().on('POST', '/chat', {
      sse: [
        'event: token\ndata: {"token": "Leave is "}\n\n',
        'event: token\ndata: {"token": "25 days."}\n\nevent: citations\ndata: ',
        JSON.stringify({ conversation_id: 'conv-1', citations: [citation] }) + '\n\n',
        'event: done\ndata: {}\n\n',
      ],
    });
    const client = new ApiClient({ baseUrl: 'http://x', token: 'key-1', fetchImpl: api.fetch });
    const tokens: string[] = [];
    const reply = await client.chat('how much leave?', { onToken: (t) => tokens.push(t) });
    expect(tokens).toEqual(['Leave is ', '25 days.']);
    expect(reply).toEqual({ answer: 'Leave is 25 days.', conversation_id: 'conv-1', citations: [citation] });
    expect(api.calls[0].body).toEqual({ message: 'how much leave?', stream: true });
    expect(api.calls[0].headers.Accept).toBe('text/event-stream');
  });

  it('given an error event mid-stream, when asked, then the chat rejects with its message', async () => {
    const api = new FakeApi().on('POST', '/chat', {
      sse: ['event: token\ndata: {"token":"x"}\n\n', 'event: error\ndata: {"code":"llm_unavailable","message":"the model is down"}\n\n'],
    });
    const client = new ApiClient({ baseUrl: 'http://x', token: 'key-1', fetchImpl: api.fetch });
    await expect(client.chat('q')).rejects.toMatchObject({ code: 'llm_unavailable', message: 'the model is down' });
  });

  it('given a stream that closes before any answer, when asked, then the chat rejects instead of showing nothing', async () => {
    const api = new FakeApi().on('POST', '/chat', { sse: [': ping\n\n'] });
    const client = new ApiClient({ baseUrl: 'http://x', token: 'key-1', fetchImpl: api.fetch });
    await expect(client.chat('q')).rejects.toMatchObject({ code: 'stream_incomplete' });
  });

  it('given an error body, when a request fails, then ApiError carries code and message; a 401 signs out', async () => {
    const onUnauthorized = jest.fn();
    const api = new FakeApi().on('GET', '/documents/nope', { status: 404, json: { error: { code: 'not_found', message: 'no such document' } } });
    const client = new ApiClient({ baseUrl: 'http://x/', token: 'key-1', fetchImpl: api.fetch, onUnauthorized });
    await expect(client.getDocument('nope')).rejects.toEqual(new ApiError(404, 'not_found', 'no such document'));
    expect(onUnauthorized).not.toHaveBeenCalled();

    const wrong = new ApiClient({ baseUrl: 'http://x', token: 'bad', fetchImpl: api.fetch, onUnauthorized });
    await expect(wrong.listDocuments()).rejects.toMatchObject({ status: 401 });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it('given a 429, when a request fails, then the message says when to try again', async () => {
    const api = new FakeApi().on('GET', '/notices', {
      status: 429,
      headers: { 'Retry-After': '7' },
      json: { error: { code: 'rate_limited', message: 'too many requests' } },
    });
    const client = new ApiClient({ baseUrl: 'http://x', token: 'key-1', fetchImpl: api.fetch });
    await expect(client.listNotices()).rejects.toThrow('too many requests (try again in 7 s)');
  });

  it('given an upload, when the server accepts it, then progress is reported and the queued document returned', async () => {
    const client = new ApiClient({ baseUrl: 'http://x', token: 'key-1', xhrFactory: () => new FakeXhr() as unknown as XMLHttpRequest });
    const progress: number[] = [];
    const done = client.uploadDocument(
      { name: 'a.txt', blob: new Blob(['hello']) },
      { collection: 'hr', onProgress: (p) => progress.push(p) },
    );
    const xhr = FakeXhr.last!;
    expect(xhr.method).toBe('POST');
    expect(xhr.url).toBe('http://x/api/v1/documents');
    expect(xhr.headers.Authorization).toBe('Bearer key-1');
    expect(xhr.sent?.get('collection')).toBe('hr');
    xhr.progress(50, 100);
    xhr.respond(202, { id: 'd9', status: 'queued' });
    await expect(done).resolves.toMatchObject({ id: 'd9', name: 'a.txt', status: 'queued' });
    expect(progress).toEqual([0.5, 1]);
  });

  it('given an oversized upload, when the server refuses it, then the reason reaches the caller', async () => {
    const client = new ApiClient({ baseUrl: 'http://x', token: 'key-1', xhrFactory: () => new FakeXhr() as unknown as XMLHttpRequest });
    const done = client.uploadDocument({ name: 'big.pdf', blob: new Blob(['x']) });
    FakeXhr.last!.respond(413, { error: { code: 'too_large', message: 'the file is over 25 MB' } });
    await expect(done).rejects.toMatchObject({ status: 413, message: 'the file is over 25 MB' });
  });
});

describe('notice order', () => {
  it('given pinned and unpinned notices, when sorted, then pinned come first, each group newest first', () => {
    const notices = [
      toNotice({ id: 'old', title: 'old', created_at: '2026-01-01T00:00:00Z' }),
      toNotice({ id: 'pin-old', title: 'p', pinned: true, created_at: '2025-01-01T00:00:00Z' }),
      toNotice({ id: 'new', title: 'new', created_at: '2026-03-01T00:00:00Z' }),
      toNotice({ id: 'pin-new', title: 'p', pinned: true, created_at: '2026-02-01T00:00:00Z', documents: [{ id: 'd1' }] }),
    ];
    const sorted = sortNotices(notices);
    expect(sorted.map((n) => n.id)).toEqual(['pin-new', 'pin-old', 'new', 'old']);
    expect(sorted[0].documentIds).toEqual(['d1']);
  });
});
