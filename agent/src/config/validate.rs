//! What the types alone cannot check: references between sections,
//! exclusive choices, ranges, duplicates.

use super::{
    Config, DurationValue, Invalid, KebabId, LimitsConfig, OneOrMany, PhaseConfig,
    PrometheusSourceConfig, SourcesConfig, StepPlace, at, default_step, ledger, step_check, watch,
};
use crate::builtin;
use crate::runtime::limits;
use std::time::Duration;

/// Checks what the types alone cannot: names, references, exclusive choices, ranges.
pub(super) fn validate(config: &Config) -> Result<(), Invalid> {
    validate_limits(&config.runtime.limits, &["runtime", "limits"])?;
    for (name, gate) in &config.gates {
        if KebabId::parse(name).is_err() {
            return Err((
                at(&["gates", name]),
                format!("gate name `{name}` must be kebab-case ([a-z0-9-])"),
            ));
        }
        let sources = [
            gate.builtin.is_some(),
            gate.wasm.is_some(),
            gate.oci.is_some(),
        ];
        match sources.iter().filter(|s| **s).count() {
            0 => {
                return Err((
                    at(&["gates", name]),
                    "set `builtin = \"<name>\"`, `wasm = \"<path>\"` or `oci = \"oci://…@sha256:…\"`"
                        .into(),
                ));
            }
            1 => {}
            _ => {
                let field = if gate.oci.is_some() { "oci" } else { "wasm" };
                return Err((
                    at(&["gates", name, field]),
                    "set one of `builtin`, `wasm` and `oci`".into(),
                ));
            }
        }
        if let Some(b) = &gate.builtin
            && builtin::builtin_gate(b).is_none()
        {
            return Err((
                at(&["gates", name, "builtin"]),
                format!(
                    "no built-in gate `{b}` (built-in: {})",
                    builtin::builtin_names().join(", ")
                ),
            ));
        }
        if let Some(reference) = &gate.oci {
            match crate::supply::oci::Reference::parse(reference) {
                Err(e) => return Err((at(&["gates", name, "oci"]), e.to_string())),
                Ok(r) if r.digest.is_none() => {
                    return Err((
                        at(&["gates", name, "oci"]),
                        format!(
                            "pin it by digest (`{r}@sha256:…`): a tag can move; \
                             `gatekeeper gate pull {r}` prints the pinned reference"
                        ),
                    ));
                }
                Ok(_) => {}
            }
        }
        if gate.signature.is_some() && gate.wasm.is_none() {
            return Err((
                at(&["gates", name, "signature"]),
                "only a `wasm` gate has a signature file (an `oci` gate's travels with it)".into(),
            ));
        }
        if let Some(sha) = &gate.sha256
            && (sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return Err((
                at(&["gates", name, "sha256"]),
                "must be 64 hex characters".into(),
            ));
        }
        validate_limits(&gate.limits, &["gates", name, "limits"])?;
    }
    for (name, phase) in &config.phases {
        if KebabId::parse(name).is_err() {
            return Err((
                at(&["phases", name]),
                format!("phase name `{name}` must be kebab-case ([a-z0-9-])"),
            ));
        }
        if phase.gates.is_empty() {
            return Err((
                at(&["phases", name, "gates"]),
                "a phase needs at least one gate".into(),
            ));
        }
        for (i, gate) in phase.gates.iter().enumerate() {
            let field = at(&["phases", name, "gates", &i.to_string()]);
            if !config.gates.contains_key(gate) {
                let known = config.gates.keys().cloned().collect::<Vec<_>>().join(", ");
                return Err((field, format!("no gate named `{gate}` (gates: {known})")));
            }
            if phase.gates[..i].contains(gate) {
                return Err((field, format!("gate `{gate}` is listed twice")));
            }
        }
        validate_phase_steps(name, phase, config)?;
    }
    validate_sources(&config.sources)?;
    if let Some(ledger) = &config.ledger {
        ledger::validate_ledger(ledger, &config.sources)?;
    }
    if let Some(trust) = &config.trust {
        super::trust::validate_trust(trust, config)?;
    }
    if let Some(w) = &config.watch {
        watch::validate_watch(w, config)?;
        if let Some(am) = &w.alertmanager {
            let f = |name: &str| at(&["watch", "alertmanager", name]);
            http_url(am.url.expose(), f("url"))?;
            positive(&am.timeout, f("timeout"))?;
            if am.repeat.is_some_and(|r| r.0 < Duration::from_secs(1)) {
                return Err((f("repeat"), "must be at least 1s".into()));
            }
        }
    }
    Ok(())
}

