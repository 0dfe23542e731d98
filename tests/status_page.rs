//! Issue 5, acceptance 7: the status page in headless Chromium (Debian's `chromium` and
//! `chromium-driver`, through chromedriver): it shows the endpoints and sites, a drain
//! button asks for the token and drains the site, the page shows the change, and it
//! refreshes itself. Saves `target/status-page.png`. Needs `--features interop`.

mod common;
mod webdriver;

use std::time::Duration;

use common::{GSLB_ZONE, Setup, Signpost, poll, two_sites};
use webdriver::Browser;

const TOKEN: &str = "page-test-token";

/// The status cell and the drain cell of endpoint `endpoint` of `profile`, as shown.
fn row(b: &Browser, profile: &str, endpoint: &str) -> Result<(String, String, String), String> {
    let at = format!("table[data-profile='{profile}'] tr[data-endpoint='{endpoint}']");
    let st = b.find(&format!("{at} span.st"))?;
    let class = b.attribute(&st, "class")?.unwrap_or_default();
    let drain = b.find(&format!("{at} td.drain"))?;
    Ok((b.text(&st)?, class, b.text(&drain)?))
}

/// Polls (up to `limit`) until endpoint `endpoint` of `profile` shows `status` with a
/// drain cell containing `drain`; errors while the page reloads count as not yet.
fn wait_row(
    b: &Browser,
    profile: &str,
    endpoint: &str,
    status: &str,
    drain: &str,
    limit: Duration,
) {
    let mut last = Err(String::new());
    let ok = poll(limit, || {
        last = row(b, profile, endpoint);
        matches!(&last, Ok((s, _, d)) if s == status && d.contains(drain))
    });
    assert!(
        ok.is_some(),
        "{profile}/{endpoint} not {status} with drain {drain:?} within {limit:?}: {last:?}"
    );
}

