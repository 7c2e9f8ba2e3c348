// Shared links as the page shows them (the secret: secret.js).
import { html } from './html.js';

export { SECRET, shareHeaders, shareParams } from './secret.js';

// The page for a secret the server no longer knows (revoked, or never valid).
export function SharedGone() {
  const signIn = new URL('./', document.baseURI).pathname;
  return html`<main class="center"><div class="card auth" role="alert">
    <h1><img src="favicon.svg" alt="" width="28" height="28" /> mallard</h1>
    <p><strong>This shared link no longer works.</strong></p>
    <p class="muted">It was revoked by the site's owner, or it was never valid. Ask them for a new link.</p>
    <p><a href=${signIn}>Sign in</a> if you have an account.</p>
  </div></main>`;
}

// The header's badge in place of the site picker: one site, read-only.
export function SharedBadge({ link }) {
  return html`<span class="shared-site" title=${`Shared link “${link.name}”: read-only`}>
    <strong>${link.site_id}</strong> <span class="muted small">(shared, read-only)</span></span>`;
}
