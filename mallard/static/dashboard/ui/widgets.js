// Small shared pieces: an error boundary, a bar, a panel frame, a form error.
import { html, Component } from './html.js';
import { UNAVAILABLE } from './api.js';

// Keeps one broken panel (an unexpected answer shape, say) from blanking the whole page.
export class Guard extends Component {
  componentDidCatch(error) { this.setState({ error }); }
  render() {
    if (this.state.error) {
      return html`<section class="panel"><p class="error" role="alert">This panel failed to render: ${String(this.state.error.message || this.state.error)}</p></section>`;
    }
    return this.props.children;
  }
}

// width through the CSSOM (Preact sets el.style.width), which the CSP allows; no style attribute.
export const Bar = ({ frac }) => html`<span class="bar" style=${{ width: `${(Math.max(0, Math.min(1, frac || 0)) * 100).toFixed(1)}%` }}></span>`;

// `tabpanel` ({ id, labelledby }): the panel's content is the tab panel of tabs in `actions`.
export function Panel({ title, state, quiet, actions, top, body, wide, boxRef, tabpanel }) {
  let content;
  if (state.error) {
    content = quiet && UNAVAILABLE.has(state.error.status)
      ? html`<p class="muted">Not available yet.</p>`
      : html`<p class="error" role="alert">${state.error.message}</p>`;
  } else if (state.data == null) {
    content = html`<p class="muted">${state.loading ? 'Loading…' : 'No data.'}</p>`;
  } else {
    content = body(state.data);
  }
  const cls = `panel${wide ? ' wide' : ''}${state.loading ? ' is-loading' : ''}`;
  return html`<section class=${cls} ref=${boxRef} aria-busy=${state.loading ? 'true' : 'false'}>
    <header class="panel-head"><h2>${title}</h2>${actions}</header>
    ${tabpanel ? html`<div role="tabpanel" id=${tabpanel.id} aria-labelledby=${tabpanel.labelledby}>${top}${content}</div>`
      : html`${top}${content}`}
  </section>`;
}

export function FormError({ text }) {
  return text ? html`<p class="error" role="alert">${text}</p>` : null;
}
