//! Members' anonymous ballots (rules BL1–BL4) end to end on a network in memory: a registrar
//! publishes its round's key, members obtain blind credentials, vote from fresh keys, re-vote,
//! and a referendum seats a senator; every bad ballot and credential act is refused with its
//! own error and changes nothing; the tally equals a recount; and what the registrar saw shares
//! no value with the ballots.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::gov::*;
use common::*;
use starling_crypto::blind::{Credential, CredentialKey, RegistrarKey};
use starling_crypto::SecretKey;
use starling_ledger::ballots::{
    BallotRecord, CredentialKeyRecord, CredentialRequest, NullifierRecord,
};
use starling_ledger::proposals::Status;
use starling_ledger::records::StateKey;
use starling_ledger::TxError;
use starling_types::ballots::{credential_message, MAX_BALLOTS_PER_QUESTION};
use starling_types::{Action, Ballot, GovAct, Office, TxBody, TxEnvelope};

const ROUND_EPOCHS: u64 = 6;

/// A network whose foundation 0 has four members (the member, the stranger and both
/// senators), and its registrar's key for the current round, published.
struct World {
    net: Net,
    registrar: SecretKey,
    key: RegistrarKey,
    round: u64,
}

fn world() -> (World, People) {
    // A long vote, across rounds (the credentials of the round it opened in count).
    let (mut net, people) = setup(|p| p.governance.voting_epochs = 4 * ROUND_EPOCHS);
    for k in [&people.stranger, &people.senate[0], &people.senate[1]] {
        admit(&mut net, 0, &k.public_key());
    }
    let registrar = foundation_key(0);
    let key = RegistrarKey::generate(2048).unwrap();
    let round = epoch(&net) / ROUND_EPOCHS;
    let (r, ev) = act(
        &mut net,
        &registrar,
        GovAct::BallotKey {
            foundation: 0,
            round,
            key: key.public().unwrap().to_der(),
        },
    );
    r.unwrap();
    assert_eq!(refused(&ev, &registrar), None);
    let w = World {
        net,
        registrar,
        key,
        round,
    };
    (w, people)
}

/// A member's credential for a fresh ballot key: blinded, requested, issued on the ledger,
/// then finalized.
fn credential(w: &mut World, member: &SecretKey, seed: u64) -> (SecretKey, Credential) {
    let ballot_key = key(700_000 + seed);
    let pk = w.key.public().unwrap();
    let msg = credential_message(&w.net.params.chain_id, 0, w.round, &ballot_key.public_key());
    let blinding = pk.blind(&msg).unwrap();
    let request = GovAct::RequestCredential {
        round: w.round,
        blinded: blinding.blinded.clone(),
    };
    let (r, ev) = act(&mut w.net, member, request);
    r.unwrap();
    assert_eq!(refused(&ev, member), None);
    // The registrar answers what it reads on the ledger.
    let asked: CredentialRequest = w
        .net
        .get(
            GLOBAL,
            StateKey::CredentialRequest(0, w.round, &member.public_key()),
        )
        .unwrap();
    let blind_sig = w.key.sign_blinded(&asked.blinded).unwrap();
    let issue = GovAct::IssueCredential {
        member: member.public_key(),
        round: w.round,
        blind_sig,
    };
    let (r, ev) = act(&mut w.net, &w.registrar, issue);
    r.unwrap();
    assert_eq!(refused(&ev, &w.registrar), None);
    let answered: CredentialRequest = w
        .net
        .get(
            GLOBAL,
            StateKey::CredentialRequest(0, w.round, &member.public_key()),
        )
        .unwrap();
    let credential = pk
        .finalize(&answered.blind_sig.unwrap(), &blinding, &msg)
        .unwrap();
    (ballot_key, credential)
}

fn ballot(round: u64, c: &Credential, proposal: u64, yes: bool, votes: u32) -> Ballot {
    Ballot {
        foundation: 0,
        round,
        proposal,
        yes,
        votes,
        randomizer: c.randomizer,
        credential: c.signature.clone(),
    }
}

