// Helpers shared by the join page and the console: REST calls with the
// project's error shape, and the WebSocket URL of our own origin.

// ApiError is a failed REST call: status and the error body's code.
export class ApiError extends Error {
  constructor(status, code, message) {
    super(message || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

// rest calls a REST route; auth is an Authorization header value or null.
export async function rest(method, path, { auth = null, body } = {}) {
  const headers = { Accept: 'application/json' };
  if (auth) headers.Authorization = auth;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, {
    method, headers, body: body === undefined ? undefined : JSON.stringify(body),
    credentials: 'omit', cache: 'no-store',
  });
  if (res.status === 204) return null;
  let data = null;
  try { data = await res.json(); } catch { /* not JSON */ }
  if (!res.ok) {
    const e = (data && data.error) || {};
    throw new ApiError(res.status, e.code, e.message);
  }
  return data;
}

// wsURL is a WebSocket URL on our own origin.
export function wsURL(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

// el makes an element: el('li', {class: 'x'}, 'text', child...).
export function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const k of kids) if (k !== null && k !== undefined && k !== false) e.append(k);
  return e;
}

// say puts a sentence in the polite live region (status) or, with
// error, in the alert region; '' clears it.
export function say(text, { error = false } = {}) {
  const st = document.getElementById('status');
  const er = document.getElementById('error');
  if (error) {
    er.textContent = text;
    er.hidden = !text;
  } else {
    st.textContent = text;
  }
}
