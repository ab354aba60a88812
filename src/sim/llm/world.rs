//! The LLM fleet's world: organisations and their staff, the users the agents serve, who each
//! user deals with (colleagues, outside contacts, payees), and what each agent works on.

use rand::Rng;
use rand::seq::SliceRandom;

use super::super::clock::HOUR;
use super::super::rng::{Domain, SimRng, lognormal, pick, stream, zipf_index};

/// What an agent assists with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Balance, transactions, payments and standing orders.
    Banking,
    /// Mail: reads, searches, replies, sends.
    Mail,
    /// A chat workspace: channels, direct messages, members.
    Workspace,
    /// Calendar, travel and hotels.
    Travel,
    /// Files and the web.
    Research,
}

impl Role {
    /// Every role, in fleet order.
    pub const ALL: [Role; 5] = [
        Role::Banking,
        Role::Mail,
        Role::Workspace,
        Role::Travel,
        Role::Research,
    ];

    /// Stable name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Banking => "banking",
            Role::Mail => "mail",
            Role::Workspace => "workspace",
            Role::Travel => "travel",
            Role::Research => "research",
        }
    }

    /// Prefix of its agents' ids.
    fn prefix(self) -> &'static str {
        match self {
            Role::Banking => "banking-assistant",
            Role::Mail => "mail-assistant",
            Role::Workspace => "workspace-assistant",
            Role::Travel => "travel-assistant",
            Role::Research => "research-assistant",
        }
    }

    /// The `service.name` of the deployment that runs its agents.
    pub(crate) fn service(self) -> &'static str {
        match self {
            Role::Banking => "banking-agent-svc",
            Role::Mail => "office-mail-agent",
            Role::Workspace => "workspace-chat-agent",
            Role::Travel => "travel-planner-agent",
            Role::Research => "research-agent",
        }
    }

    /// The agent's display name (`gen_ai.agent.name`).
    pub(crate) fn display(self) -> &'static str {
        match self {
            Role::Banking => "Banking assistant",
            Role::Mail => "Mail assistant",
            Role::Workspace => "Workspace assistant",
            Role::Travel => "Travel and calendar assistant",
            Role::Research => "Files and research assistant",
        }
    }
}

/// A person: a name, a mail address and a chat handle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Person {
    /// First name.
    pub first: String,
    /// Full name.
    pub name: String,
    /// Mail address.
    pub email: String,
    /// Chat user name (`first.last`).
    pub handle: String,
}

/// Someone a user pays.
#[derive(Clone, Debug)]
pub(crate) struct Payee {
    /// Name as the user calls them.
    pub name: String,
    /// What the payments are for (`rent`, `electricity`, ...).
    pub purpose: &'static str,
    /// Account.
    pub iban: String,
    /// Usual amount.
    pub amount: f64,
    /// A company with one account for all its customers (not a private person).
    pub company: bool,
}

/// An organisation whose staff use the agents.
#[derive(Clone, Debug)]
pub(crate) struct Org {
    /// Name.
    pub name: String,
    /// Mail domain.
    pub domain: String,
    /// Staff.
    pub staff: Vec<Person>,
    /// Chat channels of its workspace.
    pub channels: Vec<String>,
}

/// A document in a user's drive.
#[derive(Clone, Debug)]
pub(crate) struct Doc {
    /// Drive id.
    pub id: String,
    /// File name.
    pub name: String,
    /// Whether it holds private data (contacts, salaries, keys).
    pub private: bool,
}

/// A hotel of the shared travel catalogue.
#[derive(Clone, Debug)]
pub(crate) struct Hotel {
    /// Name.
    pub name: String,
    /// City.
    pub city: &'static str,
    /// Rating out of 5.
    pub rating: f64,
    /// Price per night.
    pub price: u32,
}

