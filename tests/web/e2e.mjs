// Browser end-to-end test of the web app, in headless Chromium driven by Playwright.
//
// Starts a devnet (the release binary, on a temporary directory and a free loopback port),
// then two people use the web app in two browser contexts: both sign up, Alice posts, Bob
// follows her and sees the post arrive live in his home timeline, likes it and replies,
// Alice sees both notifications, search finds the post, and Alice's edit shows its history.
// Then they turn on encrypted chat and message each other live, and compare safety numbers.
// Also: keyboard-only posting, phone width, dark mode. Every wait is bounded; the devnet is
// stopped at the end whatever happens.
//
//   STARLING_BIN=path/to/starling CHROMIUM=/usr/bin/chromium node e2e.mjs

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const BIN = process.env.STARLING_BIN || join(process.env.HOME, '.cache/starling-target/release/starling');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT = 60_000;

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

// Polls `fn` until it returns a truthy value (bounded); returns it.
async function until(what, fn, timeout = WAIT) {
  const start = Date.now();
  let last;
  for (;;) {
    try { last = await fn(); if (last) return last; } catch (e) { last = e; }
    if (Date.now() - start > timeout) throw new Error(`timed out waiting for ${what}: ${last}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const dir = mkdtempSync(join(tmpdir(), 'starling-e2e-'));
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
// Chat's own steps at debug level: if the test fails, the log tail says where a send waited.
const env = { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info,tantivy=warn,starling_chat_client=debug' };
const devnet = spawn(BIN, ['devnet', '--data-dir', join(dir, 'devnet'), '--api', `127.0.0.1:${port}`, '--block-interval-ms', '200'], { stdio: ['ignore', 'pipe', 'pipe'], env });
let devnetLog = '';
devnet.stdout.on('data', (d) => { devnetLog += d; });
const devnetWarnings = [];
devnet.stderr.on('data', (d) => {
  devnetLog = (devnetLog + d).slice(-20000);
  for (const l of String(d).split('\n')) if (/ (WARN|ERROR) /.test(l)) devnetWarnings.push(l);
});
let browser;
let failed = false;
// Every API answer that was an error or slow, by page, and the requests still waiting for
// one: printed if the test fails.
const apiLog = [];
const inFlight = new Map();
const errors = [];

async function getJson(path) {
  const r = await fetch(base + path);
  if (!r.ok) throw new Error(`${path}: ${r.status}`);
  return r.json();
}

try {
  await until('the devnet API', async () => {
    const s = await getJson('/api/v1/status');
    return s.shards.every((x) => x.height >= 1);
  }, 120_000);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  let people = 0;
  async function person(viewport) {
    const ctx = await browser.newContext({ viewport, colorScheme: 'light' });
    const page = await ctx.newPage();
    const who = `page ${++people}`;
    const started = new Map();
    page.on('request', (r) => {
      started.set(r, Date.now());
      inFlight.set(r, `${who} ${r.method()} ${r.url().replace(base, '')}`);
    });
    page.on('requestfailed', (r) => {
      inFlight.delete(r);
      apiLog.push(`${new Date().toISOString()} ${who} ${r.method()} ${r.url().replace(base, '')} failed: ${r.failure()?.errorText}`);
    });
    page.on('response', async (r) => {
      const ms = Date.now() - (started.get(r.request()) ?? Date.now());
      started.delete(r.request());
      inFlight.delete(r.request());
      if (!r.url().includes('/api/v1/') || (r.status() < 400 && ms < 5_000)) return;
      const body = await r.text().catch(() => '');
      apiLog.push(`${new Date().toISOString()} ${who} ${r.request().method()} ${r.url().replace(base, '')} -> ${r.status()} in ${ms} ms ${body.slice(0, 300)}`);
    });
    page.setDefaultTimeout(WAIT);
    page.on('pageerror', (e) => errors.push(String(e)));
    // Answers such as 401 before log in or 404 for an account not funded yet are expected;
    // script errors are not.
    page.on('console', (m) => { if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.push(m.text()); });
    await page.goto(base + '/');
    await page.waitForSelector('body[data-ready="true"]');
    return page;
  }

  async function signUp(page, name) {
    await page.fill('#signup-name', name);
    await page.fill('#signup-display', name[0].toUpperCase() + name.slice(1));
    await page.fill('#signup-password', `${name} has a long password`);
    await page.click('form[aria-label="Sign up"] button[type="submit"]');
    await page.waitForSelector('h1:has-text("Home")');
    const s = await page.evaluate(() => fetch('/api/v1/session').then((r) => r.json()));
    // The faucet funds the account; the app then claims the handle and sets the profile.
    await until(`@${name} to be registered`, async () => (await getJson(`/api/v1/accounts/${s.account}/profile`)).handle === name);
    return s.account;
  }

  const alice = await person({ width: 1280, height: 900 });
  const bob = await person({ width: 390, height: 844 });
  const aliceKey = await signUp(alice, 'alice');
  const bobKey = await signUp(bob, 'bob');
  assert.notEqual(aliceKey, bobKey);

  // Bob finds Alice by handle and follows her.
  await bob.goto(`${base}/#/handle/alice`);
  await bob.click('button:has-text("Follow")');
  await bob.waitForSelector('button[aria-pressed="true"]:has-text("Unfollow")');
  await until('the follow to be indexed', async () => (await getJson(`/api/v1/accounts/${bobKey}/following`)).items.some((a) => a.account === aliceKey));

  // Bob watches his home timeline; Alice posts with the keyboard only.
  await bob.goto(`${base}/#/home`);
  await bob.waitForSelector('#timeline');
  await alice.goto(`${base}/#/home`);
  await alice.waitForSelector('h1:has-text("Home")');
  await alice.focus('textarea[name="text"]');
  const text = 'Hello from Alice, live on #starling';
  await alice.keyboard.type(text);
  assert.equal(await alice.textContent('.compose .counter'), `${[...text].length} / 300`);
  await alice.waitForSelector('.compose .fee:has-text("fee")');
  await alice.keyboard.press('Control+Enter');

  // Live: no reload on Bob's side.
  const bobPost = bob.locator('#timeline article', { hasText: text });
  await bobPost.waitFor();
  const reloads = await bob.evaluate(() => performance.getEntriesByType('navigation').length);
  assert.equal(reloads, 1);

  // Bob likes and replies.
  await bobPost.locator('button.like').click();
  await bob.locator('#timeline article', { hasText: text }).locator('button.like[aria-pressed="true"]').waitFor();
  await bobPost.locator('button[aria-label="Reply"]').click();
  await bobPost.locator('.inline textarea').fill('Nice to meet you, Alice');
  await bobPost.locator('.inline button[type="submit"]').click();

  // Alice's unread badge moves live (follow, like, reply), and the notifications say so.
  await alice.waitForFunction(() => Number(document.querySelector('#unread')?.textContent || 0) >= 3, null, { timeout: WAIT });
  await alice.click('nav a[data-route="notifications"]');
  await alice.waitForSelector('.notification[data-kind="like"]');
  await alice.waitForSelector('.notification[data-kind="reply"]');
  await alice.waitForSelector('.notification[data-kind="follow"]');
  await alice.waitForFunction(() => document.querySelector('#unread').hidden === true);

  // Search finds the post (the index commits every 2 s).
  await until('search to find the post', async () => {
    await bob.goto(`${base}/#/home`);
    await bob.goto(`${base}/#/search?q=${encodeURIComponent('live starling')}&kind=posts`);
    await bob.waitForSelector('[aria-label="Results"] .empty, [aria-label="Results"] article');
    return (await bob.locator('[aria-label="Results"] article', { hasText: text }).count()) > 0;
  });
  // People search finds Alice by name.
  await bob.goto(`${base}/#/search?q=alice&kind=people`);
  await bob.locator('[aria-label="Results"] .person', { hasText: 'Alice' }).first().waitFor();

  // Alice edits the post; its history shows the first text.
  const seq = (await getJson(`/api/v1/accounts/${aliceKey}/feed`)).items.find((i) => i.post.text === text).post.seq;
  await alice.goto(`${base}/#/post/${encodeURIComponent(aliceKey)}/${seq}`);
  const focus = alice.locator('article.focus');
  await focus.locator('button[aria-label="Edit"]').click();
  await focus.locator('.inline textarea').fill('Hello from Alice (edited), live on #starling');
  await focus.locator('.inline button[type="submit"]').click();
  await until('the edit to be indexed', async () => {
    await alice.goto(`${base}/#/home`);
    await alice.goto(`${base}/#/post/${encodeURIComponent(aliceKey)}/${seq}`);
    await alice.waitForSelector('article.focus');
    return (await alice.locator('article.focus .history-toggle').count()) > 0;
  });
  await alice.locator('article.focus .history-toggle').click();
  await alice.locator('article.focus .history .revision', { hasText: text }).waitFor();
  assert.match(await alice.textContent('article.focus p.text:not(.revision)'), /\(edited\)/);
  // The reply shows under the post.
  await alice.locator('section[aria-label="Replies"] article', { hasText: 'Nice to meet you, Alice' }).waitFor();

  // The wallet shows balances and the fees Alice paid.
  await alice.click('nav a[data-route="wallet"]');
  await alice.waitForSelector('#balance-spend');
  assert.ok(BigInt(await alice.textContent('#fees-paid')) > 0n, 'fees paid');
  // The foundation Alice is charged to, read with a proof, and the federation's page.
  await alice.waitForSelector('#my-foundation .foundation-name', { timeout: WAIT });
  const index = await alice.getAttribute('#my-foundation .foundation-name', 'data-index');
  const mine = await alice.textContent('#my-foundation .foundation-name');
  // Her membership, from the registry: nobody's verified member yet, so no fee allowance.
  await alice.waitForSelector('#my-membership', { timeout: WAIT });
  assert.match(await alice.textContent('#my-membership'), /not a verified member/);
  assert.equal(await alice.textContent('#membership'), 'Not a verified member');
  // (The wallet page has finished drawing before Alice leaves it.)
  await alice.waitForSelector('#export-password');
  await alice.click('#my-foundation a[href="#/foundations"]');
  await alice.waitForSelector('#foundations li.foundation');
  assert.equal(await alice.locator('#foundations li.foundation').count(), 3);
  assert.equal(await alice.locator('#foundations li.foundation .members').count(), 3);
  // Each devnet foundation has a president and a board of three, in term.
  assert.equal(await alice.locator('#foundations li.foundation[data-index="0"] li.office[data-office="president"]').count(), 1);
  assert.equal(await alice.locator('#foundations li.foundation[data-index="0"] li.office[data-office="board"]').count(), 3);
  assert.equal(await alice.textContent(`#foundations li.foundation[data-index="${index}"] strong`), mine);

  // The first foundation's registrar (the devnet's foundation account: its key file
  // imported on this node) admits Bob as a verified member from the foundations page; Bob's
  // wallet shows it once his shard hears from the registry.
  const registrar = await person({ width: 1280, height: 900 });
  const secret = /secret\s*=\s*"([0-9a-f]{64})"/.exec(readFileSync(join(dir, 'devnet', 'keys', 'foundation-0.key'), 'utf8'))[1];
  await registrar.click('summary:has-text("Import an existing account")');
  await registrar.fill('#import-secret', secret);
  await registrar.fill('#import-label', 'registrar');
  await registrar.fill('#import-password', 'the registrar has a long password');
  await registrar.click('form[aria-label="Import an account"] button[type="submit"]');
  await registrar.waitForSelector('h1:has-text("Home")');
  await registrar.goto(`${base}/#/foundations`);
  await registrar.fill('#registrar-member-0', '@bob');
  await registrar.click('form.registrar button[type="submit"]');
  await registrar.waitForSelector('#toast:has-text("Admission sent")');
  await until('Bob to be a verified member', async () => (await getJson(`/api/v1/accounts/${bobKey}`)).member?.foundation === 0);
  await bob.goto(`${base}/#/wallet`);
  await bob.waitForSelector('#my-membership[data-member="0"]', { timeout: WAIT });
  assert.match(await bob.textContent('#my-membership'), /You are a verified member of /);
  await registrar.close();

  // Governance: the first foundation's president proposes Bob as an officer; a board member
  // votes with the quadratic slider (the token cost shows before sending); the tally moves
  // as the rest of the board votes; anyone tallies it and puts it into effect; Alice
  // challenges the decision within its window.
  const keyOf = (name) => /secret\s*=\s*"([0-9a-f]{64})"/.exec(readFileSync(join(dir, 'devnet', 'keys', `${name}.key`), 'utf8'))[1];
  async function importAs(name) {
    const page = await person({ width: 1280, height: 900 });
    await page.click('summary:has-text("Import an existing account")');
    await page.fill('#import-secret', keyOf(name));
    await page.fill('#import-label', name);
    await page.fill('#import-password', `${name} has a long password`);
    await page.click('form[aria-label="Import an account"] button[type="submit"]');
    await page.waitForSelector('h1:has-text("Home")');
    return page;
  }
  const president = await importAs('president-0');
  await president.click('nav a[data-route="proposals"]');
  await president.waitForSelector('form.propose');
  await president.fill('#propose-title', 'Bob for officer');
  await president.fill('#propose-text', 'He verified a hundred members this month.');
  await president.selectOption('#propose-kind', 'appoint');
  await president.fill('#propose-a', 'officer');
  await president.fill('#propose-b', '@bob');
  await president.click('form.propose button[type="submit"]');
  await president.waitForSelector('#toast:has-text("Proposal sent")');
  const proposal = await until('the proposal', async () => (await getJson('/api/v1/proposals')).proposals.find((p) => p.title === 'Bob for officer'));
  await president.close();
  const member = await importAs('board-0-0');
  await member.goto(`${base}/#/proposals/${proposal.id}`);
  await member.waitForSelector('#vote-votes');
  await member.fill('#vote-votes', '3');
  assert.match(await member.textContent('#vote-cost'), /^3 votes cost 9 of your 10000 tokens/);
  await member.click('#vote-yes');
  await member.waitForSelector('#toast:has-text("Vote sent")');
  await member.waitForSelector('#tally .yes-count:text-is("3")');
  // The other two board members vote through the API (bearer sessions); the page's tally
  // follows.
  for (const [name, yes, votes] of [['board-0-1', true, 1], ['board-0-2', false, 1]]) {
    const r = await fetch(`${base}/api/v1/keystore/import`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ secret: keyOf(name), label: name, password: `${name} has a long password`, bearer: true }) });
    const { token } = await r.json();
    const sent = await fetch(`${base}/api/v1/me/actions`, { method: 'POST', headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` }, body: JSON.stringify({ action: { type: 'vote', proposal: proposal.id, yes, votes } }) });
    assert.equal(sent.status, 200, await sent.text());
  }
  await member.waitForSelector('#tally .yes-count:text-is("4")');
  await member.waitForSelector('#tally .no-count:text-is("1")');
  for (const status of ['passed', 'enacted']) {
    await member.click('#advance');
    await member.waitForSelector(`#proposal-live[data-status="${status}"]`);
  }
  await member.close();
  await alice.goto(`${base}/#/proposals/${proposal.id}`);
  await alice.waitForSelector('#challenge');
  await alice.click('#challenge');
  await alice.waitForSelector('#toast:has-text("Challenge sent")');
  await alice.waitForSelector('#proposal-live[data-stage="gathering"]');
  assert.match(await alice.textContent('#challenge-box'), /gathering/);

  // Phone width: nothing spills sideways, the nav stays reachable.
  // (Checked on the wallet, with its long keys, where Bob now is.)
  const wide = await bob.evaluate(() => document.scrollingElement.scrollWidth <= window.innerWidth + 1 ? '' : [...document.querySelectorAll('main *')]
    .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1).slice(0, 5).map((e) => `${e.tagName}#${e.id}.${e.className}`).join(' '));
  assert.equal(wide, '', 'no sideways scroll at 390 px');
  assert.ok(await bob.locator('nav a[data-route="home"]').isVisible());

  // Dark mode: the toggle switches the colours and is remembered.
  const light = await bob.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await bob.click('#theme');
  const dark = await bob.evaluate(() => getComputedStyle(document.body).backgroundColor);
  assert.notEqual(light, dark);
  await bob.reload();
  await bob.waitForSelector('body[data-ready="true"]');
  assert.equal(await bob.evaluate(() => document.documentElement.dataset.theme), 'dark');

  // Encrypted chat: both turn it on (a device published on the ledger), Alice starts a chat
  // with @bob, and messages go both ways live; the safety numbers match.
  for (const page of [alice, bob]) {
    await page.goto(`${base}/#/chats`);
    await page.click('#chat-setup');
    await page.waitForSelector('form[aria-label="New chat"]', { timeout: WAIT });
  }
  // The chat page's first load of messages is held until Alice has typed: when the page then
  // finishes drawing, her cursor stays in the box and Enter sends.
  let release;
  const held = new Promise((r) => { release = r; });
  await alice.route(/\/api\/v1\/me\/chats\/[^/]+\/messages\?/, async (route) => { await held; await route.continue(); }, { times: 1 });
  await alice.fill('#chat-members', '@bob');
  await alice.click('form[aria-label="New chat"] button[type="submit"]');
  await alice.waitForSelector('#chat-input', { timeout: WAIT });
  await alice.waitForFunction(() => /MLS/.test(document.querySelector('#chat-encryption')?.textContent || ''), null, { timeout: WAIT });
  await alice.fill('#chat-input', 'Hi Bob, only we can read this');
  release();
  await alice.waitForSelector('#show-safety', { timeout: WAIT });
  await alice.evaluate(() => new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))));
  assert.equal(await alice.evaluate(() => document.activeElement?.id), 'chat-input', 'typing keeps its focus when the page finishes drawing');
  await alice.keyboard.press('Enter');
  await alice.locator('.bubble.mine', { hasText: 'only we can read this' }).waitFor();
  // Bob, on his chat list, sees the new chat and its unread badge arrive live.
  await bob.waitForFunction(() => Number(document.querySelector('#chat-unread')?.textContent || 0) >= 1, null, { timeout: WAIT });
  await bob.locator('.chat-row', { hasText: 'only we can read this' }).click();
  await bob.locator('.bubble:not(.mine)', { hasText: 'only we can read this' }).waitFor();
  await bob.fill('#chat-input', 'Hi Alice, got it');
  await bob.keyboard.press('Enter');
  await alice.locator('.bubble:not(.mine)', { hasText: 'Hi Alice, got it' }).waitFor({ timeout: WAIT });
  await bob.waitForFunction(() => document.querySelector('#chat-unread').hidden === true, null, { timeout: WAIT });
  await alice.click('#show-safety');
  await bob.click('#show-safety');
  const numbers = await Promise.all([alice, bob].map(async (p) => { await p.waitForSelector('#safety .safety'); return p.textContent('#safety .safety'); }));
  assert.match(numbers[0], /^(\d{5} ){11}\d{5}$/);
  assert.equal(numbers[0], numbers[1], 'both see the same safety number');

  // Alice saves her chats as a file and restores it: the history she has is kept.
  await alice.goto(`${base}/#/chats`);
  await alice.click('#chat-backup summary');
  await alice.click('#chat-export');
  await alice.waitForSelector('#chat-export-link:not([hidden])', { timeout: WAIT });
  const [download] = await Promise.all([alice.waitForEvent('download'), alice.click('#chat-export-link')]);
  const backup = readFileSync(await download.path(), 'utf8');
  assert.ok(JSON.parse(backup).parts.length >= 1, 'the backup holds the chat');
  assert.ok(!backup.includes('only we can read this'), 'the backup is sealed');
  await alice.setInputFiles('#chat-import-file', { name: 'chats.json', mimeType: 'application/json', buffer: Buffer.from(backup) });
  await alice.waitForFunction(() => /Restored the history of \d+ chat/.test(document.querySelector('#toast').textContent), null, { timeout: WAIT });
  // A backup changed by one character, or not a backup at all, is refused.
  const parsed = JSON.parse(backup);
  const p0 = parsed.parts[0];
  const i = Math.floor(p0.length / 2);
  parsed.parts[0] = p0.slice(0, i) + (p0[i] === '0' ? '1' : '0') + p0.slice(i + 1);
  for (const bad of [JSON.stringify(parsed), 'null']) {
    await alice.evaluate(() => { document.querySelector('#toast').textContent = ''; });
    await alice.setInputFiles('#chat-import-file', { name: 'chats.json', mimeType: 'application/json', buffer: Buffer.from(bad) });
    await alice.waitForFunction(() => document.querySelector('#toast').textContent !== '', null, { timeout: WAIT });
    assert.doesNotMatch(await alice.textContent('#toast'), /Restored/, `a bad backup is refused: ${bad.slice(0, 20)}`);
  }

  // Log out ends the session; the cookie no longer works.
  await bob.click('nav a[data-route="wallet"]');
  await bob.click('button:has-text("Log out")');
  await bob.waitForSelector('form[aria-label="Log in"]');
  assert.equal(await bob.evaluate(() => fetch('/api/v1/session').then((r) => r.status)), 401);
  // And logs back in by name, from the list of accounts on this node.
  await bob.click('.account-choice button:has-text("bob")');
  await bob.fill('#login-password', 'bob has a long password');
  await bob.keyboard.press('Enter');
  await bob.waitForSelector('h1:has-text("Home")');

  assert.deepEqual(errors, [], 'no script errors in the pages');
  console.log('web app end-to-end: ok');
} catch (e) {
  failed = true;
  console.error('web app end-to-end FAILED:', e);
  console.error('--- API answers that failed or took over 5 s ---\n' + apiLog.slice(-60).join('\n'));
  console.error('--- requests with no answer yet ---\n' + [...inFlight.values()].filter((r) => r.includes('/api/v1/')).join('\n'));
  console.error('--- script errors ---\n' + errors.join('\n'));
  console.error('--- devnet warnings ---\n' + devnetWarnings.slice(-40).join('\n'));
  console.error('--- devnet log (tail) ---\n' + devnetLog.slice(-4000));
} finally {
  if (browser) await browser.close().catch(() => {});
  devnet.kill('SIGTERM');
  await new Promise((r) => { devnet.once('exit', r); setTimeout(r, 10_000); });
  rmSync(dir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
