// The dashboard page: header, cards, chart, breakdowns and behaviour panels for the URL's state.
import { html, useState, useEffect, useRef } from './html.js';
import { request, useApi, Reload } from './api.js';
import { readUrl, urlSearch, statParams, PERIODS } from './url.js';
import { apiFilters } from './filters.js';
import { FilterBar } from './filterbar.js';
import { GROUPS } from './labels.js';
import { Guard } from './widgets.js';
import { SetupBanner } from './auth.js';
import { SitePicker, PeriodPicker } from './header.js';
import { Cards } from './cards.js';
import { Chart } from './chart.js';
import { Breakdown } from './breakdown.js';
import { Sessions } from './sessions.js';
import { Funnel } from './funnel.js';
import { Sequences } from './sequences.js';
import { Retention } from './retention.js';
import { Flow } from './flow.js';
import { Goals } from './goals.js';
import { Properties } from './props.js';
import { IntervalPicker, intervalOf } from './interval.js';
import { CompareToggle, comparisonOf } from './compare.js';
import { CurrentVisitors, RealtimeView, useRealtime } from './realtime.js';
import { useShortcuts } from './keys.js';
import { useInfo, isAdmin, geoHint } from './info.js';
import { SettingsView } from './settings.js';
import { FirstRun, useNoEventsYet } from './onboarding.js';
import { SharedBadge } from './share.js';
import { stateFor, viewPath, viewParams } from './boot.js';

