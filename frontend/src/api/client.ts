// The one HTTP client of the app: every call carries the Bearer credential, every failure
// becomes an ApiError with the server's {"error": {"code", "message"}}, and a 401 anywhere
// tells the app to return to sign in (onUnauthorized).
import { SseParser, type SseEvent } from './sse';
import type {
  ChatReply,
  Citation,
  DocumentInfo,
  Job,
  Me,
  Notice,
  NoticeInput,
} from './types';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** A file picked by the person: a browser File/Blob on web, a local uri on iOS/Android. */
export interface UploadFile {
  name: string;
  size?: number;
  mimeType?: string;
  blob?: Blob;
  uri?: string;
}

export interface UploadOptions {
  collection?: string;
  onProgress?: (fraction: number) => void;
}

export interface ChatOptions {
  conversationId?: string | null;
  collection?: string;
  onToken?: (text: string) => void;
  signal?: AbortSignal;
}

type FetchLike = (input: string, init?: RequestInit) => Promise<Response>;

export interface ClientOptions {
  baseUrl: string;
  token: string;
  fetchImpl?: FetchLike;
  /** For native streaming (expo/fetch); defaults to fetchImpl. */
  streamFetchImpl?: FetchLike;
  xhrFactory?: () => XMLHttpRequest;
  onUnauthorized?: () => void;
}

const API_PREFIX = '/api/v1';

export function apiRoot(baseUrl: string): string {
  return baseUrl.replace(/\/+$/, '') + API_PREFIX;
}

function asList(payload: unknown, ...keys: string[]): unknown[] {
  if (Array.isArray(payload)) return payload;
  if (payload && typeof payload === 'object') {
    const record = payload as Record<string, unknown>;
    for (const key of [...keys, 'items', 'data', 'results']) {
      if (Array.isArray(record[key])) return record[key] as unknown[];
    }
  }
  return [];
}

function str(value: unknown): string | null {
  return typeof value === 'string' ? value : typeof value === 'number' ? String(value) : null;
}

export function toDocument(raw: unknown): DocumentInfo {
  const r = (raw ?? {}) as Record<string, unknown>;
  const id = str(r.id) ?? str(r.document_id) ?? '';
  return {
    id,
    name: str(r.name) ?? str(r.filename) ?? str(r.source) ?? id,
    status: str(r.status) ?? 'queued',
    reason: str(r.reason) ?? str(r.error),
    chunks: typeof r.chunks === 'number' ? r.chunks : null,
    collection: str(r.collection),
  };
}

export function toNotice(raw: unknown): Notice {
  const r = (raw ?? {}) as Record<string, unknown>;
  let documentIds: string[] = [];
  const linked = r.document_ids ?? r.documents ?? r.linked_documents;
  if (Array.isArray(linked)) {
    documentIds = linked
      .map((d) => (typeof d === 'object' && d ? str((d as Record<string, unknown>).id) : str(d)))
      .filter((d): d is string => !!d);
  }
  return {
    id: str(r.id) ?? '',
    title: str(r.title) ?? '',
    body: str(r.body) ?? '',
    pinned: r.pinned === true,
    documentIds,
    createdAt: str(r.created_at) ?? str(r.created) ?? str(r.createdAt),
    updatedAt: str(r.updated_at) ?? str(r.updated) ?? str(r.updatedAt),
    author: str(r.author) ?? str(r.created_by),
  };
}

/** Pinned notices first, then newest first (by creation time; ties keep server order). */
export function sortNotices(notices: Notice[]): Notice[] {
  const time = (n: Notice) => (n.createdAt ? Date.parse(n.createdAt) || 0 : 0);
  return notices
    .map((notice, index) => ({ notice, index }))
    .sort(
      (a, b) =>
        Number(b.notice.pinned) - Number(a.notice.pinned) ||
        time(b.notice) - time(a.notice) ||
        a.index - b.index,
    )
    .map(({ notice }) => notice);
}

