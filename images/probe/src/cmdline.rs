//! The probe's command-line parameters.

/// The parameter that selects what vCPU 0 does.
pub const MODE_KEY: &[u8] = b"probe.mode";

/// What vCPU 0 does after the start-up lines (`probe.mode=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode<'a> {
    /// Write, read back and check all free memory, then power off (the default).
    Selftest,
    /// Print a counter every second, forever.
    Count,
    /// Power off at once.
    Poweroff,
    /// Any other value, kept to report it.
    Unknown(&'a [u8]),
}

impl<'a> Mode<'a> {
    /// The mode named by `value`.
    pub fn from_value(value: &'a [u8]) -> Self {
        match value {
            b"selftest" => Self::Selftest,
            b"count" => Self::Count,
            b"poweroff" => Self::Poweroff,
            other => Self::Unknown(other),
        }
    }

    /// The mode the command line asks for: [`Mode::Selftest`] when `probe.mode=` is absent.
    pub fn from_cmdline(cmdline: &'a [u8]) -> Self {
        param(cmdline, MODE_KEY).map_or(Self::Selftest, Self::from_value)
    }
}

/// The value of the last `key=value` word of `cmdline` (words are separated by ASCII
/// whitespace); `None` if no word has that key. A bare `key` (without `=`) does not count.
pub fn param<'a>(cmdline: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    cmdline
        .split(u8::is_ascii_whitespace)
        .filter_map(|word| word.strip_prefix(key)?.strip_prefix(b"="))
        .next_back()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_last_value() {
        let line = b"console=ttyS0 probe.mode=count  reboot=k\tprobe.mode=poweroff";
        assert_eq!(param(line, b"probe.mode"), Some(&b"poweroff"[..]));
        assert_eq!(param(line, b"console"), Some(&b"ttyS0"[..]));
        assert_eq!(param(line, b"reboot"), Some(&b"k"[..]));
        assert_eq!(param(line, b"probe"), None);
        assert_eq!(param(b"probe.mode probe.modex=1", b"probe.mode"), None);
        assert_eq!(param(b"probe.mode=", b"probe.mode"), Some(&b""[..]));
        assert_eq!(param(b"", b"probe.mode"), None);
    }

    #[test]
    fn parses_modes() {
        assert_eq!(Mode::from_cmdline(b"console=ttyS0"), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b""), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b"probe.mode=selftest"), Mode::Selftest);
        assert_eq!(Mode::from_cmdline(b"probe.mode=count"), Mode::Count);
        assert_eq!(
            Mode::from_cmdline(b"x probe.mode=poweroff y"),
            Mode::Poweroff
        );
        assert_eq!(
            Mode::from_cmdline(b"probe.mode=Count"),
            Mode::Unknown(b"Count")
        );
        assert_eq!(Mode::from_cmdline(b"probe.mode="), Mode::Unknown(b""));
    }
}
