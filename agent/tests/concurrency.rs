//! 50 concurrent RunInstances/DescribeInstances calls: no lost update, no duplicate ids, an
//! idempotent ClientToken; and capacity budgets hold under concurrency.

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::{Agent, eventually, instance_ids};

#[test]
fn fifty_concurrent_calls_lose_nothing_and_client_token_is_idempotent() {
    let agent = Arc::new(Agent::start(&[
        "--max-vcpus",
        "64",
        "--max-memory-mib",
        "65536",
    ]));
    let ami = agent.register_probe();
    let mut threads = Vec::new();
    for n in 0..50 {
        let agent = agent.clone();
        let ami = ami.clone();
        threads.push(std::thread::spawn(move || -> (String, Vec<String>) {
            match n % 3 {
                // 17 distinct launches.
                0 => {
                    let xml = agent.call(
                        "RunInstances",
                        &[
                            ("ImageId", &ami),
                            ("MinCount", "1"),
                            ("MaxCount", "1"),
                            ("InstanceType", "t2.nano"),
                        ],
                    );
                    ("run".into(), instance_ids(&xml))
                }
                // 17 launches that all carry the same client token.
                1 => {
                    let xml = agent.call(
                        "RunInstances",
                        &[
                            ("ImageId", &ami),
                            ("MinCount", "2"),
                            ("MaxCount", "2"),
                            ("InstanceType", "t2.nano"),
                            ("ClientToken", "same-token-1"),
                        ],
                    );
                    ("token".into(), instance_ids(&xml))
                }
                // 16 reads in between.
                _ => {
                    let xml = agent.call("DescribeInstances", &[]);
                    ("describe".into(), instance_ids(&xml))
                }
            }
        }));
    }
    let results: Vec<(String, Vec<String>)> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();

    let runs: Vec<&Vec<String>> = results
        .iter()
        .filter(|r| r.0 == "run")
        .map(|r| &r.1)
        .collect();
    assert_eq!(runs.len(), 17);
    assert!(runs.iter().all(|ids| ids.len() == 1));
    let tokens: Vec<&Vec<String>> = results
        .iter()
        .filter(|r| r.0 == "token")
        .map(|r| &r.1)
        .collect();
    assert_eq!(tokens.len(), 17);
    // Every call with the token got the same two instances.
    assert!(
        tokens.iter().all(|ids| ids.len() == 2 && *ids == tokens[0]),
        "{tokens:?}"
    );
    let mut all: Vec<String> = runs.iter().flat_map(|v| v.iter().cloned()).collect();
    all.extend(tokens[0].iter().cloned());
    let unique: HashSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), 19, "duplicate ids: {all:?}");

    // Every launch is recorded, exactly once.
    let described = agent.states();
    let described_ids: HashSet<&String> = described.iter().map(|s| &s.0).collect();
    assert_eq!(described.len(), 19);
    assert_eq!(described_ids, unique);
    // Reads during the launches saw only real instances.
    for r in results.iter().filter(|r| r.0 == "describe") {
        assert!(r.1.iter().all(|id| unique.contains(id)));
    }
    // All of them run.
    let ok = eventually(Duration::from_secs(30), || {
        agent.states().iter().all(|s| s.1 == "running")
    });
    assert!(ok, "{:?}", agent.states());
    assert_eq!(agent.vmm_pids().len(), 19);

    // Paginated listing returns each exactly once.
    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut p = vec![("MaxResults", "5".to_string())];
        if let Some(t) = &token {
            p.push(("NextToken", t.clone()));
        }
        let p: Vec<(&str, &str)> = p.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let xml = agent.call("DescribeInstances", &p);
        let page = instance_ids(&xml);
        assert!(page.len() <= 5);
        seen.extend(page);
        let doc = roxmltree::Document::parse(&xml).unwrap();
        token = common::child_text(doc.root_element(), "nextToken").into();
        if token.as_deref() == Some("") {
            break;
        }
    }
    assert_eq!(seen.len(), 19);
    assert_eq!(seen.iter().collect::<HashSet<_>>(), unique);

    // Terminate concurrently too: every one ends terminated, every vmm gone.
    let handles: Vec<_> = all
        .chunks(4)
        .map(|chunk| {
            let agent = agent.clone();
            let chunk = chunk.to_vec();
            std::thread::spawn(move || {
                let keys: Vec<String> = (1..=chunk.len())
                    .map(|i| format!("InstanceId.{i}"))
                    .collect();
                let p: Vec<(&str, &str)> = keys
                    .iter()
                    .map(String::as_str)
                    .zip(chunk.iter().map(String::as_str))
                    .collect();
                agent.call("TerminateInstances", &p);
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let ok = eventually(Duration::from_secs(30), || {
        agent.states().iter().all(|s| s.1 == "terminated")
    });
    assert!(ok, "{:?}", agent.states());
    assert!(eventually(Duration::from_secs(10), || agent
        .vmm_pids()
        .is_empty()));
}

#[test]
fn concurrent_launches_never_exceed_capacity() {
    // Room for exactly 4 t2.nano (1 vCPU, 512 MiB each).
    let agent = Arc::new(Agent::start(&[
        "--max-vcpus",
        "4",
        "--max-memory-mib",
        "8192",
    ]));
    let ami = agent.register_probe();
    let threads: Vec<_> = (0..10)
        .map(|_| {
            let agent = agent.clone();
            let ami = ami.clone();
            std::thread::spawn(move || {
                agent
                    .try_call(
                        "RunInstances",
                        &[
                            ("ImageId", &ami),
                            ("MinCount", "1"),
                            ("MaxCount", "1"),
                            ("InstanceType", "t2.nano"),
                        ],
                    )
                    .map_err(|e| e.to_string())
            })
        })
        .collect();
    let results: Vec<Result<String, String>> =
        threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 4);
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        assert!(e.contains("InsufficientInstanceCapacity"), "{e}");
    }
    assert_eq!(agent.states().len(), 4);
    // MinCount 1, MaxCount 3 with no room launches none and says so; a stopped instance frees room.
    let (code, _) = agent.call_err(
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("MinCount", "1"),
            ("MaxCount", "3"),
            ("InstanceType", "t2.nano"),
        ],
    );
    assert_eq!(code, "InsufficientInstanceCapacity");
    let first = agent.states()[0].0.clone();
    agent.wait_state(&first, "running", Duration::from_secs(20));
    agent.call(
        "StopInstances",
        &[("InstanceId.1", &first), ("Force", "true")],
    );
    agent.wait_state(&first, "stopped", Duration::from_secs(20));
    let xml = agent.call(
        "RunInstances",
        &[
            ("ImageId", &ami),
            ("MinCount", "1"),
            ("MaxCount", "3"),
            ("InstanceType", "t2.nano"),
        ],
    );
    assert_eq!(
        instance_ids(&xml).len(),
        1,
        "MaxCount is trimmed to what fits"
    );
    // Now the stopped one cannot start: no room.
    let (code, _) = agent.call_err("StartInstances", &[("InstanceId.1", &first)]);
    assert_eq!(code, "InsufficientInstanceCapacity");
    assert_eq!(agent.instance(&first).state, "stopped");
}
