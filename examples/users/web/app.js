// The users page: lists the users, adds and deletes them, and follows the WebSocket /ws/events so every
// open tab shows every change at once. User-provided text only ever goes into the page as textContent.

const LIMIT = 500; // the page shows the first 500 users by id
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 15000;

const form = document.getElementById('create-form');
const nameInput = document.getElementById('name');
const emailInput = document.getElementById('email');
const submitButton = form.querySelector('button[type="submit"]');
const errorBox = document.getElementById('error');
const statusText = document.getElementById('status');
const connection = statusText.closest('.connection');
const tbody = document.getElementById('users');
const summary = document.getElementById('summary');
const emptyNote = document.getElementById('empty');
const inputs = { name: nameInput, email: emailInput };
const labels = { name: 'Name', email: 'Email' };

const rows = new Map(); // id -> <tr>, kept in the table in id order
let total = 0; // users on the server, as last known
let loaded = false;
// Ids deleted since the last full load: a POST answer that arrives after the user's deletion must not
// bring the row back. Events are the server's word and override this.
const deleted = new Set();

// ---- HTTP

class ApiError extends Error {
  constructor(message, field, status) {
    super(message);
    this.field = field;
    this.status = status;
  }
}

/** Sends a JSON request; the parsed answer (null for an empty one), or throws an ApiError. */
async function request(method, path, body) {
  const init = { method, cache: 'no-store', headers: { Accept: 'application/json' } };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let response;
  let text;
  try {
    response = await fetch(path, init);
    text = await response.text();
  } catch {
    throw new ApiError('Cannot reach the server.', undefined, 0);
  }
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const message = typeof data?.error === 'string' ? data.error : `${response.status} ${response.statusText}`.trim();
    throw new ApiError(message, typeof data?.field === 'string' ? data.field : undefined, response.status);
  }
  return data;
}

// ---- the table

/** "2026-11-25T01:02:03.123456Z" -> "2026-11-25 01:02:03" (UTC, as the column header says). */
function formatTime(value) {
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(String(value ?? ''));
  return match ? `${match[1]} ${match[2]}` : String(value ?? '');
}

function newRow(id) {
  const tr = document.createElement('tr');
  tr.dataset.id = String(id);
  for (const name of ['num', 'name', 'email', 'created', 'actions']) {
    const td = document.createElement('td');
    td.className = name;
    tr.append(td);
  }
  tr.cells[0].textContent = String(id);
  tr.cells[3].append(document.createElement('time'));
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'delete';
  button.textContent = 'Delete';
  tr.cells[4].append(button);
  return tr;
}

/** Writes a user's values into its row (in place, so a focused button keeps its focus). */
function fillRow(tr, user) {
  tr.cells[1].textContent = user.name;
  tr.cells[2].textContent = user.email;
  const time = tr.cells[3].firstChild;
  time.dateTime = user.created_at;
  time.title = user.created_at;
  time.textContent = formatTime(user.created_at);
  tr.cells[4].firstChild.setAttribute('aria-label', `Delete ${user.name}`);
}

function lastId() {
  const last = tbody.lastElementChild;
  return last ? Number(last.dataset.id) : -Infinity;
}

let reloadTimer = 0;
/** Reloads soon; for changes past the users the page shows, which only a reload can count. */
function reloadSoon() {
  clearTimeout(reloadTimer);
  reloadTimer = setTimeout(reload, 300);
}

/** Shows a user: replaces its row, or inserts one in id order. Safe to repeat. */
function upsert(user) {
  const id = Number(user.id);
  const existing = rows.get(id);
  if (existing) {
    fillRow(existing, user);
    return;
  }
  if (rows.size >= LIMIT && id > lastId()) {
    reloadSoon(); // past the first LIMIT: only the count changes
    return;
  }
  const tr = newRow(id);
  fillRow(tr, user);
  let next = null;
  for (const row of tbody.rows) {
    if (Number(row.dataset.id) > id) {
      next = row;
      break;
    }
  }
  tbody.insertBefore(tr, next);
  rows.set(id, tr);
  total += 1;
  if (rows.size > LIMIT) {
    const dropped = tbody.lastElementChild;
    rows.delete(Number(dropped.dataset.id));
    dropped.remove();
  }
}

/** Removes a user's row if it is shown. Safe to repeat. */
function remove(id) {
  deleted.add(id);
  const tr = rows.get(id);
  if (!tr) {
    if (rows.size >= LIMIT && id > lastId()) reloadSoon();
    return;
  }
  const hadFocus = tr.contains(document.activeElement);
  const neighbour = tr.nextElementSibling ?? tr.previousElementSibling;
  tr.remove();
  rows.delete(id);
  total = Math.max(0, total - 1);
  if (total > rows.size) reloadSoon(); // the next user after the first LIMIT moves up
  if (hadFocus) (neighbour?.querySelector('button.delete') ?? nameInput).focus();
}

