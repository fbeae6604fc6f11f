// What the driver scripts of tests/browser/ share: Debian's Chromium launched
// with playwright-core, and the run of a script's main under a watchdog.
'use strict';

const { chromium } = require('playwright-core');

const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: FLAGS,
    timeout: 30000,
  });
}

// Runs `main` with the JSON options of the command line and prints the report
// it resolves to as one JSON line.  Gives up after `seconds`: a script never
// outlives the test that started it.
function run(name, seconds, main) {
  setTimeout(() => {
    process.stderr.write(`${name}: gave up after ${seconds} s\n`);
    process.exit(3);
  }, seconds * 1000).unref();
  Promise.resolve()
    .then(() => main(JSON.parse(process.argv[2])))
    .then((report) => process.stdout.write(JSON.stringify(report) + '\n'))
    .catch((error) => {
      process.stderr.write(`${name}: ` + (error && error.stack ? error.stack : error) + '\n');
      process.exit(2);
    });
}

module.exports = { launch, run };
