// The console: an operator (master password: JSON-RPC on /api/v1/jsonrpc)
// or a meeting owner (user token: REST) sees rooms or meetings with their
// participants, kept live from the event stream (a ticket from
// POST /api/v1/events/tickets opens it), and acts through the same API.
// Nothing here decides anything the server does not: every button is one
// API call, and the lists are redrawn from what the server says.
import { ApiError, rest, wsURL, el, say } from './api.js';

const signin = document.getElementById('signin');
const board = document.getElementById('board');
const items = document.getElementById('items');
const secretInput = document.getElementById('secret');
const createForm = document.getElementById('create');
const dialog = document.getElementById('dialout-dialog');

let role = null; // 'operator' | 'owner'
let secret = null;
let stream = null;
let lastSeq = null;
let stopped = true;
// rooms: key (room name or meeting uuid) -> {title, room, pin, locked, meeting, participants: Map tag -> p}
const rooms = new Map();

function authHeader() {
  return role === 'operator' ? 'Basic ' + btoa('admin:' + secret) : 'Bearer ' + secret;
}

// rpc calls a JSON-RPC function of the control plane.
let rpcID = 0;
async function rpc(method, ...params) {
  const res = await fetch('/api/v1/jsonrpc', {
    method: 'POST', headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: ++rpcID, method, params }), credentials: 'omit', cache: 'no-store',
  });
  if (!res.ok) {
    let e = {};
    try { e = (await res.json()).error || {}; } catch { /* not JSON */ }
    throw new ApiError(res.status, e.code, e.message || `JSON-RPC unavailable (HTTP ${res.status})`);
  }
  const body = await res.json();
  if (body.error) throw new ApiError(200, String(body.error.code), body.error.message);
  return body.result;
}

// ok checks a webconference function's [code, message, ...] reply.
function ok(reply, what) {
  if (!Array.isArray(reply) || (reply[0] !== 0 && reply[0] !== 200)) {
    throw new Error(`${what}: ${Array.isArray(reply) ? reply.slice(0, 2).join(' ') : 'bad reply'}`);
  }
  return reply;
}

document.querySelectorAll('input[name=role]').forEach((r) => r.addEventListener('change', () => {
  const owner = document.querySelector('input[name=role]:checked').value === 'owner';
  document.getElementById('secret-label').textContent = owner ? 'User token' : 'Master password';
}));

signin.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  role = document.querySelector('input[name=role]:checked').value;
  secret = secretInput.value;
  say('', { error: true });
  say('Signing in…');
  try {
    await loadAll();
  } catch (e) {
    role = secret = null;
    say('');
    say(e.status === 401 || /Wrong Master Password/i.test(e.message) ? 'Sign-in failed: wrong password or token.' : `Sign-in failed: ${e.message}`, { error: true });
    return;
  }
  secretInput.value = '';
  signin.hidden = true;
  board.hidden = false;
  document.getElementById('board-h').textContent = role === 'operator' ? 'Rooms' : 'My meetings';
  document.getElementById('create-label').textContent = role === 'operator' ? 'New room (number or name)' : 'New meeting (name)';
  say(role === 'operator' ? 'Signed in as operator.' : 'Signed in as meeting owner.');
  stopped = false;
  openStream();
  document.getElementById('board-h').focus?.();
});

document.getElementById('signout').addEventListener('click', () => {
  stopped = true;
  if (stream) stream.close();
  role = secret = null;
  rooms.clear();
  items.replaceChildren();
  board.hidden = true;
  signin.hidden = false;
  say('Signed out.');
  secretInput.focus();
});

// ---------------------------------------------------------------------
// Loading state from the API.

async function loadAll() {
  rooms.clear();
  if (role === 'operator') {
    const reply = await rpc('listRooms', secret);
    if (reply[0] !== 200) throw new Error(String(reply[1]));
    for (const name of reply[1]) await loadRoom(name);
  } else {
    const list = await rest('GET', '/api/v1/users/me/meetings', { auth: authHeader() });
    for (const m of list.items) await loadMeeting(m);
  }
  render();
}

async function loadRoom(name) {
  const pw = ok(await rpc('getRoomPassword', secret, name), 'getRoomPassword');
  const r = ok(await rpc('roomParticipants', name, pw[1]), 'roomParticipants')[2];
  const participants = new Map();
  for (const p of r.participants) {
    if (p.status >= 4) continue; // disconnecting or finished
    participants.set(p.call_tag, { name: p.number || p.call_tag, muted: p.muted, talking: p.talking, lobby: false });
  }
  rooms.set(name, { title: `Room ${name}`, room: name, pin: pw[1], locked: r.locked, participants });
}

