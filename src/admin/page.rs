//! The status page for people: server-rendered HTML, no external assets (works
//! air-gapped), one table per profile, drain buttons, refreshes itself.

use std::fmt::Write;

use super::doc::{DrainDoc, DrainScope, EndpointDoc, ProfileDoc, StaleDrainDoc, StatusDoc};
use crate::base::Status;

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

fn status_class(s: Status) -> &'static str {
    match s {
        Status::Online | Status::AlwaysServe => "ok",
        Status::CheckingEndpoint => "checking",
        Status::Degraded => "bad",
        Status::Disabled => "off",
    }
}

fn drain_text(d: Option<&DrainDoc>) -> String {
    match d {
        None => String::new(),
        Some(d) if d.ramp_seconds > 0.0 => format!(
            "drained ({}; ramp {}s)",
            d.reason_text(),
            d.ramp_seconds.trunc()
        ),
        Some(d) => format!("drained ({})", d.reason_text()),
    }
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin-bottom:1.5em;min-width:60%}\
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:left;font-size:.92em}\
th{background:#f3f3f3}.st{font-weight:600;border-radius:.3em;padding:.1em .4em}\
.ok{background:#d4f5d4;color:#145214}.bad{background:#fbd4d4;color:#7a1010}\
.checking{background:#fff2c2;color:#6b5200}.off{background:#ddd;color:#444}\
#msg{min-height:1.2em;color:#7a1010}\
.banner{background:#fbd4d4;color:#7a1010;border:1px solid #d88;padding:.5em .8em;font-weight:600;margin:.6em 0}\
.answering b{font-family:monospace}.probe{font-family:monospace;font-size:.85em}.controls input{margin-right:.6em}";

const SCRIPT: &str = r#"
function kept(id){const v=document.getElementById(id).value;sessionStorage.setItem('signpost-'+id,v);return v;}
async function act(btn){
  const url=btn.dataset.url, msg=document.getElementById('msg');
  const headers={'Content-Type':'application/json'}; const t=kept('token'); if(t) headers['Authorization']='Bearer '+t;
  const body=btn.dataset.drain==='1'?JSON.stringify({reason:kept('reason')}):'';
  msg.textContent='…';
  try{const r=await fetch(url,{method:'POST',headers,body});
    if(r.ok){msg.textContent='done';location.reload();}
    else{const j=await r.json().catch(()=>({error:r.statusText}));msg.textContent=r.status+': '+j.error;}
  }catch(e){msg.textContent=String(e);}
}
document.addEventListener('DOMContentLoaded',()=>{
  for(const id of ['token','reason']){const v=sessionStorage.getItem('signpost-'+id);if(v!==null)document.getElementById(id).value=v;}
  document.querySelectorAll('button[data-url]').forEach(b=>b.addEventListener('click',()=>act(b)));
  setTimeout(()=>{if(!document.activeElement||document.activeElement.tagName!=='INPUT')location.reload();},5000);
});
"#;

/// What the page shows besides its page of the status document.
#[derive(Clone, Debug, Default)]
pub struct PageContext {
    /// Profiles in all-down fallback, over every page: (key, name, all_down), at most
    /// [`FALLBACK_LISTED`].
    pub fallback: Vec<(String, String, String)>,
    /// How many more profiles are in fallback than `fallback` lists.
    pub fallback_more: usize,
    /// The `?profile=` filter, when one was given.
    pub filter: Option<String>,
}

/// The most profiles the fallback banner names.
pub const FALLBACK_LISTED: usize = 50;

/// Renders the page from (a page of) the status document.
pub fn render(doc: &StatusDoc, ctx: &PageContext) -> String {
    let mut h = String::with_capacity(8192);
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>signpost status</title>\
         <meta name=viewport content='width=device-width'><style>{STYLE}</style></head><body>\
         <h1>signpost</h1><p id=instance>{}Config generation {}. Zones: {}</p>",
        doc.instance.as_ref().map_or(String::new(), |i| format!(
            "Instance <b>{}</b>, signpost {}. ",
            esc(&i.name),
            esc(&i.version)
        )),
        doc.generation,
        esc(&doc.zones.join(", "))
    );
    if let Some(r) = &doc.last_reload
        && !r.ok
    {
        if r.details_hidden {
            let _ = write!(
                h,
                "<p class='st bad' id=reload-error>Last reload failed at {}; see the log or \
                 GET /api/v1/status with the token.</p>",
                esc(&r.time),
            );
        } else {
            let _ = write!(
                h,
                "<p class='st bad' id=reload-error>Last reload failed at {}: {}</p>",
                esc(&r.time),
                esc(&r.message)
            );
        }
    }
    if !ctx.fallback.is_empty() {
        h.push_str("<div class=banner id=fallback-summary>No endpoint is eligible in ");
        for (i, (key, name, all_down)) in ctx.fallback.iter().enumerate() {
            let _ = write!(
                h,
                "{}<a href='?profile={}#profile-{}'>{}</a> (all_down = \"{}\")",
                if i > 0 { ", " } else { "" },
                esc(&urlenc(key)),
                esc(key),
                esc(name),
                esc(all_down)
            );
        }
        if ctx.fallback_more > 0 {
            let _ = write!(h, " and {} more", ctx.fallback_more);
        }
        h.push_str(": the all-down fallback decides what DNS answers.</div>");
    }
    h.push_str(
        "<div class=controls><label>Admin token <input id=token type=password autocomplete=off></label>\
         <label>Drain reason <input id=reason value='maintenance'></label></div><p id=msg></p>",
    );

    h.push_str("<h2>Sites</h2><table id=sites><tr><th>site</th><th>drain</th><th></th></tr>");
    for site in &doc.sites {
        let (label, action, drain) = if site.drain.is_some() {
            ("Undrain", "undrain", "0")
        } else {
            ("Drain", "drain", "1")
        };
        let _ = write!(
            h,
            "<tr data-site='{s}'><td>{s}</td><td class=drain>{}</td><td><button id='{action}-site-{s}' \
             data-url='/api/v1/sites/{u}/{action}' data-drain={drain}>{label} site</button></td></tr>",
            esc(&drain_text(site.drain.as_ref())),
            s = esc(&site.name),
            u = esc(&urlenc(&site.name)),
        );
    }
    h.push_str("</table>");

    if !doc.stale_drains.is_empty() {
        h.push_str(
            "<h2>Stale drains</h2><p>These drains name a site or endpoint the config no longer \
             has. They apply again if it comes back, until undrained.</p>\
             <table id=stale-drains><tr><th>drained</th><th>drain</th><th></th></tr>",
        );
        for d in &doc.stale_drains {
            let (what, url) = match d {
                StaleDrainDoc::Site { site, .. } => (
                    format!("site {site}"),
                    format!("/api/v1/sites/{}/undrain", urlenc(site)),
                ),
                StaleDrainDoc::Endpoint {
                    profile, endpoint, ..
                } => (
                    format!("endpoint {profile}/{endpoint}"),
                    format!(
                        "/api/v1/profiles/{}/endpoints/{}/undrain",
                        urlenc(profile),
                        urlenc(endpoint)
                    ),
                ),
            };
            let _ = write!(
                h,
                "<tr><td>{}</td><td class=drain>{}</td><td><button data-url='{}' data-drain=0>\
                 Undrain</button></td></tr>",
                esc(&what),
                esc(&drain_text(Some(d.drain()))),
                esc(&url)
            );
        }
        h.push_str("</table>");
    }

    if let Some(c) = &doc.cluster {
        h.push_str(&super::cluster::html(c));
    }
    pager(&mut h, doc, ctx);
    for p in &doc.profiles {
        profile_section(&mut h, p);
    }
    if doc.page.as_ref().is_some_and(|p| p.total > p.limit) {
        pager(&mut h, doc, ctx);
    }
    let _ = write!(h, "<script>{SCRIPT}</script></body></html>");
    h
}

/// Which profiles the page shows, links to the pages before and after, and a form to
/// show one profile.
fn pager(h: &mut String, doc: &StatusDoc, ctx: &PageContext) {
    let Some(page) = &doc.page else { return };
    h.push_str("<form class=pager method=get action='/'><p>");
    if let Some(f) = &ctx.filter {
        let _ = write!(
            h,
            "Showing profile {} only. <a href='/'>All profiles</a>",
            esc(f)
        );
    } else if page.total == 0 {
        h.push_str("No profiles.");
    } else if doc.profiles.is_empty() {
        let _ = write!(
            h,
            "No profiles from {} on; there are {}. <a href='/'>First page</a>",
            page.offset + 1,
            page.total
        );
    } else {
        let first = page.offset.min(page.total);
        let _ = write!(
            h,
            "Profiles {}–{} of {}.",
            first + 1,
            first + doc.profiles.len(),
            page.total
        );
        let limit = if page.limit == super::PAGE_LIMIT {
            String::new()
        } else {
            format!("&amp;limit={}", page.limit)
        };
        if first > 0 {
            let _ = write!(
                h,
                " <a class=prev href='/?offset={}{limit}'>previous</a>",
                first.saturating_sub(page.limit)
            );
        }
        if let Some(next) = page.next_offset {
            let _ = write!(h, " <a class=next href='/?offset={next}{limit}'>next</a>");
        }
    }
    h.push_str(
        " <label>Profile <input name=profile placeholder='app.gslb.example'></label> \
         <button>Show</button></p></form>",
    );
}

/// One profile: what it answers now, the fallback banner, and its endpoints.
fn profile_section(h: &mut String, p: &ProfileDoc) {
    let priority = p.method == "priority";
    let _ = write!(
        h,
        "<h2 id='profile-{}'>{}</h2><p>method {}, TTL {} s, all_down = \"{}\"</p>",
        esc(&p.key),
        esc(&p.name),
        esc(&p.method),
        p.ttl,
        esc(&p.all_down),
    );
    if p.all_down_fallback {
        let what = match p.all_down.as_str() {
            "serve_all" => "DNS answers every enabled endpoint as if it were Online",
            "servfail" => "DNS answers SERVFAIL",
            _ => "DNS answers with no records (NODATA)",
        };
        let _ = write!(
            h,
            "<p class=banner id='fallback-{}'>No endpoint is eligible: all_down = \"{}\" is in \
             force; {what}.</p>",
            esc(&p.key),
            esc(&p.all_down),
        );
    }
    let answering = if p.answering.is_empty() {
        p.answering_rcode
            .clone()
            .unwrap_or_else(|| "no records".to_owned())
    } else {
        p.answering.join(", ")
    };
    let _ = write!(
        h,
        "<p class=answering data-profile='{}'>DNS answers now (a client with no location): \
         <b>{}</b></p><table class=profile data-profile='{}'><tr><th>endpoint</th><th>site</th>\
         <th>answer</th>{}<th>status</th><th>since</th><th>weight</th><th>probe</th>\
         <th>last probe</th><th>RTT</th><th>drain</th><th></th></tr>",
        esc(&p.key),
        esc(&answering),
        esc(&p.key),
        if priority { "<th>priority</th>" } else { "" },
    );
    for e in &p.endpoints {
        let scope = e.drain.as_ref().and_then(|d| d.scope);
        let button = match scope {
            Some(DrainScope::Site) => String::new(),
            Some(DrainScope::Endpoint) => endpoint_button(p, e, "Undrain", "undrain", "0"),
            None => endpoint_button(p, e, "Drain", "drain", "1"),
        };
        let last = match &e.last_probe {
            None => "—".to_owned(),
            Some(l) => format!(
                "{} {}",
                l.time,
                if l.ok {
                    "ok"
                } else {
                    l.reason.as_deref().unwrap_or("failed")
                }
            ),
        };
        // An RTT is shown only while the last probe succeeded: a Degraded endpoint's
        // average is from before it failed.
        let rtt = match (&e.last_probe, e.rtt_ms) {
            (Some(l), Some(r)) if l.ok => format!("{r:.1} ms"),
            _ => "—".to_owned(),
        };
        let weight = match &e.ramp_ends {
            Some(end) => format!("{} of {} (ramp ends {end})", e.effective_weight, e.weight),
            None => e.weight.to_string(),
        };
        let mut drain_txt = drain_text(e.drain.as_ref());
        if e.ramp_ends.is_some() {
            // Still answered while the weight falls.
            drain_txt = drain_txt.replacen("drained", "draining", 1);
        }
        if scope == Some(DrainScope::Site) {
            drain_txt.push_str(", site drain");
        }
        let _ = write!(
            h,
            "<tr data-endpoint='{en}'><td>{en}</td><td>{site}</td><td>{ans}</td>{prio}\
             <td><span class='st {cls}'>{status}</span></td><td class=since>{since}</td>\
             <td class=weight>{weight}</td><td class=probe>{probe}</td><td>{last}</td><td class=rtt>{rtt}</td>\
             <td class=drain>{drain_txt}</td><td>{button}</td></tr>",
            en = esc(&e.name),
            site = esc(e.site.as_deref().unwrap_or("")),
            ans = esc(&e.answer.join(", ")),
            prio = if priority {
                format!("<td class=priority>{}</td>", e.priority)
            } else {
                String::new()
            },
            cls = status_class(e.status),
            status = e.status.as_str(),
            since = esc(e.since.as_deref().unwrap_or("start")),
            weight = esc(&weight),
            probe = esc(e.probe.as_deref().unwrap_or("not monitored")),
            last = esc(&last),
            rtt = esc(&rtt),
            drain_txt = esc(&drain_txt),
        );
    }
    h.push_str("</table>");
}

fn endpoint_button(
    p: &ProfileDoc,
    e: &EndpointDoc,
    label: &str,
    action: &str,
    drain: &str,
) -> String {
    format!(
        "<button id='{action}-{pid}-{eid}' data-url='/api/v1/profiles/{pu}/endpoints/{eu}/{action}' \
         data-drain={drain}>{label}</button>",
        pid = esc(&p.key),
        eid = esc(&e.name),
        pu = esc(&urlenc(&p.key)),
        eu = esc(&urlenc(&e.name)),
    )
}

/// Percent-encodes a path segment.
pub fn urlenc(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            o.push(b as char);
        } else {
            let _ = write!(o, "%{b:02X}");
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(urlenc("a b/c"), "a%20b%2Fc");
    }
}
