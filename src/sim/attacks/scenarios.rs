//! How each scenario unfolds: victims' sessions, addresses, pacing and outcomes.

use rand::Rng;

use super::{AttackPlan, Scenario, external_domain};
use crate::event::Outcome;
use crate::sim::archetypes::{self, Archetype, Plan};
use crate::sim::clock::{DAY, HOUR, date_parts, local_midnight};
use crate::sim::event::SimEvent;
use crate::sim::fleet::{Agent, World, subnet_base};
use crate::sim::rng::{Domain, SimRng, gap_ms, log_uniform, pick, poisson, stream, volume};
use crate::sim::sessions::{Emitter, Session, working_time};

/// An address the agent has never used: an outside host or another internal subnet.
fn attacker_ip(rng: &mut SimRng) -> u32 {
    if rng.gen_bool(0.6) {
        let prefixes: [[u32; 3]; 8] = [
            [185, 220, 101],
            [45, 155, 205],
            [103, 251, 167],
            [91, 219, 236],
            [193, 42, 33],
            [5, 188, 206],
            [146, 70, 117],
            [23, 94, 41],
        ];
        let p = pick(rng, &prefixes);
        (p[0] << 24) | (p[1] << 16) | (p[2] << 8) | rng.gen_range(2..254)
    } else {
        let arch = *pick(rng, &Archetype::ALL);
        let second = subnet_base(arch) + rng.gen_range(0..4);
        (10 << 24) | (second << 16) | (rng.gen_range(0..=255) << 8) | rng.gen_range(2..254)
    }
}

/// A time in `[ds, ds + 1 day)` at the same local time as `t`.
fn within_day(t: i64, ds: i64) -> i64 {
    let mut t = t;
    while t < ds {
        t += DAY;
    }
    while t >= ds + DAY {
        t -= DAY;
    }
    t
}

/// Opens a session that looks like one of the agent's own.
fn own_session(a: &Agent, rng: &mut SimRng, t: i64) -> Session {
    let intent = archetypes::intent(a, rng);
    let attr = archetypes::attr(a, rng);
    Session::open(rng, a, t, intent, attr)
}

/// Emits one access whose outcome follows the agent's grants: allowed when a grant covers it
/// (`p_denied_covered` of those still denied), otherwise mostly denied.
#[allow(clippy::too_many_arguments)]
fn access(
    em: &mut Emitter,
    rng: &mut SimRng,
    a: &Agent,
    s: &mut Session,
    t: i64,
    action: &'static str,
    resource: String,
    bytes: u64,
    p_denied_covered: f64,
) {
    match a.grant_for(action, &resource) {
        Some(g) if !rng.gen_bool(p_denied_covered) => {
            let outcome = if rng.gen_bool(0.005) {
                Outcome::Error
            } else {
                Outcome::Success
            };
            em.event(rng, s, t, action, resource, outcome, Some(g), bytes);
        }
        _ => {
            let x: f64 = rng.r#gen();
            let outcome = if x < 0.85 {
                Outcome::Denied
            } else if x < 0.9 {
                Outcome::Error
            } else {
                Outcome::Success
            };
            em.event(rng, s, t, action, resource, outcome, None, bytes);
        }
    }
}

