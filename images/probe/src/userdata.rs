//! Options in user-data: when the user-data fetched by `probe.imds=` starts with `probe.`
//! (surrounding whitespace trimmed), its words are extra command-line options. Those the
//! probe can still act on after boot (`probe.ping=`, `probe.fetch=`, `probe.burn=`,
//! `probe.arp=`) replace the command line's, as if appended to it; every other word is reported and ignored. This is how an
//! instance launched through the EC2 API gets per-instance instructions, like cloud-init.

use alloc::vec::Vec;
use core::fmt;

use crate::cmdline::{ARP_KEY, BURN_KEY, FETCH_KEY, PING_KEY};
use crate::imds::Escaped;

/// What user-data asks of the probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserDataOptions<'a> {
    /// Every word, in order.
    pub words: Vec<&'a [u8]>,
    /// The last `probe.ping=` value, raw.
    pub ping: Option<&'a [u8]>,
    /// The last `probe.fetch=` value, raw.
    pub fetch: Option<&'a [u8]>,
    /// The last `probe.burn=` value, raw.
    pub burn: Option<&'a [u8]>,
    /// The last `probe.arp=` value, raw.
    pub arp: Option<&'a [u8]>,
    /// The key (the part before `=`, or the whole word) of every other word, in order.
    pub ignored: Vec<&'a [u8]>,
}

/// The options in `user_data`, or `None` if it is not an option list (its trimmed text does
/// not start with `probe.`).
pub fn parse(user_data: &[u8]) -> Option<UserDataOptions<'_>> {
    let text = user_data.trim_ascii();
    if !text.starts_with(b"probe.") {
        return None;
    }
    let mut options = UserDataOptions {
        words: Vec::new(),
        ping: None,
        fetch: None,
        burn: None,
        arp: None,
        ignored: Vec::new(),
    };
    for word in text
        .split(u8::is_ascii_whitespace)
        .filter(|w| !w.is_empty())
    {
        options.words.push(word);
        let (key, value) = match word.iter().position(|&b| b == b'=') {
            Some(eq) => (&word[..eq], Some(&word[eq + 1..])),
            None => (word, None),
        };
        match (key, value) {
            (PING_KEY, Some(value)) => options.ping = Some(value),
            (FETCH_KEY, Some(value)) => options.fetch = Some(value),
            (BURN_KEY, Some(value)) => options.burn = Some(value),
            (ARP_KEY, Some(value)) => options.arp = Some(value),
            _ => options.ignored.push(key),
        }
    }
    Some(options)
}

impl UserDataOptions<'_> {
    /// Gives `say` the console lines (without `probe: `) that announce the options:
    /// `user-data options <words joined by one space>`, then
    /// `user-data option <key> ignored` per word the probe does not apply. Bytes are escaped
    /// as metadata values are ([`Escaped`]: one line, cut after 512 bytes).
    pub fn announce(&self, mut say: impl FnMut(fmt::Arguments<'_>)) {
        let joined = self.words.join(&b' ');
        say(format_args!("user-data options {}", Escaped(&joined)));
        for key in &self.ignored {
            say(format_args!("user-data option {} ignored", Escaped(key)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::string::{String, ToString};
    use std::vec;

    impl UserDataOptions<'_> {
        fn lines(&self) -> Vec<String> {
            let mut lines = Vec::new();
            self.announce(|line| lines.push(line.to_string()));
            lines
        }
    }

    #[test]
    fn user_data_that_starts_with_probe_is_options() {
        let o = parse(b"probe.ping=10.0.0.1 probe.fetch=http://10.0.0.1:8080/\n").unwrap();
        assert_eq!(o.ping, Some(&b"10.0.0.1"[..]));
        assert_eq!(o.fetch, Some(&b"http://10.0.0.1:8080/"[..]));
        assert!(o.ignored.is_empty());
        assert_eq!(
            o.lines(),
            ["user-data options probe.ping=10.0.0.1 probe.fetch=http://10.0.0.1:8080/"]
        );

        // Surrounding whitespace and any whitespace between words; the last value wins.
        let o = parse(b"\r\n  probe.fetch=http://1.2.3.4/a\n\tprobe.ping=1.1.1.1\r\nprobe.ping=2.2.2.2,3.3.3.3  \n")
            .unwrap();
        assert_eq!(o.ping, Some(&b"2.2.2.2,3.3.3.3"[..]));
        assert_eq!(o.fetch, Some(&b"http://1.2.3.4/a"[..]));
        assert_eq!(o.words.len(), 3);
        assert_eq!(
            o.lines()[0],
            "user-data options probe.fetch=http://1.2.3.4/a probe.ping=1.1.1.1 \
             probe.ping=2.2.2.2,3.3.3.3"
        );
    }

    #[test]
    fn options_that_only_apply_at_boot_are_ignored() {
        let o = parse(b"probe.mode=count probe.ping=10.0.0.1 probe.net=dhcp probe.ping foo=bar x")
            .unwrap();
        assert_eq!(o.ping, Some(&b"10.0.0.1"[..]));
        assert_eq!(o.fetch, None);
        assert_eq!(
            o.ignored,
            vec![
                &b"probe.mode"[..],
                b"probe.net",
                b"probe.ping",
                b"foo",
                b"x"
            ]
        );
        assert_eq!(
            o.lines(),
            [
                "user-data options probe.mode=count probe.ping=10.0.0.1 probe.net=dhcp \
                 probe.ping foo=bar x",
                "user-data option probe.mode ignored",
                "user-data option probe.net ignored",
                "user-data option probe.ping ignored",
                "user-data option foo ignored",
                "user-data option x ignored",
            ]
        );
        // An empty value is still the key's value (and fails later, as on the command line).
        assert_eq!(parse(b"probe.ping=").unwrap().ping, Some(&b""[..]));
    }

    #[test]
    fn burn_and_arp_apply_after_boot() {
        let o = parse(b"probe.burn=30 probe.arp=off probe.burn=70 probe.burn").unwrap();
        assert_eq!(o.burn, Some(&b"70"[..]));
        assert_eq!(o.arp, Some(&b"off"[..]));
        assert_eq!(o.ignored, vec![&b"probe.burn"[..]]);
        // Bad values are kept raw, to be reported by the caller.
        let o = parse(b"probe.burn=x probe.arp=maybe").unwrap();
        assert_eq!((o.burn, o.arp), (Some(&b"x"[..]), Some(&b"maybe"[..])));
        assert!(o.ignored.is_empty());
    }

    #[test]
    fn other_user_data_is_not_options() {
        for text in [
            &b"#!/bin/sh\nprobe.ping=10.0.0.1"[..],
            b"",
            b"  \n",
            b"probe",
            b"Probe.ping=10.0.0.1",
            b"#cloud-config\n",
            b"xprobe.ping=10.0.0.1",
        ] {
            assert_eq!(parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn lines_escape_bytes() {
        let o = parse(b"probe.ping=10.0.0.1 probe.h\xc3\xa9=\\x").unwrap();
        assert_eq!(
            o.lines(),
            [
                "user-data options probe.ping=10.0.0.1 probe.h\\xc3\\xa9=\\\\x",
                "user-data option probe.h\\xc3\\xa9 ignored",
            ]
        );
    }
}
