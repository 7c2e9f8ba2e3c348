// Custom properties: the keys the range's events carry (api/stats/properties, most visitors first),
// a picker for one of them, and its values with visitors and events (`event:props:<key>`). Shown when
// some event of the range has a property. Values are counted over the events that carry the key; a
// value's click filters every panel by it.
import { html, useRef, useState, useEffect } from './html.js';
import { useLazyApi, useSeededApi, requestKey, seeded } from './api.js';
import { num } from './format.js';
import { Bar, Panel } from './widgets.js';
import { Value } from './values.js';
import { withFilter } from './filters.js';

// The request of a key's values: only the events that carry the key (the others would be one large
// "(unknown)" row); no request (null) without a key.
const valuesRequest = (params, key) => [key ? `api/stats/breakdown/event:props:${key}` : null, {
  ...params, filters: key ? withFilter(params.filters, ['is_not', `event:props:${key}`, ['(unknown)']]) : undefined,
  limit: 10,
}];

// `early`: what the page's first view carried (api/stats/view's `properties`: the keys, and the first
// key's values), for its parameters.
export function Properties({ params, ready, addFilter, early }) {
  const box = useRef(null);
  const keys = useLazyApi(box, ready, 'api/stats/properties', params,
    early ? seeded(requestKey('api/stats/properties', params), early.properties) : null);
  const list = keys.data && Array.isArray(keys.data.properties) ? keys.data.properties.map((p) => p.key) : null;
  const [key, setKey] = useState('');
  useEffect(() => {
    if (list && list.length && !list.includes(key)) setKey(list[0]);
  }, [keys.data]);
  const on = list && list.includes(key) ? key : '';
  const [path, args] = valuesRequest(params, on);
  const seed = early && early.key ? seeded(requestKey(...valuesRequest(params, early.key)), early.values) : null;
  const values = useSeededApi(seed, path, args);
  if (list && !list.length && !keys.loading) return html`<span ref=${box} hidden></span>`;
  const picker = list && list.length > 0 && html`<label class="prop-pick small muted">Property
    <select aria-label="Property" value=${on} onChange=${(e) => setKey(e.currentTarget.value)}>
      ${list.map((k) => html`<option value=${k} key=${k}>${k}</option>`)}
    </select></label>`;
  const state = keys.error ? keys : (on ? values : { loading: true, data: null, error: null });
  const table = (rows) => {
    if (!Array.isArray(rows) || !rows.length) return html`<p class="muted">No data.</p>`;
    const max = Math.max(1, ...rows.map((r) => r.visitors || 0));
    return html`<table class="bars props">
      <thead><tr><th>${on}</th><th class="n">Visitors</th><th class="n">Events</th></tr></thead>
      <tbody>${rows.map((r) => html`<tr key=${String(r.value)}>
        <td class="label"><${Bar} frac=${(r.visitors || 0) / max} />
          <button class="row-btn" title=${`Filter: event:props:${on}==${r.value}`}
            onClick=${() => addFilter(`prop:${on}`, String(r.value))}><${Value} value=${r.value} /></button></td>
        <td class="n">${num(r.visitors)}</td><td class="n">${num(r.events)}</td>
      </tr>`)}</tbody>
    </table>`;
  };
  return html`<${Panel} title="Properties" state=${state} actions=${picker} body=${table} boxRef=${box} />`;
}
