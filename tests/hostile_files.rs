//! Files signpost reads that someone else may have written: zone files that include what
//! they should not (a secret, themselves), state with a partial audit line or a drain from
//! the far future, config names an API path cannot carry. Each is refused or repaired with
//! a clear message, never echoed, never a crash.

mod common;

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::{Setup, Signpost, two_sites};
use hickory_proto::rr::RecordType;

const EX_CONFIG: i32 = 64;

/// A line no output of signpost may ever contain: it is only in files outside zones.dir.
const MARKER: &str = "SECRETMARKER-3f9c1b";

/// Sets an address-space limit of `bytes` on `cmd` (as `prlimit --as`).
fn limit_address_space(cmd: &mut Command, bytes: u64) {
    // SAFETY: setrlimit(2) is async-signal-safe; nothing else runs between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            let lim = libc::rlimit {
                rlim_cur: bytes,
                rlim_max: bytes,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// Sets an address-space limit of `bytes` on the running process `pid`.
fn limit_running(pid: u32, bytes: u64) {
    let lim = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: bytes,
    };
    // SAFETY: prlimit(2) on our own child, with a valid new limit and no old one asked.
    let r = unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_AS,
            &lim,
            std::ptr::null_mut(),
        )
    };
    assert_eq!(r, 0, "prlimit: {}", std::io::Error::last_os_error());
}

const TWO_GB: u64 = 2 << 30;

/// A config in `dir` serving `zones/gslb.example.zone` (`zone`), with the profiles of
/// [`two_sites`] and `extra`.
fn write_check_setup(dir: &Path, zone: &str, extra: &str) {
    std::fs::create_dir_all(dir.join("zones")).unwrap();
    std::fs::write(dir.join("zones/gslb.example.zone"), zone).unwrap();
    let setup = Setup::gslb(&format!("{}{extra}", two_sites(30)));
    std::fs::write(
        dir.join("signpost.toml"),
        setup.config_text(common::free_port(), common::free_tcp_port()),
    )
    .unwrap();
}

/// `signpost check` in `dir`, under a 2 GB address-space limit.
fn check(dir: &Path) -> common::Ran {
    let mut cmd = common::command(dir, &["check", "--config", "signpost.toml"]);
    limit_address_space(&mut cmd, TWO_GB);
    common::run(cmd)
}

/// Runs `check` on the zone with `$INCLUDE inc` appended: it must fail; its output.
fn check_include_fails(dir: &Path, inc: &str) -> String {
    std::fs::write(
        dir.join("zones/gslb.example.zone"),
        format!("{}$INCLUDE {inc}\n", common::GSLB_ZONE),
    )
    .unwrap();
    let ran = check(dir);
    let out = ran.text();
    assert_eq!(ran.code, Some(EX_CONFIG), "{inc}: {out}");
    out
}

/// A secret outside zones.dir, in the shape of the files an attacker would want
/// (`/etc/shadow`, the admin token): it must not be read, and never shown.
fn write_secret(dir: &Path) -> std::path::PathBuf {
    let secret = dir.join("secret.txt");
    std::fs::write(
        &secret,
        format!("root:$6${MARKER}:19000:0:99999:7:::\n{MARKER} A 192.0.2.66\n{MARKER}\n"),
    )
    .unwrap();
    secret
}

/// The ways to name the secret from a zone file: by absolute path, by `..`, and through a
/// symlink inside zones.dir.
fn includes_of(dir: &Path, secret: &Path) -> Vec<String> {
    std::os::unix::fs::symlink(secret, dir.join("zones/inner.db")).unwrap();
    vec![
        secret.display().to_string(),
        "../secret.txt".to_owned(),
        "inner.db".to_owned(),
    ]
}

#[test]
fn check_refuses_an_include_outside_the_zones_dir_without_echoing_it() {
    let dir = tempfile::tempdir().unwrap();
    let secret = write_secret(dir.path());
    write_check_setup(dir.path(), common::GSLB_ZONE, "");
    for inc in includes_of(dir.path(), &secret) {
        let out = check_include_fails(dir.path(), &inc);
        assert!(
            out.contains(&format!(
                "zones/gslb.example.zone: line 6: $INCLUDE {inc}: only files below zones.dir"
            )),
            "{inc}: {out}"
        );
        assert!(!out.contains(MARKER), "{inc}: {out}");
    }
    // A file inside zones.dir with bad lines: reported by file and line, never quoted.
    std::fs::write(
        dir.path().join("zones/inc.db"),
        format!("{MARKER} A 192.0.2.1\nx A {MARKER}\nroot:$6${MARKER}:19000\n"),
    )
    .unwrap();
    let out = check_include_fails(dir.path(), "inc.db");
    assert!(
        out.contains("zones/inc.db: line 2: bad A record data"),
        "{out}"
    );
    assert!(out.contains("zones/inc.db: line 3: "), "{out}");
    assert!(!out.contains(MARKER), "{out}");
}

