// Drives Debian's Chromium through the dashboard for tests/test_dashboard_browser.py.
//
// Usage: node dashboard.js '{"phase": "views"|"erase", "url": DASHBOARD_URL,
//   "user": ..., "password": ..., "accessKey": ..., "event": NAME,
//   "property": NAME, "funnel": NAME, "newFunnel": {...}, "editFunnel": NAME, "feedPage": URL,
//   "liveEvent": NAME, "firstStep": NAME, "liveDropper": VISITOR_ID, "erase": VISITOR_ID,
//   "step": N, "releaseBackfill": URL, "customRange": {"start": "YYYY-MM-DDTHH:MM", "finish": ..., "early": ...},
//   "longHistory": {"url": DASHBOARD_URL, "visitor": VISITOR_ID}, "screenshots": DIR, "scratch": DIR}'
// "views" reads every view as the owner (light, dark, phone width) and as an
// access-key reader (the owner's clock in India: the page must not depend
// on it), types `customRange` into the event's form (UTC; first with the
// finish `early`, before the start) and reads its series daily and hourly, makes a funnel with the form (whose backfill the test
// holds until the page has shown it running, then lets go with a POST to
// `releaseBackfill`), saves `editFunnel` unchanged from its form and
// deletes it, and sends a live hit through the tracker page `feedPage`; "erase" opens the who-dropped-off list of `step`, watches a
// visitor who drops off meanwhile (tracked as `liveDropper`, with only
// `firstStep`) join it, opens the visitor `erase` from it, erases it after
// the confirmation, and reads the overview and the funnel again; then it
// opens the visitor of `longHistory` and pages through its history with
// "Later events", from the keyboard, to the last page.  Prints
// one JSON object on stdout: what each view showed, every request the pages
// made, the console's errors, and the bytes of the first load.  The test
// compares the numbers with the API's.
'use strict';

const { launch, run } = require('./chromium');

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

const rows = (page, selector) =>
  page.$$eval(selector, (trs) =>
    trs.map((tr) => ({
      data: { ...tr.dataset },
      cells: [...tr.querySelectorAll(':scope > th, :scope > td')].map((cell) => cell.textContent.trim()),
      bar: tr.querySelector(':scope > td > .bar')?.style.width ?? null,
    })),
  );

// What a user of Debian's Chromium (en-US) types into a date and time field
// for `iso` (YYYY-MM-DDTHH:MM): the date's digits, Tab to the time, its digits and AM or PM.
function typed(iso) {
  const [, year, month, day, hour, minute] = iso.match(/^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)$/);
  const clock = String(Number(hour) % 12 || 12).padStart(2, '0');
  return [`${month}${day}${year}`, 'Tab', `${clock}${minute}${Number(hour) < 12 ? 'A' : 'P'}`];
}

// An event's series as the page shows it: its caption, the table's rows and the chart's data.
async function seriesOf(page) {
  return {
    label: await page.$eval('section[aria-labelledby=series-title] .chart', (chart) => chart.getAttribute('aria-label')),
    interval: await page.$eval('select[name=interval]', (select) => select.value),
    form: await page.$$eval('form.custom-range input', (inputs) => inputs.map((input) => input.value)),
    rows: (await rows(page, 'section[aria-labelledby=series-title] details.numbers tbody tr')).map((row) => row.cells),
    chart: await page.$eval('section[aria-labelledby=series-title] .chart', (chart) => [chart.chartSpec.xs, ...chart.chartSpec.ys]),
  };
}

const background = (page) => page.evaluate(() => getComputedStyle(document.body).backgroundColor);

// What the overview shows: events with their totals and sparklines, funnels, properties.
async function overviewOf(page) {
  return {
    events: await rows(page, 'table.events > tbody > tr'),
    sparks: await page.$$eval('table.events > tbody > tr', (trs) =>
      trs.map((tr) => [...tr.querySelectorAll('details.spark td')].map((td) => Number(td.textContent.replace(/\D/g, '')))),
    ),
    funnels: await rows(page, 'table.funnels > tbody > tr'),
    properties: await rows(page, 'table.properties tbody tr'),
    writeControls: await page.$$eval('.write', (found) => found.length),
  };
}