/// Generates the events of one attack (and of any benign session hosting it).
pub(crate) fn generate(w: &World, p: &AttackPlan, campaign: &str, out: &mut Vec<SimEvent>) {
    let a = &w.agents[p.agent as usize];
    let mut rng = stream(w.seed, Domain::Attack, p.idx as u64, p.agent as u64);
    let rng = &mut rng;
    let ds = w.day_start(p.day);
    match p.scenario {
        Scenario::PromptInjectionTool => {
            let t = within_day(working_time(a, ds + rng.gen_range(0..DAY), rng), ds);
            let dest = p.campaign.then(|| campaign.to_string());
            hosted(w, a, rng, t, p, out, |em, rng, s, t| {
                injected_tool(a, rng, s, t, dest.as_deref(), em)
            });
            return;
        }
        Scenario::PrivilegeEscalation if a.archetype.human_driven() && rng.gen_bool(0.5) => {
            let t = within_day(working_time(a, ds + rng.gen_range(0..DAY), rng), ds);
            hosted(w, a, rng, t, p, out, |em, rng, s, t| {
                escalation(a, rng, s, t, em)
            });
            return;
        }
        _ => {}
    }
    let mut em = Emitter::for_attack(out, a.idx, p.idx, 0);
    em.label = Some(p.idx);
    let em = &mut em;
    match p.scenario {
        Scenario::CredentialTheftEnum => credential_theft(w, a, rng, ds, em),
        Scenario::BulkExfiltration => bulk_exfiltration(w, a, rng, ds, em),
        // Injections always ride in a host session (above).
        Scenario::PromptInjectionTool => {}
        Scenario::PrivilegeEscalation => {
            let t = within_day(working_time(a, ds + rng.gen_range(0..DAY), rng), ds);
            let mut s = own_session(a, rng, t);
            escalation(a, rng, &mut s, t, em);
        }
        Scenario::LateralMovement => lateral_movement(w, a, rng, ds, em),
        Scenario::LowAndSlow => low_and_slow(a, rng, ds, em),
        Scenario::SessionReplayOffhours => replay(w, a, rng, ds, em),
    }
}

fn credential_theft(w: &World, a: &Agent, rng: &mut SimRng, ds: i64, em: &mut Emitter) {
    let mut t = ds + rng.gen_range(0..DAY - 2 * HOUR);
    let ip = attacker_ip(rng);
    em.ip_override = Some(ip);
    let intent = if rng.gen_bool(0.5) {
        archetypes::intent(a, rng)
    } else {
        None
    };
    let mut s = Session {
        id: rng.r#gen(),
        ip,
        intent,
        attr: archetypes::attr(a, rng),
        steps: 0,
    };
    let n = log_uniform(rng, 3, 250);
    let pace = rng.gen_range(150.0..2_500.0);
    // Enumeration rarely asks the same thing twice.
    let mut asked = std::collections::HashSet::new();
    for _ in 0..n {
        let mut call = probe(w, a, rng, t);
        for _ in 0..8 {
            if asked.insert(call.clone()) {
                break;
            }
            call = probe(w, a, rng, t);
        }
        let (action, resource) = call;
        let bytes = volume(rng, 4e3, 0.8);
        access(em, rng, a, &mut s, t, action, resource, bytes, 0.0);
        t += gap_ms(rng, pace, 0.9);
    }
}

/// One enumeration call: List/Describe/Get across services, or a read in the agent's own domain.
fn probe(w: &World, a: &Agent, rng: &mut SimRng, t: i64) -> (&'static str, String) {
    let team = pick(rng, &archetypes::etl::TEAMS).0;
    let svc = *pick(rng, &SERVICES);
    let ns = *pick(rng, &archetypes::infra::NAMESPACES);
    let region = *pick(
        rng,
        &["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-1"],
    );
    let (y, m, d) = date_parts(t - rng.gen_range(0..400) * DAY, 0);
    match rng.gen_range(0..13) {
        0 => (
            "s3:ListObjects",
            format!(
                "s3://{team}-{}/{y:04}/{m:02}/{d:02}/",
                pick(rng, &["raw", "curated"])
            ),
        ),
        1 => (
            "s3:GetBucketPolicy",
            format!("s3://{team}-{}", pick(rng, &["raw", "curated"])),
        ),
        2 => (
            "iam:ListRoles",
            format!(
                "iam://roles/{}",
                pick(rng, &["", "service-", "ci-", "etl-"])
            ),
        ),
        3 => {
            let role = *pick(rng, &ADMIN_ROLES);
            ("iam:GetRole", format!("iam://roles/{role}"))
        }
        4 => (
            "iam:ListAttachedUserPolicies",
            format!("iam://users/{}", a.id),
        ),
        5 => ("secrets:List", format!("secrets://prod/{svc}/")),
        6 => (
            "secrets:Get",
            format!(
                "secrets://prod/{svc}/{}",
                pick(
                    rng,
                    &["db-password", "api-key", "signing-key", "oauth-client"]
                )
            ),
        ),
        7 => {
            let (db, tables) = *pick(rng, &archetypes::analyst::DBS);
            (
                "db:DescribeTable",
                format!("postgres://{db}/{}", pick(rng, tables)),
            )
        }
        8 => (
            "k8s:list",
            format!(
                "k8s://{ns}/{}",
                pick(
                    rng,
                    &["secrets", "serviceaccounts", "configmaps", "rolebindings"]
                )
            ),
        ),
        9 => {
            let (action, what) = *pick(
                rng,
                &[
                    ("ec2:DescribeInstances", "instances"),
                    ("ec2:DescribeSecurityGroups", "security-groups"),
                    ("ec2:DescribeSnapshots", "snapshots"),
                    ("ec2:DescribeVpcs", "vpcs"),
                ],
            );
            (action, format!("ec2://{region}/{what}"))
        }
        10 => (
            "crm:GetCustomer",
            format!("crm://customers/c{}", rng.gen_range(100_000..900_000)),
        ),
        11 => (
            "payments:ListAccounts",
            format!(
                "payments://{}/accounts/",
                pick(rng, &archetypes::finance::PROVIDERS)
            ),
        ),
        _ => {
            let plan = archetypes::bulk_reads(w, a, rng, 1, t);
            (
                plan.action,
                // A bulk read of one resource plans one.
                plan.resources.into_iter().next().unwrap_or_default(),
            )
        }
    }
}