export function toCitation(raw: unknown): Citation {
  const r = (raw ?? {}) as Record<string, unknown>;
  const pages = Array.isArray(r.pages)
    ? r.pages.filter((p): p is number => typeof p === 'number')
    : typeof r.page === 'number'
      ? [r.page]
      : [];
  return {
    document_id: str(r.document_id) ?? '',
    source: str(r.source) ?? str(r.name) ?? '',
    pages,
    chunk_id: str(r.chunk_id) ?? '',
    snippet: str(r.snippet) ?? str(r.text) ?? '',
    score: typeof r.score === 'number' ? r.score : null,
  };
}

function toJob(raw: unknown, kind: Job['kind']): Job {
  const r = (raw ?? {}) as Record<string, unknown>;
  const metrics = r.metrics && typeof r.metrics === 'object' ? (r.metrics as Record<string, unknown>) : {};
  const counts = r.counts && typeof r.counts === 'object' ? (r.counts as Record<string, unknown>) : {};
  // A finished job's result: its scalar figures (record counts, losses) are the metrics shown.
  const result: Record<string, unknown> = {};
  if (r.result && typeof r.result === 'object') {
    for (const [key, value] of Object.entries(r.result as Record<string, unknown>)) {
      if (typeof value === 'number' || typeof value === 'boolean') result[key] = value;
      else if (value && typeof value === 'object' && !Array.isArray(value))
        for (const [inner, v] of Object.entries(value as Record<string, unknown>))
          if (typeof v === 'number') result[`${key}.${inner}`] = v;
    }
  }
  return {
    id: str(r.id) ?? str(r.job_id) ?? '',
    kind,
    status: str(r.status) ?? 'queued',
    name: str(r.name) ?? str(r.dataset) ?? str(r.collection) ?? str(r.model),
    reason: str(r.reason) ?? str(r.error),
    metrics: { ...result, ...counts, ...metrics },
    createdAt: str(r.created_at) ?? str(r.created),
  };
}

async function errorFrom(response: Response): Promise<ApiError> {
  let code = `http_${response.status}`;
  let message = response.statusText || `request failed (${response.status})`;
  try {
    const body = await response.json();
    const error = body?.error ?? body;
    if (typeof error?.code === 'string') code = error.code;
    if (typeof error?.message === 'string') message = error.message;
    else if (typeof body?.detail === 'string') message = body.detail;
  } catch {
    // not JSON: keep the status text
  }
  if (response.status === 429) {
    const wait = response.headers?.get?.('Retry-After');
    if (wait) message = `${message} (try again in ${wait} s)`;
  }
  return new ApiError(response.status, code, message);
}

export class ApiClient {
  private readonly root: string;
  private readonly fetchImpl: FetchLike;
  private readonly streamFetchImpl: FetchLike;

