//! Parses and evaluates Calico's label selector language (`projectcalico.org/v3`), as used by
//! BGPPeer `nodeSelector` and `peerSelector`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

/// Parentheses deeper than this are rejected so hostile input cannot overflow the stack.
const MAX_NESTING: usize = 100;

/// A parsed selector together with the text it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Selector {
    text: String,
    expr: Expr,
}

impl Selector {
    /// Parses `text`; empty or all-whitespace text selects everything, like `all()`.
    pub fn parse(text: &str) -> Result<Selector, SelectorError> {
        let mut parser = Parser {
            text,
            tokens: lex(text),
            pos: 0,
            end_col: text.chars().count() + 1,
            depth: 0,
        };
        let expr = if parser.peek()?.tok == Tok::End {
            Expr::All
        } else {
            parser.parse_or()?
        };
        let tok = parser.peek()?;
        if tok.tok != Tok::End {
            return Err(parser.err(tok.col, format!("unexpected {}", describe(&tok.tok))));
        }
        Ok(Selector {
            text: text.to_string(),
            expr,
        })
    }

    /// Whether a resource carrying `labels` is selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.expr.eval(labels)
    }

    /// The original selector text.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for Selector {
    type Err = SelectorError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Selector::parse(text)
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a selector failed to parse, pointing at the offending 1-based character column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid selector {selector:?}: {message} at column {column}\n  {selector}\n  {caret}")]
pub struct SelectorError {
    pub selector: String,
    pub column: usize,
    pub message: String,
    caret: String,
}

