//! A small writer for EC2's XML responses, escaping all text.

/// EC2's response namespace.
pub const NAMESPACE: &str = "http://ec2.amazonaws.com/doc/2016-11-15/";

/// Escapes text for XML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    escape_into(&mut out, s);
    out
}

/// Whether XML 1.0 can carry `c` at all (not even a character reference may name the C0
/// controls but tab, newline and return, nor U+FFFE and U+FFFF).
pub fn xml_char(c: char) -> bool {
    !matches!(c, '\u{0}'..='\u{8}' | '\u{b}' | '\u{c}' | '\u{e}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}')
}

/// Appends `s` to `out`, escaped; characters XML cannot carry become U+FFFD.
pub fn escape_into(out: &mut String, s: &str) {
    if !s
        .chars()
        .any(|c| matches!(c, '&' | '<' | '>' | '"' | '\'') || !xml_char(c))
    {
        out.push_str(s);
        return;
    }
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

/// A response under construction.
#[derive(Debug)]
pub struct Xml {
    buf: String,
    root: String,
}

impl Xml {
    /// Starts `<ActionResponse xmlns=...><requestId>...</requestId>`.
    pub fn response(action: &str, request_id: &str) -> Self {
        let root = format!("{action}Response");
        let mut buf = String::with_capacity(1024);
        buf.push_str(r#"<?xml version="1.0" encoding="UTF-8"?>"#);
        buf.push_str(&format!(r#"<{root} xmlns="{NAMESPACE}">"#));
        let mut x = Self { buf, root };
        x.leaf("requestId", request_id);
        x
    }

    /// The whole answer of an action that only says it succeeded: `<return>true</return>`.
    pub fn returns_true(action: &str, request_id: &str) -> String {
        let mut x = Self::response(action, request_id);
        x.leaf("return", "true");
        x.finish()
    }

    /// Opens an element.
    pub fn open(&mut self, tag: &str) -> &mut Self {
        self.buf.push('<');
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// Closes an element.
    pub fn close(&mut self, tag: &str) -> &mut Self {
        self.buf.push_str("</");
        self.buf.push_str(tag);
        self.buf.push('>');
        self
    }

    /// An element holding escaped text.
    pub fn leaf(&mut self, tag: &str, text: impl AsRef<str>) -> &mut Self {
        self.open(tag);
        escape_into(&mut self.buf, text.as_ref());
        self.close(tag)
    }

    /// An element only when there is a value.
    pub fn leaf_opt(&mut self, tag: &str, text: Option<impl AsRef<str>>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(tag, t);
        }
        self
    }

    /// A `tagSet` of `item`s with `key`/`value`.
    pub fn tag_set(&mut self, tags: &[(String, String)]) -> &mut Self {
        self.open("tagSet");
        for (k, v) in tags {
            self.open("item")
                .leaf("key", k)
                .leaf("value", v)
                .close("item");
        }
        self.close("tagSet")
    }

    /// Closes the root and returns the document.
    pub fn finish(mut self) -> String {
        let root = std::mem::take(&mut self.root);
        self.close(&root);
        self.buf
    }
}

/// EC2's error document.
pub fn error_document(code: &str, message: &str, request_id: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>{}</Code><Message>{}</Message></Error></Errors><RequestID>{}</RequestID></Response>"#,
        escape(code),
        escape(message),
        escape(request_id)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_controls() {
        assert_eq!(
            escape("a<b>&\"'\u{1}"),
            "a&lt;b&gt;&amp;&quot;&apos;\u{fffd}"
        );
        assert_eq!(escape("tab\tline\n\u{ffff}"), "tab\tline\n\u{fffd}");
        let mut x = Xml::response("Test", "req");
        x.leaf("v", "<x>");
        assert_eq!(
            x.finish(),
            format!(
                r#"<?xml version="1.0" encoding="UTF-8"?><TestResponse xmlns="{NAMESPACE}"><requestId>req</requestId><v>&lt;x&gt;</v></TestResponse>"#
            )
        );
    }
}
