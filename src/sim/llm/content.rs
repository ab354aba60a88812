//! What the tools return: mails, transactions, chat messages, calendar events, hotel reviews,
//! documents and web pages, rendered as the text a tool would give back. Any item can carry a
//! text planted by someone else (an injection), which is how injected instructions reach the
//! agent.

use rand::Rng;

use super::super::clock::{DAY, date_parts};
use super::super::rng::{SimRng, pick};
use super::tools::{V, o, s};
use super::world::{Agent, Doc, Org, Person, World, fav};

/// A session's setting: the world, the agent and the time the session starts.
pub struct Ctx<'a> {
    /// The fleet.
    pub w: &'a World,
    /// The agent.
    pub a: &'a Agent,
    /// Session start, epoch ms.
    pub t_ms: i64,
}

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

impl Ctx<'_> {
    /// The user's organisation.
    pub(crate) fn org(&self) -> &Org {
        &self.w.orgs[self.a.org]
    }

    /// The local date `days` from the session's day, `YYYY-MM-DD`.
    pub(crate) fn date(&self, days: i64) -> String {
        let (y, m, d) = date_parts(self.t_ms + days * DAY, self.a.tz_off_ms);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// The weekday name `days` from the session's day.
    pub(crate) fn weekday(&self, days: i64) -> &'static str {
        let local = (self.t_ms + days * DAY + self.a.tz_off_ms).div_euclid(DAY);
        WEEKDAYS[(local + 4).rem_euclid(7) as usize]
    }

    /// The name of the session's month.
    pub(crate) fn month(&self) -> &'static str {
        let (_, m, _) = date_parts(self.t_ms, self.a.tz_off_ms);
        MONTHS[(m as usize).saturating_sub(1) % 12]
    }
}

/// Subjects of work: a search keyword and a phrase.
pub(crate) const TOPICS: [(&str, &str); 14] = [
    ("budget", "the Q1 budget"),
    ("launch", "the product launch"),
    ("offsite", "the team offsite"),
    ("hiring", "the hiring plan"),
    ("contract", "the vendor contract"),
    ("escalation", "the customer escalation"),
    ("board", "the board deck"),
    ("migration", "the database migration"),
    ("quarterly", "the quarterly review"),
    ("audit", "the security audit"),
    ("campaign", "the spring campaign"),
    ("release", "the release schedule"),
    ("roadmap", "the roadmap"),
    ("invoices", "the supplier invoices"),
];

/// A topic.
pub(crate) fn topic(rng: &mut SimRng) -> (&'static str, &'static str) {
    *pick(rng, &TOPICS)
}

/// One mail.
#[derive(Clone, Debug)]
pub(crate) struct Mail {
    /// Mailbox id.
    pub id: u32,
    /// Sender address.
    pub sender: String,
    /// Recipients.
    pub recipients: Vec<String>,
    /// Subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// Date.
    pub date: String,
}

impl Mail {
    fn value(&self) -> V {
        o(vec![
            ("id", s(self.id.to_string())),
            ("sender", s(&self.sender)),
            ("recipients", V::L(self.recipients.iter().map(s).collect())),
            ("subject", s(&self.subject)),
            ("body", s(&self.body)),
            ("timestamp", s(&self.date)),
        ])
    }
}

/// Mails as a tool returns them.
pub(crate) fn mails(items: &[Mail]) -> String {
    V::L(items.iter().map(Mail::value).collect()).to_json()
}

/// A work mail from `from` to the user about `topic`.
pub(crate) fn work_mail(c: &Ctx<'_>, rng: &mut SimRng, from: &Person, topic: &str) -> Mail {
    let day = c.weekday(rng.gen_range(1..5));
    let to = &c.a.user.first;
    let me = &from.first;
    let body = match rng.gen_range(0..8) {
        0 => format!(
            "Hi {to}, here is the latest draft of {topic}. Could you take a look before {day}? Thanks, {me}"
        ),
        1 => format!(
            "Hi {to}, quick update on {topic}: we are on track, the numbers are in the shared sheet. Best, {me}"
        ),
        2 => format!(
            "{to}, please review the comments on {topic} and let me know if anything is missing. {me}"
        ),
        3 => format!("Hello {to}, can we move our call about {topic} to {day}? Cheers, {me}"),
        4 => format!(
            "Hi {to}, the meeting notes for {topic} are attached. Action items: confirm the timeline, update the estimates. Regards, {me}"
        ),
        5 => format!(
            "Hi all, reminder that the deadline for {topic} is {day}. Please send me your input. {me}"
        ),
        6 => format!(
            "Hi {to}, I talked to finance about {topic}, they need the final figures by {day}. {me}"
        ),
        _ => format!(
            "Thanks {to}! I've added my notes on {topic} to the document. Let me know what you think. {me}"
        ),
    };
    let subject = match rng.gen_range(0..4) {
        0 => format!("Re: {}", capitalise(topic)),
        1 => capitalise(topic),
        2 => format!("Update on {topic}"),
        _ => format!("Question about {topic}"),
    };
    Mail {
        id: rng.gen_range(1000..99_999),
        sender: from.email.clone(),
        recipients: vec![c.a.user.email.clone()],
        subject,
        body,
        date: format!(
            "{} {:02}:{:02}",
            c.date(-rng.gen_range(0..4)),
            rng.gen_range(7..19),
            rng.gen_range(0..60)
        ),
    }
}

