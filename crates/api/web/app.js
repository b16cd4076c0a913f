// Starling web app: plain ES module, no build step. Talks to the node's /api/v1 only; the
// node holds the keys and signs (see docs/operations.md, "Accounts on the node").

import { govViews } from './gov.js';

const MAX_GRAPHEMES = 300;
const state = { me: null, csrf: null, label: null, ws: null, unread: 0, route: null, renders: 0 };

// ---------- DOM helpers (text only: nothing from the network becomes HTML) ----------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (v === true) el.setAttribute(k, '');
    else el.setAttribute(k, v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $ = (sel) => document.querySelector(sel);
const main = () => $('#main');

function toast(msg) {
  const t = $('#toast');
  t.textContent = msg;
  t.classList.add('show');
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove('show'), 3500);
}

// ---------- API ----------
class ApiError extends Error {
  constructor(status, code, message) { super(message || code); this.status = status; this.code = code; }
}
async function api(method, path, body) {
  const opts = { method, headers: {}, credentials: 'same-origin' };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  if (method !== 'GET' && state.csrf) opts.headers['X-CSRF-Token'] = state.csrf;
  const r = await fetch('/api/v1' + path, opts);
  const j = await r.json().catch(() => ({}));
  if (!r.ok) throw new ApiError(r.status, j.error?.code, j.error?.message);
  return j;
}
const viewerQ = () => (state.me ? `viewer=${encodeURIComponent(state.me)}` : '');
async function act(action) {
  try {
    return await api('POST', '/me/actions', { action });
  } catch (e) {
    toast(e.message);
    throw e;
  }
}

