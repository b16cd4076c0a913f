//! Membership (rules FM1, FM2, M10–M12) and sponsorship (SP1, SP2, M13, M14): only a
//! foundation's registrar admits members, one foundation per account, only members get the
//! fee allowance, and a sponsor pays another account's base fees with its own SPEND.
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;
use common::*;
use starling_crypto::SecretKey;
use starling_ledger::records::{MemberRecord, Membership, Pool, StateKey};
use starling_ledger::{Event, TxError};
use starling_types::{Action, Asset, Encode as _, Federation, FoundationStatus, ShardId, TxBody};

const GLOBAL: ShardId = ShardId::GLOBAL;

/// The three foundations' registrars and `n` accounts on each account shard, all funded.
fn setup(n: usize) -> (Net, Vec<SecretKey>, Vec<SecretKey>) {
    let p = params(2);
    let registrars: Vec<SecretKey> = (0..3).map(foundation_key).collect();
    let mut people = keys_on(&p, ShardId(1), n, 100);
    people.extend(keys_on(&p, ShardId(2), n, 100));
    let funded: Vec<&SecretKey> = registrars.iter().chain(&people).collect();
    (Net::new(2, &funded), registrars, people)
}

fn nonce(net: &Net, k: &SecretKey) -> u64 {
    net.account(&k.public_key()).map_or(0, |r| r.nonce)
}

fn run(net: &mut Net, k: &SecretKey, action: Action) -> (Result<(), TxError>, Vec<Event>) {
    let n = nonce(net, k);
    net.run_settled(k, n, action)
}

fn fee_of(events: &[Event]) -> u128 {
    events
        .iter()
        .find_map(|e| match e {
            Event::TxApplied { fee, .. } => Some(*fee),
            _ => None,
        })
        .unwrap()
}

fn spend(net: &Net, k: &SecretKey) -> u128 {
    net.account(&k.public_key()).unwrap().balance(Asset::Spend)
}

#[test]
fn only_members_have_an_allowance_and_the_foundation_that_admitted_them_pays() {
    let (mut net, registrars, people) = setup(1);
    let alice = &people[1];
    let shard = net.shard_of(alice);
    let me = alice.public_key();

    // Not a member: the balance pays everything, however new the account is.
    let before = spend(&net, alice);
    let (r, ev) = run(&mut net, alice, post("before"));
    r.unwrap();
    assert_eq!(spend(&net, alice), before - fee_of(&ev));
    assert_eq!(net.account(&me).unwrap().member, None);

    // Foundation 1's registrar admits her: the registry on the global shard records it and
    // counts it, and her shard hears of it and starts her allowance.
    let (r, ev) = run(&mut net, &registrars[1], Action::AdmitMember { member: me });
    r.unwrap();
    assert!(ev.contains(&Event::MembershipChanged {
        account: me,
        foundation: 1,
        member: true
    }));
    let rec: MemberRecord = net.get(GLOBAL, StateKey::Member(&me)).unwrap();
    assert_eq!(
        (rec.foundation, rec.registrar),
        (1, registrars[1].public_key())
    );
    assert_eq!(net.counter(GLOBAL, StateKey::MemberCount(1)), 1);
    let acct = net.account(&me).unwrap();
    assert!(matches!(
        acct.member,
        Some(Membership { foundation: 1, .. })
    ));
    assert_eq!(acct.allowance, net.params.allowance.initial);

    // Now the allowance pays the base cost, from foundation 1's treasury on her shard: the
    // balance pays only the tip.
    let treasury = net.pool(shard, Pool::Foundation(1));
    let before = spend(&net, alice);
    let (r, ev) = run(&mut net, alice, post("as a member"));
    r.unwrap();
    let tip = 10;
    let base = fee_of(&ev) - tip;
    assert_eq!(spend(&net, alice), before - tip);
    assert_eq!(net.pool(shard, Pool::Foundation(1)), treasury - base);

    // Revoked: the registry forgets her, the count drops, and the allowance is gone.
    let (r, _) = run(
        &mut net,
        &registrars[1],
        Action::RevokeMember { member: me },
    );
    r.unwrap();
    assert!(!net.exists(GLOBAL, StateKey::Member(&me)));
    assert_eq!(net.counter(GLOBAL, StateKey::MemberCount(1)), 0);
    let acct = net.account(&me).unwrap();
    assert_eq!((acct.member, acct.allowance), (None, 0));
    let before = spend(&net, alice);
    let (r, ev) = run(&mut net, alice, post("after"));
    r.unwrap();
    assert_eq!(spend(&net, alice), before - fee_of(&ev));
}

