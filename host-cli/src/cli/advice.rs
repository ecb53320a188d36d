//! No dangling advice: every `pkms …` command that a message, a hint or a help example names
//! parses with this CLI (its subcommand and flags exist, its enumeration values are valid), and
//! every `--flag` a message names is a flag of some command. Tests only.

use std::path::{Path, PathBuf};

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};

use super::Cli;

/// Whether `value` is a placeholder the reader replaces (`KEY`, `NAME`, `N`, `SHA256:…`).
fn placeholder(value: &str) -> bool {
    value.contains('…')
        || (!value.is_empty()
            && value.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || "_:.-/".contains(c)))
}

/// Splits a command line as a shell would, roughly: quotes group, `|`, `>`, `<`, `&`, `;`, `#`
/// and `…` end the command (what follows is another program, a redirection or a comment).
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                }
            }
            (None, '>' | '<' | '&' | ';' | '#' | '…') => break,
            // `a|b` inside a word lists alternatives; a lone `|` is a pipe.
            (None, '|') if cur.is_empty() => break,
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out.retain(|w| w != "...");
    out
}

/// Every command `pkms WORDS` stands for: a word `a|b|c` (not a flag value) lists
/// alternatives; `{…}` (a format argument) is a placeholder value.
fn expand(words: &[String]) -> Vec<Vec<String>> {
    let mut all: Vec<Vec<String>> = vec![Vec::new()];
    for w in words {
        let w = if w.contains('{') { "X".to_owned() } else { w.clone() };
        let options: Vec<String> = if w.contains('|') && !w.starts_with('-') {
            w.split('|').map(str::to_owned).collect()
        } else {
            vec![w]
        };
        all = all
            .into_iter()
            .flat_map(|prefix| {
                options.iter().map(move |o| {
                    let mut p = prefix.clone();
                    p.push(o.clone());
                    p
                })
            })
            .collect();
    }
    all
}

/// Checks `pkms REST` (REST as written in a message): Ok, or what is wrong.
pub fn check_command(rest: &str) -> Result<(), String> {
    for mut args in expand(&words(rest)) {
        // Blob files are read while the command line is parsed: an example's file stands for
        // one that exists (`file://` holds base64 text: the same value given inline).
        for a in &mut args {
            if a.starts_with("fileb://") {
                *a = format!("fileb://{}/Cargo.toml", env!("CARGO_MANIFEST_DIR"));
            } else if a.starts_with("file://") {
                *a = "aGVsbG8=".to_owned();
            }
        }
        // Prose may name a flag without its value (`pkms audit verify --public-key`).
        if args.last().is_some_and(|a| a.starts_with("--")) && parse(&args).is_err() {
            args.push("X".to_owned());
        }
        let Err(e) = parse(&args) else { continue };
        let fine = match e.kind() {
            // Naming a command without all its arguments is fine advice.
            ErrorKind::MissingRequiredArgument
            | ErrorKind::MissingSubcommand
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            | ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion => true,
            ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
                matches!(e.get(ContextKind::InvalidValue), Some(ContextValue::String(v)) if placeholder(v))
            }
            _ => false,
        };
        if !fine {
            return Err(format!(
                "`pkms {}`: {}",
                args.join(" "),
                e.render().to_string().lines().next().unwrap_or("")
            ));
        }
    }
    Ok(())
}

fn parse(args: &[String]) -> Result<Cli, clap::Error> {
    Cli::try_parse_from(std::iter::once("pkms".to_owned()).chain(args.iter().cloned()))
}

/// Every long flag of every command, and the global ones.
pub fn all_flags() -> Vec<String> {
    let mut flags = vec!["help".to_owned(), "version".to_owned()];
    let mut stack = vec![Cli::command()];
    while let Some(cmd) = stack.pop() {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long() {
                flags.push(l.to_owned());
            }
            flags.extend(a.get_all_aliases().unwrap_or_default().into_iter().map(str::to_owned));
        }
        stack.extend(cmd.get_subcommands().cloned());
    }
    flags.sort();
    flags.dedup();
    flags
}

/// The `pkms …` commands written in backticks in `text`.
pub fn quoted_commands(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).filter_map(|s| s.strip_prefix("pkms ").map(str::to_owned)).collect()
}

