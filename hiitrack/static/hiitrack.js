/* HiiTrack browser tracker: plain JavaScript, no dependencies, no build step.
 *
 * Pages load it with the snippet of docs/tracker.md, which queues calls made
 * before this file arrives.  Calls made close together travel as one
 * /{user}/{bucket}/batch request, sent one batch at a time so the server sees
 * them in the order the page made them.  Transports, best first: fetch (with
 * credentials, keepalive), navigator.sendBeacon while the page is hidden or
 * unloaded, JSONP, and the image pixel.  Failed sends are retried with
 * backoff under the same insert_id, so a retry cannot count twice.  The
 * visitor is the server's HttpOnly `v` cookie, one per bucket; `identify`
 * switches to a known id.  Tests: tests/test_tracker_browser.py, tests/test_http_tracker.py.
 */
(function (window, document) {
  'use strict';

  const stub = window.hiitrack;
  if (stub && stub.loaded) {
    return; // included twice: the first copy keeps running
  }

  const TRANSPORTS = ['fetch', 'beacon', 'jsonp', 'pixel'];
  const BATCH_LIMIT = 100; // events, and properties, per batch (docs/api.md)
  const NAME_LIMIT = 256; // UTF-8 bytes of an event or property name
  const VALUE_LIMIT = 4096; // UTF-8 bytes of a property value as JSON
  const VISITOR_LIMIT = 256; // characters of a visitor id
  // JSON characters per batch: JSONP and the pixel carry the message in the
  // URL, and the server takes at most 64 KiB of query string.
  const MESSAGE_LIMIT = 16 * 1024;
  const MAX_ATTEMPTS = 8;
  const FIRST_RETRY = 1000;
  const LAST_RETRY = 60000;
  const ANSWER_TIMEOUT = 15000;
  const CALLBACKS = '__hiitrack_callbacks';

  const encoder = typeof TextEncoder === 'function' ? new TextEncoder() : null;

  let config = null; // set by init
  let early = []; // calls made before init
  const queue = []; // batches to send, oldest first
  let open = null; // the batch still taking calls (the last one in queue)
  let visitorId = null; // set by identify; else the cookie decides
  let lastAnswered = null; // the visitor id the server last named
  let sending = false; // the head of the queue is on its way
  let timer = null; // the batching delay
  let retryTimer = null; // the backoff before a retry
  let waiters = []; // flush callbacks
  let jsonpBlocked = false; // the page's CSP forbids scripts from the server
  let serial = 0;

  function warn(message) {
    if (window.console && console.warn) {
      console.warn('hiitrack: ' + message);
    }
  }

  function utf8Length(text) {
    return encoder ? encoder.encode(text).length : unescape(encodeURIComponent(text)).length;
  }

  // URL-safe base64 of the UTF-8 bytes of `text` (btoa alone takes Latin-1).
  function base64(text) {
    let binary;
    if (encoder) {
      const bytes = encoder.encode(text);
      binary = '';
      for (let i = 0; i < bytes.length; i += 0x8000) {
        binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
      }
    } else {
      binary = unescape(encodeURIComponent(text));
    }
    return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function randomId() {
    if (window.crypto && crypto.randomUUID) {
      return crypto.randomUUID();
    }
    let id = '';
    for (let i = 0; i < 4; i++) {
      id += Math.floor((1 + Math.random()) * 0x100000000).toString(16).slice(1);
    }
    return id;
  }

  function allowed(transport) {
    return config.transports.indexOf(transport) !== -1;
  }

  function endpoint() {
    return config.url + '/' + encodeURIComponent(config.user) + '/' + encodeURIComponent(config.bucket) + '/batch';
  }

  function checkName(name, what) {
    if (typeof name !== 'string' || name.length === 0 || utf8Length(name) > NAME_LIMIT || name.indexOf('\0') !== -1) {
      warn(what + ' name must be a string of 1-' + NAME_LIMIT + ' UTF-8 bytes without NUL; ignored: ' + name);
      return false;
    }
    return true;
  }

  // --- batches --------------------------------------------------------------

  function newBatch() {
    open = {events: [], properties: [], visitorId: visitorId, insertId: randomId(), attempts: 0, size: 0};
    queue.push(open);
    return open;
  }

  // The batch a call goes into.  The server applies a batch's properties
  // before its events, so a property set after an event starts a new batch.
  function batchFor(isProperty, size) {
    if (
      open &&
      ((isProperty && open.events.length > 0) ||
        open.events.length >= BATCH_LIMIT ||
        open.properties.length >= BATCH_LIMIT ||
        open.size + size > MESSAGE_LIMIT)
    ) {
      open = null;
    }
    const batch = open || newBatch();
    batch.size += size;
    return batch;
  }

  function track(name) {
    if (checkName(name, 'event')) {
      batchFor(false, JSON.stringify(name).length + 1).events.push(name);
      schedule();
    }
  }

  function set(name, value) {
    if (!checkName(name, 'property')) {
      return;
    }
    const json = JSON.stringify(value);
    if (json === undefined || utf8Length(json) > VALUE_LIMIT) {
      warn('property ' + name + ' needs a JSON value of at most ' + VALUE_LIMIT + ' bytes; ignored');
      return;
    }
    batchFor(true, JSON.stringify(name).length + json.length + 4).properties.push([name, JSON.parse(json)]);
    schedule();
  }

  function identify(id) {
    if (typeof id !== 'string' || id.length === 0 || id.length > VISITOR_LIMIT || id.indexOf('\0') !== -1) {
      warn('identify needs a visitor id of 1-' + VISITOR_LIMIT + ' characters; ignored');
      return;
    }
    if (id === visitorId) {
      return;
    }
    visitorId = id;
    // Calls so far belong to the previous visitor.  The new batch goes even
    // if nothing else follows: its answer sets the cookie to the known id.
    newBatch();
    schedule();
  }

  function schedule() {
    if (!timer && !sending && !retryTimer) {
      timer = setTimeout(function () {
        timer = null;
        sendNext();
      }, config.batchDelay);
    }
  }

  function flush(callback) {
    if (typeof callback === 'function') {
      waiters.push(callback);
    }
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    sendNext();
  }

  function settle() {
    if (queue.length === 0 && !sending) {
      const done = waiters;
      waiters = [];
      done.forEach(function (callback) {
        try {
          callback(lastAnswered);
        } catch (error) {
          warn('a flush callback failed: ' + error);
        }
      });
    }
  }

  function sendNext() {
    if (sending || retryTimer) {
      return;
    }
    if (queue.length === 0) {
      settle();
      return;
    }
    const batch = queue[0];
    if (batch === open) {
      open = null;
    }
    sending = true;
    transmit(batch, function (outcome) {
      sending = false;
      if (outcome === 'sent' || outcome === 'refused') {
        if (outcome === 'refused') {
          warn('the server refused a batch; dropped: ' + JSON.stringify([batch.events, batch.properties]));
        }
        if (queue[0] === batch) {
          queue.shift();
        }
        sendNext();
        return;
      }
      batch.attempts += 1;
      if (batch.attempts >= MAX_ATTEMPTS) {
        warn('gave up sending a batch after ' + batch.attempts + ' attempts');
        if (queue[0] === batch) {
          queue.shift();
        }
        sendNext();
        return;
      }
      const delay = Math.min(LAST_RETRY, FIRST_RETRY * Math.pow(2, batch.attempts - 1));
      retryTimer = setTimeout(function () {
        retryTimer = null;
        sendNext();
      }, delay * (0.5 + Math.random() / 2));
    });
  }

  function paramsOf(batch) {
    return {message: base64(JSON.stringify([batch.events, batch.properties])), insert_id: batch.insertId};
  }

  // A batch's address.  Its visitor_id (after identify) rides in the query
  // string, encoded as the server encodes the `v` cookie, so that nginx
  // (nginx.conf.example) routes the visitor by the same key with or without
  // the cookie; `query` adds the other parameters of GET transports.
  function urlOf(batch, query) {
    const parts = [];
    if (batch.visitorId) {
      const encoded = encodeURIComponent(batch.visitorId).replace(/[!'()*]/g, function (c) {
        return '%' + c.charCodeAt(0).toString(16).toUpperCase();
      });
      parts.push('visitor_id=' + encoded);
    }
    if (query) {
      parts.push(new URLSearchParams(query).toString());
    }
    return endpoint() + (parts.length ? '?' + parts.join('&') : '');
  }

  // The server names the visitor only to pages that may know it: on another
  // origin, an id this page gave with identify, never the cookie's own.
  function remember(answer) {
    if (answer && typeof answer.visitor_id === 'string') {
      lastAnswered = answer.visitor_id;
    }
  }

  // --- transports: each calls done('sent' | 'refused' | 'failed') once -------

  function transmit(batch, done) {
    const params = paramsOf(batch);
    if (allowed('fetch') && typeof window.fetch === 'function') {
      viaFetch(batch, params, done);
    } else if (allowed('jsonp') && !jsonpBlocked) {
      viaJsonp(batch, params, done);
    } else if (allowed('pixel')) {
      viaPixel(batch, params, done);
    } else {
      warn('no transport left to send with');
      done('refused');
    }
  }

  // A 4xx other than timeouts and rate limits will not get better by retrying.
  function outcomeOf(status) {
    if (status >= 200 && status < 300) {
      return 'sent';
    }
    return status >= 400 && status < 500 && status !== 408 && status !== 429 ? 'refused' : 'failed';
  }

  function viaFetch(batch, params, done) {
    // A form body keeps this a "simple" CORS request: no preflight.
    window
      .fetch(urlOf(batch), {
        method: 'POST',
        body: new URLSearchParams(params),
        credentials: 'include',
        keepalive: true,
        mode: 'cors',
      })
      .then(
        function (response) {
          const outcome = outcomeOf(response.status);
          return response.json().then(
            function (answer) {
              remember(answer);
              done(outcome);
            },
            function () {
              done(outcome);
            }
          );
        },
        function () {
          done('failed');
        }
      );
  }

  function viaJsonp(batch, params, done) {
    const callbacks = window[CALLBACKS] || (window[CALLBACKS] = {});
    const name = 'c' + ++serial;
    const script = document.createElement('script');
    let finished = false;
    function end(outcome) {
      if (finished) {
        return;
      }
      finished = true;
      clearTimeout(timeout);
      // A late answer must still find a function.
      callbacks[name] = outcome === 'sent' ? undefined : function () {};
      if (script.parentNode) {
        script.parentNode.removeChild(script);
      }
      done(outcome);
    }
    const timeout = setTimeout(function () {
      end('failed');
    }, ANSWER_TIMEOUT);
    callbacks[name] = function (answer) {
      remember(answer);
      end('sent');
    };
    script.async = true;
    script.onload = function () {
      end('failed'); // loaded but never called back
    };
    script.onerror = function () {
      // Blocked by the page's Content-Security-Policy (the violation event
      // may come just after this), or a network or server error.
      setTimeout(function () {
        if (jsonpBlocked && allowed('pixel') && !finished) {
          finished = true;
          clearTimeout(timeout);
          callbacks[name] = function () {};
          if (script.parentNode) {
            script.parentNode.removeChild(script);
          }
          viaPixel(batch, params, done);
        } else {
          end('failed');
        }
      }, 50);
    };
    script.src = urlOf(batch, Object.assign({callback: CALLBACKS + '.' + name}, params));
    (document.head || document.documentElement).appendChild(script);
  }

  const pixels = new Set(); // keeps images alive until they answer

  function viaPixel(batch, params, done) {
    const image = new Image(1, 1);
    pixels.add(image);
    function end(outcome) {
      pixels.delete(image);
      image.onload = image.onerror = null;
      done(outcome);
    }
    // The server answers a GIF even when it refuses, so load means delivered.
    image.onload = function () {
      end('sent');
    };
    image.onerror = function () {
      end('failed');
    };
    image.src = urlOf(batch, Object.assign({img: '1'}, params));
  }

  // The page is going away (or may never be seen again): hand what is left
  // to the browser, which delivers beacons and keepalive fetches after the
  // page is gone.  A batch already on its way by fetch is keepalive too.
  function leaving() {
    if (!config) {
      return;
    }
    if (timer) {
      clearTimeout(timer);
      timer = null;
    }
    const first = sending ? 1 : 0;
    const beacon = allowed('beacon') && typeof navigator.sendBeacon === 'function';
    const keepalive = allowed('fetch') && typeof window.fetch === 'function';
    while (queue.length > first && (beacon || keepalive)) {
      const batch = queue[first];
      if (beacon) {
        if (!navigator.sendBeacon(urlOf(batch), new URLSearchParams(paramsOf(batch)))) {
          break; // over the browser's quota: keep it for later
        }
      } else {
        viaFetch(batch, paramsOf(batch), function () {});
      }
      if (batch === open) {
        open = null;
      }
      queue.splice(first, 1);
    }
    if (retryTimer && queue.length === 0) {
      clearTimeout(retryTimer);
      retryTimer = null;
    }
    settle();
  }

  // --- commands -------------------------------------------------------------

  function pageviewName(option) {
    if (typeof option === 'function') {
      return option(window.location);
    }
    return 'Viewed ' + window.location.pathname;
  }

  function init(options) {
    if (config) {
      warn('init was already called; ignored');
      return;
    }
    options = options || {};
    if (typeof options.url !== 'string' || typeof options.user !== 'string' || typeof options.bucket !== 'string') {
      warn("init needs {url, user, bucket}, e.g. hiitrack('init', {url: 'https://track.example.com', user: 'acme', bucket: 'site'})");
      return;
    }
    const transports = Array.isArray(options.transports) ? options.transports : TRANSPORTS;
    config = {
      url: options.url.replace(/\/+$/, ''),
      user: options.user,
      bucket: options.bucket,
      batchDelay: typeof options.batchDelay === 'number' ? options.batchDelay : 100,
      transports: transports.filter(function (name) {
        return TRANSPORTS.indexOf(name) !== -1;
      }),
    };
    if (options.pageviews) {
      track(pageviewName(options.pageviews));
    }
    const calls = early;
    early = null;
    calls.forEach(run);
  }

  const COMMANDS = {track: track, set: set, identify: identify, flush: flush};

  function run(args) {
    const command = args[0];
    const rest = Array.prototype.slice.call(args, 1);
    if (command === 'init') {
      init(rest[0]);
    } else if (!COMMANDS.hasOwnProperty(command)) {
      warn('unknown command ' + command);
    } else if (!config) {
      early.push(args);
    } else {
      COMMANDS[command].apply(null, rest);
    }
  }

  function hiitrack() {
    run(arguments);
  }
  hiitrack.loaded = true;

  window.hiitrack = hiitrack;
  document.addEventListener('visibilitychange', function () {
    if (document.visibilityState === 'hidden') {
      leaving();
    }
  });
  window.addEventListener('pagehide', leaving);
  document.addEventListener('securitypolicyviolation', function (event) {
    if (config && /^script-src/.test(event.effectiveDirective || event.violatedDirective || '')) {
      try {
        if (new URL(event.blockedURI).origin === new URL(config.url, window.location.href).origin) {
          jsonpBlocked = true;
        }
      } catch (error) {
        // "inline", "eval": not ours
      }
    }
  });
  ((stub && stub.q) || []).forEach(run);
})(window, document);