/// One LLM agent and the user it serves.
#[derive(Clone, Debug)]
pub(crate) struct Agent {
    /// Position in the fleet.
    pub idx: u32,
    /// Agent id (`gen_ai.agent.id`), e.g. `banking-assistant-003`.
    pub id: String,
    /// What it assists with.
    pub role: Role,
    /// The user's organisation.
    pub org: usize,
    /// The user.
    pub user: Person,
    /// Colleagues the user works with (from the organisation's staff).
    pub colleagues: Vec<Person>,
    /// Outside contacts: partners at other organisations, friends and family.
    pub externals: Vec<Person>,
    /// People and companies the user pays.
    pub payees: Vec<Payee>,
    /// The user's own account.
    pub own_iban: String,
    /// Chat channels the user reads and writes.
    pub channels: Vec<String>,
    /// The user's documents.
    pub docs: Vec<Doc>,
    /// Web hosts the user reads.
    pub sites: Vec<String>,
    /// Cities the user travels to.
    pub cities: Vec<&'static str>,
    /// Fixed UTC offset.
    pub tz_off_ms: i64,
    /// Local hour the working day starts.
    pub work_start_h: f64,
    /// Length of the working day in hours.
    pub work_len_h: f64,
    /// Mean sessions on a working day.
    pub sessions_per_day: f64,
    /// Model (`gen_ai.request.model`).
    pub model: &'static str,
    /// Provider (`gen_ai.provider.name`).
    pub provider: &'static str,
}

/// The whole fleet and what its users share.
#[derive(Clone, Debug)]
pub(crate) struct World {
    /// Seed.
    pub seed: u64,
    /// Start of the period, epoch ms.
    pub start_ms: i64,
    /// Days simulated.
    pub days: u32,
    /// Organisations.
    pub orgs: Vec<Org>,
    /// Agents.
    pub agents: Vec<Agent>,
    /// Hotels.
    pub hotels: Vec<Hotel>,
}

pub(crate) const FIRST: [&str; 48] = [
    "Anna", "Ben", "Clara", "David", "Emma", "Felix", "Grace", "Hugo", "Ines", "Jonas", "Kate",
    "Liam", "Maya", "Noah", "Olivia", "Paul", "Rosa", "Sam", "Tara", "Umar", "Vera", "Will",
    "Yara", "Zoe", "Aaron", "Bianca", "Carlos", "Dana", "Elena", "Frank", "Greta", "Henry", "Iris",
    "Jack", "Lena", "Marco", "Nina", "Oscar", "Priya", "Quinn", "Ruth", "Simon", "Theo", "Ursula",
    "Victor", "Wendy", "Xavier", "Yusuf",
];

pub(crate) const LAST: [&str; 48] = [
    "Adams",
    "Berger",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ito",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Martin",
    "Novak",
    "Olsen",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Taylor",
    "Ueda",
    "Varga",
    "Weber",
    "Young",
    "Zimmer",
    "Baker",
    "Clarke",
    "Dahl",
    "Eriksen",
    "Fontaine",
    "Gruber",
    "Horvat",
    "Iqbal",
    "Jansen",
    "Keller",
    "Lindqvist",
    "Moreau",
    "Nielsen",
    "Ortiz",
    "Park",
    "Richter",
    "Silva",
    "Tanaka",
    "Ulrich",
    "Vogel",
    "Walsh",
    "Yilmaz",
    "Zeller",
];

const ORG_A: [&str; 16] = [
    "North", "Blue", "Iron", "Silver", "Bright", "Stone", "Maple", "River", "Cedar", "Harbor",
    "Summit", "Aster", "Falcon", "Willow", "Copper", "Meadow",
];
const ORG_B: [&str; 12] = [
    "vale", "field", "bridge", "point", "works", "gate", "crest", "line", "wood", "haven", "peak",
    "stone",
];
const ORG_C: [&str; 6] = [
    "Analytics",
    "Logistics",
    "Health",
    "Energy",
    "Labs",
    "Partners",
];
const TLDS: [&str; 5] = ["com", "io", "net", "eu", "co"];

/// Mail providers of private addresses.
pub(crate) const PERSONAL_DOMAINS: [&str; 7] = [
    "gmail.com",
    "outlook.com",
    "yahoo.com",
    "proton.me",
    "icloud.com",
    "gmx.de",
    "web.de",
];

const TEAM_CHANNELS: [&str; 14] = [
    "engineering",
    "marketing",
    "sales",
    "finance",
    "design",
    "support",
    "ops",
    "data",
    "hiring",
    "product",
    "security",
    "legal",
    "platform",
    "growth",
];

