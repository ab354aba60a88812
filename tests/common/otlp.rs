//! The OTLP fixture as an exporter sends it, for the tests that join tool calls with the agent
//! run that arrives after them.

use std::path::Path;

/// Each export request of `fixtures/otlp/banking_agent.jsonl` split as an exporter sends it: a
/// span leaves when it ends, so an agent run's tool calls come in one request and its
/// `invoke_agent` span in the next. One (tool calls, agent run) pair of OTLP JSON requests per
/// request of the fixture, in order.
pub fn split_requests() -> Vec<(String, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/otlp/banking_agent.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .map(|line| {
            let req: serde_json::Value = serde_json::from_str(line).unwrap();
            let (mut calls, mut run) = (req.clone(), req);
            for (doc, want_invoke) in [(&mut calls, false), (&mut run, true)] {
                for rs in doc["resourceSpans"].as_array_mut().unwrap() {
                    for ss in rs["scopeSpans"].as_array_mut().unwrap() {
                        ss["spans"].as_array_mut().unwrap().retain(|s| {
                            let invoke = s["attributes"].as_array().unwrap().iter().any(|a| {
                                a["key"] == "gen_ai.operation.name"
                                    && a["value"]["stringValue"] == "invoke_agent"
                            });
                            invoke == want_invoke
                        });
                    }
                }
            }
            (calls.to_string(), run.to_string())
        })
        .collect()
}
