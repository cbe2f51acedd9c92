//! Meta rule expressions: `A && (B || !C)`, `(A + B + C) >= 2`, over other rules' hits.

/// An expression over rules by name, as written (evaluated once [`Compiled`]).
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(f64),
    Rule(String),
    Not(Box<Expr>),
    Neg(Box<Expr>),
    Bin(Box<Expr>, Op, Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Op {
    Or,
    And,
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
    Add,
    Sub,
    Mul,
    Div,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(f64),
    Ident(String),
    Op(&'static str),
    Open,
    Close,
}

fn tokenize(s: &str) -> Option<Vec<Tok>> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i];
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() || (c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            let start = i;
            while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
                i += 1;
            }
            // ASCII from `start` to `i`: between characters.
            out.push(Tok::Num(s.get(start..i)?.parse().ok()?));
        } else if c.is_ascii_alphabetic() || c == b'_' {
            let start = i;
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            out.push(Tok::Ident(s.get(start..i)?.to_string()));
        } else if c == b'(' {
            out.push(Tok::Open);
            i += 1;
        } else if c == b')' {
            out.push(Tok::Close);
            i += 1;
        } else {
            let two = s.get(i..i + 2).unwrap_or("");
            let op = ["&&", "||", ">=", "<=", "==", "!="]
                .into_iter()
                .find(|o| *o == two);
            let op = match op {
                Some(o) => o,
                None => ["!", ">", "<", "+", "-", "*", "/"]
                    .into_iter()
                    .find(|o| o.as_bytes()[0] == c)?,
            };
            i += op.len();
            out.push(Tok::Op(op));
        }
    }
    Some(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek_op(&self) -> Option<&'static str> {
        match self.toks.get(self.pos) {
            Some(Tok::Op(o)) => Some(o),
            _ => None,
        }
    }

    fn binary(&mut self, level: usize) -> Option<Expr> {
        const LEVELS: [&[(&str, Op)]; 5] = [
            &[("||", Op::Or)],
            &[("&&", Op::And)],
            &[
                (">=", Op::Ge),
                ("<=", Op::Le),
                ("==", Op::Eq),
                ("!=", Op::Ne),
                (">", Op::Gt),
                ("<", Op::Lt),
            ],
            &[("+", Op::Add), ("-", Op::Sub)],
            &[("*", Op::Mul), ("/", Op::Div)],
        ];
        if level == LEVELS.len() {
            return self.unary();
        }
        let mut left = self.binary(level + 1)?;
        while let Some(op) = self
            .peek_op()
            .and_then(|o| LEVELS[level].iter().find(|(s, _)| *s == o))
            .map(|(_, op)| *op)
        {
            self.pos += 1;
            let right = self.binary(level + 1)?;
            left = Expr::Bin(Box::new(left), op, Box::new(right));
        }
        Some(left)
    }

    fn unary(&mut self) -> Option<Expr> {
        match self.toks.get(self.pos).cloned()? {
            Tok::Op("!") => {
                self.pos += 1;
                Some(Expr::Not(Box::new(self.unary()?)))
            }
            Tok::Op("-") => {
                self.pos += 1;
                Some(Expr::Neg(Box::new(self.unary()?)))
            }
            Tok::Num(n) => {
                self.pos += 1;
                Some(Expr::Num(n))
            }
            Tok::Ident(name) => {
                self.pos += 1;
                Some(Expr::Rule(name))
            }
            Tok::Open => {
                self.pos += 1;
                let e = self.binary(0)?;
                if self.toks.get(self.pos) != Some(&Tok::Close) {
                    return None;
                }
                self.pos += 1;
                Some(e)
            }
            _ => None,
        }
    }
}

pub fn parse(text: &str) -> Option<Expr> {
    let mut p = Parser {
        toks: tokenize(text)?,
        pos: 0,
    };
    let e = p.binary(0)?;
    (p.pos == p.toks.len()).then_some(e)
}

impl Expr {
    /// The rule names it refers to.
    pub fn names(&self, out: &mut Vec<String>) {
        match self {
            Expr::Rule(r) => out.push(r.clone()),
            Expr::Not(e) | Expr::Neg(e) => e.names(out),
            Expr::Bin(l, _, r) => {
                l.names(out);
                r.names(out);
            }
            Expr::Num(_) => {}
        }
    }
}

/// The meta expressions of a ruleset, compiled for scanning: names resolved to rule
/// indices, every node in one array and the nodes of one expression adjacent, so that
/// evaluating one reads a short run of memory instead of chasing boxes (a scan
/// evaluates hundreds).
#[derive(Debug, Default)]
pub struct Compiled {
    nodes: Vec<Node>,
}

