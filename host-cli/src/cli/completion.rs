//! Tab completion of key ids and alias names, from a cache: completion never starts, waits on
//! or talks to a token.
//!
//! * The cache is `$PKMS_HOME/completion-keys.json`, one section per token (the name its device
//!   key is pinned under: `qemu`, `usb:SERIAL`, …), each with the key ids and alias names last
//!   seen. `list-keys` and `list-aliases` replace them (a complete listing) or add to them (a
//!   partial one); `create-key` and `create-alias` add, `delete-alias` removes, `factory-reset`
//!   forgets the token's section. Writing it is best effort (a temporary file renamed over the
//!   old one, mode 0600) and never fails a command.
//! * `pkms completions bash|zsh|fish` prints clap's script with a hook: after `--key-id`,
//!   `--target-key-id`, `--destination-key-id`, `--source-key-id` and `--alias-name` the shell
//!   runs the hidden `pkms __complete-keys -- WORDS…`, which reads the cache and prints one
//!   candidate per line: key ids, plus alias names where the command takes aliases (KMS's rule,
//!   [`KeyRef::of`]); existing alias names after `--alias-name` (none for create-alias, which
//!   names a new one).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};

use clap::CommandFactory;
use serde::{Deserialize, Serialize};

use pkms_lib::connect;

use super::{operation_name, Cli, Context};
use crate::keyref::KeyRef;

/// The cache file in `$PKMS_HOME`.
pub const CACHE_FILE: &str = "completion-keys.json";

/// The flags whose values are key ids (and aliases, where the command takes them).
const KEY_FLAGS: &[&str] = &["key-id", "target-key-id", "destination-key-id", "source-key-id"];
/// The flag whose value is an alias name.
const ALIAS_FLAG: &str = "alias-name";

#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Cache {
    tokens: BTreeMap<String, Known>,
}

/// What is known of one token's keys.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Known {
    /// Key ids (bare UUIDs).
    pub key_ids: BTreeSet<String>,
    /// Alias names (`alias/…`).
    pub aliases: BTreeSet<String>,
}

/// A change to what the cache knows of the token a command used.
pub enum Update {
    /// A complete key listing.
    AllKeys(Vec<String>),
    /// Keys seen (a partial listing, a new key).
    Keys(Vec<String>),
    /// A complete alias listing.
    AllAliases(Vec<String>),
    /// Aliases seen (a partial listing, a new alias).
    Aliases(Vec<String>),
    /// An alias deleted.
    RemoveAlias(String),
    /// The token was reset: nothing of it is known any more.
    Forget,
}

fn cache_path(home: &Path) -> PathBuf {
    home.join(CACHE_FILE)
}

