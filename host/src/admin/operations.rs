//! Running the PKI: profiles, the CRL, plugin status.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::StatusCode;

use super::views::Paging;
use super::{AdminRequest, ApiError};
use crate::authority::Gateway;
use crate::plugins::watcher::Watched;
use crate::plugins::PluginRuntime;
use crate::reply::Reply;
use crate::store::{AuditEntry, AuditFilter, Event, Verdict};
use crate::wfe::directory;

pub fn profiles(gw: &Arc<Gateway>) -> Result<Reply, ApiError> {
    let items: Vec<serde_json::Value> = gw
        .profiles
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "description": p.description,
                "validity_hours": p.validity_hours,
                "eku": p.eku,
                "key_policy": p.key_policy,
                "issuer": p.issuer,
                "default": p.name == gw.config.acme.default_profile,
            })
        })
        .collect();
    Ok(Reply::json(StatusCode::OK, &whole_list(items)))
}

/// A whole list in one page, shaped like every paged listing.
fn whole_list(items: Vec<serde_json::Value>) -> serde_json::Value {
    let n = items.len();
    serde_json::json!({ "items": items, "total": n, "page": 1, "per_page": n.max(1) })
}

/// Rebuilds the built-in CA's CRL now (it is rebuilt after each revocation anyway; this is
/// for an operator who wants a fresh nextUpdate, or after changing the database by hand).
pub async fn regenerate_crl(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    gw.crl.invalidate();
    let der = crate::authority::crl::current(gw).await?;
    gw.db_as(&req.caller.actor(), |s| {
        s.record(Event::new(
            "crl.regenerate",
            "crl/builtin",
            serde_json::json!({}),
        ))
    })
    .await
    .map_err(|e| ApiError::store(e, "audit log"))?;
    let crl = crate::ca::crl_summary(&der)
        .map_err(|e| ApiError::internal(format!("the new CRL does not parse: {e}")))?;
    Ok(Reply::json(
        StatusCode::OK,
        &serde_json::json!({
            "url": format!("{}{}", gw.base_url, directory::CRL_PATH),
            "this_update": crate::reply::rfc3339(crl.this_update),
            "next_update": crl.next_update.map(crate::reply::rfc3339),
            "revoked": crl.revoked,
            "bytes": der.len(),
        }),
    ))
}

fn plugin_view(gw: &Gateway, w: &Watched) -> serde_json::Value {
    let status = w.plugin.status();
    let (info, stats) = (status.info, status.stats);
    let enabled = gw
        .plugins
        .as_ref()
        .is_none_or(|runtime| runtime.is_enabled(&w.spec.name));
    serde_json::json!({
        "name": w.spec.name,
        "path": w.spec.path,
        "kind": info.kind.name(),
        "plugin_name": info.name,
        "version": info.version,
        "description": info.description,
        "enabled": enabled,
        "sha256": status.sha256,
        "generation": status.generation,
        "loaded_at": crate::reply::rfc3339(status.loaded_at),
        "last_error": status.last_error,
        "calls": stats.calls,
        "faults": stats.faults,
        "log_lines_dropped": stats.log_lines_dropped,
    })
}

pub fn plugins(gw: &Arc<Gateway>) -> Result<Reply, ApiError> {
    let items = gw
        .loaded_plugins
        .iter()
        .map(|w| plugin_view(gw, w))
        .collect();
    let mut body = whole_list(items);
    // Hot reloads since start, over all plugins.
    body["reloads"] = gw.plugin_reloads.reloads.load(Ordering::Relaxed).into();
    body["reload_failures"] = gw.plugin_reloads.failures.load(Ordering::Relaxed).into();
    Ok(Reply::json(StatusCode::OK, &body))
}

/// The configured deploy targets: name, deployer, the name patterns they cover, verify and
/// attempts; never their `config`, which may hold a deployer's credentials. With `serial`,
/// only the targets that cover that certificate: where a deploy that names none goes.
pub async fn targets(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let covering: Option<Vec<String>> = match req.query.get("serial") {
        None => None,
        Some(serial) => {
            let cert = super::certificates::by_serial(gw, serial).await?;
            Some(
                crate::authority::deploy::targets_for(gw, &cert)
                    .into_iter()
                    .map(|t| t.name.clone())
                    .collect(),
            )
        }
    };
    let items = gw
        .config
        .targets
        .iter()
        .filter(|t| {
            covering
                .as_ref()
                .is_none_or(|names| names.contains(&t.name))
        })
        .map(|t| {
            serde_json::json!({
                "name": t.name,
                "deployer": t.deployer,
                "names": t.names,
                "verify": t.verify,
                "attempts": t.attempts,
            })
        })
        .collect();
    Ok(Reply::json(StatusCode::OK, &whole_list(items)))
}

