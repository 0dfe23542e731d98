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
