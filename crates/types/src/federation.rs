//! The federation of foundations as every shard holds it (rules FD1 and FD2): the foundations
//! in registry order, each one's status, and the seed that assigns accounts to them for the
//! current charge period.
//!
//! FD1 (charges): an account's foundation is the one among those that take charges (Active
//! or UnderReview) with the highest `blake3("starling/charges/v1" || seed || index ||
//! account)`. Rendezvous hashing, not round robin: it needs no per-account record, spreads
//! accounts evenly in expectation, and when one foundation stops taking charges (it goes into
//! receivership) only its own accounts move, each to an evenly drawn other; when it takes them
//! again, exactly those come back.
//!
//! FD2 (reshuffles): the block that closes global epoch `e`, when `e + 1` is a multiple of
//! `charge_period_epochs` and it draws the committees of `e + 1`, starts period
//! `(e + 1) / charge_period_epochs` with the seed `blake3("starling/charges/v1/period" ||
//! period || s)`, where `s` is the committee seed it draws: as hard to steer as that seed
//! (rule R1: no proposer chooses it; `b` leaders withholding their reveals choose among at
//! most `2^b`). It sends the federation to every account shard, which keeps the newest
//! version it receives from the global shard, if its foundations are the network's. A
//! boundary that draws no committee (an empty registry) has no fresh seed: the period goes
//! on.

use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::{AccountId, Hash, PublicKey};

/// Most foundations a network can have.
pub const MAX_FOUNDATIONS: usize = 64;

/// Where a foundation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FoundationStatus {
    Active,
    /// A dissolution motion against it is open; it keeps its charges meanwhile.
    UnderReview,
    /// Dissolved: its charges go to the others (and, once dissolution is built, its fee
    /// cut is escrowed).
    Receivership,
    /// New officers are being confirmed; its charges are still with the others.
    Reconstituting,
}

impl FoundationStatus {
    pub const ALL: [FoundationStatus; 4] = [
        FoundationStatus::Active,
        FoundationStatus::UnderReview,
        FoundationStatus::Receivership,
        FoundationStatus::Reconstituting,
    ];

    fn code(self) -> u8 {
        match self {
            FoundationStatus::Active => 0,
            FoundationStatus::UnderReview => 1,
            FoundationStatus::Receivership => 2,
            FoundationStatus::Reconstituting => 3,
        }
    }

    /// Whether accounts are assigned to it (rule FD1).
    pub fn takes_charges(self) -> bool {
        matches!(
            self,
            FoundationStatus::Active | FoundationStatus::UnderReview
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            FoundationStatus::Active => "active",
            FoundationStatus::UnderReview => "under_review",
            FoundationStatus::Receivership => "receivership",
            FoundationStatus::Reconstituting => "reconstituting",
        }
    }
}

/// One foundation of the federation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Foundation {
    /// Its treasury account (the genesis foundation account).
    pub treasury: AccountId,
    /// The account that admits and revokes its verified members (rule FM1).
    pub registrar: AccountId,
    pub status: FoundationStatus,
}

/// The federation as a shard holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Federation {
    /// Bumped by every change; an account shard keeps the newest it receives.
    pub version: u64,
    /// The charge period `seed` assigns accounts in (rule FD2); 0 from genesis.
    pub period: u64,
    pub seed: Hash,
    /// In registry order: a foundation's index never changes.
    pub foundations: Vec<Foundation>,
}

impl Federation {
    /// Rule FD1: the index of `account`'s foundation.
    pub fn charge_of(&self, account: &AccountId) -> u16 {
        let enc = account.encoded();
        let mut best: Option<(Hash, u16)> = None;
        for (i, f) in self.foundations.iter().enumerate() {
            if !f.status.takes_charges() {
                continue;
            }
            let i = i as u16;
            let score = Hash::of(&[b"starling/charges/v1", &self.seed.0, &i.to_be_bytes(), &enc]);
            if best.is_none_or(|(b, _)| score > b) {
                best = Some((score, i));
            }
        }
        // (Decoding refuses a federation where none takes charges.)
        best.map_or(0, |(_, i)| i)
    }