fn ballot_tx(w: &World, k: &SecretKey, nonce: u64, b: Ballot) -> TxEnvelope {
    let body = TxBody {
        account: k.public_key(),
        nonce,
        max_fee: 0,
        tip: 0,
        expires_at_height: w.net.shards[0].height + 10,
        action: Action::Ballot(b),
    };
    w.net.sign_body(k, &body)
}

/// Casts one ballot in a global block of its own.
fn cast(w: &mut World, k: &SecretKey, nonce: u64, b: Ballot) -> Result<(), TxError> {
    let tx = ballot_tx(w, k, nonce, b);
    let (_, ex) = w.net.block(GLOBAL, vec![tx], vec![]);
    tx_result(&ex, 0)
}

/// The board proposes `holder` for the senate: a members' referendum. Returns its number.
fn referendum(w: &mut World, board: &SecretKey, holder: &SecretKey) -> u64 {
    let id = w.net.counter(GLOBAL, StateKey::ProposalCount);
    let (r, ev) = act(&mut w.net, board, appoint(Office::Senate, holder));
    r.unwrap();
    assert_eq!(refused(&ev, board), None);
    id
}

/// The tally recomputed from the ballots on record: (voters, yes, no).
fn recount(w: &World, id: u64, keys: &[&SecretKey]) -> (u64, u64, u64) {
    keys.iter().fold((0, 0, 0), |(n, y, no), k| {
        match w
            .net
            .get::<BallotRecord>(GLOBAL, StateKey::BallotOn(id, &k.public_key()))
        {
            Some(b) if b.yes => (n + 1, y + u64::from(b.votes), no),
            Some(b) => (n + 1, y, no + u64::from(b.votes)),
            None => (n, y, no),
        }
    })
}

#[test]
fn a_referendum_seats_a_senator_by_anonymous_ballots_that_a_recount_confirms() {
    let (mut w, people) = world();
    let round = w.round;
    let candidate = key(600_000);
    let id = referendum(&mut w, &people.board[0], &candidate);
    let p = proposal(&w.net, id);
    assert_eq!(p.referendum.unwrap().members, 4, "the quorum's base");

    let voters = [&people.member, &people.stranger, &people.senate[0]];
    let mut ballots = Vec::new();
    for (i, m) in voters.iter().enumerate() {
        ballots.push(credential(&mut w, m, i as u64));
    }
    let issued: CredentialKeyRecord = w
        .net
        .get(GLOBAL, StateKey::CredentialKey(0, w.round))
        .unwrap();
    assert_eq!(issued.issued, 3);

    // Two yes (3 and 2 votes), one no (4 votes): no leads, 5 to 4... until a re-vote.
    let (k0, c0) = &ballots[0];
    let (k1, c1) = &ballots[1];
    let (k2, c2) = &ballots[2];
    cast(&mut w, k0, 0, ballot(round, c0, id, true, 3)).unwrap();
    cast(&mut w, k1, 0, ballot(round, c1, id, true, 2)).unwrap();
    cast(&mut w, k2, 0, ballot(round, c2, id, false, 4)).unwrap();
    let r = proposal(&w.net, id).referendum.unwrap();
    assert_eq!((r.voters, r.yes, r.no), (3, 5, 4));
    // The third voter changes its mind: its no is withdrawn, its tokens come back first.
    cast(&mut w, k2, 1, ballot(round, c2, id, true, 1)).unwrap();
    let r = proposal(&w.net, id).referendum.unwrap();
    assert_eq!((r.voters, r.yes, r.no), (3, 6, 0));
    let used: NullifierRecord = w
        .net
        .get(GLOBAL, StateKey::Nullifier(&k2.public_key()))
        .unwrap();
    assert_eq!((used.nonce, used.spent), (2, 1));
    // Anyone recounts from the ballots on record.
    assert_eq!(recount(&w, id, &[k0, k1, k2]), (r.voters, r.yes, r.no));
    let counted: CredentialKeyRecord = w
        .net
        .get(GLOBAL, StateKey::CredentialKey(0, w.round))
        .unwrap();
    assert!(counted.voters <= counted.issued);
    assert_eq!(counted.voters, 3);

    // The tally waits for the period's end (not every member voted), then passes.
    let anyone = &people.stranger;
    let (r, ev) = act(&mut w.net, anyone, GovAct::Advance { proposal: id });
    r.unwrap();
    assert_eq!(refused(&ev, anyone), Some(TxError::NotYet));
    to_epoch(&mut w.net, p.closes);
    act(&mut w.net, anyone, GovAct::Advance { proposal: id })
        .0
        .unwrap();
    assert_eq!(proposal(&w.net, id).status, Status::Passed);
    act(&mut w.net, anyone, GovAct::Advance { proposal: id })
        .0
        .unwrap();
    assert_eq!(proposal(&w.net, id).status, Status::Enacted);
    let offices: starling_types::Offices = w.net.get(GLOBAL, StateKey::Offices(0)).unwrap();
    let seat = offices
        .held_by(&candidate.public_key(), epoch(&w.net))
        .unwrap();
    assert_eq!(seat.office, Office::Senate);
    // Closed: a late ballot counts for nothing.
    assert_eq!(
        cast(&mut w, k1, 1, ballot(round, c1, id, false, 1)),
        Err(TxError::VotingClosed)
    );
}

