// Building and updating the page: elements from data, and `morph`, which
// brings a live page up to date with a freshly rendered copy without
// replacing what did not change (no flicker, focus and open panels kept).

export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  setAll(element, attributes);
  element.append(...children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false));
  return element;
}

const SVG = 'http://www.w3.org/2000/svg';

export function svg(tag, attributes = {}, ...children) {
  const element = document.createElementNS(SVG, tag);
  setAll(element, attributes);
  element.append(...children);
  return element;
}

function setAll(element, attributes) {
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) {
      continue;
    }
    if (name.startsWith('on')) {
      element.addEventListener(name.slice(2), value);
    } else if (name === 'style') {
      // Through the CSSOM: the page's CSP forbids style attributes.
      Object.assign(element.style, value);
    } else if (name === 'data') {
      Object.assign(element.dataset, value);
    } else if (name in element && typeof value !== 'string') {
      element[name] = value;
    } else {
      element.setAttribute(name, value === true ? '' : value);
    }
  }
}

// Attributes the user changes by using the page, left as they are.
const USER_STATE = new Set(['open']);

export function morph(old, next) {
  if (
    old.nodeType !== next.nodeType ||
    old.nodeName !== next.nodeName ||
    (old.nodeType === Node.ELEMENT_NODE && old.getAttribute('data-key') !== next.getAttribute('data-key'))
  ) {
    old.replaceWith(next);
    return;
  }
  if (old.nodeType !== Node.ELEMENT_NODE) {
    if (old.nodeValue !== next.nodeValue) {
      old.nodeValue = next.nodeValue;
    }
    return;
  }
  for (const { name, value } of [...next.attributes]) {
    if (name !== 'style' && old.getAttribute(name) !== value) {
      old.setAttribute(name, value);
    }
  }
  for (const { name } of [...old.attributes]) {
    if (name !== 'style' && !USER_STATE.has(name) && !next.hasAttribute(name)) {
      old.removeAttribute(name);
    }
  }
  if (old.style.cssText !== next.style.cssText) {
    old.style.cssText = next.style.cssText;
  }
  if (old.chart) {
    old.chart.update(next.chartSpec);
    return;
  }
  const before = [...old.childNodes];
  const after = [...next.childNodes];
  after.forEach((child, index) => (index < before.length ? morph(before[index], child) : old.append(child)));
  before.slice(after.length).forEach((child) => child.remove());
}

const integer = new Intl.NumberFormat();
const percent = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

export const formatCount = (n) => integer.format(n);
export const formatShare = (part, whole) => (whole > 0 ? percent.format(part / whole) : '–');

export function formatTime(unix, withHour = true) {
  const iso = new Date(unix * 1000).toISOString();
  return withHour ? `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC` : iso.slice(0, 10);
}

export function formatDuration(seconds) {
  const units = [
    [86400, 'd'],
    [3600, 'h'],
    [60, 'min'],
  ];
  for (const [size, unit] of units) {
    if (seconds >= size && seconds % size === 0) {
      return `${seconds / size} ${unit}`;
    }
  }
  return `${seconds} s`;
}

// A table whose last column draws each row's share of the largest value:
// the bars and their numbers in one accessible element.
export function barTable({ caption, headers, rows, barOf, key }) {
  const largest = Math.max(1, ...rows.map(barOf));
  const table = h(
    'table',
    { class: 'bars', data: key ? { key } : undefined },
    caption ? h('caption', {}, caption) : null,
    h('thead', {}, h('tr', {}, headers.map((text, index) => h('th', { scope: 'col', class: index ? 'num' : null }, text)), h('th', { class: 'bar-cell' }, h('span', { class: 'visually-hidden' }, 'Bar')))),
    h(
      'tbody',
      {},
      rows.map((row) =>
        h(
          'tr',
          { data: row.data },
          row.cells.map((cell, index) => (index === 0 ? h('th', { scope: 'row' }, cell) : h('td', { class: 'num' }, cell))),
          h('td', { class: 'bar-cell', 'aria-hidden': 'true' }, h('span', { class: 'bar', style: { width: `${(100 * Math.max(0, barOf(row))) / largest}%` } })),
        ),
      ),
    ),
  );
  // A narrow screen scrolls a wide table, never the page.
  return h('div', { class: 'table-scroll' }, table);
}

export function numbersTable(caption, headers, rows) {
  return h(
    'details',
    { class: 'numbers' },
    h('summary', {}, 'Numbers as a table'),
    h(
      'table',
      {},
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', {}, h('tr', {}, headers.map((text, index) => h('th', { scope: 'col', class: index ? 'num' : null }, text)))),
      h('tbody', {}, rows.map((cells) => h('tr', {}, cells.map((cell, index) => h(index ? 'td' : 'th', index ? { class: 'num' } : { scope: 'row' }, cell))))),
    ),
  );
}

export function errorBox(message) {
  return h('p', { class: 'error', role: 'alert' }, message);
}
