//! Store tests, each run on SQLite and on the real PostgreSQL.

use super::*;

fn account(id: &str, tp: &str) -> Account {
    Account {
        id: id.into(),
        jwk_thumbprint: tp.into(),
        jwk: "{}".into(),
        status: AccountStatus::Valid,
        contact: "[]".into(),
        tos_agreed: true,
        eab_kid: None,
        created_at: 1,
    }
}

fn order(id: &str, account: &str) -> Order {
    Order {
        id: id.into(),
        account_id: account.into(),
        status: OrderStatus::Pending,
        expires: 100,
        identifiers: r#"[{"type":"dns","value":"a.example"}]"#.into(),
        profile: "default".into(),
        not_before: None,
        not_after: None,
        error: None,
        certificate_id: None,
        created_at: 1,
        replaces: None,
    }
}

fn authz(id: &str, order: &str, account: &str) -> Authorization {
    Authorization {
        id: id.into(),
        order_id: order.into(),
        account_id: account.into(),
        identifier_type: "dns".into(),
        identifier_value: "a.example".into(),
        wildcard: false,
        status: AuthzStatus::Pending,
        expires: 100,
        created_at: 1,
    }
}

fn challenge(id: &str, authz: &str, kind: &str) -> Challenge {
    Challenge {
        id: id.into(),
        authz_id: authz.into(),
        kind: kind.into(),
        token: "tok".into(),
        status: ChallengeStatus::Pending,
        validated: None,
        error: None,
    }
}

/// An order o1 of account a1 with authorization z1 and challenges c1 (http-01), c2 (dns-01).
fn seeded(store: &Store) {
    store.insert_account(&account("a1", "tp1")).unwrap();
    store
        .insert_order(
            &order("o1", "a1"),
            &[authz("z1", "o1", "a1")],
            &[
                challenge("c1", "z1", "http-01"),
                challenge("c2", "z1", "dns-01"),
            ],
        )
        .unwrap();
}

fn cert(id: &str, serial: &str, order: &str) -> Certificate {
    Certificate {
        id: id.into(),
        serial: serial.into(),
        account_id: Some("a1".into()),
        order_id: Some(order.into()),
        chain_pem: "PEM".into(),
        identifiers: "[]".into(),
        not_before: 1,
        not_after: 2,
        status: CertificateStatus::Valid,
        revoked_at: None,
        revocation_reason: None,
        created_at: 1,
        issuer: "builtin".into(),
        origin: ORIGIN_ACME.into(),
        subject: String::new(),
    }
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[test] fn $name() {
                let dir = tempfile::tempdir().unwrap();
                let store = super::Store::open(&acmegate_testkit::db::fresh_sqlite_url(dir.path())).unwrap();
                super::$name(&store);
            })*
        }
        mod postgres {
            $(#[test] fn $name() {
                let store = super::Store::open(&acmegate_testkit::db::fresh_postgres_url()).unwrap();
                assert_eq!(store.backend(), "postgres");
                super::$name(&store);
            })*
        }
    };
}

both_backends!(
    accounts_and_keys,
    eab_binding,
    orders_and_pagination,
    compare_and_set,
    validation_outcomes,
    validation_makes_the_order_ready_with_its_last_authorization,
    certificates_and_revocation,
    issuance_jobs_lease_and_settle,
    ready_orders_are_issued_at_once,
    validation_jobs_lease_and_settle,
    audit_chain_detects_tampering,
    audit_entries_written_at_once_form_one_chain,
    audit_entries_of_a_failed_write_leave_no_trace,
    audit_archive_keeps_the_chain_verifiable,
    expiry_notices_once_per_threshold,
    statuses_are_typed_columns,
    nonces_are_redeemed_once,
    a_nonce_is_redeemed_with_its_account,
    the_first_ca_pinned_holds,
    replacements_and_moved_windows,
    retired_issuers_move_each_window_once,
    deployment_jobs_lease_and_settle,
    retention_prunes_what_expired_and_keeps_certificates,
    scheduled_runs_are_claimed_once_per_interval,
    database_size_is_measured,
    statements_and_commits_are_counted,
    overview_counts_states_expiries_and_activity,
    managed_certificates_are_claimed_once_and_kept_by_their_holder,
    managed_certificates_follow_moved_windows_and_revocations,
);

/// The overview counts each state once, lists only the valid certificates expiring inside
/// the horizon, and counts issuances and failed orders since each time asked.
fn overview_counts_states_expiries_and_activity(store: &Store) {
    seeded(store);
    // Admin-issued (no order), so that storing them leaves the seeded order alone.
    let at = |id: &str, serial: &str, not_after: i64, created_at: i64| Certificate {
        not_after,
        created_at,
        account_id: None,
        order_id: None,
        origin: ORIGIN_ADMIN.into(),
        ..cert(id, serial, "o1")
    };
    store
        .insert_certificate(&at("x1", "01", 1_500, 10), &[])
        .unwrap();
    store
        .insert_certificate(&at("x2", "02", 1_200, 500), &[])
        .unwrap();
    store
        .insert_certificate(&at("x3", "03", 9_000, 900), &[])
        .unwrap();
    store
        .insert_certificate(&at("x4", "04", 50, 20), &[])
        .unwrap();
    let upstream = Certificate {
        issuer: "upstream".into(),
        ..at("x5", "05", 1_100, 950)
    };
    store.insert_certificate(&upstream, &[]).unwrap();
    assert!(store.revoke_certificate("05", 1, 960).unwrap());
    assert!(store
        .transition_order("o1", OrderStatus::Pending, OrderStatus::Invalid, Some("{}"))
        .unwrap());
    let o = store.overview(1_000, 2_000, &[400, 0]).unwrap();
    assert_eq!((o.valid, o.expired, o.revoked), (3, 1, 1));
    assert_eq!(o.expiring, vec![1_200, 1_500]);
    assert_eq!(o.issued_since, vec![3, 5]);
    // The seeded order was created at 1: only the wider window sees its failure.
    assert_eq!(o.failed_since, vec![0, 1]);
    // Listings filter by issuer.
    let by_issuer = |issuer: &str| {
        let filter = CertificateFilter {
            issuer: Some(issuer.into()),
            ..Default::default()
        };
        let page = store
            .list_certificates(&filter, PageRequest::first(10))
            .unwrap();
        (
            page.total,
            page.items
                .iter()
                .map(|c| c.serial.clone())
                .collect::<Vec<_>>(),
        )
    };
    assert_eq!(by_issuer("upstream"), (1, vec!["05".to_string()]));
    assert_eq!(by_issuer("builtin").0, 4);
    assert_eq!(by_issuer("nobody").0, 0);
}

/// What moves an ACME client's renewal moves a managed certificate's: its certificate's window
/// moved to now by a renew-now, or its revocation, makes the row due then, to be issued anew.
fn managed_certificates_follow_moved_windows_and_revocations(store: &Store) {
    seeded(store);
    let holding = |name: &str, serial: &str, issuer: &str| {
        assert!(store.declare_managed(&managed_row(name, 10), 5).unwrap());
        let won = store.claim_due_managed("p1", 10, 100, 10).unwrap();
        assert_eq!(won.len(), 1);
        let issued = Certificate {
            order_id: None,
            account_id: None,
            origin: ORIGIN_MANAGED.into(),
            issuer: issuer.into(),
            not_after: 10_000,
            ..cert(&format!("c-{name}"), serial, "o1")
        };
        store
            .store_managed_certificate(name, "p1", &issued, "sealed", 5_000, 11)
            .unwrap();
        let done = ManagedCertificate {
            deployed_serial: Some(serial.into()),
            next_renewal_at: 5_000,
            ..won[0].clone()
        };
        assert!(store.finish_managed(&done, "p1", 12).unwrap());
    };
    holding("moved", "0a1", "retired-ca");
    holding("revoked", "0a2", "builtin");
    let moved = store
        .renew_now(&RenewNow {
            filter: RenewNowFilter {
                issuer: Some("retired-ca".into()),
                ..Default::default()
            },
            at: 100,
            reason: RENEW_ADMIN,
            explanation_url: None,
        })
        .unwrap();
    assert_eq!(moved, ["0a1"]);
    let row = store.managed_certificate("moved").unwrap();
    assert_eq!(row.next_renewal_at, 100);
    assert_eq!(
        row.deployed_serial, row.certificate_serial,
        "issued anew, not redeployed"
    );
    assert_eq!(
        store
            .managed_certificate("revoked")
            .unwrap()
            .next_renewal_at,
        5_000
    );
    assert!(store.revoke_certificate("0a2", 4, 200).unwrap());
    assert_eq!(
        store
            .managed_certificate("revoked")
            .unwrap()
            .next_renewal_at,
        200
    );
    // Due earlier already: a later move leaves it.
    assert!(store.revoke_certificate("0a1", 4, 300).unwrap());
    assert_eq!(
        store.managed_certificate("moved").unwrap().next_renewal_at,
        100
    );
}

fn managed_row(name: &str, due: i64) -> ManagedCertificate {
    ManagedCertificate {
        name: name.into(),
        names: r#"["m.example"]"#.into(),
        profile: "default".into(),
        key_type: "p256".into(),
        targets: r#"["edge"]"#.into(),
        renew_at_percent: None,
        state: MANAGED_ACTIVE.into(),
        declared: true,
        next_renewal_at: due,
        certificate_serial: None,
        sealed_key: None,
        renew_at: None,
        deployed_serial: None,
        last_deployment: None,
        failures: 0,
        last_error: None,
        lease_owner: None,
        lease_until: 0,
        created_at: 1,
        updated_at: 1,
    }
}

