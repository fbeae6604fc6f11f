// Drives Debian's Chromium through one visit for tests/test_tracker_browser.py.
//
// Usage: node drive.js '{"pages": URL, "tracker": URL, "bucket": URL, "mode": "fetch"|"jsonp"|"pixel"}'
// Prints one JSON object on stdout: the `v` cookie after each step (the one
// the browser sends to the bucket's URL: the cookie's path is the bucket),
// every request the pages made to the tracking server, and the pages' errors.
'use strict';

const { launch, run } = require('./chromium');

async function main(options) {
  const browser = await launch();
  const report = { cookies: {}, cookiePaths: {}, flushed: [], requests: [], errors: [], transports: {} };
  try {
    const context = await browser.newContext();
    context.setDefaultTimeout(15000);
    if (options.mode === 'fetch') {
      // Count the beacons: a page being left cannot report them itself.
      await context.addInitScript(() => {
        const send = Navigator.prototype.sendBeacon;
        navigator.sendBeacon = function (url, data) {
          const sent = JSON.parse(sessionStorage.getItem('beacons') || '[]');
          sent.push({ url: String(url), body: String(data) });
          sessionStorage.setItem('beacons', JSON.stringify(sent));
          return send.call(navigator, url, data);
        };
      });
    } else {
      // A browser without fetch and sendBeacon: the tracker must use JSONP
      // (or, where the page's CSP blocks that, the pixel).
      await context.addInitScript(() => {
        delete window.fetch;
        delete Navigator.prototype.sendBeacon;
      });
    }
    const page = await context.newPage();
    page.on('request', (request) => {
      if (request.url().startsWith(options.tracker)) {
        report.requests.push({
          url: request.url(),
          type: request.resourceType(),
          method: request.method(),
          body: request.postData() || '',
        });
      }
    });
    page.on('pageerror', (error) => report.errors.push('pageerror: ' + error.message));
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') {
        report.errors.push(message.type() + ': ' + message.text());
      }
    });

    // What each flush callback was given: the visitor id the page may know.
    const flush = async () => {
      report.flushed.push(await page.evaluate(() => new Promise((resolve) => hiitrack('flush', resolve))));
    };
    const visitor = async (step) => {
      const cookies = await context.cookies(options.bucket + '/batch');
      const cookie = cookies.find((c) => c.name === 'v');
      report.cookies[step] = cookie ? decodeURIComponent(cookie.value) : null;
      report.cookiePaths[step] = cookie ? cookie.path : null;
    };

    // The first batch meets a dropped connection: the tracker must retry it.
    let dropped = false;
    const dropFirst = (route) => {
      if (dropped) {
        return route.continue();
      }
      dropped = true;
      return route.abort('connectionreset');
    };
    const isBatch = (url) => url.pathname.endsWith('/batch');
    await context.route(isBatch, dropFirst);
    await page.goto(options.pages + '/page1.html');
    await flush();
    await context.unroute(isBatch, dropFirst);
    await visitor('page1');
    report.transports = await page.evaluate(() => ({
      fetch: typeof window.fetch,
      sendBeacon: typeof navigator.sendBeacon,
    }));
    await page.evaluate(() => {
      hiitrack('set', 'plan', 'pro');
      hiitrack('track', 'Clicked buy');
    });
    // With fetch, leave at once: the batch must go by sendBeacon as the page
    // hides.  JSONP and the pixel cannot outlive a page, so wait for them.
    // (The beacon counter installed on the context above covers this page.)
    if (options.mode !== 'fetch') {
      await flush();
    }
    await Promise.all([page.waitForURL('**/page2.html'), page.click('#next')]);
    await flush();
    await page.evaluate(() => {
      hiitrack('set', 'name', 'Zoë 東京 🚀');
      hiitrack('track', 'Paid ✓');
    });
    await flush();
    await visitor('page2');
    await page.reload();
    await flush();
    await visitor('reload');
    await page.evaluate(() => {
      hiitrack('identify', 'customer-42');
      hiitrack('track', 'Logged in');
    });
    await flush();
    await page.reload();
    await flush();
    await visitor('identified');
    report.beacons = await page.evaluate(() => JSON.parse(sessionStorage.getItem('beacons') || '[]'));
    await context.close();
  } finally {
    await browser.close();
  }
  return report;
}

run('drive.js', 90, main);
