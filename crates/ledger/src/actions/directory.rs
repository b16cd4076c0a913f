//! Key directory rules (D1): the chat devices an account lists.

use super::Apply;
use crate::exec::Failure;
use crate::records::{ChatKeysRecord, StateKey};
use crate::{validate, ShardLedger, StateView, TxError};
use starling_types::tx::MAX_CHAT_DEVICES;
use starling_types::ChatDevice;

impl ShardLedger {
    /// D1: the key directory lists at most eight devices per account, by id; replacing
    /// a device or withdrawing one raises the entry's version.
    pub(super) fn set_chat_device<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        device: &ChatDevice,
    ) -> Result<(), Failure> {
        let (st, me) = (&mut *a.st, &a.body.account);
        validate::chat_device(device)?;
        let mut rec: ChatKeysRecord = st.get(StateKey::ChatKeys(me))?.unwrap_or_default();
        match rec.devices.binary_search_by_key(&device.id, |d| d.id) {
            Ok(i) => rec.devices[i] = device.clone(),
            Err(i) => {
                if rec.devices.len() >= MAX_CHAT_DEVICES {
                    return Err(TxError::InvalidChatDevice("at most 8 devices").into());
                }
                rec.devices.insert(i, device.clone());
            }
        }
        rec.version += 1;
        st.put(StateKey::ChatKeys(me), &rec);
        Ok(())
    }

    pub(super) fn remove_chat_device<V: StateView + ?Sized>(
        &self,
        a: &mut Apply<'_, '_, V>,
        id: u32,
    ) -> Result<(), Failure> {
        let (st, me) = (&mut *a.st, &a.body.account);
        let mut rec: ChatKeysRecord = st
            .get(StateKey::ChatKeys(me))?
            .ok_or(TxError::NoChatDevice)?;
        let i = rec
            .devices
            .binary_search_by_key(&id, |d| d.id)
            .map_err(|_| TxError::NoChatDevice)?;
        rec.devices.remove(i);
        rec.version += 1;
        st.put(StateKey::ChatKeys(me), &rec);
        Ok(())
    }
}
