// A breakdown panel with its tabs; a row click adds a filter. Browsers and OS rows drill down to their
// versions; countries read as flags and names; an only-unknown answer reads as one line.
import { html, useState } from './html.js';
import { useApi, partOf } from './api.js';
import { num } from './format.js';
import { DIM_LABEL, DRILL } from './labels.js';
import { Bar, Panel } from './widgets.js';
import { Tabs, tabId } from './tabs.js';
import { Value, isUnknown } from './values.js';
import { withFilter } from './filters.js';

// `hint(tab)`: a note shown instead of a tab's rows (GeoIP not configured), or null.
export function Breakdown({ group, params, view, addFilter, hint = () => null }) {
  const first = group.tabs[0][0];
  const [tab, setTab] = useState(first);
  const [drill, setDrill] = useState(null); // { dim, filter, value }: the versions of one row
  const pick = (slug) => { setTab(slug); setDrill(null); };
  const dim = drill ? drill.dim : tab;
  // "GeoIP not configured" for a location level the server does not fill, shown when nothing stored
  // has it (a lake written elsewhere may hold regions all the same)
  const note = hint(tab);
  const filters = drill ? withFilter(params.filters, ['is', drill.filter, [drill.value]]) : params.filters;
  // The first tab comes with the view; another (or a drill-down) is asked for when shown.
  const own = useApi(dim === first ? null : `api/stats/breakdown/${dim}`, { ...params, filters, limit: 10 });
  const s = dim === first ? partOf(view, (d) => d.breakdowns && d.breakdowns[first]) : own;
  const many = group.tabs.length > 1;
  const ids = { prefix: `tab-${first}`, panel: `tabpanel-${first}` };
  const tabs = many && html`<${Tabs} tabs=${group.tabs} value=${tab} onPick=${pick}
    label=${`${group.title} breakdowns`} prefix=${ids.prefix} controls=${ids.panel} />`;
  const down = DRILL[tab];
  const top = drill && html`<p class="drill"><button type="button" class="link" onClick=${() => setDrill(null)}>
    ← ${group.tabs.find((t) => t[0] === tab)[1]}</button> <span>${drill.value} versions</span></p>`;
  const body = (rows) => {
    const none = !Array.isArray(rows) || !rows.length;
    if (note && (none || rows.every((r) => isUnknown(r.value)))) return note;
    if (none) return html`<p class="muted">No data.</p>`;
    if (rows.every((r) => isUnknown(r.value))) {
      return html`<p class="muted unknown-only">${DIM_LABEL[dim] || group.head} not known for these visitors (${num(rows[0].visitors)}).</p>`;
    }
    const max = Math.max(1, ...rows.map((r) => r.visitors || 0));
    return html`<table class="bars">
      <thead><tr><th>${DIM_LABEL[dim] || group.head}</th><th class="n">Visitors</th><th class="n">Views</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr key=${String(r.value)}>
        <td class="label"><${Bar} frac=${(r.visitors || 0) / max} />
          <span class="row-line"><button class="row-btn" title=${`Filter: ${dim}==${r.value}`}
            onClick=${() => addFilter(dim, String(r.value))}><${Value} dim=${dim} value=${r.value} /></button>
          ${down && !drill && !isUnknown(r.value) && html`<button type="button" class="drill-btn"
            aria-label=${`${r.value} versions`} title=${`${r.value} versions`}
            onClick=${() => setDrill({ dim: down[0], filter: down[1], value: String(r.value) })}></button>`}</span></td>
        <td class="n">${num(r.visitors)}</td><td class="n">${num(r.pageviews)}</td>
      </tr>`)}</tbody>
    </table>`;
  };
  return html`<${Panel} title=${group.title} state=${s} actions=${tabs} top=${top} body=${body}
    tabpanel=${many && { id: ids.panel, labelledby: tabId(ids.prefix, tab) }} />`;
}
