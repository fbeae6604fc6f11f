// One visitor (password only): its properties and history, and erasing it.
import { ApiError, get, request, segment } from './api.js';
import { errorBox, formatTime, h } from './dom.js';

export async function load(id, query) {
  const answer = await get(`/visitor/${segment(id)}`, { after: query.get('after') });
  return { id, query: query.toString(), ...answer };
}

export function title(data) {
  return `Visitor ${data.id}`;
}

async function erase(event, id) {
  if (!confirm(`Erase visitor ${id}? Its history goes, and every report becomes what it would be had it never existed.`)) {
    return;
  }
  const button = event.target;
  button.disabled = true;
  try {
    await request('DELETE', `/visitor/${segment(id)}`);
    location.hash = '#/';
  } catch (error) {
    button.disabled = false;
    button.after(errorBox(error instanceof ApiError ? error.message : String(error)));
  }
}

export function render(data) {
  const properties = Object.entries(data.properties).sort(([a], [b]) => a.localeCompare(b));
  return h(
    'div',
    { class: 'view visitor' },
    h('div', { class: 'section-head' }, h('h1', { tabindex: '-1' }, `Visitor ${data.id}`), h('button', { type: 'button', class: 'danger write', onclick: (event) => erase(event, data.id) }, 'Erase visitor')),
    h('p', { class: 'lead' }, `First seen ${formatTime(data.first_seen)}, last seen ${formatTime(data.last_seen)}.`),
    h('section', {}, h('h2', {}, 'Properties'), properties.length ? h('table', {}, h('tbody', {}, properties.map(([name, values]) => h('tr', {}, h('th', { scope: 'row' }, name), h('td', {}, values.map((v) => JSON.stringify(v)).join(', ')))))) : h('p', { class: 'empty' }, 'None.')),
    h(
      'section',
      {},
      h('h2', {}, 'History'),
      h('table', {}, h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Time'), h('th', { scope: 'col' }, 'Event'))), h('tbody', {}, data.events.map(([time, name]) => h('tr', {}, h('td', {}, formatTime(time)), h('td', {}, h('a', { href: `#/event/${segment(name)}` }, name)))))),
      data.next ? h('a', { class: 'button', href: `#/visitor/${segment(data.id)}?after=${encodeURIComponent(data.next)}` }, 'Later events') : null,
    ),
  );
}