/// Web hosts users read, shared across the fleet.
pub(crate) const SITES: [&str; 24] = [
    "en.wikipedia.org",
    "docs.python.org",
    "arxiv.org",
    "github.com",
    "stackoverflow.com",
    "www.reuters.com",
    "www.bbc.com",
    "news.ycombinator.com",
    "developer.mozilla.org",
    "www.nature.com",
    "www.theverge.com",
    "www.ft.com",
    "docs.rs",
    "www.economist.com",
    "medium.com",
    "www.techcrunch.com",
    "www.statista.com",
    "www.who.int",
    "ec.europa.eu",
    "www.oecd.org",
    "www.imf.org",
    "www.gartner.com",
    "learn.microsoft.com",
    "cloud.google.com",
];

pub(crate) const CITIES: [&str; 12] = [
    "Paris",
    "London",
    "Berlin",
    "Madrid",
    "Rome",
    "Amsterdam",
    "Vienna",
    "Zurich",
    "Lisbon",
    "Copenhagen",
    "Prague",
    "Dublin",
];

const HOTEL_WORDS: [&str; 16] = [
    "Grand",
    "Park",
    "Central",
    "Riverside",
    "Royal",
    "Garden",
    "Station",
    "Plaza",
    "Harbour",
    "Old Town",
    "City",
    "Opera",
    "Palace",
    "Bridge",
    "Lakeside",
    "Market",
];

/// Personal payees: what the payment is for, the name, and a typical amount.
const PERSONAL_PAYEES: [(&str, &str, f64); 8] = [
    ("rent", "landlord", 1150.0),
    ("rent", "property management", 980.0),
    ("allowance", "sister", 150.0),
    ("loan repayment", "brother", 200.0),
    ("cleaning", "cleaner", 120.0),
    ("music lessons", "piano teacher", 90.0),
    ("childcare", "nanny", 640.0),
    ("garden work", "gardener", 75.0),
];

/// Companies users pay, shared across the fleet (the same account for every customer).
const COMPANY_PAYEES: [(&str, &str, f64); 8] = [
    ("electricity", "City Power", 84.0),
    ("internet", "FibreNet", 45.0),
    ("phone", "Mobilink", 29.0),
    ("insurance", "SafeHome Insurance", 62.0),
    ("gym membership", "PulseFit", 39.0),
    ("water", "Metro Water", 31.0),
    ("car lease", "DriveLease", 310.0),
    ("streaming", "StreamBox", 14.0),
];

const DOC_NAMES: [(&str, bool); 24] = [
    ("quarterly-report-q4.docx", false),
    ("budget-2026.xlsx", false),
    ("roadmap-h1.pptx", false),
    ("meeting-notes-weekly.md", false),
    ("vendor-contract.pdf", false),
    ("onboarding-guide.pdf", false),
    ("market-analysis.docx", false),
    ("project-plan.xlsx", false),
    ("design-review.pdf", false),
    ("team-offsite-agenda.docx", false),
    ("product-spec-v3.docx", false),
    ("competitor-notes.md", false),
    ("press-release-draft.docx", false),
    ("training-schedule.xlsx", false),
    ("survey-results.csv", false),
    ("architecture-overview.pdf", false),
    ("invoice-archive-2025.zip", false),
    ("travel-policy.pdf", false),
    ("customer-list.csv", true),
    ("salary-review-2026.xlsx", true),
    ("employee-contacts.xlsx", true),
    ("api-credentials.txt", true),
    ("board-minutes-confidential.docx", true),
    ("passport-scan.pdf", true),
];

const MODELS: [(&str, &str); 4] = [
    ("gpt-4o", "openai"),
    ("gpt-4.1-mini", "openai"),
    ("claude-sonnet-4", "anthropic"),
    ("gemini-2.5-pro", "gcp.gemini"),
];

/// Countries of generated accounts and the shape of their BBAN (`n` digit, `a` letter).
const IBAN_FORMATS: [(&str, &str, f64); 10] = [
    ("DE", "nnnnnnnnnnnnnnnnnn", 4.0),
    ("FR", "nnnnnnnnnnnnnnnnnnnnnnn", 2.0),
    ("GB", "aaaannnnnnnnnnnnnn", 2.0),
    ("NL", "aaaannnnnnnnnn", 1.5),
    ("ES", "nnnnnnnnnnnnnnnnnnnn", 1.5),
    ("IT", "annnnnnnnnnnnnnnnnnnnnn", 1.5),
    ("AT", "nnnnnnnnnnnnnnnn", 1.0),
    ("BE", "nnnnnnnnnnnn", 1.0),
    ("CH", "nnnnnnnnnnnnnnnnn", 0.8),
    ("IE", "aaaannnnnnnnnnnnnn", 0.7),
];

