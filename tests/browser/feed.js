// Feeds a bucket through the real tracker for tests/test_dashboard_browser.py.
//
// Usage: node feed.js '{"page": URL, "clock": URL, "bucket": BUCKET_URL, "visits": [{"visitor": ID or null,
//   "hits": [{"time": UNIX, "events": [...], "properties": [[name, value], ...]}]}]}'
// A page of the test's second origin loads the README snippet; each visit is
// one visitor, named with `identify` or, when `visitor` is null, anonymous
// (the server's cookie, cleared before it).  Before each hit the test
// server's clock is set to the hit's time (POST to `clock`), so the hits
// spread over past days as real ones would.  Prints the visitor ids the
// server gave (the bucket's `v` cookie after each visit), and the page's errors.
'use strict';

const { launch, run } = require('./chromium');

async function main(options) {
  const browser = await launch();
  const report = { visitors: [], errors: [] };
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    page.on('pageerror', (error) => report.errors.push('pageerror: ' + error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        report.errors.push(message.type() + ': ' + message.text());
      }
    });
    const setClock = async (time) => {
      const answer = await fetch(`${options.clock}?now=${time}`, { method: 'POST' });
      if (!answer.ok) {
        throw new Error(`the clock answered ${answer.status}`);
      }
    };
    await page.goto(options.page);
    for (const visit of options.visits) {
      if (!visit.visitor) {
        // A new anonymous visitor: no cookie, and a tracker that knows no id.
        await context.clearCookies();
        await page.reload();
      }
      for (const hit of visit.hits) {
        await setClock(hit.time);
        await page.evaluate(
          ({ visitor, hit }) =>
            new Promise((resolve) => {
              if (visitor) {
                hiitrack('identify', visitor);
              }
              for (const [name, value] of hit.properties) {
                hiitrack('set', name, value);
              }
              for (const name of hit.events) {
                hiitrack('track', name);
              }
              hiitrack('flush', resolve);
            }),
          { visitor: visit.visitor, hit },
        );
      }
      const cookie = (await context.cookies(options.bucket + '/batch')).find((c) => c.name === 'v');
      report.visitors.push(cookie ? decodeURIComponent(cookie.value) : null);
    }
    await context.close();
  } finally {
    await browser.close();
  }
  return report;
}

run('feed.js', 150, main);
