//! Composite alarms' rules: `ALARM("name")`, `OK("name")`, `INSUFFICIENT_DATA("name")`
//! (the name quoted, or bare when it has no spaces or parentheses, or an alarm's ARN),
//! `TRUE`, `FALSE`, `NOT`, `AND`, `OR` (AND binds tighter) and parentheses, keywords in any
//! case. Parsing is one pass over the tokens with the nesting (parentheses and `NOT`s)
//! bounded, so no rule recurses past [`MAX_DEPTH`]; evaluation walks the parsed tree,
//! whose depth is bounded the same way.

use super::config::StateValue;

/// How deep parentheses and `NOT`s may nest.
pub const MAX_DEPTH: usize = 32;
/// The most alarms one rule may name (CloudWatch's limit).
pub const MAX_ALARMS: usize = 100;

/// Why a rule does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RuleError(pub String);

fn error<T>(m: impl Into<String>) -> Result<T, RuleError> {
    Err(RuleError(m.into()))
}

/// A parsed rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// `TRUE` or `FALSE`.
    Constant(bool),
    /// Whether the alarm named is in the state.
    State(StateValue, String),
    /// `NOT r`.
    Not(Box<Rule>),
    /// Every one holds.
    And(Vec<Rule>),
    /// One holds.
    Or(Vec<Rule>),
}

impl Rule {
    /// The alarms it names (by name, an ARN's last part), each once, in order.
    pub fn alarms(&self) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![self];
        while let Some(r) = stack.pop() {
            match r {
                Rule::Constant(_) => {}
                Rule::State(_, n) => {
                    if seen.insert(n.as_str()) {
                        out.push(n.clone());
                    }
                }
                Rule::Not(r) => stack.push(r),
                Rule::And(rs) | Rule::Or(rs) => stack.extend(rs.iter().rev()),
            }
        }
        out
    }

    /// Whether it holds, `state_of` giving each alarm's state (`None`: no such alarm,
    /// which holds no state).
    pub fn holds(&self, state_of: &dyn Fn(&str) -> Option<StateValue>) -> bool {
        match self {
            Rule::Constant(b) => *b,
            Rule::State(s, n) => state_of(n) == Some(*s),
            Rule::Not(r) => !r.holds(state_of),
            Rule::And(rs) => rs.iter().all(|r| r.holds(state_of)),
            Rule::Or(rs) => rs.iter().any(|r| r.holds(state_of)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Quoted(String),
    Open,
    Close,
}

fn tokenize(text: &str) -> Result<Vec<Token>, RuleError> {
    let mut out = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            c if c.is_whitespace() => {}
            '(' => out.push(Token::Open),
            ')' => out.push(Token::Close),
            '"' | '\'' => {
                let mut s = String::new();
                let mut closed = false;
                for (_, d) in chars.by_ref() {
                    if d == c {
                        closed = true;
                        break;
                    }
                    s.push(d);
                }
                if !closed {
                    return error(format!("The rule has an unterminated string at {i}."));
                }
                out.push(Token::Quoted(s));
            }
            _ => {
                let mut s = String::from(c);
                while let Some(&(_, d)) = chars.peek() {
                    if d.is_whitespace() || d == '(' || d == ')' || d == '"' || d == '\'' {
                        break;
                    }
                    s.push(d);
                    chars.next();
                }
                out.push(Token::Word(s));
            }
        }
    }
    Ok(out)
}