fn screenshot(b: &Browser) {
    let png = b.screenshot().unwrap();
    assert_eq!(&png[1..4], b"PNG", "not a PNG");
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

#[test]
fn the_status_page_drains_a_site_with_the_token_and_refreshes_itself() {
    let sp = Signpost::start(
        &Setup::new(&[("gslb.example.zone", GSLB_ZONE)])
            .token(TOKEN)
            .extra(&two_sites(30)),
    );
    let b = Browser::start().unwrap();
    let url = format!("http://{}/", sp.admin);
    b.goto(&url).unwrap();

    let text = b.body_text().unwrap();
    for want in [
        "app.gslb.example.",
        "api.gslb.example.",
        "app-a",
        "app-b",
        "api-a",
        "api-b",
        "hub-a",
        "hub-b",
        "192.0.2.11",
    ] {
        assert!(text.contains(want), "{want} not on the page:\n{text}");
    }
    let (status, class, drain) = row(&b, "app.gslb.example", "app-a").unwrap();
    assert_eq!((status.as_str(), drain.as_str()), ("Online", ""));
    assert!(class.split(' ').any(|c| c == "ok"), "{class}");

    // A wrong token: the server's message on the page, nothing drained.
    let token = b.find("#token").unwrap();
    b.type_into(&token, "not-the-token").unwrap();
    let reason = b.find("#reason").unwrap();
    b.type_into(&reason, "rack move").unwrap();
    b.click(&b.find("#drain-site-hub-a").unwrap()).unwrap();
    let mut msg = String::new();
    poll(Duration::from_secs(5), || {
        msg = b.find("#msg").and_then(|m| b.text(&m)).unwrap_or_default();
        msg.contains("401")
    })
    .unwrap_or_else(|| panic!("no 401 on the page; #msg says {msg:?}"));
    assert!(msg.contains("wrong bearer token"), "{msg}");
    assert_eq!(sp.status()["drains_active"], 0);

    // The token: the site drains, the page reloads itself and shows it.
    b.type_into(&b.find("#token").unwrap(), TOKEN).unwrap();
    b.click(&b.find("#drain-site-hub-a").unwrap()).unwrap();
    for (profile, endpoint) in [("app.gslb.example", "app-a"), ("api.gslb.example", "api-a")] {
        wait_row(
            &b,
            profile,
            endpoint,
            "Disabled",
            "drained (rack move)",
            Duration::from_secs(5),
        );
    }
    let (_, class, _) = row(&b, "app.gslb.example", "app-a").unwrap();
    assert!(class.split(' ').any(|c| c == "off"), "{class}");
    wait_row(
        &b,
        "app.gslb.example",
        "app-b",
        "Online",
        "",
        Duration::from_secs(1),
    );
    let site = b.find("tr[data-site='hub-a'] td.drain").unwrap();
    assert_eq!(b.text(&site).unwrap(), "drained (rack move)");
    b.find("#undrain-site-hub-a")
        .expect("an undrain button for hub-a");
    let st = sp.status();
    assert_eq!(st["sites"][0]["drain"]["reason"], "rack move", "{st:#}");
    screenshot(&b);

    // An undrain from elsewhere (the CLI) shows up without touching the page.
    let ran = sp.cli(&["undrain", "--site", "hub-a"]);
    assert_eq!(ran.code, Some(0), "{}", ran.text());
    wait_row(
        &b,
        "app.gslb.example",
        "app-a",
        "Online",
        "",
        Duration::from_secs(8),
    );
}

/// Issue 16: with both sites of a profile down, the page says so (a banner) and what DNS
/// answers (the all-down fallback: both addresses); a priority profile shows its priority
/// column, a ramp in progress (weight and end), and a drained site's endpoint with no
/// Drain button. Saves `target/status-page-fallback.png`.
#[test]
fn the_status_page_shows_the_fallback_a_ramp_and_a_drained_site() {
    // Free at the time of the call: nothing listens there, probes to it are refused.
    let dead = common::free_tcp_port();
    let extra = format!(
        "[[sites]]\nname = \"hub-a\"\n[[sites]]\nname = \"hub-b\"\n[[sites]]\nname = \"hub-c\"\n\n\
         [monitors.dead]\nport = {dead}\ninterval = \"300ms\"\ntimeout = \"1s\"\n\n\
         [profiles.\"app.gslb.example\"]\nmethod = \"weighted\"\nall_down = \"serve_all\"\nmonitor = \"dead\"\n\
         [[profiles.\"app.gslb.example\".endpoints]]\nname = \"app-a\"\nsite = \"hub-a\"\naddress = \"192.0.2.1\"\nprobe_address = \"127.0.0.1\"\n\
         [[profiles.\"app.gslb.example\".endpoints]]\nname = \"app-b\"\nsite = \"hub-b\"\naddress = \"192.0.2.2\"\nprobe_address = \"127.0.0.1\"\n\n\
         [profiles.\"api.gslb.example\"]\nmethod = \"priority\"\n\
         [[profiles.\"api.gslb.example\".endpoints]]\nname = \"api-a\"\nsite = \"hub-a\"\naddress = \"192.0.2.11\"\npriority = 1\n\
         [[profiles.\"api.gslb.example\".endpoints]]\nname = \"api-b\"\nsite = \"hub-b\"\naddress = \"192.0.2.12\"\npriority = 2\n\
         [[profiles.\"api.gslb.example\".endpoints]]\nname = \"api-c\"\nsite = \"hub-c\"\naddress = \"192.0.2.13\"\npriority = 1\n"
    );
    let sp = Signpost::start(
        &Setup::new(&[("gslb.example.zone", GSLB_ZONE)])
            .token(TOKEN)
            .extra(&extra),
    );
    let ramp = sp.api(
        "POST",
        "/api/v1/profiles/api.gslb.example/endpoints/api-a/drain",
        r#"{"reason": "kernel upgrade", "ramp": "2m"}"#,
        true,
    );
    assert_eq!(ramp.status, 200, "{}", ramp.body);
    let site = sp.api(
        "POST",
        "/api/v1/sites/hub-c/drain",
        r#"{"reason": "rack move"}"#,
        true,
    );
    assert_eq!(site.status, 200, "{}", site.body);

    // Both app endpoints Degraded: the document says the fallback decides, and what DNS
    // gives.
    let mut st = serde_json::Value::Null;
    poll(Duration::from_secs(10), || {
        st = sp.status();
        st["profiles"][1]["all_down_fallback"] == true
            && st["profiles"][0]["endpoints"][0]["effective_weight"].as_f64() < Some(1.0)
    })
    .unwrap_or_else(|| panic!("no all-down fallback and ramp in the status: {st:#}"));
    let app = &st["profiles"][1];
    assert_eq!(app["name"], "app.gslb.example.", "{st:#}");
    assert_eq!(app["all_down"], "serve_all");
    assert_eq!(
        app["answering"],
        serde_json::json!(["192.0.2.1", "192.0.2.2"]),
        "{st:#}"
    );
    let api = &st["profiles"][0];
    assert_eq!(api["all_down_fallback"], false);
    // The ramping api-a still answers with api-c (same priority); hub-c is drained.
    let mut answering: Vec<String> = serde_json::from_value(api["answering"].clone()).unwrap();
    answering.sort();
    assert_eq!(answering, ["192.0.2.11"], "{st:#}");
    let api_a = &api["endpoints"][0];
    assert_eq!(api_a["status"], "Online");
    let w = api_a["effective_weight"].as_f64().unwrap();
    assert!(w > 0.5 && w < 1.0, "{api_a:#}");
    assert!(api_a["ramp_ends"].is_string(), "{api_a:#}");
    assert_eq!(api["endpoints"][2]["status"], "Disabled");
    assert_eq!(api["endpoints"][2]["drain"]["scope"], "site");

    let b = Browser::start().unwrap();
    b.goto(&format!("http://{}/", sp.admin)).unwrap();
    let banner = b.find("p[id='fallback-app.gslb.example']").unwrap();
    let text = b.text(&banner).unwrap();
    assert!(text.contains("all_down = \"serve_all\""), "{text}");
    assert!(text.contains("every enabled endpoint"), "{text}");
    assert!(
        b.find("p[id='fallback-api.gslb.example']").is_err(),
        "a banner on a profile that is not in fallback"
    );
    let summary = b.text(&b.find("#fallback-summary").unwrap()).unwrap();
    assert!(summary.contains("app.gslb.example."), "{summary}");
    assert!(!summary.contains("api.gslb.example."), "{summary}");
    let now = b
        .find("p.answering[data-profile='app.gslb.example'] b")
        .unwrap();
    assert_eq!(b.text(&now).unwrap(), "192.0.2.1, 192.0.2.2");
    let body = b.body_text().unwrap();
    assert!(body.contains("signpost "), "{body}");
    assert!(body.contains("Instance "), "{body}");
    assert!(
        body.contains(&format!("http://127.0.0.1:{dead}/")),
        "no probe URL on the page:\n{body}"
    );

    // The priority column only on the priority profile.
    assert!(
        b.find("table[data-profile='api.gslb.example'] td.priority")
            .is_ok()
    );
    assert!(
        b.find("table[data-profile='app.gslb.example'] td.priority")
            .is_err()
    );
    // The ramp: weight below 1 of 1 and when it ends.
    let at = "table[data-profile='api.gslb.example'] tr[data-endpoint='api-a']";
    let weight = b
        .text(&b.find(&format!("{at} td.weight")).unwrap())
        .unwrap();
    assert!(weight.contains(" of 1 (ramp ends 20"), "{weight}");
    let drain = b.text(&b.find(&format!("{at} td.drain")).unwrap()).unwrap();
    assert!(drain.starts_with("draining (kernel upgrade"), "{drain}");
    b.find(&format!("{at} button[data-url$='/undrain']"))
        .expect("an Undrain button for the endpoint's own drain");
    // The site-drained endpoint: Disabled, no Drain button.
    let (status, _, drain) = row(&b, "api.gslb.example", "api-c").unwrap();
    assert_eq!(status, "Disabled");
    assert!(drain.contains("drained (rack move)"), "{drain}");
    assert!(
        b.find("table[data-profile='api.gslb.example'] tr[data-endpoint='api-c'] button")
            .is_err(),
        "a button on a site-drained endpoint"
    );
    // A Degraded endpoint shows no RTT.
    let rtt = b
        .text(
            &b.find("table[data-profile='app.gslb.example'] tr[data-endpoint='app-a'] td.rtt")
                .unwrap(),
        )
        .unwrap();
    assert_eq!(rtt, "—");

    let png = b.screenshot().unwrap();
    assert_eq!(&png[1..4], b"PNG", "not a PNG");
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page-fallback.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    // The profile in fallback itself (the summary's link scrolls to it).
    b.goto(&format!("http://{}/#profile-app.gslb.example", sp.admin))
        .unwrap();
    b.find("p[id='fallback-app.gslb.example']").unwrap();
    let png = b.screenshot().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/status-page-fallback-profile.png");
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// Serves `html` to every request on a new loopback port (another origin than the admin
/// listener's) until the returned flag is set; returns the page's URL.
fn serve_page(html: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", l.local_addr().unwrap());
    l.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let done = stop.clone();
    std::thread::spawn(move || {
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while !done.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
            match l.accept() {
                Ok((mut s, _)) => {
                    let _ = s.set_nonblocking(false);
                    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf);
                    let _ = write!(
                        s,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
                        html.len()
                    );
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    });
    (url, stop)
}

/// Issue 15, finding 3: with no token (the loopback default), a page from another origin
/// tries to drain both sites through the operator's browser: a `no-cors` fetch and a
/// `text/plain` form POST whose body is valid JSON. Both reach the server and get 403;
/// nothing is drained and DNS answers with both sites. A name that resolves to the
/// listener (DNS rebinding, mapped with `--host-resolver-rules`) reads a 403, not the
/// status.
#[test]
fn a_page_on_another_origin_cannot_drain_or_read() {
    let sp =
        Signpost::start(&Setup::new(&[("gslb.example.zone", GSLB_ZONE)]).extra(&two_sites(30)));
    let admin = sp.admin;
    let html = format!(
        r#"<!doctype html><html><body><p id=state>start</p>
<form id=f method=POST action="http://{admin}/api/v1/sites/hub-b/drain" enctype="text/plain">
<input type=hidden name='{{"ramp":"","reason":"form' value='"}}'></form>
<script>
const st = document.getElementById('state');
fetch("http://{admin}/api/v1/sites/hub-a/drain", {{method: "POST", mode: "no-cors", body: '{{"reason": "fetch"}}'}})
  .then(() => {{ st.textContent = 'fetched'; }}, e => {{ st.textContent = 'fetch error ' + e; }})
  .finally(() => setTimeout(() => document.getElementById('f').submit(), 200));
</script></body></html>"#
    );
    let (url, stop) = serve_page(html);
    let b = Browser::start_with(&["--host-resolver-rules=MAP rebind.attacker.example 127.0.0.1"])
        .unwrap();
    b.goto(&url).unwrap();
    // Both requests reach the server (refused), or, without the protection, drain.
    let refusals = || sp.log().matches("admin call refused: cross-origin").count();
    let mut drains = 0;
    poll(Duration::from_secs(15), || {
        drains = sp.status()["drains_active"].as_u64().unwrap();
        refusals() >= 2 || drains > 0
    });
    std::thread::sleep(Duration::from_millis(500));
    let st = sp.status();
    assert_eq!(st["drains_active"], 0, "a page on {url} drained: {st:#}");
    assert_eq!(
        refusals(),
        2,
        "both requests reach the server:\n{}",
        sp.log()
    );
    assert!(
        st["sites"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["drain"].is_null())
    );

    // DNS rebinding: a name of the attacker's that resolves to the admin listener.
    b.goto(&format!(
        "http://rebind.attacker.example:{}/api/v1/status",
        admin.port()
    ))
    .unwrap();
    let text = b.body_text().unwrap();
    assert!(
        text.contains("is not a name of this admin listener"),
        "the status read through a foreign name:\n{text}"
    );
    assert!(!text.contains("hub-a"), "{text}");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
}
