//! A mailbox per chat.
//!
//! The key directory lists one mailbox per device, so anyone can tell which account a mail
//! file at a relay belongs to, and anyone can fill it. So each device also keeps a mailbox
//! for each chat it is in, its key derived from the device's mailbox seed and the group id,
//! and tells the chat's members its id inside the group ([`PAYLOAD_MAILBOX`], or the body of
//! [`PAYLOAD_JOINED`]), where only they read it. Members deposit that chat's texts and
//! commits there; welcomes, and mail for a member whose chat mailbox is not known yet, go to
//! the directory mailbox, which the device still reads. Nothing depends on the announcement
//! arriving: it only moves where mail waits.
//!
//! What this changes for a relay: the mail files it keeps for a chat no longer name, through
//! the public directory, whose they are, and a stranger flooding a device's public mailbox
//! no longer shares a mailbox with its chats. What it does not: the device fetches all its
//! mailboxes from the same node address and network key, so a relay it fetches from still
//! links them to each other (ARCHITECTURE, invariant 18).

use super::*;

const CONTEXT: &str = "starling chat group mailbox v1";

/// How often a chat's mailbox is fetched from the device's relays (the directory mailbox is
/// fetched every [`POLL`]; mail for a device whose node is up reaches it directly).
pub(crate) const CHAT_POLL: Duration = Duration::from_secs(2);
/// Chat mailboxes fetched from each relay a round, in turn.
pub(crate) const CHAT_FETCHES: usize = 32;

/// What a device deposits in its own new chat mailbox at its node, so that the node knows
/// the mailbox (its holder took mail there) and members' first deposits to it are not
/// counted against the quota on strangers' new mailboxes. Skipped when taken.
pub(crate) const CLAIM: &[u8] = b"SLCLAIM1";

/// The key of the mailbox the device with mailbox seed `seed_hex` keeps for `group`.
pub(crate) fn chat_mailbox_key(seed_hex: &str, group: &[u8]) -> Option<SecretKey> {
    let seed = Zeroizing::new(hex::decode(seed_hex).ok()?);
    let mut hasher = blake3::Hasher::new_derive_key(CONTEXT);
    hasher.update(&(seed.len() as u64).to_le_bytes());
    hasher.update(&seed);
    hasher.update(group);
    let derived = Zeroizing::new(*hasher.finalize().as_bytes());
    SecretKey::from_seed(KeyType::Ed25519, &derived).ok()
}

/// The name a mailbox's position at `holder` is kept under: the holder for the directory
/// mailbox, `<holder>/<chat>` for a chat's.
pub(crate) fn cursor_name(holder: &str, chat: Option<&str>) -> String {
    match chat {
        None => holder.to_string(),
        Some(gid) => format!("{holder}/{gid}"),
    }
}

impl Chat {
    /// Keeps a mailbox key for each chat the device is in, and drops those of chats it left
    /// (and their positions). Returns the chats' ids and mailbox ids.
    pub(crate) fn chat_mailboxes(h: &mut Held) -> Vec<(String, Hash)> {
        let active: Vec<String> = h
            .meta
            .groups
            .iter()
            .filter(|(gid, g)| {
                !g.left && hex::decode(gid).is_ok_and(|group| h.device.is_member(&group))
            })
            .map(|(gid, _)| gid.clone())
            .collect();
        let set: HashSet<&str> = active.iter().map(String::as_str).collect();
        h.chat_keys.retain(|gid, _| set.contains(gid.as_str()));
        h.meta.cursors.retain(|name, _| {
            name.split_once('/')
                .is_none_or(|(_, gid)| set.contains(gid))
        });
        let mut out = Vec::with_capacity(active.len());
        for gid in active {
            if let Some((_, id)) = h.chat_keys.get(&gid) {
                out.push((gid, *id));
                continue;
            }
            let Some(key) = hex::decode(&gid)
                .ok()
                .and_then(|group| chat_mailbox_key(&h.meta.mailbox_seed, &group))
            else {
                continue;
            };
            let id = mailbox_id(&key.public_key());
            h.chat_keys.insert(gid.clone(), (key, id));
            out.push((gid, id));
        }
        out
    }

    /// Claims a new chat mailbox of this device's at this node (see [`CLAIM`]).
    pub(crate) fn claim(&self, id: &Hash) {
        if let Err(e) = self.services.mailboxes.deposit(id, &[CLAIM.to_vec()]) {
            tracing::debug!(error = %e, "claiming a chat mailbox");
        }
    }

