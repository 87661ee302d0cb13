// Shapes of the docmill chat API (issue #13: everything under /api/v1, Bearer credential,
// errors as {"error": {"code", "message"}}). Responses are normalised in client.ts so the screens
// see one shape even where the server wraps lists ({"documents": [...]}) or names a field
// slightly differently.

export type DocumentStatus = 'queued' | 'processing' | 'indexed' | 'failed';

export interface DocumentInfo {
  id: string;
  name: string;
  status: DocumentStatus | string;
  reason?: string | null;
  chunks?: number | null;
  collection?: string | null;
}

export interface Notice {
  id: string;
  title: string;
  body: string;
  pinned: boolean;
  documentIds: string[];
  createdAt?: string | null;
  updatedAt?: string | null;
  author?: string | null;
}

export interface NoticeInput {
  title: string;
  body: string;
  pinned: boolean;
  document_ids: string[];
}

export interface Citation {
  document_id: string;
  source: string;
  pages: number[];
  chunk_id: string;
  snippet: string;
  score?: number | null;
}

export interface ChatReply {
  answer: string;
  conversation_id: string;
  citations: Citation[];
}

export interface Job {
  id: string;
  kind: 'dataset' | 'fine-tune';
  status: string;
  name?: string | null;
  reason?: string | null;
  metrics: Record<string, unknown>;
  createdAt?: string | null;
}

export interface Me {
  tenant: string | null;
  isAdmin: boolean;
}
