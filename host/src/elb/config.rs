//! `haproxy.cfg` from an [`LbSpec`]: one frontend per listener, one backend per target group.
//! Rules are evaluated in priority order: the first whose conditions all match sets
//! `txn.rule` to its index, and each action is taken only for its index (the default action
//! when none matched), so forwards, fixed responses and redirects keep ELB's order whatever
//! HAProxy's phases.

use std::fmt::Write as _;
use std::path::Path;

use super::spec::{ActionSpec, BackendSpec, LbSpec, ListenerSpec, RuleSpec};

/// The configuration text; `dir` holds the sockets and the server-state file.
pub fn render(spec: &LbSpec, dir: &Path) -> String {
    let d = dir.display();
    let mut out = String::new();
    let _ = writeln!(out, "global");
    // `expose-fd listeners`: a reload hands the listening sockets to the new worker, so no
    // connection is refused meanwhile.
    let _ = writeln!(
        out,
        "    stats socket {d}/stats.sock mode 600 level admin expose-fd listeners"
    );
    let _ = writeln!(out, "    server-state-file {d}/servers.state");
    let _ = writeln!(out, "    hard-stop-after {}s", spec.drain_s.max(1));
    let _ = writeln!(out, "\ndefaults");
    let _ = writeln!(out, "    mode {}", if spec.http { "http" } else { "tcp" });
    let _ = writeln!(out, "    timeout connect 2s");
    let _ = writeln!(out, "    timeout client {}s", spec.idle_timeout_s.max(1));
    let _ = writeln!(out, "    timeout server {}s", spec.idle_timeout_s.max(1));
    let _ = writeln!(out, "    retries 2");
    let _ = writeln!(out, "    option redispatch 1");
    let _ = writeln!(out, "    load-server-state-from-file global");
    for l in &spec.listeners {
        frontend(&mut out, spec, l);
    }
    for b in &spec.backends {
        backend(&mut out, spec.http, b);
    }
    out
}

fn frontend(out: &mut String, spec: &LbSpec, l: &ListenerSpec) {
    let _ = writeln!(out, "\nfrontend listener_{}", l.port);
    let tls = l
        .tls_pem
        .as_ref()
        .map(|p| {
            let alpn = if spec.http2 {
                "h2,http/1.1"
            } else {
                "http/1.1"
            };
            format!(" ssl crt {p} alpn {alpn}")
        })
        .unwrap_or_default();
    let _ = writeln!(out, "    bind {}:{}{tls}", spec.address, l.port);
    if !spec.http {
        if let ActionSpec::Forward(tgs) = &l.default
            && let Some((name, _)) = tgs.first()
        {
            let _ = writeln!(out, "    default_backend {name}");
        }
        return;
    }
    let _ = writeln!(out, "    option forwardfor");
    let _ = writeln!(
        out,
        "    http-request set-header X-Forwarded-Proto {}",
        if l.tls_pem.is_some() { "https" } else { "http" }
    );
    let _ = writeln!(
        out,
        "    http-request set-header X-Forwarded-Port {}",
        l.port
    );
    for (i, rule) in l.rules.iter().enumerate() {
        let _ = writeln!(
            out,
            "    http-request set-var(txn.rule) int({i}) if !{{ var(txn.rule) -m found }}{}",
            conditions(rule)
        );
    }
    for (i, rule) in l.rules.iter().enumerate() {
        action(
            out,
            &rule.action,
            &format!("{{ var(txn.rule) -m int {i} }}"),
            i,
        );
    }
    action(
        out,
        &l.default,
        "!{ var(txn.rule) -m found }",
        l.rules.len(),
    );
}

/// The ` ACL ACL` text that must all match for `rule`.
fn conditions(rule: &RuleSpec) -> String {
    let mut s = String::new();
    if !rule.paths.is_empty() {
        let alts: Vec<String> = rule.paths.iter().map(|p| wildcard_regex(p)).collect();
        let _ = write!(s, " {{ path -m reg ^({})$ }}", alts.join("|"));
    }
    if !rule.hosts.is_empty() {
        let alts: Vec<String> = rule.hosts.iter().map(|h| wildcard_regex(h)).collect();
        let _ = write!(
            s,
            " {{ req.hdr(host),field(1,:) -m reg -i ^({})$ }}",
            alts.join("|")
        );
    }
    s
}

