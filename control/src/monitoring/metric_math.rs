//! Metric math for GetMetricData's `Expression` queries, the common subset: numbers, other
//! queries' ids, `+ - * /` with the usual precedence, unary minus, parentheses, and the
//! aggregates `SUM`, `AVG`, `MIN`, `MAX` of `METRICS()` (every `MetricStat` query of the
//! request) or of a list `[m1, m2]`. A series combined with a series keeps the timestamps
//! both have; with a number, every timestamp; a result that is not a finite number (a
//! division by zero) is left out, as CloudWatch leaves it out.
//!
//! Parsing is one pass over the text (at most 2,048 characters by the model) with the
//! nesting bounded; evaluation is one pass over the parsed tree.

use std::collections::BTreeMap;

/// A time series: period start to value.
pub type Series = BTreeMap<i64, f64>;

/// How deep parentheses, brackets and calls may nest.
const MAX_DEPTH: usize = 32;

/// Why an expression does not parse or evaluate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MathError(pub String);

fn error<T>(m: impl Into<String>) -> Result<T, MathError> {
    Err(MathError(m.into()))
}

/// An aggregate function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    /// The sum per timestamp.
    Sum,
    /// The mean per timestamp.
    Avg,
    /// The lowest per timestamp.
    Min,
    /// The highest per timestamp.
    Max,
}

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A number.
    Number(f64),
    /// Another query's result.
    Id(String),
    /// `-e`.
    Negate(Box<Expr>),
    /// `a op b`, op one of `+ - * /`.
    Binary(u8, Box<Expr>, Box<Expr>),
    /// `F(METRICS())`.
    OfMetrics(Aggregate),
    /// `F([a, b, ...])`.
    OfList(Aggregate, Vec<Expr>),
}

impl Expr {
    /// The ids it names.
    pub fn ids(&self, out: &mut Vec<String>) {
        match self {
            Self::Number(_) | Self::OfMetrics(_) => {}
            Self::Id(id) => out.push(id.clone()),
            Self::Negate(e) => e.ids(out),
            Self::Binary(_, a, b) => {
                a.ids(out);
                b.ids(out);
            }
            Self::OfList(_, items) => items.iter().for_each(|e| e.ids(out)),
        }
    }
}

