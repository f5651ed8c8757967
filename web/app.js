// guardctl's web page. Every model request is signed here, in the browser, with version 2 of docs/signing.md
// (byte-compatible with src/gate/canonical.ts; version 2 covers the exact body, version 1 only its top-level
// strings): the secret stays in this tab's sessionStorage and never travels.
const $ = (id) => document.getElementById(id);
const BASE = location.pathname.replace(/[^/]*$/, ''); // the directory the page was loaded from, e.g. /guard/
const KEY_ID = 'guardctl.keyId';
const SECRET = 'guardctl.secret';
const utf8 = new TextEncoder();

// ---- signing ------------------------------------------------------------------------------------------
/** RFC 3986: only A-Z a-z 0-9 - . _ ~ stay literal, upper-case hex. */
const rfc3986 = (text) => encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Version 2 CANONICAL_QUERY: decoded pairs re-encoded as RFC 3986, sorted by encoded name then value. */
function canonicalQuery(query) {
  const pairs = [...new URLSearchParams(query)].map(([n, v]) => [rfc3986(n), rfc3986(v)]);
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([n, v]) => `${n}=${v}`).join('&');
}

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

function subtle() {
  if (!crypto.subtle) throw new PageError('insecure_context', 'This page must be opened over HTTPS (or on localhost): browsers offer WebCrypto only there.');
  return crypto.subtle;
}

async function sha256Hex(text) {
  return hex(new Uint8Array(await subtle().digest('SHA-256', utf8.encode(text))));
}

async function hmacHex(secret, message) {
  subtle();
  const key = await crypto.subtle.importKey('raw', utf8.encode(secret), { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return hex(new Uint8Array(await crypto.subtle.sign('HMAC', key, utf8.encode(message))));
}

// ---- API ----------------------------------------------------------------------------------------------
class PageError extends Error {
  constructor(code, message, extra = {}) {
    super(message);
    Object.assign(this, { code }, extra);
  }
}

function credentials() {
  const keyId = sessionStorage.getItem(KEY_ID);
  const secret = sessionStorage.getItem(SECRET);
  return keyId && secret ? { keyId, secret } : undefined;
}

/**
 * Sends a request under BASE; signs it unless `open`. Resolves to { data, ms } or throws a PageError. An answer
 * of server-sent events is read as it arrives: each `delta` event's data goes to onDelta, and `data` is the
 * `done` event's (an `error` event throws, as an error answer does).
 */
async function api(method, route, { query = '', json, open = false, onDelta } = {}) {
  const path = BASE + route;
  const body = json === undefined ? undefined : JSON.stringify(json);
  const headers = body === undefined ? {} : { 'Content-Type': 'application/json' };
  if (!open) {
    const creds = credentials();
    if (!creds) throw new PageError('no_credentials', 'Enter an API key id and its secret under "Credentials" first.');
    const timestamp = String(Math.floor(Date.now() / 1000));
    const nonce = hex(crypto.getRandomValues(new Uint8Array(16)));
    const contentSha = await sha256Hex(body ?? '');
    const toSign = `GUARD2-HMAC-SHA256\n${method}\n${path}\n${canonicalQuery(query)}\n${contentSha}\n${timestamp}\n${nonce}`;
    const signature = await hmacHex(creds.secret, toSign);
    Object.assign(headers, {
      'X-API-Key': creds.keyId, 'X-Timestamp': timestamp, 'X-Nonce': nonce, 'X-Signature-Version': '2', 'X-Content-SHA256': contentSha, 'X-Signature': signature,
    });
  }
  const started = performance.now();
  const res = await fetch(query ? `${path}?${query}` : path, { method, headers, body, cache: 'no-store' }).catch((err) => {
    throw new PageError('network_error', `The server could not be reached (${err.message}).`);
  });
  if (res.ok && /^text\/event-stream/.test(res.headers.get('Content-Type') ?? '')) {
    const data = await readEvents(res, onDelta ?? (() => {}));
    return { data, ms: performance.now() - started };
  }
  const ms = performance.now() - started;
  const data = await res.json().catch(() => undefined);
  if (res.ok) return { data, ms };
  const e = data?.error ?? {};
  throw new PageError(e.code ?? `http_${res.status}`, e.message ?? `${res.status} ${res.statusText}`, {
    status: res.status, requestId: e.request_id, retryAfter: res.headers.get('Retry-After'), stringToSign: e.string_to_sign,
  });
}

/** Reads an event stream to its end: deltas to onDelta; resolves with the `done` event's data. */
async function readEvents(res, onDelta) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  let done;
  for (;;) {
    const { value, done: ended } = await reader.read().catch((err) => {
      throw new PageError('network_error', `The stream broke off (${err.message}).`);
    });
    if (ended) break;
    buffer += value;
    let at;
    while ((at = buffer.indexOf('\n\n')) !== -1) {
      const block = buffer.slice(0, at);
      buffer = buffer.slice(at + 2);
      let name = 'message';
      const lines = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) lines.push(line.slice(6));
      }
      const data = JSON.parse(lines.join('\n'));
      if (name === 'delta') onDelta(data.text);
      else if (name === 'done') done = data;
      else if (name === 'error') throw new PageError(data.error?.code ?? 'stream_error', data.error?.message ?? 'the stream failed', { requestId: data.error?.request_id });
    }
  }
  if (done === undefined) throw new PageError('network_error', 'The stream ended before the translation was complete.');
  return done;
}