// Opens the who-dropped-off list of `step` and presses "More" until it is whole.
async function droppedList(page, step) {
  const row = `table[data-key=steps] tr[data-step="${step}"]`;
  await page.click(`${row} details.dropped summary`);
  await page.waitForSelector(`${row} details.dropped li a, ${row} details.dropped p.empty`);
  const pages = [await page.$$eval(`${row} details.dropped li a`, (found) => found.length)];
  while (await page.$(`${row} details.dropped button`)) {
    await page.click(`${row} details.dropped button`);
    const shown = pages[pages.length - 1];
    await page.waitForFunction(([selector, n]) => document.querySelectorAll(selector).length > n, [`${row} details.dropped li a`, shown]);
    pages.push(await page.$$eval(`${row} details.dropped li a`, (found) => found.length));
  }
  return { pages, links: await page.$$eval(`${row} details.dropped li a`, (found) => found.map((a) => [a.textContent, a.getAttribute('href')])) };
}

// The funnel view: steps, definition, backfill, time to convert, entry days, values.
async function funnelOf(page) {
  return {
    steps: await rows(page, 'table[data-key=steps] > tbody > tr'),
    drops: await page.$$eval('table[data-key=steps] .drop', (found) => found.map((span) => span.firstChild.textContent)),
    definition: await page.$eval('.definition', (p) => p.textContent),
    backfill: await page.$$eval('.backfill', (found) => found.map((div) => div.textContent)),
    medians: await page.$$eval('.histogram', (found) => found.map((div) => [div.dataset.step, div.querySelector('.median').textContent])),
    histograms: await page.$$eval('.histogram', (found) => found.map((div) => [...div.querySelectorAll('tbody tr')].map((tr) => [...tr.children].slice(0, 2).map((c) => c.textContent)))),
    days: await rows(page, 'section[aria-labelledby=days-title] details.numbers tbody tr'),
    values: await rows(page, 'table[data-key=values] > tbody > tr'),
    charts: await page.$$eval('.chart', (found) => found.length),
    chartTables: await page.$$eval('.chart ~ details.numbers', (found) => found.length),
    writeControls: await page.$$eval('.write', (found) => found.length),
  };
}

