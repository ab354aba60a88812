//! The body of `POST /v1/authorize`: checked strictly, so that a malformed request is told why
//! rather than guessed at.

use serde_json::{Map, Value};

use crate::event::time::{MAX_MS, MIN_MS, parse_rfc3339_ms};

/// Largest request body accepted, bytes.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// Longest `principal`, as for a native event's `agent_id`.
const MAX_PRINCIPAL: usize = 512;
/// Longest `action`.
const MAX_ACTION: usize = 256;
/// Longest `resource`.
const MAX_RESOURCE: usize = 4096;
/// Longest `session_id` or `grant`.
const MAX_CONTEXT_STRING: usize = 512;

/// A checked request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthzRequest {
    /// The agent id.
    pub principal: String,
    /// The action, as in native events (`s3:GetObject`).
    pub action: String,
    /// The resource, as in native events (`s3://bucket/key`).
    pub resource: String,
    /// `context.session_id`.
    pub session_id: Option<String>,
    /// `context.grant`: the grant the agent means to use.
    pub grant: Option<String>,
    /// `context.time`, epoch milliseconds: "now" for this decision.
    pub time_ms: Option<i64>,
}

/// Parses and checks a request body. The error is one sentence for the 400 response.
pub fn parse(body: &[u8]) -> Result<AuthzRequest, String> {
    if body.len() > MAX_BODY {
        return Err(format!(
            "the body is {} bytes, more than {MAX_BODY}",
            body.len()
        ));
    }
    let value = super::strict::parse(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let Value::Object(map) = value else {
        return Err("the body is not a JSON object".to_owned());
    };
    for key in map.keys() {
        if !["principal", "action", "resource", "context"].contains(&key.as_str()) {
            return Err(format!(
                "unknown member {key:?} (expected principal, action, resource and context)"
            ));
        }
    }
    let principal = string(&map, "principal", 1, MAX_PRINCIPAL)?;
    let action = string(&map, "action", 1, MAX_ACTION)?;
    let resource = string(&map, "resource", 0, MAX_RESOURCE)?;
    let (session_id, grant, time_ms) = match map.get("context") {
        None | Some(Value::Null) => (None, None, None),
        Some(Value::Object(ctx)) => (
            optional_string(ctx, "session_id")?,
            optional_string(ctx, "grant")?,
            time(ctx)?,
        ),
        Some(other) => {
            return Err(format!(
                "context must be an object, found {}",
                describe(other)
            ));
        }
    };
    Ok(AuthzRequest {
        principal,
        action,
        resource,
        session_id,
        grant,
        time_ms,
    })
}

fn describe(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn string(map: &Map<String, Value>, key: &str, min: usize, max: usize) -> Result<String, String> {
    match map.get(key) {
        None => Err(format!("{key} is missing")),
        Some(Value::String(s)) => {
            let n = s.chars().count();
            if n < min {
                Err(format!("{key} is empty"))
            } else if n > max {
                Err(format!("{key} is {n} characters, more than {max}"))
            } else {
                Ok(s.clone())
            }
        }
        Some(other) => Err(format!("{key} must be a string, found {}", describe(other))),
    }
}

fn optional_string(ctx: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    match ctx.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string(ctx, key, 1, MAX_CONTEXT_STRING)
            .map(Some)
            .map_err(|e| format!("context.{e}")),
    }
}

fn time(ctx: &Map<String, Value>) -> Result<Option<i64>, String> {
    let ms = match ctx.get("time") {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => parse_rfc3339_ms(s)
            .ok_or_else(|| format!("context.time {s:?} is not an RFC 3339 time"))?,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            format!("context.time {n} is not a whole number of epoch milliseconds")
        })?,
        Some(other) => {
            return Err(format!(
                "context.time must be an RFC 3339 string or epoch milliseconds, found {}",
                describe(other)
            ));
        }
    };
    if !(MIN_MS..MAX_MS).contains(&ms) {
        return Err("context.time must lie between 1970 and 2100".to_owned());
    }
    Ok(Some(ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_request() {
        let r = parse(
            br#"{"principal": "a", "action": "s3:GetObject", "resource": "s3://b/k",
                 "context": {"session_id": "s", "time": "2026-01-01T00:00:00Z", "grant": "g", "other": 1}}"#,
        )
        .unwrap();
        assert_eq!(r.principal, "a");
        assert_eq!(r.session_id.as_deref(), Some("s"));
        assert_eq!(r.grant.as_deref(), Some("g"));
        assert_eq!(r.time_ms, Some(1_767_225_600_000));
        let r = parse(br#"{"principal": "a", "action": "x", "resource": ""}"#).unwrap();
        assert_eq!((r.session_id, r.time_ms), (None, None));
    }

    #[test]
    fn names_what_is_wrong() {
        for (body, want) in [
            (&b"nope"[..], "not JSON"),
            (b"[1]", "not a JSON object"),
            (br#"{"action": "x", "resource": "r"}"#, "principal is missing"),
            (br#"{"principal": 1, "action": "x", "resource": "r"}"#, "principal must be a string"),
            (br#"{"principal": "", "action": "x", "resource": "r"}"#, "principal is empty"),
            (br#"{"principal": "a", "action": "x", "resource": "r", "principle": "b"}"#, "unknown member \"principle\""),
            (br#"{"principal": "a", "principal": "b", "action": "x", "resource": "r"}"#, "duplicate key"),
            (br#"{"principal": "a", "action": "x", "resource": "r", "context": []}"#, "context must be an object"),
            (br#"{"principal": "a", "action": "x", "resource": "r", "context": {"time": "yesterday"}}"#, "not an RFC 3339 time"),
            (br#"{"principal": "a", "action": "x", "resource": "r", "context": {"session_id": 5}}"#, "context.session_id must be a string"),
        ] {
            let err = parse(body).unwrap_err();
            assert!(err.contains(want), "{}: {err}", String::from_utf8_lossy(body));
        }
        let big = format!(
            r#"{{"principal": "a", "action": "x", "resource": "{}"}}"#,
            "r".repeat(5000)
        );
        assert!(
            parse(big.as_bytes())
                .unwrap_err()
                .contains("more than 4096")
        );
    }
}