fn read_cache(home: &Path) -> Cache {
    std::fs::read(cache_path(home)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

/// Applies `update` to the cache of the token `ctx` used. Best effort: a cache that cannot be
/// written leaves completion with what it had.
pub fn record(ctx: &Context, update: Update) {
    let Some(token) = ctx.pin_name() else { return };
    let home = ctx.home();
    if !home.is_dir() {
        return;
    }
    let mut cache = read_cache(home);
    let known = cache.tokens.entry(token.clone()).or_default();
    match update {
        Update::AllKeys(ids) => known.key_ids = ids.into_iter().collect(),
        Update::Keys(ids) => known.key_ids.extend(ids),
        Update::AllAliases(names) => known.aliases = names.into_iter().collect(),
        Update::Aliases(names) => known.aliases.extend(names),
        Update::RemoveAlias(name) => {
            known.aliases.remove(&name);
        }
        Update::Forget => {
            cache.tokens.remove(&token);
        }
    }
    let _ = write_cache(home, &cache);
}

fn write_cache(home: &Path, cache: &Cache) -> std::io::Result<()> {
    let mut tmp = tempfile::Builder::new().prefix(".completion-keys").tempfile_in(home)?;
    tmp.write_all(&serde_json::to_vec(cache)?)?;
    tmp.persist(cache_path(home)).map_err(|e| e.error)?;
    Ok(())
}

/// What the word being completed is the value of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// A key id, or an alias where the command takes one.
    Key { aliases: bool },
    /// An existing alias name.
    Alias,
}

/// The hidden command the completion scripts run: `pkms __complete-keys -- WORDS…`.
pub const COMMAND: &str = "__complete-keys";

/// `pkms __complete-keys [--before] -- WORDS…`: WORDS is the command line up to and including
/// the word being completed (with or without the program name; `--before`: up to the word
/// before it). Prints the candidates, one per line,
/// from the cache of the token the command line would use (`--device` in WORDS, else
/// `PKMS_DEVICE` / `PKMS_HOME` as for every command). Never fails: no candidates is the answer
/// to anything unexpected. Returns the exit status (0).
pub fn main(args: &[std::ffi::OsString]) -> i32 {
    // `--before`: WORDS stop before the word being completed, which is empty (fish drops an
    // empty word from a command substitution).
    let (args, before) = match args.split_first() {
        Some((first, rest)) if first == "--before" => (rest, true),
        _ => (args, false),
    };
    let args = match args.split_first() {
        Some((first, rest)) if first == "--" => rest,
        _ => args,
    };
    let mut words: Vec<String> = args.iter().map(|a| a.to_string_lossy().into_owned()).collect();
    if before {
        words.push(String::new());
    }
    let Some(wanted) = wanted(&words) else { return 0 };
    let device = device_in(&words).or_else(|| std::env::var("PKMS_DEVICE").ok());
    let Ok((device, home)) = super::select_token(device) else { return 0 };
    let home = home.unwrap_or_else(connect::default_home);
    let Some(token) = connect::pin_name(device.as_ref()) else { return 0 };
    let known = read_cache(&home).tokens.remove(&token).unwrap_or_default();
    let text: String = candidates(wanted, &known).into_iter().map(|c| c + "\n").collect();
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
    0
}

fn candidates(wanted: Wanted, known: &Known) -> Vec<String> {
    match wanted {
        Wanted::Key { aliases } => {
            let mut out: Vec<String> = known.key_ids.iter().cloned().collect();
            if aliases {
                out.extend(known.aliases.iter().cloned());
            }
            out
        }
        Wanted::Alias => known.aliases.iter().cloned().collect(),
    }
}

/// The `--device` value in WORDS, if any.
fn device_in(words: &[String]) -> Option<String> {
    let mut it = words.iter();
    while let Some(w) = it.next() {
        if w == "--device" {
            return it.next().cloned();
        }
        if let Some(v) = w.strip_prefix("--device=") {
            return Some(v.to_owned());
        }
    }
    None
}

/// Which value the last word of WORDS is, if it is a key or alias flag's.
fn wanted(words: &[String]) -> Option<Wanted> {
    let (current, before) = words.split_last()?;
    let flag = match current.strip_prefix("--").and_then(|f| f.split_once('=')) {
        // zsh and fish: `--key-id=PARTIAL` in one word.
        Some((flag, _)) => flag,
        None => {
            // bash splits `--key-id=PARTIAL` into `--key-id`, `=`, `PARTIAL` (or `=` alone).
            let mut earlier = before.iter().rev();
            let mut prev = earlier.next()?;
            if prev == "=" {
                prev = earlier.next()?;
            }
            prev.strip_prefix("--")?
        }
    };
    let subcommands = Cli::command();
    let sub = words.iter().find(|w| subcommands.find_subcommand(w.as_str()).is_some());
    let operation = operation_name(sub.map_or("", String::as_str));
    if KEY_FLAGS.contains(&flag) {
        Some(Wanted::Key { aliases: KeyRef::of(&operation) == KeyRef::Any })
    } else if flag == ALIAS_FLAG && operation != "CreateAlias" {
        Some(Wanted::Alias)
    } else {
        None
    }
}

/// Every long flag the hook completes ([`KEY_FLAGS`] and [`ALIAS_FLAG`]) that some subcommand
/// has.
fn hooked_flags() -> Vec<String> {
    let mut flags = BTreeSet::new();
    let mut stack = vec![Cli::command()];
    while let Some(cmd) = stack.pop() {
        for arg in cmd.get_arguments() {
            if let Some(long) = arg.get_long() {
                if KEY_FLAGS.contains(&long) || long == ALIAS_FLAG {
                    flags.insert(long.to_owned());
                }
            }
        }
        stack.extend(cmd.get_subcommands().cloned());
    }
    flags.into_iter().collect()
}

/// clap's completion script for `shell` with the key and alias hook added (bash, zsh, fish;
/// the other shells get clap's script as it is).
pub fn script(shell: clap_complete::Shell) -> String {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "pkms", &mut out);
    let script = String::from_utf8_lossy(&out).into_owned();
    let flags = hooked_flags();
    match shell {
        clap_complete::Shell::Bash => bash(&script, &flags),
        clap_complete::Shell::Zsh => zsh(&script, &flags),
        clap_complete::Shell::Fish => fish(&script, &flags),
        _ => script,
    }
}

