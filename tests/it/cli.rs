//! The command line as a whole: `plan --format markdown`, completions and
//! man pages, `--help` examples on every subcommand, CLI > env > file
//! precedence, and quiet / verbose / NO_COLOR output.

use crate::util::*;

const SUBCOMMANDS: &[&str] = &[
    "publish",
    "plan",
    "serve",
    "releases",
    "rollback",
    "gc",
    "migrate",
    "unlock",
    "doctor",
    "completions",
    "man",
];

fn site() -> Site {
    Site::new(&[
        (
            "index.html",
            b"<!doctype html><link rel=stylesheet href=app.css><p>hi</p>",
        ),
        ("docs/a|b.html", b"<!doctype html><p>pipe</p>"),
        ("app.css", b"body{color:red}"),
    ])
}

#[test]
fn plan_as_markdown_for_a_pull_request() {
    let s = site();
    let (_t, target) = tmp_target();
    let dir = path_str(s.path());
    let to = path_str(&target);
    let md = cdnsync(&["plan", &dir, "--to", &to, "--format", "markdown"]).ok_json_or_text();
    assert!(md.starts_with("### cdnsync plan\n"), "{md}");
    // Two pages, the renamed stylesheet and its original URL.
    assert!(md.contains("| To upload | **4**"), "{md}");
    assert!(md.contains("| Change | Path | Size | Why |"), "{md}");
    // Entry pages first, the renamed asset with its source, a `|` escaped.
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| switch") || l.starts_with("| upload"))
        .collect();
    assert_eq!(rows.len(), 3, "{md}");
    assert!(
        md.lines()
            .any(|l| l.starts_with("| copy | <code>app.css</code> ← <code>app.")),
        "{md}"
    );
    assert!(
        rows[0].starts_with("| switch | <code>docs/a&#124;b.html</code>"),
        "{md}"
    );
    assert!(
        rows[2].starts_with("| upload | <code>app.") && rows[2].contains("← <code>app.css</code>"),
        "{md}"
    );
    // Every table row has the same number of cells.
    for l in md.lines().filter(|l| {
        ["| switch ", "| upload ", "| delete ", "| copy "]
            .iter()
            .any(|p| l.starts_with(p))
    }) {
        assert_eq!(l.matches(" | ").count(), 3, "{l}");
    }
    // Nothing was written.
    assert!(!target.join("index.html").exists());

    // After publishing: "no changes".
    cdnsync(&["publish", &dir, "--to", &to]).ok_json_or_text();
    let md = cdnsync(&["plan", &dir, "--to", &to, "--format", "markdown"]).ok_json_or_text();
    assert!(md.starts_with("### cdnsync plan: no changes"), "{md}");

    let e = cdnsync(&["plan", &dir, "--to", &to, "--format", "markdown", "--json"]).fails(2);
    assert!(e.contains("--json and --format"), "{e}");
    // --format json is --json.
    let j = cdnsync(&["plan", &dir, "--to", &to, "--format", "json"]).ok_json();
    assert_eq!(j["noop"], true);
}

#[test]
fn completions_for_every_shell_and_man_pages() {
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef cdnsync"),
        ("fish", "complete -c cdnsync"),
        ("elvish", "edit:completion:arg-completer[cdnsync]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let out = cdnsync(&["completions", shell]).ok_json_or_text();
        assert!(out.contains(marker), "{shell}: {out:.300}");
        for sub in ["publish", "doctor", "rollback"] {
            assert!(out.contains(sub), "{shell} lacks {sub}");
        }
        assert!(out.contains("distribution-id"), "{shell} lacks flags");
    }
    // bash can load what it generates.
    let bash = cdnsync(&["completions", "bash"]).ok_json_or_text();
    let st = std::process::Command::new("bash")
        .args(["-c", &format!("{bash}\ncomplete -p cdnsync")])
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );

    let man = cdnsync(&["man"]).ok_json_or_text();
    assert!(
        man.starts_with(".ie") || man.contains(".TH cdnsync 1"),
        "{man:.300}"
    );
    assert!(man.contains("publish"));
    let dir = tempfile::tempdir().unwrap();
    let d = path_str(dir.path());
    cdnsync(&["man", "--dir", &d]).ok_json_or_text();
    for sub in SUBCOMMANDS {
        let page = std::fs::read_to_string(dir.path().join(format!("cdnsync-{sub}.1")))
            .unwrap_or_else(|e| panic!("cdnsync-{sub}.1: {e}"));
        assert!(
            page.contains(&format!(".TH cdnsync-{sub} 1")),
            "{sub}: {page:.200}"
        );
    }
    assert!(dir.path().join("cdnsync.1").exists());
}

#[test]
fn every_subcommand_has_help_with_examples() {
    for sub in SUBCOMMANDS {
        let out = cdnsync(&[sub, "--help"]).ok_json_or_text();
        assert!(
            out.contains("Examples:"),
            "{sub} --help has no examples:\n{out}"
        );
        assert!(out.contains(&format!("cdnsync {sub}")), "{sub}: {out}");
    }
    let top = cdnsync(&["--help"]).ok_json_or_text();
    assert!(top.contains("Examples:"));
    for sub in SUBCOMMANDS {
        assert!(top.contains(sub), "top-level help lacks {sub}");
    }
}