/// One of a user's contacts (payees, channels, ...), the first ones most often: people deal
/// with a few of theirs far more than with the rest.
pub(crate) fn fav<'a, T>(rng: &mut SimRng, items: &'a [T]) -> &'a T {
    &items[zipf_index(rng, items.len())]
}

/// Two different contacts (the same one twice when there is only one).
pub(crate) fn two<T: Clone>(rng: &mut SimRng, items: &[T]) -> (T, T) {
    let i = zipf_index(rng, items.len());
    let mut j = zipf_index(rng, items.len());
    if j == i && items.len() > 1 {
        j = (i + 1 + rng.gen_range(0..items.len() - 1)) % items.len();
    }
    (items[i].clone(), items[j].clone())
}

/// A valid IBAN (its check digits verify, ISO 13616 mod 97) of a weighted country.
pub(crate) fn iban(rng: &mut SimRng) -> String {
    let fmts: Vec<((&str, &str), f64)> =
        IBAN_FORMATS.iter().map(|&(c, f, w)| ((c, f), w)).collect();
    let (country, fmt) = super::super::rng::weighted(rng, &fmts);
    let bban: String = fmt
        .chars()
        .map(|c| {
            if c == 'a' {
                (b'A' + rng.gen_range(0..26u8)) as char
            } else {
                (b'0' + rng.gen_range(0..10u8)) as char
            }
        })
        .collect();
    with_check_digits(country, &bban)
}

/// `country` + check digits + `bban`.
pub(crate) fn with_check_digits(country: &str, bban: &str) -> String {
    let mut rem: u32 = 0;
    let rearranged = format!("{bban}{country}00");
    for c in rearranged.chars() {
        if let Some(d) = c.to_digit(10) {
            rem = (rem * 10 + d) % 97;
        } else {
            let v = c as u32 - 'A' as u32 + 10;
            rem = (rem * 100 + v) % 97;
        }
    }
    format!("{country}{:02}{bban}", 98 - rem)
}

/// An IBAN in its printed form, in groups of four.
pub(crate) fn printed(iban: &str) -> String {
    let mut s = String::with_capacity(iban.len() + iban.len() / 4);
    for (i, c) in iban.chars().enumerate() {
        if i > 0 && i % 4 == 0 {
            s.push(' ');
        }
        s.push(c);
    }
    s
}

/// A person with a unique mail address at `domain` (the local part is numbered on a clash).
fn person(rng: &mut SimRng, domain: &str, taken: &mut Vec<String>) -> Person {
    let first = *pick(rng, &FIRST);
    let last = *pick(rng, &LAST);
    let base = format!("{}.{}", first.to_lowercase(), last.to_lowercase());
    let mut local = base.clone();
    let mut n = 2;
    while taken.contains(&format!("{local}@{domain}")) {
        local = format!("{base}{n}");
        n += 1;
    }
    let email = format!("{local}@{domain}");
    taken.push(email.clone());
    Person {
        first: first.to_string(),
        name: format!("{first} {last}"),
        email,
        handle: local,
    }
}

/// A private contact at a mail provider.
pub(crate) fn private_person(rng: &mut SimRng) -> Person {
    let first = *pick(rng, &FIRST);
    let last = *pick(rng, &LAST);
    let local = match rng.gen_range(0..3) {
        0 => format!("{}.{}", first.to_lowercase(), last.to_lowercase()),
        1 => format!(
            "{}{}{}",
            &first.to_lowercase()[..1],
            last.to_lowercase(),
            rng.gen_range(1..99)
        ),
        _ => format!(
            "{}_{}{}",
            first.to_lowercase(),
            last.to_lowercase(),
            rng.gen_range(70..99)
        ),
    };
    let email = format!("{local}@{}", pick(rng, &PERSONAL_DOMAINS));
    Person {
        first: first.to_string(),
        name: format!("{first} {last}"),
        email,
        handle: local,
    }
}

