//! The generic part: a tree of keywords and parameters, matched token by token the way IOS's
//! parser does (unique prefixes, exact words first, numbers checked against their range,
//! interface names against the device's interfaces).

/// What one node of the tree accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pat {
    /// A keyword; any unambiguous prefix is accepted.
    Kw(&'static str),
    /// A decimal number within `min..=max` (shown as `<min-max>`).
    Num(u32, u32),
    /// Any single word (shown as the given placeholder, e.g. `WORD`).
    Word(&'static str),
    /// One of the device's interfaces (exact, case-insensitive, or a unique prefix).
    Iface,
    /// The rest of the line, one or more words (`LINE`).
    Line,
}

/// One node: what it accepts, its help text, whether a command may end here (`<cr>`),
/// the tag that names the command ending here, and what may follow.
#[derive(Debug, Clone)]
pub struct Node {
    pub pat: Pat,
    pub help: &'static str,
    pub tag: Option<&'static str>,
    pub next: Vec<Node>,
}

impl Node {
    pub fn kw(word: &'static str, help: &'static str) -> Node {
        Node {
            pat: Pat::Kw(word),
            help,
            tag: None,
            next: Vec::new(),
        }
    }

    pub fn num(min: u32, max: u32, help: &'static str) -> Node {
        Node {
            pat: Pat::Num(min, max),
            help,
            tag: None,
            next: Vec::new(),
        }
    }

    pub fn word(placeholder: &'static str, help: &'static str) -> Node {
        Node {
            pat: Pat::Word(placeholder),
            help,
            tag: None,
            next: Vec::new(),
        }
    }

    pub fn iface(help: &'static str) -> Node {
        Node {
            pat: Pat::Iface,
            help,
            tag: None,
            next: Vec::new(),
        }
    }

    pub fn line(help: &'static str) -> Node {
        Node {
            pat: Pat::Line,
            help,
            tag: None,
            next: Vec::new(),
        }
    }

    /// A command may end here; `tag` names it.
    pub fn ends(mut self, tag: &'static str) -> Node {
        self.tag = Some(tag);
        self
    }

    /// What may follow.
    pub fn then(mut self, next: impl IntoIterator<Item = Node>) -> Node {
        self.next.extend(next);
        self
    }

    /// The word shown in `?` help for this node.
    pub fn label(&self) -> String {
        match &self.pat {
            Pat::Kw(w) => (*w).to_string(),
            Pat::Num(a, b) => format!("<{a}-{b}>"),
            Pat::Word(p) => (*p).to_string(),
            Pat::Iface => "<interface>".to_string(),
            Pat::Line => "LINE".to_string(),
        }
    }
}

/// A word of the input line and where it starts (byte offset), for the `^` marker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token<'a> {
    pub text: &'a str,
    pub at: usize,
}

/// Splits on blanks; `|` is a word of its own even without blanks around it.
pub fn tokenize(line: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let mut start: Option<usize> = None;
    for (i, c) in line.char_indices() {
        if c.is_whitespace() || c == '|' {
            if let Some(s) = start.take() {
                out.push(Token {
                    text: &line[s..i],
                    at: s,
                });
            }
            if c == '|' {
                out.push(Token {
                    text: &line[i..i + 1],
                    at: i,
                });
            }
        } else if start.is_none() {
            start = Some(i);
        }
    }
    if let Some(s) = start {
        out.push(Token {
            text: &line[s..],
            at: s,
        });
    }
    out
}

/// A matched parameter value (keywords matched are not kept: the tag says which command).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Num(u32),
    Word(String),
    /// The interface's name as configured.
    Iface(String),
    Line(String),
}

/// Why a token did not match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Nothing accepts it: `% Invalid input detected at '^' marker.` at this byte offset.
    Invalid(usize),
    /// Several keywords start with it: `% Ambiguous command:  "<line up to here>"`.
    Ambiguous(usize),
}

/// What one token resolves to at a node list.
pub enum Step<'t> {
    Node(&'t Node, Option<Value>),
    Miss(Miss),
}

fn iface_match(word: &str, interfaces: &[String]) -> Option<String> {
    if let Some(i) = interfaces.iter().find(|i| i.eq_ignore_ascii_case(word)) {
        return Some(i.clone());
    }
    let lw = word.to_ascii_lowercase();
    let mut it = interfaces
        .iter()
        .filter(|i| i.to_ascii_lowercase().starts_with(&lw));
    match (it.next(), it.next()) {
        (Some(one), None) => Some(one.clone()),
        _ => None,
    }
}

/// Resolves `tok` among `nodes`: an exact keyword, else a unique keyword prefix (several:
/// ambiguous), else an interface, a number in range, a word, the rest of the line.
pub fn step<'t>(nodes: &'t [Node], tok: &Token<'_>, line: &str, interfaces: &[String]) -> Step<'t> {
    let lw = tok.text.to_ascii_lowercase();
    if let Some(n) = nodes
        .iter()
        .find(|n| matches!(n.pat, Pat::Kw(k) if k == lw))
    {
        return Step::Node(n, None);
    }
    let prefixed: Vec<&Node> = nodes
        .iter()
        .filter(|n| matches!(n.pat, Pat::Kw(k) if k.starts_with(&lw)))
        .collect();
    match prefixed.len() {
        1 => return Step::Node(prefixed[0], None),
        0 => {}
        _ => return Step::Miss(Miss::Ambiguous(tok.at + tok.text.len())),
    }
    for n in nodes {
        match n.pat {
            Pat::Iface => {
                if let Some(name) = iface_match(tok.text, interfaces) {
                    return Step::Node(n, Some(Value::Iface(name)));
                }
            }
            Pat::Num(min, max)
                if !tok.text.is_empty() && tok.text.bytes().all(|b| b.is_ascii_digit()) =>
            {
                if let Ok(v) = tok.text.parse::<u32>() {
                    if (min..=max).contains(&v) {
                        return Step::Node(n, Some(Value::Num(v)));
                    }
                }
            }
            _ => {}
        }
    }
    for n in nodes {
        match n.pat {
            Pat::Word(_) => return Step::Node(n, Some(Value::Word(tok.text.to_string()))),
            Pat::Line => {
                return Step::Node(n, Some(Value::Line(line[tok.at..].trim_end().to_string())))
            }
            _ => {}
        }
    }
    Step::Miss(Miss::Invalid(tok.at))
}

/// The result of walking a whole token list.
pub struct Walk<'t> {
    /// The last node matched (None: no tokens).
    pub last: Option<&'t Node>,
    pub values: Vec<Value>,
    /// The keywords matched, full spelling, in order (to tell `no`/`do` prefixes).
    pub words: Vec<&'static str>,
}

/// Follows `tokens` from `roots`. A `Line` node swallows the rest.
pub fn walk<'t>(
    roots: &'t [Node],
    tokens: &[Token<'_>],
    line: &str,
    interfaces: &[String],
) -> Result<Walk<'t>, Miss> {
    let mut cur = roots;
    let mut w = Walk {
        last: None,
        values: Vec::new(),
        words: Vec::new(),
    };
    for tok in tokens {
        if let Some(Node { pat: Pat::Line, .. }) = w.last {
            break;
        }
        match step(cur, tok, line, interfaces) {
            Step::Node(n, v) => {
                if let Pat::Kw(k) = n.pat {
                    w.words.push(k);
                }
                if let Some(v) = v {
                    w.values.push(v);
                }
                w.last = Some(n);
                cur = &n.next;
            }
            Step::Miss(m) => return Err(m),
        }
    }
    Ok(w)
}
