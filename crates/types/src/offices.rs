//! A foundation's offices as the global shard holds them (rules OF1 and OF2): who holds each
//! seat of its president, executive officers, board, senate and staff, since when, and until
//! which global epoch.
//!
//! OF1 (terms): a seat's powers end at its term's end by themselves: whoever asks whether an
//! account holds an office at global epoch `e` gets yes only for a seat with `since <= e <
//! until`. A listed seat whose term has ended gives no power, whether or not anyone has
//! cleared it yet.
//!
//! OF2 (expiry): anyone may clear a seat whose term has ended (it changes nothing of what
//! OF1 answers; it keeps the record short and says so in an event).

use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::{AccountId, PublicKey};

/// The offices of a foundation, in order of rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Office {
    President,
    Officer,
    Board,
    Senate,
    Staff,
}

impl Office {
    pub const ALL: [Office; 5] = [
        Office::President,
        Office::Officer,
        Office::Board,
        Office::Senate,
        Office::Staff,
    ];

    pub fn code(self) -> u8 {
        match self {
            Office::President => 0,
            Office::Officer => 1,
            Office::Board => 2,
            Office::Senate => 3,
            Office::Staff => 4,
        }
    }

    pub fn from_code(code: u8) -> Result<Office, DecodeError> {
        Office::ALL
            .into_iter()
            .find(|o| o.code() == code)
            .ok_or(DecodeError::InvalidTag {
                what: "office",
                tag: code,
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            Office::President => "president",
            Office::Officer => "officer",
            Office::Board => "board",
            Office::Senate => "senate",
            Office::Staff => "staff",
        }
    }

    /// Most seats of this office one foundation has.
    pub fn max_seats(self) -> usize {
        match self {
            Office::President => 1,
            Office::Officer => 7,
            Office::Board => 15,
            Office::Senate => 31,
            Office::Staff => 10,
        }
    }
}

/// Most seats of one foundation, all offices together.
pub const MAX_SEATS: usize = 64;

/// One seat and its term, in global epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat {
    pub office: Office,
    pub holder: AccountId,
    pub since: u64,
    /// The first global epoch in which the seat no longer holds power.
    pub until: u64,
    /// Held in an acting capacity: no irreversible acts.
    pub acting: bool,
}

impl Seat {
    /// Rule OF1.
    pub fn in_term(&self, epoch: u64) -> bool {
        self.since <= epoch && epoch < self.until
    }
}

/// A foundation's seats, ordered by office then holder; one seat per holder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Offices {
    pub seats: Vec<Seat>,
}

impl Offices {
    /// The office `account` holds at global epoch `epoch` (rule OF1).
    pub fn held_by(&self, account: &AccountId, epoch: u64) -> Option<&Seat> {
        self.seats
            .iter()
            .find(|s| s.holder == *account && s.in_term(epoch))
    }

    /// The seats of `office` in term at `epoch`.
    pub fn in_term(&self, office: Office, epoch: u64) -> impl Iterator<Item = &Seat> {
        self.seats
            .iter()
            .filter(move |s| s.office == office && s.in_term(epoch))
    }

    /// What every record must be: at most [`MAX_SEATS`], each office within its seats, one
    /// seat per holder, in order, every term ending after it starts.
    pub fn validate(&self) -> Result<(), DecodeError> {
        if self.seats.len() > MAX_SEATS {
            return Err(DecodeError::InvalidValue("offices (at most 64 seats)"));
        }
        for o in Office::ALL {
            if self.seats.iter().filter(|s| s.office == o).count() > o.max_seats() {
                return Err(DecodeError::InvalidValue(
                    "offices (too many seats of one office)",
                ));
            }
        }
        let mut holders: Vec<&AccountId> = self.seats.iter().map(|s| &s.holder).collect();
        holders.sort();
        holders.dedup();
        if holders.len() != self.seats.len() {
            return Err(DecodeError::InvalidValue("offices (one seat per holder)"));
        }
        let ordered = self
            .seats
            .windows(2)
            .all(|w| (w[0].office, w[0].holder) < (w[1].office, w[1].holder));
        if !ordered || self.seats.iter().any(|s| s.until <= s.since) {
            return Err(DecodeError::InvalidValue("offices (order or term)"));
        }
        Ok(())
    }
}

impl Encode for Offices {
    fn encode(&self, out: &mut Vec<u8>) {
        put::seq(out, &self.seats, |o, s| {
            put::u8(o, s.office.code());
            s.holder.encode(o);
            put::u64(o, s.since);
            put::u64(o, s.until);
            put::bool(o, s.acting);
        });
    }
}

impl Decode for Offices {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let offices = Offices {
            seats: r.seq("seats", MAX_SEATS, |r| {
                Ok(Seat {
                    office: Office::from_code(r.u8()?)?,
                    holder: PublicKey::decode(r)?,
                    since: r.u64()?,
                    until: r.u64()?,
                    acting: r.bool()?,
                })
            })?,
        };
        offices.validate()?;
        Ok(offices)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seat(office: Office, b: u8, since: u64, until: u64) -> Seat {
        Seat {
            office,
            holder: PublicKey::ed25519([b; 32]),
            since,
            until,
            acting: false,
        }
    }

    #[test]
    fn powers_end_with_the_term_by_themselves() {
        let o = Offices {
            seats: vec![
                seat(Office::President, 1, 0, 10),
                seat(Office::Board, 2, 5, 8),
            ],
        };
        o.validate().unwrap();
        let president = PublicKey::ed25519([1; 32]);
        assert!(o.held_by(&president, 0).is_some());
        assert!(o.held_by(&president, 9).is_some());
        assert!(o.held_by(&president, 10).is_none(), "the term ended");
        let board = PublicKey::ed25519([2; 32]);
        assert!(o.held_by(&board, 4).is_none(), "not yet in term");
        assert_eq!(o.in_term(Office::Board, 7).count(), 1);
        assert_eq!(o.in_term(Office::Board, 8).count(), 0);
    }

    #[test]
    fn decoding_refuses_what_no_rule_allows() {
        let ok = Offices {
            seats: vec![
                seat(Office::President, 1, 0, 10),
                seat(Office::Board, 2, 0, 8),
            ],
        };
        assert_eq!(Offices::from_bytes(&ok.to_bytes()).unwrap(), ok);
        for cut in 0..ok.to_bytes().len() {
            assert!(Offices::from_bytes(&ok.to_bytes()[..cut]).is_err());
        }
        let bad = [
            // Two presidents.
            vec![
                seat(Office::President, 1, 0, 10),
                seat(Office::President, 2, 0, 10),
            ],
            // One holder, two seats.
            vec![
                seat(Office::President, 1, 0, 10),
                seat(Office::Board, 1, 0, 10),
            ],
            // Out of order.
            vec![
                seat(Office::Board, 2, 0, 10),
                seat(Office::President, 1, 0, 10),
            ],
            // A term that ends before it starts.
            vec![seat(Office::Senate, 3, 10, 10)],
        ];
        for seats in bad {
            let o = Offices { seats };
            assert!(Offices::from_bytes(&o.to_bytes()).is_err(), "{o:?}");
        }
        let mut unknown = ok.to_bytes();
        unknown[2] = 9; // (the first office code, after the 2-byte count)
        assert!(Offices::from_bytes(&unknown).is_err());
    }
}
