//! The IOS console language of phoneboot, sans-IO: a line (and the mode it was typed in) in,
//! a typed [`Command`] or IOS's own error text out; `?` help and TAB completion from the same
//! tree. The server executes commands; the console (`phoneboot console`) renders prompts,
//! help and errors with the functions here, so both agree on every word.
//!
//! IOS behaviours kept (Cisco IOS Configuration Fundamentals, "Using the Cisco IOS
//! Command-Line Interface"): any unambiguous prefix of a keyword is accepted (`sh cdp nei
//! det`); `?` after a blank lists what may follow (with `<cr>` when the command may end
//! there), `?` right after letters lists the keywords starting with them; `exit` leaves one
//! level, `end` returns to exec; `do` runs an exec command from a configuration mode; a
//! global command typed in interface mode runs and leaves interface mode; errors are
//! `% Invalid input detected at '^' marker.` with the caret under the first character of the
//! offending word, `% Incomplete command.`, `% Ambiguous command:  "..."`.

mod commands;
mod filter;
pub mod tree;

pub use commands::{
    build, config_tree, exec_tree, interface_tree, pipe_tree, Command, DebugCdp, PowerInline,
    CDP_HOLDTIME_DEFAULT, CDP_TIMER_DEFAULT, LLDP_HOLDTIME_DEFAULT, LLDP_TIMER_DEFAULT,
};
pub use filter::{Filter, FilterKind};

use serde::{Deserialize, Serialize};
use tree::{tokenize, walk, Miss, Node, Pat, Token, Value, Walk};

/// Where the console is: exec (`Switch#`), global configuration (`Switch(config)#`) or an
/// interface's configuration (`Switch(config-if)#`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", content = "interface", rename_all = "snake_case")]
pub enum Mode {
    #[default]
    Exec,
    Config,
    Interface(String),
}

impl Mode {
    /// The prompt IOS prints in this mode.
    pub fn prompt(&self, hostname: &str) -> String {
        match self {
            Mode::Exec => format!("{hostname}#"),
            Mode::Config => format!("{hostname}(config)#"),
            Mode::Interface(_) => format!("{hostname}(config-if)#"),
        }
    }

    fn tree(&self) -> Vec<Node> {
        match self {
            Mode::Exec => exec_tree(),
            Mode::Config => config_tree(),
            Mode::Interface(_) => interface_tree(),
        }
    }
}

/// What the parser needs to know about the device: its interfaces (for `interface NAME`,
/// `show cdp neighbors NAME`, ...).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub hostname: String,
    pub interfaces: Vec<String>,
}

/// A line IOS refuses, with IOS's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum ParseError {
    /// Nothing accepts the word starting at byte `at` of the line.
    #[error("% Invalid input detected at '^' marker.")]
    Invalid { at: usize },
    #[error("% Incomplete command.")]
    Incomplete,
    #[error("% Ambiguous command:  \"{line}\"")]
    Ambiguous { line: String },
    /// `?` after letters no keyword starts with.
    #[error("% Unrecognized command")]
    Unrecognized,
}

impl ParseError {
    /// The text IOS prints for `line` typed after a prompt `prompt_width` columns wide: the
    /// caret line (for invalid input) and the message, each ending in a newline.
    pub fn render(&self, line: &str, prompt_width: usize) -> String {
        match self {
            ParseError::Invalid { at } => {
                let col = line.get(..*at).map_or(*at, |s| s.chars().count());
                format!("{}^\n{self}\n", " ".repeat(prompt_width + col))
            }
            _ => format!("{self}\n"),
        }
    }
}

/// A line matched in a mode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parsed {
    pub command: Command,
    /// `| section ...` and friends after a show command.
    pub filter: Option<Filter>,
    /// The mode the command runs in: differs from the typed one for `do` (exec) and for a
    /// global command typed in interface mode (config).
    pub runs_in: Mode,
    /// Typed with `do` (the mode does not change).
    pub via_do: bool,
}

fn to_err(m: Miss, line: &str) -> ParseError {
    match m {
        Miss::Invalid(at) => ParseError::Invalid { at },
        Miss::Ambiguous(_) => ParseError::Ambiguous {
            line: line.trim().to_string(),
        },
    }
}

fn split_pipe<'a>(
    tokens: &'a [Token<'a>],
) -> (&'a [Token<'a>], Option<(&'a Token<'a>, &'a [Token<'a>])>) {
    match tokens.iter().position(|t| t.text == "|") {
        Some(i) => (&tokens[..i], Some((&tokens[i], &tokens[i + 1..]))),
        None => (tokens, None),
    }
}

