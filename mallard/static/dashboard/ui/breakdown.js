// A breakdown panel with its tabs; a row click adds a filter.
import { html, useState } from './html.js';
import { useApi, partOf } from './api.js';
import { num } from './format.js';
import { DIM_LABEL } from './labels.js';
import { Bar, Panel } from './widgets.js';

// `hint(tab)`: a note shown instead of a tab's rows (GeoIP not configured), or null.
export function Breakdown({ group, params, view, addFilter, hint = () => null }) {
  const first = group.tabs[0][0];
  const [tab, setTab] = useState(first);
  // The first tab comes with the view; another is asked for when clicked.
  const note = hint(tab);
  const own = useApi(tab === first || note ? null : `api/stats/breakdown/${tab}`, { ...params, limit: 10 });
  const s = tab === first ? partOf(view, (d) => d.breakdowns && d.breakdowns[first]) : own;
  const tabs = group.tabs.length > 1 && html`<div class="tabs" role="tablist">
    ${group.tabs.map(([slug, label]) => html`<button role="tab" aria-selected=${slug === tab ? 'true' : 'false'}
      class=${slug === tab ? 'tab on' : 'tab'} onClick=${() => setTab(slug)}>${label}</button>`)}
  </div>`;
  const body = (rows) => {
    if (!Array.isArray(rows) || !rows.length) return html`<p class="muted">No data.</p>`;
    const max = Math.max(1, ...rows.map((r) => r.visitors || 0));
    return html`<table class="bars">
      <thead><tr><th>${DIM_LABEL[tab] || group.head}</th><th class="n">Visitors</th><th class="n">Views</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr key=${String(r.value)}>
        <td class="label"><${Bar} frac=${(r.visitors || 0) / max} />
          <button class="row-btn" title=${`Filter: ${tab}==${r.value}`}
            onClick=${() => addFilter(tab, String(r.value))}>${String(r.value)}</button></td>
        <td class="n">${num(r.visitors)}</td><td class="n">${num(r.pageviews)}</td>
      </tr>`)}</tbody>
    </table>`;
  };
  if (note) return html`<${Panel} title=${group.title} state=${{ data: true }} actions=${tabs} body=${() => note} />`;
  return html`<${Panel} title=${group.title} state=${s} actions=${tabs} body=${body} />`;
}