/// A due row goes to one claimer; its certificate is stored only by the lease holder; the
/// round's outcome releases it; a declared change of names makes it due, a paused row is
/// never claimed, renew-now makes it due and reissued.
fn managed_certificates_are_claimed_once_and_kept_by_their_holder(store: &Store) {
    assert!(store.declare_managed(&managed_row("web", 10), 5).unwrap());
    assert!(
        !store.declare_managed(&managed_row("web", 10), 6).unwrap(),
        "unchanged"
    );
    assert!(
        store
            .claim_due_managed("p1", 9, 100, 10)
            .unwrap()
            .is_empty(),
        "not due"
    );
    let won = store.claim_due_managed("p1", 10, 100, 10).unwrap();
    assert_eq!(won.len(), 1);
    assert_eq!(won[0].lease_owner.as_deref(), Some("p1"));
    assert!(
        store
            .claim_due_managed("p2", 11, 100, 10)
            .unwrap()
            .is_empty(),
        "leased"
    );
    let managed_cert = Certificate {
        order_id: None,
        account_id: None,
        origin: ORIGIN_MANAGED.into(),
        ..cert("m1", "0m1", "o1")
    };
    let refused = store.store_managed_certificate("web", "p2", &managed_cert, "sealed", 50, 11);
    assert!(
        matches!(refused, Err(StoreError::Conflict(_))),
        "{refused:?}"
    );
    assert!(store.certificate_by_serial("0m1").is_err(), "rolled back");
    store
        .store_managed_certificate("web", "p1", &managed_cert, "sealed", 50, 11)
        .unwrap();
    let done = ManagedCertificate {
        deployed_serial: Some("0m1".into()),
        next_renewal_at: 50,
        ..won[0].clone()
    };
    assert!(
        !store.finish_managed(&done, "p2", 12).unwrap(),
        "only the holder"
    );
    assert!(store.finish_managed(&done, "p1", 12).unwrap());
    let row = store.managed_certificate("web").unwrap();
    assert_eq!(
        (
            row.certificate_serial.as_deref(),
            row.sealed_key.as_deref(),
            row.renew_at
        ),
        (Some("0m1"), Some("sealed"), Some(50))
    );
    assert_eq!((row.lease_owner, row.next_renewal_at), (None, 50));
    // Lease over but not due: nobody; due: whoever claims first (a crashed holder's lease ran out).
    assert!(store
        .claim_due_managed("p2", 49, 200, 10)
        .unwrap()
        .is_empty());
    // A new definition of its names: due at once.
    let renamed = ManagedCertificate {
        names: r#"["n.example"]"#.into(),
        ..managed_row("web", 10)
    };
    assert!(store.declare_managed(&renamed, 20).unwrap());
    let row = store.managed_certificate("web").unwrap();
    assert_eq!(
        (row.names.as_str(), row.next_renewal_at),
        (r#"["n.example"]"#, 20)
    );
    assert_eq!(row.certificate_serial.as_deref(), Some("0m1"), "kept");
    // Paused: never claimed; resumed: claimed.
    assert!(store.set_managed_state("web", MANAGED_PAUSED, 21).unwrap());
    assert!(store
        .claim_due_managed("p2", 30, 200, 10)
        .unwrap()
        .is_empty());
    assert!(store.set_managed_state("web", MANAGED_ACTIVE, 22).unwrap());
    let won = store.claim_due_managed("p2", 30, 200, 10).unwrap();
    assert_eq!(won.len(), 1);
    // Renew now: due, and nothing counts as owed a deployment.
    store.renew_managed_now("web", 31).unwrap();
    let row = store.managed_certificate("web").unwrap();
    assert_eq!(
        (row.next_renewal_at, row.deployed_serial),
        (31, row.certificate_serial.clone())
    );
    assert!(matches!(
        store.renew_managed_now("nosuch", 31),
        Err(StoreError::NotFound)
    ));
    // An admin's create refuses a taken name; delete removes.
    assert!(matches!(
        store.create_managed(&managed_row("web", 1)),
        Err(StoreError::Conflict(_))
    ));
    store.delete_managed("web").unwrap();
    assert!(matches!(
        store.delete_managed("web"),
        Err(StoreError::NotFound)
    ));
    assert!(store.managed_certificates().unwrap().is_empty());
}

fn deployment(target: &str, owner: &str, until: i64, with_key: bool) -> DeploymentJob {
    DeploymentJob {
        certificate_id: "x1".into(),
        target: target.into(),
        attempts: 0,
        next_attempt_at: until,
        lease_owner: Some(owner.into()),
        lease_until: until,
        with_key,
        last_error: None,
        created_at: 1,
    }
}

/// Deployments are stored with their certificate; a job being attempted is not due for
/// anyone; a free retry goes to whoever claims first, a keyed one stays with its holder until
/// its lease runs out; settling is the holder's alone and audits once.
fn deployment_jobs_lease_and_settle(store: &Store) {
    let store = store
        .clone()
        .with_auditor(audit_key(b"deployment test key"));
    let admin_cert = Certificate {
        order_id: None,
        account_id: None,
        origin: ORIGIN_ADMIN.into(),
        ..cert("x1", "ab", "o1")
    };
    let jobs = [
        deployment("edge", "p1", 50, false),
        deployment("vault", "p1", 50, true),
    ];
    store.insert_certificate(&admin_cert, &jobs).unwrap();
    assert_eq!(store.deployment_jobs().unwrap().len(), 2);
    // Under way at p1 (due at the lease's end): nobody claims it, not even p1.
    assert!(store
        .claim_due_deployments("p1", 49, 200, 10)
        .unwrap()
        .is_empty());
    assert!(store
        .claim_due_deployments("p2", 49, 200, 10)
        .unwrap()
        .is_empty());

    // Both fail; the free one is due at 60 for anyone, the keyed one stays p1's.
    let free = DeploymentJob {
        attempts: 1,
        next_attempt_at: 60,
        lease_owner: None,
        lease_until: 0,
        last_error: Some("503".into()),
        ..jobs[0].clone()
    };
    let keyed = DeploymentJob {
        attempts: 1,
        next_attempt_at: 60,
        lease_until: 90,
        last_error: Some("503".into()),
        ..jobs[1].clone()
    };
    assert!(
        !store.reschedule_deployment(&free, "p2").unwrap(),
        "not p2's"
    );
    assert!(store.reschedule_deployment(&free, "p1").unwrap());
    assert!(store.reschedule_deployment(&keyed, "p1").unwrap());
    let got = store.claim_due_deployments("p2", 60, 100, 10).unwrap();
    assert_eq!(got.len(), 1, "p2 takes the free retry only");
    assert_eq!(
        (
            got[0].target.as_str(),
            got[0].lease_owner.as_deref(),
            got[0].next_attempt_at
        ),
        ("edge", Some("p2"), 100)
    );
    let got = store.claim_due_deployments("p1", 60, 100, 10).unwrap();
    assert_eq!(got.len(), 1, "p1 takes its keyed retry");
    assert_eq!(got[0].target, "vault");
    assert_eq!(got[0].attempts, 1);

    // p1 dies holding the keyed job: once the lease ran out, p3 takes it over.
    assert!(store
        .claim_due_deployments("p3", 99, 300, 10)
        .unwrap()
        .is_empty());
    let got = store.claim_due_deployments("p3", 100, 300, 10).unwrap();
    let mut targets: Vec<&str> = got.iter().map(|j| j.target.as_str()).collect();
    targets.sort();
    assert_eq!(targets, ["edge", "vault"], "both leases ran out at 100");

    // Settling is the holder's: p2 lost the edge job to p3.
    let event = || {
        Event::new(
            "certificate.deployed",
            "certificate/ab",
            serde_json::json!({}),
        )
    };
    assert!(!store
        .settle_deployment("x1", "edge", "p2", event())
        .unwrap());
    assert!(store
        .settle_deployment("x1", "edge", "p3", event())
        .unwrap());
    assert!(!store
        .settle_deployment("x1", "edge", "p3", event())
        .unwrap());
    let audited = store
        .audit_entries(
            &AuditFilter::action("certificate.deployed"),
            PageRequest::first(10),
        )
        .unwrap();
    assert_eq!(audited.items.len(), 1, "audited once");

    // A restart of p3 frees its job at once (a cut-short attempt is due now, not at 300).
    assert_eq!(store.release_leases(Some("p3")).unwrap(), 1);
    let got = store.claim_due_deployments("p4", 101, 400, 10).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].target, "vault");
}

/// The first CA pinned to a database stays its CA; a later pin of another CA changes nothing.
fn the_first_ca_pinned_holds(store: &Store) {
    assert_eq!(store.ca_pin().unwrap(), None);
    let first = CaPin {
        root_sha256: "aa".into(),
        intermediate_sha256: "bb".into(),
        pinned_at: 10,
    };
    assert_eq!(store.pin_ca(&first).unwrap(), first);
    let other = CaPin {
        root_sha256: "cc".into(),
        intermediate_sha256: "dd".into(),
        pinned_at: 20,
    };
    assert_eq!(store.pin_ca(&other).unwrap(), first);
    assert_eq!(store.ca_pin().unwrap(), Some(first));
}

/// A nonce is redeemed once across every process on the database, until it is pruned.
fn nonces_are_redeemed_once(store: &Store) {
    assert!(store.redeem_nonce("n1", 100).unwrap());
    assert!(!store.redeem_nonce("n1", 100).unwrap(), "a replay");
    let other = store.clone();
    assert!(
        !other.redeem_nonce("n1", 100).unwrap(),
        "a replay through another handle"
    );
    assert!(store.redeem_nonce("n2", 300).unwrap());
    assert_eq!(store.prune_redeemed_nonces(200).unwrap(), 1);
    assert!(
        !store.redeem_nonce("n2", 300).unwrap(),
        "not yet expired: kept"
    );
    assert!(store.redeem_nonce("n1", 100).unwrap(), "pruned");
}

/// The account lookup that redeems the request's nonce in the same round trip answers the
/// stored account and whether the nonce was fresh: once true, then false, whichever lookup or
/// plain redemption came first; an unknown account is NotFound, its nonce spent all the same.
fn a_nonce_is_redeemed_with_its_account(store: &Store) {
    store.insert_account(&account("a1", "tp1")).unwrap();
    let (found, fresh) = store.account_redeeming_nonce("a1", "n1", 100).unwrap();
    assert_eq!((found, fresh), (account("a1", "tp1"), true));
    let (_, replayed) = store.account_redeeming_nonce("a1", "n1", 100).unwrap();
    assert!(!replayed, "a replay");
    assert!(
        !store.redeem_nonce("n1", 100).unwrap(),
        "spent for plain redemption too"
    );
    assert!(store.redeem_nonce("n2", 100).unwrap());
    assert!(!store.account_redeeming_nonce("a1", "n2", 100).unwrap().1);
    assert!(matches!(
        store.account_redeeming_nonce("nobody", "n3", 100),
        Err(StoreError::NotFound)
    ));
    assert!(
        !store.redeem_nonce("n3", 100).unwrap(),
        "spent by the failed lookup"
    );
}

/// Statuses go in as their RFC 8555 names and come out as the same enum values; a row holding
/// any other text fails to load, naming the text, instead of turning into some status.
fn statuses_are_typed_columns(store: &Store) {
    seeded(store);
    assert!(store
        .transition_order("o1", OrderStatus::Pending, OrderStatus::Ready, None)
        .unwrap());
    assert_eq!(store.order("o1").unwrap().status, OrderStatus::Ready);
    // Stored as the text `ready`.
    let sql = "UPDATE orders SET status = 'half-done' WHERE id = 'o1' AND status = 'ready'";
    let changed = diesel::sql_query(sql).execute(&mut *store.conn().unwrap());
    assert_eq!(changed.unwrap(), 1);
    let err = store.order("o1").unwrap_err().to_string();
    assert!(err.contains("unknown OrderStatus \"half-done\""), "{err}");
}

