//! Running host tools (`ip`, `ethtool`, `sysctl`) and checking their exit status.

use std::process::{Command, Output};

use super::error::{LabError, Result};

/// A printable command line.
pub fn describe(cmd: &Command) -> String {
    let mut text = cmd.get_program().to_string_lossy().into_owned();
    for arg in cmd.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs `cmd` to completion and returns its output; non-zero exit is an error.
pub fn run(cmd: &mut Command) -> Result<Output> {
    let command = describe(cmd);
    let output = cmd.output().map_err(|source| LabError::Spawn {
        command: command.clone(),
        source,
    })?;
    if !output.status.success() {
        return Err(LabError::Command {
            command,
            status: output.status,
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(output)
}

/// Runs `program args...` to completion; non-zero exit is an error.
pub fn run_args(program: &str, args: &[&str]) -> Result<Output> {
    run(Command::new(program).args(args))
}

/// Runs `ip args...`.
pub fn ip(args: &[&str]) -> Result<()> {
    run_args("ip", args).map(drop)
}

/// Runs `ip -n NS args...`.
pub fn ip_in(ns: &str, args: &[&str]) -> Result<()> {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    ip(&all)
}

/// Runs `ip netns exec NS program args...`.
pub fn exec_in(ns: &str, program: &str, args: &[&str]) -> Result<Output> {
    run(Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args))
}

/// Sets sysctls inside a namespace (`key=value` pairs) with one `sysctl` call.
pub fn sysctl_in(ns: &str, settings: &[String]) -> Result<()> {
    let mut args = vec!["-q", "-w"];
    args.extend(settings.iter().map(String::as_str));
    exec_in(ns, "sysctl", &args).map(drop)
}