#[test]
fn bad_ballots_and_credential_acts_are_refused_with_their_own_error_and_change_nothing() {
    let (mut w, people) = world();
    let round = w.round;
    let id = referendum(&mut w, &people.board[0], &key(600_000));
    let member = &people.member;
    let (k, c) = credential(&mut w, member, 0);
    let before = proposal(&w.net, id);

    // Ballots.
    let forged = Credential {
        randomizer: c.randomizer,
        signature: vec![7; c.signature.len()],
    };
    let other = key(800_000);
    let mut wrong_round = ballot(round, &c, id, true, 1);
    wrong_round.round += 1;
    let with_fee = {
        let body = TxBody {
            account: k.public_key(),
            nonce: 0,
            max_fee: 1,
            tip: 0,
            expires_at_height: w.net.shards[0].height + 10,
            action: Action::Ballot(ballot(round, &c, id, true, 1)),
        };
        w.net.sign_body(&k, &body)
    };
    let cases: Vec<(TxEnvelope, TxError)> = vec![
        (
            ballot_tx(&w, &k, 0, ballot(round, &forged, id, true, 1)),
            TxError::BadCredential,
        ),
        // Another key cannot use the credential: it signs the ballot key.
        (
            ballot_tx(&w, &other, 0, ballot(round, &c, id, true, 1)),
            TxError::BadCredential,
        ),
        (ballot_tx(&w, &k, 0, wrong_round), TxError::WrongRound),
        (with_fee, TxError::BallotPays),
        (
            ballot_tx(&w, &k, 1, ballot(round, &c, id, true, 1)),
            TxError::NonceGap {
                expected: 0,
                got: 1,
            },
        ),
        // 32 votes cost 1,024 of the members' 1,000 tokens.
        (
            ballot_tx(&w, &k, 0, ballot(round, &c, id, true, 32)),
            TxError::VoteTokens {
                needed: 1_024,
                left: 1_000,
            },
        ),
        (
            ballot_tx(&w, &k, 0, ballot(round, &c, id + 1, true, 1)),
            TxError::UnknownTarget,
        ),
    ];
    for (i, (tx, error)) in cases.into_iter().enumerate() {
        let (_, ex) = w.net.block(GLOBAL, vec![tx], vec![]);
        assert_eq!(tx_result(&ex, 0), Err(error), "case {i}");
        assert_eq!(proposal(&w.net, id), before, "case {i}");
        assert!(!w.net.exists(GLOBAL, StateKey::Nullifier(&k.public_key())));
    }
    // A ballot on a roll call, and a roll-call vote on a referendum.
    let spend_id = id + 1;
    act(&mut w.net, &people.president, spend(&people.stranger, 10))
        .0
        .unwrap();
    assert_eq!(
        cast(&mut w, &k, 0, ballot(round, &c, spend_id, true, 1)),
        Err(TxError::UnknownTarget)
    );
    let senator = &people.senate[0];
    let (_, ev) = act(&mut w.net, senator, vote(id, true, 1));
    assert_eq!(refused(&ev, senator), Some(TxError::BallotsOnly));

    // The replay of a counted ballot, and a credential's last ballot.
    let b = ballot(round, &c, id, true, 1);
    cast(&mut w, &k, 0, b.clone()).unwrap();
    assert_eq!(
        cast(&mut w, &k, 0, b.clone()),
        Err(TxError::NonceReused {
            expected: 1,
            got: 0
        })
    );
    let max = u64::from(MAX_BALLOTS_PER_QUESTION);
    for n in 1..max {
        cast(&mut w, &k, n, b.clone()).unwrap();
    }
    assert_eq!(cast(&mut w, &k, max, b), Err(TxError::TooManyBallots));
    let r = proposal(&w.net, id).referendum.unwrap();
    assert_eq!((r.voters, r.yes, r.no), (1, 1, 0), "re-votes replace");

    // Credential acts.
    let registrar = &w.registrar;
    let pk = w.key.public().unwrap();
    let stranger = &people.stranger;
    let blinded = pk.blind(b"x").unwrap().blinded.clone();
    let fresh = RegistrarKey::generate(2048)
        .unwrap()
        .public()
        .unwrap()
        .to_der();
    let acts: Vec<(&SecretKey, GovAct, TxError)> = vec![
        (
            registrar,
            GovAct::BallotKey {
                foundation: 0,
                round: w.round,
                key: fresh.to_vec(),
            },
            TxError::KeyPublished,
        ),
        (
            stranger,
            GovAct::BallotKey {
                foundation: 0,
                round: w.round + 1,
                key: fresh.to_vec(),
            },
            TxError::NotRegistrar,
        ),
        (
            registrar,
            GovAct::BallotKey {
                foundation: 0,
                round: epoch(&w.net) / ROUND_EPOCHS + 2,
                key: fresh.to_vec(),
            },
            TxError::WrongRound,
        ),
        (
            registrar,
            GovAct::BallotKey {
                foundation: 0,
                round: epoch(&w.net) / ROUND_EPOCHS + 1,
                key: fresh[..fresh.len() - 3].to_vec(),
            },
            TxError::BadCredentialKey,
        ),
        (
            &people.president,
            GovAct::RequestCredential {
                round: w.round,
                blinded: blinded.clone(),
            },
            TxError::NotMember,
        ),
        (
            member,
            GovAct::RequestCredential {
                round: w.round,
                blinded: blinded.clone(),
            },
            TxError::CredentialIssued,
        ),
        (
            registrar,
            GovAct::IssueCredential {
                member: member.public_key(),
                round: w.round,
                blind_sig: w.key.sign_blinded(&blinded).unwrap(),
            },
            TxError::CredentialIssued,
        ),
    ];
    let registrar = foundation_key(0);
    for (i, (k, a, error)) in acts.into_iter().enumerate() {
        let (_, ev) = act(&mut w.net, k, a);
        assert_eq!(refused(&ev, k), Some(error), "act {i}");
    }
    // The stranger asks; a wrong answer is refused and the request stays open.
    act(
        &mut w.net,
        stranger,
        GovAct::RequestCredential {
            round: w.round,
            blinded: blinded.clone(),
        },
    )
    .0
    .unwrap();
    let wrong = w
        .key
        .sign_blinded(&pk.blind(b"y").unwrap().blinded.clone())
        .unwrap();
    let (_, ev) = act(
        &mut w.net,
        &registrar,
        GovAct::IssueCredential {
            member: stranger.public_key(),
            round: w.round,
            blind_sig: wrong,
        },
    );
    assert_eq!(refused(&ev, &registrar), Some(TxError::BadCredential));
    let record: CredentialKeyRecord = w
        .net
        .get(GLOBAL, StateKey::CredentialKey(0, w.round))
        .unwrap();
    assert_eq!((record.issued, record.voters), (1, 1));
}