async function loadMeeting(m) {
  const list = await rest('GET', `/api/v1/users/me/meetings/${m.uuid}/participants`, { auth: authHeader() });
  const participants = new Map();
  for (const p of list.items) {
    participants.set(p.call_tag, { name: p.caller_id_name || p.caller_id_number || p.call_tag, muted: p.muted, talking: p.talking, lobby: p.lobby });
  }
  const old = rooms.get(m.uuid);
  rooms.set(m.uuid, { title: m.name, room: m.exten, meeting: m, locked: old ? old.locked : null, participants });
}

// refresh reloads one room or meeting after an event about it.
const pending = new Map();
function refresh(key) {
  if (pending.has(key)) return;
  pending.set(key, setTimeout(async () => {
    pending.delete(key);
    try {
      if (role === 'operator') await loadRoom(key);
      else {
        const m = await rest('GET', `/api/v1/users/me/meetings/${key}`, { auth: authHeader() });
        await loadMeeting(m);
      }
    } catch (e) {
      if (e.status === 404 || /Room does not exist/.test(e.message)) rooms.delete(key);
    }
    render();
  }, 50));
}

// ---------------------------------------------------------------------
// The event stream.

async function openStream() {
  if (stopped) return;
  let t;
  try {
    t = await rest('POST', '/api/v1/events/tickets', { auth: authHeader() });
  } catch {
    setTimeout(openStream, 3000);
    return;
  }
  let q = `?ticket=${encodeURIComponent(t.ticket)}`;
  if (lastSeq !== null) q += `&since=${lastSeq}`;
  stream = new WebSocket(wsURL('/api/v1/events' + q));
  stream.addEventListener('open', () => { document.getElementById('items').dataset.live = 'yes'; });
  stream.addEventListener('message', (e) => {
    let ev;
    try { ev = JSON.parse(e.data); } catch { return; }
    lastSeq = ev.seq;
    onEvent(ev);
  });
  stream.addEventListener('close', () => {
    document.getElementById('items').dataset.live = 'no';
    if (stopped) return;
    // A resume the ring no longer holds fails: start over from the state.
    lastSeq = null;
    loadAll().catch(() => {}).finally(() => setTimeout(openStream, 1000));
  });
}

function keyOf(d) {
  if (role === 'operator') return d.room;
  if (d.meeting_uuid) return d.meeting_uuid;
  for (const [k, r] of rooms) if (r.room === d.room) return k;
  return null;
}

function onEvent(ev) {
  const d = ev.data || {};
  if (ev.name === 'room_created' && role === 'operator') { refresh(d.room); return; }
  if (ev.name === 'room_deleted' && role === 'operator') { rooms.delete(d.room); render(); return; }
  if (!ev.name.startsWith('room_')) return;
  const key = keyOf(d);
  const r = key && rooms.get(key);
  if (!r) { if (key && role === 'operator') refresh(key); return; }
  const p = r.participants.get(d.call_id);
  switch (ev.name) {
    case 'room_participant_talk_started': case 'room_participant_talk_stopped':
      if (p) { p.talking = ev.name.endsWith('started'); render(); }
      return;
    case 'room_participant_muted': case 'room_participant_unmuted':
      if (p) { p.muted = ev.name.endsWith('_muted'); render(); }
      return;
    case 'room_locked': case 'room_unlocked':
      r.locked = ev.name === 'room_locked';
      render();
      return;
  }
  refresh(key);
}

// ---------------------------------------------------------------------
// Drawing.

function render() {
  const cards = [...rooms.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([key, r]) => card(key, r));
  items.replaceChildren(...cards);
  if (!cards.length) items.append(el('p', {}, role === 'operator' ? 'No rooms.' : 'No meetings.'));
}

