//! Typed entities in a tool call's arguments or a tool's result: who an agent sends to, pays,
//! shares with or links. An AI agent's harm is usually *who*: an account, a mail address, a
//! host, a wallet, a channel. Each entity keeps its identity (normalised, then hashed) next to
//! its kind, so "first payment to this account" is answerable while "an account number" is not
//! generalised away. Identifier-like values (ids, account and order numbers) are keyed the same
//! way, so a value in a tool call can be traced to the text it came from.

use std::sync::LazyLock;

use regex::Regex;

use super::keys::{key, ns};

/// What an entity is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntityKind {
    /// A bank account: an IBAN whose check digits verify.
    Account,
    /// A mail address.
    Mail,
    /// A web host (from a URL or a bare domain in a link).
    Host,
    /// A phone number.
    Phone,
    /// A crypto wallet address.
    Wallet,
    /// A chat channel (`#name`).
    Channel,
    /// A chat user or handle (`@name`).
    Handle,
}

impl EntityKind {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            EntityKind::Account => "account",
            EntityKind::Mail => "mail",
            EntityKind::Host => "host",
            EntityKind::Phone => "phone",
            EntityKind::Wallet => "wallet",
            EntityKind::Channel => "channel",
            EntityKind::Handle => "handle",
        }
    }
}

/// One entity: its kind and the hash of its normalised identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Entity {
    /// What it is.
    pub kind: EntityKind,
    /// Hash of `kind:normalised value`.
    pub id: u64,
    /// Hash of the organisation behind it (0: none known): a mail address's or a host's
    /// registrable domain. Public mail providers, addresses given as IP addresses and the other
    /// kinds (an account's bank included) have none.
    pub org: u64,
}

/// Most entities taken from one text.
pub(crate) const MAX_ENTITIES: usize = 64;

static MAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b[a-z0-9._%+\-]+@[a-z0-9\-]+(?:\.[a-z0-9\-]+)*\.[a-z]{2,}\b")
        .expect("a valid pattern")
});
static URL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\b(?:https?|ftp)://([a-z0-9\-._~%]+)|\bwww\.([a-z0-9\-]+(?:\.[a-z0-9\-]+)+)")
        .expect("a valid pattern")
});
static IBAN: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,30}\b").expect("a valid pattern")
});
static WALLET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\b(?:0x[0-9a-fA-F]{40}|bc1[0-9a-z]{25,59}|[13][1-9A-HJ-NP-Za-km-z]{25,34})\b")
        .expect("a valid pattern")
});
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?:\+|\b00)[0-9][0-9 ()\-]{7,18}[0-9]\b|\b\(?[0-9]{3}\)?[ \-.][0-9]{3}[ \-.][0-9]{4}\b",
    )
    .expect("a valid pattern")
});
static CHANNEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s'\x22(\[,:])#([a-z0-9][a-z0-9_\-]{1,79})\b").expect("a valid pattern")
});
static HANDLE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s'\x22(\[,:])@([A-Za-z0-9_][A-Za-z0-9_.\-]{1,63})\b")
        .expect("a valid pattern")
});

/// The entities in `text`, in order of kind then appearance, without repeats, at most
/// [`MAX_ENTITIES`].
pub fn extract(text: &str) -> Vec<Entity> {
    extract_from(text, false)
}

/// The entities of a tool call's arguments: as [`extract`], but a `#name` is a chat channel
/// only when it is a string value of its own (`{"channel": "#general"}`); inside a message's
/// text (`"Good weather! #excited"`) it is a topic tag, which reaches no one.
pub fn extract_arguments(text: &str) -> Vec<Entity> {
    extract_from(text, true)
}

