// iOS/Android: React Native's global fetch buffers whole bodies; expo/fetch streams them, which
// the chat's server-sent events need.
import { fetch as expoFetch } from 'expo/fetch';

export const streamFetch = expoFetch as unknown as (input: string, init?: RequestInit) => Promise<Response>;