/// A credential the registrar signs off the ledger (no request, no issuance log).
fn forged_credential(w: &World, ballot_key: &SecretKey) -> Credential {
    let pk: CredentialKey = w.key.public().unwrap();
    let msg = credential_message(&w.net.params.chain_id, 0, w.round, &ballot_key.public_key());
    let blinding = pk.blind(&msg).unwrap();
    let sig = w.key.sign_blinded(&blinding.blinded).unwrap();
    pk.finalize(&sig, &blinding, &msg).unwrap()
}

#[test]
fn a_credential_beyond_the_issuance_log_counts_nothing_and_voids_the_round() {
    let (mut w, people) = world();
    let round = w.round;
    let id = referendum(&mut w, &people.board[0], &key(600_000));
    let (k, c) = credential(&mut w, &people.member, 0);
    // The registrar votes first, in the place of the member it issued a credential to.
    let extra = key(900_000);
    let off_ledger = forged_credential(&w, &extra);
    cast(&mut w, &extra, 0, ballot(round, &off_ledger, id, false, 5)).unwrap();
    // The member's own ballot, beyond the count the log issued, is the proof.
    let tx = ballot_tx(&w, &k, 0, ballot(round, &c, id, true, 1));
    let (_, ex) = w.net.block(GLOBAL, vec![tx], vec![]);
    assert_eq!(tx_result(&ex, 0), Ok(()));
    assert!(ex
        .events
        .contains(&starling_ledger::Event::CredentialForged {
            foundation: 0,
            round
        }));
    let key_record: CredentialKeyRecord = w
        .net
        .get(GLOBAL, StateKey::CredentialKey(0, round))
        .unwrap();
    assert!(key_record.forged);
    assert_eq!((key_record.issued, key_record.voters), (1, 1));
    let r = proposal(&w.net, id).referendum.unwrap();
    assert_eq!(
        (r.voters, r.yes, r.no),
        (1, 0, 5),
        "the proof counted nothing"
    );
    // The referendum is void: rejected at its tally, the proposer's deposit back.
    let closes = proposal(&w.net, id).closes;
    to_epoch(&mut w.net, closes);
    let anyone = &people.stranger;
    let (r, ev) = act(&mut w.net, anyone, GovAct::Advance { proposal: id });
    r.unwrap();
    assert!(ev.contains(&starling_ledger::Event::ReferendumVoid { proposal: id }));
    assert_eq!(proposal(&w.net, id).status, Status::Rejected);
}