fn extract_from(text: &str, whole_channels: bool) -> Vec<Entity> {
    let mut out: Vec<Entity> = Vec::new();
    let mut push = |kind: EntityKind, value: &str, org: u64| {
        if out.len() >= MAX_ENTITIES {
            return;
        }
        let id = identity(kind, value);
        if !out.iter().any(|e| e.id == id) {
            out.push(Entity { kind, id, org });
        }
    };
    if text.contains('@') {
        for m in MAIL.find_iter(text) {
            let mail = m.as_str().to_ascii_lowercase();
            let org = mail
                .rsplit_once('@')
                .map_or(0, |(_, domain)| domain_org(domain));
            push(EntityKind::Mail, &mail, org);
        }
    }
    if text.contains("://") || text.contains("www.") {
        for c in URL.captures_iter(text) {
            if let Some(h) = c.get(1).or_else(|| c.get(2)) {
                let host = h.as_str().to_ascii_lowercase();
                let host = host.strip_prefix("www.").unwrap_or(&host);
                push(EntityKind::Host, host, domain_org(host));
            }
        }
    }
    for m in IBAN.find_iter(text) {
        let compact: String = m.as_str().chars().filter(|c| !c.is_whitespace()).collect();
        // An account's bank is no organisation the payee shares with others: one payment to a
        // large bank would vouch for every account there.
        if compact.parse::<::iban::Iban>().is_ok() {
            push(EntityKind::Account, &compact, 0);
        }
    }
    for m in WALLET.find_iter(text) {
        let w = m.as_str();
        // Base58 addresses look like many ids: only those with both cases and digits count.
        let legacy = w.starts_with('1') || w.starts_with('3');
        if !legacy
            || (w.chars().any(|c| c.is_ascii_lowercase())
                && w.chars().any(|c| c.is_ascii_uppercase()))
        {
            push(EntityKind::Wallet, &w.to_ascii_lowercase(), 0);
        }
    }
    for m in PHONE.find_iter(text) {
        let digits: String = m.as_str().chars().filter(char::is_ascii_digit).collect();
        if (8..=15).contains(&digits.len()) {
            push(EntityKind::Phone, &digits, 0);
        }
    }
    if text.contains('#') {
        for c in CHANNEL.captures_iter(text) {
            if whole_channels && !whole_value(text, &c) {
                continue;
            }
            push(EntityKind::Channel, &c[1].to_ascii_lowercase(), 0);
        }
    }
    if text.contains('@') {
        for c in HANDLE.captures_iter(text) {
            // A mail address's domain part is not a handle.
            let start = c.get(0).map_or(0, |m| m.start());
            if start > 0 && text.as_bytes()[start - 1].is_ascii_alphanumeric() {
                continue;
            }
            push(EntityKind::Handle, &c[1].to_ascii_lowercase(), 0);
        }
    }
    out
}

/// Whether a `#name` match is a whole string value: it opens the text or follows a quote, `[`,
/// `,`, `:` or `(`, and a quote (or a JSON escape's backslash) or the end of the text follows it.
fn whole_value(text: &str, c: &regex::Captures<'_>) -> bool {
    let (Some(all), Some(name)) = (c.get(0), c.get(1)) else {
        return false;
    };
    let opens = !all.as_str().starts_with(|ch: char| ch.is_whitespace());
    let closes = matches!(
        text.as_bytes().get(name.end()),
        None | Some(b'\'' | b'"' | b'\\')
    );
    opens && closes
}

