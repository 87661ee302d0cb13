// Web: the browser's fetch already streams response bodies.
export const streamFetch: ((input: string, init?: RequestInit) => Promise<Response>) | undefined = undefined;