function showAll(users, count) {
  rows.clear();
  deleted.clear();
  tbody.replaceChildren();
  for (const user of users) {
    const tr = newRow(Number(user.id));
    fillRow(tr, user);
    tbody.append(tr);
    rows.set(Number(user.id), tr);
  }
  total = Number.isFinite(count) ? count : users.length;
  loaded = true;
}

function updateSummary() {
  if (!loaded) return;
  summary.textContent = `showing ${rows.size} of ${total}`;
  emptyNote.hidden = rows.size > 0;
}

// ---- loading, with the events that arrive meanwhile held back

let pending = null; // events received while a load is under way, applied after it
let loadGeneration = 0;

async function reload() {
  clearTimeout(reloadTimer);
  const generation = ++loadGeneration;
  pending = [];
  try {
    const page = await request('GET', `/users?limit=${LIMIT}&offset=0`);
    if (generation !== loadGeneration) return; // a newer load took over
    showAll(Array.isArray(page?.users) ? page.users : [], page?.total);
  } catch (error) {
    if (generation !== loadGeneration) return;
    summary.textContent = `Could not load the users: ${error.message}`;
  }
  const queued = pending;
  pending = null;
  for (const event of queued) apply(event);
  updateSummary();
}

function apply(event) {
  const user = event?.user;
  if (!user || user.id === undefined) return;
  const id = Number(user.id);
  switch (event.type) {
    case 'user_created':
    case 'user_updated':
      deleted.delete(id);
      upsert(user);
      break;
    case 'user_deleted':
      remove(id);
      break;
    default:
      return;
  }
  updateSummary();
}

// ---- the live connection

let retryDelay = RETRY_MIN_MS;
let retryTimer = 0;
let socket = null;

function setStatus(state, text) {
  connection.dataset.state = state;
  statusText.textContent = text;
}

function connect() {
  clearTimeout(retryTimer);
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws/events`);
  socket = ws;
  let openedAt = 0;
  ws.addEventListener('open', () => {
    openedAt = Date.now();
    setStatus('live', 'live');
    reload(); // events sent while we were away are lost: start again from the list
  });
  ws.addEventListener('message', (message) => {
    if (typeof message.data !== 'string') return;
    let event;
    try {
      event = JSON.parse(message.data);
    } catch {
      return;
    }
    if (pending) pending.push(event);
    else apply(event);
  });
  ws.addEventListener('close', () => {
    if (socket !== ws) return;
    socket = null;
    if (openedAt && Date.now() - openedAt > 5000) retryDelay = RETRY_MIN_MS; // it had been working
    setStatus('reconnecting', 'reconnecting…');
    const delay = retryDelay * (0.75 + Math.random() / 2);
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
    retryTimer = setTimeout(connect, delay);
  });
}

window.addEventListener('online', () => {
  if (!socket) {
    retryDelay = RETRY_MIN_MS;
    connect();
  }
});

// ---- the form and the delete buttons

function clearError() {
  errorBox.hidden = true;
  errorBox.textContent = '';
  for (const input of Object.values(inputs)) input.removeAttribute('aria-invalid');
}

function showError(error) {
  const input = Object.hasOwn(inputs, error.field ?? '') ? inputs[error.field] : null;
  const label = error.field ? (labels[error.field] ?? error.field) : '';
  errorBox.textContent = label ? `${label}: ${error.message}` : error.message;
  errorBox.hidden = false;
  if (input) {
    input.setAttribute('aria-invalid', 'true');
    input.focus();
  }
}

for (const input of Object.values(inputs)) {
  input.setAttribute('aria-describedby', 'error');
  input.addEventListener('input', () => input.removeAttribute('aria-invalid'));
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  clearError();
  submitButton.disabled = true;
  try {
    const sent = { name: nameInput.value, email: emailInput.value };
    const user = await request('POST', '/users', sent);
    if (user && user.id !== undefined && !deleted.has(Number(user.id))) upsert(user);
    updateSummary();
    if (nameInput.value === sent.name && emailInput.value === sent.email) {
      form.reset(); // unless the user already typed the next one
      nameInput.focus();
    }
  } catch (error) {
    showError(error);
  } finally {
    submitButton.disabled = false;
  }
});

tbody.addEventListener('click', async (event) => {
  const button = event.target.closest('button.delete');
  if (!button) return;
  const id = Number(button.closest('tr').dataset.id);
  button.disabled = true;
  try {
    await request('DELETE', `/users/${id}`);
    remove(id);
  } catch (error) {
    if (error.status === 404) {
      remove(id); // someone else deleted it first
    } else {
      button.disabled = false;
      showError(error);
    }
  }
  updateSummary();
});

reload();
connect();