const HOOK_COMMENT: &str =
    "# Key ids and alias names after --key-id, --alias-name, …: from the cache pkms keeps in\n\
# $PKMS_HOME (completion-keys.json, written by list-keys, list-aliases, create-key,\n\
# create-alias, delete-alias); completion never talks to the token.\n";

fn bash(script: &str, flags: &[String]) -> String {
    let cases: Vec<String> = flags.iter().map(|f| format!("--{f}")).collect();
    let hook = format!(
        r#"
{HOOK_COMMENT}_pkms_with_keys() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" flag="${{COMP_WORDS[COMP_CWORD-1]}}"
    if [[ "$cur" == "=" ]]; then
        cur=""
    elif [[ "$flag" == "=" && $COMP_CWORD -ge 2 ]]; then
        flag="${{COMP_WORDS[COMP_CWORD-2]}}"
    fi
    case "$flag" in
        {cases})
            local IFS=$'\n'
            COMPREPLY=($(compgen -W "$("${{COMP_WORDS[0]}}" __complete-keys -- "${{COMP_WORDS[@]:1:COMP_CWORD}}" 2>/dev/null)" -- "$cur"))
            return 0
            ;;
    esac
    _pkms "$@"
}}
"#,
        cases = cases.join("|")
    );
    // Register the wrapper instead of clap's function (same options).
    let registered = script.replace("complete -F _pkms ", "complete -F _pkms_with_keys ");
    match registered.find("\nif [[ \"${BASH_VERSINFO[0]}\"") {
        Some(at) => format!("{}{hook}{}", &registered[..at + 1], &registered[at + 1..]),
        None => format!("{script}{hook}complete -F _pkms_with_keys -o bashdefault -o default pkms\n"),
    }
}