fn accounts_and_keys(store: &Store) {
    store.ping().unwrap();
    store.insert_account(&account("a1", "tp1")).unwrap();
    assert!(matches!(
        store.insert_account(&account("a2", "tp1")),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.account_by_thumbprint("tp1").unwrap().id, "a1");
    assert!(matches!(store.account("nope"), Err(StoreError::NotFound)));
    store
        .update_account("a1", r#"["mailto:x@y.org"]"#, AccountStatus::Deactivated)
        .unwrap();
    let a = store.account("a1").unwrap();
    assert_eq!(
        (a.status.as_str(), a.contact.as_str()),
        ("deactivated", r#"["mailto:x@y.org"]"#)
    );
    store.insert_account(&account("a2", "tp2")).unwrap();
    assert!(matches!(
        store.update_account_key("a2", "{}", "tp1"),
        Err(StoreError::Conflict(_))
    ));
    store.update_account_key("a2", r#"{"k":1}"#, "tp3").unwrap();
    assert_eq!(store.account_by_thumbprint("tp3").unwrap().id, "a2");
    assert!(matches!(
        store.update_account("zz", "[]", AccountStatus::Valid),
        Err(StoreError::NotFound)
    ));
}

fn eab_binding(store: &Store) {
    let key = EabKey {
        kid: "k1".into(),
        hmac_key: "secret".into(),
        label: "t".into(),
        account_id: None,
        revoked: false,
        created_at: 1,
        allowed_names: r#"["*.example"]"#.into(),
        profile: "short".into(),
    };
    store.insert_eab_key(&key).unwrap();
    let stored = store.eab_key("k1").unwrap();
    assert_eq!(
        (stored.allowed_names.as_str(), stored.profile.as_str()),
        (r#"["*.example"]"#, "short")
    );
    assert!(!format!("{key:?}").contains("secret"));
    let mut a = account("a1", "tp1");
    a.eab_kid = Some("k1".into());
    store.insert_account(&a).unwrap();
    assert_eq!(
        store.eab_key("k1").unwrap().account_id.as_deref(),
        Some("a1")
    );
    let mut b = account("a2", "tp2");
    b.eab_kid = Some("k1".into());
    assert!(matches!(
        store.insert_account(&b),
        Err(StoreError::Conflict(_))
    ));
    // The failed insert rolled back: no account a2.
    assert!(matches!(store.account("a2"), Err(StoreError::NotFound)));
    store
        .insert_eab_key(&EabKey {
            kid: "k2".into(),
            ..key
        })
        .unwrap();
    assert!(store.revoke_eab_key("k2").unwrap());
    assert!(!store.revoke_eab_key("k2").unwrap());
    b.eab_kid = Some("k2".into());
    assert!(matches!(
        store.insert_account(&b),
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.list_eab_keys().unwrap().len(), 2);
}

fn orders_and_pagination(store: &Store) {
    seeded(store);
    assert_eq!(store.order("o1").unwrap(), order("o1", "a1"));
    assert_eq!(
        store.authorizations_for_order("o1").unwrap(),
        vec![authz("z1", "o1", "a1")]
    );
    assert_eq!(store.challenges_for_authorization("z1").unwrap().len(), 2);
    // The same, joined in one statement each.
    assert_eq!(
        store.order_with_authorizations("o1").unwrap(),
        (order("o1", "a1"), vec![authz("z1", "o1", "a1")])
    );
    assert_eq!(
        store.authorization_with_challenges("z1").unwrap(),
        (
            authz("z1", "o1", "a1"),
            vec![
                challenge("c1", "z1", "http-01"),
                challenge("c2", "z1", "dns-01")
            ]
        )
    );
    assert_eq!(
        store.challenge_with_authorization("c2").unwrap(),
        (challenge("c2", "z1", "dns-01"), authz("z1", "o1", "a1"))
    );
    for missing in [
        store.order_with_authorizations("nope").map(|_| ()),
        store.authorization_with_challenges("nope").map(|_| ()),
        store.challenge_with_authorization("nope").map(|_| ()),
    ] {
        assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
    }
    for i in 2..=5 {
        store
            .insert_order(&order(&format!("o{i}"), "a1"), &[], &[])
            .unwrap();
    }
    let page1 = store.orders_for_account("a1", None, 2).unwrap();
    let ids: Vec<&str> = page1.iter().map(|o| o.id.as_str()).collect();
    assert_eq!(ids, ["o1", "o2"]);
    // An order without authorizations is still found, with none.
    assert_eq!(
        store.order_with_authorizations("o2").unwrap(),
        (order("o2", "a1"), vec![])
    );
    let page2 = store.orders_for_account("a1", Some("o2"), 10).unwrap();
    assert_eq!(
        page2.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        ["o3", "o4", "o5"]
    );
    // Counted per account in one query; an account without orders is left out.
    assert_eq!(
        store.order_counts(&["a1".into(), "nobody".into()]).unwrap(),
        [("a1".to_string(), 5)]
    );
    assert!(store.order_counts(&[]).unwrap().is_empty());
    // An order whose authorization insert fails leaves nothing behind.
    let bad = store.insert_order(&order("o9", "a1"), &[authz("z1", "o9", "a1")], &[]);
    assert!(bad.is_err());
    assert!(matches!(store.order("o9"), Err(StoreError::NotFound)));
}

fn compare_and_set(store: &Store) {
    seeded(store);
    assert!(store
        .transition_order("o1", OrderStatus::Pending, OrderStatus::Ready, None)
        .unwrap());
    assert!(!store
        .transition_order("o1", OrderStatus::Pending, OrderStatus::Ready, None)
        .unwrap());
    assert!(store
        .transition_order("o1", OrderStatus::Ready, OrderStatus::Invalid, Some("{}"))
        .unwrap());
    assert_eq!(store.order("o1").unwrap().error.as_deref(), Some("{}"));
    assert!(store
        .transition_challenge("c1", ChallengeStatus::Pending, ChallengeStatus::Processing)
        .unwrap());
    assert!(!store
        .transition_challenge("c1", ChallengeStatus::Pending, ChallengeStatus::Processing)
        .unwrap());
    assert!(store
        .transition_authorization("z1", AuthzStatus::Pending, AuthzStatus::Deactivated)
        .unwrap());
    assert!(!store
        .transition_authorization("z1", AuthzStatus::Pending, AuthzStatus::Deactivated)
        .unwrap());
    // Moves RFC 8555 §7.1.6 does not allow never reach the database.
    let err = store
        .transition_order("o1", OrderStatus::Invalid, OrderStatus::Valid, None)
        .unwrap_err();
    assert!(matches!(err, StoreError::Transition(_)), "{err}");
    assert!(
        err.to_string()
            .contains("an order cannot go from invalid to valid"),
        "{err}"
    );
    assert!(store
        .transition_challenge("c1", ChallengeStatus::Processing, ChallengeStatus::Pending)
        .is_err());
}

fn validation_outcomes(store: &Store) {
    seeded(store);
    assert_eq!(
        store
            .record_validation("c1", false, None, Some("{\"detail\":\"x\"}"))
            .unwrap(),
        Recorded::Decided { order_ready: false }
    );
    assert_eq!(
        store.record_validation("c1", true, Some(9), None).unwrap(),
        Recorded::AlreadyDecided,
        "a decided challenge stays decided"
    );
    assert_eq!(store.challenge("c1").unwrap().status, "invalid");
    assert_eq!(store.authorization("z1").unwrap().status, "invalid");
    assert_eq!(
        store.challenge("c2").unwrap().status,
        "invalid",
        "other challenges fail with it"
    );
    assert!(store.challenge("c1").unwrap().error.is_some());
    // A second order: success.
    store
        .insert_order(
            &order("o2", "a1"),
            &[authz("z2", "o2", "a1")],
            &[challenge("c3", "z2", "http-01")],
        )
        .unwrap();
    assert_eq!(
        store.record_validation("c3", true, Some(5), None).unwrap(),
        Recorded::Decided { order_ready: true }
    );
    assert_eq!(store.authorization("z2").unwrap().status, "valid");
    assert_eq!(store.order("o2").unwrap().status, OrderStatus::Ready);
    assert_eq!(store.order("o1").unwrap().status, OrderStatus::Pending);
    assert_eq!(store.challenge("c3").unwrap().validated, Some(5));
    assert!(store
        .has_valid_authorization("a1", "dns", "a.example", 50)
        .unwrap());
    assert!(
        !store
            .has_valid_authorization("a1", "dns", "a.example", 100)
            .unwrap(),
        "expired"
    );
    assert!(!store
        .has_valid_authorization("a1", "dns", "b.example", 50)
        .unwrap());
    assert!(matches!(
        store.record_validation("nope", true, None, None),
        Err(StoreError::NotFound)
    ));
}

/// The order becomes ready in the transaction that validates the last of its authorizations,
/// and only when `acme::state::order_status` would call it ready at that time: every
/// authorization valid and unexpired, the order unexpired. The move is audited.
fn validation_makes_the_order_ready_with_its_last_authorization(store: &Store) {
    let store = store
        .clone()
        .with_auditor(audit_key(b"order ready test key"));
    store.insert_account(&account("a1", "tp1")).unwrap();
    let with = |id: &str, authzs: &[(&str, i64)]| {
        let rows: Vec<Authorization> = authzs
            .iter()
            .map(|(z, expires)| Authorization {
                expires: *expires,
                ..authz(z, id, "a1")
            })
            .collect();
        let challenges: Vec<Challenge> = authzs
            .iter()
            .map(|(z, _)| challenge(&format!("c-{z}"), z, "http-01"))
            .collect();
        store
            .insert_order(&order(id, "a1"), &rows, &challenges)
            .unwrap();
    };
    let ready = Recorded::Decided { order_ready: true };
    let not_ready = Recorded::Decided { order_ready: false };
    let status = |id: &str| store.order(id).unwrap().status;
    let valid_at = |challenge: &str, at: i64| {
        store
            .record_validation(challenge, true, Some(at), None)
            .unwrap()
    };

    with("two", &[("two-a", 100), ("two-b", 100)]);
    assert_eq!(valid_at("c-two-a", 10), not_ready);
    assert_eq!(
        status("two"),
        OrderStatus::Pending,
        "one authorization is still pending"
    );
    assert_eq!(valid_at("c-two-b", 11), ready);
    assert_eq!(status("two"), OrderStatus::Ready);

    // Validated when the order has expired (its expires is 100): left for the next read of
    // the order to find invalid.
    with("late", &[("late-a", 200)]);
    assert_eq!(valid_at("c-late-a", 100), not_ready);
    assert_eq!(status("late"), OrderStatus::Pending);

    // The other authorization was valid but has expired by the time the last is validated.
    with("stale", &[("stale-a", 20), ("stale-b", 100)]);
    assert_eq!(valid_at("c-stale-a", 10), not_ready);
    assert_eq!(valid_at("c-stale-b", 30), not_ready);
    assert_eq!(status("stale"), OrderStatus::Pending);

    // A failed validation never makes an order ready.
    with("failed", &[("failed-a", 100)]);
    assert_eq!(
        store
            .record_validation("c-failed-a", false, None, Some("{}"))
            .unwrap(),
        not_ready
    );
    assert_eq!(status("failed"), OrderStatus::Pending);

    store.link_pending_audit().unwrap();
    let moves = store
        .audit_entries(&AuditFilter::action("order.status"), PageRequest::first(10))
        .unwrap();
    let moved: Vec<(&str, &str)> = moves
        .items
        .iter()
        .map(|e| (e.resource.as_str(), e.details.as_str()))
        .collect();
    assert_eq!(
        moved,
        [(
            "order/two",
            r#"{"from":"pending","to":"ready","error":null}"#
        )]
    );
}

fn validation_job(challenge: &str, owner: &str, lease_until: i64) -> ValidationJob {
    ValidationJob {
        challenge_id: challenge.into(),
        attempts: 1,
        lease_owner: Some(owner.into()),
        lease_until,
        created_at: 10,
    }
}

fn validation_jobs_lease_and_settle(store: &Store) {
    seeded(store);
    // Starting validation moves the challenge and queues its job together, once.
    assert!(store
        .begin_validation(&validation_job("c1", "p1", 50))
        .unwrap());
    assert!(!store
        .begin_validation(&validation_job("c1", "p2", 50))
        .unwrap());
    assert_eq!(store.challenge("c1").unwrap().status, "processing");
    assert_eq!(
        store.validation_job("c1").unwrap().lease_owner.as_deref(),
        Some("p1")
    );

    // A live lease is nobody else's; a lapsed one goes to exactly one claimer, one attempt on.
    assert!(store
        .claim_abandoned_validations("p2", 49, 100, 10)
        .unwrap()
        .is_empty());
    let claimed = store
        .claim_abandoned_validations("p2", 50, 100, 10)
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        (claimed[0].attempts, claimed[0].lease_owner.as_deref()),
        (2, Some("p2"))
    );
    assert!(store
        .claim_abandoned_validations("p3", 50, 100, 10)
        .unwrap()
        .is_empty());

    // A restarted process releases its own leases, not others'.
    assert_eq!(store.release_leases(Some("p1")).unwrap(), 0);
    assert_eq!(store.release_leases(Some("p2")).unwrap(), 1);
    assert_eq!(store.validation_job("c1").unwrap().lease_until, 0);
    assert_eq!(
        store
            .claim_abandoned_validations("p2", 60, 100, 10)
            .unwrap()
            .len(),
        1
    );

    // The outcome settles the challenge and removes the job; a late second outcome (a process
    // whose lease had run out) changes nothing.
    assert_eq!(
        store.record_validation("c1", true, Some(70), None).unwrap(),
        Recorded::Decided { order_ready: true }
    );
    assert!(matches!(
        store.validation_job("c1"),
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        store
            .record_validation("c1", false, None, Some("{}"))
            .unwrap(),
        Recorded::AlreadyDecided
    );
    assert_eq!(store.challenge("c1").unwrap().status, "valid");
    assert_eq!(store.authorization("z1").unwrap().status, "valid");
}

fn certificates_and_revocation(store: &Store) {
    seeded(store);
    // Only a processing order can receive its certificate.
    assert!(matches!(
        store.insert_certificate(&cert("x1", "ab", "o1"), &[]),
        Err(StoreError::Conflict(_))
    ));
    assert!(
        matches!(store.certificate("x1"), Err(StoreError::NotFound)),
        "rolled back"
    );
    for (from, to) in [
        (OrderStatus::Pending, OrderStatus::Ready),
        (OrderStatus::Ready, OrderStatus::Processing),
    ] {
        assert!(store.transition_order("o1", from, to, None).unwrap());
    }
    store
        .insert_certificate(&cert("x1", "ab", "o1"), &[])
        .unwrap();
    let o = store.order("o1").unwrap();
    assert_eq!(
        (o.status.as_str(), o.certificate_id.as_deref()),
        ("valid", Some("x1"))
    );
    assert_eq!(store.certificate_by_serial("ab").unwrap().id, "x1");
    assert!(store.revoke_certificate("ab", 4, 9).unwrap());
    assert!(!store.revoke_certificate("ab", 4, 9).unwrap());
    let c = store.certificate("x1").unwrap();
    assert_eq!(
        (c.status.as_str(), c.revocation_reason, c.revoked_at),
        ("revoked", Some(4), Some(9))
    );
    // Each issuer's CRL lists its own certificates only.
    let listed = |issuer: &str| -> Vec<String> {
        store
            .revoked_certificates(issuer, 0)
            .unwrap()
            .into_iter()
            .map(|c| c.serial)
            .collect()
    };
    assert_eq!(listed("builtin"), ["ab"]);
    assert!(listed("upki").is_empty());
}

/// RFC 9773: one live order replaces a certificate (compare-and-set on the mark), an expired
/// or invalid one frees it; renew-now moves the matching certificates only, audited; a
/// revocation for keyCompromise moves the window, another reason does not.
fn replacements_and_moved_windows(store: &Store) {
    seeded(store);
    for (from, to) in [
        (OrderStatus::Pending, OrderStatus::Ready),
        (OrderStatus::Ready, OrderStatus::Processing),
    ] {
        assert!(store.transition_order("o1", from, to, None).unwrap());
    }
    let mut old = cert("x1", "ab", "o1");
    old.identifiers = r#"[{"type":"dns","value":"a.example"}]"#.into();
    old.not_before = 1_000;
    old.not_after = 100_000;
    store.insert_certificate(&old, &[]).unwrap();

    let replacing = |id: &str, expires: i64| Order {
        expires,
        replaces: Some("AQ.qw".into()),
        ..order(id, "a1")
    };
    // o2 replaces x1 while it is pending and unexpired (now = 50 < 100).
    assert!(store
        .insert_replacing_order(&replacing("o2", 100), &[], &[], "x1", 50)
        .unwrap());
    assert!(!store
        .insert_replacing_order(&replacing("o3", 100), &[], &[], "x1", 50)
        .unwrap());
    assert!(
        matches!(store.order("o3"), Err(StoreError::NotFound)),
        "not stored"
    );
    let state = store.renewal_state("ab").unwrap();
    assert_eq!(state.marks.replaced_by.as_deref(), Some("o2"));
    assert_eq!(
        state.replacement.unwrap().replaces.as_deref(),
        Some("AQ.qw")
    );
    // Once o2 has expired unfinished, o4 may replace x1.
    assert!(store
        .insert_replacing_order(&replacing("o4", 500), &[], &[], "x1", 150)
        .unwrap());
    assert_eq!(
        store
            .renewal_state("ab")
            .unwrap()
            .marks
            .replaced_by
            .as_deref(),
        Some("o4")
    );

    // renew-now: by name (exact), by issuer, by issuance time.
    let renew = |filter: RenewNowFilter| {
        store
            .renew_now(&RenewNow {
                filter,
                at: 2_000,
                reason: RENEW_ADMIN,
                explanation_url: None,
            })
            .unwrap()
    };
    let by = |names: &[&str]| RenewNowFilter {
        names: names.iter().map(|n| n.to_string()).collect(),
        ..Default::default()
    };
    assert!(renew(by(&["example"])).is_empty(), "names match exactly");
    assert!(
        renew(RenewNowFilter {
            serials: vec!["ac".into()],
            ..Default::default()
        })
        .is_empty(),
        "serials match exactly"
    );
    assert!(renew(RenewNowFilter {
        issuer: Some("upki".into()),
        ..Default::default()
    })
    .is_empty());
    assert!(renew(RenewNowFilter {
        issued_after: Some(1_001),
        ..Default::default()
    })
    .is_empty());
    assert!(renew(RenewNowFilter {
        profile: Some("other".into()),
        ..Default::default()
    })
    .is_empty());
    assert_eq!(
        renew(RenewNowFilter {
            serials: vec!["ab".into()],
            ..Default::default()
        }),
        ["ab"]
    );
    assert_eq!(
        renew(RenewNowFilter {
            profile: Some("default".into()),
            issued_before: Some(1_001),
            ..by(&["a.example", "b.example"])
        }),
        ["ab"]
    );
    let marks = store.renewal_state("ab").unwrap().marks;
    assert_eq!(
        (marks.renew_now_at, marks.renew_reason.as_deref()),
        (Some(2_000), Some(RENEW_ADMIN))
    );

    // Revocation: keyCompromise moves the window to the revocation.
    assert!(store.revoke_certificate("ab", 1, 3_000).unwrap());
    let marks = store.renewal_state("ab").unwrap().marks;
    assert_eq!(
        (marks.renew_now_at, marks.renew_reason.as_deref()),
        (Some(3_000), Some(RENEW_KEY_COMPROMISE))
    );
    // A revoked certificate is not moved by renew-now again.
    assert!(renew(by(&["a.example"])).is_empty());
}

/// A retired issuer's valid, unexpired certificates have their windows moved once: a second
/// retirement (the next start) moves and audits nothing, while an admin's renew-now that
/// matched nothing is still audited.
fn retired_issuers_move_each_window_once(store: &Store) {
    let store = &store
        .clone()
        .with_auditor(audit_key(b"retirement test key"));
    seeded(store);
    let issued = |id: &str, serial: &str, issuer: &str, not_after: i64| Certificate {
        order_id: None,
        issuer: issuer.into(),
        not_after,
        ..cert(id, serial, "")
    };
    for c in [
        issued("c1", "r1", "old-ca", 100_000),
        issued("c2", "r2", "builtin", 100_000),
        issued("c3", "r3", "old-ca", 10),
    ] {
        store.insert_certificate(&c, &[]).unwrap();
    }
    let retire = |at: i64| {
        store
            .renew_now(&RenewNow {
                filter: RenewNowFilter {
                    issuer: Some("old-ca".into()),
                    unmoved_only: true,
                    ..Default::default()
                },
                at,
                reason: RENEW_ISSUER_RETIRED,
                explanation_url: None,
            })
            .unwrap()
    };
    let audited = || {
        store
            .audit_entries(
                &AuditFilter::action("certificate.renew_now"),
                PageRequest::first(10),
            )
            .unwrap()
            .items
    };
    assert_eq!(retire(5_000), ["r1"], "the expired r3 and builtin r2 stay");
    let marks = store.renewal_state("r1").unwrap().marks;
    assert_eq!(
        (marks.renew_now_at, marks.renew_reason.as_deref()),
        (Some(5_000), Some(RENEW_ISSUER_RETIRED))
    );
    assert!(retire(6_000).is_empty(), "moved once");
    assert_eq!(
        store.renewal_state("r1").unwrap().marks.renew_now_at,
        Some(5_000)
    );
    let entries = audited();
    assert_eq!(
        entries.len(),
        1,
        "a retirement that moved nothing is not audited"
    );
    assert!(
        entries[0].details.contains("issuer-retired"),
        "{}",
        entries[0].details
    );
    let nothing = store
        .renew_now(&RenewNow {
            filter: RenewNowFilter {
                issuer: Some("nobody".into()),
                ..Default::default()
            },
            at: 7_000,
            reason: RENEW_ADMIN,
            explanation_url: None,
        })
        .unwrap();
    assert!(nothing.is_empty());
    assert_eq!(
        audited().len(),
        2,
        "an admin's request is audited even when it matched nothing"
    );
}

#[test]
fn sqlite_file_survives_reopen_and_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let url = acmegate_testkit::db::fresh_sqlite_url(dir.path());
    {
        let store = Store::open(&url).unwrap();
        assert_eq!(store.backend(), "sqlite");
        seeded(&store);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let s = store.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        s.insert_order(&order(&format!("t{t}-{i}"), "a1"), &[], &[])
                            .unwrap();
                        s.transition_order(
                            &format!("t{t}-{i}"),
                            OrderStatus::Pending,
                            OrderStatus::Ready,
                            None,
                        )
                        .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
    }
    let reopened = Store::open(&url).unwrap();
    assert_eq!(
        reopened.orders_for_account("a1", None, 1000).unwrap().len(),
        201
    );
    assert_eq!(reopened.order("t7-24").unwrap().status, "ready");
}

fn job(order: &str, owner: Option<&str>, lease_until: i64) -> IssuanceJob {
    IssuanceJob {
        order_id: order.into(),
        issuer: "builtin".into(),
        csr: "AAAA".into(),
        attempts: 0,
        next_attempt_at: 10,
        handle: None,
        lease_owner: owner.map(Into::into),
        lease_until,
        last_error: None,
        created_at: 10,
    }
}

fn issuance_jobs_lease_and_settle(store: &Store) {
    seeded(store);
    // Only a ready order can be finalized; nothing is queued otherwise.
    assert!(!store.begin_issuance(&job("o1", Some("p1"), 50)).unwrap());
    assert!(matches!(
        store.issuance_job("o1"),
        Err(StoreError::NotFound)
    ));
    store
        .transition_order("o1", OrderStatus::Pending, OrderStatus::Ready, None)
        .unwrap();
    assert!(store.begin_issuance(&job("o1", Some("p1"), 50)).unwrap());
    assert_eq!(store.order("o1").unwrap().status, "processing");
    assert!(
        !store.begin_issuance(&job("o1", Some("p1"), 50)).unwrap(),
        "second finalize"
    );

    // Leased by p1 until 50: nobody can claim it before, and the next chance is at 50.
    assert!(store.claim_due_jobs("p2", 20, 100, 10).unwrap().is_empty());
    assert_eq!(store.next_job_due(20).unwrap(), Some(50));
    // p1 died; at 60 the lease has run out and p2 takes over, exactly once.
    let claimed = store.claim_due_jobs("p2", 60, 180, 10).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].lease_owner.as_deref(), Some("p2"));
    assert!(store.claim_due_jobs("p3", 60, 180, 10).unwrap().is_empty());

    // Only the lease holder reschedules; rescheduling releases the lease.
    let mut retry = claimed[0].clone();
    retry.attempts = 1;
    retry.next_attempt_at = 70;
    retry.last_error = Some("CA down".into());
    let mut stale = retry.clone();
    stale.lease_owner = Some("p1".into());
    assert!(!store.reschedule_job(&stale).unwrap(), "p1 lost its lease");
    assert!(store.reschedule_job(&retry).unwrap());
    let stored = store.issuance_job("o1").unwrap();
    assert_eq!(
        (
            stored.attempts,
            stored.next_attempt_at,
            stored.lease_owner,
            stored.last_error.as_deref()
        ),
        (1, 70, None, Some("CA down"))
    );
    assert_eq!(store.next_job_due(65).unwrap(), Some(70));
    assert!(
        store.claim_due_jobs("p3", 65, 200, 10).unwrap().is_empty(),
        "not due yet"
    );
    assert_eq!(store.claim_due_jobs("p3", 70, 200, 10).unwrap().len(), 1);

    // The certificate settles the order and removes the job in one transaction; a second
    // certificate for the same order is refused.
    store
        .insert_certificate(&cert("x1", "ab", "o1"), &[])
        .unwrap();
    assert!(matches!(
        store.issuance_job("o1"),
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.next_job_due(70).unwrap(), None);
    assert!(matches!(
        store.insert_certificate(&cert("x2", "cd", "o1"), &[]),
        Err(StoreError::Conflict(_))
    ));

    // Giving up: processing -> invalid with the problem, job removed; only once.
    store.insert_order(&order("o2", "a1"), &[], &[]).unwrap();
    store
        .transition_order("o2", OrderStatus::Pending, OrderStatus::Ready, None)
        .unwrap();
    assert!(store.begin_issuance(&job("o2", Some("p1"), 50)).unwrap());
    assert_eq!(store.release_leases(None).unwrap(), 1);
    assert_eq!(store.issuance_job("o2").unwrap().lease_until, 0);
    assert!(store
        .fail_issuance("o2", r#"{"detail":"refused"}"#)
        .unwrap());
    assert!(!store.fail_issuance("o2", "{}").unwrap());
    let o2 = store.order("o2").unwrap();
    assert_eq!(
        (o2.status.as_str(), o2.error.as_deref()),
        ("invalid", Some(r#"{"detail":"refused"}"#))
    );
    assert!(matches!(
        store.issuance_job("o2"),
        Err(StoreError::NotFound)
    ));
}

/// The built-in CA's way: a ready order gets its certificate and becomes valid in one write,
/// with no job and no `processing` in between; an order that is not ready gets nothing, and
/// the refused write leaves no audit entry.
fn ready_orders_are_issued_at_once(store: &Store) {
    let store = &store
        .clone()
        .with_auditor(audit_key(b"issued at once test key"));
    seeded(store);
    let audited = |action: &str| {
        store.link_pending_audit().unwrap();
        store
            .audit_entries(&AuditFilter::action(action), PageRequest::first(10))
            .unwrap()
            .items
            .into_iter()
            .map(|e| e.resource)
            .collect::<Vec<_>>()
    };
    // Pending: refused, nothing stored.
    assert!(matches!(
        store.issue_ready_order(&cert("x1", "ab", "o1"), &[]),
        Err(StoreError::Conflict(_))
    ));
    assert!(store.certificates_of_order("o1").unwrap().is_empty());
    assert!(audited("certificate.issue").is_empty());

    store
        .transition_order("o1", OrderStatus::Pending, OrderStatus::Ready, None)
        .unwrap();
    store
        .issue_ready_order(&cert("x1", "ab", "o1"), &[])
        .unwrap();
    let o1 = store.order("o1").unwrap();
    assert_eq!(
        (
            o1.status.as_str(),
            o1.certificate_id.as_deref(),
            o1.not_after
        ),
        ("valid", Some("x1"), Some(2))
    );
    assert!(matches!(
        store.issuance_job("o1"),
        Err(StoreError::NotFound)
    ));
    assert_eq!(audited("certificate.issue"), ["certificate/ab"]);
    assert_eq!(
        audited("order.status"),
        ["order/o1"],
        "pending to ready only: the order was never processing"
    );

    // A second finalize of the same order: refused, still one certificate, one entry.
    assert!(matches!(
        store.issue_ready_order(&cert("x2", "cd", "o1"), &[]),
        Err(StoreError::Conflict(_))
    ));
    let certs = store.certificates_of_order("o1").unwrap();
    assert_eq!(
        certs.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["x1"]
    );
    assert_eq!(audited("certificate.issue"), ["certificate/ab"]);
    assert!(matches!(
        store.verify_audit().unwrap(),
        Verdict::Intact { archived: 0, .. }
    ));
}

/// Several gateway replicas on one PostgreSQL database claim jobs at once: each job goes to
/// exactly one of them.
#[test]
fn postgres_replicas_claim_each_job_once() {
    let url = acmegate_testkit::db::fresh_postgres_url();
    let first = Store::open(&url).unwrap();
    first.insert_account(&account("a1", "tp1")).unwrap();
    for i in 0..40 {
        let id = format!("o{i}");
        first.insert_order(&order(&id, "a1"), &[], &[]).unwrap();
        first
            .transition_order(&id, OrderStatus::Pending, OrderStatus::Ready, None)
            .unwrap();
        assert!(first.begin_issuance(&job(&id, None, 0)).unwrap());
    }
    let claims: Vec<Vec<IssuanceJob>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..4)
            .map(|w| {
                let store = Store::open(&url).unwrap();
                scope.spawn(move || {
                    let mut mine = Vec::new();
                    for _ in 0..20 {
                        mine.extend(store.claim_due_jobs(&format!("w{w}"), 100, 500, 3).unwrap());
                    }
                    mine
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let mut ids: Vec<String> = claims
        .iter()
        .flatten()
        .map(|j| j.order_id.clone())
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(total, 40, "every job claimed");
    assert_eq!(ids.len(), 40, "no job claimed twice");
}

/// Every statement and top-level commit of a store's connections is counted: what the bench
/// divides into statements and commits per order.
fn statements_and_commits_are_counted(store: &Store) {
    let store = store.clone().with_auditor(audit_key(b"counting test key"));
    let (s0, c0) = store.query_counts();
    store
        .record(Event::new("test.count", "thing/1", serde_json::json!({})))
        .unwrap();
    let (s1, c1) = store.query_counts();
    assert_eq!(c1 - c0, 1, "one write, one commit");
    // At least BEGIN, the entry and COMMIT.
    assert!(s1 - s0 >= 3, "{} statements", s1 - s0);
    // On PostgreSQL the entry waits to be linked into the chain: a write of its own.
    store.link_pending_audit().unwrap();
    let (s1, c1) = store.query_counts();
    store
        .audit_entries(&AuditFilter::default(), PageRequest::first(1))
        .unwrap();
    let (s2, c2) = store.query_counts();
    assert!(s2 > s1, "reads are statements too");
    assert_eq!(c2, c1, "a read commits nothing");
}

fn audit_key(seed: &[u8]) -> Auditor {
    Auditor::new(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, seed))
}

fn audit_entry(store: &Store, seq: i64) -> AuditEntry {
    use schema::audit_log;
    audit_log::table
        .find(seq)
        .select(AuditEntry::as_select())
        .first(&mut *store.conn().unwrap())
        .unwrap()
}

fn broken_at(store: &Store) -> (i64, String) {
    match store.verify_audit().unwrap() {
        Verdict::Broken { seq, reason } => (seq, reason),
        intact => panic!("tampering went unnoticed: {intact:?}"),
    }
}

/// Archiving moves the oldest entries to files and leaves a sealed checkpoint: the chain in
/// the database verifies from it and the files up to it, appends go on, and an edited or
/// missing archive, or an altered checkpoint, is found. A file left by a run that never
/// committed is removed by the next run.
fn audit_archive_keeps_the_chain_verifiable(store: &Store) {
    use schema::audit_head;
    let store = store.clone().with_auditor(audit_key(b"archive test key"));
    let record = |i: i64| {
        store
            .record(Event::new(
                "test.event",
                format!("thing/{i}"),
                serde_json::json!({ "i": i }),
            ))
            .unwrap()
    };
    (1..=25).for_each(record);
    let dir = tempfile::tempdir().unwrap();
    let later = chrono::Utc::now().timestamp() + 10;
    assert_eq!(
        store.archive_audit(dir.path(), 0, 100).unwrap(),
        None,
        "nothing old enough"
    );
    let leftover = dir.path().join("audit-000000000001-000000000003.jsonl");
    std::fs::write(&leftover, "not committed\n").unwrap();

    let first = store.archive_audit(dir.path(), later, 10).unwrap().unwrap();
    assert_eq!((first.first, first.last), (1, 10));
    assert!(!leftover.exists(), "an uncommitted run's file is removed");
    let second = store
        .archive_audit(dir.path(), later, 100)
        .unwrap()
        .unwrap();
    assert_eq!(
        (second.first, second.last),
        (11, 24),
        "the newest entry stays"
    );
    assert_eq!(store.archive_audit(dir.path(), later, 100).unwrap(), None);
    let in_db = store
        .audit_entries(&AuditFilter::default(), PageRequest::first(100))
        .unwrap();
    assert_eq!(in_db.total, 1);
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 25,
            archived: 24
        }
    );
    assert_eq!(
        store.verify_audit_archive(dir.path()).unwrap(),
        Verdict::Intact {
            entries: 24,
            archived: 24
        }
    );
    record(26);
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 26,
            archived: 24
        }
    );

    // An archived entry edited: found, by number.
    let text = std::fs::read_to_string(&second.file).unwrap();
    std::fs::write(&second.file, text.replacen("thing/15", "thing/99", 1)).unwrap();
    match store.verify_audit_archive(dir.path()).unwrap() {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 15);
            assert!(reason.contains("edited"), "{reason}");
        }
        intact => panic!("an edited archive went unnoticed: {intact:?}"),
    }
    std::fs::write(&second.file, &text).unwrap();
    // A file missing: the archive does not start at entry 1.
    let kept = std::fs::read(&first.file).unwrap();
    std::fs::remove_file(&first.file).unwrap();
    assert!(matches!(
        store.verify_audit_archive(dir.path()).unwrap(),
        Verdict::Broken { seq: 1, .. }
    ));
    std::fs::write(&first.file, kept).unwrap();
    assert!(matches!(
        store.verify_audit_archive(dir.path()).unwrap(),
        Verdict::Intact { .. }
    ));
    // The checkpoint moved by someone without the key: both checks refuse it.
    diesel::update(audit_head::table.find(1))
        .set(audit_head::archived_seq.eq(20))
        .execute(&mut *store.conn().unwrap())
        .unwrap();
    let (seq, reason) = broken_at(&store);
    assert_eq!(seq, 20);
    assert!(reason.contains("checkpoint"), "{reason}");
    assert!(store.archive_audit(dir.path(), later, 100).is_err());
}

/// The audit log of `store` holds exactly `count` entries, all of resources named `kept/...`,
/// and verifies: what tests of failing writes among kept ones expect.
fn assert_only_kept_entries(store: &Store, count: i64) {
    let all = store
        .audit_entries(&AuditFilter::default(), PageRequest::first(100))
        .unwrap();
    assert_eq!(all.total, count, "the kept entries only");
    assert!(all.items.iter().all(|e| e.resource.starts_with("kept/")));
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: count,
            archived: 0
        }
    );
}

/// Audited changes made at once on several connections all end up in one intact chain, in
/// the listing and the verdict alike. On PostgreSQL, where each entry waits to be linked, an
/// entry altered while it waits is named by the verdict and is never linked.
/// A write that fails after appending its audit entries, among others in the same SQLite batch,
/// takes its entries with it: the chain goes on from the entry before them, its head row names
/// the last entry kept, and the log verifies.
fn audit_entries_of_a_failed_write_leave_no_trace(store: &Store) {
    let store = store.clone().with_auditor(audit_key(b"failing audit key"));
    let event = |what: String| Event::new("test.event", what, serde_json::json!({}));
    std::thread::scope(|scope| {
        for t in 0..4 {
            let store = store.clone();
            scope.spawn(move || {
                for i in 0..20 {
                    if i % 2 == 0 {
                        store.record(event(format!("kept/{t}-{i}"))).unwrap();
                        continue;
                    }
                    let auditor = store.auditor.clone().unwrap();
                    let failing = event(format!("lost/{t}-{i}"));
                    let failed = store.write_chained(move |c, tail| {
                        auditor.append(c, tail, failing)?;
                        Err::<(), _>(StoreError::Conflict("a failing write".into()))
                    });
                    assert!(matches!(failed, Err(StoreError::Conflict(_))), "{failed:?}");
                }
            });
        }
    });
    assert_only_kept_entries(&store, 40);
    // The next entry follows the last kept one.
    store.record(event("kept/last".into())).unwrap();
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 41,
            archived: 0
        }
    );
}