    /// Rule FD2: the seed of charge period `period`, from the committee seed drawn at its
    /// start.
    pub fn period_seed(period: u64, committee_seed: &Hash) -> Hash {
        Hash::of(&[
            b"starling/charges/v1/period",
            &period.to_be_bytes(),
            &committee_seed.0,
        ])
    }

    /// The index of the foundation whose registrar `account` is.
    pub fn registrar_of(&self, account: &AccountId) -> Option<u16> {
        self.foundations
            .iter()
            .position(|f| f.registrar == *account)
            .map(|i| i as u16)
    }

    /// How many foundations take charges.
    pub fn taking_charges(&self) -> usize {
        self.foundations
            .iter()
            .filter(|f| f.status.takes_charges())
            .count()
    }

    /// What every federation must be: 1 to 64 foundations (genesis needs 3), at least one
    /// taking charges. Checked when decoded and before one is written.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.foundations.is_empty() || self.foundations.len() > MAX_FOUNDATIONS {
            return Err(DecodeError::InvalidValue("foundations (1..=64)"));
        }
        if self.taking_charges() == 0 {
            return Err(DecodeError::InvalidValue(
                "federation (no foundation takes charges)",
            ));
        }
        let registrars: std::collections::BTreeSet<_> =
            self.foundations.iter().map(|f| f.registrar).collect();
        if registrars.len() != self.foundations.len() {
            return Err(DecodeError::InvalidValue(
                "federation (a registrar serves one foundation)",
            ));
        }
        Ok(())
    }
}

impl Encode for Federation {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u8(out, 2);
        put::u64(out, self.version);
        put::u64(out, self.period);
        self.seed.encode(out);
        put::seq(out, &self.foundations, |o, f| {
            f.treasury.encode(o);
            f.registrar.encode(o);
            put::u8(o, f.status.code());
        });
    }
}

