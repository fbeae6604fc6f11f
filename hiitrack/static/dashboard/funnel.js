// A saved funnel: its steps as bars with the drop-off between them, and,
// when the server keeps the exact report (`conversion`), time to convert,
// conversion by entry day, the split by value, who dropped off, and the
// progress of a backfill.
import { ApiError, bucket, eventName, funnel, get, readOnly, request, segment } from './api.js';
import { DAY, timeChart } from './charts.js';
import { barTable, errorBox, formatCount, formatDuration, formatShare, formatTime, h, numbersTable } from './dom.js';

const ENTRY_DAYS = 30;
const DROPPED_PAGE = 20;
const MAX_LIST = 1000; // the API's largest page

// Who-dropped-off lists the reader opened, by funnel and step: the live
// page is re-rendered from data, and each load reads the open lists again.
const droppedLists = new Map();
const droppedKey = (name, step) => `${name}\u0000${step}`;

const droppedPage = (name, step, limit, after) => get(`/funnel/${segment(name)}/visitors`, { step, status: 'dropped', limit, after });

// The funnel's open lists read again as far as the reader went, a page
// further when the list was whole (newcomers show, more wait for "More").
async function reloadDropped(name, steps) {
  const reloads = [];
  for (let step = 2; step <= steps; step++) {
    const key = droppedKey(name, step);
    const list = droppedLists.get(key);
    if (list) {
      const limit = Math.min(MAX_LIST, list.visitors.length + (list.next ? 0 : DROPPED_PAGE));
      reloads.push(
        droppedPage(name, step, Math.max(DROPPED_PAGE, limit)).then(
          (answer) => droppedLists.set(key, { visitors: answer.visitors, next: answer.next }),
          (error) => droppedLists.set(key, { ...list, error: error.message }),
        ),
      );
    }
  }
  await Promise.all(reloads);
}

export async function load(name) {
  const start = Math.floor(Date.now() / 1000) - (ENTRY_DAYS - 1) * DAY;
  const [overview, report] = await Promise.all([bucket(), funnel(name, { start })]);
  await reloadDropped(name, report.stepIds.length);
  return { name, overview, ...report };
}

export function title(data) {
  return data.name;
}

const stepLabel = (overview, ids) => ids.map((id) => eventName(overview, id)).join(' or ');

function definition({ overview, report, exact }) {
  const parts = [];
  if (report.property) {
    parts.push(`split by ${report.property.name}`);
  }
  if (exact) {
    parts.push(`order ${exact.order}`, `window ${formatDuration(exact.window)}`);
    if (exact.exclude.length) {
      parts.push(`excluding ${exact.exclude.map((id) => eventName(overview, id)).join(', ')}`);
    }
  } else {
    parts.push('pairwise counts: each step counts the visitors who did it after the step before');
  }
  return h('p', { class: 'definition' }, parts.join(' · '));
}

function backfill({ exact }) {
  if (!exact || !exact.backfill || exact.backfill.state !== 'running') {
    return null;
  }
  return h(
    'div',
    { class: 'backfill', role: 'status' },
    h('progress', { 'aria-label': 'Backfill' }),
    ` Computing this funnel from the visitors’ histories: ${formatCount(exact.backfill.visitors)} visitors so far. The numbers are exact once it is done.`,
  );
}

function dropped(name, step) {
  const key = droppedKey(name, step);
  const list = droppedLists.get(key);
  const more = async (after) => {
    const current = droppedLists.get(key) || { visitors: [] };
    try {
      const answer = await droppedPage(name, step, DROPPED_PAGE, after);
      droppedLists.set(key, { visitors: [...current.visitors, ...answer.visitors], next: answer.next });
    } catch (error) {
      droppedLists.set(key, { ...current, error: error.message });
    }
    document.dispatchEvent(new Event('hiitrack:rerender'));
  };
  return h(
    'details',
    { class: 'dropped', ontoggle: (event) => event.target.open && !droppedLists.has(key) && more() },
    h('summary', {}, 'Who dropped off'),
    list
      ? h(
          'div',
          {},
          list.error ? errorBox(list.error) : null,
          list.visitors.length ? h('ul', {}, list.visitors.map((id) => h('li', {}, h('a', { href: `#/visitor/${segment(id)}` }, id)))) : h('p', { class: 'empty' }, 'Nobody.'),
          list.next ? h('button', { type: 'button', onclick: () => more(droppedLists.get(key).next) }, 'More') : null,
        )
      : h('p', {}, 'Loading…'),
  );
}

function steps(data) {
  const { name, overview, stepIds, visitors, exact } = data;
  const first = visitors[0] || 0;
  const label = `${name}: visitors at each step`;
  const rows = stepIds.map((ids, index) => {
    const n = visitors[index] || 0;
    const previous = index ? visitors[index - 1] || 0 : n;
    return {
      data: { step: String(index + 1) },
      cells: [
        `${index + 1}. ${stepLabel(overview, ids)}`,
        h('span', { class: 'visitors' }, formatCount(n)),
        formatShare(n, first),
        index ? formatShare(n, previous) : '',
        index ? h('span', { class: 'drop' }, `${formatCount(Math.max(0, previous - n))} (${formatShare(Math.max(0, previous - n), previous)})`, exact && !readOnly ? dropped(name, index + 1) : null) : '',
      ],
      n,
    };
  });
  return h(
    'section',
    { 'aria-labelledby': 'steps-title' },
    h('h2', { id: 'steps-title' }, 'Steps'),
    barTable({ caption: label, headers: ['Step', 'Visitors', 'From first', 'From previous', 'Dropped off'], rows, barOf: (row) => row.n, key: 'steps' }),
  );
}