#[test]
fn only_registrars_attest_and_an_account_belongs_to_one_foundation_at_a_time() {
    let (mut net, registrars, people) = setup(2);
    let (alice, bob) = (&people[0], &people[2]);
    let me = alice.public_key();

    // A stranger is no registrar: refused on its own shard, nothing sent.
    let (r, ev) = run(&mut net, bob, Action::AdmitMember { member: me });
    assert_eq!(r, Err(TxError::NotRegistrar));
    assert_eq!(ev.len(), 1, "{ev:?}");
    // A registrar cannot admit itself.
    let own = registrars[0].public_key();
    let (r, _) = run(
        &mut net,
        &registrars[0],
        Action::AdmitMember { member: own },
    );
    assert_eq!(r, Err(TxError::SelfTarget));
    // Only a member can leave.
    let (r, _) = run(&mut net, alice, Action::LeaveFoundation);
    assert_eq!(r, Err(TxError::NotMember));

    // Foundation 0 admits her; foundation 1's admission is refused by the registry, and
    // foundation 1 cannot revoke someone who is not its member.
    run(&mut net, &registrars[0], Action::AdmitMember { member: me })
        .0
        .unwrap();
    let (r, ev) = run(&mut net, &registrars[1], Action::AdmitMember { member: me });
    r.unwrap();
    assert!(ev.contains(&Event::MembershipRefused {
        account: me,
        error: TxError::AlreadyMember { foundation: 0 }
    }));
    let (r, ev) = run(
        &mut net,
        &registrars[1],
        Action::RevokeMember { member: me },
    );
    r.unwrap();
    assert!(ev.contains(&Event::MembershipRefused {
        account: me,
        error: TxError::NotMember
    }));
    assert_eq!(
        net.get::<MemberRecord>(GLOBAL, StateKey::Member(&me))
            .unwrap()
            .foundation,
        0
    );
    assert_eq!(net.counter(GLOBAL, StateKey::MemberCount(1)), 0);
    // Admitted again by the same foundation: nothing changes, nothing is counted twice, and
    // her allowance does not start over.
    run(&mut net, alice, post("spend some allowance"))
        .0
        .unwrap();
    let spent = net.account(&me).unwrap().allowance;
    let (r, ev) = run(&mut net, &registrars[0], Action::AdmitMember { member: me });
    r.unwrap();
    assert!(!ev
        .iter()
        .any(|e| matches!(e, Event::MembershipChanged { .. })));
    assert_eq!(net.counter(GLOBAL, StateKey::MemberCount(0)), 1);
    assert_eq!(net.account(&me).unwrap().allowance, spent);

    // She leaves; then foundation 1 may admit her.
    run(&mut net, alice, Action::LeaveFoundation).0.unwrap();
    assert_eq!(net.account(&me).unwrap().member, None);
    assert_eq!(net.counter(GLOBAL, StateKey::MemberCount(0)), 0);
    run(&mut net, &registrars[1], Action::AdmitMember { member: me })
        .0
        .unwrap();
    assert_eq!(
        net.account(&me).unwrap().member.map(|m| m.foundation),
        Some(1)
    );

    // A registrar may admit a key that holds nothing yet: its account exists from then on.
    let newcomer = key(777_777).public_key();
    run(
        &mut net,
        &registrars[2],
        Action::AdmitMember { member: newcomer },
    )
    .0
    .unwrap();
    let rec = net.account(&newcomer).unwrap();
    assert_eq!(rec.member.map(|m| m.foundation), Some(2));
    assert_eq!(rec.balances, [0; 3]);
}

/// A transaction with no tip, so that an account holding nothing can send it.
fn run_untipped(net: &mut Net, k: &SecretKey, action: Action) -> Result<(), TxError> {
    let body = TxBody {
        account: k.public_key(),
        nonce: nonce(net, k),
        max_fee: 1_000_000_000,
        tip: 0,
        expires_at_height: 1_000,
        action,
    };
    let tx = net.sign_body(k, &body);
    let (_, ex) = net.block(net.shard_of(k), vec![tx], vec![]);
    tx_result(&ex, 0)
}