/// Names (kebab-case already: [`KebabId`]) are unique in their list.
fn unique<'a>(
    names: impl Iterator<Item = &'a KebabId>,
    field: &[&str],
    what: &str,
) -> Result<(), Invalid> {
    let mut seen = Vec::new();
    for (i, name) in names.enumerate() {
        let f = || at(&[field, &[&i.to_string(), "name"]].concat());
        if seen.contains(&name) {
            return Err((f(), format!("{what} `{name}` is defined twice")));
        }
        seen.push(name);
    }
    Ok(())
}

fn http_url(url: &str, field: Vec<String>) -> Result<(), Invalid> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err((field, "must be an http:// or https:// URL".into()))
    }
}

fn positive(d: &Option<DurationValue>, field: Vec<String>) -> Result<(), Invalid> {
    match d {
        Some(d) if d.0.is_zero() => Err((field, "must be greater than 0s".into())),
        _ => Ok(()),
    }
}

/// `[sources.prometheus]`: one authentication, sane ranges and steps.
/// `requires`, `steps`, `verify`, `on_failure`: what `apply` runs.
fn validate_phase_steps(name: &str, phase: &PhaseConfig, config: &Config) -> Result<(), Invalid> {
    let field = |f: &str| at(&["phases", name, f]);
    for (i, required) in phase.requires.iter().flatten().enumerate() {
        if !config.phases.contains_key(required) {
            return Err((
                at(&["phases", name, "requires", &i.to_string()]),
                format!("no phase named `{required}`"),
            ));
        }
    }
    if let Some(verify) = &phase.verify
        && !config.phases.contains_key(verify)
    {
        return Err((field("verify"), format!("no phase named `{verify}`")));
    }
    positive(&phase.verify_timeout, field("verify_timeout"))?;
    if let Some(plan) = &phase.on_failure {
        let plans = config.watch.as_ref().map(|w| &w.plans);
        if !plans.is_some_and(|p| p.contains_key(plan)) {
            return Err((
                field("on_failure"),
                format!("no plan named `{plan}` in [watch.plans]"),
            ));
        }
    }
    if phase.steps.is_empty()
        && (phase.requires.is_some() || phase.verify.is_some() || phase.on_failure.is_some())
    {
        return Err((
            field("steps"),
            "`requires`, `verify` and `on_failure` are for `apply`: give the phase its steps"
                .into(),
        ));
    }
    for (i, step) in phase.steps.iter().enumerate() {
        step_check::validate_step(
            step,
            config,
            &["phases", name, "steps", &i.to_string()],
            StepPlace::Phase,
        )?;
    }
    Ok(())
}

