// The breakdown panels, their tabs, and the label of each dimension.

export const GROUPS = [
  { title: 'Pages', head: 'Page', tabs: [['pages', 'Top pages'], ['entry-pages', 'Entry pages'], ['exit-pages', 'Exit pages']] },
  {
    title: 'Sources', head: 'Source',
    tabs: [['sources', 'Sources'], ['channels', 'Channels'], ['referrers', 'Referrers'],
      ['utm-sources', 'UTM source'], ['utm-mediums', 'UTM medium'], ['utm-campaigns', 'UTM campaign'],
      ['utm-contents', 'UTM content'], ['utm-terms', 'UTM term']],
  },
  { title: 'Locations', head: 'Location', tabs: [['countries', 'Countries'], ['regions', 'Regions'], ['cities', 'Cities']] },
  {
    title: 'Devices', head: 'Device',
    tabs: [['browsers', 'Browsers'], ['os', 'OS'], ['devices', 'Devices'], ['screen-sizes', 'Screen sizes']],
  },
  { title: 'Events', head: 'Event', tabs: [['events', 'Events']] },
];
// A tab whose rows drill down: [the breakdown of one row's versions, the filter naming the row].
export const DRILL = { browsers: ['browser-versions', 'visit:browser'], os: ['os-versions', 'visit:os'] };
export const DIM_LABEL = {
  pages: 'Page', 'entry-pages': 'Entry page', 'exit-pages': 'Exit page', sources: 'Source',
  referrers: 'Referrer', 'utm-sources': 'UTM source', 'utm-mediums': 'UTM medium',
  'utm-campaigns': 'UTM campaign', 'utm-contents': 'UTM content', 'utm-terms': 'UTM term',
  channels: 'Channel', countries: 'Country', regions: 'Region', cities: 'City',
  browsers: 'Browser', 'browser-versions': 'Browser version', os: 'OS', 'os-versions': 'OS version',
  devices: 'Device', 'screen-sizes': 'Screen width', events: 'Event',
};
