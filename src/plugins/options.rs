//! `--plugin` arguments: ipfixprobe's `name;option[=value];...`.

use super::{spec, PluginError};
use crate::ie::PluginKind;

/// A plugin's options as given, checked against what it takes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options(Vec<(&'static str, Option<String>)>);

impl Options {
    /// The option is given (by its long name).
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| *n == name)
    }

    /// The option's value, if given.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    /// The option's value parsed as a number in `range`; `default` if not given.
    pub fn number(
        &self,
        plugin: &str,
        name: &str,
        range: std::ops::RangeInclusive<u64>,
        default: u64,
    ) -> Result<u64, PluginError> {
        let Some(v) = self.value(name) else {
            return Ok(default);
        };
        match v.parse::<u64>() {
            Ok(n) if range.contains(&n) => Ok(n),
            _ => Err(PluginError(format!(
                "plugin `{plugin}`: option `{name}` takes a number from {} to {}, not `{v}`",
                range.start(),
                range.end()
            ))),
        }
    }
}

/// One plugin to enable, with its options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PluginSpec {
    pub kind: PluginKind,
    pub options: Options,
}

impl PluginSpec {
    pub fn defaults(kind: PluginKind) -> PluginSpec {
        PluginSpec {
            kind,
            options: Options::default(),
        }
    }

    /// Parse `name;option[=value];...` (options by long or short name, as ipfixprobe spells
    /// them). Unknown plugins and options are errors naming them.
    pub fn parse(arg: &str) -> Result<PluginSpec, PluginError> {
        let mut parts = arg.split(';');
        let name = parts.next().unwrap_or("").trim();
        let known: Vec<&str> = super::REGISTRY.iter().map(|s| s.kind.name()).collect();
        let kind = PluginKind::by_name(name).filter(|k| spec(*k).is_some());
        let Some(kind) = kind else {
            return Err(PluginError(format!(
                "unknown plugin `{name}` (plugins: {})",
                known.join(", ")
            )));
        };
        let Some(spec) = spec(kind) else {
            unreachable!("checked above");
        };
        let mut options = Vec::new();
        for part in parts {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (key, value) = match part.split_once('=') {
                Some((k, v)) => (k.trim(), Some(v.trim().to_string())),
                None => (part, None),
            };
            let Some(o) = spec
                .options
                .iter()
                .find(|o| o.name.eq_ignore_ascii_case(key) || o.short == key)
            else {
                let names: Vec<&str> = spec.options.iter().map(|o| o.name).collect();
                return Err(PluginError(format!(
                    "plugin `{name}` has no option `{key}` ({})",
                    if names.is_empty() {
                        "it takes none".to_string()
                    } else {
                        format!("options: {}", names.join(", "))
                    }
                )));
            };
            match (&value, o.takes_value) {
                (Some(_), false) => {
                    return Err(PluginError(format!(
                        "plugin `{name}`: option `{}` takes no value",
                        o.name
                    )))
                }
                (None, true) => {
                    return Err(PluginError(format!(
                        "plugin `{name}`: option `{}` needs a value (`{}=...`)",
                        o.name, o.name
                    )))
                }
                _ => {}
            }
            if options.iter().any(|(n, _)| *n == o.name) {
                return Err(PluginError(format!(
                    "plugin `{name}`: option `{}` is given twice",
                    o.name
                )));
            }
            options.push((o.name, value));
        }
        Ok(PluginSpec {
            kind,
            options: Options(options),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipfixprobe_spellings_parse_and_mistakes_are_named() {
        let p = PluginSpec::parse("pstats;includezeroes;s").unwrap();
        assert_eq!(p.kind, PluginKind::Pstats);
        assert!(p.options.flag("includezeroes") && p.options.flag("skipdup"));
        assert_eq!(
            PluginSpec::parse("PSTATS").unwrap(),
            PluginSpec::defaults(PluginKind::Pstats)
        );
        let e = PluginSpec::parse("pstat").unwrap_err().to_string();
        assert!(
            e.starts_with("unknown plugin `pstat` (plugins: pstats"),
            "{e}"
        );
        let e = PluginSpec::parse("pstats;zeroes").unwrap_err().to_string();
        assert_eq!(
            e,
            "plugin `pstats` has no option `zeroes` (options: includezeroes, skipdup)"
        );
        let e = PluginSpec::parse("pstats;i=1").unwrap_err().to_string();
        assert_eq!(e, "plugin `pstats`: option `includezeroes` takes no value");
        let e = PluginSpec::parse("pstats;i;i").unwrap_err().to_string();
        assert!(e.contains("given twice"), "{e}");
    }
}