fn org(rng: &mut SimRng, taken_domains: &mut Vec<String>) -> Org {
    let (mut name, mut domain);
    loop {
        let a = *pick(rng, &ORG_A);
        let b = *pick(rng, &ORG_B);
        let c = *pick(rng, &ORG_C);
        name = format!("{a}{b} {c}");
        domain = format!("{}{}.{}", a.to_lowercase(), b, pick(rng, &TLDS));
        if !taken_domains.contains(&domain) {
            break;
        }
    }
    taken_domains.push(domain.clone());
    let mut taken = Vec::new();
    let staff = (0..rng.gen_range(30..60))
        .map(|_| person(rng, &domain, &mut taken))
        .collect();
    let mut channels: Vec<String> = vec!["general".into(), "random".into()];
    let mut teams = TEAM_CHANNELS.to_vec();
    teams.shuffle(rng);
    for t in teams.iter().take(rng.gen_range(4..8)) {
        channels.push(if rng.gen_bool(0.5) {
            format!("team-{t}")
        } else {
            t.to_string()
        });
    }
    channels.push(format!("proj-{}", pick(rng, &ORG_B)));
    Org {
        name,
        domain,
        staff,
        channels,
    }
}

impl World {
    /// Builds the fleet: `agents` agents spread over the roles, their users in a few
    /// organisations.
    pub(crate) fn build(seed: u64, start_ms: i64, days: u32, agents: u32) -> World {
        let mut rng = stream(seed, Domain::LlmWorld, 0, 0);
        let n_orgs = (agents / 6).clamp(2, 40) as usize;
        let mut domains = Vec::new();
        let orgs: Vec<Org> = (0..n_orgs).map(|_| org(&mut rng, &mut domains)).collect();
        let mut hotels = Vec::new();
        for city in CITIES {
            for _ in 0..4 {
                let w = *pick(&mut rng, &HOTEL_WORDS);
                let name = format!("{w} Hotel {city}");
                if hotels.iter().any(|h: &Hotel| h.name == name) {
                    continue;
                }
                hotels.push(Hotel {
                    name,
                    city,
                    rating: (rng.gen_range(30..50) as f64) / 10.0,
                    price: rng.gen_range(90..420),
                });
            }
        }
        let company_payees: Vec<Payee> = COMPANY_PAYEES
            .iter()
            .map(|&(purpose, name, amount)| Payee {
                name: name.to_string(),
                purpose,
                iban: iban(&mut rng),
                amount,
                company: true,
            })
            .collect();
        let mut per_role = [0u32; 5];
        let agents = (0..agents)
            .map(|i| {
                let role = Role::ALL[i as usize % Role::ALL.len()];
                let k = Role::ALL.iter().position(|r| *r == role).unwrap_or(0);
                per_role[k] += 1;
                let mut r = stream(seed, Domain::LlmWorld, 1, u64::from(i));
                agent(&mut r, i, role, per_role[k], &orgs, &company_payees, n_orgs)
            })
            .collect();
        World {
            seed,
            start_ms,
            days,
            orgs,
            agents,
            hotels,
        }
    }

    /// End of the period, epoch ms.
    pub(crate) fn end_ms(&self) -> i64 {
        self.start_ms + i64::from(self.days) * super::super::clock::DAY
    }

    /// Start of day `d`, epoch ms.
    pub(crate) fn day_start(&self, d: u32) -> i64 {
        self.start_ms + i64::from(d) * super::super::clock::DAY
    }
}