#[test]
fn a_sponsor_pays_base_fees_until_it_ends_and_what_is_left_comes_back() {
    let (mut net, _, people) = setup(2);
    let (sponsor, other) = (&people[0], &people[1]);
    let local_rival = &people[3];
    assert_eq!(net.shard_of(sponsor), ShardId(1));
    assert_eq!(net.shard_of(local_rival), ShardId(2));
    // A newcomer on shard 2 who holds nothing.
    let newcomer = keys_on(&net.params, ShardId(2), 1, 50_000).remove(0);
    let nk = newcomer.public_key();
    assert!(run_untipped(&mut net, &newcomer, post("hi")).is_err());

    // Over the cap, or nothing: refused where it is sent.
    let cap = net.params.sponsorship_cap;
    let (r, _) = run(
        &mut net,
        sponsor,
        Action::Sponsor {
            account: nk,
            amount: cap + 1,
        },
    );
    assert_eq!(r, Err(TxError::SponsorshipCap { cap }));
    let (r, _) = run(
        &mut net,
        sponsor,
        Action::Sponsor {
            account: nk,
            amount: 0,
        },
    );
    assert_eq!(r, Err(TxError::InvalidAmount));

    // Across shards: the SPEND leaves the sponsor and waits on the newcomer's record.
    let amount = 100_000_000;
    let before = spend(&net, sponsor);
    let (r, ev) = run(
        &mut net,
        sponsor,
        Action::Sponsor {
            account: nk,
            amount,
        },
    );
    r.unwrap();
    assert_eq!(spend(&net, sponsor), before - fee_of(&ev) - amount);
    let s = net.account(&nk).unwrap().sponsor.unwrap();
    assert_eq!((s.by, s.left), (sponsor.public_key(), amount));

    // The newcomer posts: the sponsorship pays the base cost; its own balance stays empty.
    run_untipped(&mut net, &newcomer, post("thanks to my sponsor")).unwrap();
    let rec = net.account(&nk).unwrap();
    assert_eq!(rec.balances, [0; 3]);
    let left = rec.sponsor.unwrap().left;
    assert!(left < amount);
    // A tip is not the sponsor's to pay.
    let tipped = net.sign(&newcomer, 1, post("tip"));
    let (_, ex) = net.block(ShardId(2), vec![tipped], vec![]);
    assert!(matches!(
        tx_result(&ex, 0),
        Err(TxError::InsufficientBalance { .. })
    ));

    // A second sponsor on the same shard is refused at once; one on another shard gets all
    // of it back.
    let (r, _) = run(
        &mut net,
        local_rival,
        Action::Sponsor {
            account: nk,
            amount: 5,
        },
    );
    assert_eq!(r, Err(TxError::SponsoredByAnother));
    let before = spend(&net, other);
    let (r, ev) = run(
        &mut net,
        other,
        Action::Sponsor {
            account: nk,
            amount: 7_000,
        },
    );
    r.unwrap();
    assert!(ev.contains(&Event::Sponsored {
        sponsor: other.public_key(),
        account: nk,
        amount: 0,
        refunded: 7_000
    }));
    assert_eq!(spend(&net, other), before - fee_of(&ev));

    // Only the sponsor ends it; what is left goes back to it.
    let (r, _) = run(
        &mut net,
        local_rival,
        Action::EndSponsorship { account: nk },
    );
    assert_eq!(r, Err(TxError::NotSponsor));
    let before = spend(&net, sponsor);
    let (r, ev) = run(&mut net, sponsor, Action::EndSponsorship { account: nk });
    r.unwrap();
    assert_eq!(spend(&net, sponsor), before - fee_of(&ev) + left);
    assert_eq!(net.account(&nk).unwrap().sponsor, None);
    assert!(run_untipped(&mut net, &newcomer, post("on my own now")).is_err());
}

#[test]
fn a_sponsorship_tops_up_to_the_cap_and_the_rest_comes_back() {
    let (mut net, _, people) = setup(2);
    let (sponsor, same_shard) = (&people[0], &people[1]);
    let target = people[2].public_key();
    let cap = net.params.sponsorship_cap;
    run(
        &mut net,
        sponsor,
        Action::Sponsor {
            account: target,
            amount: cap,
        },
    )
    .0
    .unwrap();
    let before = spend(&net, sponsor);
    let (r, ev) = run(
        &mut net,
        sponsor,
        Action::Sponsor {
            account: target,
            amount: 9,
        },
    );
    r.unwrap();
    // Already at the cap: all 9 come back.
    assert_eq!(spend(&net, sponsor), before - fee_of(&ev));
    assert_eq!(net.account(&target).unwrap().sponsor.unwrap().left, cap);
    // On one shard the same top-up is refused outright.
    let neighbour = same_shard.public_key();
    assert_eq!(net.shard_of(same_shard), ShardId(1));
    run(
        &mut net,
        sponsor,
        Action::Sponsor {
            account: neighbour,
            amount: cap,
        },
    )
    .0
    .unwrap();
    let (r, _) = run(
        &mut net,
        sponsor,
        Action::Sponsor {
            account: neighbour,
            amount: 1,
        },
    );
    assert_eq!(r, Err(TxError::SponsorshipCap { cap }));
}