fn audit_entries_written_at_once_form_one_chain(store: &Store) {
    let store = store
        .clone()
        .with_auditor(audit_key(b"concurrent audit key"));
    std::thread::scope(|scope| {
        for t in 0..6 {
            let store = store.acting_as(format!("admin:{t}").as_str());
            scope.spawn(move || {
                for i in 0..10 {
                    store
                        .record(Event::new(
                            "test.event",
                            format!("thing/{t}-{i}"),
                            serde_json::json!({ "i": i }),
                        ))
                        .unwrap();
                }
            });
        }
    });
    let all = store
        .audit_entries(&AuditFilter::default(), PageRequest::first(100))
        .unwrap();
    assert_eq!(all.total, 60, "every entry is listed");
    let mut resources: Vec<_> = all.items.iter().map(|e| e.resource.clone()).collect();
    resources.sort();
    resources.dedup();
    assert_eq!(resources.len(), 60, "each entry once");
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 60,
            archived: 0
        }
    );
    if store.backend() != "postgres" {
        return;
    }
    store
        .record(Event::new(
            "test.event",
            "thing/late",
            serde_json::json!({ "i": 1 }),
        ))
        .unwrap();
    let altered = diesel::sql_query("UPDATE audit_pending SET details = '{\"i\":2}'")
        .execute(&mut *store.conn().unwrap())
        .unwrap();
    assert_eq!(altered, 1, "the entry was waiting");
    match store.verify_audit().unwrap() {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 61);
            assert!(reason.contains("thing/late"), "{reason}");
            assert!(reason.contains("altered"), "{reason}");
        }
        intact => panic!("an altered waiting entry went unnoticed: {intact:?}"),
    }
    assert!(matches!(
        store.link_pending_audit(),
        Err(StoreError::AuditAltered(_))
    ));
    assert_eq!(
        store
            .audit_entries(&AuditFilter::default(), PageRequest::first(1))
            .unwrap()
            .total,
        60,
        "the linked entries are still listed"
    );
}

