// The bucket overview: every event with its totals and last 30 days, the
// saved funnels with their overall conversion, the properties.
import { bucket, funnel, get, readOnly, segment } from './api.js';
import { DAY, filledSeries, sparkline } from './charts.js';
import { formatCount, formatShare, formatTime, h } from './dom.js';

const DAYS = 30;

export async function load() {
  const overview = await bucket();
  const finish = Math.floor(Date.now() / 1000);
  const start = finish - (DAYS - 1) * DAY;
  const events = await Promise.all(
    [...overview.eventIds.keys()].map(async (name) => {
      const [plain, series] = await Promise.all([
        get(`/event/${segment(name)}`),
        get(`/event/${segment(name)}`, { start, finish, interval: 'day' }),
      ]);
      return { name, total: plain.total, unique: plain.unique_total, days: filledSeries(series.total, start, finish, DAY) };
    }),
  );
  events.sort((a, b) => b.total - a.total || a.name.localeCompare(b.name));
  const funnels = await Promise.all(Object.keys(overview.funnels).sort().map((name) => funnel(name)));
  const properties = await Promise.all(
    [...overview.properties.values()].sort().map(async (name) => {
      const report = await get(`/property/${segment(name)}`);
      return { name, values: Object.keys(report.values).length };
    }),
  );
  return { overview, events, funnels, properties };
}

export function title(data) {
  return data.overview.name;
}

function eventRow(event) {
  const label = `${event.name}: events per day over the last ${DAYS} days`;
  return {
    data: { event: event.name },
    cells: [
      h('a', { href: `#/event/${segment(event.name)}` }, event.name),
      h('span', { class: 'total' }, formatCount(event.total)),
      h('span', { class: 'unique' }, formatCount(event.unique)),
      h(
        'details',
        { class: 'spark' },
        h('summary', { title: 'Show the numbers' }, sparkline(event.days.ys, label)),
        h(
          'table',
          { class: 'compact' },
          h('caption', { class: 'visually-hidden' }, label),
          h('tbody', {}, event.days.xs.map((t, i) => h('tr', {}, h('th', { scope: 'row' }, formatTime(t, false)), h('td', { class: 'num' }, formatCount(event.days.ys[i]))))),
        ),
      ),
    ],
  };
}

// A table whose first column names the row; `numeric` columns align right.
function table(headers, rows, className, numeric) {
  const cellClass = (index) => (numeric.includes(index) ? 'num' : null);
  return h(
    'table',
    { class: className },
    h('thead', {}, h('tr', {}, headers.map((text, i) => h('th', { scope: 'col', class: cellClass(i) }, text)))),
    h('tbody', {}, rows.map((row) => h('tr', { data: row.data }, row.cells.map((cell, i) => (i ? h('td', { class: cellClass(i) }, cell) : h('th', { scope: 'row' }, cell)))))),
  );
}

export function render({ overview, events, funnels, properties }) {
  return h(
    'div',
    { class: 'view overview' },
    h('h1', { tabindex: '-1' }, overview.name),
    overview.description ? h('p', { class: 'lead' }, overview.description) : null,
    readOnly ? h('p', { class: 'note' }, 'Read-only: you signed in with the bucket’s access key.') : null,
    h('section', { 'aria-labelledby': 'events-title' },
      h('h2', { id: 'events-title' }, 'Events'),
      events.length
        ? table(['Event', 'Total', 'Unique visitors', `Last ${DAYS} days`], events.map(eventRow), 'events', [1, 2])
        : h('p', { class: 'empty' }, 'No events yet. Send some with the tracker or the API.'),
    ),
    h('section', { 'aria-labelledby': 'funnels-title' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'funnels-title' }, 'Funnels'),
        readOnly ? null : h('a', { class: 'button write', href: '#/new-funnel' }, 'New funnel'),
      ),
      funnels.length
        ? table(
            ['Funnel', 'Steps', 'Entered', 'Converted', 'Conversion'],
            funnels.map((f) => {
              const first = f.visitors[0];
              const last = f.visitors[f.visitors.length - 1];
              return {
                data: { funnel: f.name },
                cells: [
                  h('a', { href: `#/funnel/${segment(f.name)}` }, f.name),
                  String(f.stepIds.length),
                  h('span', { class: 'entered' }, formatCount(first)),
                  h('span', { class: 'converted' }, formatCount(last)),
                  h('span', { class: 'conversion' }, formatShare(last, first)),
                ],
              };
            }),
            'funnels',
            [1, 2, 3, 4],
          )
        : h('p', { class: 'empty' }, 'No saved funnels.'),
    ),
    h('section', { 'aria-labelledby': 'properties-title' },
      h('h2', { id: 'properties-title' }, 'Properties'),
      properties.length
        ? table(['Property', 'Values'], properties.map((p) => ({ data: { property: p.name }, cells: [p.name, formatCount(p.values)] })), 'properties', [1])
        : h('p', { class: 'empty' }, 'No properties yet.'),
    ),
  );
}
