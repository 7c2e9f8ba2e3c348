// Login, first password setup, and the banner shown while no password exists.
import { html, useState } from './html.js';
import { request, retrySeconds } from './api.js';
import { FormError } from './widgets.js';

export function Login({ onDone }) {
  const [pw, setPw] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setErr('');
    try {
      await request('api/auth/login', { method: 'POST', body: { password: pw } });
      setPw('');
      setBusy(false);
      onDone();
    } catch (x) {
      setBusy(false);
      if (x.status === 429) setErr(`Too many attempts, retry in ${retrySeconds(x)} s.`);
      else if (x.status === 401) setErr('Wrong password.');
      else setErr(x.message);
    }
  };
  return html`<main class="center"><form class="card auth" onSubmit=${submit}>
    <h1><img src="favicon.svg" alt="" width="28" height="28" /> mallard</h1>
    <label for="pw">Admin password</label>
    <input id="pw" type="password" autocomplete="current-password" required value=${pw}
      onInput=${(e) => setPw(e.currentTarget.value)} />
    <button type="submit" disabled=${busy}>${busy ? 'Signing in…' : 'Sign in'}</button>
    <${FormError} text=${err} />
  </form></main>`;
}

export function SetupForm({ onDone }) {
  const [pw, setPw] = useState('');
  const [pw2, setPw2] = useState('');
  const [err, setErr] = useState('');
  const [busy, setBusy] = useState(false);
  const submit = async (e) => {
    e.preventDefault();
    if (pw !== pw2) { setErr('The two passwords differ.'); return; }
    setBusy(true);
    setErr('');
    try {
      await request('api/auth/setup', { method: 'POST', body: { password: pw } });
      setBusy(false);
      onDone();
    } catch (x) {
      setBusy(false);
      if (x.status === 429) setErr(`Too many attempts, retry in ${retrySeconds(x)} s.`);
      else if (x.status === 409) onDone();
      else setErr(x.message);
    }
  };
  return html`<form class="setup" onSubmit=${submit}>
    <input type="password" autocomplete="new-password" required placeholder="New password (12+ characters)"
      aria-label="New admin password" value=${pw} onInput=${(e) => setPw(e.currentTarget.value)} />
    <input type="password" autocomplete="new-password" required placeholder="Repeat password"
      aria-label="Repeat the password" value=${pw2} onInput=${(e) => setPw2(e.currentTarget.value)} />
    <button type="submit" disabled=${busy}>${busy ? 'Saving…' : 'Set password'}</button>
    <${FormError} text=${err} />
  </form>`;
}

export function SetupBanner({ auth, onDone }) {
  return html`<div class="banner" role="status">
    <p><strong>No admin password set — set one to protect this dashboard.</strong>
    ${auth.loopback_only ? ' Until then, stats are readable only from this machine (loopback).' : ''}</p>
    <${SetupForm} onDone=${onDone} />
  </div>`;
}