fn finish(w: &Walk<'_>) -> Result<Command, ParseError> {
    let tag = w.last.and_then(|n| n.tag).ok_or(ParseError::Incomplete)?;
    let words: &[&str] = match w.words.first() {
        Some(&"do") => &w.words[1..],
        _ => &w.words,
    };
    build(tag, words, &w.values).ok_or(ParseError::Incomplete)
}

/// Parses `line` typed in `mode`. `Ok(None)` for an empty line.
pub fn parse(ctx: &Context, mode: &Mode, line: &str) -> Result<Option<Parsed>, ParseError> {
    let tokens = tokenize(line);
    if tokens.is_empty() {
        return Ok(None);
    }
    let (cmd_tokens, pipe) = split_pipe(&tokens);
    if cmd_tokens.is_empty() {
        return Err(ParseError::Invalid { at: tokens[0].at });
    }
    let tree = mode.tree();
    let mut runs_in = mode.clone();
    let walked = match walk(&tree, cmd_tokens, line, &ctx.interfaces) {
        Ok(w) => Ok(w),
        // A global configuration command typed in interface mode: IOS runs it and leaves
        // interface mode.
        Err(first) if matches!(mode, Mode::Interface(_)) => {
            let global = config_tree();
            match walk(&global, cmd_tokens, line, &ctx.interfaces) {
                Ok(w) => {
                    runs_in = Mode::Config;
                    let cmd = finish(&w)?;
                    return with_pipe(ctx, line, cmd, pipe, runs_in, false);
                }
                Err(second) => Err(match (&first, &second) {
                    (Miss::Invalid(a), Miss::Invalid(b)) if b > a => second,
                    _ => first,
                }),
            }
        }
        Err(m) => Err(m),
    };
    let w = walked.map_err(|m| to_err(m, line))?;
    let via_do = w.words.first() == Some(&"do") && *mode != Mode::Exec;
    if via_do {
        runs_in = Mode::Exec;
    }
    let cmd = finish(&w)?;
    with_pipe(ctx, line, cmd, pipe, runs_in, via_do)
}

fn with_pipe(
    ctx: &Context,
    line: &str,
    command: Command,
    pipe: Option<(&Token<'_>, &[Token<'_>])>,
    runs_in: Mode,
    via_do: bool,
) -> Result<Option<Parsed>, ParseError> {
    let filter = match pipe {
        None => None,
        Some((bar, _)) if !command.is_show() => return Err(ParseError::Invalid { at: bar.at }),
        Some((_, rest)) => {
            let tree = pipe_tree();
            let w = walk(&tree, rest, line, &ctx.interfaces).map_err(|m| to_err(m, line))?;
            let Some(Node { pat: Pat::Line, .. }) = w.last else {
                return Err(ParseError::Incomplete);
            };
            let kind = match w.words.first() {
                Some(&"begin") => FilterKind::Begin,
                Some(&"exclude") => FilterKind::Exclude,
                Some(&"include") => FilterKind::Include,
                _ => FilterKind::Section,
            };
            let pattern = w
                .values
                .iter()
                .find_map(|v| match v {
                    Value::Line(l) => Some(l.clone()),
                    _ => None,
                })
                .ok_or(ParseError::Incomplete)?;
            Some(Filter { kind, pattern })
        }
    };
    Ok(Some(Parsed {
        command,
        filter,
        runs_in,
        via_do,
    }))
}

/// The mode after `parsed` ran in `mode`; `None` when the session ends (`exit` in exec).
pub fn next_mode(mode: &Mode, parsed: &Parsed) -> Option<Mode> {
    if parsed.via_do {
        return Some(mode.clone());
    }
    Some(match (&parsed.runs_in, &parsed.command) {
        (Mode::Exec, Command::ConfigureTerminal) => Mode::Config,
        (_, Command::Interface { name }) => Mode::Interface(name.clone()),
        (_, Command::End) => Mode::Exec,
        (Mode::Exec, Command::Exit) => return None,
        (Mode::Config, Command::Exit) => Mode::Exec,
        (Mode::Interface(_), Command::Exit) => Mode::Config,
        (m, _) => m.clone(),
    })
}

/// One row of `?` help: the word (or `<5-254>`, `WORD`, `<cr>`, `|`) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelpItem {
    pub word: String,
    pub help: String,
}

/// What `?` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Help {
    /// After a blank: what may follow, one per row.
    Next(Vec<HelpItem>),
    /// Right after letters: the keywords that start with them, on one line.
    Words(Vec<String>),
}

