//! Signals that arrive while the server is still starting (issue 15, finding 7): a large
//! zone keeps it loading for a while, and SIGHUP (reload) or SIGTERM (stop) sent then
//! must neither kill it nor be lost.

mod common;

use std::fmt::Write as _;
use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

/// A zone of `n` A records: large enough that loading it takes a noticeable time.
fn big_zone(n: usize) -> String {
    let mut z = String::from(common::GSLB_ZONE);
    for i in 0..n {
        let _ = writeln!(
            z,
            "h{i} IN A 10.{}.{}.{}",
            i >> 16 & 255,
            i >> 8 & 255,
            i & 255
        );
    }
    z
}

/// A server on free loopback ports serving [`big_zone`], started but not waited for.
struct Starting {
    child: Child,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Starting {
    fn spawn(records: usize) -> Starting {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("zones")).unwrap();
        fs::write(
            dir.path().join("zones/gslb.example.zone"),
            big_zone(records),
        )
        .unwrap();
        let port = common::free_port();
        let admin = common::free_tcp_port();
        let config = common::Setup::gslb("").config_text(port, admin);
        fs::write(dir.path().join("signpost.toml"), config).unwrap();
        let log = fs::File::create(dir.path().join("signpost.log")).unwrap();
        let child = common::command(dir.path(), &["serve", "--config", "signpost.toml"])
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Starting {
            child,
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            dir,
        }
    }

    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("signpost.log")).unwrap_or_default()
    }

    fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill(2) on our own child's pid has no memory effects.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0);
    }

    fn answers(&self) -> bool {
        let wire = common::query("gslb.example.", RecordType::SOA)
            .to_vec()
            .unwrap();
        common::udp_exchange(self.addr, &wire, Duration::from_millis(100)).is_ok()
    }

    /// Sends `sig` every 50 ms until the server answers (bounded); how many were sent.
    /// Panics (with the log) when the process exits meanwhile.
    fn signal_until_serving(&mut self, sig: libc::c_int) -> usize {
        // The process is past exec (spawn returned), and a moment later in main.
        std::thread::sleep(Duration::from_millis(100));
        let deadline = Instant::now() + Duration::from_secs(90);
        let mut sent = 0;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "signpost exited ({status}) after {sent} signal(s) {sig} during its start:\n{}",
                    self.log()
                );
            }
            if self.answers() {
                return sent;
            }
            assert!(
                Instant::now() < deadline,
                "not serving after 90 s:\n{}",
                self.log()
            );
            self.signal(sig);
            sent += 1;
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(s) = self.child.try_wait().unwrap() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Starting {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Records enough for a start of about a second or more in a debug build.
const RECORDS: usize = 30_000;

/// SIGHUP while the zone loads: the server lives, serves, and reloads once it can.
#[test]
fn sighup_during_start_does_not_kill_the_server() {
    let mut s = Starting::spawn(RECORDS);
    let t0 = Instant::now();
    let sent = s.signal_until_serving(libc::SIGHUP);
    eprintln!("{sent} SIGHUPs during a start of {:?}", t0.elapsed());
    assert!(
        sent >= 3,
        "the start was too fast to test: only {sent} SIGHUP(s) before the first answer"
    );
    // The SIGHUPs held back during the start become one reload.
    let reloaded = common::poll(Duration::from_secs(60), || s.log().contains("reloaded"));
    assert!(
        reloaded.is_some(),
        "no reload after the start:\n{}",
        s.log()
    );
    assert!(s.child.try_wait().unwrap().is_none(), "{}", s.log());
    assert!(s.answers(), "not serving after the reload:\n{}", s.log());
    s.signal(libc::SIGTERM);
    let status = s.wait(Duration::from_secs(10)).expect("exit on SIGTERM");
    assert!(status.success(), "{status}:\n{}", s.log());
}

/// SIGTERM while the zone loads is not lost: the server stops cleanly (exit status 0) once
/// the start is done, without serving on.
#[test]
fn sigterm_during_start_stops_the_server_cleanly() {
    let mut s = Starting::spawn(RECORDS);
    std::thread::sleep(Duration::from_millis(200));
    assert!(!s.answers(), "the start was too fast to test");
    s.signal(libc::SIGTERM);
    let status = s
        .wait(Duration::from_secs(90))
        .unwrap_or_else(|| panic!("still running 90 s after SIGTERM:\n{}", s.log()));
    assert!(
        status.success(),
        "SIGTERM during the start: {status}:\n{}",
        s.log()
    );
}