/// Found in review of the first version: a sponsorship of 1 unit, from anyone, locked every
/// real sponsor out of an account with nothing of its own (it could never pay a fee to get
/// rid of it). Now a larger offer displaces a smaller one, which goes back to its sponsor.
#[test]
fn a_dust_sponsorship_does_not_lock_out_a_real_sponsor() {
    let (mut net, _, people) = setup(2);
    let (griefer, sponsor, local_friend) = (&people[0], &people[1], &people[3]);
    let newcomer = keys_on(&net.params, ShardId(2), 1, 60_000).remove(0);
    let nk = newcomer.public_key();
    run(
        &mut net,
        griefer,
        Action::Sponsor {
            account: nk,
            amount: 1,
        },
    )
    .0
    .unwrap();
    let before = spend(&net, griefer);
    let (r, ev) = run(
        &mut net,
        sponsor,
        Action::Sponsor {
            account: nk,
            amount: 90_000_000,
        },
    );
    r.unwrap();
    assert!(ev.contains(&Event::SponsorshipEnded {
        sponsor: griefer.public_key(),
        account: nk,
        refunded: 1
    }));
    assert_eq!(spend(&net, griefer), before + 1);
    let s = net.account(&nk).unwrap().sponsor.unwrap();
    assert_eq!((s.by, s.left), (sponsor.public_key(), 90_000_000));
    run_untipped(&mut net, &newcomer, post("sponsored at last")).unwrap();
    // On the account's own shard too: a larger offer displaces, a smaller one is refused.
    let left = net.account(&nk).unwrap().sponsor.unwrap().left;
    let (r, _) = run(
        &mut net,
        local_friend,
        Action::Sponsor {
            account: nk,
            amount: left,
        },
    );
    assert_eq!(r, Err(TxError::SponsoredByAnother));
    let before = spend(&net, sponsor);
    let (r, _) = run(
        &mut net,
        local_friend,
        Action::Sponsor {
            account: nk,
            amount: left + 1,
        },
    );
    r.unwrap();
    assert_eq!(
        net.account(&nk).unwrap().sponsor.unwrap().by,
        local_friend.public_key()
    );
    assert_eq!(spend(&net, sponsor), before + left);
    // Nobody ends a sponsorship of itself, and ending one you do not hold changes nothing
    // (across shards it is an event, not an error the sender could see at once).
    let r = run_untipped(&mut net, &newcomer, Action::EndSponsorship { account: nk });
    assert_eq!(r, Err(TxError::SelfTarget));
    let (r, ev) = run(&mut net, griefer, Action::EndSponsorship { account: nk });
    r.unwrap();
    assert!(ev.contains(&Event::SponsorshipRefused {
        sponsor: griefer.public_key(),
        account: nk,
        error: TxError::NotSponsor
    }));
    assert_eq!(
        net.account(&nk).unwrap().sponsor.unwrap().by,
        local_friend.public_key()
    );
}

/// Found in review: a foundation in receivership kept admitting members and paying their
/// allowances. Now only a foundation taking charges does either.
#[test]
fn a_foundation_in_receivership_admits_no_one_and_pays_no_allowance() {
    let (mut net, registrars, people) = setup(1);
    let (alice, bob) = (&people[0], &people[1]);
    run(
        &mut net,
        &registrars[1],
        Action::AdmitMember {
            member: alice.public_key(),
        },
    )
    .0
    .unwrap();
    let mut federation: Federation = net.get(GLOBAL, StateKey::Federation).unwrap();
    federation.foundations[1].status = FoundationStatus::Receivership;
    federation.version += 1;
    for l in &mut net.shards {
        let writes = [(StateKey::Federation.hash(), Some(federation.to_bytes()))].into();
        l.state.commit(&writes);
    }
    let (r, ev) = run(
        &mut net,
        &registrars[1],
        Action::AdmitMember {
            member: bob.public_key(),
        },
    );
    r.unwrap();
    assert!(ev.contains(&Event::MembershipRefused {
        account: bob.public_key(),
        error: TxError::NotRegistrar
    }));
    assert_eq!(net.account(&bob.public_key()).unwrap().member, None);
    // Alice is still its member, but her fees are hers to pay now.
    let before = spend(&net, alice);
    let (r, ev) = run(&mut net, alice, post("receivership"));
    r.unwrap();
    assert_eq!(spend(&net, alice), before - fee_of(&ev));
}
