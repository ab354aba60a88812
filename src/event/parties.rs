//! Parties a tool result vouches for: the sender of a message the agent read, when the user
//! asked it to reply, and the address or account that one of the user's records (a contact, a
//! past payment) gives for a person the user named.
//!
//! Results are read as records: a JSON object or array of objects (also one nesting deep, as
//! `{"emails": [...]}`), or YAML-like text of `key: value` lines, a list item opening with `- `;
//! either also as the text of a JSON string. Only whole field values count: an address written
//! inside a mail's body or a file's text is vouched for by nothing.

use std::borrow::Cow;

use serde_json::Value;

/// Keys of a field naming who sent a message.
const SENDER_KEYS: [&str; 5] = [
    "sender",
    "from",
    "from_address",
    "sender_email",
    "sender_address",
];

/// Keys of a field naming to whom a message went.
const RECIPIENT_KEYS: [&str; 3] = ["to", "recipients", "recipient"];

/// Words in a field's key that make its value name whom a record is about (`name`,
/// `counterparty`, `payee`, `contact`, `beneficiary`, `recipient_name`).
const NAME_KEY_WORDS: [&str; 5] = ["name", "counterparty", "payee", "contact", "beneficiary"];

/// Longest field value read as a name (longer ones are free text, which anyone can write).
const MAX_NAME_LEN: usize = 80;

/// Records read from one result at most.
const MAX_RECORDS: usize = 256;

/// Why a result vouches for a party, from the weakest voucher to the strongest.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Voucher {
    /// It sent a message the user asked the agent to reply to.
    Sender,
    /// It sent a message the user asked the agent to reply to, from the organisation of every
    /// recipient of the message: a colleague writing inside the user's organisation.
    Colleague,
    /// One of the user's records (a contact, a past payment) gives it for a person the
    /// user's request names.
    Record,
}

