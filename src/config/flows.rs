//! `--sampler`, `--track-level`, `--aggregation`, `--key-tos`, `--key-vlan` and their YAML
//! keys: which packets are metered and what a flow's key is. The command line wins over the
//! YAML file.

use super::{Args, YamlConfig};
use crate::meter::sampling::{SamplerSpec, MAX_NETFLOW5_N};
use crate::meter::{KeyPolicy, TrackLevel};
use anyhow::{anyhow, Result};
use serde::Deserialize;

/// YAML `aggregation:`: one string as the option takes it, or a list of rules.
#[derive(Deserialize, Debug, Clone, PartialEq, Eq)]
#[serde(untagged)]
pub enum Rules {
    One(String),
    List(Vec<String>),
}

/// The sampler, if any: `--sampler`, else the YAML `sampler:`.
pub fn sampler(args: &Args, yaml: &YamlConfig) -> Result<Option<SamplerSpec>> {
    let (text, whence) = match (&args.sampler, &yaml.sampler) {
        (Some(t), _) => (t, "--sampler"),
        (None, Some(t)) => (t, "sampler:"),
        (None, None) => return Ok(None),
    };
    let spec = SamplerSpec::parse(text).map_err(|e| anyhow!("{whence} {e}"))?;
    if args.netflow == Some(super::NetflowVersion::V5) && spec.n > MAX_NETFLOW5_N {
        return Err(anyhow!(
            "{whence} {text}: NetFlow v5's header carries a sampling interval of at most {MAX_NETFLOW5_N}"
        ));
    }
    Ok(Some(spec))
}

/// The flow key's policy from the options and the YAML file.
pub fn key_policy(args: &Args, yaml: &YamlConfig) -> Result<KeyPolicy> {
    let mut k = KeyPolicy::default();
    match (&args.track_level, &yaml.track_level) {
        (Some(t), _) => {
            k.level = TrackLevel::parse(t).map_err(|e| anyhow!("--track-level: {e}"))?
        }
        (None, Some(t)) => {
            k.level = TrackLevel::parse(t).map_err(|e| anyhow!("track-level: {e}"))?
        }
        (None, None) => {}
    }
    match (&args.aggregation, &yaml.aggregation) {
        (Some(r), _) => k
            .add_aggregation(r)
            .map_err(|e| anyhow!("--aggregation: {e}"))?,
        (None, Some(Rules::One(r))) => k
            .add_aggregation(r)
            .map_err(|e| anyhow!("aggregation: {e}"))?,
        (None, Some(Rules::List(rules))) => {
            for r in rules {
                k.add_aggregation(r)
                    .map_err(|e| anyhow!("aggregation: {e}"))?;
            }
        }
        (None, None) => {}
    }
    k.tos = args.key_tos || yaml.key_tos.is_some_and(|f| f.0);
    k.outer_vlan = args.key_vlan || yaml.key_vlan.is_some_and(|f| f.0);
    Ok(k)
}
