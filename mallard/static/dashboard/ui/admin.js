// Pieces shared by the Settings sections: a list asked again after each change, a secret shown once
// with a copy button, and an action that reports its error.
import { html, useState, useRef } from './html.js';
import { useApi, request } from './api.js';

// The answer to GET `path`, and `reload()` to ask again after a change.
export function useList(path, params) {
  const [again, setAgain] = useState(0);
  const s = useApi(path, params, { again });
  return [s, () => setAgain((n) => n + 1)];
}

// Runs `call` (a request), then `done`; a failure's message goes to `setErr`.
export const act = (setErr, call, done) => async (e) => {
  if (e && e.preventDefault) e.preventDefault();
  setErr('');
  try {
    const answer = await call();
    if (done) done(answer);
  } catch (x) {
    setErr(x.message);
  }
};

export const del = (path, params) => request(path, { method: 'DELETE', params });

// A secret shown once, in a read-only field, with a button copying it.
export function Secret({ label, value, note }) {
  const box = useRef(null);
  const [copied, setCopied] = useState('');
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(value);
      setCopied('Copied.');
    } catch {
      box.current.select();
      setCopied('Selected: press Ctrl+C (⌘C) to copy.');
    }
  };
  return html`<div class="secret" role="status">
    <label>${label}<input ref=${box} class="secret-value" readonly value=${value}
      onFocus=${(e) => e.currentTarget.select()} /></label>
    <button type="button" onClick=${copy}>Copy</button>
    <p class="small">${note} ${copied && html`<span class="muted">${copied}</span>`}</p>
  </div>`;
}

// A table of `rows` with `cols` ([head, row => cell]), or `empty` when there are none.
export function Table({ rows, cols, empty, label }) {
  if (!rows.length) return html`<p class="muted">${empty}</p>`;
  return html`<div class="scroll"><table class="admin" aria-label=${label}>
    <thead><tr>${cols.map(([h]) => html`<th>${h}</th>`)}</tr></thead>
    <tbody>${rows.map((r, i) => html`<tr key=${r.id || r.key_hash || i}>${cols.map(([, cell]) => html`<td>${cell(r)}</td>`)}</tr>`)}</tbody>
  </table></div>`;
}