async function main(options) {
  const origin = new URL(options.url).origin;
  const report = { requests: [], console: [], views: {} };
  const browser = await launch();

  async function open(name, { username, password, colorScheme = 'light', viewport = DESKTOP, timezoneId }) {
    const context = await browser.newContext({ httpCredentials: { username, password }, colorScheme, viewport, timezoneId, locale: 'en-US' });
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    page.on('request', (request) => report.requests.push(request.url()));
    page.on('pageerror', (error) => report.console.push({ context: name, type: 'pageerror', text: error.message }));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        report.console.push({ context: name, type: message.type(), text: message.text(), url: message.location().url });
      }
    });
    return { context, page };
  }
  // Screenshots for docs/, and others only for a person to look at (scratch).
  const shoot = (page, name, folder = options.screenshots) => page.screenshot({ path: `${folder}/${name}.png`, fullPage: true });
  const view = async (page, hash, ready) => {
    await page.evaluate((h) => (location.hash = h), hash);
    await page.waitForSelector(ready);
  };
  const enc = encodeURIComponent;
  const eventHash = `#/event/${enc(options.event)}?range=30d&split=${enc(options.property)}`;
  const funnelHash = `#/funnel/${enc(options.funnel)}`;
  const funnelReady = '.view.funnel table[data-key=steps]';
  const owner = { username: options.user, password: options.password };

  // A hit sent by the tracker from the feed page, as `visitor`.
  async function track(visitor, events) {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(options.feedPage);
    await page.evaluate(
      ({ visitor, events }) =>
        new Promise((resolve) => {
          hiitrack('identify', visitor);
          events.forEach((name) => hiitrack('track', name));
          hiitrack('flush', resolve);
        }),
      { visitor, events },
    );
    await context.close();
  }

  // The owner, light, desktop: first load, the three views, the form, a live hit.
  async function views() {
    const { context, page } = await open('owner', { ...owner, timezoneId: 'Asia/Kolkata' });
    const sizes = [];
    page.on('requestfinished', async (request) => {
      const size = await request.sizes().catch(() => null);
      if (size) {
        sizes.push(size.responseBodySize + size.responseHeadersSize);
      }
    });
    await page.goto(options.url);
    await page.waitForSelector('.view.overview table.funnels');
    await page.waitForLoadState('networkidle');
    report.firstLoadBytes = sizes.reduce((a, b) => a + b, 0);
    report.firstLoadRequests = sizes.length;
    report.views.overview = await overviewOf(page);
    report.background = { light: await background(page) };
    await shoot(page, 'overview-light');

    // Keyboard: Tab to the first event's link, Enter opens its page.
    const first = report.views.overview.events[0].data.event;
    for (let i = 0; i < 30; i++) {
      await page.keyboard.press('Tab');
      if ((await page.evaluate(() => document.activeElement.textContent)) === first) {
        break;
      }
    }
    await page.keyboard.press('Enter');
    await page.waitForSelector('.view.event');
    report.keyboard = { opened: await page.$eval('h1', (h1) => h1.textContent), focused: await page.evaluate(() => document.activeElement.tagName) };

    await view(page, eventHash, `.view.event table.bars[data-key="split-${options.property}"]`);
    report.views.event = {
      title: await page.$eval('h1', (h1) => h1.textContent),
      total: await page.$eval('.figures .total', (dd) => dd.textContent),
      unique: await page.$eval('.figures .unique', (dd) => dd.textContent),
      before: await rows(page, 'section[aria-labelledby=paths-title] tbody tr'),
      split: await rows(page, 'section[aria-labelledby=split-title] tbody tr'),
      series: await rows(page, 'section[aria-labelledby=series-title] details.numbers tbody tr'),
      charts: await page.$$eval('.chart canvas', (found) => found.length),
      chartTables: await page.$$eval('.chart ~ details.numbers', (found) => found.length),
    };
    await shoot(page, 'event-light');
    // The last 24 h, chosen from the keyboard: hourly numbers.
    await page.focus('nav.segmented a');
    const chosenAt = Date.now() / 1000;
    await page.keyboard.press('Enter');
    await page.waitForSelector('nav.segmented a[aria-current=page]:text("Last 24h")');
    report.views.event.day = {
      chosenAt,
      interval: await page.$eval('select[name=interval]', (select) => select.value),
      series: await rows(page, 'section[aria-labelledby=series-title] details.numbers tbody tr'),
    };
    // A custom range typed into the form: a finish before the start is
    // refused (Enter); the range is shown daily, then hourly, chosen from the keyboard.
    // Clicks the field's first part (the month), types the date, Tab, the time.
    const type = async (field, iso) => {
      const input = `form.custom-range input[name=${field}]`;
      const [date, tab, clock] = typed(iso);
      const [padding, height] = await page.$eval(input, (element) => [parseFloat(getComputedStyle(element).paddingLeft), element.clientHeight]);
      await page.click(input, { position: { x: padding + 4, y: height / 2 } });
      await page.keyboard.type(date);
      await page.keyboard.press(tab);
      await page.keyboard.type(clock);
    };
    await type('start', options.customRange.start);
    await type('finish', options.customRange.early);
    await page.keyboard.press('Enter');
    const refused = {
      message: await page.$eval('form.custom-range input[name=finish]', (input) => input.validationMessage),
      hash: await page.evaluate(() => location.hash),
    };
    await type('finish', options.customRange.finish);
    await page.keyboard.press('Enter');
    await page.waitForSelector('form.custom-range button[aria-current=true]');
    report.views.event.custom = { refused, hash: await page.evaluate(() => location.hash), daily: await seriesOf(page) };
    await page.focus('select[name=interval]');
    await page.keyboard.press('ArrowUp');
    // The daily chart is on the page until the hourly one replaces it.
    await page.waitForSelector('section[aria-labelledby=series-title] .chart[aria-label^="Hourly"]');
    report.views.event.custom.hourly = await seriesOf(page);

    // The funnel: every part of the exact report, then who dropped off at each step.
    await view(page, funnelHash, '.view.funnel .histogram');
    report.views.funnel = await funnelOf(page);
    await shoot(page, 'funnel-light');
    const steps = report.views.funnel.steps.length;
    report.views.funnel.dropped = {};
    for (let step = 2; step <= steps; step++) {
      report.views.funnel.dropped[step] = await droppedList(page, step);
    }
    await shoot(page, 'funnel-dropped', options.scratch);

    // The form: one step is refused by the server, shown at the steps; then
    // the full definition is saved and its page opens.
    const spec = options.newFunnel;
    await view(page, '#/new-funnel', 'form.write');
    await page.fill('#field-name', spec.name);
    await page.fill('#field-description', spec.description);
    const stepInputs = () => page.$$('#field-steps input.event-name');
    await (await stepInputs())[0].fill(spec.steps[0]);
    await page.click('button[type=submit]');
    await page.waitForSelector('#error-steps:not([hidden])');
    report.formError = { steps: await page.$eval('#error-steps', (p) => p.textContent) };
    await shoot(page, 'form-error', options.scratch);
    for (let i = 1; i < spec.steps.length; i++) {
      if ((await stepInputs()).length <= i) {
        await page.click('text=+ Step');
      }
      await (await stepInputs())[i].fill(spec.steps[i]);
    }
    await page.fill('#field-property', spec.property);
    await page.click('button[type=submit]');
    await page.waitForFunction((name) => location.hash === `#/funnel/${encodeURIComponent(name)}`, spec.name);
    await page.waitForSelector(funnelReady);
    // The API's exact report just before and just after the page is read:
    // a backfill may be moving the numbers meanwhile.
    const conversion = () =>
      page.evaluate(async (name) => {
        const base = location.pathname.replace(/\/dashboard$/, '');
        const answer = await fetch(`${base}/funnel/${encodeURIComponent(name)}`);
        return (await answer.json()).conversion;
      }, spec.name);
    const before = await conversion();
    report.created = await funnelOf(page);
    report.created.api = { before, after: await conversion() };
    // The test held the backfill: let it go, and the live page shows it done.
    const released = await fetch(options.releaseBackfill, { method: 'POST' });
    if (!released.ok) {
      throw new Error(`the backfill's release answered ${released.status}`);
    }
    await page.evaluate(() => (window.notReloaded = true));
    await page.waitForSelector('.view.funnel .backfill', { state: 'detached', timeout: 20000 });
    report.backfilled = { ...(await funnelOf(page)), notReloaded: await page.evaluate(() => window.notReloaded === true) };
    await shoot(page, 'funnel-created', options.scratch);

    // Edit: the form holds the saved definition; saved unchanged, the
    // funnel's page opens (the API's answer read once its backfill is done).
    // Then Delete, confirmed, from its page.
    const edit = options.editFunnel;
    await view(page, `#/funnel/${enc(edit)}/edit`, 'form.write');
    report.edited = await page.evaluate(() => ({
      steps: [...document.querySelectorAll('#field-steps li.step')].map((li) => [...li.querySelectorAll('input.event-name')].map((input) => input.value)),
      order: document.querySelector('form.write').elements.order.value,
      window: [document.querySelector('#field-window').value, document.querySelector('select[name=window_unit]').value],
      exclude: [...document.querySelectorAll('#field-exclude input')].map((input) => input.value),
    }));
    await page.click('button[type=submit]');
    await page.waitForFunction((name) => location.hash === `#/funnel/${encodeURIComponent(name)}`, edit);
    await page.waitForSelector(funnelReady);
    report.edited.definition = await page.$eval('.definition', (p) => p.textContent);
    await page.waitForSelector('.view.funnel .backfill', { state: 'detached', timeout: 20000 });
    report.edited.api = await page.evaluate(async (name) => {
      const base = location.pathname.replace(/\/dashboard$/, '');
      return (await fetch(`${base}/funnel/${encodeURIComponent(name)}`)).json();
    }, edit);
    page.once('dialog', (dialog) => dialog.accept());
    await page.click('.view.funnel button.danger');
    await page.waitForSelector('.view.overview table.funnels');
    report.deleted = await rows(page, 'table.funnels > tbody > tr');

    // Live: the tracker sends a hit from another page; the overview shows it
    // without a reload, keeping the rows it had.
    await view(page, '#/', '.view.overview table.events');
    await page.evaluate(() => {
      window.notReloaded = true;
      window.firstRow = document.querySelector('table.events > tbody > tr');
    });
    await track('live-visitor', [options.liveEvent]);
    await page.waitForSelector(`table.events tr[data-event="${options.liveEvent}"]`, { timeout: 20000 });
    report.live = {
      row: await rows(page, `table.events tr[data-event="${options.liveEvent}"]`),
      notReloaded: await page.evaluate(() => window.notReloaded === true && document.contains(window.firstRow)),
    };
    await context.close();
  }

  async function dark() {
    const { context, page } = await open('dark', { ...owner, colorScheme: 'dark' });
    await page.goto(options.url);
    await page.waitForSelector('.view.overview table.funnels');
    report.background.dark = await background(page);
    await shoot(page, 'overview-dark');
    await view(page, eventHash, `.view.event table.bars[data-key="split-${options.property}"]`);
    await shoot(page, 'event-dark');
    await view(page, funnelHash, '.view.funnel .histogram');
    await shoot(page, 'funnel-dark');
    await context.close();
  }

  // Phone width: nothing wider than the screen.
  async function phone() {
    const { context, page } = await open('phone', { ...owner, viewport: PHONE });
    report.phone = {};
    for (const [name, hash, ready] of [
      ['overview', '#/', '.view.overview table.funnels'],
      ['event', eventHash, '.view.event .chart canvas'],
      ['funnel', funnelHash, '.view.funnel .chart canvas'],
    ]) {
      await page.goto(options.url + hash);
      await page.waitForSelector(ready);
      // Charts take the width of their box once it is laid out (a ResizeObserver): let them settle.
      await page
        .waitForFunction(() => document.documentElement.scrollWidth <= window.innerWidth, null, { timeout: 5000 })
        .catch(() => {});
      report.phone[name] = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    }
    await shoot(page, 'funnel-phone');
    await context.close();
  }

  // The access key: read views, no write control, no visitor, forged writes refused.
  async function reader() {
    const { context, page } = await open('reader', { username: options.user, password: options.accessKey });
    await page.goto(options.url);
    await page.waitForSelector('.view.overview table.funnels');
    report.reader = { overviewWrite: await page.$$eval('.write, button', (found) => found.length) };
    await view(page, funnelHash, funnelReady);
    report.reader.funnelWrite = await page.$$eval('.write, button, details.dropped, a[href$="/edit"]', (found) => found.length);
    report.reader.steps = await rows(page, 'table[data-key=steps] tbody tr');
    await view(page, '#/new-funnel', '.view, .error');
    report.reader.form = await page.$$eval('form', (found) => found.length);
    await view(page, `#/visitor/${enc(options.erase)}`, '.view, .error');
    report.reader.visitor = await page.$$eval('#main .view, #main button', (found) => found.length);
    report.reader.forged = await page.evaluate(async (visitor) => {
      const base = location.pathname.replace(/\/dashboard$/, '');
      const post = await fetch(`${base}/funnel/forged`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ event: ['a', 'b'] }) });
      const erase = await fetch(`${base}/visitor/${encodeURIComponent(visitor)}`, { method: 'DELETE' });
      return [post.status, erase.status];
    }, options.erase);
    await context.close();
  }

  // A dropped-off visitor, opened from its funnel's list: its page, a
  // refused confirmation (nothing erased), the erase, and the numbers after.
  async function erase() {
    const { context, page } = await open('erase', owner);
    await page.goto(options.url + funnelHash);
    await page.waitForSelector(funnelReady);
    const list = await droppedList(page, options.step);
    const links = `tr[data-step="${options.step}"] details.dropped li a`;
    await track(options.liveDropper, [options.firstStep]);
    await page.waitForSelector(`${links}[href="#/visitor/${enc(options.liveDropper)}"]`, { timeout: 20000 });
    const liveListed = await page.$$eval(links, (found) => found.map((a) => [a.textContent, a.getAttribute('href')]));
    await page.click(`${links}[href="#/visitor/${enc(options.erase)}"]`);
    await page.waitForSelector('.view.visitor');
    report.visitor = {
      listed: list.links,
      liveListed,
      hash: await page.evaluate(() => location.hash),
      title: await page.$eval('h1', (h1) => h1.textContent),
      lead: await page.$eval('.view.visitor .lead', (p) => p.textContent),
      properties: await rows(page, '.view.visitor section:nth-of-type(1) tbody tr'),
      events: await rows(page, '.view.visitor section:nth-of-type(2) tbody tr'),
      dialogs: [],
    };
    await shoot(page, 'visitor', options.scratch);
    const answer = (dialog, accept) => {
      report.visitor.dialogs.push(dialog.message());
      return accept ? dialog.accept() : dialog.dismiss();
    };
    page.once('dialog', (dialog) => answer(dialog, false));
    await page.click('.view.visitor button.danger');
    report.visitor.afterDismiss = await page.evaluate(async (visitor) => {
      const base = location.pathname.replace(/\/dashboard$/, '');
      const found = await fetch(`${base}/visitor/${encodeURIComponent(visitor)}`);
      return { status: found.status, view: document.querySelector('#main .view').className };
    }, options.erase);
    page.once('dialog', (dialog) => answer(dialog, true));
    await page.click('.view.visitor button.danger');
    await page.waitForSelector('.view.overview table.funnels');
    report.views.overview = await overviewOf(page);
    await view(page, funnelHash, funnelReady);
    report.views.funnel = await funnelOf(page);
    report.views.funnel.listed = await page.$$eval(links, (found) => found.map((a) => [a.textContent, a.getAttribute('href')]));
    await context.close();
  }

  // A visitor with more than a page of history: "Later events", from the keyboard, until the last page.
  async function history() {
    const { context, page } = await open('history', owner);
    await page.goto(`${options.longHistory.url}#/visitor/${enc(options.longHistory.visitor)}`);
    await page.waitForSelector('.view.visitor');
    report.history = [];
    for (;;) {
      report.history.push({
        hash: await page.evaluate(() => location.hash),
        focused: await page.evaluate(() => document.activeElement.tagName),
        events: (await rows(page, '.view.visitor section:nth-of-type(2) tbody tr')).map((row) => row.cells),
      });
      const later = await page.$('.view.visitor a.button:text("Later events")');
      if (!later) {
        break;
      }
      await page.evaluate(() => (window.shown = document.querySelector('.view.visitor')));
      await later.focus();
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.querySelector('.view.visitor') && document.querySelector('.view.visitor') !== window.shown);
    }
    await context.close();
  }

  try {
    if (options.phase === 'views') {
      await views();
      await dark();
      await phone();
      await reader();
    } else {
      await erase();
      await history();
    }
  } finally {
    await browser.close();
  }
  report.foreign = report.requests.filter((url) => !url.startsWith(origin + '/') && !url.startsWith('data:'));
  return report;
}

run('dashboard.js', 150, main);
