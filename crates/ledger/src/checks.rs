//! Rule B3: a block's transactions decode and carry valid signatures, or the block is
//! invalid; and its ballots' credentials are verified ahead of them (rule BL3).

use crate::exec::{state_err, BlockCtx, BlockInput};
use crate::overlay::Overlay;
use crate::{BlockError, ShardLedger, StateView};
use starling_crypto::{verify_batch, SigItem};
use starling_types::tx::{signing_hash, TxBody};
use starling_types::Hash;

impl ShardLedger {
    /// Rule B3's check: every transaction of `input` decodes, and every signature not
    /// `checked` already verifies (one batch); then the ballots' credentials are verified on
    /// every core (rule BL3). The bodies, with their signing hashes.
    pub(crate) fn check_transactions<V: StateView + ?Sized>(
        &self,
        st: &Overlay<'_, V>,
        ctx: &mut BlockCtx,
        input: &BlockInput,
        tx_ids: &[Hash],
        checked: &dyn Fn(&Hash) -> bool,
    ) -> Result<Vec<(TxBody, Hash)>, BlockError> {
        let mut parsed: Vec<(TxBody, Hash)> = Vec::with_capacity(input.txs.len());
        for (index, env) in input.txs.iter().enumerate() {
            let body = env.body().map_err(|e| BlockError::MalformedTx {
                index,
                reason: e.to_string(),
            })?;
            let h = signing_hash(&self.params.chain_id, &env.body_bytes);
            parsed.push((body, h));
        }
        let items: Vec<(usize, SigItem<'_>)> = parsed
            .iter()
            .enumerate()
            .filter(|(i, _)| !checked(&tx_ids[*i]))
            .map(|(i, (body, h))| {
                (
                    i,
                    SigItem {
                        key: &body.account,
                        msg: h.as_bytes(),
                        sig: &input.txs[i].signature,
                    },
                )
            })
            .collect();
        let sig_items: Vec<SigItem<'_>> = items.iter().map(|(_, s)| *s).collect();
        if let Some(&j) = verify_batch(&sig_items).first() {
            return Err(BlockError::BadSignature { index: items[j].0 });
        }
        ctx.credentials = self.check_credentials(st, &parsed).map_err(state_err)?;
        Ok(parsed)
    }
}
