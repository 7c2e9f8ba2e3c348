// The first requests, sent once this entry's few modules are in (index.html runs it before app.js):
// the sign-in state and, when it allows, the first view; the app takes their answers (api.js: prefetch).
import { request, prefetch } from './http.js';
import { readUrl, statParams } from './url.js';
import { GROUPS } from './labels.js';
import { comparisonOf, intervalOf } from './periods.js';

// The page state for a sign-in state: a shared link sees its own site, read-only.
export function stateFor(auth) {
  const shared = auth.authenticated ? null : auth.shared_link;
  return shared ? { ...readUrl(), site: shared.site_id, view: '' } : readUrl();
}

// The view's path for a page state (null: realtime, or no site) and its parameters; with `panels`, the
// Goals and Properties panels too (the page's first view: they would wait for it).
export const viewPath = (st) => (st.site && st.period !== 'realtime' ? 'api/stats/view' : null);
export const viewParams = (st, panels) => ({
  ...statParams(st), limit: 10, breakdowns: GROUPS.map((g) => g.tabs[0][0]).join(','), compare: comparisonOf(st),
  interval: intervalOf(st), panels: panels ? 'goals,properties' : undefined,
});

let first = request('api/auth/status').then((answer) => {
  const auth = answer || {};
  if (auth.authenticated || auth.shared_link) {
    const st = stateFor(auth);
    const path = viewPath(st);
    if (path) prefetch(path, viewParams(st, true));
  }
  return answer;
});

// The first api/auth/status answer (a promise), once; null after (later checks ask again).
export function firstStatus() {
  const p = first;
  first = null;
  return p;
}
