// Settings → Sites (Admin): every site the server knows (api/sites), each with the time zone its stats
// are counted in and its reporting currency (api/v1/sites/{id}); for the page's site, its all-time
// events and visitors, the currency editor, the snippet to embed and "Erase this site's data".
import { html, useState } from './html.js';
import { useApi, request } from './api.js';
import { num } from './format.js';
import { FormError, Panel } from './widgets.js';
import { useList, act } from './admin.js';
import { Snippets } from './onboarding.js';
import { EraseSite } from './erase.js';

const sitePath = (site) => `api/v1/sites/${encodeURIComponent(site)}`;

function SiteRow({ site, current, again, onPick }) {
  const s = useApi(sitePath(site), null, { again });
  const d = s.data || {};
  const cell = (v) => (s.error ? html`<span class="error">${s.error.message}</span>` : v ?? '…');
  return html`<tr aria-current=${site === current ? 'true' : undefined}>
    <td>${site}</td><td>${cell(d.timezone)}</td><td>${cell(s.data && (d.currency || 'per goal'))}</td>
    <td>${cell(s.data && (d.first_event_date || '—'))}</td>
    <td>${site === current ? html`<span class="muted">Shown below</span>`
      : html`<button type="button" class="ghost" aria-label=${`Manage ${site}`} onClick=${() => onPick(site)}>Manage</button>`}</td>
  </tr>`;
}

function Currency({ site, value, onSaved }) {
  const [code, setCode] = useState(value || '');
  const [err, setErr] = useState('');
  const put = (currency) => act(setErr, () => request(sitePath(site), { method: 'PUT', body: { currency } }),
    (d) => { setCode(d.currency || ''); onSaved(); });
  return html`<form class="inline" onSubmit=${put(code.trim().toUpperCase() || null)} aria-label="Reporting currency">
    <label>Reporting currency<input class="short" value=${code} placeholder="EUR" maxlength="3"
      onInput=${(e) => setCode(e.currentTarget.value)} /></label>
    <button type="submit">Save currency</button>
    ${value && html`<button type="button" class="ghost" onClick=${put(null)}>Clear</button>`}
    <p class="small muted grow">Revenue is reported in this currency when a query asks for it; without one,
      per goal currency.</p>
    <${FormError} text=${err} />
  </form>`;
}

function SiteDetails({ site, again, changed }) {
  const s = useApi(sitePath(site), null, { again });
  const all = useApi('api/stats/main', { site_id: site, period: 'all' }, { again });
  const d = s.data;
  const figures = all.data ? `${num(all.data.total_events)} events, ${num(all.data.unique_visitors)} visitors`
    : all.error ? all.error.message : 'Loading…';
  return html`<section class="panel wide site-details" aria-label=${`Site ${site}`}>
    <header class="panel-head"><h2>${site}</h2></header>
    ${s.error ? html`<p class="error" role="alert">${s.error.status === 404
      ? `mallard holds no event of ${site}, and it is not a configured site.` : s.error.message}</p>`
      : !d ? html`<p class="muted">Loading…</p>` : html`
      <dl class="site-facts">
        <dt>All time</dt><dd class="site-totals">${figures}</dd>
        <dt>Time zone</dt><dd>${d.timezone} <span class="small muted">(the server's <code>timezone</code> setting)</span></dd>
        <dt>First stored day</dt><dd>${d.first_event_date || '—'} <span class="small muted">(UTC)</span></dd>
      </dl>
      <${Currency} site=${site} value=${d.currency} key=${`${site}-${d.currency}`} onSaved=${changed} />
      <h3>Embed</h3>
      <${Snippets} site=${site} />
      <h3>Erase this site's data</h3>
      <${EraseSite} site=${site} first=${d.first_event_date} onErased=${changed} />`}
  </section>`;
}

export function SitesSettings({ site, onPick }) {
  const [list, reload] = useList('api/sites');
  const [again, setAgain] = useState(0);
  const changed = () => { setAgain((n) => n + 1); reload(); };
  const sites = list.data && Array.isArray(list.data.sites) ? list.data.sites.map(String) : [];
  const rows = site && !sites.includes(site) ? [site, ...sites] : sites;
  const body = () => (rows.length ? html`<div class="scroll"><table class="admin" aria-label="Sites">
    <thead><tr><th>Site</th><th>Time zone</th><th>Currency</th><th>First stored day</th><th></th></tr></thead>
    <tbody>${rows.map((x) => html`<${SiteRow} key=${x} site=${x} current=${site} again=${again} onPick=${onPick} />`)}</tbody>
  </table></div>` : html`<p class="muted">No site yet: a site appears with its first event, or when configured (site_ids).</p>`);
  return html`<${Panel} title="Sites" wide state=${list} body=${body} />
    ${site ? html`<${SiteDetails} site=${site} key=${site} again=${again} changed=${changed} />`
      : html`<p class="notice">Choose a site to manage it.</p>`}`;
}