impl SelectorError {
    fn new(selector: &str, column: usize, message: String) -> Self {
        // Tabs are copied rather than replaced so the caret stays aligned when rendered.
        let pad: String = selector
            .chars()
            .take(column.saturating_sub(1))
            .map(|c| if c == '\t' { '\t' } else { ' ' })
            .collect();
        SelectorError {
            selector: selector.to_string(),
            column,
            message,
            caret: format!("{pad}^"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Expr {
    All,
    Has(String),
    Eq(String, String),
    Ne(String, String),
    In(String, BTreeSet<String>),
    NotIn(String, BTreeSet<String>),
    Contains(String, String),
    StartsWith(String, String),
    EndsWith(String, String),
    Not(Box<Expr>),
    // Flat lists rather than binary nodes keep long `a || b || ...` chains from recursing deeply.
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    fn eval(&self, labels: &BTreeMap<String, String>) -> bool {
        let get = |key: &str| labels.get(key).map(String::as_str);
        match self {
            Expr::All => true,
            Expr::Has(key) => labels.contains_key(key),
            Expr::Eq(key, value) => get(key) == Some(value.as_str()),
            // Calico treats a missing label as "not equal" / "not in the set".
            Expr::Ne(key, value) => get(key) != Some(value.as_str()),
            Expr::In(key, set) => get(key).is_some_and(|v| set.contains(v)),
            Expr::NotIn(key, set) => !get(key).is_some_and(|v| set.contains(v)),
            Expr::Contains(key, s) => get(key).is_some_and(|v| v.contains(s.as_str())),
            Expr::StartsWith(key, s) => get(key).is_some_and(|v| v.starts_with(s.as_str())),
            Expr::EndsWith(key, s) => get(key).is_some_and(|v| v.ends_with(s.as_str())),
            Expr::Not(inner) => !inner.eval(labels),
            Expr::And(terms) => terms.iter().all(|t| t.eval(labels)),
            Expr::Or(terms) => terms.iter().any(|t| t.eval(labels)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// Punctuation and operators, spelled as in the source: `( ) { } , ! && || == !=`.
    Punct(&'static str),
    Str(String),
    /// A label key or keyword; which one depends on where it appears.
    Word(String),
    /// Kept as a token so that an earlier syntax error is reported before it.
    Unterminated,
    Other(char),
    End,
}

#[derive(Debug, Clone)]
struct Token {
    tok: Tok,
    col: usize,
}

fn is_key_start(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

fn is_key_char(c: char) -> bool {
    is_key_start(c) || matches!(c, '.' | '/' | '-')
}

fn lex(text: &str) -> Vec<Token> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let (tok, len) = match (c, chars.get(i + 1).copied()) {
            ('&', Some('&')) => (Tok::Punct("&&"), 2),
            ('|', Some('|')) => (Tok::Punct("||"), 2),
            ('=', Some('=')) => (Tok::Punct("=="), 2),
            ('!', Some('=')) => (Tok::Punct("!="), 2),
            ('!', _) => (Tok::Punct("!"), 1),
            ('(', _) => (Tok::Punct("("), 1),
            (')', _) => (Tok::Punct(")"), 1),
            ('{', _) => (Tok::Punct("{"), 1),
            ('}', _) => (Tok::Punct("}"), 1),
            (',', _) => (Tok::Punct(","), 1),
            ('\'' | '"', _) => match chars[i + 1..].iter().position(|&d| d == c) {
                Some(n) => (Tok::Str(chars[i + 1..i + 1 + n].iter().collect()), n + 2),
                None => (Tok::Unterminated, chars.len() - i),
            },
            _ if is_key_start(c) => {
                let n = chars[i..].iter().take_while(|&&d| is_key_char(d)).count();
                (Tok::Word(chars[i..i + n].iter().collect()), n)
            }
            _ => (Tok::Other(c), 1),
        };
        tokens.push(Token { tok, col: i + 1 });
        i += len;
    }
    tokens
}

fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Punct(p) => format!("'{p}'"),
        Tok::Str(s) => format!("string {s:?}"),
        Tok::Word(w) => format!("'{w}'"),
        Tok::Other(c) => format!("'{c}'"),
        Tok::Unterminated => "an unterminated string".to_string(),
        Tok::End => "end of input".to_string(),
    }
}

/// Recursive descent: `or := and ('||' and)*`, `and := unary ('&&' unary)*`, `unary := '!'* term`.
struct Parser<'a> {
    text: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    end_col: usize,
    depth: usize,
}

type Parsed<T> = Result<T, SelectorError>;

impl Parser<'_> {
    fn err(&self, column: usize, message: impl Into<String>) -> SelectorError {
        SelectorError::new(self.text, column, message.into())
    }

    fn peek(&self) -> Parsed<Token> {
        let tok = match self.tokens.get(self.pos) {
            Some(t) => t.clone(),
            None => Token {
                tok: Tok::End,
                col: self.end_col,
            },
        };
        if tok.tok == Tok::Unterminated {
            return Err(self.err(tok.col, "unterminated string starting"));
        }
        Ok(tok)
    }

    fn next(&mut self) -> Parsed<Token> {
        let tok = self.peek()?;
        self.pos += 1;
        Ok(tok)
    }

    fn expected(&self, what: &str, found: &Token) -> SelectorError {
        self.err(
            found.col,
            format!("expected {what} but found {}", describe(&found.tok)),
        )
    }

    fn expect(&mut self, want: Tok, what: &str) -> Parsed<()> {
        let tok = self.next()?;
        if tok.tok == want {
            Ok(())
        } else {
            Err(self.expected(what, &tok))
        }
    }

    fn parse_or(&mut self) -> Parsed<Expr> {
        let mut terms = vec![self.parse_and()?];
        while self.peek()?.tok == Tok::Punct("||") {
            self.pos += 1;
            terms.push(self.parse_and()?);
        }
        Ok(flatten(terms, Expr::Or))
    }

    fn parse_and(&mut self) -> Parsed<Expr> {
        let mut terms = vec![self.parse_unary()?];
        while self.peek()?.tok == Tok::Punct("&&") {
            self.pos += 1;
            terms.push(self.parse_unary()?);
        }
        Ok(flatten(terms, Expr::And))
    }

    fn parse_unary(&mut self) -> Parsed<Expr> {
        // Counted in a loop, not by recursion, so `!!!!...` cannot exhaust the stack.
        let mut negations = 0;
        while self.peek()?.tok == Tok::Punct("!") {
            self.pos += 1;
            negations += 1;
        }
        let term = self.parse_term()?;
        Ok(if negations % 2 == 1 {
            Expr::Not(Box::new(term))
        } else {
            term
        })
    }

    fn parse_term(&mut self) -> Parsed<Expr> {
        let tok = self.next()?;
        match tok.tok {
            Tok::Punct("(") => {
                if self.depth >= MAX_NESTING {
                    let msg = format!("parentheses nested more than {MAX_NESTING} deep");
                    return Err(self.err(tok.col, msg));
                }
                self.depth += 1;
                let inner = self.parse_or()?;
                self.depth -= 1;
                self.expect(Tok::Punct(")"), "')'")?;
                Ok(inner)
            }
            // `has`, `all` and `global` are functions only when a '(' follows; else they are keys.
            Tok::Word(ref w)
                if matches!(w.as_str(), "has" | "all" | "global")
                    && self.peek()?.tok == Tok::Punct("(") =>
            {
                self.pos += 1;
                let expr = if w == "has" {
                    let key = self.next()?;
                    match key.tok {
                        Tok::Word(k) => Expr::Has(k),
                        _ => return Err(self.key_error("a label key after 'has('", &key)),
                    }
                } else {
                    Expr::All
                };
                self.expect(Tok::Punct(")"), "')'")?;
                Ok(expr)
            }
            Tok::Word(key) => self.parse_comparison(key),
            _ => Err(self.key_error("a label, has(), all(), '!' or '('", &tok)),
        }
    }

    /// Like `expected`, but explains the key rule when the input looks like a malformed key.
    fn key_error(&self, what: &str, found: &Token) -> SelectorError {
        match found.tok {
            Tok::Other(c) if is_key_char(c) => self.err(
                found.col,
                "a label key must start with a letter, digit or '_'",
            ),
            _ => self.expected(what, found),
        }
    }

    fn parse_comparison(&mut self, key: String) -> Parsed<Expr> {
        let op = self.next()?;
        let name = match &op.tok {
            Tok::Punct(p) => p,
            Tok::Word(w) => w.as_str(),
            _ => "",
        };
        Ok(match name {
            "==" => Expr::Eq(key, self.string("'=='")?),
            "!=" => Expr::Ne(key, self.string("'!='")?),
            "in" => Expr::In(key, self.set()?),
            "not" => {
                self.keyword("in", "not")?;
                Expr::NotIn(key, self.set()?)
            }
            "contains" => Expr::Contains(key, self.string("'contains'")?),
            "starts" => {
                self.keyword("with", "starts")?;
                Expr::StartsWith(key, self.string("'starts with'")?)
            }
            "ends" => {
                self.keyword("with", "ends")?;
                Expr::EndsWith(key, self.string("'ends with'")?)
            }
            _ => {
                let ops = "==, !=, in, not in, contains, starts with, ends with";
                let msg = format!("expected an operator ({ops}) after label '{key}'");
                return Err(self.err(op.col, msg));
            }
        })
    }

    fn keyword(&mut self, want: &str, after: &str) -> Parsed<()> {
        let tok = self.next()?;
        match &tok.tok {
            Tok::Word(w) if w == want => Ok(()),
            _ => Err(self.expected(&format!("'{want}' after '{after}'"), &tok)),
        }
    }

    fn string(&mut self, after: &str) -> Parsed<String> {
        let tok = self.next()?;
        match tok.tok {
            Tok::Str(s) => Ok(s),
            _ => Err(self.expected(&format!("a quoted string after {after}"), &tok)),
        }
    }

    fn set(&mut self) -> Parsed<BTreeSet<String>> {
        self.expect(Tok::Punct("{"), "'{' to start a set")?;
        let mut values = BTreeSet::new();
        if self.peek()?.tok == Tok::Punct("}") {
            self.pos += 1;
            return Ok(values);
        }
        loop {
            values.insert(self.string("'{' or ','")?);
            let tok = self.next()?;
            match tok.tok {
                Tok::Punct(",") => continue,
                Tok::Punct("}") => return Ok(values),
                _ => return Err(self.expected("',' or '}'", &tok)),
            }
        }
    }
}

/// Collapses a one-element list to the element itself so the tree stays minimal.
fn flatten(terms: Vec<Expr>, wrap: fn(Vec<Expr>) -> Expr) -> Expr {
    match <[Expr; 1]>::try_from(terms) {
        Ok([only]) => only,
        Err(terms) => wrap(terms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn node() -> BTreeMap<String, String> {
        labels(&[
            ("rack", "r1"),
            ("zone", "us-east-1a"),
            ("kubernetes.io/hostname", "leaf-1.lab"),
            ("node-role.kubernetes.io/control-plane", ""),
            ("my_label-2", "x"),
        ])
    }

    /// Each row is `(selector, expected match)`.
    fn check(labels: &BTreeMap<String, String>, cases: &[(&str, bool)]) {
        for (text, want) in cases {
            let sel = Selector::parse(text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(sel.matches(labels), *want, "selector {text:?}");
        }
    }

    #[rustfmt::skip]
    #[test]
    fn operators_true_and_false() {
        check(&node(), &[
            ("has(rack)", true),                   ("has(nope)", false),
            ("!has(nope)", true),                  ("!has(rack)", false),
            ("rack == 'r1'", true),                ("rack == 'r2'", false),
            ("rack != 'r2'", true),                ("rack != 'r1'", false),
            ("rack in {'r0', \"r1\"}", true),      ("rack in {'r2'}", false),
            ("rack not in {'r2', 'r3'}", true),    ("rack not in {'r1'}", false),
            ("rack not in {}", true),              ("rack in {}", false),
            ("zone contains 'east'", true),        ("zone contains 'west'", false),
            ("zone starts with 'us-'", true),      ("zone starts with 'eu-'", false),
            ("zone ends with '1a'", true),         ("zone ends with '1b'", false),
        ]);
    }

    #[rustfmt::skip]
    #[test]
    fn absent_labels() {
        check(&node(), &[
            ("nope != 'r1'", true),                ("nope == 'r1'", false),
            ("nope not in {'r1'}", true),          ("nope in {'r1'}", false),
            ("nope not in {}", true),              ("nope contains ''", false),
            ("!(nope starts with '')", true),      ("nope ends with ''", false),
        ]);
    }

    #[rustfmt::skip]
    #[test]
    fn precedence_parentheses_and_negation() {
        // Only `a` is set, so evaluating left to right would get the first row wrong.
        check(&labels(&[("a", "1")]), &[
            ("has(a) || has(b) && has(c)", true),  ("(has(a) || has(b)) && has(c)", false),
            ("has(b) && has(c) || has(a)", true),  ("has(b) && (has(c) || has(a))", false),
            ("!(has(a) && !(has(b) || !has(c)))", true),
            ("!(a == '1') || (b != 'x' && ((a in {'1'})))", true),
            ("!!has(a)", true),                    ("!!!has(a)", false),
            ("!((has(b)))", true),                 ("! ( ( has(a) ) )", false),
            ("all() && has(a)", true),             ("all() && !has(a)", false),
        ]);
    }

    #[rustfmt::skip]
    #[test]
    fn keys_quotes_and_whitespace() {
        check(&node(), &[
            ("kubernetes.io/hostname == \"leaf-1.lab\"", true),
            ("has(node-role.kubernetes.io/control-plane)", true),
            ("node-role.kubernetes.io/control-plane == ''", true),
            ("my_label-2=='x'&&rack!=\"r2\"", true),
            ("  rack\t==\n'r1'  ", true),
            ("rack in{'r1'}&&zone not in{\"a\",'b'}", true),
            ("rack == \"it's\" || zone contains 'say \"hi\"'", false),
            // Words that are keywords elsewhere are still usable as keys.
            ("has == 'x' || all != 'y'", true),
        ]);
    }

    #[test]
    fn everything_selectors() {
        check(
            &BTreeMap::new(),
            &[
                ("all()", true),
                ("global()", true),
                ("", true),
                (" \t\n ", true),
            ],
        );
        check(
            &node(),
            &[("all( )", true), ("global ( )", true), ("!all()", false)],
        );
    }

    #[test]
    fn api_round_trips_text() {
        let text = "rack == 'r1'";
        let sel: Selector = text.parse().expect("valid selector");
        assert_eq!(sel.as_str(), text);
        assert_eq!(sel.to_string(), text);
        assert_eq!(sel, Selector::parse(text).expect("valid selector"));
    }

    #[rustfmt::skip]
    #[test]
    fn errors_report_column_and_message() {
        // Each row is `(selector, column, message fragment)`.
        let cases: &[(&str, usize, &str)] = &[
            ("(has(rack) || has(b)", 21, "expected ')' but found end of input"),
            ("rack == 'r1", 9, "unterminated string starting"),
            ("rack 'r1'", 6, "contains, starts with, ends with) after label 'rack'"),
            ("(has(rack) && x", 16, "after label 'x'"),
            ("rack = 'r1'", 6, "expected an operator"),
            ("rack == r1", 9, "expected a quoted string after '==' but found 'r1'"),
            ("has(a) && has(b) & has(c)", 18, "unexpected '&'"),
            ("has(a) | has(b)", 8, "unexpected '|'"),
            ("has(a))", 7, "unexpected ')'"),
            ("has(a) ||", 10, "expected a label, has(), all(), '!' or '(' but found end of input"),
            ("has('a')", 5, "expected a label key after 'has(' but found string \"a\""),
            ("has(-a)", 5, "a label key must start with a letter, digit or '_'"),
            ("all(x)", 5, "expected ')' but found 'x'"),
            ("rack in ('r1')", 9, "expected '{' to start a set but found '('"),
            ("rack in {'a' 'b'}", 14, "expected ',' or '}' but found string \"b\""),
            ("rack in {'a',}", 14, "expected a quoted string after '{' or ','"),
            ("rack not {'a'}", 10, "expected 'in' after 'not' but found '{'"),
            ("zone starts 'x'", 13, "expected 'with' after 'starts'"),
            ("zone ends with x", 16, "expected a quoted string after 'ends with'"),
            // Columns count characters, not bytes.
            ("zone == 'é' && rack == 'x", 24, "unterminated string"),
            // The earlier error wins over the unterminated string after it.
            ("has(a b 'oops", 7, "expected ')' but found 'b'"),
        ];
        for (text, column, fragment) in cases {
            let err = Selector::parse(text).expect_err(text);
            assert_eq!(err.column, *column, "column for {text:?}: {err}");
            assert!(err.message.contains(fragment), "message for {text:?}: {err}");
            assert_eq!(err.selector, *text);
        }
    }

    #[test]
    fn error_display_has_caret_under_column() {
        let err = Selector::parse("rack 'r1'").expect_err("missing operator");
        let want = "invalid selector \"rack 'r1'\": expected an operator (==, !=, in, not in, \
                    contains, starts with, ends with) after label 'rack' at column 6\n  \
                    rack 'r1'\n       ^";
        assert_eq!(err.to_string(), want);
        let tabbed = Selector::parse("\thas(a) x").expect_err("trailing word");
        assert!(
            tabbed.to_string().ends_with("\n  \thas(a) x\n  \t       ^"),
            "{tabbed}"
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = |n: usize| format!("{}has(a){}", "(".repeat(n), ")".repeat(n));
        assert!(Selector::parse(&deep(MAX_NESTING)).is_ok());
        let err = Selector::parse(&deep(MAX_NESTING + 1)).expect_err("too deep");
        assert_eq!(err.column, MAX_NESTING + 1);
        assert!(err.message.contains("nested"), "{err}");
        let negations = format!("{}has(a)", "!".repeat(100_001));
        let sel = Selector::parse(&negations).expect("negations do not recurse");
        assert!(sel.matches(&labels(&[])));
    }
}