const HINTS = {
  bad_signature: 'Check that the secret belongs to this key id.',
  unknown_key: 'Check the key id (copy it whole).',
  timestamp_skew: "Your computer's clock is off: synchronise it.",
  model_not_allowed: "Pick a model that your key's tier allows.",
};

function showError(box, err) {
  box.replaceChildren();
  const head = element('p');
  head.append(element('strong', err.code), `: ${err.message}`);
  if (err.retryAfter) head.append(` Retry after ${err.retryAfter} s.`);
  if (HINTS[err.code]) head.append(` ${HINTS[err.code]}`);
  box.append(head);
  if (err.requestId) box.append(element('p', `request id ${err.requestId}`, 'muted'));
  if (err.stringToSign !== undefined) {
    const details = element('details');
    details.append(element('summary', "The server's string to sign"), element('pre', err.stringToSign));
    box.append(details);
  }
  box.hidden = false;
}

/** Runs a form's request with its button disabled, its error box cleared, and any failure shown there. */
async function run(form, errorBox, resultBox, work) {
  const button = form.querySelector('button[type=submit]');
  button.disabled = true;
  form.setAttribute('aria-busy', 'true');
  errorBox.hidden = true;
  try {
    await work();
    resultBox.hidden = false;
  } catch (err) {
    resultBox.hidden = true;
    showError(errorBox, err instanceof PageError ? err : new PageError('page_error', String(err?.message ?? err)));
  } finally {
    button.disabled = false;
    form.removeAttribute('aria-busy');
  }
}

const latency = (ms, data) => `${Math.round(ms)} ms round trip` + (typeof data?.latency_ms === 'number' ? `, ${Math.round(data.latency_ms)} ms on the server` : '');

// ---- selects ------------------------------------------------------------------------------------------
function element(tag, text = '', className = '') {
  const e = document.createElement(tag);
  e.textContent = text;
  if (className) e.className = className;
  return e;
}

async function loadLanguages() {
  try {
    const { data } = await api('GET', 'api/v1/languages', { open: true });
    const list = data?.languages ?? [];
    const options = (variant) => list.filter((l) => !l.variant === !variant).map((l) => new Option(`${l.english} · ${l.chinese}`, l.code));
    for (const [select, preferred] of [[$('tr-source'), 'zh'], [$('tr-target'), 'en']]) {
      const variants = element('optgroup');
      variants.label = 'Ethnic-minority languages and dialects';
      variants.append(...options(true));
      select.replaceChildren(...options(false));
      if (variants.children.length) select.append(variants);
      select.value = preferred;
    }
  } catch (err) {
    showError($('tr-error'), err);
  }
}