#[test]
fn a_referendum_is_never_tallied_before_its_vote_closes() {
    let (mut w, people) = world();
    let round = w.round;
    let id = referendum(&mut w, &people.board[0], &key(600_000));
    assert_eq!(proposal(&w.net, id).referendum.unwrap().members, 4);
    // Four ballot keys vote (as many as members when it opened): still not over.
    let voters = [
        &people.member,
        &people.stranger,
        &people.senate[0],
        &people.senate[1],
    ];
    for (i, m) in voters.into_iter().enumerate() {
        let (k, c) = credential(&mut w, m, i as u64);
        cast(&mut w, &k, 0, ballot(round, &c, id, true, 1)).unwrap();
    }
    let anyone = &people.president;
    let (_, ev) = act(&mut w.net, anyone, GovAct::Advance { proposal: id });
    assert_eq!(refused(&ev, anyone), Some(TxError::NotYet));
    assert_eq!(proposal(&w.net, id).status, Status::Voting);
}

#[test]
fn refused_ballots_take_their_gas_of_the_block() {
    let (mut w, people) = world();
    let round = w.round;
    let id = referendum(&mut w, &people.board[0], &key(600_000));
    let (k, c) = credential(&mut w, &people.member, 0);
    let junk: Vec<TxEnvelope> = (0..3)
        .map(|i| {
            let bad = Credential {
                randomizer: [i; 32],
                signature: c.signature.clone(),
            };
            ballot_tx(
                &w,
                &key(950_000 + u64::from(i)),
                0,
                ballot(round, &bad, id, true, 1),
            )
        })
        .collect();
    let good = ballot_tx(&w, &k, 0, ballot(round, &c, id, true, 1));
    let mut txs = junk;
    txs.push(good);
    let (block, ex) = w.net.block(GLOBAL, txs, vec![]);
    let gas: Vec<u64> = ex
        .receipts
        .iter()
        .filter_map(|r| match r {
            starling_types::Receipt::Tx(t) => Some(t.gas_used),
            _ => None,
        })
        .collect();
    assert_eq!(gas.len(), 4);
    assert!(gas.iter().all(|g| *g > 20_000), "{gas:?}");
    assert_eq!(ex.gas_used, gas.iter().sum::<u64>());
    assert_eq!(tx_result(&ex, 3), Ok(()));
    assert!(block.txs.len() == 4);
}