fn agent(
    rng: &mut SimRng,
    idx: u32,
    role: Role,
    number: u32,
    orgs: &[Org],
    company_payees: &[Payee],
    n_orgs: usize,
) -> Agent {
    let org_idx = rng.gen_range(0..n_orgs);
    let org = &orgs[org_idx];
    let mut staff: Vec<&Person> = org.staff.iter().collect();
    staff.shuffle(rng);
    let user = staff[0].clone();
    let colleagues: Vec<Person> = staff[1..]
        .iter()
        .take(rng.gen_range(6..14))
        .map(|p| (*p).clone())
        .collect();
    let mut externals = Vec::new();
    for _ in 0..rng.gen_range(3..8) {
        if rng.gen_bool(0.5) && n_orgs > 1 {
            let other = (org_idx + rng.gen_range(1..n_orgs)) % n_orgs;
            externals.push(pick(rng, &orgs[other].staff).clone());
        } else {
            externals.push(private_person(rng));
        }
    }
    externals.dedup_by(|a, b| a.email == b.email);
    let mut payees: Vec<Payee> = Vec::new();
    let mut personal = PERSONAL_PAYEES.to_vec();
    personal.shuffle(rng);
    for &(purpose, who, amount) in personal.iter().take(rng.gen_range(2..5)) {
        let p = private_person(rng);
        payees.push(Payee {
            name: if who == "landlord" || who == "property management" {
                format!("{} ({who})", p.name)
            } else {
                format!("{} ({who})", p.first)
            },
            purpose,
            iban: iban(rng),
            amount: (amount * rng.gen_range(0.8..1.25f64)).round(),
            company: false,
        });
    }
    let mut companies: Vec<&Payee> = company_payees.iter().collect();
    companies.shuffle(rng);
    for p in companies.iter().take(rng.gen_range(2..5)) {
        payees.push((*p).clone());
    }
    let mut channels: Vec<String> = org.channels[..2].to_vec();
    let mut rest: Vec<&String> = org.channels[2..].iter().collect();
    rest.shuffle(rng);
    channels.extend(rest.iter().take(rng.gen_range(2..5)).map(|c| (*c).clone()));
    let mut docs_pool = DOC_NAMES.to_vec();
    docs_pool.shuffle(rng);
    let mut next_id = rng.gen_range(10..400u32);
    let docs = docs_pool
        .iter()
        .take(rng.gen_range(10..20))
        .map(|&(name, private)| {
            next_id += rng.gen_range(1..40);
            Doc {
                id: next_id.to_string(),
                name: name.to_string(),
                private,
            }
        })
        .collect();
    let mut sites: Vec<String> = SITES.iter().map(|s| s.to_string()).collect();
    sites.shuffle(rng);
    sites.truncate(rng.gen_range(4..9));
    let mut cities = CITIES.to_vec();
    cities.shuffle(rng);
    cities.truncate(rng.gen_range(2..5));
    let (model, provider) = *pick(rng, &MODELS);
    // Median sessions on a working day: mail and chat are used all day, banking now and then.
    let busy = match role {
        Role::Mail | Role::Workspace => 9.0,
        Role::Research => 7.0,
        Role::Travel => 5.0,
        Role::Banking => 3.5,
    };
    Agent {
        idx,
        id: format!("{}-{number:03}", role.prefix()),
        role,
        org: org_idx,
        user,
        colleagues,
        externals,
        payees,
        own_iban: iban(rng),
        channels,
        docs,
        sites,
        cities,
        tz_off_ms: *pick(rng, &[-5i64, 0, 1, 1, 1, 2]) * HOUR,
        work_start_h: rng.gen_range(7.0..10.0),
        work_len_h: rng.gen_range(8.0..11.0),
        sessions_per_day: lognormal(rng, busy, 0.35).clamp(1.5, 14.0),
        model,
        provider,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ibans_verify() {
        assert_eq!(
            with_check_digits("DE", "370400440532013000"),
            "DE89370400440532013000"
        );
        assert_eq!(
            with_check_digits("GB", "WEST12345698765432"),
            "GB82WEST12345698765432"
        );
        let mut rng = stream(3, Domain::LlmWorld, 9, 9);
        for _ in 0..500 {
            let i = iban(&mut rng);
            assert!(i.parse::<::iban::Iban>().is_ok(), "{i}");
            assert!(printed(&i).parse::<::iban::Iban>().is_ok(), "{i}");
        }
    }

    #[test]
    fn every_role_is_in_a_small_fleet() {
        let w = World::build(1, 0, 14, 10);
        for r in Role::ALL {
            assert_eq!(w.agents.iter().filter(|a| a.role == r).count(), 2);
        }
        assert_eq!(w.agents[0].id, "banking-assistant-001");
        assert_eq!(w.agents[5].id, "banking-assistant-002");
    }
}
