// Filters: their form in the page's URL, their labels, and the Stats API v2 filters they are sent as.
//
// In the URL: `filters=pages==/a|/b;sources!=Google;prop:plan~=pro` (`==` is, `!=` is not, `~=`
// contains; `|` between values means any of them; `%`, `|` and `;` inside a value are written %25,
// %7C and %3B) and `segment=<id>`. An event or goal filter means "the visitors who did X": it is sent
// as ["has_done", ...] (is not: ["has_not_done", ...]), so cards, chart and panels all count those
// visits (their pageviews too), as Plausible's dashboard does for a goal.

// [URL key, label, v2 dimension]; the keys are the breakdown slugs, so a row click makes the same filter.
export const DIMS = [
  ['pages', 'Page', 'event:page'], ['entry-pages', 'Entry page', 'visit:entry_page'],
  ['exit-pages', 'Exit page', 'visit:exit_page'], ['sources', 'Source', 'visit:source'],
  ['referrers', 'Referrer', 'visit:referrer'], ['channels', 'Channel', 'visit:channel'],
  ['utm-sources', 'UTM source', 'visit:utm_source'], ['utm-mediums', 'UTM medium', 'visit:utm_medium'],
  ['utm-campaigns', 'UTM campaign', 'visit:utm_campaign'], ['utm-contents', 'UTM content', 'visit:utm_content'],
  ['utm-terms', 'UTM term', 'visit:utm_term'], ['countries', 'Country', 'visit:country'],
  ['regions', 'Region', 'visit:region'], ['cities', 'City', 'visit:city'],
  ['browsers', 'Browser', 'visit:browser'], ['os', 'OS', 'visit:os'], ['devices', 'Device', 'visit:device'],
  ['screen-sizes', 'Screen size', 'visit:screen'], ['goals', 'Goal', 'event:goal'],
  ['events', 'Event', 'event:name'],
];
// Singular names of Mallard Metrics' filter strings (old bookmarks) → the keys above.
const ALIAS = {
  page: 'pages', 'entry-page': 'entry-pages', 'exit-page': 'exit-pages', source: 'sources',
  referrer: 'referrers', channel: 'channels', 'utm-source': 'utm-sources', 'utm-medium': 'utm-mediums',
  'utm-campaign': 'utm-campaigns', 'utm-content': 'utm-contents', 'utm-term': 'utm-terms',
  country: 'countries', region: 'regions', city: 'cities', browser: 'browsers', device: 'devices',
  'screen-size': 'screen-sizes', goal: 'goals', event: 'events',
};
const BY_KEY = Object.fromEntries(DIMS.map(([k, label, v2]) => [k, { label, v2 }]));
const DID = new Set(['event:name', 'event:goal']);
export const OPS = [['==', 'is'], ['!=', 'is not'], ['~=', 'contains']];
const V2_OP = { '==': 'is', '!=': 'is_not', '~=': 'contains' };
export const PROP = 'prop:';
const PROP_KEY = /^[A-Za-z0-9_. :$-]{1,128}$/;

export const isProp = (dim) => dim.startsWith(PROP) && PROP_KEY.test(dim.slice(PROP.length));
export const v2Dim = (dim) => (isProp(dim) ? `event:props:${dim.slice(PROP.length)}` : (BY_KEY[dim] || {}).v2);
export const dimLabel = (dim) => (isProp(dim) ? `Property ${dim.slice(PROP.length)}`
  : (BY_KEY[dim] || {}).label || dim);
export const opLabel = (op) => (OPS.find(([o]) => o === op) || OPS[0])[1];
// Whether a filter stands for "the visitors who did X" (an event or a goal).
export const isDid = (dim) => DID.has(v2Dim(dim));

const enc = (v) => v.replace(/%/g, '%25').replace(/\|/g, '%7C').replace(/;/g, '%3B');
const dec = (v) => v.replace(/%(25|7C|3B)/gi, (m) => decodeURIComponent(m));
const FILTER_RE = /^([a-z][a-z-]*|prop:[A-Za-z0-9_. :$-]{1,128}?)(==|!=|~=)(.+)$/;

export const parseFilters = (s) => s.split(';').map((x) => FILTER_RE.exec(x.trim())).filter(Boolean)
  .map((m) => ({ dim: ALIAS[m[1]] || m[1], op: m[2], values: m[3].split('|').map(dec).filter((v) => v) }))
  .filter((f) => f.values.length && v2Dim(f.dim));
export const filterString = (fs) => fs.map((f) => f.dim + f.op + f.values.map(enc).join('|')).join(';');

// The filters of a page state (its filters and segment) as Stats API v2 filters.
export function apiFilters(st) {
  const out = (st.filters || []).map((f) => {
    const cond = [V2_OP[f.op] || 'is', v2Dim(f.dim), f.values];
    if (!isDid(f.dim)) return cond;
    return f.op === '!=' ? ['has_not_done', ['is', cond[1], f.values]] : ['has_done', cond];
  });
  if (st.segment) out.push(['is', 'segment', [Number(st.segment)]]);
  return out;
}
// The `filters` query parameter of the stats routes (v2 filters as JSON), or undefined for none.
export const filterParam = (st) => {
  const fs = apiFilters(st);
  return fs.length ? JSON.stringify(fs) : undefined;
};
// `param` (a `filters` query parameter: v2 filters as JSON, or undefined) with one more v2 condition.
export const withFilter = (param, cond) => JSON.stringify([...(param ? JSON.parse(param) : []), cond]);
