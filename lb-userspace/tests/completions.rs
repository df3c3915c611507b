//! `lb completions bash` works in a real bash: completing subcommands and
//! their options (zsh and fish scripts are checked for content in the
//! binary's unit tests; neither shell is installed here).

use std::process::Command;

/// What bash completes for the words of `line` (the last one being typed).
fn complete(line: &[&str]) -> Vec<String> {
    let words = line
        .iter()
        .map(|w| format!("'{w}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let cword = line.len() - 1;
    let current = line[cword];
    let previous = line[cword - 1];
    let script = format!(
        "source <('{lb}' completions bash) || exit 1\n\
         COMP_WORDS=({words}); COMP_CWORD={cword}\n\
         _lb lb '{current}' '{previous}'\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        lb = env!("CARGO_BIN_EXE_lb"),
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .output()
        .expect("run bash");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn bash_completes_subcommands() {
    assert_eq!(complete(&["lb", "ch"]), ["check"]);
    assert_eq!(complete(&["lb", "sta"]), ["stats"]);
    let all = complete(&["lb", ""]);
    for name in [
        "check",
        "run",
        "stop",
        "decap",
        "completions",
        "man",
        "schema",
    ] {
        assert!(all.iter().any(|w| w == name), "{name} not in {all:?}");
    }
}

#[test]
fn bash_completes_options_of_a_subcommand() {
    assert_eq!(complete(&["lb", "check", "--j"]), ["--json"]);
    let run = complete(&["lb", "run", "--"]);
    for option in ["--iface", "--config", "--xdp-mode", "--metrics"] {
        assert!(run.iter().any(|w| w == option), "{option} not in {run:?}");
    }
    assert_eq!(complete(&["lb", "completions", "fi"]), ["fish"]);
}
