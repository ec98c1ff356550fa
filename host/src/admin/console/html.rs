//! Building the console's HTML: the one escaping function every value from the database or
//! the request goes through, and the page frame every page shares.

use std::fmt::Write as _;

use serde_json::Value;

use super::super::Caller;

/// `text` safe to place in HTML element content and in double- or single-quoted attribute
/// values. Every value that did not come from this source file passes through here.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as the text a person reads: strings without quotes, `null` as a dash,
/// anything else as compact JSON. Escaped.
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => "–".into(),
        Value::String(s) => esc(s),
        other => esc(&other.to_string()),
    }
}

/// A query string (`?a=1&b=x`) from pairs, each part percent-encoded: for links that keep
/// a listing's filters. Empty values are left out.
pub fn query(pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs.iter().filter(|(_, v)| !v.is_empty()) {
        q.append_pair(k, v);
    }
    let q = q.finish();
    if q.is_empty() {
        q
    } else {
        format!("?{q}")
    }
}

/// A path segment (a serial, a plugin name) percent-encoded for a link.
pub fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

/// The console's sections, in the order the navigation lists them.
pub const SECTIONS: [(&str, &str); 8] = [
    ("overview", "Overview"),
    ("certificates", "Certificates"),
    ("managed", "Managed"),
    ("accounts", "Accounts"),
    ("orders", "Orders"),
    ("eab-keys", "EAB keys"),
    ("audit", "Audit log"),
    ("plugins", "Plugins"),
];