/// The attack's include loop: a 146-byte file that includes itself 8 times (8⁸ files if
/// followed). `check` fails at once, with one clear message, in well under 2 GB.
#[test]
fn check_fails_fast_on_an_include_loop_under_a_2gb_limit() {
    let dir = tempfile::tempdir().unwrap();
    let body = "$INCLUDE loop.inc\n".repeat(8) + ";\n";
    assert_eq!(body.len(), 146);
    write_check_setup(
        dir.path(),
        &format!("{}$INCLUDE loop.inc\n", common::GSLB_ZONE),
        "",
    );
    std::fs::write(dir.path().join("zones/loop.inc"), body).unwrap();
    let t0 = std::time::Instant::now();
    let ran = check(dir.path());
    let took = t0.elapsed();
    let out = ran.text();
    assert!(took < Duration::from_secs(20), "{took:?}: {out}");
    assert_eq!(ran.code, Some(EX_CONFIG), "{out}");
    assert!(
        out.contains("zones/loop.inc: line 1: $INCLUDE: the file includes itself"),
        "{out}"
    );
    assert!(out.contains("signpost.toml: 1 error(s)"), "{out}");
}

/// A server whose SIGHUP handler is in place (a reload through the API is answered by the
/// task that handles SIGHUP: once it is, the handler is installed).
fn start_for_reloads() -> Signpost {
    let sp = Signpost::start(&Setup::gslb(&two_sites(30)));
    let r = sp.api("POST", "/api/v1/reload", "", true);
    assert_eq!(r.status, 200, "{}", r.body);
    sp
}

/// Rewrites the served zone to include `inc`, sends SIGHUP and waits (bounded) for the
/// reload to be rejected (the `n`th rejection since start, from 0): the server is still
/// running, the log says `why`, and DNS still answers from the old config.
fn reload_into(sp: &mut Signpost, inc: &str, why: &str, n: usize) {
    let zone = sp.dir.path().join("zones/gslb.example.zone");
    std::fs::write(&zone, format!("{}$INCLUDE {inc}\n", common::GSLB_ZONE)).unwrap();
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(sp.pid() as libc::pid_t, libc::SIGHUP) };
    let rejected = common::poll(Duration::from_secs(20), || {
        sp.log().matches("reload rejected").count() > n
    });
    sp.assert_running();
    assert!(
        rejected.is_some(),
        "{inc}: no rejected reload:\n{}",
        sp.log()
    );
    assert!(sp.log().contains(why), "{inc}:\n{}", sp.log());
    // Still the old config: the profile answers.
    let q = common::query("app.gslb.example.", RecordType::A);
    let a = hickory_proto::op::Message::from_vec(&sp.udp(&q.to_vec().unwrap())).unwrap();
    assert_eq!(common::a_records(&a).len(), 1, "{inc}: {a}");
    sp.assert_answers("gslb.example.");
}

/// The include tricks reach a running server by a SIGHUP reload: it refuses them, keeps
/// serving the old config, and no output (status API, page, log, audit log) carries the
/// secret.
#[test]
fn a_reload_into_an_include_outside_the_zones_dir_shows_nothing_of_it() {
    let mut sp = start_for_reloads();
    let dir = sp.dir.path().to_owned();
    let secret = write_secret(&dir);
    for (n, inc) in includes_of(&dir, &secret).iter().enumerate() {
        reload_into(&mut sp, inc, "only files below zones.dir", n);
    }
    let status = sp.api("GET", "/api/v1/status", "", true);
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["generation"], 2, "{}", status.body);
    for (what, text) in [
        ("status", status.body),
        (
            "status (no token)",
            sp.api("GET", "/api/v1/status", "", false).body,
        ),
        ("page", sp.api("GET", "/", "", false).body),
        ("log", sp.log()),
        (
            "audit log",
            std::fs::read_to_string(dir.join("state/audit.log")).unwrap_or_default(),
        ),
    ] {
        assert!(!text.contains(MARKER), "{what}: {text}");
    }
}

