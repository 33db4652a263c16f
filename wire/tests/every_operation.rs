//! Every operation of EC2, STS, SNS, Auto Scaling, ELBv2, IAM and CloudWatch (in each of
//! its three protocols), with a sample value for every member (three levels deep):
//! botocore's serializer builds the request and we must decode it to the same input;
//! we encode the sample output and botocore's parser must read the same output back.

mod common;

use base64::Engine;
use serde_json::{Value, json};
use wire::{HttpRequest, Limits, Protocol};

fn report(failures: &[String], total: usize) {
    assert!(
        failures.is_empty(),
        "{} of {total} failed; the first ones:\n{}",
        failures.len(),
        failures
            .iter()
            .take(15)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn every_botocore_request_decodes_to_its_input() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let reg = common::registry(&python);
    let lines = common::run(&python, &["every-request"], "");
    assert!(lines.len() > 1000, "only {} operations", lines.len());
    let limits = Limits::default();
    let mut failures = Vec::new();
    for line in &lines {
        let case: Value = serde_json::from_str(line).unwrap();
        let name = format!(
            "{} {} {}",
            case["service"], case["protocol"], case["operation"]
        );
        let headers: Vec<(String, String)> = case["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_string(),
                    h[1].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let body = base64::engine::general_purpose::STANDARD
            .decode(case["body"].as_str().unwrap())
            .unwrap();
        let req = HttpRequest {
            method: "POST",
            path: case["path"].as_str().unwrap(),
            query: "",
            headers: &headers,
            body: &body,
        };
        let model = common::model_of(&reg, case["service"].as_str().unwrap());
        let routed = match reg.route(&req, Some(model.signing_name()), &limits) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{name}: route: {}", wire::error_chain(&e)));
                continue;
            }
        };
        assert_eq!(
            Some(routed.protocol),
            Protocol::from_name(case["protocol"].as_str().unwrap())
        );
        let decoded = routed.decode(&req, &limits);
        if let (Ok(v), Some(input)) = (&decoded, &model.operation(&routed.operation).unwrap().input)
        {
            if let Err(e) =
                wire::validate::value(model, model.resolve(input), v, "", limits.max_depth)
            {
                failures.push(format!(
                    "{name}: the validator refuses what the decoder made: {e}"
                ));
            }
        }
        match decoded {
            Ok(v) if common::same(&v, &case["input"]) => {}
            Ok(v) => failures.push(format!("{name}: got {v}\n   want {}", case["input"])),
            Err(e) => failures.push(format!("{name}: {}", wire::error_chain(&e))),
        }
    }
    report(&failures, lines.len());
}

#[test]
fn botocore_parses_every_output_we_encode() {
    let Some(python) = common::venv_python() else {
        return;
    };
    let reg = common::registry(&python);
    let cases = common::run(&python, &["every-output"], "");
    let mut lines = String::new();
    let mut failures = Vec::new();
    for line in &cases {
        let case: Value = serde_json::from_str(line).unwrap();
        let model = common::model_of(&reg, case["service"].as_str().unwrap());
        let protocol = Protocol::from_name(case["protocol"].as_str().unwrap()).unwrap();
        let op = case["operation"].as_str().unwrap();
        match wire::encode_output(model, protocol, op, &case["output"], "req-1") {
            Ok(resp) => {
                let mut c = case.clone();
                c["status"] = json!(resp.status);
                c["headers"] = json!(resp.headers);
                c["body"] = json!(base64::engine::general_purpose::STANDARD.encode(&resp.body));
                lines.push_str(&c.to_string());
                lines.push('\n');
            }
            Err(e) => failures.push(format!("{}: encode: {e}", case["name"])),
        }
    }
    for verdict in common::run(&python, &["parse"], &lines) {
        let v: Value = serde_json::from_str(&verdict).unwrap();
        if v["ok"] != json!(true) {
            failures.push(format!(
                "{}: botocore read {}\n   we wrote {}",
                v["name"], v["got"], v["expected"]
            ));
        }
    }
    report(&failures, cases.len());
}
