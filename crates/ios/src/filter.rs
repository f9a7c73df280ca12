//! Output modifiers: `| begin|include|exclude|section PATTERN`.
//!
//! IOS takes a regular expression; here the pattern is a plain substring (case-sensitive,
//! as IOS's), which covers `| section cdp`, `| include Holdtime` and the like.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FilterKind {
    Begin,
    Include,
    Exclude,
    Section,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub kind: FilterKind,
    pub pattern: String,
}

impl Filter {
    /// Applies the modifier to a command's output.
    pub fn apply(&self, text: &str) -> String {
        let p = self.pattern.as_str();
        let mut out = String::new();
        let mut push = |l: &str| {
            out.push_str(l);
            out.push('\n');
        };
        match self.kind {
            FilterKind::Include => text.lines().filter(|l| l.contains(p)).for_each(&mut push),
            FilterKind::Exclude => text.lines().filter(|l| !l.contains(p)).for_each(&mut push),
            FilterKind::Begin => text
                .lines()
                .skip_while(|l| !l.contains(p))
                .for_each(&mut push),
            FilterKind::Section => {
                // A section is a line at the left margin and the indented lines under it; it
                // is shown whole when any of its lines matches.
                let mut sections: Vec<Vec<&str>> = Vec::new();
                for l in text.lines() {
                    match sections.last_mut() {
                        Some(s) if l.starts_with(' ') => s.push(l),
                        _ => sections.push(vec![l]),
                    }
                }
                for s in sections {
                    if s.iter().any(|l| l.contains(p)) {
                        s.into_iter().for_each(&mut push);
                    }
                }
            }
        }
        out
    }
}