// ---------- text ----------
const segmenter = typeof Intl !== 'undefined' && Intl.Segmenter ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;
function graphemes(s) { return segmenter ? [...segmenter.segment(s)].length : [...s].length; }
function short(key) { return key ? key.replace(/^(ed25519|secp256k1):/, '').slice(0, 8) + '…' : ''; }
function ago(ms) {
  if (!ms) return '';
  const s = Math.max(0, (Date.now() - ms) / 1000);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return new Date(ms).toLocaleDateString();
}
// Hashtags and mentions become links; everything else stays text.
function richText(text) {
  const out = [];
  const re = /([#@][\p{L}\p{N}_.-]+)/gu;
  let last = 0;
  for (const m of text.matchAll(re)) {
    out.push(text.slice(last, m.index));
    const word = m[0].replace(/[.-]+$/, '');
    const rest = m[0].slice(word.length);
    if (word.startsWith('#')) out.push(h('a', { href: `#/tag/${encodeURIComponent(word.slice(1))}` }, word));
    else out.push(h('a', { href: `#/handle/${encodeURIComponent(word.slice(1))}` }, word));
    out.push(rest);
    last = m.index + m[0].length;
  }
  out.push(text.slice(last));
  return out;
}
function displayName(who) { return who.display_name || (who.handle ? who.handle : short(who.account)); }
function avatar(who, big) {
  const letter = (displayName(who) || '?').trim().charAt(0).toUpperCase() || '?';
  return h('div', { class: big ? 'avatar big' : 'avatar', 'aria-hidden': 'true' }, letter);
}
const postHref = (p) => `#/post/${encodeURIComponent(p.author.account || p.author)}/${p.seq}`;
const profileHref = (key) => `#/profile/${encodeURIComponent(key)}`;

// ---------- compose ----------
function composer({ placeholder = "What's happening?", reply_to = null, quote_of = null, edit = null, initial = '', onSent } = {}) {
  const ta = h('textarea', { 'aria-label': placeholder, placeholder, maxlength: 4096, name: 'text' });
  ta.value = initial;
  const counter = h('span', { class: 'counter small', 'aria-live': 'polite' });
  const fee = h('span', { class: 'fee small muted' });
  const send = h('button', { class: 'primary', type: 'submit' }, edit ? 'Save' : reply_to ? 'Reply' : 'Post');
  let feeTimer = null;
  const action = () => edit
    ? { type: 'edit_post', post: edit, text: ta.value }
    : { type: 'post', text: ta.value, reply_to: reply_to || undefined, quote_of: quote_of || undefined };
  function update() {
    const n = graphemes(ta.value);
    counter.textContent = `${n} / ${MAX_GRAPHEMES}`;
    counter.classList.toggle('over', n > MAX_GRAPHEMES);
    send.disabled = n > MAX_GRAPHEMES || (n === 0 && !quote_of);
    clearTimeout(feeTimer);
    feeTimer = setTimeout(async () => {
      try {
        const f = await api('POST', '/me/fee', { action: action() });
        fee.textContent = `fee ${f.fee} (gas ${f.gas} × base fee ${f.base_fee})`;
        fee.dataset.fee = f.fee;
      } catch (e) { fee.textContent = ''; }
    }, 150);
  }
  ta.addEventListener('input', update);
  ta.addEventListener('keydown', (e) => { if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) form.requestSubmit(); });
  const form = h('form', { class: 'compose', onsubmit: async (e) => {
    e.preventDefault();
    send.disabled = true;
    try {
      const r = await act(action());
      ta.value = '';
      toast(edit ? 'Edit sent' : 'Sent');
      onSent && onSent(r);
    } catch (_) { /* toast shown */ }
    update();
  } }, quote_of ? h('div', { class: 'small muted' }, 'Quoting a post') : null, ta,
  h('div', { class: 'row' }, h('span', {}, counter, ' · ', fee), send));
  update();
  return form;
}

// ---------- posts ----------
function postCard(p, { by = null, kind = 'post', focus = false } = {}) {
  const a = p.author;
  const own = state.me && a.account === state.me;
  const id = { author: a.account, seq: p.seq };
  const card = h('article', { class: focus ? 'post focus' : 'post', 'data-post': `${a.account}/${p.seq}`, 'aria-label': `Post by ${displayName(a)}` });
  if (kind === 'repost' && by) card.append(h('div', { class: 'repost-line' }, `↻ ${displayName(by)} reposted`));
  const body = h('div');
  body.append(h('div', { class: 'meta' },
    h('a', { class: 'name', href: profileHref(a.account) }, displayName(a)),
    a.handle ? h('span', { class: 'muted' }, '@' + a.handle) : h('span', { class: 'muted' }, short(a.account)),
    h('a', { class: 'muted small', href: postHref(p), title: new Date(p.created_ms).toLocaleString() }, ago(p.created_ms)),
    p.edited ? h('button', { class: 'ghost small muted history-toggle', type: 'button', 'aria-expanded': 'false', onclick: (e) => toggleHistory(e.currentTarget, p, body) }, 'edited') : null));
  if (p.reply_to) body.append(h('div', { class: 'small muted' }, 'Replying to ', h('a', { href: postHref(p.reply_to) }, 'a post')));
  if (p.deleted) body.append(h('p', { class: 'text muted' }, 'This post was deleted.'));
  else body.append(h('p', { class: 'text' }, richText(p.text)));
  if (p.quote_of) {
    const q = h('a', { class: 'quote small', href: postHref(p.quote_of) }, 'Quoted post');
    loadQuote(q, p.quote_of);
    body.append(q);
  }
  if (!p.deleted) body.append(actionBar(p, id, own, body));
  card.append(avatar(a), body);
  return card;
}

async function loadQuote(el, ref) {
  try {
    const t = await api('GET', `/posts/${encodeURIComponent(ref.author)}/${ref.seq}/thread?limit=1`);
    el.textContent = '';
    el.append(h('strong', {}, displayName(t.post.author)), ' ', t.post.deleted ? 'deleted' : t.post.text);
  } catch (_) { /* stays a link */ }
}

function toggleHistory(btn, p, body) {
  const open = btn.getAttribute('aria-expanded') === 'true';
  btn.setAttribute('aria-expanded', String(!open));
  const existing = body.querySelector('.history');
  if (existing) { existing.remove(); return; }
  const list = h('div', { class: 'history', 'aria-label': 'Edit history' },
    h('div', { class: 'small muted' }, 'Earlier versions'),
    p.revisions.map((r) => h('p', { class: 'text small revision' }, r.text, ' ', h('span', { class: 'muted' }, `(${ago(r.at_ms)})`))));
  btn.closest('.meta').after(list);
}

function actionBar(p, id, own, body) {
  const c = p.counts;
  const like = h('button', { class: 'like', type: 'button', 'aria-pressed': String(!!p.liked), 'aria-label': p.liked ? 'Unlike' : 'Like' }, `♥ ${c.likes}`);
  like.addEventListener('click', async () => {
    const on = like.getAttribute('aria-pressed') !== 'true';
    await act({ type: on ? 'like' : 'unlike', post: id });
    c.likes += on ? 1 : -1;
    like.setAttribute('aria-pressed', String(on));
    like.setAttribute('aria-label', on ? 'Unlike' : 'Like');
    like.textContent = `♥ ${c.likes}`;
  });
  const repost = h('button', { class: 'repost', type: 'button', 'aria-pressed': String(!!p.reposted), 'aria-label': p.reposted ? 'Undo repost' : 'Repost' }, `↻ ${c.reposts}`);
  repost.addEventListener('click', async () => {
    const on = repost.getAttribute('aria-pressed') !== 'true';
    await act({ type: on ? 'repost' : 'unrepost', post: id });
    c.reposts += on ? 1 : -1;
    repost.setAttribute('aria-pressed', String(on));
    repost.setAttribute('aria-label', on ? 'Undo repost' : 'Repost');
    repost.textContent = `↻ ${c.reposts}`;
  });
  const reply = h('button', { type: 'button', 'aria-label': 'Reply', onclick: () => openInline(body, composer({ placeholder: 'Post your reply', reply_to: id, onSent: () => closeInline(body) })) }, `↩ ${c.replies}`);
  const quote = h('button', { type: 'button', 'aria-label': 'Quote', onclick: () => openInline(body, composer({ placeholder: 'Add a comment', quote_of: id, onSent: () => closeInline(body) })) }, `❝ ${c.quotes}`);
  const bar = h('div', { class: 'actions' }, reply, repost, like, quote);
  if (own) {
    bar.append(h('button', { type: 'button', 'aria-label': 'Edit', onclick: () => openInline(body, composer({ edit: id, initial: p.text, onSent: () => closeInline(body) })) }, 'Edit'));
    const del = h('button', { type: 'button', 'aria-label': 'Delete' }, 'Delete');
    del.addEventListener('click', () => {
      const yes = h('button', { class: 'danger', type: 'button' }, 'Delete for good');
      const no = h('button', { type: 'button', onclick: () => closeInline(body) }, 'Keep');
      yes.addEventListener('click', async () => { await act({ type: 'delete_post', post: id }); toast('Delete sent'); closeInline(body); });
      openInline(body, h('div', { class: 'row pad' }, 'Delete this post?', yes, no));
    });
    bar.append(del);
  }
  return bar;
}
function openInline(body, el) {
  closeInline(body);
  el.classList.add('inline');
  body.append(el);
  const f = el.querySelector('textarea, button');
  f && f.focus();
}
function closeInline(body) { body.querySelectorAll(':scope > .inline').forEach((x) => x.remove()); }

// A list that pages with a "More" button.
function pagedList(container, fetchPage, render, emptyText) {
  let cursor = null;
  const more = h('button', { class: 'more', type: 'button' }, 'More');
  async function load() {
    more.disabled = true;
    try {
      const page = await fetchPage(cursor);
      if (!cursor && page.items.length === 0) container.append(h('div', { class: 'empty' }, emptyText));
      for (const it of page.items) container.append(render(it));
      cursor = page.next;
      if (cursor) container.after(more); else more.remove();
    } catch (e) { container.append(h('div', { class: 'empty error' }, e.message)); }
    more.disabled = false;
  }
  more.addEventListener('click', load);
  return load();
}
const cq = (cursor) => (cursor ? `&cursor=${encodeURIComponent(cursor)}` : '');
const feedItem = (it) => postCard(it.post, { by: it.by, kind: it.kind });

// ---------- views ----------
const views = {};

views.login = async () => {
  const m = main();
  m.replaceChildren(h('h1', {}, 'Welcome to Starling'));
  const err = h('p', { class: 'error', role: 'alert' });
  let held = [];
  try { held = (await api('GET', '/keystore')).items; } catch (_) { /* none */ }
  const acct = h('input', { id: 'login-account', name: 'account', autocomplete: 'username', required: true });
  const pw = h('input', { id: 'login-password', name: 'password', type: 'password', autocomplete: 'current-password', required: true });
  const login = h('form', { class: 'pad', 'aria-label': 'Log in', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try { startSession(await api('POST', '/session', { account: acct.value.trim(), password: pw.value })); }
    catch (x) { err.textContent = x.message; }
  } }, h('h2', {}, 'Log in'),
  held.length ? h('div', {}, h('div', { class: 'small muted' }, 'Accounts on this node:'),
    h('div', { class: 'account-choice' }, held.map((a) => h('button', { type: 'button', onclick: () => { acct.value = a.label; pw.focus(); } }, a.label)))) : null,
  h('label', { for: 'login-account' }, 'Account name or key'), acct,
  h('label', { for: 'login-password' }, 'Password'), pw,
  h('div', { class: 'row' }, h('button', { class: 'primary', type: 'submit' }, 'Log in')));

  const name = h('input', { id: 'signup-name', name: 'username', autocomplete: 'username', required: true, pattern: '[A-Za-z][A-Za-z0-9_]{2,29}', title: '3 to 30 letters, digits and _, starting with a letter' });
  const dn = h('input', { id: 'signup-display', name: 'display_name', maxlength: 50 });
  const spw = h('input', { id: 'signup-password', name: 'new-password', type: 'password', autocomplete: 'new-password', minlength: 8, required: true });
  const signup = h('form', { class: 'pad', 'aria-label': 'Sign up', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    try {
      const r = await api('POST', '/keystore', { label: name.value.trim(), password: spw.value });
      startSession(r, { handle: name.value.trim(), display_name: dn.value.trim(), funded_by: r.funded_by });
    } catch (x) { err.textContent = x.message; }
  } }, h('h2', {}, 'New here? Sign up'),
  h('p', { class: 'small muted' }, 'Your node makes you a key pair and keeps it encrypted with your password. Nobody else holds it.'),
  h('label', { for: 'signup-name' }, 'Username (your @handle)'), name,
  h('label', { for: 'signup-display' }, 'Display name'), dn,
  h('label', { for: 'signup-password' }, 'Password (8 or more characters)'), spw,
  h('div', { class: 'row' }, h('button', { class: 'primary', type: 'submit' }, 'Sign up')));

  const secret = h('input', { id: 'import-secret', name: 'secret', autocomplete: 'off' });
  const backup = h('textarea', { id: 'import-backup', name: 'backup' });
  const ilabel = h('input', { id: 'import-label', name: 'label' });
  const ipw = h('input', { id: 'import-password', type: 'password', autocomplete: 'new-password' });
  const importForm = h('form', { class: 'pad', 'aria-label': 'Import an account', onsubmit: async (e) => {
    e.preventDefault();
    err.textContent = '';
    const body = backup.value.trim() ? { backup: backup.value.trim(), password: ipw.value } : { secret: secret.value.trim(), label: ilabel.value.trim(), password: ipw.value };
    try { startSession(await api('POST', '/keystore/import', body)); } catch (x) { err.textContent = x.message; }
  } }, h('details', {}, h('summary', {}, 'Import an existing account'),
    h('label', { for: 'import-backup' }, 'Backup file contents'), backup,
    h('p', { class: 'small muted' }, 'or'),
    h('label', { for: 'import-secret' }, 'Secret key (64 hex digits)'), secret,
    h('label', { for: 'import-label' }, 'Name for it on this node'), ilabel,
    h('label', { for: 'import-password' }, 'Password'), ipw,
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Import'))));
  m.append(err, login, signup, importForm);
  (held.length ? acct : name).focus();
};

async function startSession(r, setup) {
  state.me = r.account;
  state.csrf = r.csrf;
  state.label = r.label;
  $('#nav').hidden = false;
  connectStream();
  if (setup) finishSignup(setup);
  go('#/home');
}

// Navigates to `hash` (rendering even when it is already there).
function go(hash) {
  if (location.hash === hash) render(); else location.hash = hash;
}

// A new account exists once the node's funds land (SPEND of its own from a devnet's faucet,
// or the operator's sponsorship of its fees); then it claims its handle and profile.
async function finishSignup({ handle, display_name, funded_by }) {
  if (!funded_by) {
    toast('This node did not fund your account: it exists once someone sends you SPEND or sponsors your fees.');
    return;
  }
  toast(funded_by === 'sponsorship' ? 'Setting up your account: this node\'s operator pays your first fees…' : 'Setting up your account…');
  for (let i = 0; i < 120; i++) {
    try { await api('GET', `/accounts/${encodeURIComponent(state.me)}`); break; } catch (_) { await new Promise((res) => setTimeout(res, 500)); }
  }
  try {
    if (handle) await act({ type: 'register_handle', handle });
    await act({ type: 'set_profile', display_name: display_name || handle, bio: '' });
    toast('Your account is ready');
  } catch (_) { /* toast shown */ }
}

views.home = async () => {
  const m = main();
  const list = h('div', { id: 'timeline', 'aria-label': 'Home timeline' });
  m.replaceChildren(h('h1', {}, 'Home'), composer(), list);
  await pagedList(list, (c) => api('GET', `/accounts/${encodeURIComponent(state.me)}/home?limit=30${cq(c)}`), feedItem, 'Follow people to fill your timeline.');
};

async function profileView(key) {
  const m = main();
  m.replaceChildren(h('h1', {}, 'Profile'));
  let p;
  try { p = await api('GET', `/accounts/${encodeURIComponent(key)}/profile?${viewerQ()}`); } catch (e) { m.append(h('div', { class: 'empty error' }, e.message)); return; }
  const mine = key === state.me;
  const rel = p.relation || {};
  const buttons = h('div', { class: 'actions' });
  if (!mine && state.me) {
    const toggle = (label, on, onType, offType) => {
      const b = h('button', { type: 'button', 'aria-pressed': String(!!on), class: onType === 'follow' ? 'primary' : '' }, on ? label[1] : label[0]);
      b.addEventListener('click', async () => {
        const now = b.getAttribute('aria-pressed') !== 'true';
        await act({ type: now ? onType : offType, target: key });
        b.setAttribute('aria-pressed', String(now));
        b.textContent = now ? label[1] : label[0];
        toast('Sent');
      });
      return b;
    };
    buttons.append(toggle(['Follow', 'Unfollow'], rel.following, 'follow', 'unfollow'),
      toggle(['Mute', 'Unmute'], rel.muting, 'mute', 'unmute'),
      toggle(['Block', 'Unblock'], rel.blocking, 'block', 'unblock'));
  }
  m.append(h('section', { class: 'profile-head', 'aria-label': 'About' },
    h('div', { class: 'row' }, avatar(p, true), buttons),
    h('h2', { class: 'profile-name' }, displayName(p)),
    h('div', { class: 'muted' }, p.handle ? '@' + p.handle : '', ' ', h('span', { class: 'small' }, p.account)),
    p.bio ? h('p', {}, richText(p.bio)) : null,
    rel.followed_by ? h('div', { class: 'small muted' }, 'Follows you') : null,
    h('div', { class: 'counts' }, h('span', {}, h('strong', {}, p.posts), ' posts'),
      h('span', {}, h('strong', { class: 'following-count' }, p.following), ' following'),
      h('span', {}, h('strong', { class: 'followers-count' }, p.followers), ' followers'))));
  const tabs = h('div', { class: 'tabs', role: 'tablist' });
  const body = h('div', { role: 'tabpanel' });
  const show = (name) => {
    tabs.querySelectorAll('button').forEach((b) => b.setAttribute('aria-selected', String(b.dataset.tab === name)));
    body.replaceChildren();
    m.querySelectorAll('.more').forEach((x) => x.remove());
    if (name === 'posts') pagedList(body, (c) => api('GET', `/accounts/${encodeURIComponent(key)}/feed?${viewerQ()}${cq(c)}`), feedItem, 'No posts yet.');
    else pagedList(body, (c) => api('GET', `/accounts/${encodeURIComponent(key)}/${name}?limit=30${cq(c)}`), personRow, 'Nobody yet.');
  };
  for (const [name, label] of [['posts', 'Posts'], ['following', 'Following'], ['followers', 'Followers']]) {
    tabs.append(h('button', { type: 'button', role: 'tab', 'data-tab': name, onclick: () => show(name) }, label));
  }
  m.append(tabs, body);
  show('posts');
}

function personRow(a) {
  return h('div', { class: 'person' }, avatar(a),
    h('div', {}, h('a', { class: 'name', href: profileHref(a.account) }, displayName(a)),
      h('div', { class: 'small muted' }, a.handle ? '@' + a.handle : short(a.account)),
      a.bio ? h('div', { class: 'small' }, a.bio) : null));
}

async function postView(author, seq) {
  const m = main();
  m.replaceChildren(h('h1', {}, 'Post'));
  let t;
  try { t = await api('GET', `/posts/${encodeURIComponent(author)}/${seq}/thread?limit=50&${viewerQ()}`); } catch (e) { m.append(h('div', { class: 'empty error' }, e.message)); return; }
  for (const a of t.ancestors) m.append(postCard(a));
  m.append(postCard(t.post, { focus: true }));
  m.append(composer({ placeholder: 'Post your reply', reply_to: { author: t.post.author.account, seq: t.post.seq } }));
  const replies = h('section', { 'aria-label': 'Replies' });
  m.append(replies);
  for (const r of t.replies.items) replies.append(postCard(r));
}

views.notifications = async () => {
  const m = main();
  const list = h('div', { 'aria-label': 'Notifications' });
  m.replaceChildren(h('h1', {}, 'Notifications'), list);
  await pagedList(list, async (c) => {
    const page = await api('GET', `/accounts/${encodeURIComponent(state.me)}/notifications?limit=30${cq(c)}`);
    if (!c) { state.unread = page.unread; }
    return page;
  }, (n) => notificationRow(n, state.unread-- > 0), 'Nothing yet.');
  try { const r = await api('POST', '/me/notifications/read', {}); setUnread(r.unread); } catch (_) { /* later */ }
};
function notificationRow(n, unread) {
  const words = { reply: 'replied to your post', mention: 'mentioned you', quote: 'quoted your post', like: 'liked your post', repost: 'reposted your post', follow: 'followed you' };
  return h('div', { class: unread ? 'notification unread' : 'notification', 'data-kind': n.kind },
    h('a', { class: 'name', href: profileHref(n.actor.account) }, displayName(n.actor)), ' ', words[n.kind] || n.kind,
    n.post ? h('span', {}, ' · ', h('a', { href: postHref(n.post) }, 'view')) : null,
    h('span', { class: 'small muted' }, ' · ', ago(n.at_ms)));
}

views.search = async (query) => {
  const m = main();
  const params = new URLSearchParams(query || '');
  const q = h('input', { type: 'search', name: 'q', 'aria-label': 'Search posts and people', placeholder: 'Search', value: params.get('q') || '' });
  const kind = params.get('kind') || 'posts';
  const results = h('div', { 'aria-label': 'Results' });
  const form = h('form', { class: 'pad', role: 'search', onsubmit: (e) => { e.preventDefault(); location.hash = `#/search?q=${encodeURIComponent(q.value)}&kind=${kind}`; } }, q);
  const tabs = h('div', { class: 'tabs', role: 'tablist' }, ['posts', 'people'].map((k) => h('button', { type: 'button', role: 'tab', 'aria-selected': String(k === kind), onclick: () => { location.hash = `#/search?q=${encodeURIComponent(q.value)}&kind=${k}`; } }, k === 'posts' ? 'Posts' : 'People')));
  m.replaceChildren(h('h1', {}, 'Search'), form, tabs, results);
  q.focus();
  if (!q.value.trim()) { results.append(h('div', { class: 'empty' }, 'Search for words in posts, or for people by name.')); return; }
  if (kind === 'people') await pagedList(results, (c) => api('GET', `/search/people?q=${encodeURIComponent(q.value)}${cq(c)}`), personRow, 'Nobody found.');
  else await pagedList(results, (c) => api('GET', `/search/posts?q=${encodeURIComponent(q.value)}&${viewerQ()}${cq(c)}`), (p) => postCard(p), 'No posts found.');
};

async function tagView(tag) {
  const m = main();
  const list = h('div');
  m.replaceChildren(h('h1', {}, '#' + tag), list);
  await pagedList(list, (c) => api('GET', `/hashtags/${encodeURIComponent(tag)}?${viewerQ()}${cq(c)}`), (p) => postCard(p), 'No posts with this hashtag.');
}

views.wallet = async () => {
  const m = main();
  m.replaceChildren(h('h1', {}, 'Wallet and settings'));
  const sec = h('section', { class: 'pad', 'aria-label': 'Balances' }, h('h2', {}, 'Balances'));
  m.append(sec);
  try {
    const [a, p] = await Promise.all([api('GET', `/accounts/${encodeURIComponent(state.me)}`), api('GET', `/accounts/${encodeURIComponent(state.me)}/profile`)]);
    sec.append(h('dl', { class: 'balances' },
      h('dt', {}, 'SPEND'), h('dd', { id: 'balance-spend' }, a.balances.spend),
      h('dt', {}, 'URC'), h('dd', {}, a.balances.urc),
      h('dt', {}, 'CORE'), h('dd', {}, a.balances.core),
      h('dt', {}, 'Membership'), h('dd', { id: 'membership' }, a.member ? `Verified member of foundation ${a.member.foundation}` : 'Not a verified member'),
      h('dt', {}, 'Fee allowance'), h('dd', {}, a.member ? a.allowance : 'none (for verified members)'),
      ...(a.sponsor ? [h('dt', {}, 'Sponsored fees'), h('dd', { id: 'sponsor' }, `${a.sponsor.left} SPEND left, from `, h('a', { href: `#/profile/${encodeURIComponent(a.sponsor.by)}` }, short(a.sponsor.by)))] : []),
      h('dt', {}, 'Fees paid'), h('dd', { id: 'fees-paid' }, p.fees_paid),
      h('dt', {}, 'Transactions'), h('dd', {}, a.nonce),
      h('dt', {}, 'Account'), h('dd', { class: 'small' }, state.me)));
  } catch (e) { sec.append(h('p', { class: 'muted' }, e.status === 404 ? 'No funds yet: your account appears once it receives some.' : e.message)); }

  m.append(foundationSection());
  const tokens = h('div');
  m.append(tokens);
  gov().tokensSection().then((sec) => tokens.replaceWith(sec));

  const to = h('input', { id: 'transfer-to', placeholder: 'ed25519:…' });
  const amount = h('input', { id: 'transfer-amount', inputmode: 'numeric', pattern: '[0-9]+' });
  m.append(h('form', { class: 'pad', 'aria-label': 'Transfer', onsubmit: async (e) => {
    e.preventDefault();
    await act({ type: 'transfer', asset: 'spend', to: to.value.trim(), amount: amount.value.trim() });
    toast('Transfer sent');
  } }, h('h2', {}, 'Send SPEND'), h('label', { for: 'transfer-to' }, 'To (account key)'), to,
  h('label', { for: 'transfer-amount' }, 'Amount'), amount, h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Send'))));

  const dn = h('input', { id: 'profile-name', maxlength: 50 });
  const bio = h('textarea', { id: 'profile-bio', maxlength: 1024 });
  try { const me = await api('GET', `/accounts/${encodeURIComponent(state.me)}/profile`); dn.value = me.display_name || ''; bio.value = me.bio || ''; } catch (_) { /* empty */ }
  m.append(h('form', { class: 'pad', 'aria-label': 'Edit profile', onsubmit: async (e) => {
    e.preventDefault();
    await act({ type: 'set_profile', display_name: dn.value, bio: bio.value });
    toast('Profile update sent');
  } }, h('h2', {}, 'Profile'), h('label', { for: 'profile-name' }, 'Display name'), dn,
  h('label', { for: 'profile-bio' }, 'Bio'), bio, h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Save profile'))));

  const handle = h('input', { id: 'handle', pattern: '[A-Za-z][A-Za-z0-9_]{2,29}' });
  m.append(h('form', { class: 'pad', 'aria-label': 'Handle', onsubmit: async (e) => {
    e.preventDefault();
    await act({ type: 'register_handle', handle: handle.value.trim() });
    toast('Handle claim sent');
  } }, h('h2', {}, 'Handle'), h('label', { for: 'handle' }, 'Claim a handle'), handle, h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Claim'))));

  const epw = h('input', { id: 'export-password', type: 'password', autocomplete: 'current-password' });
  const out = h('textarea', { id: 'export-out', readonly: true, hidden: true, 'aria-label': 'Backup' });
  m.append(h('form', { class: 'pad', 'aria-label': 'Back up', onsubmit: async (e) => {
    e.preventDefault();
    try {
      const r = await api('POST', '/session/export', { password: epw.value });
      out.value = r.backup;
      out.hidden = false;
      const link = h('a', { href: URL.createObjectURL(new Blob([r.backup], { type: 'application/json' })), download: `starling-${state.label}.json` }, 'Download backup');
      out.after(link);
    } catch (x) { toast(x.message); }
  } }, h('h2', {}, 'Back up your key'), h('p', { class: 'small muted' }, 'The backup stays encrypted with your password.'),
  h('label', { for: 'export-password' }, 'Password'), epw, h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Export')), out));

  m.append(h('div', { class: 'pad' }, h('button', { class: 'danger', type: 'button', onclick: logout }, 'Log out')));
};

// ---------- governance ----------
// The foundation this account is charged to (it takes the account's cut of fees), read from
// its shard's federation record with a light-client proof; and its membership.
function foundationSection() {
  const sec = h('section', { class: 'pad', id: 'my-foundation', 'aria-label': 'Your foundation' }, h('h2', {}, 'Your foundation'));
  const route = state.route;
  (async () => {
    // 503 while the newest block has no certificate here yet: a moment later it has.
    let mine;
    for (let i = 0; ; i++) {
      try { mine = await api('GET', `/foundations/of/${encodeURIComponent(state.me)}`); break; } catch (e) {
        if (e.status !== 503 || i >= 20 || state.route !== route) { sec.append(h('p', { class: 'muted' }, e.message)); return; }
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    const all = await api('GET', '/foundations').catch(() => null);
    const index = mine.foundation.index;
    const name = all?.foundations[index]?.name || short(mine.foundation.treasury);
    sec.append(h('p', {}, h('strong', { class: 'foundation-name', 'data-index': String(index) }, name), ` · charge period ${mine.period}`),
      h('p', { class: 'small muted' }, `It takes your share of fees. The answer carries a light-client proof from shard ${mine.proof.shard} at height ${mine.proof.height}.`));
    // Membership, from the registry on the global shard: members get a fee allowance that
    // the foundation which admitted them pays.
    const reg = await api('GET', `/foundations/members/${encodeURIComponent(state.me)}`).catch(() => null);
    if (reg) {
      const of = reg.member ? (all?.foundations[reg.member.foundation]?.name || `foundation ${reg.member.foundation}`) : null;
      sec.append(h('p', { id: 'my-membership', 'data-member': reg.member ? String(reg.member.foundation) : '' }, of
        ? `You are a verified member of ${of} (admitted at height ${reg.member.since}): it pays your fee allowance.`
        : 'You are not a verified member of any foundation. A foundation\'s registrar admits members; members get a fee allowance and, soon, vote tokens.'));
    }
    sec.append(h('a', { href: '#/foundations' }, 'All foundations'), ' · ', h('a', { href: '#/proposals' }, 'Proposals'));
  })();
  return sec;
}

views.foundations = async () => {
  const m = main();
  m.replaceChildren(h('h1', {}, 'Foundations'),
    h('p', { class: 'pad muted' }, 'Starling is governed by a federation of independent foundations. Every account is charged to one of them, drawn evenly from a seed no block proposer chooses, anew each charge period.'), foundationSection());
  try {
    const f = await api('GET', '/foundations');
    const rows = f.foundations.map((x) => h('li', { class: 'foundation pad', 'data-index': String(x.index) },
      h('div', {}, h('strong', {}, x.name || short(x.treasury)), ` · ${x.status.replace('_', ' ')}`),
      h('div', { class: 'small muted' }, `Treasury ${BigInt(x.treasury_spend).toLocaleString('en')} SPEND on ${f.treasury_shards} shards · ${x.takes_charges ? 'takes charges' : 'takes no charges'} · `, h('span', { class: 'members' }, `${x.members} verified members`)),
      h('div', { class: 'small muted key' }, `Registrar ${x.registrar}`),
      x.offices.length
        ? h('ul', { class: 'offices small' }, ...x.offices.map((o) => h('li', { class: o.in_term ? 'office' : 'office ended', 'data-office': o.office },
          `${o.office}${o.acting ? ' (acting)' : ''}: `, h('a', { href: `#/profile/${encodeURIComponent(o.holder)}` }, short(o.holder)),
          o.in_term ? ` · term ends at epoch ${o.until}` : o.since > f.epoch ? ` · term starts at epoch ${o.since}` : ` · term ended at epoch ${o.until}: no powers`)))
        : h('div', { class: 'small muted' }, 'No office holders'),
      h('div', { class: 'small muted key' }, x.treasury)));
    m.append(h('section', { 'aria-label': 'Federation' }, h('h2', { class: 'pad' }, `Charge period ${f.period}`),
      h('ul', { id: 'foundations', class: 'foundations' }, ...rows),
      h('p', { class: 'pad small muted' }, `Accounts are assigned anew every ${f.charge_period_epochs} epochs; this is global epoch ${f.epoch}. An office's powers end with its term, by themselves.`)));
    for (const x of f.foundations.filter((y) => y.registrar === state.me)) m.append(registrarForm(x));
  } catch (e) { m.append(h('p', { class: 'pad muted' }, e.message)); }
};

// For a foundation's registrar: admit an account as a verified member, or revoke one. The
// global shard's registry decides (one foundation per account); the answer shows on the
// member's wallet once it reaches the member's shard.
function registrarForm(x) {
  const who = h('input', { id: `registrar-member-${x.index}`, placeholder: '@handle or ed25519:…', autocomplete: 'off' });
  const send = async (type) => {
    const text = who.value.trim();
    if (!text) return;
    try {
      const member = text.startsWith('@') ? (await api('GET', `/handles/${encodeURIComponent(text.slice(1))}`)).account : text;
      await act({ type, member });
      toast(type === 'admit_member' ? 'Admission sent to the registry' : 'Revocation sent to the registry');
      who.value = '';
    } catch (e) { toast(e.message); }
  };
  return h('form', { class: 'pad registrar', 'aria-label': `Registrar of ${x.name || short(x.treasury)}`, onsubmit: (e) => { e.preventDefault(); send('admit_member'); } },
    h('h2', {}, `You are the registrar of ${x.name || short(x.treasury)}`),
    h('p', { class: 'small muted' }, 'Verify a person your own way, then admit their account: members get a fee allowance from this foundation\'s treasury and, soon, vote tokens. An account is a member of one foundation at a time.'),
    h('label', { for: `registrar-member-${x.index}` }, 'Account'), who,
    h('div', { class: 'row' }, h('button', { class: 'primary', type: 'submit' }, 'Admit'),
      h('button', { type: 'button', class: 'danger', onclick: () => send('revoke_member') }, 'Revoke')));
}

async function logout() {
  try { await api('DELETE', '/session'); } catch (_) { /* already */ }
  state.me = null; state.csrf = null;
  if (state.ws) { state.ws.onclose = null; state.ws.close(); state.ws = null; }
  $('#nav').hidden = true;
  go('#/login');
}


// ---------- chat (end-to-end encrypted; the node holds the device, the relays see ciphertext) ----------
const names = new Map();
async function nameOf(key) {
  if (!key) return '';
  if (key === state.me) return 'You';
  if (!names.has(key)) {
    names.set(key, api('GET', `/accounts/${encodeURIComponent(key)}/profile`).then((p) => (p.handle ? '@' + p.handle : displayName(p))).catch(() => short(key)));
  }
  return names.get(key);
}
async function membersText(members) {
  const others = members.filter((m) => m !== state.me);
  return (await Promise.all(others.map(nameOf))).join(', ') || 'Only you';
}
function setChatUnread(n) {
  const b = $('#chat-unread');
  b.textContent = String(n);
  b.hidden = !n;
  b.setAttribute('aria-label', `${n} unread messages`);
}
async function refreshChatUnread() {
  try {
    const l = await api('GET', '/me/chats');
    setChatUnread(l.items.reduce((a, c) => a + c.unread, 0));
    return l;
  } catch (_) { return null; }
}
async function chatOn(m) {
  const st = await api('GET', '/me/chat');
  if (st.enabled && st.published) return true;
  const btn = h('button', { class: 'primary', type: 'button', id: 'chat-setup' }, 'Turn on encrypted chat');
  const note = h('p', { class: 'muted' }, 'Chat is end to end encrypted (MLS). This node keeps your device; relays only ever see ciphertext. Turning it on publishes your device key on the ledger (a small fee).');
  m.append(h('div', { class: 'pad' }, note, btn));
  if (st.enabled) { btn.disabled = true; btn.textContent = 'Publishing your device…'; }
  btn.addEventListener('click', async () => {
    btn.disabled = true; btn.textContent = 'Publishing your device…';
    try { await api('POST', '/me/chat'); } catch (e) { toast(e.message); btn.disabled = false; btn.textContent = 'Turn on encrypted chat'; return; }
  });
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 250));
    if (state.route !== 'chats') return false;
    const s = await api('GET', '/me/chat').catch(() => ({}));
    if (s.enabled && s.published) { await render(); return false; }
  }
  return false;
}
views.chats = async () => {
  const m = main();
  m.replaceChildren(h('h1', {}, 'Chats'));
  if (!(await chatOn(m))) return;
  const who = h('input', { id: 'chat-members', placeholder: '@handle or ed25519:…, several separated by commas', autocomplete: 'off' });
  m.append(h('form', { class: 'pad', 'aria-label': 'New chat', onsubmit: async (e) => {
    e.preventDefault();
    const members = who.value.split(',').map((x) => x.trim()).filter(Boolean);
    if (!members.length) return;
    try {
      const r = await api('POST', '/me/chats', { members });
      go(`#/chat/${r.id}`);
    } catch (x) { toast(x.message); }
  } }, h('label', { for: 'chat-members' }, 'New chat with'), who, h('div', { class: 'row' }, h('span', { class: 'small muted' }, '🔒 End to end encrypted'), h('button', { class: 'primary', type: 'submit' }, 'Start chat'))));
  m.append(h('div', { id: 'chat-list' }));
  m.append(chatBackup());
  await refreshChatList();
};
// The chats' history, sealed under a key derived from the account key: saved as a file, and
// restored into chats this device has no history of (a new device, a lost disk).
function chatBackup() {
  const link = h('a', { id: 'chat-export-link', hidden: true }, 'Download chat backup');
  const exportBtn = h('button', { type: 'button', id: 'chat-export' }, 'Export chats');
  exportBtn.addEventListener('click', async () => {
    exportBtn.disabled = true;
    try {
      const r = await api('GET', '/me/chat/export');
      if (link.href) URL.revokeObjectURL(link.href);
      link.href = URL.createObjectURL(new Blob([JSON.stringify(r)], { type: 'application/json' }));
      link.download = `starling-chats-${state.label || 'backup'}.json`;
      link.hidden = false;
    } catch (x) { toast(x.message); }
    exportBtn.disabled = false;
  });
  const file = h('input', { id: 'chat-import-file', type: 'file', accept: 'application/json,.json' });
  file.addEventListener('change', async () => {
    const f = file.files && file.files[0];
    if (!f) return;
    try {
      let backup = null;
      try { backup = JSON.parse(await f.text()); } catch (_) { /* not JSON */ }
      if (!backup || !Array.isArray(backup.parts)) throw new Error('Not a chat backup');
      const r = await api('POST', '/me/chat/import', { parts: backup.parts });
      const n = Number(r.chats) || 0;
      toast(`Restored the history of ${n} chat${n === 1 ? '' : 's'}`);
      refreshChatList();
    } catch (x) { toast(x.message || 'Not a chat backup'); }
    file.value = '';
  });
  return h('details', { class: 'pad', id: 'chat-backup' }, h('summary', {}, 'Back up or restore chats'),
    h('p', { class: 'small muted' }, 'The backup is encrypted under your account key: only you can open it.'),
    h('div', { class: 'row' }, exportBtn, link),
    h('label', { for: 'chat-import-file' }, 'Restore from a backup'), file);
}
// Rebuilds the chat list; of overlapping calls (news arriving quickly) only the newest
// writes.
let chatListSeq = 0;
async function refreshChatList() {
  const seq = ++chatListSeq;
  const l = await refreshChatUnread();
  const rows = [];
  if (!l || !l.items.length) rows.push(h('div', { class: 'empty' }, 'No chats yet.'));
  for (const c of (l ? l.items : [])) {
    const title = c.left ? 'Chat you left' : await membersText(c.members);
    const last = c.last ? c.last.text : '';
    rows.push(h('a', { class: 'chat-row', href: `#/chat/${c.id}`, 'data-chat': c.id },
      h('div', { class: 'meta' }, h('span', { class: 'who' }, title), c.unread ? h('span', { class: 'badge', 'aria-label': `${c.unread} unread` }, String(c.unread)) : null,
        c.last ? h('span', { class: 'small muted' }, ago(c.last.at_ms)) : null),
      h('div', { class: 'small muted' }, last)));
  }
  const list = $('#chat-list');
  if (seq === chatListSeq && list) list.replaceChildren(...rows);
}
function messageEl(msg) {
  if (msg.kind === 'event') return h('div', { class: 'event', 'data-seq': msg.seq }, msg.text);
  const el = h('div', { class: 'bubble' + (msg.mine ? ' mine' : ''), 'data-seq': msg.seq });
  if (!msg.mine) {
    const from = h('span', { class: 'from' }, short(msg.from));
    nameOf(msg.from).then((n) => { from.textContent = n; });
    el.append(from);
  }
  el.append(msg.text);
  return el;
}
async function chatView(id) {
  const m = main();
  const title = h('h1', {}, 'Chat');
  const lock = h('div', { class: 'lock', id: 'chat-encryption' }, '🔒 …');
  const list = h('div', { class: 'messages', id: 'messages', role: 'log', 'aria-live': 'polite' });
  const input = h('input', { id: 'chat-input', placeholder: 'Encrypted message', autocomplete: 'off', 'aria-label': 'Message' });
  const form = h('form', { class: 'chat-compose', onsubmit: async (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    try {
      const r = await api('POST', `/me/chats/${id}/messages`, { text });
      for (const msg of r.items) if (!list.querySelector(`[data-seq="${msg.seq}"]`)) list.append(messageEl(msg));
      list.lastElementChild?.scrollIntoView({ block: 'end' });
    } catch (x) { toast(x.message); input.value = text; }
  } }, input, h('button', { class: 'primary', type: 'submit' }, 'Send'));
  const panel = h('section', { class: 'pad', 'aria-label': 'Members' });
  m.replaceChildren(title, lock, list, form, panel);
  let summary;
  try {
    const l = await api('GET', '/me/chats');
    summary = l.items.find((c) => c.id === id);
  } catch (e) { list.append(h('div', { class: 'empty' }, e.message)); return; }
  if (!summary) { list.append(h('div', { class: 'empty' }, 'No such chat on this device.')); return; }
  title.textContent = summary.left ? 'Chat you left' : await membersText(summary.members);
  lock.textContent = `🔒 ${summary.encryption} · epoch ${summary.epoch}`;
  state.chat = { id, last: 0, list };
  await loadMessages();
  if (!input.isConnected) return;
  const at = document.activeElement;
  if (!at || at === document.body || at === m) input.focus();
  // Members, safety numbers, leaving.
  const add = h('input', { id: 'chat-add', placeholder: '@handle or key' });
  const safety = h('div', { id: 'safety' });
  panel.append(h('h2', {}, 'Members'));
  const ul = h('ul', {});
  for (const mem of summary.members) {
    const li = h('li', {}, h('a', { href: `#/profile/${encodeURIComponent(mem)}` }, short(mem)));
    nameOf(mem).then((n) => { li.firstChild.textContent = n; });
    // Named in the group, but nothing from them reached this device since it joined: until
    // they speak, nothing shows they are in this chat.
    if ((summary.not_heard || []).includes(mem)) li.append(' ', h('span', { class: 'small muted not-heard', title: 'No message or key change from them has reached you in this chat yet. Until one does, nothing shows they can read it.' }, 'not heard from yet'));
    if (mem !== state.me && !summary.left) li.append(' ', h('button', { type: 'button', class: 'ghost small', onclick: async () => {
      try { await api('POST', `/me/chats/${id}/members`, { remove: [mem] }); toast('Removed'); render(); } catch (x) { toast(x.message); }
    } }, 'Remove'));
    ul.append(li);
  }
  panel.append(ul);
  if (!summary.left) {
    panel.append(h('form', { 'aria-label': 'Add a member', onsubmit: async (e) => {
      e.preventDefault();
      try { await api('POST', `/me/chats/${id}/members`, { add: [add.value.trim()] }); add.value = ''; toast('Added'); render(); } catch (x) { toast(x.message); }
    } }, h('label', { for: 'chat-add' }, 'Add someone'), add, h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Add'))));
    panel.append(h('div', { class: 'row' },
      h('button', { type: 'button', id: 'show-safety', onclick: async () => {
        try {
          const s = await api('GET', `/me/chats/${id}/safety`);
          safety.replaceChildren(h('h2', {}, 'Safety numbers'), h('p', { class: 'small muted' }, 'Compare these with each person (in person or on a call). If they match, nobody sits between you. Keys come from the ledger, checked with a Merkle proof.'),
            ...s.members.map((x) => h('div', { class: 'pad' }, h('div', {}, short(x.account)), h('div', { class: 'safety' }, x.safety_number))));
        } catch (x) { toast(x.message); }
      } }, 'Verify safety numbers'),
      h('button', { type: 'button', onclick: async () => {
        try { await api('POST', `/me/chats/${id}/update`); toast('New keys'); render(); } catch (x) { toast(x.message); }
      } }, 'Refresh keys'),
      h('button', { type: 'button', class: 'danger', onclick: async () => {
        try { await api('POST', `/me/chats/${id}/leave`); toast('You left the chat'); go('#/chats'); } catch (x) { toast(x.message); }
      } }, 'Leave')));
    panel.append(safety);
  }
}
async function loadMessages() {
  const c = state.chat;
  if (!c || state.route !== 'chat') return;
  const r = await api('GET', `/me/chats/${c.id}/messages?after=${c.last}&limit=1000`).catch(() => null);
  if (!r) return;
  for (const msg of r.items) {
    c.last = Math.max(c.last, msg.seq);
    if (!c.list.querySelector(`[data-seq="${msg.seq}"]`)) c.list.append(messageEl(msg));
  }
  if (r.items.length) {
    c.list.lastElementChild?.scrollIntoView({ block: 'end' });
    await api('POST', `/me/chats/${c.id}/read`, {}).catch(() => {});
  }
  refreshChatUnread();
}

// ---------- live stream ----------
function setUnread(n) {
  state.unread = n;
  const b = $('#unread');
  b.textContent = String(n);
  b.hidden = !n;
  b.setAttribute('aria-label', `${n} unread`);
}
function connectStream() {
  if (state.ws) return;
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/stream`);
  state.ws = ws;
  ws.onmessage = (ev) => {
    let m;
    try { m = JSON.parse(ev.data); } catch (_) { return; }
    if (m.type === 'hello') {
      setUnread(m.unread); refreshChatUnread();
      // (Re)connected: what came while the stream was down shows now.
      if (state.route === 'chat') loadMessages();
      if (state.route === 'chats') refreshChatList();
    }
    if (m.type === 'chat') {
      setChatUnread(m.unread);
      if (state.route === 'chat') loadMessages();
      if (state.route === 'chats') refreshChatList();
    }
    if (m.type === 'notification') {
      setUnread(m.unread);
      if (state.route === 'notifications') main().querySelector('h1').after(notificationRow(m.item, true));
    }
    if (m.type === 'post' && state.route === 'home') {
      const list = $('#timeline');
      if (!list) return;
      list.querySelector('.empty')?.remove();
      const key = `${m.item.post.author.account}/${m.item.post.seq}`;
      const dup = list.querySelector(`[data-post="${CSS.escape(key)}"]`);
      if (dup && m.item.kind === 'post') return;
      list.prepend(feedItem(m.item));
    }
  };
  ws.onclose = () => { state.ws = null; if (state.me) setTimeout(connectStream, 2000); };
}

async function trending() {
  try {
    const t = await api('GET', '/trending?limit=10');
    const items = t.items.map((x) => h('li', {}, h('a', { href: `#/tag/${encodeURIComponent(x.tag)}` }, '#' + x.tag), h('span', { class: 'small muted' }, ` ${x.posts} posts`)));
    $('#trending').replaceChildren(...(items.length ? items : [h('li', { class: 'muted small' }, 'Nothing trending yet')]));
  } catch (_) { /* no view */ }
}

// ---------- governance (gov.js) ----------
let govCache = null;
const gov = () => (govCache ||= govViews({ h, api, act, state, toast, short, main }));

// ---------- routing ----------
async function render() {
  const gen = ++state.renders;
  const hash = location.hash.replace(/^#\/?/, '') || 'home';
  const [path, query] = hash.split('?');
  const parts = path.split('/').map(decodeURIComponent);
  if (!state.me && parts[0] !== 'login') { location.hash = '#/login'; return; }
  state.route = parts[0];
  document.querySelectorAll('nav a').forEach((a) => a.toggleAttribute('aria-current', false));
  const navKey = parts[0] === 'me' || (parts[0] === 'profile' && parts[1] === state.me) ? 'profile' : parts[0] === 'chat' ? 'chats' : parts[0] === 'foundations' ? 'wallet' : parts[0];
  document.querySelector(`nav a[data-route="${navKey}"]`)?.setAttribute('aria-current', 'page');
  document.title = `Starling · ${parts[0]}`;
  switch (parts[0]) {
    case 'login': await views.login(); break;
    case 'home': await views.home(); break;
    case 'me': await profileView(state.me); break;
    case 'profile': await profileView(parts[1]); break;
    case 'handle': {
      try { const a = await api('GET', `/handles/${encodeURIComponent(parts[1])}`); await profileView(a.account); }
      catch (e) { main().replaceChildren(h('h1', {}, '@' + parts[1]), h('div', { class: 'empty' }, e.message)); }
      break;
    }
    case 'post': await postView(parts[1], parts[2]); break;
    case 'notifications': await views.notifications(); break;
    case 'search': await views.search(query); break;
    case 'tag': await tagView(parts[1]); break;
    case 'wallet': await views.wallet(); break;
    case 'foundations': await views.foundations(); break;
    case 'proposals': await (parts[1] ? gov().proposal(parts[1]) : gov().proposals(query)); break;
    case 'chats': await views.chats(); break;
    case 'chat': await chatView(parts[1]); break;
    default: main().replaceChildren(h('h1', {}, 'Not found'), h('div', { class: 'empty' }, 'No such page.'));
  }
  // The page has finished drawing: move focus to it for screen readers, unless a newer render
  // took over or the person is already typing in it (a slow load must not steal their input).
  if (gen !== state.renders || parts[0] === 'search' || parts[0] === 'login') return;
  const at = document.activeElement;
  if (at && at !== document.body && at !== main() && main().contains(at)) return;
  main().focus({ preventScroll: true });
}

function applyTheme(t) {
  document.documentElement.dataset.theme = t;
  $('#theme').textContent = t === 'dark' ? 'Light' : 'Dark';
  $('#theme').setAttribute('aria-pressed', String(t === 'dark'));
}

async function boot() {
  const saved = localStorage.getItem('theme');
  applyTheme(saved || (matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'));
  $('#theme').addEventListener('click', () => {
    const t = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    localStorage.setItem('theme', t);
    applyTheme(t);
  });
  try {
    const s = await api('GET', '/session');
    state.me = s.account; state.csrf = s.csrf; state.label = s.label;
    $('#nav').hidden = false;
    connectStream();
  } catch (_) { /* logged out */ }
  window.addEventListener('hashchange', render);
  trending();
  setInterval(trending, 60000);
  await render();
  document.body.dataset.ready = 'true';
}
boot();