  constructor(private readonly options: ClientOptions) {
    this.root = apiRoot(options.baseUrl);
    this.fetchImpl = options.fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
    this.streamFetchImpl = options.streamFetchImpl ?? this.fetchImpl;
  }

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return { Authorization: `Bearer ${this.options.token}`, Accept: 'application/json', ...extra };
  }

  private fail(error: ApiError): never {
    if (error.status === 401) this.options.onUnauthorized?.();
    throw error;
  }

  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await this.fetchImpl(this.root + path, {
        method,
        headers: this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (cause) {
      throw new ApiError(0, 'network', `cannot reach the server: ${(cause as Error).message ?? cause}`);
    }
    if (!response.ok) this.fail(await errorFrom(response));
    if (response.status === 204) return undefined as T;
    const text = await response.text();
    return (text ? JSON.parse(text) : undefined) as T;
  }

  async me(): Promise<Me> {
    try {
      const body = await this.request<Record<string, unknown>>('GET', '/me');
      const role = str(body?.role);
      return {
        tenant: str(body?.tenant),
        isAdmin: body?.admin === true || body?.is_admin === true || role === 'admin' || role === 'owner',
      };
    } catch (error) {
      // Servers without /me: a tenant's API key is the tenant admin's credential locally
      // (issue #13: tenant admins post notices); the server still enforces it (403).
      if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
        return { tenant: null, isAdmin: true };
      }
      throw error;
    }
  }

  async listDocuments(): Promise<DocumentInfo[]> {
    return asList(await this.request('GET', '/documents'), 'documents').map(toDocument);
  }

  async getDocument(id: string): Promise<DocumentInfo> {
    return toDocument(await this.request('GET', `/documents/${encodeURIComponent(id)}`));
  }

  async deleteDocument(id: string): Promise<void> {
    await this.request('DELETE', `/documents/${encodeURIComponent(id)}`);
  }

  /** Multipart upload over XMLHttpRequest: fetch cannot report upload progress. */
  uploadDocument(file: UploadFile, options: UploadOptions = {}): Promise<DocumentInfo> {
    const xhr = this.options.xhrFactory ? this.options.xhrFactory() : new XMLHttpRequest();
    const form = new FormData();
    if (file.blob) form.append('file', file.blob, file.name);
    else form.append('file', { uri: file.uri, name: file.name, type: file.mimeType ?? 'application/octet-stream' } as unknown as Blob);
    if (options.collection) form.append('collection', options.collection);
    return new Promise((resolve, reject) => {
      xhr.open('POST', `${this.root}/documents`);
      xhr.setRequestHeader('Authorization', `Bearer ${this.options.token}`);
      xhr.setRequestHeader('Accept', 'application/json');
      if (xhr.upload && options.onProgress) {
        xhr.upload.onprogress = (event) => {
          if (event.lengthComputable && event.total > 0) options.onProgress?.(event.loaded / event.total);
        };
      }
      xhr.onerror = () => reject(new ApiError(0, 'network', 'the upload could not reach the server'));
      xhr.onload = () => {
        let body: Record<string, unknown> | null = null;
        try {
          body = JSON.parse(xhr.responseText || 'null');
        } catch {
          body = null;
        }
        if (xhr.status >= 200 && xhr.status < 300) {
          options.onProgress?.(1);
          resolve(toDocument({ name: file.name, ...(body ?? {}) }));
          return;
        }
        const error = (body?.error ?? {}) as Record<string, unknown>;
        const failure = new ApiError(
          xhr.status,
          str(error.code) ?? `http_${xhr.status}`,
          str(error.message) ??
            (xhr.status === 413 ? 'the file is larger than the server accepts' : `upload failed (${xhr.status})`),
        );
        if (xhr.status === 401) this.options.onUnauthorized?.();
        reject(failure);
      };
      xhr.send(form);
    });
  }

  async listNotices(): Promise<Notice[]> {
    return sortNotices(asList(await this.request('GET', '/notices'), 'notices').map(toNotice));
  }

  async createNotice(input: NoticeInput): Promise<Notice> {
    return toNotice(await this.request('POST', '/notices', input));
  }

  async updateNotice(id: string, input: NoticeInput): Promise<Notice> {
    return toNotice(await this.request('PUT', `/notices/${encodeURIComponent(id)}`, input));
  }

  async deleteNotice(id: string): Promise<void> {
    await this.request('DELETE', `/notices/${encodeURIComponent(id)}`);
  }

  async listJobs(): Promise<Job[]> {
    const load = async (path: string, kind: Job['kind'], key: string) => {
      try {
        return asList(await this.request('GET', path), key).map((raw) => toJob(raw, kind));
      } catch (error) {
        // A server without the list route, or without fine-tuning configured (501), has no
        // such jobs to show: not an error.
        if (error instanceof ApiError && [404, 405, 501].includes(error.status)) return [];
        throw error;
      }
    };
    const [datasets, fineTunes] = await Promise.all([
      load('/datasets', 'dataset', 'datasets'),
      load('/fine-tunes', 'fine-tune', 'fine_tunes'),
    ]);
    return [...datasets, ...fineTunes];
  }

  async getJob(kind: Job['kind'], id: string): Promise<Job> {
    const path = kind === 'dataset' ? '/datasets/' : '/fine-tunes/';
    return toJob(await this.request('GET', path + encodeURIComponent(id)), kind);
  }

  async startDataset(collection?: string): Promise<Job> {
    return toJob(await this.request('POST', '/datasets', collection ? { collection } : {}), 'dataset');
  }

  async startFineTune(datasetId: string): Promise<Job> {
    return toJob(await this.request('POST', '/fine-tunes', { dataset_id: datasetId }), 'fine-tune');
  }

  /**
   * POST /chat with "stream": true: tokens arrive as server-sent events, then the citations.
   * Resolves with the whole reply once the stream ends.
   */
  async chat(message: string, options: ChatOptions = {}): Promise<ChatReply> {
    const body: Record<string, unknown> = { message, stream: true };
    if (options.conversationId) body.conversation_id = options.conversationId;
    if (options.collection) body.collection = options.collection;
    let response: Response;
    try {
      response = await this.streamFetchImpl(`${this.root}/chat`, {
        method: 'POST',
        headers: this.headers({ 'Content-Type': 'application/json', Accept: 'text/event-stream' }),
        body: JSON.stringify(body),
        signal: options.signal,
      });
    } catch (cause) {
      throw new ApiError(0, 'network', `cannot reach the server: ${(cause as Error).message ?? cause}`);
    }
    if (!response.ok) this.fail(await errorFrom(response));
    const type = response.headers?.get?.('Content-Type') ?? '';
    if (type.includes('application/json')) {
      // The server answered in one piece: same reply, no streaming.
      const whole = await response.json();
      options.onToken?.(String(whole.answer ?? ''));
      return {
        answer: String(whole.answer ?? ''),
        conversation_id: String(whole.conversation_id ?? ''),
        citations: asList(whole.citations).map(toCitation),
      };
    }
    return readChatStream(response, options.onToken);
  }
}

