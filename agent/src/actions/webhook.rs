//! `webhook`: POSTs the verdict as JSON; anything but 2xx is a failure. URLs
//! are shown by their origin only (paths and queries often hold tokens).

use super::{StepError, StepResult};
use crate::ledger::StepOutcome;
use std::time::Duration;

/// `https://hooks.example` of `https://user:pw@hooks.example/T0/secret?x`:
/// webhook paths and queries often hold tokens, and never reach a log.
pub fn origin(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(webhook)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = authority.rsplit('@').next().unwrap_or_default();
    let more = if rest.len() > authority.len() {
        "/…"
    } else {
        ""
    };
    format!("{scheme}://{host}{more}")
}

/// POSTs JSON, with the lease epoch it runs under in the
/// `Gatekeeper-Lease-Epoch` header; anything but 2xx is a failure.
pub async fn post_json(
    http: &reqwest::Client,
    url: &str,
    body: &str,
    epoch: Option<u64>,
    timeout: Duration,
) -> StepResult {
    let mut request = http.post(url);
    if let Some(epoch) = epoch {
        request = request.header("gatekeeper-lease-epoch", epoch.to_string());
    }
    let answer = request
        .header("content-type", "application/json")
        .body(body.to_owned())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| StepError::Refused(format!("POST {}: {}", origin(url), e.without_url())))?;
    let status = answer.status();
    if status.is_success() {
        Ok((StepOutcome::Done, format!("POST {}: {status}", origin(url))))
    } else {
        Err(StepError::Refused(format!(
            "POST {}: answered {status}",
            origin(url)
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_urls_are_shown_without_their_secrets() {
        assert_eq!(
            origin("https://user:pw@hooks.example.com/services/T0/B1/secret?token=x"),
            "https://hooks.example.com/…"
        );
        assert_eq!(origin("http://127.0.0.1:9000"), "http://127.0.0.1:9000");
        assert_eq!(origin("nonsense"), "(webhook)");
    }
}