/// The whole document: head, navigation (with `section` marked current), who is signed in,
/// and `main`. `form_token` goes into a meta tag for the forms of the page.
pub fn page(title: &str, section: &str, caller: &Caller, form_token: &str, main: &str) -> String {
    let mut nav = String::new();
    for (id, label) in SECTIONS {
        let href = if id == "overview" {
            super::PREFIX.to_string() + "/"
        } else {
            format!("{}/{id}", super::PREFIX)
        };
        let current = if id == section {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(nav, "<li><a href=\"{href}\"{current}>{label}</a></li>");
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"form-token\" content=\"{token}\">\
         <title>{title} · acmegate</title>\
         <link rel=\"stylesheet\" href=\"{prefix}/static/console.css\"></head>\
         <body><a class=\"skip\" href=\"#main\">Skip to content</a>\
         <header><span class=\"brand\">acmegate</span><nav aria-label=\"Sections\"><ul>{nav}</ul></nav>\
         <p class=\"who\">{subject} <span class=\"role role-{role}\">{role}</span></p></header>\
         <main id=\"main\"><h1>{title}</h1>{main}</main></body></html>\n",
        token = esc(form_token),
        title = esc(title),
        prefix = super::PREFIX,
        subject = esc(&caller.subject),
        role = caller.role.name(),
    )
}

/// A `<table>` with a caption, a header row and rows of already escaped cells.
pub fn table(caption: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = format!(
        "<div class=\"scroll\"><table><caption>{}</caption><thead><tr>",
        esc(caption)
    );
    for h in headers {
        let _ = write!(out, "<th scope=\"col\">{}</th>", esc(h));
    }
    out.push_str("</tr></thead><tbody>");
    if rows.is_empty() {
        let _ = write!(
            out,
            "<tr><td colspan=\"{}\" class=\"empty\">Nothing to show.</td></tr>",
            headers.len()
        );
    }
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// A definition list of label and already escaped value.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let mut out = String::from("<dl class=\"fields\">");
    for (label, value) in pairs {
        let _ = write!(out, "<dt>{}</dt><dd>{value}</dd>", esc(label));
    }
    out.push_str("</dl>");
    out
}

/// A notice box; `kind` is `ok`, `bad` or `info`. `message` is escaped here.
pub fn notice(kind: &str, message: &str) -> String {
    let role = if kind == "bad" { "alert" } else { "status" };
    format!(
        "<p class=\"notice notice-{kind}\" role=\"{role}\">{}</p>",
        esc(message)
    )
}

/// A one-button POST form to `action` (already a console path) with the token, extra
/// `fields` (already markup: labelled inputs) and a submit button; `danger` marks a button
/// whose action cannot be undone.
pub fn action_form(
    action: &str,
    form_token: &str,
    fields: &str,
    label: &str,
    danger: bool,
) -> String {
    form_with_button(action, form_token, fields, label, "", danger)
}

/// A table row's one-button POST form: the button shows `label` ("Disable") and its
/// accessible name says which row it acts on ("Disable plugin webhook"), since a screen
/// reader that lists a page's buttons reads them out of their rows (WCAG 2.4.6, 4.1.2).
pub fn row_action_form(
    action: &str,
    form_token: &str,
    label: &str,
    row: &str,
    danger: bool,
) -> String {
    let name = format!(" aria-label=\"{}\"", esc(&format!("{label} {row}")));
    form_with_button(action, form_token, "", label, &name, danger)
}

fn form_with_button(
    action: &str,
    form_token: &str,
    fields: &str,
    label: &str,
    name: &str,
    danger: bool,
) -> String {
    let class = if danger { " class=\"danger\"" } else { "" };
    format!(
        "<form class=\"action\" method=\"post\" action=\"{}\">{}{fields}\
         <button type=\"submit\"{class}{name}>{}</button></form>",
        esc(action),
        token_field(form_token),
        esc(label),
    )
}

/// The hidden field that carries the anti-forgery token in every console form.
pub fn token_field(form_token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
        super::csrf::FIELD,
        esc(form_token)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_come_out_inert() {
        let hostile = r#"<script>alert("x")</script>' onmouseover='x' & "a""#;
        let out = esc(hostile);
        for bad in ['<', '>', '"', '\''] {
            assert!(!out.contains(bad), "{out}");
        }
        assert_eq!(
            out,
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39; onmouseover=&#39;x&#39; &amp; &quot;a&quot;"
        );
        // Already escaped text is escaped again, not trusted.
        assert_eq!(esc("&lt;"), "&amp;lt;");
        assert_eq!(text(&Value::from("<b>")), "&lt;b&gt;");
        assert_eq!(
            text(&serde_json::json!({"k": "<i>"})),
            "{&quot;k&quot;:&quot;&lt;i&gt;&quot;}"
        );
        assert_eq!(text(&Value::Null), "–");
    }

    #[test]
    fn the_frame_escapes_the_caller_and_title() {
        let caller = Caller {
            role: crate::admin::Role::Auditor,
            subject: "<img src=x onerror=alert(1)>".into(),
            serial: "01".into(),
            certificate: Vec::new(),
        };
        let out = page("a<b", "audit", &caller, "t\"k", "<p>body</p>");
        assert!(!out.contains("<img"), "{out}");
        assert!(out.contains("&lt;img src=x onerror=alert(1)&gt;"));
        assert!(out.contains("<title>a&lt;b · acmegate</title>"));
        assert!(out.contains("content=\"t&quot;k\""));
        assert!(out.contains("href=\"/console/audit\" aria-current=\"page\""));
        assert!(!out.contains("<script"));
    }

    #[test]
    fn links_encode_their_parts() {
        assert_eq!(query(&[("name", "a b&c"), ("status", "")]), "?name=a+b%26c");
        assert_eq!(query(&[("x", "")]), "");
        assert_eq!(segment("a/b?c"), "a%2Fb%3Fc");
    }

    #[test]
    fn row_buttons_name_their_row() {
        let form = row_action_form(
            "/console/plugins/a/disable",
            "t",
            "Disable",
            "plugin <a>",
            true,
        );
        assert!(
            form.contains(
                "<button type=\"submit\" class=\"danger\" aria-label=\"Disable plugin &lt;a&gt;\">Disable</button>"
            ),
            "{form}"
        );
        assert!(!action_form("/x", "t", "", "Go", false).contains("aria-label"));
    }
}