async function loadModels() {
  const selects = { moderate: $('mod-model'), translate: $('tr-model') };
  for (const s of Object.values(selects)) s.replaceChildren(new Option('server default', ''));
  if (!credentials()) return;
  try {
    const { data } = await api('GET', 'api/v1/models');
    const list = data?.models ?? [];
    for (const [task, select] of Object.entries(selects)) {
      const models = list.filter((m) => m.task === task);
      if (!models.length) continue;
      select.replaceChildren(...models.map((m) => {
        const o = new Option(m.allowed === false ? `${m.name} (not allowed for this key)` : m.state === 'ready' ? m.name : `${m.name} (${m.state})`, m.name);
        o.disabled = m.allowed === false;
        return o;
      }));
      select.value = (models.find((m) => m.allowed !== false && m.state === 'ready') ?? models[0]).name;
    }
    $('creds-status').textContent = `Key in use for this tab; ${list.length} model(s) available.`;
  } catch (err) {
    $('creds-status').textContent = `Could not list models: ${err.code}: ${err.message}`;
  }
}

// ---- panels -------------------------------------------------------------------------------------------
function setCredentialsForm() {
  $('key-id').value = sessionStorage.getItem(KEY_ID) ?? '';
  $('secret').value = sessionStorage.getItem(SECRET) ?? '';
}

$('creds').addEventListener('submit', (event) => {
  event.preventDefault();
  sessionStorage.setItem(KEY_ID, $('key-id').value.trim());
  sessionStorage.setItem(SECRET, $('secret').value.trim());
  $('creds-status').textContent = 'Key in use for this tab.';
  loadModels();
});

$('forget').addEventListener('click', () => {
  sessionStorage.removeItem(KEY_ID);
  sessionStorage.removeItem(SECRET);
  setCredentialsForm();
  $('creds-status').textContent = 'Forgotten: the key is no longer stored in this tab.';
  loadModels();
});

$('mod').addEventListener('submit', (event) => {
  event.preventDefault();
  run(event.target, $('mod-error'), $('mod-result'), async () => {
    const text = $('mod-text').value;
    const response = $('mod-response').value;
    const json = response.trim() === '' ? { text } : { messages: [{ role: 'user', content: text }, { role: 'assistant', content: response }] };
    if ($('mod-model').value) json.model = $('mod-model').value;
    const { data, ms } = await api('POST', 'api/v1/moderate', { json });
    const r = data ?? {};
    const level = String(r.level ?? 'unknown');
    $('mod-level').textContent = level;
    $('mod-level').className = `badge ${level}`;
    $('mod-score').textContent = typeof r.score === 'number' ? `score ${r.score.toFixed(4)}` : '';
    $('mod-categories').textContent = r.categories?.length ? r.categories.join(', ') : 'none';
    $('mod-refusal-row').hidden = r.refusal === undefined;
    $('mod-refusal').textContent = r.refusal ?? '';
    $('mod-latency').textContent = latency(ms, data);
  });
});

$('tr').addEventListener('submit', (event) => {
  event.preventDefault();
  run(event.target, $('tr-error'), $('tr-result'), async () => {
    const query = new URLSearchParams({ source_lang: $('tr-source').value, target_lang: $('tr-target').value, stream: 'true' }).toString();
    const json = { text: $('tr-text').value };
    if ($('tr-model').value) json.model = $('tr-model').value;
    const output = $('tr-output');
    output.textContent = '';
    $('tr-latency').textContent = '';
    // The translation shows as the model writes it; the final event's result replaces it when it is done.
    const onDelta = (text) => {
      output.append(text);
      $('tr-result').hidden = false;
    };
    const { data, ms } = await api('POST', 'api/v1/translate', { query, json, onDelta });
    output.textContent = data?.result ?? '';
    $('tr-latency').textContent = latency(ms, data);
  });
});

$('tr-swap').addEventListener('click', () => {
  const [s, t] = [$('tr-source'), $('tr-target')];
  [s.value, t.value] = [t.value, s.value];
});

// Ctrl+Enter (Cmd+Enter) in a text area sends its form.
document.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && (event.ctrlKey || event.metaKey) && event.target instanceof HTMLTextAreaElement) {
    event.preventDefault();
    event.target.form?.requestSubmit();
  }
});

setCredentialsForm();
loadLanguages();
loadModels();