/// Parses `text`.
pub fn parse(text: &str) -> Result<Expr, MathError> {
    let mut p = Parser {
        tokens: tokenize(text)?,
        at: 0,
        depth: 0,
    };
    let e = p.sum()?;
    if p.at != p.tokens.len() {
        return error(format!("unexpected {:?} in the expression", p.tokens[p.at]));
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Number(f64),
    Name(String),
    Punct(u8),
}

fn tokenize(text: &str) -> Result<Vec<Token>, MathError> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b.is_ascii_whitespace() {
            i += 1;
        } else if b.is_ascii_digit() || b == b'.' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            match text[start..i].parse() {
                Ok(n) => out.push(Token::Number(n)),
                Err(_) => return error(format!("{} is not a number", &text[start..i])),
            }
        } else if b.is_ascii_alphabetic() || b == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            out.push(Token::Name(text[start..i].to_string()));
        } else if b"+-*/()[],".contains(&b) {
            out.push(Token::Punct(b));
            i += 1;
        } else {
            let c = text[i..].chars().next().unwrap_or('?');
            return error(format!("the character {c:?} is not part of metric math"));
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    depth: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn eat(&mut self, p: u8) -> bool {
        if self.peek() == Some(&Token::Punct(p)) {
            self.at += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, p: u8) -> Result<(), MathError> {
        if self.eat(p) {
            Ok(())
        } else {
            error(format!("expected '{}' in the expression", p as char))
        }
    }

    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, MathError>,
    ) -> Result<T, MathError> {
        if self.depth >= MAX_DEPTH {
            return error(format!(
                "the expression nests deeper than {MAX_DEPTH} levels"
            ));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn sum(&mut self) -> Result<Expr, MathError> {
        let mut e = self.product()?;
        loop {
            let op = match self.peek() {
                Some(Token::Punct(op @ (b'+' | b'-'))) => *op,
                _ => return Ok(e),
            };
            self.at += 1;
            e = Expr::Binary(op, Box::new(e), Box::new(self.product()?));
        }
    }

    fn product(&mut self) -> Result<Expr, MathError> {
        let mut e = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Token::Punct(op @ (b'*' | b'/'))) => *op,
                _ => return Ok(e),
            };
            self.at += 1;
            e = Expr::Binary(op, Box::new(e), Box::new(self.unary()?));
        }
    }

    fn unary(&mut self) -> Result<Expr, MathError> {
        // Iterative over repeated signs, so `- - - x` costs no stack.
        let mut negate = false;
        while self.eat(b'-') {
            negate = !negate;
        }
        let e = self.atom()?;
        Ok(if negate { Expr::Negate(Box::new(e)) } else { e })
    }

    fn atom(&mut self) -> Result<Expr, MathError> {
        match self.tokens.get(self.at).cloned() {
            Some(Token::Number(n)) => {
                self.at += 1;
                Ok(Expr::Number(n))
            }
            Some(Token::Punct(b'(')) => {
                self.at += 1;
                let e = self.nested(Self::sum)?;
                self.expect(b')')?;
                Ok(e)
            }
            Some(Token::Name(name)) => {
                self.at += 1;
                if self.peek() == Some(&Token::Punct(b'(')) {
                    self.at += 1;
                    self.nested(|p| p.call(&name))
                } else if name.starts_with(|c: char| c.is_ascii_lowercase()) {
                    Ok(Expr::Id(name))
                } else {
                    error(format!(
                        "{name} is not the id of a query (ids start with a lowercase letter)"
                    ))
                }
            }
            Some(t) => error(format!("unexpected {t:?} in the expression")),
            None => error("the expression ends early"),
        }
    }

    /// After `NAME(`.
    fn call(&mut self, name: &str) -> Result<Expr, MathError> {
        let f = match name {
            "SUM" => Aggregate::Sum,
            "AVG" => Aggregate::Avg,
            "MIN" => Aggregate::Min,
            "MAX" => Aggregate::Max,
            other => {
                return error(format!(
                    "the function {other} is not supported here (SUM, AVG, MIN, MAX of METRICS() or of a list)"
                ));
            }
        };
        let e = if self.peek() == Some(&Token::Name("METRICS".into())) {
            self.at += 1;
            self.expect(b'(')?;
            self.expect(b')')?;
            Expr::OfMetrics(f)
        } else if self.eat(b'[') {
            let mut items = vec![self.nested(Self::sum)?];
            while self.eat(b',') {
                items.push(self.nested(Self::sum)?);
            }
            self.expect(b']')?;
            Expr::OfList(f, items)
        } else {
            return error(format!("{name} takes METRICS() or a list such as [m1, m2]"));
        };
        self.expect(b')')?;
        Ok(e)
    }
}

/// A value while evaluating.
enum Value {
    Number(f64),
    Series(Series),
}

/// Evaluates `e`, its ids read from `known` and `METRICS()` being `metrics`.
pub fn evaluate(
    e: &Expr,
    known: &BTreeMap<String, Series>,
    metrics: &[&Series],
) -> Result<Series, MathError> {
    match eval(e, known, metrics)? {
        Value::Series(s) => Ok(s),
        Value::Number(_) => error("the expression gives a number, not a time series"),
    }
}

fn eval(
    e: &Expr,
    known: &BTreeMap<String, Series>,
    metrics: &[&Series],
) -> Result<Value, MathError> {
    Ok(match e {
        Expr::Number(n) => Value::Number(*n),
        Expr::Id(id) => match known.get(id) {
            Some(s) => Value::Series(s.clone()),
            None => {
                return error(format!(
                    "the expression names {id}, which is not a query of the request"
                ));
            }
        },
        Expr::Negate(inner) => match eval(inner, known, metrics)? {
            Value::Number(n) => Value::Number(-n),
            Value::Series(s) => Value::Series(s.into_iter().map(|(t, v)| (t, -v)).collect()),
        },
        Expr::Binary(op, a, b) => binary(*op, eval(a, known, metrics)?, eval(b, known, metrics)?),
        Expr::OfMetrics(f) => Value::Series(aggregate(*f, metrics.iter().copied())),
        Expr::OfList(f, items) => {
            let mut series = Vec::with_capacity(items.len());
            for item in items {
                match eval(item, known, metrics)? {
                    Value::Series(s) => series.push(s),
                    Value::Number(_) => {
                        return error("a list given to a function holds series, not numbers");
                    }
                }
            }
            Value::Series(aggregate(*f, series.iter()))
        }
    })
}

fn apply(op: u8, a: f64, b: f64) -> f64 {
    match op {
        b'+' => a + b,
        b'-' => a - b,
        b'*' => a * b,
        _ => a / b,
    }
}

