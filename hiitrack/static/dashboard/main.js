// The dashboard's router and live refresh.  The address after `#` names the
// view (`#/`, `#/event/NAME`, `#/funnel/NAME`, `#/funnel/NAME/edit`,
// `#/new-funnel`, `#/visitor/ID`); a view loads its data from the JSON API
// and renders it, and while the page is visible the live views reload every
// few seconds and `morph` the page in place.
import { readOnly } from './api.js';
import { mountCharts } from './charts.js';
import { errorBox, h, morph } from './dom.js';
import * as event from './event.js';
import * as funnel from './funnel.js';
import * as funnelForm from './funnel-form.js';
import * as overview from './overview.js';
import * as visitor from './visitor.js';

const REFRESH_MS = 5000;

const main = document.getElementById('main');
const status = document.getElementById('status');
const crumbs = document.getElementById('crumbs');

function route() {
  const [path, search] = location.hash.replace(/^#/, '').split('?');
  const query = new URLSearchParams(search || '');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const [kind, name, action] = parts;
  if (kind === 'event' && name) {
    return { view: event, live: true, load: () => event.load(name, query) };
  }
  if (kind === 'funnel' && name && action === 'edit') {
    return { view: funnelForm, write: true, load: () => funnelForm.load(name) };
  }
  if (kind === 'funnel' && name) {
    return { view: funnel, live: true, load: () => funnel.load(name) };
  }
  if (kind === 'new-funnel') {
    return { view: funnelForm, write: true, load: () => funnelForm.load(null) };
  }
  if (kind === 'visitor' && name) {
    return { view: visitor, write: true, load: () => visitor.load(name, query) };
  }
  return { view: overview, live: true, load: () => overview.load() };
}

let current = null;
let generation = 0;

function describe(error) {
  if (error.status === 401) {
    return `${error.message}. Reload the page to sign in again${readOnly ? ' (with the password, for this part)' : ''}.`;
  }
  return error.message || String(error);
}

function showUpdated() {
  status.replaceChildren(`Updated ${new Date().toLocaleTimeString()}`);
}

async function navigate() {
  const mine = ++generation;
  const next = route();
  current = { ...next, data: null };
  crumbs.replaceChildren();
  if (next.write && readOnly) {
    main.replaceChildren(errorBox('This part needs the password: the access key only reads the reports.'));
    return;
  }
  let content;
  try {
    const data = await next.load();
    if (mine !== generation) {
      return;
    }
    current.data = data;
    content = next.view.render(data);
    document.title = `${next.view.title(data)} · HiiTrack`;
    if (next.view !== overview) {
      crumbs.replaceChildren(h('a', { href: '#/' }, 'Overview'), ' › ', h('span', { 'aria-current': 'page' }, next.view.title(data)));
    }
    showUpdated();
  } catch (error) {
    if (mine !== generation) {
      return;
    }
    content = errorBox(describe(error));
  }
  main.replaceChildren(content);
  mountCharts(main);
  (main.querySelector('h1') || main).focus({ preventScroll: true });
}

// Render the current data again (a panel opened by the reader changed it).
function rerender() {
  if (current && current.data && main.firstElementChild) {
    morph(main.firstElementChild, current.view.render(current.data));
    mountCharts(main);
  }
}

let refreshing = false;

async function refresh() {
  if (!current || !current.live || !current.data || refreshing || document.visibilityState !== 'visible') {
    return;
  }
  refreshing = true;
  const mine = generation;
  try {
    const data = await current.load();
    if (mine === generation) {
      current.data = data;
      rerender();
      showUpdated();
    }
  } catch (error) {
    if (mine === generation) {
      status.replaceChildren(h('span', { class: 'error', role: 'alert' }, `Could not refresh: ${describe(error)}`));
    }
  } finally {
    refreshing = false;
  }
}

// The skip link moves focus only: the address after `#` belongs to the views.
document.querySelector('.skip').addEventListener('click', (click) => {
  click.preventDefault();
  main.focus();
});
window.addEventListener('hashchange', navigate);
document.addEventListener('hiitrack:rerender', rerender);
document.addEventListener('visibilitychange', refresh);
matchMedia('(prefers-color-scheme: dark)').addEventListener('change', navigate);
setInterval(refresh, REFRESH_MS);
navigate();