fn validate_prometheus(p: &PrometheusSourceConfig) -> Result<(), Invalid> {
    let f = |path: &[&str]| at(&[&["sources", "prometheus"], path].concat());
    http_url(p.url.expose(), f(&["url"]))?;
    positive(&p.timeout, f(&["timeout"]))?;
    let bearer = p.bearer_token.is_some() || p.bearer_token_file.is_some();
    let basic = p.user.is_some() || p.password.is_some();
    if bearer && basic {
        return Err((
            f(&[]),
            "choose one authentication: `bearer_token`/`bearer_token_file` or `user`+`password`"
                .into(),
        ));
    }
    if p.bearer_token.is_some() && p.bearer_token_file.is_some() {
        return Err((
            f(&["bearer_token_file"]),
            "set either `bearer_token` or `bearer_token_file`, not both".into(),
        ));
    }
    if basic && (p.user.is_none() || p.password.is_none()) {
        let missing = if p.user.is_none() { "user" } else { "password" };
        return Err((
            f(&[missing]),
            "basic auth needs both `user` and `password`".into(),
        ));
    }
    unique(
        p.queries.iter().map(|q| &q.name),
        &["sources", "prometheus", "queries"],
        "query",
    )?;
    for (i, q) in p.queries.iter().enumerate() {
        let i = i.to_string();
        let qf = |name: &str| f(&["queries", &i, name]);
        if q.query.trim().is_empty() {
            return Err((qf("query"), "must not be empty".into()));
        }
        positive(&q.range, qf("range"))?;
        positive(&q.step, qf("step"))?;
        positive(&q.timeout, qf("timeout"))?;
        match (q.range, q.step) {
            (None, Some(_)) => {
                return Err((qf("step"), "a step needs a `range` (a range query)".into()));
            }
            (Some(range), Some(step)) if step.0 > range.0 => {
                return Err((qf("step"), "must not be longer than the range".into()));
            }
            (Some(range), step) => {
                let step = step.map_or_else(|| default_step(range.0), |s| s.0);
                // Prometheus refuses more than 11,000 points per series.
                if range.0.as_millis() / step.as_millis().max(1) > 11_000 {
                    return Err((
                        qf("step"),
                        "more than 11,000 points per series (Prometheus refuses it): use a longer step".into(),
                    ));
                }
            }
            (None, None) => {}
        }
    }
    Ok(())
}