fn binary(op: u8, a: Value, b: Value) -> Value {
    let keep = |s: Series| -> Series { s.into_iter().filter(|(_, v)| v.is_finite()).collect() };
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => Value::Number(apply(op, x, y)),
        (Value::Series(s), Value::Number(y)) => Value::Series(keep(
            s.into_iter().map(|(t, v)| (t, apply(op, v, y))).collect(),
        )),
        (Value::Number(x), Value::Series(s)) => Value::Series(keep(
            s.into_iter().map(|(t, v)| (t, apply(op, x, v))).collect(),
        )),
        (Value::Series(a), Value::Series(b)) => Value::Series(keep(
            a.into_iter()
                .filter_map(|(t, v)| b.get(&t).map(|w| (t, apply(op, v, *w))))
                .collect(),
        )),
    }
}

/// Per timestamp of any of `series`, the aggregate of the values there.
fn aggregate<'s>(f: Aggregate, series: impl Iterator<Item = &'s Series>) -> Series {
    let mut acc: BTreeMap<i64, (f64, f64)> = BTreeMap::new();
    for s in series {
        for (&t, &v) in s {
            let slot = acc.entry(t).or_insert(match f {
                Aggregate::Min => (f64::INFINITY, 0.0),
                Aggregate::Max => (f64::NEG_INFINITY, 0.0),
                Aggregate::Sum | Aggregate::Avg => (0.0, 0.0),
            });
            slot.0 = match f {
                Aggregate::Sum | Aggregate::Avg => slot.0 + v,
                Aggregate::Min => slot.0.min(v),
                Aggregate::Max => slot.0.max(v),
            };
            slot.1 += 1.0;
        }
    }
    acc.into_iter()
        .map(|(t, (v, n))| (t, if f == Aggregate::Avg { v / n } else { v }))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(points: &[(i64, f64)]) -> Series {
        points.iter().copied().collect()
    }

    fn run(text: &str) -> Result<Series, MathError> {
        let known: BTreeMap<String, Series> = [
            ("m1".to_string(), series(&[(0, 2.0), (60, 4.0), (120, 6.0)])),
            ("m2".to_string(), series(&[(0, 1.0), (60, 0.0)])),
        ]
        .into_iter()
        .collect();
        let metrics: Vec<&Series> = known.values().collect();
        evaluate(&parse(text)?, &known, &metrics)
    }

    #[test]
    fn arithmetic_keeps_common_timestamps_and_precedence() {
        assert_eq!(run("m1/m2*100").unwrap(), series(&[(0, 200.0)]));
        assert_eq!(
            run("m1 + 2 * 3").unwrap(),
            series(&[(0, 8.0), (60, 10.0), (120, 12.0)])
        );
        assert_eq!(
            run("(m1 + 2) * 3").unwrap(),
            series(&[(0, 12.0), (60, 18.0), (120, 24.0)])
        );
        assert_eq!(run("-m2 - -1").unwrap(), series(&[(0, 0.0), (60, 1.0)]));
        assert_eq!(
            run("100 / m1").unwrap(),
            series(&[(0, 50.0), (60, 25.0), (120, 100.0 / 6.0)])
        );
    }

    #[test]
    fn aggregates_of_metrics_and_lists_cover_every_timestamp() {
        assert_eq!(
            run("SUM(METRICS())").unwrap(),
            series(&[(0, 3.0), (60, 4.0), (120, 6.0)])
        );
        assert_eq!(
            run("AVG([m1, m2])").unwrap(),
            series(&[(0, 1.5), (60, 2.0), (120, 6.0)])
        );
        assert_eq!(
            run("MAX(METRICS())").unwrap(),
            series(&[(0, 2.0), (60, 4.0), (120, 6.0)])
        );
        assert_eq!(
            run("MIN([m1, m2 * 10])").unwrap(),
            series(&[(0, 2.0), (60, 0.0), (120, 6.0)])
        );
    }

    #[test]
    fn bad_expressions_are_errors_not_panics() {
        for bad in [
            "", "m1 +", "(m1", "m1)", "M1", "FOO(m1)", "SUM(m1)", "SUM([])", "m3", "1 + 2",
            "m1 $ 2", "1.2.3", "SUM([1])", "é",
        ] {
            assert!(run(bad).is_err(), "{bad}");
        }
        let deep = format!("{}m1{}", "(".repeat(1000), ")".repeat(1000));
        assert!(run(&deep).unwrap_err().0.contains("deeper"));
        let signs = format!("{}m1", "-".repeat(2000));
        assert_eq!(run(&signs).unwrap(), run("m1").unwrap());
    }
}
