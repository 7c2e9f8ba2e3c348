// Settings → Shared links: a site's read-only links (list, create showing the URL once, revoke).
import { html, useState } from './html.js';
import { request } from './api.js';
import { FormError, Panel } from './widgets.js';
import { useList, act, del, Secret, Table } from './admin.js';

export function LinksSettings({ site }) {
  const [list, reload] = useList('api/v1/sites/shared-links', { site_id: site });
  const [name, setName] = useState('');
  const [made, setMade] = useState(null);
  const [err, setErr] = useState('');
  const create = act(setErr, () => request('api/v1/sites/shared-links', {
    method: 'POST', body: { site_id: site, name: name.trim() },
  }), (l) => { setMade({ ...l, url: new URL(l.url, window.location.origin).href }); setName(''); reload(); });
  const revoke = (l) => act(setErr, () => del(`api/v1/sites/shared-links/${encodeURIComponent(l.id)}`, { site_id: site }), () => {
    if (made && made.id === l.id) setMade(null);
    reload();
  })();
  const cols = [
    ['Name', (l) => l.name], ['Created', (l) => String(l.created_at || '').slice(0, 10)],
    ['', (l) => (l.revoked ? html`<span class="muted">Revoked</span>`
      : html`<button class="ghost" aria-label=${`Revoke link ${l.name}`} onClick=${() => revoke(l)}>Revoke</button>`)],
  ];
  const top = html`<p class="small muted">Anyone with a link reads ${site}'s stats, read-only, without an account.</p>
    <form class="inline" onSubmit=${create} aria-label="Create a shared link">
      <label class="grow">Name<input required maxlength="120" value=${name} placeholder="Team wiki"
        onInput=${(e) => setName(e.currentTarget.value)} /></label>
      <button type="submit">Create link</button>
      <${FormError} text=${err} />
    </form>
    ${made && html`<${Secret} label=${`Link “${made.name}”`} value=${made.url}
      note="Copy it now: the link is shown only this once." />`}`;
  return html`<${Panel} title="Shared links" wide state=${list} top=${top} body=${(d) => html`<${Table} label="Shared links"
    rows=${Array.isArray(d.shared_links) ? d.shared_links : []} cols=${cols} empty="No shared links yet." />`} />`;
}
