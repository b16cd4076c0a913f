//! Members' anonymous ballots in referenda (rules BL1–BL4 in `starling-ledger`'s `ballots`
//! module), as they travel.
//!
//! A foundation's registrar publishes a blind-signature key for each round
//! ([`crate::GovAct::BallotKey`]); a member asks for a credential with a blinded message
//! ([`crate::GovAct::RequestCredential`]), which the registrar signs in the open
//! ([`crate::GovAct::IssueCredential`]). The member unblinds the answer into a credential over
//! [`credential_message`], which names a fresh ballot key, and votes from that key with
//! [`Ballot`]s: a transaction whose sender is the ballot key, with no fee and no account, on
//! the global shard. The ballot key is the nullifier: one credential, one key, one voice per
//! question (a later ballot replaces an earlier one).

use crate::codec::{put, Decode, DecodeError, Encode, Reader};
use crate::{ChainId, PublicKey};

/// Most bytes of a registrar's encoded credential key (a 4096-bit RSA key in DER).
pub const MAX_CREDENTIAL_KEY_BYTES: usize = 800;
/// Most bytes of a blinded message, a blind signature or a credential (a 4096-bit modulus).
pub const MAX_BLIND_BYTES: usize = 512;
/// Fewest bytes of the same (a 2048-bit modulus).
pub const MIN_BLIND_BYTES: usize = 256;
/// Most ballots one credential casts on one question (the first and its re-votes): re-votes
/// are bounded, as ballots pay no fee.
pub const MAX_BALLOTS_PER_QUESTION: u8 = 8;

/// A member's anonymous ballot on a referendum of its foundation (rule BL3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ballot {
    pub foundation: u16,
    /// The round of the credential (and of the ballot: only the current round's count).
    pub round: u64,
    pub proposal: u64,
    pub yes: bool,
    /// Votes cast; they cost `votes²` of the credential's tokens.
    pub votes: u32,
    /// The credential: RFC 9474's message randomizer and the registrar's signature over
    /// [`credential_message`] for the ballot's sender.
    pub randomizer: [u8; 32],
    pub credential: Vec<u8>,
}

impl Encode for Ballot {
    fn encode(&self, out: &mut Vec<u8>) {
        put::u16(out, self.foundation);
        put::u64(out, self.round);
        put::u64(out, self.proposal);
        put::bool(out, self.yes);
        put::u32(out, self.votes);
        out.extend_from_slice(&self.randomizer);
        put::bytes16(out, &self.credential);
    }
}

impl Decode for Ballot {
    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let ballot = Ballot {
            foundation: r.u16()?,
            round: r.u64()?,
            proposal: r.u64()?,
            yes: r.bool()?,
            votes: r.u32()?,
            randomizer: r.array()?,
            credential: blind_bytes(r, "credential")?,
        };
        if ballot.votes == 0 {
            return Err(DecodeError::InvalidValue("a ballot of no votes"));
        }
        Ok(ballot)
    }
}

/// A blinded message, blind signature or credential: 256 to 512 bytes.
pub fn blind_bytes(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<u8>, DecodeError> {
    let b = r.bytes16(what, MAX_BLIND_BYTES)?;
    if b.len() < MIN_BLIND_BYTES {
        return Err(DecodeError::InvalidValue(
            "blind signature values are 256 to 512 bytes",
        ));
    }
    Ok(b.to_vec())
}

/// What a credential signs: the chain, the foundation and round of the registrar's key, and
/// the ballot key the member will vote from.
pub fn credential_message(
    chain_id: &ChainId,
    foundation: u16,
    round: u64,
    ballot_key: &PublicKey,
) -> Vec<u8> {
    let mut out = b"starling/ballot-credential/v1".to_vec();
    chain_id.encode(&mut out);
    put::u16(&mut out, foundation);
    put::u64(&mut out, round);
    ballot_key.encode(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ballots_round_trip_and_refuse_bad_sizes() {
        let b = Ballot {
            foundation: 2,
            round: 7,
            proposal: 11,
            yes: true,
            votes: 3,
            randomizer: [9; 32],
            credential: vec![5; 256],
        };
        let bytes = b.to_bytes();
        assert_eq!(Ballot::from_bytes(&bytes).unwrap(), b);
        for cut in 0..bytes.len() {
            assert!(Ballot::from_bytes(&bytes[..cut]).is_err());
        }
        for (len, ok) in [(255, false), (256, true), (512, true), (513, false)] {
            let mut c = b.clone();
            c.credential = vec![1; len];
            assert_eq!(Ballot::from_bytes(&c.to_bytes()).is_ok(), ok, "{len} bytes");
        }
        let mut none = b.clone();
        none.votes = 0;
        assert!(Ballot::from_bytes(&none.to_bytes()).is_err());
    }

    #[test]
    fn the_credential_message_binds_chain_scope_and_key() {
        let chain = ChainId::new("starling-test").unwrap();
        let k = PublicKey::ed25519([1; 32]);
        let m = credential_message(&chain, 1, 2, &k);
        assert_ne!(m, credential_message(&chain, 0, 2, &k));
        assert_ne!(m, credential_message(&chain, 1, 3, &k));
        assert_ne!(
            m,
            credential_message(&chain, 1, 2, &PublicKey::ed25519([2; 32]))
        );
        let other = ChainId::new("starling-other").unwrap();
        assert_ne!(m, credential_message(&other, 1, 2, &k));
    }
}
