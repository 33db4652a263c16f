//! SNS on a real agent, through boto3's `sns` client and the `aws sns` CLI, with real
//! subscribers on the loopback (HTTP endpoints, an SMTP server): the confirmation handshake
//! through the unsigned SubscribeURL, signed notifications checked against the agent's
//! certificate, raw and structured messages, a failing endpoint beside a working one, mail,
//! SNS's error codes; and subscriptions and pending deliveries across a restart.

mod common;

use common::Agent;

/// A port free on the loopback now (for a server the agent must be told of at its start).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn sns_answers_boto3_and_the_cli_and_delivers_over_http_and_smtp() {
    let smtp = free_port().to_string();
    let relay = format!("127.0.0.1:{smtp}");
    let agent = Agent::start(&["--smtp", &relay]);
    let out = common::run_python(&agent, "sns_boto3.py", &[&smtp], "sns: ok");
    for part in ["http", "failing endpoint", "https", "email", "errors"] {
        assert!(out.contains(&format!("sns {part}: ok")), "{out}");
    }
}

#[test]
fn subscriptions_and_pending_deliveries_survive_a_restart() {
    let mut agent = Agent::start(&[]);
    let port = free_port().to_string();
    let out = common::run_python(&agent, "sns_restart.py", &["before", &port], "before: ok");
    let id = out
        .lines()
        .find_map(|l| l.strip_prefix("message "))
        .expect("the script prints the message's id")
        .to_string();
    agent.restart();
    common::run_python(
        &agent,
        "sns_restart.py",
        &["after", &port, &id],
        "after: ok",
    );
}