fn zsh(script: &str, flags: &[String]) -> String {
    let mut out = String::with_capacity(script.len() + 1024);
    for line in script.lines() {
        let trimmed = line.trim_start();
        // `'--key-id=[…]:KEY_ID:_default'`, also with exclusions `'(--x)--key-id=[` or
        // repetition `'*--key-id=[` before it (never inside a description's brackets).
        let hooked = trimmed.starts_with('\'')
            && flags
                .iter()
                .any(|f| trimmed.find(&format!("--{f}=[")).is_some_and(|at| !trimmed[..at].contains('[')));
        match line.rfind(":_default'") {
            Some(at) if hooked => {
                out.push_str(&line[..at]);
                out.push_str(":_pkms_key_ids'");
                out.push_str(&line[at + ":_default'".len()..]);
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    let helper = format!(
        "{HOOK_COMMENT}(( $+functions[_pkms_key_ids] )) ||\n_pkms_key_ids() {{\n    local -a candidates\n    \
         candidates=(${{(f)\"$(pkms __complete-keys -- \"${{(@)words[1,CURRENT]}}\" 2>/dev/null)\"}})\n    \
         compadd -a candidates\n}}\n\n"
    );
    match out.find("if [ \"$funcstack[1]\" = \"_pkms\" ]") {
        Some(at) => format!("{}{helper}{}", &out[..at], &out[at..]),
        None => out + &helper,
    }
}

fn fish(script: &str, flags: &[String]) -> String {
    let mut out = String::with_capacity(script.len() + 4096);
    for line in script.lines() {
        out.push_str(line);
        if line.starts_with("complete -c pkms ") && flags.iter().any(|f| line.contains(&format!(" -l {f} ")))
        {
            out.push_str(" -f -a \"(pkms __complete-keys --before -- (commandline -opc))\"");
        }
        out.push('\n');
    }
    format!("{out}{}", HOOK_COMMENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_flag_before_the_word_decides_what_is_offered() {
        assert_eq!(wanted(&w("pkms encrypt --key-id ")), Some(Wanted::Key { aliases: true }));
        assert_eq!(wanted(&w("encrypt --key-id ab")), Some(Wanted::Key { aliases: true }));
        // Key-management commands take key ids only, as in KMS.
        assert_eq!(wanted(&w("pkms enable-key --key-id ")), Some(Wanted::Key { aliases: false }));
        assert_eq!(wanted(&w("pkms create-alias --target-key-id ")), Some(Wanted::Key { aliases: false }));
        assert_eq!(wanted(&w("pkms delete-alias --alias-name al")), Some(Wanted::Alias));
        assert_eq!(wanted(&w("pkms create-alias --alias-name ")), None, "a new name");
        // bash's `--key-id=` split, and zsh's one word.
        assert_eq!(wanted(&w("pkms sign --key-id = ab")), Some(Wanted::Key { aliases: true }));
        assert_eq!(wanted(&w("pkms sign --key-id =")), Some(Wanted::Key { aliases: true }));
        assert_eq!(wanted(&w("pkms sign --key-id=ab")), Some(Wanted::Key { aliases: true }));
        assert_eq!(wanted(&w("pkms sign --message ")), None);
        assert_eq!(wanted(&w("pkms sign")), None);
        assert_eq!(wanted(&[]), None);
        assert_eq!(device_in(&w("pkms --device qemu:/h sign --key-id ")), Some("qemu:/h".to_owned()));
        assert_eq!(device_in(&w("pkms --device=unix:/s sign")), Some("unix:/s".to_owned()));
    }

    #[test]
    fn every_key_flag_is_hooked_in_every_script() {
        let flags = hooked_flags();
        for f in ["key-id", "target-key-id", "destination-key-id", "source-key-id", "alias-name"] {
            assert!(flags.contains(&f.to_owned()), "{f} is a flag of some command");
        }
        let bash = script(clap_complete::Shell::Bash);
        assert!(bash.contains("__complete-keys") && bash.contains("complete -F _pkms_with_keys"), "{bash}");
        assert!(!bash.contains("complete -F _pkms "), "clap's function is wrapped, not registered");
        let zsh = script(clap_complete::Shell::Zsh);
        assert!(zsh.contains("'--key-id=[") && zsh.contains(":_pkms_key_ids'"));
        let unhooked: Vec<&str> = zsh
            .lines()
            .filter(|l| l.starts_with('\'') && l.contains("--key-id=[") && !l.contains("_pkms_key_ids"))
            .collect();
        assert!(unhooked.is_empty(), "{unhooked:?}");
        let fish = script(clap_complete::Shell::Fish);
        let hooked = fish.lines().filter(|l| l.contains("__complete-keys")).count();
        assert!(hooked > 10, "every command's --key-id: {hooked}");
        for s in [&bash, &zsh, &fish] {
            let offered =
                s.lines().filter(|l| l.contains(COMMAND) && !l.contains("__complete-keys --")).count();
            assert_eq!(offered, 0, "the hidden command is not offered");
        }
    }
}