/// Hashes of the identifier-like tokens of a text, lower case, at most `max`: words with a digit
/// or one of `@ _ - . / + :` inside, of 3 to 128 characters (account and order numbers, ids,
/// addresses, hosts, handles). With `values_only`, quoted strings followed by `:` (the keys of a
/// JSON or Python-literal object) are skipped, so that only argument values count.
pub(crate) fn value_tokens(text: &str, values_only: bool, max: usize) -> Vec<u64> {
    let bytes = text.as_bytes();
    let mut out: Vec<u64> = Vec::new();
    let mut i = 0;
    let is_sep = |b: u8| {
        b.is_ascii_whitespace()
            || matches!(
                b,
                b'\''
                    | b'\\'
                    | b'"'
                    | b','
                    | b'{'
                    | b'}'
                    | b'['
                    | b']'
                    | b'('
                    | b')'
                    | b';'
                    | b'='
                    | b'<'
                    | b'>'
                    | b'|'
                    | b'!'
                    | b'?'
                    | b'*'
            )
    };
    while i < bytes.len() && out.len() < max {
        if is_sep(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !is_sep(bytes[i]) {
            i += 1;
        }
        let mut tok = &text[start..i];
        // A key: the token ends with ':' or is followed by a closing quote and ':'.
        let mut j = i;
        while j < bytes.len() && matches!(bytes[j], b'\'' | b'"' | b'\\') {
            j += 1;
        }
        let key = tok.ends_with(':') || (j < bytes.len() && bytes[j] == b':');
        tok = tok.trim_end_matches([':', '.', '-']);
        if (values_only && key) || tok.len() < 3 || tok.len() > 128 {
            continue;
        }
        let identifier = tok.bytes().any(|b| b.is_ascii_digit())
            || tok
                .bytes()
                .any(|b| matches!(b, b'@' | b'_' | b'-' | b'.' | b'/' | b'+' | b':'));
        if !identifier {
            continue;
        }
        let id =
            crate::profile::keys::key(crate::profile::keys::ns::ENTITY, &tok.to_ascii_lowercase());
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Common words that say nothing of what a text asks for.
const COMMON_WORDS: [&str; 24] = [
    "the", "and", "for", "you", "your", "with", "from", "this", "that", "are", "was", "our", "not",
    "but", "all", "has", "have", "will", "can", "please", "any", "its", "into", "about",
];

/// Hashes of the words of a text, lower case, at most `max`: runs of letters, digits and `_` of
/// at least 3 characters (`/Work` gives `work`, `#ProjectAlpha` gives `projectalpha`), without a few
/// common words. With `values_only`, the keys of a JSON or Python-literal object are skipped, as
/// in [`value_tokens`]. Plain words are what an order without identifiers (`sell 50 units of my
/// Bitcoin`) leaves in the arguments of the call that obeys it.
pub(crate) fn word_tokens(text: &str, values_only: bool, max: usize) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    let mut rest = text;
    while !rest.is_empty() && out.len() < max {
        let Some(start) = rest.find(|c: char| c.is_ascii_alphanumeric() || c == '_') else {
            break;
        };
        rest = &rest[start..];
        let end = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        rest = after;
        let is_key = after.trim_start_matches(['\'', '"', '\\']).starts_with(':');
        if (values_only && is_key) || word.len() < 3 || word.len() > 64 {
            continue;
        }
        let lower = word.to_ascii_lowercase();
        if COMMON_WORDS.contains(&lower.as_str()) {
            continue;
        }
        let id = key(ns::WORD, &lower);
        if !out.contains(&id) {
            out.push(id);
        }
    }
    out
}

/// Public mail providers: an address there belongs to a person, not to an organisation that
/// others of the agent's counterparties share.
const MAIL_PROVIDERS: [&str; 24] = [
    "gmail",
    "googlemail",
    "yahoo",
    "ymail",
    "outlook",
    "hotmail",
    "live",
    "msn",
    "icloud",
    "me",
    "mac",
    "aol",
    "gmx",
    "web",
    "mail",
    "proton",
    "protonmail",
    "pm",
    "yandex",
    "zoho",
    "qq",
    "163",
    "tutanota",
    "fastmail",
];

/// The organisation of a domain (lower case): its registrable domain (`mail.acme.co.uk` gives
/// `acme.co.uk`), 0 for a public mail provider, an IP address or a name without a registrable
/// domain.
fn domain_org(domain: &str) -> u64 {
    let bare = domain.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return 0;
    }
    let Some(registrable) = psl::domain_str(domain) else {
        return 0;
    };
    let name = registrable.split('.').next().unwrap_or(registrable);
    if MAIL_PROVIDERS.contains(&name) {
        return 0;
    }
    org_key(registrable)
}

/// The key of an organisation's name.
fn org_key(name: &str) -> u64 {
    key(ns::ENTITY, &format!("org:{name}"))
}

/// The hash of an entity's identity.
pub(crate) fn identity(kind: EntityKind, value: &str) -> u64 {
    let mut buf = String::with_capacity(value.len() + 10);
    buf.push_str(kind.as_str());
    buf.push(':');
    buf.push_str(value);
    key(ns::ENTITY, &buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_words_of_argument_values_match_those_of_text() {
        let args = word_tokens(
            r#"{"item_path": "/Work", "destination_folder_path": "/.hidden", "pair": "BTCUSD"}"#,
            true,
            64,
        );
        let text = word_tokens(
            "Please move the files in the 'Work' folder to the '.hidden' folder",
            false,
            64,
        );
        let work = key(ns::WORD, "work");
        assert!(args.contains(&work) && text.contains(&work));
        assert!(args.contains(&key(ns::WORD, "hidden")));
        assert!(args.contains(&key(ns::WORD, "btcusd")));
        // Keys are not values; short and common words are not kept.
        assert!(!args.contains(&key(ns::WORD, "item_path")));
        assert!(!text.contains(&key(ns::WORD, "the")));
        assert!(!text.contains(&key(ns::WORD, "to")));
    }

    fn kinds(text: &str) -> Vec<EntityKind> {
        extract(text).into_iter().map(|e| e.kind).collect()
    }

    #[test]
    fn accounts_need_valid_check_digits() {
        assert_eq!(
            kinds("pay to GB82 WEST 1234 5698 7654 32"),
            vec![EntityKind::Account]
        );
        assert!(kinds("pay to GB83WEST12345698765432").is_empty());
        assert_eq!(
            extract("GB82WEST12345698765432")[0].id,
            extract("{'iban': 'GB82 WEST 1234 5698 7654 32'}")[0].id,
            "spacing does not change an account's identity"
        );
    }

    #[test]
    fn a_hashtag_in_a_message_is_no_channel_but_a_channel_value_is() {
        let channels = |t: &str| {
            extract_arguments(t)
                .iter()
                .filter(|e| e.kind == EntityKind::Channel)
                .count()
        };
        assert_eq!(channels(r##"{"content": "Good Weather! #excited"}"##), 0);
        assert_eq!(channels(r##"{"text": "Join #random today"}"##), 0);
        assert_eq!(
            channels(r##"{"channel": "#general", "text": "hi #team"}"##),
            1
        );
        assert_eq!(channels("{'channels': ['#general', '#random']}"), 2);
        assert_eq!(channels(r##""{\"channel\": \"#ops\"}""##), 1);
        assert_eq!(channels("#general"), 1);
        // In a request or a result, a channel named in running text still counts.
        assert_eq!(
            extract("Post the summary to #general")[0].id,
            extract_arguments(r##"{"channel": "#general"}"##)[0].id
        );
    }

    #[test]
    fn mail_hosts_phones_wallets_channels_and_handles() {
        let t = "{'to': 'Mark.Black@Gmail.com', 'body': 'see https://www.secure-bank.xyz/login or call +1 (555) 012-3456', 'wallet': '0x52908400098527886E0F7030069857D2E4169EE7', 'channel': '#general', 'user': '@alice'}";
        let k = kinds(t);
        for want in [
            EntityKind::Mail,
            EntityKind::Host,
            EntityKind::Phone,
            EntityKind::Wallet,
            EntityKind::Channel,
            EntityKind::Handle,
        ] {
            assert!(k.contains(&want), "{want:?} in {k:?}");
        }
        assert_eq!(
            extract("mark.black@gmail.com")[0].id,
            extract("MARK.BLACK@GMAIL.COM")[0].id
        );
        assert_ne!(
            extract("mark.black@gmail.com")[0].id,
            extract("mark.white@gmail.com")[0].id,
            "two addresses are two counterparties"
        );
    }

    #[test]
    fn argument_values_not_keys() {
        let args = value_tokens(
            r#"{"guest_ids": ["guest_amy01"], "permanent": true, "from_account_number": "123-1234-1234"}"#,
            true,
            64,
        );
        let data = value_tokens(
            "Please grant permanent access to my friend Amy (guest_amy01); account 123-1234-1234.",
            false,
            64,
        );
        assert_eq!(args.len(), 2, "two values, no keys");
        assert!(args.iter().all(|t| data.contains(t)));
        assert!(value_tokens("summarise the report for me", false, 64).is_empty());
    }

    #[test]
    fn a_mail_domain_is_not_a_handle_and_plain_text_has_no_entities() {
        assert_eq!(kinds("write to bob@example.org"), vec![EntityKind::Mail]);
        assert!(kinds("summarise the quarterly report for the team").is_empty());
    }

    fn org(text: &str) -> u64 {
        extract(text)[0].org
    }

    #[test]
    fn an_entity_knows_its_organisation() {
        assert_eq!(
            org("ana.berg@acme.co.uk"),
            org("https://mail.acme.co.uk/login")
        );
        assert_eq!(org("ana.berg@acme.example"), org("ben.berg@ACME.example"));
        assert_ne!(
            org("ana.berg@acme.example"),
            org("ana.berg@acme-works.example")
        );
        assert_ne!(org("ana.berg@acme.example"), 0);
        assert_eq!(
            org("ana.berg@gmail.com"),
            0,
            "a public mail provider is no organisation"
        );
        assert_eq!(org("bob@outlook.com"), org("eve@gmx.de"));
        assert_eq!(
            org("http://10.0.0.1/upload"),
            0,
            "an address is no organisation"
        );
        assert_eq!(org("http://192.168.0.1/"), 0);
        // A bank is no organisation its account holders share.
        assert_eq!(org("DE89370400440532013000"), 0);
        assert_eq!(org("+1 (555) 012-3456"), 0);
    }
}
