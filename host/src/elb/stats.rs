//! HAProxy's `show stat` CSV, read into the numbers the agent uses: per server its check
//! status and counters, per frontend and backend the request and response counts.

use std::collections::HashMap;

/// One row of `show stat` (a frontend, a backend or a server).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatRow {
    /// The proxy (`listener_80`, `tg-...`).
    pub proxy: String,
    /// `FRONTEND`, `BACKEND` or the server's name.
    pub name: String,
    /// `UP`, `DOWN`, `UP 1/3`, `DOWN 1/2`, `MAINT`, `no check`, ...
    pub status: String,
    /// The last check's status (`L7OK`, `L7STS`, `L4TOUT`, `L4CON`, `INI`, ...), with a
    /// leading `* ` while a check runs removed.
    pub check_status: String,
    /// The last HTTP check's status code.
    pub check_code: Option<u16>,
    /// Sessions in all (connections).
    pub sessions: u64,
    /// Sessions open now.
    pub current: u64,
    /// HTTP requests (frontends) or responses counted by class.
    pub requests: u64,
    /// Responses 1xx to 5xx and others.
    pub responses: [u64; 6],
    /// Average response time over the last 1024 requests, in ms.
    pub response_ms: u64,
    /// Average total session time over the last 1024 requests, in ms.
    pub total_ms: u64,
    /// Connection errors towards servers.
    pub connection_errors: u64,
    /// Bytes in and out.
    pub bytes: (u64, u64),
}

impl StatRow {
    /// Whether the row is a server's.
    pub fn is_server(&self) -> bool {
        self.name != "FRONTEND" && self.name != "BACKEND"
    }
}

/// Parses `show stat` output (its `# pxname,svname,...` header names the columns).
pub fn parse(text: &str) -> Vec<StatRow> {
    let mut lines = text.lines();
    let Some(header) = lines.next().and_then(|h| h.strip_prefix("# ")) else {
        return Vec::new();
    };
    let index: HashMap<&str, usize> = header.split(',').enumerate().map(|(i, n)| (n, i)).collect();
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| row(&index, &l.split(',').collect::<Vec<_>>()))
        .collect()
}

fn row(index: &HashMap<&str, usize>, fields: &[&str]) -> StatRow {
    let text = |n: &str| {
        index
            .get(n)
            .and_then(|i| fields.get(*i))
            .copied()
            .unwrap_or("")
    };
    let num = |n: &str| text(n).parse::<u64>().unwrap_or(0);
    StatRow {
        proxy: text("pxname").into(),
        name: text("svname").into(),
        status: text("status").into(),
        check_status: text("check_status").trim_start_matches("* ").into(),
        check_code: text("check_code").parse().ok(),
        sessions: num("stot"),
        current: num("scur"),
        requests: num("req_tot"),
        responses: [
            num("hrsp_1xx"),
            num("hrsp_2xx"),
            num("hrsp_3xx"),
            num("hrsp_4xx"),
            num("hrsp_5xx"),
            num("hrsp_other"),
        ],
        response_ms: num("rtime"),
        total_ms: num("ttime"),
        connection_errors: num("econ"),
        bytes: (num("bin"), num("bout")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,check_code,check_duration,hrsp_1xx,hrsp_2xx,hrsp_3xx,hrsp_4xx,hrsp_5xx,hrsp_other,hanafail,req_rate,req_rate_max,req_tot,cli_abrt,srv_abrt,comp_in,comp_out,comp_byp,comp_rsp,lastsess,last_chk,last_agt,qtime,ctime,rtime,ttime,\n\
listener_80,FRONTEND,,,0,1,262110,7,700,1400,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,,,0,5,0,1,1,0,,0,1,7,,,0,0,0,0,,,,,,,,\n\
tg-1,i-a_80,0,0,0,1,,3,300,600,,0,,0,0,0,0,UP,1,1,0,0,0,10,0,,1,3,1,,3,,2,0,,1,L7OK,200,1,0,3,0,0,0,0,,,,3,0,0,,,,,2,OK,,0,0,1,2,\n\
tg-1,i-b_80,0,0,0,1,,2,200,400,,0,,1,0,0,0,DOWN,1,1,0,3,1,4,4,,1,3,2,,2,,2,0,,1,L7STS,503,1,0,2,0,0,0,0,,,,2,0,0,,,,,5,Service Unavailable,,0,0,1,3,\n\
tg-1,BACKEND,0,0,0,1,,5,500,1000,0,0,,1,0,0,0,UP,1,1,0,,0,10,0,,1,3,0,,5,,1,0,,1,,,,0,5,0,0,0,0,,,,5,0,0,0,0,0,0,2,,,0,0,1,2,\n";

    #[test]
    fn rows_are_read_by_their_header() {
        let rows = parse(SAMPLE);
        assert_eq!(rows.len(), 4);
        let fe = &rows[0];
        assert_eq!(
            (fe.proxy.as_str(), fe.name.as_str()),
            ("listener_80", "FRONTEND")
        );
        assert!(!fe.is_server());
        assert_eq!(fe.requests, 7);
        assert_eq!(fe.responses[1], 5);
        assert_eq!(fe.responses[4], 1);
        let a = &rows[1];
        assert!(a.is_server());
        assert_eq!((a.status.as_str(), a.check_status.as_str()), ("UP", "L7OK"));
        assert_eq!(a.check_code, Some(200));
        let b = &rows[2];
        assert_eq!((b.status.as_str(), b.check_code), ("DOWN", Some(503)));
        assert_eq!(b.connection_errors, 1);
        assert_eq!(rows[3].total_ms, 2);
    }

    #[test]
    fn garbage_gives_nothing_or_zeros() {
        assert!(parse("").is_empty());
        assert!(parse("no header\n1,2,3\n").is_empty());
        let rows = parse("# pxname,svname\nx\n");
        assert_eq!(rows[0].proxy, "x");
        assert_eq!(rows[0].requests, 0);
    }
}
