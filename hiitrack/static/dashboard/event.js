// An event: its series over a chosen range, its totals split by a
// property's values, and what its visitors did before it (paths).
import { bucket, eventName, get, segment } from './api.js';
import { DAY, HOUR, filledSeries, timeChart } from './charts.js';
import { barTable, formatCount, formatTime, h, numbersTable } from './dom.js';

const RANGES = { '24h': DAY, '7d': 7 * DAY, '30d': 30 * DAY };

// The range and interval a view asks for (from the address), as Unix times.
export function rangeOf(query) {
  const now = Math.floor(Date.now() / 1000);
  const range = query.get('range') in RANGES || query.get('range') === 'custom' ? query.get('range') : '7d';
  let start = now - (RANGES[range] || 0);
  let finish = now;
  if (range === 'custom') {
    start = Number(query.get('start')) || now - 7 * DAY;
    finish = Math.min(now, Number(query.get('finish')) || now);
  }
  const interval = query.get('interval') || (range === '24h' ? 'hour' : 'day');
  return { range, start, finish: Math.max(start, finish), interval };
}

export async function load(name, query) {
  const range = rangeOf(query);
  const split = query.get('split') || '';
  const path = `/event/${segment(name)}`;
  const [overview, plain, series, byValue] = await Promise.all([
    bucket(),
    get(path),
    get(path, { start: range.start, finish: range.finish, interval: range.interval }),
    split ? get(path, { property: split }) : null,
  ]);
  return { name, query: query.toString(), overview, plain, series, byValue, split, range };
}

export function title(data) {
  return data.name;
}

function link(name, changes, query) {
  const next = new URLSearchParams(query);
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) {
      next.delete(key);
    } else {
      next.set(key, value);
    }
  }
  return `#/event/${segment(name)}?${next}`;
}

function rangeControls({ name, query, range }) {
  const go = (changes) => (location.hash = link(name, changes, query));
  // The custom range is in UTC, as every time and day on the page is (a
  // field's value has no zone: read as local time, the range would move).
  const utcInput = (unix) => new Date(unix * 1000).toISOString().slice(0, 16);
  return h(
    'div',
    { class: 'controls' },
    h(
      'nav',
      { class: 'segmented', 'aria-label': 'Range' },
      Object.keys(RANGES).map((key) =>
        h('a', { href: link(name, { range: key, interval: null, start: null, finish: null }, query), 'aria-current': range.range === key ? 'page' : null }, `Last ${key}`),
      ),
    ),
    h(
      'label',
      {},
      'Interval ',
      h(
        'select',
        { name: 'interval', onchange: (event) => go({ interval: event.target.value }) },
        ['hour', 'day'].map((value) => h('option', { value, selected: range.interval === value }, value === 'hour' ? 'Hourly' : 'Daily')),
      ),
    ),
    h(
      'form',
      {
        class: 'custom-range',
        // A finish before the start is refused at the field (the API would answer 400).
        onsubmit: (event) => {
          event.preventDefault();
          const fields = event.target.elements;
          const unix = (field) => Math.floor(Date.parse(`${fields[field].value}Z`) / 1000);
          const [start, finish] = [unix('start'), unix('finish')];
          fields.finish.setCustomValidity(finish < start ? 'The end of the range comes before its start.' : '');
          if (event.target.reportValidity()) {
            go({ range: 'custom', start, finish });
          }
        },
        oninput: (event) => event.currentTarget.elements.finish.setCustomValidity(''),
      },
      h('label', {}, 'From ', h('input', { type: 'datetime-local', name: 'start', required: true, value: utcInput(range.start) })),
      h('label', {}, 'to ', h('input', { type: 'datetime-local', name: 'finish', required: true, value: utcInput(range.finish) }), ' UTC'),
      h('button', { type: 'submit', 'aria-current': range.range === 'custom' ? 'true' : null }, 'Show'),
    ),
  );
}