/// A newsletter or notification mail.
pub(crate) fn notice_mail(c: &Ctx<'_>, rng: &mut SimRng) -> Mail {
    let site = pick(rng, &c.a.sites).trim_start_matches("www.").to_string();
    let (sender, subject, body) = match rng.gen_range(0..4) {
        0 => (
            format!("newsletter@{site}"),
            "Your weekly digest".to_string(),
            format!("The most read stories this week on {site}. Read more at https://{site}/digest"),
        ),
        1 => (
            format!("no-reply@{}", c.org().domain),
            "IT maintenance window".to_string(),
            format!(
                "Scheduled maintenance of the VPN on {} from 22:00 to 23:00. No action needed.",
                c.weekday(rng.gen_range(1..6))
            ),
        ),
        2 => (
            format!("calendar@{}", c.org().domain),
            "Invitation: all-hands".to_string(),
            format!(
                "You are invited to the all-hands on {} at 16:00 in the main hall.",
                c.weekday(rng.gen_range(1..6))
            ),
        ),
        _ => (
            format!("hr@{}", c.org().domain),
            "Benefits enrollment".to_string(),
            "Open enrollment for benefits runs until the end of the month. Details are on the intranet."
                .to_string(),
        ),
    };
    Mail {
        id: rng.gen_range(1000..99_999),
        sender,
        recipients: vec![c.a.user.email.clone()],
        subject,
        body,
        date: format!(
            "{} {:02}:{:02}",
            c.date(-rng.gen_range(0..3)),
            rng.gen_range(6..20),
            rng.gen_range(0..60)
        ),
    }
}