impl Decode for Federation {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let version = r.u8()?;
        if version != 2 {
            return Err(DecodeError::UnsupportedVersion {
                what: "federation",
                version,
            });
        }
        let f = Federation {
            version: r.u64()?,
            period: r.u64()?,
            seed: Hash::decode(r)?,
            foundations: r.seq("foundations", MAX_FOUNDATIONS, |r| {
                let treasury = PublicKey::decode(r)?;
                let registrar = PublicKey::decode(r)?;
                let code = r.u8()?;
                let status = FoundationStatus::ALL
                    .into_iter()
                    .find(|s| s.code() == code)
                    .ok_or(DecodeError::InvalidTag {
                        what: "foundation status",
                        tag: code,
                    })?;
                Ok(Foundation {
                    treasury,
                    registrar,
                    status,
                })
            })?,
        };
        f.validate()?;
        Ok(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn federation(n: u8) -> Federation {
        Federation {
            version: 0,
            period: 0,
            seed: Hash([5; 32]),
            foundations: (0..n)
                .map(|i| Foundation {
                    treasury: PublicKey::ed25519([i + 1; 32]),
                    registrar: PublicKey::ed25519([i + 101; 32]),
                    status: FoundationStatus::Active,
                })
                .collect(),
        }
    }

    fn accounts(n: u32) -> Vec<AccountId> {
        (0..n)
            .map(|i| {
                let mut b = [0u8; 32];
                b[..4].copy_from_slice(&i.to_be_bytes());
                PublicKey::ed25519(Hash::of(&[&b]).0)
            })
            .collect()
    }

    fn counts(f: &Federation, accounts: &[AccountId]) -> Vec<usize> {
        let mut c = vec![0; f.foundations.len()];
        for a in accounts {
            c[usize::from(f.charge_of(a))] += 1;
        }
        c
    }

    #[test]
    fn charges_are_even_and_only_a_foundation_in_receivership_loses_its_own() {
        let all = accounts(30_000);
        let mut f = federation(3);
        let before: Vec<u16> = all.iter().map(|a| f.charge_of(a)).collect();
        // 10,000 expected each; binomial sd ~82.
        for c in counts(&f, &all) {
            assert!((9_500..=10_500).contains(&c), "{c}");
        }
        f.foundations[1].status = FoundationStatus::Receivership;
        let after: Vec<u16> = all.iter().map(|a| f.charge_of(a)).collect();
        for (b, a) in before.iter().zip(&after) {
            assert_ne!(*a, 1, "a foundation in receivership takes no charges");
            if *b != 1 {
                assert_eq!(a, b, "only the dissolved foundation's charges move");
            }
        }
        // Its charges spread evenly over the others.
        let moved: Vec<u16> = before
            .iter()
            .zip(&after)
            .filter(|(b, _)| **b == 1)
            .map(|(_, a)| *a)
            .collect();
        let to_0 = moved.iter().filter(|a| **a == 0).count();
        assert!(to_0 * 10 > moved.len() * 4 && to_0 * 10 < moved.len() * 6);
        // Back to Active: exactly those come back.
        f.foundations[1].status = FoundationStatus::Active;
        assert_eq!(
            before,
            all.iter().map(|a| f.charge_of(a)).collect::<Vec<_>>()
        );
        // UnderReview keeps its charges.
        f.foundations[1].status = FoundationStatus::UnderReview;
        assert_eq!(
            before,
            all.iter().map(|a| f.charge_of(a)).collect::<Vec<_>>()
        );
    }

    #[test]
    fn a_new_period_reshuffles_evenly_and_the_same_seed_assigns_the_same() {
        let all = accounts(30_000);
        let f = federation(3);
        let mut g = f.clone();
        g.seed = Federation::period_seed(1, &Hash([9; 32]));
        let moved = all
            .iter()
            .filter(|a| f.charge_of(a) != g.charge_of(a))
            .count();
        // Two in three move, evenly.
        assert!((19_000..=21_000).contains(&moved), "{moved}");
        for c in counts(&g, &all) {
            assert!((9_500..=10_500).contains(&c), "{c}");
        }
        assert_eq!(
            Federation::period_seed(1, &Hash([9; 32])),
            Federation::period_seed(1, &Hash([9; 32]))
        );
        assert_ne!(
            Federation::period_seed(1, &Hash([9; 32])),
            Federation::period_seed(2, &Hash([9; 32]))
        );
    }

    #[test]
    fn decoding_is_bounded_and_refuses_what_no_rule_allows() {
        let f = federation(3);
        assert_eq!(Federation::from_bytes(&f.to_bytes()).unwrap(), f);
        let mut none = f.clone();
        for x in &mut none.foundations {
            x.status = FoundationStatus::Receivership;
        }
        assert!(Federation::from_bytes(&none.to_bytes()).is_err());
        let mut bad = f.to_bytes();
        let n = bad.len();
        bad[n - 1] = 9;
        assert!(Federation::from_bytes(&bad).is_err());
        assert!(Federation::from_bytes(&federation(0).to_bytes()).is_err());
        let mut v = f.to_bytes();
        v[0] = 1; // (version 1 had no registrars)
        assert!(Federation::from_bytes(&v).is_err());
        // One registrar for two foundations is refused.
        let mut shared = f.clone();
        shared.foundations[1].registrar = shared.foundations[0].registrar;
        assert!(Federation::from_bytes(&shared.to_bytes()).is_err());
        assert_eq!(f.registrar_of(&f.foundations[2].registrar), Some(2));
        assert_eq!(f.registrar_of(&f.foundations[2].treasury), None);
        for cut in 0..f.to_bytes().len() {
            assert!(Federation::from_bytes(&f.to_bytes()[..cut]).is_err());
        }
    }
}
