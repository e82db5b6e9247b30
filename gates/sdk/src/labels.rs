//! Label matching, as gates select series and samples by their labels.

use std::collections::BTreeMap;

/// `have` matches every wanted label: a wanted value equals the label's
/// value (a missing label is the empty string), and a wanted value starting
/// with `!` matches every value but the rest of it.
pub fn matches(have: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    want.iter().all(|(k, v)| {
        let value = have.get(k).map(String::as_str).unwrap_or("");
        match v.strip_prefix('!') {
            Some(not) => value != not,
            None => value == v,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_negated_and_missing_labels() {
        let have: BTreeMap<String, String> = [("result".to_owned(), "dlq".to_owned())]
            .into_iter()
            .collect();
        let want = |k: &str, v: &str| [(k.to_owned(), v.to_owned())].into_iter().collect();
        assert!(matches(&have, &want("result", "dlq")));
        assert!(!matches(&have, &want("result", "!dlq")));
        assert!(matches(&have, &want("stream", "!AA_CORE_HOT")));
        assert!(matches(&have, &want("stream", "")));
        assert!(!matches(&have, &want("stream", "AA_CORE_HOT")));
        assert!(matches(&have, &BTreeMap::new()));
    }
}
