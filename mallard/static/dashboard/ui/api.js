// Hooks that ask the API (the requests: http.js).
import { createContext, useState, useEffect, useContext } from './html.js';
import { apiUrl, request, takeEarly } from './http.js';

export { apiUrl, ApiError, UNAVAILABLE, request, retrySeconds, prefetch } from './http.js';

// A 401 anywhere means "log in again": the App re-reads api/auth/status.
let onUnauthorized = () => {};
export const setUnauthorized = (fn) => { onUnauthorized = fn; };
export const Reload = createContext(0);

// The answer to GET `path` (or POST `body` as JSON, when given) as { loading, data, error }, asked again
// when the URL, the body, the Reload context or `again` changes; the last data stays while loading.
export function useApi(path, params, { body, again = 0 } = {}) {
  const url = path ? apiUrl(path, params).href : null;
  const sent = body === undefined ? undefined : JSON.stringify(body);
  const tick = useContext(Reload);
  const [state, setState] = useState({ loading: !!url, data: null, error: null });
  useEffect(() => {
    if (!url) {
      setState({ loading: false, data: null, error: null });
      return undefined;
    }
    const ctl = new AbortController();
    setState((s) => ({ loading: true, data: s.data, error: null }));
    const init = sent === undefined ? { signal: ctl.signal } : { signal: ctl.signal, method: 'POST', body };
    const asked = (sent === undefined && !tick && !again && takeEarly(url)) || request(url, init);
    asked.then(
      (data) => { if (!ctl.signal.aborted) setState({ loading: false, data, error: null }); },
      (error) => {
        if (error.name === 'AbortError' || ctl.signal.aborted) return;
        if (error.status === 401) onUnauthorized();
        setState({ loading: false, data: null, error });
      },
    );
    return () => ctl.abort();
  }, [url, sent, tick, again]);
  return state;
}

// A counter that goes up every `ms` milliseconds while `on`: pass it as useApi's `again` to poll.
export function useEvery(ms, on = true) {
  const [n, setN] = useState(0);
  useEffect(() => {
    if (!on) return undefined;
    const id = setInterval(() => setN((x) => x + 1), ms);
    return () => clearInterval(id);
  }, [ms, on]);
  return n;
}

// True once the element has come near the viewport (and from then on): panels below the fold ask for
// their data only when shown. Watching starts when `ready` (the first screen has its data, so the page
// has its real height). Without IntersectionObserver, at once; with `given` (the panel's data came with
// another answer: it was on the first screen), from then on.
export function useShown(ref, ready, given = false) {
  const [shown, setShown] = useState(!window.IntersectionObserver);
  useEffect(() => {
    if (given && !shown) setShown(true);
  }, [given]);
  useEffect(() => {
    const el = ref.current;
    if (shown || !ready || !el) return undefined;
    const io = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting)) { setShown(true); io.disconnect(); }
    }, { rootMargin: '100px' });
    io.observe(el);
    return () => io.disconnect();
  }, [shown, ready]);
  return shown;
}

// What identifies a request: its URL and its JSON body (if any).
export const requestKey = (path, params, body) => `${apiUrl(path, params).href} ${body === undefined ? '' : JSON.stringify(body)}`;
// An answer another request carried (the view's panels), for the request `key` names.
export const seeded = (key, data) => (data === undefined || data === null ? null : { key, data });
const given = (seed, path, params, body) => (
  seed && path && seed.key === requestKey(path, params, body) ? { loading: false, data: seed.data, error: null } : null);

// useApi, unless `seed` is the answer to this very request (then that, and no request); while `off`,
// no request either (it reads as loading).
export function useSeededApi(seed, path, params, { body, off = false } = {}) {
  const have = given(seed, path, params, body);
  const s = useApi(have || off ? null : path, params, { body });
  return have || (off ? { loading: true, data: null, error: null } : s);
}

// A panel that fetches `path` only once shown (until then it reads as loading), unless `seed` answers it.
export function useLazyApi(ref, ready, path, params, seed = null) {
  return useSeededApi(seed, path, params, { off: !useShown(ref, ready, !!seed) });
}

// One part of the view's answer (api/stats/view), as a useApi state.
export const partOf = (view, pick) => ({
  loading: view.loading, error: view.error, data: view.data ? pick(view.data) ?? null : null,
});