impl Help {
    /// IOS's layout: rows `  word  help` with the words padded to the longest; words
    /// completing a prefix on one line separated by two blanks.
    pub fn render(&self) -> String {
        match self {
            Help::Next(items) => {
                let w = items.iter().map(|i| i.word.len()).max().unwrap_or(0);
                let mut o = String::new();
                for i in items {
                    if i.help.is_empty() {
                        o.push_str(&format!("  {}\n", i.word));
                    } else {
                        o.push_str(&format!("  {:<w$}  {}\n", i.word, i.help));
                    }
                }
                o
            }
            Help::Words(ws) => {
                let mut o = ws.join("  ");
                o.push_str("  \n");
                o
            }
        }
    }
}

fn options(nodes: &[Node], ctx: &Context) -> Vec<HelpItem> {
    let mut v = Vec::new();
    for n in nodes {
        match n.pat {
            Pat::Iface => v.extend(ctx.interfaces.iter().map(|i| HelpItem {
                word: i.clone(),
                help: n.help.to_string(),
            })),
            _ => v.push(HelpItem {
                word: n.label(),
                help: n.help.to_string(),
            }),
        }
    }
    v.sort_by_key(|a| a.word.to_ascii_lowercase());
    v
}

/// `?` typed after `line` in `mode`.
pub fn help(ctx: &Context, mode: &Mode, line: &str) -> Result<Help, ParseError> {
    let tokens = tokenize(line);
    let partial = !line.is_empty() && !line.ends_with(char::is_whitespace) && !line.ends_with('|');
    let (done, last) = if partial {
        match tokens.split_last() {
            Some((l, rest)) => (rest, Some(l)),
            None => (&tokens[..], None),
        }
    } else {
        (&tokens[..], None)
    };
    let (cmd_tokens, pipe) = split_pipe(done);
    let mode_tree = mode.tree();
    let pipe_nodes = pipe_tree();
    // The nodes the next word is matched against, and whether a command may end before it.
    let (nodes, complete, show): (&[Node], bool, bool) = match pipe {
        None => {
            let w =
                walk(&mode_tree, cmd_tokens, line, &ctx.interfaces).map_err(|m| to_err(m, line))?;
            match w.last {
                None => (&mode_tree, false, false),
                Some(n) => {
                    let cmd = finish(&w).ok();
                    let show = cmd.as_ref().is_some_and(Command::is_show);
                    (&n.next, n.tag.is_some(), show)
                }
            }
        }
        Some((_, rest)) => {
            let w = walk(&pipe_nodes, rest, line, &ctx.interfaces).map_err(|m| to_err(m, line))?;
            match w.last {
                None => (&pipe_nodes, false, false),
                Some(n) => (&n.next, n.tag.is_some(), false),
            }
        }
    };
    match last {
        Some(tok) => {
            let lw = tok.text.to_ascii_lowercase();
            let mut words: Vec<String> = options(nodes, ctx)
                .into_iter()
                .map(|i| i.word)
                .filter(|w| !w.starts_with('<') && w.to_ascii_lowercase().starts_with(&lw))
                .collect();
            if show && "|".starts_with(&lw) {
                words.push("|".into());
            }
            if words.is_empty() {
                return Err(ParseError::Unrecognized);
            }
            Ok(Help::Words(words))
        }
        None => {
            let mut items = options(nodes, ctx);
            if show && pipe.is_none() {
                items.push(HelpItem {
                    word: "|".into(),
                    help: "Output modifiers".into(),
                });
            }
            if complete {
                items.push(HelpItem {
                    word: "<cr>".into(),
                    help: String::new(),
                });
            }
            Ok(Help::Next(items))
        }
    }
}

/// TAB after `line`: the byte offset where the word being completed starts and the full
/// words it may complete to (keywords and interface names). One candidate: IOS completes it.
pub fn complete(ctx: &Context, mode: &Mode, line: &str) -> (usize, Vec<String>) {
    if line.is_empty() || line.ends_with(char::is_whitespace) {
        return (line.len(), Vec::new());
    }
    let start = line
        .rfind(|c: char| c.is_whitespace() || c == '|')
        .map_or(0, |i| i + 1);
    match help(ctx, mode, line) {
        Ok(Help::Words(ws)) => {
            let exact = ws
                .iter()
                .find(|w| w.eq_ignore_ascii_case(&line[start..]))
                .cloned();
            (start, exact.map_or(ws, |e| vec![e]))
        }
        _ => (start, Vec::new()),
    }
}

#[cfg(test)]
mod tests;