const ADMIN_ROLES: [&str; 5] = [
    "admin",
    "OrganizationAccountAccessRole",
    "break-glass",
    "platform-admin",
    "root-automation",
];

const SERVICES: [&str; 6] = ["payments", "auth", "checkout", "billing", "search", "crm"];

/// Accesses each of the plan's resources in turn, `gap` ms apart on average.
#[allow(clippy::too_many_arguments)]
fn run_plan(
    em: &mut Emitter,
    rng: &mut SimRng,
    a: &Agent,
    s: &mut Session,
    mut t: i64,
    plan: Plan,
    gap: f64,
    bytes_sigma: f64,
) {
    for resource in plan.resources {
        let bytes = volume(rng, plan.bytes_median, bytes_sigma);
        access(em, rng, a, s, t, plan.action, resource, bytes, 0.005);
        t += gap_ms(rng, gap, 0.8);
    }
}

fn bulk_exfiltration(w: &World, a: &Agent, rng: &mut SimRng, ds: i64, em: &mut Emitter) {
    let t = within_day(working_time(a, ds + rng.gen_range(0..DAY), rng), ds);
    let n = log_uniform(rng, 10, 2000) as usize;
    let plan = archetypes::bulk_reads(w, a, rng, n, t);
    let speed = log_uniform(rng, 2, 100) as f64 / 100.0;
    let gap = plan.gap_ms * speed;
    let mut s = own_session(a, rng, t);
    run_plan(em, rng, a, &mut s, t, plan, gap, 0.7);
}

fn lateral_movement(w: &World, a: &Agent, rng: &mut SimRng, ds: i64, em: &mut Emitter) {
    let t = within_day(working_time(a, ds + rng.gen_range(0..DAY), rng), ds);
    let mut n = log_uniform(rng, 5, 150) as usize;
    let probe_plan = archetypes::lateral(w, a, rng, 1, t);
    // Keep it within the agent's usual working span.
    n = n.min(((8 * HOUR) as f64 / probe_plan.gap_ms).max(5.0) as usize);
    // An attacker goes where the agent's (broad) grants let it, when they let it anywhere.
    let mut plan = archetypes::lateral(w, a, rng, n, t);
    for _ in 0..6 {
        if plan
            .resources
            .iter()
            .any(|r| a.grant_for(plan.action, r).is_some())
        {
            break;
        }
        plan = archetypes::lateral(w, a, rng, n, t);
    }
    let gap = plan.gap_ms;
    let mut s = own_session(a, rng, t);
    run_plan(em, rng, a, &mut s, t, plan, gap, 0.6);
}