fn audit_chain_detects_tampering(store: &Store) {
    use schema::audit_log;
    let store = store.clone().with_auditor(audit_key(b"test audit key"));
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 0,
            archived: 0
        }
    );
    store
        .acting_as("acme:a1")
        .insert_account(&account("a1", "tp1"))
        .unwrap();
    store.insert_order(&order("o1", "a1"), &[], &[]).unwrap();
    assert!(store
        .transition_order("o1", OrderStatus::Pending, OrderStatus::Ready, None)
        .unwrap());
    // A transition that does not happen and a write that fails leave no entry.
    assert!(!store
        .transition_order("o1", OrderStatus::Pending, OrderStatus::Ready, None)
        .unwrap());
    assert!(store.insert_account(&account("a2", "tp1")).is_err());
    store
        .acting_as("admin:ops (serial 01)")
        .record(Event::new(
            "crl.regenerate",
            "crl/builtin",
            serde_json::json!({}),
        ))
        .unwrap();
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 4,
            archived: 0
        }
    );

    let page = |filter: AuditFilter| {
        store
            .audit_entries(
                &filter,
                PageRequest {
                    offset: 0,
                    limit: 10,
                },
            )
            .unwrap()
    };
    let by_actor = page(AuditFilter {
        actor: Some("acme:a1".into()),
        ..Default::default()
    });
    assert_eq!(by_actor.total, 1);
    assert_eq!(by_actor.items[0].action, "account.create");
    let orders = page(AuditFilter {
        resource: Some("order/".into()),
        ..Default::default()
    });
    assert_eq!(orders.total, 2);
    assert_eq!(orders.items[0].action, "order.status", "newest first");
    assert_eq!(
        store
            .audit_entries(
                &AuditFilter::default(),
                PageRequest {
                    offset: 0,
                    limit: 10
                }
            )
            .unwrap()
            .items[0]
            .actor,
        "admin:ops (serial 01)"
    );

    // Without the key nobody can make the chain check out.
    let other = store.clone().with_auditor(audit_key(b"another key"));
    assert_eq!(broken_at(&other).0, 1);

    // An edited entry.
    let original = audit_entry(&store, 2);
    let set_details = |details: &str| {
        diesel::update(audit_log::table.find(2))
            .set(audit_log::details.eq(details))
            .execute(&mut *store.conn().unwrap())
            .unwrap();
    };
    set_details(r#"{"identifiers":[{"type":"dns","value":"evil.example"}]}"#);
    let (seq, reason) = broken_at(&store);
    assert_eq!(seq, 2);
    assert!(reason.contains("edited"), "{reason}");
    set_details(&original.details);
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 4,
            archived: 0
        }
    );

    // A deleted entry in the middle.
    let third = audit_entry(&store, 3);
    diesel::delete(audit_log::table.find(3))
        .execute(&mut *store.conn().unwrap())
        .unwrap();
    let (seq, reason) = broken_at(&store);
    assert_eq!(seq, 3);
    assert!(reason.contains("missing"), "{reason}");
    diesel::insert_into(audit_log::table)
        .values(&third)
        .execute(&mut *store.conn().unwrap())
        .unwrap();
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 4,
            archived: 0
        }
    );

    // The newest entry cut off: the sealed head still names it.
    diesel::delete(audit_log::table.find(4))
        .execute(&mut *store.conn().unwrap())
        .unwrap();
    let (seq, reason) = broken_at(&store);
    assert_eq!(seq, 4);
    assert!(reason.contains("ends at entry 3"), "{reason}");
}

