// The breakdown panels, their tabs, and the label of each dimension.

export const GROUPS = [
  { title: 'Pages', head: 'Page', tabs: [['pages', 'Top pages'], ['entry-pages', 'Entry pages'], ['exit-pages', 'Exit pages']] },
  {
    title: 'Sources', head: 'Source',
    tabs: [['sources', 'Sources'], ['referrers', 'Referrers'], ['utm-sources', 'UTM source'],
      ['utm-mediums', 'UTM medium'], ['utm-campaigns', 'UTM campaign']],
  },
  { title: 'Locations', head: 'Location', tabs: [['countries', 'Countries'], ['regions', 'Regions'], ['cities', 'Cities']] },
  { title: 'Devices', head: 'Device', tabs: [['browsers', 'Browsers'], ['os', 'OS'], ['devices', 'Devices']] },
  { title: 'Events', head: 'Event', tabs: [['events', 'Events']] },
];
export const DIM_LABEL = {
  pages: 'Page', 'entry-pages': 'Entry page', 'exit-pages': 'Exit page', sources: 'Source',
  referrers: 'Referrer', 'utm-sources': 'UTM source', 'utm-mediums': 'UTM medium',
  'utm-campaigns': 'UTM campaign', countries: 'Country', regions: 'Region', cities: 'City',
  browsers: 'Browser', os: 'OS', devices: 'Device', events: 'Event',
};
