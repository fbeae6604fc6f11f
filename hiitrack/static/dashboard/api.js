// The bucket's JSON routes, called exactly as curl would, with the Basic
// credentials the browser asked for when it opened the page.

const base = location.pathname.replace(/\/dashboard$/, '');

export const readOnly = document.body.dataset.access !== 'write';

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

export const segment = (name) => encodeURIComponent(name);

export async function request(method, path, { params = {}, body } = {}) {
  const url = new URL(base + path, location.origin);
  for (const [key, value] of Object.entries(params)) {
    for (const item of [].concat(value)) {
      if (item !== undefined && item !== null && item !== '') {
        url.searchParams.append(key, item);
      }
    }
  }
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  const response = await fetch(url, init);
  let answer;
  try {
    answer = await response.json();
  } catch {
    answer = {};
  }
  if (!response.ok) {
    throw new ApiError(response.status, answer.error || `the server answered ${response.status}`);
  }
  return answer;
}

export const get = (path, params) => request('GET', path, { params });

// The bucket overview, with lookups both ways: the screen shows names, the
// reports speak ids.
export async function bucket() {
  const answer = await get('');
  const eventIds = new Map(Object.entries(answer.events).map(([name, record]) => [name, record.id]));
  return {
    name: answer.bucket_name,
    description: answer.description,
    eventIds,
    eventNames: new Map([...eventIds].map(([name, id]) => [id, name])),
    properties: new Map(Object.entries(answer.properties)),
    funnels: answer.funnels,
  };
}

export const eventName = (overview, id) => overview.eventNames.get(id) ?? `(unknown event ${id})`;

// A saved funnel with its overall step counts: the exact `conversion` when
// the server keeps one, else the pairwise `unique_funnel` (asked for
// without the property when the funnel is split, as the split report has
// only per-value funnels).
export async function funnel(name, params = {}) {
  const report = await get(`/funnel/${segment(name)}`, params);
  let overall = report.unique_funnel;
  if (!overall) {
    overall = (await get('/funnel', { event_id: report.event_ids })).unique_funnel;
  }
  const exact = report.conversion || null;
  return {
    name,
    report,
    exact,
    stepIds: exact ? exact.steps : report.event_ids.map((id) => [id]),
    visitors: exact ? exact.visitors : overall.map(([, n]) => n),
  };
}
