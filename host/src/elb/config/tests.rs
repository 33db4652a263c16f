use std::net::Ipv4Addr;
use std::path::Path;

use super::*;
use crate::elb::spec::{CheckSpec, ServerSpec};

fn spec() -> LbSpec {
    LbSpec {
        id: "abc".into(),
        address: Ipv4Addr::new(198, 51, 100, 9),
        http: true,
        idle_timeout_s: 60,
        http2: true,
        drain_s: 300,
        listeners: vec![ListenerSpec {
            port: 80,
            tls_pem: None,
            rules: vec![
                RuleSpec {
                    paths: vec!["/static/*".into()],
                    hosts: vec![],
                    action: ActionSpec::Fixed {
                        status: 404,
                        content_type: "text/plain".into(),
                        body: "no \"such\" page".into(),
                    },
                },
                RuleSpec {
                    paths: vec!["/api/?".into()],
                    hosts: vec!["*.example.com".into()],
                    action: ActionSpec::Forward(vec![("tg-a".into(), 1), ("tg-b".into(), 3)]),
                },
            ],
            default: ActionSpec::Forward(vec![("tg-a".into(), 1)]),
        }],
        backends: vec![BackendSpec {
            name: "tg-a".into(),
            source: Some(Ipv4Addr::new(172, 31, 0, 4)),
            check: CheckSpec {
                enabled: true,
                http: Some(("/health".into(), vec![200, 204])),
                port: None,
                interval_s: 5,
                timeout_s: 2,
                rise: 3,
                fall: 2,
            },
            sticky_s: Some(60),
            servers: vec![ServerSpec {
                name: "i-1_80".into(),
                address: Ipv4Addr::new(172, 31, 0, 10),
                port: 80,
            }],
        }],
    }
}

#[test]
fn rules_set_their_index_in_priority_order_and_actions_follow_it() {
    let text = render(&spec(), Path::new("/s/elb/abc"));
    assert!(text.contains(
        "    stats socket /s/elb/abc/stats.sock mode 600 level admin expose-fd listeners\n"
    ));
    assert!(text.contains("    bind 198.51.100.9:80\n"));
    assert!(text.contains(
        "    http-request set-var(txn.rule) int(0) if !{ var(txn.rule) -m found } { path -m reg ^(/static/.*)$ }\n"
    ));
    assert!(text.contains(
        "    http-request set-var(txn.rule) int(1) if !{ var(txn.rule) -m found } { path -m reg ^(/api/.)$ } { req.hdr(host),field(1,:) -m reg -i ^(.*\\.example\\.com)$ }\n"
    ));
    assert!(text.contains(
        "    http-request return status 404 content-type \"text/plain\" string \"no \\\"such\\\" page\" if { var(txn.rule) -m int 0 }\n"
    ));
    assert!(
        text.contains(
            "    http-request set-var(txn.pick1) rand(4) if { var(txn.rule) -m int 1 }\n"
        )
    );
    assert!(text.contains(
        "    use_backend tg-b if { var(txn.rule) -m int 1 } { var(txn.pick1) -m int ge 1 } { var(txn.pick1) -m int lt 4 }\n"
    ));
    assert!(text.contains("    use_backend tg-a if !{ var(txn.rule) -m found }\n"));
    assert!(text.contains("    source 172.31.0.4\n"));
    assert!(text.contains("    http-check expect rstatus ^(200|204)$\n"));
    assert!(
        text.contains(
            "    server i-1_80 172.31.0.10:80 check inter 5s fall 2 rise 3 cookie i-1_80\n"
        )
    );
}

#[test]
fn wildcards_become_anchored_literal_regexes() {
    assert_eq!(wildcard_regex("/a*b?.c"), "/a.*b.\\.c");
    assert_eq!(wildcard_regex("a b(c)|"), "a\\x20b\\(c\\)\\|");
    assert_eq!(wildcard_regex("é"), "\\xc3\\xa9");
}

#[test]
fn haproxy_accepts_what_is_rendered() {
    if std::process::Command::new("haproxy")
        .arg("-v")
        .output()
        .is_err()
    {
        eprintln!("haproxy is not installed: skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec();
    s.address = Ipv4Addr::LOCALHOST;
    s.backends[0].source = None;
    s.listeners[0].rules.push(RuleSpec {
        paths: vec![],
        hosts: vec!["old.example".into()],
        action: ActionSpec::Redirect {
            status: 301,
            protocol: "#{protocol}".into(),
            host: "new.example".into(),
            port: "#{port}".into(),
            path: "/#{path}".into(),
            query: "#{query}".into(),
        },
    });
    s.backends.push(BackendSpec {
        name: "tg-b".into(),
        ..s.backends[0].clone()
    });
    let cfg = dir.path().join("haproxy.cfg");
    std::fs::write(&cfg, render(&s, dir.path())).unwrap();
    let out = std::process::Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(&cfg).unwrap()
    );
}