mod audit_properties {
    use super::*;
    use proptest::prelude::*;
    use schema::audit_log;

    /// What someone with write access to the database does to one entry.
    #[derive(Clone, Debug)]
    enum Tamper {
        EditDetails,
        EditActor,
        EditTime,
        Delete,
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the history and whichever entry is tampered with, verification finds the
        /// chain intact before and names that entry after.
        #[test]
        fn verification_names_the_tampered_entry(
            entries in 1i64..10,
            pick in any::<prop::sample::Index>(),
            tamper in prop_oneof![
                Just(Tamper::EditDetails),
                Just(Tamper::EditActor),
                Just(Tamper::EditTime),
                Just(Tamper::Delete),
            ],
        ) {
            let dir = tempfile::tempdir().unwrap();
            let store = Store::open(&acmegate_testkit::db::fresh_sqlite_url(dir.path()))
                .unwrap()
                .with_auditor(audit_key(b"property key"));
            for i in 0..entries {
                store
                    .acting_as(format!("admin:{i}").as_str())
                    .record(Event::new("test.event", format!("thing/{i}"), serde_json::json!({ "i": i })))
                    .unwrap();
            }
            prop_assert_eq!(store.verify_audit().unwrap(), Verdict::Intact { entries, archived: 0 });
            let seq = 1 + pick.index(entries as usize) as i64;
            let mut c = store.conn().unwrap();
            let row = audit_log::table.find(seq);
            let changed = match tamper {
                Tamper::EditDetails => diesel::update(row).set(audit_log::details.eq(r#"{"i":-1}"#)).execute(&mut *c),
                Tamper::EditActor => diesel::update(row).set(audit_log::actor.eq("system")).execute(&mut *c),
                Tamper::EditTime => diesel::update(row).set(audit_log::at.eq(audit_log::at + 1)).execute(&mut *c),
                Tamper::Delete => diesel::delete(row).execute(&mut *c),
            };
            prop_assert_eq!(changed.unwrap(), 1);
            drop(c);
            let (broken, reason) = broken_at(&store);
            prop_assert_eq!(broken, seq, "{}", reason);
        }
    }
}

/// Replicas starting together on a fresh PostgreSQL database all migrate it without error.
#[test]
fn postgres_replicas_migrate_concurrently() {
    let url = acmegate_testkit::db::fresh_postgres_url();
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || Store::open(&url).map(|s| s.ping()))
        })
        .collect();
    for replica in replicas {
        replica
            .join()
            .unwrap()
            .expect("every replica opens the store")
            .unwrap();
    }
}