export function Dashboard({ auth, recheck }) {
  const shared = auth.authenticated ? null : auth.shared_link; // a shared link: its site, read-only
  const [st, setSt] = useState(() => stateFor(auth));
  const [tick, setTick] = useState(0);
  const [openCustom, setOpenCustom] = useState(0);
  const replace = useRef(true);
  const sites = useApi('api/sites');

  useEffect(() => {
    const onPop = () => { replace.current = true; setSt(readUrl()); };
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  useEffect(() => {
    const next = urlSearch(st);
    if (next !== window.location.search) {
      if (replace.current) window.history.replaceState(null, '', next);
      else window.history.pushState(null, '', next);
    }
    replace.current = false;
  }, [st]);
  useEffect(() => {
    const list = sites.data && Array.isArray(sites.data.sites) ? sites.data.sites : [];
    if (!st.site && list.length) { replace.current = true; setSt((s) => ({ ...s, site: String(list[0]) })); }
  }, [sites.data]);

  const update = (patch) => setSt((s) => ({ ...s, ...patch }));
  const addFilter = (dim, value) => setSt((s) => ({
    ...s, filters: [...s.filters.filter((f) => f.dim !== dim), { dim, op: '==', values: [value] }],
  }));
  const logout = async () => {
    try { await request('api/auth/logout', { method: 'POST' }); } catch { /* status decides */ }
    recheck();
  };
  const period = (p) => update({ period: p, from: '', to: '' });
  useShortcuts({
    ...Object.fromEntries(PERIODS.filter(([p]) => p !== 'custom').map(([p, , key]) => [key, () => period(p)])),
    c: () => setOpenCustom((n) => n + 1),
    Escape: () => { if (st.filters.length || st.segment) update({ filters: [], segment: '' }); },
  });
  const params = statParams(st);
  const live = st.period === 'realtime';
  // The first screen in one request (boot.js asked the first one before this rendered); the page's
  // first view (and any view of the same parameters) also answers the Goals and Properties panels,
  // which would otherwise wait for it.
  const same = JSON.stringify(viewParams(st, false));
  const [firstView] = useState(same);
  const first = same === firstView;
  // (This is outside the Reload provider below: the reload button's tick is passed on by hand.)
  const view = useApi(viewPath(st), viewParams(st, first), { again: tick });
  const early = first && view.data ? view.data : {};
  const realtime = useRealtime(st.site, live);
  // The time zone the stats are counted in, as the last view answer said (kept for the realtime view).
  const [tz, setTz] = useState(null);
  useEffect(() => {
    if (view.data && view.data.range && view.data.range.timezone) setTz(view.data.range.timezone);
  }, [view.data]);
  const info = useInfo(st.site);
  const admin = !shared && isAdmin(info);
  const settings = admin && st.view === 'settings';
  const [arrived, setArrived] = useState('');
  const firstRun = useNoEventsYet(st.site, view) && arrived !== st.site && !live && !settings && !shared;
  const noSites = sites.data && Array.isArray(sites.data.sites) && !sites.data.sites.length;

  return html`<${Reload.Provider} value=${tick}>
    <header class="top">
      <div class="brand"><img src="favicon.svg" alt="" width="22" height="22" /><span>mallard</span></div>
      ${shared ? html`<${SharedBadge} link=${shared} />`
        : html`<${SitePicker} sites=${sites} site=${st.site} onPick=${(site) => update({ site })} />`}
      <${PeriodPicker} st=${st} update=${update} openCustom=${openCustom} maxDays=${info.data && info.data.max_range_days} />
      <${CurrentVisitors} live=${realtime} onOpen=${() => period('realtime')} />
      <span class="spacer"></span>
      <button class="ghost" title="Reload every panel" aria-label="Reload" onClick=${() => setTick((t) => t + 1)}>↻</button>
      ${admin && html`<button class="ghost" aria-pressed=${settings ? 'true' : 'false'}
        onClick=${() => update({ view: settings ? '' : 'settings' })}>Settings</button>`}
      ${!auth.setup_required && !shared && html`<button class="ghost" onClick=${logout}>Sign out</button>`}
      ${st.site && !live && !settings && html`<${FilterBar} st=${st} update=${update} range=${view.data && view.data.range}
        admin=${admin} />`}
    </header>
    ${auth.setup_required && html`<${SetupBanner} auth=${auth} onDone=${recheck} />`}
    <main>
      ${settings ? html`<${SettingsView} site=${st.site} onClose=${() => update({ view: '' })}
          onSite=${(site) => update({ site })} />`
        : firstRun ? html`<${FirstRun} site=${st.site} onEvent=${() => { setArrived(st.site); setTick((t) => t + 1); }} />`
        : !st.site ? html`<p class="notice">${noSites
        ? 'No site has sent events yet. Add the tracker to a page, or type a site id above.'
        : 'Choose a site above.'}</p>` : live ? html`<${Guard}><${RealtimeView} live=${realtime} tz=${tz} /><//>` : html`
        <${CompareToggle} st=${st} update=${update} />
        <${Guard}><${Cards} view=${view} metric=${st.metric} setMetric=${(metric) => update({ metric })} /><//>
        <${Guard}><${Chart} params=${params} view=${view} metric=${st.metric} site=${st.site}
          filters=${apiFilters(st)} interval=${intervalOf(st)} mode=${comparisonOf(st)}
          actions=${html`<${IntervalPicker} st=${st} update=${update} />`} /><//>
        <div class="grid">
          ${GROUPS.map((g) => html`<${Guard} key=${g.title}><${Breakdown} group=${g} params=${params} view=${view} addFilter=${addFilter} hint=${geoHint(info)} /><//>`)}
          <${Guard}><${Goals} range=${view.data && view.data.range} site=${st.site} filters=${apiFilters(st)} ready=${!view.loading}
            early=${early.goals} /><//>
          <${Guard}><${Properties} params=${params} ready=${!view.loading} addFilter=${addFilter} early=${early.properties} /><//>
        </div>
        <h2 class="section">Behaviour</h2>
        <div class="grid">
          <${Guard}><${Sessions} view=${view} /><//>
          <${Guard}><${Flow} params=${params} ready=${!view.loading} /><//>
          <${Guard}><${Funnel} params=${params} ready=${!view.loading} steps=${st.steps} win=${st.window} update=${update}
            admin=${admin} /><//>
          <${Guard}><${Sequences} params=${params} ready=${!view.loading} steps=${st.steps} /><//>
          <${Guard}><${Retention} params=${params} ready=${!view.loading} /><//>
        </div>`}
    </main>
    <footer>mallard · cookieless analytics${tz ? html` · times are in <span class="tz">${tz}</span>` : ''}</footer>
  <//>`;
}