/// Parses `text`.
pub fn parse(text: &str) -> Result<Rule, RuleError> {
    let tokens = tokenize(text)?;
    let mut p = Parser {
        tokens,
        at: 0,
        depth: 0,
    };
    let rule = p.or()?;
    if p.at != p.tokens.len() {
        return error("The rule has text after its end; join conditions with AND or OR.");
    }
    if rule.alarms().len() > MAX_ALARMS {
        return error(format!("A rule may name at most {MAX_ALARMS} alarms."));
    }
    Ok(rule)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek_word(&self, w: &str) -> bool {
        matches!(self.tokens.get(self.at), Some(Token::Word(x)) if x.eq_ignore_ascii_case(w))
    }

    fn or(&mut self) -> Result<Rule, RuleError> {
        let mut terms = vec![self.and()?];
        while self.peek_word("OR") {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Rule::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Rule, RuleError> {
        let mut factors = vec![self.factor()?];
        while self.peek_word("AND") {
            self.at += 1;
            factors.push(self.factor()?);
        }
        Ok(if factors.len() == 1 {
            factors.remove(0)
        } else {
            Rule::And(factors)
        })
    }

    fn deeper(&mut self) -> Result<(), RuleError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return error(format!(
                "The rule nests parentheses and NOTs deeper than {MAX_DEPTH}."
            ));
        }
        Ok(())
    }

    fn factor(&mut self) -> Result<Rule, RuleError> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        match token {
            Some(Token::Open) => {
                self.deeper()?;
                let r = self.or()?;
                self.depth -= 1;
                if self.tokens.get(self.at) != Some(&Token::Close) {
                    return error("The rule has a parenthesis that is not closed.");
                }
                self.at += 1;
                Ok(r)
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("NOT") => {
                self.deeper()?;
                let r = self.factor()?;
                self.depth -= 1;
                Ok(Rule::Not(Box::new(r)))
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("TRUE") => Ok(Rule::Constant(true)),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("FALSE") => Ok(Rule::Constant(false)),
            Some(Token::Word(w)) => {
                let state = match w.to_ascii_uppercase().as_str() {
                    "ALARM" => StateValue::Alarm,
                    "OK" => StateValue::Ok,
                    "INSUFFICIENT_DATA" => StateValue::InsufficientData,
                    _ => {
                        return error(format!(
                            "The rule has {w:?} where ALARM(...), OK(...), INSUFFICIENT_DATA(...), TRUE, FALSE, NOT or a parenthesis belongs."
                        ));
                    }
                };
                self.state_function(state)
            }
            Some(Token::Quoted(q)) => error(format!(
                "The rule has the string {q:?} outside ALARM(...), OK(...) or INSUFFICIENT_DATA(...)."
            )),
            Some(Token::Close) => {
                error("The rule has a closing parenthesis with nothing before it.")
            }
            None => error("The rule ends where a condition belongs."),
        }
    }

    /// `( name )` after ALARM, OK or INSUFFICIENT_DATA.
    fn state_function(&mut self, state: StateValue) -> Result<Rule, RuleError> {
        if self.tokens.get(self.at) != Some(&Token::Open) {
            return error(format!(
                "{}  must be followed by (alarm name).",
                state.as_str()
            ));
        }
        let name = match self.tokens.get(self.at + 1) {
            Some(Token::Quoted(n) | Token::Word(n)) => n.clone(),
            _ => return error(format!("{}() needs an alarm name.", state.as_str())),
        };
        if self.tokens.get(self.at + 2) != Some(&Token::Close) {
            return error(format!(
                "{}({name} needs a closing parenthesis.",
                state.as_str()
            ));
        }
        self.at += 3;
        let name = alarm_name(&name);
        if name.is_empty() || name.len() > 255 {
            return error("An alarm name in the rule must be 1 to 255 characters.");
        }
        Ok(Rule::State(state, name))
    }
}

/// The alarm a rule names: the name itself, or an alarm ARN's last part.
fn alarm_name(s: &str) -> String {
    match s.strip_prefix("arn:aws:cloudwatch:") {
        Some(rest) => rest
            .split_once(":alarm:")
            .map(|(_, n)| n.to_string())
            .unwrap_or_else(|| s.to_string()),
        None => s.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(n: &str) -> Option<StateValue> {
        match n {
            "cpu" => Some(StateValue::Alarm),
            "disk" => Some(StateValue::Ok),
            "net" => Some(StateValue::InsufficientData),
            _ => None,
        }
    }

    fn holds(text: &str) -> bool {
        parse(text).unwrap().holds(&states)
    }

    #[test]
    fn rules_evaluate_as_cloudwatch_documents() {
        assert!(holds(r#"ALARM("cpu")"#));
        assert!(!holds(r#"ALARM("disk")"#));
        assert!(holds(r#"OK(disk) AND INSUFFICIENT_DATA("net")"#));
        assert!(holds(r#"ALARM("disk") OR ALARM("cpu")"#));
        assert!(!holds(r#"NOT ALARM("cpu")"#));
        // AND binds tighter than OR.
        assert!(holds(r#"TRUE OR FALSE AND FALSE"#));
        assert!(!holds(r#"(TRUE OR FALSE) AND FALSE"#));
        assert!(holds(r#"alarm("cpu") and not (ok("cpu") or false)"#));
        // A missing child is in no state.
        assert!(!holds(
            r#"ALARM("gone") OR OK("gone") OR INSUFFICIENT_DATA("gone")"#
        ));
        assert!(holds(
            r#"ALARM("arn:aws:cloudwatch:local-1:123456789012:alarm:cpu")"#
        ));
        let r = parse(r#"ALARM("cpu") AND (OK('disk') OR ALARM("cpu"))"#).unwrap();
        assert_eq!(r.alarms(), vec!["cpu".to_string(), "disk".to_string()]);
    }

    #[test]
    fn malformed_rules_are_refused() {
        for bad in [
            "",
            "ALARM",
            "ALARM(",
            r#"ALARM("cpu""#,
            r#"ALARM("cpu") AND"#,
            r#"ALARM("cpu") ALARM("disk")"#,
            r#"(ALARM("cpu")"#,
            r#"ALARM("cpu"))"#,
            r#"WARN("cpu")"#,
            r#""cpu""#,
            "ALARM(\"unterminated)",
            "ALARM()",
            "NOT",
        ] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
        let many = (0..=MAX_ALARMS)
            .map(|i| format!("ALARM(a{i})"))
            .collect::<Vec<_>>()
            .join(" OR ");
        assert!(parse(&many).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = format!("{}TRUE{}", "(".repeat(MAX_DEPTH), ")".repeat(MAX_DEPTH));
        assert!(parse(&ok).unwrap().holds(&states));
        for depth in [MAX_DEPTH + 1, 10_000, 200_000] {
            let deep = format!("{}TRUE{}", "(".repeat(depth), ")".repeat(depth));
            assert!(parse(&deep).is_err(), "depth {depth}");
            let nots = format!("{}TRUE", "NOT ".repeat(depth));
            assert!(parse(&nots).is_err(), "nots {depth}");
        }
        // Long flat chains are loops, not recursion.
        let chain = vec!["TRUE"; 50_000].join(" AND ");
        assert!(parse(&chain).unwrap().holds(&states));
    }
}
