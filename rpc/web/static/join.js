// The join page: pre-join (name, microphone), the authorization request
// flow for meetings that need it, then the signalling WebSocket of
// /api/v1/rooms/{room}/webrtc (see the README's Meetings section): lobby,
// joined, the participants and their events, mute, leave.
import { rest, wsURL, el, say } from './api.js';

// A sentence for every refusal and end the server may give.
export const reasons = {
  'meeting-not-started': 'This meeting has not started yet. Come back at its start time.',
  'meeting-ended': 'This meeting has ended.',
  'meeting-full': 'This meeting is full: no seat is left.',
  'room-locked': 'The room is locked: nobody new may join right now.',
  'room-not-found': 'This room does not exist (any more).',
  'too-many-rooms': 'Too many rooms were opened from your network. Try again later.',
  'unavailable': 'The server cannot take you in right now. Try again in a moment.',
  'kicked': 'You were removed from the meeting.',
  'left': 'You left the meeting.',
  'media-lost': 'The audio connection was lost.',
  'alone': 'You were alone in the meeting for too long, so the call ended.',
  'shutdown': 'The server is shutting down. Try again in a moment.',
  'unauthorized': 'You may not join this meeting: the link or your access is not valid.',
  'not-found': 'This meeting or room does not exist.',
  'forbidden-origin': 'This page may not connect from here.',
  'rejected': 'The host declined your request to join.',
  'no-microphone': 'The microphone could not be used. Allow it in the browser and try again.',
  'connection': 'The connection to the server was lost.',
};

export function reasonText(code, message) {
  return reasons[code] || (message ? `The server refused: ${message}` : `The server refused (${code}).`);
}

const main = document.getElementById('join');
const room = main.dataset.room;
const meetingUUID = main.dataset.meeting;
const form = document.getElementById('join-form');
const nameInput = document.getElementById('name');
const joinButton = document.getElementById('join-button');
const callSection = document.getElementById('call');
const muteButton = document.getElementById('mute');
const leaveButton = document.getElementById('leave');
const peopleList = document.getElementById('people');
const audio = document.getElementById('remote-audio');

let guest = null; // the guest view of the meeting
let ws = null;
let pc = null;
let mic = null;
let me = null; // our call tag once joined
let ended = false;
const people = new Map(); // call tag -> {name, muted, talking, lobby}

async function init() {
  if (!room) return;
  form.hidden = false;
  const saved = sessionStorage.getItem('webconf.name');
  if (saved) nameInput.value = saved;
  if (meetingUUID) {
    try {
      guest = await rest('GET', `/api/v1/guests/me/meetings/${encodeURIComponent(meetingUUID)}`);
      document.getElementById('title').textContent = guest.name;
      document.title = `${guest.name} · webconf`;
    } catch (e) {
      fail(e.status === 404 ? 'not-found' : 'connection');
      form.hidden = true;
      return;
    }
  }
  form.addEventListener('submit', onJoin);
  nameInput.focus();
}

function fail(code, message) {
  say('');
  say(reasonText(code, message), { error: true });
}

async function onJoin(ev) {
  ev.preventDefault();
  const name = nameInput.value.trim();
  if (!name || name.length > 64 || /[\u0000-\u001f\u007f]/.test(name)) {
    say('Type a name of 1 to 64 characters.', { error: true });
    nameInput.focus();
    return;
  }
  sessionStorage.setItem('webconf.name', name);
  say('', { error: true });
  joinButton.disabled = true;
  nameInput.disabled = true;
  say('Asking for your microphone…');
  try {
    mic = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true }, video: false });
  } catch {
    fail('no-microphone');
    joinButton.disabled = false;
    nameInput.disabled = false;
    return;
  }
  let auth = null;
  if (guest) {
    auth = guest.guest_sip_authorization;
    if (guest.require_authorization) {
      auth = await askToJoin(name);
      if (!auth) {
        stopMic();
        return;
      }
    }
  }
  connect(name, auth);
}

// askToJoin runs the authorization request flow: the request, then a
// poll until the host accepts (the credentials) or rejects (null).
async function askToJoin(name) {
  say('Asking the host to let you in…');
  const guestUUID = crypto.randomUUID();
  const base = `/api/v1/guests/${guestUUID}/meetings/${encodeURIComponent(meetingUUID)}/authorizations`;
  let req;
  try {
    req = await rest('POST', base, { body: { guest_name: name } });
  } catch (e) {
    fail(e.code || 'connection', e.message);
    return null;
  }
  for (;;) {
    await new Promise((r) => setTimeout(r, 2000));
    let a;
    try {
      a = await rest('GET', `${base}/${encodeURIComponent(req.uuid)}`);
    } catch (e) {
      fail(e.status === 404 ? 'rejected' : 'connection', e.message);
      return null;
    }
    if (a.status === 'accepted' && a.guest_sip_authorization) return a.guest_sip_authorization;
    if (a.status === 'rejected') {
      fail('rejected');
      return null;
    }
  }
}

function connect(name, auth) {
  say('Connecting…');
  ws = new WebSocket(wsURL(`/api/v1/rooms/${encodeURIComponent(room)}/webrtc`));
  ws.addEventListener('open', () => send({ type: 'join', name, auth: auth || null, token: null }));
  ws.addEventListener('message', (e) => {
    let m;
    try { m = JSON.parse(e.data); } catch { return; }
    onMessage(m).catch((err) => { console.error(err); finish('connection'); });
  });
  ws.addEventListener('close', () => { if (!ended) finish('connection'); });
}