fn validate_sources(sources: &SourcesConfig) -> Result<(), Invalid> {
    if let Some(nats) = &sources.nats {
        let url = nats.url.expose();
        if !["nats://", "tls://", "ws://", "wss://"]
            .iter()
            .any(|p| url.starts_with(p))
            && url.contains("://")
        {
            return Err((
                at(&["sources", "nats", "url"]),
                "must be a nats://, tls://, ws:// or wss:// URL".into(),
            ));
        }
        match &nats.monitor_url {
            Some(OneOrMany::One(m)) => http_url(m, at(&["sources", "nats", "monitor_url"]))?,
            Some(OneOrMany::Many(list)) => {
                for (i, m) in list.iter().enumerate() {
                    http_url(m, at(&["sources", "nats", "monitor_url", &i.to_string()]))?;
                }
            }
            None => {}
        }
        positive(&nats.timeout, at(&["sources", "nats", "timeout"]))?;
        let methods = [
            nats.token.is_some(),
            nats.user.is_some() || nats.password.is_some(),
            nats.nkey.is_some() || nats.nkey_file.is_some(),
            nats.creds_file.is_some(),
        ];
        if methods.iter().filter(|m| **m).count() > 1 {
            return Err((
                at(&["sources", "nats"]),
                "choose one authentication: `user`+`password`, `token`, `nkey`/`nkey_file` or `creds_file`".into(),
            ));
        }
        if nats.user.is_some() != nats.password.is_some() {
            let (set, missing) = if nats.user.is_some() {
                ("user", "password")
            } else {
                ("password", "user")
            };
            return Err((
                at(&["sources", "nats", set]),
                format!("`{set}` needs `{missing}` too"),
            ));
        }
        if nats.nkey.is_some() && nats.nkey_file.is_some() {
            return Err((
                at(&["sources", "nats", "nkey_file"]),
                "set either `nkey` or `nkey_file`, not both".into(),
            ));
        }
        if nats.tls.cert_file.is_some() != nats.tls.key_file.is_some() {
            return Err((
                at(&["sources", "nats", "tls"]),
                "`cert_file` and `key_file` go together".into(),
            ));
        }
        for (i, pattern) in nats.streams.iter().enumerate() {
            if pattern.is_empty() || pattern.contains(char::is_whitespace) {
                return Err((
                    at(&["sources", "nats", "streams", &i.to_string()]),
                    "a stream name pattern must be non-empty without spaces".into(),
                ));
            }
        }
    }
    if let Some(pg) = &sources.postgres {
        let url = pg.url.expose();
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err((
                at(&["sources", "postgres", "url"]),
                "must be a postgres:// or postgresql:// URL".into(),
            ));
        }
        positive(&pg.timeout, at(&["sources", "postgres", "timeout"]))?;
        unique(
            pg.queries.iter().map(|q| &q.name),
            &["sources", "postgres", "queries"],
            "query",
        )?;
        for (i, q) in pg.queries.iter().enumerate() {
            let f = |name: &str| at(&["sources", "postgres", "queries", &i.to_string(), name]);
            if q.sql.trim().is_empty() {
                return Err((f("sql"), "must not be empty".into()));
            }
            positive(&q.timeout, f("timeout"))?;
        }
    }
    if let Some(kube) = &sources.kubernetes {
        positive(&kube.timeout, at(&["sources", "kubernetes", "timeout"]))?;
        unique(
            kube.log_patterns.iter().map(|p| &p.name),
            &["sources", "kubernetes", "log_patterns"],
            "log pattern",
        )?;
        for (i, p) in kube.log_patterns.iter().enumerate() {
            let f = |name: &str| {
                at(&[
                    "sources",
                    "kubernetes",
                    "log_patterns",
                    &i.to_string(),
                    name,
                ])
            };
            if let Err(e) = regex::Regex::new(&p.pattern) {
                let first = e.to_string();
                let last = first.lines().last().unwrap_or("invalid").trim().to_owned();
                return Err((f("pattern"), format!("not a valid regex: {last}")));
            }
            if p.window.0 < Duration::from_secs(1) {
                return Err((f("window"), "must be at least 1s".into()));
            }
            if p.selector.trim().is_empty() {
                return Err((f("selector"), "must not be empty".into()));
            }
        }
    }
    if let Some(p) = &sources.prometheus {
        validate_prometheus(p)?;
    }
    unique(
        sources.http.iter().map(|p| &p.name),
        &["sources", "http"],
        "probe",
    )?;
    for (i, probe) in sources.http.iter().enumerate() {
        http_url(
            probe.url.expose(),
            at(&["sources", "http", &i.to_string(), "url"]),
        )?;
        positive(
            &probe.timeout,
            at(&["sources", "http", &i.to_string(), "timeout"]),
        )?;
    }
    unique(
        sources.metrics.iter().map(|p| &p.name),
        &["sources", "metrics"],
        "scrape",
    )?;
    for (i, scrape) in sources.metrics.iter().enumerate() {
        http_url(
            scrape.url.expose(),
            at(&["sources", "metrics", &i.to_string(), "url"]),
        )?;
        positive(
            &scrape.timeout,
            at(&["sources", "metrics", &i.to_string(), "timeout"]),
        )?;
    }
    Ok(())
}

fn validate_limits(l: &LimitsConfig, field: &[&str]) -> Result<(), Invalid> {
    let err = |name: &str, message: String| {
        let mut f = at(field);
        f.push(name.to_owned());
        Err((f, message))
    };
    if l.fuel == Some(0) {
        return err("fuel", "must be greater than 0".into());
    }
    if l.deadline.is_some_and(|d| d.0.is_zero()) {
        return err("deadline", "must be greater than 0s".into());
    }
    if let Some(m) = l.memory
        && (m.0 < 1 << 20 || m.0 > 4 << 30)
    {
        return err("memory", "must be between 1MiB and 4GiB".into());
    }
    if let Some(s) = l.stack
        && (s.0 < 64 << 10 || s.0 > limits::MAX_STACK_BYTES)
    {
        return err(
            "stack",
            format!(
                "must be between 64KiB and {}KiB",
                limits::MAX_STACK_BYTES >> 10
            ),
        );
    }
    if l.output.is_some_and(|o| o.0 < 1 << 10) {
        return err("output", "must be at least 1KiB".into());
    }
    Ok(())
}