#[derive(Debug, Clone, Copy)]
enum Node {
    Num(f64),
    /// A rule by index; None for a name no rule has (it reads 0).
    Rule(Option<u32>),
    Not(u32),
    Neg(u32),
    Bin(u32, Op, u32),
}

impl Compiled {
    /// Adds an expression, names resolved by `index`; returns its root for [`Compiled::eval`].
    pub fn add(&mut self, e: &Expr, index: &dyn Fn(&str) -> Option<usize>) -> u32 {
        let node = match e {
            Expr::Num(n) => Node::Num(*n),
            Expr::Rule(r) => Node::Rule(index(r).map(|i| i as u32)),
            Expr::Not(x) => Node::Not(self.add(x, index)),
            Expr::Neg(x) => Node::Neg(self.add(x, index)),
            Expr::Bin(l, op, r) => {
                let left = self.add(l, index);
                Node::Bin(left, *op, self.add(r, index))
            }
        };
        self.nodes.push(node);
        (self.nodes.len() - 1) as u32
    }

    /// Evaluates the expression at `root` (`&&` and `||` read their right side only when
    /// the left does not decide), with `hits` giving the hit count of a rule by index.
    pub fn eval(&self, root: u32, hits: &mut impl FnMut(usize) -> f64) -> f64 {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        match self.nodes[root as usize] {
            Node::Num(n) => n,
            Node::Rule(r) => r.map_or(0.0, |i| hits(i as usize)),
            Node::Not(e) => b(self.eval(e, hits) == 0.0),
            Node::Neg(e) => -self.eval(e, hits),
            Node::Bin(l, op, r) => {
                let a = self.eval(l, hits);
                match op {
                    Op::Or => b(a != 0.0 || self.eval(r, hits) != 0.0),
                    Op::And => b(a != 0.0 && self.eval(r, hits) != 0.0),
                    op => op.apply(a, self.eval(r, hits)),
                }
            }
        }
    }
}

impl Op {
    /// A comparison or arithmetic operator applied (`Or`/`And` as booleans, though
    /// evaluation short-circuits them before this).
    fn apply(self, a: f64, c: f64) -> f64 {
        let b = |x: bool| if x { 1.0 } else { 0.0 };
        match self {
            Op::Or => b(a != 0.0 || c != 0.0),
            Op::And => b(a != 0.0 && c != 0.0),
            Op::Gt => b(a > c),
            Op::Ge => b(a >= c),
            Op::Lt => b(a < c),
            Op::Le => b(a <= c),
            Op::Eq => b(a == c),
            Op::Ne => b(a != c),
            Op::Add => a + c,
            Op::Sub => a - c,
            Op::Mul => a * c,
            Op::Div if c != 0.0 => a / c,
            Op::Div => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions() {
        // A, B, C are rules 0, 1, 2 with 1, 0 and 2 hits; other names have no rule.
        let index = |n: &str| ["A", "B", "C"].iter().position(|r| *r == n);
        let e = |s: &str| {
            let mut compiled = Compiled::default();
            let root = compiled.add(&parse(s).unwrap(), &index);
            compiled.eval(root, &mut |i| [1.0, 0.0, 2.0][i])
        };
        assert_eq!(e("A && !B"), 1.0);
        assert_eq!(e("A && B || C"), 1.0);
        assert_eq!(e("(A + B + C) >= 3"), 1.0);
        assert_eq!(e("(A + B) > 1"), 0.0);
        assert_eq!(e("!(A || B)"), 0.0);
        assert_eq!(e("__X_1 || A"), 1.0);
        assert_eq!(e("A * 2 - 1 == 1"), 1.0);
        // Compiled: names resolved (Z has no rule: 0), the same values.
        let mut compiled = Compiled::default();
        let index = |n: &str| (n == "A").then_some(7);
        let sum = compiled.add(&parse("A + Z").unwrap(), &index);
        let both = compiled.add(&parse("A && (Z || !Z) && 2 > 1").unwrap(), &index);
        let mut hits = |i: usize| i as f64;
        assert_eq!(compiled.eval(sum, &mut hits), 7.0);
        assert_eq!(compiled.eval(both, &mut hits), 1.0);
        assert!(parse("A &&").is_none());
        assert!(parse("(A").is_none());
    }

    /// Multi-byte characters where a name, number or operator is expected.
    #[test]
    fn multi_byte_characters_are_no_tokens() {
        for text in ["é", "A && é", "1.é", "Aé", "(A)é", "A é", "€ || B"] {
            assert!(parse(text).is_none(), "{text}");
        }
    }
}