/// A running server reloaded (SIGHUP) into the include loop, under a 2 GB address-space
/// limit, rejects the reload at once and keeps serving the old config.
#[test]
fn a_running_server_survives_a_reload_into_an_include_loop() {
    let mut sp = start_for_reloads();
    std::fs::write(
        sp.dir.path().join("zones/loop.inc"),
        "$INCLUDE loop.inc\n".repeat(8) + ";\n",
    )
    .unwrap();
    limit_running(sp.pid(), TWO_GB);
    let t0 = std::time::Instant::now();
    reload_into(&mut sp, "loop.inc", "the file includes itself", 0);
    assert!(t0.elapsed() < Duration::from_secs(20));
    let status = sp.api("GET", "/api/v1/status", "", true);
    assert_eq!(status.status, 200);
    assert_eq!(status.json()["generation"], 2, "{}", status.body);
}

/// An audit log that ends with a partial line (a write cut short by a crash or a full
/// disk) is cut back to its last whole line at start, with a warning; the next record is
/// a line of its own.
#[test]
fn a_partial_audit_line_is_cut_off_at_start() {
    let mut sp = Signpost::start(&Setup::gslb(&two_sites(30)));
    assert_eq!(
        sp.api("POST", "/api/v1/sites/hub-a/drain", "{}", true)
            .status,
        200
    );
    let audit = sp.dir.path().join("state/audit.log");
    let whole = std::fs::read_to_string(&audit).unwrap();
    assert!(whole.ends_with('\n'), "{whole}");
    sp.terminate(Duration::from_secs(10));
    let partial = "{\"time\":\"2026-11-29T10:00:00Z\",\"caller\":\"127.0.0.1:1\",\"act";
    std::fs::write(&audit, format!("{whole}{partial}")).unwrap();
    sp.restart();
    assert!(
        sp.log().contains("the audit log ended with a partial line"),
        "{}",
        sp.log()
    );
    assert_eq!(std::fs::read_to_string(&audit).unwrap(), whole);
    assert_eq!(
        sp.api("POST", "/api/v1/sites/hub-a/undrain", "{}", true)
            .status,
        200
    );
    let text = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}\n{text}")))
        .collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(lines[1]["action"], "undrain", "{text}");
}

/// When the disk takes only part of an audit line (here: a file size limit, as a full
/// disk would), the part is cut off again: the log stays whole lines.
#[test]
fn an_audit_line_is_written_whole_or_not_at_all() {
    const LIMIT: u64 = 1 << 20;
    let dir = tempfile::tempdir().unwrap();
    let setup = Setup::gslb(&two_sites(30));
    std::fs::create_dir_all(dir.path().join("zones")).unwrap();
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(
        dir.path().join("zones/gslb.example.zone"),
        common::GSLB_ZONE,
    )
    .unwrap();
    let (port, admin) = (common::free_port(), common::free_tcp_port());
    std::fs::write(
        dir.path().join("signpost.toml"),
        setup.config_text(port, admin),
    )
    .unwrap();
    // Whole lines up to 40 bytes below the limit: the next line fits only in part.
    let pad = "{\"pad\":\"".to_owned() + &"x".repeat(990) + "\"}\n";
    let mut filler = pad.repeat((LIMIT as usize - 40) / pad.len());
    filler.push_str("{\"p\":\"");
    let short = LIMIT as usize - 40 - filler.len() - 3;
    filler.push_str(&"y".repeat(short));
    filler.push_str("\"}\n");
    assert_eq!(filler.len() as u64, LIMIT - 40);
    let audit = dir.path().join("state/audit.log");
    std::fs::write(&audit, &filler).unwrap();

    let log = std::fs::File::create(dir.path().join("signpost.log")).unwrap();
    let mut cmd = common::command(dir.path(), &["serve", "--config", "signpost.toml"]);
    cmd.stdout(log.try_clone().unwrap()).stderr(log);
    // SAFETY: setrlimit(2) and signal(2) are async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // A write past the limit fails with EFBIG instead of killing the process.
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let mut child = cmd.spawn().unwrap();
    struct Kill<'a>(&'a mut std::process::Child);
    impl Drop for Kill<'_> {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let child = Kill(&mut child);
    let admin = std::net::SocketAddr::from(([127, 0, 0, 1], admin));
    let up = common::poll(Duration::from_secs(30), || {
        common::http::request(admin, "GET", "/healthz", &[], "").is_ok_and(|r| r.status == 200)
    });
    let server_log = || std::fs::read_to_string(dir.path().join("signpost.log")).unwrap();
    assert!(up.is_some(), "not up:\n{}", server_log());
    // The drain itself fits (drains.json is small); its audit line does not.
    let drain = common::http::request(
        admin,
        "POST",
        "/api/v1/sites/hub-a/drain",
        &[("Content-Type", "application/json")],
        "{\"reason\":\"disk full\"}",
    )
    .unwrap();
    assert_eq!(drain.status, 200, "{}", drain.body);
    let wrote = common::poll(Duration::from_secs(10), || {
        server_log().contains("cannot write the audit log")
    });
    assert!(wrote.is_some(), "{}", server_log());
    let text = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(
        text.len(),
        filler.len(),
        "{}",
        &text[filler.len().min(text.len())..]
    );
    assert!(text.ends_with('\n'));
    drop(child);
}