fn expiry_notices_once_per_threshold(store: &Store) {
    let record = |days| store.record_expiry_notice("0a1b", days, 100).unwrap();
    assert!(record(30), "the first notice");
    assert!(!record(30), "never twice");
    assert!(record(14));
    assert!(
        !record(30),
        "a larger threshold after a smaller one is stale"
    );
    assert!(!record(14));
    assert!(record(0));
    assert!(!record(7));
    assert!(
        store.record_expiry_notice("0c", 7, 100).unwrap(),
        "per certificate"
    );
}

const DAY: i64 = 86_400;

/// An order `id` in `status` expiring at `expires`, with one authorization `{id}-z` in
/// `authz_status` expiring at `authz_expires` and its challenges `{id}-c1` and `{id}-c2`.
fn order_with_authz(
    store: &Store,
    id: &str,
    (status, expires): (OrderStatus, i64),
    (authz_status, authz_expires): (AuthzStatus, i64),
) {
    let z = format!("{id}-z");
    store
        .insert_order(
            &Order {
                status,
                expires,
                ..order(id, "a1")
            },
            &[Authorization {
                status: authz_status,
                expires: authz_expires,
                ..authz(&z, id, "a1")
            }],
            &[
                challenge(&format!("{id}-c1"), &z, "http-01"),
                challenge(&format!("{id}-c2"), &z, "dns-01"),
            ],
        )
        .unwrap();
}

fn gone<T: std::fmt::Debug>(found: Result<T>) -> bool {
    matches!(found, Err(StoreError::NotFound))
}

/// Orders in every state, pruned at a cutoff: exactly the expired, finished-or-abandoned
/// objects go; certificates, their orders, live work and the audit chain stay.
fn retention_prunes_what_expired_and_keeps_certificates(store: &Store) {
    use crate::acme::AuthzStatus::{Invalid as ZInvalid, Pending as ZPending, Valid as ZValid};
    use crate::acme::OrderStatus::{Invalid, Pending, Ready};
    let store = store
        .clone()
        .with_auditor(audit_key(b"retention audit key"));
    // The cutoff: what expired before it goes (keep_days before the run's now).
    const T: i64 = 1_000_000;
    let now = T + 30 * DAY;
    store.insert_account(&account("a1", "tp1")).unwrap();
    // A pending order within its lifetime.
    order_with_authz(
        &store,
        "live",
        (Pending, now + 100),
        (ZPending, now + 1_000),
    );
    // Abandoned and failed orders that expired before the cutoff, one mid-validation.
    order_with_authz(&store, "stale", (Pending, T - 10), (ZPending, T - 5));
    assert!(store
        .begin_validation(&validation_job("stale-c1", "p1", T - 5))
        .unwrap());
    order_with_authz(&store, "failed", (Invalid, T - 10), (ZInvalid, T - 5));
    // Expired, but its valid authorization has not: kept with it.
    order_with_authz(&store, "young-authz", (Invalid, T - 10), (ZValid, now + 10));
    // Expired after the cutoff: still within the grace period.
    order_with_authz(&store, "recent", (Invalid, T + 5), (ZInvalid, T + 5));
    // Issued: the order and its certificate stay, the expired authorization goes.
    order_with_authz(&store, "issued", (Ready, T - 10), (ZValid, T - 5));
    assert!(store.begin_issuance(&job("issued", Some("p1"), 0)).unwrap());
    let issued = Certificate {
        chain_pem: "LEAF AND CHAIN".into(),
        not_after: T - 1,
        ..cert("x1", "ab", "issued")
    };
    store.insert_certificate(&issued, &[]).unwrap();
    // A replacement of x1 (RFC 9773) that failed long ago: pruned, and x1 free again.
    let replacing = Order {
        status: Invalid,
        expires: T - 10,
        replaces: Some("AQ.qw".into()),
        ..order("repl", "a1")
    };
    let repl_authz = Authorization {
        status: ZInvalid,
        expires: T - 5,
        ..authz("repl-z", "repl", "a1")
    };
    assert!(store
        .insert_replacing_order(&replacing, &[repl_authz], &[], "x1", T - 20)
        .unwrap());
    // Finalized and still with its issuer: live work, kept whatever its age.
    order_with_authz(&store, "busy", (Ready, T - 10), (ZValid, T - 5));
    assert!(store.begin_issuance(&job("busy", Some("p1"), 0)).unwrap());
    // An admin certificate, valid for long.
    let admin = Certificate {
        account_id: None,
        order_id: None,
        origin: ORIGIN_ADMIN.into(),
        not_after: now + 90 * DAY,
        ..cert("x2", "cd", "")
    };
    store.insert_certificate(&admin, &[]).unwrap();
    assert!(store.record_expiry_notice("ab", 0, T - 1).unwrap());
    assert!(store.record_expiry_notice("cd", 30, now).unwrap());
    assert!(store.redeem_nonce("spent", now - 1).unwrap());
    assert!(store.redeem_nonce("fresh", now + 60).unwrap());

    let live_before = (
        store.order("live").unwrap(),
        store.authorizations_for_order("live").unwrap(),
        store.challenges_for_authorization("live-z").unwrap(),
    );
    let Verdict::Intact {
        entries: before, ..
    } = store.verify_audit().unwrap()
    else {
        panic!("the chain is intact before pruning");
    };

    // Two per batch: several transactions, each with its audit entry.
    let pruned = store.prune(T, now, 2).unwrap();
    assert_eq!(
        (
            pruned.orders,
            pruned.authorizations,
            pruned.challenges,
            pruned.nonces,
            pruned.expiry_notices
        ),
        (3, 4, 6, 1, 1),
        "{pruned:?}"
    );
    assert!(pruned.batches >= 2, "{pruned:?}");

    for id in ["stale", "failed", "repl"] {
        assert!(gone(store.order(id)), "order {id} pruned");
        assert!(
            gone(store.authorization(&format!("{id}-z"))),
            "{id}-z pruned"
        );
    }
    for id in [
        "stale-c1",
        "stale-c2",
        "failed-c1",
        "issued-c1",
        "issued-c2",
    ] {
        assert!(gone(store.challenge(id)), "challenge {id} pruned");
    }
    assert!(gone(store.validation_job("stale-c1")));
    assert!(gone(store.authorization("issued-z")));

    // Untouched: the live order exactly as it was, and what is within its lifetime or grace.
    assert_eq!(
        (
            store.order("live").unwrap(),
            store.authorizations_for_order("live").unwrap(),
            store.challenges_for_authorization("live-z").unwrap(),
        ),
        live_before
    );
    for id in ["young-authz", "recent", "busy"] {
        assert!(store.order(id).is_ok(), "order {id} kept");
        assert_eq!(store.authorizations_for_order(id).unwrap().len(), 1, "{id}");
        assert_eq!(
            store
                .challenges_for_authorization(&format!("{id}-z"))
                .unwrap()
                .len(),
            2,
            "{id}"
        );
    }
    assert_eq!(store.issuance_job("busy").unwrap().order_id, "busy");

    // The certificate, its order and its renewal information stay; its failed replacement's
    // mark is gone with the order.
    let kept = store.order("issued").unwrap();
    assert_eq!(
        (kept.status, kept.certificate_id.as_deref()),
        (OrderStatus::Valid, Some("x1"))
    );
    assert!(store.authorizations_for_order("issued").unwrap().is_empty());
    assert_eq!(store.certificate("x1").unwrap().chain_pem, "LEAF AND CHAIN");
    assert_eq!(store.certificates_of_order("issued").unwrap().len(), 1);
    let ari = store.renewal_state("ab").unwrap();
    assert_eq!((ari.marks.replaced_by, ari.replacement), (None, None));
    assert_eq!(store.certificate_by_serial("cd").unwrap().id, "x2");

    // The spent nonce is forgotten (its expiry refuses it anyway), the fresh one is not; the
    // expired certificate's notice went, the valid one's stays.
    assert!(!store.redeem_nonce("fresh", now + 60).unwrap());
    assert!(store.redeem_nonce("spent", now - 1).unwrap());
    assert!(!store.record_expiry_notice("cd", 30, now).unwrap());
    assert!(store.record_expiry_notice("ab", 0, now).unwrap());

    // The chain verifies, with one entry per batch that says what went and the cutoff.
    let Verdict::Intact { entries: after, .. } = store.verify_audit().unwrap() else {
        panic!("pruning broke the audit chain");
    };
    // The notice recorded again just above is one entry more.
    assert_eq!(after, before + pruned.batches as i64 + 1);
    let entries = store
        .audit_entries(
            &AuditFilter::action("retention.prune"),
            PageRequest::first(100),
        )
        .unwrap();
    assert_eq!(entries.total, pruned.batches as i64);
    let mut sums = (0, 0, 0);
    for e in &entries.items {
        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(d["cutoff"], T, "{d}");
        sums.0 += d["orders"].as_u64().unwrap();
        sums.1 += d["authorizations"].as_u64().unwrap();
        sums.2 += d["challenges"].as_u64().unwrap();
    }
    assert_eq!(sums, (3, 4, 6));

    // Pruning again finds only the nonce and notice recorded again above, and audits nothing.
    assert_eq!(
        store.prune(T, now, 2).unwrap(),
        Pruned {
            nonces: 1,
            expiry_notices: 1,
            ..Pruned::default()
        }
    );
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: after,
            archived: 0
        }
    );
}

