//! What the app view reads out of a post's text: hashtags and mentions.
//!
//! - A hashtag is `#` after the start or a character that is not a word character, followed
//!   by word characters (Unicode letters and digits, `_`), not only digits; it is indexed
//!   lowercased, at most [`MAX_TAG_BYTES`] bytes, the first [`MAX_TAGS_PER_POST`] distinct
//!   ones.
//! - A mention is `@` in the same position followed by a handle as the ledger allows them
//!   (ASCII letters, digits, `_`; 3 to 30; a letter first), lowercased; at most
//!   [`MAX_MENTIONS`] distinct ones.

use crate::records::{MAX_TAGS_PER_POST, MAX_TAG_BYTES};

/// Most accounts one post notifies by mention.
pub const MAX_MENTIONS: usize = 10;

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// Words that follow `sigil` at a word boundary, as written.
fn tagged(text: &str, sigil: char) -> impl Iterator<Item = &str> {
    let mut prev: Option<char> = None;
    text.char_indices().filter_map(move |(i, c)| {
        let at_boundary = prev.is_none_or(|p| !is_word(p) && p != sigil);
        prev = Some(c);
        if c != sigil || !at_boundary {
            return None;
        }
        let rest = &text[i + c.len_utf8()..];
        let end = rest.find(|c: char| !is_word(c)).unwrap_or(rest.len());
        (end > 0).then(|| &rest[..end])
    })
}

/// The post's hashtags, lowercased, in order of first appearance.
pub fn hashtags(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in tagged(text, '#') {
        if word.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let tag = word.to_lowercase();
        if tag.len() > MAX_TAG_BYTES || out.contains(&tag) {
            continue;
        }
        out.push(tag);
        if out.len() == MAX_TAGS_PER_POST {
            break;
        }
    }
    out
}

/// Normalizes a hashtag a reader asks for (`#Rust` or `rust`): the key it is indexed under,
/// or `None` if it cannot be one.
pub fn normalize_tag(raw: &str) -> Option<String> {
    let word = raw.strip_prefix('#').unwrap_or(raw);
    let ok =
        !word.is_empty() && word.chars().all(is_word) && !word.chars().all(|c| c.is_ascii_digit());
    let tag = word.to_lowercase();
    (ok && tag.len() <= MAX_TAG_BYTES).then_some(tag)
}

/// The handles the post mentions, lowercased, in order of first appearance.
pub fn mentions(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for word in tagged(text, '@') {
        let h = word.to_ascii_lowercase();
        let valid = word.is_ascii()
            && (3..=30).contains(&h.len())
            && h.starts_with(|c: char| c.is_ascii_lowercase());
        if valid && !out.contains(&h) {
            out.push(h);
            if out.len() == MAX_MENTIONS {
                break;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashtags_are_words_after_a_hash_at_a_boundary() {
        assert_eq!(
            hashtags("#Rust and #rust, #Zürich! a#b #123 #a_1 ##x (#p2p)"),
            vec!["rust", "zürich", "a_1", "p2p"]
        );
        assert_eq!(hashtags("no tags # here"), Vec::<String>::new());
        let many: String = (0..20).map(|i| format!("#t{i} ")).collect();
        assert_eq!(hashtags(&many).len(), MAX_TAGS_PER_POST);
        assert!(hashtags(&format!("#{}", "a".repeat(65))).is_empty());
    }

    #[test]
    fn mentions_are_valid_handles() {
        assert_eq!(
            mentions("hi @Alice and @bob_2, mail@example.com @x @9lives @alice"),
            vec!["alice", "bob_2"]
        );
    }

    #[test]
    fn tags_asked_for_are_normalized() {
        assert_eq!(normalize_tag("#Rust"), Some("rust".into()));
        assert_eq!(normalize_tag("rust"), Some("rust".into()));
        assert_eq!(normalize_tag("#"), None);
        assert_eq!(normalize_tag("a b"), None);
        assert_eq!(normalize_tag("2024"), None);
    }
}
