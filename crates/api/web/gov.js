// Governance pages of the Starling web app: proposals, public roll calls with quadratic vote
// tokens, and challenges (rules GV1–GV8 on the global shard). Plain ES module, no build
// step; app.js hands it its helpers.

const MOTIONS = {
  spend: 'Spend from the treasury',
  appoint: 'Appoint to an office',
  set_param: 'Set a parameter',
  registrar: 'Replace the registrar',
};
const OFFICES = ['president', 'officer', 'board', 'senate', 'staff'];
const PARAMS = ['spend_limit', 'tokens.members', 'tokens.staff', 'tokens.senate', 'tokens.board', 'tokens.executive'];
const OPEN_STAGES = ['gathering', 'board_vote', 'overturned'];

export function govViews({ h, api, act, state, toast, short, main }) {
  const key = async (text) => (text.startsWith('@') ? (await api('GET', `/handles/${encodeURIComponent(text.slice(1))}`)).account : text);
  const who = (k) => h('a', { href: `#/profile/${encodeURIComponent(k)}` }, short(k));

  function motionText(m) {
    switch (m.kind) {
      case 'spend': return [`Pay ${BigInt(m.amount).toLocaleString('en')} SPEND to `, who(m.to)];
      case 'appoint': return ['Appoint ', who(m.holder), ` as ${m.office}`];
      case 'set_param': return [`Set ${m.param} to ${m.value}`];
      default: return ['Make ', who(m.registrar), ' the registrar'];
    }
  }

  // What a proposal's tally shows: its roll call, or a referendum's anonymous count (no
  // names: ballots come from keys no one can link to a member).
  function count(p) {
    return p.referendum ? { yes: p.referendum.yes, no: p.referendum.no, voters: p.referendum.voters, votes: [] } : p.roll;
  }

  function tally(roll, id) {
    const total = roll.yes + roll.no;
    const pct = total ? Math.round((100 * roll.yes) / total) : 0;
    const bar = h('span', { class: 'yes', 'data-pct': String(pct) });
    bar.style.width = `${pct}%`;
    return h('div', { class: 'tally', id },
      h('div', { class: 'bar', role: 'img', 'aria-label': `${roll.yes} yes, ${roll.no} no` }, bar),
      h('div', { class: 'small' }, h('strong', { class: 'yes-count' }, String(roll.yes)), ' yes · ', h('strong', { class: 'no-count' }, String(roll.no)), ` no · ${roll.voters} voted`),
      roll.votes.length ? h('ul', { class: 'roll small' }, ...roll.votes.map((v) => h('li', {}, who(v.voter), ` ${v.yes ? 'yes' : 'no'} × ${v.votes}`))) : null);
  }

  // A quadratic slider: n votes cost n² tokens, shown before sending.
  function voteForm(p, row, challenge) {
    const left = Number(row.left);
    if (left < 1) return h('p', { class: 'pad small muted', id: 'no-tokens' }, `You have no ${row.branch} vote tokens left this round.`);
    const max = Math.max(1, Math.floor(Math.sqrt(left)));
    const slider = h('input', { id: challenge ? 'challenge-votes' : 'vote-votes', type: 'range', min: '1', max: String(max), value: '1', 'aria-describedby': 'vote-cost' });
    const cost = h('p', { id: 'vote-cost', class: 'small', 'aria-live': 'polite' });
    const show = () => { const n = Number(slider.value); cost.textContent = `${n} vote${n === 1 ? '' : 's'} cost ${n * n} of your ${left} tokens this round`; };
    slider.addEventListener('input', show);
    show();
    const send = async (yes) => {
      try {
        await act({ type: 'vote', proposal: p.id, challenge, yes, votes: Number(slider.value) });
        toast('Vote sent');
      } catch (_) { /* act showed it */ }
    };
    const [yesLabel, noLabel] = challenge ? ['Overturn', 'Uphold'] : ['Yes', 'No'];
    return h('form', { class: 'pad vote', 'aria-label': challenge ? 'Vote on the challenge' : 'Vote', onsubmit: (e) => { e.preventDefault(); send(true); } },
      h('h2', {}, challenge ? `Board vote on the challenge (as ${row.branch})` : `Your vote (as ${row.office || row.branch})`),
      h('label', { for: slider.id }, 'Votes'), slider, cost,
      h('div', { class: 'row' }, h('button', { class: 'primary', type: 'submit', id: challenge ? 'challenge-yes' : 'vote-yes' }, yesLabel),
        h('button', { type: 'button', id: challenge ? 'challenge-no' : 'vote-no', onclick: () => send(false) }, noLabel)));
  }

  async function simple(type, id, done) {
    try { await act({ type, proposal: id }); toast(done); } catch (_) { /* act showed it */ }
  }

  // What the viewer can do now, given the proposal and its vote tokens.
  function actions(p, tokens, gov) {
    const out = [];
    const c = p.challenge;
    const open = c && OPEN_STAGES.includes(c.stage);
    const mine = (branch) => tokens?.tokens.find((t) => t.foundation === p.foundation && t.branch === branch);
    if (p.referendum && p.status === 'voting') {
      out.push(h('p', { class: 'small muted', id: 'ballot-note' }, 'Members vote by anonymous ballot, from a one-time key their foundation\'s registrar certified without seeing it.'));
    } else if (p.status === 'voting' && p.epoch < p.closes && !p.roll.votes.some((v) => v.voter === state.me) && mine(p.track.decides)) {
      out.push(voteForm(p, mine(p.track.decides), false));
    }
    if (open && c.stage === 'board_vote' && !c.roll.votes.some((v) => v.voter === state.me) && mine('board')) {
      out.push(voteForm(p, mine('board'), true));
    }
    if (open && c.stage === 'gathering' && c.by !== state.me) {
      out.push(h('button', { id: 'support', type: 'button', onclick: () => simple('support_challenge', p.id, 'Support sent') }, 'Support the challenge'));
    }
    const challengeable = p.finality !== 'final' && ['passed', 'enacted'].includes(p.status) && !open && p.challenges < 3 && p.challenge_until !== null && p.epoch < p.challenge_until;
    if (challengeable) {
      out.push(h('button', { id: 'challenge', class: 'danger', type: 'button', onclick: () => simple('challenge', p.id, 'Challenge sent') },
        `Challenge this decision (deposit ${BigInt(gov?.challenge_deposit || 0).toLocaleString('en')} SPEND)`));
    }
    if (['voting', 'passed'].includes(p.status) || open) {
      out.push(h('button', { id: 'advance', type: 'button', onclick: () => simple('advance_proposal', p.id, 'Advance sent') }, 'Advance (tally, enact or settle when due)'));
    }
    return h('div', { class: 'pad row wrap', id: 'proposal-actions' }, ...out);
  }

  function timeline(p) {
    const items = [`Opened in epoch ${p.opened}`, `voting until epoch ${p.closes}`];
    if (p.decided) items.push(`tallied in epoch ${p.decided.epoch}`);
    if (p.enacted !== null) items.push(`took effect at global height ${p.enacted}`);
    if (p.challenge_until !== null && p.finality !== 'final') items.push(`open to challenge until epoch ${p.challenge_until}`);
    items.push(`now epoch ${p.epoch}`);
    return h('p', { class: 'small muted', id: 'timeline' }, items.join(' · '));
  }

  function live(p, tokens, gov) {
    const c = p.challenge;
    return h('div', { id: 'proposal-live', 'data-status': p.status, 'data-stage': c ? c.stage : '' },
      h('div', { class: 'pad' }, h('span', { class: `status ${p.status}`, id: 'proposal-status' }, p.status.replace('_', ' ')),
        ` · decided by the ${p.track.decides} (quorum ${p.track.quorum_pct}% of ${p.referendum ? `${p.referendum.members} members` : `${p.electorate} seats`}, more than ${p.track.threshold_pct}% yes) · ${p.finality.replace('_', ' ')}`),
      timeline(p),
      h('section', { 'aria-label': 'Tally', class: 'pad' }, h('h2', {}, p.referendum ? 'Referendum (anonymous ballots)' : 'Roll call'), tally(count(p), 'tally')),
      c ? h('section', { 'aria-label': 'Challenge', class: 'pad challenge', id: 'challenge-box' },
        h('h2', {}, 'Challenge'),
        h('p', { class: 'small' }, 'By ', who(c.by), ` · ${c.stage.replace('_', ' ')}`, c.until !== null ? ` until epoch ${c.until}` : '',
          ` · support: ${c.senators} of ${c.senate} senators, ${c.supporters} of ${c.members} members`),
        tally(c.roll, 'challenge-tally')) : null,
      actions(p, tokens, gov));
  }

  async function proposal(id) {
    const gen = state.renders;
    const m = main();
    m.replaceChildren(h('h1', {}, `Proposal #${id}`));
    let p;
    try { p = await api('GET', `/proposals/${encodeURIComponent(id)}`); } catch (e) { m.append(h('p', { class: 'pad muted' }, e.message)); return; }
    const gov = (await api('GET', '/foundations').catch(() => null))?.governance;
    const tokens = await api('GET', `/vote-tokens/${encodeURIComponent(state.me)}`).catch(() => null);
    if (state.renders !== gen) return;
    m.replaceChildren(h('h1', {}, p.title),
      h('article', { class: 'pad proposal', 'data-id': String(p.id) },
        h('p', {}, ...motionText(p.motion)),
        p.text ? h('p', { class: 'text' }, p.text) : null,
        h('p', { class: 'small muted' }, `Foundation ${p.foundation} · proposed by `, who(p.proposer), ` · ${p.track.name} track`)),
      live(p, tokens, gov));
    // The tally moves as votes land: redraw what changed, never under the person's
    // typing, and keep the focus on the control they used. One poll per page: it stops
    // when another page is drawn, or once nothing can change any more.
    const signature = (q) => JSON.stringify([q.status, q.roll, q.referendum, q.challenge, q.challenge_until]);
    let sig = signature(p);
    const done = (q) => ['rejected', 'no_quorum', 'failed', 'reversed', 'cancelled', 'expired'].includes(q.status)
      || (q.status === 'enacted' && !(q.challenge && OPEN_STAGES.includes(q.challenge.stage)) && (q.challenge_until === null || q.epoch >= q.challenge_until));
    const poll = async () => {
      if (state.renders !== gen) return;
      try {
        const q = await api('GET', `/proposals/${p.id}`);
        if (state.renders !== gen) return;
        if (signature(q) !== sig) {
          const box = document.querySelector('#proposal-live');
          const at = document.activeElement;
          if (box && box.contains(at) && ['INPUT', 'TEXTAREA', 'SELECT'].includes(at.tagName)) {
            box.querySelector('#tally').replaceWith(tally(count(q), 'tally'));
          } else if (box) {
            sig = signature(q);
            const t = await api('GET', `/vote-tokens/${encodeURIComponent(state.me)}`).catch(() => null);
            if (state.renders !== gen) return;
            const focused = box.contains(at) ? at.id : null;
            const next = live(q, t, gov);
            box.replaceWith(next);
            if (focused) next.querySelector(`#${focused}`)?.focus();
          }
        }
        if (done(q)) return;
      } catch (_) { /* try again */ }
      setTimeout(poll, 1500);
    };
    setTimeout(poll, 1500);
  }

  // Opening a proposal: for a seat holder of a foundation, on the tracks its seat may use
  // (the ledger decides; the form only helps).
  function proposeForm(seats) {
    const foundation = h('select', { id: 'propose-foundation' }, ...seats.map((s) => h('option', { value: String(s.foundation) }, `${s.name} (as ${s.office})`)));
    const title = h('input', { id: 'propose-title', maxlength: '120', required: true, autocomplete: 'off' });
    const text = h('textarea', { id: 'propose-text', maxlength: '2000', rows: '3' });
    const kind = h('select', { id: 'propose-kind' }, ...Object.entries(MOTIONS).map(([k, v]) => h('option', { value: k }, v)));
    const a = h('input', { id: 'propose-a', autocomplete: 'off' });
    const b = h('input', { id: 'propose-b', autocomplete: 'off' });
    const la = h('label', { for: 'propose-a' });
    const lb = h('label', { for: 'propose-b' });
    const fields = () => {
      const k = kind.value;
      la.textContent = { spend: 'To (@handle or key)', appoint: `Office (${OFFICES.join(', ')})`, set_param: `Parameter (${PARAMS.join(', ')})`, registrar: 'New registrar (@handle or key)' }[k];
      lb.textContent = { spend: 'Amount (SPEND base units)', appoint: 'Holder (@handle or key)', set_param: 'Value' }[k] || '';
      b.hidden = lb.hidden = k === 'registrar';
    };
    kind.addEventListener('change', fields);
    fields();
    const submit = async (e) => {
      e.preventDefault();
      const k = kind.value;
      try {
        const motion = k === 'spend' ? { kind: k, to: await key(a.value.trim()), amount: b.value.trim() }
          : k === 'appoint' ? { kind: k, office: a.value.trim(), holder: await key(b.value.trim()) }
            : k === 'set_param' ? { kind: k, param: a.value.trim(), value: b.value.trim() }
              : { kind: k, registrar: await key(a.value.trim()) };
        await act({ type: 'propose', foundation: Number(foundation.value), title: title.value.trim(), text: text.value, motion });
        toast('Proposal sent');
        title.value = ''; text.value = ''; a.value = ''; b.value = '';
      } catch (err) { toast(err.message); }
    };
    return h('form', { class: 'pad propose', 'aria-label': 'New proposal', onsubmit: submit },
      h('h2', {}, 'New proposal'),
      h('label', { for: 'propose-foundation' }, 'Foundation'), foundation,
      h('label', { for: 'propose-title' }, 'Title'), title,
      h('label', { for: 'propose-text' }, 'Why'), text,
      h('label', { for: 'propose-kind' }, 'Motion'), kind, la, a, lb, b,
      h('button', { class: 'primary', type: 'submit' }, 'Propose'));
  }

  async function proposals(query) {
    const before = new URLSearchParams(query || '').get('before');
    const m = main();
    m.replaceChildren(h('h1', {}, 'Governance'),
      h('p', { class: 'pad muted' }, 'Each foundation decides by public roll calls: the branch a proposal\'s track names votes, n votes costing n² of a seat\'s vote tokens for the round. Anyone may challenge a decision within its window.'));
    try {
      const page = before && /^[0-9]+$/.test(before) ? `/proposals?before=${before}` : '/proposals';
      const [list, f] = await Promise.all([api('GET', page), api('GET', '/foundations')]);
      const seats = f.foundations.flatMap((x) => x.offices.filter((o) => o.holder === state.me && o.in_term).map((o) => ({ foundation: x.index, name: x.name || short(x.treasury), office: o.office })));
      if (seats.length) m.append(proposeForm(seats));
      const rows = list.proposals.map((p) => h('li', { class: 'proposal-row pad', 'data-id': String(p.id), 'data-status': p.status },
        h('a', { href: `#/proposals/${p.id}` }, h('strong', {}, p.title)),
        h('div', { class: 'small muted' }, `#${p.id} · foundation ${p.foundation} · `, h('span', { class: `status ${p.status}` }, p.status.replace('_', ' ')), ` · ${count(p).yes} yes, ${count(p).no} no`),
        h('div', { class: 'small' }, ...motionText(p.motion))));
      m.append(h('section', { 'aria-label': 'Proposals' }, h('h2', { class: 'pad' }, `${list.count} proposals · epoch ${list.epoch}`),
        rows.length ? h('ul', { id: 'proposals', class: 'proposals' }, ...rows) : h('div', { class: 'empty' }, 'No proposals yet.'),
        list.next !== null ? h('p', { class: 'pad' }, h('a', { href: `#/proposals?before=${list.next + 1}` }, 'Older proposals')) : null));
    } catch (e) { m.append(h('p', { class: 'pad muted' }, e.message)); }
  }

  // The wallet's view of one's vote tokens this round.
  async function tokensSection() {
    const sec = h('section', { class: 'pad', id: 'my-tokens', 'aria-label': 'Vote tokens' }, h('h2', {}, 'Vote tokens'));
    try {
      const t = await api('GET', `/vote-tokens/${encodeURIComponent(state.me)}`);
      sec.append(t.tokens.length
        ? h('ul', { class: 'small' }, ...t.tokens.map((r) => h('li', { 'data-branch': r.branch }, `Foundation ${r.foundation}, ${r.office || r.branch}: ${r.left} of ${r.allotment} left`)))
        : h('p', { class: 'small muted' }, 'No seat and no membership: no vote tokens.'),
      h('p', { class: 'small muted' }, `Round ${t.round} ends at epoch ${t.round_ends}; tokens are not carried over.`));
    } catch (e) { sec.append(h('p', { class: 'small muted' }, e.message)); }
    return sec;
  }

  return { proposals, proposal, tokensSection };
}
