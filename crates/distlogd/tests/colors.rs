//! `--color auto` (the default) decides as other CLI tools do, through anstream:
//! `CLICOLOR_FORCE` colors even a pipe, `NO_COLOR` never colors; `--color always` and
//! `--color never` win over both.

mod collector_support;

use collector_support::*;

/// The first pretty line `distlogd` writes for one record, run with `args` and `env`.
fn pretty_line(args: &[&str], env: &[(&str, &str)]) -> String {
    let mut all = vec!["--output", "pretty", "--stats-interval", "0"];
    all.extend_from_slice(args);
    let mut d = Daemon::start_with_env(&all, env);
    let mut push = Pusher::connect(&d.pull);
    let mut r = simple("shop.orders", "paid");
    r.insert("levelno", 40);
    r.insert("levelname", "ERROR");
    push.send(&[b"TLJ", &json_body(&r)]);
    let line = d.line().expect("a pretty line");
    assert!(d.terminate().success(), "{}", d.stderr());
    assert!(line.contains("ERROR"), "{line:?}");
    line
}

fn colored(line: &str) -> bool {
    line.contains("\x1b[")
}

#[test]
fn auto_on_a_pipe_is_plain() {
    let line = pretty_line(&[], &[]);
    assert!(!colored(&line), "{line:?}");
}

#[test]
fn clicolor_force_colors_a_pipe() {
    let line = pretty_line(&["--color", "auto"], &[("CLICOLOR_FORCE", "1")]);
    assert!(line.contains("\x1b[31mERROR\x1b[0m"), "{line:?}");
}

#[test]
fn no_color_wins_over_clicolor_force() {
    let env = [("NO_COLOR", "1"), ("CLICOLOR_FORCE", "1")];
    let line = pretty_line(&["--color", "auto"], &env);
    assert!(!colored(&line), "{line:?}");
}

#[test]
fn always_and_never_win_over_the_environment() {
    let line = pretty_line(&["--color", "always"], &[("NO_COLOR", "1")]);
    assert!(colored(&line), "{line:?}");
    let line = pretty_line(&["--color", "never"], &[("CLICOLOR_FORCE", "1")]);
    assert!(!colored(&line), "{line:?}");
}