/// The loaded plugin the route names, and the runtime.
fn named_plugin<'a>(
    gw: &'a Gateway,
    req: &AdminRequest,
) -> Result<(&'a Watched, &'a PluginRuntime), ApiError> {
    let name = req.param(0);
    let watched = gw
        .loaded_plugins
        .iter()
        .find(|w| w.spec.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no plugin named {name:?} is configured")))?;
    let runtime = gw
        .plugins
        .as_ref()
        .ok_or_else(|| ApiError::internal("plugins are configured but no runtime runs"))?;
    Ok((watched, runtime))
}

/// Reloads one plugin, counted and recorded as the caller's; `Err` says why it failed.
async fn reload_one(
    gw: &Gateway,
    runtime: &PluginRuntime,
    watched: &Watched,
    actor: &str,
) -> Result<(), String> {
    let audit = gw.store.acting_as(actor);
    crate::plugins::watcher::reload_recorded(runtime, watched, &gw.plugin_reloads, &audit)
        .await
        .map_err(|e| e.to_string())
}

pub async fn reload_plugin(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let (watched, runtime) = named_plugin(gw, req)?;
    match reload_one(gw, runtime, watched, &req.caller.actor()).await {
        Ok(()) => Ok(Reply::json(StatusCode::OK, &plugin_view(gw, watched))),
        Err(e) => Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "reload_failed",
            format!("{e}; the previous version stays live"),
        )),
    }
}

pub async fn reload_plugins(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let actor = req.caller.actor();
    let mut items = Vec::new();
    if let Some(runtime) = &gw.plugins {
        for watched in &gw.loaded_plugins {
            let outcome = reload_one(gw, runtime, watched, &actor).await;
            let mut view = plugin_view(gw, watched);
            view["reloaded"] = outcome.is_ok().into();
            if let Err(e) = outcome {
                view["error"] = e.into();
            }
            items.push(view);
        }
    }
    Ok(Reply::json(StatusCode::OK, &whole_list(items)))
}

pub async fn switch_plugin(
    gw: &Arc<Gateway>,
    req: &AdminRequest,
    enabled: bool,
) -> Result<Reply, ApiError> {
    let (watched, runtime) = named_plugin(gw, req)?;
    // Stored first: every replica, and this one after a restart, follows the database.
    let (name, at) = (watched.spec.name.clone(), gw.now());
    gw.db_as(&req.caller.actor(), move |s| {
        s.set_plugin_enabled(&name, enabled, at)
    })
    .await
    .map_err(|e| ApiError::store(e, "plugin switches"))?;
    runtime.set_enabled(&watched.spec.name, enabled);
    tracing::warn!(plugin = %watched.spec.name, enabled, actor = %req.caller.actor(), "plugin switched by an admin");
    Ok(Reply::json(StatusCode::OK, &plugin_view(gw, watched)))
}

fn audit_view(e: &AuditEntry) -> serde_json::Value {
    serde_json::json!({
        "seq": e.seq,
        "at": crate::reply::rfc3339(e.at),
        "actor": e.actor,
        "action": e.action,
        "resource": e.resource,
        "details": serde_json::from_str::<serde_json::Value>(&e.details).unwrap_or_default(),
        "mac": e.mac,
    })
}

pub async fn audit(gw: &Arc<Gateway>, req: &AdminRequest) -> Result<Reply, ApiError> {
    let paging = Paging::from_query(&req.query, gw.config.admin.per_page)?;
    let (q, now) = (&req.query, gw.now());
    let time = |key: &str| {
        q.get(key)
            .map(|t| super::certificates::parse_time(t, now))
            .transpose()
    };
    let filter = AuditFilter {
        actor: q.get("actor").cloned(),
        action: q.get("action").cloned(),
        resource: q.get("resource").cloned(),
        since: time("since")?,
        until: time("until")?,
    };
    let page = gw
        .db(move |s| s.audit_entries(&filter, paging.request()))
        .await
        .map_err(|e| ApiError::store(e, "audit log"))?;
    Ok(paging.reply(page, audit_view))
}

pub async fn verify_audit(gw: &Arc<Gateway>) -> Result<Reply, ApiError> {
    let verdict = gw
        .db(|s| s.verify_audit())
        .await
        .map_err(|e| ApiError::store(e, "audit log"))?;
    let body = match verdict {
        Verdict::Intact { entries, archived } => {
            serde_json::json!({ "intact": true, "entries": entries, "archived": archived })
        }
        Verdict::Broken { seq, reason } => {
            serde_json::json!({ "intact": false, "broken_at": seq, "reason": reason })
        }
    };
    Ok(Reply::json(StatusCode::OK, &body))
}