/// The `--flags` named in `text` (outside backticked commands, which [`check_command`] checks).
pub fn named_flags(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 1 && part.starts_with("pkms ") {
            continue;
        }
        let mut rest = part;
        while let Some(at) = rest.find("--") {
            let after = &rest[at + 2..];
            let before = rest[..at].chars().last();
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-')
                .collect();
            if before.is_none_or(|c| c.is_whitespace() || "(`'\"[/,".contains(c))
                && name.starts_with(|c: char| c.is_ascii_lowercase())
            {
                out.push(name.trim_end_matches('-').to_owned());
            }
            rest = after;
        }
    }
    out
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The message text of the CLI's and the library's sources: every line that is not a comment,
/// outside `#[cfg(test)]` modules (from there to the end of the file) and tests.
pub fn message_lines() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("lib/src"), &mut files);
    // This checker's own strings are examples of bad advice.
    files.retain(|f| !f.ends_with("cli/advice.rs"));
    files.sort();
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let t = line.trim_start();
            let next = lines.get(n + 1).map_or("", |l| l.trim());
            if t.starts_with("#[cfg(test)]") && next.starts_with("mod ") && next.ends_with('{') {
                break;
            }
            if t.starts_with("//") {
                continue;
            }
            out.push((
                format!("{}:{}", f.strip_prefix(root).unwrap_or(&f).display(), n + 1),
                (*line).to_owned(),
            ));
        }
    }
    out
}

/// Help text of every command: about, long about, after-help (the examples).
pub fn help_texts() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![(String::from("pkms"), Cli::command())];
    while let Some((name, cmd)) = stack.pop() {
        for t in [cmd.get_about(), cmd.get_long_about(), cmd.get_after_help(), cmd.get_after_long_help()]
            .into_iter()
            .flatten()
        {
            out.push((name.clone(), t.to_string()));
        }
        for a in cmd.get_arguments() {
            for t in [a.get_help(), a.get_long_help()].into_iter().flatten() {
                out.push((format!("{name} --{}", a.get_long().unwrap_or("")), t.to_string()));
            }
        }
        stack.extend(cmd.get_subcommands().map(|s| (format!("{name} {}", s.get_name()), s.clone())));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_catches_dangling_advice() {
        assert!(check_command("unblock-pin --for NAME").is_ok());
        assert!(check_command("describe-key").is_ok(), "a command without its arguments");
        assert!(check_command("token status|start|stop").is_ok());
        assert!(check_command("audit export --out FILE --trim").is_ok());
        assert!(check_command("list-key-rotations --include-key-material ALL_KEY_MATERIAL").is_ok());
        assert!(check_command("get-public-key --key-id {key_id} --output pem").is_ok());
        assert!(check_command("encrypt-file - - | pkms decrypt-file - -").is_ok());
        assert!(check_command("unblock-pin --principal NAME").is_ok(), "--principal is global");
        assert!(check_command("unblock-pin --user NAME").is_err(), "no such flag");
        assert!(check_command("unblock-pins").is_err(), "no such command");
        assert!(check_command("token status|begin").is_err());
        assert!(check_command("list-key-rotations --include-key-material all").is_err(), "bad value");
        assert_eq!(quoted_commands("run `pkms a --b` then `pkms c`; `x`"), ["a --b", "c"]);
        assert_eq!(
            named_flags("with --for NAME (--puk-file) or `pkms x --y`, not a--b"),
            ["for", "puk-file"]
        );
    }

    /// Every `pkms …` command in backticks in a message, a hint or an error of the CLI and the
    /// library parses; every `--flag` a message names exists.
    #[test]
    fn messages_and_hints_name_real_commands_and_flags() {
        let flags = all_flags();
        // Flags that belong to other programs, or that a message names in order to refuse them.
        let foreign = [
            "puk",     // "--puk is not accepted: …" (a PUK on the command line shows in `ps`)
            "release", // cargo build --release
            "verify",  // gpg --verify
            "import",  // gpg --import
            "before",  // `pkms __complete-keys --before`, the completion scripts' hook (not clap's)
        ];
        let mut bad = Vec::new();
        let mut seen = 0;
        for (at, line) in message_lines() {
            for cmd in quoted_commands(&line) {
                seen += 1;
                if let Err(e) = check_command(&cmd) {
                    bad.push(format!("{at}: {e}"));
                }
            }
            if line.contains('"') || line.trim_end().ends_with('\\') {
                for f in named_flags(&line) {
                    if !flags.contains(&f) && !foreign.contains(&f.as_str()) {
                        bad.push(format!("{at}: --{f} is no flag of pkms"));
                    }
                }
            }
        }
        assert!(seen > 30, "the scan found the hints ({seen})");
        assert!(bad.is_empty(), "dangling advice:\n{}", bad.join("\n"));
    }

    /// Every example in `--help` (lines starting `pkms `) and every backticked command in help
    /// texts parses.
    #[test]
    fn help_examples_are_real_commands() {
        let mut bad = Vec::new();
        let mut seen = 0;
        for (at, text) in help_texts() {
            let examples =
                text.lines().filter_map(|l| l.trim_start().strip_prefix("pkms ")).map(str::to_owned);
            let quoted = quoted_commands(&text);
            for cmd in examples.chain(quoted) {
                seen += 1;
                if let Err(e) = check_command(&cmd) {
                    bad.push(format!("{at}: {e}"));
                }
            }
        }
        assert!(seen > 80, "the scan found the examples ({seen})");
        assert!(bad.is_empty(), "help names commands that do not parse:\n{}", bad.join("\n"));
    }
}
