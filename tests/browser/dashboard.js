// Drives Debian's Chromium through the dashboard for tests/test_dashboard_browser.py.
//
// Usage: node dashboard.js '{"url": DASHBOARD_URL, "user": ..., "password": ...,
//   "accessKey": ..., "event": NAME, "property": NAME, "funnel": NAME,
//   "newFunnel": {...}, "screenshots": DIR}'
// Prints one JSON object on stdout: what each view showed, every request
// the pages made, the console's errors, and the bytes of the first load.
// The test compares the numbers with the API's.
'use strict';

const { launch, run } = require('./chromium');

const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };

const rows = (page, selector) =>
  page.$$eval(selector, (trs) =>
    trs.map((tr) => ({ data: { ...tr.dataset }, cells: [...tr.querySelectorAll(':scope > th, :scope > td')].map((cell) => cell.textContent.trim()) })),
  );

async function main(options) {
  const origin = new URL(options.url).origin;
  const report = { requests: [], console: [], views: {} };
  const browser = await launch();

  async function open(name, { username, password, colorScheme = 'light', viewport = DESKTOP }) {
    const context = await browser.newContext({ httpCredentials: { username, password }, colorScheme, viewport });
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

  try {
    // The owner, light, desktop: first load, the three views, the form.
    const owner = await open('owner', { username: options.user, password: options.password });
    let page = owner.page;
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
    report.views.overview = {
      events: await rows(page, 'table.events > tbody > tr'),
      sparks: await page.$$eval('table.events > tbody > tr', (trs) =>
        trs.map((tr) => [...tr.querySelectorAll('details.spark td')].map((td) => Number(td.textContent.replace(/\D/g, '')))),
      ),
      funnels: await rows(page, 'table.funnels > tbody > tr'),
      properties: await rows(page, 'table.properties tbody tr'),
      writeControls: await page.$$eval('.write', (found) => found.length),
    };
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
    };
    await shoot(page, 'event-light');

    await view(page, funnelHash, '.view.funnel table.bars[data-key=steps]');
    report.views.funnel = {
      steps: await rows(page, 'table[data-key=steps] tbody tr'),
      values: await rows(page, 'table[data-key=values] tbody tr'),
      writeControls: await page.$$eval('.write', (found) => found.length),
    };
    await shoot(page, 'funnel-light');

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
    await page.waitForSelector('.view.funnel table[data-key=steps]');
    report.created = await rows(page, 'table[data-key=steps] tbody tr');

    // Live: a hit arrives; the overview shows it without a reload, keeping
    // the rows it had.
    await view(page, '#/', '.view.overview table.events');
    await page.evaluate(() => {
      window.notReloaded = true;
      window.firstRow = document.querySelector('table.events > tbody > tr');
    });
    const live = await page.evaluate(async (name) => {
      const base = location.pathname.replace(/\/dashboard$/, '');
      const answer = await fetch(`${base}/event/${encodeURIComponent(name)}`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ visitor_id: 'live-visitor' }) });
      return answer.status;
    }, options.liveEvent);
    await page.waitForSelector(`table.events tr[data-event="${options.liveEvent}"]`, { timeout: 20000 });
    report.live = {
      posted: live,
      row: await rows(page, `table.events tr[data-event="${options.liveEvent}"]`),
      notReloaded: await page.evaluate(() => window.notReloaded === true && document.contains(window.firstRow)),
    };
    await owner.context.close();

    // Dark screenshots.
    const dark = await open('dark', { username: options.user, password: options.password, colorScheme: 'dark' });
    page = dark.page;
    await page.goto(options.url);
    await page.waitForSelector('.view.overview table.funnels');
    await shoot(page, 'overview-dark');
    await view(page, eventHash, `.view.event table.bars[data-key="split-${options.property}"]`);
    await shoot(page, 'event-dark');
    await view(page, funnelHash, '.view.funnel table[data-key=steps]');
    await shoot(page, 'funnel-dark');
    await dark.context.close();

    // Phone width: nothing wider than the screen.
    const phone = await open('phone', { username: options.user, password: options.password, viewport: PHONE });
    page = phone.page;
    report.phone = {};
    for (const [name, hash, ready] of [
      ['overview', '#/', '.view.overview table.funnels'],
      ['event', eventHash, '.view.event .chart canvas'],
      ['funnel', funnelHash, '.view.funnel table[data-key=steps]'],
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
    await phone.context.close();

    // The exact report (Part 2 of the API contract), from a stubbed answer: every part of
    // the funnel page that shows it, and a who-dropped-off list.
    const exact = await open('exact', { username: options.user, password: options.password });
    page = exact.page;
    const stub = options.exactStub;
    await page.route(
      (url) => url.pathname.endsWith(`/funnel/${enc(options.funnel)}`),
      (route) => route.fulfill({ json: stub.report }),
    );
    await page.route(
      (url) => url.pathname.endsWith(`/funnel/${enc(options.funnel)}/visitors`),
      (route) => route.fulfill({ json: { visitors: stub.dropped, next: null, asked: route.request().url() } }),
    );
    await page.goto(options.url + funnelHash);
    await page.waitForSelector('.view.funnel table[data-key=steps]');
    await page.click('table[data-key=steps] tr[data-step="2"] details.dropped summary');
    await page.waitForSelector('table[data-key=steps] tr[data-step="2"] details.dropped li a');
    report.exact = {
      steps: await rows(page, 'table[data-key=steps] > tbody > tr'),
      definition: await page.$eval('.definition', (p) => p.textContent),
      backfill: await page.$eval('.backfill', (div) => div.textContent),
      medians: await page.$$eval('.histogram .median', (found) => found.map((span) => span.textContent)),
      histograms: await page.$$eval('.histogram', (found) => found.map((div) => [...div.querySelectorAll('tbody tr')].map((tr) => [...tr.children].slice(0, 2).map((c) => c.textContent)))),
      days: await rows(page, 'section[aria-labelledby=days-title] details.numbers tbody tr'),
      values: await rows(page, 'table[data-key=values] > tbody > tr'),
      dropped: await page.$$eval('details.dropped li a', (found) => found.map((a) => [a.textContent, a.getAttribute('href')])),
      charts: await page.$$eval('.chart canvas', (found) => found.length),
    };
    await shoot(page, 'funnel-exact-stub', options.scratch);

    // A dropped-off visitor's page (also a stubbed answer), and erasing it
    // after the confirmation.
    let erased = null;
    await page.route(
      (url) => url.pathname.includes('/visitor/'),
      (route) => {
        if (route.request().method() === 'DELETE') {
          erased = decodeURIComponent(new URL(route.request().url()).pathname.split('/').pop());
          return route.fulfill({ json: {} });
        }
        return route.fulfill({ json: stub.visitor });
      },
    );
    page.once('dialog', (dialog) => dialog.accept());
    await page.click('details.dropped li a >> nth=1');
    await page.waitForSelector('.view.visitor');
    await shoot(page, 'visitor-stub', options.scratch);
    report.visitor = {
      title: await page.$eval('h1', (h1) => h1.textContent),
      properties: await rows(page, '.view.visitor section:nth-of-type(1) tbody tr'),
      events: await rows(page, '.view.visitor section:nth-of-type(2) tbody tr'),
    };
    await page.click('.view.visitor button.danger');
    await page.waitForSelector('.view.overview');
    report.visitor.erased = erased;
    await exact.context.close();

    // The access key: read views, no write control, a forged write refused.
    const reader = await open('reader', { username: options.user, password: options.accessKey });
    page = reader.page;
    await page.goto(options.url);
    await page.waitForSelector('.view.overview table.funnels');
    report.reader = { overviewWrite: await page.$$eval('.write, button', (found) => found.length) };
    await view(page, funnelHash, '.view.funnel table[data-key=steps]');
    report.reader.funnelWrite = await page.$$eval('.write, button.danger, a[href$="/edit"]', (found) => found.length);
    report.reader.steps = await rows(page, 'table[data-key=steps] tbody tr');
    await view(page, '#/new-funnel', '.view, .error');
    report.reader.form = await page.$$eval('form', (found) => found.length);
    report.reader.forged = await page.evaluate(async () => {
      const base = location.pathname.replace(/\/dashboard$/, '');
      const answer = await fetch(`${base}/funnel/forged`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ event: ['a', 'b'] }) });
      return answer.status;
    });
    await reader.context.close();
  } finally {
    await browser.close();
  }
  report.foreign = report.requests.filter((url) => !url.startsWith(origin + '/') && !url.startsWith('data:'));
  return report;
}

run('dashboard.js', 150, main);
