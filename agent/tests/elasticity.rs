//! Launch templates, Auto Scaling and Elastic Load Balancing together on a real agent, as a
//! user walks them with boto3 (`elasticity.py`): a group of two probes behind an application
//! load balancer serves both pages in turn; a killed vmm costs no request beyond the one in
//! flight, and its replacement is registered and served; with `HealthCheckType=ELB`, an
//! instance failing the target group's check is replaced too.

mod common;

use common::Agent;

#[test]
fn a_group_behind_a_load_balancer_serves_both_and_replaces_a_killed_instance() {
    let agent = Agent::start(&["--metrics-interval", "2"]);
    let manifest = common::probe_manifest();
    let out = common::run_python(
        &agent,
        "elasticity.py",
        &[manifest.to_str().unwrap(), &agent.ns.0],
        "elasticity: ok",
    );
    for step in [
        "both pages through the load balancer",
        "killed",
        "replaced by",
        "ELB health check replacement",
    ] {
        assert!(out.contains(step), "{out}");
    }
}