#[test]
fn credentials_may_be_asked_and_issued_for_the_next_round_before_it_begins() {
    let (mut w, people) = world();
    let next = w.round + 1;
    let key_next = RegistrarKey::generate(2048).unwrap();
    let registrar = &w.registrar;
    let publish = GovAct::BallotKey {
        foundation: 0,
        round: next,
        key: key_next.public().unwrap().to_der(),
    };
    let (r, ev) = act(&mut w.net, registrar, publish);
    r.unwrap();
    assert_eq!(refused(&ev, registrar), None);
    let blinded = key_next
        .public()
        .unwrap()
        .blind(b"later")
        .unwrap()
        .blinded
        .clone();
    let request = GovAct::RequestCredential {
        round: next,
        blinded: blinded.clone(),
    };
    let (_, ev) = act(&mut w.net, &people.member, request);
    assert_eq!(refused(&ev, &people.member), None);
    let issue = GovAct::IssueCredential {
        member: people.member.public_key(),
        round: next,
        blind_sig: key_next.sign_blinded(&blinded).unwrap(),
    };
    let (_, ev) = act(&mut w.net, &w.registrar, issue);
    assert_eq!(refused(&ev, &w.registrar), None);
    // Not two rounds ahead.
    let early = GovAct::RequestCredential {
        round: next + 1,
        blinded,
    };
    let (_, ev) = act(&mut w.net, &people.stranger, early);
    assert_eq!(refused(&ev, &people.stranger), Some(TxError::WrongRound));
}

#[test]
fn what_the_registrar_saw_shares_no_value_with_the_ballot() {
    let (mut w, people) = world();
    let round = w.round;
    let id = referendum(&mut w, &people.board[0], &key(600_000));
    let member = &people.member;
    let (k, c) = credential(&mut w, member, 0);
    let request: CredentialRequest = w
        .net
        .get(
            GLOBAL,
            StateKey::CredentialRequest(0, w.round, &member.public_key()),
        )
        .unwrap();
    let tx = ballot_tx(&w, &k, 0, ballot(round, &c, id, true, 1));
    let ballot_bytes = starling_types::Encode::to_bytes(&tx);
    // The registrar's view: the member's key, the blinded message, the blind signature.
    let member_key = starling_types::Encode::to_bytes(&member.public_key());
    let seen = [
        member_key.as_slice(),
        &request.blinded,
        request.blind_sig.as_deref().unwrap(),
    ];
    for value in seen {
        // No 16-byte run of anything the registrar saw appears in the ballot.
        for window in value.windows(16) {
            assert!(
                !ballot_bytes.windows(16).any(|w| w == window),
                "the ballot repeats what the registrar saw"
            );
        }
    }
    // And the ballot's own values are nowhere in the registrar's view.
    let view = [
        member_key.clone(),
        request.blinded.clone(),
        request.blind_sig.clone().unwrap(),
    ]
    .concat();
    for value in [
        starling_types::Encode::to_bytes(&k.public_key()),
        c.signature.clone(),
        c.randomizer.to_vec(),
    ] {
        assert!(!view.windows(16).any(|w| value.windows(16).any(|v| v == w)));
    }
    cast(&mut w, &k, 0, ballot(round, &c, id, true, 1)).unwrap();
}

