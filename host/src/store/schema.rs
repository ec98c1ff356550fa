//! Diesel table definitions, written by hand to match `migrations/`.

diesel::table! {
    eab_keys (kid) {
        kid -> Text,
        hmac_key -> Text,
        label -> Text,
        account_id -> Nullable<Text>,
        revoked -> Bool,
        created_at -> BigInt,
        allowed_names -> Text,
        profile -> Text,
    }
}

diesel::table! {
    accounts (id) {
        id -> Text,
        jwk_thumbprint -> Text,
        jwk -> Text,
        status -> Text,
        contact -> Text,
        tos_agreed -> Bool,
        eab_kid -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    orders (id) {
        id -> Text,
        account_id -> Text,
        status -> Text,
        expires -> BigInt,
        identifiers -> Text,
        profile -> Text,
        not_before -> Nullable<BigInt>,
        not_after -> Nullable<BigInt>,
        error -> Nullable<Text>,
        certificate_id -> Nullable<Text>,
        created_at -> BigInt,
        replaces -> Nullable<Text>,
    }
}

diesel::table! {
    authorizations (id) {
        id -> Text,
        order_id -> Text,
        account_id -> Text,
        identifier_type -> Text,
        identifier_value -> Text,
        wildcard -> Bool,
        status -> Text,
        expires -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    challenges (id) {
        id -> Text,
        authz_id -> Text,
        kind -> Text,
        token -> Text,
        status -> Text,
        validated -> Nullable<BigInt>,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    certificates (id) {
        id -> Text,
        serial -> Text,
        account_id -> Nullable<Text>,
        order_id -> Nullable<Text>,
        chain_pem -> Text,
        identifiers -> Text,
        not_before -> BigInt,
        not_after -> BigInt,
        status -> Text,
        revoked_at -> Nullable<BigInt>,
        revocation_reason -> Nullable<Integer>,
        created_at -> BigInt,
        issuer -> Text,
        origin -> Text,
        subject -> Text,
        replaced_by -> Nullable<Text>,
        renew_now_at -> Nullable<BigInt>,
        renew_reason -> Nullable<Text>,
        renew_explanation_url -> Nullable<Text>,
    }
}

diesel::table! {
    issuance_jobs (order_id) {
        order_id -> Text,
        issuer -> Text,
        csr -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        handle -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_until -> BigInt,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    validation_jobs (challenge_id) {
        challenge_id -> Text,
        attempts -> Integer,
        lease_owner -> Nullable<Text>,
        lease_until -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    deployment_jobs (certificate_id, target) {
        certificate_id -> Text,
        target -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        lease_owner -> Nullable<Text>,
        lease_until -> BigInt,
        with_key -> Bool,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    write_probe (owner) {
        owner -> Text,
        checked_at -> BigInt,
    }
}

diesel::table! {
    revocation_generation (id) {
        id -> Integer,
        generation -> BigInt,
    }
}

diesel::table! {
    plugin_switches (name) {
        name -> Text,
        enabled -> Bool,
        changed_at -> BigInt,
    }
}

diesel::table! {
    ca_pin (id) {
        id -> Integer,
        root_sha256 -> Text,
        intermediate_sha256 -> Text,
        pinned_at -> BigInt,
    }
}

diesel::table! {
    redeemed_nonces (nonce) {
        nonce -> Text,
        expires_at -> BigInt,
    }
}

diesel::table! {
    plugin_state (plugin, key) {
        plugin -> Text,
        key -> Text,
        value -> Text,
        updated_at -> BigInt,
    }
}

diesel::table! {
    audit_log (seq) {
        seq -> BigInt,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        resource -> Text,
        details -> Text,
        prev_mac -> Text,
        mac -> Text,
    }
}

diesel::table! {
    audit_pending (id) {
        id -> Text,
        at -> BigInt,
        actor -> Text,
        action -> Text,
        resource -> Text,
        details -> Text,
        mac -> Text,
    }
}

diesel::table! {
    audit_head (id) {
        id -> Integer,
        seq -> BigInt,
        mac -> Text,
        seal -> Text,
        archived_seq -> BigInt,
        archived_mac -> Text,
        archived_seal -> Text,
    }
}

diesel::table! {
    expiry_notices (serial) {
        serial -> Text,
        days -> Integer,
        sent_at -> BigInt,
    }
}

diesel::table! {
    scheduled_tasks (name) {
        name -> Text,
        next_run_at -> BigInt,
        claimed_by -> Nullable<Text>,
        claimed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    managed_certificates (name) {
        name -> Text,
        names -> Text,
        profile -> Text,
        key_type -> Text,
        targets -> Text,
        renew_at_percent -> Nullable<Integer>,
        state -> Text,
        declared -> Bool,
        next_renewal_at -> BigInt,
        certificate_serial -> Nullable<Text>,
        sealed_key -> Nullable<Text>,
        renew_at -> Nullable<BigInt>,
        deployed_serial -> Nullable<Text>,
        last_deployment -> Nullable<Text>,
        failures -> Integer,
        last_error -> Nullable<Text>,
        lease_owner -> Nullable<Text>,
        lease_until -> BigInt,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    eab_keys,
    accounts,
    orders,
    authorizations,
    challenges,
    certificates,
    issuance_jobs,
    validation_jobs,
    deployment_jobs,
    write_probe,
    redeemed_nonces,
    ca_pin,
    plugin_switches,
    revocation_generation,
    plugin_state,
    audit_log,
    audit_pending,
    audit_head,
    expiry_notices,
    scheduled_tasks,
    managed_certificates
);