/// The hash length of the fingerprinted stylesheet in a plan.
fn css_hash_len(plan: &serde_json::Value) -> usize {
    let key = plan["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .find(|k| k.starts_with("app.") && k.ends_with(".css"))
        .unwrap()
        .to_string();
    key.split('.').nth(1).unwrap().len()
}

#[test]
fn command_line_beats_environment_beats_config_file() {
    let s = site();
    let dir = path_str(s.path());
    let (_a, file_target) = tmp_target();
    let (_b, env_target) = tmp_target();
    let (_c, cli_target) = tmp_target();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("cdnsync.toml");
    std::fs::write(
        &cfg,
        format!("to = \"{}\"\nhash_length = 10\n", path_str(&file_target)),
    )
    .unwrap();
    let c = path_str(&cfg);

    // File only.
    let j = cdnsync(&["plan", &dir, "--config", &c, "--json"]).ok_json();
    assert_eq!(css_hash_len(&j), 10);
    assert_eq!(j["target"], path_str(&file_target));
    // Environment over file.
    let j = cdnsync(&["plan", &dir, "--config", &c, "--json"])
        .env("CDNSYNC_HASH_LENGTH", "14")
        .env("CDNSYNC_TO", &path_str(&env_target))
        .ok_json();
    assert_eq!(css_hash_len(&j), 14);
    assert_eq!(j["target"], path_str(&env_target));
    // Command line over both.
    let j = cdnsync(&[
        "plan",
        &dir,
        "--config",
        &c,
        "--json",
        "--hash-length",
        "16",
        "--to",
        &path_str(&cli_target),
    ])
    .env("CDNSYNC_HASH_LENGTH", "14")
    .env("CDNSYNC_TO", &path_str(&env_target))
    .ok_json();
    assert_eq!(css_hash_len(&j), 16);
    assert_eq!(j["target"], path_str(&cli_target));
    // The config file itself can come from the environment.
    let j = cdnsync(&["plan", &dir, "--json"])
        .env("CDNSYNC_CONFIG", &c)
        .ok_json();
    assert_eq!(css_hash_len(&j), 10);
    // Defaults without any of them.
    let j = cdnsync(&["plan", &dir, "--to", &path_str(&cli_target), "--json"]).ok_json();
    assert_eq!(css_hash_len(&j), 12);
}

#[test]
fn quiet_verbose_and_no_color() {
    let s = site();
    let (_t, target) = tmp_target();
    let dir = path_str(s.path());
    let to = path_str(&target);
    let r = cdnsync(&["publish", &dir, "--to", &to, "--quiet"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "", "--quiet prints nothing on success");
    assert_eq!(r.stderr, "");

    // -v: debug logs on stderr, no colour escapes (NO_COLOR is set by the harness; not a TTY).
    s.write("index.html", b"<!doctype html><p>v2</p>");
    let r = cdnsync(&["publish", &dir, "--to", &to, "-v"]).run();
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("DEBUG") || r.stderr.contains("INFO"),
        "{}",
        r.stderr
    );
    assert!(
        !r.stderr.contains('\u{1b}') && !r.stdout.contains('\u{1b}'),
        "colour escapes in output"
    );
    assert!(r.stdout.contains("Published to"), "{}", r.stdout);

    // RUST_LOG overrides -v / the default.
    let r = cdnsync(&["plan", &dir, "--to", &to])
        .env("RUST_LOG", "cdnsync=trace")
        .run();
    assert_eq!(r.code, 0);
    assert!(
        r.stderr.contains("TRACE") || r.stderr.contains("DEBUG") || r.stderr.contains("INFO"),
        "{}",
        r.stderr
    );

    // Not on a terminal: no progress bar escapes even without NO_COLOR.
    let mut c = cdnsync(&["publish", &dir, "--to", &to]);
    c.cmd.env_remove("NO_COLOR");
    let r = c.run();
    assert_eq!(r.code, 0);
    assert!(!r.stderr.contains('\u{1b}') && !r.stdout.contains('\u{1b}'));
}

/// Issue 17: target settings are resolved in one place. A typo in `sse`
/// used to stop `publish` while `releases`, `rollback`, `gc`, `unlock` and
/// `doctor` carried on with AES256; now every command refuses it, naming the
/// file, and nothing is written.
#[test]
fn an_unknown_sse_in_the_file_stops_every_command() {
    let site = sample_site();
    let (_t, out) = tmp_target();
    let to = path_str(&out);
    let dir = path_str(site.path());
    cdnsync(&publish_args(&dir, &to)).ok_json();
    cdnsync(&publish_args(&dir, &to)).ok_json();
    let before = std::fs::read_dir(&out).unwrap().count();
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("site.toml");
    std::fs::write(&cfg, "sse = \"aes265\"\n").unwrap();
    let cfg = path_str(&cfg);
    let src = tempfile::tempdir().unwrap();
    let src = path_str(src.path());
    for argv in [
        vec!["publish", &dir],
        vec!["plan", &dir],
        vec!["releases"],
        vec!["rollback"],
        vec!["gc"],
        vec!["unlock", "--force"],
        vec!["doctor"],
        vec!["migrate", &src],
    ] {
        let mut args = argv.clone();
        args.extend(["--to", &to, "--config", &cfg]);
        let err = cdnsync(&args).fails(2);
        assert!(
            err.contains("site.toml:1:7") && err.contains("`aes265` is not one of"),
            "{argv:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), before);
}