    /// `devices` (members of `group`), each with the mailbox it named for this chat where it
    /// named one.
    pub(crate) fn to_chat_mailboxes(
        h: &Held,
        group: &[u8],
        mut devices: Vec<Recipient>,
    ) -> Vec<Recipient> {
        let Some(meta) = h.meta.groups.get(&hex::encode(group)) else {
            return devices;
        };
        if meta.mailboxes.is_empty() {
            return devices;
        }
        for (account, d) in &mut devices {
            let identity = format!("{}#{}", account.to_text(), d.id);
            if let Some(id) = meta
                .mailboxes
                .get(&identity)
                .and_then(|m| <[u8; 32]>::try_from(hex::decode(m).ok()?).ok())
            {
                d.mailbox = Hash(id);
            }
        }
        devices
    }

    /// A member (`identity`, as MLS authenticated it) named its mailbox for `group`: kept
    /// while it is a member. Bodies that are not a mailbox id are ignored.
    pub(crate) fn learn_mailbox(h: &mut Held, group: &[u8], identity: &str, body: &[u8]) {
        if body.len() != 32 || identity == h.device.identity() {
            return;
        }
        let members = h.device.members(group).unwrap_or_default();
        let Some(meta) = h.meta.groups.get_mut(&hex::encode(group)) else {
            return;
        };
        // At most one per member: those no longer in the chat go.
        meta.mailboxes.retain(|m, _| members.contains(m));
        if members.iter().any(|m| m == identity) {
            meta.mailboxes
                .insert(identity.to_string(), hex::encode(body));
        }
    }