/// Sensitive resources, `(action, resource)`.
fn sensitive(rng: &mut SimRng, t: i64) -> Vec<(&'static str, String)> {
    let (y, m, _) = date_parts(t, 0);
    let svc = *pick(rng, &SERVICES);
    vec![
        ("db:Select", "postgres://hr/payroll".to_string()),
        ("db:Select", "postgres://hr/compensation".to_string()),
        (
            "db:Select",
            "postgres://finance/vendor_payments".to_string(),
        ),
        (
            "s3:GetObject",
            format!("s3://finance-secure/payroll/{y:04}-{m:02}.csv"),
        ),
        (
            "s3:GetObject",
            format!("s3://finance-secure/bank-statements/{y:04}-{m:02}.pdf"),
        ),
        ("secrets:Get", "secrets://prod/payments/api-key".to_string()),
        ("secrets:Get", format!("secrets://prod/{svc}/db-password")),
        (
            "k8s:get",
            "k8s://kube-system/secrets/cluster-admin-token".to_string(),
        ),
    ]
}

fn low_and_slow(a: &Agent, rng: &mut SimRng, ds: i64, em: &mut Emitter) {
    let start = ds + rng.gen_range(0..6 * HOUR);
    let all = sensitive(rng, start);
    let covered: Vec<(&'static str, String)> = all
        .iter()
        .filter(|(act, res)| a.grant_for(act, res).is_some())
        .cloned()
        .collect();
    let pool = if covered.is_empty() { all } else { covered };
    let targets: Vec<(&'static str, String)> = (0..rng.gen_range(1..=3))
        .map(|_| pick(rng, &pool).clone())
        .collect();
    let hours = rng.gen_range(6..=24);
    let rate = rng.gen_range(0.4..2.5);
    let mut times: Vec<i64> = Vec::new();
    for h in 0..hours {
        for _ in 0..poisson(rng, rate) {
            times.push(start + h * HOUR + rng.gen_range(0..HOUR));
        }
    }
    while times.len() < 3 {
        times.push(start + rng.gen_range(0..hours * HOUR));
    }
    times.sort_unstable();
    for t in times {
        let (action, resource) = pick(rng, &targets).clone();
        let mut s = own_session(a, rng, t);
        let bytes = volume(rng, 50e3, 1.0);
        access(em, rng, a, &mut s, t, action, resource, bytes, 0.0);
    }
}

fn replay(w: &World, a: &Agent, rng: &mut SimRng, ds: i64, em: &mut Emitter) {
    let local = local_midnight(ds + 12 * HOUR, a.tz_off_ms);
    let t = within_day(local + rng.gen_range(HOUR..5 * HOUR), ds);
    em.ip_override = Some(attacker_ip(rng));
    let before = em.out.len();
    for _ in 0..5 {
        archetypes::session(w, a, rng, t, em);
        if em.out.len() - before >= 3 {
            break;
        }
        em.out.truncate(before);
    }
}

/// Generates a benign session of the agent at `t` and splices the attack's events (made by `f`)
/// into it: same session id, address and intent. Later benign events shift to make room.
fn hosted(
    w: &World,
    a: &Agent,
    rng: &mut SimRng,
    t: i64,
    p: &AttackPlan,
    out: &mut Vec<SimEvent>,
    f: impl FnOnce(&mut Emitter, &mut SimRng, &mut Session, i64) -> i64,
) {
    let mut host = Vec::new();
    {
        let mut hem = Emitter::for_attack(&mut host, a.idx, p.idx, 1);
        archetypes::session(w, a, rng, t, &mut hem);
    }
    let Some(first) = host.first().cloned() else {
        return;
    };
    host.sort_by_key(|e| e.time_ms);
    let at = rng.gen_range(1..=host.len());
    let t0 = host[at - 1].time_ms + gap_ms(rng, 6_000.0, 0.6);
    let mut s = Session {
        id: first.session,
        ip: first.ip,
        intent: first.intent,
        attr: first.attr,
        steps: 0,
    };
    let mut injected = Vec::new();
    let t_end = {
        let mut em = Emitter::for_attack(&mut injected, a.idx, p.idx, 2);
        em.label = Some(p.idx);
        f(&mut em, rng, &mut s, t0)
    };
    let shift = (t_end - t0) + gap_ms(rng, 6_000.0, 0.6);
    for e in host.iter_mut().skip(at) {
        e.time_ms += shift;
    }
    let mut all: Vec<SimEvent> = host.into_iter().chain(injected).collect();
    all.sort_by_key(|e| (e.time_ms, e.seq));
    for (i, e) in all.iter_mut().enumerate() {
        e.step = (i + 1).min(u16::MAX as usize) as u16;
    }
    out.extend(all);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tool {
    Mail,
    AccessKey,
    Transfer,
}

/// 1-5 calls of a tool the agent never uses. Returns the time of the last call.
fn injected_tool(
    a: &Agent,
    rng: &mut SimRng,
    s: &mut Session,
    mut t: i64,
    campaign: Option<&str>,
    em: &mut Emitter,
) -> i64 {
    let provider = *pick(rng, &archetypes::finance::PROVIDERS);
    let payee = format!("acct_{:08x}", rng.r#gen::<u32>());
    let mail_to = format!(
        "mailto:{}@{}",
        pick(rng, &["drop", "inbox", "upload", "collect", "hr"]),
        external_domain(rng)
    );
    let key = format!("iam://users/{}/access-keys", a.id);
    let transfer = format!("payments://{provider}/accounts/{payee}/transfers");
    let tool = if campaign.is_some() {
        Tool::Mail
    } else {
        let covered: Vec<Tool> = [
            (Tool::Mail, "mail:Send", mail_to.as_str()),
            (Tool::AccessKey, "iam:CreateAccessKey", key.as_str()),
            (Tool::Transfer, "payments:Transfer", transfer.as_str()),
        ]
        .into_iter()
        .filter(|(_, act, res)| a.grant_for(act, res).is_some())
        .map(|x| x.0)
        .collect();
        if covered.is_empty() {
            *pick(rng, &[Tool::Mail, Tool::AccessKey, Tool::Transfer])
        } else {
            *pick(rng, &covered)
        }
    };
    let n = log_uniform(rng, 1, 5);
    let dest = campaign.map(str::to_string).unwrap_or(mail_to);
    for i in 0..n {
        let (action, resource, bytes) = match tool {
            Tool::Mail => ("mail:Send", dest.clone(), volume(rng, 40e3, 1.2)),
            Tool::AccessKey if i == 0 => {
                ("iam:CreateAccessKey", key.clone(), volume(rng, 600.0, 0.2))
            }
            Tool::AccessKey => ("iam:ListAccessKeys", key.clone(), volume(rng, 900.0, 0.2)),
            Tool::Transfer if i == 0 && n > 1 => (
                "payments:CreatePayee",
                format!("payments://{provider}/payees/{payee}"),
                volume(rng, 1e3, 0.3),
            ),
            Tool::Transfer => (
                "payments:Transfer",
                transfer.clone(),
                volume(rng, 1.5e3, 0.3),
            ),
        };
        access(em, rng, a, s, t, action, resource, bytes, 0.0);
        if i + 1 < n {
            t += gap_ms(rng, 5_000.0, 0.7);
        }
    }
    t
}

/// IAM changes and admin role assumption, mostly denied.
fn escalation(a: &Agent, rng: &mut SimRng, s: &mut Session, mut t: i64, em: &mut Emitter) -> i64 {
    let n = log_uniform(rng, 3, 25);
    let own_role = format!("{}-role", a.id);
    for i in 0..n {
        let role = *pick(rng, &ADMIN_ROLES);
        let (action, resource) = match rng.gen_range(0..4) {
            0 => (
                "iam:CreateRole",
                format!(
                    "iam://roles/{}-{:04x}",
                    pick(rng, &["ops", "svc", "tmp"]),
                    rng.r#gen::<u16>()
                ),
            ),
            1 => (
                "iam:AttachRolePolicy",
                format!("iam://roles/{own_role}/policies/AdministratorAccess"),
            ),
            2 => (
                "iam:PutRolePolicy",
                format!(
                    "iam://roles/{own_role}/policies/inline-{:04x}",
                    rng.r#gen::<u16>()
                ),
            ),
            _ => ("sts:AssumeRole", format!("iam://roles/{role}")),
        };
        let b = volume(rng, 800.0, 0.3);
        access(em, rng, a, s, t, action, resource, b, 0.75);
        if i + 1 < n {
            t += gap_ms(rng, 6_000.0, 0.9);
        }
    }
    t
}
