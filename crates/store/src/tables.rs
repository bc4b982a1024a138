//! The tables the migrations build, as diesel sees them: made from the
//! SQLite migrations by `schema::diesel_tables` and held to them by the
//! test `tables_are_the_migrations` (`NEPHELE_UPDATE_TABLES=1` rewrites
//! this file).

diesel::table! {
    api_clients (id) {
        auth_method -> Text,
        created_at -> BigInt,
        created_by -> Nullable<Text>,
        id -> Text,
        last_access_at -> Nullable<BigInt>,
        name -> Text,
        organization_id -> Text,
        secret_hash -> Text,
        status -> Text,
        token_generation -> BigInt,
        updated_at -> BigInt,
        version -> BigInt,
    }
}

diesel::table! {
    api_keys (id) {
        created_at -> BigInt,
        id -> Text,
        last_used_at -> Nullable<BigInt>,
        name -> Text,
        prefix -> Text,
        secret_hash -> Text,
        updated_at -> BigInt,
        user_id -> Text,
        version -> BigInt,
    }
}

diesel::table! {
    audit_events (id) {
        action -> Text,
        actor_id -> Nullable<Text>,
        actor_name -> Nullable<Text>,
        actor_type -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        client_address -> Nullable<Text>,
        id -> Text,
        occurred_at -> BigInt,
        organization_id -> Nullable<Text>,
        outcome -> Text,
        request_id -> Nullable<Text>,
        status -> BigInt,
        target_id -> Nullable<Text>,
        target_type -> Nullable<Text>,
    }
}

diesel::table! {
    client_role_assignments (client_id, role_id) {
        client_id -> Text,
        role_id -> Text,
    }
}

diesel::table! {
    datacenters (id) {
        created_at -> BigInt,
        id -> Text,
        name -> Text,
        server_url -> Nullable<Text>,
        updated_at -> BigInt,
        version -> BigInt,
    }
}

diesel::table! {
    idempotency_keys (scope, key) {
        body -> Nullable<Binary>,
        content_type -> Nullable<Text>,
        created_at -> BigInt,
        key -> Text,
        location -> Nullable<Text>,
        node_id -> Nullable<Text>,
        request_hash -> Text,
        scope -> Text,
        status -> Nullable<BigInt>,
        task_id -> Nullable<Text>,
    }
}

diesel::table! {
    instances (id) {
        cpu -> BigInt,
        created_at -> BigInt,
        datacenter_id -> Text,
        disk_gib -> BigInt,
        id -> Text,
        image -> Text,
        memory_mib -> BigInt,
        name -> Text,
        organization_id -> Text,
        state -> Text,
        updated_at -> BigInt,
        version -> BigInt,
    }
}

diesel::table! {
    login_throttle (key) {
        at -> BigInt,
        count -> BigInt,
        key -> Text,
        locked_until -> Nullable<BigInt>,
    }
}

diesel::table! {
    nodes (id) {
        id -> Text,
        lease_until -> BigInt,
        started_at -> BigInt,
    }
}

diesel::table! {
    notary_files (id) {
        content -> Text,
        created_at -> BigInt,
        id -> Text,
        leaf_index -> Nullable<BigInt>,
        name -> Text,
        organization_id -> Text,
        owner_id -> Text,
        owner_type -> Text,
        sha256 -> Text,
        size_bytes -> Nullable<BigInt>,
        updated_at -> BigInt,
        version -> BigInt,
    }
}

diesel::table! {
    notary_keys (id) {
        algorithm -> Text,
        created_at -> BigInt,
        id -> Text,
        private_key -> Text,
        public_key -> Text,
    }
}

diesel::table! {
    notary_tree_heads (tree_size) {
        consistency_proof -> Text,
        key_id -> Text,
        previous_size -> BigInt,
        root_hash -> Text,
        signature -> Text,
        signed_at -> BigInt,
        tree_size -> BigInt,
    }
}

diesel::table! {
    organizations (id) {
        created_at -> BigInt,
        id -> Text,
        name -> Text,
        parent_id -> Nullable<Text>,
        updated_at -> BigInt,
        version -> BigInt,
    }
}

diesel::table! {
    platform_settings (key) {
        key -> Text,
        updated_at -> BigInt,
        value -> Text,
    }
}

diesel::table! {
    quotas (organization_id) {
        instances -> Nullable<BigInt>,
        memory_mib -> Nullable<BigInt>,
        organization_id -> Text,
        updated_at -> BigInt,
        vcpus -> Nullable<BigInt>,
        version -> BigInt,
    }
}

diesel::table! {
    refresh_tokens (id) {
        client_id -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
        family_id -> Text,
        id -> Text,
        organization_id -> Text,
        parent_id -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
        scope -> Text,
        session_generation -> BigInt,
        token_hash -> Text,
        used_at -> Nullable<BigInt>,
        user_id -> Nullable<Text>,
    }
}

diesel::table! {
    revoked_tokens (jti) {
        expires_at -> BigInt,
        jti -> Text,
        revoked_at -> BigInt,
    }
}

diesel::table! {
    role_assignments (user_id, role_id, organization_id) {
        organization_id -> Text,
        role_id -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    roles (id) {
        created_at -> BigInt,
        id -> Text,
        name -> Text,
        organization_id -> Nullable<Text>,
        permissions -> Text,
        updated_at -> BigInt,
        version -> BigInt,
    }
}

diesel::table! {
    signing_keys (id) {
        algorithm -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        id -> Text,
        public_jwk -> Text,
        purpose -> Text,
        retired_at -> Nullable<BigInt>,
        sealed_key -> Text,
    }
}

diesel::table! {
    task_steps (task_id, seq) {
        action -> Text,
        at -> BigInt,
        detail -> Nullable<Text>,
        name -> Text,
        outcome -> Text,
        seq -> BigInt,
        task_id -> Text,
    }
}

diesel::table! {
    tasks (id) {
        active_resource -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        completed_at -> Nullable<BigInt>,
        created_at -> BigInt,
        error -> Nullable<Text>,
        id -> Text,
        input -> Text,
        operation -> Text,
        organization_id -> Text,
        owner -> Nullable<Text>,
        progress -> BigInt,
        resource_id -> Text,
        resource_type -> Text,
        result -> Nullable<Text>,
        started_at -> Nullable<BigInt>,
        status -> Text,
        step -> BigInt,
        unwinding -> BigInt,
    }
}

diesel::table! {
    users (id) {
        created_at -> BigInt,
        datacenter_id -> Text,
        email -> Text,
        id -> Text,
        login -> Text,
        organization_id -> Text,
        password_hash -> Text,
        session_generation -> BigInt,
        updated_at -> BigInt,
        version -> BigInt,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    api_clients,
    api_keys,
    audit_events,
    client_role_assignments,
    datacenters,
    idempotency_keys,
    instances,
    login_throttle,
    nodes,
    notary_files,
    notary_keys,
    notary_tree_heads,
    organizations,
    platform_settings,
    quotas,
    refresh_tokens,
    revoked_tokens,
    role_assignments,
    roles,
    signing_keys,
    task_steps,
    tasks,
    users,
);
