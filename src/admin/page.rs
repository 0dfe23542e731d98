//! The status page for people: server-rendered HTML, no external assets (works
//! air-gapped), one table per profile, drain buttons, refreshes itself.

use std::fmt::Write;

use super::doc::{DrainDoc, DrainScope, StaleDrainDoc, StatusDoc};
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
#msg{min-height:1.2em;color:#7a1010}.controls input{margin-right:.6em}";

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

/// Renders the whole page from the status document.
pub fn render(doc: &StatusDoc) -> String {
    let mut h = String::with_capacity(8192);
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>signpost status</title>\
         <meta name=viewport content='width=device-width'><style>{STYLE}</style></head><body>\
         <h1>signpost</h1><p>Config generation {}. Zones: {}</p>",
        doc.generation,
        esc(&doc.zones.join(", "))
    );
    if let Some(r) = &doc.last_reload
        && !r.ok
    {
        let _ = write!(
            h,
            "<p class='st bad' id=reload-error>Last reload failed at {}: {}</p>",
            esc(&r.time),
            esc(&r.message)
        );
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

    for p in &doc.profiles {
        let _ = write!(
            h,
            "<h2>{}</h2><p>method {}, TTL {} s</p><table class=profile data-profile='{}'>\
             <tr><th>endpoint</th><th>site</th><th>answer</th><th>status</th><th>weight</th>\
             <th>last probe</th><th>RTT</th><th>drain</th><th></th></tr>",
            esc(&p.name),
            esc(&p.method),
            p.ttl,
            esc(&p.key)
        );
        for e in &p.endpoints {
            let own = e
                .drain
                .as_ref()
                .is_some_and(|d| d.scope == Some(DrainScope::Endpoint));
            let (label, action, drain) = if own {
                ("Undrain", "undrain", "0")
            } else {
                ("Drain", "drain", "1")
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
            let _ = write!(
                h,
                "<tr data-endpoint='{en}'><td>{en}</td><td>{site}</td><td>{ans}</td>\
                 <td><span class='st {cls}'>{status}</span></td><td>{w}</td><td>{last}</td><td>{rtt}</td>\
                 <td class=drain>{drain_txt}</td><td><button data-url='/api/v1/profiles/{pu}/endpoints/{eu}/{action}' \
                 data-drain={drain}>{label}</button></td></tr>",
                en = esc(&e.name),
                site = esc(e.site.as_deref().unwrap_or("")),
                ans = esc(&e.answer.join(", ")),
                cls = status_class(e.status),
                status = e.status.as_str(),
                w = e.effective_weight,
                last = esc(&last),
                rtt = e.rtt_ms.map_or("—".to_owned(), |r| format!("{r:.1} ms")),
                drain_txt = esc(&drain_text(e.drain.as_ref())),
                pu = esc(&urlenc(&p.key)),
                eu = esc(&urlenc(&e.name)),
            );
        }
        h.push_str("</table>");
    }
    let _ = write!(h, "<script>{SCRIPT}</script></body></html>");
    h
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