/// Drains whose start is far in the future (a bad clock, a hand-edited file): the server
/// starts with a warning, the drain starts now, and the status API and page work.
#[test]
fn a_far_future_drain_start_is_taken_as_now() {
    let mut sp = Signpost::start(&Setup::gslb(&two_sites(30)));
    let state = sp.dir.path().join("state");
    for (i, since) in [u64::MAX, i64::MAX as u64, 1_000_000_000_000_000]
        .into_iter()
        .enumerate()
    {
        sp.terminate(Duration::from_secs(10));
        std::fs::create_dir_all(&state).unwrap();
        std::fs::write(
            state.join("drains.json"),
            format!(
                r#"{{"sites": {{"hub-a": {{"reason": "future", "since_ms": {since}, "ramp_ms": 0}}}},
                    "endpoints": {{"app.gslb.example/app-b": {{"reason": "ramp", "since_ms": {since}, "ramp_ms": {}}}}}}}"#,
                u64::MAX
            ),
        )
        .unwrap();
        sp.restart();
        let status = sp.api("GET", "/api/v1/status", "", false);
        assert_eq!(status.status, 200, "{since}: {}", status.body);
        let log = sp.log();
        // Each start warns twice: the site's drain and the endpoint's.
        assert_eq!(
            log.matches("the drain of site hub-a: its start").count(),
            i + 1,
            "{since}: {log}"
        );
        assert_eq!(
            log.matches("taken as 7 days").count(),
            i + 1,
            "{since}: {log}"
        );
        let v = status.json();
        assert_eq!(v["drains_active"], 2, "{since}: {v}");
        let site = v["sites"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["name"] == "hub-a")
            .unwrap()
            .clone();
        let since_text = site["drain"]["since"].as_str().unwrap().to_owned();
        assert!(since_text.starts_with("20"), "{since}: {site}");
        let page = sp.api("GET", "/", "", false);
        assert_eq!(page.status, 200, "{since}");
        let cli = sp.cli(&["status"]);
        assert_eq!(cli.code, Some(0), "{since}: {}", cli.text());
        // hub-a drained; app-b ramps down from now over 7 days: both still answer as
        // Online weights say, hub-a's app-a is not served.
        let q = common::query("app.gslb.example.", RecordType::A);
        let a = hickory_proto::op::Message::from_vec(&sp.udp(&q.to_vec().unwrap())).unwrap();
        assert_eq!(
            common::a_records(&a),
            vec![std::net::Ipv4Addr::new(192, 0, 2, 2)],
            "{since}: {a}"
        );
        sp.assert_running();
    }
}

/// A name the API path or a metric label cannot carry is refused by `check`, which names
/// the character, the file, the key and a name that would do.
#[test]
fn check_refuses_names_that_paths_cannot_carry() {
    let dir = tempfile::tempdir().unwrap();
    write_check_setup(
        dir.path(),
        common::GSLB_ZONE,
        "\n[[sites]]\nname = \"hub/c\"\n\
         [profiles.\"web.gslb.example\"]\n\
         [[profiles.\"web.gslb.example\".endpoints]]\nname = \"eu west/1\"\naddress = \"192.0.2.9\"\n",
    );
    let ran = check(dir.path());
    let out = ran.text();
    assert_eq!(ran.code, Some(EX_CONFIG), "{out}");
    assert!(
        out.contains(
            "signpost.toml: sites[2].name: \"hub/c\" has '/', which a site name cannot hold: use 1 to 64 letters, digits, '.', '_' or '-' (names go into API paths and metric labels); e.g. \"hub-c\""
        ),
        "{out}"
    );
    assert!(
        out.contains("signpost.toml: profiles.\"web.gslb.example\".endpoints[0].name: \"eu west/1\" has ' ', which an endpoint name cannot hold"),
        "{out}"
    );
    assert!(out.contains("signpost.toml: 2 error(s)"), "{out}");
}
