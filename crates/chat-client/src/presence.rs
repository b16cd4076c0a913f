//! Who is really in a chat, as far as this device can tell.
//!
//! A group's member list is what the member who added this device put in its welcome; it
//! does not show that those members hold the epoch this device is in. A member who forks the
//! group (adds someone with a commit its delivery relay never ordered), or who makes a new
//! group from other people's key packages, can show a newcomer members who will never read
//! what it writes. Asking the delivery relay whether the welcome's epoch was ordered would not
//! help against the second, so this device counts a member as present only once it has heard
//! from them in its own line of epochs: a text or a commit of theirs it could open (signed by
//! their leaf, encrypted under epoch secrets only members of that line hold), or the welcome
//! they signed. A device that joins says so at once ([`PAYLOAD_JOINED`]), so the others hear
//! it; the chat summary lists the members not heard from yet (`not_heard`).

use super::*;

impl Chat {
    /// `who` (an account or a credential identity) was heard from in `group`; counted only
    /// if it is a member now (a late text from before its removal does not count).
    pub(crate) fn heard(h: &mut Held, group: &[u8], who: &str) {
        let account = account_text(who);
        let gid = hex::encode(group);
        // Most messages come from members heard from already: no need to list the group.
        if h.meta
            .groups
            .get(&gid)
            .is_none_or(|m| m.heard.contains(&account))
        {
            return;
        }
        let member = h
            .device
            .members(group)
            .unwrap_or_default()
            .iter()
            .any(|m| account_text(m) == account);
        if !member {
            return;
        }
        if let Some(meta) = h.meta.groups.get_mut(&gid) {
            meta.heard.insert(account);
        }
    }

    /// `who` committed: heard from; and only the `members` (accounts) after the commit stay
    /// in the set, so a member removed and added again is not heard from until they speak.
    pub(crate) fn heard_among(h: &mut Held, group: &[u8], who: &str, members: &[String]) {
        let account = account_text(who);
        if let Some(meta) = h.meta.groups.get_mut(&hex::encode(group)) {
            meta.heard.retain(|a| members.contains(a));
            if members.contains(&account) {
                meta.heard.insert(account);
            }
        }
    }

    /// The members of a chat (accounts, but this device's) it has not heard from.
    pub(crate) fn not_heard(h: &Held, gid: &str, members: &[String]) -> Vec<String> {
        let own = h.account.to_text();
        let heard = h.meta.groups.get(gid).map(|m| &m.heard);
        members
            .iter()
            .filter(|m| **m != own && !heard.is_some_and(|h| h.contains(*m)))
            .cloned()
            .collect()
    }

    /// Tells each chat this device joined since the last time that it is there (a text the
    /// members can open only if they share its epoch), and members it has not told yet its
    /// mailbox for the chat (see `chat_mail`).
    pub(crate) async fn announce_joins(self: &Arc<Self>, held: &HeldRef) -> Result<(), ChatError> {
        let mut h = held.lock().await;
        Self::chat_mailboxes(&mut h);
        let due: Vec<String> = h
            .meta
            .groups
            .iter()
            .filter(|(gid, g)| !g.left && h.chat_keys.contains_key(*gid))
            .map(|(gid, _)| gid.clone())
            .collect();
        let mut waits = Vec::new();
        for gid in due {
            let Some((payload, members)) = Self::announcement(&mut h, &gid) else {
                continue;
            };
            let group = hex::decode(&gid).map_err(internal)?;
            let devices = self.member_devices(&h, &group)?;
            let envelope = h.device.send(&group, &payload)?;
            // The ratchet moved: on disk before the envelope is queued (still to be
            // announced: a crash from here sends another, under a new key, not none).
            self.save(&h)?;
            match self.enqueue_all(&devices, &[envelope]) {
                Ok(w) => {
                    waits.extend(w);
                    if let Some(meta) = h.meta.groups.get_mut(&gid) {
                        meta.announce = false;
                        meta.told = members.into_iter().collect();
                    }
                    self.save(&h)?;
                }
                // A mailbox named to some members but not all: members left out send to
                // the directory mailbox, which is read too; not tried again each round.
                Err(e) if payload[0] == PAYLOAD_MAILBOX => {
                    tracing::info!(chat = %gid, error = %e, "naming this device's chat mailbox did not reach every member");
                    if let Some(meta) = h.meta.groups.get_mut(&gid) {
                        meta.told = members.into_iter().collect();
                    }
                    self.save(&h)?;
                }
                // Tried again on the worker's next round.
                Err(e) => {
                    tracing::info!(chat = %gid, error = %e, "telling a chat this device joined waits")
                }
            }
        }
        drop(h);
        if !waits.is_empty() {
            self.bump();
        }
        // Queued on disk: the outbox delivers them whatever happens to this wait.
        drop(waits);
        Ok(())
    }
}

/// The account (as text) of a credential identity, or `who` itself if it is one already.
fn account_text(who: &str) -> String {
    account_of_identity(who).map_or_else(|| who.to_string(), |(a, _)| a.to_text())
}
