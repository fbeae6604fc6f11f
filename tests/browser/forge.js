// A cross-site request forgery attempt in Debian's Chromium, for tests/test_csrf_browser.py.
//
// Usage: node forge.js '{"login": URL, "user": NAME, "password": PW, "attacks": [URL, ...]}'
// The browser holds the analyst's Basic login for the server and reads
// `login` with it, then opens each attack page, which submits a
// form to the HiiTrack server on its own.  Prints one JSON object: for each
// attack, the method, URL and status of the request the form sent, and
// whether it carried the Basic login.
'use strict';

const { launch, run } = require('./chromium');

async function main(options) {
  const browser = await launch();
  const report = { login: null, attacks: [] };
  try {
    // The analyst's browser holds the login and sends it with every request
    // to the server, as Chromium does with a login it has cached.
    const basic = Buffer.from(`${options.user}:${options.password}`).toString('base64');
    const context = await browser.newContext({ extraHTTPHeaders: { Authorization: `Basic ${basic}` } });
    context.setDefaultTimeout(15000);
    const page = await context.newPage();
    report.login = (await page.goto(options.login)).status();
    await page.close();
    const target = new URL(options.login).origin;
    for (const attack of options.attacks) {
      // A fresh tab per attack, so one form's navigation cannot cut into the
      // next; tabs are left open (closing one mid-navigation can hang).
      const tab = await context.newPage();
      const [response] = await Promise.all([
        tab.waitForResponse((answer) => answer.url().startsWith(target) && answer.request().method() === 'POST'),
        tab.goto(attack, { waitUntil: 'commit' }),
      ]);
      const headers = await response.request().allHeaders();
      report.attacks.push({
        url: response.url(),
        status: response.status(),
        origin: headers.origin || null,
        authorized: Boolean(headers.authorization),
      });
    }
  } finally {
    await browser.close();
  }
  return report;
}

run('forge.js', 90, main);