function seriesSection({ series, range }) {
  const step = range.interval === 'hour' ? HOUR : DAY;
  const total = filledSeries(series.total, range.start, range.finish, step);
  const unique = filledSeries(series.unique_total, range.start, range.finish, step);
  const label = `${range.interval === 'hour' ? 'Hourly' : 'Daily'} events and unique visitors, ${formatTime(range.start)} to ${formatTime(range.finish)}`;
  return h(
    'section',
    { 'aria-labelledby': 'series-title' },
    h('h2', { id: 'series-title' }, 'Over time'),
    timeChart({ key: `${range.interval}-${range.range}`, label, series: ['Events', 'Unique visitors'], xs: total.xs, ys: [total.ys, unique.ys] }),
    numbersTable(
      label,
      [range.interval === 'hour' ? 'Hour' : 'Day', 'Events', 'Unique visitors'],
      total.xs.map((t, i) => [formatTime(t, range.interval === 'hour'), formatCount(total.ys[i]), formatCount(unique.ys[i])]),
    ),
  );
}

function splitSection({ name, query, overview, byValue, split }) {
  const choose = (event) => (location.hash = link(name, { split: event.target.value || null }, query));
  const rows = byValue
    ? Object.entries(byValue.values)
        .map(([id, value]) => ({ value: JSON.stringify(value), total: byValue.totals[id] || 0, unique: byValue.unique_totals[id] || 0 }))
        .sort((a, b) => b.total - a.total || a.value.localeCompare(b.value))
    : [];
  return h(
    'section',
    { 'aria-labelledby': 'split-title' },
    h('h2', { id: 'split-title' }, 'Split by a property'),
    h(
      'label',
      {},
      'Property ',
      h(
        'select',
        { name: 'split', onchange: choose },
        h('option', { value: '' }, '(none)'),
        [...overview.properties.values()].sort().map((property) => h('option', { value: property, selected: property === split }, property)),
      ),
    ),
    byValue && rows.length === 0 ? h('p', { class: 'empty' }, `No visitor with a value of ${split} did this event.`) : null,
    rows.length
      ? barTable({
          key: `split-${split}`,
          caption: `${name} by ${split}`,
          headers: [split, 'Events', 'Unique visitors'],
          rows: rows.map((row) => ({ data: { value: row.value }, cells: [row.value, formatCount(row.total), formatCount(row.unique)], total: row.total })),
          barOf: (row) => row.total,
        })
      : null,
  );
}

function pathsSection({ name, overview, plain }) {
  const rows = Object.entries(plain.unique_path)
    .map(([id, unique]) => ({ name: eventName(overview, id), unique, total: plain.path[id] || 0 }))
    .filter((row) => row.unique > 0 || row.total > 0)
    .sort((a, b) => b.unique - a.unique || b.total - a.total || a.name.localeCompare(b.name));
  return h(
    'section',
    { 'aria-labelledby': 'paths-title' },
    h('h2', { id: 'paths-title' }, 'What came before it'),
    h('p', { class: 'hint' }, `Events its visitors had done before doing ${name}, ranked by visitors.`),
    rows.length
      ? barTable({
          caption: `Events before ${name}`,
          headers: ['Earlier event', 'Visitors', 'Times'],
          rows: rows.map((row) => ({ data: { before: row.name }, cells: [h('a', { href: `#/event/${segment(row.name)}` }, row.name), formatCount(row.unique), formatCount(row.total)], unique: row.unique })),
          barOf: (row) => row.unique,
        })
      : h('p', { class: 'empty' }, 'Nothing yet: this event was always a visitor’s first.'),
  );
}

export function render(data) {
  const { name, plain } = data;
  return h(
    'div',
    { class: 'view event' },
    h('h1', { tabindex: '-1' }, name),
    h(
      'dl',
      { class: 'figures' },
      h('div', {}, h('dt', {}, 'Events'), h('dd', { class: 'total' }, formatCount(plain.total))),
      h('div', {}, h('dt', {}, 'Unique visitors'), h('dd', { class: 'unique' }, formatCount(plain.unique_total))),
    ),
    rangeControls(data),
    seriesSection(data),
    splitSection(data),
    pathsSection(data),
  );
}