#[test]
fn admission_takes_a_ballot_only_if_the_ledger_would_count_it() {
    use starling_ledger::ballots::BallotCheck;
    let (mut w, people) = world();
    let round = w.round;
    let id = referendum(&mut w, &people.board[0], &key(600_000));
    let (k, c) = credential(&mut w, &people.member, 0);
    let check = |w: &World, tx: &TxEnvelope| {
        let body = tx.body().unwrap();
        let g = &w.net.shards[0];
        g.ledger
            .check_ballot(&g.state, &body, tx.encoded_len(), g.height + 1)
    };
    let good = ballot_tx(&w, &k, 0, ballot(round, &c, id, true, 2));
    assert_eq!(check(&w, &good), Ok(0));
    let forged = Credential {
        randomizer: [1; 32],
        signature: c.signature.clone(),
    };
    let bad = ballot_tx(&w, &k, 0, ballot(round, &forged, id, true, 2));
    assert_eq!(
        check(&w, &bad),
        Err(BallotCheck::Refused(TxError::BadCredential))
    );
    let greedy = ballot_tx(&w, &k, 0, ballot(round, &c, id, true, 40));
    assert!(matches!(
        check(&w, &greedy),
        Err(BallotCheck::Refused(TxError::VoteTokens { .. }))
    ));
    // What it checks is what the block does.
    cast(&mut w, &k, 0, ballot(round, &c, id, true, 2)).unwrap();
    let again = ballot_tx(&w, &k, 1, ballot(round, &c, id, false, 2));
    assert_eq!(
        check(&w, &again),
        Ok(1),
        "a re-vote, at the key's next nonce"
    );
    // Not a ballot: the pool's account rules apply instead.
    let post = w.net.sign(&people.member, 0, post("hi"));
    assert!(matches!(
        check(&w, &post),
        Err(BallotCheck::Refused(TxError::WrongShard { .. }))
    ));
}

#[test]
fn a_block_of_many_ballots_gets_the_same_verdicts_checked_on_every_core() {
    let (mut w, people) = world();
    let round = w.round;
    let id = referendum(&mut w, &people.board[0], &key(600_000));
    let (k, c) = credential(&mut w, &people.member, 0);
    // Forty ballots whose credentials do not verify, and one that does, in the middle:
    // enough for the credentials to be checked ahead, on several threads.
    let mut txs: Vec<TxEnvelope> = (0..40u8)
        .map(|i| {
            let mut bad = c.clone();
            bad.signature[i as usize] ^= 1;
            ballot_tx(
                &w,
                &key(960_000 + u64::from(i)),
                0,
                ballot(round, &bad, id, true, 1),
            )
        })
        .collect();
    txs.insert(20, ballot_tx(&w, &k, 0, ballot(round, &c, id, true, 3)));
    let (_, ex) = w.net.block(GLOBAL, txs, vec![]);
    for i in 0..41u32 {
        let expected = if i == 20 {
            Ok(())
        } else {
            Err(TxError::BadCredential)
        };
        assert_eq!(tx_result(&ex, i), expected, "ballot {i}");
    }
    let r = proposal(&w.net, id).referendum.unwrap();
    assert_eq!((r.voters, r.yes), (1, 3));
}
