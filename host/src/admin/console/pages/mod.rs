//! One file per console section; each reads through [`super::View`] and renders with
//! [`super::html`].

pub mod accounts;
pub mod audit;
pub mod certificates;
pub mod eab;
pub mod managed;
pub mod orders;
pub mod overview;
pub mod plugins;

use std::collections::BTreeMap;

use super::html::{self, esc};
use super::{View, PREFIX};
use crate::admin::Role;

/// A query map from pairs, for the API calls pages make.
fn query(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `2026-12-06T02:15:53Z` as `2026-12-06 02:15` (UTC): what a person scans in a table.
fn when(value: &serde_json::Value) -> String {
    match value.as_str() {
        Some(t) if t.len() >= 16 => super::html::esc(&format!("{} {}", &t[..10], &t[11..16])),
        _ => super::html::text(value),
    }
}

/// Rows per page of every listing: a screenful, and cheap to render at any table size.
pub const PER_PAGE: u32 = 50;

/// A listing paged on the server: which page of `path` the query asks for and the filters it
/// keeps, so that every list page asks the API for one page and links to its neighbours the
/// same way.
pub(super) struct Listing<'a> {
    path: String,
    /// The filters the page offers with the values the query gives (empty when absent).
    pub filters: Vec<(&'a str, &'a str)>,
    pub page: u32,
}

impl<'a> Listing<'a> {
    /// The listing at console path `path` (under [`PREFIX`]) with filters named `keys`, as
    /// the page's `query` asks for it.
    pub fn new(query: &'a BTreeMap<String, String>, path: &str, keys: &[&'a str]) -> Self {
        let filters = keys
            .iter()
            .map(|k| (*k, query.get(*k).map(String::as_str).unwrap_or_default()))
            .collect();
        let page = query
            .get("page")
            .and_then(|p| p.parse().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1);
        Self {
            path: format!("{PREFIX}{path}"),
            filters,
            page,
        }
    }

    /// The chosen value of filter `key` (empty when none).
    pub fn value(&self, key: &str) -> &str {
        self.filters
            .iter()
            .find(|(k, _)| *k == key)
            .map_or("", |(_, v)| *v)
    }

    /// The API query for this page: the filters that have a value, `page` and `per_page`.
    pub fn api_query(&self) -> BTreeMap<String, String> {
        let mut q = query(&[
            ("per_page", &PER_PAGE.to_string()),
            ("page", &self.page.to_string()),
        ]);
        for (k, v) in self.filters.iter().filter(|(_, v)| !v.is_empty()) {
            q.insert(k.to_string(), v.to_string());
        }
        q
    }

    /// `"{total} {noun}, page 3 of 7"` for the table's caption, from an API answer.
    pub fn caption(&self, answer: &serde_json::Value, noun: &str) -> String {
        let total = answer["total"].as_u64().unwrap_or(0);
        format!(
            "{total} {noun}, page {} of {}",
            self.page,
            self.pages(answer)
        )
    }

    fn pages(&self, answer: &serde_json::Value) -> u64 {
        let total = answer["total"].as_u64().unwrap_or(0);
        total.div_ceil(u64::from(PER_PAGE)).max(1)
    }

    /// Links to the previous and next page, keeping the filters; `labels` name them
    /// (`("← Newer", "Older →")` where the list is newest first).
    pub fn pager(&self, answer: &serde_json::Value, labels: (&str, &str)) -> String {
        let link = |p: u32, label: &str, rel: &str| {
            let p = p.to_string();
            let mut pairs = self.filters.clone();
            pairs.push(("page", &p));
            format!(
                "<a rel=\"{rel}\" href=\"{}{}\">{label}</a>",
                self.path,
                esc(&html::query(&pairs))
            )
        };
        let mut out = String::from("<nav class=\"pager\" aria-label=\"Pages\">");
        if self.page > 1 {
            out.push_str(&link(self.page - 1, labels.0, "prev"));
        }
        if u64::from(self.page) < self.pages(answer) {
            out.push_str(&link(self.page + 1, labels.1, "next"));
        }
        out.push_str("</nav>");
        out
    }

    /// A GET search form for this listing: `fields` (labelled inputs) and a submit button.
    pub fn search_form(&self, fields: &str, button: &str) -> String {
        format!(
            "<form class=\"search\" method=\"get\" action=\"{}\" role=\"search\">{fields}\
             <button type=\"submit\">{button}</button></form>",
            self.path
        )
    }

    /// A labelled text input for filter `key`, holding its chosen value.
    pub fn input(&self, key: &str, label: &str, hint: &str) -> String {
        format!(
            "<label>{label} <input name=\"{key}\" value=\"{}\" placeholder=\"{hint}\"></label>",
            esc(self.value(key))
        )
    }

    /// A labelled select for filter `key` among `options` (value, label), the chosen one
    /// selected.
    pub fn select(&self, key: &str, label: &str, options: &[(&str, &str)]) -> String {
        let mut out = format!("<label>{label} <select name=\"{key}\">");
        for (v, l) in options {
            let selected = if self.value(key) == *v {
                " selected"
            } else {
                ""
            };
            out.push_str(&format!("<option value=\"{v}\"{selected}>{l}</option>"));
        }
        out.push_str("</select></label>");
        out
    }
}