/// ELB's wildcards as a regular expression HAProxy's config line can carry: `*` any run,
/// `?` one character, everything else literal (spaces and quotes escaped).
pub fn wildcard_regex(pattern: &str) -> String {
    let mut r = String::new();
    for c in pattern.chars() {
        match c {
            '*' => r.push_str(".*"),
            '?' => r.push('.'),
            c if c.is_ascii_alphanumeric() || matches!(c, '/' | '-' | '_' | '~' | '%') => r.push(c),
            ' ' => r.push_str("\\x20"),
            c if c.is_ascii() && !c.is_ascii_control() => {
                r.push('\\');
                r.push(c);
            }
            c => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    let _ = write!(r, "\\x{b:02x}");
                }
            }
        }
    }
    r
}

fn action(out: &mut String, a: &ActionSpec, when: &str, index: usize) {
    match a {
        ActionSpec::Forward(tgs) => forward(out, tgs, when, index),
        ActionSpec::Fixed {
            status,
            content_type,
            body,
        } => {
            let _ = writeln!(
                out,
                "    http-request return status {status} content-type \"{}\" string \"{}\" if {when}",
                quoted(content_type),
                quoted(body)
            );
        }
        ActionSpec::Redirect {
            status,
            protocol,
            host,
            port,
            path,
            query,
        } => {
            let location = redirect_location(protocol, host, port, path, query);
            let _ = writeln!(
                out,
                "    http-request redirect location \"{}\" code {status} if {when}",
                quoted(&location)
            );
        }
    }
}

fn forward(out: &mut String, tgs: &[(String, u32)], when: &str, index: usize) {
    let total: u32 = tgs.iter().map(|(_, w)| *w).sum();
    let live: Vec<&(String, u32)> = tgs.iter().filter(|(_, w)| *w > 0).collect();
    if live.len() <= 1 || total == 0 {
        if let Some((name, _)) = live.first().or(tgs.first().as_ref()) {
            let _ = writeln!(out, "    use_backend {name} if {when}");
        }
        return;
    }
    let var = format!("txn.pick{index}");
    let _ = writeln!(
        out,
        "    http-request set-var({var}) rand({total}) if {when}"
    );
    let mut upto = 0;
    for (name, w) in live {
        let from = upto;
        upto += w;
        let _ = writeln!(
            out,
            "    use_backend {name} if {when} {{ var({var}) -m int ge {from} }} {{ var({var}) -m int lt {upto} }}"
        );
    }
}

/// A redirect's `Location` as a log-format string: ELB's `#{...}` parts become the request's.
fn redirect_location(protocol: &str, host: &str, port: &str, path: &str, query: &str) -> String {
    let sub = |s: &str| {
        s.replace("#{protocol}", "%[ssl_fc,iif(https,http)]")
            .replace("#{host}", "%[req.hdr(host),field(1,:)]")
            .replace("#{port}", "%[dst_port]")
            .replace("#{path}", "%[path,regsub(^/,)]")
            .replace("#{query}", "%[query]")
    };
    let protocol = sub(&protocol.to_ascii_lowercase());
    let mut loc = format!("{protocol}://{}:{}{}", sub(host), sub(port), sub(path));
    if !query.is_empty() {
        loc.push('?');
        loc.push_str(&sub(query));
    }
    loc
}

/// A string for inside double quotes.
fn quoted(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
        .replace('\r', "")
}

fn backend(out: &mut String, http: bool, b: &BackendSpec) {
    let _ = writeln!(out, "\nbackend {}", b.name);
    let _ = writeln!(out, "    balance roundrobin");
    if let Some(src) = b.source {
        let _ = writeln!(out, "    source {src}");
    }
    let c = &b.check;
    if c.enabled
        && let Some((path, codes)) = &c.http
    {
        let _ = writeln!(out, "    option httpchk GET {}", path.replace(' ', "%20"));
        let alts: Vec<String> = codes.iter().map(u16::to_string).collect();
        let _ = writeln!(out, "    http-check expect rstatus ^({})$", alts.join("|"));
    }
    if c.enabled {
        let _ = writeln!(out, "    timeout check {}s", c.timeout_s.max(1));
    }
    if http && let Some(secs) = b.sticky_s {
        let _ = writeln!(
            out,
            "    cookie AWSALB insert indirect nocache maxlife {secs}s"
        );
    }
    for s in &b.servers {
        let mut line = format!("    server {} {}:{}", s.name, s.address, s.port);
        if c.enabled {
            let _ = write!(
                line,
                " check inter {}s fall {} rise {}",
                c.interval_s.max(1),
                c.fall.max(1),
                c.rise.max(1)
            );
            if let Some(p) = c.port {
                let _ = write!(line, " port {p}");
            }
        }
        if http && b.sticky_s.is_some() {
            let _ = write!(line, " cookie {}", s.name);
        }
        let _ = writeln!(out, "{line}");
    }
}

#[cfg(test)]
mod tests;
