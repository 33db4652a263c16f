//! A small XML writer: elements and escaped text, nothing else.

/// Whether XML 1.0 can carry `c` at all (not even a character reference may name the C0
/// controls but tab, newline and return, nor U+FFFE and U+FFFF).
pub const fn xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Appends `s` to `out`, escaped for element content and attribute values; characters
/// XML cannot carry become U+FFFD.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if !xml_char(c) => out.push(char::REPLACEMENT_CHARACTER),
            c => out.push(c),
        }
    }
}

/// A document under construction.
#[derive(Debug, Default)]
pub struct Writer {
    buf: String,
}

impl Writer {
    /// An empty document.
    pub fn new() -> Self {
        Self {
            buf: String::with_capacity(1024),
        }
    }

    /// Appends markup as is (the caller vouches for it).
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.buf.push_str(s);
        self
    }

    /// `<tag>`.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag xmlns="ns">`.
    pub fn open_ns(&mut self, tag: &str, ns: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push_str(" xmlns=\"");
        escape_into(&mut self.buf, ns);
        self.buf.push_str("\">");
        self
    }

    /// `</tag>`.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// `<tag>text</tag>`, escaped.
    pub fn leaf(&mut self, tag: &str, text: &str) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.buf, text);
        self.close(tag)
    }

    /// The document.
    pub fn finish(self) -> String {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        let mut w = Writer::new();
        w.open_ns("R", "a\"b")
            .leaf("v", "a<b>&\"'\u{1}\t\u{ffff}")
            .close("R");
        assert_eq!(
            w.finish(),
            "<R xmlns=\"a&quot;b\"><v>a&lt;b&gt;&amp;&quot;&apos;\u{fffd}\t\u{fffd}</v></R>"
        );
    }
}