/// A link to the page of `id` in `section` (`certificates` by serial, `accounts`, `orders`,
/// ...), showing the id as code; a dash when there is none.
fn link(section: &str, id: &serde_json::Value) -> String {
    match id.as_str() {
        Some(id) => format!(
            "<a href=\"{PREFIX}/{section}/{}\"><code>{}</code></a>",
            html::segment(id),
            esc(id)
        ),
        None => html::text(id),
    }
}

/// A JSON array as a person reads it: each string (or identifier's `value`) escaped,
/// comma-separated; `empty` when there is none.
fn joined(list: &serde_json::Value, empty: &str) -> String {
    let parts: Vec<String> = list
        .as_array()
        .into_iter()
        .flatten()
        .map(|item| html::text(item.get("value").unwrap_or(item)))
        .collect();
    if parts.is_empty() {
        esc(empty)
    } else {
        parts.join(", ")
    }
}

/// The items of a listing answer.
fn items(answer: &serde_json::Value) -> impl Iterator<Item = &serde_json::Value> {
    answer["items"].as_array().into_iter().flatten()
}

/// Whether `view`'s caller may act; when not, the notice that says why there is no form.
/// The API refuses an auditor's change anyway: this only spares a form that cannot work.
fn may_act(view: &View<'_>, what: &str) -> Result<(), String> {
    if view.caller.role == Role::Admin {
        Ok(())
    } else {
        Err(html::notice(
            "info",
            &format!("Your role is read-only: {what} needs an admin certificate."),
        ))
    }
}

/// The notice of a finished action, from the `done` query parameter the action's redirect
/// set: `messages` maps each known value to its text; unknown values show nothing.
fn done_notice(view: &View<'_>, messages: &[(&str, &str)]) -> String {
    let done = view
        .query
        .get("done")
        .map(String::as_str)
        .unwrap_or_default();
    messages
        .iter()
        .find(|(k, _)| *k == done)
        .map(|(_, text)| html::notice("ok", text))
        .unwrap_or_default()
}

/// A state word as a badge: `ok`, `warn` or `bad` by what the word means to an operator.
fn badge(word: &str) -> String {
    let class = match word {
        "valid" | "active" | "ok" | "unused" | "bound" | "deployed" => "ok",
        "pending" | "ready" | "processing" | "paused" | "expired" | "disabled" | "deactivated" => {
            "warn"
        }
        _ => "bad",
    };
    format!("<span class=\"badge badge-{class}\">{}</span>", esc(word))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_ask_for_one_page_and_link_their_neighbours() {
        let asked = query(&[("status", "valid"), ("name", "a&b"), ("page", "2")]);
        let listing = Listing::new(&asked, "/things", &["name", "status", "issuer"]);
        assert_eq!(listing.page, 2);
        assert_eq!(
            listing.api_query(),
            query(&[
                ("name", "a&b"),
                ("status", "valid"),
                ("page", "2"),
                ("per_page", "50")
            ]),
            "empty filters stay out"
        );
        let answer = serde_json::json!({ "total": 120 });
        assert_eq!(
            listing.caption(&answer, "thing(s)"),
            "120 thing(s), page 2 of 3"
        );
        let pager = listing.pager(&answer, ("prev", "next"));
        assert!(
            pager.contains("<a rel=\"prev\" href=\"/console/things?name=a%26b&amp;status=valid&amp;page=1\">prev</a>"),
            "{pager}"
        );
        assert!(pager.contains("page=3\">next</a>"), "{pager}");
        // The last page has no next link; a page number that is not one is the first page.
        let last = Listing::new(&asked, "/things", &[]);
        assert!(!last
            .pager(&serde_json::json!({ "total": 100 }), ("p", "n"))
            .contains("rel=\"next\""));
        let bad = query(&[("page", "0")]);
        assert_eq!(Listing::new(&bad, "/things", &[]).page, 1);
        // Chosen values come back into the form escaped.
        let hostile = query(&[("name", "\"><b>")]);
        let input = Listing::new(&hostile, "/x", &["name"]).input("name", "Name", "hint");
        assert!(input.contains("value=\"&quot;&gt;&lt;b&gt;\""), "{input}");
    }

    #[test]
    fn links_and_badges() {
        assert_eq!(
            link("orders", &serde_json::json!("a/b")),
            "<a href=\"/console/orders/a%2Fb\"><code>a/b</code></a>"
        );
        assert_eq!(link("orders", &serde_json::Value::Null), "–");
        assert!(badge("invalid").contains("badge-bad"));
        assert!(badge("paused").contains("badge-warn"));
        assert!(badge("<x>").contains("&lt;x&gt;"));
        let ids = serde_json::json!([{"type": "dns", "value": "a.example"}, {"value": "<b>"}]);
        assert_eq!(joined(&ids, "none"), "a.example, &lt;b&gt;");
        assert_eq!(joined(&serde_json::json!(["x", "y"]), "none"), "x, y");
        assert_eq!(joined(&serde_json::Value::Null, "any"), "any");
    }
}
