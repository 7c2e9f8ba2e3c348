// The first-run page: a site without any event yet gets the exact snippet to embed (mallard's script,
// and the Plausible-compatible name), then "waiting for the first event…", asking the realtime route
// every few seconds and opening the dashboard as soon as one arrives.
import { html, useEffect } from './html.js';
import { useApi, useEvery } from './api.js';
import { Secret } from './admin.js';

const POLL_MS = 3000;

// The script's address: this dashboard's origin and mount prefix (document.baseURI ends with it).
export const scriptUrl = (name) => new URL(name, document.baseURI).href;
export const snippet = (site, name) => `<script defer data-domain="${site}" src="${scriptUrl(name)}"></script>`;

// The line to embed in every page of `site` (also shown in Settings → Sites).
export const Snippets = ({ site }) => html`
  <p>Add this line to the <code>${'<head>'}</code> of every page of ${site}:</p>
  <${Secret} label="mallard's script" value=${snippet(site, 'mallard.js')} note="" />
  <p class="small muted">Coming from Plausible? Its script name works too, with the same attributes:</p>
  <${Secret} label="Plausible-compatible" value=${snippet(site, 'js/script.js')} note="" />`;

// True when `site` has no event at all: asked only once the view's period came back empty.
export function useNoEventsYet(site, view) {
  const main = view.data && view.data.main;
  const empty = !!main && !main.total_events && !main.unique_visitors;
  const all = useApi(site && empty ? 'api/stats/main' : null, { site_id: site, period: 'all' });
  return empty && !!all.data && !all.data.total_events && !all.data.unique_visitors;
}

export function FirstRun({ site, onEvent }) {
  const again = useEvery(POLL_MS);
  const live = useApi('api/stats/realtime', { site_id: site, limit: 1 }, { again });
  const arrived = !!live.data && live.data.visitors > 0;
  useEffect(() => { if (arrived) onEvent(); }, [arrived]);
  return html`<section class="panel wide first-run" aria-label="Add the script">
    <header class="panel-head"><h2>${site} has no events yet</h2></header>
    <${Snippets} site=${site} />
    <p class="waiting" role="status" aria-live="polite"><i class="dot" aria-hidden="true"></i>
      Waiting for the first event… <span class="small muted">(checked every ${POLL_MS / 1000} s; the dashboard opens when it arrives)</span></p>
    ${live.error && html`<p class="error" role="alert">${live.error.message}</p>`}
  </section>`;
}
