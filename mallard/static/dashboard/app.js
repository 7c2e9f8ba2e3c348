// mallard dashboard: Preact + HTM, vendored as files under ./vendor/, no build step, no CDN. This file
// starts the app (login or dashboard); the views and panels are the small modules under ./ui/.
//
// Rules every module keeps so it works under any mount prefix and under the dashboard's CSP
// (script-src 'self'; style-src 'self'; connect-src 'self'; base-uri 'none'):
// * every URL is relative and resolved against document.baseURI (never a leading slash);
// * no inline scripts, no eval, no raw-HTML injection: every value from the API is rendered as text;
// * no style attributes in markup: bar widths and positions go through the CSSOM (Preact's
//   object `style` prop sets el.style.width = ...), everything else is a class in style.css;
// * page state (site, period, range, filters, chart metric) lives in the query string, not in storage.
import { html, render, useState, useEffect, useRef } from './ui/html.js';
import { request, setUnauthorized } from './ui/api.js';
import { Login, SetupForm } from './ui/auth.js';
import { Dashboard } from './ui/dashboard.js';
import { SECRET, SharedGone } from './ui/share.js';
import { firstStatus } from './ui/boot.js';

function App() {
  const [auth, setAuth] = useState(null);
  const [err, setErr] = useState(null);
  const checking = useRef(false);
  const check = () => {
    if (checking.current) return;
    checking.current = true;
    (firstStatus() || request('api/auth/status')).then(
      (a) => { checking.current = false; setErr(null); setAuth(a || {}); },
      (e) => { checking.current = false; setErr(e); },
    );
  };
  useEffect(() => {
    setUnauthorized(check);
    check();
  }, []);

  if (err && !auth) {
    return html`<main class="center"><div class="card auth">
      <p class="error" role="alert">Cannot load the dashboard: ${err.message}</p>
      <button onClick=${check}>Retry</button></div></main>`;
  }
  if (!auth) return html`<main class="center"><p class="muted">Loading…</p></main>`;
  if (SECRET && !auth.authenticated && !auth.shared_link) return html`<${SharedGone} />`;
  if (!auth.authenticated && auth.shared_link) return html`<${Dashboard} auth=${auth} recheck=${check} />`;
  if (!auth.authenticated && !auth.setup_required) return html`<${Login} onDone=${check} />`;
  if (!auth.authenticated) {
    return html`<main class="center"><div class="card auth">
      <h1><img src="favicon.svg" alt="" width="28" height="28" /> mallard</h1>
      <p><strong>No admin password set — set one to protect this dashboard.</strong></p>
      <p class="muted">${auth.loopback_only
        ? 'Until a password exists, stats are readable only from the server itself (loopback).'
        : 'Stats are not readable from here yet.'}</p>
      <${SetupForm} onDone=${check} />
    </div></main>`;
  }
  return html`<${Dashboard} auth=${auth} recheck=${check} />`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
