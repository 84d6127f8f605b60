// The control plane's HTTP API: the token (kept in sessionStorage, so it goes with the
// tab and is never written to disk by the page), JSON calls with a time limit, the
// server's own error text on failure, and the live event stream.

const TOKEN_KEY = 'ferry.token';
const CALL_TIMEOUT_MS = 15000;

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY) || '';
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

// A failed call: HTTP status (0: no answer), the server's error code and message.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

let unauthorizedHandler = null;
// Called with the ApiError when the server answers 401 (token revoked, expired).
export function onUnauthorized(fn) {
  unauthorizedHandler = fn;
}

// One API call. Resolves to the parsed JSON body; rejects with an ApiError whose
// message is the server's own ({"error": {"code", "message"}}), e.g. the reason of a 403.
export async function call(method, path, body, token = session.token) {
  const headers = { Accept: 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), CALL_TIMEOUT_MS);
  let res;
  let text;
  try {
    res = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: abort.signal,
      cache: 'no-store',
      credentials: 'omit',
    });
    text = await res.text();
  } catch (e) {
    const why = e.name === 'AbortError' ? `no answer within ${CALL_TIMEOUT_MS / 1000} s` : e.message;
    throw new ApiError(0, 'unavailable', `${method} ${path}: ${why}`);
  } finally {
    clearTimeout(timer);
  }
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = null;
  }
  if (!res.ok) {
    const err = json && json.error && typeof json.error === 'object' ? json.error : {};
    const message = err.message || text.slice(0, 300) || `${res.status} ${res.statusText}`;
    const e = new ApiError(res.status, err.code || '', message);
    // Only the signed-in token being refused signs the page out (not a token being tried).
    if (res.status === 401 && unauthorizedHandler && token && token === session.token) unauthorizedHandler(e);
    throw e;
  }
  return json;
}

export const get = (path) => call('GET', path);
export const post = (path, body) => call('POST', path, body === undefined ? {} : body);

// The live event stream (/api/v1/events/stream, Server-Sent Events named `deployment`).
// EventSource cannot send headers, so the token rides in the query string. The browser
// reconnects by itself after a dropped connection; when it gives up (the server said
// no, or is gone) we start over with a growing delay, at most 30 s.
export class EventStream {
  // onEvent(json) for each event; onState('live' | 'reconnecting' | 'down').
  constructor(onEvent, onState) {
    this.onEvent = onEvent;
    this.onState = onState;
    this.source = null;
    this.retryMs = 1000;
    this.timer = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.open();
  }

  open() {
    if (this.stopped) return;
    const url = `/api/v1/events/stream?token=${encodeURIComponent(session.token)}`;
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => {
      this.retryMs = 1000;
      this.onState('live');
    };
    source.addEventListener('deployment', (e) => {
      let event;
      try {
        event = JSON.parse(e.data);
      } catch {
        return;  // a malformed event is skipped; the next refresh catches up
      }
      this.onEvent(event);
    });
    source.onerror = () => {
      if (source.readyState !== EventSource.CLOSED) {
        this.onState('reconnecting');
        return;
      }
      this.onState('down');
      source.close();
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.open(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 30000);
    };
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.source) this.source.close();
    this.source = null;
  }
}