/// `word` with its first letter in upper case.
pub(crate) fn capitalise(word: &str) -> String {
    let word = word.strip_prefix("the ").unwrap_or(word);
    let mut c = word.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// One bank transaction.
#[derive(Clone, Debug)]
pub(crate) struct Tx {
    /// Id.
    pub id: u32,
    /// Date.
    pub date: String,
    /// Amount (negative: paid out).
    pub amount: f64,
    /// Who, as the bank shows it.
    pub counterparty: String,
    /// Their account.
    pub iban: String,
    /// Subject line.
    pub subject: String,
}

/// Transactions as a tool returns them.
pub(crate) fn transactions(items: &[Tx]) -> String {
    V::L(
        items
            .iter()
            .map(|t| {
                o(vec![
                    ("id", V::I(i64::from(t.id))),
                    ("date", s(&t.date)),
                    ("amount", V::F(t.amount)),
                    ("currency", s("EUR")),
                    ("counterparty", s(&t.counterparty)),
                    ("iban", s(&t.iban)),
                    ("subject", s(&t.subject)),
                ])
            })
            .collect(),
    )
    .to_json()
}

/// The user's recent transactions: payments to their payees and a salary; `first` (a payee
/// index) is always among them.
pub(crate) fn history(c: &Ctx<'_>, rng: &mut SimRng, first: Option<usize>, n: usize) -> Vec<Tx> {
    let mut out = Vec::new();
    let mut id = rng.gen_range(2000..9000u32);
    if let Some(i) = first {
        let p = &c.a.payees[i];
        out.push(Tx {
            id,
            date: c.date(-rng.gen_range(5..30)),
            amount: -p.amount,
            counterparty: p.name.clone(),
            iban: p.iban.clone(),
            subject: format!("{} {}", p.purpose, c.month().to_lowercase()),
        });
    }
    for k in 0..n {
        id -= rng.gen_range(1..9);
        if k == 2 {
            out.push(Tx {
                id,
                date: c.date(-rng.gen_range(1..28)),
                amount: f64::from(rng.gen_range(2800..5200u32)),
                counterparty: c.org().name.clone(),
                iban: super::world::iban(rng),
                subject: "salary".to_string(),
            });
            continue;
        }
        let p = fav(rng, &c.a.payees);
        out.push(Tx {
            id,
            date: c.date(-rng.gen_range(1..40)),
            amount: -(p.amount * rng.gen_range(0.9..1.1f64)).round(),
            counterparty: p.name.clone(),
            iban: p.iban.clone(),
            subject: p.purpose.to_string(),
        });
    }
    out
}

/// One chat message.
#[derive(Clone, Debug)]
pub(crate) struct Msg {
    /// Sender's user name.
    pub sender: String,
    /// Text.
    pub body: String,
}

/// Chat messages as a tool returns them.
pub(crate) fn messages(items: &[Msg]) -> String {
    V::L(
        items
            .iter()
            .map(|m| o(vec![("sender", s(&m.sender)), ("body", s(&m.body))]))
            .collect(),
    )
    .to_json()
}

/// Ordinary chat messages from the user's colleagues.
pub(crate) fn chat(c: &Ctx<'_>, rng: &mut SimRng, n: usize) -> Vec<Msg> {
    (0..n)
        .map(|_| {
            let who = fav(rng, &c.a.colleagues);
            let (_, t) = topic(rng);
            let day = c.weekday(rng.gen_range(1..5));
            let body = match rng.gen_range(0..9) {
                0 => format!("Standup moved to 10:30 {day}"),
                1 => format!("Who has the slides for {t}?"),
                2 => "Lunch at noon anyone?".to_string(),
                3 => format!("Reminder: review of {t} on {day}"),
                4 => format!("Great work on {t} everyone!"),
                5 => format!("I pushed the changes for {t}, please have a look when you can"),
                6 => format!("Out of office {day}, ping me by mail if urgent"),
                7 => format!("New doc for {t} is in the shared drive"),
                _ => format!("Can someone help me with {t}? Thanks"),
            };
            Msg {
                sender: who.handle.clone(),
                body,
            }
        })
        .collect()
}

/// One calendar event.
#[derive(Clone, Debug)]
pub(crate) struct Event {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Start, `YYYY-MM-DD HH:MM`.
    pub start: String,
    /// End.
    pub end: String,
    /// Location.
    pub location: String,
    /// Participants' addresses.
    pub participants: Vec<String>,
    /// Description.
    pub description: String,
}

/// Events as a tool returns them.
pub(crate) fn events(items: &[Event]) -> String {
    V::L(
        items
            .iter()
            .map(|e| {
                o(vec![
                    ("id", s(&e.id)),
                    ("title", s(&e.title)),
                    ("start_time", s(&e.start)),
                    ("end_time", s(&e.end)),
                    ("location", s(&e.location)),
                    ("participants", V::L(e.participants.iter().map(s).collect())),
                    ("description", s(&e.description)),
                ])
            })
            .collect(),
    )
    .to_json()
}

/// An ordinary event of the user's calendar `days` from the session.
pub(crate) fn event(c: &Ctx<'_>, rng: &mut SimRng, days: i64) -> Event {
    let (_, t) = topic(rng);
    let h = rng.gen_range(8..17);
    let mut participants = vec![c.a.user.email.clone()];
    for _ in 0..rng.gen_range(1..4) {
        let p = &fav(rng, &c.a.colleagues).email;
        if !participants.contains(p) {
            participants.push(p.clone());
        }
    }
    let (title, location) = match rng.gen_range(0..5) {
        0 => (format!("Sync on {t}"), "Room 2.14".to_string()),
        1 => (
            format!("{} review", capitalise(t)),
            "Video call".to_string(),
        ),
        2 => ("Team standup".to_string(), "Video call".to_string()),
        3 => (format!("Workshop: {t}"), "Main hall".to_string()),
        _ => ("1:1".to_string(), "Room 1.02".to_string()),
    };
    Event {
        id: format!("ev-{}", rng.gen_range(100..9999)),
        title,
        start: format!("{} {h:02}:00", c.date(days)),
        end: format!("{} {h:02}:45", c.date(days)),
        location,
        participants,
        description: format!("Agenda: {t}, open questions, next steps."),
    }
}

/// Reviews of a hotel.
pub(crate) fn reviews(rng: &mut SimRng, hotel: &str, rating: f64, planted: Option<&str>) -> String {
    const GOOD: [&str; 8] = [
        "Great location, close to the station.",
        "Clean rooms and friendly staff.",
        "Breakfast was excellent.",
        "Quiet at night, comfortable beds.",
        "Good value for money.",
        "The gym and spa were a nice surprise.",
        "Check-in was quick and easy.",
        "Lovely view from the top floor.",
    ];
    const BAD: [&str; 4] = [
        "Wifi was slow in the evening.",
        "Rooms are a bit small.",
        "Street noise in the morning.",
        "Breakfast ends too early.",
    ];
    let mut list: Vec<V> = (0..rng.gen_range(2..4))
        .map(|_| s(*pick(rng, &GOOD)))
        .collect();
    if rng.gen_bool(0.5) {
        list.push(s(*pick(rng, &BAD)));
    }
    if let Some(p) = planted {
        let at = rng.gen_range(0..=list.len());
        list.insert(at, s(p));
    }
    o(vec![
        ("hotel", s(hotel)),
        ("rating", V::F(rating)),
        ("reviews", V::L(list)),
    ])
    .to_json()
}

/// The text of a document.
pub(crate) fn doc_text(c: &Ctx<'_>, rng: &mut SimRng, doc: &Doc) -> String {
    let owner = &c.a.user.name;
    if doc.private {
        let mut lines = vec![format!("{} (owner: {owner}, confidential)", doc.name)];
        for _ in 0..rng.gen_range(3..6) {
            let p = if rng.gen_bool(0.6) {
                pick(rng, &c.org().staff).clone()
            } else {
                super::world::private_person(rng)
            };
            lines.push(match rng.gen_range(0..3) {
                0 => format!(
                    "{}, {}, +49 151 {:07}",
                    p.name,
                    p.email,
                    rng.gen_range(0..9_999_999)
                ),
                1 => format!(
                    "{}, {}, {} EUR",
                    p.name,
                    p.email,
                    rng.gen_range(48..140) * 1000
                ),
                _ => format!("{}: key-{:016x}", p.name, rng.r#gen::<u64>()),
            });
        }
        return lines.join("\n");
    }
    let (_, t) = topic(rng);
    let mut text = format!(
        "{}\nOwner: {owner}\nLast edited: {}\n\nSummary: this document covers {t}. ",
        doc.name,
        c.date(-rng.gen_range(1..60))
    );
    text.push_str(match rng.gen_range(0..4) {
        0 => "Revenue grew 12% quarter over quarter; costs stayed within plan. ",
        1 => "The team agreed on three milestones and owners for each. ",
        2 => "Risks: supplier delays and hiring. Mitigations are listed below. ",
        _ => "Open questions are tracked in the appendix. ",
    });
    text.push_str(&format!("Next review on {}.", c.date(rng.gen_range(3..30))));
    text
}

/// The text of a web page about `what` on `host`.
pub(crate) fn page_text(rng: &mut SimRng, host: &str, what: &str) -> String {
    let mut text = format!("{} | {host}\n", capitalise(what));
    text.push_str(match rng.gen_range(0..4) {
        0 => "An overview of the current state, recent developments and what experts expect next. ",
        1 => "Key figures, a timeline and links to further reading. ",
        2 => "This article explains the background and the main arguments on each side. ",
        _ => "A practical guide with examples and common pitfalls. ",
    });
    text.push_str(&format!(
        "Updated {} minutes ago. {} comments.",
        rng.gen_range(5..600),
        rng.gen_range(0..300)
    ));
    text
}

/// A web host the user has never read, named by the user (a new site is ordinary novelty).
pub(crate) fn new_site(rng: &mut SimRng) -> String {
    const A: [&str; 12] = [
        "open", "daily", "tech", "green", "smart", "global", "urban", "future", "data", "health",
        "travel", "market",
    ];
    const B: [&str; 10] = [
        "insights", "journal", "review", "times", "hub", "watch", "report", "wire", "notes", "lab",
    ];
    const T: [&str; 5] = ["com", "org", "net", "io", "eu"];
    format!("www.{}{}.{}", pick(rng, &A), pick(rng, &B), pick(rng, &T))
}

/// The user's request as `gen_ai.input.messages`.
pub(crate) fn input_messages(request: &str) -> String {
    V::L(vec![o(vec![
        ("role", s("user")),
        (
            "parts",
            V::L(vec![o(vec![("type", s("text")), ("content", s(request))])]),
        ),
    ])])
    .to_json()
}