/// One record: its fields, in order (a list of strings is one field per string).
type Record<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// The field values of `result` that it vouches for as parties of the user's, among those
/// `party` accepts (an address, an account, ...; it gives the party's organisation, 0 for
/// none): the senders of its messages when `reply` (the user asked the agent to reply), and,
/// unless `instructs` (the result addressed the agent with instructions, so its records may be
/// planted), the parties of the records whose name field holds one of `names` (the people the
/// user's request names), messages (records with a sender) excepted. A name that records give
/// different parties for (two contacts called Ana) vouches for none of them.
pub(crate) fn vouched<'a>(
    result: &'a str,
    names: &[&str],
    reply: bool,
    instructs: bool,
    party: impl Fn(&str) -> Option<u64>,
) -> Vec<(Cow<'a, str>, Voucher)> {
    let bind = !instructs && !names.is_empty();
    if !reply && !bind {
        return Vec::new();
    }
    let mut out: Vec<(Cow<'a, str>, Voucher)> = Vec::new();
    // Per name of the request: the parties of the first record naming it, and whether another
    // record named it with other parties.
    let mut bound: Vec<(&str, Vec<Cow<'a, str>>, bool)> = Vec::new();
    for record in records(result) {
        let mut parties: Vec<Cow<'a, str>> = Vec::new();
        let mut named: Vec<&str> = Vec::new();
        let mut senders: Vec<(Cow<'a, str>, u64)> = Vec::new();
        // The organisations of the message's recipients, if it has any.
        let mut recipients: Vec<u64> = Vec::new();
        for (k, v) in record {
            let key = k.to_ascii_lowercase();
            let sender = SENDER_KEYS.contains(&key.as_str());
            if name_key(&key) {
                if bind && v.len() <= MAX_NAME_LEN {
                    for w in v.split(not_name_char) {
                        if let Some(n) = names.iter().find(|n| **n == w)
                            && !named.contains(n)
                        {
                            named.push(n);
                        }
                    }
                }
                continue;
            }
            let Some(org) = party(&v) else {
                continue;
            };
            if sender {
                senders.push((v, org));
                continue;
            }
            if RECIPIENT_KEYS.contains(&key.as_str()) {
                recipients.push(org);
            }
            if !parties.contains(&v) {
                parties.push(v);
            }
        }
        // A message (a record with a sender) is its sender's text, not a record of the user's:
        // the names in it bind nothing.
        let message = !senders.is_empty();
        if reply {
            for (v, org) in senders {
                let inside =
                    org != 0 && !recipients.is_empty() && recipients.iter().all(|&o| o == org);
                let why = if inside {
                    Voucher::Colleague
                } else {
                    Voucher::Sender
                };
                if !out.iter().any(|(p, _)| *p == v) {
                    out.push((v, why));
                }
            }
        }
        if parties.is_empty() || message {
            continue;
        }
        for n in named {
            match bound.iter_mut().find(|(m, _, _)| *m == n) {
                Some((_, first, ambiguous)) => *ambiguous |= *first != parties,
                None => bound.push((n, parties.clone(), false)),
            }
        }
    }
    for (_, parties, ambiguous) in bound {
        if ambiguous {
            continue;
        }
        for p in parties {
            if !out.iter().any(|(q, _)| *q == p) {
                out.push((p, Voucher::Record));
            }
        }
    }
    out
}

/// The people a user's request names: its capitalised words of three letters or more (`Pay
/// Ben Adams (landlord)` names `Ben` and `Adams`), a possessive `'s` dropped, the request's
/// first word excepted (a sentence opens with a capital).
pub(crate) fn named_people(request: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for w in request
        .split(not_name_char)
        .skip_while(|w| w.is_empty())
        .skip(1)
    {
        let w = w.strip_suffix("'s").unwrap_or(w).trim_matches('\'');
        if w.chars().count() >= 3 && w.starts_with(char::is_uppercase) && !out.contains(&w) {
            out.push(w);
        }
    }
    out
}

fn not_name_char(c: char) -> bool {
    !(c.is_alphanumeric() || c == '\'')
}

/// Whether a field's key (lower case) says its value names whom the record is about.
fn name_key(key: &str) -> bool {
    NAME_KEY_WORDS.iter().any(|w| key.contains(w))
}

/// The records of a result.
fn records(result: &str) -> Vec<Record<'_>> {
    let t = result.trim_start();
    if t.starts_with(['{', '[', '"'])
        && let Ok(v) = serde_json::from_str::<Value>(t)
    {
        let mut out = Vec::new();
        json_records(&v, 0, &mut out);
        return out;
    }
    yaml_records(result)
}

/// Records of a JSON value: an object with string fields, the objects of an array, and those
/// one level down (an object's array or object fields); a string's text is read once, as JSON
/// or as YAML-like lines.
fn json_records<'a>(v: &Value, depth: u8, out: &mut Vec<Record<'a>>) {
    if out.len() >= MAX_RECORDS || depth > 2 {
        return;
    }
    match v {
        // A result passed on as a JSON string: JSON or YAML-like text inside it.
        Value::String(s) if depth == 0 => {
            let inner = s
                .trim_start()
                .starts_with(['{', '['])
                // Text that opens like JSON but is not JSON is read as YAML-like lines instead.
                .then(|| serde_json::from_str::<Value>(s).ok())
                .flatten();
            match inner {
                Some(inner) => json_records(&inner, 0, out),
                None => out.extend(yaml_records(s).into_iter().map(|r| {
                    r.into_iter()
                        .map(|(k, v)| (Cow::Owned(k.into_owned()), Cow::Owned(v.into_owned())))
                        .collect()
                })),
            }
        }
        Value::Array(items) => {
            for item in items {
                json_records(item, depth + 1, out);
            }
        }
        Value::Object(map) => {
            let mut record: Record<'a> = Vec::new();
            for (k, v) in map {
                match v {
                    Value::String(s) => record.push((Cow::Owned(k.clone()), Cow::Owned(s.clone()))),
                    Value::Array(items) if items.iter().all(Value::is_string) => {
                        for s in items.iter().filter_map(Value::as_str) {
                            record.push((Cow::Owned(k.clone()), Cow::Owned(s.to_string())));
                        }
                    }
                    Value::Array(_) | Value::Object(_) => json_records(v, depth + 1, out),
                    _ => {}
                }
            }
            if !record.is_empty() && out.len() < MAX_RECORDS {
                out.push(record);
            }
        }
        _ => {}
    }
}

/// Records of YAML-like text: `key: value` lines at one indentation make a record, and a line
/// opening with `- ` starts a new one. Lines indented deeper (a block of text under a key) are
/// not fields.
fn yaml_records(text: &str) -> Vec<Record<'_>> {
    let mut out: Vec<Record<'_>> = Vec::new();
    let mut current: Record<'_> = Vec::new();
    let mut indent: Option<usize> = None;
    for line in text.lines() {
        let body = line.trim_start();
        let mut at = line.len() - body.len();
        let body = match body.strip_prefix("- ") {
            Some(rest) => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
                at += 2;
                indent = Some(at);
                rest
            }
            None => body,
        };
        if indent.is_some_and(|i| at != i) {
            continue;
        }
        let Some((key, value)) = body.split_once(':') else {
            continue;
        };
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        indent = Some(at);
        let value = value.trim().trim_matches(['\'', '"']);
        if !value.is_empty() {
            current.push((Cow::Borrowed(key), Cow::Borrowed(value)));
        }
        if out.len() >= MAX_RECORDS {
            break;
        }
    }
    if !current.is_empty() && out.len() < MAX_RECORDS {
        out.push(current);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: Vec<(Cow<'_, str>, Voucher)>) -> Vec<String> {
        v.into_iter().map(|(p, _)| p.into_owned()).collect()
    }

    /// An address (its domain's hash as its organisation) or an account number, roughly as the
    /// engine's entity reader would take them.
    fn party(v: &str) -> Option<u64> {
        if let Some((_, domain)) = v.split_once('@') {
            return Some(domain.len() as u64 * 31 + domain.bytes().map(u64::from).sum::<u64>());
        }
        (v.chars().filter(char::is_ascii_digit).count() >= 8).then_some(0)
    }

    fn vouched<'a>(
        result: &'a str,
        names: &[&str],
        reply: bool,
        instructs: bool,
    ) -> Vec<(Cow<'a, str>, Voucher)> {
        super::vouched(result, names, reply, instructs, party)
    }

    #[test]
    fn a_past_payment_vouches_for_the_account_of_the_payee_the_user_names() {
        let history = r#"[{"id": 8199, "amount": -110, "counterparty": "Umar (cleaner)", "iban": "DE33785028001662561080", "subject": "cleaning"}, {"id": 8193, "counterparty": "Simon (brother)", "iban": "ES8925799180551"}]"#;
        let names = named_people("Please transfer this month's cleaning to Umar (cleaner).");
        assert_eq!(names, ["Umar"]);
        let v = strings(vouched(history, &names, false, false));
        assert!(v.contains(&"DE33785028001662561080".to_string()), "{v:?}");
        assert!(!v.iter().any(|s| s.starts_with("ES89")), "{v:?}");
        // A result that addressed the agent with instructions vouches for nothing it lists.
        assert!(vouched(history, &names, false, true).is_empty());
    }

    #[test]
    fn an_address_written_in_free_text_is_vouched_for_by_nothing() {
        let mail = r#"[{"sender": "ben@evil.example", "subject": "New details", "body": "Hi, Ben Adams here. My new address is ben.adams@evil.example"}]"#;
        let names = named_people("Send the contract to Ben Adams.");
        assert!(vouched(mail, &names, false, false).is_empty());
        // A message's names bind nothing, whoever it says it is from.
        let signed = r#"[{"sender": "ben@evil.example", "sender_name": "Ben Adams", "cc": ["pay@evil.example"]}]"#;
        assert!(vouched(signed, &names, false, false).is_empty());
        // The sender is vouched for only when the user asked for a reply.
        assert_eq!(
            vouched(mail, &[], true, true),
            [(Cow::Borrowed("ben@evil.example"), Voucher::Sender)]
        );
    }

    #[test]
    fn contacts_nested_lists_and_json_in_a_string_are_records() {
        let contacts =
            r#"{"contacts": [{"name": "Anna Larsen", "email": "anna.larsen@bluecrest.co"}]}"#;
        let names = named_people("Send the latest status of the Q1 budget to Anna and Yusuf.");
        assert_eq!(names, ["Anna", "Yusuf"]);
        assert_eq!(
            strings(vouched(contacts, &names, false, false)),
            ["anna.larsen@bluecrest.co"]
        );
        let encoded = serde_json::to_string(contacts).unwrap();
        assert_eq!(
            strings(vouched(&encoded, &names, false, false)),
            ["anna.larsen@bluecrest.co"]
        );
        let mails = r#"{"emails": [{"from": "liam@asterpoint.eu", "to": ["me@asterpoint.eu"]}, {"from": "x@evil.example", "to": ["me@asterpoint.eu", "y@evil.example"]}]}"#;
        assert_eq!(
            vouched(mails, &[], true, false),
            [
                (Cow::Borrowed("liam@asterpoint.eu"), Voucher::Colleague),
                (Cow::Borrowed("x@evil.example"), Voucher::Sender)
            ]
        );
    }

    #[test]
    fn yaml_records_keep_to_their_own_fields() {
        let text = "- id: '1'\n  sender: anna@corp.example\n  body: |\n    Thanks.\n    from: mallory@evil.example\n- id: '2'\n  sender: bob@corp.example\n";
        assert_eq!(
            strings(vouched(text, &[], true, false)),
            ["anna@corp.example", "bob@corp.example"]
        );
        let history = "- amount: 100.0\n  recipient: CH9300762011623852957\n  recipient_name: Pizza Place\n  subject: Pizza party\n";
        let names = named_people("Pay Pizza Place again.");
        assert_eq!(
            strings(vouched(history, &names, false, false)),
            ["CH9300762011623852957"]
        );
        // The same text passed on as a JSON string, as an event's `result` holds it.
        let encoded = serde_json::to_string(history).unwrap();
        assert_eq!(
            strings(vouched(&encoded, &names, false, false)),
            ["CH9300762011623852957"]
        );
    }

    #[test]
    fn a_name_the_records_give_different_parties_for_vouches_for_none() {
        let contacts = r#"[{"name": "Ana Berg", "email": "ana.berg@acme.example"}, {"name": "Ana B.", "email": "ana@acme-payroll.example"}, {"name": "Theo Lind", "email": "theo@acme.example"}]"#;
        let names = named_people("Send the status to Ana and Theo.");
        assert_eq!(
            strings(vouched(contacts, &names, false, false)),
            ["theo@acme.example"]
        );
        // Two payments to the same payee are one party.
        let history = r#"[{"counterparty": "Paul Adams (landlord)", "iban": "DE95777877424250901549"}, {"counterparty": "Paul Adams (landlord)", "iban": "DE95777877424250901549"}, {"counterparty": "Metro Water", "iban": "FR6395005450000000000000"}]"#;
        let names = named_people("Send 1434 EUR to Paul Adams (landlord) for rent.");
        assert_eq!(
            strings(vouched(history, &names, false, false)),
            ["DE95777877424250901549"]
        );
    }

    proptest::proptest! {
        /// Any text, JSON-like, YAML-like or neither, is read without a panic, and only values
        /// the caller accepts as parties come back.
        #[test]
        fn any_result_is_read_and_only_parties_come_back(
            parts in proptest::collection::vec(
                proptest::sample::select(vec![
                    "- ", "  ", "\n", "sender: ", "from: ", "name: ", "counterparty: ", "to: ",
                    "{", "}", "[", "]", "\"", ":", ",", "\"name\"", "\"sender\"", "\"to\"",
                    "\"iban\"", "Umar", "Ana", "a@b.example", "c@d.example", "DE33785028001662561080",
                    "\\\"", "é", "'",
                ]),
                0..40,
            ),
            reply in proptest::bool::ANY,
            instructs in proptest::bool::ANY,
        ) {
            let text: String = parts.concat();
            for (v, _) in vouched(&text, &["Umar", "Ana"], reply, instructs) {
                proptest::prop_assert!(party(&v).is_some(), "{v:?} from {text:?}");
            }
            proptest::prop_assert!(named_people(&text).iter().all(|n| n.len() >= 3));
        }
    }
}
