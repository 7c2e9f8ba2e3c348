// Settings → Goals: the site's goals (Sites API), add a custom-event goal (optional currency) or a
// pageview goal (a path, `*` wildcards allowed), delete one.
import { html, useState } from './html.js';
import { request } from './api.js';
import { FormError, Panel } from './widgets.js';
import { useList, act, del, Table } from './admin.js';

export function GoalsSettings({ site }) {
  const [list, reload] = useList('api/v1/sites/goals', { site_id: site, limit: 1000 });
  const [type, setType] = useState('event');
  const [name, setName] = useState('');
  const [path, setPath] = useState('');
  const [display, setDisplay] = useState('');
  const [currency, setCurrency] = useState('');
  const [err, setErr] = useState('');
  const add = act(setErr, () => request('api/v1/sites/goals', {
    method: 'PUT',
    body: {
      site_id: site, goal_type: type,
      ...(type === 'event' ? { event_name: name.trim() } : { page_path: path.trim() }),
      ...(display.trim() ? { display_name: display.trim() } : {}),
      ...(type === 'event' && currency.trim() ? { currency: currency.trim().toUpperCase() } : {}),
    },
  }), () => { setName(''); setPath(''); setDisplay(''); setCurrency(''); reload(); });
  const remove = (g) => act(setErr, () => del(`api/v1/sites/goals/${encodeURIComponent(g.id)}`, { site_id: site }), reload)();
  const cols = [
    ['Goal', (g) => g.display_name],
    ['Kind', (g) => (g.goal_type === 'page' ? `Pageview of ${g.page_path}` : `Event ${g.event_name}`)],
    ['Currency', (g) => g.currency || '—'],
    ['', (g) => html`<button class="ghost" aria-label=${`Delete goal ${g.display_name}`} onClick=${() => remove(g)}>Delete</button>`],
  ];
  const form = html`<form class="inline" onSubmit=${add} aria-label="Add a goal">
    <label>Kind<select value=${type} onChange=${(e) => setType(e.currentTarget.value)}>
      <option value="event">Custom event</option><option value="page">Pageview</option></select></label>
    ${type === 'event'
      ? html`<label class="grow">Event name<input required value=${name} placeholder="Signup"
          onInput=${(e) => setName(e.currentTarget.value)} /></label>
        <label>Currency (optional)<input class="short" value=${currency} placeholder="EUR" maxlength="3"
          onInput=${(e) => setCurrency(e.currentTarget.value)} /></label>`
      : html`<label class="grow">Page path (* matches anything)<input required value=${path} placeholder="/blog/*"
          onInput=${(e) => setPath(e.currentTarget.value)} /></label>`}
    <label class="grow">Display name (optional)<input value=${display}
      onInput=${(e) => setDisplay(e.currentTarget.value)} /></label>
    <button type="submit">Add goal</button>
    <${FormError} text=${err} />
  </form>`;
  return html`<${Panel} title="Goals" wide state=${list} top=${form} body=${(d) => html`<${Table} label="Goals"
    rows=${Array.isArray(d.goals) ? d.goals : []} cols=${cols} empty="No goals yet." />`} />`;
}