function timeToConvert({ overview, exact, stepIds }) {
  if (!exact || !exact.time_to_convert) {
    return null;
  }
  return h(
    'section',
    { 'aria-labelledby': 'ttc-title' },
    h('h2', { id: 'ttc-title' }, 'Time to convert'),
    exact.time_to_convert.map((histogram, index) => {
      if (!histogram) {
        return null;
      }
      const filled = histogram.buckets.map(([, n], i) => (n > 0 ? i : -1)).filter((i) => i >= 0);
      const shown = filled.length ? histogram.buckets.slice(filled[0], filled[filled.length - 1] + 1) : [];
      const heading = `To step ${index + 1} (${stepLabel(overview, stepIds[index])})`;
      return h(
        'div',
        { class: 'histogram', data: { step: String(index + 1) } },
        h('h3', {}, heading, ' · median ', h('span', { class: 'median' }, histogram.median === null ? '–' : `≤ ${formatDuration(histogram.median)}`)),
        shown.length
          ? barTable({ caption: `${heading}: visitors by time to convert`, headers: ['Within', 'Visitors'], rows: shown.map(([bound, n]) => ({ cells: [`≤ ${formatDuration(bound)}`, formatCount(n)], n })), barOf: (row) => row.n })
          : h('p', { class: 'empty' }, 'Nobody reached this step yet.'),
      );
    }),
  );
}

function entryDays({ exact }) {
  if (!exact || !exact.days) {
    return null;
  }
  const last = exact.visitors.length - 1;
  const xs = exact.days.map(([day]) => day);
  const rates = exact.days.map(([, counts]) => (counts[0] ? counts[last] / counts[0] : null));
  const label = `Conversion by entry day, last ${ENTRY_DAYS} days`;
  return h(
    'section',
    { 'aria-labelledby': 'days-title' },
    h('h2', { id: 'days-title' }, 'Conversion by entry day'),
    xs.length ? timeChart({ key: 'days', label, series: ['Conversion'], xs, ys: [rates], percent: true }) : h('p', { class: 'empty' }, 'Nobody entered in these days.'),
    numbersTable(label, ['Day', 'Entered', 'Converted', 'Conversion'], exact.days.map(([day, counts]) => [formatTime(day, false), formatCount(counts[0]), formatCount(counts[last]), formatShare(counts[last], counts[0])])),
  );
}

function byValue({ report, exact }) {
  if (!report.property) {
    return null;
  }
  const values = report.property.values;
  const counts = exact && exact.by_value ? exact.by_value : Object.fromEntries(Object.entries(report.unique_funnels).map(([id, pairs]) => [id, pairs.map(([, n]) => n)]));
  const rows = Object.entries(counts)
    .map(([id, series]) => ({ value: JSON.stringify(values[id]), first: series[0], last: series[series.length - 1] }))
    .sort((a, b) => b.first - a.first || a.value.localeCompare(b.value));
  return h(
    'section',
    { 'aria-labelledby': 'values-title' },
    h('h2', { id: 'values-title' }, `By ${report.property.name}`),
    rows.length
      ? barTable({
          key: 'values',
          caption: `Conversion by ${report.property.name}`,
          headers: [report.property.name, 'Entered', 'Converted', 'Conversion'],
          rows: rows.map((row) => ({ data: { value: row.value }, cells: [row.value, formatCount(row.first), formatCount(row.last), formatShare(row.last, row.first)], rate: row.first ? row.last / row.first : 0 })),
          barOf: (row) => row.rate,
        })
      : h('p', { class: 'empty' }, `No visitor with a value of ${report.property.name} yet.`),
  );
}

function writeControls({ name }) {
  if (readOnly) {
    return null;
  }
  const remove = async (event) => {
    if (!confirm(`Delete the funnel ${name}? Its definition and report are gone for good.`)) {
      return;
    }
    const button = event.target;
    button.disabled = true;
    try {
      await request('DELETE', `/funnel/${segment(name)}`);
      location.hash = '#/';
    } catch (error) {
      button.disabled = false;
      button.after(errorBox(error instanceof ApiError ? error.message : String(error)));
    }
  };
  return h(
    'div',
    { class: 'actions write' },
    h('a', { class: 'button', href: `#/funnel/${segment(name)}/edit` }, 'Edit'),
    h('button', { type: 'button', class: 'danger', onclick: remove }, 'Delete'),
  );
}

export function render(data) {
  return h(
    'div',
    { class: 'view funnel' },
    h('div', { class: 'section-head' }, h('h1', { tabindex: '-1' }, data.name), writeControls(data)),
    data.report.description ? h('p', { class: 'lead' }, data.report.description) : null,
    definition(data),
    backfill(data),
    steps(data),
    timeToConvert(data),
    entryDays(data),
    byValue(data),
  );
}
