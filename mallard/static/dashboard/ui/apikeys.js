// Settings → API keys: list (hashes only), create with a scope (the key is shown this once), revoke.
import { html, useState } from './html.js';
import { request } from './api.js';
import { FormError, Panel } from './widgets.js';
import { useList, act, del, Secret, Table } from './admin.js';

export function KeysSettings() {
  const [list, reload] = useList('api/keys');
  const [name, setName] = useState('');
  const [scope, setScope] = useState('ReadOnly');
  const [made, setMade] = useState(null);
  const [err, setErr] = useState('');
  const create = act(setErr, () => request('api/keys', { method: 'POST', body: { name: name.trim(), scope } }),
    (k) => { setMade(k); setName(''); reload(); });
  const revoke = (k) => act(setErr, () => del(`api/keys/${encodeURIComponent(k.key_hash)}`), () => {
    if (made && made.key_hash === k.key_hash) setMade(null);
    reload();
  })();
  const cols = [
    ['Name', (k) => k.name], ['Scope', (k) => k.scope], ['Created', (k) => String(k.created_at || '').slice(0, 10)],
    ['Key hash', (k) => html`<code title=${k.key_hash}>${String(k.key_hash).slice(0, 12)}…</code>`],
    ['', (k) => (k.revoked ? html`<span class="muted">Revoked</span>`
      : html`<button class="ghost" aria-label=${`Revoke key ${k.name}`} onClick=${() => revoke(k)}>Revoke</button>`)],
  ];
  const top = html`<form class="inline" onSubmit=${create} aria-label="Create an API key">
      <label class="grow">Name<input required maxlength="128" value=${name} placeholder="grafana"
        onInput=${(e) => setName(e.currentTarget.value)} /></label>
      <label>Scope<select value=${scope} onChange=${(e) => setScope(e.currentTarget.value)}>
        <option value="ReadOnly">Read-only</option><option value="Admin">Admin</option></select></label>
      <button type="submit">Create key</button>
      <${FormError} text=${err} />
    </form>
    ${made && html`<${Secret} label=${`New key “${made.name}” (${made.scope})`} value=${made.key}
      note="Copy it now: it is shown only this once. Send it as Authorization: Bearer <key>." />`}`;
  return html`<${Panel} title="API keys" wide state=${list} top=${top} body=${(d) => html`<${Table} label="API keys"
    rows=${Array.isArray(d) ? d : []} cols=${cols} empty="No API keys yet." />`} />`;
}