    /// What this device says to `group` now, if anything: that it joined (once), or its
    /// mailbox for the chat, when a member it has not told is in the chat. With the members
    /// it tells.
    pub(crate) fn announcement(h: &mut Held, gid: &str) -> Option<(Vec<u8>, Vec<String>)> {
        let group = hex::decode(gid).ok()?;
        let me = h.device.identity().to_string();
        let members: Vec<String> = h
            .device
            .members(&group)
            .unwrap_or_default()
            .into_iter()
            .filter(|m| *m != me)
            .collect();
        let meta = h.meta.groups.get(gid)?;
        let kind = if meta.announce {
            PAYLOAD_JOINED
        } else if members.iter().all(|m| meta.told.contains(m)) {
            return None;
        } else {
            PAYLOAD_MAILBOX
        };
        let (_, id) = *h.chat_keys.get(gid)?;
        let mut payload = vec![kind];
        payload.extend_from_slice(&id.0);
        Some((payload, members))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn held(seed: u8) -> Held {
        let account = SecretKey::from_seed(KeyType::Ed25519, &[seed; 32]).unwrap();
        let meta = Meta {
            mailbox_seed: hex::encode([seed + 1; 32]),
            ..Meta::default()
        };
        Held::new(
            account.public_key(),
            Chat::seal_key(&account),
            Device::new(&account.public_key().to_text(), 0).unwrap(),
            meta,
            SecretKey::from_seed(KeyType::Ed25519, &[seed + 1; 32]).unwrap(),
        )
    }

    /// `to` joins the group `from` made, and both list it.
    fn join(from: &mut Held, to: &mut Held) -> Vec<u8> {
        let group = from.device.create_group().unwrap();
        let kp = to.device.key_package().unwrap();
        let out = from.device.add(&group, &[kp]).unwrap();
        from.device.confirm(&group).unwrap();
        let anyone = |_: &str, _: &[u8]| true;
        to.device.receive(&out.welcome.unwrap(), &anyone).unwrap();
        for h in [from, to] {
            h.meta
                .groups
                .insert(hex::encode(&group), GroupMeta::default());
        }
        group
    }

    #[test]
    fn members_tell_their_chat_mailbox_once_and_senders_use_it() {
        let (mut alice, mut bob) = (held(1), held(3));
        let group = join(&mut alice, &mut bob);
        let gid = hex::encode(&group);
        let bob_id = bob.device.identity().to_string();
        let alice_id = alice.device.identity().to_string();
        // Each keeps a mailbox for the chat, not its directory one.
        let [(g, alice_box)] = &Chat::chat_mailboxes(&mut alice)[..] else {
            panic!("one chat");
        };
        assert_eq!(g, &gid);
        assert_ne!(*alice_box, mailbox_id(&alice.mailbox_key.public_key()));
        Chat::chat_mailboxes(&mut bob);
        // Alice has not told Bob: she names her mailbox; Bob, who joined, says so with his.
        let (payload, told) = Chat::announcement(&mut alice, &gid).unwrap();
        assert_eq!(payload[0], PAYLOAD_MAILBOX);
        assert_eq!(&payload[1..], &alice_box.0);
        assert_eq!(told, vec![bob_id.clone()]);
        bob.meta.groups.get_mut(&gid).unwrap().announce = true;
        let (joined, _) = Chat::announcement(&mut bob, &gid).unwrap();
        assert_eq!(joined[0], PAYLOAD_JOINED);
        // Told once: nothing more to say until someone new is in the chat.
        alice.meta.groups.get_mut(&gid).unwrap().told = told.into_iter().collect();
        assert!(Chat::announcement(&mut alice, &gid).is_none());
        // Carol joins: Alice tells her (and the chat) again.
        let mut carol = held(5);
        let kp = carol.device.key_package().unwrap();
        alice.device.add(&group, &[kp]).unwrap();
        alice.device.confirm(&group).unwrap();
        let (again, told) = Chat::announcement(&mut alice, &gid).unwrap();
        assert_eq!(again, payload);
        assert_eq!(told.len(), 2);

        // Bob learns it only from a member, under that member's own identity, and only a
        // mailbox id: a stranger's word, his own, or a short body change nothing.
        Chat::learn_mailbox(&mut bob, &group, "ed25519:00#1", &payload[1..]);
        Chat::learn_mailbox(&mut bob, &group, &bob_id, &payload[1..]);
        Chat::learn_mailbox(&mut bob, &group, &alice_id, &payload[2..]);
        assert!(bob.meta.groups[&gid].mailboxes.is_empty());
        Chat::learn_mailbox(&mut bob, &group, &alice_id, &payload[1..]);
        assert_eq!(bob.meta.groups[&gid].mailboxes.len(), 1);

        // Bob sends this chat's mail to it; other chats' and other devices' go where the
        // directory says.
        let device = ChatDevice {
            id: 0,
            signature_key: [0; 32],
            mailbox: Hash([9; 32]),
            seal_key: None,
            home: None,
            relays: Vec::new(),
        };
        let to = vec![
            (alice.account, device.clone()),
            (bob.account, device.clone()),
        ];
        let sent = Chat::to_chat_mailboxes(&bob, &group, to.clone());
        assert_eq!(sent[0].1.mailbox, *alice_box);
        assert_eq!(sent[1].1.mailbox, device.mailbox);
        let other = Chat::to_chat_mailboxes(&bob, b"another chat", to);
        assert_eq!(other[0].1.mailbox, device.mailbox);

        // A chat the device left: its mailbox is no longer read, its positions go.
        alice
            .meta
            .cursors
            .insert(cursor_name("relay", Some(&gid)), 4);
        alice.meta.cursors.insert(cursor_name("relay", None), 5);
        alice.meta.groups.get_mut(&gid).unwrap().left = true;
        assert!(Chat::chat_mailboxes(&mut alice).is_empty());
        assert_eq!(alice.meta.cursors.len(), 1);
        assert!(alice.chat_keys.is_empty());
    }

    #[test]
    fn a_chat_mailbox_is_the_devices_own_per_chat_and_unrelated_to_its_directory_mailbox() {
        let seed = hex::encode([7u8; 32]);
        let other = hex::encode([8u8; 32]);
        let id = |seed: &str, group: &[u8]| {
            mailbox_id(&chat_mailbox_key(seed, group).unwrap().public_key())
        };
        // The same device and chat: the same mailbox, after a restart or a restore.
        assert_eq!(id(&seed, b"group-a"), id(&seed, b"group-a"));
        // Another chat, or another device in the same chat: another mailbox.
        assert_ne!(id(&seed, b"group-a"), id(&seed, b"group-b"));
        assert_ne!(id(&seed, b"group-a"), id(&other, b"group-a"));
        // Not the directory mailbox (the mailbox key is the seed itself).
        let directory = SecretKey::from_seed(KeyType::Ed25519, &[7u8; 32]).unwrap();
        assert_ne!(id(&seed, b"group-a"), mailbox_id(&directory.public_key()));
        // A seed that is not hex gives no key.
        assert!(chat_mailbox_key("zz", b"group-a").is_none());
        assert_eq!(cursor_name("relay", None), "relay");
        assert_eq!(cursor_name("relay", Some("ab")), "relay/ab");
    }
}