/// A scheduled run is claimed once when due, then not until the next one is.
fn scheduled_runs_are_claimed_once_per_interval(store: &Store) {
    assert_eq!(store.scheduled(RETENTION_TASK).unwrap(), (0, None, None));
    assert!(store
        .claim_scheduled(RETENTION_TASK, "p1", 5_000, 8_600)
        .unwrap());
    assert!(!store
        .claim_scheduled(RETENTION_TASK, "p2", 5_000, 8_600)
        .unwrap());
    assert!(!store
        .claim_scheduled(RETENTION_TASK, "p2", 8_599, 12_199)
        .unwrap());
    assert_eq!(
        store.scheduled(RETENTION_TASK).unwrap(),
        (8_600, Some("p1".into()), Some(5_000))
    );
    assert!(store
        .claim_scheduled(RETENTION_TASK, "p2", 8_600, 12_200)
        .unwrap());
    assert!(store.claim_scheduled("nonesuch", "p1", 1, 2).is_err());
}

/// Gateway replicas on one PostgreSQL database poll the schedule at the same moments: each
/// interval's run goes to exactly one of them.
#[test]
fn postgres_replicas_run_each_retention_interval_once() {
    let url = acmegate_testkit::db::fresh_postgres_url();
    let replicas: Vec<Store> = (0..4).map(|_| Store::open(&url).unwrap()).collect();
    for interval in 0..10_i64 {
        let now = 1_000 + interval * 3_600;
        let barrier = std::sync::Barrier::new(replicas.len());
        let winners: Vec<String> = std::thread::scope(|scope| {
            let claims: Vec<_> = replicas
                .iter()
                .enumerate()
                .map(|(i, store)| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        let me = format!("replica{i}");
                        store
                            .claim_scheduled(RETENTION_TASK, &me, now, now + 3_600)
                            .unwrap()
                            .then_some(me)
                    })
                })
                .collect();
            claims
                .into_iter()
                .filter_map(|c| c.join().unwrap())
                .collect()
        });
        assert_eq!(winners.len(), 1, "interval {interval}: {winners:?}");
        let (next, by, at) = replicas[0].scheduled(RETENTION_TASK).unwrap();
        assert_eq!(
            (next, by, at),
            (now + 3_600, Some(winners[0].clone()), Some(now))
        );
    }
}

/// The size the bench reports: on SQLite the file grows with writes and its pages in use
/// shrink when rows are deleted; on PostgreSQL the database's size is read.
fn database_size_is_measured(store: &Store) {
    let empty = store.database_size().unwrap();
    assert!(empty.on_disk > 0, "{empty:?}");
    store.insert_account(&account("a1", "tp1")).unwrap();
    for i in 0..200 {
        order_with_authz(
            store,
            &format!("o{i}"),
            (OrderStatus::Invalid, 10),
            (AuthzStatus::Invalid, 10),
        );
    }
    let full = store.database_size().unwrap();
    match (empty.in_use, full.in_use) {
        (Some(before), Some(after)) => {
            assert_eq!(store.backend(), "sqlite");
            assert!(after > before, "{empty:?} {full:?}");
            assert!(full.on_disk > empty.on_disk, "{empty:?} {full:?}");
            let pruned = store.prune(100, 100, PRUNE_BATCH).unwrap();
            assert_eq!(pruned.orders, 200);
            let after_prune = store.database_size().unwrap().in_use.unwrap();
            assert!(after_prune < after, "{after_prune} < {after}");
        }
        (None, None) => assert_eq!(store.backend(), "postgres"),
        other => panic!("{other:?}"),
    }
}

/// On PostgreSQL the async side's calls run on the store's own threads, never more at once
/// than it has connections, and a call that panics answers an error without costing a thread.
#[test]
fn postgres_calls_run_on_the_stores_threads() {
    use std::collections::BTreeSet;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let store = Store::open(&acmegate_testkit::db::fresh_postgres_url()).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let running = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let threads = Arc::new(Mutex::new(BTreeSet::new()));
    runtime.block_on(async {
        let calls: Vec<_> = (0..64)
            .map(|_| {
                let (store, running, most, threads) = (
                    store.clone(),
                    running.clone(),
                    most.clone(),
                    threads.clone(),
                );
                tokio::spawn(async move {
                    store
                        .call(move |s| {
                            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            let name = std::thread::current().name().map(str::to_owned);
                            threads.lock().unwrap().insert(name);
                            let answer = s.ping();
                            std::thread::sleep(std::time::Duration::from_millis(10));
                            running.fetch_sub(1, Ordering::SeqCst);
                            answer
                        })
                        .await
                })
            })
            .collect();
        for call in calls {
            call.await.unwrap().expect("every call answers");
        }
    });
    let threads = threads.lock().unwrap().clone();
    assert!(
        threads
            .iter()
            .all(|t| t.as_deref().is_some_and(|t| t.starts_with("acmegate-db-"))),
        "calls ran on other threads: {threads:?}"
    );
    let most = most.load(Ordering::SeqCst);
    let limit = conn::PG_POOL_SIZE as usize;
    assert!(threads.len() <= limit, "{} threads", threads.len());
    assert!((2..=limit).contains(&most), "{most} calls ran at once");

    runtime.block_on(async {
        // More panics than threads: each thread survives its panic.
        for _ in 0..2 * limit {
            let panicked = store
                .call(|_| -> Result<()> { panic!("a faulty call") })
                .await;
            assert!(
                matches!(&panicked, Err(StoreError::Database(m)) if m.contains("panicked")),
                "{panicked:?}"
            );
        }
        store
            .call(|s| s.ping())
            .await
            .expect("the store still answers");
    });
}

/// On SQLite a batched call runs on the writer thread inside a group commit: many calls at
/// once share few commits; a write of a call that fails, or panics, leaves no trace in the
/// audit chain; a call that panics answers an error and the writer serves on; and a call may
/// write through another store, whose writes go to that store's own writer.
#[test]
fn sqlite_batched_calls_run_in_the_writers_group_commits() {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        Store::open(&acmegate_testkit::db::fresh_sqlite_url(
            &dir.path().join(name),
        ))
        .unwrap()
        .with_auditor(audit_key(b"batched calls"))
    };
    std::fs::create_dir_all(dir.path().join("a")).unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    let (store, other) = (open("a"), open("b"));
    let event = |what: String| Event::new("test.event", what, serde_json::json!({}));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let threads = Arc::new(Mutex::new(BTreeSet::new()));
    let (_, commits_before) = store.query_counts();
    runtime.block_on(async {
        let calls: Vec<_> = (0..64)
            .map(|i| {
                let (store, threads) = (store.clone(), threads.clone());
                tokio::spawn(async move {
                    store
                        .call_batched(move |s| {
                            let name = std::thread::current().name().map(str::to_owned);
                            threads.lock().unwrap().insert(name);
                            // Long enough for the other calls to queue behind this one.
                            std::thread::sleep(std::time::Duration::from_millis(2));
                            s.record(event(format!("kept/{i}")))?;
                            let auditor = s.auditor.clone().unwrap();
                            let lost = event(format!("lost/{i}"));
                            let failed: Result<()> = s.write_chained(move |c, tail| {
                                auditor.append(c, tail, lost)?;
                                if i % 2 == 0 {
                                    Err(StoreError::Conflict("a failing write".into()))
                                } else {
                                    panic!("a write that panics")
                                }
                            });
                            assert!(failed.is_err(), "{failed:?}");
                            Ok(i)
                        })
                        .await
                })
            })
            .collect();
        for (i, call) in calls.into_iter().enumerate() {
            assert_eq!(call.await.unwrap().expect("every call answers"), i);
        }
    });
    let threads = threads.lock().unwrap().clone();
    assert_eq!(
        threads,
        BTreeSet::from([Some("acmegate-sqlite-writer".to_owned())]),
        "batched calls ran on other threads"
    );
    let (_, commits_after) = store.query_counts();
    let commits = commits_after - commits_before;
    assert!(
        (1..16).contains(&commits),
        "64 calls took {commits} commits"
    );
    assert_only_kept_entries(&store, 64);

    runtime.block_on(async {
        let panicked = store
            .call_batched(|_| -> Result<()> { panic!("a faulty call") })
            .await;
        assert!(
            matches!(&panicked, Err(StoreError::Database(m)) if m.contains("panicked")),
            "{panicked:?}"
        );
        // The writer serves on, for batched calls and for writes handed to it.
        let elsewhere = other.clone();
        store
            .call_batched(move |s| {
                s.record(event("kept/after".into()))?;
                elsewhere.record(event("elsewhere".into()))
            })
            .await
            .expect("the writer still answers");
    });
    store.record(event("kept/last".into())).unwrap();
    assert_eq!(
        store.verify_audit().unwrap(),
        Verdict::Intact {
            entries: 66,
            archived: 0
        }
    );
    let theirs = other
        .audit_entries(&AuditFilter::default(), PageRequest::first(10))
        .unwrap();
    assert_eq!(
        theirs.total, 1,
        "the other store's write went to its own file"
    );
    assert_eq!(theirs.items[0].resource, "elsewhere");
}
