// HTTP: every URL relative to document.baseURI (the dashboard is mounted under any prefix). Like
// secret.js, url.js, labels.js and periods.js, no Preact: boot.js asks before the components load.
import { shareHeaders } from './secret.js';

export const apiUrl = (path, params) => {
  const url = new URL(path, document.baseURI);
  for (const [k, v] of Object.entries(params || {})) {
    if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, String(v));
  }
  return url;
};

export class ApiError extends Error {
  constructor(message, status, retryAfter) {
    super(message);
    this.status = status;
    this.retryAfter = retryAfter;
  }
}

// Answers meaning "this endpoint is not implemented / not enabled here" (behavioural panels).
export const UNAVAILABLE = new Set([404, 405, 501, 503]);

export async function request(path, { params, method = 'GET', body, signal } = {}) {
  const init = { method, signal, credentials: 'same-origin', headers: { Accept: 'application/json', ...shareHeaders() } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(apiUrl(path, params), init);
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError('Network error: the server could not be reached.', 0, null);
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = null; }
  }
  if (!res.ok) {
    const msg = (data && typeof data.error === 'string' && data.error) || `HTTP ${res.status}`;
    throw new ApiError(msg, res.status, res.headers.get('Retry-After'));
  }
  return data;
}

export function retrySeconds(err) {
  const raw = err.retryAfter;
  if (raw && /^\d+$/.test(raw.trim())) return Number(raw);
  const when = raw ? Date.parse(raw) : NaN;
  return Number.isNaN(when) ? 60 : Math.max(1, Math.ceil((when - Date.now()) / 1000));
}

// GET answers asked before the app rendered (boot.js), by URL: the first useApi of that URL within
// PREFETCH_MS takes it.
const early = new Map();
const PREFETCH_MS = 30000;
export function prefetch(path, params) {
  const href = apiUrl(path, params).href;
  if (!early.has(href)) early.set(href, { at: Date.now(), answer: request(href) });
}
export function takeEarly(url) {
  const got = early.get(url);
  early.delete(url);
  return got && Date.now() - got.at < PREFETCH_MS ? got.answer : null;
}