function send(m) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(m));
}

async function onMessage(m) {
  switch (m.type) {
    case 'ready':
      if (m.name) document.getElementById('title').textContent = m.name;
      await offer(m.ice_servers || []);
      break;
    case 'answer':
      await pc.setRemoteDescription({ type: 'answer', sdp: m.sdp });
      break;
    case 'candidate':
      if (pc && m.candidate) await pc.addIceCandidate(m.candidate);
      break;
    case 'lobby':
      say('Waiting for the host to let you in.');
      break;
    case 'joined':
      me = m.call_id;
      form.hidden = true;
      document.getElementById('prejoin').hidden = true;
      callSection.hidden = false;
      say('You are in the meeting.');
      muteButton.focus();
      break;
    case 'participants':
      people.clear();
      for (const p of m.participants || []) {
        people.set(p.call_tag || p.id, { name: p.caller_id_name || p.caller_id_number || 'Guest', muted: !!p.muted, talking: !!p.talking, lobby: !!p.lobby });
      }
      render();
      break;
    case 'event':
      onEvent(m.event || {});
      break;
    case 'muted':
      setMuted(!!m.muted);
      break;
    case 'error':
      if (m.code === 'bad-message') { console.warn('signalling:', m.message); break; }
      finish(m.code, m.message);
      break;
    case 'bye':
      finish(m.reason);
      break;
  }
}

async function offer(iceServers) {
  pc = new RTCPeerConnection({ iceServers });
  for (const t of mic.getAudioTracks()) pc.addTrack(t, mic);
  pc.addEventListener('track', (e) => {
    audio.srcObject = e.streams[0] || new MediaStream([e.track]);
    audio.play().catch(() => say('Press any key or tap to hear the meeting.'));
  });
  pc.addEventListener('connectionstatechange', () => {
    if (pc && pc.connectionState === 'failed') finish('media-lost');
  });
  await pc.setLocalDescription(await pc.createOffer());
  // Non-trickle: the offer carries every host candidate.
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    const t = setTimeout(resolve, 3000);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); }
    });
  });
  send({ type: 'offer', sdp: pc.localDescription.sdp });
}

// nameOf is what to call a participant of an event: its caller id name,
// else the name or the user of its number ("Ann" <sip:ann@host>).
export function nameOf(d) {
  if (d.caller_id_name) return d.caller_id_name;
  const n = d.number || '';
  const i = n.lastIndexOf('<');
  if (i > 0) {
    const name = n.slice(0, i).trim().replace(/^"(.*)"$/, '$1');
    if (name) return name;
  }
  const user = /^<?[a-z]+:([^@>]+)@/i.exec(i >= 0 ? n.slice(i) : n);
  return user ? user[1] : (d.caller_id_number || 'Guest');
}

function onEvent(ev) {
  const d = ev.data || {};
  const tag = d.call_id;
  if (!tag) return;
  const p = people.get(tag) || { name: nameOf(d), muted: false, talking: false, lobby: false };
  switch (ev.name) {
    case 'room_participant_joined': p.lobby = false; people.set(tag, p); break;
    case 'room_participant_lobby_joined': p.lobby = true; people.set(tag, p); break;
    // Admitted or gone: an admitted one comes back with room_participant_joined.
    case 'room_participant_lobby_left': people.delete(tag); break;
    case 'room_participant_left': people.delete(tag); break;
    case 'room_participant_muted': p.muted = true; people.set(tag, p); break;
    case 'room_participant_unmuted': p.muted = false; people.set(tag, p); break;
    case 'room_participant_talk_started': p.talking = true; people.set(tag, p); break;
    case 'room_participant_talk_stopped': p.talking = false; people.set(tag, p); break;
    default: return;
  }
  render();
}

function render() {
  peopleList.replaceChildren(...[...people.entries()].map(([tag, p]) => el('li', {
    class: 'person', 'data-tag': tag, 'data-me': String(tag === me), 'data-muted': String(p.muted), 'data-talking': String(p.talking), 'data-lobby': String(p.lobby),
  },
    el('span', { class: 'who' }, p.name, tag === me ? ' (you)' : ''),
    p.talking ? el('span', { class: 'badge talking' }, 'talking') : null,
    p.muted ? el('span', { class: 'badge muted' }, 'muted') : null,
    p.lobby ? el('span', { class: 'badge lobby' }, 'waiting') : null)));
}

function setMuted(v) {
  muteButton.setAttribute('aria-pressed', String(v));
  muteButton.textContent = v ? 'Unmute' : 'Mute';
  say(v ? 'You are muted.' : 'You are not muted.');
}

muteButton.addEventListener('click', () => {
  send({ type: 'mute', muted: muteButton.getAttribute('aria-pressed') !== 'true' });
});

leaveButton.addEventListener('click', () => {
  send({ type: 'leave' });
  finish('left');
});

document.addEventListener('keydown', () => { if (audio.srcObject && audio.paused) audio.play().catch(() => {}); });

function stopMic() {
  if (mic) for (const t of mic.getTracks()) t.stop();
  mic = null;
}

function finish(code, message) {
  if (ended) return;
  ended = true;
  if (pc) pc.close();
  pc = null;
  if (ws) ws.close();
  stopMic();
  audio.srcObject = null;
  callSection.hidden = true;
  if (code === 'left') {
    say(reasons.left);
    say('', { error: true });
  } else {
    fail(code, message);
  }
  main.dataset.ended = code || '';
}

init();
