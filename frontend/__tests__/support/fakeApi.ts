// A scripted stand-in for the docmill HTTP API, used as `fetch` in component tests only (the
// e2e test drives the real `docmill serve`). Routes answer like issue #13's contract.
import type { ApiClient } from '../../src/api/client';

export interface FakeResponseInit {
  status?: number;
  json?: unknown;
  /** A text/event-stream body delivered in these pieces. */
  sse?: string[];
  headers?: Record<string, string>;
}

export interface Call {
  method: string;
  path: string;
  body: unknown;
  headers: Record<string, string>;
}

type Handler = (call: Call) => FakeResponseInit | Promise<FakeResponseInit>;

export function fakeResponse({ status = 200, json, sse, headers = {} }: FakeResponseInit): Response {
  const allHeaders: Record<string, string> = {
    'content-type': sse ? 'text/event-stream' : 'application/json',
    ...Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v])),
  };
  const text = sse ? sse.join('') : json === undefined ? '' : JSON.stringify(json);
  const encoder = new TextEncoder();
  const pieces = sse ?? [];
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: String(status),
    headers: { get: (name: string) => allHeaders[name.toLowerCase()] ?? null },
    json: async () => JSON.parse(text),
    text: async () => text,
    body: sse
      ? {
          getReader: () => {
            let i = 0;
            return {
              read: async () =>
                i < pieces.length ? { done: false, value: encoder.encode(pieces[i++]) } : { done: true, value: undefined },
              cancel: async () => undefined,
            };
          },
        }
      : null,
  } as unknown as Response;
}

export class FakeApi {
  readonly calls: Call[] = [];
  private routes: { method: string; pattern: RegExp; handler: Handler }[] = [];

  constructor(private readonly token = 'key-1') {}

  on(method: string, path: string | RegExp, handler: Handler | FakeResponseInit): this {
    const pattern = typeof path === 'string' ? new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`) : path;
    this.routes.unshift({ method, pattern, handler: typeof handler === 'function' ? handler : () => handler });
    return this;
  }

  fetch = async (url: string, init: RequestInit = {}): Promise<Response> => {
    const method = (init.method ?? 'GET').toUpperCase();
    const path = url.replace(/^https?:\/\/[^/]+\/api\/v1/, '');
    const headers = (init.headers ?? {}) as Record<string, string>;
    const call: Call = { method, path, headers, body: typeof init.body === 'string' ? JSON.parse(init.body) : init.body };
    this.calls.push(call);
    if (headers.Authorization !== `Bearer ${this.token}`)
      return fakeResponse({ status: 401, json: { error: { code: 'unauthorized', message: 'invalid credential' } } });
    const route = this.routes.find((r) => r.method === method && r.pattern.test(path));
    if (!route) return fakeResponse({ status: 404, json: { error: { code: 'not_found', message: `no route ${method} ${path}` } } });
    return fakeResponse(await route.handler(call));
  };

  callsTo(method: string, path: string): Call[] {
    return this.calls.filter((c) => c.method === method && c.path === path);
  }
}

/** A scripted XMLHttpRequest for uploads: reports progress, then answers. */
export class FakeXhr {
  static last: FakeXhr | null = null;
  upload: { onprogress: ((e: { loaded: number; total: number; lengthComputable: boolean }) => void) | null } = { onprogress: null };
  onload: (() => void) | null = null;
  onerror: (() => void) | null = null;
  status = 0;
  responseText = '';
  method = '';
  url = '';
  headers: Record<string, string> = {};
  sent: FormData | null = null;

  constructor() {
    FakeXhr.last = this;
  }
  open(method: string, url: string) {
    this.method = method;
    this.url = url;
  }
  setRequestHeader(name: string, value: string) {
    this.headers[name] = value;
  }
  send(body: FormData) {
    this.sent = body;
  }
  progress(loaded: number, total: number) {
    this.upload.onprogress?.({ loaded, total, lengthComputable: true });
  }
  respond(status: number, json: unknown) {
    this.status = status;
    this.responseText = JSON.stringify(json);
    this.onload?.();
  }
}

export const signedIn = (client: ApiClient, isAdmin = true) => ({ client, me: { tenant: 'acme', isAdmin } });