function card(key, r) {
  const hid = `card-${key.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  const people = [...r.participants.entries()];
  const act = (label, f, attrs = {}) => el('button', { type: 'button', class: 'secondary', ...attrs, onclick: () => run(label, f) }, label);
  const op = role === 'operator';
  const controls = el('div', { class: 'controls' },
    act('Mute all', () => op ? rpc('roomMuteAll', r.room, r.pin).then((x) => ok(x, 'roomMuteAll')) : owner('PUT', `${key}/participants/mute`), { class: 'secondary muteall' }),
    act('Unmute all', () => op ? rpc('roomUnmuteAll', r.room, r.pin).then((x) => ok(x, 'roomUnmuteAll')) : owner('PUT', `${key}/participants/unmute`), { class: 'secondary unmuteall' }),
    r.locked !== true ? act('Lock', () => op ? rpc('roomLock', r.room, r.pin).then((x) => ok(x, 'roomLock')) : owner('PUT', `${key}/lock`), { class: 'secondary lock' }) : null,
    r.locked !== false ? act('Unlock', () => op ? rpc('roomUnlock', r.room, r.pin).then((x) => ok(x, 'roomUnlock')) : owner('PUT', `${key}/unlock`), { class: 'secondary unlock' }) : null,
    op ? act('Dial out', () => dialOut(r), { class: 'secondary dialout' }) : null,
    !op && r.meeting.url ? act('Copy link', () => copy(r.meeting.url), { class: 'secondary copy' }) : null,
    act(op ? 'Delete room' : 'Delete meeting', () => confirm(`Delete ${r.title}?`) && (op
      ? rpc('roomDelete', r.room, r.pin).then((x) => ok(x, 'roomDelete'))
      : rest('DELETE', `/api/v1/users/me/meetings/${key}`, { auth: authHeader() })), { class: 'danger delete' }),
  );
  const list = el('ul', { class: 'people', 'aria-label': `Participants of ${r.title}` }, ...people.map(([tag, p]) => el('li', {
    class: 'person', 'data-tag': tag, 'data-muted': String(!!p.muted), 'data-talking': String(!!p.talking), 'data-lobby': String(!!p.lobby),
  },
  el('span', { class: 'who' }, p.name),
  p.talking ? el('span', { class: 'badge talking' }, 'talking') : null,
  p.muted ? el('span', { class: 'badge muted' }, 'muted') : null,
  p.lobby ? el('span', { class: 'badge lobby' }, 'in the lobby') : null,
  p.lobby && !op ? el('button', { type: 'button', class: 'admit', 'aria-label': `Admit ${p.name}`, onclick: () => run('Admit', () => rest('POST', `/api/v1/meetings/${key}/webinar/lobby/admit/${encodeURIComponent(tag)}`, { auth: authHeader() })) }, 'Admit') : null,
  p.lobby ? null : el('button', { type: 'button', class: 'secondary mute', 'aria-label': `${p.muted ? 'Unmute' : 'Mute'} ${p.name}`,
    onclick: () => run(p.muted ? 'Unmute' : 'Mute', () => op
      ? rpc(p.muted ? 'unmute' : 'mute', r.room, r.pin, tag).then((x) => ok(x, 'mute'))
      : owner('PUT', `${key}/participants/${encodeURIComponent(tag)}/${p.muted ? 'unmute' : 'mute'}`)) }, p.muted ? 'Unmute' : 'Mute'),
  el('button', { type: 'button', class: 'danger kick', 'aria-label': `Remove ${p.name}`,
    onclick: () => run('Remove', () => op ? rpc('kickout', r.room, r.pin, tag).then((x) => ok(x, 'kickout')) : owner('DELETE', `${key}/participants/${encodeURIComponent(tag)}`)) }, 'Remove'))));
  const facts = [];
  if (op) facts.push(`Admin PIN ${r.pin}`);
  else {
    facts.push(`Number ${r.meeting.exten}`);
    if (r.meeting.url) facts.push(el('a', { href: r.meeting.url }, r.meeting.url));
  }
  if (r.locked) facts.push('locked');
  return el('section', { class: 'card', 'data-room': r.room, 'data-key': key, 'data-locked': String(r.locked), 'aria-labelledby': hid },
    el('h3', { id: hid }, r.title),
    el('p', { class: 'hint' }, ...facts.flatMap((f, i) => (i ? [' · ', f] : [f]))),
    controls,
    people.length ? list : el('p', { class: 'hint' }, 'Nobody is in.'));
}

function owner(method, path) {
  return rest(method, `/api/v1/users/me/meetings/${path}`, { auth: authHeader() });
}

async function run(label, f) {
  say('', { error: true });
  try {
    const msg = await f();
    say(typeof msg === 'string' ? msg : `${label}: done.`);
  } catch (e) {
    say(`${label} failed: ${e.message}`, { error: true });
  }
}

async function copy(text) {
  await navigator.clipboard.writeText(text);
}

function dialOut(r) {
  return new Promise((resolve, reject) => {
    const f = document.getElementById('dialout-form');
    const done = async (ev) => {
      ev.preventDefault();
      f.removeEventListener('submit', done);
      dialog.close();
      const v = (id) => document.getElementById(id).value;
      try {
        resolve(ok(await rpc('dialout', r.room, r.pin, v('do-callee'), v('do-from'), v('do-domain'), v('do-user'), v('do-pass')), 'dialout'));
      } catch (e) { reject(e); }
    };
    f.addEventListener('submit', done);
    document.getElementById('dialout-cancel').onclick = () => { f.removeEventListener('submit', done); dialog.close(); resolve(); };
    dialog.showModal();
  });
}

createForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const name = document.getElementById('create-name').value.trim();
  run('Create', async () => {
    if (role === 'operator') {
      const x = ok(await rpc('roomCreate', name), 'roomCreate');
      await loadRoom(name);
      document.getElementById('create-name').value = '';
      render();
      return `Room ${name} created; its admin PIN is ${x[2]}.`;
    }
    const m = await rest('POST', '/api/v1/users/me/meetings', { auth: authHeader(), body: { name } });
    await loadMeeting(m);
    document.getElementById('create-name').value = '';
    render();
    return `Meeting ${m.name} created.`;
  });
});

signin.hidden = false;
secretInput.focus();
