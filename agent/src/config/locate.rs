//! Pointing at a field of the file: its line, and the profile that sets it.

use super::validate::validate;
use super::{Config, ConfigError};
use std::collections::BTreeMap;

/// Each gate's params in the base config (`profile: None`) and under each
/// profile, with what it takes to point at a field of the file.
#[derive(Debug, Default)]
pub struct ParamsByProfile {
    pub(super) shown: String,
    pub(super) text: String,
    pub variants: Vec<(Option<String>, BTreeMap<String, toml::Table>)>,
}

impl ParamsByProfile {
    /// The config file as it was named when loaded.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Hex sha256 of the config file's text.
    pub fn text_sha256(&self) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(self.text.as_bytes()))
    }

    /// The error for `field` (a path from the top of the file) under
    /// `profile`, located as [`ParamsByProfile::error`] does.
    pub fn error_at(
        &self,
        profile: Option<&str>,
        field: &[String],
        message: String,
    ) -> ConfigError {
        let Ok(doc) = toml_edit::Document::parse(self.text.clone()) else {
            return ConfigError::Syntax {
                path: self.shown.clone(),
                message,
            };
        };
        Locator {
            path: &self.shown,
            text: &self.text,
            doc: &doc,
        }
        .error(profile, field, message)
    }

    /// The error for `field` (below `gates.<gate>.params`) under `profile`,
    /// located in the file: the profile's overlay when it sets the field,
    /// else the base config.
    pub fn error(
        &self,
        profile: Option<&str>,
        gate: &str,
        field: &[String],
        message: String,
    ) -> ConfigError {
        let path: Vec<String> = ["gates".to_owned(), gate.to_owned(), "params".to_owned()]
            .into_iter()
            .chain(field.iter().cloned())
            .collect();
        self.error_at(profile, &path, message)
    }
}

/// Maps field paths back to lines of the original text.
pub(super) struct Locator<'a> {
    pub(super) path: &'a str,
    pub(super) text: &'a str,
    pub(super) doc: &'a toml_edit::Document<String>,
}

impl Locator<'_> {
    /// Deserializes and validates one variant (base or base + profile).
    pub(super) fn build(
        &self,
        profile: Option<&str>,
        value: toml::Value,
    ) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(value).map_err(|e| {
            let mut field: Vec<String> = e
                .path()
                .iter()
                .filter_map(|seg| match seg {
                    serde_path_to_error::Segment::Map { key } => Some(key.clone()),
                    serde_path_to_error::Segment::Seq { index } => Some(index.to_string()),
                    _ => None,
                })
                .collect();
            // toml's Display appends "in `path`"; we give the path ourselves.
            let message = e.inner().message().trim_end().to_owned();
            // serde names an unknown field in the message; point at it.
            if let Some(name) = message
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
                && field.last().map(String::as_str) != Some(name)
            {
                field.push(name.to_owned());
            }
            self.error(profile, &field, message)
        })?;
        validate(&config).map_err(|(field, message)| self.error(profile, &field, message))?;
        Ok(config)
    }

    pub(super) fn error(
        &self,
        profile: Option<&str>,
        field: &[String],
        message: String,
    ) -> ConfigError {
        // Look in the profile's overlay first, then in the base document.
        let in_profile: Option<Vec<String>> = profile.map(|p| {
            ["profiles".to_owned(), p.to_owned()]
                .into_iter()
                .chain(field.iter().cloned())
                .collect()
        });
        let offset = in_profile
            .as_ref()
            .and_then(|p| self.offset_exact(p))
            .or_else(|| self.offset_exact(field))
            .or_else(|| in_profile.as_ref().and_then(|p| self.offset_prefix(p)))
            .or_else(|| self.offset_prefix(field))
            .unwrap_or(0);
        let line = self.text[..offset.min(self.text.len())]
            .matches('\n')
            .count()
            + 1;
        ConfigError::Field {
            path: self.path.to_owned(),
            line,
            profile: profile
                .map(|p| format!("profile `{p}`: "))
                .unwrap_or_default(),
            field: if field.is_empty() {
                "(top level)".into()
            } else {
                render_field(field)
            },
            message,
        }
    }

    fn offset_exact(&self, field: &[String]) -> Option<usize> {
        let (found, offset) = self.walk(field);
        (found == field.len()).then_some(offset).flatten()
    }

    fn offset_prefix(&self, field: &[String]) -> Option<usize> {
        self.walk(field).1
    }

    /// Follows the path as far as it exists: (segments found, offset of the deepest).
    fn walk(&self, field: &[String]) -> (usize, Option<usize>) {
        enum Node<'d> {
            Item(&'d toml_edit::Item),
            Value(&'d toml_edit::Value),
            Table(&'d toml_edit::Table),
        }
        let mut node = Node::Item(self.doc.as_item());
        let mut offset = None;
        for (depth, seg) in field.iter().enumerate() {
            let table = match &node {
                Node::Item(i) => i.as_table_like(),
                Node::Value(v) => v.as_inline_table().map(|t| t as &dyn toml_edit::TableLike),
                Node::Table(t) => Some(*t as &dyn toml_edit::TableLike),
            };
            if let Some(table) = table {
                let Some((key, child)) = table.get_key_value(seg) else {
                    return (depth, offset);
                };
                offset = key
                    .span()
                    .or_else(|| child.span())
                    .map(|r| r.start)
                    .or(offset);
                node = Node::Item(child);
                continue;
            }
            let Ok(index) = seg.parse::<usize>() else {
                return (depth, offset);
            };
            match &node {
                Node::Item(toml_edit::Item::ArrayOfTables(a)) => {
                    let Some(t) = a.get(index) else {
                        return (depth, offset);
                    };
                    offset = t.span().map(|r| r.start).or(offset);
                    node = Node::Table(t);
                }
                Node::Item(i) => {
                    let Some(v) = i.as_array().and_then(|a| a.get(index)) else {
                        return (depth, offset);
                    };
                    offset = v.span().map(|r| r.start).or(offset);
                    node = Node::Value(v);
                }
                Node::Table(_) => return (depth, offset),
                Node::Value(v) => {
                    let Some(v) = v.as_array().and_then(|a| a.get(index)) else {
                        return (depth, offset);
                    };
                    offset = v.span().map(|r| r.start).or(offset);
                    node = Node::Value(v);
                }
            }
        }
        (field.len(), offset)
    }
}

fn render_field(field: &[String]) -> String {
    let mut out = String::new();
    for seg in field {
        if seg.parse::<usize>().is_ok() {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}