interface StreamState {
  answer: string;
  conversationId: string;
  citations: Citation[];
  finalAnswer: string | null;
}

function applyEvent(event: SseEvent, state: StreamState, onToken?: (text: string) => void): boolean {
  if (event.data === '[DONE]') return true;
  let payload: unknown = event.data;
  try {
    payload = JSON.parse(event.data);
  } catch {
    // plain-text data: a token
  }
  const record = payload && typeof payload === 'object' ? (payload as Record<string, unknown>) : null;
  const kind = event.event !== 'message' ? event.event : str(record?.type) ?? 'message';
  if (kind === 'error' || record?.error) {
    const error = (record?.error ?? record ?? {}) as Record<string, unknown>;
    throw new ApiError(500, str(error.code) ?? 'stream_error', str(error.message) ?? (event.data || 'the answer stream failed'));
  }
  if (record && typeof record.conversation_id === 'string') state.conversationId = record.conversation_id;
  if (record && Array.isArray(record.citations)) state.citations = record.citations.map(toCitation);
  if (record && typeof record.answer === 'string') state.finalAnswer = record.answer;
  let token: string | null = null;
  if (record === null) token = typeof payload === 'string' && kind !== 'done' ? payload : null;
  else if (kind === 'token' || kind === 'message' || kind === 'delta')
    token = str(record.token) ?? str(record.delta) ?? str(record.text) ?? str(record.content);
  if (token) {
    state.answer += token;
    onToken?.(token);
  }
  return kind === 'done' || kind === 'end';
}

async function readChatStream(response: Response, onToken?: (text: string) => void): Promise<ChatReply> {
  const parser = new SseParser();
  const state: StreamState = { answer: '', conversationId: '', citations: [], finalAnswer: null };
  const reader = response.body && typeof response.body.getReader === 'function' ? response.body.getReader() : null;
  let finished = false;
  if (reader) {
    const decoder = new TextDecoder();
    while (!finished) {
      const { value, done } = await reader.read();
      if (done) break;
      for (const event of parser.feed(decoder.decode(value, { stream: true }))) {
        if (applyEvent(event, state, onToken)) finished = true;
      }
    }
    if (finished) await reader.cancel().catch(() => undefined);
  } else {
    for (const event of parser.feed(await response.text())) {
      if (!finished && applyEvent(event, state, onToken)) finished = true;
    }
  }
  if (!finished) for (const event of parser.end()) if (applyEvent(event, state, onToken)) finished = true;
  if (!finished && !state.answer && state.finalAnswer === null) {
    // The server closed the stream before any answer (it failed after the headers were sent).
    throw new ApiError(502, 'stream_incomplete', 'the answer stopped before it started; try again');
  }
  return {
    answer: state.finalAnswer ?? state.answer,
    conversation_id: state.conversationId,
    citations: state.citations,
  };
}
